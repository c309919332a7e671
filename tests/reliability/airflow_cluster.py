"""A real multi-worker Airflow on this machine, for the reliability tests.

`AirflowCluster` runs Airflow 3.3 as a deployment does, with the CeleryExecutor: a fresh PostgreSQL
database for the metadata (and Celery's results), a Redis database as the broker, an api-server on a free
loopback port (REST and the Execution API the workers report to), a scheduler, a dag-processor over
dags/, and Celery workers. Everything is configured by environment variables in a temporary AIRFLOW_HOME;
each process gets the same environment (the otedi settings included, since tasks read OTEDI_* where they
run) and writes its output to <home>/processes/<name>.log.

Each process is started in its own session, so its process group holds it and its children. Airflow
starts every task runner in a process group of its own (supervisor.py, `new_process_group`), so killing a
worker's group alone would leave the task running; `kill` therefore SIGKILLs the group and every process
descended from it, as losing the machine would. Each worker reports its own name as the task instance's
hostname ([core] hostname_callable = `worker_hostname`) and as the PostgreSQL application_name of its
connections (PGAPPNAME), so a test can tell which worker ran a task and see its open transactions.

Heartbeats are short ([workers] min_heartbeat_interval 2 s, [scheduler] task_instance_heartbeat_timeout
10 s) so a task whose worker died is failed, and retried elsewhere, within seconds.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import httpx
import psutil
from sqlalchemy import create_engine, make_url, text

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]
WORKER_NAME_VARIABLE = "OTEDI_TEST_WORKER_NAME"
REDIS_OWNER_KEY = "otedi:reliability:owner"
FINISHED = ("success", "failed")
WORKER_SLOTS = 1  # tasks at once per worker: two workers fill the machine's two cores


def worker_hostname() -> str:
    """[core] hostname_callable of the workers: their own name, so task instances record which one ran."""
    return os.environ.get(WORKER_NAME_VARIABLE) or socket.getfqdn()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def create_database(admin_url: str, prefix: str) -> str:
    """A new, empty PostgreSQL database with a unique name; returns its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, url: str) -> None:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    admin.dispose()


def claim_redis_database(redis_url: str, token: str) -> int:
    """A Redis database (1-15) that is empty, marked as ours with an atomic SET NX so that two clusters
    started at once never share one. Released (emptied) by `release_redis_database`."""
    import redis

    for number in range(1, 16):
        client = redis.Redis.from_url(redis_url, db=number)
        try:
            if client.dbsize() == 0 and client.set(REDIS_OWNER_KEY, token, nx=True):
                return number
        finally:
            client.close()
    raise RuntimeError(f"no empty Redis database at {redis_url}")


def release_redis_database(redis_url: str, number: int, token: str) -> None:
    """Empty the database we claimed: the queue, and the messages the killed worker never acknowledged."""
    import redis

    client = redis.Redis.from_url(redis_url, db=number)
    try:
        if client.get(REDIS_OWNER_KEY) == token.encode():
            client.flushdb()
    finally:
        client.close()


def _interrupt_on_sigterm(_signum, _frame) -> None:
    """SIGTERM as Ctrl-C: pytest stops the session, running every teardown on the way out."""
    raise KeyboardInterrupt


class AirflowCluster:
    """api-server, scheduler, dag-processor and Celery workers over PostgreSQL and Redis (see the module
    docstring). Use as a context manager: everything it started is stopped and dropped on exit."""

    def __init__(self, home: Path, *, postgres_admin_url: str, redis_url: str, env: dict[str, str],
                 workers: tuple[str, ...] = ("worker1", "worker2")):
        self.home = home
        self.postgres_admin_url = postgres_admin_url
        self.redis_url = redis_url
        self.workers = workers
        self.otedi_env = env
        self.token = secrets.token_hex(8)
        self.queue = f"otedi-{self.token}"
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.metadata_url: str | None = None
        self.redis_db: int | None = None
        self.processes: dict[str, subprocess.Popen] = {}
        self.killed: set[str] = set()
        self.logs = home / "processes"
        self.api = httpx.Client(base_url=f"{self.base_url}/api/v2", timeout=30)

    # -- start and stop ---------------------------------------------------------------------------

    def __enter__(self) -> AirflowCluster:
        # a SIGTERM (a CI timeout) would end this process without teardown, leaving the cluster running
        self._previous_sigterm = signal.signal(signal.SIGTERM, _interrupt_on_sigterm)
        try:
            self.start()
        except BaseException:
            print(self.log_tails())
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.stop()
        finally:
            signal.signal(signal.SIGTERM, self._previous_sigterm)

    def environment(self) -> dict[str, str]:
        """The environment of every Airflow process: this one's without AIRFLOW*/OTEDI* settings, then
        Airflow's configuration, then the otedi settings."""
        assert self.metadata_url and self.redis_db is not None
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "OTEDI_"))}
        airflow = {
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.metadata_url,
            # psycopg 3 is async-capable; Airflow would otherwise derive an asyncpg URL (not installed)
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": self.metadata_url,
            "AIRFLOW__CELERY__BROKER_URL": f"{self.redis_url.rstrip('/')}/{self.redis_db}",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{self.metadata_url}",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(WORKER_SLOTS),
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": self.queue,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.base_url,
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(32),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(64),
            "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "2",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "10",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "TZ": "UTC",
        }
        return {**base, **airflow, **self.otedi_env}

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        self.metadata_url = create_database(self.postgres_admin_url, "otedi_airflow")
        self.redis_db = claim_redis_database(self.redis_url, self.token)
        env = self.environment()
        with open(self.logs / "db-migrate.log", "wb") as out:
            subprocess.run([str(BIN / "airflow"), "db", "migrate"], env=env, stdout=out, stderr=subprocess.STDOUT,
                           check=True, timeout=300)
        self._spawn("api-server", ["api-server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"],
                    env)
        self._spawn("scheduler", ["scheduler", "--skip-serve-logs"], env)
        self._spawn("dag-processor", ["dag-processor"], env)
        for name in self.workers:
            worker_env = {**env, WORKER_NAME_VARIABLE: name, "PGAPPNAME": name, "PYTHONPATH": str(REPO),
                          "AIRFLOW__CORE__HOSTNAME_CALLABLE": f"{__name__}.worker_hostname"}
            self._spawn(name, ["celery", "worker", "--celery-hostname", f"{name}@%h", "--concurrency",
                               str(WORKER_SLOTS), "--queues", self.queue, "--skip-serve-logs",
                               "--without-gossip", "--without-mingle"], worker_env)
        self.wait(self._healthy, 180, "the api-server to report a healthy scheduler and dag-processor")
        for name in self.workers:
            self.wait(lambda n=name: " ready." in self.log(n), 120, f"Celery worker {name} to be ready")

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> None:
        with open(self.logs / f"{name}.log", "wb") as out:
            self.processes[name] = subprocess.Popen([str(BIN / "airflow"), *args], env=env, cwd=self.home,
                                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def _healthy(self) -> bool:
        try:
            health = self.api.get("/monitor/health").json()
        except httpx.HTTPError:
            return False
        return all((health.get(part) or {}).get("status") == "healthy"
                   for part in ("metadatabase", "scheduler", "dag_processor"))

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 15 s, to every process group and task runner; workers first. Then
        drop the metadata database and empty the Redis database."""
        for name in reversed(list(self.processes)):
            tree = self._tree(name)
            self._signal(name, tree, signal.SIGTERM)
            _, alive = psutil.wait_procs(tree, timeout=15)
            if alive:
                self._signal(name, alive, signal.SIGKILL)
                psutil.wait_procs(alive, timeout=5)
            self.processes[name].wait(timeout=5)
        self.api.close()
        if self.metadata_url:
            drop_database(self.postgres_admin_url, self.metadata_url)
            self.metadata_url = None
        if self.redis_db is not None:
            release_redis_database(self.redis_url, self.redis_db, self.token)
            self.redis_db = None

    def kill(self, name: str) -> list[int]:
        """SIGKILL a process with its process group and every descendant (task runners have groups of their
        own), as losing the machine would. Returns the pids killed."""
        self.killed.add(name)
        tree = self._tree(name)
        self._signal(name, tree, signal.SIGKILL)
        psutil.wait_procs(tree, timeout=10)
        self.processes[name].wait(timeout=5)
        return [member.pid for member in tree]

    def _tree(self, name: str) -> list[psutil.Process]:
        """The process and its descendants, taken before any is signalled (orphans lose their parent)."""
        try:
            root = psutil.Process(self.processes[name].pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def _signal(self, name: str, members: list[psutil.Process], sig: signal.Signals) -> None:
        """`sig` to the process's group, and to each member in another group (the task runners)."""
        group = self.processes[name].pid
        try:
            os.killpg(group, sig)
        except ProcessLookupError:
            pass
        for member in members:
            try:
                if os.getpgid(member.pid) != group:
                    member.send_signal(sig)
            except (ProcessLookupError, psutil.NoSuchProcess):
                pass

    # -- waiting and diagnostics -----------------------------------------------------------------

    def wait(self, condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.5) -> None:
        """Poll `condition` until true; fail early, naming it, when a process that was not killed exits."""
        deadline = time.monotonic() + timeout
        while not condition():
            exited = [n for n, p in self.processes.items() if p.poll() is not None and n not in self.killed]
            if exited:
                raise RuntimeError(f"Airflow process(es) {exited} exited while waiting for {what}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout:.0f} s for {what}")
            time.sleep(interval)

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def log_tails(self, lines: int = 40) -> str:
        """The last lines of every process's log and of the five most recent task logs."""
        parts = []
        task_logs = sorted((self.home / "logs").rglob("attempt=*.log"), key=lambda p: p.stat().st_mtime)
        for path in [*sorted(self.logs.glob("*.log")), *task_logs[-5:]]:
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"===== {path.relative_to(self.home)} (last {len(tail)} lines)\n" + "\n".join(tail))
        return "\n".join(parts)

    @contextmanager
    def diagnostics(self) -> Iterator[None]:
        """On any failure inside the block, print the log tails (pytest shows them with the failure)."""
        try:
            yield
        except BaseException:
            print(self.log_tails())
            raise

    # -- driving runs over the REST API -----------------------------------------------------------

    def call(self, method: str, path: str, **kwargs) -> dict:
        response = self.api.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json()

    def wait_for_dags(self, dag_ids: tuple[str, ...], timeout: float = 120) -> None:
        """Until the dag-processor has stored every DAG, with no import error."""
        def parsed() -> bool:
            errors = self.call("GET", "/importErrors")
            if errors["total_entries"]:
                raise AssertionError(f"DAG import errors: {[e['filename'] for e in errors['import_errors']]}")
            found = {d["dag_id"] for d in self.call("GET", "/dags", params={"limit": 100})["dags"]}
            return set(dag_ids) <= found
        self.wait(parsed, timeout, f"the dag-processor to parse {', '.join(dag_ids)}")

    def set_pool(self, name: str, slots: int) -> None:
        self.call("POST", "/pools", json={"name": name, "slots": slots, "description": "reliability test"})

    def unpause(self, dag_id: str) -> None:
        self.call("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def trigger(self, dag_id: str, logical_date: str) -> str:
        return self.call("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": logical_date})["dag_run_id"]

    def dag_runs(self, dag_id: str) -> list[dict]:
        """Every run of the DAG (run_id, run_type, state, ...)."""
        return self.call("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100})["dag_runs"]

    def queued_asset_events(self, dag_id: str) -> int:
        """Asset events the DAG is scheduled on that no run of it has taken yet."""
        return self.call("GET", f"/dags/{dag_id}/assets/queuedEvents")["total_entries"]

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.call("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances",
                         params={"limit": 1000})["task_instances"]

    def tries(self, dag_id: str, run_id: str, task_id: str, map_index: int) -> list[dict]:
        """Every attempt of one task instance (hostname, state, try_number), oldest first."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/{map_index}/tries"
        return sorted(self.call("GET", path)["task_instances"], key=lambda t: t["try_number"])

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float) -> str:
        """The run's final state (success or failed)."""
        self.wait(lambda: self.run_state(dag_id, run_id) in FINISHED, timeout, f"{dag_id} run {run_id} to finish",
                  interval=1.0)
        return self.run_state(dag_id, run_id)

    def clear(self, dag_id: str, run_id: str, task_ids: list) -> list[dict]:
        """Clear task instances (ids, or [id, map_index]) of a run with what follows them, as the UI's Clear
        does; they run again. Returns the task instances cleared."""
        body = {"dry_run": False, "dag_run_id": run_id, "task_ids": task_ids, "only_failed": False,
                "include_downstream": True, "reset_dag_runs": True}
        return self.call("POST", f"/dags/{dag_id}/clearTaskInstances", json=body)["task_instances"]
