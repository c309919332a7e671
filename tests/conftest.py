"""Shared fixtures.

`warehouse` runs a test once on SQLite and once on PostgreSQL. PostgreSQL
comes from OTEDI_TEST_POSTGRES_URL (default: the local server on
127.0.0.1:5432, user postgres); each test session creates its own database
and drops it afterwards. Without a server the PostgreSQL variant is skipped
with the reason printed, unless OTEDI_REQUIRE_POSTGRES=1 (set in CI), where
it fails instead.

Every test that uses `warehouse` and passes is also searched for PHI (issue 11 item 4): the charges it
left in the warehouse give the names, birth dates, member ids and addresses to look for, in what the test
printed and logged, the warehouse's messages and the files otedi wrote for people under tmp_path. The
totals are printed at the end of the run.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

from otedi.warehouse import db
from otedi.warehouse.models import Base
from tests.phi import leaks, output_files, phi_in_warehouse, stored_messages

ROOT = Path(__file__).resolve().parents[1]
POSTGRES_ADMIN_URL = os.environ.get(
    "OTEDI_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


CALL_REPORT = pytest.StashKey()
PHI_SCAN = {"tests": 0, "values": 0, "texts": 0}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.stash[CALL_REPORT] = report


def pytest_terminal_summary(terminalreporter):
    if PHI_SCAN["tests"]:
        terminalreporter.write_line(
            f"PHI scan: {PHI_SCAN['tests']} passing warehouse tests, {PHI_SCAN['values']} PHI values searched "
            f"in {PHI_SCAN['texts']} outputs (printed, logged, stored messages, files): none found")


def assert_no_phi(request, url: str, folder: Path) -> None:
    """Fail the test when its output carries PHI of the charges it loaded (skipped when it failed anyway)."""
    report = request.node.stash.get(CALL_REPORT, None)
    if report is None or not report.passed:
        return
    phi = phi_in_warehouse(url)
    if not phi:
        return
    texts = {"stdout": report.capstdout, "stderr": report.capstderr, "log": report.caplog,
             "stored messages": stored_messages(url), **output_files(folder)}
    found = leaks(texts, phi)
    assert found == {}, f"PHI found in the test's output: {found}"
    PHI_SCAN["tests"] += 1
    PHI_SCAN["values"] += len(phi)
    PHI_SCAN["texts"] += len(texts)


def _postgres_unavailable() -> str | None:
    try:
        eng = create_engine(POSTGRES_ADMIN_URL, connect_args={"connect_timeout": 3})
        with eng.connect() as conn:
            conn.execute(text("select 1"))
        eng.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "no server here"
        return f"PostgreSQL not reachable at {make_url(POSTGRES_ADMIN_URL).render_as_string()}: {type(exc).__name__}"


@pytest.fixture(scope="session")
def postgres_url():
    reason = _postgres_unavailable()
    if reason:
        if os.environ.get("OTEDI_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason)
        print(f"\nSKIP PostgreSQL tests: {reason}")
        pytest.skip(reason)
    name = f"otedi_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    db.upgrade(url)
    yield url
    db.engine(url).dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="module")
def openssh_server(tmp_path_factory):
    """A real OpenSSH sshd on a free loopback port with its own host and client keys.

    Skipped with the reason printed when sshd is not installed, unless
    OTEDI_REQUIRE_SSHD=1 (set in CI), where it fails instead."""
    from tests.sftp_servers import SSHD, OpenSshServer

    reason = None if SSHD.exists() and shutil.which("ssh-keygen") else f"{SSHD} or ssh-keygen not found"
    if reason:
        if os.environ.get("OTEDI_REQUIRE_SSHD") == "1":
            pytest.fail(f"OTEDI_REQUIRE_SSHD=1 but {reason} (apt-get install openssh-server)")
        print(f"\nSKIP OpenSSH tests: {reason}")
        pytest.skip(reason)
    server = OpenSshServer(tmp_path_factory.mktemp("sshd")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    db.upgrade(f"sqlite:///{path}")
    return path


def _truncate_all(url: str) -> None:
    """Empty every table between tests. The ledger refuses TRUNCATE (migration 0006); the test superuser
    switches triggers off for this session only (session_replication_role), which a deployment's
    INSERT/SELECT-only role cannot do."""
    eng = db.engine(url)
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with eng.begin() as conn:
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgresql"])
def warehouse(request, tmp_path, monkeypatch, sqlite_template) -> str:
    """A migrated, empty warehouse; OTEDI_DATABASE_URL points at it. Yields the URL."""
    if request.param == "sqlite":
        path = tmp_path / "otedi.db"
        shutil.copy(sqlite_template, path)
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("postgres_url")
        _truncate_all(url)
    monkeypatch.setenv("OTEDI_DATABASE_URL", url)
    monkeypatch.setenv("OTEDI_HOME", str(tmp_path / "home"))
    yield url
    assert_no_phi(request, url, tmp_path)
    if request.param == "sqlite":
        db.engine(url).dispose()


@pytest.fixture
def mappings(tmp_path, monkeypatch):
    """A private copy of mappings/ that OTEDI_MAPPINGS points at, for tests that edit rules or configuration
    (config and payer profiles are cached by mappings path, so each test gets its own)."""
    from otedi import config

    root = tmp_path / "mappings"
    shutil.copytree(config.mappings_dir(), root)
    monkeypatch.setenv("OTEDI_MAPPINGS", str(root))
    return root
