"""A SQLite schema migration that fails halfway leaves the warehouse as it was, and `db upgrade` runs it
again (issue 11 item 9)."""

from __future__ import annotations

import shutil

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect, text

from otedi.warehouse import db

FAILING = '''"""a migration that fails after its first DDL statements"""
from alembic import op
import sqlalchemy as sa

revision = "0099"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table("half_done", sa.Column("id", sa.Integer(), primary_key=True))
    with op.batch_alter_table("charge") as batch:
        batch.add_column(sa.Column("half_done_column", sa.String(5), nullable=True))
    raise RuntimeError("killed halfway")


def downgrade():
    pass
'''


def test_failed_sqlite_migration_rolls_back_and_can_run_again(tmp_path):
    scripts = tmp_path / "migrations"
    shutil.copytree(db.MIGRATIONS, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    head = sorted(p.stem.split("_")[0] for p in (scripts / "versions").glob("0*.py"))[-1]
    bad = scripts / "versions" / "0099_half_done.py"
    bad.write_text(FAILING.replace("{head}", head))
    url = f"sqlite:///{tmp_path / 'otedi.db'}"
    cfg = db.alembic_config(url)
    cfg.set_main_option("script_location", str(scripts))
    with pytest.raises(RuntimeError, match="killed halfway"):
        command.upgrade(cfg, "head")
    engine = create_engine(url)
    with engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
        columns = {c["name"] for c in inspect(conn).get_columns("charge")}
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert "half_done" not in tables and "half_done_column" not in columns  # nothing of the failed one
    assert version == head and "ledger_entry" in tables  # the migrations before it are all in place
    bad.write_text(FAILING.replace("{head}", head).replace('    raise RuntimeError("killed halfway")\n', ""))
    command.upgrade(cfg, "head")  # the same upgrade, run again, now completes
    with engine.connect() as conn:
        assert "half_done" in inspect(conn).get_table_names()
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0099"
    engine.dispose()
