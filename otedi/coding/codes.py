"""The OT CPT/HCPCS code table (mappings/codes/ot_codes.csv).

Each row says whether the code is timed (and the minutes in one unit),
whether it is "always" or "sometimes" therapy (GO required always, or when
furnished under a therapy plan of care), which primary code an add-on needs,
its Medicare status (A active, B bundled, C carrier priced, I invalid for
Medicare, R restricted), and the dates it is valid, with the replacement for
deleted codes.

It also says which disciplines (OT, PT, SLP) may bill the code, whether it is
an evaluation or re-evaluation (assistants may not furnish those: MBPM Pub
100-02 ch.15 §230.1/§230.2), whether it is an unlisted code held for
documentation (a description and report go with the claim), and whether it is
a DMEPOS item billed to the DME MAC for Medicare. Every column is required:
the shipped file is the only table, so a missing column or a bad value is a
ConfigError naming the file and line.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date
from functools import cached_property, lru_cache

from otedi import config
from otedi.errors import ConfigError

CODE_TABLE = "codes/ot_codes.csv"
DISCIPLINES = frozenset({"OT", "PT", "SLP"})
THERAPY_CLASSES = ("always", "sometimes", "none")
COLUMNS = ("code", "description", "timed", "unit_minutes", "therapy", "addon_to", "medicare_status",
           "effective_from", "effective_to", "replaced_by", "disciplines", "evaluation", "documentation", "dme",
           "source")


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
    disciplines: frozenset[str]  # the disciplines that may bill the code: a subset of OT PT SLP
    evaluation: bool  # an evaluation or re-evaluation: assistants may not furnish it
    needs_documentation: bool  # an unlisted code: held for the description and report that go with the claim
    dme: bool  # a DMEPOS item: Medicare claims go to the DME MAC, not the A/B MAC

    def valid_on(self, day: date) -> bool:
        return self.effective_from <= day and (self.effective_to is None or day <= self.effective_to)

    @property
    def is_therapy(self) -> bool:
        return self.therapy in ("always", "sometimes")


def _date(value: str) -> date | None:
    return date.fromisoformat(value) if value else None


def _yes_no(row: dict[str, str], column: str) -> bool:
    value = (row[column] or "").strip()
    if value not in ("yes", "no"):
        raise ValueError(f"{column} must be yes or no, not {value!r}")
    return value == "yes"


def _disciplines(value: str) -> frozenset[str]:
    found = frozenset((value or "").split())
    if not found:
        raise ValueError("disciplines is empty; list the disciplines that may bill the code (OT PT SLP)")
    unknown = sorted(found - DISCIPLINES)
    if unknown:
        raise ValueError(f"unknown discipline(s) {' '.join(unknown)} in disciplines; expected a subset of OT PT SLP")
    return found


class CodeTable(dict[str, CodeInfo]):
    """The code table by code, with the add-on codes of each primary code (read once with the table)."""

    def lookup(self, code: str) -> CodeInfo | None:
        return self.get(code.strip().upper())

    def addons(self, primary: str) -> frozenset[str]:
        """The add-on codes that name `primary` as their primary code."""
        return self._addons.get(primary, frozenset())

    @cached_property
    def _addons(self) -> dict[str, frozenset[str]]:
        found: dict[str, set[str]] = {}
        for code, info in self.items():
            if info.addon_to:
                found.setdefault(info.addon_to, set()).add(code)
        return {primary: frozenset(codes) for primary, codes in found.items()}


@lru_cache(maxsize=4)
def _load(root: str) -> CodeTable:
    path = config.mappings_dir() / CODE_TABLE
    table = CodeTable()
    lines: dict[str, int] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise ConfigError(f"{path} line 1: missing column(s) {', '.join(missing)}")
        for n, row in enumerate(reader, start=2):
            try:
                therapy = row["therapy"].strip()
                if therapy not in THERAPY_CLASSES:
                    raise ValueError(f"therapy must be one of {', '.join(THERAPY_CLASSES)}, not {therapy!r}")
                info = CodeInfo(
                    code=row["code"].strip().upper(),
                    description=row["description"],
                    timed=_yes_no(row, "timed"),
                    unit_minutes=int(row["unit_minutes"]) if row["unit_minutes"] else None,
                    therapy=therapy,
                    addon_to=row["addon_to"] or None,
                    medicare_status=row["medicare_status"] or None,
                    effective_from=_date(row["effective_from"]),
                    effective_to=_date(row["effective_to"]),
                    replaced_by=row["replaced_by"] or None,
                    source=row["source"],
                    disciplines=_disciplines(row["disciplines"]),
                    evaluation=_yes_no(row, "evaluation"),
                    needs_documentation=_yes_no(row, "documentation"),
                    dme=_yes_no(row, "dme"),
                )
            except (KeyError, ValueError, TypeError, AttributeError) as exc:
                raise ConfigError(f"{path} line {n}: {exc}") from None
            if info.timed and not info.unit_minutes:
                raise ConfigError(f"{path} line {n}: timed code {info.code} needs unit_minutes")
            if info.code in table:
                raise ConfigError(f"{path} line {n}: code {info.code} is already on line {lines[info.code]}")
            table[info.code] = info
            lines[info.code] = n
    for code, info in table.items():
        if info.addon_to and info.addon_to not in table:
            raise ConfigError(f"{path} line {lines[code]}: add-on code {code} names primary {info.addon_to}, "
                              "which is not in the table")
    return table


def code_table() -> CodeTable:
    return _load(str(config.mappings_dir()))


def lookup(code: str) -> CodeInfo | None:
    return code_table().lookup(code)
