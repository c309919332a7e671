"""audit: every human action (release, void, write-off, accept, match ...) is recorded, append-only

One row per action: who, when, what it was done to, the person's note and what
it changed (ids, codes, statuses and amounts). Like the ledger, the table
refuses UPDATE, DELETE, INSERT OR REPLACE (SQLite) and TRUNCATE (PostgreSQL).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 13:40:00
"""

from alembic import op
import sqlalchemy as sa

from otedi.warehouse.migrations.append_only import guard


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

TABLE = "audit_event"
REFUSAL = f"{TABLE} is append-only: record a new action instead"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('actor', sa.String(length=64), nullable=False),
        sa.Column('action', sa.String(length=32), nullable=False),
        sa.Column('subject', sa.String(length=80), nullable=False),
        sa.Column('note', sa.Text(), nullable=False),
        sa.Column('changes', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_audit_event_subject', TABLE, ['subject'])
    guard(TABLE, REFUSAL)

def downgrade() -> None:
    op.drop_index('ix_audit_event_subject', TABLE)
    op.drop_table(TABLE)
