"""labkit policy matrix against a peer, network-config-analyzer (IBM's NetworkPolicy
analyzer), on the same synthetic cluster: same answers, and how many times faster.

    python benchmarks/peer.py --pods 1000 --policies 500 --repeat 3

The peer is installed by this script into its own virtual environment (``--venv``,
default ``.venv-peer/``): it is not a dependency of the project. Both tools read the
manifests that ``benchmarks/policy_engine.py --emit-yaml`` writes, with ipBlock peers
outside the pod addresses (Kubernetes leaves an ipBlock that contains pod IPs undefined
and the two tools read it differently). Each run is one whole process, parse to output;
peak memory is the process's maximum resident set. Answers are compared on TCP/80 for
every ordered pair of distinct pods. Prints one JSON line per round and a summary line.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PEER = "network-config-analyzer==2.1.0"
#: Runs a command and prints its peak RSS in KB and its CPU seconds (user + system): a fresh
#: parent for every measurement.
MEASURE = ("import resource, subprocess, sys; rc = subprocess.run(sys.argv[1:]).returncode; "
           "u = resource.getrusage(resource.RUSAGE_CHILDREN); "
           "print(u.ru_maxrss, u.ru_utime + u.ru_stime, file=sys.stderr); sys.exit(rc)")


def ensure_peer(venv: Path) -> Path:
    nca = venv / "bin" / "nca"
    if not nca.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", PEER],
                       check=True)
    return nca


def measured(argv: list[str], stdout: Path) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, peak MB) of one whole process; its standard output goes
    to ``stdout``. On a shared machine the CPU time is the steadier of the two."""
    start = time.perf_counter()
    with stdout.open("w") as out:
        proc = subprocess.run([sys.executable, "-c", MEASURE, *argv], stdout=out,
                              stderr=subprocess.PIPE, text=True, cwd=stdout.parent)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{proc.stderr[-3000:]}")
    peak_kb, cpu = proc.stderr.strip().splitlines()[-1].split()
    return seconds, float(cpu), int(peak_kb) / 1024


def labkit_pairs(text: str, port: str = "80/TCP") -> set[tuple[str, str]]:
    """Allowed (source, destination) pairs of distinct pods from labkit's JSON matrix."""
    data = json.loads(text)
    sources, destinations = data["sources"], data["destinations"]
    if data["format"] == "rows":
        return {(s, destinations[j]) for s, row in zip(sources, data["expected"][port],
                                                        strict=True)
                for j, code in enumerate(row) if code == "." and s != destinations[j]}
    number, proto = port.split("/")
    return {(c["from"], c["to"]) for c in data["cells"] if c["expected"]["allowed"]
            and c["port"] == int(number) and c["protocol"] == proto and c["from"] != c["to"]}


_LINE = re.compile(r"^(?P<src>\S+) => (?P<dst>\S+) : (?P<conns>.*)$")


def allows(conns: str, port: int, protocol: str) -> bool:
    """Whether an NCA connection set (``All connections``, or ``{protocols:TCP,dst_ports:
    80,5000-5500}`` groups) admits one port."""
    if conns.strip() == "All connections":
        return True
    for group in re.findall(r"\{([^}]*)\}", conns):
        protocols: list[str] = []
        ports: list[str] = []
        current: list[str] | None = None
        for token in group.split(","):
            name, sep, value = token.partition(":")
            if sep and name == "protocols":
                current = protocols
            elif sep and name == "dst_ports":
                current = ports
            elif sep:
                current = None  # another dimension (src_ports, methods ...): not used here
            else:
                value = token
            if current is not None and value:
                current.append(value.strip())
        if protocols and protocol not in protocols:
            continue
        if not ports or any(_in_range(port, p) for p in ports):
            return True
    return False


def _in_range(port: int, text: str) -> bool:
    low, _, high = text.partition("-")
    return int(low) <= port <= int(high or low)


def nca_pairs(text: str, pods: set[str], port: int = 80, protocol: str = "TCP"
              ) -> set[tuple[str, str]]:
    """Allowed (source, destination) pairs of distinct pods from ``nca --connectivity -o
    txt_no_fw_rules --output_endpoints pods``."""
    out = set()
    for line in text.splitlines():
        m = _LINE.match(line)
        if m and m["src"] in pods and m["dst"] in pods and m["src"] != m["dst"] \
                and allows(m["conns"], port, protocol):
            out.add((m["src"], m["dst"]))
    return out


def one_round(nca: Path, cluster: Path, work: Path) -> dict[str, Any]:
    ours = work / "labkit.json"
    theirs = work / "nca.txt"
    lk_s, lk_cpu, lk_mb = measured([sys.executable, "-m", "labkit.cli", "policy", "matrix",
                            str(cluster), "--cni", "kindnet", "--output", "json"], ours)
    nca_s, nca_cpu, nca_mb = measured([str(nca), "--connectivity", "-r", str(cluster), "-o",
                              "txt_no_fw_rules", "--output_endpoints", "pods"], theirs)
    data = ours.read_text()
    pods = set(json.loads(data)["sources"])
    mine, peer = labkit_pairs(data), nca_pairs(theirs.read_text(), pods)
    differ = sorted(mine ^ peer)
    return {"labkit_seconds": round(lk_s, 2), "labkit_cpu_seconds": round(lk_cpu, 2),
            "labkit_peak_mb": round(lk_mb, 1), "nca_seconds": round(nca_s, 2),
            "nca_cpu_seconds": round(nca_cpu, 2), "nca_peak_mb": round(nca_mb, 1),
            "ratio": round(nca_s / lk_s, 1), "cpu_ratio": round(nca_cpu / lk_cpu, 1),
            "allowed_pairs": len(mine),
            "same_answers": not differ, "differ_examples": differ[:5]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--policies", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--venv", type=Path, default=ROOT / ".venv-peer",
                        help="where to install the peer (default: .venv-peer/)")
    args = parser.parse_args(argv)
    nca = ensure_peer(args.venv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cluster = work / "cluster"
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "policy_engine.py"),
                        "--pods", str(args.pods), "--policies", str(args.policies),
                        "--external-ipblocks", "--emit-yaml", str(cluster)],
                       check=True, capture_output=True)
        for r in range(args.repeat):
            row = {"round": r + 1, "pods": args.pods, "policies": args.policies,
                   **one_round(nca, cluster, work)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    summary = {k: {"median": statistics.median(row[k] for row in rows),
                   "min": min(row[k] for row in rows), "max": max(row[k] for row in rows)}
               for k in ("labkit_seconds", "labkit_cpu_seconds", "labkit_peak_mb",
                         "nca_seconds", "nca_cpu_seconds", "nca_peak_mb", "ratio", "cpu_ratio")}
    print(json.dumps({"summary": summary,
                      "same_answers": all(row["same_answers"] for row in rows)}))
    return 0 if all(row["same_answers"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
