"""ot_claims_nightly: each practice's extract for last night -> charges -> claims -> 837P -> clearinghouse.

Wiring only: every task calls one otedi.nightly function (tested without Airflow) and passes ids,
dates and paths. The night billed is the `service_date` param, else the run's date in the practice's
time zone minus one day (never a cron data interval; a run without a logical date uses its run_after,
the time it was triggered). When every practice is done, `announce_sent` records a CLAIMS_SENT asset
event (service dates, practices, files and claims sent) that ot_remittance_ingest, or the demo
clearinghouse, runs on. Re-run a failed night with Clear, not a new trigger: every step is idempotent.
Settings, retries and the runbook: README "Running the DAGs".
"""

from __future__ import annotations

import pendulum
from airflow.sdk import CronTriggerTimetable, Param, chain, dag, task, task_group

from otedi.dag_defaults import CLAIMS_SENT, DEFAULT_ARGS, TIME_ZONE, TRANSPORT, cron, fails_fast

PRACTICE = {"map_index_template": "{{ task.op_kwargs['practice_id'] }}"}  # mapped tasks are named by practice


@dag(
    schedule=CronTriggerTimetable(cron("OTEDI_CLAIMS_SCHEDULE", "0 2 * * *"), timezone=TIME_ZONE),
    start_date=pendulum.datetime(2026, 1, 1, tz=TIME_ZONE),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={"service_date": Param(None, type=["null", "string"], format="date",
                                  description="bill this service date instead of the night before the run")},
    tags=["otedi", "claims"],
)
def ot_claims_nightly():
    @task
    @fails_fast
    def practices() -> list[str]:
        from otedi import nightly
        return nightly.practice_ids()

    @task_group
    def night(practice_id: str):
        @task(**PRACTICE)
        @fails_fast
        def find_extract(practice_id: str, params=None, logical_date=None, dag_run=None) -> dict:
            from otedi import nightly
            run_date = logical_date or dag_run.run_after  # no logical date: triggered without -l
            day = nightly.practice_batch_date(practice_id, params.get("service_date"), run_date)
            return {"practice_id": practice_id, "batch_date": day, "extract": nightly.find_extract(practice_id, day)}

        @task(**PRACTICE)
        @fails_fast
        def load_charges(practice_id: str, batch: dict) -> dict:
            from otedi import nightly
            return nightly.load_charges(batch["extract"], batch["batch_date"], practice_id)

        @task(**PRACTICE)
        @fails_fast
        def build_claims(practice_id: str, batch: dict) -> dict:
            from otedi import nightly
            return nightly.build_claims_for(practice_id, batch["batch_date"])

        @task(**PRACTICE)
        @fails_fast
        def validate_837p(practice_id: str, batch: dict) -> dict:
            from otedi import nightly
            return nightly.write_files_for(practice_id, batch["batch_date"])

        @task(**TRANSPORT, **PRACTICE)
        @fails_fast
        def upload(practice_id: str, batch: dict) -> dict:
            from otedi import nightly
            return nightly.send_files(practice_id, batch["batch_date"])

        @task(**PRACTICE)
        @fails_fast
        def record_submission(practice_id: str, batch: dict) -> str:
            from otedi import nightly
            return nightly.record_submissions(practice_id, batch["batch_date"])

        # keyword arguments: map_index_template reads them (task.op_kwargs)
        batch = find_extract(practice_id=practice_id)
        manifest = record_submission(practice_id=practice_id, batch=batch)
        chain(load_charges(practice_id=practice_id, batch=batch), build_claims(practice_id=practice_id, batch=batch),
              validate_837p(practice_id=practice_id, batch=batch), upload(practice_id=practice_id, batch=batch),
              manifest)
        return manifest

    @task(outlets=[CLAIMS_SENT])
    @fails_fast
    def announce_sent(manifests: list[str], outlet_events=None) -> dict:
        from otedi import nightly
        summary = nightly.night_summary(list(manifests))
        outlet_events[CLAIMS_SENT].extra = summary  # ids and counts only: the asset event is shown in the UI
        return summary

    manifests = night.expand(practice_id=practices())
    announce_sent(manifests)


ot_claims_nightly()
