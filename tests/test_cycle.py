"""The main job end to end: extract -> 837P -> drop -> simulator -> 999/277CA/835 -> ledger, on SQLite and
PostgreSQL, over file:// and over a real OpenSSH server."""

from datetime import date
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import func, select

from otedi.charges.synth import synth_charges
from otedi.cycle import run_cycle
from otedi.simulator import simulate, simulate_once
from otedi.warehouse import models
from otedi.warehouse.db import session_scope
from otedi.x12.validate import validate_file

TODAY = date(2026, 10, 1)
ZERO = Decimal("0.00")


@pytest.fixture
def extract(tmp_path) -> Path:
    path = tmp_path / "charges.csv"
    synth_charges(450, 5, path, defect_rate=0.01, start=date(2026, 8, 3), days=56)
    return path


def cycle(extract, tmp_path, drop_url, drop_dir):
    return run_cycle(extract, drop_url=drop_url, out_dir=tmp_path / "out", archive_dir=tmp_path / "archive",
                     today=TODAY, answer=lambda: simulate(drop_dir, tmp_path / "simulator", seed=3, today=TODAY))


def table_counts() -> dict[str, int]:
    with session_scope() as s:
        return {m.__tablename__: s.scalar(select(func.count()).select_from(m)) for m in (
            models.Claim, models.ClaimFile, models.Submission, models.FetchedFile, models.InboundFile,
            models.Remittance, models.LedgerEntry, models.ProviderAdjustment, models.ClaimStatusEvent)}


def assert_ties_out() -> None:
    with session_scope() as s:
        claims = s.scalars(select(models.Claim).where(models.Claim.status.not_in(("held", "ready", "batched")))).all()
        posted = dict(s.execute(select(models.LedgerEntry.claim_pk, func.sum(models.LedgerEntry.amount))
                                .group_by(models.LedgerEntry.claim_pk)).all())
        payments = s.scalar(select(func.sum(models.LedgerEntry.amount)).where(
            models.LedgerEntry.entry_type == "payment"))
        bpr = s.scalar(select(func.sum(models.Remittance.payment_amount)).where(models.Remittance.status == "posted"))
        plb = s.scalar(select(func.coalesce(func.sum(models.ProviderAdjustment.amount), 0)))
    assert claims and posted
    settled = {"paid", "patient_balance", "denied", "partially_paid"}
    for claim in claims:
        entries = Decimal(posted.get(claim.id, ZERO))
        open_balance = claim.total_charge - entries
        # billed = paid + contractual + patient responsibility + other adjustments (+ denied) + open balance
        assert open_balance >= ZERO, claim.claim_id
        if claim.status in settled:
            assert open_balance == ZERO, (claim.claim_id, claim.status, open_balance)
    # What the 835s say was paid (BPR02, plus the PLB taken from it) is what the ledger holds as payments.
    assert Decimal(bpr) + Decimal(plb) == Decimal(payments)


def test_full_cycle_over_the_local_drop_ties_out_and_runs_once(warehouse, extract, tmp_path):
    drop = tmp_path / "drop"
    result = cycle(extract, tmp_path, f"file://{drop}", drop)
    assert result.sent == 3 and result.fetched >= 3 * 2 + 1  # a 999 and a 277CA per file, and 835s
    assert result.summary["claims_sent"] > 100 and result.summary["paid"] > 0
    assert not [r for r in result.ingest.remittances if r["status"] != "posted"]
    assert all(a["status"] == "loaded" for a in result.ingest.acks)
    for path in (tmp_path / "archive").glob("*.835"):
        assert validate_file(path).ok
    assert_ties_out()

    before = table_counts()
    again = cycle(extract, tmp_path, f"file://{drop}", drop)
    assert (again.sent, again.fetched) == (0, 0)
    assert table_counts() == before


@pytest.mark.parametrize("warehouse", ["sqlite"], indirect=True)
def test_full_cycle_over_a_real_openssh_server(warehouse, extract, tmp_path, openssh_server):
    drop = tmp_path / "sftp-drop"
    (drop / "outbound").mkdir(parents=True)
    (drop / "inbound").mkdir()
    url = (f"{openssh_server.url(str(drop))}?host_key={quote(openssh_server.host_key_line)}"
           f"&key_file={quote(str(openssh_server.key_file))}")
    # The simulator plays the clearinghouse over SFTP too: it fetches from outbound/, answers into inbound/.
    result = run_cycle(extract, drop_url=url, out_dir=tmp_path / "out", archive_dir=tmp_path / "archive",
                       today=TODAY, answer=lambda: simulate_once(url, seed=3, today=TODAY,
                                                                 state_dir=tmp_path / "simulator"))
    assert result.sent == 3 and result.fetched >= 7
    assert sorted(p.name for p in (drop / "outbound").iterdir()) == sorted(
        Path(f).name for f in result.outbound.summary()["files"])
    assert not list((drop / "inbound").iterdir())  # fetched files moved to processed/ once recorded
    assert_ties_out()
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(models.Submission)) == 3


def test_corrected_and_resubmitted_claims_are_paid_by_the_simulator(warehouse, extract, tmp_path):
    """Denials and front-end rejections go back out (frequency 7 replacements, new originals) and come
    back paid; Medicare Part B denials become reopening work items instead of 837Ps."""
    from dataclasses import replace

    from otedi.claims.resubmit import resubmit
    from otedi.simulator.settings import Rates, load_settings

    drop = tmp_path / "drop"
    noisy = replace(load_settings(), rates=Rates(random_denial=0.1, delay=0, reversal=0, interest=0, recovery=0,
                                                 split=0, eligibility_rejection=0.08))
    quiet = replace(load_settings(), rates=Rates(0, 0, 0, 0, 0, 0, 0))

    def answer(settings):
        return lambda: simulate(drop, tmp_path / "simulator", seed=11, today=TODAY, settings=settings)

    run_cycle(extract, drop_url=f"file://{drop}", out_dir=tmp_path / "out", archive_dir=tmp_path / "archive",
              today=TODAY, answer=answer(noisy))
    with session_scope() as s:
        before = dict(s.execute(select(models.Claim.claim_id, models.Claim.status)).all())
        result = resubmit(s, today=TODAY)
    kinds = {b.kind for b in result.built}
    assert {"resubmission", "replacement"} <= kinds, kinds  # both a rejection and a commercial/Medicaid denial
    assert all(before[b.original_claim_id] in ("rejected", "denied", "partially_paid") for b in result.built)
    assert all(before[w.claim_id] in ("denied", "partially_paid") for w in result.work_items)  # Medicare: reopen

    second = run_cycle(None, drop_url=f"file://{drop}", out_dir=tmp_path / "out", archive_dir=tmp_path / "archive",
                       today=TODAY, answer=answer(quiet))
    assert second.sent >= 1 and not [r for r in second.ingest.remittances if r["status"] != "posted"]
    with session_scope() as s:
        rows = {c.claim_id: c for c in s.scalars(select(models.Claim).where(
            models.Claim.claim_id.in_([b.claim_id for b in result.built])))}
        replaced_paid = {c: s.scalar(select(func.coalesce(func.sum(models.LedgerEntry.amount), 0))
                                     .join(models.Claim, models.Claim.id == models.LedgerEntry.claim_pk)
                                     .where(models.Claim.claim_id == c, models.LedgerEntry.entry_type == "payment"))
                         for c in (b.original_claim_id for b in result.built if b.kind == "replacement")}
    assert {rows[b.claim_id].status for b in result.built} <= {"paid", "patient_balance"}
    assert all(rows[b.claim_id].frequency_code == ("7" if b.kind == "replacement" else "1") for b in result.built)
    # the replaced claims' first payments were reversed: nothing stays paid on them
    assert all(Decimal(amount) == ZERO for amount in replaced_paid.values())
    assert_ties_out()
