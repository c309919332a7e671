"""ot_demo_clearinghouse (demos and tests only): the built-in simulator answers as the clearinghouse and
the payers would. Defined only when OTEDI_SIMULATOR=1 where the DAG files are parsed; a production
deployment never has it.

Runs after every claims night (the CLAIMS_SENT asset): it answers the new 837P files in the file:// drop
with 999s and 277CAs and makes the day's payment run (835s), the day being the one after the night's
service date (the `day` param on a manual run, else the run's date). When it wrote anything, its
CLEARINGHOUSE_ANSWERED event starts ot_remittance_ingest. Wiring only (otedi.nightly.simulate).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, task

from otedi.dag_defaults import CLAIMS_SENT, CLEARINGHOUSE_ANSWERED, DEFAULT_ARGS, TIME_ZONE, fails_fast, simulator


@dag(
    schedule=CLAIMS_SENT,
    start_date=pendulum.datetime(2026, 1, 1, tz=TIME_ZONE),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={"day": Param(None, type=["null", "string"], format="date",
                         description="answer on this day (default: the day after the night billed)")},
    tags=["otedi", "demo"],
)
def ot_demo_clearinghouse():
    @task(execution_timeout=timedelta(minutes=20))
    @fails_fast
    def answer(params=None, triggering_asset_events=None, logical_date=None, dag_run=None) -> dict:
        from otedi import nightly
        day = nightly.simulator_day(params.get("day"), triggering_asset_events, logical_date or dag_run.run_after)
        return nightly.simulate(day)

    @task.short_circuit
    def answered_anything(result: dict) -> bool:
        from otedi import nightly
        return nightly.answered_anything(result)

    @task(outlets=[CLEARINGHOUSE_ANSWERED])
    def announce_answered(result: dict, outlet_events=None) -> dict:
        outlet_events[CLEARINGHOUSE_ANSWERED].extra = result  # counts only
        return result

    result = answer()
    answered_anything(result) >> announce_answered(result)


if simulator():
    ot_demo_clearinghouse()
