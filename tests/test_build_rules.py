"""One build, rules read once (otedi.coding.rulebook): a payer's rule change in the middle of the batch still
applies to exactly the dates of service it covers."""

from datetime import date
from decimal import Decimal

from sqlalchemy import select

from otedi.charges.load import load_extract
from otedi.claims.build import build_claims
from otedi.warehouse import models
from otedi.warehouse.db import session_scope
from tests.factories import charge, write_charges_csv

UHC = "payers/87726_unitedhealthcare.yaml"


def _visit(tag: str, day: date) -> list:
    # Two timed codes of 10 minutes: the 8-minute rule (20 minutes in all) bills one unit, the CPT midpoint
    # rule (each code on its own, 10 of 15 minutes passes the midpoint) one unit of each.
    common = dict(service_date=day, payer_id="87726", payer_name="UNITEDHEALTHCARE", claim_filing_code="CI",
                  minutes=10, units=1, charge_amount=Decimal("70.00"))
    return [charge(charge_id=f"{tag}-97530", cpt="97530", **common),
            charge(charge_id=f"{tag}-97110", cpt="97110", **common)]


def test_a_payer_rule_change_mid_batch_applies_from_its_effective_date(warehouse, mappings, tmp_path):
    text = (mappings / UHC).read_text()
    assert "rounding: cms_total_time" in text and "effective_to: null" in text
    (mappings / UHC).write_text(text.replace("effective_to: null", "effective_to: 2026-03-15"))
    (mappings / "payers/87726_unitedhealthcare_2026-03-16.yaml").write_text(
        text.replace("effective_from: 2025-01-01", "effective_from: 2026-03-16")
        .replace("rounding: cms_total_time", "rounding: cpt_midpoint"))
    write_charges_csv(tmp_path / "charges.csv", [*_visit("BEFORE", date(2026, 3, 13)),
                                                 *_visit("AFTER", date(2026, 3, 16)),
                                                 *_visit("LATER", date(2026, 3, 18))])
    with session_scope() as s:
        assert load_extract(s, tmp_path / "charges.csv", today=date(2026, 3, 20)).accepted == 6
    with session_scope() as s:
        built = build_claims(s, today=date(2026, 3, 20))
    with session_scope() as s:
        units = dict(s.execute(select(models.ClaimLine.charge_id, models.ClaimLine.units)).all())
        status = dict(s.execute(select(models.Charge.charge_id, models.Charge.status)).all())
    assert built.claims == 3
    # 2026-03-13, under the old file: the 8-minute rule, one unit for the day, on the first-charted code (a tie
    # of minutes; the build charts a visit by charge_id), the other not billed; from 2026-03-16 one unit each.
    assert units == {"BEFORE-97110": 1, "AFTER-97530": 1, "AFTER-97110": 1, "LATER-97530": 1, "LATER-97110": 1}
    assert status["BEFORE-97530"] == "not_billed"
    assert [i.rule for i in built.issues if i.charge_id == "BEFORE-97530"] == ["8-minute-rule"]
    assert not [i for i in built.issues if (i.charge_id or "").startswith(("AFTER", "LATER"))]
