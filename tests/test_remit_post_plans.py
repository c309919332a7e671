"""835 posting on PostgreSQL: the posting's statements are planned for their own values (sent unprepared), and
the connection is handed back as it was."""

from decimal import Decimal as D

import pytest
from sqlalchemy import event

from otedi.remit import post as post_module
from otedi.remit.post import post_remittance_file
from otedi.warehouse import db
from otedi.warehouse.db import session_scope
from tests.remit_builder import Clp, Svc, interchange, remittance


@pytest.fixture
def postgres_warehouse(warehouse):
    if not warehouse.startswith("postgresql"):
        pytest.skip("psycopg's prepared statements: PostgreSQL only")
    return warehouse


def test_lookups_of_many_batches_are_not_prepared_and_the_connection_is_restored(postgres_warehouse, tmp_path,
                                                                               monkeypatch):
    """psycopg prepares a statement from its 5th run, and PostgreSQL's generic plan for the earlier-payments
    lookup walked every payment of the remittance: 8 batches of one claim each run it 8 times, never prepared."""
    monkeypatch.setattr(post_module, "BATCH", 1)
    claims = [Clp(f"ZZ-PLAN-{n}", icn=f"ICN-P{n}", services=[Svc("97110", D("50.00"), D("30.00"),
                                                                 [("CO", "45", D("20.00"))])]) for n in range(8)]
    path = tmp_path / "plans.835"
    path.write_text(interchange([remittance(claims, trace="PLAN-1", st="0001")]))
    thresholds: list = []

    def seen(conn, cursor, statement, params, context, executemany):
        if statement.startswith("SELECT claim_payment.claim_pk"):
            thresholds.append(conn.connection.driver_connection.prepare_threshold)

    engine = db.engine(postgres_warehouse)
    event.listen(engine, "before_cursor_execute", seen)
    try:
        with session_scope() as session:
            before = session.connection().connection.driver_connection.prepare_threshold
            result = post_remittance_file(session, path)
            after = session.connection().connection.driver_connection.prepare_threshold
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert [(t.status, t.unmatched) for t in result.transactions] == [("posted", 8)]
    assert thresholds == [None] * 8
    assert before == after == 5  # psycopg's default, back for the caller's next statements
