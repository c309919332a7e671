"""The finance tables in the warehouse itself, for BI tools: `finance_<table>` for every exported table.

A BI tool (Metabase, Superset, Excel over ODBC) reads the reconciliation, payments tie-out, AR aging,
work queue, denials and KPIs with plain SQL:

    select payer_name, sum(open_balance) from finance_reconciliation_claims group by payer_name

The figures are not defined a second time in SQL: `refresh_finance_tables` computes the export tables
(export.finance_tables: reconcile, aging, workqueue, denials, kpis over one snapshot) and materialises
them, so the CLI summary, the report, the export files and these tables share one definition.

- One table per entry of export.SCHEMAS, named `finance_<table>`, with the declared columns in the
  declared order and types (`sql_type`: money NUMERIC(12,2), rate NUMERIC(7,4), measure NUMERIC(16,4),
  ids and text VARCHAR, integer BIGINT, boolean BOOLEAN, date DATE, date-time TIMESTAMP WITH TIME ZONE,
  UTC), then `as_of` (the date the figures are as of) and `row_no` (1.., the table's order, its primary
  key). On PostgreSQL each column carries its description as a comment (BI tools show it).
- `finance_refresh`: one row per table per refresh (refresh_id, table_name, row_count, as_of,
  refreshed_at), kept as the history of refreshes; the latest refresh_id is what the tables hold.
- `finance_columns`: every column of these tables with its SQL type and description (a data dictionary
  in the warehouse, for SQLite too, which keeps no column comments), rewritten by every refresh.
- A refresh replaces every table's rows in ONE transaction: a reader sees the previous refresh or this
  one, never half of one (PostgreSQL: MVCC, DELETE not TRUNCATE; SQLite: WAL). A table missing is
  created; a table whose columns (names, order, types, comments) differ from SCHEMAS is dropped and
  created again, in the same transaction. A table an earlier refresh wrote that SCHEMAS no longer has is
  dropped.
- Concurrent twins: a refresh takes the write lock first (SQLite: BEGIN IMMEDIATE via
  db.begin_exclusive; PostgreSQL: a transaction advisory lock), so two refreshes at once run one after
  the other and end with one complete set (the later one's). The snapshot is read before the lock (in
  REPEATABLE READ on PostgreSQL, so its statements agree), so a refresh holds the lock only while it
  writes.
- SQLite has no decimal type: money is stored as REAL (NUMERIC affinity), which reads back exact to the
  cent through SQLAlchemy's Numeric(12, 2); in plain SQL round a sum: `round(sum(open_balance), 2)`.
  Dates are ISO text there ('2026-03-10'), date-times UTC text. PostgreSQL sums NUMERIC exactly.

`read_finance_tables` reads them back (what export_tables(refresh=False) writes to files).
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Iterator

import pandas as pd
from sqlalchemy import (BigInteger, Boolean, Date, DateTime, MetaData, Numeric, String, Table, func, inspect, select,
                        text)
from sqlalchemy import Column as SqlColumn
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeEngine

from otedi.analytics import export
from otedi.analytics.export import DECIMALS, SCHEMAS, Column, ExportError, conform
from otedi.analytics.snapshot import Snapshot, load_snapshot
from otedi.progress import Progress, silent
from otedi.warehouse import bulk, db, models

log = logging.getLogger(__name__)

PREFIX = "finance_"
REFRESH_TABLE = "finance_refresh"
REFRESHING = "refreshing the finance tables (read, compute, write)"
CHUNK_ROWS = 50_000  # rows of a finance table an export reads (and writes to its file) at a time
LOCK_KEY = "otedi:finance_refresh"  # PostgreSQL: pg_advisory_xact_lock(hashtextextended(LOCK_KEY, 0))

# Columns every finance_<table> has after its declared ones.
EXTRA_COLUMNS = (
    Column("as_of", "date", "The date the figures are as of (the refresh's today: ages, balances, deadlines)"),
    Column("row_no", "integer", "The row's place in the table's order, 1 first (the export's row order: e.g. the "
                                "most urgent work item first); the primary key"),
)
COLUMNS_TABLE = "finance_columns"
COLUMNS_COLUMNS = (
    Column("table_name", "string", "A finance table: finance_<table>, finance_refresh or finance_columns"),
    Column("column_no", "integer", "The column's place in its table, 1 first"),
    Column("column_name", "string", "The column"),
    Column("sql_type", "string", "Its SQL type: NUMERIC(12, 2) for money, VARCHAR for ids and text, DATE, ..."),
    Column("otedi_type", "string", "Its export type (money, rate, measure, string, integer, boolean, date, "
                                   "datetime)"),
    Column("description", "string", "What the column holds"),
)
REFRESH_COLUMNS = (
    Column("refresh_id", "integer", "The refresh, counting up from 1; the highest is what the finance tables hold"),
    Column("table_name", "string", "The finance table written (finance_<table>)"),
    Column("row_count", "integer", "Rows the refresh wrote into the table"),
    Column("as_of", "date", "The date the refresh's figures are as of"),
    Column("refreshed_at", "datetime", "When the refresh ran (UTC; in a run back-dated with --today, stamped on "
                                       "that date like the run's other rows)"),
)


def table_name(name: str) -> str:
    """The warehouse table of an exported table: reconciliation_claims -> finance_reconciliation_claims."""
    return PREFIX + name


def sql_type(column: Column) -> TypeEngine:
    """The SQL type of an export column type (the same on SQLite and PostgreSQL, as SQLAlchemy renders it)."""
    if column.type in DECIMALS:
        return Numeric(*DECIMALS[column.type])
    return {"string": String(), "integer": BigInteger(), "boolean": Boolean(), "date": Date(),
            "datetime": DateTime(timezone=True)}[column.type]


def _sql_column(column: Column, **kw) -> SqlColumn:
    return SqlColumn(column.name, sql_type(column), comment=column.description, **kw)


SQL_TYPE_NAMES = {"money": "NUMERIC(12, 2)", "rate": "NUMERIC(7, 4)", "measure": "NUMERIC(16, 4)",
                  "string": "VARCHAR", "integer": "BIGINT", "boolean": "BOOLEAN", "date": "DATE",
                  "datetime": "TIMESTAMP WITH TIME ZONE"}  # as PostgreSQL names them (SQLite: DATETIME)


def documented_tables() -> dict[str, tuple[Column, ...]]:
    """Every warehouse finance table with its columns in order (export.SCHEMAS, then as_of and row_no; and
    finance_refresh, finance_columns): what finance_columns holds and the README lists."""
    return {**{table_name(n): (*schema, *EXTRA_COLUMNS) for n, schema in SCHEMAS.items()},
            REFRESH_TABLE: REFRESH_COLUMNS, COLUMNS_TABLE: COLUMNS_COLUMNS}


def columns_markdown() -> str:
    """The README's column reference of the finance tables, generated from documented_tables()."""
    out = []
    for name, columns in documented_tables().items():
        out += [f"<details><summary><code>{name}</code>: {len(columns)} columns</summary>", "",
                "| column | type | description |", "|---|---|---|"]
        out += [f"| `{c.name}` | {SQL_TYPE_NAMES[c.type]} | {c.description.replace('|', '&#124;')} |"
                for c in columns]
        out += ["", "</details>", ""]
    return "\n".join(out)


def finance_metadata() -> tuple[MetaData, dict[str, Table], Table]:
    """The finance tables as SQLAlchemy Tables (not the warehouse's models: no Alembic migration makes them;
    a refresh creates them from SCHEMAS): (metadata, {export name: Table}, the finance_refresh Table).
    `metadata` also holds finance_columns."""
    metadata = MetaData()
    tables = {}
    for name, schema in SCHEMAS.items():
        as_of, row_no = EXTRA_COLUMNS
        tables[name] = Table(
            table_name(name), metadata, *(_sql_column(c) for c in schema), _sql_column(as_of, nullable=False),
            _sql_column(row_no, primary_key=True, autoincrement=False),
            comment=f"otedi finance table {name} (otedi.analytics.export.SCHEMAS), replaced by every refresh")
    refresh_id, name_col, *rest = REFRESH_COLUMNS
    refresh = Table(REFRESH_TABLE, metadata, _sql_column(refresh_id, primary_key=True, autoincrement=False),
                    _sql_column(name_col, primary_key=True), *(_sql_column(c, nullable=False) for c in rest),
                    comment="otedi finance tables: one row per table per refresh")
    table_col, column_no, *described = COLUMNS_COLUMNS
    Table(COLUMNS_TABLE, metadata, _sql_column(table_col, primary_key=True),
          _sql_column(column_no, primary_key=True, autoincrement=False),
          *(_sql_column(c, nullable=False) for c in described),
          comment="otedi finance tables: every column with its type and description (a data dictionary)")
    return metadata, tables, refresh


# ---------------------------------------------------------------------------------------------------------------
# Sessions and locks


@contextmanager
def _session(target: Session | Engine | str | None) -> Iterator[Session]:
    """The caller's session (what it holds is committed first: the refresh reads the warehouse as committed),
    or a new one on the engine, the URL or OTEDI_DATABASE_URL."""
    if isinstance(target, Session):
        if target.in_transaction():
            target.commit()
        yield target
        return
    bind = target if isinstance(target, Engine) else db.engine(target)
    session = Session(bind, expire_on_commit=False)
    try:
        yield session
    finally:
        session.close()


@contextmanager
def _consistent_read(bind: Engine | Connection) -> Iterator[Session]:
    """A read-only session whose statements all see one state of the warehouse: REPEATABLE READ on
    PostgreSQL (READ COMMITTED gives each statement its own); on SQLite an explicit BEGIN (the driver runs a
    SELECT outside any transaction, each with its own view), whose WAL snapshot holds until it ends."""
    if not isinstance(bind, Engine):
        with Session(bind) as session:
            yield session
        return
    with bind.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        elif conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN")
        with Session(conn) as session:
            try:
                yield session
            finally:
                session.rollback()


def _lock(session: Session) -> None:
    """Take the warehouse's lock for a refresh, for this transaction: a concurrent twin waits until we commit."""
    if session.get_bind().dialect.name == "sqlite":
        db.begin_exclusive(session)
    else:
        session.execute(text("select pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": LOCK_KEY})


# ---------------------------------------------------------------------------------------------------------------
# Writing


def _signature(columns, dialect) -> list[tuple]:
    """(name, rendered type, comment) of each column, in order: what a table must keep to be reused."""
    comments = dialect.supports_comments
    return [(c["name"], c["type"].compile(dialect=dialect), c.get("comment") if comments else None)
            for c in columns]


def _ensure(conn: Connection, table: Table) -> bool:
    """Create `table` if it is missing, or drop and create it if its columns differ; True when (re)created."""
    found = inspect(conn)
    if found.has_table(table.name):
        wanted = _signature([{"name": c.name, "type": c.type, "comment": c.comment} for c in table.columns],
                            conn.dialect)
        if _signature(found.get_columns(table.name), conn.dialect) == wanted:
            return False
        log.info("finance table %s: its columns differ from SCHEMAS; dropped and created again", table.name)
        table.drop(conn)
    table.create(conn)
    return True


def _write(session: Session, typed: dict[str, dict[str, list]], today: date) -> dict[str, int]:
    """Replace every finance table's rows with `typed` (export.conform's columns) in the session's transaction
    (the lock held) and record the refresh; returns {finance table: rows}."""
    conn = session.connection()
    metadata, tables, refresh = finance_metadata()
    _ensure(conn, refresh)
    dictionary = metadata.tables[COLUMNS_TABLE]
    if not _ensure(conn, dictionary):
        conn.execute(dictionary.delete())
    conn.execute(dictionary.insert(), [
        {"table_name": t, "column_no": n, "column_name": c.name, "sql_type": SQL_TYPE_NAMES[c.type],
         "otedi_type": c.type, "description": c.description}
        for t, columns in documented_tables().items() for n, c in enumerate(columns, start=1)])
    earlier = set(conn.execute(select(refresh.c.table_name).distinct()).scalars())
    for stale in sorted(earlier - {t.name for t in tables.values()}):  # a table SCHEMAS no longer has
        if inspect(conn).has_table(stale):
            log.info("finance table %s is no longer exported; dropped", stale)
            Table(stale, MetaData()).drop(conn)
    counts = {}
    for name, table in tables.items():
        if not _ensure(conn, table):
            conn.execute(table.delete())
        columns = typed[name]
        rows = len(next(iter(columns.values()))) if columns else 0
        if rows:  # bulk: COPY on PostgreSQL, multi-row INSERT on SQLite (a million claims are a million rows)
            bulk.insert_columns(conn, table, {**columns, "as_of": [today] * rows, "row_no": list(range(1, rows + 1))})
        counts[table.name] = rows
    refresh_id = (conn.execute(select(func.max(refresh.c.refresh_id))).scalar() or 0) + 1
    now = models.utcnow()
    conn.execute(refresh.insert(), [{"refresh_id": refresh_id, "table_name": t, "row_count": n, "as_of": today,
                                     "refreshed_at": now} for t, n in counts.items()])
    return counts


def _snapshot(session: Session) -> Snapshot:
    with _consistent_read(session.get_bind()) as reader:
        return load_snapshot(reader)


def _refresh(target: Session | Engine | str | None, today: date | None, snap: Snapshot | None,
             read_back: bool, progress: Progress) -> tuple[dict[str, int], dict[str, pd.DataFrame] | None, date]:
    today = today or date.today()
    with _session(target) as session:
        try:
            progress(REFRESHING, 0, 3)
            snap = snap or _snapshot(session)
            progress(REFRESHING, 1, 3)
            # every table typed before anything is written: a table that does not fit its schema (ExportError)
            # leaves the previous refresh in place
            typed = {name: conform(name, frame) for name, frame in export.finance_tables(snap, today=today).items()}
            progress(REFRESHING, 2, 3)
            _lock(session)
            counts = _write(session, typed, today)
            back = _read(session.connection()) if read_back else None
            session.commit()
            progress(REFRESHING, 3, 3)
        except BaseException:
            session.rollback()
            raise
    log.info("finance tables refreshed as of %s: %s", today, ", ".join(f"{t} {n}" for t, n in counts.items()))
    return counts, back, today


def refresh_finance_tables(target: Session | Engine | str | None = None, *, today: date | None = None,
                           snap: Snapshot | None = None, progress: Progress = silent) -> dict[str, int]:
    """Recompute every finance table as of `today` (default: the date today) and replace the warehouse's
    finance_<table> tables with them in one transaction (see the module docstring); returns
    {finance table name: rows written}.

    `target`: a Session (its transaction is committed by the refresh), an Engine, a database URL, or None
    (OTEDI_DATABASE_URL). `snap`: a snapshot already read (default: one read now, before the lock). `progress`
    hears of its three stages: the snapshot read, the tables computed, the tables written and committed."""
    return _refresh(target, today, snap, read_back=False, progress=progress)[0]


def refresh_and_read(target: Session | Engine | str | None = None, *, today: date | None = None,
                     snap: Snapshot | None = None, progress: Progress = silent) -> tuple[dict[str, pd.DataFrame], date]:
    """refresh_finance_tables, and the tables as this refresh wrote them, read back inside its transaction
    (so they are exactly what was committed, whatever a concurrent twin does next): ({export name: frame},
    as_of). What export_tables(refresh=True) writes to its files."""
    _, back, as_of = _refresh(target, today, snap, read_back=True, progress=progress)
    return back, as_of


# ---------------------------------------------------------------------------------------------------------------
# Reading


@dataclass(frozen=True)
class Refresh:
    refresh_id: int
    as_of: date
    refreshed_at: datetime  # UTC
    rows: dict[str, int]  # finance table name -> rows


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _last_refresh(conn: Connection) -> Refresh | None:
    _, _, refresh = finance_metadata()
    if not inspect(conn).has_table(refresh.name):
        return None
    latest = conn.execute(select(func.max(refresh.c.refresh_id))).scalar()
    if latest is None:
        return None
    rows = conn.execute(select(refresh.c.table_name, refresh.c.row_count, refresh.c.as_of, refresh.c.refreshed_at)
                        .where(refresh.c.refresh_id == latest)).all()
    return Refresh(latest, rows[0].as_of, _utc(rows[0].refreshed_at), {r.table_name: r.row_count for r in rows})


@contextmanager
def _reader(target: Session | Engine | str | None) -> Iterator[Connection]:
    """A connection to read the finance tables in one consistent state (the caller's session, as it is)."""
    if isinstance(target, Session):
        yield target.connection()
        return
    with _consistent_read(target if isinstance(target, Engine) else db.engine(target)) as session:
        yield session.connection()


def last_refresh(target: Session | Engine | str | None = None) -> Refresh | None:
    """The latest refresh the warehouse holds (None when the finance tables were never refreshed)."""
    with _reader(target) as conn:
        return _last_refresh(conn)


def _value(column: Column, value):
    if value is not None and column.type == "datetime":
        return _utc(value)
    return value


def _checked_tables(conn: Connection) -> dict[str, Table]:
    """The finance Tables by export name, each found in the warehouse with the columns SCHEMAS declares
    (ExportError, saying to refresh, otherwise)."""
    _, tables, _ = finance_metadata()
    found = inspect(conn)
    for table in tables.values():
        if not found.has_table(table.name):
            raise ExportError(f"warehouse table {table.name} is missing: refresh the finance tables "
                              f"(otedi.analytics.warehouse_tables.refresh_finance_tables) first")
        wanted = _signature([{"name": c.name, "type": c.type, "comment": c.comment} for c in table.columns],
                            conn.dialect)
        if _signature(found.get_columns(table.name), conn.dialect) != wanted:
            raise ExportError(f"warehouse table {table.name}: its columns differ from SCHEMAS in "
                              f"otedi/analytics/export.py; refresh the finance tables to recreate it")
    return tables


def _rows_frame(name: str, rows) -> pd.DataFrame:
    schema = SCHEMAS[name]
    return pd.DataFrame({c.name: pd.Series([_value(c, r[i]) for r in rows], dtype=object)
                         for i, c in enumerate(schema)}, columns=[c.name for c in schema])


def _chunks(conn: Connection, name: str, table: Table) -> Iterator[pd.DataFrame]:
    """The table in row_no order, CHUNK_ROWS rows at a time (a server-side cursor on PostgreSQL); one empty
    frame for an empty table."""
    stmt = select(*(table.c[c.name] for c in SCHEMAS[name])).order_by(table.c.row_no)
    empty = True
    for rows in conn.execution_options(stream_results=True).execute(stmt).partitions(CHUNK_ROWS):
        empty = False
        yield _rows_frame(name, rows)
    if empty:
        yield _rows_frame(name, [])


def _read(conn: Connection) -> dict[str, pd.DataFrame]:
    """Every finance table in its declared columns (values as export.conform gives them), in row_no order."""
    out = {}
    for name, table in _checked_tables(conn).items():
        rows = conn.execute(select(*(table.c[c.name] for c in SCHEMAS[name])).order_by(table.c.row_no)).all()
        out[name] = _rows_frame(name, rows)
    return out


@contextmanager
def finance_table_chunks(target: Session | Engine | str | None = None, *, today: date | None = None
                         ) -> Iterator[tuple[date, Iterator[tuple[str, Iterator[pd.DataFrame]]]]]:
    """read_finance_tables a table at a time and CHUNK_ROWS rows at a time, so memory holds one chunk: yields
    (as_of, iterator of (export name, iterator of frames)) in SCHEMAS order, all read in one consistent
    transaction while the block runs; read each table's frames before the next table. The same checks as
    read_finance_tables (row counts included) are made before any row is read."""
    with _reader(target) as conn:
        last = _checked_refresh(conn, today)
        tables = _checked_tables(conn)
        for name, table in tables.items():
            held = conn.execute(select(func.count()).select_from(table)).scalar_one()
            _check_rows(last, name, held)
        yield last.as_of, ((name, _chunks(conn, name, table)) for name, table in tables.items())


def _checked_refresh(conn: Connection, today: date | None) -> Refresh:
    last = _last_refresh(conn)
    if last is None:
        raise ExportError("the warehouse's finance tables were never refreshed: refresh them "
                          "(otedi.analytics.warehouse_tables.refresh_finance_tables) first")
    if today is not None and last.as_of != today:
        raise ExportError(f"the warehouse's finance tables are as of {last.as_of}, not {today}: refresh "
                          f"them as of {today} first")
    return last


def _check_rows(last: Refresh, name: str, held: int) -> None:
    wrote = last.rows.get(table_name(name))
    if wrote is None or held != wrote:
        raise ExportError(f"warehouse table {table_name(name)} holds {held} rows, the latest refresh "
                          f"({last.refresh_id}) wrote {wrote}: refresh the finance tables again")


def read_finance_tables(target: Session | Engine | str | None = None, *,
                        today: date | None = None) -> tuple[dict[str, pd.DataFrame], date]:
    """The finance tables as the latest refresh wrote them, read in one consistent transaction:
    ({export name: frame in its declared columns}, as_of). ExportError, saying to refresh, when they were
    never refreshed, a table is missing or changed, or (with `today`) they are as of another date."""
    with _reader(target) as conn:
        last = _checked_refresh(conn, today)
        frames = _read(conn)
    for name, frame in frames.items():
        _check_rows(last, name, len(frame))
    return frames, last.as_of
