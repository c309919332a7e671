"""KPIs on a known dataset, exports, the HTML report, and the end-to-end cycle through the simulator."""

import shutil
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal as D

import pandas as pd
import pytest
from sqlalchemy import func, select, update

from otedi.acks.load import load_ack_file
from otedi.analytics import (claim_reconciliation, export_tables, kpi_table, line_reconciliation, payments,
                             unmatched_remittances, work_queue, write_html_report)
from otedi.analytics.denials import denial_detail
from otedi.charges.synth import synth_charges
from otedi.outbound import run_outbound
from otedi.remit.post import post_remittance_file
from otedi.simulator import simulate
from otedi.warehouse import models
from otedi.warehouse.db import session_scope
from tests.test_reconcile import TODAY, finance, ledger_totals  # noqa: F401 - finance is a fixture

TABLES = ["reconciliation_claims", "reconciliation_lines", "payments", "unmatched_remittances", "held_remittances",
          "ar_aging", "work_queue", "denials", "denial_pareto", "denial_trend", "denial_recoverable", "kpis"]


def test_kpis_on_the_known_dataset(finance):
    values = {r["kpi"]: r for r in kpi_table(today=TODAY).to_dict("records")}
    # clean: 8 claims with a 277CA, G rejected -> 7/8
    assert (values["clean_claim_rate"]["value"], values["clean_claim_rate"]["numerator"]) == (D("0.8750"), "7")
    # first pass: A, B, C, D, E, H adjudicated; B and D denied (CLP02 4), C denied a line -> A, E, H = 3/6
    assert values["first_pass_resolution_rate"]["value"] == D("0.5000")
    assert values["denial_rate"]["value"] == D("0.6000")  # B, C, D of A, B, C, D, H
    # AR 485.00 (B 65 + C 65 + D 65 + E 160 + F 65 + G 65) / (1035.00 billed in 90 days / 90) = 42.17
    assert (values["days_in_ar"]["value"], values["days_in_ar"]["numerator"],
            values["days_in_ar"]["denominator"]) == (D("42.2"), "485.00", "1035.00/90")
    # paid 159.86 / (billed 745.00 - contractual 357.34 = 387.66)
    assert (values["net_collection_rate"]["value"], values["net_collection_rate"]["denominator"]) == (
        D("0.4124"), "387.66")


def test_exports_and_the_self_contained_html_report(finance, tmp_path):
    written = export_tables(tmp_path / "csv", "csv", today=TODAY)
    assert [p.name for p in written] == [f"{t}.csv" for t in TABLES]
    claims = pd.read_csv(tmp_path / "csv" / "reconciliation_claims.csv", dtype=str)
    assert len(claims) == 8 and sum(D(v) for v in claims["paid"]) == D("159.86")
    assert len(pd.read_csv(tmp_path / "csv" / "reconciliation_lines.csv")) == 10
    assert len(pd.read_csv(tmp_path / "csv" / "work_queue.csv")) == 8
    export_tables(tmp_path / "pq", "parquet", today=TODAY)
    lines = pd.read_parquet(tmp_path / "pq" / "reconciliation_lines.parquet")
    assert sum(lines["denied"]) == D("195.00") and isinstance(lines["denied"].iloc[0], D)
    with pytest.raises(ValueError, match="csv, parquet"):
        export_tables(tmp_path, "xlsx")

    html = write_html_report(tmp_path / "report.html", today=TODAY).read_text()
    assert "<svg" in html and "http://" not in html and "https://" not in html and "<script" not in html
    assert "AR aging" in html and "Bundling / NCCI" in html and "$485.00" in html
    assert "JANE" not in html and "DOE" not in html and "1EG4TE5MK73" not in html  # no names or member ids


def _load_inbound(inbound) -> None:
    with session_scope() as s:
        for path in sorted(inbound.glob("*.999")) + sorted(inbound.glob("*.277")):
            load_ack_file(s, path)
        for path in sorted(inbound.glob("*.835")):
            post_remittance_file(s, path)


def test_end_to_end_cycle_ties_to_the_ledger_and_the_835s(warehouse, tmp_path):
    built_on = date(2026, 9, 25)
    synth_charges(300, 11, tmp_path / "extract.csv", start=date(2026, 8, 24), days=28)
    run_outbound(tmp_path / "extract.csv", tmp_path / "out", today=built_on)
    with session_scope() as s:  # the warehouse stamps the wall clock; the cycle runs on built_on
        stamp = datetime.combine(built_on, datetime.min.time(), timezone.utc)
        s.execute(update(models.Claim).values(created_at=stamp))
        s.execute(update(models.ClaimFile).values(created_at=stamp))
    drop = tmp_path / "drop"
    (drop / "outbound").mkdir(parents=True)
    for path in (tmp_path / "out").glob("*.837"):
        shutil.copy(path, drop / "outbound" / path.name)
    first = simulate(drop, tmp_path / "state", seed=3, today=built_on + timedelta(days=1))
    _load_inbound(drop / "inbound")
    today = built_on + timedelta(days=50)  # past every payer kind's expected days to an 835

    claims = claim_reconciliation(today=today)
    for r in claims.to_dict("records"):
        assert r["billed"] == (r["paid"] + r["contractual"] + r["patient_responsibility"] + r["other_adjustments"]
                               + r["open_balance"]), r["claim_id"]
        assert r["open_balance"] == r["denied"] + r["awaiting_payer"]
    ledger = ledger_totals()
    with session_scope() as s:
        billed = s.scalar(select(func.sum(models.Claim.total_charge)))
        n_lines = s.scalar(select(func.count()).select_from(models.ClaimLine))
        n_posted = s.scalar(select(func.count()).select_from(models.Remittance).where(
            models.Remittance.status == "posted"))
    unmatched_paid = unmatched_remittances()["paid_amount"].sum() if len(unmatched_remittances()) else D("0.00")
    assert claims["billed"].sum() == billed
    assert claims["paid"].sum() + unmatched_paid == ledger["payment"]
    assert claims["denied"].sum() == ledger.get("denial", D("0.00")) == denial_detail(today=today)["denied"].sum()
    assert line_reconciliation(today=today)["billed"].sum() == billed
    pays = payments()
    assert len(pays) == n_posted == len(first.remittances) and pays["ties"].all()
    assert pays["bpr_amount"].sum() + pays["plb_total"].sum() == ledger["payment"]  # Σ BPR02 + Σ PLB = Σ paid

    queue = work_queue(today=today).set_index("claim_id")
    for r in claims.to_dict("records"):
        reasons = queue.loc[r["claim_id"], "reasons"] if r["claim_id"] in queue.index else ""
        if r["denied"] > 0:
            assert "denied" in reasons, r["claim_id"]
        if r["status"] == "rejected":
            assert "rejected" in reasons and "send the claim again" in queue.loc[r["claim_id"], "next_step"]
        if r["status"] == "accepted" and not r["adjudicated"]:  # the simulator held its 835 back
            assert "no_835" in reasons and "Claim status inquiry" in queue.loc[r["claim_id"], "next_step"]
    silent = set(claims.loc[claims["status"] == "accepted", "claim_id"])
    assert len(silent) == first.held_claims > 0
    assert queue["reasons"].str.contains("denied").any()

    written = export_tables(tmp_path / "export", "csv", today=today)
    rows = {p.stem: len(pd.read_csv(p)) for p in written}
    assert (rows["reconciliation_claims"], rows["reconciliation_lines"], rows["payments"], rows["work_queue"]) == (
        len(claims), n_lines, n_posted, len(queue))
    html = write_html_report(tmp_path / "report.html", today=today).read_text()
    assert "<svg" in html and "http://" not in html and "https://" not in html

    # the held 835s arrive: the silent claims' no_835 items close
    simulate(drop, tmp_path / "state", seed=3, today=built_on + timedelta(weeks=7))
    _load_inbound(drop / "inbound")
    later = work_queue(today=today)
    assert not later["reasons"].str.contains("no_835").any()
    assert not claim_reconciliation(today=today).set_index("claim_id").loc[list(silent), "awaiting_payer"].any()
