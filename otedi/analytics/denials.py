"""Denial analysis: what payers refused, why, and what can still be recovered.

A denial is a ledger entry of type `denial` (a CO/PI/OA adjustment that is
not an expected contractual reduction, see mappings/remit/adjustment_posting.yaml),
netted with its reversals, on one of our claims (unmatched remittances are
in their own list). Each denial gets a root-cause category from its group
code, CARC and RARCs (mappings/remit/denial_categories.yaml). PR adjustments
(PR-119 included) post as patient responsibility and are not denials here.

- Denial rate (claims): claims with any denied amount / claims adjudicated
  (an 835 adjudication stands: more original CLPs than reversals).
- Denial rate (dollars): denied amount / billed amount of adjudicated claims.
- Pareto: denied dollars by category, payer, CPT and rendering provider,
  largest first, with each one's share and the running share.
- Trend: per month of first adjudication (the 835's payment date, BPR16).
- Recoverable: denied amounts in correctable categories whose payer filing
  limit (from the line's date of service) has not passed on `today`, on
  claims not already replaced or voided.
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import pandas as pd

from otedi.analytics.categories import classify
from otedi.analytics.reconcile import claim_frame
from otedi.analytics.snapshot import Snapshot, filing_deadline, load_snapshot, money_out

RATE = Decimal("0.0001")
DIMENSIONS = {"category": "category", "payer": "payer_id", "cpt": "cpt", "rendering_provider": "rendering_npi"}
DETAIL_COLUMNS = ["claim_id", "line_number", "practice_id", "payer_id", "payer_name", "patient_id", "rendering_npi",
                  "service_date", "cpt", "group_code", "carc", "rarc", "denied", "category", "category_label",
                  "correctable", "fix", "adjudicated_month", "filing_deadline", "recoverable", "recoverable_amount"]


def ratio(numerator, denominator) -> Decimal | None:
    """numerator / denominator to 4 places (None when there is nothing to divide by)."""
    if not denominator:
        return None
    return (Decimal(int(numerator)) / Decimal(int(denominator))).quantize(RATE, rounding=ROUND_HALF_UP)


def adjudication_month(snap: Snapshot) -> pd.Series:
    """claim_pk -> 'YYYY-MM' of its first original (non-reversal) 835 payment date."""
    cp = snap.claim_payments
    cp = cp[cp["claim_pk"].notna() & (cp["status_code"] != "22")].sort_values("claim_payment_id")
    first = cp.groupby("claim_pk").first()
    months = [(d if isinstance(d, date) else t.date()).strftime("%Y-%m")
              for d, t in zip(first["payment_date"], first["posted_at"])]
    return pd.Series(months, index=first.index.astype("int64"), dtype=object)


def denial_frame(snap: Snapshot, claims: pd.DataFrame, today: date) -> pd.DataFrame:
    """Net denied amounts (cents) per claim, line, group, CARC and RARC, classified."""
    d = snap.denial_entries[snap.denial_entries["claim_pk"].notna()].copy()
    keys = ["claim_pk", "claim_line_pk", "group_code", "carc", "rarc"]
    for col in keys[1:]:
        d[col] = d[col].fillna(-1 if col == "claim_line_pk" else "")
    net = d.groupby(keys, as_index=False).agg(denied=("amount_c", "sum"), entry_cpt=("cpt", "first"),
                                              entry_date=("service_date", "first"))
    net = net[net["denied"] != 0].copy()
    net["claim_pk"] = net["claim_pk"].astype("int64")
    net["claim_line_pk"] = net["claim_line_pk"].astype("int64")
    header = claims[["claim_pk", "claim_id", "practice_id", "payer_id", "payer_name", "claim_filing_code",
                     "patient_id", "rendering_npi", "service_date_from", "superseded_by"]]
    net = net.merge(header, on="claim_pk", how="left")
    lines = snap.lines[["claim_line_pk", "line_number", "cpt", "service_date"]]
    net = net.merge(lines, on="claim_line_pk", how="left")
    net["line_number"] = net["line_number"].astype("Int64")
    net["cpt"] = net["cpt"].fillna(net["entry_cpt"]).fillna("")
    net["service_date"] = [s if isinstance(s, date) else e if isinstance(e, date) else f
                           for s, e, f in zip(net["service_date"], net["entry_date"], net["service_date_from"])]
    found = [classify(g, c, r) for g, c, r in zip(net["group_code"], net["carc"], net["rarc"])]
    net["category"] = [f.category for f in found]
    net["category_label"] = [f.label for f in found]
    net["correctable"] = [f.correctable for f in found]
    net["fix"] = [f.fix for f in found]
    net["adjudicated_month"] = net["claim_pk"].map(adjudication_month(snap))
    net["filing_deadline"] = [filing_deadline(p, f, s) for p, f, s in
                              zip(net["payer_id"], net["claim_filing_code"], net["service_date"])]
    net["recoverable"] = [bool(c and today <= dl and sup is None and amt > 0) for c, dl, sup, amt in
                          zip(net["correctable"], net["filing_deadline"], net["superseded_by"], net["denied"])]
    net["recoverable_amount"] = net["denied"].where(net["recoverable"], 0).astype("int64")
    return net.sort_values(["claim_id", "line_number", "carc"], ignore_index=True)


def denial_detail(snap: Snapshot | None = None, *, today: date | None = None) -> pd.DataFrame:
    """Every net denial with its root cause, fix, filing deadline and whether it is recoverable."""
    today = today or date.today()
    snap = snap or load_snapshot()
    frame = denial_frame(snap, claim_frame(snap, today), today)
    return money_out(frame[DETAIL_COLUMNS], ["denied", "recoverable_amount"])


def rate_figures(claims: pd.DataFrame) -> dict:
    """Denial rate by claims and by dollars over adjudicated claims (money in cents)."""
    adjudicated = claims[claims["adjudicated"]]
    denied = adjudicated[adjudicated["denied"] > 0]
    return {"adjudicated_claims": len(adjudicated), "denied_claims": len(denied),
            "claim_rate": ratio(len(denied), len(adjudicated)),
            "adjudicated_billed": int(adjudicated["billed"].sum()), "denied_amount": int(adjudicated["denied"].sum()),
            "dollar_rate": ratio(adjudicated["denied"].sum(), adjudicated["billed"].sum())}


def pareto_frame(detail: pd.DataFrame, by: str) -> pd.DataFrame:
    """Denied dollars (cents) by one dimension, largest first, with share and cumulative share."""
    column = DIMENSIONS[by]
    table = detail.groupby(column, dropna=False).agg(denied=("denied", "sum"), lines=("denied", "size"),
                                                     claims=("claim_id", "nunique"))
    table = table.reset_index().rename(columns={column: "value"})
    table = table.sort_values(["denied", "value"], ascending=[False, True], ignore_index=True)
    total = int(table["denied"].sum())
    table["share"] = [ratio(v, total) for v in table["denied"]]
    table["cumulative_share"] = [ratio(v, total) for v in table["denied"].cumsum()]
    table.insert(0, "dimension", by)
    label_of = {"category": "category_label", "payer": "payer_name"}.get(by)
    labels = dict(zip(detail[column], detail[label_of])) if label_of else {}
    table.insert(2, "label", [labels.get(v, v) for v in table["value"]])
    return table


def denial_pareto(snap: Snapshot | None = None, *, by: str | None = None, today: date | None = None) -> pd.DataFrame:
    """Pareto of denied dollars by `by` (category | payer | cpt | rendering_provider), or all four stacked."""
    today = today or date.today()
    snap = snap or load_snapshot()
    detail = denial_frame(snap, claim_frame(snap, today), today)
    frames = [pareto_frame(detail, b) for b in ([by] if by else DIMENSIONS)]
    return money_out(pd.concat(frames, ignore_index=True), ["denied"])


def trend_frame(snap: Snapshot, claims: pd.DataFrame) -> pd.DataFrame:
    """Per month of first adjudication: claims adjudicated and denied, billed and denied cents, rates."""
    adjudicated = claims[claims["adjudicated"]].copy()
    adjudicated["month"] = adjudicated["claim_pk"].map(adjudication_month(snap))
    adjudicated["has_denial"] = adjudicated["denied"] > 0
    table = adjudicated.groupby("month").agg(adjudicated_claims=("claim_pk", "size"),
                                             denied_claims=("has_denial", "sum"), billed=("billed", "sum"),
                                             denied=("denied", "sum")).reset_index()
    table["denied_claims"] = table["denied_claims"].astype("int64")
    table["claim_rate"] = [ratio(d, a) for d, a in zip(table["denied_claims"], table["adjudicated_claims"])]
    table["dollar_rate"] = [ratio(d, b) for d, b in zip(table["denied"], table["billed"])]
    return table


def denial_trend(snap: Snapshot | None = None, *, today: date | None = None) -> pd.DataFrame:
    """Denial rate by month of adjudication."""
    snap = snap or load_snapshot()
    return money_out(trend_frame(snap, claim_frame(snap, today or date.today())), ["billed", "denied"])


def recoverable_by_category(detail: pd.DataFrame) -> pd.DataFrame:
    """Denied and recoverable cents per category."""
    table = detail.groupby(["category", "category_label", "correctable"], as_index=False).agg(
        denied=("denied", "sum"), recoverable=("recoverable_amount", "sum"))
    return table.sort_values(["recoverable", "denied"], ascending=False, ignore_index=True)
