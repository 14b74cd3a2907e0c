"""Progress for long waits: a bar in Jupyter, one updating line in a terminal, plain lines
in logs.

Modes, picked once per report:

- ``widget``: in a Jupyter kernel with ipywidgets, a progress bar and a label, updated in
  place (the widget lives in the notebook; a saved notebook keeps the closing line as text);
- ``jupyter``: in a kernel without ipywidgets, one text display updated in place;
- ``line``: a terminal, one line rewritten in place;
- ``plain``: anything else (a pipe, CI logs, papermill), one line per update.

Throttled so that papermill (which records every output) and CI logs do not drown: at
most one update per ``interval`` seconds, and only when the text changed.
``LABKIT_PROGRESS=off|plain|line|jupyter|widget`` forces a mode; ``labkit run`` sets
``plain`` for the notebooks it executes (no browser shows widgets there).

>>> with Progress("waiting for nodes", stream=io.StringIO()) as p:  # doctest: +SKIP
...     p.update("1/3 Ready")
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import IO, Any

Clock = Callable[[], float]


MODES = ("off", "plain", "line", "jupyter", "widget")


def _has_widgets() -> bool:
    return importlib.util.find_spec("ipywidgets") is not None


def _in_kernel() -> bool:
    """True inside a Jupyter kernel (also under papermill, which runs one)."""
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()
    except Exception:  # noqa: BLE001 - any failure means "not a kernel"
        return False
    return ip is not None and getattr(ip, "kernel", None) is not None


class Progress:
    """A titled progress report; use as a context manager, call ``update`` as work advances."""

    def __init__(self, title: str, *, total: int | None = None, interval: float = 1.0,
                 stream: IO[str] | None = None, mode: str | None = None,
                 clock: Clock = time.monotonic) -> None:
        self.title = title
        self.total = total
        self.interval = interval
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self.mode = mode or self._pick_mode(stream)
        self.started = clock()
        self.last_text = ""
        self.last_emit = float("-inf")
        self.emitted = 0
        self.done: int | None = None
        self._handle: Any = None
        self._bar: Any = None

    def _pick_mode(self, stream: IO[str] | None) -> str:
        env = os.environ.get("LABKIT_PROGRESS", "").lower()
        if env in MODES:
            return env
        if stream is None and _in_kernel():
            return "widget" if _has_widgets() else "jupyter"
        target = stream if stream is not None else sys.stderr
        return "line" if getattr(target, "isatty", lambda: False)() else "plain"

    # -- public ------------------------------------------------------------------------
    def update(self, message: str = "", done: int | None = None, *, force: bool = False) -> None:
        text = self._text(message, done)
        now = self.clock()
        if text == self.last_text and not force:
            return
        if not force and now - self.last_emit < self.interval:
            return
        self._emit(text)
        self.last_text, self.last_emit = text, now

    def finish(self, message: str = "done") -> None:
        elapsed = self.clock() - self.started
        self._emit(f"{self.title}: {message} ({elapsed:.0f}s)", final=True,
                   failed=message.startswith(("failed", "gave up")))

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.finish("failed" if exc is not None else "done")

    # -- internals ---------------------------------------------------------------------
    def _text(self, message: str, done: int | None) -> str:
        if done is not None:
            self.done = done
        count = ""
        if done is not None:
            count = f" {done}/{self.total}" if self.total else f" {done}"
        elapsed = self.clock() - self.started
        return f"{self.title}:{count} {message} [{elapsed:.0f}s]".replace("  ", " ")

    def _emit(self, text: str, *, final: bool = False, failed: bool = False) -> None:
        if self.mode == "off":
            return
        self.emitted += 1
        if self.mode == "widget":
            self._emit_widget(text, final, failed)
        elif self.mode == "jupyter":
            self._emit_jupyter(text)
        elif self.mode == "line":
            self.stream.write("\r\033[K" + text + ("\n" if final else ""))
            self.stream.flush()
        else:
            self.stream.write(text + "\n")
            self.stream.flush()

    def _emit_jupyter(self, text: str) -> None:
        from IPython.display import display  # lazy: only inside a kernel

        bundle = {"text/plain": text}
        if self._handle is None:
            self._handle = display(bundle, raw=True, display_id=True)
        else:
            self._handle.update(bundle, raw=True)


    def _emit_widget(self, text: str, final: bool, failed: bool) -> None:
        """One bar and one label, displayed once and then changed in place. With a total
        the bar fills as ``done`` grows; without one it shows the wait is still running
        (bar_style info) and fills when it ends."""
        import ipywidgets as widgets  # lazy: only inside a kernel
        from IPython.display import display  # lazy: only inside a kernel

        if self._bar is None:
            bar = widgets.IntProgress(value=0, min=0, max=self.total or 1,
                                      description=self.title[:30], bar_style="info",
                                      style={"description_width": "initial"})
            label = widgets.Label(value=text)
            self._bar = (bar, label)
            display(widgets.HBox([bar, label]))
        bar, label = self._bar
        label.value = text
        if self.total and self.done is not None:
            bar.value = min(self.done, self.total)
        if final:
            bar.value = bar.max if not failed else bar.value
            bar.bar_style = "danger" if failed else "success"
            print(text)  # the lasting record, also in a saved or papermill-run notebook


def wait_until(check: Callable[[], tuple[bool, str]], *, title: str, timeout: float,
               poll: float = 2.0, progress: Progress | None = None,
               sleep: Callable[[float], None] = time.sleep, clock: Clock = time.monotonic
               ) -> str:
    """Call ``check`` until it returns ``(True, message)``; raise TimeoutError after ``timeout``.

    ``check`` returns whether the wait is over and a one-line status for the progress line.
    """
    report = progress or Progress(title, clock=clock)
    deadline = clock() + timeout
    while True:
        done, message = check()
        report.update(message)
        if done:
            if progress is None:
                report.finish(message)
            return message
        if clock() >= deadline:
            if progress is None:
                report.finish(f"gave up after {timeout:.0f}s: {message}")
            raise TimeoutError(message)
        sleep(poll)
