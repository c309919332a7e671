"""835 Health Care Claim Payment/Advice (005010X221A1), read as a stream.

`iter_835` yields, per transaction set: a `RemittanceHeader` (BPR, TRN,
DTM*405, payer 1000A, payee 1000B), then one `ClaimPayment` per loop 2100
(with its loop 2110 `ServicePayment`s), one `ProviderAdjustment` per PLB, and
a `TransactionEnd`. Only the claim being read is held in memory.

The transaction total (BPR02) can only be checked after the last claim, and
the reader only checks SE01 at the SE, so reading is done in two passes:
`scan_835` checks structure and balances and returns small summaries;
`iter_835` is then run again to post. Money is always `Decimal`.

Fields that can hold PHI (names, member ids, dates of service) are kept out
of `repr()`, and no error message quotes them.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from os import PathLike
from typing import BinaryIO, NamedTuple

from otedi.errors import X12Error
from otedi.x12.reader import Segment, TransactionEnvelope, X12Reader

Source = str | PathLike[str] | BinaryIO
ZERO = Decimal("0")
_DECIMAL = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_DATE = re.compile(r"[0-9]{8}")
_ENVELOPE = {"ISA", "IEA", "GS", "GE", "TA1"}
# Loop 2100 NM1 entity codes and the ClaimPayment field each fills.
_CLAIM_PARTIES = {"QC": "patient", "IL": "insured", "74": "corrected_insured", "82": "rendering_provider",
                  "TT": "crossover_carrier", "PR": "corrected_payer"}

# CLP02 claim status codes.
CLAIM_STATUS = {
    "1": "processed as primary",
    "2": "processed as secondary",
    "3": "processed as tertiary",
    "4": "denied",
    "19": "processed as primary, forwarded to additional payer(s)",
    "20": "processed as secondary, forwarded to additional payer(s)",
    "21": "processed as tertiary, forwarded to additional payer(s)",
    "22": "reversal of previous payment",
    "23": "not our claim, forwarded to additional payer(s)",
    "25": "predetermination pricing only, no payment",
}
# Faults a person may waive after looking at a file whose money balances (`otedi remit accept`), by the
# element at fault. Nothing else is ever waived: not a count (SE01, GE01, IEA01: a lost segment or
# transaction set can balance by itself), not a structural defect, not an amount.
WAIVABLE = {
    "IEA02": "IEA02 interchange control number differs from ISA13",
    "GE02": "GE02 group control number differs from GS06",
    "SE02": "SE02 transaction set control number differs from ST02",
    "BPR16": "BPR16 payment date missing: the DTM*405 production date stands in for it",
}
_ENVELOPE_WAIVABLE = frozenset(code for code in WAIVABLE if code != "BPR16")
# PLB03-1 provider adjustment reason codes most remits carry.
PROVIDER_ADJUSTMENT_REASON = {
    "50": "late charge",
    "51": "interest penalty charge",
    "72": "authorized return",
    "90": "early payment allowance",
    "AP": "acceleration of benefits",
    "B2": "rebate",
    "B3": "recovery allowance",
    "BD": "bad debt adjustment",
    "BN": "bonus",
    "C5": "temporary allowance",
    "CR": "capitation interest",
    "CS": "adjustment",
    "CT": "capitation payment",
    "CV": "capital passthru",
    "DM": "direct medical education passthru",
    "E3": "withholding",
    "FB": "forwarding balance",
    "FC": "fund allocation",
    "GO": "graduate medical education passthru",
    "IP": "incentive premium payment",
    "IR": "internal revenue service withholding",
    "IS": "interim settlement",
    "J1": "nonreimbursable",
    "L3": "penalty",
    "L6": "interest owed",
    "LE": "levy",
    "LS": "lump sum",
    "OA": "organ acquisition passthru",
    "OB": "offset for affiliated providers",
    "PI": "periodic interim payment",
    "PL": "payment final",
    "RA": "retro-activity adjustment",
    "RE": "return on equity",
    "SL": "student loan repayment",
    "TL": "third party liability",
    "WO": "overpayment recovery",
    "WU": "unspecified recovery",
}


# -- parsed objects ----------------------------------------------------------


class Adjustment(NamedTuple):
    """One CAS reason/amount/quantity triplet (a CAS carries up to six). A tuple: the most numerous object."""

    group: str  # CAS01: CO, PR, OA, PI, CR
    reason: str  # CARC
    amount: Decimal  # positive reduces payment; negative adds to it
    quantity: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Party:
    """An N1 (1000A/1000B) or NM1 (2100) name."""

    entity: str  # N101/NM101: PR, PE, QC, IL, 74, 82, TT, ...
    name: str = field(repr=False)  # last or organisation name
    first_name: str = field(default="", repr=False)
    id_qualifier: str = ""  # XX NPI, FI tax id, MI member id, XV plan id, ...
    id: str = field(default="", repr=False)


@dataclass(slots=True)
class RemittanceHeader:
    """Table 1 of the 835: the payment and who pays whom."""

    envelope: TransactionEnvelope
    handling_code: str  # BPR01: C payment + advice, I advice only, H notification, ...
    amount: Decimal  # BPR02 total actual provider payment
    credit_debit: str  # BPR03 C/D
    payment_method: str  # BPR04: ACH, CHK, BOP, FWT, NON
    payment_format: str  # BPR05: CCP, CTX (EFT only)
    payment_date: date  # BPR16 check issue or EFT effective date
    trace_number: str  # TRN02 check or EFT trace number (reassociation key with the payer id)
    originating_company_id: str  # TRN03 payer's id, "1" + tax id
    production_date: date | None  # DTM*405
    payer: Party  # 1000A N1*PR
    payee: Party  # 1000B N1*PE
    references: dict[str, str] = field(default_factory=dict)  # header REF (EV receiver, F2 version)
    payer_references: dict[str, str] = field(default_factory=dict)  # 1000A REF (2U, EO, HI, NF)
    payee_references: dict[str, str] = field(default_factory=dict)  # 1000B REF (TJ tax id, PQ, 0B, ...)

    @property
    def payee_npi(self) -> str | None:
        return self.payee.id if self.payee.id_qualifier == "XX" else None

    @property
    def payee_tin(self) -> str | None:
        if self.payee.id_qualifier == "FI":
            return self.payee.id
        return self.payee_references.get("TJ")

    @property
    def payer_id(self) -> str:
        """N104 when sent, else the payer identification REF*2U."""
        return self.payer.id or self.payer_references.get("2U", "")


@dataclass(slots=True)
class ProviderSummary:
    """Loop 2000 TS3 (and TS2): the provider's totals for the claims that follow."""

    provider_id: str  # TS301
    facility_type: str  # TS302
    fiscal_period_end: date  # TS303
    claim_count: int  # TS304
    total_charge: Decimal  # TS305
    supplemental: list[Decimal | None] = field(default_factory=list)  # TS2 figures in element order


@dataclass(slots=True)
class ServicePayment:
    """Loop 2110: one service line."""

    segment_number: int
    qualifier: str  # SVC01-1: HC (CPT/HCPCS), AD, ER, IV, N4, NU, WK, ZZ
    procedure: str  # SVC01-2
    modifiers: tuple[str, ...]  # SVC01-3..6
    charge: Decimal  # SVC02
    paid: Decimal  # SVC03
    revenue_code: str  # SVC04 (institutional)
    units: Decimal | None  # SVC05 units paid; absent means 1
    original_qualifier: str = ""  # SVC06: the billed code, when the payer adjudicated another one
    original_procedure: str = ""
    original_modifiers: tuple[str, ...] = ()
    original_units: Decimal | None = None  # SVC07
    service_date: date | None = field(default=None, repr=False)  # DTM*472
    service_start: date | None = field(default=None, repr=False)  # DTM*150
    service_end: date | None = field(default=None, repr=False)  # DTM*151
    adjustments: list[Adjustment] = field(default_factory=list)  # line CAS
    references: dict[str, str] = field(default_factory=dict)  # REF: 6R line control number, LU location, ...
    amounts: dict[str, Decimal] = field(default_factory=dict)  # AMT: B6 allowed, KH late filing, ...
    remarks: list[tuple[str, str]] = field(default_factory=list)  # LQ: (HE RARC | RX NCPDP, code)

    @property
    def line_control_number(self) -> str | None:
        return self.references.get("6R")

    @property
    def allowed(self) -> Decimal | None:
        return self.amounts.get("B6")

    @property
    def restated(self) -> bool:
        return bool(self.original_procedure)


@dataclass(slots=True)
class ClaimPayment:
    """Loop 2100: one adjudicated claim (or reversal of one)."""

    segment_number: int
    header_number: str | None  # LX01 of the enclosing loop 2000
    provider_summary: ProviderSummary | None  # TS3/TS2 of loop 2000
    patient_control_number: str  # CLP01 = our CLM01
    status: str  # CLP02
    charge: Decimal  # CLP03
    paid: Decimal  # CLP04
    patient_responsibility: Decimal | None  # CLP05
    filing_indicator: str  # CLP06
    payer_claim_control_number: str  # CLP07, the payer's ICN (REF*F8 on a corrected claim)
    facility_type: str  # CLP08, place of service for professional claims
    frequency: str  # CLP09 claim frequency code
    adjustments: list[Adjustment] = field(default_factory=list)  # claim-level CAS
    patient: Party | None = None  # NM1*QC
    insured: Party | None = None  # NM1*IL
    corrected_insured: Party | None = None  # NM1*74
    rendering_provider: Party | None = None  # NM1*82
    crossover_carrier: Party | None = None  # NM1*TT
    corrected_payer: Party | None = None  # NM1*PR
    remark_codes: list[str] = field(default_factory=list)  # MIA/MOA claim payment remark codes
    statement_start: date | None = field(default=None, repr=False)  # DTM*232
    statement_end: date | None = field(default=None, repr=False)  # DTM*233
    received: date | None = None  # DTM*050
    references: dict[str, str] = field(default_factory=dict)  # REF: EA medical record, 1K, F8, 1L, CE, ...
    amounts: dict[str, Decimal] = field(default_factory=dict)  # AMT: AU coverage, D8 discount, I interest, ...
    services: list[ServicePayment] = field(default_factory=list)

    @property
    def status_text(self) -> str:
        return CLAIM_STATUS.get(self.status, f"status code {self.status}")

    @property
    def is_reversal(self) -> bool:
        return self.status == "22"

    @property
    def is_denial(self) -> bool:
        return self.status == "4"

    @property
    def is_crossover(self) -> bool:
        """Forwarded to another payer (CLP02 19/20/21, or a crossover carrier named)."""
        return self.status in ("19", "20", "21") or self.crossover_carrier is not None


@dataclass(frozen=True, slots=True)
class ProviderAdjustmentItem:
    reason: str  # PLB03-1 (L6, WO, FB, 72, CS, ...)
    reference: str  # PLB03-2: e.g. the ICN recovered, or the FB balance id
    amount: Decimal  # positive reduces the payment, negative adds to it

    @property
    def reason_text(self) -> str:
        return PROVIDER_ADJUSTMENT_REASON.get(self.reason, f"reason code {self.reason}")


@dataclass(slots=True)
class ProviderAdjustment:
    """One PLB: adjustments not tied to a claim."""

    segment_number: int
    provider_id: str  # PLB01
    fiscal_period_end: date  # PLB02
    items: list[ProviderAdjustmentItem]

    @property
    def total(self) -> Decimal:
        return sum((item.amount for item in self.items), ZERO)


@dataclass(frozen=True, slots=True)
class Balance:
    """One balancing rule applied to one line, claim or transaction."""

    level: str  # "service", "claim" or "transaction"
    subject: str  # which one, by CLP01 / line number / ST02 (never a name)
    rule: str
    expected: Decimal
    actual: Decimal

    @property
    def difference(self) -> Decimal:
        return self.actual - self.expected

    @property
    def ok(self) -> bool:
        return self.difference == 0

    @property
    def message(self) -> str:
        verdict = "balances" if self.ok else f"off by {self.difference}"
        return f"{self.subject}: {self.rule}: expected {self.expected}, found {self.actual} ({verdict})"


@dataclass(slots=True)
class TransactionEnd:
    """SE of an 835, with the running totals."""

    envelope: TransactionEnvelope
    segment_number: int
    payment_amount: Decimal  # BPR02
    claim_count: int
    total_paid: Decimal  # Σ CLP04
    provider_adjustment_total: Decimal  # Σ PLB amounts

    @property
    def balance(self) -> Balance:
        return balance_transaction(self)


Item = RemittanceHeader | ClaimPayment | ProviderAdjustment | TransactionEnd


# -- balancing ---------------------------------------------------------------


def _sum(adjustments: list[Adjustment]) -> Decimal:
    return sum((a.amount for a in adjustments), ZERO)


def balance_service(service: ServicePayment, claim: ClaimPayment, line: int) -> Balance:
    """SVC02 charge − SVC03 paid = Σ line CAS."""
    return Balance(
        "service",
        f"claim CLP01 {claim.patient_control_number} line {line} (segment {service.segment_number})",
        "SVC02 charge − SVC03 paid = Σ line CAS",
        service.charge - service.paid,
        _sum(service.adjustments),
    )


def balance_claim(claim: ClaimPayment) -> list[Balance]:
    """Every balancing rule for a claim and its lines.

    CLP03 − CLP04 = Σ claim and line CAS; when there are lines, the guide
    also requires Σ SVC03 − Σ claim-level CAS = CLP04 (which is Σ SVC03 =
    CLP04 when all adjustments sit on the lines).
    """
    subject = f"claim CLP01 {claim.patient_control_number} (segment {claim.segment_number})"
    line_cas = sum((_sum(s.adjustments) for s in claim.services), ZERO)
    claim_cas = _sum(claim.adjustments)
    checks = [
        Balance("claim", subject, "CLP03 charge − CLP04 paid = Σ claim and line CAS",
                claim.charge - claim.paid, claim_cas + line_cas)
    ]
    if claim.services:
        checks.append(
            Balance("claim", subject, "Σ SVC03 paid − Σ claim-level CAS = CLP04 paid",
                    claim.paid, sum((s.paid for s in claim.services), ZERO) - claim_cas)
        )
    checks.extend(balance_service(s, claim, n) for n, s in enumerate(claim.services, 1))
    return checks


def claim_problems(claim: ClaimPayment) -> list[Balance]:
    """The rules of `balance_claim` the claim breaks, the sums compared first (Balance objects only for a
    claim that does not balance)."""
    line_cas = line_paid = ZERO
    lines_balance = True
    for service in claim.services:
        cas = ZERO
        for adjustment in service.adjustments:
            cas += adjustment.amount
        lines_balance = lines_balance and service.charge - service.paid == cas
        line_cas += cas
        line_paid += service.paid
    claim_cas = ZERO
    for adjustment in claim.adjustments:
        claim_cas += adjustment.amount
    if lines_balance and claim.charge - claim.paid == claim_cas + line_cas and (
            not claim.services or claim.paid == line_paid - claim_cas):
        return []
    return [b for b in balance_claim(claim) if not b.ok]


def balance_transaction(end: TransactionEnd) -> Balance:
    """Σ CLP04 − Σ PLB = BPR02."""
    return Balance(
        "transaction",
        f"transaction set ST02 {end.envelope.control_number} (segment {end.envelope.segment_number})",
        "Σ CLP04 paid − Σ PLB adjustments = BPR02 payment",
        end.payment_amount,
        end.total_paid - end.provider_adjustment_total,
    )


# -- element helpers ---------------------------------------------------------


def _fail(segment: Segment, problem: str) -> X12Error:
    return X12Error(problem, segment_number=segment.number, segment_id=segment.id)


def _required(segment: Segment, position: int) -> str:
    value = segment.element(position)
    if not value:
        raise _fail(segment, f"{segment.id}{position:02d} is required but empty")
    return value


# Amounts and dates repeat across a file (fees, dates of service): each text is checked and converted once, in
# caches of bounded size (memory stays flat however many distinct values a file has).
_CACHE_SIZE = 1 << 14
_DECIMALS: dict[str, Decimal] = {}
_DATES: dict[str, date] = {}


def _decimal(segment: Segment, position: int, *, required: bool = True) -> Decimal | None:
    elements = segment.elements
    value = elements[position - 1] if position <= len(elements) else ""
    number = _DECIMALS.get(value)
    if number is not None:
        return number
    if not value:
        if required:
            raise _fail(segment, f"{segment.id}{position:02d} amount is required but empty")
        return None
    if not _DECIMAL.fullmatch(value) or len(value) > 20:
        raise _fail(segment, f"{segment.id}{position:02d} is not a decimal number")
    number = Decimal(value)
    if len(_DECIMALS) < _CACHE_SIZE:
        _DECIMALS[value] = number
    return number


def _padded(segment: Segment, count: int) -> list[str]:
    """The segment's first `count` elements, "" for those absent: indexed directly in the hot paths (no call
    per element)."""
    elements = segment.elements
    missing = count - len(elements)
    return elements + [""] * missing if missing > 0 else elements


def _amount(segment: Segment, position: int) -> Decimal:
    value = _decimal(segment, position)
    assert value is not None
    return value


def _date(segment: Segment, position: int) -> date:
    elements = segment.elements
    value = elements[position - 1] if position <= len(elements) else ""
    day = _DATES.get(value)
    if day is not None:
        return day
    if _DATE.fullmatch(value):
        try:
            day = date(int(value[:4]), int(value[4:6]), int(value[6:]))
        except ValueError:
            pass
        else:
            if len(_DATES) < _CACHE_SIZE:
                _DATES[value] = day
            return day
    raise _fail(segment, f"{segment.id}{position:02d} is not a valid CCYYMMDD date")


def _payment_date(bpr: Segment, tolerant: bool, production: date | None, waiver: _Waiver) -> date:
    """BPR16. Some senders drop one empty element of a check payment, which
    puts the date in BPR15: reported, or with `tolerant` read from there.
    An empty BPR16 is refused unless the BPR16 waiver is given and DTM*405
    (production date) was sent: then that date stands in for it."""
    if not bpr.element(16) and len(bpr.elements) == 15 and _DATE.fullmatch(bpr.element(15)):
        if tolerant and not any(bpr.elements[4:14]):
            return _date(bpr, 15)
        raise _fail(bpr, "BPR16 payment date is missing and BPR15 holds a date (one element separator too few)")
    if not bpr.element(16) and "BPR16" in waiver.codes:
        if production is None:
            raise _fail(bpr, "BPR16 payment date is missing and there is no DTM*405 production date to stand in")
        waiver.waived.append(_fail(bpr, "BPR16 payment date is missing; the DTM*405 production date "
                                        f"{production.isoformat()} stands in for it"))
        return production
    if not bpr.element(16):
        raise _fail(bpr, "BPR16 payment date is missing (required: the check issue or EFT effective date)")
    return _date(bpr, 16)


# Adjustment(...) goes through the named tuple's __new__, a Python function; the tuple built directly is the
# same object for a fraction of the cost (two per CAS: the most numerous object of a file).
_new_adjustment = tuple.__new__


def _adjustments(segment: Segment) -> list[Adjustment]:
    """CAS01 group, then up to six reason (CAS02) / amount (03) / quantity (04) triplets."""
    count = len(segment.elements)
    e = _padded(segment, 19)
    group = e[0] or _required(segment, 1)
    decimals = _DECIMALS  # the cache looked at first: CAS carries most amounts of a file
    result = []
    for start in range(1, min(count, 19), 3):  # e[start] is CAS02, 05, ... (the reason of a triplet)
        reason, amount, quantity = e[start], e[start + 1], e[start + 2]
        if not reason:
            if not amount:
                continue
            raise _fail(segment, f"CAS{start + 2:02d} amount without a reason code in CAS{start + 1:02d}")
        value = decimals.get(amount)
        if value is None:
            value = _amount(segment, start + 2)
        quantity = (decimals.get(quantity) or _decimal(segment, start + 3)) if quantity else None
        result.append(_new_adjustment(Adjustment, (group, reason, value, quantity)))
    if not result:
        raise _fail(segment, "CAS has no reason code and amount")
    return result


def _party(segment: Segment) -> Party:
    if segment.id == "N1":  # N101 entity, N102 name, N103 id qualifier, N104 id
        e = _padded(segment, 4)
        party = Party(e[0], e[1], "", e[2], e[3])
    else:  # NM101 entity, NM103 last/organisation, NM104 first, NM108 qualifier, NM109 id
        e = _padded(segment, 9)
        party = Party(e[0], e[2], e[3], e[7], e[8])
    if party.id_qualifier == "XX" and not (len(party.id) == 10 and party.id.isascii() and party.id.isdigit()):
        position = "04" if segment.id == "N1" else "09"
        raise _fail(segment, f"{segment.id}{position} with qualifier XX is not a 10-digit NPI "
                             f"({len(party.id)} characters)")
    return party


def _procedure(segment: Segment, position: int, tolerant: bool) -> tuple[str, str, tuple[str, ...]]:
    """SVC01/SVC06 composite: qualifier, code, up to four modifiers."""
    parts = segment.composite(position, required=2, tolerant=tolerant)
    return parts[0], parts[1], tuple(m for m in parts[2:6] if m)


# -- the parser --------------------------------------------------------------


@dataclass(slots=True)
class _Waiver:
    """The faults a caller waives (codes of `WAIVABLE`) and those it met, each as the error it replaces."""

    codes: frozenset[str] = frozenset()
    waived: list[X12Error] = field(default_factory=list)

    @classmethod
    def of(cls, codes: Collection[str]) -> _Waiver:
        unknown = set(codes) - set(WAIVABLE)
        if unknown:
            raise ValueError(f"not a waivable 835 fault: {', '.join(sorted(unknown))} (see WAIVABLE)")
        return cls(frozenset(codes))

    def check(self, problem: X12Error) -> None:
        """An envelope mismatch the reader kept (strict=False): waived when its element is, else raised."""
        if fault_code(problem) not in (self.codes & _ENVELOPE_WAIVABLE):
            raise problem
        self.waived.append(problem)


def fault_code(error: X12Error) -> str | None:
    """The element a reader or parser error is about ("IEA02", "BPR16", ...), when its message starts
    with one; `WAIVABLE` is keyed by these."""
    text = str(error)
    if error.segment_number is not None:
        text = text.split(": ", 1)[-1]
    code = text.split(" ", 1)[0]
    return code if re.fullmatch(r"[A-Z][A-Z0-9]{1,2}[0-9]{2}", code) else None


class _Transaction:
    """State while reading one 835 transaction set."""

    def __init__(self, envelope: TransactionEnvelope, tolerant: bool, waiver: _Waiver):
        self.envelope = envelope
        self.tolerant = tolerant
        self.waiver = waiver
        self.header_segments: list[Segment] | None = []  # None once the header was emitted
        self.payment_amount = ZERO
        self.header_number: str | None = None
        self.summary: ProviderSummary | None = None
        self.claim: ClaimPayment | None = None
        self.service: ServicePayment | None = None
        self.claim_count = 0
        self.total_paid = ZERO
        self.provider_adjustment_total = ZERO
        self.details = {"CAS": self._cas, "REF": self._ref, "AMT": self._amt, "DTM": self._dtm, "LQ": self._lq,
                        "NM1": self._nm1, "MIA": self._mia, "MOA": self._moa}

    def feed(self, segment: Segment) -> list[Item] | None:
        """The items this segment completes, or None."""
        sid = segment.id
        if self.header_segments is not None:
            if sid not in ("LX", "CLP", "PLB", "SE"):
                self.header_segments.append(segment)
                return None
            out: list[Item] = [self._header(segment)]
        else:
            detail = self.details.get(sid)
            if detail is not None:  # loop 2100/2110 detail, the bulk of a file
                if self.claim is not None:
                    detail(segment)
                return None
            out = []
        if sid == "CLP":
            self._flush(out)
            self._start_claim(segment)
        elif sid == "SVC":
            self._start_service(segment)
        elif sid == "LX":
            self._flush(out)
            self.header_number = segment.element(1)
            self.summary = None
        elif sid == "TS3":
            self.summary = ProviderSummary(
                segment.element(1), segment.element(2), _date(segment, 3),
                int(_amount(segment, 4)), _amount(segment, 5),
            )
        elif sid == "TS2":
            if self.summary is None:
                raise _fail(segment, "TS2 without a TS3 before it")
            self.summary.supplemental = [_decimal(segment, n, required=False) for n in range(1, 20)]
        elif sid == "PLB":
            self._flush(out)
            out.append(self._provider_adjustment(segment))
        elif sid == "SE":
            self._flush(out)
            out.append(
                TransactionEnd(self.envelope, segment.number, self.payment_amount, self.claim_count,
                               self.total_paid, self.provider_adjustment_total)
            )
        # Segments of loop 2000 other than LX/TS3/TS2, and ones this parser has no use for, are skipped.
        return out

    # header (table 1)

    def _header(self, first_detail: Segment) -> RemittanceHeader:
        segments = self.header_segments
        assert segments is not None
        self.header_segments = None
        bpr = trn = payer = payee = None
        production = None
        references: dict[str, str] = {}
        payer_references: dict[str, str] = {}
        payee_references: dict[str, str] = {}
        target = references
        for seg in segments:
            if seg.id == "BPR":
                bpr = seg
            elif seg.id == "TRN":
                trn = seg
            elif seg.id == "DTM" and seg.element(1) == "405":
                production = _date(seg, 2)
            elif seg.id == "N1" and seg.element(1) == "PR":
                payer, target = _party(seg), payer_references
            elif seg.id == "N1" and seg.element(1) == "PE":
                payee, target = _party(seg), payee_references
            elif seg.id == "REF":
                target.setdefault(seg.element(1), seg.element(2))
        where = {"segment_number": first_detail.number, "segment_id": first_detail.id}
        if bpr is None:
            raise X12Error("835 header has no BPR (financial information) before the first claim", **where)
        if trn is None:
            raise X12Error("835 header has no TRN (reassociation trace number) before the first claim", **where)
        if payer is None:
            raise X12Error("835 header has no N1*PR (loop 1000A payer) before the first claim", **where)
        if payee is None:
            raise X12Error("835 header has no N1*PE (loop 1000B payee) before the first claim", **where)
        self.payment_amount = _amount(bpr, 2)
        return RemittanceHeader(
            envelope=self.envelope,
            handling_code=_required(bpr, 1),
            amount=self.payment_amount,
            credit_debit=_required(bpr, 3),
            payment_method=_required(bpr, 4),
            payment_format=bpr.element(5),
            payment_date=_payment_date(bpr, self.tolerant, production, self.waiver),
            trace_number=_required(trn, 2),
            originating_company_id=trn.element(3),
            production_date=production,
            payer=payer,
            payee=payee,
            references=references,
            payer_references=payer_references,
            payee_references=payee_references,
        )

    # loop 2100 / 2110

    def _start_claim(self, clp: Segment) -> None:
        e = _padded(clp, 9)
        decimals = _DECIMALS
        # the cached value of each amount's text when there is one, else the checked conversion (`_decimal`)
        self.claim = ClaimPayment(
            clp.number, self.header_number, self.summary,
            e[0] or _required(clp, 1),
            e[1] or _required(clp, 2),
            decimals.get(e[2]) or _amount(clp, 3),
            decimals.get(e[3]) or _amount(clp, 4),
            decimals.get(e[4]) or _decimal(clp, 5, required=False),
            e[5], e[6], e[7], e[8],
        )
        self.service = None

    def _start_service(self, svc: Segment) -> None:
        if self.claim is None:
            raise _fail(svc, "SVC (loop 2110) outside a claim: no CLP before it")
        qualifier, procedure, modifiers = _procedure(svc, 1, self.tolerant)
        e = _padded(svc, 7)
        decimals = _DECIMALS
        self.service = ServicePayment(
            svc.number, qualifier, procedure, modifiers,
            decimals.get(e[1]) or _amount(svc, 2),
            decimals.get(e[2]) or _amount(svc, 3),
            e[3],
            decimals.get(e[4]) or _decimal(svc, 5, required=False),
            original_units=decimals.get(e[6]) or _decimal(svc, 7, required=False),
        )
        if e[5]:
            (self.service.original_qualifier, self.service.original_procedure,
             self.service.original_modifiers) = _procedure(svc, 6, self.tolerant)
        self.claim.services.append(self.service)

    # loop 2100 / 2110 detail: on the service line being read, else on the claim

    def _cas(self, seg: Segment) -> None:
        (self.service or self.claim).adjustments.extend(_adjustments(seg))

    def _ref(self, seg: Segment) -> None:
        qualifier, value = _padded(seg, 2)[:2]
        (self.service or self.claim).references.setdefault(qualifier or _required(seg, 1), value)

    def _amt(self, seg: Segment) -> None:
        e = _padded(seg, 2)
        (self.service or self.claim).amounts[e[0] or _required(seg, 1)] = _DECIMALS.get(e[1]) or _amount(seg, 2)

    def _lq(self, seg: Segment) -> None:
        if self.service is not None:
            e = _padded(seg, 2)
            self.service.remarks.append((e[0], e[1] or _required(seg, 2)))

    def _nm1(self, seg: Segment) -> None:
        role = _CLAIM_PARTIES.get(seg.elements[0] if seg.elements else "")
        if role:
            setattr(self.claim, role, _party(seg))

    def _mia(self, seg: Segment) -> None:  # inpatient: MIA05 and MIA20-23 are remark codes
        self.claim.remark_codes.extend(c for c in (seg.element(n) for n in (5, 20, 21, 22, 23)) if c)

    def _moa(self, seg: Segment) -> None:  # outpatient: MOA03-07 are remark codes
        self.claim.remark_codes.extend(c for c in (seg.element(n) for n in range(3, 8)) if c)

    def _dtm(self, seg: Segment) -> None:
        service = self.service
        qualifier, text = _padded(seg, 2)[:2]
        if service is not None:
            if qualifier == "472":
                service.service_date = _DATES.get(text) or _date(seg, 2)
            elif qualifier == "150":
                service.service_start = _DATES.get(text) or _date(seg, 2)
            elif qualifier == "151":
                service.service_end = _DATES.get(text) or _date(seg, 2)
        elif qualifier == "232":
            self.claim.statement_start = _DATES.get(text) or _date(seg, 2)
        elif qualifier == "233":
            self.claim.statement_end = _DATES.get(text) or _date(seg, 2)
        elif qualifier == "050":
            self.claim.received = _DATES.get(text) or _date(seg, 2)

    def _flush(self, out: list[Item]) -> None:
        if self.claim is not None:
            self.claim_count += 1
            self.total_paid += self.claim.paid
            out.append(self.claim)
            self.claim = self.service = None

    def _provider_adjustment(self, plb: Segment) -> ProviderAdjustment:
        items = []
        for start in range(3, 15, 2):  # PLB03/04 .. PLB13/14
            if not plb.element(start) and not plb.element(start + 1):
                continue
            parts = plb.composite(start, required=1, tolerant=self.tolerant)
            reference = parts[1] if len(parts) > 1 else ""
            items.append(ProviderAdjustmentItem(parts[0], reference, _amount(plb, start + 1)))
        if not items:
            raise _fail(plb, "PLB has no adjustment reason and amount")
        adjustment = ProviderAdjustment(plb.number, _required(plb, 1), _date(plb, 2), items)
        self.provider_adjustment_total += adjustment.total
        return adjustment


def _reader(source: Source, strict: bool, waiver: _Waiver) -> X12Reader:
    """The reader: envelope mismatches are kept rather than raised when some are waived, and `_items`
    then raises every one that is not."""
    return X12Reader(source, strict=strict and not (waiver.codes & _ENVELOPE_WAIVABLE))


def _items(reader: X12Reader, tolerant: bool, waiver: _Waiver | None = None, *,
           check_envelope: bool = False) -> Iterator[Item]:
    """`check_envelope`: the mismatches a non-strict reader keeps are checked against `waiver` as they come
    (raised unless waived)."""
    waiver = waiver or _Waiver()
    transaction = None  # the transaction set being read (the reader refuses segments outside ST/SE)
    # Loop 2100/2110 detail segments (CAS, REF, DTM, ...: most of a file) go straight to their handler while a
    # claim is open, without `feed`; empty while the header is read and between claims.
    details: dict = {}
    problems = reader.problems
    checked = 0
    for segment in reader:
        detail = details.get(segment.id)
        if detail is not None:
            detail(segment)
            continue
        if check_envelope and len(problems) > checked:  # (the reader keeps them at envelope segments only)
            for problem in problems[checked:]:
                waiver.check(problem)
            checked = len(problems)
        sid = segment.id
        if sid in _ENVELOPE:
            continue
        if sid == "ST":
            envelope = reader.transaction
            assert envelope is not None
            if envelope.transaction_set_id != "835":
                raise _fail(segment, f"transaction set {envelope.transaction_set_id!r} is not an 835")
            transaction = _Transaction(envelope, tolerant, waiver)
            continue
        items = transaction.feed(segment)
        details = transaction.details if transaction.claim is not None else {}
        if items:
            yield from items


def iter_835(source: Source, *, strict: bool = True, tolerant: bool = False,
             waive: Collection[str] = ()) -> Iterator[Item]:
    """Yield the header, claims, provider adjustments and end of every 835 in the file.

    `strict=False` keeps envelope count/control-number mismatches instead of
    raising (see `X12Reader`); `tolerant=True` accepts composites written with
    another component separator than ISA16 (see `Segment.composite`);
    `waive` names faults of `WAIVABLE` to let pass (a person looked at the
    file: `otedi remit accept`), every other one still raises.
    """
    waiver = _Waiver.of(waive)
    return _items(_reader(source, strict, waiver), tolerant, waiver, check_envelope=strict)


# -- first pass --------------------------------------------------------------


@dataclass(slots=True)
class TransactionSummary:
    """What `scan_835` learns about one 835 transaction set."""

    envelope: TransactionEnvelope
    trace_number: str  # TRN02
    payer_id: str
    payment_amount: Decimal  # BPR02
    payment_date: date  # BPR16
    claim_count: int = 0
    service_count: int = 0
    total_charge: Decimal = ZERO  # Σ CLP03
    total_paid: Decimal = ZERO  # Σ CLP04
    provider_adjustment_total: Decimal = ZERO  # Σ PLB
    problems: list[Balance] = field(default_factory=list)  # rules that do not balance

    @property
    def balanced(self) -> bool:
        return not self.problems


@dataclass(slots=True)
class Scan835:
    transactions: list[TransactionSummary]
    envelope_problems: list[X12Error]  # only with strict=False
    waived: list[X12Error] = field(default_factory=list)  # the faults `waive` let pass, where they were

    @property
    def waived_codes(self) -> frozenset[str]:
        return frozenset(fault_code(e) for e in self.waived)

    @property
    def ok(self) -> bool:
        return not self.envelope_problems and all(t.balanced for t in self.transactions)


def scan_835(source: Source, *, strict: bool = True, tolerant: bool = False,
             waive: Collection[str] = ()) -> Scan835:
    """First pass: read the whole file (streaming), check structure and every balance.

    Raises `X12Error` for a structural defect (the file cannot be posted);
    balancing failures are returned in each summary's `problems`. `waive`:
    as for `iter_835`; the faults it let pass are in `waived`.
    """
    waiver = _Waiver.of(waive)
    reader = _reader(source, strict, waiver)
    summaries: list[TransactionSummary] = []
    summary: TransactionSummary | None = None
    for item in _items(reader, tolerant, waiver, check_envelope=strict):
        if isinstance(item, RemittanceHeader):
            summary = TransactionSummary(item.envelope, item.trace_number, item.payer_id, item.amount,
                                         item.payment_date)
            summaries.append(summary)
            continue
        assert summary is not None
        if isinstance(item, ClaimPayment):
            summary.claim_count += 1
            summary.service_count += len(item.services)
            summary.total_charge += item.charge
            summary.total_paid += item.paid
            summary.problems.extend(claim_problems(item))
        elif isinstance(item, ProviderAdjustment):
            summary.provider_adjustment_total += item.total
        elif not item.balance.ok:
            summary.problems.append(item.balance)
    return Scan835(summaries, [] if strict else reader.problems, waiver.waived)
