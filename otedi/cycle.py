"""The main job: one full billing cycle on one machine.

extract -> load and scrub -> 837P files through the 837P gate -> send to the
clearinghouse drop -> (the built-in simulator answers) -> fetch -> 999/277CA
-> post 835s -> secondary claims now due (coded under the secondary payer's
rules, sent with the next batch) -> the summary (otedi.analytics.summary).
Every step is idempotent, so running the cycle again sends, loads, posts and
builds nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Callable

from otedi.analytics.summary import cycle_summary
from otedi.claims.resubmit import resubmit
from otedi.clearinghouse import IngestResult, fetch_inbound, ingest_fetched, send_ready_files
from otedi.outbound import OutboundResult, run_outbound
from otedi.transport import open_drop
from otedi.warehouse import models
from otedi.warehouse.db import in_own_transaction, session_scope

@dataclass
class CycleResult:
    outbound: OutboundResult
    sent: int = 0
    fetched: int = 0
    ingest: IngestResult = field(default_factory=IngestResult)
    secondary_built: int = 0  # secondary claims the posted 835s made due (they go out with the next batch)
    # the whole warehouse as of the cycle's date, by the one definition the report and the finance tables use
    summary: dict[str, object] = field(default_factory=dict)


def run_cycle(extract: str | Path | None, *, drop_url: str, out_dir: str | Path, archive_dir: str | Path,
              today: date, mapping: str | None = None,
              answer: Callable[[], object] | None = None,
              progress: Callable[[str], None] = lambda _: None) -> CycleResult:
    """One cycle as of `today`. `answer`, when given, plays the clearinghouse between send and fetch (the
    simulator). Every row the cycle writes - charges, claims, 837P files, submissions, fetched files,
    remittances, ledger and account entries, secondary claims - is stamped as of `today`
    (models.stamped_as_of: the wall clock moved onto that date), so a demo or back-dated run never shows
    negative days outstanding or a posting after its as-of date."""
    with models.stamped_as_of(today):
        return _run_cycle(extract, drop_url=drop_url, out_dir=out_dir, archive_dir=archive_dir, today=today,
                          mapping=mapping, answer=answer, progress=progress)


def _run_cycle(extract: str | Path | None, *, drop_url: str, out_dir: str | Path, archive_dir: str | Path,
               today: date, mapping: str | None, answer: Callable[[], object] | None,
               progress: Callable[[str], None]) -> CycleResult:
    progress("loading, coding and building claims")
    outbound = run_outbound(extract, out_dir, mapping=mapping, today=today)
    result = CycleResult(outbound=outbound)
    with open_drop(drop_url) as drop:
        progress("sending 837P files to the clearinghouse")
        with session_scope() as session:
            result.sent = len(send_ready_files(session, drop, today=today))
        if answer is not None:
            progress("the clearinghouse and payers answer")
            answer()
        progress("fetching acknowledgments and remittances")
        with session_scope() as session:
            result.fetched = len(fetch_inbound(session, drop, archive_dir, today=today))
    progress("loading 999/277CA and posting 835s")
    with session_scope() as session:
        result.ingest = ingest_fetched(session, today=today)
    progress("building the secondary claims the primary payers' 835s made due")
    # A concurrent twin building the same secondary claims makes this attempt lose on the claim id; the
    # retry then finds them built.
    result.secondary_built = len(in_own_transaction(
        lambda session: resubmit(session, today=today, claim_ids=(), secondary=True),
        what="secondary claims").built)
    result.summary = cycle_summary(today=today)
    return result
