"""Shared pytest options: ``--kind`` runs the contract scenarios on a real kind cluster too."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--kind", action="store_true", default=False,
                     help="also run tests marked 'kind' against real kind clusters "
                     "(needs Docker and kind; creates and deletes the lab clusters)")
    parser.addoption("--binder", action="store_true", default=False,
                     help="also run tests marked 'binder' (a fresh venv built like "
                     "binder/postBuild; a pip install); always on when CI=true")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import os

    opt_in = {"kind": (config.getoption("--kind"), "needs a real kind cluster: run with --kind"),
              "binder": (config.getoption("--binder") or os.environ.get("CI") == "true",
                         "builds a fresh Binder environment (slow): run with --binder; "
                         "CI=true runs it")}
    for item in items:
        for marker, (wanted, why) in opt_in.items():
            if marker in item.keywords and not wanted:
                item.add_marker(pytest.mark.skip(reason=why))


# -- isolation: simulated clusters are saved under LABKIT_HOME; tests never touch the user's ----
_HOME_BEFORE: str | None = None


def pytest_configure(config: pytest.Config) -> None:
    """A private LABKIT_HOME for this pytest process (and the kernels and subprocesses it
    starts, e.g. nbval), so no test reads or leaves a simulated cluster in ~/.cache/labkit."""
    import os
    import tempfile

    global _HOME_BEFORE
    _HOME_BEFORE = os.environ.get("LABKIT_HOME")
    os.environ["LABKIT_HOME"] = tempfile.mkdtemp(prefix="labkit-home-")


def pytest_unconfigure(config: pytest.Config) -> None:
    import os
    import shutil

    home = os.environ.pop("LABKIT_HOME", "")
    if home and os.path.basename(home).startswith("labkit-home-"):
        shutil.rmtree(home, ignore_errors=True)
    if _HOME_BEFORE is not None:
        os.environ["LABKIT_HOME"] = _HOME_BEFORE


@pytest.fixture(autouse=True)
def _labkit_home(tmp_path_factory: pytest.TempPathFactory,
                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no saved simulated cluster: an empty LABKIT_HOME of its own."""
    home = tmp_path_factory.mktemp("labkit-home", numbered=True)
    monkeypatch.setenv("LABKIT_HOME", str(home))


#: The simulated API server's clock in tests: creation times (kubectl's AGE) are wall-clock
#: times in real use, which would make two runs of the same steps save different files.
FIXED_CLOCK = 1_750_000_000.0


@pytest.fixture(autouse=True)
def _sim_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    from labkit.backends.sim import cluster

    monkeypatch.setattr(cluster, "clock", lambda: FIXED_CLOCK)
