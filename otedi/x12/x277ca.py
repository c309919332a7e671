"""277CA Health Care Claim Acknowledgment (005010X214): did the payer or
clearinghouse take each claim into adjudication?

The hierarchy is HL 20 information source (payer) > HL 21 information
receiver (us) > HL 19 billing provider (2000C) > HL PT patient (2000D, one per
claim). `iter_277ca` yields a `ProviderStatus` for each 2200C that carries an
STC (a whole-provider rejection) and a `ClaimStatus` per 2200D claim, with its
2220D service lines, one at a time.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from os import PathLike
from typing import BinaryIO

from otedi.errors import X12Error
from otedi.x12.reader import Segment, TransactionEnvelope, X12Reader

# Claim status category codes (STC01-1) used in acknowledgments.
CATEGORY = {
    "A0": "acknowledged: forwarded to another entity",
    "A1": "acknowledged: received (not yet accepted for adjudication)",
    "A2": "acknowledged: accepted into the adjudication system",
    "A3": "acknowledged: returned as unprocessable claim",
    "A4": "acknowledged: not found",
    "A5": "acknowledged: split claim",
    "A6": "acknowledged: rejected for missing information",
    "A7": "acknowledged: rejected for invalid information",
    "A8": "acknowledged: rejected for relational field in error",
    "E0": "response not possible: error on submitted request data",
    "E1": "response not possible: system status",
}
REJECTED_CATEGORIES = {"A3", "A4", "A6", "A7", "A8"}
# Claim status codes (STC01-2), the common ones.
STATUS = {
    "0": "cannot provide further status electronically",
    "1": "for more detailed information, see remittance advice",
    "3": "claim has been adjudicated and is awaiting payment cycle",
    "16": "claim/encounter has been forwarded to entity",
    "19": "entity acknowledges receipt of claim/encounter",
    "20": "accepted for processing",
    "21": "missing or invalid information",
    "24": "entity not approved as an electronic submitter",
    "29": "subscriber and policy number/contract number not found",
    "33": "subscriber and subscriber id not found",
    "35": "claim/encounter not found",
    "187": "date(s) of service",
    "400": "claim is out of balance",
    "454": "procedure code for services rendered",
    "562": "entity's National Provider Identifier (NPI)",
}
# Entity identifier codes (STC01-3).
ENTITY = {
    "40": "receiver",
    "41": "submitter",
    "82": "rendering provider",
    "85": "billing provider",
    "DN": "referring provider",
    "IL": "subscriber",
    "PR": "payer",
    "QC": "patient",
}
_DATE = re.compile(r"[0-9]{8}")
_DECIMAL = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


@dataclass(frozen=True, slots=True)
class StatusCode:
    """One C043 composite: category : status : entity."""

    category: str
    status: str
    entity: str = ""

    @property
    def category_text(self) -> str:
        return CATEGORY.get(self.category, f"category {self.category}")

    @property
    def status_text(self) -> str:
        return STATUS.get(self.status, f"status code {self.status}")

    @property
    def entity_text(self) -> str:
        return ENTITY.get(self.entity, self.entity)

    @property
    def rejected(self) -> bool:
        return self.category in REJECTED_CATEGORIES

    @property
    def text(self) -> str:
        about = f" ({self.entity_text})" if self.entity else ""
        return f"{self.category} {self.category_text}; {self.status} {self.status_text}{about}"


@dataclass(frozen=True, slots=True)
class Status:
    """One STC: up to three status composites (STC01, STC10, STC11)."""

    codes: tuple[StatusCode, ...]
    effective_date: date | None  # STC02
    action: str  # STC03: WQ accept, U reject
    amount: Decimal | None  # STC04 total claim charge

    @property
    def rejected(self) -> bool:
        return any(code.rejected for code in self.codes)


@dataclass(slots=True)
class ProviderStatus:
    """Loop 2200C: status of everything sent for one billing provider."""

    envelope: TransactionEnvelope
    provider_id: str  # NM109 of 2100C (NPI)
    statuses: list[Status] = field(default_factory=list)

    @property
    def rejected(self) -> bool:
        return any(s.rejected for s in self.statuses)


@dataclass(slots=True)
class LineStatus:
    """Loop 2220D: status of one service line."""

    qualifier: str  # SVC01-1
    procedure: str  # SVC01-2
    modifiers: tuple[str, ...]
    charge: Decimal | None  # SVC02
    units: Decimal | None  # SVC07
    statuses: list[Status] = field(default_factory=list)
    line_control_number: str = ""  # REF*FJ = our REF*6R
    service_start: date | None = field(default=None, repr=False)  # DTP*472
    service_end: date | None = field(default=None, repr=False)

    @property
    def rejected(self) -> bool:
        return any(s.rejected for s in self.statuses)


@dataclass(slots=True)
class ClaimStatus:
    """Loop 2200D: the acknowledgment of one claim."""

    envelope: TransactionEnvelope
    billing_provider_id: str  # NM109 of the enclosing 2100C
    patient_control_number: str  # TRN02 = our CLM01
    statuses: list[Status] = field(default_factory=list)
    payer_claim_control_number: str = ""  # REF*1K
    clearinghouse_trace_number: str = ""  # REF*D9
    service_start: date | None = field(default=None, repr=False)  # DTP*472 (D8 or RD8)
    service_end: date | None = field(default=None, repr=False)
    lines: list[LineStatus] = field(default_factory=list)

    @property
    def rejected(self) -> bool:
        return any(s.rejected for s in self.statuses)

    @property
    def accepted(self) -> bool:
        """A2 somewhere and no rejection at claim level."""
        return not self.rejected and any(c.category == "A2" for s in self.statuses for c in s.codes)


def _fail(segment: Segment, problem: str) -> X12Error:
    return X12Error(problem, segment_number=segment.number, segment_id=segment.id)


def _date(segment: Segment, value: str, reference: str) -> date:
    if _DATE.fullmatch(value):
        try:
            return date(int(value[:4]), int(value[4:6]), int(value[6:]))
        except ValueError:
            pass
    raise _fail(segment, f"{reference} is not a valid CCYYMMDD date")


def _decimal(segment: Segment, position: int) -> Decimal | None:
    value = segment.element(position)
    if not value:
        return None
    if not _DECIMAL.fullmatch(value) or len(value) > 20:
        raise _fail(segment, f"{segment.id}{position:02d} is not a decimal number")
    return Decimal(value)


def _status(segment: Segment) -> Status:
    codes = []
    for position in (1, 10, 11):
        if position == 1 or segment.element(position):
            parts = segment.composite(position, required=2) + ["", ""]
            codes.append(StatusCode(parts[0], parts[1], parts[2]))
    effective = segment.element(2)
    return Status(
        tuple(codes),
        _date(segment, effective, "STC02") if effective else None,
        segment.element(3),
        _decimal(segment, 4),
    )


def _period(segment: Segment) -> tuple[date, date]:
    """DTP*472: D8 one date or RD8 a CCYYMMDD-CCYYMMDD range."""
    value = segment.element(3)
    if segment.element(2) == "RD8":
        start, _, end = value.partition("-")
        return _date(segment, start, "DTP03"), _date(segment, end, "DTP03")
    day = _date(segment, value, "DTP03")
    return day, day


def iter_277ca(
    source: str | PathLike[str] | BinaryIO, *, strict: bool = True
) -> Iterator[ProviderStatus | ClaimStatus]:
    """Yield provider-level rejections and every claim acknowledgment of the file."""
    reader = X12Reader(source, strict=strict)
    level = ""  # HL03 of the current HL: 20, 21, 19 or PT
    provider: ProviderStatus | None = None
    claim: ClaimStatus | None = None
    line: LineStatus | None = None
    provider_emitted = False

    def pending() -> Iterator[ProviderStatus | ClaimStatus]:
        nonlocal claim, line, provider_emitted
        if provider is not None and provider.statuses and not provider_emitted:
            provider_emitted = True  # once, before its claims
            yield provider
        if claim is not None:
            yield claim
        claim = line = None

    for seg in reader:
        sid = seg.id
        if sid == "ST":
            if seg.element(1) != "277":
                raise _fail(seg, f"transaction set {seg.element(1)!r} is not a 277")
            provider = claim = line = None
            level = ""
        elif sid == "HL":
            yield from pending()
            level = seg.element(3)
            if level == "19":
                provider = None  # a new loop 2000C: its billing provider is its own NM1*85
        elif sid == "SE":
            yield from pending()
            provider = None
        elif level == "19":
            if sid == "NM1" and seg.element(1) == "85":  # never another entity's NM109 (a member id)
                assert reader.transaction is not None
                provider = ProviderStatus(reader.transaction, seg.element(9))
                provider_emitted = False
            elif sid == "STC":
                if provider is None:
                    raise _fail(seg, "STC of loop 2200C without the NM1*85 of loop 2100C")
                provider.statuses.append(_status(seg))
        elif level == "PT":
            if sid == "TRN":
                yield from pending()
                assert reader.transaction is not None
                claim = ClaimStatus(reader.transaction, provider.provider_id if provider else "", seg.element(2))
            elif sid in ("STC", "REF", "DTP", "SVC") and claim is None:
                raise _fail(seg, f"{sid} of loop 2200D before its TRN (patient control number)")
            elif sid == "SVC":
                parts = seg.composite(1, required=2)
                line = LineStatus(parts[0], parts[1], tuple(m for m in parts[2:6] if m),
                                  _decimal(seg, 2), _decimal(seg, 7))
                claim.lines.append(line)
            elif sid == "STC":
                (line or claim).statuses.append(_status(seg))
            elif sid == "REF":
                qualifier, value = seg.element(1), seg.element(2)
                if line is not None and qualifier == "FJ":
                    line.line_control_number = value
                elif line is None and qualifier == "1K":
                    claim.payer_claim_control_number = value
                elif line is None and qualifier == "D9":
                    claim.clearinghouse_trace_number = value
            elif sid == "DTP" and seg.element(1) == "472":
                (line or claim).service_start, (line or claim).service_end = _period(seg)
