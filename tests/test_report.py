"""KPIs on a known dataset, exports, the HTML report, and the end-to-end cycle through the simulator.

The report's screenshot in a real browser: test_report_screenshot.py; the export schemas: test_exports.py."""

import re
import shutil
from datetime import date, datetime, timedelta, timezone
from html import escape, unescape
from decimal import Decimal as D

import pandas as pd
import pytest
from sqlalchemy import func, select, update

from otedi.acks.load import load_ack_file
from otedi.analytics import (claim_reconciliation, export_tables, kpi_table, line_reconciliation, payments,
                             unmatched_remittances, work_queue, write_html_report)
from otedi.analytics import charts
from otedi.analytics.denials import denial_detail
from otedi.analytics.report_html import render_report
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
    assert [p.name for p in written] == [f"{t}.csv" for t in TABLES] + ["datapackage.json"]
    claims = pd.read_csv(tmp_path / "csv" / "reconciliation_claims.csv", dtype=str)
    assert len(claims) == 8 and sum(D(v) for v in claims["paid"]) == D("159.86")
    assert len(pd.read_csv(tmp_path / "csv" / "reconciliation_lines.csv")) == 10
    assert len(pd.read_csv(tmp_path / "csv" / "work_queue.csv")) == 8
    export_tables(tmp_path / "pq", "parquet", today=TODAY)
    lines = pd.read_parquet(tmp_path / "pq" / "reconciliation_lines.parquet")
    assert sum(lines["denied"]) == D("195.00") and isinstance(lines["denied"].iloc[0], D)
    [book] = export_tables(tmp_path / "xl", "xlsx", today=TODAY)
    assert book.name == "finance_tables.xlsx"
    with pytest.raises(ValueError, match="csv, parquet, xlsx"):
        export_tables(tmp_path, "ods")

    html = write_html_report(tmp_path / "report.html", today=TODAY).read_text()
    assert_self_contained(html)
    assert "AR aging" in html and "Bundling / NCCI" in html and "$485.00" in html
    assert "JANE" not in html and "DOE" not in html and "1EG4TE5MK73" not in html  # no names or member ids


def assert_self_contained(html: str) -> None:
    """One file: nothing to fetch (no script, stylesheet, image, font or frame), not one http(s) address."""
    assert "<svg" in html and "<style>" in html
    lowered = html.lower()
    for needle in ("http://", "https://", "<script", "<link", "<img", "<iframe", "<object", "<embed", " src=",
                   "@import", "@font-face", "url(http", "url(//", "//www."):
        assert needle not in lowered, needle
    assert set(re.findall(r'href="([^"]*)"', html)) <= {f"#{a}" for a in re.findall(r' id="([^"]+)"', html)}
    assert set(re.findall(r"url\(([^)]*)\)", html)) <= {f"#{a}" for a in re.findall(r' id="([^"]+)"', html)}


def section(html: str, anchor: str) -> str:
    start = html.index(f'<section id="{anchor}">')
    return html[start:html.index("</section>", start)]


def plain(fragment: str) -> str:
    """The text of an HTML fragment, tags dropped, entities decoded, spaces collapsed."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def test_the_report_speaks_finance_not_column_names(finance):
    html = render_report(TODAY)
    text = plain(html)
    summary = plain(section(html, "summary"))
    # billed 1,035.00 of 8 claims; AR 485.00 = B, C, D denied 65 each + E reversed 160 + F silent 65 + G 65
    for figure in ("Billed $1,035.00 8 claims submitted", "Paid by payers $159.86", "Insurance AR $485.00",
                   "Patient balances $16.00", "Denied, still open $195.00", "Work items 8",
                   "Clean-claim rate 87.5% 7 of 8 claims", "Days in AR 42.2 days", "Denial rate 60.0% 3 of 5 claims",
                   "Net collection rate 41.2% $159.86 of $387.66"):
        assert figure in summary, figure
    assert "Dates of service: 23 Feb 2026 – 9 Mar 2026 · as of 20 Apr 2026" in text
    for raw in ("open_balance", "patient_responsibility", "denied_open", "claim_rate", "payer_id", "0-30"):
        assert raw not in text, raw  # human labels, not column names
    breakdowns = plain(section(html, "breakdowns"))
    assert "Bright Hands Occupational Therapy PLLC 8 $1,035.00 $159.86 $357.34" in breakdowns  # the practice's name
    assert "CGS MEDICARE PART B OHIO id 15202 7 $970.00" in breakdowns and "UNITEDHEALTHCARE id 87726 1 $65.00" \
        in breakdowns
    assert "Anna Smith, OT NPI 1678901236 8 $1,035.00" in breakdowns  # the rendering provider by name
    aging_text = plain(section(html, "aging"))
    assert "CGS MEDICARE PART B OHIO $0.00 $420.00 $0.00 $0.00 $0.00 $420.00 5" in aging_text
    assert "All payers $0.00 $485.00 $0.00 $0.00 $0.00 $485.00 6" in aging_text
    denied = plain(section(html, "denials"))
    assert "3 of 5 adjudicated claims had a denial (60.0%)" in denied
    assert "Authorization / referral $65.00 1 1 33.3%" in denied and "Timely filing $65.00" in denied
    assert "Mar 2026 5 3 $745.00 $195.00 60.0% 26.2%" in denied  # the trend: adjudicated, denied, billed ...
    payments_text = plain(section(html, "payments"))
    assert "2026-03-20 CGS MEDICARE PART B OHIO T1 ACH $230.01 $237.86 $7.85 $0.00" in payments_text


def test_the_work_queue_lists_the_items_themselves(finance):
    html = render_report(TODAY)
    work = section(html, "work")
    queue = work_queue(today=TODAY)
    assert len(queue) == 8
    for item in queue.to_dict("records"):  # every item, with its claim, patient id, amount and what happened
        assert f"{item['claim_id']}<span" in work, item["claim_id"]
        assert escape(item["detail"]) in work, item["claim_id"]
    text = plain(work)
    assert "Denied: 3 items, $195.00" in text and "Rejected: 1 item, $65.00" in text
    assert f"{finance['B']} CGS MEDICARE PART B OHIO Bright Hands Occupational Therapy PLLC P200 2026-03-03 $65.00" \
        in text
    assert "59 or XE/XS/XP/XU" in text  # B's next step


def chart_ticks(html: str) -> list[list[str]]:
    """Each chart's money tick labels, in order."""
    charts = re.findall(r'<svg class="chart".*?</svg>', html, flags=re.S)
    return [[t for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg) if re.fullmatch(r"-?\$[\d,.]+[kM]?", t)]
            for svg in charts]


def tick_value(label: str) -> D:
    number = D(label.lstrip("-$").rstrip("kM").replace(",", ""))
    return number * (1000 if label.endswith("k") else 1_000_000 if label.endswith("M") else 1)


def test_chart_axes_tick_at_round_amounts(finance):
    ticks = chart_ticks(render_report(TODAY))
    assert len(ticks) == 6  # billed split, payers, aging, Pareto, trend, payments
    assert ticks[0] == ["$0", "$250", "$500", "$750", "$1,000"]  # where the 1,035.00 billed went
    assert ticks[2] == ["$0", "$200", "$400"]  # aging: 485.00 in one bucket
    for labels in ticks:
        values = [tick_value(t) for t in labels]
        steps = {b - a for a, b in zip(values, values[1:])}
        assert len(steps) == 1 and values[0] == 0, labels
        [step] = steps
        mantissa = step.scaleb(-step.adjusted()).normalize()
        assert mantissa in {D(1), D(2), D("2.5"), D(5)}, labels
    assert [charts.money_label(v, 40_000) for v in (0, 2500, 12500, 30000)] == ["$0", "$2.5k", "$12.5k", "$30k"]
    assert charts.money_label(1_500_000, 2_000_000) == "$1.5M" and charts.money_label(750) == "$750"


def test_the_report_covers_a_range_of_service_or_posting_dates(finance):
    g_only = plain(render_report(TODAY, date_from=date(2026, 2, 1), date_to=date(2026, 2, 28)))
    assert "Dates of service: 1 Feb 2026 – 28 Feb 2026" in g_only
    assert "Billed $65.00 1 claim submitted" in g_only and "UNITEDHEALTHCARE" in g_only  # G, rejected
    assert "CGS MEDICARE" not in g_only
    posted = plain(render_report(TODAY, date_from=date(2026, 3, 20), date_to=date(2026, 3, 20), basis="posting"))
    # the 835s' payment date (BPR16 20260320) posted to A, B, C, D, E, H: 230 + 65 + 225 + 65 + 160 + 160
    assert "Posting dates (835 payment date, practice postings): 20 Mar 2026 – 20 Mar 2026" in posted
    assert "Billed $905.00 6 claims submitted" in posted
    nothing = plain(render_report(TODAY, date_from=date(2026, 3, 21), basis="posting"))
    assert "Billed $0.00 0 claims submitted" in nothing and "Nothing to work." in nothing
    with pytest.raises(ValueError, match="basis 'billing': use one of service, posting"):
        render_report(TODAY, basis="billing")
    with pytest.raises(ValueError, match="the first date is after the last"):
        render_report(TODAY, date_from=date(2026, 4, 1), date_to=date(2026, 3, 1))


def test_the_same_data_renders_the_same_bytes(finance, tmp_path):
    first = write_html_report(tmp_path / "a.html", today=TODAY).read_bytes()
    second = write_html_report(tmp_path / "b.html", today=TODAY).read_bytes()
    assert first == second
    svg = charts.bars("k", "t", ["a", "b"], [("x", [D("1.00"), D("2.00")])])
    assert svg == charts.bars("k", "t", ["a", "b"], [("x", [D("1.00"), D("2.00")])])
    assert svg.startswith('<svg class="chart"') and "<?xml" not in svg and "<metadata" not in svg
    assert all(i.startswith("k-") for i in re.findall(r' id="([^"]+)"', svg))  # ids unique to the chart
    assert "<text" in svg and "font-family" in svg and "@font-face" not in svg  # text stays text, no font file


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
    rows = {p.stem: len(pd.read_csv(p)) for p in written if p.suffix == ".csv"}
    assert (rows["reconciliation_claims"], rows["reconciliation_lines"], rows["payments"], rows["work_queue"]) == (
        len(claims), n_lines, n_posted, len(queue))
    html = write_html_report(tmp_path / "report.html", today=today).read_text()
    assert_self_contained(html)

    # the held 835s arrive: the silent claims' no_835 items close
    simulate(drop, tmp_path / "state", seed=3, today=built_on + timedelta(weeks=7))
    _load_inbound(drop / "inbound")
    later = work_queue(today=today)
    assert not later["reasons"].str.contains("no_835").any()
    assert not claim_reconciliation(today=today).set_index("claim_id").loc[list(silent), "awaiting_payer"].any()


def test_deposits_settling_after_the_as_of_date_are_in_transit(finance):
    # An 835 arrives before its EFT settles (BPR16): posted to the claims, not yet on the bank statement.
    assert "In transit" not in plain(render_report(TODAY))
    early = plain(render_report(date(2026, 3, 18)))
    found = re.search(r"In transit: (\d+) of these deposits settle after 18 Mar 2026 \(BPR16, the latest "
                      r"20 Mar 2026\): posted to the claims, not yet in the bank statement of this date\.", early)
    assert found and int(found.group(1)) >= 1, early[:2000]
