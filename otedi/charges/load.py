"""Load a charge extract into the warehouse, idempotently.

The extract file is recorded by its sha256 and each charge by its charge_id:
loading the same file again, or another file that repeats a charge_id, adds
nothing. Rejected rows are kept with their reasons; the rest are loaded.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field, fields
from datetime import date
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from otedi.charges.extract import read_extract
from otedi.charges.record import Charge
from otedi.charges.validate import validate_rows
from otedi.issues import Issue, Severity
from otedi.progress import Progress, counted, silent
from otedi.warehouse import models

log = logging.getLogger(__name__)

_CHARGE_FIELDS = tuple(f.name for f in fields(Charge))


@dataclass
class LoadResult:
    file: str
    sha256: str
    rows: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0  # charge_ids the warehouse already had
    already_loaded: bool = False
    issues: list[Issue] = field(default_factory=list)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_extract(session: Session, path: str | Path, mapping: str | None = None,
                 today: date | None = None, progress: Progress = silent) -> LoadResult:
    """Read, map, validate and store an extract. Reading errors raise ExtractError before anything is written.
    `progress` hears of the rows checked and the charges stored (otedi.progress)."""
    path = Path(path)
    digest = file_sha256(path)
    result = LoadResult(file=path.name, sha256=digest)
    if session.scalar(select(models.ExtractFile.id).where(models.ExtractFile.sha256 == digest)) is not None:
        result.already_loaded = True
        log.info("extract %s already loaded (sha256 %s); nothing added", path.name, digest[:12])
        return result

    frame = read_extract(path, mapping)
    charges, issues = validate_rows(frame, file=path.name, today=today or date.today(), progress=progress)
    result.rows = len(frame)
    result.issues = issues
    rejected_rows = {i.row for i in issues if i.severity is Severity.REJECT}
    result.rejected = len(rejected_rows)

    known = known_charge_ids(session, [c.charge_id for c in charges])
    extract = models.ExtractFile(file_name=path.name, sha256=digest, mapping=mapping, rows=result.rows,
                                 accepted=0, rejected=result.rejected)
    session.add(extract)
    session.flush()

    rows_by_charge = dict(zip(frame["charge_id"], frame["_row"]))
    for charge in counted(charges, "storing charges", len(charges), progress):
        if charge.charge_id in known:
            result.duplicates += 1
            continue
        session.add(to_model(charge, extract.id, int(rows_by_charge.get(charge.charge_id, 0))))
        result.accepted += 1
    for issue in issues:
        if issue.severity is not Severity.REJECT:  # a loaded row's warning stays with its charge
            session.add(models.EditIssue(charge_id=issue.charge_id, severity=str(issue.severity), rule=issue.rule,
                                         source=issue.source, message=issue.message))
            continue
        session.add(models.ChargeReject(
            extract_file_id=extract.id, row_number=issue.row, charge_id=issue.charge_id,
            column_name=issue.column, value=issue.value, rule=issue.rule, message=issue.message,
        ))
    extract.accepted = result.accepted
    extract.duplicates = result.duplicates
    session.flush()
    log.info("extract %s: %d rows, %d loaded, %d rejected, %d already known",
             path.name, result.rows, result.accepted, result.rejected, result.duplicates)
    return result


LOOKUP_CHUNK = 10_000  # bound parameters per query (SQLite and PostgreSQL both cap them)


def known_charge_ids(session: Session, charge_ids: list[str]) -> set[str]:
    """Which of these charge_ids the warehouse already holds."""
    known: set[str] = set()
    for start in range(0, len(charge_ids), LOOKUP_CHUNK):
        chunk = charge_ids[start:start + LOOKUP_CHUNK]
        known.update(session.scalars(select(models.Charge.charge_id).where(models.Charge.charge_id.in_(chunk))))
    return known


def to_model(charge: Charge, extract_file_id: int, row_number: int) -> models.Charge:
    values = {name: getattr(charge, name) for name in _CHARGE_FIELDS}
    values["modifiers"] = ":".join(charge.modifiers)
    values["dx_codes"] = "|".join(charge.dx_codes)
    values["qmb"] = charge.is_qmb  # Y/N in the extract and the record, a boolean in the warehouse
    return models.Charge(extract_file_id=extract_file_id, row_number=row_number, **values)


def from_model(row: models.Charge) -> Charge:
    values = {name: getattr(row, name) for name in _CHARGE_FIELDS}
    values["modifiers"] = tuple(m for m in row.modifiers.split(":") if m)
    values["dx_codes"] = tuple(d for d in row.dx_codes.split("|") if d)
    values["qmb"] = "Y" if row.qmb else "N"
    return Charge(**values)
