"""The reference every reliability case ends at: one clean cycle on the sample, on a SQLite warehouse."""

from __future__ import annotations

import shutil

import pytest

from tests.reliability.invariants import violations, warehouse_snapshot
from tests.reliability.runs import RUN, drop_listing, otedi, otedi_env


@pytest.fixture(scope="session")
def clean(tmp_path_factory, sqlite_template) -> dict:
    home = tmp_path_factory.mktemp("clean") / "home"
    home.mkdir()
    shutil.copy(sqlite_template, home / "otedi.db")
    url = f"sqlite:///{home / 'otedi.db'}"
    done = otedi(RUN, env=otedi_env(home, url))
    assert done.returncode == 0, done.stderr[-2000:]
    assert violations(url, home) == []
    return {"home": home, "url": url, "snapshot": warehouse_snapshot(url), "drop": drop_listing(home)}
