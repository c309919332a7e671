"""What must hold in a warehouse and its folders after any run, killed or not, once it has been re-run.

`violations(url, home)` checks the promises of "nothing lost, nothing twice" against the database AND the
files themselves (the 837Ps the clearinghouse holds, the 835s in the archive), read here with a few lines
of independent segment splitting rather than with otedi's own readers, so a bug shared by the writer and
the reader cannot hide:

- no charge billed on two claims to the same payer position (a replacement or a secondary is linked);
- no claim in two delivered 837P files, no delivered file the warehouse has no submission for;
- no interchange control number used twice by one sender, in the warehouse or in the delivered files;
- one submission per file, none left half-way (uploading/publishing) once a run completed;
- the ledger equals the 835s: per posted remittance, the payments posted equal the file's CLP04 total
  (less predeterminations and payments recorded as duplicates of another trace's);
- no temporary file left (.part, .tmp, .fetch-*), nothing recorded left in the inbox.

`warehouse_snapshot(url)` is the business content of a warehouse without surrogate ids, timestamps or
control-number values, so a killed-and-re-run warehouse can be compared with a clean run.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path

from sqlalchemy import create_engine, text

TEMP_MARKERS = (".part", ".tmp")
DELIVERED = {"sent": "delivered", "already_sent": "delivered"}


def _rows(conn, sql: str) -> list[tuple]:
    return [tuple(r) for r in conn.execute(text(sql))]


def _money(value) -> str:
    return str(Decimal(str(value)).quantize(Decimal("0.01"))) if value is not None else "-"


def warehouse_snapshot(url: str) -> dict:
    """The warehouse's business content, comparable between a clean run and a killed-and-re-run one."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            claim_of = dict(_rows(conn, "select id, claim_id from claim"))
            file_claims: dict[int, tuple] = defaultdict(tuple)
            for file_id, claim_id in _rows(conn, "select claim_file_id, claim_id from claim "
                                                 "where claim_file_id is not null order by claim_id"):
                file_claims[file_id] += (claim_id,)
            return {
                "extracts": sorted(_rows(conn, "select file_name, rows, accepted, rejected, duplicates "
                                               "from extract_file")),
                "charges": sorted(_rows(conn, "select charge_id, status from charge")),
                "charge_rejects": sorted(Counter(_rows(
                    conn, "select row_number, coalesce(charge_id, ''), rule from charge_reject")).items()),
                "edit_issues": sorted(Counter(_rows(
                    conn, "select coalesce(charge_id, ''), coalesce(claim_id, ''), severity, rule "
                          "from edit_issue")).items()),
                "claims": sorted((c, s, _money(t), p, q, f, icn or "") for c, s, t, p, q, f, icn in _rows(
                    conn, "select claim_id, status, total_charge, payer_id, payer_sequence, frequency_code, "
                          "payer_icn from claim")),
                "claim_lines": sorted((claim_of[pk], n, ch, cpt, m, u, _money(a)) for pk, n, ch, cpt, m, u, a in
                                      _rows(conn, "select claim_pk, line_number, charge_id, cpt, modifiers, units, "
                                                  "charge_amount from claim_line")),
                "claim_links": sorted((claim_of[a], claim_of[b], k) for a, b, k in _rows(
                    conn, "select claim_pk, original_claim_pk, kind from claim_link")),
                "claim_files": sorted((p, s, n, ln, _money(t), file_claims[i]) for i, p, s, n, ln, t in _rows(
                    conn, "select id, practice_id, status, claims, lines, total_charge from claim_file")),
                "submissions": sorted((file_claims[f], DELIVERED.get(s, s)) for f, s in _rows(
                    conn, "select claim_file_id, status from submission")),
                "fetched": sorted(Counter(k for (k,) in _rows(conn, "select kind from fetched_file")).items()),
                "inbound": sorted(Counter(_rows(conn, "select kind, status from inbound_file")).items()),
                "remittances": sorted((p, _money(a), _money(c), n, m, u, s) for p, a, c, n, m, u, s in _rows(
                    conn, "select payer_key, payment_amount, claims_paid_total, claims, matched, unmatched, "
                          "status from remittance")),
                "claim_payments": sorted((pcn, st, _money(c), _money(p), _money(r)) for pcn, st, c, p, r in _rows(
                    conn, "select patient_control_number, status_code, charge_amount, paid_amount, "
                          "patient_responsibility from claim_payment")),
                "ledger": sorted(Counter(
                    (claim_of.get(pk, ""), t, g or "", c or "", _money(a), bool(r)) for pk, t, g, c, a, r in _rows(
                        conn, "select claim_pk, entry_type, group_code, carc, amount, reversal from ledger_entry")
                ).items()),
                "provider_adjustments": sorted((r, _money(a)) for r, a in _rows(
                    conn, "select reason_code, amount from provider_adjustment")),
                "remit_exceptions": sorted(_rows(conn, "select kind, reference from remit_exception")),
                "acks": sorted(Counter(s for (s,) in _rows(conn, "select status from ack_result")).items()),
                "status_events": sorted(Counter(
                    (pcn, src, cat or "", code or "", bool(acc)) for pcn, src, cat, code, acc in _rows(
                        conn, "select patient_control_number, source, category_code, status_code, accepted "
                              "from claim_status_event")).items()),
            }
    finally:
        engine.dispose()


# -- reading X12 files independently of otedi ---------------------------------------------------------


def segments(path: Path) -> list[list[str]]:
    """The segments of one interchange, split by the delimiters its ISA declares."""
    data = path.read_text(encoding="latin-1")
    start = data.find("ISA")
    element, terminator = data[start + 3], data[start + 105]
    return [s.strip("\r\n").split(element) for s in data[start:].split(terminator) if s.strip("\r\n")]


def violations(url: str, home: Path | None = None, *, complete: bool = True) -> list[str]:
    """Every broken promise, as short sentences naming ids (no PHI). `complete`: the last run finished, so
    nothing may be left half-way. `home`: OTEDI_HOME, whose drop/, outbound/ and archive/ are checked too."""
    found: list[str] = []
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            found += _charges_billed_once(conn)
            found += _control_numbers_once(conn)
            found += _submissions(conn, complete)
            found += _ledger_matches_835s(conn)
            if home is not None:
                found += _delivered_files(conn, home / "drop" / "outbound")
                found += _inbox_finished(conn, home / "drop") if complete else []
    finally:
        engine.dispose()
    if home is not None and complete:  # a kill leaves temporary files; the re-run must clear them
        found += [f"temporary file left: {p.relative_to(home)}" for p in home.rglob("*")
                  if p.is_file() and (p.name.endswith(TEMP_MARKERS) or p.name.startswith(".fetch-"))]
    return found


def _charges_billed_once(conn) -> list[str]:
    # A replacement or void (frequency 7/8) and a secondary claim bill a charge again on purpose; each is
    # linked to its original. Unlinked claims to the same payer position must not share a charge.
    twice = _rows(conn, """
        select l.charge_id, c.payer_sequence, count(distinct c.id)
        from claim_line l join claim c on c.id = l.claim_pk
        where c.id not in (select claim_pk from claim_link)
        group by l.charge_id, c.payer_sequence having count(distinct c.id) > 1""")
    return [f"charge {ch} is on {n} unlinked claims to payer position {seq}" for ch, seq, n in twice]


def _control_numbers_once(conn) -> list[str]:
    twice = _rows(conn, """
        select clearinghouse_id, practice_id, interchange_control_number, count(*) from claim_file
        group by clearinghouse_id, practice_id, interchange_control_number having count(*) > 1""")
    return [f"ISA13 {n} used {k} times by {p} to {ch}" for ch, p, n, k in twice]


def _submissions(conn, complete: bool) -> list[str]:
    found = [f"claim file {name} is {status} but has no submission" for name, status in _rows(conn, """
        select f.file_name, f.status from claim_file f left join submission s on s.claim_file_id = f.id
        where f.status = 'sent' and s.id is null""")]
    if complete:
        found += [f"submission of {name} left {status}" for name, status in _rows(conn, """
            select remote_name, status from submission where status not in ('sent', 'already_sent')""")]
        found += [f"claim {c} is batched in a sent file but not submitted" for (c,) in _rows(conn, """
            select c.claim_id from claim c join claim_file f on f.id = c.claim_file_id
            where f.status = 'sent' and c.status = 'batched'""")]
    return found


def _ledger_matches_835s(conn) -> list[str]:
    found = []
    for inbound_id, name, path, status in _rows(conn, """
            select i.id, i.file_name, f.archive_path, i.status from inbound_file i
            join fetched_file f on f.sha256 = i.sha256 where i.kind = '835' group by i.id, i.file_name,
            f.archive_path, i.status"""):
        posted: dict[str, Decimal] = defaultdict(Decimal)  # summed here: SQLite sums money as floats
        for control, amount in _rows(conn, f"""
                select r.transaction_control_number, l.amount from remittance r
                left join ledger_entry l on l.remittance_id = r.id and l.entry_type = 'payment'
                where r.inbound_file_id = {int(inbound_id)} and r.status = 'posted'"""):
            posted[control] += Decimal(_money(amount if amount is not None else 0))
        in_file = _clp04_by_transaction(Path(path))
        # recorded, not posted: a payment repeated under another trace
        for control, paid in _rows(conn, f"""
                select r.transaction_control_number, p.paid_amount from remit_exception e
                join claim_payment p on p.id = e.claim_payment_id join remittance r on r.id = e.remittance_id
                where r.inbound_file_id = {int(inbound_id)} and e.kind = 'duplicate_payment'"""):
            in_file[control] -= Decimal(_money(paid))
        for control, total in posted.items():
            if in_file.get(control) != total:
                found.append(f"835 {name} ST {control}: ledger payments {total} != CLP04 total "
                             f"{in_file.get(control)}")
        if status == "posted" and set(in_file) != set(posted):
            found.append(f"835 {name} is posted but transactions {sorted(set(in_file) - set(posted))} are not")
    return found


def _clp04_by_transaction(path: Path) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    control = None
    for seg in segments(path):
        if seg[0] == "ST":
            control = seg[2]
            totals[control] = Decimal("0.00")
        elif seg[0] == "CLP" and control is not None and seg[2] != "25":  # a predetermination pays nothing
            totals[control] += Decimal(seg[4])
    return totals


def _delivered_files(conn, outbound: Path) -> list[str]:
    """The 837Ps the clearinghouse holds: each recorded by one submission, each claim in one of them."""
    if not outbound.is_dir():
        return []
    recorded = dict(_rows(conn, "select remote_name, sha256 from submission"))
    found, claim_in, isa13_in = [], defaultdict(list), defaultdict(list)
    for path in sorted(outbound.glob("*.837")):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if recorded.get(path.name) != digest:
            found.append(f"delivered {path.name} has no submission with its content")
        segs = segments(path)
        isa13_in[(segs[0][6].strip(), segs[0][8].strip(), segs[0][13])].append(path.name)
        for seg in segs:
            if seg[0] == "CLM":
                claim_in[seg[1]].append(path.name)
    found += [f"claim {c} delivered in {len(files)} files" for c, files in claim_in.items() if len(files) > 1]
    found += [f"ISA13 {key[2]} from {key[0]} delivered in {files}" for key, files in isa13_in.items()
              if len(files) > 1]
    return found


def _inbox_finished(conn, drop: Path) -> list[str]:
    inbox = drop / "inbound"
    if not inbox.is_dir():
        return []
    recorded = {name for (name,) in _rows(conn, "select remote_name from fetched_file")}
    return [f"{p.name} recorded as fetched but still in the inbox" for p in inbox.iterdir() if p.name in recorded]
