"""ot_remittance_ingest: poll the clearinghouse inbox, fetch new files, load 999/277CA, post 835s.

Wiring only (otedi.nightly). Runs on its time schedule and whenever a claims night has sent files (the
CLAIMS_SENT asset; with OTEDI_SIMULATOR=1, the demo clearinghouse's CLEARINGHOUSE_ANSWERED instead, so
it runs after the simulated answers are written). The sensor is a gate over the drop's own listing with
specific patterns (OTEDI_INBOUND_PATTERNS; never "*": the deferrable SFTPSensor matches "." and "..");
when nothing arrives it is skipped and `ingest` still loads anything an earlier run fetched but did not
load. When anything was loaded, `announce_loaded` records a REMITTANCES_LOADED asset event, which
ot_reconciliation runs on.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, PokeReturnValue, dag, task

from otedi.dag_defaults import (CLAIMS_SENT, CLEARINGHOUSE_ANSWERED, DEFAULT_ARGS, REMITTANCES_LOADED, TIME_ZONE,
                                TRANSPORT, cron, fails_fast, simulator)

WAIT = float(os.environ.get("OTEDI_INBOUND_WAIT_SECONDS", 20 * 60))


@dag(
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable(cron("OTEDI_REMIT_SCHEDULE", "*/30 * * * *"), timezone=TIME_ZONE),
        assets=CLEARINGHOUSE_ANSWERED if simulator() else CLAIMS_SENT),
    start_date=pendulum.datetime(2026, 1, 1, tz=TIME_ZONE),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["otedi", "remittance"],
)
def ot_remittance_ingest():
    @task.sensor(poke_interval=min(120.0, max(WAIT / 10, 1.0)), timeout=WAIT, mode="reschedule", soft_fail=True,
                 **TRANSPORT)
    @fails_fast
    def wait_for_inbound() -> PokeReturnValue:
        from otedi import nightly
        names = nightly.inbound_waiting()
        return PokeReturnValue(is_done=bool(names), xcom_value=len(names))

    @task(**TRANSPORT)
    @fails_fast
    def fetch() -> list[str]:
        from otedi import nightly
        return nightly.fetch_new()

    @task(trigger_rule="none_failed")
    @fails_fast
    def ingest() -> dict:
        from otedi import nightly
        return nightly.ingest()

    @task.short_circuit
    def loaded_anything(counts: dict) -> bool:
        from otedi import nightly
        return nightly.loaded_anything(counts)

    @task(outlets=[REMITTANCES_LOADED])
    def announce_loaded(counts: dict, outlet_events=None) -> dict:
        outlet_events[REMITTANCES_LOADED].extra = counts  # counts only
        return counts

    counts = ingest()
    wait_for_inbound() >> fetch() >> counts
    loaded_anything(counts) >> announce_loaded(counts)


ot_remittance_ingest()
