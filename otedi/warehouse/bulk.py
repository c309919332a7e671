"""Many rows in few statements, for the posting of large files (an 835 of 20,000 claims writes ~200,000 rows).

- `reserve_ids`: primary keys for rows that other rows of the same write point at (a claim payment's ledger
  entries), known before anything is inserted.
- `insert_rows`: COPY on PostgreSQL; multi-row INSERT ... VALUES on SQLite, a bounded number of bound
  parameters per statement (SQLite's limit is 999 before 3.32). One statement per few dozen rows also
  keeps SQLite from journaling every row's pages apart, which its append-only triggers otherwise cost.

Values are converted by the column types' own bind processing, as the ORM would store them. A driver error is
raised as SQLAlchemy's (an IntegrityError stays one) without the statement's parameters.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import chain

from sqlalchemy import Connection, Table, text
from sqlalchemy.exc import DBAPIError

SQLITE_PARAMETERS = 999  # bound parameters per statement on every SQLite version


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
    if not rows:
        return
    columns = list(rows[0])
    if connection.dialect.name == "postgresql":
        _copy(connection, table, columns, rows)
    else:
        _multi_row_insert(connection, table, columns, rows)


def _copy(connection: Connection, table: Table, columns: list[str], rows: Sequence[dict]) -> None:
    statement = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
    with _driver_errors(connection, statement), connection.connection.driver_connection.cursor() as cursor:
        with cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row([row[c] for c in columns])


def _multi_row_insert(connection: Connection, table: Table, columns: list[str], rows: Sequence[dict]) -> None:
    dialect = connection.dialect
    processors = [table.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in columns]
    per_statement = max(1, SQLITE_PARAMETERS // len(columns))
    head = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES "
    one = "(" + ", ".join(["?"] * len(columns)) + ")"
    full = head + ", ".join([one] * per_statement)
    for start in range(0, len(rows), per_statement):
        batch = rows[start:start + per_statement]
        by_column = []  # converted column by column, then laid out row by row
        for column, process in zip(columns, processors):
            values = [row[column] for row in batch]
            by_column.append(values if process is None else [None if v is None else process(v) for v in values])
        statement = full if len(batch) == per_statement else head + ", ".join([one] * len(batch))
        connection.exec_driver_sql(statement, tuple(chain.from_iterable(zip(*by_column))))


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
