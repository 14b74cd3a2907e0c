"""Debian's Chromium for Playwright (never a browser Playwright downloads): where it is, how it
starts here, and the marks that skip a test, with the reason, when it is missing."""

from __future__ import annotations

import shutil

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
MARKS = [pytest.mark.browser,
         pytest.mark.skipif(CHROMIUM is None,
                            reason="Chromium is not installed (Debian package chromium)")]
# This machine has no network: keep Chromium from trying to reach any service at start.
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
