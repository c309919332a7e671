"""The pyx12 gate: validate an X12 file against its implementation guide
(SNIP levels 1-2: syntax, element usage, lengths, codes, envelope counts and
control numbers, HL and LX numbering) and quarantine what fails.

Works for every transaction pyx12 4.0.0 maps (837P 005010X222A1, 835
005010X221A1, 999 005010X231/X231A1, ...). It does no balancing (CLM02 vs
SV102, 835 CLP/CAS): those checks live beside the transactions they check.

How pyx12 is driven, and why:
- `x12n_document` with `fd_json` gives every error with its segment position
  (pyx12's `cur_line` is the segment's number in the file, 1 = ISA), the
  element position and name. Its per-segment `callback` tells us the loop
  each segment landed in, which the JSON lacks.
- No 999 is requested: pyx12's 999 writer crashes on every 835 (ST03 is not
  used there) and the gate does not need one.
- A UTF-8 byte-order mark makes pyx12 reject the file without a word; the
  gate strips it and says so in the report.
- Only `005010X222A1` is mapped for 837P: a GS08 pyx12 has no map for makes
  it raise `EngineError: Map not found`, reported here as a GS08 problem.
- Parameters are pyx12's built-in defaults (extended character set, every
  bundled code list), never a ~/.pyx12.conf.xml, so the gate behaves the same
  on every machine.

PHI: pyx12's own texts can quote values from the file (names, member ids).
`X12Problem.message` never does (it is built from codes and map names);
pyx12's text is kept in `X12Problem.detail` and only printed on request.
pyx12 also logs every error with those values, so its loggers are silenced.
"""

from __future__ import annotations

import io
import json
import logging
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyx12.errors
import pyx12.params
import pyx12.rawx12file
import pyx12.x12n_document

from otedi.files import make_private, private_dir, write_private_text

UTF8_BOM = b"\xef\xbb\xbf"
ISA_LENGTH = pyx12.rawx12file.ISA_LEN

_pyx12_log = logging.getLogger("pyx12")
_pyx12_log.propagate = False
_pyx12_log.addHandler(logging.NullHandler())
_pyx12_log.setLevel(logging.CRITICAL + 1)

# What pyx12's codes mean (X12 999 IK304 / IK403 / IK502, 997 AK905, TA105),
# plus pyx12's own non-numeric segment codes.
SEGMENT_CODES = {
    "1": "segment not expected here",
    "2": "unexpected segment (not used in this loop)",
    "3": "required segment missing",
    "4": "loop occurs more often than allowed",
    "5": "segment occurs more often than allowed",
    "6": "segment not in the transaction set",
    "7": "segment out of sequence",
    "8": "segment has data element errors",
    "HL1": "HL01 hierarchical ids out of sequence",
    "HL2": "HL02 parent is not an earlier HL",
    "LX": "LX01 service line numbers out of sequence",
    "SEG1": "segment ends with an empty element (trailing separator)",
}
ELEMENT_CODES = {
    "1": "required element missing",
    "2": "conditionally required element missing",
    "3": "too many elements",
    "4": "value too short",
    "5": "value too long",
    "6": "invalid character",
    "7": "invalid code value",
    "8": "invalid date",
    "9": "invalid time",
    "10": "element must not be sent",
    "12": "too many repetitions",
    "13": "too many components",
}
TRANSACTION_CODES = {
    "1": "transaction set not supported",
    "2": "transaction set trailer missing",
    "3": "ST02 and SE02 control numbers differ",
    "4": "SE01 segment count is wrong",
    "5": "one or more segments in error",
    "6": "missing or invalid transaction set identifier",
    "7": "missing or invalid transaction set control number",
    "23": "transaction set control number not unique in the group",
}
GROUP_CODES = {
    "1": "functional group not supported",
    "2": "functional group version not supported",
    "3": "functional group trailer missing",
    "4": "GS06 and GE02 control numbers differ",
    "5": "GE01 transaction set count is wrong",
    "6": "group control number not unique in the interchange",
}
INTERCHANGE_CODES = {
    "001": "ISA13 and IEA02 control numbers differ",
    "021": "IEA01 group count is wrong",
    "023": "file ends before the interchange does",
    "024": "invalid interchange content (unterminated group)",
    "025": "interchange control number not unique in the file",
}
# Which of a header/trailer pair an envelope error belongs to (pyx12 files both on one node).
_ON_ST = {"1", "6", "7", "23"}
_ON_GS = {"6"}
_ON_ISA = {"025"}

_MISSING = re.compile(r'Mandatory (?P<kind>segment|loop) "(?P<name>[^"]*)" \((?P<id>[^)]*)\) missing')
_MAP_NOT_FOUND = re.compile(r"Map not found\.\s+icvn=(?P<icvn>[^,]*), fic=(?P<fic>[^,]*), vriic=(?P<vriic>[^,\s]*)")
MAPPED_VERSIONS = "837P 005010X222A1, 837I 005010X223A2, 835 005010X221A1, 999 005010X231 and 005010X231A1"


@dataclass(frozen=True)
class X12Problem:
    segment_number: int | None  # position in the file, 1 = the first ISA
    segment_id: str | None
    loop_id: str | None  # implementation guide loop (2300, 2010BA, ...) when known
    element: str | None  # element reference (CLM02, SV101-2) when known
    code: str  # pyx12's code (X12 999/997/TA1 codes, HL1/HL2/LX/SEG1, or ours: MAP_NOT_FOUND, NOT_X12, ...)
    message: str  # plain language; never quotes a value from the file
    detail: str | None = None  # pyx12's own text; may quote values from the file

    def to_text(self, *, with_detail: bool = False) -> str:
        where = []
        if self.segment_number is not None:
            where.append(f"segment {self.segment_number}")
        if self.segment_id:
            where.append(self.segment_id)
        if self.loop_id:
            where.append(f"loop {self.loop_id}")
        if self.element:
            where.append(self.element)
        text = f"{', '.join(where) or 'file'}: {self.message} [pyx12 {self.code}]"
        if with_detail and self.detail and self.detail not in self.message:
            text += f"\n    pyx12: {self.detail}"
        return text


@dataclass
class ValidationReport:
    path: Path
    ok: bool
    errors: list[X12Problem] = field(default_factory=list)
    segments: int = 0  # segments the validator read
    bom_stripped: bool = False
    validator: str = "pyx12"  # or "otedi" (otedi.x12.gate: pyx12's verdict, compiled from its maps)

    def to_text(self, *, with_details: bool = False) -> str:
        verdict = "valid" if self.ok else f"INVALID, {len(self.errors)} error(s)"
        lines = [f"{self.path.name}: {verdict} ({self.segments} segments read by {self.validator})"]
        if self.bom_stripped:
            lines.append("note: a UTF-8 byte-order mark was stripped before validating; remove it before sending")
        lines += [f"  {problem.to_text(with_detail=with_details)}" for problem in self.errors]
        return "\n".join(lines) + "\n"


def validate_file(path: str | Path) -> ValidationReport:
    """Validate one X12 file with pyx12. Reads it once, streaming."""
    path = Path(path)
    with open(path, "rb") as raw:
        bom_stripped = raw.read(len(UTF8_BOM)) == UTF8_BOM
        start = raw.tell() if bom_stripped else 0
        raw.seek(start)
        head = raw.read(ISA_LENGTH).decode("ascii", errors="replace")
        raw.seek(start)
        not_x12 = _check_isa(head)
        if not_x12:
            return ValidationReport(path=path, ok=False, errors=[not_x12], bom_stripped=bom_stripped)
        # Non-ASCII bytes become U+FFFD, which pyx12 reports as an invalid character where it occurs.
        with io.TextIOWrapper(raw, encoding="ascii", errors="replace") as text:
            return _run_pyx12(path, text, bom_stripped)


def quarantine(path: str | Path, report: ValidationReport, quarantine_dir: str | Path) -> Path:
    """Move a failing file into `quarantine_dir` and write `<name>.errors.txt` beside it.

    The errors file names segment, loop, element and what is wrong, without
    pyx12's own texts (they quote values from the file, which may be PHI);
    `otedi validate FILE` shows those to a person who may read the file.
    Never overwrites: a name already in quarantine gets a numbered suffix.
    """
    path = Path(path)
    folder = private_dir(quarantine_dir)
    target = folder / path.name
    n = 1
    while target.exists() or _errors_file(target).exists():
        target = folder / f"{path.stem}.{n}{path.suffix}"
        n += 1
    shutil.move(path, target)
    make_private(target)
    write_private_text(_errors_file(target), report.to_text())  # pyx12's own texts quote values: left out
    return target


def _errors_file(target: Path) -> Path:
    return target.with_name(target.name + ".errors.txt")


def _check_isa(head: str) -> X12Problem | None:
    """pyx12 rejects a file whose first 106 characters are not an ISA without
    saying why (it only logs); ask its reader for the reason up front."""
    try:
        pyx12.rawx12file.RawX12File(io.StringIO(head))
    except pyx12.errors.X12Error as exc:
        return X12Problem(
            segment_number=1,
            segment_id="ISA",
            loop_id=None,
            element=None,
            code="NOT_X12",
            message="file does not start with a 106-character ISA segment (version 00401 or 00501)",
            detail=str(exc),
        )
    return None


class _SegmentLog:
    """Per segment (by position): its id and the loop pyx12 placed it in."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.loops: list[str | None] = []

    def record(self, seg: Any, src: Any, node: Any, valid: bool) -> None:
        parent = getattr(node, "parent", None)
        loop = getattr(parent, "id", None)
        self.ids.append(seg.get_seg_id())
        # Guide loops have numeric ids (2300, 1000A); ISA_LOOP, HEADER, ... are not loops of the guide.
        self.loops.append(loop if loop and loop[0].isdigit() else None)

    def segment_id(self, number: int | None) -> str | None:
        return self.ids[number - 1] if number and 0 < number <= len(self.ids) else None

    def loop_id(self, number: int | None) -> str | None:
        return self.loops[number - 1] if number and 0 < number <= len(self.loops) else None

    def last_before(self, segment_id: str, number: int) -> int | None:
        """Position of the last `segment_id` at or before `number` (the ISA of an IEA, ...)."""
        for i in range(min(number, len(self.ids)) - 1, -1, -1):
            if self.ids[i] == segment_id:
                return i + 1
        return None


def _run_pyx12(path: Path, text: io.TextIOWrapper, bom_stripped: bool) -> ValidationReport:
    log = _SegmentLog()
    json_out = io.StringIO()
    problems: list[X12Problem] = []
    try:
        valid = pyx12.x12n_document.x12n_document(
            param=pyx12.params.ParamsBase(),
            src_file=text,
            fd_997=None,
            fd_html=None,
            fd_xmldoc=None,
            fd_json=json_out,
            callback=log.record,
        )
    except (pyx12.errors.EngineError, pyx12.errors.X12Error) as exc:
        # pyx12 stops at the segment after the last one it handed to the callback.
        valid = False
        problems.append(_stopped(exc, len(log.ids) + 1))
    else:
        problems.extend(_problems_from_json(json_out.getvalue(), log))
    if not valid and not problems:
        problems.append(
            X12Problem(None, None, None, None, "REJECTED", "pyx12 rejected the file without naming an error")
        )
    problems.sort(key=lambda p: p.segment_number or 0)
    return ValidationReport(
        path=path, ok=valid and not problems, errors=problems, segments=len(log.ids), bom_stripped=bom_stripped
    )


def _stopped(exc: Exception, segment_number: int) -> X12Problem:
    found = _MAP_NOT_FOUND.search(str(exc))
    if found:
        return X12Problem(
            segment_number=segment_number,
            segment_id="GS",
            loop_id=None,
            element="GS08",
            code="MAP_NOT_FOUND",
            message=(
                f"pyx12 has no map for GS08 {found['vriic']} (GS01 {found['fic']}, ISA12 {found['icvn']}); "
                f"it maps {MAPPED_VERSIONS}. Ask the sender for a supported version, "
                "or re-stamp GS08 and ST03 if the content follows a mapped one"
            ),
            detail=str(exc),
        )
    return X12Problem(
        segment_number=segment_number,
        segment_id=None,
        loop_id=None,
        element=None,
        code=type(exc).__name__,
        message="pyx12 could not read past this segment",
        detail=str(exc),
    )


def _problems_from_json(document: str, log: _SegmentLog) -> list[X12Problem]:
    problems: list[X12Problem] = []
    for isa in json.loads(document)["interchanges"]:
        problems += _envelope_problems(isa, "ISA", _ON_ISA, INTERCHANGE_CODES, log)
        for gs in isa["groups"]:
            problems += _envelope_problems(gs, "GS", _ON_GS, GROUP_CODES, log)
            for st in gs["transactions"]:
                problems += _envelope_problems(st, "ST", _ON_ST, TRANSACTION_CODES, log)
                for seg in st["segments"]:
                    problems.extend(_segment_problems(seg, log))
    return problems


def _envelope_problems(node: dict, segment_id: str, on_header: set[str], codes: dict[str, str],
                       log: _SegmentLog) -> list[X12Problem]:
    """One envelope level's errors; those about its header segment point at that header."""
    problems = []
    for code, detail in _pairs(node["errors"]):
        number = node["cur_line"]
        if code in on_header:
            number = log.last_before(segment_id, number) or number
        problems.append(_envelope_problem(number, log, code, codes, detail))
    return problems


def _pairs(errors: list[dict]) -> list[tuple[str, str]]:
    return [(e["err_cde"], e["err_str"]) for e in errors]


def _envelope_problem(number: int, log: _SegmentLog, code: str, meanings: dict[str, str], detail: str) -> X12Problem:
    # Envelope texts quote only control numbers and counts, never PHI.
    plain = meanings.get(code, "envelope error")
    return X12Problem(number, log.segment_id(number), None, None, code, f"{plain}: {detail}", detail)


def _segment_problems(seg: dict, log: _SegmentLog) -> list[X12Problem]:
    number = seg["cur_line"]
    segment_id = log.segment_id(number) or seg["seg_id"]
    loop_id = log.loop_id(number)
    problems = []
    for error in seg["errors"]:
        code, detail, value = error["err_cde"], error["err_str"], error["err_val"]
        plain = SEGMENT_CODES.get(code, "segment error")
        missing = _MISSING.fullmatch(detail) if code == "3" else None
        if missing:
            message = f'required {missing["kind"]} {missing["id"]} ("{missing["name"]}") is missing before this segment'
        elif code == "1":
            # pyx12 quotes the segment's first element; say where instead.
            message = f"{plain} (unknown segment, out of order, or outside its loop)"
        elif value is None:
            message = f"{plain}: {detail}"  # map names, ids and counts only
        else:
            message = plain
        problems.append(X12Problem(number, segment_id, loop_id, None, code, message, detail))
    for element in seg["elements"]:
        reference = f"{seg['seg_id']}{element['ele_pos']:02d}"
        if element["subele_pos"]:
            reference += f"-{element['subele_pos']}"
        for error in element["errors"]:
            code, detail, value = error["err_cde"], error["err_str"], error["err_val"]
            plain = ELEMENT_CODES.get(code, "element error")
            if value is None:
                message = f"{plain}: {detail}"  # missing / not used / syntax: names only
            else:
                message = f'{plain} in "{element["name"]}"'
            problems.append(X12Problem(number, segment_id, loop_id, reference, code, message, detail))
    return problems
