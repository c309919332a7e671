"""Therapy amounts a patient already incurred this year at other providers, for the KX threshold.

Medicare's KX threshold counts every Part B therapy provider's allowed amounts (CWF), so a patient who had
OT elsewhere this year reaches it sooner than our claims show. The biller reads the year-to-date amounts
from the MAC portal or the eligibility response (HETS 271) and imports them as CSV:

    patient_id,year,bucket,amount,as_of,source
    P0000123,2026,OT,1840.25,2026-09-01,HETS 271

bucket is OT or PT_SLP (PT and SLP share one threshold). Amounts are year-to-date totals from other
providers: the latest as_of on or before a visit counts (coding/history.py). Each row is checked; a bad row
is rejected with its row number and reason and the others load. Importing the same report again adds
nothing (unique on patient, year, bucket, as_of and source), also when two imports run at once.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from otedi.errors import ExtractError
from otedi.issues import Issue, Severity
from otedi.warehouse import models

log = logging.getLogger(__name__)

COLUMNS = ("patient_id", "year", "bucket", "amount", "as_of", "source")
BUCKETS = ("OT", "PT_SLP")
SOURCE = "otedi.charges.therapy_usage (KX threshold: incurred amounts at all providers, BBA 2018 §50202)"
MAX = {"patient_id": 64, "source": 60}
KEY = ("patient_id", "year", "bucket", "as_of", "source")


@dataclass
class UsageLoadResult:
    file: str
    rows: int = 0
    loaded: int = 0
    already_known: int = 0
    rejected: int = 0
    issues: list[Issue] = field(default_factory=list)


def load_therapy_usage(session: Session, path: str | Path) -> UsageLoadResult:
    path = Path(path)
    result = UsageLoadResult(file=path.name)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
            if missing:
                raise ExtractError(str(path), f"missing column(s) {', '.join(missing)}; expected {', '.join(COLUMNS)}")
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ExtractError(str(path), f"cannot be read as UTF-8 CSV ({type(exc).__name__})") from None
    for number, row in enumerate(rows, start=2):
        result.rows += 1
        values, problem = _parse(row)
        if problem:
            result.rejected += 1
            result.issues.append(Issue(Severity.REJECT, "therapy-usage", f"{path.name} row {number}: {problem}",
                                       SOURCE, row=number))
            continue
        # INSERT ... ON CONFLICT DO NOTHING: the unique key decides, also against a concurrent twin.
        inserted = int(session.execute(_insert(session)(models.ExternalTherapyUsage).values(
            **values, file_name=path.name[:255], row_number=number, loaded_at=models.utcnow(),
        ).on_conflict_do_nothing(index_elements=KEY).returning(models.ExternalTherapyUsage.id)).first() is not None)
        result.loaded += inserted
        result.already_known += 1 - inserted
    log.info("therapy usage %s: %d rows, %d loaded, %d already known, %d rejected",
             path.name, result.rows, result.loaded, result.already_known, result.rejected)
    return result


def _insert(session: Session):
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def _parse(row: dict) -> tuple[dict, str | None]:
    text = {c: (row.get(c) or "").strip() for c in COLUMNS}
    for column in COLUMNS:
        if not text[column]:
            return {}, f"{column} is empty"
    for column, limit in MAX.items():
        if len(text[column]) > limit:
            return {}, f"{column} is longer than {limit} characters"
    if text["bucket"].upper() not in BUCKETS:
        return {}, f"bucket {text['bucket']!r} is not OT or PT_SLP (PT and SLP share one threshold)"
    try:
        year = int(text["year"])
        as_of = date.fromisoformat(text["as_of"])
        amount = Decimal(text["amount"])
    except (ValueError, InvalidOperation):
        return {}, "year must be a year, as_of a date (YYYY-MM-DD) and amount a number, e.g. 1840.25"
    if not amount.is_finite() or amount < 0 or amount != amount.quantize(Decimal("0.01")) or amount >= 10 ** 10:
        return {}, f"amount {text['amount']} is not an amount of money of 0 or more with at most 2 decimals"
    if as_of.year != year:
        return {}, f"as_of {as_of} is not in {year}: the amounts are year-to-date for that year"
    return {"patient_id": text["patient_id"], "year": year, "bucket": text["bucket"].upper(), "amount": amount,
            "as_of": as_of, "source": text["source"]}, None
