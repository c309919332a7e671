"""999 Implementation Acknowledgment (005010X231A1): did the clearinghouse
accept our 837P batches?

Per AK1 functional group (the GS06 we sent): per AK2 transaction set (our
ST02) the IK3 segment errors with their IK4 element errors and the IK5
verdict; then AK9 for the group. Codes come with plain-word texts (the common
ones of the X12 999 code lists). IK404 (the bad value) may echo PHI from our
claim: it is kept out of `repr()`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from os import PathLike
from typing import BinaryIO

from otedi.errors import X12Error
from otedi.x12.reader import Segment, TransactionEnvelope, X12Reader

# IK304 segment syntax error codes.
SEGMENT_ERROR = {
    "1": "unrecognized segment id",
    "2": "unexpected segment",
    "3": "required segment missing",
    "4": "loop occurs over maximum times",
    "5": "segment exceeds maximum use",
    "6": "segment not in defined transaction set",
    "7": "segment not in proper sequence",
    "8": "segment has data element errors",
    "I4": "implementation 'not used' segment present",
    "I6": "implementation dependent segment missing",
    "I7": "implementation loop occurs under minimum times",
    "I8": "implementation segment below minimum use",
    "I9": "implementation dependent 'not used' segment present",
}
# IK403 data element syntax error codes.
ELEMENT_ERROR = {
    "1": "required data element missing",
    "2": "conditional required data element missing",
    "3": "too many data elements",
    "4": "data element too short",
    "5": "data element too long",
    "6": "invalid character in data element",
    "7": "invalid code value",
    "8": "invalid date",
    "9": "invalid time",
    "10": "exclusion condition violated",
    "12": "too many repetitions",
    "13": "too many components",
    "I6": "code value not used in implementation",
    "I9": "implementation dependent data element missing",
    "I10": "implementation 'not used' data element present",
    "I11": "implementation too few repetitions",
    "I12": "implementation pattern match failure",
    "I13": "implementation dependent 'not used' data element present",
}
# IK501 / AK901 acknowledgment codes.
ACK_STATUS = {
    "A": "accepted",
    "E": "accepted, but errors were noted",
    "M": "rejected, message authentication code failed",
    "P": "partially accepted, at least one transaction set was rejected",
    "R": "rejected",
    "W": "rejected, assurance failed validity tests",
    "X": "rejected, content after decryption could not be analyzed",
}
# IK502-IK506 transaction set syntax error codes.
TRANSACTION_SET_ERROR = {
    "1": "transaction set not supported",
    "2": "transaction set trailer missing",
    "3": "transaction set control number in header and trailer do not match",
    "4": "number of included segments does not match actual count",
    "5": "one or more segments in error",
    "6": "missing or invalid transaction set identifier",
    "7": "missing or invalid transaction set control number",
    "18": "transaction set not in functional group",
    "19": "invalid transaction set implementation convention reference",
    "23": "transaction set control number not unique within the functional group",
    "I5": "implementation one or more segments in error",
    "I6": "implementation convention not supported",
}
# AK905-AK909 functional group syntax error codes.
GROUP_ERROR = {
    "1": "functional group not supported",
    "2": "functional group version not supported",
    "3": "functional group trailer missing",
    "4": "group control number in the functional group header and trailer do not agree",
    "5": "number of included transaction sets does not match actual count",
    "6": "group control number violates syntax",
    "19": "functional group control number not unique within interchange",
}


def _text(table: dict[str, str], code: str) -> str:
    return table.get(code, f"code {code}")


@dataclass(slots=True)
class ElementError:
    """IK4: one bad element of the segment its IK3 names."""

    element_position: int  # IK401-1, position in the segment
    component_position: int | None  # IK401-2, for a composite
    element_reference: str  # IK402, the data element dictionary number
    code: str  # IK403
    bad_value: str = field(default="", repr=False)  # IK404 (may be PHI)

    @property
    def description(self) -> str:
        return _text(ELEMENT_ERROR, self.code)


@dataclass(slots=True)
class SegmentError:
    """IK3: one segment of our transaction set in error."""

    segment_id: str  # IK301
    position: int  # IK302, counted from our ST = 1
    loop_id: str  # IK303, e.g. 2400 ("" when not sent)
    code: str  # IK304
    element_errors: list[ElementError] = field(default_factory=list)

    @property
    def description(self) -> str:
        return _text(SEGMENT_ERROR, self.code)


@dataclass(slots=True)
class TransactionSetResponse:
    """AK2 .. IK5: the verdict on one transaction set we sent."""

    transaction_set_id: str  # AK201 (837)
    control_number: str  # AK202 = our ST02
    convention: str  # AK203 = our ST03
    status: str = ""  # IK501
    error_codes: list[str] = field(default_factory=list)  # IK502-IK506
    segment_errors: list[SegmentError] = field(default_factory=list)

    @property
    def status_text(self) -> str:
        return _text(ACK_STATUS, self.status)

    @property
    def error_texts(self) -> list[str]:
        return [_text(TRANSACTION_SET_ERROR, c) for c in self.error_codes]

    @property
    def accepted(self) -> bool:
        """A or E: the transaction set goes on to adjudication (E with noted errors)."""
        return self.status in ("A", "E")


@dataclass(slots=True)
class GroupResponse:
    """AK1 .. AK9: the verdict on one functional group we sent."""

    functional_id: str  # AK101 (HC for claims)
    control_number: str  # AK102 = our GS06
    version: str  # AK103 = our GS08
    transaction_sets: list[TransactionSetResponse] = field(default_factory=list)
    status: str = ""  # AK901
    included: int = 0  # AK902 transaction sets we sent
    received: int = 0  # AK903
    accepted_count: int = 0  # AK904
    error_codes: list[str] = field(default_factory=list)  # AK905-AK909

    @property
    def status_text(self) -> str:
        return _text(ACK_STATUS, self.status)

    @property
    def error_texts(self) -> list[str]:
        return [_text(GROUP_ERROR, c) for c in self.error_codes]


@dataclass(slots=True)
class Ack999:
    """One 999 transaction set."""

    envelope: TransactionEnvelope
    groups: list[GroupResponse] = field(default_factory=list)


def _whole(segment: Segment, value: str, reference: str) -> int:
    if not (value.isascii() and value.isdigit() and len(value) <= 9):
        raise X12Error(f"{reference} is not a whole number", segment_number=segment.number, segment_id=segment.id)
    return int(value)


def _int(segment: Segment, position: int) -> int:
    return _whole(segment, segment.element(position), f"{segment.id}{position:02d}")


def _need(parent: object, segment: Segment, what: str) -> None:
    if parent is None:
        raise X12Error(f"{segment.id} outside {what}", segment_number=segment.number, segment_id=segment.id)


def _codes(segment: Segment, first: int, last: int) -> list[str]:
    return [c for c in (segment.element(n) for n in range(first, last + 1)) if c]


def iter_999(source: str | PathLike[str] | BinaryIO, *, strict: bool = True) -> Iterator[Ack999]:
    """Yield every 999 transaction set of the file, in order."""
    reader = X12Reader(source, strict=strict)
    ack: Ack999 | None = None
    group: GroupResponse | None = None
    response: TransactionSetResponse | None = None
    segment_error: SegmentError | None = None
    for seg in reader:
        sid = seg.id
        if sid == "ST":
            if seg.element(1) != "999":
                raise X12Error(f"transaction set {seg.element(1)!r} is not a 999",
                               segment_number=seg.number, segment_id=sid)
            assert reader.transaction is not None
            ack, group, response, segment_error = Ack999(reader.transaction), None, None, None
        elif sid == "AK1":
            _need(ack, seg, "a 999")
            group = GroupResponse(seg.element(1), seg.element(2), seg.element(3))
            ack.groups.append(group)
        elif sid == "AK2":
            _need(group, seg, "an AK1 functional group response")
            response = TransactionSetResponse(seg.element(1), seg.element(2), seg.element(3))
            group.transaction_sets.append(response)
            segment_error = None
        elif sid == "IK3":
            _need(response, seg, "an AK2 transaction set response")
            segment_error = SegmentError(seg.element(1), _int(seg, 2), seg.element(3), seg.element(4))
            response.segment_errors.append(segment_error)
        elif sid == "IK4":
            _need(segment_error, seg, "an IK3 segment error")
            position = seg.composite(1)  # IK401: element position [: component position [: repetition]]
            component = position[1] if len(position) > 1 else ""
            segment_error.element_errors.append(
                ElementError(
                    _whole(seg, position[0], "IK401-1"),
                    _whole(seg, component, "IK401-2") if component else None,
                    seg.element(2), seg.element(3), seg.element(4),
                )
            )
        elif sid == "IK5":
            _need(response, seg, "an AK2 transaction set response")
            response.status = seg.element(1)
            response.error_codes = _codes(seg, 2, 6)
            response, segment_error = None, None
        elif sid == "AK9":
            _need(group, seg, "an AK1 functional group response")
            group.status = seg.element(1)
            group.included, group.received, group.accepted_count = _int(seg, 2), _int(seg, 3), _int(seg, 4)
            group.error_codes = _codes(seg, 5, 9)
            group = None
        elif sid == "SE":
            assert ack is not None
            yield ack
            ack = None
