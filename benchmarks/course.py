"""The course on sim against its floor: the same number of empty notebooks, side by side.

    python benchmarks/course.py --repeat 3

Each round runs, as separate processes and one after the other, ``labkit run --backend
sim -p SOLVE_EXERCISES=true`` over the course (what ``make run`` does) and ``labkit run``
over as many empty notebooks (a parameters cell only): the floor, where all the time goes
to starting the runner, the kernels and tearing them down. Prints one JSON line per round
and a summary line with the median and the spread (min-max) of each and of their ratio.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LABKIT = [sys.executable, "-m", "labkit.cli"]


def empty_notebooks(folder: Path, count: int) -> list[Path]:
    import nbformat

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        nb = nbformat.v4.new_notebook()
        cell = nbformat.v4.new_code_cell('BACKEND = "sim"')
        cell.metadata["tags"] = ["parameters"]
        nb.cells = [nbformat.v4.new_markdown_cell("# empty"), cell]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                     "language": "python"}
        path = folder / f"{i:02d}-empty.ipynb"
        nbformat.write(nb, path)
        paths.append(path)
    return paths


def timed(argv: list[str], out: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the runner and its kernels) of one ``labkit run``."""
    before = _children_cpu()
    start = time.perf_counter()
    proc = subprocess.run([*argv, "--backend", "sim", "--output-dir", str(out)], cwd=ROOT,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return seconds, _children_cpu() - before


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # kernels included: they are waited
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    course = sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))
    rounds: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        empties = empty_notebooks(work / "empty", len(course)) if course else []
        for r in range(args.repeat):
            floor, floor_cpu = timed([*LABKIT, "run", *map(str, empties)], work / f"floor{r}")
            full, full_cpu = timed([*LABKIT, "run", "-p", "SOLVE_EXERCISES=true"],
                                   work / f"course{r}")
            row = {"round": r + 1, "notebooks": len(course), "course_seconds": round(full, 2),
                   "floor_seconds": round(floor, 2), "ratio": round(full / floor, 2),
                   "course_cpu_seconds": round(full_cpu, 2),
                   "floor_cpu_seconds": round(floor_cpu, 2),
                   "cpu_ratio": round(full_cpu / floor_cpu, 2)}
            rounds.append(row)
            print(json.dumps(row), flush=True)

    def spread(key: str) -> dict[str, float]:
        values = [row[key] for row in rounds]
        return {"median": round(statistics.median(values), 2), "min": min(values),
                "max": max(values)}

    print(json.dumps({"summary": {k: spread(k) for k in
                                  ("course_seconds", "floor_seconds", "ratio",
                                   "course_cpu_seconds", "floor_cpu_seconds", "cpu_ratio")}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
