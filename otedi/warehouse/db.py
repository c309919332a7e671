"""Engine, sessions and schema upgrades for the warehouse.

`OTEDI_DATABASE_URL` selects the database (see otedi.config); SQLite is the
embedded default, PostgreSQL the production target.

Only `upgrade()` creates anything: the SQLite file and its folder (0700/0600)
and the schema. Opening the warehouse (engine, session_scope) never does: a
SQLite file that is not there is a WarehouseError naming it, not a new empty
database. Before its first session a command calls one of

    require_warehouse()   # reads only: the warehouse exists and its schema is the code's head, else WarehouseError
    prepare_warehouse()   # writes: upgrade() when auto_upgrade() allows, else require_warehouse()

OTEDI_AUTO_UPGRADE (1/0; default: on for the embedded default warehouse,
sqlite:///$OTEDI_HOME/otedi.db, off for any database OTEDI_DATABASE_URL names
otherwise) says whether commands bring the schema up to date by themselves;
where it is off, only `otedi db upgrade` migrates.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import time
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterator, TypeVar
from urllib.parse import quote

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from otedi import config
from otedi.errors import ConfigError, OtediError
from otedi.files import open_private, private_dir

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
log = logging.getLogger(__name__)
T = TypeVar("T")
SQLITE_BUSY_MS = 30_000  # how long one SQLite statement waits for another connection's write lock
EXCLUSIVE_WAIT_SECONDS = 900  # how long begin_exclusive waits for a concurrent twin's file to be written


AUTO_UPGRADE = "OTEDI_AUTO_UPGRADE"
UPGRADE_FIRST = "run `otedi db upgrade` first, or check OTEDI_DATABASE_URL"
CHECK_URL = "check OTEDI_DATABASE_URL (e.g. postgresql+psycopg://user@host:5432/otedi or sqlite:////abs/path/otedi.db)"


class WarehouseError(OtediError):
    """The warehouse cannot be used as it is: one line naming it (password hidden), what is wrong and the fix.

    kind: bad_url | missing (no SQLite file) | unreachable | not_writable | no_schema | old_schema (older than
    the code's head revision) | unknown_schema (a revision this code does not know: a newer otedi's)."""

    def __init__(self, url: str, problem: str, fix: str, *, kind: str):
        self.url = describe(url)
        self.problem, self.fix, self.kind = problem, fix, kind
        super().__init__(f"warehouse {self.url}: {problem}; {fix}")


def describe(url: str | None = None) -> str:
    """The warehouse URL as a person may see it: the password hidden (for "which warehouse" lines, errors)."""
    url = url or config.database_url()
    try:
        parsed = make_url(url)
        return url if parsed.password is None else parsed.render_as_string(hide_password=True)
    except (ArgumentError, ValueError):  # not a URL: still hide what looks like a password
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def _sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None: another database, an in-memory one, or a `file:` URI)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:" \
            or parsed.database.startswith("file:") or parsed.query.get("uri"):
        return None
    return Path(parsed.database)


def _existing_file_only(url: str, path: Path):
    """do_connect hook of a SQLite engine: refuse a file that is not there (instead of creating an empty one),
    and open the file read-write without create (a URI with mode=rw), so no connection can create it."""
    def do_connect(_dialect, _record, cargs, cparams):
        if not path.exists():
            raise _missing(url, path)
        cargs[0] = f"file:{quote(str(cargs[0]))}?mode=rw"
        cparams["uri"] = True
    return do_connect


def _missing(url: str, path: Path) -> WarehouseError:
    folder = "" if path.parent.is_dir() else " (nor its folder)"
    return WarehouseError(url, f"the SQLite file does not exist{folder}", UPGRADE_FIRST, kind="missing")


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
    cursor.close()


def _ensure_sqlite_folder(url: str) -> None:
    """The SQLite warehouse holds PHI: its folder is created 0700 and the file 0600 before SQLite opens it
    (SQLite gives its -wal and -shm files the database file's mode). Only upgrade() calls this."""
    path = _sqlite_file(url)
    if path is not None:
        private_dir(path.parent)
        if not path.exists():
            open_private(path, "wb").close()


def engine(url: str | None = None) -> Engine:
    """The engine for `url`, or for OTEDI_DATABASE_URL as it is now; one per URL per process. Creates nothing:
    connecting to a SQLite file that does not exist raises WarehouseError (kind missing); `upgrade()` makes it.
    A URL SQLAlchemy cannot open is a WarehouseError (kind bad_url)."""
    return _engine(url or config.database_url())


@lru_cache(maxsize=8)
def _engine(url: str) -> Engine:
    # hide_parameters: a database error never prints the statement's values (names, member ids, addresses)
    # pool_pre_ping: a connection the server dropped is replaced before use, not failed on
    try:
        eng = create_engine(url, hide_parameters=True, pool_pre_ping=True)
    except NoSuchModuleError as exc:
        raise WarehouseError(url, f"no database driver for it ({exc})", CHECK_URL, kind="bad_url") from None
    except ImportError as exc:
        raise WarehouseError(url, f"its database driver is not installed ({exc.name or exc})", CHECK_URL,
                             kind="bad_url") from None
    except (ArgumentError, ValueError) as exc:
        raise WarehouseError(url, f"not a database URL ({type(exc).__name__})", CHECK_URL, kind="bad_url") from None
    if eng.dialect.name == "sqlite":
        event.listen(eng, "connect", _sqlite_pragmas)
        path = _sqlite_file(url)
        if path is not None:
            event.listen(eng, "do_connect", _existing_file_only(url, path))
    return eng


@contextmanager
def session_scope(url: str | None = None, *, readonly: bool = False) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error.

    readonly=True: for commands that only read (report, worklist, exports): the warehouse is checked first
    (require_warehouse: nothing is created, a missing or out-of-date one is a WarehouseError saying what to
    do), and the session is rolled back at the end instead of committed, so nothing it did is kept."""
    if readonly:
        url = require_warehouse(url)
    session = sessionmaker(engine(url), expire_on_commit=False)()
    try:
        yield session
        if readonly:
            session.rollback()
        else:
            session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def require_warehouse(url: str | None = None) -> str:
    """Check, creating nothing, that the warehouse at `url` (default OTEDI_DATABASE_URL) can be used: the SQLite
    file exists, the database answers, and its schema is the code's head revision. Returns the URL; raises
    WarehouseError (one line: the URL with its password hidden, the problem, the fix) otherwise."""
    url = url or config.database_url()
    eng = engine(url)
    path = _sqlite_file(url)
    if path is not None and not path.exists():
        raise _missing(url, path)
    try:
        with eng.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    except DBAPIError as exc:
        raise WarehouseError(url, f"cannot connect: {_reason(exc, url)}",
                             "check OTEDI_DATABASE_URL and that the database server is running and reachable",
                             kind="unreachable") from None
    head = head_revision()
    if current == head:
        return url
    if current is None:
        raise WarehouseError(url, "it has no otedi schema (an empty database)", UPGRADE_FIRST, kind="no_schema")
    if current in _revisions():
        raise WarehouseError(url, f"its schema is at revision {current}, this otedi needs {head}",
                             "run `otedi db upgrade`", kind="old_schema")
    raise WarehouseError(url, f"its schema is at revision {current}, which this otedi does not know (a newer "
                         f"otedi migrated it; this one needs {head})",
                         "install the otedi that migrated it, or check OTEDI_DATABASE_URL", kind="unknown_schema")


def auto_upgrade(url: str | None = None) -> bool:
    """Whether commands bring the schema of `url` up to date by themselves: OTEDI_AUTO_UPGRADE (1/true/yes/on or
    0/false/no/off) when set; else on for the embedded default warehouse (sqlite:///$OTEDI_HOME/otedi.db) and
    off for any other database, where `otedi db upgrade` is a deliberate step."""
    value = os.environ.get(AUTO_UPGRADE, "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    if value:
        raise ConfigError(f"{AUTO_UPGRADE}={value!r}: use 1 (commands upgrade the warehouse schema themselves) "
                          "or 0 (only `otedi db upgrade` does)")
    url = url or config.database_url()
    try:
        path = _sqlite_file(url)
    except (ArgumentError, ValueError):  # not a URL: nothing to upgrade (engine() says what is wrong with it)
        return False
    # the default of otedi.config.database_url, when OTEDI_DATABASE_URL is not set
    return path is not None and path.resolve() == (config.home() / "otedi.db").resolve()


def prepare_warehouse(url: str | None = None) -> str:
    """For a command that writes: bring the schema to head when auto_upgrade(url) allows (creating the embedded
    SQLite warehouse the first time), else require it (require_warehouse): a database never migrated, or
    migrated by an older otedi, is a WarehouseError saying to run `otedi db upgrade`. Returns the URL."""
    url = url or config.database_url()
    if auto_upgrade(url):
        upgrade(url)
        return url
    try:
        return require_warehouse(url)
    except WarehouseError as exc:
        if exc.kind not in ("missing", "no_schema", "old_schema"):
            raise
        raise WarehouseError(url, exc.problem, f"run `otedi db upgrade` first (schema upgrades are explicit here: "
                             f"{AUTO_UPGRADE} is off for this database), or check OTEDI_DATABASE_URL",
                             kind=exc.kind) from None


def head_revision() -> str:
    """The schema revision this code needs (the newest migration)."""
    return _script().get_current_head()


@lru_cache(maxsize=1)
def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config("sqlite://"))


@lru_cache(maxsize=1)
def _revisions() -> frozenset[str]:
    return frozenset(r.revision for r in _script().walk_revisions())


def _reason(exc: DBAPIError, url: str) -> str:
    """The driver's first line (host, port, database, the server's refusal), its class when there is none;
    the URL's password never appears."""
    lines = str(exc.orig).strip().splitlines() if exc.orig is not None else []
    text = lines[0].strip() if lines else ""
    password = make_url(url).password
    if password:
        text = text.replace(str(password), "***")
    return text[:300] or type(exc.orig or exc).__name__


def begin_exclusive(session: Session) -> None:
    """Start the session's next transaction holding the database's write lock on SQLite (BEGIN IMMEDIATE),
    so a concurrent twin waits until it commits (up to EXCLUSIVE_WAIT_SECONDS) instead of working from the
    same snapshot. On PostgreSQL this is a no-op: callers lock the rows they take (FOR UPDATE SKIP LOCKED)."""
    if session.get_bind().dialect.name != "sqlite":
        return
    # A twin can hold the lock for as long as its file takes to write and validate (the 837P gate on a
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
    """Bring the warehouse schema to `revision` (idempotent): `otedi db upgrade`, and commands where
    auto_upgrade() is on (prepare_warehouse). The one place the SQLite file and its folder are created."""
    url = url or config.database_url()
    engine(url)  # a URL that cannot be opened: WarehouseError (bad_url)
    try:
        _ensure_sqlite_folder(url)
    except OSError as exc:
        raise WarehouseError(url, f"cannot create the SQLite file ({exc.strerror or type(exc).__name__})",
                             "check OTEDI_DATABASE_URL and OTEDI_HOME", kind="not_writable") from None
    try:
        with engine(url).connect():
            pass
    except DBAPIError as exc:
        raise WarehouseError(url, f"cannot connect: {_reason(exc, url)}",
                             "check OTEDI_DATABASE_URL and that the database server is running and reachable",
                             kind="unreachable") from None
    command.upgrade(alembic_config(url), revision)
