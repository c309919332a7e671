"""ledger guards: no INSERT OR REPLACE (SQLite), no TRUNCATE (PostgreSQL) on the append-only tables

0002's triggers refuse UPDATE and DELETE. Two ways around them remained: SQLite's
INSERT OR REPLACE deletes the conflicting row without firing DELETE triggers
(unless recursive_triggers is on), and PostgreSQL's TRUNCATE fires no row
triggers. A BEFORE INSERT trigger refuses an insert whose id is taken (REPLACE
never gets to delete), and a statement trigger refuses TRUNCATE.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 11:40:00
"""

from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

APPEND_ONLY = ("ledger_entry", "provider_adjustment")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in APPEND_ONLY:
            op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                       f"FOR EACH STATEMENT EXECUTE FUNCTION otedi_append_only()")
    else:
        for table in APPEND_ONLY:
            op.execute(f"CREATE TRIGGER {table}_no_replace BEFORE INSERT ON {table} "
                       f"WHEN EXISTS (SELECT 1 FROM {table} WHERE id = NEW.id) BEGIN "
                       f"SELECT RAISE(ABORT, '{table} is append-only: post a reversing entry instead'); END")


def downgrade() -> None:
    for table in APPEND_ONLY:
        if op.get_bind().dialect.name == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_replace")
