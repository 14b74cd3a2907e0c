"""The README's paths work as written: every `labkit` and `make` command it shows exists, the
Binder badge opens a notebook that exists, and the report.json it documents is the real one."""

from __future__ import annotations

import argparse
import dataclasses
import re
import shlex
from pathlib import Path

import pytest

from labkit.cli import build_parser
from labkit.course.runner import CourseReport, NotebookResult

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def _commands(prefix: str) -> list[list[str]]:
    """Commands starting with ``prefix`` in code spans and code blocks (placeholders dropped)."""
    spans = re.findall(r"`([^`\n]+)`", README)
    blocks = [ln for block in re.findall(r"```\n(.*?)```", README, re.S)
              for ln in block.splitlines()]
    out = []
    for text in spans + blocks:
        text = text.split("#")[0].split(">")[0].strip()
        if not re.match(rf"(\.venv/bin/)?{prefix}( |$)", text) or "|" in text or "[" in text:
            continue
        words = shlex.split(text.replace("...", ""))
        if len(words) > 1 and words[1].endswith(":"):
            continue  # a line of output ("labkit run: 4 notebook(s) ..."), not a command
        argv = [w for w in words[1:] if w.upper() != w or "=" in w or w.startswith("-")]
        if argv:
            out.append(argv)
    return out


def test_the_three_paths_come_first() -> None:
    top = README[:README.index("## Two commands")]
    for path in ("**Learners.**", "**Instructors**", "**Automated runs**"):
        assert path in top
    assert top.index("**Learners.**") < top.index("**Instructors**") < top.index(
        "**Automated runs**")
    assert "## Two commands" in README and "make run" in README and "make test" in README


def _check(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    """Each command word names a (sub)command and each flag is one that (sub)command takes;
    arguments may be left out (prose mentions `labkit up` without its STAGE)."""
    words = list(argv)
    while True:
        groups = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not groups or not words or words[0].startswith("-"):
            break
        choices = groups[0].choices
        if words[0] not in choices:
            if groups[0].required:
                pytest.fail(f"README shows `labkit {' '.join(argv)}`: no command {words[0]!r}")
            break
        parser, words = choices[words[0]], words[1:]
    known = {o for a in parser._actions for o in a.option_strings}
    flags = {w.split("=")[0] for w in words if w.startswith("-")}
    assert flags <= known, f"README shows `labkit {' '.join(argv)}`: unknown {flags - known}"


def test_every_labkit_command_shown_exists() -> None:
    parser = build_parser()
    commands = _commands("labkit")
    assert len(commands) >= 10
    for argv in commands:
        _check(parser, argv)
    assert ["tools", "install"] in [c[:2] for c in commands]
    assert ["doctor", "summarize"] in [c[:2] for c in commands]


def test_every_make_target_shown_exists() -> None:
    targets = set(re.findall(r"^([a-z-]+):", (ROOT / "Makefile").read_text(), re.M))
    for argv in _commands("make"):
        assert {w for w in argv if "=" not in w} <= targets, argv


def test_binder_badge_opens_the_first_notebook() -> None:
    badge = re.search(r"\(https://mybinder\.org/v2/gh/([\w.-]+/[\w.-]+)/HEAD\?urlpath=lab/tree/"
                      r"([\w./-]+)\)", README)
    assert badge, "no Binder launch link"
    assert (ROOT / badge.group(2)).is_file()
    assert (ROOT / "binder" / "start").read_text().count("LABKIT_BACKEND=sim") == 1


def test_report_json_schema_is_the_runners() -> None:
    block = README[README.index('{"backend": "sim", "simulated"'):]
    block = block[:block.index("```")]
    keys = set(re.findall(r'"(\w+)":', block))
    report = set(CourseReport("sim", {}).as_dict())
    notebook = {f.name for f in dataclasses.fields(NotebookResult)}
    assert report <= keys and notebook <= keys
    assert keys <= report | notebook | {"BACKEND"}
