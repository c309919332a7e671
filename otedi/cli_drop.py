"""`otedi drop send|fetch`, `otedi simulate` (wiring only: otedi.clearinghouse, otedi.transport, otedi.simulator)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Annotated, Optional

import typer

from otedi import config
from otedi.cli_common import (OK, Json, Today, ack_problem, each, emit_json, exit_code, note, out_folder,
                              out_is_terminal, remittance_problem, say, show_table, tracking, warehouse, warn,
                              working)

KeyFile = Annotated[Optional[Path], typer.Option(
    "--key-file", exists=True, dir_okay=False, readable=True,
    help="private key for an sftp:// drop (passphrase from OTEDI_SFTP_KEY_PASSPHRASE)")]
URL_HELP = ("file:///abs/path or sftp://user@host:port/path?host_key=ssh-ed25519%20AAAA... "
            "(default: OTEDI_DROP_URL, else file://$OTEDI_HOME/drop)")


def _open_drop(url: str, key_file: Path | None):
    from otedi.transport import open_drop

    return open_drop(url, key_file=str(key_file) if key_file else None)


def send(path: Annotated[Optional[Path], typer.Argument(
             help="an 837P file or a folder of them (default $OTEDI_HOME/outbound)", metavar="DIR|FILE",
             exists=True, readable=True)] = None,
         to: Annotated[Optional[str], typer.Option("--to", help=f"the drop: {URL_HELP}")] = None,
         key_file: KeyFile = None, today: Today = None, as_json: Json = False) -> int:
    """Upload 837P files to the clearinghouse drop: atomically (a .part, its size checked, then renamed), never
    over an existing file, and never twice (each recorded in the warehouse). Only files the warehouse holds
    as ready 837P files go; anything else in the folder is left alone with a note.

    Examples:

    ```
    otedi drop send
    otedi drop send outbound/ --to sftp://user@host:22/edi?host_key=ssh-ed25519%20AAAA... --key-file ~/.ssh/ch_key
    ```
    """
    from otedi.clearinghouse import send_files
    from otedi.warehouse import db

    folder = path if path is not None else out_folder(None, "outbound")
    if not folder.exists():
        if as_json:
            emit_json({"files": []})
        note(f"nothing to send: {folder} does not exist")
        return OK
    files = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else [folder]
    warehouse(writes=True)
    out = []
    with _open_drop(to or config.drop_url(), key_file) as drop, db.session_scope() as session:
        for file in each(files, "sending 837P files"):
            out += [asdict(o) for o in send_files(session, drop, [file], today=today)]
    if as_json:
        emit_json({"files": out})
    elif out_is_terminal() and out:
        show_table(["status", "file", "remote name", "size"],
                   [[o["status"], o["file"], o["remote_name"] or "", o["size"] or ""] for o in out],
                   title="drop send", right=("size",))
    else:
        for item in out:
            say(f"{item['status']:<22} {item['file']}")
    return OK


def fetch(source: Annotated[Optional[str], typer.Option("--from", help=f"the drop: {URL_HELP}")] = None,
          key_file: KeyFile = None,
          archive: Annotated[Optional[Path], typer.Option(
              "--archive", file_okay=False, help="archive folder (default $OTEDI_HOME/archive)")] = None,
          ingest: Annotated[bool, typer.Option(
              "--ingest", help="also load the 999/277CA and post the 835s (then the QMB write-offs)")] = False,
          today: Today = None, as_json: Json = False) -> int:
    """Download new inbound files (999, 277CA, 835) into the archive under their sha256 (0600), record each,
    then move the remote copy to processed/; with --ingest load and post them too.

    Exit 3 when an ingested file was quarantined or a transaction held; 1 when the database failed on a file
    (left for the next run).

    Examples:

    ```
    otedi drop fetch --ingest
    otedi drop fetch --from sftp://user@host:22/edi?host_key=... --key-file ~/.ssh/ch_key --ingest --json
    ```
    """
    from otedi.clearinghouse import fetch_inbound, ingest_fetched
    from otedi.warehouse import db

    folder = out_folder(archive, "archive")
    warehouse(writes=True)
    with _open_drop(source or config.drop_url(), key_file) as drop, db.session_scope() as session, \
            working("fetching the inbox"):
        fetched = fetch_inbound(session, drop, folder, today=today)
        rows = [{"remote_name": f.remote_name, "kind": f.kind, "size": f.size, "sha256": f.sha256,
                 "archive_path": f.archive_path} for f in fetched]
    ingested, result = None, None
    if ingest:
        with tracking("loading 999/277CA and posting 835s") as bar, db.session_scope() as session:
            result = ingest_fetched(session, today=today, progress=bar)
        ingested = {"acks": result.acks, "remittances": result.remittances, "skipped": result.skipped,
                    "failed": result.failed, "qmb_written_off": [vars(w) for w in result.qmb_written_off]}
        for name in result.failed:
            warn(f"{name}: the warehouse database failed while loading it; rolled back - the next "
                 f"`otedi drop fetch --ingest` loads it")
        if result.qmb_failed:
            warn("the warehouse database failed on the QMB write-offs; rolled back - the next "
                 "`otedi drop fetch --ingest` writes them off")
    code = ingest_code(result)
    if as_json:
        emit_json({"fetched": rows, "ingested": ingested})
        return code
    if out_is_terminal() and rows:
        show_table(["kind", "remote name", "archived as"], [[r["kind"], r["remote_name"], r["archive_path"]]
                                                           for r in rows], title="drop fetch")
    else:
        for r in rows:
            say(f"{r['kind']:<8} {r['remote_name']} -> {r['archive_path']}")
    say(f"{len(rows)} new file(s)")
    if result is not None:
        for s in result.acks:
            if ack_problem(s):
                say(f"QUARANTINED: {s['file']} ({s['kind']}): {s['message']}")
        for s in result.remittances:
            if s["status"] == "quarantined":
                say(f"QUARANTINED: {s['file']} (835): {s['message']}")
            for held in s["held"]:
                say(f"  {held['status'].upper()} {s['file']} transaction {held['transaction']} (trace "
                    f"{held['trace_number']}): {held['reason']}")
        say(f"loaded {len(result.acks)} acknowledgment(s), posted {len(result.remittances)} remittance(s)")
        say(f"QMB cost sharing written off on {len(result.qmb_written_off)} claim(s)"
            + (f"; payments returned to credit, to refund: {', '.join(result.qmb_refund_due)}"
               if result.qmb_refund_due else ""))
    return code


def ingest_code(result) -> int:
    """The exit-code rule for an ingest (otedi.clearinghouse.IngestResult, or None: nothing ingested)."""
    if result is None:
        return OK
    return exit_code(failed=bool(result.failed or result.qmb_failed),
                     data=any(map(ack_problem, result.acks)) or any(map(remittance_problem, result.remittances)))


def simulate(drop: Annotated[Optional[str], typer.Option(
                 "--drop", help="the drop: a folder, or a file:// or sftp:// URL (default: OTEDI_DROP_URL, else "
                                "file://$OTEDI_HOME/drop)")] = None,
             key_file: KeyFile = None,
             seed: Annotated[int, typer.Option("--seed", help="random seed: the same seed answers alike")] = 0,
             today: Today = None,
             eligibility_from: Annotated[Optional[list[Path]], typer.Option(
                 "--eligibility-from", metavar="FILE", exists=True, dir_okay=False, readable=True,
                 help="a charge extract (canonical layout) whose patients with a Medicare primary and a Medicaid "
                      "secondary are dual eligible: Medicare crosses their claims over (repeatable)")] = None,
             as_json: Json = False) -> int:
    """Answer the 837P files in a drop as a clearinghouse and payers would: 999 and 277CA acknowledgments and
    835 remittances in inbound/ (rates in mappings/simulator.yaml). For demos and tests only.

    Examples:

    ```
    otedi simulate --seed 7
    otedi simulate --drop file:///path/to/drop --seed 7 --today 2026-11-14 --eligibility-from charges.csv
    ```
    """
    from otedi.simulator import simulate_once

    with working("the clearinghouse and payers answer"):
        result = simulate_once(drop or config.drop_url(), seed=seed, today=today or date.today(),
                               key_file=str(key_file) if key_file else None,
                               eligibility_from=[str(p) for p in eligibility_from or []])
    if as_json:
        emit_json(asdict(result))
        return OK
    say(f"answered {len(result.files_answered)} file(s): {len(result.acks_999)} 999, {len(result.acks_277ca)} 277CA, "
        f"{len(result.remittances)} 835; claims held back for later {result.held_claims}; "
        f"predeterminations {result.predeterminations}; crossed over to Medicaid {result.crossed_over}, "
        f"Medicaid's answers waiting {result.crossovers_waiting}")
    return OK


def register(groups: dict[str, typer.Typer], app: typer.Typer) -> None:
    groups["drop"].command("send")(send)
    groups["drop"].command("fetch")(fetch)
    app.command("simulate")(simulate)
