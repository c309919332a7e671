"""Finance exports: every reconciliation, AR and denial table as CSV or Parquet files.

All tables come from one snapshot of the warehouse, so they agree with each
other. Money is written exactly: CSV as plain decimals ("1234.50"), Parquet
as decimal128 columns.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

from otedi.analytics import aging, denials, kpis, reconcile, workqueue
from otedi.analytics.snapshot import Snapshot, load_snapshot, money_out
from otedi.files import open_private, private_dir

FORMATS = ("csv", "parquet")


def finance_tables(snap: Snapshot | None = None, *, today: date | None = None) -> dict[str, pd.DataFrame]:
    """Every finance table by name, computed from one snapshot."""
    today = today or date.today()
    snap = snap or load_snapshot()
    claims = reconcile.claim_frame(snap, today)
    detail = denials.denial_frame(snap, claims, today)
    return {
        "reconciliation_claims": reconcile.claim_reconciliation(snap, today=today),
        "reconciliation_lines": reconcile.line_reconciliation(snap, today=today),
        "payments": reconcile.payments(snap),
        "unmatched_remittances": reconcile.unmatched_remittances(snap),
        "held_remittances": reconcile.held_remittances(snap),
        "ar_aging": money_out(aging.aging_frame(claims, today), [*aging.BUCKETS, "total"]),
        "work_queue": workqueue.work_queue(snap, today=today),
        "denials": money_out(detail[denials.DETAIL_COLUMNS], ["denied", "recoverable_amount"]),
        "denial_pareto": money_out(pd.concat([denials.pareto_frame(detail, by) for by in denials.DIMENSIONS],
                                             ignore_index=True), ["denied"]),
        "denial_trend": money_out(denials.trend_frame(snap, claims), ["billed", "denied"]),
        "denial_recoverable": money_out(denials.recoverable_by_category(detail), ["denied", "recoverable"]),
        "kpis": pd.DataFrame(kpis.kpi_values(snap, claims, today)),
    }


def export_tables(out_dir: str | Path, fmt: str = "csv", *, today: date | None = None) -> list[Path]:
    """Write every finance table to out_dir as <name>.csv or <name>.parquet; returns the paths written."""
    if fmt not in FORMATS:
        raise ValueError(f"export format {fmt!r}: use one of {', '.join(FORMATS)}")
    out = private_dir(out_dir)
    written = []
    for name, table in finance_tables(today=today).items():
        path = out / f"{name}.{fmt}"
        if fmt == "csv":
            with open_private(path, "w", encoding="utf-8", newline="") as fh:
                neutralise_formulas(table).to_csv(fh, index=False)
        else:
            with open_private(path, "wb") as fh:
                table.to_parquet(fh, index=False)
        written.append(path)
    return written


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formulas(table: pd.DataFrame) -> pd.DataFrame:
    """Text cells a spreadsheet would run as a formula (starting with = + - @, tab or CR) get a leading
    apostrophe, as OWASP's CSV injection guidance says; numbers (Decimal, int, float, dates) stay as they are."""
    out = table.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = [("'" + v) if isinstance(v, str) and v.startswith(FORMULA_START) else v
                           for v in out[column]]
    return out
