"""pyproject.toml: what a fresh install reads."""

from __future__ import annotations

import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).parents[2] / "pyproject.toml"


def test_license_is_an_spdx_expression_not_the_deprecated_table() -> None:
    """setuptools deprecates ``license = {text = ...}`` (four banners on every install);
    PEP 639's SPDX string needs setuptools >= 77."""
    data = tomllib.loads(PYPROJECT.read_text())
    assert data["project"]["license"] == "Apache-2.0"
    assert any(r.replace(" ", "").startswith("setuptools>=77")
               for r in data["build-system"]["requires"])
