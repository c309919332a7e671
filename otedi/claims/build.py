"""Scrub pending charges visit by visit and store the claims they make.

A visit is one practice, patient, payer and date of service: the unit the
8-minute rule, NCCI/MUE edits and KX accrual work on. Visits are taken in
date order per patient so the KX threshold accrues as the payer sees it.
Charges already on a claim are never coded again: building twice adds nothing.
"""

from __future__ import annotations

import gc
import logging
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from otedi.charges.load import from_model
from otedi.charges.record import Charge
from otedi.claims.grouping import group_into_claims
from otedi.claims.model import Claim
from otedi.coding.disciplines import disciplines
from otedi.coding.history import ExternalUsage, InMemoryHistory
from otedi.coding.fees import VINTAGE_RULE
from otedi.coding.ncci import VINTAGE_RULE as NCCI_VINTAGE_RULE
from otedi.coding.payers import kind_for_filing_code
from otedi.coding.result import CodedLine
from otedi.coding.rulebook import Rulebook
from otedi.coding.scrub import scrub_visit
from otedi.issues import Issue, Severity
from otedi.progress import Progress, silent
from otedi.warehouse import bulk, db, models

log = logging.getLogger(__name__)


@dataclass
class BuildResult:
    charges: int = 0
    claims: int = 0
    held: int = 0
    lines: int = 0
    not_billed: int = 0
    issues: list[Issue] = field(default_factory=list)


def visit_key(charge: Charge) -> tuple:
    return (charge.practice_id, charge.patient_id, charge.payer_id, charge.payer_sequence, charge.service_date)


def seed_history(session: Session, patient_ids: set[str], years: set[int]) -> InMemoryHistory:
    """History of lines already billed for these patients (for KX accrual and visit limits).

    Covers the visits' years and the year before, so rolling visit windows see across New Year."""
    history = InMemoryHistory()
    if not patient_ids:
        return history
    start, end = date(min(years) - 1, 1, 1), date(max(years), 12, 31)
    rows = session.execute(
        select(models.ClaimLine.charge_id, models.Claim.patient_id, models.Claim.payer_id,
               models.Claim.claim_filing_code, models.ClaimLine.service_date, models.ClaimLine.cpt,
               models.ClaimLine.modifiers, models.ClaimLine.expected_allowed, models.Charge.rendering_role)
        .join(models.ClaimLine.claim)
        .join(models.Charge, models.Charge.charge_id == models.ClaimLine.charge_id)
        .where(models.Claim.patient_id.in_(patient_ids),
               models.ClaimLine.service_date.between(start, end),
               models.Claim.frequency_code != "8",
               models.Claim.status.not_in(("replaced", "voided")))  # their successor carries the lines
    )
    table = disciplines()
    for charge_id, patient_id, payer_id, filing, service_date, cpt, modifiers, allowed, role in rows:
        history.record(charge_id=charge_id, patient_id=patient_id, payer_id=payer_id,
                       payer_kind=kind_for_filing_code(filing), service_date=service_date, cpt=cpt,
                       modifiers=tuple(m for m in modifiers.split(":") if m), expected_allowed=allowed,
                       discipline=table.of_role(role).name)
    for usage in session.scalars(select(models.ExternalTherapyUsage).where(
            models.ExternalTherapyUsage.patient_id.in_(patient_ids),
            models.ExternalTherapyUsage.year.between(start.year, end.year))):
        history.add_external(usage.patient_id, ExternalUsage(usage.year, usage.bucket, usage.amount, usage.as_of))
    return history


ONCE_PER_BUILD = frozenset({VINTAGE_RULE, NCCI_VINTAGE_RULE})
PATIENTS_PER_CHUNK = 1_000  # claims never span patients, so patients can be coded in bounded chunks
CODING = "coding and scrubbing (patients)"
UPDATE_CHUNK = 5_000  # ids per IN (...) list (bound parameters are capped)


def build_claims(session: Session, *, today: date, practice_id: str | None = None,
                 progress: Progress = silent) -> BuildResult:
    """Code every charge still in status 'new' (of one practice, when given) and store the resulting claims.

    Patients are taken a chunk at a time (flushed and released after each), so memory stays flat
    however large the backlog. Charges for a secondary or tertiary payer wait: their claim needs the
    primary's adjudication (2320/2430), so `otedi ar resubmit --secondary` builds it once the primary
    835 has posted. What it stores (claims, issues) is stamped as of `today` (models.stamped_as_of).
    `progress` hears of the patients coded (otedi.progress)."""
    with models.stamped_as_of(today):
        result = _build_claims(session, today=today, practice_id=practice_id, progress=progress)
        session.flush()  # stamped here, not at the caller's commit
    return result


def _build_claims(session: Session, *, today: date, practice_id: str | None, progress: Progress) -> BuildResult:
    pending = [models.Charge.status == "new", models.Charge.payer_sequence == "P"]
    if practice_id is not None:
        pending.append(models.Charge.practice_id == practice_id)
    # A concurrent twin waits for this build (SQLite's write lock) or skips the charges it holds (row locks
    # on PostgreSQL), so no charge is coded onto two claims.
    db.begin_exclusive(session)
    patients = session.scalars(
        select(models.Charge.patient_id).where(*pending).distinct().order_by(models.Charge.patient_id)).all()
    result = BuildResult()
    rules = Rulebook()  # the rules are read once per build, each dated answer once per date of service
    warned: set[tuple[str, str | None]] = set()
    progress(CODING, 0, len(patients))
    for start in range(0, len(patients), PATIENTS_PER_CHUNK):
        chunk = patients[start:start + PATIENTS_PER_CHUNK]
        with _cycle_collector_paused():
            rows = session.execute(
                select(models.Charge.__table__).where(*pending, models.Charge.patient_id.in_(chunk))
                .order_by(models.Charge.patient_id, models.Charge.service_date, models.Charge.charge_id)
                .with_for_update(skip_locked=True)).all()
            _build_chunk(session, rows, today, rules, result, warned)
            session.flush()
            session.expunge_all()  # this chunk is stored; let go of what it read
        progress(CODING, start + len(chunk), len(patients))
    log.info("coded %d charges into %d claims (%d held), %d lines; %d charges not billed",
             result.charges, result.claims, result.held, result.lines, result.not_billed)
    return result


@contextmanager
def _cycle_collector_paused() -> Iterator[None]:
    """A chunk's rows, charges, coded lines, claims and issues (some 100,000 objects) live until it is stored;
    CPython's cycle collector would walk them again and again as they pile up (a quarter of the build's CPU).
    It is paused for the chunk and resumed after (if it was on), when it collects whatever cycles were left."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _build_chunk(session: Session, rows: list, today: date, rules: Rulebook, result: BuildResult,
                 warned: set[tuple[str, str | None]]) -> None:
    result.charges += len(rows)
    status = {row.charge_id: row.status for row in rows}
    visits: dict[tuple, list[Charge]] = defaultdict(list)
    for row in rows:
        charge = from_model(row)
        visits[visit_key(charge)].append(charge)

    history = seed_history(session, {k[1] for k in visits}, {k[4].year for k in visits})
    coded: list[CodedLine] = []
    held_charges: set[str] = set()
    issues_by_charge: dict[str | None, list[Issue]] = defaultdict(list)
    for key in sorted(visits, key=lambda k: (k[1], k[4], k[0], k[2], k[3])):
        visit = scrub_visit(visits[key], history, today=today,
                            locality=rules.locality(key[0]), rules=rules)
        history.record_visit(visit, rules.disciplines)
        coded.extend(visit.lines)
        stale = rules.ncci_currency_issue(key[4], visit.payer.ncci_program, charge_id=visits[key][0].charge_id)
        for issue in [*visit.issues, *([stale] if stale else [])]:
            if issue.rule in ONCE_PER_BUILD:
                # Reference data of another period: the same on every visit, so said once per build.
                if (issue.rule, issue.value) in warned:
                    continue
                warned.add((issue.rule, issue.value))
            issues_by_charge[issue.charge_id].append(issue)
            if issue.severity is Severity.HOLD:
                # A hold names its charge; a visit-wide hold (no charge) holds the whole visit.
                if issue.charge_id is None:
                    held_charges.update(c.charge_id for c in visits[key])
                else:
                    held_charges.add(issue.charge_id)

    claims, stored_issues = [], []
    for claim in group_into_claims(coded):
        held = any(charge_id in held_charges for line in claim.lines
                   for charge_id in (line.charge.charge_id, *line.coded.merged_charge_ids))
        claims.append((claim, "held" if held else "ready"))
        result.claims += 1
        result.held += held
        result.lines += len(claim.lines)
        for line in claim.lines:
            for charge_id in (line.charge.charge_id, *line.coded.merged_charge_ids):
                status[charge_id] = "claimed"
                stored_issues += [_with_claim(i, claim.claim_id) for i in issues_by_charge.pop(charge_id, [])]
    for charge_id, issues in issues_by_charge.items():
        stored_issues += issues
        if status.get(charge_id) == "new":
            status[charge_id] = "not_billed"
            result.not_billed += 1
    _store(session, claims, stored_issues, status)
    result.issues += stored_issues


def _with_claim(issue: Issue, claim_id: str) -> Issue:
    return issue if issue.claim_id is not None else replace(issue, claim_id=claim_id)


def _store(session: Session, claims: list[tuple[Claim, str]], issues: list[Issue], status: dict[str, str]) -> None:
    """A chunk's claims, lines and issues in a few bulk statements (otedi.warehouse.bulk: COPY on PostgreSQL,
    multi-row INSERT on SQLite; the claims' primary keys reserved first, so the lines point at them; rows
    stamped with models.utcnow(), so models.stamped_as_of applies), and its charges' new statuses: one UPDATE per
    status."""
    conn = session.connection()
    now = models.utcnow()
    if claims:
        # The build holds the write lock (db.begin_exclusive), as bulk.reserve_ids needs on SQLite.
        pks = bulk.reserve_ids(conn, models.Claim.__table__, len(claims))
        bulk.insert_rows(conn, models.Claim.__table__, [
            {**claim_values(claim, state), "id": pk, "payer_icn": None, "claim_file_id": None, "created_at": now}
            for pk, (claim, state) in zip(pks, claims)])
        bulk.insert_rows(conn, models.ClaimLine.__table__, [
            {**values, "claim_pk": pk} for pk, (claim, _) in zip(pks, claims) for values in line_values(claim)])
    if issues:
        bulk.insert_rows(conn, models.EditIssue.__table__, [
            {"charge_id": i.charge_id, "claim_id": i.claim_id, "severity": str(i.severity), "rule": i.rule,
             "source": i.source, "message": i.message, "created_at": now} for i in issues])
    by_status: dict[str, list[str]] = defaultdict(list)
    for charge_id, state in status.items():
        if state != "new":
            by_status[state].append(charge_id)
    charge = models.Charge.__table__
    for state, charge_ids in by_status.items():
        for start in range(0, len(charge_ids), UPDATE_CHUNK):
            conn.execute(update(charge).where(charge.c.charge_id.in_(charge_ids[start:start + UPDATE_CHUNK]))
                         .values(status=state))


def claim_values(claim: Claim, status: str) -> dict:
    """The warehouse row of a coded claim (claim table columns)."""
    header = claim.header
    first, last = claim.service_dates
    allowed = [line.coded.expected_allowed for line in claim.lines]
    return dict(
        claim_id=claim.claim_id, practice_id=header.practice_id, patient_id=header.patient_id,
        payer_id=header.payer_id, payer_sequence=header.payer_sequence, claim_filing_code=header.claim_filing_code,
        rendering_npi=claim.rendering.npi, service_date_from=first, service_date_to=last,
        total_charge=claim.total_charge,
        expected_allowed=sum(allowed, Decimal("0.00")) if all(a is not None for a in allowed) else None,
        frequency_code=claim.frequency_code, payer_claim_number=claim.payer_claim_number,
        diagnoses="|".join(claim.diagnoses), status=status,
    )


def line_values(claim: Claim) -> list[dict]:
    """The warehouse rows of a coded claim's lines (claim_line columns but claim_pk)."""
    return [dict(line_number=line.number, charge_id=line.charge.charge_id, line_control_number=line.line_control_number,
                 service_date=line.charge.service_date, cpt=line.coded.cpt, modifiers=":".join(line.coded.modifiers),
                 units=line.coded.units, charge_amount=line.coded.charge_amount,
                 expected_allowed=line.coded.expected_allowed, dx_pointers=":".join(map(str, line.dx_pointers)))
            for line in claim.lines]


def claim_model(claim: Claim, status: str) -> models.Claim:
    """The claim and its lines as ORM objects (a resubmission links them to the claim it follows)."""
    row = models.Claim(**claim_values(claim, status))
    row.lines.extend(models.ClaimLine(**values) for values in line_values(claim))
    return row
