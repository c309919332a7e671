"""The outbound job: extract -> charges -> coded claims -> validated 837P files.

Each step commits on its own and is idempotent, so a failed run can simply be
run again: a loaded extract is not loaded twice, a claimed charge is not coded
twice, a batched claim is not written twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from otedi.charges.load import LoadResult, load_extract
from otedi.claims.batch import FileResult, write_ready_claims
from otedi.claims.build import BuildResult, build_claims
from otedi.issues import Issue
from otedi.progress import Progress, silent
from otedi.warehouse.db import in_own_transaction, session_scope
from otedi.warehouse.models import stamped_as_of


@dataclass
class OutboundResult:
    load: LoadResult | None
    build: BuildResult
    files: list[FileResult] = field(default_factory=list)

    @property
    def issues(self) -> list[Issue]:
        return (self.load.issues if self.load else []) + self.build.issues

    def summary(self) -> dict:
        ready = [f for f in self.files if f.status == "ready"]
        return {
            "files": [f.path for f in ready],
            "quarantined": [f.path for f in self.files if f.status == "quarantined"],
            "claims": sum(f.claims for f in ready),
            "lines": sum(f.lines for f in ready),
            "held_claims": self.build.held,
            "rows": self.load.rows if self.load else 0,
            "rows_rejected": self.load.rejected if self.load else 0,
            "already_loaded": bool(self.load and self.load.already_loaded),
            "issues": [
                {"charge_id": i.charge_id, "claim_id": i.claim_id, "severity": str(i.severity), "rule": i.rule,
                 "message": i.message, **({"row": i.row, "column": i.column} if i.row is not None else {})}
                for i in self.issues
            ],
        }


def run_outbound(extract: str | Path | None, out_dir: str | Path, *, mapping: str | None = None,
                 today: date | None = None, progress: Progress = silent) -> OutboundResult:
    """Load `extract` (when given), code every pending charge, and write ready claims to out_dir.

    `today` (default: the current date) is the as-of date of the coding (timely filing, plan-of-care dates ...)
    and of every row and file it creates (models.stamped_as_of). `progress` hears of each step's count
    (otedi.progress)."""
    today = today or date.today()
    with stamped_as_of(today):
        return _run_outbound(extract, out_dir, mapping, today, progress)


def _run_outbound(extract: str | Path | None, out_dir: str | Path, mapping: str | None,
                  today: date, progress: Progress) -> OutboundResult:
    loaded = None
    # A concurrent twin loading the same file or coding the same charges makes this attempt lose on a
    # unique key; the retry then finds the work done (already loaded, nothing left to code).
    if extract is not None:
        loaded = in_own_transaction(
            lambda session: load_extract(session, extract, mapping, today=today, progress=progress),
            what=Path(extract).name)
    built = in_own_transaction(lambda session: build_claims(session, today=today, progress=progress),
                               what="build claims")
    with session_scope() as session:
        files = write_ready_claims(session, out_dir, today=today, progress=progress)
    return OutboundResult(load=loaded, build=built, files=files)
