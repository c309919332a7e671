"""ot_reconciliation: daily finance tables (reconciliation, AR work queue, denial analysis) and the
exports finance pulls (CSV/Parquet + the HTML report) into $OTEDI_HOME/reports/<YYYY-MM-DD>/.

Wiring only (otedi.nightly over otedi.analytics). The folder is the `report_date` param, else the
run's date; re-running a date rewrites the same files.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import CronTriggerTimetable, Param, dag, task

from otedi.dag_defaults import DEFAULT_ARGS, TIME_ZONE, cron


@dag(
    schedule=CronTriggerTimetable(cron("OTEDI_RECON_SCHEDULE", "0 6 * * *"), timezone=TIME_ZONE),
    start_date=pendulum.datetime(2026, 1, 1, tz=TIME_ZONE),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={"report_date": Param(None, type=["null", "string"], format="date",
                                 description="date the report folder is named for (default: the run's date)")},
    tags=["otedi", "finance"],
)
def ot_reconciliation():
    @task
    def report_date(params=None, logical_date=None, dag_run=None) -> str:
        from otedi import nightly
        return nightly.report_date(params.get("report_date"), logical_date or dag_run.run_after)

    @task
    def refresh_tables(day: str) -> dict:
        from otedi import nightly
        return nightly.refresh_reconciliation(day)

    @task
    def html_report(day: str) -> str:
        from otedi import nightly
        return nightly.write_report(day)

    day = report_date()
    refresh_tables(day) >> html_report(day)


ot_reconciliation()
