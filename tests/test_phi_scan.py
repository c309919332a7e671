"""A full cycle's messages carry no PHI (issue 11 item 4): every log line, printed line, stored message
(rejects, holds, warnings, quarantine notes, inbound file, remittance exception, claim status and 999
texts), quarantine `.errors.txt`, manifest and finance export is searched for the synthetic patients'
and subscribers' names, birth dates, member ids and street addresses."""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import select

from otedi import cli
from otedi.warehouse import models
from otedi.warehouse.db import session_scope
from tests.phi import leaks, phi_values

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_edi" / "charges_sample.csv"


def test_no_phi_in_any_message_or_log_of_a_full_cycle(tmp_path, monkeypatch, capsys, caplog):
    home = tmp_path / "home"
    monkeypatch.setenv("OTEDI_HOME", str(home))
    monkeypatch.delenv("OTEDI_DATABASE_URL", raising=False)
    caplog.set_level(logging.DEBUG)
    assert cli.main(["run", "--extract", str(SAMPLE)]) == 3  # done; the sample's bad rows rejected (exit 3)
    assert cli.main(["report", "export", "--format", "csv", "--out", str(home / "exports")]) == 0
    out, err = capsys.readouterr()
    texts = {"stdout": out, "stderr": err, "log": "\n".join(r.getMessage() for r in caplog.records)}
    with session_scope() as s:
        stored = [*s.scalars(select(models.EditIssue.message)), *s.scalars(select(models.ChargeReject.message)),
                  *(v for v in s.scalars(select(models.ChargeReject.value)) if v),
                  *(m for m in s.scalars(select(models.InboundFile.message)) if m),
                  *s.scalars(select(models.RemitException.message)),
                  *(m for m in s.scalars(select(models.ClaimStatusEvent.message)) if m),
                  *(e for e in s.scalars(select(models.AckResult.errors)) if e),
                  *(e for e in s.scalars(select(models.ClaimFile.errors)) if e)]
    texts["stored messages"] = "\n".join(stored)
    for path in [*home.rglob("*.errors.txt"), *(home / "exports").glob("*.csv")]:
        texts[str(path.relative_to(home))] = path.read_text(encoding="utf-8")
    phi = phi_values(SAMPLE)
    assert len(phi) > 150 and len(stored) > 100  # the search has something to look for, and in
    claims = "".join(p.read_text() for p in (home / "outbound").glob("*.837"))
    assert sum(v in claims for v in phi) > 50  # the claims themselves carry PHI: the search finds it there
    assert leaks(texts, phi) == {}


def test_the_scan_of_every_warehouse_test_finds_a_leaked_value(warehouse, tmp_path, caplog):
    """The per-test scan (tests/conftest.py) is not vacuous: what it searches for comes from the warehouse,
    and a patient's value in a log line is found."""
    from datetime import date

    from otedi.charges.load import load_extract
    from otedi.charges.synth import synth_charges
    from tests.phi import phi_in_warehouse

    extract = tmp_path / "charges.csv"
    synth_charges(20, 1, extract, start=date(2026, 1, 5), days=28)
    with session_scope() as s:
        load_extract(s, extract, today=date(2026, 3, 1))
    phi = phi_in_warehouse(warehouse)
    value = sorted(phi_values(extract) & phi)[0]
    assert leaks({"log": f"payment for {value} posted"}, phi) == {"log": [value]}
    assert leaks({"log": caplog.text}, phi) == {}
