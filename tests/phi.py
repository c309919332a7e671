"""The synthetic patients' PHI, and searching texts for it (issue 11 item 4).

The forms searched are the ones a leak would take: "First Last", "Last, First", the X12 name "Last*First",
birth dates as ISO and CCYYMMDD, member ids and street addresses."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd
from sqlalchemy import create_engine, text

from otedi.simulator.state import STATE_FILE

NAME_PAIRS = (("patient_last_name", "patient_first_name"), ("subscriber_last_name", "subscriber_first_name"))
DATES = ("patient_dob", "subscriber_dob")
IDS = ("member_id", "patient_address1")
MIN_LENGTH = 6  # shorter values (a 4-character test member id) match ordinary text by chance


def values_of(rows: Iterable[Mapping[str, object]]) -> set[str]:
    found: set[str] = set()
    for row in rows:
        for last_col, first_col in NAME_PAIRS:
            last, first = str(row.get(last_col) or ""), str(row.get(first_col) or "")
            if last and first:
                found |= {f"{first} {last}", f"{last}, {first}", f"{last}*{first}"}
        for col in DATES:
            value = str(row.get(col) or "")[:10]
            if value:
                found |= {value, value.replace("-", "")}
        found |= {str(row[col]) for col in IDS if row.get(col)}
    return {v for v in found if len(v) >= MIN_LENGTH}


def phi_values(extract: Path) -> set[str]:
    """From a charge extract (CSV)."""
    return values_of(pd.read_csv(extract, dtype=str).fillna("").to_dict("records"))


def phi_in_warehouse(url: str) -> set[str]:
    """From every charge a warehouse holds."""
    columns = [c for pair in NAME_PAIRS for c in pair] + list(DATES) + list(IDS)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(f"select {', '.join(columns)} from charge")).mappings().all()
    finally:
        engine.dispose()
    return values_of(rows)


def leaks(texts: Mapping[str, str], phi: set[str]) -> dict[str, list[str]]:
    """Where each text carries PHI: {where: the first few values found}; empty when clean."""
    found = {where: sorted(v for v in phi if v in body)[:3] for where, body in texts.items()}
    return {where: values for where, values in found.items() if values}


STORED_MESSAGES = {  # every free text the warehouse keeps about a problem
    "edit_issue": "message", "charge_reject": "message", "inbound_file": "message",
    "remit_exception": "message", "claim_status_event": "message", "ack_result": "errors", "claim_file": "errors",
}


def stored_messages(url: str) -> str:
    """The warehouse's messages (rejects, holds, quarantine notes, 999/277CA texts) and rejected values."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            parts = [str(v) for table, column in STORED_MESSAGES.items()
                     for (v,) in conn.execute(text(f"select {column} from {table} where {column} is not null"))]
            parts += [str(v) for (v,) in conn.execute(text("select value from charge_reject where value is not null"))]
    finally:
        engine.dispose()
    return "\n".join(parts)


def output_files(folder: Path) -> dict[str, str]:
    """What otedi writes for people to read under `folder`: quarantine notes, manifests, reports, exports.
    Not the payer simulator's state (the payer's side keeps its members' ids)."""
    paths = [*folder.rglob("*.errors.txt"), *folder.rglob("*.json"), *folder.rglob("*.html"),
             *(p for p in folder.rglob("*.csv") if {"exports", "reports"} & set(p.parts))]
    return {str(p.relative_to(folder)): p.read_text(encoding="utf-8", errors="replace") for p in paths
            if p.is_file() and p.name != STATE_FILE}
