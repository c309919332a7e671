"""Finance at scale (issue 14 target 6): a synthesised N-claim warehouse, and every finance entry point timed on it.

    python -m benchmarks.scale                                   # 1,000,000 claims, a temp SQLite file
    python -m benchmarks.scale --claims 100000 --reuse var/bench-scale
    python -m benchmarks.scale --claims 100000 --database postgresql+psycopg://postgres@127.0.0.1:5432/test

1. Synthesis, straight into the warehouse with bulk SQL (otedi.warehouse.bulk: binary COPY on PostgreSQL,
   multi-row INSERT on SQLite), CHUNK claims at a time so memory stays flat: 837P files of 5,000 claims (a 999
   and a 277CA for each), claims of 1-4 lines (one charge per line) with the payers of mappings/payers
   (payer id + filing code, so payer rules resolve), 835s of ~1,000 claim payments per payer and week with
   their ledger entries: paid, CO-45 contractual, PR-1/2/3 patient responsibility, denials with CARC/RARC,
   reversals (some re-adjudicated), PLB interest; 277CA rejections and their resubmissions, crossovers to a
   secondary payer, claims not sent yet, patient payments and write-offs on the account ledger. The same
   --seed gives the same warehouse. With --reuse DIR a warehouse synthesised before (SQLite: DIR/warehouse.db;
   PostgreSQL: the database named in --database) is reused when it holds N claims.
2. Each entry point runs in a fresh child process (so its peak RSS is its own): refresh_finance_tables, the
   export of the refreshed tables as CSV, Parquet and XLSX (`otedi report export --no-refresh`; the CLI's
   default export is refresh + this), the HTML report, cycle_summary, ar_aging, the work queue (`otedi ar
   worklist`). CPU seconds (the child's process time: the machine is shared), wall seconds and peak RSS, one table.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

TODAY = date(2026, 12, 1)
DAYS = 330  # dates of service over the 330 days before TODAY
CHUNK = 20_000  # claims synthesised and written per round
FILE_CLAIMS = 5_000
REMIT_CLAIMS = 1_000
PRACTICES = (("BRIGHTHANDS", "1234567893"), ("KIDSTHRIVE", "1245319599"), ("HANDWORKS", "1679576722"))
# (payer id, name as the charge gives it, filing code, share of the primary claims)
PAYERS = (("15202", "CGS MEDICARE PART B OHIO", "MB", 0.40), ("87726", "UNITEDHEALTHCARE", "CI", 0.25),
          ("OHMCD", "OHIO MEDICAID", "MC", 0.20), ("DEMOEGHP", "EMPLOYER GROUP HEALTH PLAN", "CI", 0.15))
SECONDARY = ("OHMCD", "OHIO MEDICAID", "MC")  # crossovers go from Medicare to Medicaid
CPTS = (("97110", "GO", 4200), ("97530", "GO", 4600), ("97535", "GO", 4100), ("97140", "GO", 3900),
        ("97165", "GO", 10500), ("97112", "GO", 4400))
# a denial: (group, CARC, RARC or None, entry type as posted)
DENIALS = (("CO", "197", None), ("CO", "16", "N290"), ("CO", "50", "N115"), ("CO", "29", None),
           ("CO", "151", "N362"), ("CO", "18", None), ("CO", "4", "M114"), ("CO", "27", None))
ENTRIES = ("finance_refresh", "export_csv", "export_parquet", "export_xlsx", "html_report", "cycle_summary",
           "ar_aging", "work_queue")
STAMP = datetime(2026, 12, 1, 6, 0, tzinfo=timezone.utc)


def _money(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)


class Tables:
    """Column lists for one round of synthesis, written with bulk.insert_columns and emptied."""

    def __init__(self, metadata):
        self.metadata = metadata
        self.rows: dict[str, dict[str, list]] = {}
        self.next_id: dict[str, int] = {}

    def add(self, table: str, **values) -> int:
        """Append one row; returns its id (ids are counted here: the warehouse is fresh)."""
        new = self.next_id.get(table, 0) + 1
        self.next_id[table] = new
        columns = self.rows.setdefault(table, {})
        values = {"id": new, **values} if "id" in self.metadata.tables[table].c else values
        if columns and len(columns) != len(values):
            raise ValueError(f"synthesis: {table} rows with different columns")
        for key, value in values.items():
            columns.setdefault(key, []).append(value)
        return new

    def flush(self, connection) -> None:
        from otedi.warehouse.bulk import insert_columns

        for table in self.metadata.sorted_tables:  # parents first (foreign keys)
            columns = self.rows.pop(table.name, None)
            if columns:
                insert_columns(connection, table, columns)


def synthesise(url: str, claims: int, seed: int) -> dict[str, int]:
    """Write an N-claim warehouse into the (empty, migrated) database at `url`; returns rows per table."""
    from otedi.warehouse import db
    from otedi.warehouse.models import Base

    rng = random.Random(seed)
    tables = Tables(Base.metadata)
    counts: dict[str, int] = {}
    state = {"claims": 0, "file": None, "file_left": 0, "remits": {}, "trace": 0, "audit": None}
    extract = tables.add("extract_file", file_name="bench-scale.csv", sha256="0" * 64, mapping="webpt_style",
                         rows=0, accepted=0, rejected=0, duplicates=0, loaded_at=STAMP)
    state["extract"] = extract
    state["audit"] = tables.add("audit_event", at=STAMP, actor="bench", action="patient_payment_import",
                                subject="file:bench-scale", note="synthesised", changes="{}")
    engine = db.engine(url)
    with engine.begin() as conn:
        for start in range(0, claims, CHUNK):
            for n in range(start, min(start + CHUNK, claims)):
                _claim(tables, rng, n, state)
            _close_remittances(tables, state)  # a ledger entry's remittance row goes in with it
            for table, columns in tables.rows.items():
                counts[table] = counts.get(table, 0) + len(next(iter(columns.values())))
            tables.flush(conn)
            print(f"  synthesised {min(start + CHUNK, claims):,} claims", file=sys.stderr, flush=True)
        if conn.dialect.name == "postgresql":  # explicit ids: move each sequence past them
            for table in Base.metadata.sorted_tables:
                if "id" in table.c and table.c.id.autoincrement is not False and table.name in counts:
                    conn.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                                         f"(SELECT max(id) FROM {table.name}))")
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    return counts


def _claim_file(tables: Tables, state: dict, practice: str, created: datetime) -> int:
    if state["file_left"] == 0:
        number = tables.next_id.get("claim_file", 0) + 1
        state["file"] = tables.add(
            "claim_file", file_name=f"837P_{number:07d}.x12", path=f"/drop/837P_{number:07d}.x12", sha256="f" * 64,
            size=0, practice_id=practice, clearinghouse_id="SIMCH", interchange_control_number=number,
            group_control_number=number, transaction_control_number=number, isa_sender_id="OTEDI",
            isa_receiver_id="SIMCH", gs_sender_code="OTEDI", gs_receiver_code="SIMCH", claims=FILE_CLAIMS,
            lines=0, total_charge=Decimal("0.00"), status="sent", errors=None, created_at=created)
        inbound = tables.add("inbound_file", file_name=f"999_{number:07d}.x12", sha256=f"999-{number:060d}",
                             size=0, kind="999", status="loaded", message=None,
                             received_at=created + timedelta(hours=1))
        tables.add("ack_result", inbound_file_id=inbound, claim_file_id=state["file"],
                   group_control_number=str(number), transaction_control_number=str(number), status="A", errors=None)
        state["ack277"] = tables.add("inbound_file", file_name=f"277CA_{number:07d}.x12",
                                     sha256=f"277-{number:060d}", size=0, kind="277", status="loaded", message=None,
                                     received_at=created + timedelta(days=1))
        state["file_left"] = FILE_CLAIMS
    state["file_left"] -= 1
    return state["file"]


def _remittance(tables: Tables, state: dict, payer_id: str, payer_name: str, paid_on: date) -> dict:
    """The open 835 of this payer and week (a new one every REMIT_CLAIMS claim payments)."""
    key = (payer_id, paid_on.isocalendar()[:2])
    remit = state["remits"].get(key)
    if remit is None or remit["claims"] >= REMIT_CLAIMS:
        if remit is not None:
            _close(tables, remit)
        state["trace"] += 1
        trace = f"EFT{state['trace']:09d}"
        inbound = tables.add("inbound_file", file_name=f"835_{trace}.x12", sha256=f"835-{state['trace']:060d}",
                             size=0, kind="835", status="posted", message=None,
                             received_at=datetime.combine(paid_on, datetime.min.time(), timezone.utc))
        remit = {"id": tables.next_id.get("remittance", 0) + 1, "inbound": inbound, "payer_id": payer_id,
                 "payer_name": payer_name, "trace": trace, "paid_on": paid_on, "claims": 0, "paid": 0}
        remit["posted_at"] = datetime.combine(paid_on + timedelta(days=2), datetime.min.time(), timezone.utc)
        tables.next_id["remittance"] = remit["id"]  # its row is written when it closes (its totals known)
        state["remits"][key] = remit
    return remit


def _close(tables: Tables, remit: dict) -> None:
    """Write the remittance row (BPR02 = claim payments - PLB: the deposit ties), with a PLB interest item."""
    interest = 0
    if remit["claims"] % 7 == 3:
        interest = 125 + remit["claims"]
        tables.add("provider_adjustment", remittance_id=remit["id"], provider_id="1234567893",
                   fiscal_period_date=remit["paid_on"], reason_code="L6", reference=None,
                   amount=_money(-interest))
    payment = remit["paid"] + interest
    columns = tables.rows.setdefault("remittance", {})
    row = dict(id=remit["id"], inbound_file_id=remit["inbound"], transaction_control_number="0001",
               payer_key=remit["payer_id"], payer_name=remit["payer_name"], trace_number=remit["trace"],
               payment_amount=_money(abs(payment)), credit_debit="C" if payment >= 0 else "D", payment_method="ACH",
               payment_date=remit["paid_on"], payee_npi="1234567893", claims_paid_total=_money(remit["paid"]),
               provider_adjustment_total=_money(-interest), claims=remit["claims"], matched=remit["claims"],
               unmatched=0, status="posted", hold_reason=None, posted_at=remit["posted_at"])
    for key, value in row.items():
        columns.setdefault(key, []).append(value)


def _close_remittances(tables: Tables, state: dict) -> None:
    for remit in state["remits"].values():
        _close(tables, remit)
    state["remits"] = {}


def _pick_payer(rng: random.Random) -> tuple[str, str, str]:
    roll, total = rng.random(), 0.0
    for payer_id, name, code, share in PAYERS:
        total += share
        if roll < total:
            return payer_id, name, code
    return PAYERS[-1][:3]


def _claim(tables: Tables, rng: random.Random, n: int, state: dict) -> None:
    """One visit: its charges, claim and lines, and what became of it (acks, 835s, account entries)."""
    practice, npi = PRACTICES[n % len(PRACTICES)]
    patient = f"P{n // 8:08d}"  # patients come back: 8 visits each
    payer_id, payer_name, filing = _pick_payer(rng)
    served = TODAY - timedelta(days=rng.randint(3, DAYS))
    created = datetime.combine(served + timedelta(days=1), datetime.min.time(), timezone.utc) + timedelta(hours=20)
    outcome = rng.random()
    not_sent = outcome < 0.01
    lines = [CPTS[rng.randrange(len(CPTS))] for _ in range(rng.choice((1, 2, 2, 3, 3, 3, 4)))]
    claim_id = f"C{n:011d}"
    charges = []
    for number, (cpt, modifier, fee) in enumerate(lines, start=1):
        charge_id = f"{claim_id}-{number}"
        tables.add("charge", charge_id=charge_id, extract_file_id=state["extract"], row_number=n * 4 + number,
                   status="claimed", practice_id=practice, service_date=served, patient_id=patient,
                   patient_last_name="QUILLFEATHER", patient_first_name="ZEPHYRINE", patient_dob=date(1960, 1, 1),
                   patient_sex="F", patient_address1="1 MAIN ST", patient_city="COLUMBUS", patient_state="OH",
                   patient_zip="43215", payer_id=payer_id, payer_name=payer_name, claim_filing_code=filing,
                   payer_sequence="P", member_id=f"M{n:09d}", group_number=None, relationship="18",
                   subscriber_last_name=None, subscriber_first_name=None, subscriber_dob=None, subscriber_sex=None,
                   rendering_npi=npi, rendering_last_name="THERAPIST", rendering_first_name="OT",
                   rendering_role="OT", supervising_npi=None, supervising_last_name=None,
                   supervising_first_name=None, referring_npi="1003000126", referring_last_name="REFERRER",
                   referring_first_name="MD", place_of_service="11", cpt=cpt, modifiers=modifier, minutes=30,
                   units=2, charge_amount=_money(fee * 2), dx_codes="M6281", prior_auth_number=None,
                   initial_treatment_date=None, plan_of_care_start=None, plan_of_care_signed_date=None,
                   plan_of_care_certified_through=None, progress_report_date=None, msp_type=None, qmb=False,
                   loaded_at=created)
        charges.append((charge_id, cpt, modifier, fee * 2))
    billed = sum(c[3] for c in charges)
    file_id = None if not_sent else _claim_file(tables, state, practice, created)
    claim_pk = tables.next_id.get("claim", 0) + 1
    line_pks = []
    plan = _plan(rng, outcome, payer_id)
    tables.add("claim", claim_id=claim_id, practice_id=practice, patient_id=patient, payer_id=payer_id,
               payer_sequence="P", claim_filing_code=filing, rendering_npi=npi, service_date_from=served,
               service_date_to=served, total_charge=_money(billed), expected_allowed=_money(billed * 7 // 10),
               frequency_code="1", payer_claim_number=None, payer_icn=None if plan["status"] in
               ("ready", "submitted", "rejected") else f"ICN{n:012d}", diagnoses="M6281",
               status=plan["status"], claim_file_id=file_id, created_at=created)
    for number, (charge_id, cpt, modifier, amount) in enumerate(charges, start=1):
        line_pks.append(tables.add(
            "claim_line", claim_pk=claim_pk, line_number=number, charge_id=charge_id,
            line_control_number=f"{claim_id}-{number}", service_date=served, cpt=cpt, modifiers=modifier, units=2,
            charge_amount=_money(amount), expected_allowed=_money(amount * 7 // 10), dx_pointers="1"))
    if not_sent:
        if rng.random() < 0.3:
            tables.add("edit_issue", charge_id=charges[0][0], claim_id=claim_id, severity="hold", rule="bench-hold",
                       source="bench", message="synthesised hold", created_at=created)
        return
    accepted_at = created + timedelta(days=1)
    tables.add("claim_status_event", inbound_file_id=state["ack277"], claim_pk=claim_pk,
               patient_control_number=claim_id, source="277CA",
               category_code="A3" if plan["status"] == "rejected" else "A1",
               status_code="21" if plan["status"] == "rejected" else "20",
               accepted=plan["status"] != "rejected", payer_claim_number=None,
               message="rejected: missing or invalid information" if plan["status"] == "rejected" else "accepted",
               created_at=accepted_at)
    if plan["status"] == "rejected":
        if rng.random() < 0.5:  # the biller fixed and resent it: a resubmission takes its place
            _resubmission(tables, rng, n, claim_pk, state, practice, npi, patient, payer_id, filing, served, charges,
                          created)
        return
    if plan["adjudications"] == 0:
        return
    paid_on = served + timedelta(days=rng.randint(14, 40))
    if paid_on >= TODAY:
        paid_on = TODAY - timedelta(days=1)
    patient_part = 0
    for step in range(plan["adjudications"]):
        reversal = plan["reversed"] and step == 1
        day = paid_on + timedelta(days=14 * step)
        if day >= TODAY:
            day = TODAY - timedelta(days=1)
        patient_part = _adjudicate(tables, rng, claim_pk, claim_id, payer_id, payer_name, line_pks, charges, day,
                                   plan, state, reversal=reversal)
    if plan["crossover"]:
        _crossover(tables, n, claim_pk, state, practice, npi, patient, served, charges, created, paid_on)
    elif patient_part > 0 and rng.random() < 0.35:  # the patient paid at the front desk
        tables.add("account_entry", practice_id=practice, patient_id=patient, claim_pk=claim_pk,
                   entry_type="patient_payment", side="patient", reason=None, amount=_money(patient_part),
                   patient_payment_id=None, account_adjustment_id=None, audit_event_id=state["audit"],
                   posted_at=datetime.combine(paid_on + timedelta(days=20), datetime.min.time(), timezone.utc))
    elif plan["denial"] and plan["denial"][1] == "29" and rng.random() < 0.5:  # timely filing: written off
        tables.add("account_entry", practice_id=practice, patient_id=patient, claim_pk=claim_pk,
                   entry_type="write_off", side="insurance", reason="timely_filing",
                   amount=_money(plan["denied_amount"]), patient_payment_id=None, account_adjustment_id=None,
                   audit_event_id=state["audit"],
                   posted_at=datetime.combine(paid_on + timedelta(days=25), datetime.min.time(), timezone.utc))


def _plan(rng: random.Random, outcome: float, payer_id: str) -> dict:
    """What happens to a sent claim: its final status, how many 835 CLPs, a denial, a reversal."""
    plan = {"status": "paid", "adjudications": 1, "denial": None, "reversed": False, "crossover": False,
            "denied_amount": 0}
    if outcome < 0.01:
        plan.update(status="ready", adjudications=0)
    elif outcome < 0.04:
        plan.update(status="rejected", adjudications=0)
    elif outcome < 0.10:
        plan.update(status="accepted", adjudications=0)  # no 835 yet
    elif outcome < 0.20:
        plan["denial"] = DENIALS[rng.randrange(len(DENIALS))]
        plan["status"] = "partially_paid"
    elif outcome < 0.23:
        plan.update(reversed=True, adjudications=2 if rng.random() < 0.5 else 3)
        plan["status"] = "reversed" if plan["adjudications"] == 2 else "paid"
    elif outcome < 0.25 and payer_id == "15202":
        plan.update(crossover=True, status="forwarded")
    return plan


def _adjudicate(tables: Tables, rng: random.Random, claim_pk: int, claim_id: str, payer_id: str, payer_name: str,
                line_pks: list[int], charges: list, paid_on: date, plan: dict, state: dict, *,
                reversal: bool) -> int:
    """One CLP for the claim and its ledger entries (a reversal negates the first); returns patient cents."""
    remit = _remittance(tables, state, payer_id, payer_name, paid_on)
    remit["claims"] += 1
    sign = -1 if reversal else 1
    entries, paid_total, patient_total = [], 0, 0
    for index, (line_pk, (_, cpt, _, amount)) in enumerate(zip(line_pks, charges)):
        allowed = amount * 7 // 10
        if plan["denial"] and index == 0:
            group, carc, rarc = plan["denial"]
            plan["denied_amount"] = amount
            entries.append((line_pk, "denial", group, carc, rarc, amount, cpt))
            continue
        patient = allowed // 5 if payer_id == "15202" else 2500 if payer_id in ("87726", "DEMOEGHP") else 0
        patient = min(patient, allowed)
        sequestration = (allowed - patient) * 2 // 100 if payer_id == "15202" else 0  # Medicare's 2% (CO-253)
        paid = allowed - patient - sequestration
        entries.append((line_pk, "payment", None, None, None, paid, cpt))
        if sequestration:
            entries.append((line_pk, "contractual", "CO", "253", None, sequestration, cpt))
        entries.append((line_pk, "contractual", "CO", "45", None, amount - allowed, cpt))
        if patient:
            carc = "2" if payer_id == "15202" else "3" if rng.random() < 0.8 else "1"
            entries.append((line_pk, "patient_responsibility", "PR", carc, None, patient, cpt))
        paid_total += paid
        patient_total += patient
    status = "22" if reversal else "19" if plan["crossover"] else "4" if plan["denial"] and len(charges) == 1 else "1"
    payment = tables.add(
        "claim_payment", remittance_id=remit["id"], claim_pk=claim_pk, patient_control_number=claim_id,
        status_code=status, charge_amount=_money(sign * sum(c[3] for c in charges)),
        paid_amount=_money(sign * paid_total), patient_responsibility=_money(sign * patient_total),
        payer_claim_number=f"ICN{claim_pk:012d}", crossover_payer=SECONDARY[1] if plan["crossover"] else None,
        remark_codes=None,
        money_key=hashlib.sha256(f"bench:{tables.next_id.get('claim_payment', 0) + 1}".encode()).hexdigest())
    remit["paid"] += sign * paid_total
    for line_pk, entry_type, group, carc, rarc, amount, cpt in entries:
        tables.add("ledger_entry", remittance_id=remit["id"], claim_payment_id=payment, claim_pk=claim_pk,
                   claim_line_pk=line_pk, entry_type=entry_type, group_code=group, carc=carc, rarc=rarc,
                   amount=_money(sign * amount), units=Decimal("2.00"), cpt=cpt, service_date=None,
                   reversal=reversal, posted_at=remit["posted_at"])
    return patient_total * (0 if reversal else 1)


def _crossover(tables: Tables, n: int, claim_pk: int, state: dict, practice: str, npi: str, patient: str,
               served: date, charges: list, created: datetime, paid_on: date) -> None:
    """The primary forwarded the claim to Medicaid: a crossover record (no 837P of ours), its 835 not in yet."""
    record = tables.add(
        "claim", claim_id=f"X{n:011d}", practice_id=practice, patient_id=patient, payer_id=SECONDARY[0],
        payer_sequence="S", claim_filing_code=SECONDARY[2], rendering_npi=npi, service_date_from=served,
        service_date_to=served, total_charge=_money(sum(c[3] for c in charges)), expected_allowed=None,
        frequency_code="1", payer_claim_number=None, payer_icn=None, diagnoses="M6281", status="crossed_over",
        claim_file_id=None, created_at=datetime.combine(paid_on, datetime.min.time(), timezone.utc))
    for number, (charge_id, cpt, modifier, amount) in enumerate(charges, start=1):
        tables.add("claim_line", claim_pk=record, line_number=number, charge_id=charge_id,
                   line_control_number=f"X{n:011d}-{number}", service_date=served, cpt=cpt, modifiers=modifier,
                   units=2, charge_amount=_money(amount), expected_allowed=None, dx_pointers="1")
    tables.add("claim_link", claim_pk=record, original_claim_pk=claim_pk, kind="crossover",
               original_status="forwarded", created_at=created)


def _resubmission(tables: Tables, rng: random.Random, n: int, claim_pk: int, state: dict, practice: str, npi: str,
                  patient: str, payer_id: str, filing: str, served: date, charges: list, created: datetime) -> None:
    """A rejected claim sent again as a new original (frequency 1), accepted and waiting for its 835."""
    later = created + timedelta(days=3)
    file_id = _claim_file(tables, state, practice, later)
    record = tables.add(
        "claim", claim_id=f"R{n:011d}", practice_id=practice, patient_id=patient, payer_id=payer_id,
        payer_sequence="P", claim_filing_code=filing, rendering_npi=npi, service_date_from=served,
        service_date_to=served, total_charge=_money(sum(c[3] for c in charges)),
        expected_allowed=_money(sum(c[3] for c in charges) * 7 // 10), frequency_code="1", payer_claim_number=None,
        payer_icn=None, diagnoses="M6281", status="submitted", claim_file_id=file_id, created_at=later)
    for number, (charge_id, cpt, modifier, amount) in enumerate(charges, start=1):
        tables.add("claim_line", claim_pk=record, line_number=number, charge_id=charge_id,
                   line_control_number=f"R{n:011d}-{number}", service_date=served, cpt=cpt, modifiers=modifier,
                   units=2, charge_amount=_money(amount), expected_allowed=_money(amount * 7 // 10),
                   dx_pointers="1")
    tables.add("claim_link", claim_pk=record, original_claim_pk=claim_pk, kind="resubmission",
               original_status="rejected", created_at=later)


# ---------------------------------------------------------------------------------------------------------------
# Timing each entry point in a child process


def run_entry(entry: str, out: Path) -> None:
    """Child: run one entry point against OTEDI_DATABASE_URL, print {cpu, wall, rss_mib, rows} as JSON."""
    from otedi import analytics
    from otedi.analytics import warehouse_tables

    cpu, wall = time.process_time(), time.perf_counter()
    rows = None
    if entry == "finance_refresh":
        rows = sum(warehouse_tables.refresh_finance_tables(today=TODAY).values())
    elif entry.startswith("export_"):
        rows = len(analytics.export_tables(out / entry, entry.removeprefix("export_"), today=TODAY, refresh=False))
    elif entry == "html_report":
        analytics.write_html_report(out / "report.html", today=TODAY)
    elif entry == "cycle_summary":
        rows = analytics.cycle_summary(today=TODAY)["claims_submitted"]
    elif entry == "ar_aging":
        rows = len(analytics.ar_aging(today=TODAY))
    elif entry == "work_queue":
        rows = len(analytics.work_queue(today=TODAY))
    else:
        raise SystemExit(f"unknown entry point {entry!r}: one of {', '.join(ENTRIES)}")
    print(json.dumps({"cpu": time.process_time() - cpu, "wall": time.perf_counter() - wall, "rows": rows,
                      "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def _child(entry: str, url: str, home: Path, timeout: float) -> dict:
    env = {**os.environ, "OTEDI_DATABASE_URL": url, "OTEDI_HOME": str(home)}
    command = [sys.executable, "-m", "benchmarks.scale", "--entry", entry, "--out", str(home)]
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"over the {timeout:.0f} s limit"}
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {done.returncode}: {last[:100]}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _claims_in(url: str) -> int | None:
    from sqlalchemy import text

    from otedi.warehouse import db

    engine = db.engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM claim WHERE claim_id LIKE 'C%'")).scalar_one()
    except Exception:  # noqa: BLE001 - no warehouse there yet
        return None
    finally:
        engine.dispose()  # the file may be replaced next: no pooled connection to the old one


def _fresh_postgres(url: str) -> None:
    """Drop and create the database `url` names (a benchmark database: it is synthesised again)."""
    from sqlalchemy import create_engine, make_url, text

    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--claims", type=int, default=1_000_000)
    parser.add_argument("--database", help="a PostgreSQL URL (its database is dropped and synthesised again "
                                           "unless --reuse finds N claims in it); default: a SQLite file")
    parser.add_argument("--reuse", type=Path, help="keep the warehouse (SQLite: DIR/warehouse.db) and the "
                                                   "entry points' output in DIR, and reuse a warehouse of N claims")
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--only", help="comma-separated entry points to time (default: all)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds an entry point may run")
    parser.add_argument("--entry", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.entry:
        run_entry(args.entry, args.out)
        return 0

    from otedi.warehouse import db

    folder = args.reuse or Path(tempfile.mkdtemp(prefix="otedi-bench-scale-"))
    folder.mkdir(parents=True, exist_ok=True)
    url = args.database or f"sqlite:///{folder / 'warehouse.db'}"
    found = _claims_in(url) if args.reuse else None
    if found is not None and found >= args.claims * 0.95:
        print(f"reusing the warehouse at {db.describe(url)} ({found:,} claims)", file=sys.stderr)
    else:
        if url.startswith("postgresql"):
            _fresh_postgres(url)
        elif (folder / "warehouse.db").exists():
            for suffix in ("", "-wal", "-shm"):
                Path(f"{folder / 'warehouse.db'}{suffix}").unlink(missing_ok=True)
        db.upgrade(url)
        cpu, wall = time.process_time(), time.perf_counter()
        counts = synthesise(url, args.claims, args.seed)
        print(f"synthesised in {time.perf_counter() - wall:.1f} s wall ({time.process_time() - cpu:.1f} s CPU): "
              + ", ".join(f"{t} {n:,}" for t, n in sorted(counts.items())), file=sys.stderr)
    entries = args.only.split(",") if args.only else ENTRIES
    if "finance_refresh" not in entries and any(e.startswith("export_") for e in entries):
        entries = ["finance_refresh", *entries]  # the exports write what a refresh left
    print(f"\nfinance at {args.claims:,} claims on {url.split(':')[0]} (as of {TODAY}; one fresh process each)")
    print(f"{'entry point':<18}{'CPU s':>9}{'wall s':>9}{'peak RSS MiB':>14}{'rows':>10}   target <= 60 s, 1024 MiB")
    failed = False
    for entry in entries:
        result = _child(entry, url, folder, args.timeout)
        if "error" in result:
            failed = True
            print(f"{entry:<18}{'FAILED: ' + result['error']}", flush=True)
            continue
        ok = result["wall"] <= 60 and result["rss_mib"] <= 1024
        print(f"{entry:<18}{result['cpu']:>9.1f}{result['wall']:>9.1f}{result['rss_mib']:>14.0f}"
              f"{'' if result['rows'] is None else result['rows']:>10}   {'met' if ok else 'MISSED'}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
