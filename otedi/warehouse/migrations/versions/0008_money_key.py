"""money key: a claim payment posts once, whatever a remittance's status says

Duplicate detection read remittance.status (a trace already posted); editing that
status would let the same payment post again. claim_payment.money_key (payer,
trace, CLP01-04, CLP07 and the occurrence in the remittance) is unique, so the
database refuses the second posting of the same money.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 12:40:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('claim_payment') as batch:
        batch.add_column(sa.Column('money_key', sa.String(length=64), nullable=True))
        batch.create_unique_constraint('uq_claim_payment_money_key', ['money_key'])


def downgrade() -> None:
    with op.batch_alter_table('claim_payment') as batch:
        batch.drop_constraint('uq_claim_payment_money_key', type_='unique')
        batch.drop_column('money_key')
