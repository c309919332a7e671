"""Findings that explain themselves: every edit, reject and hold is an Issue.

A biller reads them in the CLI, finance in the warehouse, operators in the
JSON summary. Each carries the rule id and its source, a severity and a
message a person can act on. Messages may name codes and ids; they never
carry patient names, birth dates or member ids.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum


class Severity(StrEnum):
    REJECT = "reject"  # the charge line is not billed
    HOLD = "hold"  # the claim is built but held for review, not sent
    WARNING = "warning"  # informational; the claim goes out


@dataclass(frozen=True)
class Issue:
    severity: Severity
    rule: str
    message: str
    source: str = ""
    charge_id: str | None = None
    claim_id: str | None = None
    row: int | None = None
    column: str | None = None
    value: str | None = None

    def as_dict(self) -> dict:
        d = asdict(self)
        d["severity"] = str(self.severity)
        return d
