"""Interchange (ISA/IEA), functional group (GS/GE) and transaction set (ST/SE)
envelopes for what we send. One interchange holds one group holding one
transaction set; the caller splits big batches into several files.

Control numbers are allocated by the warehouse (never reused) and passed in.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from otedi.config import Clearinghouse, Practice
from otedi.errors import X12Error
from otedi.x12.segments import Delimiters, SegmentWriter

ISA_LENGTH = 106  # the fixed-width ISA, segment terminator included
VERSION_5010 = "00501"  # ISA12
MAX_CONTROL_NUMBER = 999_999_999  # ISA13 is exactly 9 digits; GS06 and ST02 at most 9


@dataclass(frozen=True)
class ControlNumbers:
    interchange: int  # ISA13 / IEA02
    group: int  # GS06 / GE02
    transaction: int  # ST02 / SE02

    def __post_init__(self) -> None:
        for name in ("interchange", "group", "transaction"):
            value = getattr(self, name)
            if not 1 <= value <= MAX_CONTROL_NUMBER:
                raise X12Error(f"{name} control number {value} is outside 1..{MAX_CONTROL_NUMBER}")

    @property
    def isa13(self) -> str:
        return f"{self.interchange:09d}"

    @property
    def gs06(self) -> str:
        return str(self.group)

    @property
    def st02(self) -> str:
        return f"{self.transaction:04d}"  # ST02 is 4 to 9 characters


@dataclass(frozen=True)
class Envelope:
    sender_qualifier: str  # ISA05
    sender_id: str  # ISA06
    receiver_qualifier: str  # ISA07
    receiver_id: str  # ISA08
    application_sender: str  # GS02
    application_receiver: str  # GS03
    usage: str  # ISA15: T test, P production
    control: ControlNumbers
    created: datetime  # ISA09/ISA10, GS04/GS05
    functional_id: str  # GS01: HC claims, FA acknowledgments, HP remittances
    transaction_set: str  # ST01
    version: str  # GS08 / ST03, e.g. 005010X222A1

    @classmethod
    def outbound(
        cls,
        practice: Practice,
        clearinghouse: Clearinghouse,
        control: ControlNumbers,
        created: datetime,
        *,
        functional_id: str,
        transaction_set: str,
        version: str,
    ) -> Envelope:
        """Our practice (as the clearinghouse's submitter) to the clearinghouse."""
        return cls(
            sender_qualifier=clearinghouse.isa_sender_qualifier,
            sender_id=practice.submitter_id,
            receiver_qualifier=clearinghouse.isa_receiver_qualifier,
            receiver_id=clearinghouse.isa_receiver_id,
            application_sender=practice.submitter_id,
            application_receiver=clearinghouse.gs_receiver_code,
            usage=clearinghouse.usage_indicator,
            control=control,
            created=created,
            functional_id=functional_id,
            transaction_set=transaction_set,
            version=version,
        )


def isa_segment(envelope: Envelope, d: Delimiters) -> str:
    """The ISA laid out to its fixed widths (without the segment terminator)."""
    if envelope.usage not in ("T", "P"):
        raise X12Error(f"ISA15 usage indicator must be T or P, not {envelope.usage!r}", segment_id="ISA")
    elements = [
        "ISA",
        "00", " " * 10,  # ISA01/02 no authorization information
        "00", " " * 10,  # ISA03/04 no security information
        envelope.sender_qualifier, _fixed("ISA06", envelope.sender_id, 15, d),
        envelope.receiver_qualifier, _fixed("ISA08", envelope.receiver_id, 15, d),
        envelope.created.strftime("%y%m%d"), envelope.created.strftime("%H%M"),
        d.repetition,  # ISA11 repetition separator
        VERSION_5010,
        envelope.control.isa13,
        "0",  # ISA14: no TA1 interchange acknowledgment requested (the 999 is what we use)
        envelope.usage,
        d.component,  # ISA16 component element separator
    ]
    text = d.element.join(elements)
    if len(text) + len(d.segment) != ISA_LENGTH:
        raise X12Error(f"ISA is {len(text) + len(d.segment)} characters, not {ISA_LENGTH}", segment_id="ISA")
    return text


def _fixed(reference: str, value: str, width: int, d: Delimiters) -> str:
    if not value or len(value) > width or any(ch in d.characters for ch in value):
        raise X12Error(f"{reference} must be 1 to {width} characters, none of them a delimiter", segment_id="ISA")
    return value.ljust(width)


@contextmanager
def transaction(writer: SegmentWriter, envelope: Envelope) -> Iterator[SegmentWriter]:
    """Write ISA, GS and ST, let the caller write the body, then SE, GE and IEA.

    If the body raises, no trailers are written: the output is incomplete on
    purpose and must be discarded.
    """
    control = envelope.control
    writer.write_formatted(isa_segment(envelope, writer.delimiters))
    writer.write(
        "GS",
        envelope.functional_id,
        envelope.application_sender,
        envelope.application_receiver,
        envelope.created.strftime("%Y%m%d"),
        envelope.created.strftime("%H%M"),
        control.gs06,
        "X",  # GS07 responsible agency: Accredited Standards Committee X12
        envelope.version,
    )
    before_st = writer.count
    writer.write("ST", envelope.transaction_set, control.st02, envelope.version)
    yield writer
    # SE01 counts every segment from ST to SE, both included.
    writer.write("SE", str(writer.count - before_st + 1), control.st02)
    writer.write("GE", "1", control.gs06)
    writer.write("IEA", "1", control.isa13)
