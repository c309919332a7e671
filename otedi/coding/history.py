"""What was billed before: the counters payer rules need (KX buckets, visit counts, treatment days).

The lead seeds an InMemoryHistory from the warehouse's billed claim lines
(one `record(...)` per line) and the therapy amounts the patient used at other
providers (`add_external`) before scrubbing, and records each visit after it
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

from otedi.coding.disciplines import Disciplines, disciplines
from otedi.coding.modifiers import kx_rules

if TYPE_CHECKING:
    from otedi.coding.scrub import VisitResult

ZERO = Decimal("0.00")


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
    discipline: str = ""  # OT | PT | SLP, from the rendering role


@dataclass(frozen=True)
class ExternalUsage:
    """A year-to-date therapy amount from other providers, as reported on `as_of`."""

    year: int
    bucket: str  # OT | PT_SLP
    amount: Decimal
    as_of: date


class InMemoryHistory:
    """Billed lines in memory, answering the questions scrubbing asks."""

    def __init__(self, lines: Iterable[BilledLine] = ()):
        # patient_id -> charge_id -> line: every question is about one patient.
        self._by_patient: dict[str, dict[str, BilledLine]] = defaultdict(dict)
        self._external: dict[str, list[ExternalUsage]] = defaultdict(list)
        self._buckets: dict[tuple[str, ...], str | None] = {}  # modifiers -> KX bucket, read once per history
        for line in lines:
            self._by_patient[line.patient_id][line.charge_id] = line

    def record(self, *, charge_id: str, patient_id: str, payer_id: str, payer_kind: str, service_date: date,
               cpt: str, modifiers: Iterable[str], expected_allowed: Decimal | None, discipline: str = "") -> None:
        """Add one billed line (the same charge_id again replaces it)."""
        self._by_patient[patient_id][charge_id] = BilledLine(charge_id, patient_id, payer_id, payer_kind,
                                                             service_date, cpt, tuple(modifiers), expected_allowed,
                                                             discipline)

    def add_external(self, patient_id: str, usage: ExternalUsage) -> None:
        self._external[patient_id].append(usage)

    def record_visit(self, result: VisitResult, table: Disciplines | None = None) -> None:
        """Add the billed lines of a scrubbed visit (call once the claim goes out; `table`: the discipline rules,
        when at hand)."""
        table = table or disciplines()
        for line in result.lines:
            c = line.charge
            self.record(charge_id=c.charge_id, patient_id=c.patient_id, payer_id=c.payer_id,
                        payer_kind=result.payer.kind, service_date=c.service_date, cpt=c.cpt,
                        modifiers=line.modifiers, expected_allowed=line.expected_allowed,
                        discipline=table.of_role(c.rendering_role).name)

    def incurred(self, patient_id: str, bucket: str, through: date, exclude: Collection[str] = ()) -> Decimal:
        """The patient's incurred amount in a KX bucket (OT, or PT and SLP) in the calendar year of `through`.

        Counts expected allowed amounts of this practice's lines billed to Medicare-type payers whose
        discipline modifier falls in the bucket, up to `through`, plus the latest year-to-date amount
        reported from other providers on or before `through`; `exclude` names charge_ids not to count
        (the visit being scrubbed)."""
        start = date(through.year, 1, 1)
        own = sum((ln.expected_allowed for ln in self._by_patient.get(patient_id, {}).values()
                   if ln.payer_kind == "medicare" and ln.expected_allowed is not None
                   and start <= ln.service_date <= through and ln.charge_id not in exclude
                   and self._bucket(ln.modifiers) == bucket), ZERO)
        reports = [u for u in self._external.get(patient_id, ())
                   if u.year == through.year and u.bucket == bucket and u.as_of <= through]
        latest = max(reports, key=lambda u: u.as_of).amount if reports else ZERO
        return own + latest

    def _bucket(self, modifiers: tuple[str, ...]) -> str | None:
        if modifiers not in self._buckets:
            self._buckets[modifiers] = kx_rules().bucket(modifiers)
        return self._buckets[modifiers]

    def visit_dates(self, patient_id: str, payer_id: str, start: date, end: date,
                    exclude: Collection[str] = ()) -> set[date]:
        """Distinct dates with billed lines for the patient and payer between start and end (inclusive)."""
        return {ln.service_date for ln in self._by_patient.get(patient_id, {}).values()
                if ln.payer_id == payer_id and start <= ln.service_date <= end
                and ln.charge_id not in exclude}

    def treatment_dates(self, patient_id: str, discipline: str, after: date, before: date) -> set[date]:
        """Distinct dates strictly between `after` and `before` on which the patient was billed for the discipline."""
        return {ln.service_date for ln in self._by_patient.get(patient_id, {}).values()
                if ln.discipline == discipline and after < ln.service_date < before}

    def __len__(self) -> int:
        return sum(len(lines) for lines in self._by_patient.values())
