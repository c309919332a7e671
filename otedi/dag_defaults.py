"""What the otedi DAGs share: task policy, the Assets that link them, the failure callback and the
guard that fails data errors at once.

Imported by the DAG files at parse time, so standard library and airflow.sdk only (otedi itself is
imported inside tasks, and by `fails_fast` only when a task has failed).

Retries, one layer per kind of failure:

- bad input or configuration a retry cannot fix (otedi.nightly.retry_cannot_fix: an unreadable extract,
  two extracts for one night, a mappings/ error, rejected SFTP credentials, a changed host key, a
  different file under our name on the drop, a missing Airflow connection): AirflowFailException, no
  retry. Rejected credentials are never retried anywhere: clearinghouses lock accounts.
- the network (refused, reset, timed out, a short transfer): Airflow's task retries only. Tasks open the
  drop with one attempt per operation (otedi.nightly.TASK_DROP_ATTEMPTS) and the SFTP hook with one connect
  attempt, so a transport task tries 1 + TRANSPORT["retries"] times, OTEDI_RETRY_DELAY_SECONDS apart and
  doubling (2, 4, 8, 16 minutes by default). The drop's own backoff (4 attempts) is for the CLI.
- anything else (the warehouse database, a worker lost): the task's retries (DEFAULT_ARGS).
"""

from __future__ import annotations

import functools
import logging
import os
from datetime import timedelta

from airflow.sdk import Asset

log = logging.getLogger("otedi.airflow")

TIME_ZONE = os.environ.get("OTEDI_SCHEDULE_TIME_ZONE", "America/New_York")
TRANSPORT_POOL = "clearinghouse_sftp"  # provisioned by airflow-pools.json (`airflow pools import`)

# The Assets: ids only, never a path or host (those differ per deployment and are not the data's name).
CLAIMS_SENT = Asset(name="otedi_claims_sent", uri="otedi://clearinghouse/outbound", group="otedi")
"""A claims night finished: its 837P files are in the clearinghouse's outbound folder (ot_claims_nightly)."""
CLEARINGHOUSE_ANSWERED = Asset(name="otedi_clearinghouse_answered", uri="otedi://clearinghouse/inbound",
                               group="otedi")
"""Demo only: the built-in simulator put 999/277CA/835 answers in the inbox (ot_demo_clearinghouse)."""
REMITTANCES_LOADED = Asset(name="otedi_remittances_loaded", uri="otedi://warehouse/remittances", group="otedi")
"""Acknowledgments loaded or 835s posted in the warehouse (ot_remittance_ingest, only when it loaded any)."""


def log_failure(context) -> None:
    """on_failure_callback of every task: one line of ids and counts. Never the exception's text: a
    library's message can quote the values of a row (PHI); the task log has the traceback."""
    ti = context["ti"]
    exc = context.get("exception")
    cause = exc.__cause__ if exc is not None and exc.__cause__ is not None else exc  # under fails_fast's
    log.error("otedi task failed: dag=%s run=%s task=%s map_index=%s practice=%s try=%s of %s error=%s",
              ti.dag_id, ti.run_id, ti.task_id, ti.map_index, getattr(ti, "rendered_map_index", None) or "-",
              ti.try_number, getattr(ti, "max_tries", 0) + 1, type(cause).__name__ if cause is not None else "-")


def fails_fast(fn):
    """Task decorator (under @task): an error a retry cannot fix fails the task at once
    (AirflowFailException, no retries left to wait for); any other error is raised for Airflow to retry."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException

            from otedi import nightly

            if isinstance(exc, AirflowNotFoundException) or nightly.retry_cannot_fix(exc):
                raise AirflowFailException(f"{type(exc).__name__}: {exc} (not retried: fix the cause, then "
                                           f"Clear the task)") from exc
            raise

    return wrapper


DEFAULT_ARGS = {
    "retries": 2,
    "retry_delay": timedelta(seconds=float(os.environ.get("OTEDI_RETRY_DELAY_SECONDS", 120))),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=30),
    "execution_timeout": timedelta(hours=1),
    "on_failure_callback": log_failure,
}

TRANSPORT = {"pool": TRANSPORT_POOL, "retries": 4, "execution_timeout": timedelta(minutes=20)}


def cron(variable: str, default: str) -> str:
    """The cron schedule from the environment variable, else the default."""
    return os.environ.get(variable, default)


def simulator() -> bool:
    """OTEDI_SIMULATOR=1 (demos and tests): the demo DAG answers as the clearinghouse and payers, and the
    ingest DAG waits for its answers instead of for the claims night. Read when the DAG files are parsed."""
    return os.environ.get("OTEDI_SIMULATOR") == "1"
