"""The exchange with the clearinghouse, recorded in the warehouse.

- `send_ready_files`: every 837P file that passed the 837P gate and is not
  sent yet is uploaded (atomically, never overwriting) and recorded with its
  remote name, size and sha256; the intent is recorded before the upload and
  before the rename that publishes it, so a re-run after a crash at any point
  neither loses the file nor delivers it twice (`deliver`).
- `fetch_inbound`: new files in the inbox are downloaded into the local
  archive (named by content hash) and recorded before the remote copy is
  moved to processed/; files already recorded are skipped.
- `ingest_fetched`: every fetched file not yet processed is loaded by its
  kind: 999 and 277CA update claim status, 835s post to the ledger. Loading
  and posting are idempotent by content hash. Then the Medicare cost sharing
  the 835s left QMB patients is written off (otedi.accounts.qmb), in a
  transaction of its own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from otedi.accounts.qmb import QmbWriteOff, write_off_qmb_cost_sharing
from otedi.acks.load import load_ack_file, transaction_set_of
from otedi.charges.load import file_sha256
from otedi.remit.post import post_remittance_file
from otedi.progress import Progress, counted, silent
from otedi.transport import Drop, TransportError
from otedi.warehouse import models
from otedi.warehouse.db import in_own_transaction, work_lock

log = logging.getLogger(__name__)

ACK_KINDS = ("999", "277")


@dataclass
class IngestResult:
    acks: list[dict] = field(default_factory=list)
    remittances: list[dict] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # kinds we do not load (TA1, unknown)
    failed: list[str] = field(default_factory=list)  # files the database failed on: left for the next run
    qmb_written_off: list[QmbWriteOff] = field(default_factory=list)  # QMB cost sharing written off afterwards
    qmb_failed: bool = False  # the database failed on the QMB write-offs: the next ingest writes them off

    @property
    def qmb_refund_due(self) -> list[str]:
        """Claims written off for a QMB patient who had paid on them: a biller refunds the payment."""
        return [w.claim_id for w in self.qmb_written_off if w.refund_due]


def send_ready_files(session: Session, drop: Drop, clearinghouse_id: str | None = None,
                     practice_id: str | None = None, *, today: date | None = None) -> list[models.Submission]:
    """Upload every ready 837P file without a submission (of one clearinghouse and/or practice, when given);
    commit after each so a crash loses nothing. Submissions are stamped as of `today` (models.stamped_as_of;
    default: the wall clock)."""
    with models.stamped_as_of(today):
        return _send_ready_files(session, drop, clearinghouse_id, practice_id)


def _send_ready_files(session: Session, drop: Drop, clearinghouse_id: str | None,
                      practice_id: str | None) -> list[models.Submission]:
    query = select(models.ClaimFile).where(models.ClaimFile.status == "ready").order_by(models.ClaimFile.id)
    if clearinghouse_id:
        query = query.where(models.ClaimFile.clearinghouse_id == clearinghouse_id)
    if practice_id:
        query = query.where(models.ClaimFile.practice_id == practice_id)
    sent = []
    for claim_file in session.scalars(query).all():
        submission = deliver(session, claim_file, drop)
        if submission is not None:
            sent.append(submission)
    return sent


def deliver(session: Session, claim_file: models.ClaimFile, drop: Drop,
            path: str | Path | None = None, *, today: date | None = None) -> models.Submission | None:
    """Upload one ready 837P file exactly once, also across a crash at any point.

    The intent is recorded before the upload (status uploading) and again when the .part is complete, just
    before the rename that lets the clearinghouse take it (publishing). A re-run reads the record and the
    drop: after uploading nothing could have been delivered, so it sends again; after publishing, the file
    found renamed into outbound/ or gone from it (the clearinghouse took it) was delivered and is only
    recorded, and a .part still there means the rename never happened.

    One run at a time per file: a concurrent twin sending the same file holds its work lock, so this one
    skips it (None); one that finds the file sent meanwhile returns None too. The submission is stamped as of
    `today` (models.stamped_as_of; default: the wall clock)."""
    with models.stamped_as_of(today), work_lock(session, f"deliver:{claim_file.id}") as mine:
        if not mine:
            log.info("%s is being sent by a concurrent run: skipped", claim_file.file_name)
            return None
        session.refresh(claim_file)
        if claim_file.status != "ready":
            return None
        return _deliver(session, claim_file, drop, path)


def _deliver(session: Session, claim_file: models.ClaimFile, drop: Drop,
             path: str | Path | None) -> models.Submission:
    submission = session.scalar(select(models.Submission).where(models.Submission.claim_file_id == claim_file.id))
    if submission is None:
        submission = models.Submission(
            claim_file_id=claim_file.id, clearinghouse_id=claim_file.clearinghouse_id, drop=drop.describe(),
            remote_name=claim_file.file_name, size=claim_file.size, sha256=claim_file.sha256, status="uploading")
        session.add(submission)
        session.commit()
    elif submission.status == "publishing":
        where = drop.locate(claim_file.file_name)
        if where in ("published", "absent"):
            log.info("%s was %s before the last run stopped: recorded, not sent again", claim_file.file_name,
                     "in outbound" if where == "published" else "taken by the clearinghouse")
            return _recorded(session, claim_file, submission, "already_sent")

    def publishing() -> None:
        submission.status = "publishing"
        session.commit()

    result = drop.send(path or claim_file.path, remote_name=claim_file.file_name, before_publish=publishing)
    if result.sha256 != claim_file.sha256:
        raise TransportError(f"{claim_file.file_name} changed on disk since it was validated; not recorded")
    log.info("sent %s (%d bytes, %s)", result.remote_name, result.size, result.status)
    return _recorded(session, claim_file, submission, result.status)


def _recorded(session: Session, claim_file: models.ClaimFile, submission: models.Submission,
              status: str) -> models.Submission:
    """The file is on the drop or delivered: the submission says so and the file's claims are submitted."""
    submission.status = status
    submission.sent_at = models.utcnow()
    claim_file.status = "sent"
    session.execute(update(models.Claim).where(models.Claim.claim_file_id == claim_file.id,
                                               models.Claim.status == "batched").values(status="submitted"))
    session.commit()
    return submission


@dataclass
class SendOutcome:
    file: str
    status: str  # sent | already_sent | skipped (<why>)
    remote_name: str | None = None
    size: int | None = None
    sha256: str | None = None


def send_files(session: Session, drop: Drop, paths: list[Path], *, today: date | None = None) -> list[SendOutcome]:
    """`otedi drop send DIR|FILE`: upload only the files the warehouse holds as ready 837P files (same name
    and sha256); everything else in the folder - an orphan from a crash, a file that failed the gate, a
    leftover .part - is left alone with a note. Submissions are stamped as of `today` (default: the wall
    clock)."""
    with models.stamped_as_of(today):
        return _send_files(session, drop, paths)


def _send_files(session: Session, drop: Drop, paths: list[Path]) -> list[SendOutcome]:
    out = []
    for path in paths:
        digest = file_sha256(path)
        claim_file = session.scalar(select(models.ClaimFile).where(models.ClaimFile.sha256 == digest))
        if claim_file is None or claim_file.file_name != path.name:
            why = "not an 837P file the warehouse recorded" if claim_file is None else \
                f"recorded as {claim_file.file_name}, not {path.name}"
            out.append(SendOutcome(str(path), f"skipped ({why})"))
            continue
        if claim_file.status != "ready":
            out.append(SendOutcome(str(path), f"skipped ({claim_file.status})"))
            continue
        submission = deliver(session, claim_file, drop, path)
        if submission is None:
            out.append(SendOutcome(str(path), "skipped (sent by a concurrent run)"))
            continue
        out.append(SendOutcome(str(path), submission.status, submission.remote_name, submission.size,
                               submission.sha256))
    return out


def fetch_inbound(session: Session, drop: Drop, archive_dir: str | Path, *,
                  today: date | None = None) -> list[models.FetchedFile]:
    """Download new inbox files into the archive and record them (fetched_at as of `today`,
    models.stamped_as_of; default: the wall clock); then move them to processed/."""
    with models.stamped_as_of(today):
        return _fetch_inbound(session, drop, archive_dir)


def _fetch_inbound(session: Session, drop: Drop, archive_dir: str | Path) -> list[models.FetchedFile]:
    where = drop.describe()

    def already_have(name: str, size: int, sha256: str | None) -> bool:
        query = select(models.FetchedFile.id).where(models.FetchedFile.drop == where,
                                                    models.FetchedFile.remote_name == name,
                                                    models.FetchedFile.size == size)
        if sha256:
            query = query.where(models.FetchedFile.sha256 == sha256)
        return session.scalar(query.limit(1)) is not None

    def recorded_sha256(name: str, size: int) -> str | None:
        return session.scalar(select(models.FetchedFile.sha256).where(
            models.FetchedFile.drop == where, models.FetchedFile.remote_name == name,
            models.FetchedFile.size == size).limit(1))

    # Files an earlier run recorded but did not move (it stopped between the two) are moved first.
    for name in drop.finish_moves(recorded_sha256):
        log.info("moved %s to processed (recorded by an earlier run)", name)
    recorded = []
    for fetched in drop.fetch(archive_dir, already_have=already_have):
        row = models.FetchedFile(drop=where, remote_name=fetched.remote_name, size=fetched.size,
                                 sha256=fetched.sha256, kind=fetched.kind, archive_path=str(fetched.local_path))
        session.add(row)
        try:
            session.commit()  # recorded before the remote copy moves
        except IntegrityError:  # a concurrent fetch recorded the same file first: it is that run's
            session.rollback()
            log.info("fetch %s: recorded by a concurrent run", fetched.remote_name)
            continue
        drop.mark_processed(fetched.remote_name, fetched.sha256)
        recorded.append(row)
        log.info("fetched %s (%s, %d bytes)", fetched.remote_name, fetched.kind, fetched.size)
    return recorded


def ingest_fetched(session: Session, *, today: date | None = None, progress: Progress = silent) -> IngestResult:
    """Load every fetched file not processed yet: acknowledgments first, then remittances; then write off the
    QMB cost sharing (as of `today`, default the current date) the remittances left patients. Everything it
    records (inbound files, remittances, ledger entries, claim status events, write-offs and their audit
    events) is stamped as of that date too (models.stamped_as_of). `progress` hears of the files loaded."""
    today = today or date.today()
    with models.stamped_as_of(today):
        return _ingest_fetched(session, today, progress)


def _ingest_fetched(session: Session, today: date, progress: Progress) -> IngestResult:
    processed = set(session.scalars(select(models.InboundFile.sha256)))
    pending = [f for f in session.scalars(select(models.FetchedFile).order_by(models.FetchedFile.id))
               if f.sha256 not in processed]
    result = IngestResult()
    ordered = sorted(pending, key=lambda f: (f.kind not in ACK_KINDS, f.id))
    for fetched in counted(ordered, "loading 999/277CA and posting 835s (files)", len(ordered), progress):
        if fetched.sha256 in processed:  # the same content under two names
            continue
        processed.add(fetched.sha256)
        kind = _loader_kind(fetched)
        try:
            if kind in ACK_KINDS:
                result.acks.append(load_ack_file(session, fetched.archive_path, fetched.remote_name).summary())
            elif kind == "835":
                result.remittances.append(
                    post_remittance_file(session, fetched.archive_path, fetched.remote_name).summary())
            else:  # e.g. a TA1: kept in the archive, recorded once, not loaded
                session.add(models.InboundFile(file_name=fetched.remote_name, sha256=fetched.sha256,
                                               size=fetched.size, kind=fetched.kind[:8], status="ignored",
                                               message=f"{fetched.kind} files are archived, not loaded"))
                result.skipped.append(f"{fetched.remote_name} ({fetched.kind})")
            session.commit()
        except SQLAlchemyError as exc:
            # Rolled back, so not recorded as processed: the next ingest loads it; the other files go on.
            session.rollback()
            if _loaded_by_twin(session, fetched.sha256):
                log.info("ingest %s: loaded by a concurrent run", fetched.remote_name)
                continue
            result.failed.append(fetched.remote_name)
            log.warning("ingest %s: database %s; rolled back, the next run loads it", fetched.remote_name,
                        type(getattr(exc, "orig", None) or exc).__name__)
        except Exception as exc:  # noqa: BLE001 - a loader bug on one file must not stop the others
            # Its text may quote the file, so only its class is logged; the file stays unprocessed.
            session.rollback()
            result.failed.append(fetched.remote_name)
            log.error("ingest %s: %s in the loader; rolled back, left for the next run", fetched.remote_name,
                      type(exc).__name__)
    _write_off_qmb(session, result, today)
    return result


def _write_off_qmb(session: Session, result: IngestResult, today: date) -> None:
    """After the files: QMB patients' Medicare cost sharing is written off, never left as a patient balance
    (otedi.accounts.qmb), in a transaction of its own, retried on what a second attempt cures (a concurrent
    twin's write-offs leave this one nothing to do). The files stay posted if it fails: the next ingest
    writes them off."""
    session.commit()  # the files are committed; hold no transaction while the write-offs take the write lock
    url = session.get_bind().engine.url.render_as_string(hide_password=False)  # the session's own warehouse
    try:
        result.qmb_written_off = in_own_transaction(
            lambda s: write_off_qmb_cost_sharing(s, today=today), what="QMB write-offs", url=url)
    except SQLAlchemyError as exc:
        result.qmb_failed = True
        log.warning("QMB write-offs: database %s; nothing written off, the next ingest writes them off",
                    type(getattr(exc, "orig", None) or exc).__name__)


def _loaded_by_twin(session: Session, sha256: str) -> bool:
    """After a failed load: whether another run committed this content meanwhile (its unique key won)."""
    try:
        return session.scalar(select(models.InboundFile.id).where(models.InboundFile.sha256 == sha256)) is not None
    except SQLAlchemyError:
        session.rollback()
        return False


def _loader_kind(fetched: models.FetchedFile) -> str:
    """Which loader the file goes to: its ST01 as the loaders read it (so a file is never handed to the
    loader that refuses it), else the kind recorded at fetch (TA1, unknown)."""
    path = Path(fetched.archive_path)
    kind = transaction_set_of(path) if path.exists() else "unknown"
    return fetched.kind if kind == "unknown" else kind
