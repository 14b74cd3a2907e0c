"""A LabkitError in a notebook cell is one FAILED callout, never a traceback; the cell fails."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from labkit.errors import CheckFailed, ManifestError

ANSI = "\x1b["


def test_render_traceback_is_the_message_and_the_hint() -> None:
    lines = CheckFailed("exercise 1: your policy also lets shop-web/debug reach the API",
                        hint="put both selectors in ONE from item")._render_traceback_()
    text = "\n".join(lines)
    assert lines[0].startswith(f"{ANSI}1;31mFAILED")
    assert "shop-web/debug" in lines[0] and "ONE from item" in text
    assert "Traceback" not in text and "(CheckFailed)" in text


@pytest.mark.notebooks
def test_a_failing_check_shows_one_callout_and_still_fails_the_cell(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "from labkit.errors import ManifestError\n"
        "def load():\n"
        "    try:\n"
        "        raise ValueError('yaml: line 3')\n"
        "    except ValueError as exc:\n"
        "        raise ManifestError('MY_POLICY is not YAML', source='<text>', field='line 3',\n"
        "                            hint='indent with spaces') from exc\n"
        "load()")]
    client = NotebookClient(nb, timeout=120, kernel_name="python3")
    with pytest.raises(CellExecutionError):  # papermill and nbval see the failure
        client.execute()
    (error,) = [o for o in nb.cells[0].outputs if o["output_type"] == "error"]
    shown = "\n".join(error["traceback"])
    assert error["ename"] == "ManifestError"
    assert "FAILED" in shown and "MY_POLICY is not YAML" in shown and "indent with spaces" in shown
    assert "Traceback" not in shown and "ValueError" not in shown and "load()" not in shown
    assert ManifestError.__name__ in shown
