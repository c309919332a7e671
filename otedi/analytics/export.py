"""Finance exports: every reconciliation, AR and denial table as CSV, Parquet or XLSX, with fixed schemas.

All tables come from one snapshot of the warehouse, so they agree with each
other; the files are what the refresh of the warehouse's own finance_<table>
tables committed (otedi.analytics.warehouse_tables), so files and warehouse
agree. Each table has one declared schema (`SCHEMAS`: column name, type,
description), used for every format (and for the finance_<table> tables), so
a night with no denials, or no data at all, exports the same columns with the
same types:

    type      Python        CSV                         Parquet                  XLSX
    string    str           text as is                  string                   text cell
    money     Decimal       plain decimal "1234.50"     decimal128(12, 2)        number, #,##0.00
    rate      Decimal       "0.1804"                    decimal128(7, 4)         number, 0.00%
    measure   Decimal       "42.2"                      decimal128(16, 4)        number
    integer   int           "12"                        int64                    number
    boolean   bool          "true" / "false"            bool                     TRUE / FALSE
    date      date          "2026-03-10"                date32                   date, yyyy-mm-dd
    datetime  datetime UTC  "2026-03-10T12:00:00+00:00"  timestamp[us, tz=UTC]    date-time (UTC)

An empty cell is null in every format. Ids (claim ids, NPIs, patient ids,
payer ids, ICNs, trace numbers, CPT and reason codes) are strings: never
numbers, never losing a leading zero.

Formats (`export_tables(out_dir, fmt)`):

- csv: one <table>.csv per table (UTF-8, RFC 4180, a header row) and `datapackage.json`
  beside them, a Frictionless Data Package (https://specs.frictionlessdata.io)
  with each CSV's Table Schema: column names, types and descriptions, in the
  CSV's column order. Text a spreadsheet would run as a formula (starting
  with = + - @, tab or CR) gets a leading apostrophe (OWASP CSV injection).
- parquet: one <table>.parquet per table, with the column descriptions in
  the Parquet field metadata.
- xlsx: one workbook, `finance_tables.xlsx`, one sheet per table (the table's
  name, a header row of column names) and a last sheet `columns` listing
  every table's columns, types and descriptions. Text is always a text cell
  (never a formula): text starting with = + - @, tab or CR is stored as
  written, as a string, with Excel's quote prefix, so Excel shows it and does
  not evaluate it, not even after an edit; numbers stay numbers. Date-times
  are UTC (Excel has no time zones).
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Iterable, Iterator

import pandas as pd

from otedi.analytics import aging, denials, kpis, reconcile, workqueue
from otedi.analytics.snapshot import Snapshot, load_snapshot, money_out
from otedi.errors import OtediError
from otedi.files import open_private, private_dir
from otedi.progress import Progress, counted, silent

FORMATS = ("csv", "parquet", "xlsx")
SCHEMA_FILE = "datapackage.json"
WORKBOOK = "finance_tables.xlsx"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class ExportError(OtediError):
    """A finance table does not fit its declared export schema (a column missing, undeclared or of the wrong type)."""


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # one of TYPES
    description: str


# type -> (precision, scale) for the decimal types
DECIMALS = {"money": (12, 2), "rate": (7, 4), "measure": (16, 4)}
TYPES = ("string", "integer", "boolean", "date", "datetime", *DECIMALS)


def _c(name: str, type_: str, description: str) -> Column:
    return Column(name, type_, description)


# Columns that mean the same in every table they appear in.
COMMON = {c.name: c for c in [
    _c("claim_id", "string", "Our claim id: the patient control number sent in CLM01"),
    _c("practice_id", "string", "The billing practice (practice_id in mappings/practices.yaml)"),
    _c("payer_id", "string", "The payer's id the claim was sent to (2010BB NM109)"),
    _c("payer_name", "string", "The payer's name"),
    _c("payer_kind", "string", "The payer's kind from its rules: medicare, medicaid, commercial, ..."),
    _c("payer_sequence", "string", "P primary, S secondary, T tertiary (SBR01)"),
    _c("patient_id", "string", "The practice's patient id (no names or member ids are exported)"),
    _c("rendering_npi", "string", "The rendering provider's NPI (10 digits)"),
    _c("status", "string", "The claim's status: held, ready, batched, quarantined, submitted, accepted, rejected, "
                           "paid, partially_paid, patient_balance, denied, reversed, forwarded, crossed_over, "
                           "replaced, voided"),
    _c("billed", "money", "Charge billed (CLM02 / SV102), from the claim as built"),
    _c("expected_allowed", "money", "Allowed amount expected from the fee schedule, when one is known"),
    _c("allowed_835", "money", "Allowed as the 835s posted it: paid + patient responsibility + sequestration "
                               "(CO-253); empty until adjudicated"),
    _c("paid", "money", "Paid by the payer (835 payment entries, net of reversals)"),
    _c("contractual", "money", "Contractual adjustments (CO-45 and others posted as contractual)"),
    _c("patient_responsibility", "money", "Patient responsibility the payer assigned (PR group: deductible, "
                                          "coinsurance, copay)"),
    _c("other_adjustments", "money", "Other adjustments posted (neither contractual, patient nor denial)"),
    _c("denied", "money", "Denied by the payer (CO/PI/OA adjustments posted as denials), net of reversals"),
    _c("awaiting_payer", "money", "Part of the open balance no 835 has accounted for yet"),
    _c("open_balance", "money", "Insurance balance still open: billed less everything posted and written off "
                                "(denied_open + awaiting_payer)"),
    _c("adjudicated", "boolean", "An 835 adjudication of the claim stands (more original CLPs than reversals)"),
    _c("days_outstanding", "integer", "Days from submission to the as-of date while a balance is open; empty "
                                      "when nothing is open"),
    _c("service_date_from", "date", "First date of service on the claim"),
    _c("trace_number", "string", "The 835's TRN02 check or EFT trace number"),
    _c("payer_key", "string", "The paying payer as the 835 identifies it (TRN03 originating company id, else "
                              "the payer id)"),
    _c("payment_date", "date", "The 835's payment date (BPR16)"),
    _c("remittance_id", "integer", "Warehouse id of the 835 transaction"),
    _c("file_name", "string", "The 835 file the transaction came in"),
    _c("payment_method", "string", "BPR04 payment method: ACH, CHK, NON, ..."),
    _c("category", "string", "Denial root-cause category key (mappings/remit/denial_categories.yaml)"),
    _c("category_label", "string", "Denial root-cause category, as a person reads it"),
    _c("correctable", "boolean", "Correcting and resubmitting the claim can still recover the money"),
    _c("filing_deadline", "date", "Last day to file the claim for its date of service (payer's timely filing "
                                  "rule)"),
    _c("cpt", "string", "Procedure code (CPT/HCPCS)"),
    _c("line_number", "integer", "Service line number on the claim (LX01)"),
    _c("claims", "integer", "Number of claims"),
    _c("lines", "integer", "Number of service lines"),
]}


def _table(*columns: str | Column) -> tuple[Column, ...]:
    """A table's columns: names from COMMON, or Columns of its own."""
    return tuple(COMMON[c] if isinstance(c, str) else c for c in columns)


POSTED_NAMES = ("paid", "contractual", "patient_responsibility", "other_adjustments", "denied")

SCHEMAS: dict[str, tuple[Column, ...]] = {
    "reconciliation_claims": _table(
        "claim_id", "practice_id", "payer_id", "payer_name", "payer_kind", "payer_sequence", "patient_id",
        "rendering_npi", "service_date_from",
        _c("service_date_to", "date", "Last date of service on the claim"),
        _c("frequency_code", "string", "CLM05-3 claim frequency: 1 original, 7 replacement, 8 void"),
        "status",
        _c("payer_icn", "string", "The payer's claim control number (ICN) from the 277CA or 835"),
        _c("submitted_on", "date", "Day the claim was first submitted (its 837P file was written); for a "
                                   "crossover record, the day the primary's 835 forwarded it; empty for a claim "
                                   "not sent (held, ready, batched, quarantined, voided), which is not in AR"),
        _c("crossover_of", "string", "For a crossover record: the primary claim the payer forwarded"),
        "billed", "expected_allowed", "allowed_835", *POSTED_NAMES, "awaiting_payer", "open_balance",
        _c("written_off", "money", "Insurance-side write-offs the practice posted (account ledger)"),
        _c("denied_open", "money", "Denied amount still open (denied less insurance write-offs)"),
        _c("patient_paid", "money", "Patient payments applied to this claim's patient responsibility"),
        _c("patient_written_off", "money", "Patient responsibility written off (small balance, hardship, QMB)"),
        _c("to_secondary", "money", "Patient responsibility a secondary payer is to pay first"),
        _c("patient_balance", "money", "Patient responsibility the patient still owes"),
        _c("claim_level", "money", "Amounts posted on the claim without a service line (claim-level CAS/"
                                   "payments and write-offs)"),
        "adjudicated",
        _c("remittances", "integer", "Number of 835 transactions that posted to the claim"),
        "days_outstanding",
        _c("last_event", "string", "Latest event: claim built, 837P written or sent, 999, 277CA or 835"),
        _c("last_event_at", "datetime", "When the latest event happened (UTC)"),
        _c("superseded_by", "string", "The resubmission, replacement or void that took this claim's place"),
    ),
    "reconciliation_lines": _table(
        "claim_id", "line_number",
        _c("charge_id", "string", "The charge entry's id from the extract"),
        _c("line_control_number", "string", "REF*6R line item control number sent on the line"),
        "practice_id", "payer_id", "patient_id", "rendering_npi",
        _c("service_date", "date", "Date of service of the line"),
        "cpt",
        _c("modifiers", "string", "Procedure modifiers, colon separated (GO:KX)"),
        _c("units", "integer", "Units billed (SV104)"),
        "status", "billed", "expected_allowed", "allowed_835", *POSTED_NAMES, "awaiting_payer", "open_balance",
        "adjudicated", "days_outstanding",
    ),
    "payments": _table(
        "remittance_id", "file_name", "payer_key", "payer_name", "trace_number", "payment_method", "payment_date",
        _c("bpr_amount", "money", "BPR02 total payment (negative for a debit)"),
        _c("claims", "integer", "Claim payments (CLP) in the 835"),
        _c("matched", "integer", "Claim payments matched to our claims"),
        _c("unmatched", "integer", "Claim payments matching none of our claims"),
        _c("posted_payments", "money", "Payments posted from this 835 (matched or not, reversals included)"),
        _c("plb_total", "money", "Provider-level adjustments (PLB), as sent: positive reduces the payment"),
        _c("interest", "money", "Interest paid (PLB L6)"),
        _c("recoveries", "money", "Recoveries taken (PLB WO)"),
        _c("posted_net", "money", "posted_payments - plb_total"),
        _c("difference", "money", "bpr_amount - posted_net (0.00 when the deposit ties)"),
        _c("ties", "boolean", "The deposit ties to what was posted"),
        _c("contractual", "money", "Contractual adjustments posted from this 835"),
        _c("patient_responsibility", "money", "Patient responsibility posted from this 835"),
        _c("other_adjustments", "money", "Other adjustments posted from this 835"),
        _c("denied", "money", "Denials posted from this 835"),
    ),
    "unmatched_remittances": _table(
        _c("exception_id", "integer", "Warehouse id of the remittance exception"),
        "remittance_id", "trace_number", "payer_key", "payment_date",
        _c("kind", "string", "What did not match: claim_not_found, line_not_found, predetermination, ..."),
        _c("reference", "string", "The claim (CLP01) or line the 835 named"),
        _c("charge_amount", "money", "Charge the 835 reported"),
        _c("paid_amount", "money", "Amount the 835 paid"),
        _c("resolved", "boolean", "A person marked the exception resolved"),
        _c("message", "string", "What happened and what to do"),
    ),
    "held_remittances": _table(
        "remittance_id", "file_name", "payer_key", "payer_name", "trace_number", "payment_method", "payment_date",
        _c("payment_amount", "money", "BPR02 as sent"),
        _c("claims_paid_total", "money", "Sum of the CLP04 claim payments"),
        _c("provider_adjustment_total", "money", "Sum of the PLB amounts"),
        _c("status", "string", "held (does not balance) or duplicate (trace number already posted)"),
        _c("hold_reason", "string", "Why the transaction was not posted"),
    ),
    "ar_aging": _table(
        _c("balance_type", "string", "insurance (open balance) or patient (patient balance)"),
        "practice_id", "payer_id", "payer_name",
        *(_c(b, "money", f"Balance aged {b} days since first submission") for b in aging.BUCKETS),
        _c("total", "money", "Balance in all buckets"),
        _c("claims", "integer", "Claims with a balance"),
    ),
    "work_queue": _table(
        _c("item_id", "string", "<claim_id>:<reason>, the id `otedi ar item` takes"),
        "claim_id", "practice_id", "payer_id", "payer_name", "patient_id", "service_date_from", "status",
        _c("reason", "string", "The most urgent reason: approaching_timely_filing, rejected, denied, reversed, "
                               "no_835, underpaid, secondary_claim_due, patient_balance_due"),
        _c("reasons", "string", "Every reason the claim needs work, most urgent first"),
        _c("category", "string", "Denial root-cause category of a denied item"),
        _c("amount", "money", "Amount at stake for the reason"),
        _c("detail", "string", "What happened (codes, amounts, dates)"),
        _c("next_step", "string", "What to do next"),
        "filing_deadline",
        _c("days_to_deadline", "integer", "Days from the as-of date to the filing deadline (negative: passed)"),
        "days_outstanding",
        _c("priority", "integer", "1 is the most urgent reason"),
        _c("state", "string", "The state a biller set: open, in_progress, waiting, done"),
        _c("state_note", "string", "The biller's note with the state"),
        _c("state_by", "string", "Who set the state"),
    ),
    "denials": _table(
        "claim_id", "line_number", "practice_id", "payer_id", "payer_name", "patient_id", "rendering_npi",
        _c("service_date", "date", "Date of service of the denied line (the claim's, for a claim-level denial)"),
        "cpt",
        _c("group_code", "string", "CAS group code: CO, PI, OA"),
        _c("carc", "string", "Claim adjustment reason code"),
        _c("rarc", "string", "Remittance advice remark codes"),
        _c("denied", "money", "Net denied amount"),
        "category", "category_label", "correctable",
        _c("fix", "string", "What a biller should do for this root cause"),
        _c("adjudicated_month", "string", "YYYY-MM of the claim's first 835"),
        "filing_deadline",
        _c("recoverable", "boolean", "Correctable, within the filing limit and not replaced or voided"),
        _c("recoverable_amount", "money", "Denied amount still recoverable"),
    ),
    "denial_pareto": _table(
        _c("dimension", "string", "category, payer, cpt or rendering_provider"),
        _c("value", "string", "The category key, payer id, CPT or NPI"),
        _c("label", "string", "The value as a person reads it (category label, payer name)"),
        _c("denied", "money", "Net denied amount"),
        "lines", "claims",
        _c("share", "rate", "Share of all denied dollars (0..1)"),
        _c("cumulative_share", "rate", "Running share, largest first (0..1)"),
    ),
    "denial_trend": _table(
        _c("month", "string", "YYYY-MM of first adjudication (the first 835's payment date)"),
        _c("adjudicated_claims", "integer", "Claims first adjudicated in the month"),
        _c("denied_claims", "integer", "Of them, claims with any denied amount"),
        _c("billed", "money", "Billed on the claims adjudicated in the month"),
        _c("denied", "money", "Denied on them"),
        _c("claim_rate", "rate", "denied_claims / adjudicated_claims"),
        _c("dollar_rate", "rate", "denied / billed"),
    ),
    "denial_recoverable": _table(
        "category", "category_label", "correctable",
        _c("denied", "money", "Net denied amount in the category"),
        _c("recoverable", "money", "Of it, still recoverable"),
    ),
    "kpis": _table(
        _c("kpi", "string", "clean_claim_rate, first_pass_resolution_rate, denial_rate, days_in_ar, "
                            "net_collection_rate, patient_collection_rate, write_off_rate, unapplied_credit"),
        _c("value", "measure", "The KPI (a ratio 0..1, days, or dollars: see unit); empty when there is nothing "
                               "to divide by"),
        _c("numerator", "string", "The numerator as computed (a count or dollars)"),
        _c("denominator", "string", "The denominator as computed"),
        _c("unit", "string", "ratio, days or dollars"),
        _c("definition", "string", "How the KPI is defined"),
    ),
}


def finance_tables(snap: Snapshot | None = None, *, today: date | None = None) -> dict[str, pd.DataFrame]:
    """Every finance table by name, computed from one snapshot (as the analytics modules give them)."""
    today = today or date.today()
    snap = snap or load_snapshot()
    claims = reconcile.claim_frame(snap, today)  # computed once: every table below is from these three frames
    lines = reconcile.line_frame(snap, today, claims)
    detail = denials.denial_frame(snap, claims, today)
    return {
        "reconciliation_claims": reconcile.claim_table(claims),
        "reconciliation_lines": reconcile.line_table(lines),
        "payments": reconcile.payments(snap),
        "unmatched_remittances": reconcile.unmatched_remittances(snap),
        "held_remittances": reconcile.held_remittances(snap),
        "ar_aging": money_out(aging.aging_frame(claims, today), [*aging.BUCKETS, "total"]),
        "work_queue": money_out(workqueue.work_queue_frame(snap, today, claims, lines, detail), ["amount"]),
        "denials": money_out(detail[denials.DETAIL_COLUMNS], ["denied", "recoverable_amount"]),
        "denial_pareto": money_out(pd.concat([denials.pareto_frame(detail, by) for by in denials.DIMENSIONS],
                                             ignore_index=True), ["denied"]),
        "denial_trend": money_out(denials.trend_frame(snap, claims), ["billed", "denied"]),
        "denial_recoverable": money_out(denials.recoverable_by_category(detail), ["denied", "recoverable"]),
        "kpis": pd.DataFrame(kpis.kpi_values(snap, claims, today)),
    }


# ---------------------------------------------------------------------------------------------------------------
# Values into their declared types


def _missing(value) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _typed(table: str, col: Column, value):
    """`value` as the Python value of its declared type (None when empty)."""
    if _missing(value):
        return None
    kind = col.type
    try:
        if kind == "string":
            if isinstance(value, float):  # a number where an id belongs has already lost its leading zeros
                raise TypeError("a float in a text column")
            return str(value)
        if kind in DECIMALS:
            precision, scale = DECIMALS[kind]
            if isinstance(value, float):
                raise TypeError("a float where an exact decimal belongs")
            amount = Decimal(str(value)).quantize(Decimal(1).scaleb(-scale))
            if abs(amount) >= Decimal(10) ** (precision - scale):
                raise ValueError(f"does not fit decimal({precision},{scale})")
            return amount
        if kind == "integer":
            if isinstance(value, (bool, float)) and not float(value).is_integer():
                raise TypeError("not a whole number")
            return int(value)
        if kind == "boolean":
            if isinstance(value, str):
                raise TypeError("text in a boolean column")
            return bool(value)
        if kind == "date":
            if isinstance(value, datetime):
                return value.date()
            if isinstance(value, date):
                return value
            return date.fromisoformat(str(value))
        if kind == "datetime":
            stamp = pd.Timestamp(value)
            stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
            return stamp.to_pydatetime()
    except (TypeError, ValueError, InvalidOperation) as exc:
        raise ExportError(f"export table {table}, column {col.name} ({kind}): value {value!r} does not fit: {exc}; "
                          f"fix the table or its schema in otedi/analytics/export.py SCHEMAS") from exc
    raise ExportError(f"export table {table}, column {col.name}: unknown type {kind!r}; use one of {TYPES}")


def conform(name: str, frame: pd.DataFrame) -> dict[str, list]:
    """The table's columns in schema order, each as a list of values of its declared type.

    A column the schema declares and the table lacks, or one the table has and the schema does not declare,
    is an ExportError: the exported shape changes only with the schema."""
    schema = SCHEMAS[name]
    declared = [c.name for c in schema]
    missing = [c for c in declared if c not in frame.columns]
    extra = [c for c in frame.columns if c not in declared]
    if missing or extra:
        raise ExportError(f"export table {name}: columns {missing} are declared but missing, {extra} are not "
                          f"declared; add them to (or remove them from) SCHEMAS in otedi/analytics/export.py")
    return {c.name: _typed_column(name, c, frame[c.name].tolist()) for c in schema}


# Values already of their declared type, which _typed would return unchanged: a million-row table skips ~50
# million conversions. Exact types only (a bool is not an int, a datetime not a date), never a missing value.
_AS_IS = {"string": str, "integer": int, "boolean": bool, "date": date}


def _typed_column(table: str, col: Column, values: list) -> list:
    kind = _AS_IS.get(col.type)
    if kind is not None:
        return [v if type(v) is kind else _typed(table, col, v) for v in values]
    if col.type in DECIMALS:
        precision, scale = DECIMALS[col.type]
        limit = Decimal(10) ** (precision - scale)
        return [v if type(v) is Decimal and v.is_finite() and v.as_tuple().exponent == -scale and -limit < v < limit
                else _typed(table, col, v) for v in values]
    return [_typed(table, col, v) for v in values]


# ---------------------------------------------------------------------------------------------------------------
# Writers


def _csv_text(col: Column, value) -> str:
    if value is None:
        return ""
    if col.type == "boolean":
        return "true" if value else "false"
    if col.type in ("date", "datetime"):
        return value.isoformat()
    if col.type == "string" and value.startswith(FORMULA_START):
        return "'" + value
    return str(value)


def _write_csv(path: Path, name: str, chunks: Iterable[dict[str, list]]) -> None:
    """One table's CSV from its rows in chunks (conform's columns), appended as they come."""
    schema = SCHEMAS[name]
    with open_private(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\r\n")  # RFC 4180; a CR or LF inside a text is quoted
        writer.writerow([c.name for c in schema])
        for columns in chunks:
            rows = zip(*(columns[c.name] for c in schema)) if schema else iter(())
            for row in rows:
                writer.writerow([_csv_text(c, v) for c, v in zip(schema, row)])


FRICTIONLESS_TYPES = {"string": "string", "money": "number", "rate": "number", "measure": "number",
                      "integer": "integer", "boolean": "boolean", "date": "date", "datetime": "datetime"}


def table_schema(name: str) -> dict:
    """The Frictionless Table Schema of one exported CSV (what datapackage.json holds for it)."""
    fields = []
    for c in SCHEMAS[name]:
        field = {"name": c.name, "type": FRICTIONLESS_TYPES[c.type], "description": c.description,
                 "otedi:type": c.type if c.type not in DECIMALS else "decimal(%d,%d)" % DECIMALS[c.type]}
        if c.type == "boolean":
            field["trueValues"], field["falseValues"] = ["true"], ["false"]
        fields.append(field)
    return {"fields": fields, "missingValues": [""]}


def datapackage(today: date) -> dict:
    """The Frictionless Data Package describing every exported CSV."""
    return {
        "profile": "tabular-data-package",
        "name": "otedi-finance",
        "title": f"otedi finance tables as of {today.isoformat()}",
        "description": "Reconciliation, payments, AR aging, work queue, denials and KPIs from one warehouse "
                       "snapshot. Text starting with = + - @, tab or CR carries a leading apostrophe.",
        "resources": [{"name": name, "path": f"{name}.csv", "profile": "tabular-data-resource", "format": "csv",
                       "mediatype": "text/csv", "encoding": "utf-8", "schema": table_schema(name)}
                      for name in SCHEMAS],
    }


def arrow_schema(name: str):
    """The Parquet (Arrow) schema of one exported table."""
    import pyarrow as pa

    types = {"string": pa.string(), "integer": pa.int64(), "boolean": pa.bool_(), "date": pa.date32(),
             "datetime": pa.timestamp("us", tz="UTC"),
             **{k: pa.decimal128(p, s) for k, (p, s) in DECIMALS.items()}}
    return pa.schema([pa.field(c.name, types[c.type], nullable=True, metadata={"description": c.description})
                      for c in SCHEMAS[name]], metadata={"otedi:table": name})


def _write_parquet(path: Path, name: str, chunks: Iterable[dict[str, list]]) -> None:
    """One table's Parquet file from its rows in chunks, a row group per chunk."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = arrow_schema(name)
    with open_private(path, "wb") as fh, pq.ParquetWriter(fh, schema) as writer:
        for columns in chunks:
            writer.write_table(pa.Table.from_arrays([pa.array(columns[f.name], type=f.type) for f in schema],
                                                    schema=schema))


XLSX_FORMATS = {"money": "#,##0.00", "rate": "0.00%", "integer": "0", "date": "yyyy-mm-dd",
                "datetime": "yyyy-mm-dd hh:mm:ss"}
TEXT = Column("text", "string", "")
ILLEGAL_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")  # what XML 1.0 cannot hold (openpyxl refuses it)


def _xlsx_cell(sheet, col: Column, value):
    from openpyxl.cell import WriteOnlyCell

    if value is not None and col.type == "datetime":
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    if isinstance(value, str):
        value = ILLEGAL_XML.sub("\N{REPLACEMENT CHARACTER}", value)
    cell = WriteOnlyCell(sheet, value=value)
    if isinstance(value, str):
        cell.data_type = "s"  # never "f": text that looks like a formula stays text
        if value.startswith(FORMULA_START):
            cell.quotePrefix = True  # Excel shows it as typed text and does not evaluate it, even after an edit
    elif value is not None and col.type in XLSX_FORMATS:
        cell.number_format = XLSX_FORMATS[col.type]
    return cell


def _write_xlsx(path: Path, tables: Iterable[tuple[str, Iterable[dict[str, list]]]], today: date) -> None:
    """The workbook from each table's rows in chunks (openpyxl's write-only mode keeps no sheet in memory)."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    book = Workbook(write_only=True)
    bold = Font(bold=True)

    def header(sheet, names):
        cells = []
        for n in names:
            cell = WriteOnlyCell(sheet, value=n)
            cell.data_type, cell.font = "s", bold
            cells.append(cell)
        return cells

    for name, chunks in tables:
        schema = SCHEMAS[name]
        sheet = book.create_sheet(name)
        sheet.freeze_panes = "A2"
        for i, c in enumerate(schema):
            width = 12 if c.type != "string" else 18 if c.name.endswith("_id") or c.name == "payer_name" else 14
            sheet.column_dimensions[_letter(i + 1)].width = width
        sheet.append(header(sheet, [c.name for c in schema]))
        for columns in chunks:
            for row in zip(*(columns[c.name] for c in schema)):
                sheet.append([_xlsx_cell(sheet, c, v) for c, v in zip(schema, row)])
    about = book.create_sheet("columns")
    about.append(header(about, ["table", "column", "type", "description"]))
    for name, schema in SCHEMAS.items():
        for c in schema:
            kind = c.type if c.type not in DECIMALS else "decimal(%d,%d)" % DECIMALS[c.type]
            about.append([_xlsx_cell(about, TEXT, v) for v in (name, c.name, kind, c.description)])
    about.append([])
    about.append([_xlsx_cell(about, TEXT, f"as of {today.isoformat()}; date-times are UTC")])
    with open_private(path, "wb") as fh:
        book.save(fh)


def _letter(n: int) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(n)


def export_tables(out_dir: str | Path, fmt: str = "csv", *, today: date | None = None,
                  snap: Snapshot | None = None, refresh: bool = True, progress: Progress = silent) -> list[Path]:
    """Write every finance table to `out_dir` in `fmt` (csv | parquet | xlsx); returns the paths written.

    csv: <table>.csv for each table, then datapackage.json (their schemas); parquet: <table>.parquet;
    xlsx: finance_tables.xlsx (a sheet per table and a `columns` sheet). Same columns and types every night.

    The files are the warehouse's finance_<table> tables (otedi.analytics.warehouse_tables), so a BI tool
    reading the warehouse and a person reading the files see the same figures. refresh=True (the default):
    refresh those tables as of `today` (from `snap`, else a snapshot read now) and write what that refresh
    committed. refresh=False: write the tables as the latest refresh left them (no write to the warehouse;
    `today`, when given, must be their as-of date; ExportError otherwise, or when never refreshed). `progress`
    hears of the refresh's stages and of the tables written (otedi.progress)."""
    from otedi.analytics import warehouse_tables  # it imports this module

    if fmt not in FORMATS:
        raise ValueError(f"export format {fmt!r}: use one of {', '.join(FORMATS)}")
    if refresh:
        frames, today = warehouse_tables.refresh_and_read(today=today or date.today(), snap=snap, progress=progress)
        tables = {name: conform(name, frame) for name, frame in frames.items()}
        return _write_files(private_dir(out_dir), fmt, ((n, [t]) for n, t in tables.items()), today, progress)
    if snap is not None:
        raise ValueError("export_tables(refresh=False) reads the warehouse's finance tables: a snapshot has no use")
    # the tables as the last refresh left them, streamed: a chunk of rows at a time from the warehouse to the file
    with warehouse_tables.finance_table_chunks(today=today) as (as_of, chunked):
        tables = ((name, (conform(name, frame) for frame in frames)) for name, frames in chunked)
        return _write_files(private_dir(out_dir), fmt, tables, as_of, progress)


def _write_files(out: Path, fmt: str, tables: Iterator[tuple[str, Iterable[dict[str, list]]]], today: date,
                 progress: Progress) -> list[Path]:
    """Write each table (its rows in chunks of conform's columns, in SCHEMAS order) as `fmt` into `out`."""
    written = []
    if fmt == "xlsx":
        progress("writing the xlsx workbook", 0, 1)
        _write_xlsx(out / WORKBOOK, tables, today)
        progress("writing the xlsx workbook", 1, 1)
        return [out / WORKBOOK]
    for name, chunks in counted(tables, f"writing {fmt} files (tables)", len(SCHEMAS), progress):
        path = out / f"{name}.{fmt}"
        (_write_csv if fmt == "csv" else _write_parquet)(path, name, chunks)
        written.append(path)
    if fmt == "csv":
        path = out / SCHEMA_FILE
        with open_private(path, "w", encoding="utf-8") as fh:
            json.dump(datapackage(today), fh, indent=2)
            fh.write("\n")
        written.append(path)
    return written


def neutralise_formulas(table: pd.DataFrame) -> pd.DataFrame:
    """Text cells a spreadsheet would run as a formula (starting with = + - @, tab or CR) get a leading
    apostrophe, as OWASP's CSV injection guidance says; numbers (Decimal, int, float, dates) stay as they are."""
    out = table.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = [("'" + v) if isinstance(v, str) and v.startswith(FORMULA_START) else v
                           for v in out[column]]
    return out
