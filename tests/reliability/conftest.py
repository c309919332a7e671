"""The reference every reliability case ends at: one clean cycle on the sample, on a SQLite warehouse."""

from __future__ import annotations

import pytest

from tests.reliability.invariants import violations, warehouse_snapshot
from tests.reliability.runs import RUN, drop_listing, otedi, otedi_env, sqlite_home


@pytest.fixture(scope="session")
def clean(tmp_path_factory, sqlite_template) -> dict:
    home = tmp_path_factory.mktemp("clean") / "home"
    url = sqlite_home(home, sqlite_template)
    done = otedi(RUN, env=otedi_env(home, url))
    assert done.returncode == 3, done.stderr[-2000:]  # done; the sample's bad rows rejected (exit 3)
    assert violations(url, home) == []
    return {"home": home, "url": url, "snapshot": warehouse_snapshot(url), "drop": drop_listing(home)}
