"""Small builders for test data (fictitious people; valid-looking identifiers)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

from otedi.charges.record import Charge
from otedi.coding.result import CodedLine

BASE_CHARGE = Charge(
    charge_id="C1", practice_id="BRIGHTHANDS", service_date=date(2026, 3, 2),
    patient_id="P100", patient_last_name="DOE", patient_first_name="JANE", patient_dob=date(1950, 4, 1),
    patient_sex="F", patient_address1="1 ELM ST", patient_city="COLUMBUS", patient_state="OH", patient_zip="43215",
    payer_id="15202", payer_name="CGS MEDICARE PART B OHIO", claim_filing_code="MB", member_id="1EG4TE5MK73",
    rendering_npi="1678901236", rendering_last_name="SMITH", rendering_first_name="ANNA", rendering_role="OT",
    referring_npi="1432198764", referring_last_name="JONES", referring_first_name="MARK",
    place_of_service="11", cpt="97530", charge_amount=Decimal("120.00"), dx_codes=("M6281",),
    minutes=30, units=2, plan_of_care_start=date(2026, 2, 16), plan_of_care_signed_date=date(2026, 2, 18),
    plan_of_care_certified_through=date(2026, 5, 16),
)


def charge(**overrides) -> Charge:
    return replace(BASE_CHARGE, **overrides)


def coded(units: int = 1, modifiers: tuple[str, ...] = ("GO",), amount: str = "60.00", **overrides) -> CodedLine:
    return CodedLine(charge=charge(**overrides), units=units, modifiers=modifiers, charge_amount=Decimal(amount))


def write_charges_csv(path, charges) -> None:
    """Write Charge objects as a canonical extract CSV (what an EHR would export)."""
    import csv

    from otedi.charges.record import CANONICAL_COLUMNS

    def text(name, value):
        if value is None:
            return ""
        if name == "modifiers":
            return ":".join(value)
        if name == "dx_codes":
            return "|".join(value)
        return str(value)

    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(CANONICAL_COLUMNS)
        for c in charges:
            writer.writerow([text(name, getattr(c, name)) for name in CANONICAL_COLUMNS])
