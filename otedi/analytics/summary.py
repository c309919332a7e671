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
through the claim frame, or straight from the warehouse with one GROUP BY query (`_groups`: the claim frame's
columns written in SQL, summed per kind of claim record), so `otedi run` never builds a per-claim frame.
"""

from __future__ import annotations

from collections import Counter
from datetime import date

import pandas as pd
from sqlalchemy import case, exists, func, literal, select
from sqlalchemy.orm import Session, aliased

from otedi.accounts.balances import billed_to_a_secondary_query
from otedi.analytics.reconcile import ACCOUNT_COLUMNS, NOT_SUBMITTED, claim_frame
from otedi.analytics.snapshot import POSTED_TYPES, Snapshot, cents_sql, dollars
from otedi.warehouse import models
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
    """The claim records counted and summed (cents) per (in_ar, crossover, live, status), as reconcile.claim_frame
    defines each column: the ledger's sums per claim, the practice's account postings, the balances."""
    m = models
    claim = aliased(m.Claim)  # an alias: billed_to_a_secondary_query's own claim table stays uncorrelated
    le, ae = m.LedgerEntry, m.AccountEntry
    amount_c = cents_sql(le.amount)
    posted = (select(le.claim_pk, *[func.sum(case((le.entry_type == kind, amount_c), else_=0)).label(col)
                                    for kind, col in POSTED_TYPES.items()])
              .where(le.claim_pk.is_not(None)).group_by(le.claim_pk).subquery())
    account_c = cents_sql(ae.amount)
    account = (select(ae.claim_pk, *[func.sum(case(((ae.entry_type == kind) & (ae.side == side), account_c),
                                                   else_=0)).label(col)
                                     for (kind, side), col in ACCOUNT_COLUMNS.items()])
               .where(ae.claim_pk.is_not(None)).group_by(ae.claim_pk).subquery())
    link = m.ClaimLink
    crossover = exists().where(link.claim_pk == claim.id, link.kind == "crossover")
    superseded = exists().where(link.original_claim_pk == claim.id,
                                link.kind.in_(("resubmission", "replacement", "void")))
    in_ar = (m.ClaimFile.created_at.is_not(None) | crossover) & claim.status.not_in(NOT_SUBMITTED)

    def flag(condition):
        return case((condition, 1), else_=0)

    def sums(col):
        return func.coalesce(getattr(posted.c, col), 0)

    billed = cents_sql(claim.total_charge)
    paid, contractual, responsibility, other, denied = (sums(c) for c in POSTED_TYPES.values())
    written_off, patient_paid, patient_written_off = (func.coalesce(getattr(account.c, c), 0)
                                                      for c in ACCOUNT_COLUMNS.values())
    open_balance = billed - paid - contractual - responsibility - other - written_off
    denied_open = case((denied - written_off > 0, denied - written_off), else_=0)
    left = responsibility - patient_paid - patient_written_off
    forwarded = claim.id.in_(billed_to_a_secondary_query())
    per_claim = (select(
        flag(in_ar).label("in_ar"), flag(crossover).label("crossover"), flag(~superseded).label("live"),
        claim.status, billed.label("billed"), paid.label("paid"), contractual.label("contractual"),
        responsibility.label("patient_responsibility"), other.label("other_adjustments"), denied.label("denied"),
        written_off.label("written_off"), open_balance.label("open_balance"), denied_open.label("denied_open"),
        (open_balance - denied_open).label("awaiting_payer"), patient_paid.label("patient_paid"),
        patient_written_off.label("patient_written_off"), case((forwarded, left), else_=0).label("to_secondary"),
        case((forwarded, 0), else_=left).label("patient_balance"),
    ).select_from(claim).outerjoin(m.ClaimFile, m.ClaimFile.id == claim.claim_file_id)
        .outerjoin(posted, posted.c.claim_pk == claim.id).outerjoin(account, account.c.claim_pk == claim.id)
        .subquery())
    keys = [per_claim.c.in_ar, per_claim.c.crossover, per_claim.c.live, per_claim.c.status]
    return select(*keys, func.count(literal(1)).label("claims"),
                  *[func.sum(per_claim.c[col]).label(col) for col in MONEY_SUMS]).group_by(*keys)


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
