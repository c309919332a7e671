"""Progress of the long steps (issue 13, the CLI: Rich bars with counts and ETA on load, scrub, write, validate,
post, export): the library reports each step's count from 0 to its total (otedi.progress), and the CLI shows
them as bars on a terminal."""

from __future__ import annotations

from collections import defaultdict
from datetime import date

import pytest

from otedi import cli, cli_common
from otedi.analytics import export_tables
from otedi.analytics.export import SCHEMAS
from otedi.charges.synth import synth_charges
from otedi.claims.batch import WRITING
from otedi.claims.build import CODING
from otedi.outbound import run_outbound
from otedi.progress import REPORTS_PER_STEP, counted
from tests.test_cli_app import _terminal, plain

SQLITE = pytest.mark.parametrize("warehouse", ["sqlite"], indirect=True)
NIGHT = date(2026, 3, 10)


class Recorder:
    """A progress callback that keeps every call, by step."""

    def __init__(self):
        self.calls: dict[str, list[tuple[int, int]]] = defaultdict(list)

    def __call__(self, step: str, done: int, total: int) -> None:
        self.calls[step].append((done, total))

    def check(self) -> dict[str, int]:
        """Every step went from 0 to its total, never backwards; returns {step: total}."""
        totals = {}
        for step, calls in self.calls.items():
            done = [d for d, _ in calls]
            (total,) = {t for _, t in calls}
            assert done[0] == 0 and done[-1] == total, (step, calls[:3], calls[-3:])
            assert done == sorted(done), step
            totals[step] = total
        return totals


def test_counted_reports_the_start_a_bounded_number_of_times_and_the_end():
    seen = Recorder()
    assert list(counted(range(1003), "rows", 1003, seen)) == list(range(1003))
    calls = seen.calls["rows"]
    assert calls[0] == (0, 1003) and calls[-1] == (1003, 1003)
    assert len(calls) <= REPORTS_PER_STEP + 2  # not once per row
    small = Recorder()
    list(counted("abc", "files", 3, small))
    assert small.calls["files"] == [(0, 3), (1, 3), (2, 3), (3, 3)]
    empty = Recorder()
    assert list(counted([], "files", 0, empty)) == [] and empty.calls["files"] == [(0, 0)]


@SQLITE
def test_the_outbound_steps_and_the_export_report_their_counts(warehouse, tmp_path):
    extract = tmp_path / "charges.csv"
    rows = synth_charges(600, 5, extract, defect_rate=0.02, start=date(2026, 1, 26), days=28)
    seen = Recorder()
    result = run_outbound(extract, tmp_path / "out", today=NIGHT, progress=seen)
    totals = seen.check()
    assert totals["checking rows"] == rows
    assert totals["storing charges"] == result.load.accepted + result.load.duplicates
    assert 0 < totals[CODING] <= result.build.charges  # patients, each with one or more charges
    assert totals[WRITING] == sum(f.claims for f in result.files) > 0

    exported = Recorder()
    export_tables(tmp_path / "exports", "csv", today=NIGHT, progress=exported)
    totals = exported.check()
    assert totals["refreshing the finance tables (read, compute, write)"] == 3
    assert totals["writing csv files (tables)"] == len(SCHEMAS)


@SQLITE
def test_on_a_terminal_claims_build_shows_a_bar_per_step_with_counts_and_eta(warehouse, tmp_path, monkeypatch):
    extract = tmp_path / "charges.csv"
    rows = synth_charges(300, 2, extract, defect_rate=0.0, start=date(2026, 1, 26), days=28)
    buffer = _terminal(monkeypatch)
    cli_common.reset()
    code = cli.main(["claims", "build", str(extract), "--out", str(tmp_path / "out"), "--today", NIGHT.isoformat()])
    assert code in (0, 3)
    text = plain(buffer.getvalue())
    assert "checking rows" in text and f"{rows}/{rows}" in text and "ETA" in text
    for step in ("storing charges", CODING, WRITING):
        assert step in text, step
