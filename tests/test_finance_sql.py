"""The finance sums done in SQL (otedi.analytics.snapshot: the ledger per claim, line and remittance in integer
cents) against the same sums done in Python over every ledger entry as Decimal, on a warehouse the scale
benchmark synthesises (paid, CO-45 and CO-253, PR, denials, reversals), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from sqlalchemy import select

from benchmarks.scale import synthesise
from otedi.analytics.snapshot import POSTED_TYPES, SEQUESTRATION, load_snapshot, money_out
from otedi.warehouse import db, models


def _python_sums(url: str) -> tuple[dict, dict, dict]:
    """(per claim, per line, per remittance) -> {column: cents}, summed entry by entry as Decimal."""
    per = (defaultdict(lambda: defaultdict(Decimal)), defaultdict(lambda: defaultdict(Decimal)),
           defaultdict(lambda: defaultdict(Decimal)))
    le = models.LedgerEntry
    with db.session_scope(url) as session:
        for claim, line, remit, kind, carc, amount in session.execute(select(
                le.claim_pk, le.claim_line_pk, le.remittance_id, le.entry_type, le.carc, le.amount)):
            column = POSTED_TYPES.get(kind)
            for sums, key in zip(per, (claim, line, remit)):
                if column:
                    sums[key][column] += amount
                if carc == SEQUESTRATION and sums is not per[2]:
                    sums[key]["sequestration"] += amount
            if line is None:
                per[0][claim]["claim_level"] += amount
    return tuple({k: {c: int(v * 100) for c, v in sums.items()} for k, sums in table.items()} for table in per)


def test_ledger_sums_in_sql_are_the_entries_summed_exactly(warehouse):
    counts = synthesise(warehouse, 400, seed=7)
    assert counts["ledger_entry"] > 2_000 and counts["claim"] >= 400
    snap = load_snapshot()
    claims, lines, remittances = _python_sums(warehouse)
    for frame, expected in ((snap.posted_claims, claims), (snap.posted_lines, lines),
                            (snap.posted_remittances, remittances)):
        assert len(frame) == len(expected)
        for key, sums in expected.items():
            row = frame.loc[key]
            assert {c: int(row[c]) for c in sums} == sums, key
            assert all(int(row[c]) == 0 for c in frame.columns if c not in sums), key
    # the synthesised shape: some reversals net a claim to zero, Medicare's sequestration is inside contractual
    assert (snap.posted_claims["sequestration"] > 0).sum() > 50
    assert ((snap.posted_claims["paid"] == 0) & (snap.posted_claims["contractual"] == 0)).any()


def test_money_out_gives_exact_dollars():
    import pandas as pd

    frame = pd.DataFrame({"a": [0, 5, -46, 123456789012], "b": pd.array([None, 1, -1, 250], dtype="Int64")})
    out = money_out(frame, ["a", "b"])
    assert [str(v) for v in out["a"]] == ["0.00", "0.05", "-0.46", "1234567890.12"]
    assert [None if v is None else str(v) for v in out["b"]] == [None, "0.01", "-0.01", "2.50"]


def test_an_export_streamed_in_chunks_writes_what_the_refresh_committed(warehouse, tmp_path, monkeypatch):
    """export_tables(refresh=False) reads the finance tables CHUNK_ROWS rows at a time (7 here, so every table
    of 80 claims comes in many chunks): the same files as the export of the refresh itself."""
    import pyarrow.parquet as pq

    from benchmarks.scale import TODAY
    from otedi.analytics import export_tables, warehouse_tables

    synthesise(warehouse, 80, seed=11)
    whole = {fmt: export_tables(tmp_path / f"whole-{fmt}", fmt, today=TODAY) for fmt in ("csv", "parquet")}
    monkeypatch.setattr(warehouse_tables, "CHUNK_ROWS", 7)
    for fmt, paths in whole.items():
        streamed = export_tables(tmp_path / f"streamed-{fmt}", fmt, today=TODAY, refresh=False)
        assert [p.name for p in streamed] == [p.name for p in paths]
        for one, other in zip(paths, streamed):
            if fmt == "csv":
                assert one.read_bytes() == other.read_bytes(), one.name
            else:
                assert pq.read_table(one).equals(pq.read_table(other)), one.name
    lines = (tmp_path / "streamed-csv" / "reconciliation_lines.csv").read_text().splitlines()
    assert len(lines) > 8 * 7  # many chunks
