"""Task policy shared by the three DAGs (standard library only: DAG files import it at parse time).

Every task: retries with exponential backoff from OTEDI_RETRY_DELAY_SECONDS (default 120 s, capped at
30 minutes) and a one-hour timeout. Clearinghouse transport tasks: the `clearinghouse_sftp` pool, more
retries and a 20-minute timeout. Schedules are cron strings in OTEDI_SCHEDULE_TIME_ZONE.
"""

import os
from datetime import timedelta

TIME_ZONE = os.environ.get("OTEDI_SCHEDULE_TIME_ZONE", "America/New_York")

DEFAULT_ARGS = {
    "retries": 2,
    "retry_delay": timedelta(seconds=float(os.environ.get("OTEDI_RETRY_DELAY_SECONDS", 120))),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(minutes=30),
    "execution_timeout": timedelta(hours=1),
}

TRANSPORT = {"pool": "clearinghouse_sftp", "retries": 4, "execution_timeout": timedelta(minutes=20)}


def cron(variable: str, default: str) -> str:
    """The cron schedule from the environment variable, else the default."""
    return os.environ.get(variable, default)
