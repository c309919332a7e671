"""Write ready claims into 837P interchange files and pass each through the 837P gate.

One interchange per practice (submitter) and clearinghouse (receiver), split
by the clearinghouse's claim limit. Each file is written under a temporary
name, validated, then renamed and recorded in the same transaction that
takes its control numbers: a file that fails validation is quarantined with
its errors and its claims are marked quarantined, and the rest proceed.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import defaultdict, namedtuple
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Callable

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from otedi import config
from otedi.files import open_private, private_dir
from otedi.charges.load import from_model
from otedi.charges.record import Charge
from otedi.claims.model import Claim, ClaimLine
from otedi.claims.resubmit import with_prior_payers
from otedi.coding.assistants import billed_rendering
from otedi.coding.payers import PayerRules, payer_rules
from otedi.coding.result import CodedLine, Rendering
from otedi.progress import Progress, silent
from otedi.warehouse import control_numbers, db, models
from otedi.x12.envelope import ControlNumbers
from otedi.x12.gate import AuditedGate
from otedi.x12.validate import ValidationReport, quarantine
from otedi.x12.x837p import write_837p

log = logging.getLogger(__name__)

WRITING = "writing 837P files through the 837P gate (claims)"


@dataclass
class FileResult:
    path: str
    status: str  # ready | quarantined
    claims: int
    lines: int
    total_charge: Decimal
    interchange_control_number: int
    errors: str | None = None


# The charge table's columns a Claim is built from, read as plain named tuples: from_model reads every one
# of them by attribute, and a SQLAlchemy Row's attribute access is ~10x slower than a named tuple's.
_CHARGE_FIELDS = tuple(f.name for f in fields(Charge))
_StoredCharge = namedtuple("_StoredCharge", _CHARGE_FIELDS)
_LINE_COLUMNS = ("claim_pk", "line_number", "units", "modifiers", "charge_amount", "expected_allowed",
                 "dx_pointers", "line_control_number")
_StoredLine = namedtuple("_StoredLine", (*_LINE_COLUMNS, "charge"))


class _Lookups:
    """payer_rules and billed_rendering memoised over the claims of one file: a night's claims share a few
    payers and providers, and a file is read under one configuration."""

    def __init__(self) -> None:
        self._rules: dict[tuple, PayerRules] = {}
        self._renderings: dict[tuple, Rendering] = {}

    def rules(self, payer_id: str, claim_filing_code: str, on: date) -> PayerRules:
        key = (payer_id, claim_filing_code, on)
        if key not in self._rules:
            self._rules[key], _ = payer_rules(payer_id, claim_filing_code, on)
        return self._rules[key]

    def rendering(self, charge: Charge, assistants_render: bool) -> Rendering:
        # billed_rendering reads only these fields of the charge
        key = (assistants_render, charge.rendering_role, charge.rendering_npi, charge.rendering_last_name,
               charge.rendering_first_name, charge.supervising_npi, charge.supervising_last_name,
               charge.supervising_first_name)
        if key not in self._renderings:
            self._renderings[key] = billed_rendering(charge, assistants_render)
        return self._renderings[key]


def claim_from_model(row, lines_of_claim: Sequence[_StoredLine], lookups: _Lookups) -> Claim:
    """A stored claim (a claim row, its lines in line order, each with its charge) as the 837P writer takes it."""
    rules = lookups.rules(row.payer_id, row.claim_filing_code, row.service_date_from)
    lines = []
    for line in lines_of_claim:
        charge = from_model(line.charge)
        coded = CodedLine(
            charge=charge, units=line.units,
            modifiers=tuple(filter(None, line.modifiers.split(":"))),
            charge_amount=line.charge_amount, expected_allowed=line.expected_allowed,
            rendering=lookups.rendering(charge, rules.assistants_render),
        )
        lines.append(ClaimLine(number=line.line_number, coded=coded,
                               dx_pointers=tuple(map(int, filter(None, line.dx_pointers.split(":")))),
                               line_control_number=line.line_control_number))
    return Claim(claim_id=row.claim_id, header=lines[0].charge, lines=tuple(lines),
                 diagnoses=tuple(row.diagnoses.split("|")), frequency_code=row.frequency_code,
                 payer_claim_number=row.payer_claim_number)


def _read_claims(session: Session, rows: list) -> list[Claim]:
    """The claims of `rows` with their lines and charges: one query per chunk of claims, lines joined to
    their charges (the foreign key gives every line its charge), only the columns a Claim needs."""
    line, charge = models.ClaimLine.__table__, models.Charge.__table__
    query = select(*(line.c[name] for name in _LINE_COLUMNS), *(charge.c[name] for name in _CHARGE_FIELDS)
                   ).join_from(line, charge, line.c.charge_id == charge.c.charge_id)
    width = len(_LINE_COLUMNS)
    lines: dict[int, list[_StoredLine]] = defaultdict(list)
    for chunk in _chunks([row.id for row in rows]):
        for found in session.execute(query.where(line.c.claim_pk.in_(chunk))).all():
            lines[found[0]].append(_StoredLine(*found[:width], _StoredCharge._make(found[width:])))
    lookups = _Lookups()
    return [claim_from_model(row, sorted(lines[row.id], key=lambda found: found.line_number), lookups)
            for row in rows]


def write_ready_claims(session: Session, out_dir: str | Path, *, created: datetime | None = None,
                       gate: Callable[[Path], ValidationReport] | None = None,
                       practice_id: str | None = None, today: date | None = None,
                       progress: Progress = silent) -> list[FileResult]:
    """Batch every claim in status 'ready' (of one practice, when given) into validated 837P files under out_dir.

    Files are dated as of `today` (the 837P envelope's date and time, ISA09/ISA10, GS04/GS05, BHT04/BHT05, and
    claim_file.created_at: models.stamped_as_of), default the wall clock; `created` fixes the envelope's time
    itself. `gate` validates each file (by default the gate OTEDI_GATE names - otedi's, or pyx12 - with pyx12
    auditing a sample of the files: otedi.x12.gate.AuditedGate); benchmarks swap it to time the stages apart.
    `progress` hears of the claims written (otedi.progress)."""
    with models.stamped_as_of(today):
        return _write_ready_claims(session, out_dir, created=created, gate=gate or AuditedGate(),
                                   practice_id=practice_id, progress=progress)


def _write_ready_claims(session: Session, out_dir: str | Path, *, created: datetime | None,
                        gate: Callable[[Path], ValidationReport], practice_id: str | None,
                        progress: Progress) -> list[FileResult]:
    out_dir = private_dir(out_dir)
    created = created or models.utcnow()
    query = select(models.Claim.id, models.Claim.practice_id).where(models.Claim.status == "ready")
    if practice_id is not None:
        query = query.where(models.Claim.practice_id == practice_id)
    by_practice: dict[str, list[int]] = defaultdict(list)
    for claim_pk, claim_practice in session.execute(query.order_by(models.Claim.practice_id, models.Claim.claim_id)):
        by_practice[claim_practice].append(claim_pk)

    results = []
    total, done = sum(len(pks) for pks in by_practice.values()), 0
    progress(WRITING, 0, total)
    for practice_id, claim_pks in by_practice.items():
        practice = config.practice(practice_id)
        house = config.clearinghouse(practice.clearinghouse)
        for start in range(0, len(claim_pks), house.max_claims_per_file):
            done += len(claim_pks[start:start + house.max_claims_per_file])
            # One file's claims in memory at a time, taken exclusively: a concurrent batch run skips them
            # (PostgreSQL row locks) or waits for this file's commit and then finds them batched (SQLite).
            db.begin_exclusive(session)
            claim = models.Claim.__table__
            rows = session.execute(
                select(claim).where(claim.c.id.in_(claim_pks[start:start + house.max_claims_per_file]),
                                    claim.c.status == "ready")
                .order_by(claim.c.claim_id).with_for_update(skip_locked=True, of=claim)).all()
            if rows:
                results.append(_write_one(session, list(rows), practice, house, out_dir, created, gate))
                session.expunge_all()
            else:
                session.commit()
            progress(WRITING, done, total)
    return results


def _write_one(session: Session, rows: list[models.Claim], practice: config.Practice,
               house: config.Clearinghouse, out_dir: Path, created: datetime,
               gate: Callable[[Path], ValidationReport]) -> FileResult:
    claims = with_prior_payers(session, rows, _read_claims(session, rows))
    # One counter per receiver: ISA13 never repeats towards a clearinghouse, whichever practice sends.
    counter = house.clearinghouse_id
    control = ControlNumbers(
        interchange=control_numbers.allocate(session, f"isa:{counter}"),
        group=control_numbers.allocate(session, f"gs:{counter}"),
        transaction=control_numbers.allocate(session, f"st:{counter}"),
    )
    name = f"{practice.practice_id}_{house.clearinghouse_id}_{control.interchange:09d}.837"
    final = out_dir / name
    partial = out_dir / (name + ".part")
    with open_private(partial, "w", encoding="ascii", newline="") as fh:
        stats = write_837p(claims, practice, house, control, fh, created=created)
    report = gate(partial)
    data = partial.read_bytes()
    os.replace(partial, final)
    if report.ok:
        status, errors, path = "ready", None, final
    else:
        path = quarantine(final, report, out_dir / "quarantine")
        status, errors = "quarantined", report.to_text()
    record = models.ClaimFile(
        file_name=name, path=str(path), sha256=hashlib.sha256(data).hexdigest(), size=len(data),
        practice_id=practice.practice_id, clearinghouse_id=house.clearinghouse_id,
        interchange_control_number=control.interchange, group_control_number=control.group,
        transaction_control_number=control.transaction, isa_sender_id=stats.envelope.sender_id,
        isa_receiver_id=stats.envelope.receiver_id, gs_sender_code=stats.envelope.application_sender,
        gs_receiver_code=stats.envelope.application_receiver, claims=stats.claims, lines=stats.lines,
        total_charge=stats.total_charge, status=status, errors=errors,
    )
    session.add(record)
    session.flush()
    claim = models.Claim.__table__
    for chunk in _chunks([row.id for row in rows]):
        session.execute(update(claim).where(claim.c.id.in_(chunk)).values(
            status="batched" if status == "ready" else "quarantined", claim_file_id=record.id))
    session.commit()
    log.info("837P %s: %d claims, %d lines, status %s", name, stats.claims, stats.lines, status)
    return FileResult(path=str(path), status=status, claims=stats.claims, lines=stats.lines,
                      total_charge=stats.total_charge, interchange_control_number=control.interchange,
                      errors=errors)


def _chunks(ids: list, size: int = 5_000) -> list[list]:
    """`ids` in lists short enough for one IN (...) (SQLite and PostgreSQL cap bound parameters)."""
    return [ids[start:start + size] for start in range(0, len(ids), size)]
