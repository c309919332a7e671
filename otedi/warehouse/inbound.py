"""The register of inbound files (inbound_file): one row per content (sha256), whichever name it came under.

Loaders ask it first, so a 999, 277CA or 835 is loaded or posted once however often it is given."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from otedi.warehouse import models

log = logging.getLogger(__name__)


def inbound_record(session: Session, name: str, sha256: str, size: int, kind: str,
                   status: str) -> models.InboundFile | None:
    """The register row a load of this content writes to, or None when it was loaded before.

    A file quarantined before loaded nothing, so it is tried again: also one an older otedi recorded when
    it was given to the wrong command (a 999 to `remit post`), which would otherwise block the right one.
    The row then says what this attempt made of it."""
    row = session.scalar(select(models.InboundFile).where(models.InboundFile.sha256 == sha256))
    if row is not None and row.status != "quarantined":
        return None
    if row is None:
        row = models.InboundFile(sha256=sha256)
        session.add(row)
    else:
        log.info("%s was quarantined before (%s); trying again", name, row.kind)
    row.file_name, row.size, row.kind, row.status, row.message = name, size, kind, status, None
    session.flush()
    return row
