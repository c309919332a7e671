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
