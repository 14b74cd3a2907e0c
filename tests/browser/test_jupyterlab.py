"""The course in JupyterLab, in a real browser: Playwright drives Debian's Chromium (never a
downloaded browser) against `make lab` on a free loopback port.

For each lab: open the notebook through the file browser, Run > Run All Cells, wait until
every code cell has run and the kernel is idle, save, then assert: no error output (in the
page and in the saved file), the matrix rendered as a table whose cells carry the expected
verdict classes, the progress widgets rendered (not "Loading widget..."), and no JavaScript
console error. Screenshots go to runs/browser/ (CI keeps them as an artifact).
"""

from __future__ import annotations

import contextlib
import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.browser.chromium import ARGS, CHROMIUM, MARKS
from tests.browser.jupyterlab import ROOT, RunningLab, make_lab

playwright = pytest.importorskip("playwright.sync_api")
pytestmark = MARKS
ARTIFACTS = ROOT / "runs" / "browser"
#: Labs run in the browser: 01 now; 05 (L7 policies) as soon as it exists.
LABS = [n for n in ("01-flannel", "05-l7-policies") if (ROOT / "notebooks" / f"{n}.ipynb").exists()]
CELL_CLASSES = {"allowed", "dropped", "http-403", "unobserved"}


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with make_lab(tmp_path_factory.mktemp("jupyterlab")) as lab:
        yield lab


def _code_cells(path: Path) -> int:
    return sum(c["cell_type"] == "code" for c in json.loads(path.read_text())["cells"])


def _saved(lab: RunningLab, name: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{lab.base}/api/contents/{name}?token={lab.token}",
                                timeout=30) as r:
        return dict(json.load(r)["content"])


@pytest.mark.parametrize("name", LABS)
def test_lab_runs_clean_in_jupyterlab(lab_server: RunningLab, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    console: list[str] = []
    cells = _code_cells(lab_server.root / f"{name}.ipynb")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: console.append(f"page error: {e}"))
        try:
            # a workspace of its own, reset: JupyterLab would otherwise restore the notebook an
            # earlier test left open, and its (hidden) cells would answer the locators below
            page.goto(f"{lab_server.base}/lab/workspaces/{name}?reset&token={lab_server.token}")
            page.locator(".jp-DirListing-item", has_text=f"{name}.ipynb").dblclick(
                timeout=60_000)
            page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=60_000)
            # JupyterLab sometimes asks which kernel to start (seen here when the kernel list
            # arrived after the notebook opened): a learner accepts the proposed Python 3.
            select = page.locator(".jp-Dialog").get_by_role("button", name="Select")
            with contextlib.suppress(playwright.TimeoutError):
                select.click(timeout=5_000)
            page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for(
                timeout=60_000)  # the kernel started
            page.get_by_role("menuitem", name="Run", exact=True).click()
            page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
            # a fresh kernel numbers the cells it runs 1, 2, ...: the count reaches the number
            # of code cells when Run All got through all of them (collapsed inputs show no
            # prompt, so the highest number is what counts); then the kernel is idle again
            page.wait_for_function(
                """n => Math.max(0, ...[...document.querySelectorAll(
                        '.jp-CodeCell .jp-InputPrompt')].map(
                        p => parseInt((p.textContent.match(/\\[(\\d+)\\]/) || [0, 0])[1])))
                        >= n""",
                arg=cells, timeout=180_000)
            page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for(
                timeout=60_000)
            page.keyboard.press("Control+s")
            page.wait_for_timeout(1500)
            page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

            text = page.locator(".jp-Notebook").inner_text()
            assert "Traceback" not in text, text[text.find("Traceback") - 500:][:3000]
            assert "Loading widget" not in text
            widgets = page.locator(".jp-Notebook .widget-hprogress, .jp-Notebook "
                                   ".jupyter-widgets .widget-progress")
            assert widgets.count() > 0, "no progress widget rendered"
            matrix_cells = page.locator(".jp-Notebook .labkit-matrix table td")
            classes = [set((c or "").split()) for c in
                       matrix_cells.evaluate_all("tds => tds.map(td => td.className)")]
            assert classes and all(c & CELL_CLASSES for c in classes), classes[:5]
            # the notebook scrolls inside the page: keep pictures of what was checked
            widgets.first.scroll_into_view_if_needed()
            widgets.first.screenshot(path=str(ARTIFACTS / f"{name}-progress-widget.png"))
            matrix = page.locator(".jp-Notebook .labkit-matrix").last
            matrix.scroll_into_view_if_needed()
            matrix.screenshot(path=str(ARTIFACTS / f"{name}-matrix.png"))
            if name == "01-flannel":  # Flannel ignores the policy: observed differs somewhere
                assert any("differs" in c for c in classes)
                assert any("allowed" in c for c in classes)
        except Exception:
            page.screenshot(path=str(ARTIFACTS / f"{name}-failed.png"), full_page=True)
            raise
        finally:
            browser.close()

    saved = _saved(lab_server, f"{name}.ipynb")
    outputs = [o for c in saved["cells"] if c["cell_type"] == "code" for o in c["outputs"]]
    errors = [o for o in outputs if o["output_type"] == "error"]
    assert not errors, [f"{e['ename']}: {e['evalue']}" for e in errors]
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {})
               for o in outputs)
    assert console == [], console
