"""inbound widths: columns as wide as the X12 elements they store

Valid X12 could overflow a column: a procedure code (SVC01-2, up to 48), many LQ remarks joined, MIA/MOA
remarks, a 277CA TRN02 of 39-50 characters, an STC01-2 status code of up to 30. PostgreSQL refused those
values and blocked the inbox. The reader now refuses values longer than X12 allows; these columns take
every value it lets through.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 12:20:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

MESSAGE = "is append-only: post a reversing entry instead"


def _ledger_triggers_sqlite() -> None:
    """SQLite rebuilds ledger_entry to change a column (batch mode), which drops its triggers: put them back."""
    table = "ledger_entry"
    for action in ("UPDATE", "DELETE"):
        op.execute(f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} BEGIN "
                   f"SELECT RAISE(ABORT, '{table} {MESSAGE}'); END")
    op.execute(f"CREATE TRIGGER {table}_no_replace BEFORE INSERT ON {table} "
               f"WHEN EXISTS (SELECT 1 FROM {table} WHERE id = NEW.id) BEGIN "
               f"SELECT RAISE(ABORT, '{table} {MESSAGE}'); END")


def _alter(widen: bool) -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    new, old = (sa.String(80), sa.String(5)), (sa.Text(), sa.String(60))
    with op.batch_alter_table('ledger_entry') as batch:
        batch.alter_column('cpt', existing_type=new[1] if widen else new[0], type_=new[0] if widen else new[1])
        batch.alter_column('rarc', existing_type=old[1] if widen else old[0], type_=old[0] if widen else old[1])
    if sqlite:
        _ledger_triggers_sqlite()
    with op.batch_alter_table('claim_payment') as batch:
        batch.alter_column('remark_codes', existing_type=sa.String(120) if widen else sa.Text(),
                           type_=sa.Text() if widen else sa.String(120))
    with op.batch_alter_table('claim_status_event') as batch:
        batch.alter_column('patient_control_number', existing_type=sa.String(38) if widen else sa.String(50),
                           type_=sa.String(50) if widen else sa.String(38), existing_nullable=False)
        batch.alter_column('status_code', existing_type=sa.String(5) if widen else sa.String(30),
                           type_=sa.String(30) if widen else sa.String(5))


def upgrade() -> None:
    _alter(widen=True)


def downgrade() -> None:
    _alter(widen=False)
