"""ot_claims_nightly: each practice's extract for last night -> charges -> claims -> 837P -> clearinghouse.

Wiring only: every task calls one otedi.nightly function (tested without Airflow) and passes ids,
dates and paths. The night billed is the `service_date` param, else the run's date in the practice's
time zone minus one day (never a cron data interval). Re-run a failed night with Clear, not a new
trigger: every step is idempotent. Settings: README "Running the DAGs".
"""

from __future__ import annotations

import pendulum
from airflow.sdk import CronTriggerTimetable, Param, chain, dag, task, task_group

from otedi.dag_defaults import DEFAULT_ARGS, TIME_ZONE, TRANSPORT, cron


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
    def practices() -> list[str]:
        from otedi import nightly
        return nightly.practice_ids()

    @task_group
    def night(practice_id: str):
        @task
        def find_extract(practice_id: str, params=None, logical_date=None, dag_run=None) -> dict:
            from otedi import nightly
            run_date = logical_date or dag_run.run_after  # logical_date is None on manual runs
            day = nightly.practice_batch_date(practice_id, params.get("service_date"), run_date)
            return {"practice_id": practice_id, "batch_date": day, "extract": nightly.find_extract(practice_id, day)}

        @task
        def load_charges(batch: dict) -> dict:
            from otedi import nightly
            return nightly.load_charges(batch["extract"], batch["batch_date"], batch["practice_id"])

        @task
        def build_claims(batch: dict) -> dict:
            from otedi import nightly
            return nightly.build_claims_for(batch["practice_id"], batch["batch_date"])

        @task
        def validate_837p(batch: dict) -> dict:
            from otedi import nightly
            return nightly.write_files_for(batch["practice_id"])

        @task(**TRANSPORT)
        def upload(batch: dict) -> dict:
            from otedi import nightly
            return nightly.send_files(batch["practice_id"])

        @task
        def record_submission(batch: dict) -> str:
            from otedi import nightly
            return nightly.record_submissions(batch["practice_id"], batch["batch_date"])

        batch = find_extract(practice_id)
        chain(load_charges(batch), build_claims(batch), validate_837p(batch), upload(batch), record_submission(batch))

    night.expand(practice_id=practices())


ot_claims_nightly()
