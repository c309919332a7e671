"""Accounts-receivable aging by payer and practice, for insurance and patient balances.

Age is counted in days from the claim's first submission (the day its 837P
file was written), to `today`, for both kinds of balance:

- insurance: the claim's open balance (denied + awaiting the payer, less
  write-offs, see otedi.analytics.reconcile), for claims submitted and not
  superseded by a replacement or void;
- patient: what the patient still owes of the patient responsibility the
  835s posted (deductible, coinsurance, copay), after patient payments and
  write-offs; a claim whose secondary claim was built is the secondary's.

Buckets: 0-30, 31-60, 61-90, 91-120 and over 120 days.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
from sqlalchemy import case, func, literal, select
from sqlalchemy.orm import Session

from otedi.analytics.reconcile import claim_frame, claim_rows_sql
from otedi.analytics.snapshot import Snapshot, money_out, payer_profile
from otedi.warehouse.db import session_scope

BUCKETS = ("0-30", "31-60", "61-90", "91-120", "120+")
KEYS = ["balance_type", "practice_id", "payer_id", "payer_name"]


def bucket(days: int) -> str:
    """The aging bucket of an age in days."""
    for upper, label in zip((30, 60, 90, 120), BUCKETS):
        if days <= upper:
            return label
    return BUCKETS[-1]


def balances(claims: pd.DataFrame, today: date) -> pd.DataFrame:
    """One row per claim and balance type with a balance (cents), its age and bucket."""
    live = claims[claims["in_ar"] & claims["superseded_by"].isna()]
    parts = []
    for kind, column in (("insurance", "open_balance"), ("patient", "patient_balance")):
        rows = live[live[column] != 0]
        parts.append(pd.DataFrame({
            "balance_type": kind, "claim_id": rows["claim_id"], "practice_id": rows["practice_id"],
            "payer_id": rows["payer_id"], "payer_name": rows["payer_name"], "balance": rows[column],
            "age_days": [(today - d).days for d in rows["submitted_on"]],
        }))
    out = pd.concat(parts, ignore_index=True)
    out["bucket"] = [bucket(d) for d in out["age_days"]]
    return out


def aging_frame(claims: pd.DataFrame, today: date) -> pd.DataFrame:
    """Buckets (cents) per balance type, practice and payer."""
    rows = balances(claims, today)
    table = rows.groupby([*KEYS, "bucket"], dropna=False)["balance"].sum().unstack("bucket")
    table = table.reindex(columns=list(BUCKETS)).fillna(0).astype("int64")
    table["total"] = table[list(BUCKETS)].sum(axis=1)
    table["claims"] = rows.groupby(KEYS, dropna=False)["claim_id"].nunique()
    return table.reset_index().sort_values(KEYS, ignore_index=True)


def ar_aging(snap: Snapshot | None = None, *, today: date | None = None) -> pd.DataFrame:
    """AR aging: one row per balance type (insurance | patient), practice and payer; a column per bucket. From a
    Snapshot through the claim frame, or else straight from the warehouse (aging_sql)."""
    today = today or date.today()
    if snap is None:
        with session_scope() as session:
            table = aging_sql(session, today)
    else:
        table = aging_frame(claim_frame(snap, today), today)
    return money_out(table, [*BUCKETS, "total"])


def aging_sql(session: Session, today: date) -> pd.DataFrame:
    """aging_frame's table from one GROUP BY query over reconcile.claim_rows_sql: the balances summed per
    practice, payer, filing code, first charge's payer name and day of submission (a few thousand rows for a
    million claims); the payer's name and the bucket are then given per group, as load_snapshot and balances
    give them per claim."""
    c = claim_rows_sql()
    keys = [c.c.practice_id, c.c.payer_id, c.c.claim_filing_code, c.c.charge_payer_name, c.c.crossover,
            c.c.submitted_on]
    rows = session.execute(select(
        *keys, func.sum(c.c.open_balance).label("insurance"), func.sum(c.c.patient_balance).label("patient"),
        func.sum(case((c.c.open_balance != 0, 1), else_=0)).label("insurance_claims"),
        func.sum(case((c.c.patient_balance != 0, 1), else_=0)).label("patient_claims"),
    ).where(c.c.in_ar == 1, c.c.live == 1).group_by(*keys)).all()
    parts = []
    for kind in ("insurance", "patient"):
        for r in rows:
            if getattr(r, f"{kind}_claims"):
                # the name as load_snapshot gives it: the first charge's, else the 835's carrier (a crossover
                # record), else the payer rules'
                name = r.charge_payer_name or (r.payer_id if r.crossover else
                                               payer_profile(r.payer_id, r.claim_filing_code)[1])
                parts.append({"balance_type": kind, "practice_id": r.practice_id, "payer_id": r.payer_id,
                              "payer_name": name, "bucket": bucket((today - r.submitted_on).days),
                              "balance": int(getattr(r, kind)), "claims": int(getattr(r, f"{kind}_claims"))})
    groups = pd.DataFrame(parts, columns=[*KEYS, "bucket", "balance", "claims"])
    table = groups.groupby([*KEYS, "bucket"], dropna=False)["balance"].sum().unstack("bucket")
    table = table.reindex(columns=list(BUCKETS)).fillna(0).astype("int64")
    table["total"] = table[list(BUCKETS)].sum(axis=1)
    table["claims"] = groups.groupby(KEYS, dropna=False)["claims"].sum()
    return table.reset_index().sort_values(KEYS, ignore_index=True)
