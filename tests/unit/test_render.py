"""The shared rendering plumbing: text is str and repr, JSON is as_dict, tables align."""

from __future__ import annotations

import json
from dataclasses import dataclass

from labkit.display.render import Rendered, html_report, html_table, text_report, text_table


@dataclass(repr=False)
class _Result(Rendered):
    name: str

    def to_text(self) -> str:
        return f"result {self.name}"

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name}


def test_text_is_str_and_repr_and_json_is_as_dict() -> None:
    r = _Result("a<b")
    assert str(r) == repr(r) == "result a<b"
    assert r.to_json() == '{\n  "name": "a<b"\n}'
    assert json.loads(r.to_json(indent=None)) == {"name": "a<b"}


def test_tables_and_reports() -> None:
    assert text_table(["A", "LONG"], [["xyz", "1"]], gap=" ") == "A   LONG\nxyz 1"
    assert html_table(["<h>"], [["run `kind` <now>"]]) == (
        '<table><thead><tr><th style="text-align:left;padding:2px 8px">&lt;h&gt;</th></tr>'
        '</thead><tbody><tr><td style="text-align:left;vertical-align:top;padding:2px 8px">'
        "run <code>kind</code> &lt;now&gt;</td></tr></tbody></table>")
    assert text_report("head", ["body"], ["note"], "sim") == "head\nbody\nnote\nsim"
    assert text_report("head", [], [], "") == "head"
    report = html_report("a&b", ["<p>x</p>"], ["n<"], "s")
    assert report.startswith("<p><b>a&amp;b</b></p>\n<p>x</p>\n<p>n&lt;</p>\n<p><span")
    assert ">simulated</span> <small>s</small></p>" in report and "<i>" not in report


def test_doctor_html_shows_commands_as_code_not_raw_backticks() -> None:
    from labkit.course.doctor import Check, DoctorReport

    report = DoctorReport([Check("docker", "fail", "not reachable",
                                 "start Docker: `sudo systemctl start docker`")], "sim", "x")
    page = report._repr_html_()
    assert "<code>sudo systemctl start docker</code>" in page and "`" not in page
    assert 'style="text-align:left' in page


def test_one_simulated_callout_per_notebook() -> None:
    from labkit import Lab

    banner = Lab("flannel", backend="sim").banner()
    page = banner._repr_html_()
    assert page.startswith('<div style="background:#ddf4ff') and "<b>SIMULATED</b>" in page
    assert "no real cluster runs" in banner.to_text() and "<code>simulated</code>" in page
