"""Load a charge extract into the warehouse, idempotently.

The extract file is recorded by its sha256 and each charge by its charge_id:
loading the same file again, or another file that repeats a charge_id, adds
nothing. Rejected rows are kept with their reasons; the rest are loaded.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field, fields
from datetime import date
from itertools import compress
from operator import attrgetter, itemgetter
from pathlib import Path

from sqlalchemy import String, any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from otedi.charges.extract import read_extract
from otedi.charges.record import Charge
from otedi.charges.validate import check_frame
from otedi.issues import Issue, Severity
from otedi.progress import Progress, silent
from otedi.warehouse import bulk, models

log = logging.getLogger(__name__)

_CHARGE_FIELDS = tuple(f.name for f in fields(Charge))
_charge_fields = attrgetter(*_CHARGE_FIELDS)  # all of them in one call (claims are read back by the thousand)
_charge_items = itemgetter(*_CHARGE_FIELDS)  # the same by key from a row's mapping: 4x faster than a Row's attributes


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
    checked = check_frame(frame, file=path.name, today=today or date.today(), progress=progress)
    result.rows = len(frame)
    result.issues = checked.issues
    result.rejected = len({i.row for i in checked.issues if i.severity is Severity.REJECT})

    ids = checked.columns["charge_id"]
    known = known_charge_ids(session, ids)
    extract = models.ExtractFile(file_name=path.name, sha256=digest, mapping=mapping, rows=result.rows,
                                 accepted=0, rejected=result.rejected)
    session.add(extract)
    session.flush()

    charges, rows = checked.columns, checked.rows
    if known:  # a charge_id seen before is a duplicate, not stored again
        new = [charge_id not in known for charge_id in ids]
        charges = {name: list(compress(values, new)) for name, values in charges.items()}
        rows = list(compress(rows, new))
    result.accepted, result.duplicates = len(rows), len(ids) - len(rows)
    now = models.utcnow()  # one stamp for the file's rows (stamped_as_of applies)
    progress(STORING, 0, len(ids))
    connection = session.connection()
    bulk.insert_columns(connection, models.Charge.__table__,
                     {**_stored(charges), "extract_file_id": [extract.id] * len(rows), "row_number": rows,
                      "status": ["new"] * len(rows), "loaded_at": [now] * len(rows)},
                     progress=lambda done: progress(STORING, result.duplicates + done, len(ids)))
    progress(STORING, len(ids), len(ids))
    rejects = [i for i in checked.issues if i.severity is Severity.REJECT]
    warnings = [i for i in checked.issues if i.severity is not Severity.REJECT]  # they stay with their charges
    bulk.insert_columns(connection, models.ChargeReject.__table__, {
        "extract_file_id": [extract.id] * len(rejects), "row_number": [i.row for i in rejects],
        "charge_id": [i.charge_id for i in rejects], "column_name": [i.column for i in rejects],
        "value": [i.value for i in rejects], "rule": [i.rule for i in rejects],
        "message": [i.message for i in rejects], "created_at": [now] * len(rejects)})
    bulk.insert_columns(connection, models.EditIssue.__table__, {
        "charge_id": [i.charge_id for i in warnings], "severity": [str(i.severity) for i in warnings],
        "rule": [i.rule for i in warnings], "source": [i.source for i in warnings],
        "message": [i.message for i in warnings], "created_at": [now] * len(warnings)})
    extract.accepted = result.accepted
    extract.duplicates = result.duplicates
    session.flush()
    log.info("extract %s: %d rows, %d loaded, %d rejected, %d already known",
             path.name, result.rows, result.accepted, result.rejected, result.duplicates)
    return result


STORING = "storing charges"
LOOKUP_CHUNK = 10_000  # charge_ids per lookup query, all of them in one parameter


def known_charge_ids(session: Session, charge_ids: list[str]) -> set[str]:
    """Which of these charge_ids the warehouse already holds. The ids go in as one array (PostgreSQL) or one
    JSON text (SQLite) per query: no bound parameter per id, so no limit on their number and no statement
    of ten thousand placeholders to build."""
    if session.get_bind().dialect.name == "postgresql":
        chunk_param, among = list, models.Charge.charge_id == any_(bindparam("ids", type_=ARRAY(String)))
    else:
        each = func.json_each(bindparam("ids", type_=String)).table_valued("value")
        chunk_param, among = json.dumps, models.Charge.charge_id.in_(select(each.c.value))
    query = select(models.Charge.charge_id).where(among)
    known: set[str] = set()
    for start in range(0, len(charge_ids), LOOKUP_CHUNK):
        known.update(session.scalars(query, {"ids": chunk_param(charge_ids[start:start + LOOKUP_CHUNK])}))
    return known


# Charge fields the warehouse keeps in another form than the record: modifiers and dx_codes joined, qmb a
# boolean (Y/N in the extract and the record).
_AS_STORED = {"modifiers": ":".join, "dx_codes": "|".join, "qmb": lambda qmb: qmb == "Y"}


def _stored(columns: dict[str, list]) -> dict[str, list]:
    """Charge fields (name -> values) as the charge table holds them."""
    return {name: list(map(_AS_STORED[name], values)) if name in _AS_STORED else values
            for name, values in columns.items()}


def to_model(charge: Charge, extract_file_id: int, row_number: int) -> models.Charge:
    values = {name: getattr(charge, name) for name in _CHARGE_FIELDS}
    values.update({name: store(values[name]) for name, store in _AS_STORED.items()})
    return models.Charge(extract_file_id=extract_file_id, row_number=row_number, **values)


def from_model(row: models.Charge) -> Charge:
    """A stored charge (an ORM object or a row of the charge table) as the canonical Charge."""
    values = dict(zip(_CHARGE_FIELDS, _charge_items(row._mapping) if hasattr(row, "_mapping") else _charge_fields(row)))
    values["modifiers"] = tuple(m for m in row.modifiers.split(":") if m)
    values["dx_codes"] = tuple(d for d in row.dx_codes.split("|") if d)
    values["qmb"] = "Y" if row.qmb else "N"
    return Charge.of_fields(values)  # every field: _CHARGE_FIELDS is all of them
