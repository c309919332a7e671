"""An adjudicated claim as the 835 reports it (loop 2100 with its 2110 lines),
and its JSON form for the simulator's state (held claims, crossovers waiting
for Medicaid, paid claims that a later run may reverse)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Adjustment:
    group: str  # CAS01: CO contractual, PR patient responsibility, OA other
    reason: str  # CAS02: CARC
    amount: Decimal  # CAS03


@dataclass(frozen=True)
class Coverage:
    """A dual eligible's Medicaid coverage: the payer Medicare crosses the claim over to (NM1*TT)."""

    payer_id: str
    payer_name: str
    member_id: str


@dataclass(frozen=True)
class LinePayment:
    control_number: str  # REF*6R, our line item control number
    cpt: str
    modifiers: tuple[str, ...]
    service_date: date
    units: int
    billed: Decimal  # SVC02
    fee: Decimal | None  # fee schedule amount before the lesser-of rule (None: denied before pricing)
    allowed: Decimal  # AMT*B6
    paid: Decimal  # SVC03
    adjustments: tuple[Adjustment, ...] = ()
    remarks: tuple[str, ...] = ()  # LQ*HE RARCs
    denied: bool = False

    def adjustment(self, group: str, reason: str) -> Decimal:
        return sum((a.amount for a in self.adjustments if (a.group, a.reason) == (group, reason)), ZERO)


@dataclass(frozen=True)
class ClaimPayment:
    claim_id: str  # CLP01 = our CLM01
    status: str  # CLP02: 1/2/3 processed as primary/secondary/tertiary, 4 denied, 19 processed as primary and
    #              forwarded (crossed over), 22 reversal, 25 predetermination
    icn: str  # CLP07 payer claim control number
    payer_kind: str  # medicare | medicaid | commercial
    payer_id: str
    payer_name: str
    filing_code: str  # CLP06
    payee_name: str
    payee_npi: str
    payee_ein: str
    submitter_id: str  # our ISA06: who the answer goes to
    submitter_qualifier: str
    clearinghouse_id: str  # ISA08 of our 837: who answers
    clearinghouse_qualifier: str
    gs_clearinghouse: str  # GS03 of our 837
    usage: str  # ISA15
    patient_last: str
    patient_first: str
    member_id: str
    rendering_npi: str
    place_of_service: str  # CLP08
    frequency: str  # CLP09
    received: date  # DTM*050
    release_on: date  # the first run day that may send this claim's 835
    lines: tuple[LinePayment, ...] = field(default_factory=tuple)
    crossover_carrier: Coverage | None = None  # CLP02 19: Medicare forwards the claim to this Medicaid payer
    prior_payer_icn: str = ""  # Medicaid's claim of a crossover: the ICN of the Medicare claim it follows

    @property
    def charge(self) -> Decimal:
        return sum((ln.billed for ln in self.lines), ZERO)

    @property
    def paid(self) -> Decimal:
        return sum((ln.paid for ln in self.lines), ZERO)

    @property
    def patient_responsibility(self) -> Decimal:
        return sum((a.amount for ln in self.lines for a in ln.adjustments if a.group == "PR"), ZERO)

    @property
    def cost_sharing(self) -> Decimal:
        """Medicare deductible and coinsurance (PR-1, PR-2): what a crossover asks Medicaid to pay."""
        return sum((ln.adjustment("PR", "1") + ln.adjustment("PR", "2") for ln in self.lines), ZERO)

    @property
    def reversible(self) -> bool:
        """May a later payment run reverse it or recover from it? Not a reversal or a predetermination, and
        neither side of a crossover (the Medicare claim forwarded, CLP02 19, nor Medicaid's claim of it):
        Medicaid's payment rests on Medicare's figures, so the simulator never reverses either."""
        return self.status not in ("19", "22", "25") and not self.prior_payer_icn

    @property
    def group_key(self) -> tuple[str, str]:
        """One 835 per payer and payee."""
        return self.payer_id, self.payee_npi

    def reversed(self) -> ClaimPayment:
        """The CLP02 22 reversal: the original claim with every amount and unit negated."""
        lines = tuple(replace(
            ln, units=-ln.units, billed=-ln.billed, allowed=-ln.allowed, paid=-ln.paid,
            adjustments=tuple(replace(a, amount=-a.amount) for a in ln.adjustments),
        ) for ln in self.lines)
        return replace(self, status="22", lines=lines)


# --- JSON ---------------------------------------------------------------------------------------

def to_json(claim: ClaimPayment) -> dict:
    out = {k: _plain(getattr(claim, k)) for k in claim.__dataclass_fields__
           if k not in ("lines", "crossover_carrier")}
    out["crossover_carrier"] = asdict(claim.crossover_carrier) if claim.crossover_carrier else None
    out["lines"] = [
        {**{k: _plain(getattr(ln, k)) for k in ln.__dataclass_fields__ if k != "adjustments"},
         "adjustments": [[a.group, a.reason, str(a.amount)] for a in ln.adjustments]}
        for ln in claim.lines
    ]
    return out


def from_json(d: dict) -> ClaimPayment:
    lines = tuple(LinePayment(
        control_number=ln["control_number"], cpt=ln["cpt"], modifiers=tuple(ln["modifiers"]),
        service_date=date.fromisoformat(ln["service_date"]), units=ln["units"], billed=Decimal(ln["billed"]),
        fee=None if ln["fee"] is None else Decimal(ln["fee"]), allowed=Decimal(ln["allowed"]),
        paid=Decimal(ln["paid"]), adjustments=tuple(Adjustment(g, r, Decimal(a)) for g, r, a in ln["adjustments"]),
        remarks=tuple(ln["remarks"]), denied=ln["denied"],
    ) for ln in d["lines"])
    fields = {k: v for k, v in d.items() if k != "lines"}
    fields["received"] = date.fromisoformat(fields["received"])
    fields["release_on"] = date.fromisoformat(fields["release_on"])
    carrier = fields.pop("crossover_carrier", None)  # absent in a state file from before crossovers
    fields["crossover_carrier"] = Coverage(**carrier) if carrier else None
    return ClaimPayment(**fields, lines=lines)


def _plain(value):
    if isinstance(value, (Decimal, date)):
        return str(value) if isinstance(value, Decimal) else value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    return value
