"""The OT CPT/HCPCS code table (mappings/codes/ot_codes.csv).

Each row says whether the code is timed (and the minutes in one unit),
whether it is "always" or "sometimes" therapy (GO required always, or when
furnished under a therapy plan of care), which primary code an add-on needs,
its Medicare status (A active, B bundled, I invalid for Medicare), and the
dates it is valid, with the replacement for deleted codes.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from otedi import config
from otedi.errors import ConfigError

CODE_TABLE = "codes/ot_codes.csv"


@dataclass(frozen=True)
class CodeInfo:
    code: str
    description: str
    timed: bool
    unit_minutes: int | None  # minutes in one unit of a timed code (15 for most, 30 for 97550, 60 for 96125)
    therapy: str  # always | sometimes | none
    addon_to: str | None  # the primary code an add-on code needs on the same date
    medicare_status: str | None
    effective_from: date
    effective_to: date | None
    replaced_by: str | None
    source: str

    def valid_on(self, day: date) -> bool:
        return self.effective_from <= day and (self.effective_to is None or day <= self.effective_to)

    @property
    def is_therapy(self) -> bool:
        return self.therapy in ("always", "sometimes")


def _date(value: str) -> date | None:
    return date.fromisoformat(value) if value else None


@lru_cache(maxsize=4)
def _load(root: str) -> dict[str, CodeInfo]:
    path = config.mappings_dir() / CODE_TABLE
    table: dict[str, CodeInfo] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        for n, row in enumerate(csv.DictReader(fh), start=2):
            try:
                info = CodeInfo(
                    code=row["code"].strip().upper(),
                    description=row["description"],
                    timed=row["timed"].strip() == "yes",
                    unit_minutes=int(row["unit_minutes"]) if row["unit_minutes"] else None,
                    therapy=row["therapy"].strip(),
                    addon_to=row["addon_to"] or None,
                    medicare_status=row["medicare_status"] or None,
                    effective_from=_date(row["effective_from"]),
                    effective_to=_date(row["effective_to"]),
                    replaced_by=row["replaced_by"] or None,
                    source=row["source"],
                )
            except (KeyError, ValueError) as exc:
                raise ConfigError(f"{path} line {n}: {exc}") from None
            if info.timed and not info.unit_minutes:
                raise ConfigError(f"{path} line {n}: timed code {info.code} needs unit_minutes")
            table[info.code] = info
    return table


def code_table() -> dict[str, CodeInfo]:
    return _load(str(config.mappings_dir()))


def lookup(code: str) -> CodeInfo | None:
    return code_table().get(code.strip().upper())
