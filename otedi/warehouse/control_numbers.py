"""X12 control numbers handed out by the warehouse, never reused.

ISA13, GS06 and ST02 come from counters stored in the warehouse, so a re-run
or a second worker never repeats one. The caller's transaction holds the row
lock until it commits: if the file is not recorded, the number is not used.
"""

from __future__ import annotations

from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from otedi.errors import OtediError
from otedi.warehouse.models import ControlCounter

MAX_CONTROL_NUMBER = 999_999_999  # ISA13 is nine digits


def allocate(session: Session, counter: str) -> int:
    """Return the next number of `counter` (1, 2, ...) inside the session's transaction."""
    stmt = (
        update(ControlCounter)
        .where(ControlCounter.name == counter)
        .values(last_value=ControlCounter.last_value + 1)
        .returning(ControlCounter.last_value)
    )
    value = session.execute(stmt).scalar_one_or_none()
    if value is None:
        try:
            with session.begin_nested():
                session.execute(insert(ControlCounter).values(name=counter, last_value=1))
            value = 1
        except IntegrityError:  # another worker created it first
            value = session.execute(stmt).scalar_one()
    if value > MAX_CONTROL_NUMBER:
        raise OtediError(f"control number counter {counter!r} is exhausted")
    return value
