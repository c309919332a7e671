"""otedi's own 837P gate: pyx12 4.0.0's verdict on 005010X222A1 files, many times faster.

    validate_file(path) -> ValidationReport     same shape as otedi.x12.validate (the pyx12 gate)
    gate_for(name) -> the gate function          "otedi" (this one) or "pyx12"
    validate_configured(path)                    the gate the OTEDI_GATE setting names (default otedi);
                                                 what write_ready_claims uses unless given a gate
    audit_sample(paths, fraction, seed)          pyx12 on a deterministic sample, disagreements

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

import io
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from otedi.x12 import validate as pyx12_gate
from otedi.x12.gate.checks import Pyx12Fails
from otedi.x12.gate.engine import MapNotFound, NotX222A1, ReaderStopped, Run
from otedi.x12.validate import ISA_LENGTH, UTF8_BOM, ValidationReport, X12Problem

GATES = ("otedi", "pyx12")
GATE_SETTING = "OTEDI_GATE"


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
        raise ValueError(f"{GATE_SETTING} must be one of {', '.join(GATES)}, not {name!r}")
    return validate_file if name == "otedi" else pyx12_gate.validate_file


def validate_configured(path: str | Path) -> ValidationReport:
    return gate_for()(Path(path))


@dataclass(frozen=True)
class Disagreement:
    path: Path
    otedi: tuple[bool, int | None]  # (valid, first error segment)
    pyx12: tuple[bool, int | None]


def audit_sample(paths: Iterable[str | Path], fraction: float = 0.05, seed: int | str = 0,
                 minimum: int = 1) -> tuple[list[Path], list[Disagreement]]:
    """Run both gates on a deterministic sample of `paths` (at least `minimum` files, about
    `fraction` of them; the same paths and seed give the same sample). Returns the sample and
    where the verdict or the first error segment differs. Reports name files and segment
    numbers only."""
    paths = sorted(Path(p) for p in paths)
    size = min(len(paths), max(minimum, round(len(paths) * fraction)))
    sample = sorted(random.Random(seed).sample(paths, size))
    disagreements = []
    for path in sample:
        ours, theirs = validate_file(path), pyx12_gate.validate_file(path)
        if _verdict(ours) != _verdict(theirs):
            disagreements.append(Disagreement(path, _verdict(ours), _verdict(theirs)))
    return sample, disagreements


def _verdict(report: ValidationReport) -> tuple[bool, int | None]:
    return report.ok, report.errors[0].segment_number if report.errors else None
