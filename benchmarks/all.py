"""Every figure of benchmarks/ and the README, measured side by side in one run.

    python benchmarks/all.py --repeat 3 [--quick]

Runs each benchmark ``--repeat`` times, round-robin (so a busy spell on a shared machine
hits every figure alike), prints every raw JSON line, then one summary line per measured
configuration with the median and the spread (min-max) of each number, and writes both to
``benchmarks/results.json`` with the machine's load average before and after.
``--quick`` leaves out the slow ones (10,000 pods, the peer, the course).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PY = sys.executable
#: (section, argv): each prints JSON lines; lines with "summary" are the script's own.
COMMANDS: list[tuple[str, list[str]]] = [
    *[(f"engine {cni}", [PY, str(HERE / "policy_engine.py"), "--sweep", "--cni", cni])
      for cni in ("kindnet", "calico", "cilium")],
    ("cli 1000x500", [PY, str(HERE / "cli_matrix.py"), "--pods", "1000", "--policies", "500"]),
    ("cli sweep", [PY, str(HERE / "cli_matrix.py"), "--sweep"]),
    ("sim 1000 pods", [PY, str(HERE / "sim_scale.py")]),
]
SLOW: list[tuple[str, list[str]]] = [
    ("cli 10000x5000", [PY, str(HERE / "cli_matrix.py"), "--pods", "10000", "--policies",
                        "5000", "--output", "json"]),
    ("peer 1000x500", [PY, str(HERE / "peer.py")]),
    ("course", [PY, str(HERE / "course.py"), "--repeat", "1"]),
]
#: Fields that name a configuration; every other number is a measurement.
IDENTITY = ("pods", "policies", "cni", "output", "workers", "notebooks", "pairs")


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        key = json.dumps({k: row[k] for k in ("section", *IDENTITY) if k in row})
        groups.setdefault(key, []).append(row)
    out = []
    for key, members in groups.items():
        summary: dict[str, Any] = json.loads(key)
        summary["runs"] = len(members)
        for field in members[0]:
            values = [m.get(field) for m in members]
            if field in summary or field in ("round",):
                continue
            if all(isinstance(v, bool) for v in values):
                summary[field] = all(values)
            elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                summary[field] = {"median": round(statistics.median(values), 3),
                                  "min": min(values), "max": max(values)}
        out.append(summary)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    args = parser.parse_args(argv)
    commands = COMMANDS + ([] if args.quick else SLOW)
    load_before = os.getloadavg()
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    rows: list[dict[str, Any]] = []
    for r in range(args.repeat):
        for section, cmd in commands:
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE.parent)
            if proc.returncode != 0:
                print(f"{section} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}",
                      file=sys.stderr)
                return 1
            for line in proc.stdout.splitlines():
                row = json.loads(line)
                if "summary" in row:
                    continue
                row = {"section": section, "repeat": r + 1, **row}
                row.pop("round", None)
                rows.append(row)
                print(json.dumps(row), flush=True)
    summary = [{k: v for k, v in s.items() if k != "repeat"} for s in summarise(rows)]
    for s in summary:
        print(json.dumps({"summary": s}))
    args.out.write_text(json.dumps({
        "started": started, "cpus": os.cpu_count(), "load_before": load_before,
        "load_after": os.getloadavg(), "repeat": args.repeat, "summary": summary,
        "runs": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
