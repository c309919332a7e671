"""Envelopes for what the clearinghouse sends back to us.

otedi.x12.envelope.transaction writes one transaction set and always sends
ST03; the 835 guide marks ST03 "not used" and a 277CA interchange may carry
several transaction sets. This writer reuses its fixed-width ISA and adds
both: several ST..SE per group, ST03 when the guide wants it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time
from io import StringIO

from otedi.x12.envelope import ControlNumbers, Envelope, isa_segment
from otedi.x12.segments import SegmentWriter


@dataclass(frozen=True)
class Parties:
    """The clearinghouse (sender) and our submitter (receiver), as our 837P named them."""

    clearinghouse_qualifier: str  # our ISA07
    clearinghouse_id: str  # our ISA08
    gs_clearinghouse: str  # our GS03
    submitter_qualifier: str  # our ISA05
    submitter_id: str  # our ISA06 and GS02
    usage: str  # ISA15


class Interchange:
    """One ISA/GS ... GE/IEA holding any number of transaction sets; `text()` once done.

    Everything is dated `day` at 00:00: answers carry no time of day, so the
    same inputs give the same bytes.
    """

    def __init__(self, parties: Parties, number: int, day: date, *, functional_id: str, version: str):
        self.number = number
        self.version = version
        self.created = datetime.combine(day, time(0, 0))
        self._out = StringIO()
        self.writer = SegmentWriter(self._out)
        self._sets = 0
        envelope = Envelope(
            sender_qualifier=parties.clearinghouse_qualifier, sender_id=parties.clearinghouse_id,
            receiver_qualifier=parties.submitter_qualifier, receiver_id=parties.submitter_id,
            application_sender=parties.gs_clearinghouse, application_receiver=parties.submitter_id,
            usage=parties.usage, control=ControlNumbers(number, number, 1), created=self.created,
            functional_id=functional_id, transaction_set="", version=version,
        )
        self.writer.write_formatted(isa_segment(envelope, self.writer.delimiters))
        self.writer.write("GS", functional_id, envelope.application_sender, envelope.application_receiver,
                          self.created.strftime("%Y%m%d"), self.created.strftime("%H%M"), str(number), "X", version)

    @contextmanager
    def transaction(self, set_id: str, *, st03: bool = True) -> Iterator[SegmentWriter]:
        self._sets += 1
        st02 = f"{self._sets:04d}"
        before = self.writer.count
        self.writer.write("ST", set_id, st02, self.version if st03 else None)
        yield self.writer
        self.writer.write("SE", str(self.writer.count - before + 1), st02)

    def text(self) -> str:
        self.writer.write("GE", str(self._sets), str(self.number))
        self.writer.write("IEA", "1", f"{self.number:09d}")
        return self._out.getvalue()
