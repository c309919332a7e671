"""What was billed before: the counters payer rules need (KX bucket, visit counts).

The lead seeds an InMemoryHistory from the warehouse's billed claim lines
(one `record(...)` per line) before scrubbing, and records each visit after it
is scrubbed and billed (`record_visit(result)`). Lines are keyed by charge_id,
so recording the same line twice replaces it and never double-counts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from otedi.coding.scrub import VisitResult


@dataclass(frozen=True)
class BilledLine:
    charge_id: str
    patient_id: str
    payer_id: str
    payer_kind: str  # medicare | medicaid | commercial (payers.kind_for_filing_code for SBR09)
    service_date: date
    cpt: str
    modifiers: tuple[str, ...]
    expected_allowed: Decimal | None


class InMemoryHistory:
    """Billed lines in memory, answering the questions scrubbing asks."""

    def __init__(self, lines: Iterable[BilledLine] = ()):
        # patient_id -> charge_id -> line: every question is about one patient.
        self._by_patient: dict[str, dict[str, BilledLine]] = defaultdict(dict)
        for line in lines:
            self._by_patient[line.patient_id][line.charge_id] = line

    def record(self, *, charge_id: str, patient_id: str, payer_id: str, payer_kind: str, service_date: date,
               cpt: str, modifiers: Iterable[str], expected_allowed: Decimal | None) -> None:
        """Add one billed line (the same charge_id again replaces it)."""
        self._by_patient[patient_id][charge_id] = BilledLine(charge_id, patient_id, payer_id, payer_kind,
                                                             service_date, cpt, tuple(modifiers), expected_allowed)

    def record_visit(self, result: VisitResult) -> None:
        """Add the billed lines of a scrubbed visit (call once the claim goes out)."""
        for line in result.lines:
            c = line.charge
            self.record(charge_id=c.charge_id, patient_id=c.patient_id, payer_id=c.payer_id,
                        payer_kind=result.payer.kind, service_date=c.service_date, cpt=c.cpt,
                        modifiers=line.modifiers, expected_allowed=line.expected_allowed)

    def ot_incurred(self, patient_id: str, through: date, exclude: Collection[str] = ()) -> Decimal:
        """The patient's OT incurred amount (KX bucket) in the calendar year of `through`, up to that date.

        Counts expected allowed amounts of GO lines billed to Medicare-type
        payers; `exclude` names charge_ids not to count (the visit being scrubbed).
        """
        start = date(through.year, 1, 1)
        return sum((ln.expected_allowed for ln in self._by_patient.get(patient_id, {}).values()
                    if ln.payer_kind == "medicare" and "GO" in ln.modifiers
                    and start <= ln.service_date <= through and ln.expected_allowed is not None
                    and ln.charge_id not in exclude), Decimal("0.00"))

    def visit_dates(self, patient_id: str, payer_id: str, start: date, end: date,
                    exclude: Collection[str] = ()) -> set[date]:
        """Distinct dates with billed lines for the patient and payer between start and end (inclusive)."""
        return {ln.service_date for ln in self._by_patient.get(patient_id, {}).values()
                if ln.payer_id == payer_id and start <= ln.service_date <= end
                and ln.charge_id not in exclude}

    def __len__(self) -> int:
        return sum(len(lines) for lines in self._by_patient.values())
