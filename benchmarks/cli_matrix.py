"""Time ``labkit policy matrix`` as a user runs it: one whole process, parse to output.

    python benchmarks/cli_matrix.py --pods 1000 --policies 500 --output text json
    python benchmarks/cli_matrix.py --sweep            # growth as pods, then policies, double

The cluster is the policy benchmark's (``policy_engine.py --emit-yaml``). Prints one JSON
line per run: wall and CPU seconds, peak memory (the process's maximum resident set), the output's
size, and the cost relative to the previous size in the sweep against the growth in
pairs (pods doubling) or in policies (policies doubling).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from peer import measured

ROOT = Path(__file__).resolve().parents[1]
PODS_DOUBLING = [(500, 250), (1000, 500), (2000, 1000), (4000, 2000)]
POLICIES_DOUBLING = [(1000, 250), (1000, 500), (1000, 1000), (1000, 2000)]


def run(pods: int, policies: int, output: str, work: Path) -> dict[str, Any]:
    cluster = work / f"c{pods}x{policies}"
    if not cluster.exists():
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "policy_engine.py"),
                        "--pods", str(pods), "--policies", str(policies),
                        "--emit-yaml", str(cluster)], check=True, capture_output=True)
    out = work / f"out.{output}"
    seconds, cpu, peak = measured([sys.executable, "-m", "labkit.cli", "policy", "matrix",
                              str(cluster), "--cni", "kindnet", "--output", output], out)
    return {"pods": pods, "policies": policies, "output": output,
            "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
            "peak_rss_mb": round(peak, 1),
            "output_mb": round(out.stat().st_size / 2**20, 1)}


def series(sizes: list[tuple[int, int]], output: str, work: Path, grows: str) -> None:
    before: dict[str, Any] | None = None
    for pods, policies in sizes:
        row = run(pods, policies, output, work)
        if before is not None:
            row["cost_growth"] = round(row["seconds"] / before["seconds"], 2)
            row["cpu_growth"] = round(row["cpu_seconds"] / before["cpu_seconds"], 2)
            row[f"{grows}_growth"] = round(
                (pods * pods) / (before["pods"] ** 2) if grows == "pairs"
                else policies / before["policies"], 2)
        print(json.dumps(row), flush=True)
        before = row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--policies", type=int, default=500)
    parser.add_argument("--output", nargs="+", default=["text", "json"],
                        choices=("text", "json"))
    parser.add_argument("--sweep", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.sweep:
            series(PODS_DOUBLING, "json", work, "pairs")
            series(POLICIES_DOUBLING, "json", work, "policies")
            return 0
        for output in args.output:
            print(json.dumps(run(args.pods, args.policies, output, work)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
