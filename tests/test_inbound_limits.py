"""Inbound values against X12 and the columns (issue 11 item 2), on SQLite and PostgreSQL: valid but long
values post; invalid lengths and control characters quarantine the file naming the segment; other files
of the run still post."""

from __future__ import annotations

from decimal import Decimal as D

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sqlalchemy import select

from otedi.warehouse import models
from otedi.warehouse.db import session_scope
from tests.remit_builder import interchange, remittance
from tests.test_remit_post import billed, ledger, medicare_paid_a, post, write  # noqa: F401 (fixture)

TWENTY_REMARKS = tuple(f"N{n:03d}" for n in range(100, 120))  # 20 LQ*HE segments on one line


def test_many_valid_remarks_on_a_line_post(billed, tmp_path):
    a = medicare_paid_a(billed["A"])
    a.services[0].rarc = TWENTY_REMARKS  # joined: 99 characters, more than the old 60-character column
    result = post(write(tmp_path, "remarks.835", interchange([remittance([a])])))
    assert result.status == "posted", result.message
    with session_scope() as s:
        rarcs = set(s.scalars(select(models.LedgerEntry.rarc).where(models.LedgerEntry.rarc.is_not(None))))
    assert ":".join(TWENTY_REMARKS) in rarcs


def test_invalid_lengths_and_control_characters_quarantine_only_their_file(billed, tmp_path):
    good = interchange([remittance([medicare_paid_a(billed["A"])])])
    cases = {
        "long_clp01.835": (good.replace(f"CLP*{billed['A']}*", f"CLP*{'X' * 45}*", 1), "CLP01 has 45 characters"),
        "long_st01.835": (good.replace("ST*835*", "ST*835835835*", 1), "ST01 has 9 characters"),
        "nul.835": (good.replace("N3*PO BOX 1", "N3*PO BOX\x001", 1), "control character (byte 0x00)"),
        # N104 allows 80 characters, but an XX id is an NPI: ten digits, the payee_npi column's width
        "long_npi.835": (good.replace("XX*1234567893", "XX*12345678939", 1), "N104 with qualifier XX is not a "
                                                                            "10-digit NPI (11 characters)"),
    }
    for name, (text, expected) in cases.items():
        result = post(write(tmp_path, name, text))
        assert result.status == "quarantined" and expected in result.message, (name, result.message)
        assert "segment" in result.message.lower()
    assert ledger() == {}  # nothing of them posted
    assert post(write(tmp_path, "good.835", good)).status == "posted"  # the run goes on
    assert ledger(billed["A"])["payment"] == D("65.86")


def test_editing_a_remittance_status_cannot_post_its_money_twice(billed, tmp_path):
    # Duplicate detection reads remittance.status; the unique money key refuses the second posting even
    # if someone edits that status (issue 11 item 10).
    import pytest
    from sqlalchemy import update
    from sqlalchemy.exc import IntegrityError

    text = interchange([remittance([medicare_paid_a(billed["A"])], trace="T-ONCE")])
    assert post(write(tmp_path, "first.835", text)).status == "posted"
    with session_scope() as s:
        s.execute(update(models.Remittance).values(status="held"))
    # another interchange number (ISA13 and IEA02): another file hash, the same money
    copy = text.replace("*000000001*", "*000000002*").replace("IEA*1*000000001", "IEA*1*000000002")
    with pytest.raises(IntegrityError):
        post(write(tmp_path, "copy.835", copy))
    assert ledger(billed["A"])["payment"] == D("65.86")  # once

MUTATIONS = st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from([
    "\x00", "*", "~", ":", "^", "X" * 60, "9" * 20, "Ä", "\r\n", "", "*" * 5, "LQ*HE*" + "N1" * 20 + "~",
])), min_size=1, max_size=4)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutations=MUTATIONS)
def test_hostile_835s_never_crash_posting_and_never_post_half(billed, tmp_path, mutations):
    # Fuzzing the reader and the poster against both databases (issue 11): whatever bytes arrive, the file is
    # posted, held or quarantined with a message - never an exception - and a quarantined file posts nothing.
    import uuid

    trace = f"F{uuid.uuid4().hex[:10]}"
    text = interchange([remittance([medicare_paid_a(billed["A"])], trace=trace)])
    for at, insert in mutations:
        at %= len(text)
        text = text[:at] + insert + text[at:]
    before = ledger()
    path = tmp_path / f"{trace}.835"
    path.write_bytes(text.encode("utf-8"))
    result = post(path)
    assert result.status in ("posted", "held", "partly_held", "quarantined", "already_posted")
    if result.status == "quarantined":
        assert result.message and ledger() == before
