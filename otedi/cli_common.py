"""What every `otedi` verb shares: options, the warehouse line, progress, tables, JSON and the exit-code rule.

The verbs (cli_charges, cli_claims, cli_remit, cli_accounts, cli_reports, cli_drop, cli_run) are wiring: they
parse options, call one library function, and show its result with these helpers. cli.py assembles them.

Exit codes, the same for every command (README, "The otedi command"):
  0  done
  1  internal error (a bug, or the database failing mid-command): one line with an error id; the details are
     in $OTEDI_HOME/logs/<id>.log (0600, no PHI); also a file the database failed on, named in one line
  2  usage error or refusal, nothing done for it: a missing, unreadable or wrong kind of file, a bad option
     value, a bad or unreachable OTEDI_DATABASE_URL, no warehouse for a read-only command, a biller's action
     that does not apply
  3  done, but data was not taken: a row or line rejected, a file quarantined, an 835 transaction held,
     an X12 file invalid
When several apply, the lowest non-zero code wins (1, then 2, then 3).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, is_dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Callable, Iterable, Iterator, Optional

import typer

from otedi.errors import OtediError
from otedi.progress import Progress, silent

OK, INTERNAL, USAGE, DATA = 0, 1, 2, 3


class UsageProblem(OtediError):
    """A user's mistake the CLI finds itself (a path, a setting): one line naming it and the fix; exit 2."""


def exit_code(*, failed: bool = False, refused: bool = False, data: bool = False) -> int:
    """The rule: 1 when something failed, else 2 when something was refused, else 3 when data was not taken."""
    return INTERNAL if failed else USAGE if refused else DATA if data else OK


def combine(*codes: int) -> int:
    """Several parts' exit codes as one: the lowest non-zero (1 before 2 before 3), else 0."""
    return min((c for c in codes if c), default=OK)


# --- state of one invocation --------------------------------------------------------------------------------

@dataclass
class _State:
    quiet: bool = False  # -q: no progress, no warehouse line
    announced: str | None = None  # the warehouse URL already printed


STATE = _State()


def reset(*, quiet: bool = False) -> None:
    STATE.quiet, STATE.announced = quiet, None


def _console(stderr: bool):
    from rich.console import Console

    # file=None: Rich writes to sys.stdout/sys.stderr as they are at print time (pytest's capture included)
    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def out_is_terminal() -> bool:
    """Rich tables on a terminal; plain lines (the formats scripts read) when stdout is piped or captured."""
    return _console(False).is_terminal


def err_is_terminal() -> bool:
    return _console(True).is_terminal


def say(line: str = "") -> None:
    """One plain line on stdout."""
    print(line)


def note(line: str) -> None:
    """An informational line on stderr (hidden by -q)."""
    if not STATE.quiet:
        print(line, file=sys.stderr)


def warn(line: str) -> None:
    """A problem with part of the work, on stderr, whatever -q says: `otedi: <what>`."""
    print(f"otedi: {line}", file=sys.stderr)


def show(renderable) -> None:
    """A Rich table (or other renderable) on stdout."""
    _console(False).print(renderable)


# --- JSON ------------------------------------------------------------------------------------------------------

def jsonable(value: Any) -> Any:
    """Plain JSON values: ISO dates (a date as YYYY-MM-DD, a time as YYYY-MM-DDTHH:MM:SS), money as a decimal
    string, paths as strings, None for missing values."""
    if is_dataclass(value) and not isinstance(value, type):
        value = asdict(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(jsonable(v) for v in value)
    module = type(value).__module__
    if module.startswith(("pandas", "numpy")):
        import pandas as pd

        if value is pd.NaT or (not isinstance(value, str) and pd.isna(value)):
            return None
        if isinstance(value, pd.Timestamp):
            return value.date().isoformat() if value == value.normalize() else value.isoformat(timespec="seconds")
        if hasattr(value, "item"):
            value = value.item()
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and value != value:  # NaN
        return None
    return value


def emit_json(value: Any) -> None:
    print(json.dumps(jsonable(value), indent=2))


def records(frame) -> list[dict]:
    """A pandas frame as JSON-ready records (dates as dates, Decimals as strings, NaN as null)."""
    return [jsonable(row) for row in frame.to_dict(orient="records")]


# --- options ---------------------------------------------------------------------------------------------------

def _iso_date(value: str | date | None) -> date | None:
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date: use YYYY-MM-DD, e.g. 2026-11-14") from None


def date_option(*names: str, help: str) -> Any:
    return typer.Option(*names, help=help, parser=_iso_date, metavar="YYYY-MM-DD")


Json = Annotated[bool, typer.Option("--json", help="print one JSON value instead of text (its shape: README, "
                                                     "\"The otedi command\"); dates ISO, money as strings")]
Today = Annotated[Optional[date], date_option(
    "--today", help="treat this date as today (the as-of date for timely filing, aging and dates written); "
                    "default: the current date")]
By = Annotated[Optional[str], typer.Option("--by", help="who acts (default: OTEDI_USER, else the login name)")]
Note = Annotated[str, typer.Option("--note", help="why (recorded in the audit trail)")]


def existing_file(help: str, metavar: str = "FILE") -> Any:
    """A file argument: missing, unreadable or a folder is refused in one line (exit 2) before anything runs."""
    return typer.Argument(help=help, metavar=metavar, exists=True, dir_okay=False, readable=True)


def home(*parts: str) -> Path:
    """A working file or folder under $OTEDI_HOME (the default of every output option)."""
    from otedi import config

    return config.home().joinpath(*parts)


def out_folder(path: Path | None, *default: str) -> Path:
    """An output folder option: the one given (refused when it is a file), else $OTEDI_HOME/<default>."""
    folder = path if path is not None else home(*default)
    if folder.exists() and not folder.is_dir():
        raise UsageProblem(f"{folder} is a file, not a folder: give --out a folder (or leave it out for "
                           f"{home(*default)})")
    return folder


def out_file(path: Path | None, *default: str) -> Path:
    """An output file option: the one given (refused when it is a folder), else $OTEDI_HOME/<default>."""
    target = path if path is not None else home(*default)
    if target.is_dir():
        raise UsageProblem(f"{target} is a folder: give --out a file name, e.g. {target / default[-1]}")
    return target


# --- the warehouse -------------------------------------------------------------------------------------------

def warehouse(*, writes: bool) -> str:
    """Say which warehouse this command uses (stderr, password hidden) and check it. A command that writes
    prepares it (db.prepare_warehouse: the schema brought up to date where OTEDI_AUTO_UPGRADE allows, the
    embedded SQLite warehouse created the first time); a read-only one only requires it (db.require_warehouse):
    it never creates a warehouse or its folders. A bad, unreachable, missing or out-of-date warehouse is a
    WarehouseError of one line (exit 2). Returns the URL with its password hidden."""
    from otedi.warehouse import db

    shown = db.describe()
    if STATE.announced != shown:
        note(f"warehouse: {shown}")
        STATE.announced = shown
    (db.prepare_warehouse if writes else db.require_warehouse)()
    return shown


def act(action: Callable, done: str | Callable[[Any], str], as_json: bool) -> int:
    """One audited action of a biller (release, void, accept, match ...) in its own transaction: its changes as
    JSON, or the line `done` (a text, or made from the changes)."""
    from otedi.warehouse import db

    warehouse(writes=True)
    with db.session_scope() as session:
        changes = action(session)
    if as_json:
        emit_json(changes)
    else:
        say(done if isinstance(done, str) else done(changes))
    return OK


# --- progress --------------------------------------------------------------------------------------------------

def _progress(transient: bool):
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    return Progress(SpinnerColumn(), TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=_console(True),
                    transient=transient)


def _live() -> bool:
    return not STATE.quiet and err_is_terminal()


@contextmanager
def working(what: str) -> Iterator[None]:
    """One long library call without a progress callback: a spinner with the time taken on a terminal,
    else one `... what` line on stderr (both hidden by -q)."""
    if not _live():
        note(f"... {what}")
        yield
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    started = time.monotonic()
    with Progress(SpinnerColumn(), TextColumn("{task.description}", markup=False), TimeElapsedColumn(),
                  console=_console(True), transient=True) as bar:
        bar.add_task(what, total=None)
        yield
    from rich.markup import escape

    _console(True).print(f"[green]done[/] {escape(what)} ({time.monotonic() - started:.1f} s)")


@contextmanager
def tracking(what: str) -> Iterator[Progress]:
    """One long library call that reports its steps (otedi.progress): on a terminal a bar per step with the
    count done of its total, elapsed time and ETA; else one `... what` line on stderr (both hidden by -q)."""
    if not _live():
        note(f"... {what}")
        yield silent
        return
    with _progress(transient=False) as bar:
        tasks: dict[str, Any] = {}

        def report(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = bar.add_task(step, total=total)
            bar.update(tasks[step], completed=done, total=total)

        yield report


def each(items: Iterable, what: str, total: int | None = None) -> Iterator:
    """Iterate over `items` with a bar: count done of total, elapsed time and ETA (on a terminal), else one
    `... what: N` line."""
    items = list(items)
    total = len(items) if total is None else total
    if not _live():
        if total:
            note(f"... {what}: {total}")
        yield from items
        return
    with _progress(transient=False) as bar:
        task = bar.add_task(what, total=total)
        for item in items:
            yield item
            bar.advance(task)


class Steps:
    """The named steps of a long job that reports them (otedi.cycle's `progress` callback): a bar of steps
    done of the total with ETA on a terminal, else a `... step` line each."""

    def __init__(self, total: int, what: str):
        self.total, self.what, self.done = total, what, 0
        self._bar = self._task = None

    def __enter__(self) -> "Steps":
        if _live():
            self._bar = _progress(transient=False)
            self._bar.__enter__()
            self._task = self._bar.add_task(self.what, total=self.total)
        return self

    def __call__(self, step: str) -> None:
        if self._bar is None:
            note(f"... {step}")
            return
        if self.done:  # the step before is over
            self._bar.advance(self._task)
        self.done += 1
        if self.done > self.total:
            self.total = self.done
            self._bar.update(self._task, total=self.total)
        self._bar.update(self._task, description=f"{self.what}: {step}")

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            if exc[0] is None:
                self._bar.update(self._task, completed=self.total, description=f"{self.what}: done")
            self._bar.__exit__(*exc)


# --- the issues list -------------------------------------------------------------------------------------------

SEVERITY_ORDER = {"reject": 0, "hold": 1, "warning": 2}
ISSUES_TITLE = "issues (reject: line not billed; hold: claim kept back for review; warning: sent, note it)"


def _where(i: dict) -> str:
    return " ".join(x for x in (
        f"row {i['row']}" if i.get("row") is not None else "",
        f"claim {i['claim_id']}" if i.get("claim_id") else "",
        f"charge {i['charge_id']}" if i.get("charge_id") else "",
    ) if x)


def sorted_issues(issues: list[dict]) -> list[dict]:
    return sorted(issues, key=lambda i: (SEVERITY_ORDER.get(i["severity"], 3), i.get("claim_id") or "",
                                         i.get("charge_id") or ""))


def issue_lines(issues: list[dict], limit: int | None = 50) -> list[str]:
    shown = sorted_issues(issues)
    lines = [f"  {i['severity'].upper():8} {i['rule']:22} {_where(i)}: {i['message']}"
             for i in (shown[:limit] if limit else shown)]
    if limit and len(shown) > limit:
        lines.append(f"  ... {len(shown) - limit} more (use --json for the full list)")
    return lines


def show_issues(issues: list[dict], limit: int | None = 50, title: str = ISSUES_TITLE) -> None:
    """The issues list: a Rich table on a terminal, else the plain lines (most serious first)."""
    if not issues:
        return
    if not out_is_terminal():
        say(f"{title}:")
        say("\n".join(issue_lines(issues, limit)))
        return
    from rich.table import Table
    from rich.text import Text

    colours = {"reject": "red", "hold": "yellow", "warning": "cyan"}
    shown = sorted_issues(issues)
    table = Table(title=Text(title), title_justify="left", show_lines=False)
    for column in ("severity", "rule", "where", "message"):
        table.add_column(column, overflow="fold")
    for i in shown[:limit] if limit else shown:
        colour = colours.get(i["severity"], "white")
        table.add_row(Text(i["severity"].upper(), style=colour), Text(i["rule"]), Text(_where(i)),
                      Text(i["message"]))
    show(table)
    if limit and len(shown) > limit:
        say(f"... {len(shown) - limit} more (use --json for the full list)")


def show_pairs(rows: list[tuple[str, object]], title: str | None = None, width: int = 36) -> None:
    """A summary of label/value pairs: a two-column Rich table on a terminal, else aligned plain lines."""
    if not out_is_terminal():
        for label, value in rows:
            say(f"{label:<{width}}{value!s:>16}")
        return
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(title) if title else None, title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    for label, value in rows:
        table.add_row(Text(label), Text(str(value)))
    show(table)


def show_table(columns: list[str], rows: list[list[object]], title: str | None = None,
               right: tuple[str, ...] = ()) -> None:
    """A Rich table (call only on a terminal: the plain formats are each verb's own)."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(title) if title else None, title_justify="left")
    for column in columns:
        table.add_column(column, justify="right" if column in right else "left", overflow="fold")
    for row in rows:
        table.add_row(*(Text("" if v is None else str(v)) for v in row))  # text, never Rich markup
    show(table)


def rejected(issues: list[dict]) -> bool:
    """The data-problem half of the rule for coding output: a row or line rejected."""
    return any(i.get("severity") == "reject" for i in issues)


def remittance_problem(summary: dict) -> bool:
    """An 835 not taken as a whole: quarantined, or a transaction held (unbalanced). Duplicates, already
    posted files and predeterminations are recognised, not problems."""
    return summary.get("status") == "quarantined" or any(h.get("status") == "held" for h in summary.get("held", []))


def ack_problem(summary: dict) -> bool:
    return summary.get("status") == "quarantined"


def database_failure(exc: BaseException) -> str:
    """One line about a database error, none of its text: a driver's message may quote the row's values
    (PostgreSQL's `invalid input syntax for type date: "..."`), so only what names the schema and the failure
    class - SQLAlchemy's and the driver's error class, PostgreSQL's SQLSTATE and the constraint, table and
    column it names, SQLite's error name - and whether the connection was lost."""
    orig = getattr(exc, "orig", None)
    found = [type(exc).__name__] + ([type(orig).__name__] if orig is not None and orig is not exc else [])
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if sqlstate:
        found.append(f"SQLSTATE {sqlstate}")
    diag = getattr(orig, "diag", None)
    for what in ("constraint_name", "table_name", "column_name"):
        name = getattr(diag, what, None)
        if name:
            found.append(f"{what.removesuffix('_name')} {name}")
    if getattr(orig, "sqlite_errorname", None):
        found.append(orig.sqlite_errorname)
    if getattr(exc, "connection_invalidated", False):
        found.append("the connection was lost")
    return f"the warehouse database failed ({', '.join(found)}; driver text withheld)"


# --- internal errors -------------------------------------------------------------------------------------------

# Exceptions whose message is written by Python about the code, never a value from the data: safe to log.
_CODE_MESSAGES = (AttributeError, NameError, ImportError, NotImplementedError, RecursionError, ZeroDivisionError,
                  TypeError)


def _message(exc: BaseException) -> str:
    """What of an exception may go into a log: otedi's own messages (they carry no PHI by contract) and
    Python's messages about the code; for a database error the statement without its parameters and the
    driver's error class and SQLSTATE; anything else is withheld, since it may quote the data."""
    from sqlalchemy.exc import StatementError

    if isinstance(exc, StatementError):
        orig = exc.orig
        sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
        lines = [f"driver error {type(orig).__name__ if orig is not None else '-'}"
                 + (f" (SQLSTATE {sqlstate})" if sqlstate else "") + "; parameters and driver text withheld",
                 f"statement: {' '.join(str(exc.statement or '').split())[:2000]}"]
        return "\n    ".join(lines)
    if isinstance(exc, (OtediError, _CODE_MESSAGES)):
        return str(exc)
    return "(message withheld: it may quote data)"


def failure_report(exc: BaseException, error_id: str, command: str) -> str:
    """The traceback of `exc` (and of what caused it): each frame's file, line and function (not its source
    line), each exception's class, its message reduced by _message: no PHI."""
    import platform
    import traceback

    try:
        from importlib.metadata import version

        otedi_version = version("otedi")
    except Exception:  # noqa: BLE001 - a checkout without metadata
        otedi_version = "unknown"
    try:
        from otedi.warehouse import db

        where = db.describe()
    except Exception:  # noqa: BLE001
        where = "(not known)"
    chain, seen = [], set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    when = datetime.now().astimezone().isoformat(timespec="seconds")
    lines = [f"otedi internal error {error_id}", f"when:      {when}", f"command:   {command}",
             f"otedi {otedi_version}, Python {platform.python_version()}, {platform.platform()}",
             f"warehouse: {where}", ""]
    for n, item in enumerate(reversed(chain)):
        if n:
            lines += ["", "which led to:"]
        lines.append("Traceback (most recent call last):")
        for frame in traceback.extract_tb(item.__traceback__):  # no source lines: a literal there may be data
            lines.append(f'  File "{frame.filename}", line {frame.lineno}, in {frame.name}')
        lines.append(f"{type(item).__module__}.{type(item).__qualname__}: {_message(item)}")
    return "\n".join(lines) + "\n"


def record_failure(exc: BaseException, command: str = "otedi") -> tuple[str, Path | None]:
    """Write the failure report to $OTEDI_HOME/logs/<id>.log (0600 in a 0700 folder); returns the id and the
    path (None when the log could not be written: the id is still printed)."""
    import secrets

    from otedi.files import private_dir, write_private_text

    error_id = datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)
    try:
        path = private_dir(home("logs")) / f"{error_id}.log"
        write_private_text(path, failure_report(exc, error_id, command))
    except Exception:  # noqa: BLE001 - a log we cannot write must not hide the error itself
        logging.getLogger("otedi").exception("could not write the error log %s", error_id)
        return error_id, None
    return error_id, path
