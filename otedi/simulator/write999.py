"""999 implementation acknowledgment (005010X231A1) for one 837P interchange.

pyx12's findings (otedi.x12.validate) are sorted into the transaction set
they fall in: segment and element errors become IK3/IK4 and reject the set
(IK5*R*5), ST/SE errors become the set's IK5 codes, and errors outside every
set (GS/GE, ISA/IEA) reject the group. AK1 echoes our GS06, AK2 our ST02.
IK4 never copies the bad value (IK404): it may be PHI.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from otedi.simulator.envelope import Interchange
from otedi.simulator.reader837 import Interchange837, Transaction837
from otedi.x12.validate import GROUP_CODES, TRANSACTION_CODES, ValidationReport, X12Problem

VERSION = "005010X231A1"
IK304_CODES = {"1", "2", "3", "4", "5", "6", "7", "8"}
IK403_CODES = {"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "12", "13"}
# pyx12's own segment codes, as IK3 "8" with an IK4 on the element they concern: (element, IK403)
PYX12_SEGMENT_CODES = {"HL1": ("1", "7"), "HL2": ("2", "7"), "LX": ("1", "7"), "SEG1": (None, None)}
TRANSACTION_SEGMENTS = ("ST", "SE")
_REFERENCE = re.compile(r"^(?P<element>\d{2})(?:-(?P<component>\d+))?$")


@dataclass
class SegmentNote:
    """One IK3 with its IK4s."""

    segment_id: str
    position: int  # IK302: position in the transaction set, ST = 1
    loop_id: str | None
    code: str | None = None
    elements: list[tuple[str, str]] = field(default_factory=list)  # (IK401, IK403)


@dataclass
class SetAck:
    transaction: Transaction837
    segments: dict[int, SegmentNote] = field(default_factory=dict)
    set_codes: list[str] = field(default_factory=list)  # IK502.. from ST/SE errors

    @property
    def accepted(self) -> bool:
        return not self.segments and not self.set_codes


@dataclass
class GroupAck:
    sets: list[SetAck]
    group_codes: list[str]  # AK905..

    @property
    def accepted_sets(self) -> list[SetAck]:
        return [] if self.group_codes else [s for s in self.sets if s.accepted]


def acknowledge(interchange: Interchange837, report: ValidationReport) -> GroupAck:
    sets = [SetAck(tx) for tx in interchange.transactions]
    group_codes: list[str] = []
    for problem in report.errors:
        target = _set_of(sets, problem.segment_number)
        if target is None:
            # Outside every ST..SE: the group (or the interchange around it) is broken.
            code = problem.code if problem.code in GROUP_CODES else "1"
            if code not in group_codes:
                group_codes.append(code)
        elif problem.segment_id in TRANSACTION_SEGMENTS and problem.element is None \
                and problem.code in TRANSACTION_CODES:
            if problem.code not in target.set_codes:
                target.set_codes.append(problem.code)
        else:
            _note(target, problem)
    if not sets and not group_codes:
        group_codes.append("1")  # a group without transaction sets is not a group we support
    return GroupAck(sets, group_codes)


def _set_of(sets: list[SetAck], segment_number: int | None) -> SetAck | None:
    for s in sets:
        end = s.transaction.se_position or float("inf")
        if segment_number is not None and s.transaction.st_position <= segment_number <= end:
            return s
    return None


def _note(target: SetAck, problem: X12Problem) -> None:
    number = problem.segment_number
    note = target.segments.setdefault(number, SegmentNote(
        problem.segment_id or "", number - target.transaction.st_position + 1, problem.loop_id))
    if problem.element is None:
        if problem.code in IK304_CODES:
            note.code = note.code or problem.code
            return
        element, code = PYX12_SEGMENT_CODES.get(problem.code, (None, None))
        note.code = note.code or "8"
        if element:
            note.elements.append((element, code))
        return
    note.code = note.code or "8"
    found = _REFERENCE.match(problem.element[len(problem.segment_id or ""):])
    if found:
        position = str(int(found["element"]))
        if found["component"]:
            position += f":{int(found['component'])}"
        note.elements.append((position, problem.code if problem.code in IK403_CODES else "7"))


def render_999(interchange: Interchange837, ack: GroupAck, envelope: Interchange) -> str:
    """The 999 text. A set is only reported accepted (IK5*A) for its own content;
    AK9 rejects the whole group when the group itself is broken."""
    accepted = sum(1 for s in ack.sets if s.accepted)
    with envelope.transaction("999") as w:
        w.write("AK1", interchange.gs01, interchange.gs06, interchange.gs08)
        for s in ack.sets:
            tx = s.transaction
            w.write("AK2", "837", tx.st02, tx.version or None)
            for number in sorted(s.segments):
                note = s.segments[number]
                # IK303 holds at most 4 characters: loop ids such as 2010AA are left out rather than cut.
                loop_id = note.loop_id if note.loop_id and len(note.loop_id) <= 4 else None
                w.write("IK3", note.segment_id, str(note.position), loop_id, note.code)
                for position, code in note.elements:
                    w.write("IK4", tuple(position.split(":")), None, code)
            if s.accepted:
                w.write("IK5", "A")
            else:
                w.write("IK5", "R", *(s.set_codes + (["5"] if s.segments else []))[:5])
        status = "R" if ack.group_codes or not accepted else "A" if accepted == len(ack.sets) else "P"
        w.write("AK9", status, str(len(ack.sets)), str(len(ack.sets)), str(accepted), *ack.group_codes[:5])
    return envelope.text()
