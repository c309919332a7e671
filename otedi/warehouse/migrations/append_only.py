"""The append-only guard migrations give a table: no UPDATE, no DELETE, no INSERT OR REPLACE (SQLite), no
TRUNCATE (PostgreSQL). PostgreSQL uses the function otedi_append_only() of migration 0002."""

from alembic import op


def guard(table: str, refusal: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                   f"FOR EACH ROW EXECUTE FUNCTION otedi_append_only()")
        op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                   f"FOR EACH STATEMENT EXECUTE FUNCTION otedi_append_only()")
        return
    for action in ("UPDATE", "DELETE"):
        op.execute(f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} BEGIN "
                   f"SELECT RAISE(ABORT, '{refusal}'); END")
    op.execute(f"CREATE TRIGGER {table}_no_replace BEFORE INSERT ON {table} "
               f"WHEN EXISTS (SELECT 1 FROM {table} WHERE id = NEW.id) BEGIN SELECT RAISE(ABORT, '{refusal}'); END")
