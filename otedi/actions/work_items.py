"""A biller's state on a work item (`otedi ar item ITEM --state ...`): open, in_progress, waiting or done,
with a note. States are audit events (action work_item, subject item:<item id>), so their history is the
audit trail; an item's state is its latest. The queue itself is still recomputed from the warehouse, so
an item the warehouse resolves leaves the queue whatever its state.
"""

from __future__ import annotations

import json
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from otedi.actions.audit import ActionError, record, require_note
from otedi.warehouse import models

STATES = ("open", "in_progress", "waiting", "done")
ACTION = "work_item"


def set_state(session: Session, item_id: str, state: str, *, who: str, note: str) -> dict:
    """Record a work item's new state (item ids are <claim id>:<reason>, as the work queue lists them)."""
    from otedi.analytics.snapshot import load_snapshot
    from otedi.analytics.workqueue import REASONS, work_queue

    note = require_note(note)
    if state not in STATES:
        raise ActionError(f"state {state!r} is not one of {', '.join(STATES)}")
    claim_id, _, reason = item_id.partition(":")
    if reason not in REASONS:
        raise ActionError(f"{item_id!r} is not a work item id (<claim id>:<reason>, reasons: {', '.join(REASONS)})")
    if session.scalar(select(models.Claim.id).where(models.Claim.claim_id == claim_id)) is None:
        raise ActionError(f"no claim {claim_id}")
    queue = work_queue(load_snapshot(session), today=date.today())
    if item_id not in set(queue["item_id"]):
        listed = sorted(i for i in queue["item_id"] if i.startswith(f"{claim_id}:"))
        raise ActionError(f"{item_id} is not in today's work queue"
                          + (f" (claim {claim_id} has {', '.join(listed)})" if listed else
                             f" (claim {claim_id} has no open item)"))
    before = states(session).get(item_id, {}).get("state", "open")
    record(session, action=ACTION, subject=f"item:{item_id}", who=who, note=note,
           changes={"state": [before, state]})
    return {"item_id": item_id, "state": state, "was": before}


def states(session: Session) -> dict[str, dict]:
    """item id -> {state, by, note, at} of its latest state event."""
    out: dict[str, dict] = {}
    for event in session.scalars(select(models.AuditEvent).where(models.AuditEvent.action == ACTION)
                                 .order_by(models.AuditEvent.id)):
        out[event.subject.removeprefix("item:")] = {"state": json.loads(event.changes)["state"][1],
                                                    "by": event.actor, "note": event.note, "at": event.at}
    return out
