"""disciplines, assistants, plans of care, MSP: new charge columns; therapy used at other providers

charge.rendering_role widens to 4 characters (SLPA); the supervising therapist,
plan-of-care dates, progress report date and MSP insurance type come from the
extract. external_therapy_usage holds year-to-date therapy amounts from other
providers for the KX threshold.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 10:30:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

NEW_CHARGE_COLUMNS = (
    ('supervising_npi', sa.String(length=10)),
    ('supervising_last_name', sa.String(length=60)),
    ('supervising_first_name', sa.String(length=35)),
    ('plan_of_care_start', sa.Date()),
    ('plan_of_care_signed_date', sa.Date()),
    ('progress_report_date', sa.Date()),
    ('msp_type', sa.String(length=2)),
)


def upgrade() -> None:
    with op.batch_alter_table('charge') as batch:
        batch.alter_column('rendering_role', existing_type=sa.String(length=3), type_=sa.String(length=4),
                           existing_nullable=False)
        for name, type_ in NEW_CHARGE_COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))
    op.create_table('external_therapy_usage',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('patient_id', sa.String(length=64), nullable=False),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('bucket', sa.String(length=8), nullable=False),
    sa.Column('amount', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('as_of', sa.Date(), nullable=False),
    sa.Column('source', sa.String(length=60), nullable=False),
    sa.Column('file_name', sa.String(length=255), nullable=False),
    sa.Column('row_number', sa.Integer(), nullable=False),
    sa.Column('loaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('patient_id', 'year', 'bucket', 'as_of', 'source', name='uq_external_therapy_usage_report'),
    )
    op.create_index(op.f('ix_external_therapy_usage_patient_id'), 'external_therapy_usage', ['patient_id'],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_external_therapy_usage_patient_id'), table_name='external_therapy_usage')
    op.drop_table('external_therapy_usage')
    with op.batch_alter_table('charge') as batch:
        for name, _ in reversed(NEW_CHARGE_COLUMNS):
            batch.drop_column(name)
        batch.alter_column('rendering_role', existing_type=sa.String(length=4), type_=sa.String(length=3),
                           existing_nullable=False)
