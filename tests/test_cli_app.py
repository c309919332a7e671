"""The `otedi` app itself (issue 13, the CLI): one Typer app, help and examples everywhere, --version, shell
completion, -q/-v, plain text without a terminal, Rich tables and progress with one, JSON values."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from datetime import date, datetime
from decimal import Decimal
from importlib.metadata import version
from pathlib import Path
from typing import get_args

import pytest
from rich.console import Console

from otedi import cli, cli_common

ROOT = Path(__file__).resolve().parents[1]
VALID_837 = ROOT / "tests" / "fixtures" / "x12" / "otedi_837p_mixed.837"

TREE = {
    "run", "validate", "simulate", "db upgrade", "charges load", "charges therapy-usage", "claims build",
    "claims review", "claims release", "claims void", "drop send", "drop fetch", "acks load", "remit post",
    "remit accept", "remit match", "patient pay", "patient refund", "patient import", "patient statements",
    "patient balance", "ar resubmit", "ar adjust", "ar approve", "ar decline", "ar appeal", "ar item",
    "ar worklist", "report refresh", "report export", "report html", "synth charges",
}


def leaves(command=None, path=()):
    command = command or cli.command()
    subs = getattr(command, "commands", None)
    if not subs:
        yield " ".join(path), command
        return
    for name, sub in subs.items():
        yield from leaves(sub, (*path, name))


def run(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


UNSET = ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "NO_COLOR", "OTEDI_DATABASE_URL")


def otedi(*argv: str, env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    """`python -m otedi.cli ARGV` in a pipe (nothing in the environment makes Rich take it for a terminal)."""
    clean = {k: v for k, v in os.environ.items() if k not in UNSET}
    return subprocess.run([sys.executable, "-m", "otedi.cli", *argv], capture_output=True, text=True, cwd=ROOT,
                          env={**clean, **(env or {})}, timeout=120, **kw)


def test_the_command_tree_is_the_verbs_of_the_readme():
    assert {path for path, _ in leaves()} == TREE


@pytest.mark.parametrize("path", sorted(TREE))
def test_every_command_has_help_on_every_option_examples_and_json(path):
    command = dict(leaves())[path]
    assert command.help and "Examples:" in command.help and f"otedi {path}" in command.help
    missing = [p.name for p in command.params if not (getattr(p, "help", None) or "").strip()]
    assert missing == []
    assert any("--json" in p.opts for p in command.params)


def test_the_root_help_lists_the_exit_codes_and_the_global_options(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    text = " ".join(out.split())
    for words in ("--version", "--quiet", "--verbose", "--install-completion", "--show-completion",
                  "Exit codes: 0 done; 1 internal error", "2 usage error", "3 done, but"):
        assert words in text


def test_version(capsys):
    assert run(capsys, "--version") == (0, f"otedi {version('otedi')}\n", "")


def test_shell_completion_script_and_completions():
    # Typer finds the user's shell from the parent process (shellingham); a test run need not have one, so the
    # shell is named instead (Typer's switch for that, as its own tests use it)
    shown = otedi("--show-completion", "bash", env={"_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"})
    assert shown.returncode == 0 and "_OTEDI_COMPLETE=complete_bash" in shown.stdout
    assert "complete -o default -F _otedi_completion otedi" in shown.stdout
    done = otedi(env={"_OTEDI_COMPLETE": "complete_bash", "COMP_WORDS": "otedi rem", "COMP_CWORD": "1"})
    assert done.returncode == 0 and done.stdout.split() == ["remit"]
    verbs = otedi(env={"_OTEDI_COMPLETE": "complete_bash", "COMP_WORDS": "otedi ar wo", "COMP_CWORD": "2"})
    assert verbs.stdout.split() == ["worklist"]


def test_quiet_and_verbose_together_is_a_usage_error(capsys):
    code, out, err = run(capsys, "-q", "-v", "ar", "worklist")
    assert code == 2 and out == ""
    assert err == "otedi: Invalid value for -q/-v: give -q or -v, not both (see `otedi --help`)\n"


def test_a_group_without_a_verb_shows_its_help_and_exits_2(capsys):
    code, out, err = run(capsys, "remit")
    assert code == 2 and "post" in out and "accept" in out and "match" in out and err == ""


def test_piped_output_is_plain_text_without_escape_codes(tmp_path):
    # Rich turns colour and boxes into escapes only on a terminal; a pipe gets the plain line formats.
    env = {"OTEDI_HOME": str(tmp_path / "home"), "TERM": "xterm-256color", "COLUMNS": "120"}
    for argv in (("--help",), ("claims", "build", "--help"), ("validate", str(VALID_837)),
                 ("validate", str(VALID_837), "--json"), ("report", "export", "--format", "xml"), ("ar", "worklist")):
        done = otedi(*argv, env=env)
        assert "\x1b[" not in done.stdout + done.stderr, argv
    valid = otedi("validate", str(VALID_837), env=env)
    assert valid.returncode == 0 and valid.stdout.startswith("otedi_837p_mixed.837: valid (")


def plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


def _terminal(monkeypatch) -> io.StringIO:
    """Make the CLI's consoles a 100-column terminal writing into one buffer."""
    buffer = io.StringIO()
    monkeypatch.setattr(cli_common, "_console", lambda stderr: Console(file=buffer, force_terminal=True, width=100,
                                                                     highlight=False, soft_wrap=True))
    return buffer


def test_on_a_terminal_the_issues_list_and_summaries_are_tables(monkeypatch):
    buffer = _terminal(monkeypatch)
    issues = [{"severity": "warning", "rule": "units-changed", "message": "charted 2, billed 1", "charge_id": "C2",
               "claim_id": "OT1"},
              {"severity": "reject", "rule": "8-minute-rule", "message": "97535 not billed", "charge_id": "C1",
               "claim_id": None, "row": 4}]
    cli_common.show_issues(issues)
    cli_common.show_pairs([("claims sent", 334), ("billed", "82,800.00")], title="billing cycle")
    raw = buffer.getvalue()
    text = plain(raw)
    assert "\x1b[31mREJECT" in raw and "┃ severity" in text  # coloured severity in a table with headers
    assert text.index("REJECT") < text.index("WARNING")  # most serious first
    assert "row 4 charge C1" in text and "claim OT1 charge C2" in text
    assert "claims sent" in text and "82,800.00" in text and "│" in text


def test_on_a_terminal_long_steps_show_bars_with_counts_and_eta(monkeypatch):
    buffer = _terminal(monkeypatch)
    assert list(cli_common.each(["a.835", "b.835", "c.835"], "posting 835 files")) == ["a.835", "b.835", "c.835"]
    with cli_common.Steps(3, "billing cycle") as steps:
        steps("loading")
        steps("sending")
        steps("posting")
    with cli_common.working("exporting"):
        pass
    text = plain(buffer.getvalue())
    assert "posting 835 files" in text and "3/3" in text and "ETA" in text
    assert "billing cycle: done" in text
    assert "done exporting (" in text


def test_without_a_terminal_steps_are_lines_on_stderr_and_quiet_hides_them(capsys):
    cli_common.reset()
    with cli_common.Steps(2, "billing cycle") as steps:
        steps("loading")
        steps("sending")
    assert list(cli_common.each([1, 2], "posting 835 files")) == [1, 2]
    with cli_common.working("exporting"):
        pass
    assert capsys.readouterr() == ("", "... loading\n... sending\n... posting 835 files: 2\n... exporting\n")
    cli_common.reset(quiet=True)
    with cli_common.Steps(1, "billing cycle") as steps:
        steps("loading")
    with cli_common.working("exporting"):
        pass
    assert capsys.readouterr() == ("", "")
    cli_common.reset()


def test_json_values_dates_as_iso_dates_money_as_strings_missing_as_null():
    import numpy as np
    import pandas as pd

    value = {"day": date(2026, 11, 14), "at": datetime(2026, 11, 14, 9, 30, 5, 123),
             "midnight": pd.Timestamp("2026-11-14"), "stamp": pd.Timestamp("2026-11-14 09:30:05"),
             "none": pd.NaT, "nan": float("nan"), "np_nan": np.float64("nan"), "count": np.int64(3),
             "money": Decimal("120.00"), "path": Path("/x/y.837"), "kinds": {"835", "999"}, "pair": ("a", 1)}
    assert json.loads(json.dumps(cli_common.jsonable(value))) == {
        "day": "2026-11-14", "at": "2026-11-14T09:30:05", "midnight": "2026-11-14", "stamp": "2026-11-14T09:30:05",
        "none": None, "nan": None, "np_nan": None, "count": 3, "money": "120.00", "path": "/x/y.837",
        "kinds": ["835", "999"], "pair": ["a", 1]}
    frame = pd.DataFrame({"deadline": [date(2026, 12, 10)], "amount": [Decimal("93.00")], "note": [None]})
    assert cli_common.records(frame) == [{"deadline": "2026-12-10", "amount": "93.00", "note": None}]


def test_the_export_formats_offered_are_the_librarys():
    from otedi.analytics.export import FORMATS
    from otedi.cli_reports import Format

    assert get_args(Format) == FORMATS


def test_the_exit_code_rule():
    rule = cli_common.exit_code
    assert (rule(), rule(data=True), rule(refused=True, data=True), rule(failed=True, refused=True)) == (0, 3, 2, 1)
    assert cli_common.combine(0, 3, 0) == 3 and cli_common.combine(3, 2, 1) == 1 and cli_common.combine() == 0


def test_gitignore_covers_the_working_files():
    ignored = set((ROOT / ".gitignore").read_text().split())
    assert "/var/" in ignored  # the default OTEDI_HOME
    assert {"/outbound/", "/archive/", "/drop/", "/exports/", "/statements/", "/appeals/", "/synth/", "/logs/",
            "/report.html", "*.db", "*.db-wal", "*.db-shm"} <= ignored


def test_brackets_in_data_are_shown_as_text_not_read_as_rich_markup(monkeypatch):
    buffer = _terminal(monkeypatch)
    cli_common.show_table(["file", "note"], [["[x]era.835", "[done - b1: called] [/red]"]], title="[bold]t")
    cli_common.show_issues([{"severity": "hold", "rule": "ncci-ptp", "message": "add [59]", "claim_id": "OT1"}])
    with cli_common.working("loading [weird].csv"):
        pass
    text = plain(buffer.getvalue())
    assert "[x]era.835" in text and "[done - b1: called] [/red]" in text and "[bold]t" in text
    assert "add [59]" in text and "done loading [weird].csv" in text
