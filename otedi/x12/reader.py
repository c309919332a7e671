"""One streaming reader for every X12 file we receive (835, 999, 277CA).

The file is read in chunks and cut into segments with the delimiters its ISA
declares: the element separator is the 4th character of the ISA, ISA11 the
repetition separator (5010; a letter there, as in 4010, means none), ISA16 the
component separator and the character right after ISA16 the segment
terminator. Any characters may be used (`>`, `|`, ...), each interchange of a
file may use its own, and the ISA need not be fixed width.

Tolerated on purpose: a UTF-8 byte-order mark, line breaks, indentation and
blank lines between segments, and a missing terminator after the last segment.

Envelopes are checked while reading: ISA/IEA, GS/GE and ST/SE must nest and
close, IEA02 = ISA13, GE02 = GS06, SE02 = ST02, SE01 = segments from ST to SE,
GE01 = transaction sets in the group, IEA01 = groups in the interchange.
Structural problems (no ISA, a segment outside its envelope, a file that ends
before SE/GE/IEA) always raise `X12Error`. Count and control-number mismatches
raise too, unless the reader is built with `strict=False`: then they are kept
in `problems` and reading goes on (for acknowledgments one still wants to read).

Messages name the segment number (1 = the first ISA) and id, never element
values that could be PHI.
"""

from __future__ import annotations

import codecs
import itertools
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from operator import gt
from os import PathLike
from typing import BinaryIO

from otedi.errors import X12Error
from otedi.x12.segments import Delimiters

CHUNK_SIZE = 1 << 16
MAX_SEGMENT_LENGTH = 1 << 20  # more than this without a terminator: not X12
ISA_ELEMENTS = 16
_SEGMENT_ID = re.compile(r"[A-Z0-9]{2,3}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Maximum lengths (X12 data element dictionary, 005010) of the elements the warehouse stores from 999,
# 277CA and 835 files: a longer value is not valid X12 and the file is refused naming the element, so
# nothing reaches a column that would refuse it (PostgreSQL) or keep it silently (SQLite). A simple element is
# measured whole (a component separator in it is data out of place); a composite, given as a tuple, per
# component: each its own maximum, the last one for every further component.
ELEMENT_MAX: dict[tuple[str, int], int | tuple[int, ...]] = {
    ("ST", 1): 3, ("ST", 2): 9, ("SE", 2): 9, ("GS", 6): 9, ("GE", 2): 9,
    ("BPR", 3): 1, ("BPR", 4): 3, ("TRN", 2): 50, ("TRN", 3): 10,
    ("N1", 2): 60, ("N1", 4): 80, ("NM1", 3): 60, ("NM1", 9): 80,
    ("CLP", 1): 38, ("CLP", 2): 2, ("CLP", 7): 50,
    ("CAS", 1): 2, ("CAS", 2): 5, ("CAS", 5): 5, ("CAS", 8): 5, ("CAS", 11): 5, ("CAS", 14): 5, ("CAS", 17): 5,
    ("SVC", 1): (80,), ("REF", 2): 50, ("LQ", 2): 30, ("MIA", 5): 50, ("MOA", 3): 50,
    ("PLB", 1): 50, ("PLB", 3): (50,), ("PLB", 5): (50,), ("AK1", 2): 9, ("AK2", 2): 9, ("IK3", 1): 3,
    ("IK5", 1): 1,
    ("STC", 1): (2, 30, 3),  # C043: category, status, entity
}
_ST_FRAGMENT = re.compile(r"ST[^A-Za-z0-9\s]")
# A composite written with another separator than ISA16: a 2-character
# qualifier (HC, AD, N4, ...), a punctuation character, then a code.
_FOREIGN_COMPOSITE = re.compile(r"[A-Z0-9]{2}([^A-Za-z0-9\s.\-])[A-Za-z0-9]")


def _thresholds() -> dict[str, tuple[int, ...]]:
    """Per segment id, per element (XX01 first), a length no valid value exceeds: ELEMENT_MAX's, the smallest
    component maximum for a composite, no bound elsewhere. Comparing lengths against these is one pass in C;
    only a segment with a longer value is looked at element by element (`_check_values`)."""
    by_id: dict[str, list[int]] = {}
    for (sid, position), limit in ELEMENT_MAX.items():
        row = by_id.setdefault(sid, [])
        row.extend([sys.maxsize] * (position - len(row)))
        row[position - 1] = min(limit) if isinstance(limit, tuple) else limit
    return {sid: tuple(row) for sid, row in by_id.items()}


_THRESHOLDS = _thresholds()
_ENVELOPE_IDS = frozenset({"ISA", "IEA", "GS", "GE", "ST", "SE"})


def _check_values(segment: "Segment") -> None:
    """No control characters (a NUL byte, say) and no value longer than its element allows."""
    for position, value in enumerate(segment.elements, start=1):
        if found := _CONTROL.search(value):
            raise X12Error(f"{segment.id}{position:02d} contains a control character (byte "
                           f"0x{ord(found.group()):02x}); the file is corrupt",
                           segment_number=segment.number, segment_id=segment.id)
        limit = ELEMENT_MAX.get((segment.id, position))
        if limit is None or not value:
            continue
        composite = isinstance(limit, tuple)
        for component, part in enumerate(value.split(segment.delimiters.component) if composite else [value], 1):
            most = limit[min(component, len(limit)) - 1] if composite else limit
            if len(part) > most:
                where = f"{segment.id}{position:02d}" + (f"-{component}" if composite else "")
                raise X12Error(f"{where} has {len(part)} characters; X12 allows at most {most}",
                               segment_number=segment.number, segment_id=segment.id)


@dataclass(slots=True)
class Segment:
    """One segment. `elements[0]` is the first element after the id (XX01)."""

    number: int  # 1-based position in the file
    id: str
    elements: list[str]
    delimiters: Delimiters = field(repr=False)

    def element(self, position: int) -> str:
        """XXnn by its 1-based position; "" when absent."""
        return self.elements[position - 1] if 0 < position <= len(self.elements) else ""

    def components(self, position: int) -> list[str]:
        """XXnn split at the ISA16 component separator ([""] when absent)."""
        return self.element(position).split(self.delimiters.component)

    def repetitions(self, position: int) -> list[str]:
        value = self.element(position)
        if not self.delimiters.repetition:
            return [value]
        return value.split(self.delimiters.repetition)

    def composite(self, position: int, *, required: int = 1, tolerant: bool = False) -> list[str]:
        """XXnn split into components, the first `required` of them non-empty.

        Some senders separate components with another character than the one
        ISA16 declares (`SVC*HC>55669` under `ISA16 = :`). When the value does
        not contain ISA16 but reads as qualifier + punctuation + code, that is
        reported as a separator mismatch; with `tolerant=True` the value is
        split at that other character instead.
        """
        value = self.element(position)
        parts = value.split(self.delimiters.component)
        if len(parts) >= required and all(parts[:required]):
            return parts
        reference = f"{self.id}{position:02d}"
        foreign = _FOREIGN_COMPOSITE.match(value) if len(parts) == 1 else None
        if foreign is None:
            raise X12Error(
                f"{reference} composite needs {required} non-empty component(s), "
                f"found {sum(1 for p in parts if p)} (malformed composite)",
                segment_number=self.number,
                segment_id=self.id,
            )
        other = foreign.group(1)
        if not tolerant:
            raise X12Error(
                f"{reference} separates components with {other!r} but ISA16 declares "
                f"{self.delimiters.component!r} (component separator mismatch)",
                segment_number=self.number,
                segment_id=self.id,
            )
        return value.split(other)


@dataclass(frozen=True, slots=True)
class Interchange:
    """ISA header of the interchange a segment belongs to."""

    segment_number: int
    sender_qualifier: str  # ISA05
    sender_id: str  # ISA06, trailing blanks removed
    receiver_qualifier: str  # ISA07
    receiver_id: str  # ISA08
    date: str  # ISA09 YYMMDD
    time: str  # ISA10 HHMM
    version: str  # ISA12
    control_number: str  # ISA13
    usage: str  # ISA15 T test / P production
    delimiters: Delimiters


@dataclass(frozen=True, slots=True)
class FunctionalGroup:
    segment_number: int
    functional_id: str  # GS01: HP 835, FA 999, HN 277
    application_sender: str  # GS02
    application_receiver: str  # GS03
    date: str  # GS04 CCYYMMDD
    control_number: str  # GS06
    version: str  # GS08, e.g. 005010X221A1


@dataclass(frozen=True, slots=True)
class TransactionEnvelope:
    """Everything around one transaction set: its ST and the GS and ISA holding it."""

    interchange: Interchange
    group: FunctionalGroup
    segment_number: int  # of the ST
    transaction_set_id: str  # ST01: 835, 999, 277
    control_number: str  # ST02
    convention: str  # ST03 implementation convention reference ("" when not sent)


class X12Reader:
    """Iterate the segments of an X12 file, envelopes checked.

    `transaction` is the envelope of the transaction set the last segment
    belongs to (set from its ST on; still set while its SE is yielded).
    A reader is iterated once.
    """

    def __init__(
        self,
        source: str | PathLike[str] | BinaryIO,
        *,
        strict: bool = True,
        encoding: str = "utf-8",
        chunk_size: int = CHUNK_SIZE,
    ):
        self.source = source
        self.strict = strict
        self.encoding = encoding
        self.chunk_size = chunk_size
        self.problems: list[X12Error] = []  # mismatches kept when strict=False
        self.interchange: Interchange | None = None
        self.group: FunctionalGroup | None = None
        self.transaction: TransactionEnvelope | None = None
        self._delimiters: Delimiters | None = None  # None: the next segment must be an ISA
        self._count = 0
        self._open_interchange = False

    # -- reading -------------------------------------------------------------

    def _text_chunks(self) -> Iterator[str]:
        if isinstance(self.source, (str, PathLike)):
            with open(self.source, "rb") as stream:
                yield from self._decode(stream)
        else:
            yield from self._decode(self.source)

    def _decode(self, stream: BinaryIO) -> Iterator[str]:
        try:
            decoder = codecs.getincrementaldecoder(self.encoding)()
        except LookupError as exc:
            raise X12Error(f"unknown text encoding {self.encoding!r}") from exc
        bom = codecs.BOM_UTF8
        head = b""
        while len(head) < len(bom) and (data := stream.read(self.chunk_size)):
            head += data  # however small the chunks, the byte-order mark is seen whole
        offset = len(bom) if head.startswith(bom) else 0  # bytes of the file before `data`
        chunks = itertools.chain([head[offset:]], iter(lambda: stream.read(self.chunk_size), b""), [None])
        for data in chunks:
            pending = len(decoder.getstate()[0])  # bytes of a character the last chunk cut in two
            try:
                text = decoder.decode(data or b"", final=data is None)
            except UnicodeDecodeError as exc:  # exc.start counts from the first pending byte
                raise X12Error(
                    f"byte {offset - pending + exc.start} is not valid {self.encoding} text",
                    segment_number=self._count + 1,
                ) from exc
            offset += len(data or b"")
            if text:
                yield text

    def _raw_segments(self) -> Iterator[str]:
        """Segment texts, stripped of surrounding whitespace, empty ones skipped."""
        chunks = self._text_chunks()
        buffer = ""
        eof = False

        def more() -> bool:
            nonlocal buffer, eof
            chunk = next(chunks, None)
            if chunk is None:
                eof = True
                return False
            buffer += chunk
            return True

        while True:
            if self._delimiters is None:
                buffer = buffer.lstrip()
                while not eof and len(buffer) < 1024 and more():
                    buffer = buffer.lstrip()
                if not buffer:
                    if self._count == 0:
                        raise X12Error("file is empty (no ISA)")
                    return
                isa_text, consumed = self._read_isa(buffer, eof)
                buffer = buffer[consumed:]
                yield isa_text
                continue
            terminator = self._delimiters.segment
            if terminator not in buffer:
                if len(buffer) > MAX_SEGMENT_LENGTH:
                    raise X12Error(
                        f"no segment terminator {terminator!r} within {MAX_SEGMENT_LENGTH} characters",
                        segment_number=self._count + 1,
                    )
                if not more():
                    rest = buffer.strip()
                    buffer = ""
                    if rest:
                        yield rest  # last segment without a terminator
                        if self._delimiters is None:
                            continue  # it was an IEA: anything left must start a new ISA
                    return
                continue
            pieces = buffer.split(terminator)
            buffer = pieces.pop()
            for index, piece in enumerate(pieces):
                piece = piece.strip()
                if piece:
                    yield piece
                if self._delimiters is None:  # an IEA: the next interchange declares its own delimiters
                    buffer = terminator.join(pieces[index + 1:] + [buffer])
                    break

    def _read_isa(self, text: str, eof: bool) -> tuple[str, int]:
        number = self._count + 1
        if not text.startswith("ISA"):
            if _ST_FRAGMENT.match(text):
                raise X12Error("ST-only fragment, no ISA envelope", segment_number=number, segment_id="ST")
            if self._count == 0:
                raise X12Error("file does not start with ISA (not an X12 interchange)", segment_number=number)
            raise X12Error("only an ISA may follow an IEA", segment_number=number)
        if len(text) < 4:
            raise X12Error("file ends inside the ISA", segment_number=number, segment_id="ISA")
        element = text[3]
        position = 3
        for _ in range(ISA_ELEMENTS - 1):
            position = text.find(element, position + 1)
            if position < 0:
                break
        if position < 0 or len(text) < position + 3:
            problem = "file ends inside the ISA" if eof else "ISA does not have 16 elements"
            raise X12Error(problem, segment_number=number, segment_id="ISA")
        component, terminator = text[position + 1], text[position + 2]
        isa_text = text[:position + 2]
        repetition = isa_text.split(element)[11]
        if len(repetition) != 1 or repetition.isalnum():
            repetition = ""  # 4010 puts the standards identifier "U" in ISA11
        delimiters = Delimiters(element=element, component=component, repetition=repetition, segment=terminator)
        chars = [element, component, terminator] + ([repetition] if repetition else [])
        if len(set(chars)) != len(chars):
            raise X12Error(
                "ISA declares the same character for two delimiters", segment_number=number, segment_id="ISA"
            )
        if any(ch.isalnum() for ch in chars) or any(ch.isspace() for ch in (element, component)):
            raise X12Error(
                "ISA delimiters must not be letters, digits or blanks", segment_number=number, segment_id="ISA"
            )
        self._delimiters = delimiters
        return isa_text, position + 3

    # -- envelopes -----------------------------------------------------------

    def __iter__(self) -> Iterator[Segment]:
        in_group = in_transaction = False
        groups_in_interchange = sets_in_group = 0
        st_count = 0  # segments since ST, ST included
        # segment ids seen and found well formed, each with its `_THRESHOLDS` (() when it has none): one lookup
        known: dict[str, tuple[int, ...]] = {}
        for text in self._raw_segments():
            delimiters = self._delimiters
            assert delimiters is not None
            parts = text.split(delimiters.element)
            self._count = number = self._count + 1
            sid = parts[0]
            segment = Segment(number, sid, parts[1:], delimiters)
            thresholds = known.get(sid)
            if thresholds is None:
                if not _SEGMENT_ID.fullmatch(sid):
                    raise X12Error(
                        "segment id is not 2 or 3 capital letters or digits (corrupt segment or wrong delimiters)",
                        segment_number=number,
                    )
                thresholds = known[sid] = _THRESHOLDS.get(sid, ())
            # the whole text looked at once (an element separator that is a control character is found too,
            # and then passes the element by element check); printable text holds no control character
            if thresholds and any(map(gt, map(len, segment.elements), thresholds)) \
                    or not text.isprintable() and _CONTROL.search(text):
                _check_values(segment)
            if sid not in _ENVELOPE_IDS:
                if in_transaction:  # the bulk of a file
                    st_count += 1
                    yield segment
                    continue
                if sid != "TA1":  # TA1 (interchange acknowledgment) sits between ISA and GS
                    where = "in a functional group but" if in_group else "between ISA and GS,"
                    raise X12Error(f"segment {where} outside a transaction set (no ST before it)", **_at(segment))
            elif in_transaction:
                st_count += 1
            if sid == "ISA":
                if self._open_interchange:
                    raise X12Error("ISA inside an open interchange (no IEA before it)", **_at(segment))
                self._open_isa(segment)
                groups_in_interchange = 0
            elif sid == "IEA":
                if in_transaction:
                    raise X12Error(
                        f"IEA before SE: transaction set {self.transaction.control_number} is not closed",
                        **_at(segment),
                    )
                if in_group:
                    raise X12Error(f"IEA before GE: group {self.group.control_number} is not closed", **_at(segment))
                self._check_equal(segment, 2, self.interchange.control_number, "IEA02", "ISA13")
                self._check_count(segment, 1, groups_in_interchange, "functional groups in the interchange")
                self._open_interchange = False
                self._delimiters = None
            elif sid == "GS":
                if in_group:
                    raise X12Error(
                        f"GS inside open group {self.group.control_number} (no GE before it)", **_at(segment)
                    )
                self.group = FunctionalGroup(
                    segment.number, segment.element(1), segment.element(2), segment.element(3),
                    segment.element(4), segment.element(6), segment.element(8),
                )
                in_group, sets_in_group = True, 0
                groups_in_interchange += 1
            elif sid == "GE":
                if in_transaction:
                    raise X12Error(
                        f"GE before SE: transaction set {self.transaction.control_number} is not closed",
                        **_at(segment),
                    )
                if not in_group:
                    raise X12Error("GE without a GS", **_at(segment))
                self._check_equal(segment, 2, self.group.control_number, "GE02", "GS06")
                self._check_count(segment, 1, sets_in_group, "transaction sets in the group")
                in_group = False
            elif sid == "ST":
                if in_transaction:
                    raise X12Error(
                        f"ST inside open transaction set {self.transaction.control_number} (no SE before it)",
                        **_at(segment),
                    )
                if not in_group:
                    raise X12Error("ST outside a functional group (no GS before it)", **_at(segment))
                self.transaction = TransactionEnvelope(
                    self.interchange, self.group, segment.number,
                    segment.element(1), segment.element(2), segment.element(3),
                )
                in_transaction, st_count = True, 1
                sets_in_group += 1
            elif sid == "SE":
                if not in_transaction:
                    raise X12Error("SE without an ST", **_at(segment))
                self._check_equal(segment, 2, self.transaction.control_number, "SE02", "ST02")
                self._check_count(segment, 1, st_count, "segments from ST to SE")
                in_transaction = False
            yield segment
        if in_transaction:
            raise X12Error(
                f"file ends before SE: transaction set {self.transaction.control_number} "
                "is not closed (truncated file?)",
                segment_number=self.transaction.segment_number,
                segment_id="ST",
            )
        if in_group:
            raise X12Error(
                f"file ends before GE: group {self.group.control_number} is not closed (truncated file?)",
                segment_number=self.group.segment_number,
                segment_id="GS",
            )
        if self._open_interchange:
            raise X12Error(
                f"file ends before IEA: interchange {self.interchange.control_number} is not closed (truncated file?)",
                segment_number=self.interchange.segment_number,
                segment_id="ISA",
            )

    def _open_isa(self, segment: Segment) -> None:
        assert self._delimiters is not None
        self.interchange = Interchange(
            segment.number,
            segment.element(5), segment.element(6).rstrip(),
            segment.element(7), segment.element(8).rstrip(),
            segment.element(9), segment.element(10), segment.element(12),
            segment.element(13), segment.element(15), self._delimiters,
        )
        self._open_interchange = True

    def _check_equal(self, segment: Segment, position: int, expected: str, name: str, header: str) -> None:
        value = segment.element(position)
        if _same_number(value, expected):
            return
        self._problem(
            X12Error(f"{name} {value!r} does not match {header} {expected!r}", **_at(segment))
        )

    def _check_count(self, segment: Segment, position: int, counted: int, what: str) -> None:
        value = segment.element(position)
        if _is_number(value) and int(value) == counted:
            return
        reference = f"{segment.id}{position:02d}"
        self._problem(X12Error(f"{reference} says {value!r} but there are {counted} {what}", **_at(segment)))

    def _problem(self, error: X12Error) -> None:
        if self.strict:
            raise error
        self.problems.append(error)


def _same_number(a: str, b: str) -> bool:
    """Control numbers compare as numbers when both are digits (000000286 = 286)."""
    a, b = a.strip(), b.strip()
    if _is_number(a) and _is_number(b):
        return int(a) == int(b)
    return a == b


def _is_number(value: str) -> bool:
    return value.isascii() and value.isdigit() and len(value) <= 18


def _at(segment: Segment) -> dict:
    return {"segment_number": segment.number, "segment_id": segment.id}


def read_segments(source: str | PathLike[str] | BinaryIO, *, strict: bool = True) -> Iterator[Segment]:
    """All segments of a file, envelopes checked (see `X12Reader`)."""
    return iter(X12Reader(source, strict=strict))
