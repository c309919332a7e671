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

from otedi.analytics.reconcile import claim_frame
from otedi.analytics.snapshot import Snapshot, load_snapshot, money_out

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
    """AR aging: one row per balance type (insurance | patient), practice and payer; a column per bucket."""
    today = today or date.today()
    snap = snap or load_snapshot()
    return money_out(aging_frame(claim_frame(snap, today), today), [*BUCKETS, "total"])
