"""Reconciliation tied to the ledger to the cent: claims, lines, payments, unmatched and held (SQLite and PostgreSQL).

The `finance` fixture bills eight claims through run_outbound, loads a 277CA
and posts two 835s covering paid, partially paid, denied (CO-236, CO-197,
CO-29), underpaid, reversal, PLB and an unmatched claim. test_ar.py,
test_denials.py and test_report.py reuse it.
"""

from datetime import date, datetime, timezone
from decimal import Decimal as D
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from otedi.acks.load import load_ack_file
from otedi.analytics import (claim_reconciliation, held_remittances, line_reconciliation, load_snapshot, payments,
                             unmatched_remittances)
from otedi.outbound import run_outbound
from otedi.remit.post import post_remittance_file
from otedi.warehouse import models
from otedi.warehouse.db import session_scope
from tests.factories import charge, write_charges_csv
from tests.remit_builder import Clp, Svc, interchange, remittance

SUBMITTED = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)
TODAY = date(2026, 4, 20)  # 41 days after submission
POSTED = ("paid", "contractual", "patient_responsibility", "other_adjustments", "denied")


def _charges() -> list:
    medicare = dict(minutes=15, units=1)
    return [
        charge(charge_id="A-1", cpt="97530", minutes=30, units=2, charge_amount=D("160.00")),
        charge(charge_id="A-2", cpt="97535", charge_amount=D("70.00"), **medicare),
        charge(charge_id="B-1", cpt="97110", charge_amount=D("65.00"), patient_id="P200",
               service_date=date(2026, 3, 3), **medicare),
        charge(charge_id="C-1", cpt="97530", minutes=30, units=2, charge_amount=D("160.00"), patient_id="P300",
               service_date=date(2026, 3, 4)),
        charge(charge_id="C-2", cpt="97535", charge_amount=D("65.00"), patient_id="P300",
               service_date=date(2026, 3, 4), **medicare),
        charge(charge_id="D-1", cpt="97110", charge_amount=D("65.00"), patient_id="P400",
               service_date=date(2026, 3, 5), **medicare),
        charge(charge_id="E-1", cpt="97530", minutes=30, units=2, charge_amount=D("160.00"), patient_id="P500",
               service_date=date(2026, 3, 6)),
        charge(charge_id="F-1", cpt="97110", charge_amount=D("65.00"), patient_id="P600",
               service_date=date(2026, 3, 9), **medicare),
        charge(charge_id="H-1", cpt="97530", minutes=30, units=2, charge_amount=D("160.00"), patient_id="P700",
               service_date=date(2026, 3, 9)),
        # P100 also has UHC: billed as primary for an earlier visit (G) ...
        charge(charge_id="G-1", cpt="97110", charge_amount=D("65.00"), service_date=date(2026, 2, 23),
               payer_id="87726", payer_name="UNITEDHEALTHCARE", claim_filing_code="CI",
               member_id="U1234567", **medicare),
        # ... and as secondary for A's visit: that charge waits for Medicare's 835 (it is not billed yet)
        charge(charge_id="S-1", cpt="97530", minutes=30, units=2, charge_amount=D("160.00"), payer_id="87726",
               payer_name="UNITEDHEALTHCARE", claim_filing_code="CI", payer_sequence="S", member_id="U1234567"),
    ]


def ack_277ca(claims: list[tuple[str, bool]]) -> str:
    """A 277CA accepting (A2:20) or rejecting (A7:562:82, rendering NPI) each claim id."""
    body = ["BHT*0085*08*B1*20260312*1200*TH", "HL*1**20*1", "NM1*PR*2*CGS MEDICARE*****PI*15202", "TRN*1*B1",
            "DTP*050*D8*20260312", "DTP*009*D8*20260312", "HL*2*1*21*1",
            "NM1*41*2*BRIGHT HANDS OT*****46*BRIGHT01", "TRN*2*B1", "STC*A1:19*20260312*WQ*0", "HL*3*2*19*1",
            "NM1*85*2*BRIGHT HANDS OT*****XX*1234567893", "TRN*1*0"]
    for n, (pcn, accepted) in enumerate(claims):
        body += [f"HL*{4 + n}*3*PT", "NM1*QC*1*DOE*JANE****MI*1EG4TE5MK73", f"TRN*2*{pcn}",
                 "STC*A2:20*20260312*WQ*65.00" if accepted else "STC*A7:562:82*20260312*U*65.00"]
        if accepted:
            body.append(f"REF*1K*ICN-{pcn}")
    tx = ["ST*277*0001*005010X214", *body, f"SE*{len(body) + 2}*0001"]
    return interchange([tx], functional_id="HN", version="005010X214")


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def post(path: Path):
    with session_scope() as s:
        return post_remittance_file(s, path)


def medicare_paid_a(pcn: str) -> Clp:
    """Allowed 84.00, 80% less 2% sequestration (the reference's worked example)."""
    return Clp(pcn, icn="ICN-A", services=[
        Svc("97530", D("160.00"), D("47.14"), [("CO", "45", D("99.88")), ("PR", "2", D("12.02")),
                                               ("CO", "253", D("0.96"))], lcn="A-1", units=2),
        Svc("97535", D("70.00"), D("18.72"), [("CO", "45", D("46.12")), ("PR", "2", D("4.78")),
                                              ("CO", "253", D("0.38"))], lcn="A-2"),
    ])


def paid_e(pcn: str, sign: int = 1) -> Clp:
    n = D(sign)
    return Clp(pcn, status="22" if sign < 0 else "1", icn="ICN-E", services=[
        Svc("97530", n * D("160.00"), n * D("48.00"), [("CO", "45", n * D("100.00")), ("PR", "2", n * D("12.00"))],
            lcn="E-1", units=2, date="20260306")])


@pytest.fixture
def finance(warehouse, tmp_path) -> dict[str, str]:
    """Eight claims adjudicated as the module docstring says; returns {letter: claim_id}."""
    write_charges_csv(tmp_path / "charges.csv", _charges())
    run_outbound(tmp_path / "charges.csv", tmp_path / "out", today=date(2026, 3, 10))
    with session_scope() as s:
        # the warehouse stamps created_at with the wall clock; pin the submission day
        s.execute(update(models.Claim).values(created_at=SUBMITTED))
        s.execute(update(models.ClaimFile).values(created_at=SUBMITTED))
        rows = s.execute(select(models.ClaimLine.charge_id, models.Claim.claim_id).join(models.ClaimLine.claim))
        ids = {charge_id.split("-")[0]: claim_id for charge_id, claim_id in rows}
    with session_scope() as s:
        load_ack_file(s, write(tmp_path, "b1.277", ack_277ca([(ids[k], k != "G") for k in "ABCDEFGH"])))
    era1 = remittance([
        medicare_paid_a(ids["A"]),
        Clp(ids["B"], status="4", icn="ICN-B", services=[
            Svc("97110", D("65.00"), D("0.00"), [("CO", "236", D("65.00"))], lcn="B-1", date="20260303")]),
        Clp(ids["C"], icn="ICN-C", services=[
            Svc("97530", D("160.00"), D("64.00"), [("CO", "45", D("80.00")), ("PR", "2", D("16.00"))],
                lcn="C-1", units=2, date="20260304"),
            Svc("97535", D("65.00"), D("0.00"), [("CO", "197", D("65.00"))], lcn="C-2", date="20260304")]),
        Clp(ids["D"], status="4", icn="ICN-D", services=[
            Svc("97110", D("65.00"), D("0.00"), [("CO", "29", D("65.00"))], lcn="D-1", date="20260305")]),
        paid_e(ids["E"]),
        Clp(ids["H"], icn="ICN-H", services=[
            Svc("97530", D("160.00"), D("30.00"), [("CO", "45", D("130.00"))], lcn="H-1", units=2,
                date="20260309")]),
        Clp("NOTOURS123", icn="ICN-X", services=[Svc("97110", D("50.00"), D("30.00"), [("CO", "45", D("20.00"))])]),
    ], trace="T1", plb=[("L6", D("-2.15")), ("WO", D("10.00"))])
    post(write(tmp_path, "era1.835", interchange([era1], control=1)))
    post(write(tmp_path, "era2.835", interchange([remittance([paid_e(ids["E"], -1)], trace="T2")], control=2)))
    return ids


def by_claim(frame):
    return {row["claim_id"]: row for row in frame.to_dict("records")}


def ledger_totals() -> dict[str, D]:
    with session_scope() as s:
        return {k: D(v) for k, v in s.execute(select(models.LedgerEntry.entry_type, func.sum(models.LedgerEntry.amount))
                                             .group_by(models.LedgerEntry.entry_type)).all()}


EXPECTED = {  # billed, paid, contractual, PR, other, denied, open, allowed_835, status
    "A": ("230.00", "65.86", "147.34", "16.80", "0.00", "0.00", "0.00", "84.00", "patient_balance"),
    "B": ("65.00", "0.00", "0.00", "0.00", "0.00", "65.00", "65.00", "0.00", "denied"),
    "C": ("225.00", "64.00", "80.00", "16.00", "0.00", "65.00", "65.00", "80.00", "partially_paid"),
    "D": ("65.00", "0.00", "0.00", "0.00", "0.00", "65.00", "65.00", "0.00", "denied"),
    "E": ("160.00", "0.00", "0.00", "0.00", "0.00", "0.00", "160.00", None, "reversed"),
    "F": ("65.00", "0.00", "0.00", "0.00", "0.00", "0.00", "65.00", None, "accepted"),
    "G": ("65.00", "0.00", "0.00", "0.00", "0.00", "0.00", "65.00", None, "rejected"),
    "H": ("160.00", "30.00", "130.00", "0.00", "0.00", "0.00", "0.00", "30.00", "paid"),
}


def test_claim_figures_tie_to_the_ledger_to_the_cent(finance):
    rows = by_claim(claim_reconciliation(today=TODAY))
    assert len(rows) == 8
    for letter, (billed, paid, co, pr, other, denied, open_, allowed, status) in EXPECTED.items():
        r = rows[finance[letter]]
        got = (r["billed"], r["paid"], r["contractual"], r["patient_responsibility"], r["other_adjustments"],
               r["denied"], r["open_balance"], r["allowed_835"], r["status"])
        assert got == (D(billed), D(paid), D(co), D(pr), D(other), D(denied), D(open_),
                       None if allowed is None else D(allowed), status), letter
        assert r["days_outstanding"] == (41 if D(open_) else None)
        assert r["submitted_on"] == date(2026, 3, 10)
    a = rows[finance["A"]]
    assert (a["payer_kind"], a["payer_name"], a["expected_allowed"], a["remittances"]) == (
        "medicare", "CGS MEDICARE PART B OHIO", D("80.65"), 1)  # expected at the Ohio locality (test_fees.py)
    e = rows[finance["E"]]
    assert (e["adjudicated"], e["remittances"], e["awaiting_payer"]) == (False, 2, D("160.00"))
    assert e["last_event"].startswith("835 reversal of previous payment (trace T2)")
    assert rows[finance["G"]]["last_event"] == "277CA rejected A7:562"


def test_the_identity_holds_for_every_claim_and_line_and_totals_equal_the_ledger(finance):
    snap = load_snapshot()  # one read of the warehouse feeds every table
    claims = claim_reconciliation(snap, today=TODAY)
    for frame in (claims, line_reconciliation(snap, today=TODAY)):
        for r in frame.to_dict("records"):
            assert r["billed"] == sum((r[c] for c in POSTED if c != "denied"), D("0.00")) + r["open_balance"]
            assert r["open_balance"] == r["denied"] + r["awaiting_payer"]
    ledger = ledger_totals()
    unmatched = unmatched_remittances(snap)
    # the unmatched claim NOTOURS123 posted 30.00 paid + 20.00 contractual without a claim
    assert claims["paid"].sum() + unmatched["paid_amount"].sum() == ledger["payment"] == D("189.86")
    assert claims["contractual"].sum() + D("20.00") == ledger["contractual"]
    assert claims["denied"].sum() == ledger["denial"] == D("195.00")
    assert claims["patient_responsibility"].sum() == ledger["patient_responsibility"] == D("32.80")
    assert claims["open_balance"].sum() == D("485.00")


def test_lines_carry_their_own_postings(finance):
    lines = {r["charge_id"]: r for r in line_reconciliation(today=TODAY).to_dict("records")}
    a1 = lines["A-1"]
    assert (a1["billed"], a1["paid"], a1["contractual"], a1["patient_responsibility"], a1["allowed_835"],
            a1["expected_allowed"], a1["open_balance"]) == (D("160.00"), D("47.14"), D("100.84"), D("12.02"),
                                                            D("60.12"), D("57.51"), D("0.00"))
    c2 = lines["C-2"]
    assert (c2["denied"], c2["open_balance"], c2["awaiting_payer"], c2["allowed_835"]) == (
        D("65.00"), D("65.00"), D("0.00"), D("0.00"))
    assert lines["F-1"]["allowed_835"] is None and lines["F-1"]["open_balance"] == D("65.00")
    claims = by_claim(claim_reconciliation(today=TODAY))
    for claim_id, group in line_reconciliation(today=TODAY).groupby("claim_id"):
        for col in (*POSTED, "open_balance", "billed"):
            assert group[col].sum() == claims[claim_id][col], (claim_id, col)


def test_claim_level_postings_count_on_the_claim_only(finance, tmp_path):
    claim_level = Clp(finance["F"], icn="ICN-F", services=[], charge=D("65.00"), paid=D("29.06"),
                      claim_cas=[("CO", "45", D("35.94"))])
    post(write(tmp_path, "era3.835", interchange([remittance([claim_level], trace="T3")], control=3)))
    f = by_claim(claim_reconciliation(today=TODAY))[finance["F"]]
    assert (f["paid"], f["contractual"], f["open_balance"], f["claim_level"]) == (
        D("29.06"), D("35.94"), D("0.00"), D("65.00"))
    line = line_reconciliation(today=TODAY).set_index("charge_id").loc["F-1"]
    assert line["open_balance"] == D("65.00")  # nothing posted against the line itself


def test_payments_tie_deposits_to_postings_with_plb(finance):
    table = {r["trace_number"]: r for r in payments().to_dict("records")}
    t1, t2 = table["T1"], table["T2"]
    assert (t1["bpr_amount"], t1["posted_payments"], t1["plb_total"], t1["interest"], t1["recoveries"]) == (
        D("230.01"), D("237.86"), D("7.85"), D("2.15"), D("10.00"))
    assert (t1["posted_net"], t1["difference"], t1["ties"]) == (D("230.01"), D("0.00"), True)
    assert (t1["claims"], t1["matched"], t1["unmatched"], t1["denied"]) == (7, 6, 1, D("195.00"))
    assert (t2["bpr_amount"], t2["posted_payments"], t2["ties"]) == (D("-48.00"), D("-48.00"), True)
    total = payments()
    assert total["bpr_amount"].sum() + total["plb_total"].sum() == ledger_totals()["payment"]


def test_unmatched_and_held_remittances_are_their_own_lists(finance, tmp_path):
    [unmatched] = unmatched_remittances().to_dict("records")
    assert (unmatched["kind"], unmatched["reference"], unmatched["trace_number"], unmatched["charge_amount"],
            unmatched["paid_amount"], unmatched["resolved"]) == ("claim_not_found", "NOTOURS123", "T1", D("50.00"),
                                                                 D("30.00"), False)
    assert held_remittances().empty
    again = remittance([paid_e(finance["E"])], trace="T1")  # the T1 trace number again: a duplicate payment
    post(write(tmp_path, "dup.835", interchange([again], control=4)))
    [held] = held_remittances().to_dict("records")
    assert (held["status"], held["trace_number"], held["payment_amount"]) == ("duplicate", "T1", D("48.00"))
    assert "already posted" in held["hold_reason"]
    assert len(payments()) == 2  # the duplicate is not a payment
