"""The Airflow DAGs (dags/) and the steps they run (otedi.nightly).

- DagBag import with zero errors; each DAG's tasks, max_active_runs, pool (each in airflow-pools.json),
  retries, timeouts, map_index_template; the demo DAG only with OTEDI_SIMULATOR=1.
- No Airflow metadata-database access from dags/ or otedi/ (real workers refuse it; dag.test() does not).
- dag.test() end to end for each DAG on a temporary Airflow SQLite database, a SQLite warehouse, the
  file:// drop and the simulator (the demo DAG), with the figures checked against the plain library run.
- Assets: each producing run records its asset event (ids and counts as extra), the consuming DAGs are
  scheduled on those assets in the metadata database, an ingest with nothing new records none.
- Failures: a data error fails at once (no retry) and the failure callback logs ids and counts only; a
  network error is retried by Airflow with one drop attempt per try.
- Manifests: one per night and practice, of that night's files only, never changed by a later night or
  a re-run.
- Re-runs: every task fails once (retried), every task fails beyond its retries in turn (the night is
  re-run for the same logical date each time, as Clear does), and a clean night re-run: the warehouse
  ends up exactly as after one clean run (no duplicate claim, file, submission, fetch or posting).

Airflow reads its configuration when first imported, so AIRFLOW_HOME etc. are set by the `airflow`
fixture before the first import. If something in this process imported airflow earlier with another
home, the whole module re-runs itself in a subprocess instead.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timezone
from pathlib import Path
from unittest import mock

import pandas as pd
import pytest
from sqlalchemy import func, select

from otedi import nightly
from otedi.charges.synth import synth_charges
from otedi.errors import ExtractError
from otedi.transport import TransportAuthError
from otedi.warehouse import db, models
from otedi.warehouse.db import session_scope

ROOT = Path(__file__).resolve().parents[1]
DAGS = ROOT / "dags"
POOLS_FILE = ROOT / "airflow-pools.json"
DAG_IDS = ("ot_claims_nightly", "ot_remittance_ingest", "ot_reconciliation")
DEMO = "ot_demo_clearinghouse"  # only with OTEDI_SIMULATOR=1 where the DAGs are parsed
NIGHT = datetime(2026, 10, 1, 6, 0, tzinfo=timezone.utc)  # 02:00 in Columbus: bills 2026-09-30
BATCH_DATE = "2026-09-30"
INGEST_RUN = datetime(2026, 10, 1, 12, 0, tzinfo=timezone.utc)
RECON_RUN = datetime(2026, 10, 1, 14, 0, tzinfo=timezone.utc)  # 10:00 in Columbus: reports/2026-10-01
PRACTICES = ("BRIGHTHANDS", "KIDSTHRIVE", "HANDWORKS")

_SUBPROCESS_FLAG = "OTEDI_DAG_TESTS_IN_SUBPROCESS"
_FOREIGN_AIRFLOW = "airflow" in sys.modules and os.environ.get(_SUBPROCESS_FLAG) != "1"


# -- Airflow, once per module ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def airflow():
    """A fresh AIRFLOW_HOME with its own SQLite metadata database; dags/ as the DAG folder."""
    if _FOREIGN_AIRFLOW:
        pytest.skip("airflow was imported before this module; covered by test_in_subprocess")
    home = Path(tempfile.mkdtemp(prefix="otedi-airflow-home-"))
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        # read when the DAG files are parsed: no waiting between retries, a short inbox wait, the demo DAG
        "OTEDI_RETRY_DELAY_SECONDS": "0",
        "OTEDI_INBOUND_WAIT_SECONDS": "1",
        "OTEDI_SIMULATOR": "1",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        from airflow.utils import db as airflow_db

        airflow_db.resetdb()
        from airflow.dag_processing.dagbag import DagBag

        yield DagBag(dag_folder=str(DAGS))
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(home, ignore_errors=True)


def test_in_subprocess():
    """Only when airflow was already imported in this process: run this module in a fresh interpreter."""
    if not _FOREIGN_AIRFLOW:
        pytest.skip("airflow runs in this process")
    env = {**os.environ, _SUBPROCESS_FLAG: "1"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


# -- the embedded set-up: SQLite warehouse, file:// drop, simulator, one night's extracts ---------------


@pytest.fixture(scope="module")
def extract_frame(tmp_path_factory) -> pd.DataFrame:
    path = tmp_path_factory.mktemp("extract") / "charges.csv"
    synth_charges(300, 11, path, defect_rate=0.01, start=date(2026, 8, 10), days=52)
    return pd.read_csv(path, dtype=str, keep_default_na=False)


class Site:
    """One isolated otedi installation: OTEDI_HOME with the warehouse, drop, extracts and reports."""

    def __init__(self, home: Path, frame: pd.DataFrame, template: Path):
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        shutil.copy(template, home / "otedi.db")
        self.url = f"sqlite:///{home / 'otedi.db'}"
        self.env = {
            "OTEDI_HOME": str(home),
            "OTEDI_DATABASE_URL": self.url,
            "OTEDI_DROP_URL": f"file://{home / 'drop'}",
            "OTEDI_SIMULATOR": "1",
            "OTEDI_SIMULATOR_SEED": "5",
            "OTEDI_FAULT_FILE": str(home / "faults.json"),
        }
        for practice_id, rows in frame.groupby("practice_id"):
            folder = home / "extracts" / practice_id
            folder.mkdir(parents=True)
            rows.to_csv(folder / f"charges_{BATCH_DATE}.csv", index=False)

    def __enter__(self):
        self._mp = pytest.MonkeyPatch()
        for key, value in self.env.items():
            self._mp.setenv(key, value)
        self._mp.delenv("OTEDI_FAULTS", raising=False)
        self._mp.delenv("OTEDI_SFTP_CONN_ID", raising=False)
        return self

    def __exit__(self, *exc):
        self._mp.undo()
        db.engine(self.url).dispose()

    def counts(self) -> dict:
        """Rows per table, the control counters, and the files made and sent, by name."""
        tables = (models.ExtractFile, models.Charge, models.ChargeReject, models.Claim, models.ClaimLine,
                  models.EditIssue, models.ClaimFile, models.Submission, models.FetchedFile, models.InboundFile,
                  models.Remittance, models.ClaimPayment, models.LedgerEntry, models.ProviderAdjustment,
                  models.AckResult, models.ClaimStatusEvent)
        with session_scope() as s:
            out = {m.__tablename__: s.scalar(select(func.count()).select_from(m)) for m in tables}
            out["counters"] = dict(s.execute(
                select(models.ControlCounter.name, models.ControlCounter.last_value)).all())
            # file names carry the ISA13 number, handed out in whichever order the practices ran
            out["files_sent"] = sorted(_practice_file(n) for n in s.scalars(select(models.Submission.remote_name)))
            out["claims_by_status"] = dict(s.execute(
                select(models.Claim.status, func.count()).group_by(models.Claim.status)).all())
            out["ledger_total"] = str(s.scalar(select(func.coalesce(func.sum(models.LedgerEntry.amount), 0))))
        out["drop_outbound"] = sorted(_practice_file(p.name) for p in (self.home / "drop" / "outbound").iterdir())
        out["manifests"] = {p.stem: {k: v for k, v in json.loads(p.read_text()).items() if k != "files"}
                            for p in (self.home / "submissions").glob("*/*.json")}
        out["reports"] = sorted(p.name for p in (self.home / "reports").glob("*/*"))
        return out


def _practice_file(name: str) -> str:
    return re.sub(r"_\d{9}\.837$", ".837", name)


_real_sleep = time.sleep


def _short_sleep(seconds: float) -> None:
    _real_sleep(min(seconds, 0.05))


def run(bag, dag_id: str, when: datetime, **conf):
    """dag.test() for one logical date; a failed run is returned, not raised.

    dag.test() sleeps a second whenever no task is ready (a retry or a sensor reschedule pending);
    while it runs, sleeps are capped at 50 ms so the many retries below take milliseconds."""
    with mock.patch("time.sleep", _short_sleep):
        return bag.get_dag(dag_id).test(logical_date=when, run_conf=conf or None)


def states(dagrun) -> dict[str, str]:
    """task_id (with map index) -> state."""
    out = {}
    for ti in dagrun.get_task_instances():
        key = ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"
        out[key] = str(ti.state)
    return out


def assert_success(dagrun):
    assert str(dagrun.state) == "success", states(dagrun)


@pytest.fixture(scope="module")
def clean(airflow, extract_frame, sqlite_template, tmp_path_factory):
    """One clean night, the demo clearinghouse's answer, ingest and reconciliation, in the order the assets
    start them: the figures every re-run must end at."""
    with Site(tmp_path_factory.mktemp("clean"), extract_frame, sqlite_template) as site:
        nightly_run = run(airflow, "ot_claims_nightly", NIGHT)
        assert_success(nightly_run)
        after_night = site.counts()
        demo_run = run(airflow, DEMO, INGEST_RUN)
        assert_success(demo_run)
        ingest_run = run(airflow, "ot_remittance_ingest", INGEST_RUN)
        assert_success(ingest_run)
        recon_run = run(airflow, "ot_reconciliation", RECON_RUN)
        assert_success(recon_run)
        yield {"site": site, "night": after_night, "final": site.counts(),
               "runs": {"nightly": nightly_run, "demo": demo_run, "ingest": ingest_run, "recon": recon_run}}


@pytest.fixture
def fast_retries(airflow, monkeypatch):
    """Retry at once: no exponential backoff (Airflow waits at least 1-2 s per retry with it)."""
    for dag in airflow.dags.values():
        for task in dag.tasks:
            monkeypatch.setattr(task, "retry_exponential_backoff", 0)
    return airflow


@pytest.fixture
def site(airflow, extract_frame, sqlite_template, tmp_path):
    with Site(tmp_path / "site", extract_frame, sqlite_template) as s:
        yield s


# -- DagBag and static checks -----------------------------------------------------------------


def test_dags_import_without_errors_and_are_wired(airflow):
    bag = airflow
    assert not bag.import_errors, bag.import_errors
    assert set(bag.dag_ids) == {*DAG_IDS, DEMO}
    night = {"night.find_extract", "night.load_charges", "night.build_claims", "night.validate_837p",
             "night.upload", "night.record_submission"}
    expected = {
        "ot_claims_nightly": {"practices", *night, "announce_sent"},
        "ot_remittance_ingest": {"wait_for_inbound", "fetch", "ingest", "loaded_anything", "announce_loaded"},
        "ot_reconciliation": {"report_date", "refresh_tables", "html_report"},
        DEMO: {"answer", "answered_anything", "announce_answered"},
    }
    transport = {"night.upload", "wait_for_inbound", "fetch"}
    for dag_id in (*DAG_IDS, DEMO):
        dag = bag.get_dag(dag_id)
        assert set(dag.task_ids) == expected[dag_id]
        assert dag.max_active_runs == 1
        assert not dag.catchup
        for task in dag.tasks:
            assert task.retries >= 2 and task.retry_exponential_backoff == 2.0, task.task_id
            assert task.execution_timeout is not None, task.task_id
            assert task.on_failure_callback, task.task_id
            if task.task_id in transport:
                assert task.pool == "clearinghouse_sftp", task.task_id
                assert task.retries == 4 and task.execution_timeout.total_seconds() == 20 * 60
            else:
                assert task.pool == "default_pool", task.task_id
            # mapped tasks are named by their practice id in the UI and the logs
            assert (task.map_index_template == "{{ task.op_kwargs['practice_id'] }}") == (task.task_id in night)
    # the nightly work fans out per practice (dynamic task mapping of the task group)
    nightly_dag = bag.get_dag("ot_claims_nightly")
    assert nightly_dag.task_group_dict["night"].__class__.__name__ == "MappedTaskGroup"
    assert nightly_dag.timetable.__class__.__name__ == "CronTriggerTimetable"
    sensor = bag.get_dag("ot_remittance_ingest").get_task("wait_for_inbound")
    assert sensor.mode == "reschedule" and sensor.soft_fail
    assert bag.get_dag("ot_remittance_ingest").get_task("ingest").trigger_rule == "none_failed"


def test_assets_link_the_dags(airflow):
    """claims -> CLAIMS_SENT -> demo clearinghouse -> CLEARINGHOUSE_ANSWERED -> ingest -> REMITTANCES_LOADED
    -> reconciliation; ingest and reconciliation keep their time schedules beside the asset."""
    from airflow.sdk import AssetOrTimeSchedule

    from otedi.dag_defaults import CLAIMS_SENT, CLEARINGHOUSE_ANSWERED, REMITTANCES_LOADED

    bag = airflow
    outlets = {(dag_id, t.task_id): t.outlets for dag_id in (*DAG_IDS, DEMO) for t in bag.get_dag(dag_id).tasks
               if t.outlets}
    assert outlets == {("ot_claims_nightly", "announce_sent"): [CLAIMS_SENT],
                       (DEMO, "announce_answered"): [CLEARINGHOUSE_ANSWERED],
                       ("ot_remittance_ingest", "announce_loaded"): [REMITTANCES_LOADED]}
    assert bag.get_dag(DEMO).timetable.asset_condition == CLAIMS_SENT
    for dag_id, asset, cron in (("ot_remittance_ingest", CLEARINGHOUSE_ANSWERED, "*/30 * * * *"),
                                ("ot_reconciliation", REMITTANCES_LOADED, "0 6 * * *")):
        timetable = bag.get_dag(dag_id).timetable
        assert isinstance(timetable, AssetOrTimeSchedule) and timetable.asset_condition == asset
        assert timetable.timetable.expression == cron
    # the events are only sent when there is news: the announcing task sits behind a short circuit
    for dag_id, gate, announce in (("ot_remittance_ingest", "loaded_anything", "announce_loaded"),
                                   (DEMO, "answered_anything", "announce_answered")):
        dag = bag.get_dag(dag_id)
        assert dag.get_task(gate).__class__.__name__ == "_ShortCircuitDecoratedOperator"
        assert dag.get_task(announce).upstream_task_ids >= {gate}


def test_production_parse_has_no_simulator(airflow, monkeypatch):
    """Without OTEDI_SIMULATOR the demo DAG does not exist and ingest waits for the claims night itself."""
    from airflow.dag_processing.dagbag import DagBag

    from otedi.dag_defaults import CLAIMS_SENT

    monkeypatch.delenv("OTEDI_SIMULATOR", raising=False)
    bag = DagBag(dag_folder=str(DAGS))
    assert not bag.import_errors, bag.import_errors
    assert set(bag.dag_ids) == set(DAG_IDS)
    assert bag.get_dag("ot_remittance_ingest").timetable.asset_condition == CLAIMS_SENT
    assert not [t.task_id for d in bag.dags.values() for t in d.tasks if "simul" in t.task_id or "answer" in t.task_id]


def test_pools_file_provisions_every_pool_the_tasks_use(airflow):
    """airflow-pools.json is what `airflow pools import` reads (README); every task's pool is in it."""
    pools = json.loads(POOLS_FILE.read_text())
    for name, pool in pools.items():
        assert set(pool) <= {"slots", "description", "include_deferred"} and {"slots", "description"} <= set(pool)
        assert isinstance(pool["slots"], int) and pool["slots"] >= 1, name
    used = {t.pool for d in airflow.dags.values() for t in d.tasks}
    assert used - {"default_pool"} <= set(pools), used
    assert pools["clearinghouse_sftp"]["slots"] == 1


def test_the_env_file_is_paths_and_settings_only():
    """airflow.env (sourced by every shell, README) sets the DAG folder and homes; it holds no secret."""
    text = (ROOT / "airflow.env").read_text()
    assigned = dict(re.findall(r"^export ([A-Z0-9_]+)=(.*)$", text, flags=re.M))
    assert {"AIRFLOW_HOME", "AIRFLOW__CORE__DAGS_FOLDER", "AIRFLOW__CORE__LOAD_EXAMPLES", "OTEDI_HOME"} <= set(assigned)
    assert not [k for k in assigned if re.search(r"SECRET|PASSWORD|PASSPHRASE|TOKEN|AIRFLOW_CONN_|KEY$", k)], assigned
    proc = subprocess.run(["sh", "-c", ". ./airflow.env && echo $AIRFLOW__CORE__DAGS_FOLDER"], cwd=ROOT,
                          capture_output=True, text=True, env={"PATH": os.environ["PATH"], "HOME": "/nonexistent"})
    assert proc.returncode == 0 and proc.stdout.strip() == str(DAGS) and not proc.stderr, proc


FORBIDDEN = re.compile(r"airflow\.settings|airflow\.utils\.session|airflow\.models|create_session|provide_session")


def test_no_metadata_database_access_from_dags_or_library():
    offenders = []
    for folder in (ROOT / "dags", ROOT / "otedi"):
        for path in folder.rglob("*.py"):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if FORBIDDEN.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


def test_dag_files_import_nothing_heavy_at_parse_time():
    """Only the standard library, pendulum and airflow.sdk at module level; otedi inside tasks."""
    for dag_id in (*DAG_IDS, DEMO):
        tree_imports = [line for line in (DAGS / f"{dag_id}.py").read_text().splitlines()
                        if line.startswith(("import ", "from "))]
        modules = {line.split()[1] for line in tree_imports}
        assert modules <= {"__future__", "os", "datetime", "pendulum", "airflow.sdk", "otedi.dag_defaults"}, \
            (dag_id, modules)
    # the shared task policy: standard library and airflow.sdk only
    shared = (ROOT / "otedi" / "dag_defaults.py").read_text().splitlines()
    assert {line.split()[1] for line in shared if line.startswith(("import ", "from "))} <= {
        "__future__", "functools", "logging", "os", "datetime", "airflow.sdk"}


# -- otedi.nightly without Airflow --------------------------------------------------------------


def test_batch_date_is_the_day_before_the_run_in_the_practice_time_zone():
    # 02:00 in Columbus on Oct 1 is 06:00 UTC: the night bills Sep 30
    assert nightly.batch_date(None, NIGHT, "America/New_York") == "2026-09-30"
    # 01:30 UTC on Oct 1 is still Sep 30 in Columbus: bills Sep 29
    assert nightly.batch_date(None, datetime(2026, 10, 1, 1, 30, tzinfo=timezone.utc), "America/New_York") == \
        "2026-09-29"
    assert nightly.batch_date(None, datetime(2026, 10, 1, 1, 30, tzinfo=timezone.utc), "UTC") == "2026-09-30"
    assert nightly.batch_date("2026-07-04", NIGHT, "America/New_York") == "2026-07-04"  # the param wins
    assert nightly.practice_batch_date("HANDWORKS", None, NIGHT) == "2026-09-30"
    with pytest.raises(ValueError):
        nightly.batch_date(None, None, "UTC")
    with pytest.raises(ValueError):
        nightly.batch_date("30/09/2026", NIGHT, "UTC")


def test_find_extract_follows_the_folder_layout(tmp_path, monkeypatch):
    monkeypatch.setenv("OTEDI_EXTRACTS_DIR", str(tmp_path))
    assert nightly.find_extract("KIDSTHRIVE", BATCH_DATE) is None
    (tmp_path / "KIDSTHRIVE").mkdir()
    (tmp_path / "KIDSTHRIVE" / "charges_2026-09-29.csv").write_text("x")
    (tmp_path / "KIDSTHRIVE" / f"charges_{BATCH_DATE}.xlsx").write_text("x")
    expected = tmp_path / "KIDSTHRIVE" / f"charges_{BATCH_DATE}.xlsx"
    assert nightly.find_extract("KIDSTHRIVE", BATCH_DATE) == str(expected)
    (tmp_path / "KIDSTHRIVE" / f"charges_{BATCH_DATE}.csv").write_text("x")
    with pytest.raises(ValueError, match="more than one extract"):
        nightly.find_extract("KIDSTHRIVE", BATCH_DATE)


def test_practice_ids_default_to_every_configured_practice(monkeypatch):
    monkeypatch.delenv("OTEDI_PRACTICES", raising=False)
    assert nightly.practice_ids() == list(PRACTICES)
    monkeypatch.setenv("OTEDI_PRACTICES", "HANDWORKS")
    assert nightly.practice_ids() == ["HANDWORKS"]
    monkeypatch.setenv("OTEDI_PRACTICES", "HANDWORKS,NOPE")
    with pytest.raises(ValueError, match="NOPE"):
        nightly.practice_ids()


def test_fault_hook_fails_the_named_step_n_times_per_practice(tmp_path, monkeypatch):
    monkeypatch.setenv("OTEDI_FAULT_FILE", str(tmp_path / "f.json"))
    monkeypatch.setenv("OTEDI_FAULTS", "find_extract:2,load_charges@after")
    monkeypatch.setenv("OTEDI_EXTRACTS_DIR", str(tmp_path))
    for _ in range(2):
        with pytest.raises(nightly.InjectedFault):
            nightly.find_extract("HANDWORKS", BATCH_DATE)
    assert nightly.find_extract("HANDWORKS", BATCH_DATE) is None
    with pytest.raises(nightly.InjectedFault):
        nightly.find_extract("KIDSTHRIVE", BATCH_DATE)
    assert json.loads((tmp_path / "f.json").read_text()) == {"find_extract@before[HANDWORKS]": 2,
                                                             "find_extract@before[KIDSTHRIVE]": 1}


# -- dag.test() end to end ----------------------------------------------------------------------


def test_nightly_run_bills_every_practice_and_sends_one_file_each(clean, extract_frame, sqlite_template, tmp_path,
                                                                 monkeypatch):
    night = clean["night"]
    ti_states = states(clean["runs"]["nightly"])
    assert ti_states.pop("practices") == ti_states.pop("announce_sent") == "success"
    assert set(ti_states.values()) == {"success"} and len(ti_states) == 6 * len(PRACTICES)
    # the same extract through the plain library (no Airflow) gives the same claims and files
    home = tmp_path / "library"
    home.mkdir()
    shutil.copy(sqlite_template, home / "otedi.db")
    monkeypatch.setenv("OTEDI_DATABASE_URL", f"sqlite:///{home / 'otedi.db'}")
    from otedi.outbound import run_outbound

    path = home / "all.csv"
    extract_frame.to_csv(path, index=False)
    ref = run_outbound(path, home / "out", today=date(2026, 10, 1))
    with session_scope() as s:
        ref_claims = s.scalar(select(func.count()).select_from(models.Claim))
        ref_lines = s.scalar(select(func.count()).select_from(models.ClaimLine))
    db.engine(f"sqlite:///{home / 'otedi.db'}").dispose()
    assert night["charge"] == len(extract_frame) - ref.load.rejected - ref.load.duplicates
    assert (night["claim"], night["claim_line"]) == (ref_claims, ref_lines) and ref_claims > 50
    assert night["claim_file"] == night["submission"] == 3  # one 837P per practice, each sent once
    assert len(night["drop_outbound"]) == 3
    assert set(night["claims_by_status"]) <= {"submitted", "held"}
    # the night's manifest per practice
    for practice_id in PRACTICES:
        manifest = json.loads((clean["site"].home / "submissions" / BATCH_DATE / f"{practice_id}.json").read_text())
        assert manifest["files_sent"] == 1 and manifest["claims_sent"] > 0


def test_ingest_run_loads_acknowledgments_and_posts_remittances(clean):
    final, night = clean["final"], clean["night"]
    # a 999 and a 277CA per 837P file, and the 835s of the claims paid at once
    assert final["fetched_file"] >= 3 * 2 + 1
    assert final["inbound_file"] == final["fetched_file"]
    assert final["remittance"] >= 1 and final["ledger_entry"] > 0
    assert final["claims_by_status"].get("submitted", 0) < night["claims_by_status"]["submitted"]
    inbox = clean["site"].home / "drop" / "inbound"
    assert not [p for p in inbox.iterdir() if p.is_file()]  # everything fetched moved to processed/
    with session_scope() as s:
        bpr = s.scalar(select(func.sum(models.Remittance.payment_amount)).where(models.Remittance.status == "posted"))
        plb = s.scalar(select(func.coalesce(func.sum(models.ProviderAdjustment.amount), 0)))
        paid = s.scalar(select(func.sum(models.LedgerEntry.amount)).where(models.LedgerEntry.entry_type == "payment"))
    assert bpr + plb == paid  # the 835 totals are what the ledger holds as payments


def test_reconciliation_run_writes_the_dated_exports(clean):
    folder = clean["site"].home / "reports" / "2026-10-01"
    names = {p.name for p in folder.iterdir()}
    assert "report.html" in names
    assert any(n.endswith(".csv") for n in names) and any(n.endswith(".parquet") for n in names)


def asset_events(uri: str, run_ids) -> list[dict]:
    """The asset events of `uri` that the given runs recorded, from the Airflow metadata database."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.execute(
            select(AssetEvent.source_dag_id, AssetEvent.source_task_id, AssetEvent.source_run_id, AssetEvent.extra)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetModel.uri == uri, AssetEvent.source_run_id.in_(list(run_ids)))
            .order_by(AssetEvent.id)).all()
    return [dict(row._mapping) for row in rows]


def test_each_run_records_its_asset_event_for_the_dag_scheduled_on_it(airflow, clean):
    """A run of each producing DAG records one event of its asset, with ids and counts as extra; the
    metadata database has the consuming DAG scheduled on that asset (what the scheduler starts runs from)."""
    from airflow.dag_processing.dagbag import sync_bag_to_db
    from airflow.models.asset import AssetModel, DagScheduleAssetReference
    from airflow.utils.session import create_session

    from otedi.dag_defaults import CLAIMS_SENT, CLEARINGHOUSE_ANSWERED, REMITTANCES_LOADED

    runs = clean["runs"]
    [sent] = asset_events(CLAIMS_SENT.uri, [runs["nightly"].run_id])
    assert (sent["source_dag_id"], sent["source_task_id"]) == ("ot_claims_nightly", "announce_sent")
    assert sent["extra"] == {"service_dates": [BATCH_DATE], "practices": sorted(PRACTICES), "files_sent": 3,
                             "claims_sent": clean["night"]["claim"] - clean["night"]["claims_by_status"].get("held", 0)}
    [answered] = asset_events(CLEARINGHOUSE_ANSWERED.uri, [runs["demo"].run_id])
    assert answered["source_task_id"] == "announce_answered" and answered["extra"]["acks_999"] == 3
    [loaded] = asset_events(REMITTANCES_LOADED.uri, [runs["ingest"].run_id])
    assert loaded["source_task_id"] == "announce_loaded"
    assert loaded["extra"]["acks"] >= 6 and loaded["extra"]["remittances_posted"] == clean["final"]["remittance"]
    # who runs on each asset, as the scheduler reads it (the DAG folder parsed with OTEDI_SIMULATOR=1)
    sync_bag_to_db(airflow, "dags-folder", None)
    with create_session() as session:
        consumers = {uri: set(session.scalars(
            select(DagScheduleAssetReference.dag_id).join(AssetModel, AssetModel.id == DagScheduleAssetReference.asset_id)
            .where(AssetModel.uri == uri)))
            for uri in (CLAIMS_SENT.uri, CLEARINGHOUSE_ANSWERED.uri, REMITTANCES_LOADED.uri)}
    assert consumers == {CLAIMS_SENT.uri: {DEMO}, CLEARINGHOUSE_ANSWERED.uri: {"ot_remittance_ingest"},
                         REMITTANCES_LOADED.uri: {"ot_reconciliation"}}


def test_an_ingest_with_nothing_new_records_no_event(airflow, clean):
    """Nothing in the inbox: the sensor is skipped, ingest loads nothing, the announcement is skipped, so the
    reconciliation is not started for nothing."""
    from otedi.dag_defaults import REMITTANCES_LOADED

    later = run(airflow, "ot_remittance_ingest", datetime(2026, 10, 1, 13, 0, tzinfo=timezone.utc))
    assert_success(later)
    assert states(later) == {"wait_for_inbound": "skipped", "fetch": "skipped", "ingest": "success",
                             "loaded_anything": "success", "announce_loaded": "skipped"}
    assert asset_events(REMITTANCES_LOADED.uri, [later.run_id]) == []


def test_mapped_tasks_are_named_by_their_practice(clean):
    names = {}
    for ti in clean["runs"]["nightly"].get_task_instances():
        if ti.task_id.startswith("night."):
            names.setdefault(ti.task_id, set()).add(ti.rendered_map_index)
    assert len(names) == 6 and all(found == set(PRACTICES) for found in names.values()), names


class Recorder(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.fixture
def failure_log():
    recorder = Recorder()
    logger = logging.getLogger("otedi.airflow")
    logger.addHandler(recorder)
    yield recorder.lines
    logger.removeHandler(recorder)


@pytest.mark.parametrize("task_id, step, error", [
    ("night.load_charges", "load_charges",
     lambda: ExtractError("charges_2026-09-30.csv", "row 3: DOEPATIENT JANE 1950-01-02 has no header")),
    ("night.upload", "send_files", lambda: TransportAuthError("sftp://ch.example: DOEPATIENT JANE refused")),
])
def test_a_data_error_fails_at_once_and_the_callback_logs_ids_only(airflow, site, monkeypatch, failure_log, task_id,
                                                                   step, error):
    """Bad input or a refusal a retry cannot fix fails the task on its first try, though it has retries; the
    failure callback logs one line of ids and counts, never the error's text."""
    def fail(*args, **kwargs):
        raise error()

    monkeypatch.setattr(nightly, step, fail)
    dagrun = run(airflow, "ot_claims_nightly", NIGHT)
    assert str(dagrun.state) == "failed"
    failed = [ti for ti in dagrun.get_task_instances() if ti.task_id == task_id]
    assert len(failed) == 3 and {(str(ti.state), ti.try_number) for ti in failed} == {("failed", 1)}
    assert airflow.get_dag("ot_claims_nightly").get_task(task_id).retries >= 2  # retries left, not used
    lines = [line for line in failure_log if "otedi task failed" in line]
    assert len(lines) == 3, failure_log
    cause = type(error()).__name__
    assert {re.sub(r"map_index=\d", "map_index=N", re.sub(r"practice=\w+", "practice=P", line)) for line in lines} == {
        f"otedi task failed: dag=ot_claims_nightly run={dagrun.run_id} task={task_id} map_index=N practice=P "
        f"try=1 of {failed[0].max_tries + 1} error={cause}"}
    assert {re.search(r"practice=(\w+)", line).group(1) for line in lines} == set(PRACTICES)
    assert not [line for line in failure_log if "DOEPATIENT" in line or "1950" in line]


def test_a_network_error_is_retried_by_airflow_alone(fast_retries, site, clean, monkeypatch):
    """The drop makes one attempt per operation inside a task; Airflow's retry is the only retry: a failed
    upload is tried exactly twice (one failing, one good), in two task tries, not 4 drop attempts x 5 tries."""
    from otedi.transport.base import TransferIncompleteError
    from otedi.transport.local import LocalDrop

    real_upload = LocalDrop._upload
    calls: dict[str, int] = {}

    def flaky_upload(self, local, path):
        calls[Path(path).name] = calls.get(Path(path).name, 0) + 1
        if calls[Path(path).name] == 1:
            raise TransferIncompleteError(f"{path}: connection reset")
        return real_upload(self, local, path)

    monkeypatch.setattr(LocalDrop, "_upload", flaky_upload)
    dagrun = run(fast_retries, "ot_claims_nightly", NIGHT)
    assert_success(dagrun)
    assert sorted(calls.values()) == [2, 2, 2]
    assert {ti.try_number for ti in dagrun.get_task_instances() if ti.task_id == "night.upload"} == {2}
    assert {ti.try_number for ti in dagrun.get_task_instances() if ti.task_id == "night.build_claims"} == {1}
    assert site.counts() == clean["night"]


def test_retry_cannot_fix_names_the_errors_a_retry_cannot_cure():
    from otedi.errors import ConfigError, X12Error
    from otedi.transport import HostKeyError, RemoteExistsError, TransportError

    assert all(nightly.retry_cannot_fix(e) for e in (
        nightly.InputError("x"), ConfigError("x"), ExtractError("f", "x"), X12Error("x"), TransportAuthError("x"),
        HostKeyError("x"), RemoteExistsError("x")))
    # the network and the database are worth a retry (the drop's "gave up" is a plain TransportError)
    assert not any(nightly.retry_cannot_fix(e) for e in (
        TransportError("send x: gave up after 1 attempts (ConnectionResetError)"), ConnectionError(), OSError(),
        RuntimeError("ingest: the warehouse database failed on 1 file(s)"), nightly.InjectedFault("x")))
    with pytest.raises(nightly.InputError):
        nightly.batch_date("30/09/2026", NIGHT, "UTC")


def test_simulator_day_follows_the_night_that_started_it():
    class Event:
        def __init__(self, extra):
            self.extra = extra

    events = {"otedi_claims_sent": [Event({"service_dates": ["2026-09-29"]}),
                                    Event({"service_dates": ["2026-09-30", "2026-09-29"]})]}
    assert nightly.simulator_day(None, events, NIGHT) == "2026-10-01"
    assert nightly.simulator_day("2026-11-05", events, NIGHT) == "2026-11-05"
    assert nightly.simulator_day(None, {}, datetime(2026, 10, 3, 1, tzinfo=timezone.utc)) == "2026-10-03"


# -- per-night submission manifests -----------------------------------------------------------------

FIRST, SECOND = datetime(2026, 9, 30, 6, 0, tzinfo=timezone.utc), NIGHT  # bill 2026-09-29 and 2026-09-30


def two_nights(site: Site, frame: pd.DataFrame) -> None:
    """Each practice's extract split over two nights: half on 2026-09-29, the rest on 2026-09-30."""
    for practice_id, rows in frame.groupby("practice_id"):
        folder = site.home / "extracts" / practice_id
        for old in folder.iterdir():
            old.unlink()
        half = len(rows) // 2
        rows.iloc[:half].to_csv(folder / "charges_2026-09-29.csv", index=False)
        rows.iloc[half:].to_csv(folder / "charges_2026-09-30.csv", index=False)


def manifests(site: Site) -> dict[tuple[str, str], bytes]:
    return {(p.parent.name, p.stem): p.read_bytes() for p in (site.home / "submissions").glob("*/*.json")}


def files_of(manifest: bytes) -> set[str]:
    return {f["file"] for f in json.loads(manifest)["files"]}


def sent_files() -> set[str]:
    with session_scope() as s:
        return set(s.scalars(select(models.Submission.remote_name)))


def test_each_nights_manifest_lists_its_own_files_and_never_changes(airflow, site, extract_frame):
    two_nights(site, extract_frame)
    assert_success(run(airflow, "ot_claims_nightly", FIRST))
    first = manifests(site)
    assert set(first) == {("2026-09-29", p) for p in PRACTICES}
    assert_success(run(airflow, "ot_claims_nightly", SECOND))
    both = manifests(site)
    assert set(both) == {(d, p) for d in ("2026-09-29", "2026-09-30") for p in PRACTICES}
    assert {k: both[k] for k in first} == first  # the later night changed nothing in the earlier ones
    for practice_id in PRACTICES:
        early, late = files_of(both["2026-09-29", practice_id]), files_of(both["2026-09-30", practice_id])
        assert len(early) == len(late) == 1 and not early & late
        assert json.loads(both["2026-09-29", practice_id])["batch_date"] == "2026-09-29"
    assert set().union(*map(files_of, both.values())) == sent_files()  # every file sent is in one manifest
    # re-running either night (what Clear does) writes nothing new
    assert_success(run(airflow, "ot_claims_nightly", FIRST))
    assert_success(run(airflow, "ot_claims_nightly", SECOND))
    assert manifests(site) == both


def test_a_night_that_failed_keeps_its_files_when_a_later_night_sends_them(airflow, site, extract_frame, monkeypatch):
    """The first night fails after writing its 837P files; the second night's upload sends them with its own,
    but they stay the first night's: its re-run lists them, and the second night lists only its own."""
    for dag in airflow.dags.values():
        for task in dag.tasks:
            monkeypatch.setattr(task, "retries", 0)
    two_nights(site, extract_frame)
    monkeypatch.setenv("OTEDI_FAULTS", "write_files_for@after")
    assert str(run(airflow, "ot_claims_nightly", FIRST).state) == "failed"
    monkeypatch.delenv("OTEDI_FAULTS")
    assert_success(run(airflow, "ot_claims_nightly", SECOND))
    assert len(sent_files()) == 6  # the second night's upload sent both nights' files
    assert_success(run(airflow, "ot_claims_nightly", FIRST))
    found = manifests(site)
    for practice_id in PRACTICES:
        early, late = files_of(found["2026-09-29", practice_id]), files_of(found["2026-09-30", practice_id])
        assert len(early) == len(late) == 1 and not early & late
    assert set().union(*map(files_of, found.values())) == sent_files()


def test_a_later_nights_files_never_appear_in_an_earlier_nights_manifest(airflow, site, extract_frame, monkeypatch):
    """The first night fails before building; the second builds both nights' charges into its files. Re-run
    afterwards, the first night sends nothing and its manifest lists nothing: the files are the second's."""
    for dag in airflow.dags.values():
        for task in dag.tasks:
            monkeypatch.setattr(task, "retries", 0)
    two_nights(site, extract_frame)
    monkeypatch.setenv("OTEDI_FAULTS", "build_claims_for")
    assert str(run(airflow, "ot_claims_nightly", FIRST).state) == "failed"
    monkeypatch.delenv("OTEDI_FAULTS")
    assert_success(run(airflow, "ot_claims_nightly", SECOND))
    assert_success(run(airflow, "ot_claims_nightly", FIRST))
    found = manifests(site)
    for practice_id in PRACTICES:
        early = json.loads(found["2026-09-29", practice_id])
        assert (early["files_sent"], early["files"]) == (0, [])
        assert len(files_of(found["2026-09-30", practice_id])) == 1
    assert set().union(*map(files_of, found.values())) == sent_files()


def test_manual_run_without_logical_date_bills_the_service_date_param(airflow, site, clean):
    """`airflow dags trigger` without -l gives logical_date None: the service_date param picks the night."""
    assert_success(run(airflow, "ot_claims_nightly", None, service_date=BATCH_DATE))
    assert site.counts() == clean["night"]


def test_nightly_and_ingest_over_the_sftp_connection(airflow, site, clean, openssh_server, monkeypatch):
    """The drop as an Airflow connection (AIRFLOW_CONN_*) to a real OpenSSH server; the simulator answers
    on the server's folder between the two DAGs."""
    from otedi.simulator import simulate

    drop = site.home / "drop"
    for folder in ("outbound", "inbound"):
        (drop / folder).mkdir(parents=True)
    monkeypatch.setenv("AIRFLOW_CONN_OTEDI_CLEARINGHOUSE", json.dumps({
        "conn_type": "sftp", "host": "127.0.0.1", "port": openssh_server.port, "login": openssh_server.user,
        "extra": {"key_file": str(openssh_server.key_file), "host_key": openssh_server.host_key_line,
                  "look_for_keys": "false"}}))
    monkeypatch.setenv("OTEDI_SFTP_CONN_ID", "otedi_clearinghouse")
    monkeypatch.setenv("OTEDI_SFTP_BASE_PATH", str(drop))
    monkeypatch.delenv("OTEDI_SIMULATOR")
    monkeypatch.delenv("OTEDI_DROP_URL")
    assert_success(run(airflow, "ot_claims_nightly", NIGHT))
    assert site.counts() == clean["night"]
    simulate(drop, drop / ".simulator", seed=5, today=date(2026, 10, 1))
    assert_success(run(airflow, "ot_remittance_ingest", INGEST_RUN))
    with session_scope() as s:
        assert set(s.scalars(select(models.Submission.drop))) == {
            f"sftp://127.0.0.1:{openssh_server.port}/{str(drop).lstrip('/')} (connection otedi_clearinghouse)"}
    expected = {k: v for k, v in clean["final"].items() if k != "reports"}
    assert {k: v for k, v in site.counts().items() if k != "reports"} == expected


# -- re-runs: faults at every step ----------------------------------------------------------------

# (step in otedi.nightly, where the fault strikes, the DAG task that runs it), in the order they run.
# "after" faults strike once the step's work is committed: the worst moment to lose a task.
STEPS = {
    "ot_claims_nightly": [("practice_ids", "before", "practices"), ("find_extract", "after", "night.find_extract"),
                          ("load_charges", "after", "night.load_charges"),
                          ("build_claims_for", "after", "night.build_claims"),
                          ("write_files_for", "after", "night.validate_837p"), ("send_files", "after", "night.upload"),
                          ("record_submissions", "after", "night.record_submission"),
                          ("night_summary", "before", "announce_sent")],
    DEMO: [("simulate", "after", "answer")],
    "ot_remittance_ingest": [("inbound_waiting", "before", "wait_for_inbound"), ("fetch_new", "after", "fetch"),
                             ("ingest", "after", "ingest")],
    "ot_reconciliation": [("report_date", "before", "report_date"),
                          ("refresh_reconciliation", "after", "refresh_tables"),
                          ("write_report", "after", "html_report")],
}
ORDER = ("ot_claims_nightly", DEMO, "ot_remittance_ingest", "ot_reconciliation")  # as the assets start them
WHEN = {"ot_claims_nightly": NIGHT, DEMO: INGEST_RUN, "ot_remittance_ingest": INGEST_RUN,
        "ot_reconciliation": RECON_RUN}


def test_every_task_failing_once_is_retried_without_duplicates(fast_retries, site, clean, monkeypatch):
    airflow = fast_retries
    """Each task raises once after doing its work; Airflow retries it; the warehouse matches a clean run.
    Then every run is re-run for the same date (what Clear does) and nothing changes."""
    monkeypatch.setenv("OTEDI_FAULTS", ",".join(f"{step}@{where}" for steps in STEPS.values()
                                                for step, where, _ in steps))
    for dag_id in ORDER:
        dagrun = run(airflow, dag_id, WHEN[dag_id])
        assert_success(dagrun)
        faulted = {task_id for _, _, task_id in STEPS[dag_id]}
        tries = {(ti.task_id, ti.map_index): ti.try_number for ti in dagrun.get_task_instances()}
        assert {key: n for key, n in tries.items() if key[0] in faulted} == \
            {key: 2 for key in tries if key[0] in faulted}, tries
    faults = json.loads(Path(site.env["OTEDI_FAULT_FILE"]).read_text())
    assert len(faults) == 1 + 6 * len(PRACTICES) + 1 + 1 + 3 + 3 and set(faults.values()) == {1}
    assert site.counts() == clean["final"]

    monkeypatch.delenv("OTEDI_FAULTS")
    for dag_id in ORDER:
        assert_success(run(airflow, dag_id, WHEN[dag_id]))
    assert site.counts() == clean["final"]


def test_each_task_failing_for_good_then_the_night_rerun_completes_it(airflow, site, clean, monkeypatch):
    """Without retries, each task in turn fails its run; the run is then re-run for the same logical date
    (dag.test() clears it, as Clear does) and fails at the next task; the last re-run succeeds. The
    warehouse ends exactly as after one clean run, and each re-run finished what the failed one left."""
    for dag in airflow.dags.values():
        for task in dag.tasks:
            monkeypatch.setattr(task, "retries", 0)
    for dag_id in ORDER:
        for step, where, task_id in STEPS[dag_id]:
            monkeypatch.setenv("OTEDI_FAULTS", f"{step}@{where}")
            dagrun = run(airflow, dag_id, WHEN[dag_id])
            ti_states = states(dagrun)
            assert str(dagrun.state) == "failed", (step, ti_states)
            assert {k: v for k, v in ti_states.items() if k.split("[")[0] == task_id} and all(
                v == "failed" for k, v in ti_states.items() if k.split("[")[0] == task_id), (step, ti_states)
        monkeypatch.delenv("OTEDI_FAULTS")
        assert_success(run(airflow, dag_id, WHEN[dag_id]))
        if dag_id == "ot_claims_nightly":
            assert site.counts() == clean["night"]
    assert site.counts() == clean["final"]
