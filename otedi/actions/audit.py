"""The audit trail: who did what to which claim or file, when, why, and what it changed."""

from __future__ import annotations

import getpass
import json
import os

from sqlalchemy import select
from sqlalchemy.orm import Session

from otedi.errors import OtediError
from otedi.warehouse import db, models

ACTOR_MAX = 64


class ActionError(OtediError):
    """An action refused: the message says why and what would be allowed (ids and codes only)."""


def actor(explicit: str | None = None) -> str:
    """Who acts: `--by`, else OTEDI_USER (set by a service account or the web session), else the login."""
    who = (explicit or os.environ.get("OTEDI_USER") or getpass.getuser() or "").strip()
    if not who or len(who) > ACTOR_MAX:
        raise ActionError(f"who acts must be named in 1 to {ACTOR_MAX} characters (--by or OTEDI_USER)")
    return who


def require_note(note: str | None) -> str:
    text = (note or "").strip()
    if not text:
        raise ActionError("say why in --note: every action is recorded with its reason")
    return text


def write_lock(session: Session) -> None:
    """On SQLite, start the action's transaction with the write lock (BEGIN IMMEDIATE), unless the caller
    already runs it inside a transaction of its own (an import's savepoint per row: the import takes it)."""
    if not session.in_transaction():
        db.begin_exclusive(session)


def locked_claim(session: Session, claim_id: str) -> models.Claim:
    """The claim an action changes, held for this action's transaction: a concurrent twin of the action waits
    (row lock on PostgreSQL, the write lock on SQLite) and then sees what this one did."""
    write_lock(session)
    claim = session.scalar(select(models.Claim).where(models.Claim.claim_id == claim_id).with_for_update())
    if claim is None:
        raise ActionError(f"no claim {claim_id}")
    return claim


def record(session: Session, *, action: str, subject: str, who: str, note: str, changes: dict) -> models.AuditEvent:
    """Add the audit row for an action in the action's own transaction (so one is never without the other)."""
    event = models.AuditEvent(actor=who, action=action, subject=subject, note=note,
                              changes=json.dumps(changes, sort_keys=True, default=str))
    session.add(event)
    return event


def history(session: Session, subject: str) -> list[models.AuditEvent]:
    """Every action on one subject, oldest first."""
    return list(session.scalars(select(models.AuditEvent).where(models.AuditEvent.subject == subject)
                                .order_by(models.AuditEvent.id)))
