"""ot_remittance_ingest: poll the clearinghouse inbox, fetch new files, load 999/277CA, post 835s.

Wiring only (otedi.nightly). The sensor is a gate over the drop's own listing with specific patterns
(OTEDI_INBOUND_PATTERNS; never "*": the deferrable SFTPSensor matches "." and ".."); when nothing
arrives it is skipped and `ingest` still loads anything an earlier run fetched but did not load.
With OTEDI_SIMULATOR=1 the built-in clearinghouse answers first (file:// drops, tests and demos).
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import CronTriggerTimetable, PokeReturnValue, dag, task

from otedi.dag_defaults import DEFAULT_ARGS, TIME_ZONE, TRANSPORT, cron

WAIT = float(os.environ.get("OTEDI_INBOUND_WAIT_SECONDS", 20 * 60))


@dag(
    schedule=CronTriggerTimetable(cron("OTEDI_REMIT_SCHEDULE", "*/30 * * * *"), timezone=TIME_ZONE),
    start_date=pendulum.datetime(2026, 1, 1, tz=TIME_ZONE),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["otedi", "remittance"],
)
def ot_remittance_ingest():
    @task(execution_timeout=timedelta(minutes=20))
    def simulate_clearinghouse(logical_date=None, dag_run=None) -> dict:
        from otedi import nightly
        return nightly.simulate(nightly.run_day(logical_date or dag_run.run_after).isoformat())

    @task.sensor(poke_interval=min(120.0, max(WAIT / 10, 1.0)), timeout=WAIT, mode="reschedule", soft_fail=True,
                 **TRANSPORT)
    def wait_for_inbound() -> PokeReturnValue:
        from otedi import nightly
        names = nightly.inbound_waiting()
        return PokeReturnValue(is_done=bool(names), xcom_value=len(names))

    @task(**TRANSPORT)
    def fetch() -> list[str]:
        from otedi import nightly
        return nightly.fetch_new()

    @task(trigger_rule="none_failed")
    def ingest() -> dict:
        from otedi import nightly
        return nightly.ingest()

    simulate_clearinghouse() >> wait_for_inbound() >> fetch() >> ingest()


ot_remittance_ingest()
