"""`today` reaches the timestamps (issue 13, CLI: --today on every command that dates anything): a cycle run as
of a date other than the wall clock's stamps what it creates on that date (models.stamped_as_of), so the
reconciliation never shows negative days outstanding and nothing is posted after the as-of date."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

import pandas as pd
import pytest
from sqlalchemy import select

from otedi.analytics.aging import balances
from otedi.analytics.reconcile import claim_frame, claim_reconciliation
from otedi.analytics.snapshot import load_snapshot
from otedi.charges.synth import synth_charges
from otedi.cycle import run_cycle
from otedi.simulator import simulate
from otedi.warehouse import models
from otedi.warehouse.db import session_scope
from otedi.warehouse.models import as_of_timestamp, stamped_as_of, utcnow

NIGHT = date(2026, 3, 10)  # the as-of date; the wall clock says otherwise (unless the test runs on that day)
LATER = NIGHT + timedelta(days=35)  # the follow-up night, as `make demo` runs it

STAMPED = {  # table -> its timestamp column
    models.ExtractFile: "loaded_at", models.Charge: "loaded_at", models.Claim: "created_at",
    models.EditIssue: "created_at", models.ClaimFile: "created_at", models.Submission: "sent_at",
    models.FetchedFile: "fetched_at", models.InboundFile: "received_at", models.Remittance: "posted_at",
    models.LedgerEntry: "posted_at", models.ClaimStatusEvent: "created_at", models.ClaimLink: "created_at",
    models.AccountEntry: "posted_at", models.AuditEvent: "at",
}


def utc_day(value: datetime) -> date:
    """The UTC date of a stored timestamp (SQLite gives naive UTC, PostgreSQL aware), as the analytics read it."""
    return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).astimezone(timezone.utc).date()


def stamp_days() -> dict[str, dict[int, date]]:
    with session_scope() as s:
        return {m.__tablename__: {pk: utc_day(at) for pk, at in s.execute(select(m.id, getattr(m, col)))}
                for m, col in STAMPED.items()}


def test_a_back_dated_cycle_stamps_everything_it_creates_on_its_date(warehouse, tmp_path):
    extract = tmp_path / "charges.csv"
    synth_charges(400, 3, extract, defect_rate=0.01, start=date(2026, 1, 5), days=52)
    drop = tmp_path / "drop"

    def night(day: date, path):
        return run_cycle(path, drop_url=f"file://{drop}", out_dir=tmp_path / "out", archive_dir=tmp_path / "archive",
                         today=day, answer=lambda: simulate(drop, tmp_path / "simulator", seed=3, today=day,
                                                            eligibility_from=[extract]))

    first = night(NIGHT, extract)
    assert first.sent >= 1 and first.ingest.remittances
    one = stamp_days()
    for table in ("extract_file", "charge", "claim", "claim_file", "submission", "fetched_file", "inbound_file",
                  "remittance", "ledger_entry", "claim_status_event"):
        assert one[table], table
        assert set(one[table].values()) == {NIGHT}, (table, sorted(set(one[table].values())))
    for table, days in one.items():  # the rest (links, write-offs, their audit) where the night made any
        assert set(days.values()) <= {NIGHT}, (table, sorted(set(days.values())))

    # The 837P envelope carries the as-of date too (ISA09 YYMMDD, GS04 CCYYMMDD).
    for path in first.outbound.summary()["files"]:
        text = open(path, encoding="ascii").read()
        isa, gs = text.split("~")[0].split("*"), text.split("~")[1].split("*")
        assert (isa[9], gs[4]) == ("260310", "20260310")

    # The reconciliation as of the night: submitted that night, nothing outstanding for a negative number of days.
    recon = claim_reconciliation(today=NIGHT)
    submitted = recon[recon["submitted_on"].notna()]
    assert len(submitted) >= 50 and set(submitted["submitted_on"]) == {NIGHT}
    days = submitted["days_outstanding"].dropna()
    assert len(days) and (days >= 0).all() and set(days) == {0}

    # The second night, 35 days later: its rows carry its own date; the first night's rows are unchanged.
    second = night(LATER, None)
    assert second.fetched >= 1
    two = stamp_days()
    for table, days in one.items():
        assert {pk: two[table][pk] for pk in days} == days, table  # append-only: nothing restamped
    new = {table: {d for pk, d in days.items() if pk not in one[table]} for table, days in two.items()}
    assert new["ledger_entry"] == {LATER} and new["fetched_file"] == {LATER}
    assert all(d <= {LATER} for d in new.values()), new
    assert new["account_entry"] == {LATER}, "the demo's QMB write-offs post on the follow-up night"

    # As of each night, no posting is after it and no balance is aged negatively.
    snap = load_snapshot()
    for day in (NIGHT, LATER):
        claims = claim_frame(snap, day)
        aged = balances(claims, day)
        assert len(aged) and (aged["age_days"] >= 0).all()
    posted = [*snap.postings["posted_at"], *snap.account["posted_at"], *snap.remittances["posted_at"]]
    assert max(pd.Timestamp(t).date() for t in posted) == LATER
    recon = claim_reconciliation(today=LATER)
    assert set(recon["submitted_on"].dropna()) <= {NIGHT, LATER}
    assert set(recon["days_outstanding"].dropna()) <= {0, 35}  # open since the first night, or sent the second


# --- the rule ------------------------------------------------------------------------------------------------


class FakeClock(datetime):
    """datetime whose now() is set by the test (models.utcnow reads datetime.now(timezone.utc))."""
    current = datetime(2026, 12, 1, 16, 45, 10, tzinfo=timezone.utc)

    @classmethod
    def now(cls, tz=None):
        return cls.current.astimezone(tz) if tz else cls.current.replace(tzinfo=None)


@pytest.fixture
def clock(monkeypatch):
    monkeypatch.setattr(models, "datetime", FakeClock)
    FakeClock.current = datetime(2026, 12, 1, 16, 45, 10, tzinfo=timezone.utc)
    return FakeClock


def test_the_stamp_is_the_wall_clock_moved_onto_the_as_of_date(clock):
    assert utcnow() == clock.current  # outside a run as of a date: the wall clock
    with stamped_as_of(None):
        assert utcnow() == clock.current
    with stamped_as_of(date(2026, 11, 14)):
        assert utcnow() == datetime(2026, 11, 14, 16, 45, 10, tzinfo=timezone.utc)
        clock.current += timedelta(minutes=3)
        assert utcnow() == datetime(2026, 11, 14, 16, 48, 10, tzinfo=timezone.utc)  # time goes on, in order
        with stamped_as_of(date(2026, 11, 14)):  # a nested entry point of the same date keeps the shift
            assert utcnow() == datetime(2026, 11, 14, 16, 48, 10, tzinfo=timezone.utc)
        with stamped_as_of(date(2027, 1, 2)):  # a later date: in the future, as asked
            assert utcnow() == datetime(2027, 1, 2, 16, 48, 10, tzinfo=timezone.utc)
    assert utcnow() == clock.current
    with stamped_as_of(date(2026, 12, 1)):  # the current UTC date: exactly the wall clock
        assert utcnow() == clock.current
    assert as_of_timestamp(date(2026, 3, 10), datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc)) == \
        datetime(2026, 3, 10, 8, 0, tzinfo=timezone.utc)
    assert as_of_timestamp(None, clock.current) == clock.current


def test_a_run_that_crosses_midnight_stays_on_its_date_and_in_order(clock):
    clock.current = datetime(2026, 12, 1, 23, 59, 58, tzinfo=timezone.utc)
    with stamped_as_of(date(2026, 11, 14)):
        before = utcnow()
        clock.current += timedelta(seconds=5)  # 00:00:03 on the 2nd by the wall clock
        after = utcnow()
    assert before == datetime(2026, 11, 14, 23, 59, 58, tzinfo=timezone.utc)
    assert after == datetime.combine(date(2026, 11, 14), time.max, tzinfo=timezone.utc) and after > before


def test_a_local_date_behind_utc_is_kept(clock):
    """A machine in New York at 20:00 on the 1st (01:00 UTC on the 2nd) running as of its own date: the rows
    carry the 1st in UTC, the date the analytics read, so the night shows 0 days outstanding, not -1."""
    clock.current = datetime(2026, 12, 2, 1, 0, tzinfo=timezone.utc)
    with stamped_as_of(date(2026, 12, 1)):
        assert utcnow() == datetime(2026, 12, 1, 1, 0, tzinfo=timezone.utc)


# --- the steps run alone: the CLI's charges load and the nightly tasks ------------------------------------------

def test_charges_load_with_today_and_the_nightly_tasks_stamp_their_rows_on_their_date(warehouse, tmp_path, capsys):
    from otedi import cli, nightly

    extract = tmp_path / "charges.csv"
    synth_charges(60, 1, extract, defect_rate=0.0, start=date(2026, 1, 26), days=28)
    assert cli.main(["-q", "charges", "load", str(extract), "--today", NIGHT.isoformat()]) in (0, 3)
    days = stamp_days()
    assert days["extract_file"] and set(days["extract_file"].values()) == {NIGHT}
    assert days["charge"] and set(days["charge"].values()) == {NIGHT}

    # the claims DAG's tasks for the night of LATER - 1 (they date what they create the day after it)
    second = tmp_path / "more.csv"
    synth_charges(60, 11, second, defect_rate=0.0, start=date(2026, 2, 2), days=28)
    more = pd.read_csv(second, dtype=str, keep_default_na=False)
    more["charge_id"] = "N" + more["charge_id"]  # new charges, not the first extract's again
    more.to_csv(second, index=False)
    batch = (LATER - timedelta(days=1)).isoformat()
    practice = nightly.practice_ids()[0]
    nightly.load_charges(str(second), batch, practice)
    assert nightly.build_claims_for(practice, batch)["claims"] > 0
    assert nightly.write_files_for(practice, batch)["ready"]
    after = stamp_days()
    new = {t: {d for pk, d in v.items() if pk not in days[t]} for t, v in after.items()}
    for table in ("extract_file", "charge", "claim", "claim_file"):
        assert new[table] == {LATER}, (table, new[table])
