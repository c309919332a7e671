"""What coding hands to claim building: one billable line per charge (or per merged charges)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from otedi.charges.record import Charge


@dataclass(frozen=True)
class Rendering:
    """The provider billed as rendering (2310B): the therapist, or for an assistant whom the payer does not
    take as rendering provider, the supervising therapist."""

    npi: str
    last_name: str
    first_name: str
    taxonomy: str  # PRV03 (NUCC)


@dataclass(frozen=True)
class CodedLine:
    charge: Charge  # for merged rows: the first row, with the minutes and charges of all of them
    units: int  # billed units after the 8-minute rule / payer rounding
    modifiers: tuple[str, ...]  # final, ordered (at most 4): pricing first (CO/CQ), then GO/GP/GN, KX, 59/X*
    charge_amount: Decimal  # SV102, for the billed units
    expected_allowed: Decimal | None = None  # payer fee schedule estimate; drives KX accrual and underpayment checks
    rendering: Rendering | None = None  # None: the charge's own rendering provider
    merged_charge_ids: tuple[str, ...] = ()  # other charges of the same code, date and role billed on this line

    @property
    def cpt(self) -> str:
        return self.charge.cpt

    @property
    def rendering_npi(self) -> str:
        return self.rendering.npi if self.rendering else self.charge.rendering_npi
