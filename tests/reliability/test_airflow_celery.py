"""The three DAGs under a real multi-worker Airflow (CeleryExecutor), one worker killed mid-task (issue 11).

A cluster of tests/reliability/airflow_cluster.py (PostgreSQL metadata, Redis broker, two Celery workers
of one slot each) runs one night of three practices, mapped in parallel, into a PostgreSQL warehouse.
While worker1 holds an open write transaction in the warehouse for a task of the practice group, the
worker is SIGKILLed with every process under it. The scheduler finds the task without a heartbeat and
fails it into a retry, which worker2 runs; the killed practice's tasks are then Cleared and run once more,
as an operator re-runs a night after an incident. Nothing else is triggered: the night's CLAIMS_SENT
asset starts the demo clearinghouse, its answer starts the remittance ingest, and the ingest's
REMITTANCES_LOADED starts the reconciliation (each again after the Clear, finding nothing new). Every run
must succeed and the warehouse must equal a clean run's, with every invariant held.

The clean reference is the otedi.nightly steps called in the DAGs' order in this process, on a warehouse
of its own: independent of Airflow, so a fault that Airflow would make in both runs cannot hide, and a few
seconds instead of another cluster pass (tests/test_dags.py already shows dag.test() gives the figures of
these steps).

Needs PostgreSQL (OTEDI_TEST_POSTGRES_URL) and Redis (OTEDI_TEST_REDIS_URL, default 127.0.0.1:6379): the
test is skipped with the reason printed without them, unless OTEDI_REQUIRE_POSTGRES=1 / OTEDI_REQUIRE_REDIS=1
(set in CI), where it fails instead.
"""

from __future__ import annotations

import os
import socket
import time
from datetime import date, datetime, timezone
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import create_engine, make_url, text

from otedi import nightly
from otedi.charges.synth import synth_charges
from otedi.warehouse import db
from tests.conftest import POSTGRES_ADMIN_URL, _postgres_unavailable
from tests.reliability.airflow_cluster import AirflowCluster, create_database, drop_database
from tests.reliability.invariants import violations, warehouse_snapshot

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

REDIS_URL = os.environ.get("OTEDI_TEST_REDIS_URL", "redis://127.0.0.1:6379")
DAG_IDS = ("ot_claims_nightly", "ot_demo_clearinghouse", "ot_remittance_ingest", "ot_reconciliation")
ASSET_TRIGGERED = DAG_IDS[1:]  # started by the assets of the DAG before each
NIGHT = datetime(2026, 10, 1, 6, 0, tzinfo=timezone.utc)  # 02:00 in Columbus: bills 2026-09-30
BATCH_DATE = "2026-09-30"
INGEST_RUN = datetime(2026, 10, 1, 12, 0, tzinfo=timezone.utc)
RECON_RUN = datetime(2026, 10, 1, 14, 0, tzinfo=timezone.utc)
ROWS = 2400  # three practices; enough work per task that a kill lands inside a warehouse transaction
NEVER = "0 0 29 2 *"  # no scheduled run interferes with the triggered ones (start_date 2026, catchup off)
VICTIM, SURVIVOR = "worker1", "worker2"
RUN_TIMEOUT = 240


# -- services -------------------------------------------------------------------------------------


def _redis_unavailable() -> str | None:
    import redis

    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
        client.ping()
        client.close()
        return None
    except (redis.RedisError, socket.error) as exc:
        return f"Redis not reachable at {REDIS_URL}: {type(exc).__name__}"


@pytest.fixture(scope="module")
def services() -> None:
    for reason, required in ((_postgres_unavailable(), "OTEDI_REQUIRE_POSTGRES"),
                             (_redis_unavailable(), "OTEDI_REQUIRE_REDIS")):
        if reason:
            if os.environ.get(required) == "1":
                pytest.fail(f"{required}=1 but {reason}")
            print(f"\nSKIP the Celery cluster test: {reason}")
            pytest.skip(reason)


@pytest.fixture(scope="module")
def extract_frame(tmp_path_factory) -> pd.DataFrame:
    path = tmp_path_factory.mktemp("extract") / "charges.csv"
    synth_charges(ROWS, 11, path, defect_rate=0.01, start=date(2026, 8, 10), days=52)
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def new_site(home: Path, frame: pd.DataFrame) -> tuple[str, dict[str, str]]:
    """OTEDI_HOME with each practice's extract for the night, and a migrated PostgreSQL warehouse.
    Returns the warehouse URL and the otedi environment."""
    for practice_id, rows in frame.groupby("practice_id"):
        folder = home / "extracts" / practice_id
        folder.mkdir(parents=True)
        rows.to_csv(folder / f"charges_{BATCH_DATE}.csv", index=False)
    url = create_database(POSTGRES_ADMIN_URL, "otedi_reliability")
    db.upgrade(url)
    return url, {"OTEDI_HOME": str(home), "OTEDI_DATABASE_URL": url, "OTEDI_DROP_URL": f"file://{home / 'drop'}",
                 "OTEDI_SIMULATOR": "1", "OTEDI_SIMULATOR_SEED": "5"}


def drop_site(url: str) -> None:
    db.engine(url).dispose()
    drop_database(POSTGRES_ADMIN_URL, url)


@pytest.fixture(scope="module")
def clean(services, extract_frame, tmp_path_factory) -> dict:
    """The night, ingest and reconciliation as the DAGs run them, step by step, without Airflow."""
    home = tmp_path_factory.mktemp("clean") / "otedi"
    url, env = new_site(home, extract_frame)
    try:
        with pytest.MonkeyPatch.context() as mp:
            for key in [k for k in os.environ if k.startswith("OTEDI_")]:
                mp.delenv(key)
            for key, value in env.items():
                mp.setenv(key, value)
            for practice_id in nightly.practice_ids():
                day = nightly.practice_batch_date(practice_id, None, NIGHT)
                nightly.load_charges(nightly.find_extract(practice_id, day), day, practice_id)
                nightly.build_claims_for(practice_id, day)
                nightly.write_files_for(practice_id, day)
                nightly.send_files(practice_id, day)
                nightly.record_submissions(practice_id, day)
            nightly.simulate(nightly.run_day(INGEST_RUN).isoformat())  # the day after the night billed
            assert nightly.inbound_waiting()
            nightly.fetch_new()
            nightly.ingest()
            day = nightly.report_date(None, RECON_RUN)
            nightly.refresh_reconciliation(day)
            nightly.write_report(day)
        assert violations(url, home) == []
        return {"snapshot": warehouse_snapshot(url)}
    finally:
        drop_site(url)


# -- the run on the cluster ---------------------------------------------------------------------------


def open_write_transactions(conn, database: str, worker: str) -> int:
    """The worker's warehouse transactions that have written (or locked rows for writing) and not ended."""
    return conn.execute(text(
        "select count(*) from pg_stat_activity where datname = :db and application_name = :app "
        "and backend_xid is not null"), {"db": database, "app": worker}).scalar()


def kill_inside_a_transaction(cluster: AirflowCluster, run_id: str, worker: str, warehouse: str) -> dict:
    """Once the practice group has started, SIGKILL `worker` the moment it holds an open write transaction
    in the warehouse; returns the task instance it was running."""
    cluster.wait(lambda: task_state(cluster, "ot_claims_nightly", run_id, "practices") == "success", RUN_TIMEOUT,
                 "the practices task")
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    database = make_url(warehouse).database
    try:
        with admin.connect() as conn:
            polls = 0
            while not open_write_transactions(conn, database, worker):
                polls += 1
                if polls % 20 == 0:
                    assert cluster.run_state("ot_claims_nightly", run_id) == "running", \
                        f"the night ended before {worker} was caught in a warehouse transaction"
                time.sleep(0.05)
            pids = cluster.kill(worker)
    finally:
        admin.dispose()
    running = [ti for ti in cluster.task_instances("ot_claims_nightly", run_id)
               if ti["state"] == "running" and ti["hostname"] == worker]
    assert len(running) == 1 and running[0]["task_id"].startswith("night."), running
    victim = running[0]
    print(f"\nkilled {worker} ({len(pids)} processes) inside {victim['task_id']}[{victim['map_index']}] "
          f"try {victim['try_number']}")
    return victim


def task_state(cluster: AirflowCluster, dag_id: str, run_id: str, task_id: str) -> str | None:
    return next((ti["state"] for ti in cluster.task_instances(dag_id, run_id) if ti["task_id"] == task_id), None)


def assert_succeeds(cluster: AirflowCluster, dag_id: str, run_id: str) -> None:
    """Wait for the run to finish; it must succeed (else the state of each task instance is shown)."""
    if cluster.wait_for_run(dag_id, run_id, RUN_TIMEOUT) != "success":
        states = {f"{ti['task_id']}[{ti['map_index']}]": ti["state"] for ti in cluster.task_instances(dag_id, run_id)}
        raise AssertionError(f"{dag_id} run {run_id} failed: {states}")


def wait_for_the_asset_chain(cluster: AirflowCluster) -> dict[str, list[dict]]:
    """Until every asset-triggered DAG has run and nothing is left to run: no run queued or running in any
    DAG, no asset event waiting for a run. Returns the runs of each asset-triggered DAG."""
    def settled() -> bool:
        runs = {dag_id: cluster.dag_runs(dag_id) for dag_id in DAG_IDS}
        return (all(runs[d] for d in ASSET_TRIGGERED)
                and not [r for rs in runs.values() for r in rs if r["state"] not in ("success", "failed")]
                and not any(cluster.queued_asset_events(d) for d in ASSET_TRIGGERED))
    cluster.wait(settled, RUN_TIMEOUT * 2, "the demo clearinghouse, ingest and reconciliation started by the assets",
                 interval=2.0)
    return {dag_id: cluster.dag_runs(dag_id) for dag_id in ASSET_TRIGGERED}


def differences(expected: dict, got: dict) -> dict:
    """Per section of the snapshot that differs: a few entries missing and extra (ids and figures only)."""
    out = {}
    for key in sorted(set(expected) | set(got)):
        want, have = expected.get(key, []), got.get(key, [])
        if want != have:
            out[key] = {"missing": [x for x in want if x not in have][:5],
                        "extra": [x for x in have if x not in want][:5]}
    return out


def test_a_worker_killed_mid_task_then_retry_and_clear_leave_the_warehouse_of_a_clean_run(
        services, clean, extract_frame, tmp_path):
    started = time.monotonic()
    home = tmp_path / "otedi"
    warehouse, env = new_site(home, extract_frame)
    env |= {"OTEDI_RETRY_DELAY_SECONDS": "1", "OTEDI_INBOUND_WAIT_SECONDS": "30",
            "OTEDI_CLAIMS_SCHEDULE": NEVER, "OTEDI_REMIT_SCHEDULE": NEVER, "OTEDI_RECON_SCHEDULE": NEVER}
    try:
        with AirflowCluster(tmp_path / "airflow", postgres_admin_url=POSTGRES_ADMIN_URL, redis_url=REDIS_URL,
                            env=env, workers=(VICTIM, SURVIVOR)) as cluster, cluster.diagnostics():
            cluster.wait_for_dags(DAG_IDS)
            cluster.set_pool("clearinghouse_sftp", 1)
            for dag_id in DAG_IDS:
                cluster.unpause(dag_id)
            print(f"\ncluster ready after {time.monotonic() - started:.0f} s")

            # the night: worker1 killed inside a warehouse transaction, the task retried on worker2
            night = cluster.trigger("ot_claims_nightly", NIGHT.isoformat())
            victim = kill_inside_a_transaction(cluster, night, VICTIM, warehouse)
            key = (victim["task_id"], victim["map_index"])
            assert_succeeds(cluster, "ot_claims_nightly", night)
            tries = cluster.tries("ot_claims_nightly", night, *key)
            assert [(t["hostname"], t["state"]) for t in tries] == [(VICTIM, "failed"), (SURVIVOR, "success")], tries
            night_tis = cluster.task_instances("ot_claims_nightly", night)
            assert len({ti["map_index"] for ti in night_tis if ti["task_id"] == "night.build_claims"}) == 3
            hosts = {t["hostname"] for ti in night_tis
                     for t in cluster.tries("ot_claims_nightly", night, ti["task_id"], ti["map_index"])}
            assert hosts == {VICTIM, SURVIVOR}, hosts
            print(f"night done after {time.monotonic() - started:.0f} s")

            # Clear: the killed task and what follows it in its practice (and the night's announcement) run
            # again and add nothing
            before = {(ti["task_id"], ti["map_index"]): ti["try_number"] for ti in night_tis}
            cleared = {(ti["task_id"], ti["map_index"]) for ti in cluster.clear("ot_claims_nightly", night, [key])}
            assert key in cleared and ("announce_sent", -1) in cleared, cleared
            assert all(k[1] == key[1] for k in cleared if k[0].startswith("night.")), cleared
            assert_succeeds(cluster, "ot_claims_nightly", night)
            after = {(ti["task_id"], ti["map_index"]): (ti["try_number"], ti["state"])
                     for ti in cluster.task_instances("ot_claims_nightly", night)}
            assert all(after[k] == (before[k] + 1, "success") for k in cleared), (cleared, after)
            print(f"cleared {len(cleared)} task(s), done after {time.monotonic() - started:.0f} s")

            # the rest of the cycle was started by the assets alone, and every run of it succeeded
            chain = wait_for_the_asset_chain(cluster)
            assert {(d, r["run_type"], r["state"]) for d, rs in chain.items() for r in rs} == {
                (d, "asset_triggered", "success") for d in ASSET_TRIGGERED}, chain
            print(f"asset-triggered runs {({d: len(rs) for d, rs in chain.items()})} done after "
                  f"{time.monotonic() - started:.0f} s")

            assert violations(warehouse, home) == []
            assert differences(clean["snapshot"], warehouse_snapshot(warehouse)) == {}
    finally:
        drop_site(warehouse)
    print(f"test took {time.monotonic() - started:.0f} s")
