"""otedi.warehouse.bulk: many rows in few statements (COPY on PostgreSQL, multi-row INSERT on SQLite)."""

from decimal import Decimal as D

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from otedi.warehouse import models
from otedi.warehouse.bulk import SQLITE_PARAMETERS, insert_rows, reserve_ids
from otedi.warehouse.db import session_scope

TABLE = models.ClaimPayment.__table__


def remittance(session) -> int:
    inbound = models.InboundFile(file_name="bulk.835", sha256="b" * 64, size=1, kind="835", status="posted")
    session.add(inbound)
    session.flush()
    row = models.Remittance(inbound_file_id=inbound.id, transaction_control_number="0001", payer_key="P",
                            trace_number="T", payment_amount=D("1"), credit_debit="C", payment_method="ACH",
                            claims_paid_total=D("1"), provider_adjustment_total=D("0"), claims=1, matched=0,
                            unmatched=0, status="posted")
    session.add(row)
    session.flush()
    return row.id


def payment(pk: int, remittance_id: int, n: int, key: str | None = None) -> dict:
    return dict(id=pk, remittance_id=remittance_id, claim_pk=None, patient_control_number=f"PCN{n}",
                status_code="1", charge_amount=D("100.00") + n, paid_amount=D(f"{n}.07"),
                patient_responsibility=None if n % 2 else D("1.5"), payer_claim_number=f"ICN{n}",
                crossover_payer=None, remark_codes=None, money_key=key or f"key-{n}")


def test_rows_over_several_statements_read_back_as_written(warehouse):
    count = 3 * (SQLITE_PARAMETERS // len(TABLE.columns)) + 5  # three full SQLite statements and a short one
    with session_scope() as s:
        rem = remittance(s)
        ids = reserve_ids(s.connection(), TABLE, count)
        assert len(set(ids)) == count
        insert_rows(s.connection(), TABLE, [payment(pk, rem, n) for n, pk in enumerate(ids)])
    with session_scope() as s:
        stored = s.scalars(select(models.ClaimPayment).order_by(models.ClaimPayment.id)).all()
        more = reserve_ids(s.connection(), TABLE, 2)
    assert [p.id for p in stored] == ids and not set(more) & set(ids)
    assert [(p.patient_control_number, p.charge_amount, p.paid_amount, p.patient_responsibility) for p in stored] == [
        (f"PCN{n}", D("100.00") + n, D(f"{n}.07"), None if n % 2 else D("1.50")) for n in range(count)]


def test_a_unique_key_refuses_a_bulk_row_as_an_integrity_error_with_its_parameters_hidden(warehouse):
    with session_scope() as s:
        rem = remittance(s)
        first, second = reserve_ids(s.connection(), TABLE, 2)
        insert_rows(s.connection(), TABLE, [payment(first, rem, 1, key="the-money")])
        with pytest.raises(IntegrityError) as refused:
            insert_rows(s.connection(), TABLE, [payment(second, rem, 2, key="the-money")])
        s.rollback()
    assert refused.value.orig is not None and refused.value.hide_parameters  # as the engine's own statements
