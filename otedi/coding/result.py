"""What coding hands to claim building: one billable line per charge."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from otedi.charges.record import Charge


@dataclass(frozen=True)
class CodedLine:
    charge: Charge
    units: int  # billed units after the 8-minute rule / payer rounding
    modifiers: tuple[str, ...]  # final, ordered (at most 4): pricing first (CO), then GO, KX, 59/X*
    charge_amount: Decimal  # SV102, for the billed units
    expected_allowed: Decimal | None = None  # payer fee schedule estimate; drives KX accrual and underpayment checks

    @property
    def cpt(self) -> str:
        return self.charge.cpt
