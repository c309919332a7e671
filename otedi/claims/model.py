"""A professional claim as the 837P builder sees it (loop 2300 and its 2400 lines)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from otedi.charges.record import Charge
from otedi.coding.disciplines import role
from otedi.coding.result import CodedLine, Rendering

MAX_LINES = 50  # 837P: at most 50 service lines per claim
MAX_DIAGNOSES = 12  # HI: one ABK plus up to 11 ABF
MAX_POINTERS = 4  # SV107: up to 4 diagnosis pointers per line


@dataclass(frozen=True)
class ClaimLine:
    number: int  # LX01, 1-based
    coded: CodedLine
    dx_pointers: tuple[int, ...]  # 1-based positions in Claim.diagnoses, at most 4
    line_control_number: str  # REF*6R, unique, echoed back in the 835

    @property
    def charge(self) -> Charge:
        return self.coded.charge


@dataclass(frozen=True)
class Adjustment:
    """One CAS reason: group code (CO, PR, OA, PI, CR), CARC and amount."""

    group: str
    reason: str
    amount: Decimal


@dataclass(frozen=True)
class LineAdjudication:
    """A prior payer's verdict on one of this claim's lines (loop 2430)."""

    line_number: int  # LX01 of the line on this claim
    paid: Decimal  # SVD02
    adjustments: tuple[Adjustment, ...]  # 2430 CAS
    adjudicated: date  # DTP*573: the remittance date


@dataclass(frozen=True)
class PriorPayer:
    """A payer that adjudicated this claim before (loops 2320, 2330A, 2330B and 2430).

    `coverage` is a charge as billed to that payer: its payer, subscriber and
    relationship fields fill 2320 SBR, 2330A and 2330B."""

    coverage: Charge
    paid: Decimal  # AMT*D, the payer's total payment (0 when nothing was paid)
    adjustments: tuple[Adjustment, ...]  # claim-level CAS
    lines: tuple[LineAdjudication, ...]
    patient_responsibility: Decimal | None = None  # AMT*EAF, remaining patient liability (claim level only)
    payer_claim_number: str | None = None  # 2330B REF*F8, that payer's CLP07

    @property
    def sequence(self) -> str:
        """2320 SBR01: the responsibility this payer had (P, S or T)."""
        return self.coverage.payer_sequence


@dataclass(frozen=True)
class Claim:
    claim_id: str  # patient control number, CLM01 (<= 17 characters), echoed as 835 CLP01
    header: Charge  # the first charge: patient, subscriber, payer and provider fields shared by every line
    lines: tuple[ClaimLine, ...]
    diagnoses: tuple[str, ...]  # ICD-10-CM without dots, principal first
    frequency_code: str = "1"  # CLM05-3: 1 original, 7 replacement, 8 void
    payer_claim_number: str | None = None  # REF*F8 for frequency 7 and 8
    prior_payers: tuple[PriorPayer, ...] = ()  # COB: payers that adjudicated before this one, in order

    @property
    def rendering(self) -> Rendering:
        """2310B: the provider the lines are billed under (grouping gives every line the same one)."""
        coded = self.lines[0].coded
        if coded.rendering is not None:
            return coded.rendering
        h = self.header  # a claim built without coding: the charge's own provider
        return Rendering(h.rendering_npi, h.rendering_last_name, h.rendering_first_name,
                         role(h.rendering_role).taxonomy)

    @property
    def total_charge(self) -> Decimal:
        return sum((line.coded.charge_amount for line in self.lines), Decimal("0.00"))

    @property
    def service_dates(self) -> tuple:
        dates = sorted({line.charge.service_date for line in self.lines})
        return dates[0], dates[-1]
