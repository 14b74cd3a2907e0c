"""Progress for long waits: a widget bar in Jupyter, plain throttled lines under papermill,
and the latest line of a long command (kind create cluster, helm --wait) as it runs."""

from __future__ import annotations

import os
import sys
from typing import Any

import pytest

from labkit.course import runner
from labkit.errors import ToolError
from labkit.progress import Progress
from labkit.tools import process


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_widget_bar_is_displayed_once_and_updated_in_place(monkeypatch, capsys) -> None:
    import IPython.display

    shown: list[Any] = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, **kw: shown.append(obj))
    clock = Clock()
    p = Progress("pulling images", total=3, mode="widget", interval=1.0, clock=clock)
    for done in (1, 2, 3):
        clock.now += 2
        p.update("pulled", done=done)
    [box] = shown  # one widget, changed in place, never a new output per update
    bar, label = box.children
    assert type(bar).__name__ == "IntProgress" and bar.max == 3 and bar.value == 3
    assert label.value == "pulling images: 3/3 pulled [6s]"
    p.finish()
    assert bar.bar_style == "success" and label.value == "pulling images: done (6s)"
    assert capsys.readouterr().out == "pulling images: done (6s)\n"  # kept as text too


def test_widget_without_a_total_fills_at_the_end_and_shows_a_failure(monkeypatch) -> None:
    import IPython.display

    shown: list[Any] = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, **kw: shown.append(obj))
    with pytest.raises(RuntimeError), Progress("cluster cni-lab", mode="widget") as p:
        p.update("creating")
        bar = shown[0].children[0]
        assert bar.value == 0 and bar.bar_style == "info"
        raise RuntimeError("boom")
    assert bar.bar_style == "danger" and shown[0].children[1].value.startswith(
        "cluster cni-lab: failed")


def test_updates_are_throttled(monkeypatch) -> None:
    import io

    out, clock = io.StringIO(), Clock()
    p = Progress("waiting", mode="plain", interval=5, stream=out, clock=clock)
    for i in range(100):  # a poll loop: 100 updates in 10 seconds
        clock.now = i / 10
        p.update(f"{i} pods")
    assert len(out.getvalue().splitlines()) == 2  # at 0s and at 5s


def test_mode_follows_the_kernel_and_the_environment(monkeypatch) -> None:
    monkeypatch.delenv("LABKIT_PROGRESS", raising=False)
    monkeypatch.setattr("labkit.progress._in_kernel", lambda: True)
    assert Progress("t").mode == "widget"
    monkeypatch.setattr("labkit.progress._has_widgets", lambda: False)
    assert Progress("t").mode == "jupyter"
    monkeypatch.setenv("LABKIT_PROGRESS", "plain")
    assert Progress("t").mode == "plain"


def test_labkit_run_executes_notebooks_with_plain_progress(monkeypatch, tmp_path) -> None:
    """The kernels papermill starts inherit it: no widget where no browser shows one."""
    seen: list[str | None] = []
    monkeypatch.delenv("LABKIT_PROGRESS", raising=False)
    monkeypatch.setattr(runner, "_run_all",
                        lambda *a, **k: seen.append(os.environ.get("LABKIT_PROGRESS")))
    monkeypatch.setattr(runner, "course_notebooks", lambda: [])
    runner.run_course(backend="sim", output_dir=tmp_path, stream=sys.stderr)
    assert seen == ["plain"]
    assert "LABKIT_PROGRESS" not in os.environ  # restored afterwards


def test_a_long_command_reports_its_latest_line_while_it_runs() -> None:
    lines: list[str] = []
    script = "echo 'Creating cluster' >&2; sleep 0.7; echo ' ✓ Preparing nodes' >&2; sleep 0.7"
    result = process.run(["sh", "-c", script], timeout=10, on_output=lines.append)
    assert lines == ["Creating cluster", "✓ Preparing nodes"]
    assert result.returncode == 0 and "Preparing nodes" in result.stderr


def test_a_watched_command_still_times_out_and_fails_like_run() -> None:
    with pytest.raises(ToolError, match="did not finish within 1s"):
        process.run(["sh", "-c", "echo started; sleep 30"], timeout=1, on_output=lambda _: None)
    with pytest.raises(ToolError, match="exit code 3: bad") as err:
        process.run(["sh", "-c", "echo bad >&2; exit 3"], timeout=5, on_output=lambda _: None)
    assert err.value.returncode == 3
