"""patient accounts: patient payments and refunds, write-offs, and the account ledger they post to

- patient_payment: money a patient paid (or was refunded): method, reference, date;
  the same reference, amount and date for one patient is one payment (unique).
- account_adjustment: a write-off a person asked for (reason from mappings/ar/
  adjustment_reasons.yaml); above the reason's limit it waits for a second person.
- account_entry: what the practice's own actions post, append-only like the 835
  ledger (ledger_entry holds what payers said): patient payments applied to a
  claim, unapplied credit (+ overpaid, - applied or refunded), write-offs.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 13:50:00
"""

from alembic import op
import sqlalchemy as sa

from otedi.warehouse.migrations.append_only import guard


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

MONEY = sa.Numeric(12, 2)
APPEND_ONLY = "account_entry"
REFUSAL = f"{APPEND_ONLY} is append-only: post a reversing entry instead"


def upgrade() -> None:
    op.create_table(
        'patient_payment',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('practice_id', sa.String(length=32), nullable=False),
        sa.Column('patient_id', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('method', sa.String(length=8), nullable=False),
        sa.Column('reference', sa.String(length=50), nullable=False),
        sa.Column('amount', MONEY, nullable=False),
        sa.Column('received_on', sa.Date(), nullable=False),
        sa.Column('source', sa.String(length=80), nullable=False),
        sa.Column('audit_event_id', sa.Integer(), sa.ForeignKey('audit_event.id'), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('practice_id', 'patient_id', 'kind', 'reference', 'amount', 'received_on',
                            name='uq_patient_payment_identity'),
    )
    op.create_index('ix_patient_payment_patient', 'patient_payment', ['practice_id', 'patient_id'])
    op.create_table(
        'account_adjustment',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('claim_pk', sa.Integer(), sa.ForeignKey('claim.id'), nullable=False),
        sa.Column('reason', sa.String(length=24), nullable=False),
        sa.Column('side', sa.String(length=9), nullable=False),
        sa.Column('amount', MONEY, nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('requested_by', sa.String(length=64), nullable=False),
        sa.Column('decided_by', sa.String(length=64), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_account_adjustment_claim_pk', 'account_adjustment', ['claim_pk'])
    op.create_table(
        APPEND_ONLY,
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('practice_id', sa.String(length=32), nullable=False),
        sa.Column('patient_id', sa.String(length=64), nullable=False),
        sa.Column('claim_pk', sa.Integer(), sa.ForeignKey('claim.id'), nullable=True),
        sa.Column('entry_type', sa.String(length=24), nullable=False),
        sa.Column('side', sa.String(length=9), nullable=False),
        sa.Column('reason', sa.String(length=24), nullable=True),
        sa.Column('amount', MONEY, nullable=False),
        sa.Column('patient_payment_id', sa.Integer(), sa.ForeignKey('patient_payment.id'), nullable=True),
        sa.Column('account_adjustment_id', sa.Integer(), sa.ForeignKey('account_adjustment.id'), nullable=True),
        sa.Column('audit_event_id', sa.Integer(), sa.ForeignKey('audit_event.id'), nullable=False),
        sa.Column('posted_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_account_entry_claim_pk', APPEND_ONLY, ['claim_pk'])
    op.create_index('ix_account_entry_patient', APPEND_ONLY, ['practice_id', 'patient_id'])
    guard(APPEND_ONLY, REFUSAL)

def downgrade() -> None:
    op.drop_table(APPEND_ONLY)
    op.drop_table('account_adjustment')
    op.drop_table('patient_payment')
