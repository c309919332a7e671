"""Files that hold PHI are 0600 in 0700 folders whatever the umask (issue 11 item 12), and CSV exports
neutralise spreadsheet formulas the OWASP way while numbers stay numbers (item 11)."""

from __future__ import annotations

import os
import stat
from datetime import date
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from otedi.analytics import export_tables, write_html_report
from otedi.analytics.export import neutralise_formulas
from otedi.charges.synth import synth_charges
from otedi.outbound import run_outbound
from otedi.warehouse import db
from otedi.x12.validate import ValidationReport, X12Problem


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask():
    old = os.umask(0)  # the most permissive: nothing is taken away
    yield
    os.umask(old)


def test_phi_files_are_private_whatever_the_umask(open_umask, tmp_path, monkeypatch):
    import otedi.claims.batch as batch

    home = tmp_path / "home"
    monkeypatch.setenv("OTEDI_HOME", str(home))
    monkeypatch.setenv("OTEDI_DATABASE_URL", f"sqlite:///{home / 'warehouse' / 'otedi.db'}")
    extract = tmp_path / "charges.csv"
    synth_charges(120, 11, extract, start=date(2026, 1, 5), days=56)
    db.upgrade()
    failing = iter([True])  # the first file fails the gate and goes to quarantine, the others pass

    def gate(path):
        if next(failing, False):
            return ValidationReport(path=Path(path), ok=False, segments=9, errors=[X12Problem(
                segment_number=7, segment_id="CLM", loop_id="2300", element="CLM02", code="7",
                message="invalid code value", detail="")])
        return ValidationReport(path=Path(path), ok=True, errors=[], segments=9)

    monkeypatch.setattr(batch, "AuditedGate", lambda: gate)
    result = run_outbound(extract, home / "outbound" / "night", today=date(2026, 3, 5)).summary()
    exports = export_tables(home / "exports" / "csv", "csv", today=date(2026, 3, 5))
    exports += export_tables(home / "exports" / "parquet", "parquet", today=date(2026, 3, 5))
    report = write_html_report(home / "reports" / "day" / "report.html", today=date(2026, 3, 5))

    quarantined = [Path(p) for p in result["quarantined"]]
    files = [*map(Path, result["files"]), *quarantined, *(p.with_name(p.name + ".errors.txt") for p in quarantined),
             *exports, report, home / "warehouse" / "otedi.db"]
    assert quarantined and result["files"]
    assert {str(p): oct(mode(p)) for p in files if mode(p) != 0o600} == {}
    folders = {home / "warehouse", home / "outbound", home / "outbound" / "night", quarantined[0].parent,
               home / "exports", home / "exports" / "csv", home / "reports", home / "reports" / "day"}
    assert {str(f): oct(mode(f)) for f in folders if mode(f) != 0o700} == {}
    assert all(mode(p) == 0o600 for p in (home / "warehouse").glob("otedi.db*"))  # -wal / -shm too


def test_formula_cells_are_neutralised_and_numbers_stay_numbers():
    table = pd.DataFrame({
        "text": ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\rx", "plain", None],
        "money": [Decimal("-1.00"), Decimal("2.50"), Decimal("0"), Decimal("3"), Decimal("4"), Decimal("5"),
                  Decimal("6"), Decimal("7")],
        "count": [-5, 1, 2, 3, 4, 5, 6, 7],
    })
    out = neutralise_formulas(table)
    assert out["text"].tolist()[:7] == ["'=HYPERLINK(\"http://x\")", "'+1+1", "'-2+3", "'@SUM(A1)", "'\tcmd",
                                        "'\rx", "plain"]
    assert pd.isna(out["text"][7])
    assert out["money"].tolist() == table["money"].tolist() and out["count"].tolist() == table["count"].tolist()
    assert table["text"][0].startswith("=")  # the caller's frame is not changed


def test_the_simulators_answers_and_state_are_private_too(open_umask, tmp_path, monkeypatch):
    """The payer simulator's 999/277CA/835 answers and its state (member ids, KX totals) name patients."""
    from otedi.cycle import run_cycle
    from otedi.simulator import simulate_once

    home = tmp_path / "home"
    monkeypatch.setenv("OTEDI_HOME", str(home))
    monkeypatch.setenv("OTEDI_DATABASE_URL", f"sqlite:///{home / 'otedi.db'}")
    extract = tmp_path / "charges.csv"
    synth_charges(120, 11, extract, start=date(2026, 1, 5), days=56)
    db.upgrade()
    drop = home / "drop"
    run_cycle(extract, drop_url=f"file://{drop}", out_dir=home / "outbound", archive_dir=home / "archive",
              today=date(2026, 3, 5), answer=lambda: simulate_once(drop, seed=3, today=date(2026, 3, 5)))
    answers = [p for p in (drop / "processed").iterdir()]
    assert {p.suffix for p in answers} >= {".999", ".277", ".835"}
    files = [*answers, drop / ".simulator" / "state.json"]
    assert {p.name: oct(mode(p)) for p in files if mode(p) != 0o600} == {}
    assert oct(mode(drop / ".simulator")) == oct(0o700)
