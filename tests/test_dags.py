"""The Airflow DAGs (dags/) and the steps they run (otedi.nightly).

- DagBag import with zero errors; each DAG's tasks, max_active_runs, pool, retries and timeouts.
- No Airflow metadata-database access from dags/ or otedi/ (real workers refuse it; dag.test() does not).
- dag.test() end to end for each DAG on a temporary Airflow SQLite database, a SQLite warehouse, the
  file:// drop and the simulator, with the figures checked against the plain library run.
- Re-runs: every task fails once (retried), every task fails beyond its retries in turn (the night is
  re-run for the same logical date each time, as Clear does), and a clean night re-run: the warehouse
  ends up exactly as after one clean run (no duplicate claim, file, submission, fetch or posting).

Airflow reads its configuration when first imported, so AIRFLOW_HOME etc. are set by the `airflow`
fixture before the first import. If something in this process imported airflow earlier with another
home, the whole module re-runs itself in a subprocess instead.
"""

from __future__ import annotations

import json
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
from otedi.warehouse import db, models
from otedi.warehouse.db import session_scope

ROOT = Path(__file__).resolve().parents[1]
DAGS = ROOT / "dags"
DAG_IDS = ("ot_claims_nightly", "ot_remittance_ingest", "ot_reconciliation")
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
        # read when the DAG files are parsed: no waiting between retries, a short inbox wait
        "OTEDI_RETRY_DELAY_SECONDS": "0",
        "OTEDI_INBOUND_WAIT_SECONDS": "1",
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


def full_cycle(bag) -> None:
    assert_success(run(bag, "ot_claims_nightly", NIGHT))
    assert_success(run(bag, "ot_remittance_ingest", INGEST_RUN))
    assert_success(run(bag, "ot_reconciliation", RECON_RUN))


@pytest.fixture(scope="module")
def clean(airflow, extract_frame, sqlite_template, tmp_path_factory):
    """One clean night, ingest and reconciliation: the figures every re-run must end at."""
    with Site(tmp_path_factory.mktemp("clean"), extract_frame, sqlite_template) as site:
        nightly_run = run(airflow, "ot_claims_nightly", NIGHT)
        assert_success(nightly_run)
        after_night = site.counts()
        ingest_run = run(airflow, "ot_remittance_ingest", INGEST_RUN)
        assert_success(ingest_run)
        recon_run = run(airflow, "ot_reconciliation", RECON_RUN)
        assert_success(recon_run)
        yield {"site": site, "night": after_night, "final": site.counts(),
               "runs": {"nightly": nightly_run, "ingest": ingest_run, "recon": recon_run}}


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
    assert set(DAG_IDS) <= set(bag.dag_ids)
    expected = {
        "ot_claims_nightly": {"practices", "night.find_extract", "night.load_charges", "night.build_claims",
                              "night.validate_837p", "night.upload", "night.record_submission"},
        "ot_remittance_ingest": {"simulate_clearinghouse", "wait_for_inbound", "fetch", "ingest"},
        "ot_reconciliation": {"report_date", "refresh_tables", "html_report"},
    }
    transport = {"ot_claims_nightly": {"night.upload"}, "ot_remittance_ingest": {"wait_for_inbound", "fetch"},
                 "ot_reconciliation": set()}
    for dag_id in DAG_IDS:
        dag = bag.get_dag(dag_id)
        assert set(dag.task_ids) == expected[dag_id]
        assert dag.max_active_runs == 1
        assert not dag.catchup
        for task in dag.tasks:
            assert task.retries >= 2 and task.retry_exponential_backoff == 2.0, task.task_id
            assert task.execution_timeout is not None, task.task_id
            if task.task_id in transport[dag_id]:
                assert task.pool == "clearinghouse_sftp", task.task_id
                assert task.retries == 4 and task.execution_timeout.total_seconds() == 20 * 60
            else:
                assert task.pool == "default_pool", task.task_id
    # the nightly work fans out per practice (dynamic task mapping of the task group)
    nightly_dag = bag.get_dag("ot_claims_nightly")
    assert nightly_dag.task_group_dict["night"].__class__.__name__ == "MappedTaskGroup"
    assert nightly_dag.timetable.__class__.__name__ == "CronTriggerTimetable"
    sensor = bag.get_dag("ot_remittance_ingest").get_task("wait_for_inbound")
    assert sensor.mode == "reschedule" and sensor.soft_fail
    assert bag.get_dag("ot_remittance_ingest").get_task("ingest").trigger_rule == "none_failed"


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
    for dag_id in DAG_IDS:
        tree_imports = [line for line in (DAGS / f"{dag_id}.py").read_text().splitlines()
                        if line.startswith(("import ", "from "))]
        modules = {line.split()[1] for line in tree_imports}
        assert modules <= {"__future__", "os", "datetime", "pendulum", "airflow.sdk", "otedi.dag_defaults"}, \
            (dag_id, modules)
    # the shared task policy is standard library only
    shared = (ROOT / "otedi" / "dag_defaults.py").read_text().splitlines()
    assert {line.split()[1] for line in shared if line.startswith(("import ", "from "))} <= {"os", "datetime"}


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
    assert ti_states.pop("practices") == "success"
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
                          ("record_submissions", "after", "night.record_submission")],
    "ot_remittance_ingest": [("simulate", "after", "simulate_clearinghouse"),
                             ("inbound_waiting", "before", "wait_for_inbound"), ("fetch_new", "after", "fetch"),
                             ("ingest", "after", "ingest")],
    "ot_reconciliation": [("report_date", "before", "report_date"),
                          ("refresh_reconciliation", "after", "refresh_tables"),
                          ("write_report", "after", "html_report")],
}
WHEN = {"ot_claims_nightly": NIGHT, "ot_remittance_ingest": INGEST_RUN, "ot_reconciliation": RECON_RUN}


def test_every_task_failing_once_is_retried_without_duplicates(fast_retries, site, clean, monkeypatch):
    airflow = fast_retries
    """Each task raises once after doing its work; Airflow retries it; the warehouse matches a clean run.
    Then every run is re-run for the same date (what Clear does) and nothing changes."""
    monkeypatch.setenv("OTEDI_FAULTS", ",".join(f"{step}@{where}" for steps in STEPS.values()
                                                for step, where, _ in steps))
    for dag_id in DAG_IDS:
        dagrun = run(airflow, dag_id, WHEN[dag_id])
        assert_success(dagrun)
        faulted = {task_id for _, _, task_id in STEPS[dag_id]}
        tries = {(ti.task_id, ti.map_index): ti.try_number for ti in dagrun.get_task_instances()}
        assert {key: n for key, n in tries.items() if key[0] in faulted} == \
            {key: 2 for key in tries if key[0] in faulted}, tries
    faults = json.loads(Path(site.env["OTEDI_FAULT_FILE"]).read_text())
    assert len(faults) == 1 + 6 * len(PRACTICES) + 4 + 3 and set(faults.values()) == {1}
    assert site.counts() == clean["final"]

    monkeypatch.delenv("OTEDI_FAULTS")
    for dag_id in DAG_IDS:
        assert_success(run(airflow, dag_id, WHEN[dag_id]))
    assert site.counts() == clean["final"]


def test_each_task_failing_for_good_then_the_night_rerun_completes_it(airflow, site, clean, monkeypatch):
    """Without retries, each task in turn fails its run; the run is then re-run for the same logical date
    (dag.test() clears it, as Clear does) and fails at the next task; the last re-run succeeds. The
    warehouse ends exactly as after one clean run, and each re-run finished what the failed one left."""
    for dag in airflow.dags.values():
        for task in dag.tasks:
            monkeypatch.setattr(task, "retries", 0)
    for dag_id in DAG_IDS:
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
