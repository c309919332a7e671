"""The steps the Airflow DAGs run, one function per task, usable without Airflow.

Every function takes and returns plain values (ids, dates as ISO text, paths,
dicts of counts), opens its own warehouse session and is idempotent: running
a step again after a failure, a retry or a Clear adds nothing twice and
finishes what the earlier attempt left undone.

    batch_date(params_date, run_after, tz)        the service date a night bills (ISO)
    practice_ids()                                the practices to fan out over
    practice_batch_date(practice_id, params_date, run_after)
    find_extract(practice_id, batch_date)         path of that night's extract, or None
    load_charges(path, batch_date)                load it (by content hash: once)
    build_claims_for(practice_id, batch_date)     scrub and store the practice's new charges
    write_files_for(practice_id, batch_date)      837P files through the 837P gate, claimed for the night
    send_files(practice_id, batch_date)           upload every ready file without a submission
    record_submissions(practice_id, batch_date)   check and write the night's submission manifest (once)
    night_summary(manifests)                      ids and counts of a night (its CLAIMS_SENT asset event)
    simulator_day(params_day, events, run_after)  the day the simulator answers on
    simulate(day)                                 the built-in clearinghouse answers (OTEDI_SIMULATOR=1)
    inbound_waiting()                             names in the clearinghouse inbox matching the patterns
    fetch_new()                                   download new inbox files into the archive
    ingest()                                      load 999/277CA, post 835s, write off QMB cost sharing
    loaded_anything(counts) / answered_anything(counts)   whether a run has news for the next DAG
    report_date(params_date, run_after)          the date a reconciliation run is filed under
    refresh_reconciliation(day) / write_report(day)   finance tables (CSV/Parquet) and the HTML report
    retry_cannot_fix(exc)                         errors a task retry cannot cure (the DAGs fail them at once)

Submission manifests: <OTEDI_HOME>/submissions/<service date>/<PRACTICE_ID>.json lists the files that
night's run made or first sent, and is written once. The night claims each file in
<PRACTICE_ID>.claimed beside it when it writes it (write_files_for) and, for files a crash or an
earlier failed night left ready, just before it uploads them (send_files); a file claimed by one night
is never claimed by another, and a night whose manifest exists claims nothing more. So a re-run of a
night writes the same manifest, and a later night's files never appear in an earlier night's.

Transport retries are Airflow's (the tasks' retries): tasks open the drop with one attempt per operation
(TASK_DROP_ATTEMPTS), so a network failure fails the try and Airflow retries it with its backoff; the drop's
own backoff is for the CLI. See otedi.dag_defaults.

Environment (all optional):

  OTEDI_HOME            working folder (see otedi.config)
  OTEDI_EXTRACTS_DIR    where extracts arrive (default $OTEDI_HOME/extracts), one folder per practice:
                        <dir>/<practice_id>/charges_<YYYY-MM-DD>.csv (or .xlsx, .parquet), the date being
                        the service date the night bills (the day before the run, in the practice's time zone)
  OTEDI_EXTRACT_MAPPING column mapping for every extract (mappings/extracts/<name>.yaml);
                        OTEDI_EXTRACT_MAPPING_<PRACTICE_ID> overrides it for one practice
  OTEDI_PRACTICES       comma-separated practice ids to run (default: every practice in practices.yaml)
  OTEDI_DROP_URL        file:///abs/path or sftp://... drop (default file://$OTEDI_HOME/drop)
  OTEDI_SFTP_CONN_ID    Airflow connection id of the clearinghouse SFTP (wins over OTEDI_DROP_URL),
                        with OTEDI_SFTP_BASE_PATH (default "/") as the drop's base folder
  OTEDI_INBOUND_PATTERNS  file patterns the inbox sensor waits for (default "*.835,*.999,*.277,*.277ca,*.ta1")
  OTEDI_SIMULATOR=1     the built-in simulator plays the clearinghouse (file:// drops only), seed
                        OTEDI_SIMULATOR_SEED (default 7)
  OTEDI_REPORT_FORMATS  export formats (default "csv,parquet")

Test hook: OTEDI_FAULTS="step[@after][:N],..." makes the named step (a function name above) raise
InjectedFault on its first N calls (default 1) per practice, before its work
or after it (after the work is committed); calls are counted in the JSON file
OTEDI_FAULT_FILE. Unset in production.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from otedi.files import private_dir, write_private_text

log = logging.getLogger(__name__)

EXTRACT_SUFFIXES = (".csv", ".xlsx", ".parquet")
TASK_DROP_ATTEMPTS = 1  # per drop operation inside a task: network failures are retried by Airflow only
DEFAULT_INBOUND_PATTERNS = "*.835,*.999,*.277,*.277ca,*.ta1"


class InjectedFault(RuntimeError):
    """Raised by the OTEDI_FAULTS test hook."""


class InputError(ValueError):
    """A task's input or setting is wrong (a param, OTEDI_PRACTICES, two extracts for one night): a retry
    cannot fix it. The message names the thing and what to do."""


def retry_cannot_fix(exc: BaseException) -> bool:
    """True for errors a task retry cannot cure: bad input or configuration (InputError, ConfigError, an
    extract that cannot be read, malformed X12) and the transport refusals (rejected credentials, which a
    retry could get the clearinghouse account locked for; an unknown or changed host key; a file of other
    content under our name on the drop), and a warehouse without its schema (run `otedi db upgrade`). The DAGs fail these at once (otedi.dag_defaults.fails_fast);
    everything else, the network and the database included, is retried by Airflow."""
    from otedi.errors import ConfigError, ExtractError, X12Error
    from otedi.transport import HostKeyError, RemoteExistsError, TransportAuthError
    from otedi.warehouse.db import WarehouseError

    if isinstance(exc, WarehouseError):  # a database that does not answer may next time; a missing schema will not
        return exc.kind != "unreachable"
    return isinstance(exc, (InputError, ConfigError, ExtractError, X12Error, TransportAuthError, HostKeyError,
                            RemoteExistsError))


# -- dates ----------------------------------------------------------------------------------------


def batch_date(params_date: str | None, run_after: datetime | None, tz: str) -> str:
    """The service date a night bills: `params_date` when given, else the run's date in `tz` minus one day.

    `run_after` is the run's logical_date, or dag_run.run_after when the logical date is None
    (a manual run). Never a cron data interval: Airflow 3 cron schedules have point intervals."""
    if params_date:
        return _iso_date(params_date, "service_date")
    if run_after is None:
        raise InputError("no service_date param and no run date: cannot tell which night to bill")
    return (run_day(run_after, tz) - timedelta(days=1)).isoformat()


def _iso_date(value: Any, name: str) -> str:
    try:
        return date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise InputError(f"{name} {str(value)[:40]!r} is not a date: give YYYY-MM-DD") from None


def run_day(run_after: datetime, tz: str = "UTC") -> date:
    """The calendar date of a run in `tz` (a naive datetime is taken as UTC)."""
    if run_after.tzinfo is None:
        run_after = run_after.replace(tzinfo=ZoneInfo("UTC"))
    return run_after.astimezone(ZoneInfo(tz)).date()


def practice_batch_date(practice_id: str, params_date: str | None, run_after: datetime | None) -> str:
    from otedi import config

    return batch_date(params_date, run_after, config.practice(practice_id).time_zone)


def report_date(params_date: str | None, run_after: datetime | None) -> str:
    """The date of a reconciliation run (its folder name): `params_date`, else the run's date in the time
    zone of OTEDI_REPORT_TIME_ZONE (default: the first configured practice's)."""
    _fault("report_date", "before")
    if params_date:
        return _iso_date(params_date, "report_date")
    if run_after is None:
        raise InputError("no report_date param and no run date")
    return run_day(run_after, _report_tz()).isoformat()


def _report_tz() -> str:
    tz = os.environ.get("OTEDI_REPORT_TIME_ZONE")
    if tz:
        return tz
    from otedi import config

    practices = list(config.practices().values())
    return practices[0].time_zone if practices else "UTC"


# -- claims night -------------------------------------------------------------------------------


def practice_ids() -> list[str]:
    """The practices a night fans out over: OTEDI_PRACTICES, or every configured practice.

    Also brings the warehouse schema to head, once, before the per-practice tasks start in parallel
    (concurrent first-time migrations of one database race)."""
    from otedi import config

    _fault("practice_ids", "before")
    ensure_warehouse()
    configured = list(config.practices())
    wanted = [p.strip() for p in os.environ.get("OTEDI_PRACTICES", "").split(",") if p.strip()]
    if not wanted:
        return configured
    unknown = sorted(set(wanted) - set(configured))
    if unknown:
        raise InputError(f"OTEDI_PRACTICES names practice(s) {unknown} not configured in practices.yaml")
    return wanted


def extracts_dir() -> Path:
    from otedi import config

    return Path(os.environ.get("OTEDI_EXTRACTS_DIR") or config.home() / "extracts")


def find_extract(practice_id: str, batch_date: str) -> str | None:
    """<extracts>/<practice_id>/charges_<batch_date>.{csv,xlsx,parquet}, or None when none arrived."""
    _fault("find_extract", "before", practice_id)
    folder = extracts_dir() / practice_id
    found = [folder / f"charges_{batch_date}{suffix}" for suffix in EXTRACT_SUFFIXES]
    found = [p for p in found if p.is_file()]
    if len(found) > 1:
        raise InputError(f"{practice_id} {batch_date}: more than one extract ({', '.join(p.name for p in found)}); "
                         f"keep one")
    path = str(found[0]) if found else None
    if path is None:
        log.warning("%s: no extract for %s in %s; building whatever is pending", practice_id, batch_date, folder)
    _fault("find_extract", "after", practice_id)
    return path


def extract_mapping(practice_id: str | None) -> str | None:
    if practice_id:
        specific = os.environ.get(f"OTEDI_EXTRACT_MAPPING_{practice_id.upper()}")
        if specific:
            return specific
    return os.environ.get("OTEDI_EXTRACT_MAPPING") or None


def load_charges(path: str | None, batch_date: str, practice_id: str | None = None) -> dict[str, Any]:
    """Load an extract (nothing when path is None or the same content was loaded before)."""
    from otedi.charges.load import load_extract
    from otedi.warehouse.db import session_scope
    from otedi.warehouse.models import stamped_as_of

    _fault("load_charges", "before", practice_id)
    if path is None:
        result = {"file": None, "rows": 0, "accepted": 0, "rejected": 0, "duplicates": 0, "already_loaded": False}
    else:
        ensure_warehouse()
        day = _night_after(batch_date)
        with stamped_as_of(day), session_scope() as session:
            loaded = load_extract(session, path, extract_mapping(practice_id), today=day)
        result = {"file": loaded.file, "rows": loaded.rows, "accepted": loaded.accepted,
                  "rejected": loaded.rejected, "duplicates": loaded.duplicates,
                  "already_loaded": loaded.already_loaded}
    _fault("load_charges", "after", practice_id)
    return result


def build_claims_for(practice_id: str, batch_date: str) -> dict[str, int]:
    """Scrub the practice's new charges and store their claims (one transaction)."""
    from otedi.claims.build import build_claims
    from otedi.warehouse.db import session_scope
    from otedi.warehouse.models import stamped_as_of

    _fault("build_claims_for", "before", practice_id)
    ensure_warehouse()
    day = _night_after(batch_date)
    with stamped_as_of(day), session_scope() as session:
        built = build_claims(session, today=day, practice_id=practice_id)
    result = {"charges": built.charges, "claims": built.claims, "held": built.held, "lines": built.lines,
              "not_billed": built.not_billed, "issues": len(built.issues)}
    _fault("build_claims_for", "after", practice_id)
    return result


def outbound_dir() -> Path:
    from otedi import config

    return config.home() / "outbound"


def write_files_for(practice_id: str, batch_date: str | None = None) -> dict[str, list[str]]:
    """Write the practice's ready claims into 837P files; pyx12 validates each (failures are quarantined).
    With `batch_date`, the files written are claimed for that night's manifest."""
    from otedi.claims.batch import write_ready_claims
    from otedi.warehouse.db import session_scope
    from otedi.warehouse.models import stamped_as_of

    _fault("write_files_for", "before", practice_id)
    ensure_warehouse()
    today = _night_after(batch_date) if batch_date is not None else None  # envelopes dated as the night
    with stamped_as_of(today), session_scope() as session:
        files = write_ready_claims(session, outbound_dir(), practice_id=practice_id, today=today)
    result = {"ready": [f.path for f in files if f.status == "ready"],
              "quarantined": [f.path for f in files if f.status == "quarantined"]}
    if batch_date is not None:
        claim_files(practice_id, batch_date, [Path(f.path).name for f in files])
    if result["quarantined"]:
        log.warning("%s: %d file(s) failed the 837P gate and were quarantined: %s", practice_id,
                    len(result["quarantined"]), ", ".join(result["quarantined"]))
    _fault("write_files_for", "after", practice_id)
    return result


def open_configured_drop():
    """The clearinghouse drop: Airflow connection OTEDI_SFTP_CONN_ID, else OTEDI_DROP_URL, else
    file://$OTEDI_HOME/drop; one attempt per operation (TASK_DROP_ATTEMPTS: the task's retries are the only
    retry layer)."""
    from otedi import config
    from otedi.transport import RetryPolicy

    retry = RetryPolicy(attempts=TASK_DROP_ATTEMPTS)
    conn_id = os.environ.get("OTEDI_SFTP_CONN_ID")
    if conn_id:
        from otedi.transport import drop_from_airflow_connection

        return drop_from_airflow_connection(conn_id, os.environ.get("OTEDI_SFTP_BASE_PATH", "/"), retry=retry)
    from otedi.transport import open_drop

    return open_drop(config.drop_url(), retry=retry)


def send_files(practice_id: str, batch_date: str | None = None) -> dict[str, Any]:
    """Upload every ready 837P file of the practice that has no submission yet (this night's and any an
    earlier attempt left behind); each is recorded as it goes, and a file already on the drop is not sent
    again. With `batch_date`, ready files no night has claimed (left by a crash between writing and
    claiming, or by a night that failed) are claimed for this night before they are sent."""
    from sqlalchemy import select

    from otedi.clearinghouse import send_ready_files
    from otedi.warehouse import models
    from otedi.warehouse.db import session_scope

    _fault("send_files", "before", practice_id)
    ensure_warehouse()
    if batch_date is not None:
        with session_scope() as session:
            ready = session.scalars(select(models.ClaimFile.file_name).where(
                models.ClaimFile.practice_id == practice_id, models.ClaimFile.status == "ready")
                .order_by(models.ClaimFile.id)).all()
        claim_files(practice_id, batch_date, list(ready))
    today = _night_after(batch_date) if batch_date is not None else None  # submissions stamped as the night
    with open_configured_drop() as drop, session_scope() as session:
        sent = send_ready_files(session, drop, practice_id=practice_id, today=today)
        result = {"sent": [s.remote_name for s in sent if s.status == "sent"],
                  "already_sent": [s.remote_name for s in sent if s.status != "sent"]}
    _fault("send_files", "after", practice_id)
    return result


def submissions_dir() -> Path:
    from otedi import config

    return config.home() / "submissions"


def manifest_path(practice_id: str, batch_date: str) -> Path:
    return submissions_dir() / batch_date / f"{practice_id}.json"


def _claims_path(practice_id: str, batch_date: str) -> Path:
    return submissions_dir() / batch_date / f"{practice_id}.claimed"


def claimed_files(practice_id: str, batch_date: str) -> list[str]:
    """The 837P file names night `batch_date` claimed for the practice, in the order claimed."""
    path = _claims_path(practice_id, batch_date)
    return json.loads(path.read_text())["files"] if path.exists() else []


def claim_files(practice_id: str, batch_date: str, names: list[str]) -> list[str]:
    """Claim 837P files (names) for night `batch_date`'s manifest: those no other night has claimed. A
    night whose manifest is written claims nothing more (it never changes). Returns the names claimed now."""
    if not names:
        return []
    mine = claimed_files(practice_id, batch_date)
    if manifest_path(practice_id, batch_date).exists():
        extra = [n for n in names if n not in mine]
        if extra:
            log.warning("%s %s: the night's manifest was written before; %d file(s) of this re-run are not "
                        "added to it", practice_id, batch_date, len(extra))
        return []
    taken = set(mine)
    for other in submissions_dir().glob(f"*/{practice_id}.claimed"):
        if other.parent.name != batch_date:
            taken.update(json.loads(other.read_text())["files"])
    new = [n for n in dict.fromkeys(names) if n not in taken]
    if new:
        path = _claims_path(practice_id, batch_date)
        private_dir(path.parent)
        tmp = path.with_name(path.name + ".part")
        write_private_text(tmp, json.dumps({"practice_id": practice_id, "batch_date": batch_date,
                                            "files": mine + new}, indent=1) + "\n")
        os.replace(tmp, path)
    return new


def record_submissions(practice_id: str, batch_date: str) -> str:
    """Write the night's manifest <OTEDI_HOME>/submissions/<batch_date>/<practice_id>.json (files, claims,
    totals, drop, sha256, from the warehouse) of the files the night claimed, once every one of them that
    passed the gate has gone out. Written once: when it exists it is returned unchanged, so a re-run
    gives the same manifest and a later night's files never appear in it."""
    from sqlalchemy import select

    from otedi.warehouse import models
    from otedi.warehouse.db import session_scope

    _fault("record_submissions", "before", practice_id)
    path = manifest_path(practice_id, batch_date)
    if path.exists():
        _fault("record_submissions", "after", practice_id)
        return str(path)
    ensure_warehouse()
    names = claimed_files(practice_id, batch_date)
    with session_scope() as session:
        rows = session.execute(
            select(models.ClaimFile, models.Submission)
            .outerjoin(models.Submission, models.Submission.claim_file_id == models.ClaimFile.id)
            .where(models.ClaimFile.file_name.in_(names))
            .order_by(models.ClaimFile.id)).all() if names else []
        sent = [(f, s) for f, s in rows if s is not None and s.status in ("sent", "already_sent")]
        quarantined = [f.file_name for f, _ in rows if f.status == "quarantined"]
        sent_names = {f.file_name for f, _ in sent}
        unsent = [f.file_name for f, _ in rows if f.status != "quarantined" and f.file_name not in sent_names]
        if unsent:
            raise RuntimeError(f"{practice_id} {batch_date}: {len(unsent)} 837P file(s) of the night have not "
                               f"gone out ({', '.join(unsent)}); re-run the upload task")
        files = [{"file": f.file_name, "claims": f.claims, "lines": f.lines, "total_charge": str(f.total_charge),
                  "interchange_control_number": f.interchange_control_number, "sha256": s.sha256,
                  "drop": s.drop, "remote_name": s.remote_name, "status": s.status,
                  "sent_at": s.sent_at.date().isoformat() if s.sent_at else None} for f, s in sent]
    manifest = {"practice_id": practice_id, "batch_date": batch_date,
                "files_sent": len(files), "claims_sent": sum(f["claims"] for f in files),
                "files": files, "quarantined": quarantined}
    private_dir(path.parent)
    tmp = path.with_suffix(".json.part")
    write_private_text(tmp, json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, path)
    _fault("record_submissions", "after", practice_id)
    return str(path)


def night_summary(manifests: list[str]) -> dict[str, Any]:
    """Ids and counts of a finished claims night, from its manifests (the CLAIMS_SENT asset event's extra):
    the service dates billed, the practices, files and claims sent."""
    _fault("night_summary", "before")
    read = [json.loads(Path(p).read_text()) for p in manifests]
    return {"service_dates": sorted({m["batch_date"] for m in read}),
            "practices": sorted(m["practice_id"] for m in read),
            "files_sent": sum(m["files_sent"] for m in read), "claims_sent": sum(m["claims_sent"] for m in read)}


# -- remittance ingest ------------------------------------------------------------------------


def simulator_day(params_day: str | None, triggering_asset_events: Any, run_after: datetime | None) -> str:
    """The day the simulated clearinghouse and payers answer on: the `day` param; else the day after the
    latest service date of the claims nights whose CLAIMS_SENT events started the run (the
    `triggering_asset_events` of its context: asset -> events, each with the extra night_summary wrote);
    else the run's date (UTC)."""
    if params_day:
        return _iso_date(params_day, "day")
    dates = [d for events in (triggering_asset_events or {}).values() for event in events
             for d in ((getattr(event, "extra", None) or {}).get("service_dates") or [])]
    if dates:
        return (date.fromisoformat(max(dates)) + timedelta(days=1)).isoformat()
    if run_after is None:
        raise InputError("no day param, no claims night and no run date: cannot tell which day to answer on")
    return run_day(run_after).isoformat()


def answered_anything(result: dict[str, Any]) -> bool:
    """Whether the simulator put anything in the inbox (then its CLEARINGHOUSE_ANSWERED event is sent)."""
    return any(result.get(k) for k in ("acks_999", "acks_277ca", "remittances"))


def simulate(day: str) -> dict[str, Any]:
    """With OTEDI_SIMULATOR=1, the built-in clearinghouse answers new 837P files in the file:// drop
    and makes `day`'s payment run; otherwise nothing. Every extract in extracts_dir() (each read with its
    practice's mapping) tells the simulated Medicare who is dual eligible, for its crossovers."""
    _fault("simulate", "before")
    if os.environ.get("OTEDI_SIMULATOR") != "1":
        return {"simulator": "off"}
    from otedi import config
    from otedi.simulator import simulate_once

    url = config.drop_url()
    if os.environ.get("OTEDI_SFTP_CONN_ID") or not url.startswith("file://"):
        raise InputError("OTEDI_SIMULATOR=1 needs a file:// drop (OTEDI_DROP_URL), not an SFTP connection")
    extracts = [(path, extract_mapping(path.parent.name)) for path in sorted(extracts_dir().glob("*/charges_*"))
                if path.suffix in EXTRACT_SUFFIXES]
    result = simulate_once(url, seed=int(os.environ.get("OTEDI_SIMULATOR_SEED", "7")),
                           today=date.fromisoformat(day), eligibility_from=extracts)
    out = {"files_answered": len(result.files_answered), "acks_999": len(result.acks_999),
           "acks_277ca": len(result.acks_277ca), "remittances": len(result.remittances),
           "crossed_over": result.crossed_over}
    _fault("simulate", "after")
    return out


def inbound_patterns() -> list[str]:
    text = os.environ.get("OTEDI_INBOUND_PATTERNS", DEFAULT_INBOUND_PATTERNS)
    return [p.strip().lower() for p in text.split(",") if p.strip()]


def inbound_waiting() -> list[str]:
    """Names in the clearinghouse inbox that match the inbound patterns (never '.', '..' or .part files)."""
    _fault("inbound_waiting", "before")
    patterns = inbound_patterns()
    with open_configured_drop() as drop:
        names = [e.name for e in drop.list_inbound()]
    return [n for n in names if any(fnmatch.fnmatchcase(n.lower(), p) for p in patterns)]


def archive_dir() -> Path:
    from otedi import config

    return config.home() / "archive"


def fetch_new() -> list[str]:
    """Download new inbox files into the archive, record each, then move it to processed/ on the drop."""
    from otedi.clearinghouse import fetch_inbound
    from otedi.warehouse.db import session_scope

    _fault("fetch_new", "before")
    ensure_warehouse()
    with open_configured_drop() as drop, session_scope() as session:
        paths = [f.archive_path for f in fetch_inbound(session, drop, archive_dir())]
    _fault("fetch_new", "after")
    return paths


def ingest() -> dict[str, int]:
    """Load every fetched file not loaded yet (this run's and any an earlier run left): 999/277CA first,
    then post 835s; then write off QMB patients' Medicare cost sharing (otedi.accounts.qmb)."""
    from otedi.clearinghouse import ingest_fetched
    from otedi.warehouse.db import session_scope

    _fault("ingest", "before")
    ensure_warehouse()
    with session_scope() as session:
        result = ingest_fetched(session)
    out = {"acks": len(result.acks),
           "remittances_posted": sum(1 for r in result.remittances if r.get("status") == "posted"),
           "remittances_other": sum(1 for r in result.remittances if r.get("status") != "posted"),
           "skipped": len(result.skipped),
           "qmb_written_off": len(result.qmb_written_off),  # QMB cost sharing written off (claims)
           "qmb_refund_due": len(result.qmb_refund_due)}  # of those, claims the patient had paid on: refund
    if result.failed:  # rolled back and left for the retry: Airflow retries the task
        raise RuntimeError(f"ingest: the warehouse database failed on {len(result.failed)} file(s); "
                           f"the others are loaded, a retry loads these")
    if result.qmb_failed:
        raise RuntimeError("ingest: the files are loaded, the warehouse database failed on the QMB write-offs; "
                           "a retry writes them off")
    _fault("ingest", "after")
    return out


def loaded_anything(counts: dict[str, int]) -> bool:
    """Whether an ingest loaded or posted anything (then its REMITTANCES_LOADED event is sent, and the
    reconciliation runs on it)."""
    return any(counts.get(k) for k in ("acks", "remittances_posted", "remittances_other", "qmb_written_off"))


# -- reconciliation -------------------------------------------------------------------------


def reports_dir() -> Path:
    from otedi import config

    return config.home() / "reports"


def report_folder(day: str) -> str:
    """<OTEDI_HOME>/reports/<day>/, created."""
    return str(private_dir(reports_dir() / date.fromisoformat(day).isoformat()))


def report_formats() -> list[str]:
    return [f.strip() for f in os.environ.get("OTEDI_REPORT_FORMATS", "csv,parquet").split(",") if f.strip()]


def refresh_reconciliation(day: str) -> dict[str, Any]:
    """Recompute the finance tables (claim and line reconciliation, payments, AR aging, the AR work
    queue, denial analysis, KPIs) as of `day` into the warehouse's finance_* tables, from one snapshot, then
    write what that refresh committed into reports/<day>/ in every OTEDI_REPORT_FORMATS format. Re-running
    rewrites the same tables and files (the DAG runs one night at a time: max_active_runs=1)."""
    from otedi.analytics import export_tables
    from otedi.analytics.warehouse_tables import refresh_finance_tables

    _fault("refresh_reconciliation", "before")
    ensure_warehouse()
    folder = report_folder(day)
    as_of = date.fromisoformat(day)
    refresh_finance_tables(today=as_of)  # once; every format then writes what that refresh committed
    written = [str(p) for fmt in report_formats() for p in export_tables(folder, fmt, today=as_of, refresh=False)]
    _fault("refresh_reconciliation", "after")
    return {"folder": folder, "files": written}


def write_report(day: str) -> str:
    """The HTML finance report as of `day`: reports/<day>/report.html."""
    from otedi.analytics import write_html_report

    _fault("write_report", "before")
    require_warehouse()
    path = Path(report_folder(day)) / "report.html"
    write_html_report(path, today=date.fromisoformat(day))
    _fault("write_report", "after")
    return str(path)


# -- helpers ------------------------------------------------------------------------------------


def _night_after(batch_date: str) -> date:
    """'Today' for loading and coding a night's charges: the day after the service date billed."""
    return date.fromisoformat(batch_date) + timedelta(days=1)


def ensure_warehouse() -> None:
    """For a task that writes: the warehouse ready at the schema head (db.prepare_warehouse: upgraded where
    OTEDI_AUTO_UPGRADE allows, else required to be), checked once per process and database."""
    from otedi import config

    _prepare(config.database_url())


@lru_cache(maxsize=8)
def _prepare(url: str) -> None:
    from otedi.warehouse.db import prepare_warehouse

    prepare_warehouse(url)


def require_warehouse() -> None:
    """For a task that only reads (the report): the warehouse must exist at the schema head; nothing is
    created or migrated (db.require_warehouse)."""
    from otedi.warehouse.db import require_warehouse as require

    require()


def _fault(step: str, where: str, key: str | None = None) -> None:
    """The OTEDI_FAULTS test hook (see the module docstring)."""
    spec = os.environ.get("OTEDI_FAULTS")
    if not spec:
        return
    for item in spec.split(","):
        name, _, times = item.strip().partition(":")
        name, _, position = name.partition("@")
        if name != step or (position or "before") != where:
            continue
        ledger = Path(os.environ.get("OTEDI_FAULT_FILE") or Path(os.environ.get("OTEDI_HOME", "var")) / "faults.json")
        counts = json.loads(ledger.read_text()) if ledger.exists() else {}
        slot = f"{step}@{where}" + (f"[{key}]" if key else "")
        if counts.get(slot, 0) >= int(times or 1):
            return
        counts[slot] = counts.get(slot, 0) + 1
        ledger.parent.mkdir(parents=True, exist_ok=True)
        ledger.write_text(json.dumps(counts, indent=1))
        raise InjectedFault(f"injected fault: {slot} (call {counts[slot]} of {times or 1})")
