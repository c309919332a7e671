"""The `otedi` command: one Typer app assembled from the verbs of each area.

  otedi [--version] [-q | -v] [--install-completion | --show-completion] COMMAND ...
    run                                         the main job on embedded defaults      cli_run
    db upgrade                                                                          cli_run
    charges load | therapy-usage,  synth charges                                        cli_charges
    claims build | review | release | void,  validate,  ar resubmit                     cli_claims
    drop send | fetch,  simulate                                                        cli_drop
    acks load,  remit post | accept | match                                             cli_remit
    patient pay | refund | import | statements | balance,
    ar adjust | approve | decline | appeal | item                                       cli_accounts
    report export | html,  ar worklist                                                  cli_reports

Every verb is wiring: it checks its options, calls one library function and shows the result (cli_common:
the warehouse line, progress, Rich tables on a terminal and plain lines otherwise, --json, the exit-code
rule). `otedi COMMAND --help` shows each command's options and examples. Output names ids, codes, counts and
amounts only: never patient names, birth dates or member ids.

`main(argv)` returns the exit code (0 done, 1 internal error, 2 usage error, 3 data not taken; see
otedi.cli_common) and never a traceback: an internal error prints one line with an error id and writes the
details, without PHI, to $OTEDI_HOME/logs/<id>.log.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from otedi import (cli_accounts, cli_charges, cli_claims, cli_common, cli_drop, cli_remit, cli_reports,
                   cli_run)
from otedi.errors import OtediError

log = logging.getLogger("otedi")

GROUPS = {  # in the order `otedi --help` lists them
    "db": "the warehouse schema",
    "charges": "charge-entry extracts and therapy used at other providers",
    "claims": "build claims (837P through the 837P gate); review, release or void held claims",
    "drop": "the clearinghouse drop (file:// or sftp://): send 837Ps, fetch what came back",
    "acks": "999 and 277CA acknowledgments",
    "remit": "835 remittances: posting to the ledger, and a biller's actions on exceptions",
    "patient": "patient accounts: payments, refunds, imports, statements, balances",
    "ar": "AR follow-up: the work queue, work items, resubmissions, write-offs, appeals",
    "report": "finance tables (CSV, Parquet, XLSX) and the HTML report",
    "synth": "synthetic data",
}

app = typer.Typer(
    name="otedi", no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Occupational-therapy billing over X12 EDI: charge extracts become scrubbed, pyx12-validated 837P "
         "claims; 999/277CA and 835s come back and are posted to an append-only ledger; the warehouse "
         "reconciles what was billed with what was paid.\n\n"
         "Exit codes: 0 done; 1 internal error (an error id, details in $OTEDI_HOME/logs); 2 usage error or "
         "refused; 3 done, but a row or line was rejected, a file quarantined or a transaction held.\n\n"
         "Examples:\n\n"
         "    otedi run --follow-up-days 35\n\n"
         "    otedi claims build EXTRACT.csv --json\n\n"
         "    otedi charges load --help")
groups = {name: typer.Typer(help=text, no_args_is_help=True, rich_markup_mode="markdown")
          for name, text in GROUPS.items()}


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"otedi {version('otedi')}")
        except PackageNotFoundError:
            print("otedi (not installed: a source checkout)")
        raise typer.Exit()


@app.callback()
def root(version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_version,
                                               help="print otedi's version and exit")] = False,
         quiet: Annotated[bool, typer.Option("-q", "--quiet",
                                             help="warnings and errors only: no progress, no warehouse line")] = False,
         verbose: Annotated[int, typer.Option(
             "-v", "--verbose", count=True,
             help="more log lines: -v the steps' info lines (the default when stderr is not a terminal), "
                  "-vv debug")] = 0) -> None:
    if quiet and verbose:
        raise typer.BadParameter("give -q or -v, not both", param_hint="-q/-v")
    cli_common.reset(quiet=quiet)
    if quiet:
        level = logging.WARNING
    elif verbose:
        level = logging.INFO if verbose == 1 else logging.DEBUG
    else:  # on a terminal the progress bars say what happens; in a pipe or a log the info lines do
        level = logging.WARNING if cli_common.err_is_terminal() else logging.INFO
    _configure_logging(level)


_handler: logging.Handler | None = None  # the handler main() added, when it added one


def _configure_logging(level: int) -> None:
    """Log lines on stderr (Rich's, beside the progress bars, on a terminal); when logging is set up already
    (an embedding program, pytest) it is left as it is."""
    global _handler
    root_logger = logging.getLogger()
    if _handler is not None and _handler in root_logger.handlers:  # ours, from an earlier main() call
        root_logger.setLevel(level)
    elif not root_logger.handlers:
        if cli_common.err_is_terminal():
            from rich.console import Console
            from rich.logging import RichHandler

            handler: logging.Handler = RichHandler(console=Console(stderr=True), show_time=False, show_path=False,
                                                   markup=False, rich_tracebacks=False)
        else:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("%(message)s"))
        root_logger.addHandler(handler)
        root_logger.setLevel(level)
        _handler = handler
    logging.getLogger("alembic").setLevel(logging.WARNING)  # schema upgrades stay quiet


for _name in GROUPS:
    app.add_typer(groups[_name], name=_name)
cli_run.register(groups, app)
cli_charges.register(groups)
cli_claims.register(groups, app)
cli_drop.register(groups, app)
cli_remit.register(groups)
cli_accounts.register(groups)
cli_reports.register(groups)


def command() -> "typer.core.TyperGroup":
    """The app as a Click command (for completion, documentation and tests)."""
    return typer.main.get_command(app)


def _command_path(group, argv: list[str]) -> str:
    """`otedi remit post` from the arguments: the command words only, never the values given."""
    words, options, verbs = ["otedi"], [], True
    for token in argv:
        if token.startswith("-"):
            options.append(token.split("=", 1)[0])
            continue
        sub = getattr(group, "commands", {}).get(token) if verbs else None
        if sub is None:
            verbs = False  # an argument or an option's value: not logged
            continue
        words.append(token)
        group = sub
    return " ".join(words) + (f" (options {' '.join(dict.fromkeys(options))})" if options else "")


def main(argv: list[str] | None = None) -> int:
    """Run `otedi ARGV...`; returns the exit code (the console script exits with it)."""
    args = list(sys.argv[1:] if argv is None else argv)
    cli_common.reset()
    group = command()
    try:
        result = group.main(args=args, prog_name="otedi", standalone_mode=False)
        return int(result or 0)
    except typer.Abort:
        print("otedi: interrupted; what was not committed was rolled back - running the command again is safe",
              file=sys.stderr)
        return 130
    except typer.TyperException as exc:  # a usage error: Click's message, one line
        message = (exc.format_message() if hasattr(exc, "format_message") else str(exc)).replace("Value error, ", "")
        if not message:  # a group given no command: its help was printed
            return cli_common.USAGE
        ctx = getattr(exc, "ctx", None)
        where = ctx.command_path if ctx is not None else "otedi"
        print(f"otedi: {message} (see `{where} --help`)", file=sys.stderr)
        return cli_common.USAGE
    except OtediError as exc:  # a file, row, setting or action the user can fix: named in one line
        print(f"otedi: {exc}", file=sys.stderr)
        return cli_common.USAGE
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError) as exc:
        if not _users_path(exc, args):  # e.g. a file a concurrent run moved away: not the user's doing
            return _internal(exc, group, args)
        print(f"otedi: {exc.filename}: {exc.strerror or type(exc).__name__}; check the path and its permissions",
              file=sys.stderr)
        return cli_common.USAGE
    except Exception as exc:  # noqa: BLE001 - a bug or a failing database: one line, the details in a log
        return _internal(exc, group, args)


def _users_path(exc: OSError, args: list[str]) -> bool:
    """Whether a file error is the user's to fix: a permission refused anywhere (a folder otedi may not
    write, OTEDI_HOME included), or any error on a path given on the command line or under one."""
    if exc.filename is None:
        return False
    if isinstance(exc, PermissionError):
        return True
    failed = Path(str(exc.filename)).expanduser().resolve()
    for token in args:
        value = token.split("=", 1)[1] if token.startswith("--") and "=" in token else token
        value = value.removeprefix("file://")
        if not value or value.startswith("-"):
            continue
        given = Path(value).expanduser().resolve()
        if failed == given or given in failed.parents:
            return True
    return False


def _internal(exc: BaseException, group, args: list[str]) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    error_id, path = cli_common.record_failure(exc, _command_path(group, args))
    where = f"the details (no patient data) are in {path}" if path else "no log could be written"
    if isinstance(exc, SQLAlchemyError):  # a lost connection, a lock held too long, a server refusing
        orig = getattr(exc, "orig", None)
        print(f"otedi: the warehouse database failed ({type(orig or exc).__name__}); what the command had not "
              f"committed was rolled back - run it again. Error id {error_id}: {where}", file=sys.stderr)
    else:
        print(f"otedi: internal error {error_id} ({type(exc).__name__}): a bug, not your data or options; steps "
              f"already committed stay and running the command again is safe. {where[0].upper()}{where[1:]}",
              file=sys.stderr)
    log.debug("internal error %s: %s", error_id, type(exc).__name__)
    return cli_common.INTERNAL


if __name__ == "__main__":
    sys.exit(main())
