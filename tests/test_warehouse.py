from decimal import Decimal

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.exc import IntegrityError

from otedi.warehouse import control_numbers, db, models


def test_migrations_create_every_model_table(warehouse):
    tables = set(inspect(db.engine(warehouse)).get_table_names())
    assert {t.name for t in models.Base.metadata.sorted_tables} <= tables
    assert "alembic_version" in tables


def test_upgrade_twice_is_harmless(warehouse):
    db.upgrade(warehouse)
    db.upgrade(warehouse)
    with db.session_scope(warehouse) as s:
        assert s.scalar(select(models.ControlCounter).limit(1)) is None


def test_control_numbers_count_up_per_counter_and_survive_sessions(warehouse):
    with db.session_scope(warehouse) as s:
        assert [control_numbers.allocate(s, "isa:DEMOCH") for _ in range(3)] == [1, 2, 3]
        assert control_numbers.allocate(s, "gs:DEMOCH") == 1
    with db.session_scope(warehouse) as s:
        assert control_numbers.allocate(s, "isa:DEMOCH") == 4


def test_a_rolled_back_number_is_handed_out_again_never_a_committed_one(warehouse):
    with db.session_scope(warehouse) as s:
        assert control_numbers.allocate(s, "isa:X") == 1
    with pytest.raises(RuntimeError):
        with db.session_scope(warehouse) as s:
            assert control_numbers.allocate(s, "isa:X") == 2
            raise RuntimeError("file not recorded")
    with db.session_scope(warehouse) as s:
        assert control_numbers.allocate(s, "isa:X") == 2


def test_extract_sha256_is_a_natural_key(warehouse):
    with pytest.raises(IntegrityError):
        with db.session_scope(warehouse) as s:
            for _ in range(2):
                s.add(models.ExtractFile(file_name="a.csv", sha256="f" * 64, rows=1, accepted=1, rejected=0))
                s.flush()


def test_money_round_trips_as_decimal(warehouse):
    with db.session_scope(warehouse) as s:
        s.add(models.ClaimFile(file_name="f.837", path="/x/f.837", sha256="0" * 64, size=1, practice_id="P",
                               clearinghouse_id="C", interchange_control_number=1, group_control_number=1,
                               transaction_control_number=1, claims=1, lines=1, total_charge=Decimal("1234.56"),
                               status="ready"))
    with db.session_scope(warehouse) as s:
        assert s.scalar(select(models.ClaimFile.total_charge)) == Decimal("1234.56")


def test_the_ledger_refuses_updates_and_deletes(warehouse):
    from sqlalchemy import delete, text, update

    with db.session_scope(warehouse) as s:
        f = models.InboundFile(file_name="r.835", sha256="a" * 64, size=1, kind="835", status="posted")
        s.add(f)
        s.flush()
        r = models.Remittance(inbound_file_id=f.id, transaction_control_number="1", payer_key="X", trace_number="T",
                              payment_amount=Decimal("10"), credit_debit="C", payment_method="ACH",
                              claims_paid_total=Decimal("10"), provider_adjustment_total=Decimal("0"), claims=1,
                              matched=0, unmatched=1, status="posted")
        s.add(r)
        s.flush()
        cp = models.ClaimPayment(remittance_id=r.id, patient_control_number="OTX", status_code="1",
                                 charge_amount=Decimal("10"), paid_amount=Decimal("10"))
        s.add(cp)
        s.flush()
        s.add(models.LedgerEntry(remittance_id=r.id, claim_payment_id=cp.id, entry_type="payment",
                                 amount=Decimal("10.00")))
    for statement in (update(models.LedgerEntry).values(amount=Decimal("0")), delete(models.LedgerEntry)):
        with pytest.raises(Exception) as err:
            with db.session_scope(warehouse) as s:
                s.execute(statement)
        assert "append-only" in str(err.value)
    with db.session_scope(warehouse) as s:
        assert s.scalar(select(models.LedgerEntry.amount)) == Decimal("10.00")
