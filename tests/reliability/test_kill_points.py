"""SIGKILL at each named step of a whole cycle, on SQLite and PostgreSQL, then a re-run (issue 11).

Each case runs `otedi run` on the sample extract in a subprocess that kills itself at the N-th call of one
step (tests/reliability/killpoint.py), checks what must hold even right after a kill, runs `otedi run` again,
and then requires every invariant (tests/reliability/invariants.py) and a warehouse and drop equal to one
clean run's. The killed run must really die there (exit -9): a step the cycle never reaches fails the case.
"""

from __future__ import annotations

import shutil
import signal

import pytest
from sqlalchemy import create_engine, text

from tests.phi import leaks, phi_values
from tests.reliability.invariants import violations, warehouse_snapshot
from tests.reliability.runs import RUN, SAMPLE, drop_listing, otedi

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

# step:N = killed at the N-th call: the first file, claim or posting, and a later one
KILL_POINTS = [
    "after_build", "mid_write", "mid_write:2", "after_write", "after_write:3", "before_send", "mid_upload:2",
    "after_remote_rename", "after_remote_rename:3", "before_submission_commit:2", "mid_download",
    "mid_download:5", "after_fetch_record", "after_fetch_record:9", "after_ack_load:2", "mid_posting:20",
    "mid_posting:120", "after_posting", "after_posting:6", "before_secondaries",
]

SAMPLE_PHI = phi_values(SAMPLE)


def test_a_clean_cycle_is_the_same_on_postgresql(warehouse, tmp_path, clean):
    if warehouse.startswith("sqlite"):
        pytest.skip("the reference itself is SQLite")
    assert otedi(RUN).returncode == 3  # done; the sample's bad rows rejected (exit 3)
    assert violations(warehouse, tmp_path / "home") == []
    assert warehouse_snapshot(warehouse) == clean["snapshot"]


@pytest.mark.parametrize("kill_at", KILL_POINTS)
def test_killed_at_a_step_then_rerun_ends_as_one_clean_cycle(warehouse, tmp_path, clean, kill_at):
    home = tmp_path / "home"
    killed = otedi(RUN, kill_at=kill_at)
    assert killed.returncode == -signal.SIGKILL, (kill_at, killed.returncode, killed.stderr[-2000:])
    # Even before the re-run nothing is twice: no double billing, control number or posting.
    assert violations(warehouse, home, complete=False) == []

    rerun = otedi(RUN)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert leaks({"killed run": killed.stdout + killed.stderr, "re-run": rerun.stdout + rerun.stderr},
                 SAMPLE_PHI) == {}
    assert violations(warehouse, home) == []
    snapshot = warehouse_snapshot(warehouse)
    assert {k: v for k, v in snapshot.items() if v != clean["snapshot"][k]} == {}
    assert drop_listing(home) == clean["drop"]


def test_the_checker_catches_a_claim_delivered_twice_and_a_payment_posted_twice(clean, tmp_path):
    """The invariants are not vacuous: a copy of a delivered 837P under another name and one extra ledger
    payment row are both reported, and the snapshot differs."""
    home = tmp_path / "home"
    shutil.copytree(clean["home"], home)
    url = f"sqlite:///{home / 'otedi.db'}"
    delivered = sorted((home / "drop" / "outbound").glob("*.837"))[0]
    shutil.copy(delivered, delivered.with_name("COPY_" + delivered.name))
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("insert into ledger_entry (remittance_id, claim_payment_id, claim_pk, entry_type, amount, "
                          "reversal, posted_at) select remittance_id, claim_payment_id, claim_pk, entry_type, 1.00, "
                          "reversal, posted_at from ledger_entry where entry_type = 'payment' limit 1"))
    engine.dispose()
    found = violations(url, home)
    assert any("has no submission" in v for v in found)
    assert any("delivered in 2 files" in v for v in found)
    assert any("ledger payments" in v for v in found)
    assert warehouse_snapshot(url)["ledger"] != clean["snapshot"]["ledger"]
