"""Finance analytics over the warehouse: reconciliation, AR follow-up, denials, KPIs, exports.

Plain functions for the CLI (`otedi report export`, `otedi report html`,
`otedi ar worklist`) and for notebooks. Each takes an optional `Snapshot`
(one read of the warehouse; `load_snapshot()`) and `today`:

    claim_reconciliation, line_reconciliation     billed vs posted, per claim / per line
    payments, unmatched_remittances, held_remittances
    ar_aging                                      insurance and patient balances by bucket
    work_queue, work_queue_summary                one item per claim needing action
    denial_detail, denial_pareto, denial_trend    root causes, Pareto, monthly rates
    kpi_table                                     clean-claim, first-pass, denial rate, days in AR, NCR
    cycle_summary(today=)                         the totals: billed, paid, open, insurance / patient AR,
                                                  not sent (otedi run, the report's tiles: one definition)
    refresh_finance_tables(today=)                all of the above as finance_<table> tables in the warehouse
    read_finance_tables()                         ... read back as frames
    export_tables(out_dir, fmt)                   CSV, Parquet or XLSX files of those tables
    write_html_report(path)                       one self-contained HTML report
"""

from otedi.analytics.aging import ar_aging
from otedi.analytics.denials import denial_detail, denial_pareto, denial_trend
from otedi.analytics.export import export_tables, finance_tables
from otedi.analytics.kpis import kpi_table
from otedi.analytics.reconcile import (claim_reconciliation, held_remittances, line_reconciliation, payments,
                                       unmatched_remittances)
from otedi.analytics.report_html import write_html_report
from otedi.analytics.snapshot import Snapshot, load_snapshot
from otedi.analytics.summary import cycle_summary
from otedi.analytics.warehouse_tables import read_finance_tables, refresh_finance_tables
from otedi.analytics.workqueue import work_queue, work_queue_summary

__all__ = [
    "Snapshot", "ar_aging", "claim_reconciliation", "cycle_summary", "denial_detail", "denial_pareto", "denial_trend",
    "export_tables", "finance_tables", "held_remittances", "kpi_table", "line_reconciliation", "load_snapshot",
    "payments", "read_finance_tables", "refresh_finance_tables", "unmatched_remittances", "work_queue",
    "work_queue_summary", "write_html_report",
]
