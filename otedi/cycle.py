"""The main job: one full billing cycle on one machine.

extract -> load and scrub -> 837P files through the pyx12 gate -> send to the
clearinghouse drop -> (the built-in simulator answers) -> fetch -> 999/277CA
-> post 835s -> secondary claims now due (coded under the secondary payer's
rules, sent with the next batch) -> totals. Every step is idempotent, so
running the cycle again sends, loads, posts and builds nothing twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Callable

from sqlalchemy import func, select

from otedi.claims.resubmit import resubmit
from otedi.clearinghouse import IngestResult, fetch_inbound, ingest_fetched, send_ready_files
from otedi.outbound import OutboundResult, run_outbound
from otedi.transport import open_drop
from otedi.warehouse import models
from otedi.warehouse.db import in_own_transaction, session_scope

log = logging.getLogger(__name__)

ZERO = Decimal("0.00")
UNSENT = ("held", "ready", "batched", "quarantined", "voided")


@dataclass
class CycleResult:
    outbound: OutboundResult
    sent: int = 0
    fetched: int = 0
    ingest: IngestResult = field(default_factory=IngestResult)
    secondary_built: int = 0  # secondary claims the posted 835s made due (they go out with the next batch)
    totals: dict[str, object] = field(default_factory=dict)


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
    result.totals = cycle_totals()
    return result


def cycle_totals() -> dict[str, object]:
    """What has been sent and what became of it, from the claims and the ledger (claims we sent: not the
    crossover records of claims a payer forwarded, counted apart with what their payers paid)."""
    with session_scope() as session:
        sent = select(models.Claim).where(models.Claim.status.not_in(UNSENT),
                                          models.Claim.claim_file_id.is_not(None)).subquery()
        claims = {status: n for status, n in session.execute(
            select(sent.c.status, func.count()).group_by(sent.c.status))}
        billed = session.scalar(select(func.coalesce(func.sum(sent.c.total_charge), 0)))
        by_type = {kind: Decimal(amount) for kind, amount in session.execute(
            select(models.LedgerEntry.entry_type, func.sum(models.LedgerEntry.amount))
            .where(models.LedgerEntry.claim_pk.in_(select(sent.c.id)))
            .group_by(models.LedgerEntry.entry_type))}
        crossovers = select(models.ClaimLink.claim_pk).where(models.ClaimLink.kind == "crossover")
        crossed_over = session.scalar(select(func.count()).select_from(crossovers.subquery()))
        crossover_paid = session.scalar(select(func.coalesce(func.sum(models.LedgerEntry.amount), 0)).where(
            models.LedgerEntry.claim_pk.in_(crossovers), models.LedgerEntry.entry_type == "payment"))
    billed = Decimal(billed).quantize(Decimal("0.01"))
    posted = sum(by_type.values(), ZERO)
    return {
        "claims_sent": sum(claims.values()),
        "claims_accepted": sum(n for s, n in claims.items() if s not in ("submitted", "rejected")),
        "claims_rejected": claims.get("rejected", 0),
        "claims_by_status": dict(sorted(claims.items())),
        "billed": billed,
        "paid": by_type.get("payment", ZERO),
        "contractual": by_type.get("contractual", ZERO),
        "patient_responsibility": by_type.get("patient_responsibility", ZERO),
        "other_adjustments": by_type.get("other_adjustment", ZERO),
        "denied": by_type.get("denial", ZERO),
        "still_open": billed - posted,
        "claims_crossed_over": crossed_over,
        "crossover_paid": Decimal(crossover_paid).quantize(Decimal("0.01")),
    }
