"""The canonical charge line (docs/charge_extract.md), after
mapping and validation. Every later stage works on these."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

# Columns of the canonical extract, in contract order.
CANONICAL_COLUMNS: tuple[str, ...] = (
    "charge_id", "practice_id", "service_date",
    "patient_id", "patient_last_name", "patient_first_name", "patient_dob", "patient_sex",
    "patient_address1", "patient_city", "patient_state", "patient_zip",
    "payer_id", "payer_name", "claim_filing_code", "payer_sequence", "member_id", "group_number",
    "relationship", "subscriber_last_name", "subscriber_first_name", "subscriber_dob", "subscriber_sex",
    "rendering_npi", "rendering_last_name", "rendering_first_name", "rendering_role",
    "supervising_npi", "supervising_last_name", "supervising_first_name",
    "referring_npi", "referring_last_name", "referring_first_name",
    "place_of_service", "cpt", "modifiers", "minutes", "units", "charge_amount", "dx_codes",
    "prior_auth_number", "initial_treatment_date", "plan_of_care_start", "plan_of_care_signed_date",
    "plan_of_care_certified_through", "progress_report_date", "msp_type", "qmb",
)

OPTIONAL_COLUMNS: frozenset[str] = frozenset({
    "payer_sequence", "group_number", "relationship",
    "subscriber_last_name", "subscriber_first_name", "subscriber_dob", "subscriber_sex",
    "supervising_npi", "supervising_last_name", "supervising_first_name",
    "modifiers", "minutes", "units",
    "prior_auth_number", "initial_treatment_date", "plan_of_care_start", "plan_of_care_signed_date",
    "plan_of_care_certified_through", "progress_report_date", "msp_type", "qmb",
})

REQUIRED_COLUMNS: tuple[str, ...] = tuple(c for c in CANONICAL_COLUMNS if c not in OPTIONAL_COLUMNS)


@dataclass(frozen=True)
class Charge:
    charge_id: str
    practice_id: str
    service_date: date
    patient_id: str
    patient_last_name: str
    patient_first_name: str
    patient_dob: date
    patient_sex: str  # F, M or U
    patient_address1: str
    patient_city: str
    patient_state: str
    patient_zip: str
    payer_id: str
    payer_name: str
    claim_filing_code: str  # SBR09: MB, MC, CI, BL, HM, 16, ...
    member_id: str
    rendering_npi: str
    rendering_last_name: str
    rendering_first_name: str
    rendering_role: str  # OT, OTA, PT, PTA, SLP or SLPA
    referring_npi: str
    referring_last_name: str
    referring_first_name: str
    place_of_service: str
    cpt: str
    charge_amount: Decimal  # line total for all charted units
    dx_codes: tuple[str, ...]  # ICD-10-CM without the dot, most relevant first
    payer_sequence: str = "P"
    group_number: str | None = None
    relationship: str = "18"  # 18 self, 01 spouse, 19 child, G8 other
    subscriber_last_name: str | None = None
    subscriber_first_name: str | None = None
    subscriber_dob: date | None = None
    subscriber_sex: str | None = None
    modifiers: tuple[str, ...] = field(default_factory=tuple)
    minutes: int | None = None
    units: int | None = None
    prior_auth_number: str | None = None
    initial_treatment_date: date | None = None
    plan_of_care_certified_through: date | None = None
    # The supervising therapist of an assistant (2310B for payers that do not take assistants as rendering).
    supervising_npi: str | None = None
    supervising_last_name: str | None = None
    supervising_first_name: str | None = None
    plan_of_care_start: date | None = None
    plan_of_care_signed_date: date | None = None  # the physician/NPP certified the plan on this date
    progress_report_date: date | None = None  # latest progress report written on or before this visit
    msp_type: str | None = None  # SBR05 insurance type code when Medicare is not the primary payer
    # Y: a Qualified Medicare Beneficiary (QMB / QMB Plus) on this date of service, who may not be billed
    # Medicare deductible, coinsurance or copays (SSA §1902(n)(3)(B); otedi.accounts.qmb). Kept as the
    # extract's Y/N (so a record written back out is a valid extract); the warehouse stores a boolean.
    qmb: str = "N"

    @classmethod
    def of_fields(cls, values: dict) -> Charge:
        """A Charge from a dict of every field, already typed (a stored charge read back, validated when it
        was loaded), without the dataclass __init__: a frozen __init__ sets each of the 48 fields through
        object.__setattr__ (12 us a charge; this takes 1 us, and the build and the write read back every
        charge they bill)."""
        charge = object.__new__(cls)
        charge.__dict__.update(values)
        return charge

    @property
    def patient_is_subscriber(self) -> bool:
        return self.relationship == "18"

    @property
    def is_qmb(self) -> bool:
        return self.qmb == "Y"
