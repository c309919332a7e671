"""The summary figures: one definition for the CLI's cycle totals, the report's tiles and the finance tables.

Every figure here is a sum over the claim reconciliation (reconcile.claim_frame), so it is what the
`reconciliation_claims` table (and `finance_reconciliation_claims` in the warehouse) adds up to:

    submitted       a claim record in AR (`in_ar`): its 837P file was written and it is not held, ready,
                    batched (in a file not sent yet), quarantined or voided (reconcile.NOT_SUBMITTED), or it
                    is a crossover record (the primary payer forwarded it). Claims not submitted are not AR:
                    they are counted apart (`claims_not_sent`, `not_sent_billed`).
    billed ... denied, written_off, open_balance (= still_open), denied_open, awaiting_payer, patient_paid,
    patient_written_off, to_secondary, patient_balance
                    the reconciliation's columns summed over the submitted claim records (crossover records
                    included: their payer adjudicates them like a claim we sent), so
                    billed = paid + contractual + patient_responsibility + other_adjustments + written_off
                    + open_balance holds for the totals as it does for every claim.
    insurance_ar    open_balance of the submitted claims not superseded by a resubmission, replacement or
                    void (their successor carries the balance): the AR aging's insurance total and the
                    numerator of days in AR.
    patient_ar      patient_balance of the same claims: the AR aging's patient total.
    claims_sent     the submitted claims we sent (an 837P of ours: crossover records are not), with
                    claims_accepted (any status past submitted but rejected), claims_rejected and
                    claims_by_status; claims_crossed_over, crossover_billed and crossover_paid are the
                    crossover records' part of the totals above.

`figures(claims)` gives the sums in cents over any rows of the claim frame (the report's breakdowns use it
per practice, payer and provider); `cycle_summary` gives the whole summary as Decimal dollars: from a Snapshot
through the claim frame, or straight from the warehouse with one GROUP BY query (`_groups`: reconcile.claim_rows_sql,
the claim frame's columns in SQL, summed per kind of claim record), so `otedi run` never builds a per-claim frame.
"""

from __future__ import annotations

from collections import Counter
from datetime import date

import pandas as pd
from sqlalchemy import func, literal, select
from sqlalchemy.orm import Session

from otedi.analytics.reconcile import claim_frame, claim_rows_sql
from otedi.analytics.snapshot import Snapshot, dollars
from otedi.warehouse.db import session_scope

MONEY_SUMS = ["billed", "paid", "contractual", "patient_responsibility", "other_adjustments", "denied",
              "written_off", "open_balance", "denied_open", "awaiting_payer", "patient_paid", "patient_written_off",
              "to_secondary", "patient_balance"]
UNACCEPTED = ("submitted", "rejected")  # sent, and no payer or clearinghouse has accepted it (yet)


def figures(claims: pd.DataFrame) -> dict[str, int]:
    """Sums (integer cents) over rows of reconcile.claim_frame: `claims` (rows), each of MONEY_SUMS, and
    insurance_ar / patient_ar (the rows not superseded). The caller picks the rows (the report: the
    submitted claims of its range, per practice, payer or provider)."""
    live = claims[claims["superseded_by"].isna()]
    return {"claims": len(claims), **{c: int(claims[c].sum()) for c in MONEY_SUMS},
            "insurance_ar": int(live["open_balance"].sum()), "patient_ar": int(live["patient_balance"].sum())}


def summary_of(claims: pd.DataFrame) -> dict[str, object]:
    """The summary (money as Decimal) of a claim frame: see the module docstring for each figure."""
    submitted = claims[claims["in_ar"]]
    crossover = submitted["crossover_of"].notna()
    sent = submitted[~crossover]
    by_status = {str(k): int(v) for k, v in sent.groupby("status").size().items()}
    not_sent = claims[~claims["in_ar"]]
    fig = figures(submitted)
    crossed = submitted[crossover]
    return {
        "claims_sent": len(sent),
        "claims_accepted": sum(n for s, n in by_status.items() if s not in UNACCEPTED),
        "claims_rejected": by_status.get("rejected", 0),
        "claims_by_status": dict(sorted(by_status.items())),
        "claims_submitted": fig["claims"],
        **{c: dollars(fig[c]) for c in MONEY_SUMS},
        "still_open": dollars(fig["open_balance"]),
        "insurance_ar": dollars(fig["insurance_ar"]),
        "patient_ar": dollars(fig["patient_ar"]),
        "claims_crossed_over": len(crossed),
        "crossover_billed": dollars(int(crossed["billed"].sum())),
        "crossover_paid": dollars(int(crossed["paid"].sum())),
        "claims_not_sent": {str(k): int(v) for k, v in sorted(not_sent.groupby("status").size().items())},
        "not_sent_billed": dollars(int(not_sent["billed"].sum())),
    }


def cycle_summary(source: Snapshot | Session | None = None, *, today: date) -> dict[str, object]:
    """The summary of the whole warehouse as of `today` (money as Decimal), from a Snapshot, a session to
    read the warehouse in, or a new session (OTEDI_DATABASE_URL). What `otedi run` prints as its totals.
    No figure depends on `today` (only the frame's days outstanding do, which the summary does not sum)."""
    if isinstance(source, Snapshot):
        return summary_of(claim_frame(source, today))
    if source is None:
        with session_scope() as own:
            return cycle_summary(own, today=today)
    return _summary_of_groups([row._asdict() for row in source.execute(_groups())])


def _groups():
    """The claim records counted and summed (cents) per (in_ar, crossover, live, status)."""
    claims = claim_rows_sql()
    keys = [claims.c.in_ar, claims.c.crossover, claims.c.live, claims.c.status]
    return select(*keys, func.count(literal(1)).label("claims"),
                  *[func.sum(claims.c[col]).label(col) for col in MONEY_SUMS]).group_by(*keys)


def _summary_of_groups(groups: list[dict]) -> dict[str, object]:
    """summary_of's figures from _groups' rows (sums exact: integer cents; PostgreSQL sums bigint as numeric)."""
    def total(column, rows):
        return int(sum(r[column] for r in rows))

    submitted = [g for g in groups if g["in_ar"]]
    crossed = [g for g in submitted if g["crossover"]]
    live = [g for g in submitted if g["live"]]
    not_sent = [g for g in groups if not g["in_ar"]]
    by_status, not_sent_by_status = Counter(), Counter()
    for g in submitted:
        if not g["crossover"]:
            by_status[g["status"]] += g["claims"]
    for g in not_sent:
        not_sent_by_status[g["status"]] += g["claims"]
    return {
        "claims_sent": sum(by_status.values()),
        "claims_accepted": sum(n for s, n in by_status.items() if s not in UNACCEPTED),
        "claims_rejected": by_status.get("rejected", 0),
        "claims_by_status": dict(sorted(by_status.items())),
        "claims_submitted": total("claims", submitted),
        **{c: dollars(total(c, submitted)) for c in MONEY_SUMS},
        "still_open": dollars(total("open_balance", submitted)),
        "insurance_ar": dollars(total("open_balance", live)),
        "patient_ar": dollars(total("patient_balance", live)),
        "claims_crossed_over": total("claims", crossed),
        "crossover_billed": dollars(total("billed", crossed)),
        "crossover_paid": dollars(total("paid", crossed)),
        "claims_not_sent": dict(sorted(not_sent_by_status.items())),
        "not_sent_billed": dollars(total("billed", not_sent)),
    }
