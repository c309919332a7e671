"""QMB: charge.qmb, the extract's flag for a Qualified Medicare Beneficiary on the date of service

A QMB (or QMB Plus) patient may not be billed Medicare deductible, coinsurance or copays
(SSA §1902(n)(3)(B); CMS MLN SE1128): otedi.accounts.qmb writes that cost sharing off. Charges loaded
before this migration were not flagged: they get false (the extract column is optional, empty is N).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 14:30:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('charge') as batch:
        batch.add_column(sa.Column('qmb', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('charge') as batch:
        batch.drop_column('qmb')
