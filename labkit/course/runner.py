"""The course runner behind ``labkit run`` and ``make run``.

Executes notebooks in order with papermill, passing parameters (BACKEND and any
``-p NAME=VALUE``), and writes into one output folder the executed notebooks,
``report.json`` (for programs) and ``report.html`` (for people). A failing
notebook does not stop the run unless asked: later notebooks build their own
clusters, and a full report is worth more to an instructor than the first error.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml

from labkit.display import Table, escape, simulated_banner
from labkit.errors import LabkitError
from labkit.imports import defer_rfc3987_syntax
from labkit.lab import choose_backend

NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"
#: A cell that runs longer than this gets a progress line (throttled), so papermill logs
#: stay short on sim and a learner on kind still sees that something is happening.
PROGRESS_EVERY_S = 10.0


@dataclass
class NotebookResult:
    name: str
    status: str  # "passed" | "failed"
    seconds: float
    error: str | None = None
    cell: int | None = None  # 1-based position of the failing cell in the executed notebook
    output: str = ""
    #: The executed notebook rendered as a web page (nbconvert), which a browser can show.
    html: str = ""


@dataclass
class CourseReport:
    backend: str
    parameters: dict[str, Any]
    notebooks: list[NotebookResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(n.status == "passed" for n in self.notebooks)

    @property
    def simulated(self) -> bool:
        return self.backend == "sim"

    def as_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "simulated": self.simulated,
            "parameters": dict(self.parameters),
            "notebooks": [asdict(n) for n in self.notebooks],
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2, default=str)

    def table(self) -> Table:
        table = Table(("notebook", "status", "seconds", "error"),
                      title=f"CNI Lab course run (backend: {self.backend})")
        for n in self.notebooks:
            table.add(n.name, n.status, f"{n.seconds:.1f}", n.error or "")
        passed = sum(n.status == "passed" for n in self.notebooks)
        table.notes.append(f"{passed}/{len(self.notebooks)} notebooks passed")
        if self.simulated:
            table.notes.append(simulated_banner(True, "All cluster results in this run"))
        return table

    def to_text(self) -> str:
        return self.table().to_text()

    def _repr_html_(self) -> str:
        return self.table()._repr_html_()

    def to_html(self) -> str:
        links = "".join(
            "<li>" + (f'<a href="{escape(Path(n.html).name)}">{escape(n.name)}</a>' if n.html
                      else escape(n.name))
            + f' ({escape(n.status)}; <a href="{escape(Path(n.output).name)}">.ipynb</a>)</li>'
            for n in self.notebooks if n.output
        )
        return (
            "<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>CNI Lab run: {escape(self.backend)}</title></head>"
            "<body style='font-family:sans-serif'>"
            f"{self._repr_html_()}<h4>Executed notebooks</h4><ul>{links}</ul>"
            f"<h4>Parameters</h4><pre>{escape(json.dumps(self.parameters, indent=2))}</pre>"
            "</body></html>"
        )


def parse_parameter(text: str) -> tuple[str, Any]:
    """``NAME=VALUE`` from the command line; VALUE is read as YAML (so 3, true, [a] work)."""
    name, sep, raw = text.partition("=")
    if not sep or not name.isidentifier():
        raise LabkitError(
            f"bad parameter {text!r}",
            hint="write parameters as NAME=VALUE, e.g. -p SOLVE_EXERCISES=true",
        )
    try:
        value = yaml.safe_load(raw) if raw else ""
    except yaml.YAMLError:
        value = raw
    return name, value


def course_notebooks(folder: Path = NOTEBOOKS_DIR) -> list[Path]:
    """The course in order: ``NN-topic.ipynb`` sorted by name."""
    found = sorted(p for p in folder.glob("[0-9][0-9]-*.ipynb"))
    if not found:
        raise LabkitError(f"no course notebooks in {folder}",
                          hint="run labkit from a clone of the course repository")
    return found


def find_notebook(name: Path | str, folder: Path = NOTEBOOKS_DIR) -> Path:
    """A notebook by path, or by course name (``01-flannel`` or ``01-flannel.ipynb``)."""
    path = Path(name)
    if path.is_file():
        return path
    for candidate in (folder / path.name, folder / f"{path.name}.ipynb"):
        if candidate.is_file():
            return candidate
    known = ", ".join(p.stem for p in folder.glob("[0-9][0-9]-*.ipynb"))
    raise LabkitError(f"no such notebook: {name}",
                      hint=f"give a path or a course notebook name ({known or 'none found'})")


def resolve_backend(backend: str) -> str:
    """What "auto" becomes here: the Lab's own rule (LABKIT_BACKEND, then Docker and kind)."""
    return choose_backend(backend)


class _Progress:
    """Throttled progress lines: one when a notebook starts and ends, and one per long cell."""

    def __init__(self, stream: TextIO, every: float) -> None:
        self.stream = stream
        self.every = every
        self.last = time.monotonic()

    def say(self, text: str) -> None:
        print(text, file=self.stream, flush=True)
        self.last = time.monotonic()

    def hooks(self, total: int) -> dict[str, Callable[..., None]]:
        def on_cell_start(cell: Any, cell_index: int, **_: Any) -> None:
            if time.monotonic() - self.last >= self.every:
                lines = (cell.get("source") or "").strip().splitlines()
                first = lines[0][:60] if lines else ""
                self.say(f"      ... cell {cell_index + 1}/{total}: {first}")

        return {"on_cell_start": on_cell_start}


def _failure(exc: Exception) -> tuple[str, int | None]:
    """One readable line naming the cell, and its 1-based index, from a papermill error."""
    cell_index = getattr(exc, "cell_index", None)
    if cell_index is None:
        return f"{type(exc).__name__}: {exc}".strip(), None
    source = (getattr(exc, "source", "") or "").strip().splitlines()
    first = next((ln for ln in source if ln.strip() and not ln.startswith("#")), "")
    evalue = str(getattr(exc, "evalue", "")).strip().replace("\n", " ")
    where = f"cell {cell_index + 1} (In [{getattr(exc, 'exec_count', '?')}]: {first[:60]!r})"
    return f"{where}: {getattr(exc, 'ename', 'Error')}: {evalue}", cell_index + 1


def run_course(
    notebooks: Sequence[Path | str] | None = None,
    *,
    backend: str = "auto",
    parameters: Mapping[str, Any] | None = None,
    output_dir: Path | str = "runs/latest",
    stream: TextIO | None = None,
    fail_fast: bool = False,
    timeout: float | None = 1800,
    progress_every: float = PROGRESS_EVERY_S,
) -> CourseReport:
    """Run ``notebooks`` (default: the whole course) and write the report; never raises for a
    failing notebook (the report says which one and where)."""
    stream = stream or sys.stderr
    paths = [find_notebook(p) for p in notebooks] if notebooks else course_notebooks()
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    resolved = resolve_backend(backend)
    params = {"BACKEND": resolved, **(parameters or {})}
    report = CourseReport(resolved, params)
    progress = _Progress(stream, progress_every)
    progress.say(f"labkit run: {len(paths)} notebook(s) on backend {resolved!r} -> {out}/")
    if resolved == "sim":
        progress.say("  (sim backend: cluster results are SIMULATED, no real cluster runs)")
    with _fresh_sim_home(out if resolved == "sim" else None):
        _run_all(paths, out, params, report, progress, fail_fast, timeout)
    passed = sum(n.status == "passed" for n in report.notebooks)
    progress.say(f"{passed}/{len(report.notebooks)} passed; report: {out / 'report.html'}, "
                 f"{out / 'report.json'}")
    return report


@contextlib.contextmanager
def _fresh_sim_home(out: Path | None) -> Iterator[None]:
    """On sim, the run gets its own empty LABKIT_HOME (simulated clusters live there).

    The notebooks of one run share it, as they share a kind cluster, but a run never
    starts from what an earlier run or a learner's session left behind, and leaves the
    learner's own simulated clusters alone.
    """
    if out is None:
        yield
        return
    home = out / "sim-home"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    before = os.environ.get("LABKIT_HOME")
    os.environ["LABKIT_HOME"] = str(home.resolve())  # kernels inherit it
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("LABKIT_HOME", None)
        else:
            os.environ["LABKIT_HOME"] = before


ENGINE = "labkit"


def register_engine() -> str:
    """Register (once) papermill's engine for the course and return its name.

    papermill's own engine writes the whole notebook (re-validating it) when each cell
    starts and ends: quadratic in the notebook's length. This one writes when the notebook
    starts, when a cell fails, and at the end (papermill then writes the final notebook
    too); its time-based autosave during long cells (on kind) is kept.
    """
    defer_rfc3987_syntax()
    import papermill.engines as engines  # lazy: heavy, optional (the 'lab' extra)

    if ENGINE in engines.papermill_engines._engines:
        return ENGINE

    class Manager(engines.NotebookExecutionManager):
        holding = False

        def save(self, **kwargs: Any) -> None:
            if not self.holding:
                super().save(**kwargs)

        def _held(self, step: Callable[..., None], *args: Any, **kwargs: Any) -> None:
            self.holding = True
            try:
                step(*args, **kwargs)
            finally:
                self.holding = False

        def cell_start(self, cell: Any, cell_index: int | None = None, **kwargs: Any) -> None:
            self._held(super().cell_start, cell, cell_index, **kwargs)

        def cell_complete(self, cell: Any, cell_index: int | None = None, **kwargs: Any
                          ) -> None:
            self._held(super().cell_complete, cell, cell_index, **kwargs)

        def cell_exception(self, cell: Any, cell_index: int | None = None, **kwargs: Any
                           ) -> None:
            super().cell_exception(cell, cell_index, **kwargs)
            self.save()

    class SparseSaves(engines.NBClientEngine):
        @classmethod
        def execute_notebook(cls, nb: Any, kernel_name: str, output_path: str | None = None,
                             progress_bar: bool = True, log_output: bool = False,
                             autosave_cell_every: int = 30, **kwargs: Any) -> Any:
            manager = Manager(nb, output_path=output_path, progress_bar=progress_bar,
                              log_output=log_output, autosave_cell_every=autosave_cell_every)
            manager.notebook_start()
            try:
                cls.execute_managed_notebook(manager, kernel_name, log_output=log_output,
                                             **kwargs)
            finally:
                manager.cleanup_pbar()
                manager.notebook_complete()
            return manager.nb

    engines.papermill_engines.register(ENGINE, SparseSaves)
    return ENGINE


def _run_all(paths: list[Path], out: Path, params: dict[str, Any], report: CourseReport,
             progress: _Progress, fail_fast: bool, timeout: float | None) -> None:
    engine = register_engine()
    import papermill  # lazy: heavy, optional (the 'lab' extra)

    from labkit.course.kernel import QuietShutdownKernelManager  # lazy: jupyter_client, heavy

    for i, path in enumerate(paths, 1):
        target = out / path.name
        progress.say(f"[{i}/{len(paths)}] {path.stem} ...")
        started = time.monotonic()
        error, cell = None, None
        total = _cell_count(path) + 1  # papermill adds the injected-parameters cell
        try:
            papermill.execute_notebook(
                str(path), str(target), parameters=_declared(path, params),
                kernel_name="python3", engine_name=engine,
                progress_bar=False, cwd=str(path.parent.resolve()),
                execution_timeout=timeout, **progress.hooks(total),
                # ipykernel warns on every start about its TCP transport; keep logs readable
                extra_arguments=["--IPKernelApp.log_level=ERROR"],
                # no SIGINT at shutdown: it made ipykernel log "KeyboardInterrupt caught in
                # kernel" after a notebook that passed (labkit/course/kernel.py)
                kernel_manager_class=QuietShutdownKernelManager,
            )
        except Exception as exc:  # noqa: BLE001 - any failure is reported, not raised
            error, cell = _failure(exc)
        seconds = round(time.monotonic() - started, 2)
        status = "failed" if error else "passed"
        page = render_html(target)
        report.notebooks.append(NotebookResult(path.stem, status, seconds, error, cell,
                                               str(target), str(page) if page else ""))
        progress.say(f"[{i}/{len(paths)}] {path.stem} {status.upper()} in {seconds:.1f}s"
                     + (f"\n      {error}" if error else ""))
        _write(report, out)
        if error and fail_fast:
            break


def render_html(notebook: Path) -> Path | None:
    """``NAME.html`` next to an executed notebook (nbconvert's lab template), so the report
    links to pages a browser shows; None when the notebook was not written (it failed to
    start) or cannot be rendered."""
    if not notebook.is_file():
        return None
    import nbformat  # lazy: loads jsonschema; every labkit command imports this module
    from nbconvert import HTMLExporter  # lazy: slow to import, needed for the report only

    try:
        body, _ = HTMLExporter(template_name="lab").from_notebook_node(
            nbformat.read(notebook, as_version=4))
    except Exception:  # noqa: BLE001 - the .ipynb is still linked; a page is a convenience
        return None
    page = notebook.with_suffix(".html")
    page.write_text(body, encoding="utf-8")
    return page


def _declared(path: Path, params: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters this notebook's `parameters` cell declares (BACKEND always goes through).

    A course-wide ``-p SOLVE_EXERCISES=true`` must not make papermill warn on the
    notebooks that have no exercises.
    """
    import papermill  # lazy: heavy, optional (the 'lab' extra)

    try:
        declared = set(papermill.inspect_notebook(str(path)))
    except Exception:  # noqa: BLE001 - an unreadable notebook fails properly when executed
        return dict(params)
    return {k: v for k, v in params.items() if k in declared or k == "BACKEND"}


def _cell_count(path: Path) -> int:
    try:
        return len(json.loads(path.read_text()).get("cells", []))
    except (OSError, json.JSONDecodeError):
        return 0


def _write(report: CourseReport, out: Path) -> None:
    (out / "report.json").write_text(report.to_json() + "\n")
    (out / "report.html").write_text(report.to_html())
