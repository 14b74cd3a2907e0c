"""The course runner behind ``labkit run`` and ``make run``.

Executes notebooks in order with papermill, passing parameters (BACKEND and any
``-p NAME=VALUE``), and writes into one output folder the executed notebooks,
``report.json`` (for programs) and ``report.html`` (for people). A failing
notebook does not stop the run unless asked: later notebooks build their own
clusters, and a full report is worth more to an instructor than the first error.

No report lies and nothing is lost:

- ``BACKEND`` comes from ``--backend`` only (``-p BACKEND=...`` is refused), so the
  report's backend is the one the notebooks ran on;
- the report says ``"state": "running"`` from the start, and ``"interrupted"`` when
  the run is stopped (Ctrl-C), so a stale "4/4 passed" never survives a new run;
- an output folder that holds (or is) a source notebook is refused: executed copies
  would overwrite the learner's own notebooks;
- one run at a time per output folder (an ``fcntl.flock`` on ``.labkit-run.lock``);
- JSON is strict (no NaN), and report.html links are relative, quoted and escaped.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from labkit import inputs
from labkit.display import Table, escape, simulated_banner
from labkit.errors import LabkitError
from labkit.imports import defer_rfc3987_syntax
from labkit.lab import choose_backend
from labkit.tools.files import write_atomic

NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"
#: A cell that runs longer than this gets a progress line (throttled), so papermill logs
#: stay short on sim and a learner on kind still sees that something is happening.
PROGRESS_EVERY_S = 10.0


@dataclass
class NotebookResult:
    name: str
    status: str  # "passed" | "failed" | "interrupted"
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
    #: "running" while notebooks execute, then "finished" or "interrupted".
    state: str = "finished"

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
            "state": self.state,
            "parameters": dict(self.parameters),
            "notebooks": [asdict(n) for n in self.notebooks],
        }

    def to_json(self) -> str:
        return inputs.dumps(self.as_dict(), indent=2)

    def table(self) -> Table:
        table = Table(("notebook", "status", "seconds", "error"),
                      title=f"CNI Lab course run (backend: {self.backend})")
        for n in self.notebooks:
            table.add(n.name, n.status, f"{n.seconds:.1f}", n.error or "")
        passed = sum(n.status == "passed" for n in self.notebooks)
        table.notes.append(f"{passed}/{len(self.notebooks)} notebooks passed"
                           + ("" if self.state == "finished" else
                              f" so far: the run is {self.state.upper()}"))
        if self.simulated:
            table.notes.append(simulated_banner(True, "All cluster results in this run"))
        return table

    def to_text(self) -> str:
        return self.table().to_text()

    def _repr_html_(self) -> str:
        return self.table()._repr_html_()

    def to_html(self) -> str:
        links = "".join(
            "<li>" + (f'<a href="{_href(n.html)}">{escape(n.name)}</a>' if n.html
                      else escape(n.name))
            + f' ({escape(n.status)}; <a href="{_href(n.output)}">.ipynb</a>)</li>'
            for n in self.notebooks if n.output
        )
        return (
            "<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>CNI Lab run: {escape(self.backend)}</title></head>"
            "<body style='font-family:sans-serif'>"
            f"{self._repr_html_()}<h4>Executed notebooks</h4><ul>{links}</ul>"
            f"<h4>Parameters</h4><pre>{escape(inputs.dumps(self.parameters, indent=2))}</pre>"
            "</body></html>"
        )


def _href(path: str) -> str:
    """A link to a file of the output folder: "./" and percent-encoding make it relative
    whatever the file is called (a notebook named "javascript:..." stays a file name)."""
    return f"./{escape(urllib.parse.quote(Path(path).name))}"


def parse_parameter(text: str) -> tuple[str, Any]:
    """``NAME=VALUE`` from the command line; VALUE is read as YAML (so 3, true, [a] work).

    The value must be JSON (papermill writes it into the notebook, labkit into report.json):
    NaN and infinities are refused; a YAML date or anything else JSON has no type for is
    passed as the text that was typed.
    """
    name, sep, raw = text.partition("=")
    if not sep or not name.isidentifier():
        raise LabkitError(
            f"bad parameter {inputs.quote(text)}",
            hint="write parameters as NAME=VALUE, e.g. -p SOLVE_EXERCISES=true",
        )
    if name == "BACKEND":
        raise LabkitError("-p BACKEND is not a parameter: the backend comes from --backend",
                          hint="use --backend kind or --backend sim")
    try:
        value = inputs.yaml_document(raw, "-p") if raw else ""
    except LabkitError:
        value = raw
    try:
        inputs.dumps(value)
    except TypeError:  # a date, a set ...: JSON has no such type
        value = raw
    except ValueError as exc:
        raise LabkitError(f"-p {name}={inputs.quote(raw)[1:-1]}: {exc}",
                          hint="NaN and infinities are not JSON; pass a number or a string "
                          "(quoted: -p NAME='\"nan\"')") from exc
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


def checked_notebook(path: Path) -> Path:
    """``path``, or LabkitError when it is not a Jupyter notebook (before anything runs)."""
    data = inputs.json_value(inputs.read_text(path, what="notebook"), str(path),
                             what="notebook")
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list) \
            or not isinstance(data.get("metadata", {}), dict):
        raise LabkitError(f"{path}: not a Jupyter notebook (no list of cells)",
                          hint="name an .ipynb file saved by Jupyter")
    return path


def check_output_dir(out: Path, sources: Sequence[Path]) -> Path:
    """The output folder, created; LabkitError when it cannot hold the run's results or
    when it holds (or is) the folder of a source notebook, whose copy would overwrite it."""
    resolved = out.resolve()
    for src in sources:
        if src.resolve().is_relative_to(resolved):
            raise LabkitError(
                f"--output-dir {out} contains the source notebook {src}: the executed copies "
                "would overwrite your notebooks",
                hint="write results elsewhere, e.g. --output-dir runs/latest")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:
        raise LabkitError(f"--output-dir {out} is a file, not a folder",
                          hint="name a folder (it is created if missing)") from exc
    except OSError as exc:
        raise LabkitError(f"cannot create --output-dir {out}: {exc.strerror or exc}",
                          hint="name a folder you can write to, e.g. runs/latest") from exc
    return out


@contextlib.contextmanager
def output_lock(out: Path) -> Iterator[None]:
    """One ``labkit run`` per output folder: a second one fails at once, naming the folder."""
    try:
        fd = os.open(out / ".labkit-run.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise LabkitError(f"cannot write to --output-dir {out}: {exc.strerror or exc}",
                          hint="name a folder you can write to, e.g. runs/latest") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise LabkitError(f"another labkit run is writing to {out}",
                              hint="wait for it to finish, or use another --output-dir") from exc
        yield
    finally:
        os.close(fd)


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
    if parameters and "BACKEND" in parameters:
        raise LabkitError("BACKEND is not a parameter: the backend comes from --backend",
                          hint="use --backend kind or --backend sim")
    paths = [checked_notebook(p) for p in
             ([find_notebook(n) for n in notebooks] if notebooks else course_notebooks())]
    out = check_output_dir(Path(output_dir), paths)
    resolved = resolve_backend(backend)
    params = {"BACKEND": resolved, **(parameters or {})}
    report = CourseReport(resolved, params, state="running")
    with output_lock(out):
        _write(report, out)  # "running": the previous run's report is gone from now on
        progress = _Progress(stream, progress_every)
        progress.say(f"labkit run: {len(paths)} notebook(s) on backend {resolved!r} -> {out}/")
        if resolved == "sim":
            progress.say("  (sim backend: cluster results are SIMULATED, no real cluster runs)")
        try:
            # No browser shows a widget in a papermill run: long waits print throttled lines.
            with _fresh_sim_home(out if resolved == "sim" else None), \
                    _environ("LABKIT_PROGRESS", os.environ.get("LABKIT_PROGRESS") or "plain"):
                _run_all(paths, out, params, report, progress, fail_fast, timeout)
        except BaseException:
            report.state = "interrupted"
            _write(report, out)
            raise
        report.state = "finished"
        _write(report, out)
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
    with _environ("LABKIT_HOME", str(home.resolve())):  # kernels inherit it
        yield


@contextlib.contextmanager
def _environ(name: str, value: str) -> Iterator[None]:
    """``name=value`` in this process's environment (so in the kernels it starts), then back."""
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


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
                # ipykernel warns on every start about its TCP transport, and logs a traceback
                # when Ctrl-C closes its sockets mid-cell; a kernel that dies is reported by
                # papermill (DeadKernelError) anyway: keep logs readable
                extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
                # no SIGINT at shutdown: it made ipykernel log "KeyboardInterrupt caught in
                # kernel" after a notebook that passed (labkit/course/kernel.py)
                kernel_manager_class=QuietShutdownKernelManager,
            )
        except Exception as exc:  # noqa: BLE001 - any failure is reported, not raised
            error, cell = _failure(exc)
        except KeyboardInterrupt:
            report.notebooks.append(NotebookResult(
                path.stem, "interrupted", round(time.monotonic() - started, 2),
                "interrupted (Ctrl-C) while running", None, str(target)))
            raise
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
    """Both reports, each replaced atomically (a reader never sees half of one)."""
    try:
        write_atomic(out / "report.json", report.to_json() + "\n")
        write_atomic(out / "report.html", report.to_html())
    except OSError as exc:
        raise LabkitError(f"cannot write the report to {out}: {exc.strerror or exc}",
                          hint="name a folder you can write to, e.g. runs/latest") from exc
