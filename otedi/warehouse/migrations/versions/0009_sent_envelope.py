"""sent envelope: each 837P file keeps the ISA06/ISA08 and GS02/GS03 it was sent with

A 999 was matched to our file by its control numbers and the clearinghouse and
practice ids as configured when the 999 arrived; after a configuration change
a 999 for an older file could match the wrong file or none. The ids the file
actually carried are now stored with it (rows written before stay null and
fall back to the configuration).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 13:10:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

COLUMNS = ('isa_sender_id', 'isa_receiver_id', 'gs_sender_code', 'gs_receiver_code')


def upgrade() -> None:
    with op.batch_alter_table('claim_file') as batch:
        for name in COLUMNS:
            batch.add_column(sa.Column(name, sa.String(length=15), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('claim_file') as batch:
        for name in reversed(COLUMNS):
            batch.drop_column(name)
