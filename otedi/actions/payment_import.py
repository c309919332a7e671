"""Patient payments from a file (`otedi patient import FILE [--mapping NAME]`): a card processor's
settlement export or the EHR's payment export, one payment per row, posted by the same rules as
`otedi patient pay`. A row already posted (same patient, reference, amount and date) is recognised, a bad
row is rejected with its row number and reason, and the other rows post.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from sqlalchemy.orm import Session

from otedi import config
from otedi.actions.audit import ActionError, write_lock
from otedi.actions.patient_payments import pay

CANONICAL = ("practice_id", "patient_id", "amount", "method", "reference", "received_on", "claim_id")
REQUIRED = CANONICAL[:-1]


@dataclass
class ImportResult:
    file: str
    posted: int = 0
    already_posted: int = 0
    rejected: list[dict] = field(default_factory=list)  # {"row", "reason"}: ids and columns only


def _mapping(name: str | None) -> dict:
    if name is None:
        return {"columns": {c: c for c in CANONICAL}, "constants": {}, "dates": "%Y-%m-%d"}
    data = config.load_yaml(f"payments/{name}.yaml")
    return {"columns": data.get("columns", {}), "constants": data.get("constants", {}),
            "dates": data.get("dates", "%Y-%m-%d")}


def import_payments(session: Session, path: str | Path, *, who: str, mapping: str | None = None) -> ImportResult:
    """Post every payment row of `path`, each in a savepoint so one bad row never blocks the others."""
    path = Path(path)
    layout = _mapping(mapping)
    result = ImportResult(file=path.name)
    write_lock(session)  # one import at a time: its rows apply in order, a twin's after them
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in REQUIRED if c not in layout["constants"]
                   and layout["columns"].get(c) not in (reader.fieldnames or [])]
        if missing:
            raise ActionError(f"{path.name}: no column for {', '.join(missing)} (mapping {mapping or 'canonical'})")
        for number, raw in enumerate(reader, start=2):  # row 1 is the header
            row = {c: (raw.get(layout["columns"].get(c, ""), "") or "").strip() for c in CANONICAL}
            row.update({c: str(v) for c, v in layout["constants"].items()})
            try:
                with session.begin_nested():
                    done = pay(session, practice_id=row["practice_id"], patient_id=row["patient_id"],
                               amount=row["amount"], method=row["method"], reference=row["reference"],
                               received_on=_date(row["received_on"], layout["dates"]), who=who,
                               note=f"imported from {path.name} row {number}", claim_id=row["claim_id"] or None,
                               source=f"import:{path.name}"[:80])
            except ActionError as exc:
                result.rejected.append({"row": number, "reason": str(exc)})
                continue
            if done.status == "posted":
                result.posted += 1
            else:
                result.already_posted += 1
    return result


def _date(text: str, fmt: str) -> date:
    try:
        return datetime.strptime(text, fmt).date()
    except ValueError:
        raise ActionError(f"received_on {text!r} is not a date ({fmt})") from None
