"""`otedi drop send` and `otedi drop fetch --ingest` over a file:// drop, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import stat
import subprocess
import sys
import time
from datetime import date, timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest
from sqlalchemy import func, select

from otedi import cli
from otedi.warehouse import models
from otedi.warehouse.db import session_scope
from tests.factories import charge, write_charges_csv
from tests.remit_builder import Clp, Svc, interchange, remittance

# The CLI builds claims as of the real today: keep dates of service just behind it (timely filing).
DAY1 = date.today() - timedelta(days=9)
DAY2 = date.today() - timedelta(days=8)
PLAN = dict(plan_of_care_start=DAY1 - timedelta(days=10), plan_of_care_signed_date=DAY1 - timedelta(days=8),
            plan_of_care_certified_through=DAY1 + timedelta(days=79))  # a certified plan around those dates


def run(capsys, *argv: str) -> dict:
    capsys.readouterr()
    assert cli.main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def run_refused(capsys, *argv: str) -> tuple[int, str, str]:
    """A command expected to fail: (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def from_clearinghouse(text: str, sender: str = "DEMOCH", receiver: str = "BRIGHT01") -> str:
    """An interchange addressed from the clearinghouse (ISA06/GS02) to our submitter id (ISA08/GS03)."""
    isa, gs, rest = text.split("~\n", 2)
    isa_elements, gs_elements = isa.split("*"), gs.split("*")
    isa_elements[6], isa_elements[8] = f"{sender:<15}", f"{receiver:<15}"
    gs_elements[2], gs_elements[3] = sender, receiver
    return "*".join(isa_elements) + "~\n" + "*".join(gs_elements) + "~\n" + rest


def inbound_files() -> list[tuple[str, str, str]]:
    with session_scope() as s:
        return sorted((f.file_name, f.kind, f.status) for f in s.scalars(select(models.InboundFile)))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def submissions() -> int:
    with session_scope() as s:
        return s.scalar(select(func.count()).select_from(models.Submission))


@pytest.fixture
def built(warehouse, tmp_path, capsys) -> list[Path]:
    """Two practices' claims, built by `otedi claims build`: one 837P file per practice."""
    extract = tmp_path / "charges.csv"
    write_charges_csv(extract, [
        charge(charge_id="A1", service_date=DAY1, **PLAN),
        charge(charge_id="A2", service_date=DAY2, **PLAN),
        charge(charge_id="B1", practice_id="KIDSTHRIVE", patient_id="K100", patient_last_name="ROE",
               member_id="2EG4TE5MK74", service_date=DAY1, cpt="97110", minutes=15, units=1, **PLAN),
    ])
    summary = run(capsys, "claims", "build", str(extract), "--out", str(tmp_path / "out"), "--json")
    assert summary["claims"] == 3 and summary["quarantined"] == [] and summary["rows_rejected"] == 0
    files = sorted(Path(f) for f in summary["files"])
    assert len(files) == 2
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [p.name for p in files]
    return files


def drop_url(tmp_path: Path) -> str:
    return f"file://{tmp_path / 'drop'}"


def test_drop_send_uploads_each_file_once_and_records_it(built, tmp_path, capsys):
    out, drop = tmp_path / "out", tmp_path / "drop"

    sent = run(capsys, "drop", "send", str(out), "--to", drop_url(tmp_path), "--json")

    assert sent == {"files": [{"file": str(p), "remote_name": p.name, "size": p.stat().st_size,
                               "sha256": sha256(p), "status": "sent"} for p in built]}
    assert sorted(p.name for p in (drop / "outbound").iterdir()) == [p.name for p in built]
    for p in built:
        assert (drop / "outbound" / p.name).read_bytes() == p.read_bytes()
    with session_scope() as s:
        rows = {(r.remote_name, r.size, r.sha256, r.status, r.drop) for r in s.scalars(select(models.Submission))}
        files = {f.file_name: (f.status, f.id) for f in s.scalars(select(models.ClaimFile))}
        linked = set(s.scalars(select(models.Submission.claim_file_id)))
    assert rows == {(p.name, p.stat().st_size, sha256(p), "sent", f"file://{drop}") for p in built}
    assert {name: status for name, (status, _) in files.items()} == {p.name: "sent" for p in built}
    assert linked == {pk for _, pk in files.values()}

    again = run(capsys, "drop", "send", str(out), "--to", drop_url(tmp_path), "--json")

    assert again == {"files": [{"file": str(p), "status": "skipped (sent)", "remote_name": None, "size": None,
                                "sha256": None} for p in built]}
    assert submissions() == 2
    assert sorted(p.name for p in (drop / "outbound").iterdir()) == [p.name for p in built]


def test_drop_send_moves_the_claims_of_sent_files_to_submitted(built, tmp_path, capsys):
    run(capsys, "drop", "send", str(tmp_path / "out"), "--to", drop_url(tmp_path), "--json")

    with session_scope() as s:
        assert set(s.scalars(select(models.Claim.status))) == {"submitted"}


def _claim_file(path: Path) -> tuple[str, str, dict[str, str]]:
    """GS06, ST02 and {line control number (REF*6R): CLM01} of one of our 837P files."""
    segments = [line.rstrip("\n").rstrip("~").split("*") for line in open(path, encoding="ascii")]
    gs06 = next(s[6] for s in segments if s[0] == "GS")
    st02 = next(s[2] for s in segments if s[0] == "ST")
    lines, claim = {}, None
    for s in segments:
        if s[0] == "CLM":
            claim = s[1]
        elif s[0] == "REF" and s[1] == "6R":
            lines[s[2]] = claim
    return gs06, st02, lines


def test_drop_fetch_archives_moves_and_ingests_a_999_and_an_835(built, tmp_path, capsys):
    drop, archive = tmp_path / "drop", tmp_path / "archive"
    run(capsys, "drop", "send", str(tmp_path / "out"), "--to", drop_url(tmp_path), "--json")
    bright = next(p for p in built if p.name.startswith("BRIGHTHANDS"))
    gs06, st02, claim_of_line = _claim_file(bright)
    a2_claim = claim_of_line["A2"]
    ack = ["ST*999*0001*005010X231A1", f"AK1*HC*{gs06}*005010X222A1", f"AK2*837*{st02}*005010X222A1", "IK5*A",
           "AK9*A*1*1*1", "SE*6*0001"]
    era = remittance([Clp(a2_claim, icn="ICN-A2", services=[
        Svc("97530", D("120.00"), D("80.00"), [("CO", "45", D("30.00")), ("PR", "2", D("10.00"))],
            lcn="A2", units=2, date=DAY2.strftime("%Y%m%d"))])])
    inbound = {"ack_0001.999": from_clearinghouse(
                   interchange([ack], functional_id="FA", version="005010X231A1", control=41)),
               "era_0001.835": interchange([era], control=42)}
    for name, text in inbound.items():
        (drop / "inbound" / name).write_text(text, encoding="ascii")
    digests = {name: hashlib.sha256(text.encode("ascii")).hexdigest() for name, text in inbound.items()}

    got = run(capsys, "drop", "fetch", "--from", drop_url(tmp_path), "--archive", str(archive), "--ingest", "--json")

    assert [(f["remote_name"], f["kind"], f["size"], f["sha256"]) for f in got["fetched"]] == [
        ("ack_0001.999", "999", len(inbound["ack_0001.999"]), digests["ack_0001.999"]),
        ("era_0001.835", "835", len(inbound["era_0001.835"]), digests["era_0001.835"]),
    ]
    for f, ext in zip(got["fetched"], ("999", "835")):
        archived = Path(f["archive_path"])
        assert archived == archive / f"{f['sha256']}.{ext}"
        assert archived.read_text(encoding="ascii") == inbound[f["remote_name"]]
        assert stat.S_IMODE(archived.stat().st_mode) == 0o600
    assert list((drop / "inbound").iterdir()) == []
    assert sorted(p.name for p in (drop / "processed").iterdir()) == ["ack_0001.999", "era_0001.835"]

    ingested = got["ingested"]
    assert ingested["skipped"] == []
    assert ingested["acks"] == [{"file": "ack_0001.999", "kind": "999", "status": "loaded", "message": None,
                                 "transaction_sets": 1, "sets_rejected": 0, "claims_accepted": 0,
                                 "claims_rejected": 0, "unmatched": []}]
    [remit] = ingested["remittances"]
    assert (remit["file"], remit["status"], remit["transactions"], remit["claims_matched"], remit["unmatched"],
            remit["held"]) == ("era_0001.835", "posted", 1, 1, 0, [])
    assert (remit["totals"]["paid"], remit["totals"]["contractual"], remit["totals"]["patient_responsibility"],
            remit["totals"]["bpr02"]) == ("80.00", "30.00", "10.00", "80.00")
    with session_scope() as s:
        fetched_rows = {(f.remote_name, f.kind, f.sha256) for f in s.scalars(select(models.FetchedFile))}
        ack_file = s.scalar(select(models.AckResult.claim_file_id))
        bright_id = s.scalar(select(models.ClaimFile.id).where(models.ClaimFile.file_name == bright.name))
        payer_icn = s.scalar(select(models.Claim.payer_icn).where(models.Claim.claim_id == a2_claim))
    assert fetched_rows == {(n, n[-3:], digests[n]) for n in inbound}
    assert ack_file == bright_id and payer_icn == "ICN-A2"

    again = run(capsys, "drop", "fetch", "--from", drop_url(tmp_path), "--archive", str(archive), "--ingest",
                "--json")

    assert again == {"fetched": [], "ingested": {"acks": [], "remittances": [], "skipped": [], "failed": [],
                                               "qmb_written_off": []}}
    assert sorted(p.name for p in archive.iterdir()) == sorted(f"{digests[n]}.{n[-3:]}" for n in inbound)


def _bright_answers(built, tmp_path) -> tuple[str, Path, Path, Path]:
    """A2's claim id and, for the BRIGHTHANDS file: a rejecting 999, a 277CA accepting A2, and an 835 paying A2."""
    bright = next(p for p in built if p.name.startswith("BRIGHTHANDS"))
    gs06, st02, claim_of_line = _claim_file(bright)
    a2_claim = claim_of_line["A2"]
    ack = ["ST*999*0001*005010X231A1", f"AK1*HC*{gs06}*005010X222A1", f"AK2*837*{st02}*005010X222A1",
           "IK5*R*5", "AK9*R*1*1*0", "SE*6*0001"]
    status = ["ST*277*0001*005010X214", "BHT*0085*08*BATCH1*20260316*1200*TH", "HL*1**20*1",
              "NM1*PR*2*CGS MEDICARE PART B OHIO*****PI*15202", "TRN*1*BATCH1", "DTP*050*D8*20260316",
              "DTP*009*D8*20260316", "HL*2*1*21*1", "NM1*41*2*BRIGHT HANDS*****46*BRIGHT01", "TRN*2*BATCH1",
              "STC*A1:19*20260316*WQ*120.00", "HL*3*2*19*1", "NM1*85*2*BRIGHT HANDS*****XX*1234567893",
              "TRN*1*0", "HL*4*3*PT", "NM1*QC*1*DOE*JANE****MI*1EG4TE5MK73", f"TRN*2*{a2_claim}",
              "STC*A2:20*20260316*WQ*120.00", "REF*1K*ICN-277", "DTP*472*D8*20260302"]
    status.append(f"SE*{len(status) + 1}*0001")
    era = remittance([Clp(a2_claim, icn="ICN-A2", services=[
        Svc("97530", D("120.00"), D("80.00"), [("CO", "45", D("30.00")), ("PR", "2", D("10.00"))],
            lcn="A2", units=2, date=DAY2.strftime("%Y%m%d"))])])
    paths = []
    for name, text in (("ack_0001.999", from_clearinghouse(interchange([ack], functional_id="FA",
                                                                        version="005010X231A1", control=51))),
                       ("ack_0002.277", from_clearinghouse(interchange([status], functional_id="HN",
                                                                        version="005010X214", control=52))),
                       ("era_0001.835", interchange([era], control=53))):
        path = tmp_path / name
        path.write_text(text, encoding="ascii")
        paths.append(path)
    return a2_claim, *paths


def test_remit_post_refuses_a_999_and_a_277ca_unrecorded_and_acks_load_then_loads_them(built, tmp_path, capsys):
    a2_claim, ack, status, _ = _bright_answers(built, tmp_path)

    for argv in ((str(ack), str(status)), (str(ack), str(status), "--json")):
        code, out, err = run_refused(capsys, "remit", "post", *argv)

        assert code == 2  # refused: the wrong command for the files (nothing else was given)
        assert err.splitlines() == [
            "otedi: ack_0001.999: ST01 999 is not for `otedi remit post`; refused, nothing recorded: "
            "load it with `otedi acks load`",
            "otedi: ack_0002.277: ST01 277 is not for `otedi remit post`; refused, nothing recorded: "
            "load it with `otedi acks load`"]
        assert inbound_files() == []
    assert [(s["file"], s["kind"], s["status"]) for s in json.loads(out)] == [
        ("ack_0001.999", "999", "refused"), ("ack_0002.277", "277", "refused")]
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(models.Remittance)) == 0

    loaded = run(capsys, "acks", "load", str(ack), str(status), "--json")

    assert [(s["file"], s["kind"], s["status"], s["claims_rejected"], s["claims_accepted"], s["unmatched"])
            for s in loaded] == [("ack_0001.999", "999", "loaded", 2, 0, []),
                                 ("ack_0002.277", "277", "loaded", 0, 1, [])]
    assert inbound_files() == [("ack_0001.999", "999", "loaded"), ("ack_0002.277", "277", "loaded")]
    with session_scope() as s:
        assert s.scalar(select(models.Claim.payer_icn).where(models.Claim.claim_id == a2_claim)) == "ICN-277"


def test_acks_load_refuses_an_835_unrecorded_and_remit_post_then_posts_it(built, tmp_path, capsys):
    a2_claim, ack, _, era = _bright_answers(built, tmp_path)

    code, out, err = run_refused(capsys, "acks", "load", str(era), str(ack))

    assert code == 2  # refused: the wrong command for the file
    assert [line for line in err.splitlines() if line.startswith("otedi:")] == [
        "otedi: era_0001.835: ST01 835 is not for `otedi acks load`; refused, nothing recorded: load it with "
        "`otedi remit post`"]
    assert "era_0001.835" not in out and out.startswith("ack_0001.999 (999): loaded")  # the other file still loads
    assert inbound_files() == [("ack_0001.999", "999", "loaded")]

    posted = run(capsys, "remit", "post", str(era), "--json")

    assert [(s["file"], s["status"], s["claims_matched"]) for s in posted] == [("era_0001.835", "posted", 1)]
    assert inbound_files() == [("ack_0001.999", "999", "loaded"), ("era_0001.835", "835", "posted")]
    with session_scope() as s:
        assert s.scalar(select(models.Claim.payer_icn).where(models.Claim.claim_id == a2_claim)) == "ICN-A2"


def test_drop_send_sends_only_what_the_warehouse_holds_as_ready(built, tmp_path, capsys):
    # After a crash the folder can hold an orphan 837P, a copy of a file under another name and a leftover
    # .part (issue 11 item 5): none of them is uploaded, each gets a note; the recorded files go as usual.
    out = tmp_path / "out"
    (out / "ORPHAN_DEMOCH_000000099.837").write_text(built[0].read_text()[:-40] + "~\n")
    (out / "copy_of_first.837").write_bytes(built[0].read_bytes())
    (out / (built[1].name + ".part")).write_bytes(b"ISA*00*half")
    sent = run(capsys, "drop", "send", str(out), "--to", drop_url(tmp_path), "--json")
    by_file = {Path(f["file"]).name: f["status"] for f in sent["files"]}
    assert {name: status for name, status in by_file.items() if not status.startswith("skipped")} == {
        p.name: "sent" for p in built}
    assert by_file["ORPHAN_DEMOCH_000000099.837"] == "skipped (not an 837P file the warehouse recorded)"
    assert by_file["copy_of_first.837"].startswith(f"skipped (recorded as {built[0].name}")
    assert by_file[built[1].name + ".part"].startswith("skipped")
    skipped = next(f for f in sent["files"] if Path(f["file"]).name == "copy_of_first.837")
    assert (skipped["remote_name"], skipped["size"], skipped["sha256"]) == (None, None, None)  # one shape
    assert sorted(p.name for p in (tmp_path / "drop" / "outbound").iterdir()) == [p.name for p in built]
    assert submissions() == len(built)


def test_drop_send_json_with_no_outbound_folder_is_an_empty_list(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OTEDI_HOME", str(tmp_path / "home"))
    assert run(capsys, "drop", "send", "--json") == {"files": []}


def _dead_pid() -> int:
    """The pid of a process of this host that has ended."""
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    return finished.pid


def test_a_fetched_file_left_in_inbound_is_moved_by_the_next_fetch(built, tmp_path, capsys, monkeypatch):
    # A crash (or a failed move) between recording a fetched file and moving it left it in inbound/ for ever
    # (issue 11 item 7): the next fetch finishes the move; a stale partial download is cleaned, a live one kept.
    from otedi.transport.local import LocalDrop

    drop, archive = tmp_path / "drop", tmp_path / "archive"
    (drop / "inbound").mkdir(parents=True)
    (drop / "inbound" / "era_0007.835").write_text(interchange([remittance([])], control=77), encoding="ascii")
    real_move = LocalDrop.mark_processed

    def move_fails(self, *args, **kwargs):
        raise OSError("disk hiccup while moving")

    monkeypatch.setattr(LocalDrop, "mark_processed", move_fails)
    # an internal error: exit 1 with an error id, never a traceback (README, "The otedi command")
    assert cli.main(["drop", "fetch", "--from", drop_url(tmp_path), "--archive", str(archive), "--json"]) == 1
    assert (drop / "inbound" / "era_0007.835").exists()
    monkeypatch.setattr(LocalDrop, "mark_processed", real_move)
    # Left by a killed download: old, or fresh but its process is gone. Kept: a live process's (a twin's).
    host = socket.gethostname()
    stale = archive / ".fetch-dead.tmp"
    killed = archive / f".fetch-{_dead_pid()}@{host}-k1.tmp"
    live = archive / f".fetch-{os.getpid()}@{host}-l1.tmp"
    for path in (stale, killed, live):
        path.write_bytes(b"half a file")
    old = time.time() - 3600
    os.utime(stale, (old, old))

    got = run(capsys, "drop", "fetch", "--from", drop_url(tmp_path), "--archive", str(archive), "--json")
    assert got["fetched"] == []  # recorded the first time: not fetched again
    assert list((drop / "inbound").iterdir()) == [] and (drop / "processed" / "era_0007.835").exists()
    assert not stale.exists() and not killed.exists() and live.exists()
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(models.FetchedFile)) == 1


def test_a_file_the_clearinghouse_took_before_our_commit_is_not_delivered_twice(built, tmp_path, monkeypatch):
    # The clearinghouse can pick a file up between our rename and our commit (issue 11 item 6): the re-run
    # must record it as delivered, not upload it again. A crash before the rename must still send it.
    from otedi.clearinghouse import _recorded, send_ready_files
    from otedi.transport import open_drop

    import otedi.clearinghouse as clearinghouse

    outbound, picked = tmp_path / "drop" / "outbound", tmp_path / "clearinghouse-took"
    picked.mkdir()
    calls = {"n": 0}

    def crash_after_publish(session, claim_file, submission, status):
        calls["n"] += 1
        if calls["n"] == 1:  # the first file: published, then taken by the clearinghouse, then we die
            (outbound / claim_file.file_name).rename(picked / claim_file.file_name)
            raise KeyboardInterrupt("killed between rename and commit")
        return _recorded(session, claim_file, submission, status)

    monkeypatch.setattr(clearinghouse, "_recorded", crash_after_publish)
    with open_drop(drop_url(tmp_path)) as drop:
        with pytest.raises(KeyboardInterrupt), session_scope() as s:
            send_ready_files(s, drop)
        monkeypatch.setattr(clearinghouse, "_recorded", _recorded)
        with session_scope() as s:
            again = send_ready_files(s, drop)
    taken = sorted(p.name for p in picked.iterdir())
    in_outbound = sorted(p.name for p in outbound.iterdir())
    assert len(taken) == 1 and taken[0] not in in_outbound  # delivered once, not uploaded again
    assert sorted(taken + in_outbound) == sorted(p.name for p in built)
    assert {s.remote_name: s.status for s in again} == {taken[0]: "already_sent",
                                                         **{n: "sent" for n in in_outbound}}
    with session_scope() as s:
        assert set(s.scalars(select(models.ClaimFile.status))) == {"sent"}
        assert s.scalar(select(func.count()).select_from(models.Submission)) == len(built)


def test_a_crash_before_the_rename_sends_the_file_on_the_next_run(built, tmp_path, monkeypatch):
    from otedi.clearinghouse import send_ready_files
    from otedi.transport import open_drop
    from otedi.transport.local import LocalDrop

    real_rename = LocalDrop._rename

    def die_once(self, src, dst):
        monkeypatch.setattr(LocalDrop, "_rename", real_rename)
        raise KeyboardInterrupt("killed after the upload, before the rename")

    monkeypatch.setattr(LocalDrop, "_rename", die_once)
    with open_drop(drop_url(tmp_path)) as drop:
        with pytest.raises(KeyboardInterrupt), session_scope() as s:
            send_ready_files(s, drop)
        with session_scope() as s:
            send_ready_files(s, drop)
    outbound = tmp_path / "drop" / "outbound"
    assert sorted(p.name for p in outbound.iterdir()) == sorted(p.name for p in built)  # no .part left


def test_a_database_failure_on_one_file_is_retried_then_told_in_one_line_and_the_others_post(
        built, tmp_path, capsys, monkeypatch):
    # Lost connections and concurrent losers ended in tracebacks (issue 11 item 14): a transient failure is
    # retried; a lasting one ends that file with one line and a non-zero exit, and the next file posts.
    from sqlalchemy.exc import OperationalError

    import otedi.remit.post as post_module
    import otedi.warehouse.db as db_module

    monkeypatch.setattr(db_module.time, "sleep", lambda _s: None)
    bright = next(p for p in built if p.name.startswith("BRIGHTHANDS"))
    _, _, claim_of_line = _claim_file(bright)
    files = []
    for n, line in enumerate(("A1", "A2"), start=1):
        era = remittance([Clp(claim_of_line[line], icn=f"ICN-{line}", services=[
            Svc("97530", D("120.00"), D("80.00"), [("CO", "45", D("40.00"))], lcn=line, units=2,
                date=(DAY1 if line == "A1" else DAY2).strftime("%Y%m%d"))])], trace=f"T{n}")
        path = tmp_path / f"era_{n}.835"
        path.write_text(interchange([era], control=60 + n), encoding="ascii")
        files.append(path)
    real = post_module.post_remittance_file
    failures = {"era_1.835": 1, "era_2.835": 99}  # era_1 fails once (retried), era_2 always

    def flaky(session, path, name=None):
        name_ = Path(path).name
        if failures[name_]:
            failures[name_] -= 1
            raise OperationalError("INSERT ...", {"member": "SECRETMEMBER"}, Exception("server closed the connection"))
        return real(session, path, name)

    monkeypatch.setattr(post_module, "post_remittance_file", flaky)
    capsys.readouterr()
    code = cli.main(["remit", "post", *map(str, files)])
    out, err = capsys.readouterr()
    assert code == 1 and "Traceback" not in err and "SECRETMEMBER" not in out + err
    assert [line for line in err.splitlines() if line.startswith("otedi:")] == [
        "otedi: era_2.835: the warehouse database failed (OperationalError, Exception; driver text withheld); "
        "nothing of this file was committed - run the command again"]
    assert "era_1.835: posted" in out
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(models.Remittance)) == 1


def test_ingest_leaves_a_file_the_database_failed_on_for_the_next_run(built, tmp_path, capsys, monkeypatch):
    from sqlalchemy.exc import OperationalError

    import otedi.clearinghouse as clearinghouse

    drop, archive = tmp_path / "drop", tmp_path / "archive"
    (drop / "inbound").mkdir(parents=True, exist_ok=True)
    for n in (1, 2):
        (drop / "inbound" / f"era_{n}.835").write_text(
            interchange([remittance([], trace=f"EMPTY{n}")], control=70 + n), encoding="ascii")
    real = clearinghouse.post_remittance_file

    def fails_on_the_first(session, path, name=None):
        if name == "era_1.835":
            raise OperationalError("INSERT ...", {}, Exception("connection reset"))
        return real(session, path, name)

    monkeypatch.setattr(clearinghouse, "post_remittance_file", fails_on_the_first)
    capsys.readouterr()
    args = ["drop", "fetch", "--from", drop_url(tmp_path), "--archive", str(archive), "--ingest", "--json"]
    assert cli.main(args) == 1
    out, err = capsys.readouterr()
    got = json.loads(out)
    assert got["ingested"]["failed"] == ["era_1.835"] and len(got["ingested"]["remittances"]) == 1
    assert "Traceback" not in err and "era_1.835" in err
    monkeypatch.setattr(clearinghouse, "post_remittance_file", real)
    again = run(capsys, *args)
    assert again["fetched"] == [] and [r["file"] for r in again["ingested"]["remittances"]] == ["era_1.835"]


def test_a_loader_crashing_on_one_file_leaves_it_unprocessed_and_the_others_load(built, tmp_path, monkeypatch,
                                                                                 caplog):
    # One bad file never blocks the others (issue 11): whatever a loader raises on one file, the ingest rolls
    # that file back, names it as failed without the exception's text, and loads the rest.
    from otedi import clearinghouse
    from otedi.clearinghouse import ingest_fetched

    drop = tmp_path / "drop"
    (drop / "inbound").mkdir(parents=True)
    _, _, claim_of_line = _claim_file(next(p for p in built if p.name.startswith("BRIGHTHANDS")))

    def era(line: str, trace: str, control: int) -> str:
        return interchange([remittance([Clp(claim_of_line[line], icn=f"ICN-{line}", services=[
            Svc("97530", D("120.00"), D("90.00"), [("CO", "45", D("30.00"))], lcn=line, units=2)])],
            trace=trace)], control=control)
    (drop / "inbound" / "era.835").write_text(era("A1", "TRACE1", 61))
    (drop / "inbound" / "other.835").write_text(era("A2", "TRACE2", 62))
    run_fetch = ["drop", "fetch", "--from", drop_url(tmp_path), "--archive", str(tmp_path / "archive")]
    assert cli.main(run_fetch) == 0
    real = clearinghouse.post_remittance_file

    def crash_on_era(session, path, name=None):
        if name == "era.835":
            raise ValueError("a bug quoting DOE*JANE")
        return real(session, path, name)

    monkeypatch.setattr(clearinghouse, "post_remittance_file", crash_on_era)
    with session_scope() as s:
        result = ingest_fetched(s)
    assert result.failed == ["era.835"] and [r["file"] for r in result.remittances] == ["other.835"]
    assert "ValueError" in caplog.text and "DOE" not in caplog.text
    monkeypatch.setattr(clearinghouse, "post_remittance_file", real)
    with session_scope() as s:
        assert [r["file"] for r in ingest_fetched(s).remittances] == ["era.835"]  # the next run loads it
