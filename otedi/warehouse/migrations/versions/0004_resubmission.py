"""resubmission: claim links; a charge may sit on several claims (original, replacement, void)

claim_line.charge_id was unique (one line per charge, ever). A replacement
(frequency 7), a void (8) or a corrected new original (1) repeats the
original's lines, so the rule becomes one line per charge per claim.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 14:30:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

# SQLite keeps 0001's unique constraints unnamed; batch mode names them by this convention to drop them.
SQLITE_NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _old_unique_name() -> str:
    return "claim_line_charge_id_key" if op.get_bind().dialect.name == "postgresql" else "uq_claim_line_charge_id"


def upgrade() -> None:
    op.create_table('claim_link',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('claim_pk', sa.Integer(), nullable=False),
    sa.Column('original_claim_pk', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('original_status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['claim_pk'], ['claim.id'], ),
    sa.ForeignKeyConstraint(['original_claim_pk'], ['claim.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('claim_pk'),
    sa.UniqueConstraint('original_claim_pk', 'kind')
    )
    with op.batch_alter_table('claim_link', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_claim_link_original_claim_pk'), ['original_claim_pk'], unique=False)

    with op.batch_alter_table('claim_line', schema=None, naming_convention=SQLITE_NAMES) as batch_op:
        batch_op.drop_constraint(_old_unique_name(), type_='unique')
        batch_op.create_unique_constraint('uq_claim_line_claim_pk_charge_id', ['claim_pk', 'charge_id'])
        batch_op.create_index(batch_op.f('ix_claim_line_charge_id'), ['charge_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('claim_line', schema=None, naming_convention=SQLITE_NAMES) as batch_op:
        batch_op.drop_index(batch_op.f('ix_claim_line_charge_id'))
        batch_op.drop_constraint('uq_claim_line_claim_pk_charge_id', type_='unique')
        batch_op.create_unique_constraint(_old_unique_name(), ['charge_id'])

    with op.batch_alter_table('claim_link', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_claim_link_original_claim_pk'))
    op.drop_table('claim_link')
