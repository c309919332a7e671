"""Engine, sessions and schema upgrades for the warehouse.

`OTEDI_DATABASE_URL` selects the database (see otedi.config); SQLite is the
embedded default, PostgreSQL the production target.
"""

from __future__ import annotations

import fcntl
import logging
import time
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterator, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from otedi import config
from otedi.files import open_private, private_dir

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
log = logging.getLogger(__name__)
T = TypeVar("T")
SQLITE_BUSY_MS = 30_000  # how long one SQLite statement waits for another connection's write lock
EXCLUSIVE_WAIT_SECONDS = 900  # how long begin_exclusive waits for a concurrent twin's file to be written


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
    cursor.close()


def _ensure_sqlite_folder(url: str) -> None:
    """The SQLite warehouse holds PHI: its folder is created 0700 and the file 0600 before SQLite opens it
    (SQLite gives its -wal and -shm files the database file's mode)."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        private_dir(path.parent)
        if not path.exists():
            open_private(path, "wb").close()


def engine(url: str | None = None) -> Engine:
    """The engine for `url`, or for OTEDI_DATABASE_URL as it is now; one per URL per process."""
    return _engine(url or config.database_url())


@lru_cache(maxsize=8)
def _engine(url: str) -> Engine:
    _ensure_sqlite_folder(url)
    # hide_parameters: a database error never prints the statement's values (names, member ids, addresses)
    # pool_pre_ping: a connection the server dropped is replaced before use, not failed on
    eng = create_engine(url, hide_parameters=True, pool_pre_ping=True)
    if eng.dialect.name == "sqlite":
        event.listen(eng, "connect", _sqlite_pragmas)
    return eng


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    session = sessionmaker(engine(url), expire_on_commit=False)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def begin_exclusive(session: Session) -> None:
    """Start the session's next transaction holding the database's write lock on SQLite (BEGIN IMMEDIATE),
    so a concurrent twin waits until it commits (up to EXCLUSIVE_WAIT_SECONDS) instead of working from the
    same snapshot. On PostgreSQL this is a no-op: callers lock the rows they take (FOR UPDATE SKIP LOCKED)."""
    if session.get_bind().dialect.name != "sqlite":
        return
    # A twin can hold the lock for as long as its file takes to write and validate (the pyx12 gate on a
    # large file takes longer than one busy timeout): wait for it, bounded, rather than fail.
    deadline = time.monotonic() + EXCLUSIVE_WAIT_SECONDS
    while True:
        if session.in_transaction():
            session.commit()
        try:
            session.connection().exec_driver_sql("BEGIN IMMEDIATE")
            return
        except OperationalError as exc:
            session.rollback()
            if "locked" not in str(exc.orig) or time.monotonic() > deadline:
                raise
            log.info("waiting for a concurrent run to release the warehouse's write lock")


@contextmanager
def work_lock(session: Session, key: str) -> Iterator[bool]:
    """An exclusive claim on one piece of work (`key`, e.g. "deliver:<file id>") that lasts across the
    work's commits: yields True when taken, False when a concurrent twin holds it (skip the work; the twin
    does it). Released on exit, and by the operating system or the server when the process dies, so a
    crashed run never leaves work claimed. PostgreSQL: a session advisory lock on a connection of its own;
    SQLite (one machine): flock on a file in a folder beside the database."""
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        with bind.connect() as conn:
            lock_id = conn.exec_driver_sql("select hashtextextended(%s, 0)", (key,)).scalar()
            taken = conn.exec_driver_sql("select pg_try_advisory_lock(%s)", (lock_id,)).scalar()
            conn.commit()
            try:
                yield bool(taken)
            finally:
                if taken:
                    conn.exec_driver_sql("select pg_advisory_unlock(%s)", (lock_id,))
                    conn.commit()
        return
    database = Path(bind.url.database) if bind.url.database else config.home() / "memory"
    folder = private_dir(database.with_name(database.name + ".locks"))
    with open_private(folder / f"{key.replace(':', '-').replace('/', '_')}.lock") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


RETRIES = 3


def in_own_transaction(work: Callable[[Session], T], *, what: str, url: str | None = None,
                       attempts: int = RETRIES) -> T:
    """Run `work` in a transaction of its own, again (bounded, with backoff) when the database fails in a
    way a second attempt can cure: a lost connection or a lock (OperationalError), or a concurrent twin
    that stored the same natural key first (IntegrityError: the retry then finds the work done). The last
    failure is raised; messages carry the error class only, never the statement's values."""
    for attempt in range(1, attempts + 1):
        try:
            with session_scope(url) as session:
                return work(session)
        except (OperationalError, IntegrityError) as exc:
            if attempt == attempts:
                raise
            log.warning("%s: database %s on attempt %d of %d; retrying", what, type(exc.orig).__name__,
                        attempt, attempts)
            time.sleep(0.2 * 2 ** attempt)
    raise AssertionError("unreachable")


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", (url or config.database_url()).replace("%", "%%"))
    return cfg


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Bring the warehouse schema to `revision` (idempotent)."""
    url = url or config.database_url()
    _ensure_sqlite_folder(url)
    command.upgrade(alembic_config(url), revision)
