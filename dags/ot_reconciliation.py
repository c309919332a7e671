"""ot_reconciliation: finance tables (reconciliation, AR work queue, denial analysis) and the exports
finance pulls (CSV/Parquet + the HTML report) into $OTEDI_HOME/reports/<YYYY-MM-DD>/.

Wiring only (otedi.nightly over otedi.analytics). Runs after every ingest that loaded acknowledgments or
posted 835s (the REMITTANCES_LOADED asset), so a report never precedes the payments it reports, and at
its daily time (so AR ages on a day without remittances). The folder is the `report_date` param, else
the run's date (its run_after when it has no logical date: asset-triggered and manual runs); re-running
a date rewrites the same files.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, Param, dag, task

from otedi.dag_defaults import DEFAULT_ARGS, REMITTANCES_LOADED, TIME_ZONE, cron, fails_fast


@dag(
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable(cron("OTEDI_RECON_SCHEDULE", "0 6 * * *"), timezone=TIME_ZONE),
        assets=REMITTANCES_LOADED),
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
    @fails_fast
    def report_date(params=None, logical_date=None, dag_run=None) -> str:
        from otedi import nightly
        return nightly.report_date(params.get("report_date"), logical_date or dag_run.run_after)

    @task
    @fails_fast
    def refresh_tables(day: str) -> dict:
        from otedi import nightly
        return nightly.refresh_reconciliation(day)

    @task
    @fails_fast
    def html_report(day: str) -> str:
        from otedi import nightly
        return nightly.write_report(day)

    day = report_date()
    refresh_tables(day) >> html_report(day)


ot_reconciliation()
