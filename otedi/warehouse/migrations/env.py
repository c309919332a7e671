"""Alembic environment: runs migrations against the URL set by otedi.warehouse.db.

Each migration runs in one transaction with its version-table update, on PostgreSQL and on SQLite
(which supports transactional DDL, but Python's sqlite3 module commits before every DDL statement
unless told not to): a migration killed or failing halfway leaves the schema as it was, and the next
`otedi db upgrade` simply runs it again. SQLite takes the write lock at BEGIN, so a concurrent upgrade
waits for this one instead of migrating the same snapshot.
"""

from alembic import context
from sqlalchemy import create_engine, event

from otedi.warehouse.models import Base

url = context.config.get_main_option("sqlalchemy.url")


def _managed_here(obj, name, type_, reflected, compare_to) -> bool:
    """The finance_* tables are rebuilt by otedi.analytics.warehouse_tables, not by migrations: autogenerate
    and `alembic check` leave them alone."""
    return not (type_ == "table" and reflected and compare_to is None and (name or "").startswith("finance_"))


if context.is_offline_mode():
    context.configure(url=url, target_metadata=Base.metadata, literal_binds=True, include_object=_managed_here)
    with context.begin_transaction():
        context.run_migrations()
else:
    sqlite = url.startswith("sqlite")
    connectable = create_engine(url, connect_args={"timeout": 60} if sqlite else {})
    if sqlite:
        @event.listens_for(connectable, "connect")
        def _driver_transactions_off(dbapi_connection, _record):
            dbapi_connection.isolation_level = None  # SQLAlchemy's BEGIN below then covers the DDL too

        @event.listens_for(connectable, "begin")
        def _begin_immediate(connection):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
    with connectable.connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=sqlite,
                          transaction_per_migration=True, include_object=_managed_here)
        with context.begin_transaction():
            context.run_migrations()
    connectable.dispose()
