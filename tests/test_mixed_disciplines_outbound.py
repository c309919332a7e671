"""A mixed OT/OTA/PT/Medicaid/MSP extract through load, coding and the 837P writer and pyx12 gate: the
2310B, SBR, HL and SV1 segments are what the TR3 and CMS rules say (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D
from pathlib import Path

from sqlalchemy import select

from otedi.outbound import run_outbound
from otedi.warehouse import models
from otedi.warehouse.db import session_scope
from otedi.x12.validate import validate_file
from tests.factories import charge, write_charges_csv

DAY = date(2026, 3, 2)
OT = dict(rendering_npi="1678901236", rendering_last_name="SMITH", rendering_first_name="ANNA", rendering_role="OT")
SUPERVISED = dict(supervising_npi="1678901236", supervising_last_name="SMITH", supervising_first_name="ANNA")
OTA = dict(rendering_npi="1326041245", rendering_last_name="BAKER", rendering_first_name="LIZ", rendering_role="OTA")
PT = dict(rendering_npi="1144201237", rendering_last_name="PRICE", rendering_first_name="ADAM", rendering_role="PT")
MEDICAID_CHILD = dict(patient_id="P200", patient_last_name="ROE", patient_first_name="SAM",
                      patient_dob=date(2018, 5, 1), payer_id="OHMCD", payer_name="OHIO MEDICAID",
                      claim_filing_code="MC", member_id="100000000777", relationship="19",
                      subscriber_last_name="ROE", subscriber_first_name="PAT", subscriber_dob=date(1985, 1, 2),
                      subscriber_sex="F", prior_auth_number="PA77", practice_id="KIDSTHRIVE")
OTHER_PLAN = dict(patient_id="P300", payer_id="55555", payer_name="SOME PLAN", claim_filing_code="CI",
                  member_id="XQ123456")


def segments(path: str) -> list[list[str]]:
    return [s.strip().split("*") for s in Path(path).read_text().split("~") if s.strip()]


def claims_in(path: str) -> dict[str, list[list[str]]]:
    """Each claim's segments, from its 2000B HL to the next 2000B HL, keyed by CLM01."""
    out, current = {}, []
    for seg in segments(path):
        if seg[0] == "HL" and seg[3] == "22":
            current = [seg]
        elif current:
            current.append(seg)
            if seg[0] == "CLM":
                out[seg[1]] = current
    return out


def test_mixed_extract_writes_claims_a_payer_accepts(warehouse, tmp_path):
    rows = [
        charge(charge_id="OT-1", cpt="97530", minutes=12, units=1, charge_amount=D("80.00"), **OT),
        charge(charge_id="OTA-1", cpt="97530", minutes=12, units=1, charge_amount=D("80.00"), **OTA, **SUPERVISED),
        charge(charge_id="OTA-2", cpt="97535", minutes=15, units=1, charge_amount=D("72.00"), **OTA),  # no supervisor
        charge(charge_id="PT-1", cpt="97110", minutes=20, units=1, charge_amount=D("68.00"), **PT),
        charge(charge_id="MC-1", cpt="97530", minutes=30, units=2, charge_amount=D("160.00"), **MEDICAID_CHILD),
        charge(charge_id="CO-1", cpt="97530", minutes=30, units=2, charge_amount=D("160.00"), **OTA, **OTHER_PLAN),
        charge(charge_id="MSP-1", cpt="97530", minutes=30, units=2, charge_amount=D("160.00"), payer_sequence="S"),
    ]
    write_charges_csv(tmp_path / "mixed.csv", rows)
    result = run_outbound(tmp_path / "mixed.csv", tmp_path / "out", today=date(2026, 3, 5))
    issues = {(i.charge_id, i.rule, str(i.severity)) for i in result.issues}
    assert ("MSP-1", "msp-type-required", "reject") in issues  # Medicare secondary without SBR05's code
    assert ("MC-1", "patient-is-subscriber", "warning") in issues and result.load.rejected == 1
    assert ("OTA-2", "supervising-required", "reject") in issues
    assert all(validate_file(p).ok for p in result.summary()["files"])

    by_claim = {}
    for p in result.summary()["files"]:
        by_claim.update(claims_in(p))
    with session_scope() as s:
        claim_of = dict(s.execute(select(models.ClaimLine.charge_id, models.Claim.claim_id)
                                  .join(models.ClaimLine.claim)).all())
    ot_claim = by_claim[claim_of["OT-1"]]
    assert claim_of["OTA-1"] == claim_of["OT-1"] != claim_of["PT-1"]  # OTA billed under the supervising OT
    assert [s for s in ot_claim if s[:2] == ["NM1", "82"]][0][9] == "1678901236"
    assert ["PRV", "PE", "PXC", "225X00000X"] in ot_claim
    # 24 minutes of 97530, 12 by each: the final-two-units rule, one unit with CO and one without
    assert [s[1] for s in ot_claim if s[0] == "SV1"] == ["HC:97530:GO", "HC:97530:CO:GO"]
    pt_claim = by_claim[claim_of["PT-1"]]
    assert ["PRV", "PE", "PXC", "225100000X"] in pt_claim and [s[1] for s in pt_claim if s[0] == "SV1"] == [
        "HC:97110:GP"]
    medicaid = by_claim[claim_of["MC-1"]]
    assert medicaid[0][4] == "0" and not [s for s in medicaid if s[0] == "HL" and s[3] == "23"]  # no 2000C
    assert [s for s in medicaid if s[:2] == ["NM1", "IL"]][0][3:5] == ["ROE", "SAM"]  # the child is the subscriber
    assert [s for s in medicaid if s[0] == "SBR"][0][2] == "18"
    other = by_claim[claim_of["CO-1"]]  # a plan that credentials assistants: the OTA renders
    assert [s for s in other if s[:2] == ["NM1", "82"]][0][9] == "1326041245"
    assert ["PRV", "PE", "PXC", "224Z00000X"] in other
