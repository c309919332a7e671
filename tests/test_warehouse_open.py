"""Opening the warehouse (issue 13, CLI: read-only commands never create an empty warehouse or its folders;
`db upgrade` is explicit in production, automatic on embedded defaults): only db.upgrade() creates anything;
a read on a missing or out-of-date warehouse is one WarehouseError naming it (password hidden) and the fix."""

from __future__ import annotations

import os
import uuid
from datetime import date

import pytest
from sqlalchemy import create_engine, inspect, make_url, text

from otedi.analytics.reconcile import claim_reconciliation
from otedi.analytics.workqueue import work_queue
from otedi.errors import ConfigError, OtediError
from otedi.warehouse import db
from tests.conftest import POSTGRES_ADMIN_URL, _postgres_unavailable

TODAY = date(2026, 3, 10)


def tree(folder) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture
def nowhere(tmp_path, monkeypatch):
    """OTEDI_HOME and OTEDI_DATABASE_URL pointing at folders that do not exist."""
    home = tmp_path / "home"
    url = f"sqlite:///{tmp_path / 'data' / 'warehouse' / 'otedi.db'}"
    monkeypatch.setenv("OTEDI_HOME", str(home))
    monkeypatch.setenv("OTEDI_DATABASE_URL", url)
    monkeypatch.delenv("OTEDI_AUTO_UPGRADE", raising=False)
    return url


def test_a_read_on_a_missing_sqlite_warehouse_creates_nothing_and_says_what_to_do(nowhere, tmp_path):
    with pytest.raises(db.WarehouseError) as caught:
        db.require_warehouse()
    assert caught.value.kind == "missing" and isinstance(caught.value, OtediError)
    assert str(caught.value) == (f"warehouse {nowhere}: the SQLite file does not exist (nor its folder); "
                                 "run `otedi db upgrade` first, or check OTEDI_DATABASE_URL")
    # The analytics open their sessions with db.session_scope(): they get the same error, create nothing.
    for read in (lambda: work_queue(today=TODAY), lambda: claim_reconciliation(today=TODAY)):
        with pytest.raises(db.WarehouseError, match="does not exist.*otedi db upgrade"):
            read()
    with pytest.raises(db.WarehouseError, match="does not exist"):
        with db.session_scope(readonly=True):
            pass
    with pytest.raises(db.WarehouseError, match="does not exist"):
        db.engine().connect()
    assert tree(tmp_path) == []  # no file, no folder, no OTEDI_HOME


def test_a_missing_file_in_an_existing_folder_is_not_created(tmp_path):
    url = f"sqlite:///{tmp_path / 'otedi.db'}"
    with pytest.raises(db.WarehouseError, match=r"the SQLite file does not exist; run `otedi db upgrade` first"):
        with db.session_scope(url) as s:
            s.execute(text("select 1"))
    assert tree(tmp_path) == []


def test_an_empty_or_old_sqlite_schema_is_refused_until_upgraded(tmp_path):
    path = tmp_path / "otedi.db"
    path.touch()  # an empty file (as an earlier otedi's read left it)
    url = f"sqlite:///{path}"
    with pytest.raises(db.WarehouseError) as caught:
        db.require_warehouse(url)
    assert caught.value.kind == "no_schema" and "it has no otedi schema (an empty database)" in str(caught.value)
    assert inspect(create_engine(url)).get_table_names() == []  # the check wrote nothing
    db.upgrade(url, "0012")
    with pytest.raises(db.WarehouseError) as caught:
        db.require_warehouse(url)
    assert caught.value.kind == "old_schema"
    assert str(caught.value) == (f"warehouse {url}: its schema is at revision 0012, this otedi needs "
                                 f"{db.head_revision()}; run `otedi db upgrade`")
    db.upgrade(url)
    assert db.require_warehouse(url) == url
    with db.session_scope(url, readonly=True) as s:
        assert s.execute(text("select count(*) from claim")).scalar() == 0
    with db.engine(url).begin() as conn:  # a newer otedi migrated it
        conn.execute(text("update alembic_version set version_num = '0099'"))
    with pytest.raises(db.WarehouseError, match="revision 0099, which this otedi does not know") as caught:
        db.require_warehouse(url)
    assert caught.value.kind == "unknown_schema"
    db.engine(url).dispose()


def test_a_readonly_session_keeps_nothing(warehouse):
    from otedi.warehouse import models

    with db.session_scope(readonly=True) as s:
        s.add(models.ControlCounter(name="isa:X", last_value=5))
        s.flush()
    with db.session_scope() as s:
        assert s.get(models.ControlCounter, "isa:X") is None


def test_errors_name_the_warehouse_with_its_password_hidden():
    url = "postgresql+psycopg://otedi:s3cr3t-pw@127.0.0.1:1/otedi"
    with pytest.raises(db.WarehouseError) as caught:
        db.require_warehouse(url)
    message = str(caught.value)
    assert caught.value.kind == "unreachable" and "s3cr3t" not in message and "\n" not in message
    assert message.startswith("warehouse postgresql+psycopg://otedi:***@127.0.0.1:1/otedi: cannot connect: ")
    assert message.endswith("; check OTEDI_DATABASE_URL and that the database server is running and reachable")
    for bad, problem in (("not a url", "not a database URL"),
                         ("postgresql+nodriver://u:pw@h/db", "no database driver"),
                         ("postgresql://u:pw@h:port/db", "not a database URL")):
        with pytest.raises(db.WarehouseError, match=problem) as caught:
            db.require_warehouse(bad)
        assert caught.value.kind == "bad_url" and "pw@" not in str(caught.value)
    assert db.describe(url) == "postgresql+psycopg://otedi:***@127.0.0.1:1/otedi"
    assert db.describe("sqlite:////var/lib/otedi/otedi.db") == "sqlite:////var/lib/otedi/otedi.db"


# --- OTEDI_AUTO_UPGRADE ----------------------------------------------------------------------------------------


def test_auto_upgrade_is_on_for_the_embedded_default_only(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("OTEDI_HOME", str(home))
    monkeypatch.delenv("OTEDI_DATABASE_URL", raising=False)
    monkeypatch.delenv("OTEDI_AUTO_UPGRADE", raising=False)
    assert db.auto_upgrade()
    assert db.auto_upgrade(f"sqlite:///{home / 'otedi.db'}")  # the same file, named explicitly
    assert not db.auto_upgrade(f"sqlite:///{tmp_path / 'elsewhere.db'}")
    assert not db.auto_upgrade("postgresql+psycopg://otedi@db:5432/otedi")
    # Embedded defaults: a writing command creates and migrates the warehouse by itself.
    assert db.prepare_warehouse() == f"sqlite:///{home / 'otedi.db'}"
    assert db.require_warehouse() and (home / "otedi.db").stat().st_mode & 0o777 == 0o600
    for value, on in (("1", True), ("yes", True), ("on", True), ("0", False), ("false", False), ("OFF", False)):
        monkeypatch.setenv("OTEDI_AUTO_UPGRADE", value)
        assert db.auto_upgrade() is on and db.auto_upgrade("postgresql+psycopg://otedi@db/otedi") is on
    monkeypatch.setenv("OTEDI_AUTO_UPGRADE", "sometimes")
    with pytest.raises(ConfigError, match="OTEDI_AUTO_UPGRADE='sometimes': use 1 .* or 0"):
        db.auto_upgrade()
    db.engine().dispose()


def test_with_auto_upgrade_off_a_writing_command_says_to_run_db_upgrade(nowhere, tmp_path, monkeypatch):
    """OTEDI_DATABASE_URL names a database of its own: schema changes are a deliberate `otedi db upgrade`."""
    with pytest.raises(db.WarehouseError) as caught:
        db.prepare_warehouse()
    assert str(caught.value) == (
        f"warehouse {nowhere}: the SQLite file does not exist (nor its folder); run `otedi db upgrade` first "
        "(schema upgrades are explicit here: OTEDI_AUTO_UPGRADE is off for this database), or check "
        "OTEDI_DATABASE_URL")
    assert tree(tmp_path) == []
    db.upgrade(nowhere, "0012")  # migrated once, by an older otedi
    with pytest.raises(db.WarehouseError, match=r"revision 0012, this otedi needs .*run `otedi db upgrade` first"):
        db.prepare_warehouse()
    monkeypatch.setenv("OTEDI_AUTO_UPGRADE", "1")  # the deployment opts in
    assert db.prepare_warehouse() == nowhere and db.require_warehouse() == nowhere
    db.engine(nowhere).dispose()


def test_the_airflow_tasks_follow_the_same_rule_and_fail_at_once_on_a_missing_schema(nowhere, tmp_path, monkeypatch):
    """The nightly tasks that write prepare the warehouse like a CLI command (no upgrade off the embedded default:
    the DAG fails at once, a retry cannot create a schema); the report task only reads and creates nothing."""
    from otedi import nightly

    nightly._prepare.cache_clear()
    for task in (lambda: nightly.practice_ids(), lambda: nightly.refresh_reconciliation("2026-03-10"),
                 lambda: nightly.write_report("2026-03-10")):
        with pytest.raises(db.WarehouseError, match="does not exist") as caught:
            task()
        assert nightly.retry_cannot_fix(caught.value)
    assert tree(tmp_path) == []
    unreachable = db.WarehouseError("postgresql://db/otedi", "cannot connect: timeout", "check it", kind="unreachable")
    assert not nightly.retry_cannot_fix(unreachable)  # Airflow retries a database that did not answer
    monkeypatch.setenv("OTEDI_AUTO_UPGRADE", "1")
    nightly._prepare.cache_clear()
    assert nightly.practice_ids()  # upgraded, then the practices
    assert db.require_warehouse() == nowhere
    db.engine(nowhere).dispose()


# --- PostgreSQL ------------------------------------------------------------------------------------------------


@pytest.fixture
def empty_postgres():
    """A PostgreSQL database of its own, never migrated (skipped without a server, unless CI requires it)."""
    reason = _postgres_unavailable()
    if reason:
        if os.environ.get("OTEDI_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    name = f"otedi_empty_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    yield url
    db.engine(url).dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def tables(url: str) -> list[str]:
    eng = create_engine(url)
    try:
        return sorted(inspect(eng).get_table_names())
    finally:
        eng.dispose()


def test_an_empty_postgresql_database_is_refused_and_left_empty(empty_postgres, monkeypatch):
    monkeypatch.setenv("OTEDI_DATABASE_URL", empty_postgres)
    monkeypatch.delenv("OTEDI_AUTO_UPGRADE", raising=False)
    with pytest.raises(db.WarehouseError) as caught:
        db.require_warehouse()
    assert caught.value.kind == "no_schema"
    assert str(caught.value) == (f"warehouse {db.describe(empty_postgres)}: it has no otedi schema (an empty "
                                 "database); run `otedi db upgrade` first, or check OTEDI_DATABASE_URL")
    with pytest.raises(db.WarehouseError, match="no otedi schema"):
        with db.session_scope(readonly=True):
            pass
    with pytest.raises(db.WarehouseError, match=r"no otedi schema.*run `otedi db upgrade` first \(schema upgrades"):
        db.prepare_warehouse()  # OTEDI_DATABASE_URL names another database: no upgrade by itself
    assert tables(empty_postgres) == []  # not even alembic_version

    db.upgrade(empty_postgres, "0012")
    with pytest.raises(db.WarehouseError, match=r"revision 0012, this otedi needs"):
        db.require_warehouse()
    db.upgrade(empty_postgres)  # `otedi db upgrade`: the explicit step
    assert db.require_warehouse() == empty_postgres and db.prepare_warehouse() == empty_postgres
    assert claim_reconciliation(today=TODAY).empty
