"""The verbs (issue 13, the CLI): the exit-code rule, JSON shapes, which warehouse, read-only commands that
never migrate or create, --today reaching the library, working files under $OTEDI_HOME."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from otedi import cli
from tests.factories import charge, write_charges_csv

ROOT = Path(__file__).resolve().parents[1]
VALID_837 = ROOT / "tests" / "fixtures" / "x12" / "otedi_837p_mixed.837"
D = date(2026, 3, 10)  # the as-of date the tests give --today
SQLITE = pytest.mark.parametrize("warehouse", ["sqlite"], indirect=True)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def extract(tmp_path: Path, *rows) -> Path:
    path = tmp_path / "charges.csv"
    write_charges_csv(path, list(rows))
    return path


GOOD = dict(service_date=date(2026, 3, 2))  # inside the base charge's plan of care


# --- the exit-code rule and the JSON shapes -------------------------------------------------------------------

def test_validate_json_has_one_shape_and_an_invalid_file_exits_3(tmp_path, capsys):
    code, out, _ = run(capsys, "validate", str(VALID_837), "--json")
    shown = json.loads(out)
    assert code == 0
    assert shown == {"file": str(VALID_837), "valid": True, "segments": shown["segments"], "bom_stripped": False,
                     "errors": []} and shown["segments"] > 10
    junk = tmp_path / "junk.835"
    junk.write_text("not an interchange at all\n")
    code, out, _ = run(capsys, "validate", str(junk), "--json")
    shown = json.loads(out)
    assert code == 3 and shown["valid"] is False and shown["file"] == str(junk)
    assert set(shown["errors"][0]) == {"segment_number", "segment_id", "loop_id", "element", "code", "message"}
    code, out, _ = run(capsys, "validate", str(junk), "--json", "--details")
    assert code == 3 and "detail" in json.loads(out)["errors"][0]
    code, out, _ = run(capsys, "validate", str(junk))
    assert code == 3 and out.startswith("junk.835: INVALID, 1 error(s)")


@SQLITE
def test_a_rejected_row_exits_3_and_the_same_file_again_exits_0(warehouse, tmp_path, capsys):
    path = extract(tmp_path, charge(charge_id="A1", **GOOD), charge(charge_id="A2", cpt="9715O", **GOOD))
    code, out, err = run(capsys, "charges", "load", str(path), "--today", D.isoformat(), "--json")
    shown = json.loads(out)
    assert code == 3
    assert set(shown) == {"file", "sha256", "already_loaded", "rows", "loaded", "rejected", "duplicates", "issues"}
    assert (shown["rows"], shown["loaded"], shown["rejected"], shown["already_loaded"]) == (2, 1, 1, False)
    [issue] = shown["issues"]
    assert (issue["severity"], issue["charge_id"], issue["row"], issue["column"]) == ("reject", "A2", 3, "cpt")
    assert err.splitlines()[0] == f"warehouse: {warehouse}"
    code, out, _ = run(capsys, "charges", "load", str(path), "--today", D.isoformat())
    assert code == 0 and out == "charges.csv: already loaded (same content); nothing added\n"


@SQLITE
def test_claims_build_exits_0_when_everything_is_taken_and_3_when_a_row_is_rejected(warehouse, tmp_path, capsys):
    good = extract(tmp_path, charge(charge_id="B1", **GOOD))
    code, out, _ = run(capsys, "claims", "build", str(good), "--out", str(tmp_path / "out"), "--today",
                       D.isoformat(), "--json")
    shown = json.loads(out)
    assert code == 0 and shown["claims"] == 1 and shown["quarantined"] == [] and shown["rows_rejected"] == 0
    bad = tmp_path / "more"
    bad.mkdir()
    code, out, _ = run(capsys, "claims", "build", str(extract(bad, charge(charge_id="B2", cpt="97003", **GOOD))),
                       "--out", str(tmp_path / "out"), "--today", D.isoformat())
    assert code == 3 and "REJECT   cpt-deleted" in out and "rows read                  1   rows rejected       1" in out


@SQLITE
def test_a_quarantined_835_exits_3(warehouse, tmp_path, capsys):
    broken = tmp_path / "broken.835"
    broken.write_text("ISA*00*          *00*          *ZZ*1999999999     *ZZ*BRIGHT01       *260310*1200*^*00501*"
                      "000000001*0*P*:~\nGS*HP*1999999999*BRIGHT01*20260310*1200*1*X*005010X221A1~\nST*835*0001~\n")
    code, out, _ = run(capsys, "remit", "post", str(broken), "--json")
    [shown] = json.loads(out)
    assert code == 3 and shown["status"] == "quarantined" and shown["file"] == "broken.835"


# --- which warehouse; read-only commands --------------------------------------------------------------------

@SQLITE
def test_read_only_commands_never_migrate_and_say_which_warehouse(warehouse, tmp_path, monkeypatch, capsys):
    from otedi.warehouse import db

    def never(*_a, **_kw):
        raise AssertionError("a read-only command prepared or upgraded the warehouse")

    monkeypatch.setattr(db, "prepare_warehouse", never)
    monkeypatch.setattr(db, "upgrade", never)
    for argv in (["report", "export", "--out", str(tmp_path / "exports")],
                 ["report", "html", "--out", str(tmp_path / "r.html")],
                 ["ar", "worklist", "--json"], ["ar", "resubmit", "--json"]):
        code, _, err = run(capsys, *argv)
        assert code == 0, (argv, err)
        assert err.splitlines()[0] == f"warehouse: {warehouse}", argv
    code, _, err = run(capsys, "patient", "balance", "--practice", "BRIGHTHANDS", "--patient", "P100", "--json")
    assert code == 2 and err.splitlines()[0] == f"warehouse: {warehouse}"  # read, then refused: not billed here
    assert "no charges for patient P100 at BRIGHTHANDS" in err
    code, _, err = run(capsys, "claims", "review", "NOSUCHCLAIM")
    assert code == 2 and "NOSUCHCLAIM" in err and "Traceback" not in err


@SQLITE
def test_writing_commands_prepare_the_warehouse_and_quiet_hides_the_line(warehouse, tmp_path, monkeypatch, capsys):
    from otedi.warehouse import db

    prepared = []
    real = db.prepare_warehouse
    monkeypatch.setattr(db, "prepare_warehouse", lambda url=None: prepared.append(url) or real(url))
    path = extract(tmp_path, charge(charge_id="W1", **GOOD))
    code, _, err = run(capsys, "-q", "charges", "load", str(path), "--today", D.isoformat())
    assert code == 0 and prepared == [None] and "warehouse:" not in err and "..." not in err


# --- --today reaches the library ----------------------------------------------------------------------------

def _fakes():
    from otedi.charges.load import LoadResult
    from otedi.claims.build import BuildResult
    from otedi.clearinghouse import IngestResult
    from otedi.cycle import CycleResult
    from otedi.outbound import OutboundResult
    from otedi.simulator.run import SimulationResult

    class Plan:
        def summary(self):
            return {"would_build": [], "already_built": [], "work_items": []}

    from otedi.analytics.summary import cycle_summary

    outbound = OutboundResult(load=None, build=BuildResult(), files=[])
    from otedi.actions.patient_payments import PaymentResult
    from otedi.accounts.statements import StatementRun

    return {
        "load": LoadResult(file="x.csv", sha256="0" * 64), "outbound": outbound, "paths": [], "ingest": IngestResult(),
        "counts": {"finance_kpis": 9},
        "queue": pd.DataFrame({"state": pd.Series([], dtype=object)}), "simulation": SimulationResult(),
        "plan": Plan(), "statements": StatementRun(), "payment": PaymentResult(status="posted", payment_id=1),
        "appeal": {"letter": "redetermination", "claim_id": "OT1", "denied": "65.00", "file": "a.pdf",
                   "deadline": date(2026, 7, 1), "late": False},
        "cycle": CycleResult(outbound=outbound, summary=cycle_summary(today=D)),  # an empty warehouse's
    }


TODAY_CASES = [  # argv (--today D added), the library function, its fake result
    (["charges", "load", "{extract}"], "otedi.charges.load.load_extract", "load"),
    (["claims", "build", "{extract}", "--out", "{tmp}/out"], "otedi.outbound.run_outbound", "outbound"),
    (["report", "export", "--out", "{tmp}/exports"], "otedi.analytics.export_tables", "paths"),
    (["report", "refresh"], "otedi.analytics.warehouse_tables.refresh_finance_tables", "counts"),
    (["report", "html", "--out", "{tmp}/r.html"], "otedi.analytics.write_html_report", "paths"),
    (["ar", "worklist"], "otedi.analytics.work_queue", "queue"),
    (["ar", "resubmit"], "otedi.claims.resubmit.plan_resubmissions", "plan"),
    (["ar", "appeal", "OT1", "--note", "auth on file", "--out", "{tmp}/appeals"], "otedi.actions.appeals.appeal",
     "appeal"),
    (["drop", "send", "{extract}", "--to", "file://{tmp}/drop"], "otedi.clearinghouse.send_files", "paths"),
    (["drop", "fetch", "--from", "file://{tmp}/drop", "--archive", "{tmp}/archive"],
     "otedi.clearinghouse.fetch_inbound", "paths"),
    (["drop", "fetch", "--from", "file://{tmp}/drop", "--archive", "{tmp}/archive", "--ingest"],
     "otedi.clearinghouse.ingest_fetched", "ingest"),
    (["simulate", "--drop", "file://{tmp}/drop"], "otedi.simulator.simulate_once", "simulation"),
    (["patient", "statements", "--out", "{tmp}/statements"], "otedi.accounts.statements.write_statements",
     "statements"),
    (["patient", "pay", "--practice", "BRIGHTHANDS", "--patient", "P100", "--amount", "5.00", "--method", "cash",
      "--reference", "R1"], "otedi.actions.patient_payments.pay", "payment"),
    (["run", "--extract", "{extract}"], "otedi.cycle.run_cycle", "cycle"),
]


@SQLITE
@pytest.mark.parametrize("argv, target, result", TODAY_CASES, ids=[" ".join(c[0][:2]) + ("" if "--ingest" not in c[0]
                                                                                            else " --ingest")
                                                                   for c in TODAY_CASES])
def test_today_reaches_the_library(warehouse, tmp_path, monkeypatch, capsys, argv, target, result):
    fakes = _fakes()
    calls = []

    def fake(*args, **kwargs):
        calls.append([*args, *kwargs.values()])
        return fakes[result]

    module, _, name = target.rpartition(".")
    monkeypatch.setattr(module + "." + name, fake)
    if target == "otedi.cycle.run_cycle":  # the run writes the report after the cycle
        monkeypatch.setattr("otedi.analytics.write_html_report", lambda path, **kw: Path(path))
    path = extract(tmp_path, charge(charge_id="T1", **GOOD))
    argv = [a.replace("{extract}", str(path)).replace("{tmp}", str(tmp_path)) for a in argv]
    code, _, err = run(capsys, *argv, "--today", D.isoformat())
    assert code == 0, err
    assert calls and D in calls[0], calls


def test_worklist_json_dates_are_iso_dates_and_money_is_a_string(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("otedi.warehouse.db.require_warehouse", lambda url=None: url)
    queue = pd.DataFrame({"item_id": ["OT1:no_835"], "claim_id": ["OT1"], "state": ["open"],
                          "amount": [Decimal("93.00")], "filing_deadline": [date(2026, 12, 10)],
                          "service_date_from": [pd.Timestamp("2026-09-11")], "state_note": [None],
                          "days_to_deadline": [9]})
    monkeypatch.setattr("otedi.analytics.work_queue", lambda **kw: queue)
    code, out, _ = run(capsys, "ar", "worklist", "--json")
    assert code == 0 and json.loads(out) == [{
        "item_id": "OT1:no_835", "claim_id": "OT1", "state": "open", "amount": "93.00", "filing_deadline": "2026-12-10",
        "service_date_from": "2026-09-11", "state_note": None, "days_to_deadline": 9}]


# --- working files default under $OTEDI_HOME -------------------------------------------------------------------

@SQLITE
def test_working_files_default_under_otedi_home_not_the_current_folder(warehouse, tmp_path, monkeypatch, capsys):
    home = tmp_path / "home"
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    path = extract(tmp_path, charge(charge_id="H1", **GOOD))
    code, out, _ = run(capsys, "claims", "build", str(path), "--today", D.isoformat(), "--json")
    assert code == 0 and [Path(f).parent for f in json.loads(out)["files"]] == [home / "outbound"]
    code, out, _ = run(capsys, "report", "export", "--today", D.isoformat(), "--json")
    assert code == 0 and json.loads(out)["folder"] == str(home / "exports")
    assert (home / "exports" / "datapackage.json").is_file()
    code, out, _ = run(capsys, "report", "html", "--today", D.isoformat())
    assert code == 0 and out == f"{home / 'report.html'}\n" and (home / "report.html").is_file()
    code, out, _ = run(capsys, "synth", "charges", "--rows", "3", "--json")
    assert code == 0 and json.loads(out) == {"file": str(home / "synth" / "charges_3_seed1.csv"), "rows": 3, "seed": 1}
    code, out, _ = run(capsys, "patient", "statements", "--as-of", D.isoformat(), "--json")
    assert code == 0 and json.loads(out)["written"] == []
    assert list(elsewhere.iterdir()) == []  # nothing in the current folder


@SQLITE
@pytest.mark.parametrize("verb, target", [("remit post", "otedi.remit.post.post_remittance_file"),
                                          ("acks load", "otedi.acks.load.load_ack_file")])
def test_today_stamps_what_remit_post_and_acks_load_record(warehouse, tmp_path, monkeypatch, capsys, verb, target):
    from otedi.acks.load import AckFileResult
    from otedi.remit.post import RemitFileResult
    from otedi.warehouse import models

    stamped = []

    def fake(session, path, name=None):
        stamped.append(models.utcnow().date())
        if verb == "remit post":
            return RemitFileResult(file=Path(path).name, sha256="0" * 64, status="posted")
        return AckFileResult(file=Path(path).name, kind="999", status="loaded")

    monkeypatch.setattr(target, fake)
    answer = tmp_path / "answer.x12"
    answer.write_text("ISA*00*~\n")
    code, _, err = run(capsys, *verb.split(), str(answer), "--today", D.isoformat())
    assert code == 0, err
    assert stamped == [D]


@SQLITE
def test_report_refresh_then_export_without_refresh_writes_what_the_refresh_left(warehouse, tmp_path, capsys):
    code, out, _ = run(capsys, "report", "refresh", "--today", D.isoformat(), "--json")
    shown = json.loads(out)
    assert code == 0 and shown["as_of"] == D.isoformat() and "finance_kpis" in shown["tables"]
    code, out, _ = run(capsys, "report", "export", "--no-refresh", "--today", D.isoformat(), "--out",
                       str(tmp_path / "x"), "--json")
    assert code == 0 and json.loads(out)["files"]
    code, _, err = run(capsys, "report", "export", "--no-refresh", "--today", "2026-03-11", "--out",
                       str(tmp_path / "y"))
    assert code == 2 and "Traceback" not in err  # the tables are as of another date: say so, in one line
