"""Many rows into one table at once, inside the session's transaction (issue 14: a charge extract has
hundreds of thousands of rows, and the ORM spends tens of microseconds on each object it flushes).

PostgreSQL gets COPY (binary); SQLite one prepared INSERT run for every row (executemany). The values are Python
values of the columns' types (str, int, date, datetime, Decimal, bool, None), converted by each column's own
SQLAlchemy type as a flush would convert them, so the stored rows are the ones the ORM would store. Column
defaults are not applied: the caller gives every column a value (a timestamp from models.utcnow(), so that
stamped_as_of applies). A database error is raised as SQLAlchemy's (IntegrityError, OperationalError, ...)
with the statement's values hidden, as for any statement.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import islice

from sqlalchemy import Table
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

CHUNK = 10_000  # rows per executemany or COPY write between two progress reports


def insert_rows(session: Session, table: Table, columns: dict[str, list],
                progress: Callable[[int], None] | None = None) -> int:
    """Insert one row per position of the equally long lists in `columns` (column name -> values); `progress`
    hears the rows written so far after each chunk. Returns the number of rows."""
    connection = session.connection()
    dialect = connection.dialect
    names = list(columns)
    values = [_for_database(table.c[name].type.dialect_impl(dialect).bind_processor(dialect), columns[name])
              for name in names]
    rows = zip(*values)
    total = len(values[0]) if values else 0
    quoted = ", ".join(dialect.identifier_preparer.quote(name) for name in names)
    target = dialect.identifier_preparer.format_table(table)
    if dialect.name == "postgresql":
        statement = f"COPY {target} ({quoted}) FROM STDIN (FORMAT BINARY)"
        try:
            with connection.connection.driver_connection.cursor() as cursor, cursor.copy(statement) as copy:
                # binary needs each column's type: VARCHAR(64) -> varchar, NUMERIC(12, 2) -> numeric, ...
                copy.set_types([table.c[name].type.compile(dialect=dialect).split("(")[0].lower() for name in names])
                for done in range(0, total, CHUNK):
                    for row in islice(rows, CHUNK):
                        copy.write_row(row)
                    if progress:
                        progress(min(done + CHUNK, total))
        except dialect.loaded_dbapi.Error as exc:
            raise DBAPIError.instance(statement, None, exc, dialect.loaded_dbapi.Error, hide_parameters=True,
                                      dialect=dialect) from None
        return total
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    statement = f"INSERT INTO {target} ({quoted}) VALUES ({', '.join([mark] * len(names))})"
    for done in range(0, total, CHUNK):
        connection.exec_driver_sql(statement, list(islice(rows, CHUNK)))
        if progress:
            progress(min(done + CHUNK, total))
    return total


def _for_database(process, values: list) -> list:
    """The column's values as its type binds them (once per distinct value: dates, amounts and timestamps
    repeat on many rows)."""
    if process is None:
        return values
    converted = {value: process(value) for value in set(values)}
    return [converted[value] for value in values]
