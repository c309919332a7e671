"""Many rows in few statements, for the writes of large files (an 835 of 20,000 claims writes ~200,000 rows, a
charge extract hundreds of thousands of charges; the ORM spends tens of microseconds on each object it flushes).

- `reserve_ids`: primary keys for rows that other rows of the same write point at (a claim payment's ledger
  entries), known before anything is inserted.
- `insert_rows` (rows as dicts) and `insert_columns` (columns as lists): COPY (binary) on PostgreSQL; multi-row
  INSERT ... VALUES on SQLite, a bounded number of bound parameters per statement (SQLite's limit is 999 before
  3.32). One statement per few dozen rows also keeps SQLite from journaling every row's pages apart, which its
  append-only triggers otherwise cost.

Values are converted by the column types' own bind processing, as the ORM would store them (once per distinct
value: dates, amounts and timestamps repeat on many rows). Column defaults are not applied: every column gets
a value from the caller (a timestamp from models.utcnow(), so that stamped_as_of applies). A driver error is
raised as SQLAlchemy's (an IntegrityError stays one) without the statement's parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from itertools import chain, islice

from sqlalchemy import Connection, Table, text
from sqlalchemy.exc import DBAPIError

SQLITE_PARAMETERS = 999  # bound parameters per statement on every SQLite version
CHUNK = 10_000  # rows written between two progress reports


def reserve_ids(connection: Connection, table: Table, count: int) -> list[int]:
    """`count` new primary keys of `table` (an integer `id`). PostgreSQL: from its sequence, so concurrent
    writers never collide. SQLite: after the largest id, which is safe because the transaction must already
    hold the database's write lock (it wrote before), so nobody else inserts until it commits; a mistaken
    caller would meet the primary key, never a wrong row."""
    if count <= 0:
        return []
    if connection.dialect.name == "postgresql":
        return list(connection.execute(
            text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :count)"),
            {"table": table.name, "count": count}).scalars())
    largest = connection.execute(text(f"SELECT coalesce(max(id), 0) FROM {table.name}")).scalar_one()
    return list(range(largest + 1, largest + 1 + count))


def insert_rows(connection: Connection, table: Table, rows: Sequence[dict]) -> None:
    """Insert `rows` (dicts with the same keys, every column a value) into `table`."""
    if rows:
        insert_columns(connection, table, {column: [row[column] for row in rows] for column in rows[0]})


def insert_columns(connection: Connection, table: Table, columns: dict[str, list],
                   progress: Callable[[int], None] | None = None) -> None:
    """Insert one row per position of the equally long lists in `columns` (column name -> values); `progress`
    hears the number of rows written so far after each CHUNK of them."""
    names = list(columns)
    total = len(columns[names[0]]) if names else 0
    dialect = connection.dialect
    rows = zip(*(_converted(table.c[name].type.dialect_impl(dialect).bind_processor(dialect), columns[name])
                 for name in names))
    write = _copy if dialect.name == "postgresql" else _multi_row_insert
    for done in range(0, total, CHUNK):
        write(connection, table, names, list(islice(rows, CHUNK)))
        if progress:
            progress(min(done + CHUNK, total))


def _converted(process, values: list) -> list:
    if process is None:
        return values
    converted = {value: process(value) for value in set(values) if value is not None}
    return [None if value is None else converted[value] for value in values]


def _quoted(connection: Connection, columns: list[str]) -> list[str]:
    """Column names as SQL identifiers (quoted only where a name needs it, e.g. finance_ar_aging's "0-30")."""
    return [connection.dialect.identifier_preparer.quote(c) for c in columns]


def _copy(connection: Connection, table: Table, columns: list[str], rows: list[tuple]) -> None:
    statement = f"COPY {table.name} ({', '.join(_quoted(connection, columns))}) FROM STDIN (FORMAT BINARY)"
    # binary needs each column's type, by name: VARCHAR(64) -> varchar, NUMERIC(12, 2) -> numeric, ...
    types = [table.c[c].type.compile(dialect=connection.dialect).split("(")[0].lower() for c in columns]
    with _driver_errors(connection, statement), connection.connection.driver_connection.cursor() as cursor:
        with cursor.copy(statement) as copy:
            copy.set_types(types)
            for row in rows:
                copy.write_row(row)


def _multi_row_insert(connection: Connection, table: Table, columns: list[str], rows: list[tuple]) -> None:
    per_statement = max(1, SQLITE_PARAMETERS // len(columns))
    head = f"INSERT INTO {table.name} ({', '.join(_quoted(connection, columns))}) VALUES "
    one = "(" + ", ".join(["?"] * len(columns)) + ")"
    full = head + ", ".join([one] * per_statement)
    for start in range(0, len(rows), per_statement):
        batch = rows[start:start + per_statement]
        statement = full if len(batch) == per_statement else head + ", ".join([one] * len(batch))
        connection.exec_driver_sql(statement, tuple(chain.from_iterable(batch)))


@contextmanager
def _driver_errors(connection: Connection, statement: str) -> Iterator[None]:
    """A driver error as SQLAlchemy raises it for its own statements (an IntegrityError for a unique key), with
    the parameters hidden: COPY bypasses SQLAlchemy's execution."""
    error = connection.dialect.loaded_dbapi.Error
    try:
        yield
    except error as exc:
        raise DBAPIError.instance(statement, None, exc, error, hide_parameters=True,
                                  dialect=connection.dialect) from exc
