"""What a learner sees in Jupyter, checked in a real browser (headless Chromium).

The HTML that labkit's results emit (matrix, status, self-check, capture) is
put on one page the way Jupyter puts outputs, and read back through the DOM:
the cell that differs is the one outlined, its tooltip explains it, and the
simulated label is visible. Skips when Chromium or Playwright is missing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from labkit import Lab
from labkit.course.room import summarize
from labkit.environments import environments_dir
from labkit.labs import flannel as checks
from tests.browser.chromium import ARGS, CHROMIUM, MARKS

playwright = pytest.importorskip("playwright.sync_api")
pytestmark = MARKS


@pytest.fixture(scope="module")
def page() -> Iterator[object]:
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser.new_page()
        browser.close()


@pytest.fixture
def lab01() -> Lab:
    lab = Lab("flannel", backend="sim")
    lab.up()
    lab.install_cni("flannel")
    lab.deploy_shop()
    lab.apply(environments_dir() / "policies" / "shop-db-from-api-only.yaml")
    return lab


def show(page: object, *fragments: str, tmp: Path) -> None:
    body = "".join(f'<div class="output">{f}</div>' for f in fragments)
    html = tmp / "outputs.html"
    html.write_text(f"<!doctype html><meta charset=utf-8><body>{body}</body>")
    page.goto(html.as_uri())  # type: ignore[attr-defined]
    page.screenshot(path=str(tmp / "outputs.png"), full_page=True)  # type: ignore[attr-defined]


def test_matrix_outlines_exactly_the_cells_flannel_gets_wrong(page, lab01, tmp_path) -> None:
    matrix = lab01.matrix(title="lab 01")
    show(page, matrix._repr_html_(), tmp=tmp_path)
    outlined = page.locator("td").evaluate_all(
        "cells => cells.filter(c => getComputedStyle(c).borderTopWidth === '3px')"
        ".map(c => [c.textContent, c.title])")
    assert len(outlined) == len(matrix.diff()) == 1
    text, tooltip = outlined[0]
    assert text == "✗ → ✓"  # expected ✗, observed ✓
    assert "expected denied (" in tooltip and "observed allowed" in tooltip
    assert "no rule admits shop-web/frontend" in tooltip
    assert page.get_by_text("simulated", exact=True).first.is_visible()
    rows = page.locator("table tr").count()
    assert rows == 1 + len(matrix.sources)  # header row + one per source
    # learner-facing labels, full pod names in the tooltip; every cell left-aligned
    headers = page.locator("table th").evaluate_all("hs => hs.map(h => [h.textContent, h.title])")
    assert ["frontend", matrix.sources[0]] in headers or any(t == "frontend" for t, _ in headers)
    assert {t for t, _ in headers if t} == {"frontend", "api-1", "api-2", "db"}
    aligns = page.locator("td").evaluate_all("cs => cs.map(c => getComputedStyle(c).textAlign)")
    assert set(aligns) == {"left"}
    # the reason of the differing cell is on the page, not only in a hover title
    assert page.get_by_text("frontend → db TCP/8080: expected denied").is_visible()


def test_status_and_checks_show_their_verdict_and_label(page, lab01, tmp_path) -> None:
    status = lab01.status()
    check = checks.policy_ignored(lab01, "shop-web/frontend", "shop-api/db")
    show(page, status._repr_html_(), check._repr_html_(), tmp=tmp_path)
    body = page.inner_text("body")
    assert "Ready" in body and "NotReady" not in body
    assert "PASSED" in body and "expected blocked, observed open" in body
    assert page.get_by_text("SIMULATED", exact=False).first.is_visible()
    widths = page.locator("table").evaluate_all(
        "ts => ts.map(t => t.getBoundingClientRect().width)")
    assert all(w > 0 for w in widths)


def test_capture_renders_the_vxlan_packets(page, lab01, tmp_path) -> None:
    frontend = lab01.pods("shop-web")[0]
    remote = next(p for p in lab01.pods("shop-api") if p.node != frontend.node)
    capture = lab01.capture(frontend.key, remote.key, 8080)
    assert not capture.empty
    show(page, capture._repr_html_(), tmp=tmp_path)
    cells = page.locator("td").all_inner_texts()
    assert cells.count("UDP/8472") == len(capture.packets) > 0  # every packet: outer VXLAN
    assert frontend.ip in page.inner_text("body")  # the inner packet shows the pod address
    assert "simulated" in page.inner_text("body").lower()


def test_room_summary_page_reads_as_a_grid_and_a_fix_list(page, tmp_path) -> None:
    """`labkit doctor summarize`'s page in the browser: a red cell for the failing check, and
    its fix shown as code (no raw backticks)."""
    report = {"host": "laptop-7", "ok": False, "backend": "sim", "checks": [
        {"name": "docker", "status": "ok", "detail": "Docker 28", "fix": ""},
        {"name": "kind", "status": "fail", "detail": "not installed",
         "fix": "`labkit tools install kind` (the pinned v0.33.0)"}]}
    (tmp_path / "laptop-7.json").write_text(json.dumps(report))
    page_file = tmp_path / "room.html"
    page_file.write_text(summarize([tmp_path / "laptop-7.json"]).to_html_page())
    page.goto(page_file.as_uri())
    page.screenshot(path=str(tmp_path / "room.png"), full_page=True)
    failing = page.locator("td.fail")
    assert failing.count() == 1 and failing.inner_text() == "FAIL"
    red = failing.evaluate("td => getComputedStyle(td).backgroundColor")
    assert red == "rgb(255, 235, 233)"
    assert page.locator("code").first.inner_text() == "labkit tools install kind"
    assert "`" not in page.inner_text("body")
