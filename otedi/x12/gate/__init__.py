"""otedi's own 837P gate: pyx12 4.0.0's verdict on 005010X222A1 files, many times faster.

    validate_file(path) -> ValidationReport     same shape as otedi.x12.validate (the pyx12 gate)
    gate_for(name) -> the gate function          "otedi" (this one) or "pyx12"
    validate_configured(path)                    the gate the OTEDI_GATE setting names (default otedi)
    AuditedGate()                                what write_ready_claims uses unless given a gate: that gate,
                                                 with pyx12 beside it on a sample of the run's files

The rules are pyx12's map XML, compiled once (gate/maps.py); one streaming pass per file
reproduces pyx12's reader, map walker and error filing (gate/engine.py) and its element
checks (gate/checks.py), so a file is valid here exactly when pyx12 says so, and the first
error is on the same segment. tests/test_gate_differential.py holds both gates to that on
otedi's own files, the shared samples and thousands of mutants of them.

Scope: interchanges whose groups are all 837P 005010X222A1 (ISA12 00501). A file holding a
group of another guide (835, 999, 837I, ...) or an 00401 interchange is handed to pyx12
whole, so every file still gets a verdict. Where pyx12 4.0.0 raises on malformed input
instead of reporting (checks.Pyx12Fails: a composite with more components than the guide
defines, a non-numeric GE01, a trailer without its header, ...), this gate reports the file
invalid at that segment; pyx12 itself would stop the batch with an exception.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from otedi.errors import ConfigError
from otedi.x12 import validate as pyx12_gate
from otedi.x12.gate.checks import Pyx12Fails
from otedi.x12.gate.engine import MapNotFound, NotX222A1, ReaderStopped, Run
from otedi.x12.validate import ISA_LENGTH, UTF8_BOM, ValidationReport, X12Problem

GATES = ("otedi", "pyx12")
GATE_SETTING = "OTEDI_GATE"
AUDIT_SETTING = "OTEDI_GATE_AUDIT"  # the share of a batch run's files pyx12 checks too (the first always)

log = logging.getLogger(__name__)


def validate_file(path: str | Path) -> ValidationReport:
    """Validate one X12 file; 837P 005010X222A1 here, anything else by pyx12. Streams."""
    path = Path(path)
    with open(path, "rb") as raw:
        bom_stripped = raw.read(len(UTF8_BOM)) == UTF8_BOM
        raw.seek(len(UTF8_BOM) if bom_stripped else 0)
        head = raw.read(ISA_LENGTH).decode("ascii", errors="replace")
        not_x12 = pyx12_gate._check_isa(head)
        if not_x12:
            return ValidationReport(path=path, ok=False, errors=[not_x12], bom_stripped=bom_stripped,
                                    validator="otedi")
        if head[84:89] != "00501":
            return pyx12_gate.validate_file(path)
        # as the pyx12 gate reads it: a byte outside ASCII becomes U+FFFD, an invalid character
        with io.TextIOWrapper(raw, encoding="ascii", errors="replace") as text:
            run = Run()
            segments = None  # segments read: all of them, unless pyx12 stops before the current one
            try:
                run.run(text, head)
            except NotX222A1:
                return pyx12_gate.validate_file(path)
            except MapNotFound as exc:
                problems, segments = [pyx12_gate._stopped(exc, run.line)], run.line - 1
            except ReaderStopped:
                problems, segments = [X12Problem(run.line, None, None, None, "X12Error",
                                                 "pyx12 could not read past this segment",
                                                 "The ISA segment must have 16 elements")], run.line - 1
            except Pyx12Fails as exc:
                problems = run.problems() + [X12Problem(run.line, None, None, None, exc.code,
                                                        f"malformed segment: {exc.message}")]
                run.valid = False
            else:
                problems = run.problems()
    valid = run.valid and not problems
    if not problems and not valid:
        # pyx12 counts errors of envelope segments (ISA, GS, ST and trailers) without placing them
        problems = [X12Problem(None, None, None, None, "REJECTED",
                               "an envelope segment (ISA, GS, ST, SE, GE or IEA) has element errors")]
    problems.sort(key=lambda p: p.segment_number or 0)
    return ValidationReport(path=path, ok=valid, errors=problems, segments=run.line if segments is None else segments,
                            bom_stripped=bom_stripped, validator="otedi")


def gate_for(name: str | None = None) -> Callable[[Path], ValidationReport]:
    """The gate called `name`, or the one OTEDI_GATE names (default: otedi)."""
    name = name or os.environ.get(GATE_SETTING) or "otedi"
    if name not in GATES:
        raise ConfigError(f"{GATE_SETTING} must be one of {', '.join(GATES)}, not {name!r}")
    return validate_file if name == "otedi" else pyx12_gate.validate_file


def validate_configured(path: str | Path) -> ValidationReport:
    return gate_for()(Path(path))


class AuditedGate:
    """The gate a batch run uses (write_ready_claims' default): the one OTEDI_GATE names, and when that is otedi's,
    pyx12 beside it on the run's first file and on about OTEDI_GATE_AUDIT (default 0.05) of the others, chosen
    by file name. Where the two disagree pyx12's verdict decides (the file is quarantined if pyx12 finds it
    invalid) and the disagreement is logged by file name and segment numbers: an audit, not a second gate."""

    def __init__(self, fraction: float | None = None):
        self.gate = gate_for()
        value = os.environ.get(AUDIT_SETTING, "0.05") if fraction is None else fraction
        try:
            self.fraction = float(value)
        except ValueError:
            raise ConfigError(f"{AUDIT_SETTING} must be a fraction between 0 and 1, not {value!r}") from None
        if not 0 <= self.fraction <= 1:
            raise ConfigError(f"{AUDIT_SETTING} must be a fraction between 0 and 1, not {value!r}")
        self.files = 0
        self.audited: list[Path] = []
        self.disagreements: list[Disagreement] = []

    def __call__(self, path: str | Path) -> ValidationReport:
        path = Path(path)
        self.files += 1
        ours = self.gate(path)
        if self.gate is not validate_file or not self._sampled(path):
            return ours
        self.audited.append(path)
        theirs = pyx12_gate.validate_file(path)
        if _verdict(ours) == _verdict(theirs):
            return ours
        self.disagreements.append(Disagreement(path, _verdict(ours), _verdict(theirs)))
        log.warning("gate audit %s: otedi's gate says %s, pyx12 says %s; pyx12's verdict stands", path.name,
                    _said(ours), _said(theirs))
        return theirs

    def _sampled(self, path: Path) -> bool:
        if self.files == 1:
            return self.fraction > 0
        draw = int.from_bytes(hashlib.sha256(path.name.encode()).digest()[:4], "big") / 2 ** 32
        return draw < self.fraction


@dataclass(frozen=True)
class Disagreement:
    path: Path
    otedi: tuple[bool, int | None]  # (valid, first error segment)
    pyx12: tuple[bool, int | None]


def _verdict(report: ValidationReport) -> tuple[bool, int | None]:
    return report.ok, report.errors[0].segment_number if report.errors else None


def _said(report: ValidationReport) -> str:
    if report.ok:
        return "valid"
    first = report.errors[0] if report.errors else None
    return f"invalid (first error segment {first.segment_number} {first.segment_id})" if first else "invalid"
