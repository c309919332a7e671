"""The finance tables in the warehouse (finance_<table>, otedi.analytics.warehouse_tables), SQLite and PostgreSQL.

They equal the pandas tables on the `finance` dataset (test_reconcile.py) and on the demo's warehouse (the sample
extract through two nights of the simulator: crossovers, secondary claims, resubmissions, held claims); a second
refresh replaces, never appends; a refresh that fails leaves the previous one; two refreshes at once (two
processes) end with one complete set; money reads back exact; plain SQL sums what the frames sum; the CLI
summary (cycle_summary), the report and the tables agree on billed, open, not sent and patient balances."""

import subprocess
import sys
import time
from datetime import date, timedelta
from decimal import Decimal as D
from html import escape

import pandas as pd
import pytest
from sqlalchemy import inspect, select, text

from otedi import config
from otedi.analytics import aging, export, summary, warehouse_tables as wt
from otedi.analytics.export import SCHEMAS, ExportError
from otedi.analytics.reconcile import NOT_SUBMITTED, claim_frame
from otedi.analytics.report_html import render_report
from otedi.analytics.snapshot import dollars as money, load_snapshot, money_text
from otedi.cycle import run_cycle
from otedi.outbound import run_outbound
from otedi.warehouse import db, models
from otedi.warehouse.db import session_scope
from tests.factories import charge, write_charges_csv
from tests.test_reconcile import TODAY, finance  # noqa: F401 - finance is a fixture

FINANCE = [wt.table_name(n) for n in SCHEMAS]


@pytest.fixture(autouse=True)
def no_finance_tables(warehouse):
    """Each test starts without finance tables (the PostgreSQL test database is emptied between tests, not
    dropped: conftest empties the models' tables only)."""
    eng = db.engine(warehouse)
    with eng.begin() as conn:
        for name in inspect(conn).get_table_names():
            if name.startswith(wt.PREFIX):
                conn.execute(text(f"drop table {name}"))
    yield


def frames_now(today):
    """What the pandas side computes now, typed as the tables are (export.conform)."""
    return {n: export.conform(n, f) for n, f in export.finance_tables(load_snapshot(), today=today).items()}


def tables_now(url, today=None):
    back, as_of = wt.read_finance_tables(url, today=today)
    return {n: export.conform(n, f) for n, f in back.items()}, as_of


def scalar(url, sql):
    with db.engine(url).connect() as conn:
        return conn.execute(text(sql)).scalar()


def sql_sum(url, sql) -> D:
    """A plain SQL sum as a BI tool gets it: NUMERIC (exact) on PostgreSQL, REAL on SQLite (rounded to the cent
    there, as the README says to)."""
    value = scalar(url, sql)
    return D(value) if isinstance(value, D) else D(str(round(value, 2))).quantize(D("0.01"))


def assert_equal_to_frames(url, today):
    tables, as_of = tables_now(url, today)
    assert as_of == today
    assert tables == frames_now(today)
    return tables


# ---------------------------------------------------------------------------------------------------------------
# The known dataset


def test_the_tables_equal_the_pandas_tables_column_types_and_money_exact(finance, warehouse):
    counts = wt.refresh_finance_tables(today=TODAY)
    assert counts == {"finance_reconciliation_claims": 8, "finance_reconciliation_lines": 10, "finance_payments": 2,
                      "finance_unmatched_remittances": 1, "finance_held_remittances": 0, "finance_ar_aging": 3,
                      "finance_work_queue": 8, "finance_denials": 3, "finance_denial_pareto": 7,
                      "finance_denial_trend": 1, "finance_denial_recoverable": 3, "finance_kpis": 8}
    tables = assert_equal_to_frames(warehouse, TODAY)
    # money reads back as exact Decimal
    claims = tables["reconciliation_claims"]
    assert sum(claims["paid"]) == D("159.86") and sum(claims["billed"]) == D("1035.00")
    assert all(type(v) is D for v in claims["open_balance"])
    assert sorted(claims["open_balance"]) == [D("0.00")] * 2 + [D("65.00")] * 5 + [D("160.00")]
    # the declared SQL types, the as_of and row_no columns, the descriptions as comments (PostgreSQL)
    found = inspect(db.engine(warehouse))
    assert set(FINANCE) | {"finance_refresh"} <= set(found.get_table_names())
    dialect = db.engine(warehouse).dialect
    for name, schema in SCHEMAS.items():
        columns = found.get_columns(wt.table_name(name))
        assert [c["name"] for c in columns] == [c.name for c in schema] + ["as_of", "row_no"]
        for c, got in zip(schema, columns):
            rendered = got["type"].compile(dialect=dialect)
            want = {"money": "NUMERIC(12, 2)", "rate": "NUMERIC(7, 4)", "measure": "NUMERIC(16, 4)",
                    "string": "VARCHAR", "integer": "BIGINT", "boolean": "BOOLEAN", "date": "DATE",
                    "datetime": "TIMESTAMP WITH TIME ZONE" if dialect.name == "postgresql" else "DATETIME"}[c.type]
            assert rendered == want, (name, c.name)
            if dialect.name == "postgresql":
                assert got["comment"] == c.description
    assert found.get_pk_constraint("finance_work_queue")["constrained_columns"] == ["row_no"]


def test_plain_sql_reads_the_same_figures(finance, warehouse):
    wt.refresh_finance_tables(today=TODAY)
    frame = export.finance_tables(load_snapshot(), today=TODAY)
    assert sql_sum(warehouse, "select sum(open_balance) from finance_reconciliation_claims") == \
        sum(frame["reconciliation_claims"]["open_balance"]) == D("485.00")
    assert sql_sum(warehouse, "select sum(denied) from finance_reconciliation_lines") == D("195.00")
    assert sql_sum(warehouse, "select sum(total) from finance_ar_aging where balance_type = 'insurance'") == \
        D("485.00")
    assert sql_sum(warehouse, "select sum(difference) from finance_payments") == \
        sum(frame["payments"]["difference"])
    # ids are text (a leading zero survives), dates are dates, the order is row_no
    assert scalar(warehouse, "select count(*) from finance_reconciliation_claims where as_of = '2026-04-20'") == 8
    first = scalar(warehouse, "select reason from finance_work_queue order by row_no limit 1")
    assert first == frame["work_queue"]["reason"].iloc[0]
    assert scalar(warehouse, "select value from finance_kpis where kpi = 'days_in_ar'") in (D("42.2000"), 42.2)
    with db.engine(warehouse).connect() as conn:
        service = conn.execute(text("select service_date_from from finance_reconciliation_claims order by row_no "
                                    "limit 1")).scalar()
    assert str(service)[:10] == frame["reconciliation_claims"]["service_date_from"].iloc[0].isoformat()


def test_a_second_refresh_replaces_the_first_and_the_history_says_so(finance, warehouse):
    first = wt.refresh_finance_tables(today=TODAY)
    later = TODAY + timedelta(days=30)
    second = wt.refresh_finance_tables(warehouse, today=later)
    assert first == second  # the same rows, not twice as many
    for table, rows in second.items():
        assert scalar(warehouse, f"select count(*) from {table}") == rows, table
        assert scalar(warehouse, f"select count(distinct as_of) from {table}") == (1 if rows else 0), table
    assert_equal_to_frames(warehouse, later)  # ages and days outstanding as of the later date
    assert scalar(warehouse, "select max(days_outstanding) from finance_reconciliation_claims") == 71
    history = wt.last_refresh(warehouse)
    assert (history.refresh_id, history.as_of, history.rows) == (2, later, second)
    assert scalar(warehouse, "select count(*) from finance_refresh") == 2 * len(SCHEMAS)
    assert scalar(warehouse, "select count(distinct refresh_id) from finance_refresh") == 2


def test_a_missing_or_changed_table_is_made_again_and_a_dropped_one_removed(finance, warehouse):
    wt.refresh_finance_tables(today=TODAY)
    eng = db.engine(warehouse)
    with eng.begin() as conn:
        conn.execute(text("drop table finance_kpis"))
        conn.execute(text("drop table finance_denials"))
        conn.execute(text("create table finance_denials (claim_id varchar, denied numeric(12, 2), as_of date)"))
        conn.execute(text("create table finance_retired (x integer)"))
        conn.execute(text("insert into finance_refresh (refresh_id, table_name, row_count, as_of, refreshed_at) "
                          "values (0, 'finance_retired', 0, '2026-01-01', '2026-01-01 00:00:00')"))
    with pytest.raises(ExportError, match="finance_denials: its columns differ from SCHEMAS"):
        wt.read_finance_tables(warehouse)
    wt.refresh_finance_tables(today=TODAY)
    names = set(inspect(eng).get_table_names())
    assert {"finance_kpis", "finance_denials"} <= names and "finance_retired" not in names
    assert_equal_to_frames(warehouse, TODAY)


def test_a_refresh_that_fails_leaves_the_previous_one_whole(finance, warehouse, monkeypatch):
    wt.refresh_finance_tables(today=TODAY)
    before, _ = tables_now(warehouse)

    def fail(conn):
        raise RuntimeError("the disk filled up after the rows were written")

    with monkeypatch.context() as patch:
        patch.setattr(wt, "_read", fail)  # refresh_and_read: fails after every table was replaced
        with pytest.raises(RuntimeError, match="disk filled up"):
            wt.refresh_and_read(today=TODAY + timedelta(days=1))
    after, as_of = tables_now(warehouse)
    assert (after, as_of, wt.last_refresh().refresh_id) == (before, TODAY, 1)
    # a table that does not fit its schema is refused before anything is written
    tables = export.finance_tables(today=TODAY)
    tables["kpis"] = tables["kpis"].assign(extra=None)
    with monkeypatch.context() as patch:
        patch.setattr(export, "finance_tables", lambda snap=None, today=None: tables)
        with pytest.raises(ExportError, match="export table kpis"):
            wt.refresh_finance_tables(today=TODAY)
    assert tables_now(warehouse) == (before, TODAY)


def test_export_files_are_what_the_refresh_committed(finance, warehouse, tmp_path):
    with pytest.raises(ExportError, match="never refreshed"):
        export.export_tables(tmp_path / "none", "csv", today=TODAY, refresh=False)
    export.export_tables(tmp_path / "a", "csv", today=TODAY)  # refresh=True: refresh, then these rows
    assert wt.last_refresh(warehouse).as_of == TODAY
    export.export_tables(tmp_path / "b", "csv", refresh=False)  # the tables as they are, no write
    for name in SCHEMAS:
        assert (tmp_path / "a" / f"{name}.csv").read_bytes() == (tmp_path / "b" / f"{name}.csv").read_bytes(), name
    assert wt.last_refresh(warehouse).refresh_id == 1
    with pytest.raises(ExportError, match=r"as of 2026-04-20, not 2026-05-01: refresh them"):
        export.export_tables(tmp_path / "c", "csv", today=date(2026, 5, 1), refresh=False)
    rows = (tmp_path / "a" / "reconciliation_claims.csv").read_text().splitlines()
    header = rows[0].split(",")
    opens = [D(r.split(",")[header.index("open_balance")]) for r in rows[1:]]
    assert sum(opens) == sql_sum(warehouse, "select sum(open_balance) from finance_reconciliation_claims")


# ---------------------------------------------------------------------------------------------------------------
# One definition: the CLI summary, the report and the tables


def test_the_summary_the_report_and_the_tables_agree_and_claims_not_sent_are_not_ar(finance, warehouse, tmp_path):
    # one more claim built and written into a file that was never sent: batched, not AR
    write_charges_csv(tmp_path / "late.csv", [charge(charge_id="L-1", cpt="97110", charge_amount=D("65.00"),
                                                     patient_id="P900", service_date=date(2026, 4, 1),
                                                     minutes=15, units=1)])
    run_outbound(tmp_path / "late.csv", tmp_path / "out", today=date(2026, 4, 2))
    with session_scope() as s:
        late = s.scalar(select(models.Claim).join(models.ClaimLine).where(models.ClaimLine.charge_id == "L-1"))
        assert late.status == "batched" and late.claim_file_id is not None
    assert "batched" in NOT_SUBMITTED

    got = summary.cycle_summary(today=TODAY)
    # the summary the warehouse gives in SQL is the claim frame's, figure for figure
    assert got == summary.cycle_summary(load_snapshot(), today=TODAY)
    assert (got["claims_sent"], got["claims_submitted"], got["claims_rejected"], got["claims_accepted"]) == (8, 8, 1, 7)
    assert got["claims_not_sent"] == {"batched": 1} and got["not_sent_billed"] == D("65.00")
    assert (got["billed"], got["paid"], got["contractual"], got["denied"]) == (
        D("1035.00"), D("159.86"), D("357.34"), D("195.00"))
    assert got["open_balance"] == got["still_open"] == got["insurance_ar"] == D("485.00")
    assert got["billed"] == (got["paid"] + got["contractual"] + got["patient_responsibility"]
                             + got["other_adjustments"] + got["written_off"] + got["open_balance"])
    assert got["patient_responsibility"] == (got["patient_paid"] + got["patient_written_off"] + got["to_secondary"]
                                             + got["patient_balance"])

    wt.refresh_finance_tables(today=TODAY)
    # the tables: the batched claim has no submission day, no days outstanding, no aging row, no work item
    claims = {r["claim_id"]: r for r in wt.read_finance_tables()[0]["reconciliation_claims"].to_dict("records")}
    assert (claims[late.claim_id]["submitted_on"], claims[late.claim_id]["days_outstanding"]) == (None, None)
    sent = [r for r in claims.values() if r["status"] not in NOT_SUBMITTED]
    assert sum(r["billed"] for r in sent) == got["billed"]
    assert sql_sum(warehouse, "select sum(total) from finance_ar_aging where balance_type = 'insurance'") == \
        got["insurance_ar"]
    assert sql_sum(warehouse, "select coalesce(sum(total), 0) from finance_ar_aging "
                              "where balance_type = 'patient'") == got["patient_ar"]
    assert scalar(warehouse, f"select count(*) from finance_work_queue where claim_id = '{late.claim_id}'") == 0
    assert scalar(warehouse, "select numerator from finance_kpis where kpi = 'days_in_ar'") == "485.00"
    # the report's tiles are the same figures
    html = render_report(TODAY)
    for label, key in (("Billed", "billed"), ("Paid by payers", "paid"), ("Insurance AR", "insurance_ar"),
                       ("Patient balances", "patient_ar")):
        assert f'<span class="label">{label}</span><span class="value">{escape(money_text(got[key]))}</span>' in html
    assert "<b>Not sent, not in AR:</b> 1 batched ($65.00)" in html


# ---------------------------------------------------------------------------------------------------------------
# The demo's warehouse: two nights of the simulator


DEMO_NIGHT = date(2026, 11, 10)  # the night after the sample extract's last date of service, as `make demo` runs


@pytest.fixture
def demo(warehouse, tmp_path):
    """`otedi run --follow-up-days 35` on the sample extract, with the nightly resubmissions in between."""
    from otedi.claims.resubmit import resubmit
    from otedi.simulator import simulate

    extract = config.sample_extract()
    drop = tmp_path / "drop"
    results = []
    for n, night in enumerate((DEMO_NIGHT, DEMO_NIGHT + timedelta(days=35))):
        if n:
            with models.stamped_as_of(night), session_scope() as s:
                resubmit(s, today=night)
        results.append(run_cycle(None if n else extract, drop_url=f"file://{drop}", out_dir=tmp_path / "out",
                                 archive_dir=tmp_path / "archive", today=night,
                                 answer=lambda night=night: simulate(drop, drop / ".simulator", seed=7, today=night,
                                                                     eligibility_from=[(extract, None)])))
    return {"today": DEMO_NIGHT + timedelta(days=35), "results": results}


def test_on_the_demo_warehouse_the_tables_the_summary_and_the_cycle_totals_agree(demo, warehouse):
    today = demo["today"]
    counts = wt.refresh_finance_tables(today=today)
    tables = assert_equal_to_frames(warehouse, today)
    claims = tables["reconciliation_claims"]
    assert counts["finance_reconciliation_claims"] == len(claims["claim_id"]) > 100
    # what the demo has: claims held or ready (not sent), paid, replaced by a corrected claim, forwarded by
    # Medicare with their crossover records
    assert {"held", "ready", "paid", "replaced", "forwarded"} <= set(claims["status"])
    assert any(v is not None for v in claims["crossover_of"]) and any(v is not None for v in claims["superseded_by"])

    got = summary.cycle_summary(today=today)
    frame = claim_frame(load_snapshot(), today)
    assert got == summary.summary_of(frame)  # SQL and the claim frame: the same figures
    with session_scope() as s:
        pd.testing.assert_frame_equal(aging.aging_sql(s, today), aging.aging_frame(frame, today))
    submitted = frame[frame["in_ar"]]
    assert got["billed"] == sql_sum(warehouse, "select sum(billed) from finance_reconciliation_claims where "
                                               "submitted_on is not null")
    assert got["open_balance"] == sql_sum(warehouse, "select sum(open_balance) from finance_reconciliation_claims "
                                                     "where submitted_on is not null")
    assert got["insurance_ar"] == sql_sum(warehouse, "select sum(total) from finance_ar_aging where "
                                                     "balance_type = 'insurance'")
    assert got["patient_ar"] == sql_sum(warehouse, "select sum(total) from finance_ar_aging where "
                                                   "balance_type = 'patient'")
    assert got["patient_balance"] == sql_sum(warehouse, "select sum(patient_balance) from "
                                                        "finance_reconciliation_claims where submitted_on is not null")
    assert got["claims_submitted"] == len(submitted) and got["claims_crossed_over"] > 0
    not_sent = scalar(warehouse, "select count(*) from finance_reconciliation_claims where submitted_on is null")
    assert not_sent == sum(got["claims_not_sent"].values()) > 0
    assert set(got["claims_not_sent"]) <= set(NOT_SUBMITTED)
    days_in_ar = scalar(warehouse, "select numerator from finance_kpis where kpi = 'days_in_ar'")
    assert D(days_in_ar) == got["insurance_ar"]

    # the totals `otedi run` prints are this summary, taken at the end of the cycle: billed and paid include
    # the crossover records (they are in AR), and a denial stays open until it is written off
    assert demo["results"][-1].summary == got
    first = demo["results"][0].summary
    assert first["claims_submitted"] < got["claims_submitted"] and first["paid"] < got["paid"]
    crossover = submitted["crossover_of"].notna()
    assert got["billed"] == money(summary.figures(submitted[~crossover])["billed"]) + got["crossover_billed"]
    denied_open = frame[frame["in_ar"] & (frame["denied"] > 0) & (frame["open_balance"] > 0)]
    assert got["denied"] > 0 and len(denied_open) > 0


# ---------------------------------------------------------------------------------------------------------------
# Two refreshes at once


TWIN = """
import sys, time
from datetime import date
from otedi.analytics.warehouse_tables import refresh_finance_tables
start = float(sys.argv[1])
time.sleep(max(0.0, start - time.time()))
counts = refresh_finance_tables(today=date.fromisoformat(sys.argv[2]))
print(sum(counts.values()))
"""


def test_two_refreshes_at_once_end_with_one_complete_set(finance, warehouse):
    """The twins refresh as of two other dates (so every table's rows differ by as_of and ages): a reader
    meanwhile sees one whole refresh or another, never tables of two; at the end one twin's set is there."""
    days = [TODAY, TODAY + timedelta(days=1), TODAY + timedelta(days=2)]
    expected = {day: frames_now(day) for day in days}
    wt.refresh_finance_tables(today=TODAY)
    start = time.time() + 4  # both processes past their imports, then at once
    procs = [subprocess.Popen([sys.executable, "-c", TWIN, str(start), day.isoformat()], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for day in days[1:]]
    seen = set()
    while any(p.poll() is None for p in procs):
        tables, as_of = tables_now(warehouse)
        assert tables == expected[as_of], as_of
        seen.add(as_of)
        time.sleep(0.05)
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-1500:] for _, err in outs]
    rows = sum(len(next(iter(t.values()))) for t in expected[TODAY].values())
    assert [int(out) for out, _ in outs] == [rows, rows]
    assert TODAY in seen
    tables, as_of = tables_now(warehouse)
    assert as_of in days[1:] and tables == expected[as_of]
    for table in FINANCE:
        assert scalar(warehouse, f"select count(*) from {table}") == \
            scalar(warehouse, f"select count(distinct row_no) from {table}")
    assert scalar(warehouse, "select count(distinct refresh_id) from finance_refresh") == 3
    assert scalar(warehouse, "select count(*) from finance_refresh") == 3 * len(SCHEMAS)


def test_two_first_refreshes_at_once_create_the_tables_once(warehouse):
    start = time.time() + 4
    procs = [subprocess.Popen([sys.executable, "-c", TWIN, str(start), "2026-03-01"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-1500:] for _, err in outs]
    assert [int(out) for out, _ in outs] == [8, 8]  # an empty warehouse: the KPI rows only
    assert tables_now(warehouse)[1] == date(2026, 3, 1)
    assert scalar(warehouse, "select count(*) from finance_kpis") == 8
