"""Fuzzing what the clearinghouse sends us (issue 11): the X12 reader alone, the 999 and 277CA loaders on
SQLite and PostgreSQL, and the ingest of a whole inbox.

- The reader, given any bytes or a mutated valid interchange, yields segments or raises X12Error naming
  the segment (or saying the file is empty) - never another exception, never a hang, never a PHI value -
  and reads the same whatever the chunk size.
- A mutated 999 or 277CA answering claims we really sent is loaded, quarantined with a message or known
  already; never an exception or a database error; a quarantined file records nothing but itself and
  changes no claim status; no stored message repeats the patient's name or member id.
- The ingest of several such files, with a good one among them, loads every file it can and goes on past
  the bad ones.

Every input that once failed is kept under crashers/{x12,999,277ca}/ and replayed on both databases.
"""

from __future__ import annotations

import io
import itertools
from datetime import timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from otedi.acks.load import load_ack_file, transaction_set_of
from otedi.clearinghouse import ingest_fetched
from otedi.errors import X12Error
from otedi.warehouse import models
from otedi.warehouse.db import session_scope
from otedi.x12.reader import CHUNK_SIZE, X12Reader
from tests.remit_builder import Clp, Svc, interchange, remittance
from tests.test_acks_load import ack_277ca, ack_999, sent  # noqa: F401 (fixture)

pytestmark = [pytest.mark.reliability]

CRASHERS = Path(__file__).parent / "crashers"
PHI = ("JANE", "1EG4TE5MK73")  # the patient in NM1*QC of every 277CA and 835 built here
COMMON = dict(derandomize=True, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
READER = settings(max_examples=2000, deadline=timedelta(seconds=2), **COMMON)
LOADER = settings(max_examples=1000, deadline=None, **COMMON)
INGEST = settings(max_examples=100, deadline=None, **COMMON)
_controls = itertools.count(100)  # ISA13 of each built file: every example's file has its own content

FRAGMENTS = [
    "*", "~", ":", "^", "~\n", "\r\n", "\x00", "\x1f", "Ä", "\ufeff", " ", "X" * 70, "9" * 25, "-1", "1.5",
    "ISA", "IEA*1*000000001~", "SE*1*0001~", "GE*1*1~", "ST*999*0001~", "ST*277*0001~", "ST*835*0001~",
    "AK1*HC*1~", "AK2*837*1~", "IK3*CLM*999999999*2300*8~", "IK4*1:2:3*66*7~", "IK5*AX~", "AK9*R*1*1*0~",
    "STC*A77:9999999999:XX~", "TRN*2*" + "Z" * 60 + "~", "HL*9*1*PT~", "HL*9*1*19~", "REF*1K*" + "K" * 60 + "~",
    "SVC*HC:97530*1*2~", "DTP*472*RD8*20260301-2026~",
]
# (segment id, element, component or 0): what the acknowledgment parsers read and the warehouse stores
FIELDS = [
    ("ISA", 13, 0), ("GS", 6, 0), ("ST", 1, 0), ("ST", 2, 0), ("ST", 3, 0), ("SE", 1, 0), ("GE", 2, 0),
    ("AK1", 1, 0), ("AK1", 2, 0), ("AK1", 3, 0), ("AK2", 1, 0), ("AK2", 2, 0), ("AK2", 3, 0),
    ("IK3", 1, 0), ("IK3", 2, 0), ("IK3", 3, 0), ("IK3", 4, 0), ("IK4", 1, 1), ("IK4", 1, 2), ("IK4", 3, 0),
    ("IK5", 1, 0), ("IK5", 2, 0), ("AK9", 1, 0), ("AK9", 2, 0), ("AK9", 4, 0), ("AK9", 5, 0),
    ("HL", 3, 0), ("NM1", 9, 0), ("TRN", 2, 0), ("STC", 1, 1), ("STC", 1, 2), ("STC", 1, 3), ("STC", 2, 0),
    ("STC", 4, 0), ("STC", 10, 0), ("REF", 1, 0), ("REF", 2, 0), ("DTP", 2, 0), ("DTP", 3, 0),
]
VALUES = ["", "X" * 70, "9" * 20, "\x00", "Ä", "AX", "A2:20:QC:EXTRA", ":", "::", "-5", "00000", "1.2.3",
          "20261340", "RD8", "PT", "19", "A7", "R", "E", "837", "005010X222A1"]
EDIT = st.one_of(
    st.tuples(st.just("field"), st.sampled_from(FIELDS), st.integers(0, 3), st.sampled_from(VALUES)),
    st.one_of(
        st.tuples(st.just("insert"), st.integers(0, 10**6), st.sampled_from(FRAGMENTS)),
        st.tuples(st.just("delete"), st.integers(0, 10**6), st.integers(1, 12)),
        st.tuples(st.just("element"), st.integers(0, 60), st.integers(1, 12), st.sampled_from(VALUES)),
        st.tuples(st.just("drop"), st.integers(0, 60)),
        st.tuples(st.just("repeat"), st.integers(0, 60)),
    ),
)  # half the edits hit a field the parsers read
EDITS = st.lists(EDIT, min_size=1, max_size=4)


def mutate(text: str, edits) -> str:
    """Apply edits to an interchange written one segment a line with * and ~ (the builders' layout)."""
    for edit in edits:
        kind = edit[0]
        if kind == "insert":
            at = edit[1] % (len(text) + 1)
            text = text[:at] + edit[2] + text[at:]
        elif kind == "delete":
            at = edit[1] % (len(text) + 1)
            text = text[:at] + text[at + edit[2]:]
        else:
            lines = text.split("~\n")
            if kind == "field":
                (segment_id, position, component), occurrence, value = edit[1:]
                found = [i for i, line in enumerate(lines) if line.split("*")[0] == segment_id]
                if found:
                    index = found[occurrence % len(found)]
                    lines[index] = _set(lines[index], position, component, value)
                text = "~\n".join(lines)
                continue
            index = edit[1] % len(lines)
            if kind == "drop":
                del lines[index]
            elif kind == "repeat":
                lines.insert(index, lines[index])
            else:
                elements = lines[index].split("*")
                position = 1 + edit[2] % len(elements)  # one of its elements, or one more
                elements[position:position + 1] = [edit[3]]
                lines[index] = "*".join(elements)
            text = "~\n".join(lines)
    return text


def _set(segment: str, position: int, component: int, value: str) -> str:
    """The segment with element `position` (or its `component`, 1-based) set to `value`."""
    elements = segment.split("*")
    elements += [""] * (position + 1 - len(elements))
    if component:
        parts = elements[position].split(":")
        parts += [""] * (component - len(parts))
        parts[component - 1] = value
        elements[position] = ":".join(parts)
    else:
        elements[position] = value
    return "*".join(elements)


def valid_interchanges(claim_ids: list[str], gs06: str, st02: str) -> dict[str, str]:
    """A 999 rejecting our set with an error pinned to a claim, a 277CA accepting one claim and rejecting
    another, and an 835 paying one; each with its own ISA13."""
    control = next(_controls)
    return {
        "999": ack_999([(st02, ["IK3*CLM*22*2300*8", "IK4*5:1*1331*7*99"], "IK5*R*5")], gs06, control=control),
        "277": ack_277ca([(claim_ids[0], "A2:20", "PAYERICN001"), (claim_ids[1], "A7:562:85", None)],
                         control=control),
        "835": interchange([remittance([Clp(claim_ids[0], services=[
            Svc("97530", D("120.00"), D("90.00"), [("CO", "45", D("30.00"))], units=2)])],
            trace=f"T{control}")], control=control),
    }


# -- the reader alone ---------------------------------------------------------------------------------------

def read_all(data: bytes, chunk_size: int = CHUNK_SIZE) -> tuple[list[tuple], str | None]:
    """Every segment the reader yields (number, id, elements) and the X12Error that stopped it, if any.
    Any other exception propagates: that is a failure."""
    segments = []
    try:
        for segment in X12Reader(io.BytesIO(data), chunk_size=chunk_size):
            segments.append((segment.number, segment.id, tuple(segment.elements)))
    except X12Error as exc:
        assert exc.segment_number is not None or str(exc) == "file is empty (no ISA)", str(exc)
        assert not [p for p in PHI if p in str(exc)], str(exc)
        return segments, str(exc)
    return segments, None


def check_reader(data: bytes) -> str:
    """Read the bytes whole and in 1- and 7-byte chunks: the same segments and the same error. Returns
    whether it read to the end or raised."""
    whole = read_all(data)
    assert read_all(data, chunk_size=1) == whole
    assert read_all(data, chunk_size=7) == whole
    return "read to the end" if whole[1] is None else "X12Error"


RAW_TEXT = st.text(st.sampled_from("ISAEGTK*~:^>|0123456789 \n\r\x00Ä"), max_size=300)


@READER
@given(data=st.one_of(st.binary(max_size=600), RAW_TEXT.map(lambda t: ("ISA" + t).encode())))
def test_the_reader_survives_any_bytes(data):
    event(check_reader(data))


@READER
@given(kind=st.sampled_from(["999", "277", "835"]), edits=EDITS,
       encoding=st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16"]))
def test_the_reader_survives_mutated_interchanges(kind, edits, encoding):
    text = mutate(valid_interchanges(["OTCLAIM000000001", "OTCLAIM000000002"], "1", "0001")[kind], edits)
    event(check_reader(text.encode(encoding, errors="replace")))


# -- the 999 and 277CA loaders ------------------------------------------------------------------------------

ROW_MODELS = (models.AckResult, models.ClaimStatusEvent)


def _state() -> tuple[dict[str, str], dict[str, int]]:
    with session_scope() as s:
        statuses = dict(s.execute(select(models.Claim.claim_id, models.Claim.status)).all())
        rows = {m.__tablename__: s.scalar(select(func.count()).select_from(m)) for m in ROW_MODELS}
    return statuses, rows


def _stored_messages(inbound_file_id: int) -> list[str]:
    with session_scope() as s:
        inbound = s.get(models.InboundFile, inbound_file_id)
        return [inbound.message or "",
                *s.scalars(select(models.ClaimStatusEvent.message)
                           .where(models.ClaimStatusEvent.inbound_file_id == inbound_file_id)),
                *(e or "" for e in s.scalars(select(models.AckResult.errors)
                                             .where(models.AckResult.inbound_file_id == inbound_file_id)))]


def check_ack_load(path: Path) -> str:
    """Load one acknowledgment file and check what the module docstring promises; returns its status."""
    statuses, rows = _state()
    with session_scope() as s:
        result = load_ack_file(s, path)
    assert result.status in ("loaded", "quarantined", "already_loaded", "refused"), result.status
    if result.status in ("already_loaded", "refused"):
        assert _state() == (statuses, rows)
        return result.status
    with session_scope() as s:
        [inbound] = s.scalars(select(models.InboundFile).where(models.InboundFile.file_name == path.name)
                              .order_by(models.InboundFile.id.desc()).limit(1))
    assert inbound.status == result.status
    if result.status == "quarantined":
        assert result.message and inbound.message == result.message
        assert _state() == (statuses, rows), "a quarantined file changed claims or recorded results"
    shown = "\n".join([result.message or "", *result.unmatched, *_stored_messages(inbound.id)])
    assert not [p for p in PHI if p in shown], "a stored message repeats the patient's name or member id"
    return result.status


@pytest.mark.postgres
@LOADER
@given(kind=st.sampled_from(["999", "277"]), edits=EDITS)
def test_mutated_acknowledgments_load_or_quarantine_cleanly(sent, tmp_path, kind, edits):
    text = mutate(valid_interchanges(sent.claim_ids, sent.gs06, sent.st02)[kind], edits)
    path = tmp_path / f"hostile.{kind}"
    path.write_bytes(text.encode("utf-8"))
    event(check_ack_load(path))


# -- the whole ingest ---------------------------------------------------------------------------------------

def _record_fetched(drop: str, paths: list[Path]) -> None:
    """As `fetch_inbound` records downloads: one fetched_file row per archived file."""
    from otedi.charges.load import file_sha256

    with session_scope() as s:
        for path in paths:
            s.add(models.FetchedFile(drop=drop, remote_name=path.name, size=path.stat().st_size,
                                     sha256=file_sha256(path), kind=transaction_set_of(path)[:8],
                                     archive_path=str(path)))


@pytest.mark.postgres
@INGEST
@given(bad=st.lists(st.tuples(st.sampled_from(["999", "277", "835"]), EDITS), min_size=1, max_size=3),
       garbage=st.binary(max_size=200))
def test_ingest_goes_on_past_bad_files(sent, tmp_path, bad, garbage):
    valid = valid_interchanges(sent.claim_ids, sent.gs06, sent.st02)
    good_claim = sent.claim_ids[2]
    control = next(_controls)
    folder = tmp_path / f"inbox{control}"
    folder.mkdir()
    files = {f"bad_{n}.{kind}": mutate(valid[kind], edits).encode("utf-8") for n, (kind, edits) in enumerate(bad)}
    files["garbage.bin"] = garbage + f"#{control}".encode()  # content of its own: never "seen before"
    files["good.277"] = ack_277ca([(good_claim, "A7:562:85", None)], control=control).encode("ascii")
    for name, data in files.items():
        (folder / name).write_bytes(data)
    _record_fetched(f"file:///inbox{control}", [folder / name for name in files])

    with session_scope() as s:
        result = ingest_fetched(s)

    assert result.failed == [], "the database refused a file"
    seen = [r["file"] for r in result.acks + result.remittances] + [s.split(" (")[0] for s in result.skipped]
    assert len(seen) == len(set(files.values())) and "good.277" in seen  # every content once, none lost
    good = next(r for r in result.acks if r["file"] == "good.277")
    assert good["status"] == "loaded" and good["claims_rejected"] == 1
    for outcome in result.acks + result.remittances:
        event(f"{outcome['file'].split('.')[-1]} {outcome['status']}")


# -- every input that once failed ---------------------------------------------------------------------------

INBOUND_CRASHERS = sorted(p for kind in ("x12", "999", "277ca") for p in (CRASHERS / kind).iterdir()
                          if p.is_file())


@pytest.mark.postgres
@pytest.mark.parametrize("crasher", INBOUND_CRASHERS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_inbound_crashers_stay_fixed(sent, tmp_path, crasher):
    """Each through the reader alone and through the acknowledgment loader, against the claims the `sent`
    fixture builds (the same ids and control numbers in every run)."""
    check_reader(crasher.read_bytes())
    path = tmp_path / crasher.name
    path.write_bytes(crasher.read_bytes())
    check_ack_load(path)
