"""Secondary claims coded under the secondary payer's own rules, with the primary's figures apportioned.

A working-aged Medicare beneficiary (MSP type 12) whose employer plan rounds each code by the CPT midpoint
rule: the Medicare secondary claim carries Medicare's total-time units (MCPM Pub 100-04 ch.5 §20.2), SBR05
12 (837P TR3 2000B SBR05: "required when the destination payer is Medicare and Medicare is not the primary
payer"), and 2320/2430 that balance line by line (TR3 2430 SVD/CAS) after the apportioning."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

from sqlalchemy import select

from otedi.claims.resubmit import resubmit
from otedi.outbound import run_outbound
from otedi.warehouse import models
from otedi.warehouse.db import session_scope
from tests.factories import charge, write_charges_csv
from tests.remit_builder import Clp, Svc
from tests.test_resubmit import _write_with_prior_payers, find, post

TODAY = date(2026, 3, 25)
EGHP = dict(payer_id="DEMOEGHP", payer_name="EMPLOYER GROUP HEALTH PLAN", claim_filing_code="CI",
            member_id="E7788990011", group_number="E12345")
MEDICARE_SECONDARY = dict(payer_id="15202", payer_name="CGS MEDICARE PART B OHIO", claim_filing_code="MB",
                          member_id="1EG4TE5MK73", payer_sequence="S", msp_type="12", group_number=None)


def _bill(tmp_path, codes):
    """Primary rows for the employer plan and the same services for Medicare as secondary; the primary claim id."""
    rows = []
    for n, (cpt, minutes, amount) in enumerate(codes, start=1):
        rows.append(charge(charge_id=f"E-{n}", cpt=cpt, minutes=minutes, units=1, charge_amount=D(amount), **EGHP))
        rows.append(charge(charge_id=f"E-{n}S", cpt=cpt, minutes=minutes, units=1, charge_amount=D(amount),
                           **MEDICARE_SECONDARY))
    write_charges_csv(tmp_path / "charges.csv", rows)
    run_outbound(tmp_path / "charges.csv", tmp_path / "out", today=date(2026, 3, 10))
    with session_scope() as s:
        [claim] = s.scalars(select(models.Claim)).all()
        return claim.claim_id, [(ln.cpt, ln.units) for ln in claim.lines]


def _secondary_lines(claim_id):
    with session_scope() as s:
        row = s.scalar(select(models.Claim).where(models.Claim.claim_id == claim_id))
        return (row.payer_id, row.payer_sequence, row.status,
                [(ln.cpt, ln.units, ln.modifiers, ln.charge_amount) for ln in row.lines])


def test_medicare_secondary_is_recoded_by_total_time_and_balances(warehouse, tmp_path):
    pcn, primary_lines = _bill(tmp_path, [("97530", 22, "80.00"), ("97110", 22, "68.00")])
    assert primary_lines == [("97530", 1), ("97110", 1)]  # midpoint: 22 minutes of a code = 1 unit each
    post(tmp_path, "eghp.835", [Clp(pcn, icn="EGHP-1", services=[
        Svc("97110", D("68.00"), D("40.00"), [("CO", "45", D("13.00")), ("PR", "3", D("15.00"))], lcn="E-2"),
        Svc("97530", D("80.00"), D("50.00"), [("CO", "45", D("15.00")), ("PR", "3", D("15.00"))], lcn="E-1"),
    ])], "T-E")
    with session_scope() as s:
        [built] = resubmit(s, today=TODAY, claim_ids=(), secondary=True).built
    payer, sequence, status, lines = _secondary_lines(built.claim_id)
    # Medicare total time: 44 minutes = 3 units; 97530 gets the third (tie on leftover minutes: charted first)
    assert (payer, sequence, status) == ("15202", "S", "ready")
    assert lines == [("97530", 2, "GO", D("80.00")), ("97110", 1, "GO", D("68.00"))]

    segs = _write_with_prior_payers(built.claim_id, tmp_path)  # through the pyx12 gate
    subscriber = find(segs, "SBR")[0]
    assert subscriber[1] == "S" and subscriber[5] == "12" and subscriber[9] == "MB"
    assert [(s[1], s[2], s[5]) for s in find(segs, "SVD")] == [("DEMOEGHP", "50", "2"), ("DEMOEGHP", "40", "1")]
    assert find(segs, "AMT", "D")[0][2] == "90"


def test_primary_codes_the_secondary_does_not_bill_are_apportioned_per_date(warehouse, tmp_path):
    # 8 + 8 minutes: the midpoint rule bills both codes; Medicare's total time (16 min) one unit of 97110
    pcn, primary_lines = _bill(tmp_path, [("97110", 8, "68.00"), ("97140", 8, "66.00")])
    assert primary_lines == [("97110", 1), ("97140", 1)]
    post(tmp_path, "eghp.835", [Clp(pcn, icn="EGHP-2", services=[
        Svc("97110", D("68.00"), D("30.00"), [("CO", "45", D("18.00")), ("PR", "3", D("20.00"))], lcn="E-1"),
        Svc("97140", D("66.00"), D("40.00"), [("CO", "45", D("26.00"))], lcn="E-2"),
    ])], "T-E2")
    with session_scope() as s:
        [built] = resubmit(s, today=TODAY, claim_ids=(), secondary=True).built
        statuses = dict(s.execute(select(models.Charge.charge_id, models.Charge.status)
                                  .where(models.Charge.payer_sequence == "S")).all())
    _, _, _, lines = _secondary_lines(built.claim_id)
    assert lines == [("97110", 1, "GO", D("134.00"))]  # the day's charge the primary adjudicated
    assert statuses == {"E-1S": "claimed", "E-2S": "not_billed"}
    segs = _write_with_prior_payers(built.claim_id, tmp_path)
    [svd] = find(segs, "SVD")
    cas = [seg for seg in segs if seg[0] == "CAS"]
    assert svd[2] == "70" and sum(D(seg[i]) for seg in cas for i in range(3, len(seg), 3) if seg[i]) == D("64.00")


def _denied_primary(tmp_path, carc):
    pcn, _ = _bill(tmp_path, [("97530", 30, "160.00")])
    post(tmp_path, "eghp.835", [Clp(pcn, status="4", icn="EGHP-3", services=[
        Svc("97530", D("160.00"), D("0"), [("CO", carc, D("160.00"))], lcn="E-1", units=2)])], "T-E3")
    with session_scope() as s:
        return resubmit(s, today=TODAY, claim_ids=(), secondary=True).built


def test_primary_that_denied_everything_as_not_covered_goes_to_the_secondary(warehouse, tmp_path):
    # CO-96 non-covered: the employer plan does not cover it, Medicare as secondary may
    assert [b.payer_id for b in _denied_primary(tmp_path, "96")] == ["15202"]


def test_primary_that_denied_everything_for_a_billing_error_does_not(warehouse, tmp_path):
    assert _denied_primary(tmp_path, "16") == []  # CO-16: correct the claim and send it to the primary again


def test_primary_that_denied_a_line_but_left_patient_responsibility_on_another(warehouse, tmp_path):
    pcn, _ = _bill(tmp_path, [("97530", 22, "80.00"), ("97110", 22, "68.00")])
    post(tmp_path, "eghp.835", [Clp(pcn, icn="EGHP-5", services=[
        Svc("97530", D("80.00"), D("0"), [("CO", "50", D("80.00"))], lcn="E-1"),
        Svc("97110", D("68.00"), D("40.00"), [("CO", "45", D("13.00")), ("PR", "3", D("15.00"))], lcn="E-2"),
    ])], "T-E5")
    with session_scope() as s:
        assert s.scalar(select(models.Claim.status).where(models.Claim.claim_id == pcn)) == "partially_paid"
        [built] = resubmit(s, today=TODAY, claim_ids=(), secondary=True).built
    segs = _write_with_prior_payers(built.claim_id, tmp_path)
    # the CO-50 line stays with the primary (corrected or appealed there); the coinsurance line goes
    assert [(s[2], s[3]) for s in find(segs, "SVD")] == [("40", "HC:97110:GO")]
    assert ["CAS", "CO", "50", "80"] not in segs
