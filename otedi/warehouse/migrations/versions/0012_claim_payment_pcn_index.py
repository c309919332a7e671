"""claim payment index: CLP01 is looked up on every posting (duplicate payments under another trace) and
every hand match

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 14:10:00
"""

from alembic import op


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_claim_payment_patient_control_number', 'claim_payment', ['patient_control_number'])


def downgrade() -> None:
    op.drop_index('ix_claim_payment_patient_control_number', 'claim_payment')
