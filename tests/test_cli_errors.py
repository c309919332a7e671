"""No tracebacks (issue 13, the CLI): a user's mistake is one line naming it and the fix, exit 2, nothing
created; an internal error is one line with an error id, exit 1, and a log under $OTEDI_HOME/logs (0600) that
has the traceback but no PHI and no SQL parameters."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from otedi import cli

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_edi" / "charges_sample.csv"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def problems(err: str) -> list[str]:
    """The stderr lines that say what went wrong (the warehouse line and progress lines aside)."""
    return [line for line in err.splitlines() if not line.startswith(("warehouse: ", "... "))]


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An OTEDI_HOME that does not exist yet, on the embedded default warehouse (none there)."""
    path = tmp_path / "home"
    monkeypatch.setenv("OTEDI_HOME", str(path))
    monkeypatch.delenv("OTEDI_DATABASE_URL", raising=False)
    monkeypatch.delenv("OTEDI_AUTO_UPGRADE", raising=False)
    return path


USAGE_ERRORS = [
    (["charges", "load", "{tmp}/nope.csv"], "Invalid value for 'EXTRACT': file '{tmp}/nope.csv' does not exist."),
    (["charges", "load", "{tmp}"], "Invalid value for 'EXTRACT': file '{tmp}' is a directory."),
    (["validate", "{tmp}/nope.837"], "Invalid value for 'FILE': file '{tmp}/nope.837' does not exist."),
    (["remit", "post", "{tmp}"], "Invalid value for 'FILE...': file '{tmp}' is a directory."),
    (["claims", "build", str(SAMPLE), "--out", str(SAMPLE)], "is a file"),
    (["report", "export", "--format", "xml"],
     "Invalid value for '--format': 'xml' is not one of 'csv', 'parquet', 'xlsx'."),
    (["ar", "item", "X:no_835", "--state", "later", "--note", "x"],
     "Invalid value for '--state': 'later' is not one of 'open', 'in_progress', 'waiting', 'done'."),
    (["patient", "pay", "--practice", "P", "--patient", "X", "--amount", "1", "--method", "bitcoin",
      "--reference", "R"], "Invalid value for '--method': 'bitcoin' is not one of 'cash', 'check', 'card', 'eft'."),
    (["synth", "charges", "--rows", "5", "--days", "5"], "Invalid value for '--days'"),
    (["synth", "charges", "--rows", "5", "--days", "99999"], "Invalid value for '--days'"),
    (["synth", "charges", "--rows", "5", "--defect-rate", "2"], "Invalid value for '--defect-rate'"),
    (["claims", "build", str(SAMPLE), "--today", "2026-13-01"],
     "Invalid value for '--today': '2026-13-01' is not a date: use YYYY-MM-DD, e.g. 2026-11-14"),
    (["report", "html", "--from", "2026-12-01", "--to", "2026-11-01"], "--from 2026-12-01 is after --to 2026-11-01"),
    (["claims", "biuld"], "No such command 'biuld'. Did you mean 'build'?"),
    (["ar", "worklist", "--everything"], "No such option: --everything"),
    (["remit", "match", "CLP1", "--note", "x"], "Missing option '--claim'"),
]


@pytest.mark.parametrize("argv, says", USAGE_ERRORS, ids=[" ".join(a[:2]) + f" {n}" for n, (a, _) in
                                                          enumerate(USAGE_ERRORS)])
def test_a_usage_error_is_one_line_exit_2_and_creates_nothing(home, tmp_path, capsys, argv, says):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "" and "Traceback" not in err
    [line] = problems(err)
    assert line.startswith("otedi: ") and says.replace("{tmp}", str(tmp_path)) in line
    assert not home.exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file: an unreadable file needs another user")
def test_an_unreadable_file_is_a_usage_error(home, tmp_path, capsys):
    secret = tmp_path / "charges.csv"
    secret.write_text("charge_id\n")
    secret.chmod(0)
    code, _, err = run(capsys, "charges", "load", str(secret))
    assert code == 2 and problems(err) == [f"otedi: Invalid value for 'EXTRACT': file '{secret}' is not readable. "
                                           f"(see `otedi charges load --help`)"]


@pytest.mark.parametrize("command", [["report", "export"], ["report", "html"], ["ar", "worklist"],
                                     ["ar", "resubmit"], ["claims", "review", "OT1"],
                                     ["patient", "balance", "--practice", "P", "--patient", "X"]])
def test_a_read_only_command_without_a_warehouse_says_so_and_creates_nothing(home, capsys, command):
    code, out, err = run(capsys, *command)
    assert code == 2 and out == ""
    database = home / "otedi.db"
    assert problems(err) == [f"otedi: warehouse sqlite:///{database}: the SQLite file does not exist (nor its "
                             f"folder); run `otedi db upgrade` first, or check OTEDI_DATABASE_URL"]
    assert err.splitlines()[0] == f"warehouse: sqlite:///{database}"  # which warehouse, first
    assert not home.exists()  # no warehouse, no folder, no log


@pytest.mark.parametrize("url, says", [
    ("nonsense", "not a database URL"),
    ("postgresql+nodriver://biller:s3cr3t@db.example/otedi", "no database driver for it"),
    ("postgresql+psycopg://biller:s3cr3t@127.0.0.1:1/otedi", "cannot connect"),
])
@pytest.mark.parametrize("command", [["ar", "worklist"], ["charges", "load", str(SAMPLE)]])
def test_a_bad_or_unreachable_database_url_is_one_line_without_the_password(home, monkeypatch, capsys, url, says,
                                                                             command):
    monkeypatch.setenv("OTEDI_DATABASE_URL", url)
    code, out, err = run(capsys, *command)
    assert code == 2 and out == "" and "Traceback" not in err and "s3cr3t" not in err
    [line] = problems(err)
    assert line.startswith("otedi: warehouse ") and says in line and "OTEDI_DATABASE_URL" in line
    if "@" in url:
        assert err.splitlines()[0] == "warehouse: " + url.replace(":s3cr3t@", ":***@")


def _log_of(err: str) -> tuple[str, Path]:
    [line] = problems(err)
    error_id = line.split("internal error ")[1].split(" ")[0] if "internal error" in line else \
        line.split("Error id ")[1].split(":")[0]
    return error_id, Path(line.rsplit(" in ", 1)[1])


def test_an_internal_error_is_one_line_with_an_id_and_a_log_without_phi(home, monkeypatch, capsys):
    import otedi.analytics

    quoted = ["a bug quoting", "DOE*JANE", "1EG4TE5MK73"]  # not on the raising line: the log shows source lines

    def bug(**_kw):
        raise ValueError(" ".join(quoted))

    home.mkdir()
    (home / "otedi.db").touch()  # a warehouse to read (the check is monkeypatched below)
    monkeypatch.setattr("otedi.warehouse.db.require_warehouse", lambda url=None: url)
    monkeypatch.setattr(otedi.analytics, "work_queue", bug)
    code, out, err = run(capsys, "ar", "worklist", "--today", "2026-11-20", "--json")
    assert code == 1 and out == "" and "Traceback" not in err and "DOE" not in err
    error_id, log = _log_of(err)
    assert problems(err)[0].startswith(f"otedi: internal error {error_id} (ValueError): a bug, not your data")
    assert log == home / "logs" / f"{error_id}.log"
    assert stat.S_IMODE(log.stat().st_mode) == 0o600 and stat.S_IMODE(log.parent.stat().st_mode) == 0o700
    text = log.read_text()
    assert text.startswith(f"otedi internal error {error_id}\n")
    assert "command:   otedi ar worklist (options --today --json)" in text  # the verbs and option names only
    assert "Traceback (most recent call last):" in text and "cli_reports.py" in text and "in worklist" in text
    assert "builtins.ValueError: (message withheld: it may quote data)" in text
    assert "DOE" not in text and "1EG4TE5MK73" not in text and "2026-11-20" not in text


def test_a_database_failure_logs_the_statement_never_its_parameters(home, monkeypatch, capsys):
    from sqlalchemy.exc import OperationalError

    import otedi.analytics

    def lost(*_a, **_kw):
        raise OperationalError("SELECT claim.id FROM claim WHERE claim.member_id = ?", {"member_id": "SECRETMEMBER"},
                               Exception("server closed the connection unexpectedly"))

    home.mkdir()
    monkeypatch.setattr("otedi.warehouse.db.require_warehouse", lambda url=None: url)
    monkeypatch.setattr(otedi.analytics, "export_tables", lost)
    code, out, err = run(capsys, "report", "export")
    assert code == 1 and "SECRETMEMBER" not in err and "Traceback" not in err
    [line] = problems(err)
    assert line.startswith("otedi: the warehouse database failed (Exception); what the command had not committed "
                           "was rolled back - run it again. Error id ")
    _, log = _log_of(err)
    text = log.read_text()
    assert "statement: SELECT claim.id FROM claim WHERE claim.member_id = ?" in text
    assert "sqlalchemy.exc.OperationalError: driver error Exception; parameters and driver text withheld" in text
    assert "SECRETMEMBER" not in text


def test_a_file_otedi_cannot_write_is_a_usage_error(home, tmp_path, monkeypatch, capsys):
    import otedi.charges.synth

    def refused(*_a, **_kw):
        raise PermissionError(13, "Permission denied", str(tmp_path / "ro" / "big.csv"))

    monkeypatch.setattr(otedi.charges.synth, "synth_charges", refused)
    code, _, err = run(capsys, "synth", "charges", "--rows", "3", "--out", str(tmp_path / "ro" / "big.csv"))
    assert code == 2
    assert problems(err) == [f"otedi: {tmp_path / 'ro' / 'big.csv'}: Permission denied; check the path and its "
                             f"permissions"]


def test_a_file_gone_from_under_otedi_is_an_internal_error_not_the_users_path(home, tmp_path, monkeypatch, capsys):
    # e.g. a concurrent run moved an inbound file to processed/ between two steps: not for the user to fix
    import otedi.charges.synth

    missing = [home / "drop" / "inbound" / "x.835"]

    def gone(*_a, **_kw):
        raise FileNotFoundError(2, "No such file or directory", str(missing[0]))

    monkeypatch.setattr(otedi.charges.synth, "synth_charges", gone)
    code, _, err = run(capsys, "synth", "charges", "--rows", "3", "--out", str(tmp_path / "big.csv"))
    assert code == 1 and problems(err)[0].startswith("otedi: internal error ")
    missing[0] = tmp_path / "no-such-folder" / "big.csv"  # the path the user gave: theirs to fix
    code, _, err = run(capsys, "synth", "charges", "--rows", "3", "--out", str(missing[0]))
    assert code == 2 and problems(err) == [f"otedi: {missing[0]}: No such file or directory; check the path and "
                                           f"its permissions"]


@pytest.mark.parametrize("warehouse", ["sqlite", "postgresql"], indirect=True)
def test_a_database_failure_line_never_quotes_the_drivers_text(warehouse):
    """PostgreSQL quotes the offending value in its message (`invalid input syntax for type date: "..."`); the
    per-file line names the failure class, SQLSTATE and the schema objects instead."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from otedi.cli_common import database_failure
    from otedi.warehouse.db import session_scope

    secret = "SECRET-1958-02-31"
    postgres = warehouse.startswith("postgresql")
    with pytest.raises(DBAPIError) as caught:
        with session_scope() as s:  # both drivers put the value in their message
            s.execute(text("select cast(cast(:v as text) as date)") if postgres else text(f'select * from "{secret}"'),
                      {"v": secret} if postgres else {})
    assert secret in str(caught.value.orig)
    line = database_failure(caught.value)
    assert secret not in line and "1958" not in line
    assert line.startswith("the warehouse database failed (") and line.endswith("; driver text withheld)")
    assert ("DataError, InvalidDatetimeFormat, SQLSTATE 22007" if postgres else "OperationalError, SQLITE_ERROR") in line
