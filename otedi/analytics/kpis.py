"""Revenue-cycle KPIs, each computed from the warehouse with its numerator and denominator.

clean_claim_rate
    Claims accepted on first submission without edits or rejections / claims
    submitted that have a front-end outcome (a 999/277CA event or an 835).
    A claim is not clean when it had a HOLD edit when built (a biller had to
    intervene) or any 999/277CA rejection.
first_pass_resolution_rate
    Claims resolved by their first 835 without rework / claims adjudicated
    at least once. Resolved: the first CLP for the claim is not a denial
    (CLP02 4) and posted no denied amount, and the claim was never rejected.
    Patient responsibility does not count against it.
denial_rate
    Claims with any denied amount / claims adjudicated (see
    otedi.analytics.denials; the dollar rate is in the denial tables).
days_in_ar
    Insurance AR (the open balance of submitted claims, denials included) /
    average daily charges over the last 90 days (billed amount of submitted
    claims whose first date of service is within the 90 days up to `today`,
    divided by 90). Patient balances are left out (they are the patient's,
    collected by statements, not the payers').
net_collection_rate
    Payer payments / (charges - contractual adjustments), over adjudicated
    claims, net of reversals. PLB interest and recoveries are provider-level
    and not counted, nor are patient payments (patient_collection_rate): the
    rate measures what the payers paid of what they allowed to be collected.
patient_collection_rate
    Patient payments applied / patient responsibility billable to patients
    (adjudicated claims, less what went to a secondary payer), from the
    account ledger.
write_off_rate
    Write-offs (insurance and patient side) / billed, adjudicated claims.
unapplied_credit
    Patient money on account that no balance has used yet (less refunds).
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pandas as pd

from otedi.analytics.denials import rate_figures, ratio
from otedi.analytics.reconcile import claim_frame
from otedi.analytics.snapshot import Snapshot, dollars, load_snapshot

AR_WINDOW_DAYS = 90
DEFINITIONS = {
    "clean_claim_rate": "claims accepted on first submission with no hold edit and no 999/277CA rejection / "
                        "submitted claims with a front-end outcome",
    "first_pass_resolution_rate": "claims whose first 835 was not a denial and denied nothing, never rejected / "
                                  "claims adjudicated",
    "denial_rate": "adjudicated claims with any denied amount / claims adjudicated",
    "days_in_ar": "insurance open balance / (billed with date of service in the last 90 days / 90)",
    "net_collection_rate": "payer payments / (billed - contractual adjustments), adjudicated claims",
    "patient_collection_rate": "patient payments applied / patient responsibility not billed to a secondary, "
                               "adjudicated claims",
    "write_off_rate": "insurance and patient write-offs / billed, adjudicated claims",
    "unapplied_credit": "patient payments on account not applied to a balance, less refunds",
}


def kpi_values(snap: Snapshot, claims: pd.DataFrame, today: date) -> list[dict]:
    """Each KPI as {kpi, value, numerator, denominator, unit, definition} (money as Decimal)."""
    submitted = claims[claims["in_ar"]]
    events = snap.status_events
    rejected = set(events.loc[~events["accepted"].astype(bool), "claim_pk"])
    with_outcome = set(events["claim_pk"]) | set(snap.claim_payments["claim_pk"].dropna().astype("int64"))
    held = set(snap.hold_issues["claim_id"])
    front = submitted[submitted["claim_pk"].isin(with_outcome)]
    clean = front[~front["claim_pk"].isin(rejected) & ~front["claim_id"].isin(held)]

    cp = snap.claim_payments[snap.claim_payments["claim_pk"].notna()]
    first = cp[cp["status_code"] != "22"].sort_values("claim_payment_id").groupby("claim_pk").first()
    first_denials = snap.denial_entries.groupby("claim_payment_id")["amount_c"].sum()
    ever = submitted[submitted["claim_pk"].isin(first.index)]
    firsts = first.loc[ever["claim_pk"]]
    resolved = firsts[(firsts["status_code"] != "4")
                      & (firsts["claim_payment_id"].map(first_denials).fillna(0) == 0)
                      & ~firsts.index.isin(rejected)]

    rates = rate_figures(submitted)

    live = submitted[submitted["superseded_by"].isna()]
    ar_total = int(live["open_balance"].sum())
    window = submitted[(submitted["service_date_from"] > today - timedelta(days=AR_WINDOW_DAYS))
                       & (submitted["service_date_from"] <= today)]
    charges = int(window["billed"].sum())
    days = None if not charges else (Decimal(ar_total) * AR_WINDOW_DAYS / Decimal(charges)).quantize(
        Decimal("0.1"), rounding=ROUND_HALF_UP)

    adjudicated = submitted[submitted["adjudicated"]]
    paid = int(adjudicated["paid"].sum())
    collectible = int(adjudicated["billed"].sum() - adjudicated["contractual"].sum())

    patient_paid = int(adjudicated["patient_paid"].sum())
    patient_billable = int((adjudicated["patient_responsibility"] - adjudicated["to_secondary"]).sum())
    written_off = int((adjudicated["written_off"] + adjudicated["patient_written_off"]).sum())
    credit = int(snap.account.loc[snap.account["entry_type"] == "unapplied_credit", "amount_c"].sum())

    def row(kpi, value, numerator, denominator, unit):
        return {"kpi": kpi, "value": value, "numerator": str(numerator), "denominator": str(denominator),
                "unit": unit, "definition": DEFINITIONS[kpi]}

    return [
        row("clean_claim_rate", ratio(len(clean), len(front)), len(clean), len(front), "ratio"),
        row("first_pass_resolution_rate", ratio(len(resolved), len(ever)), len(resolved), len(ever), "ratio"),
        row("denial_rate", rates["claim_rate"], rates["denied_claims"], rates["adjudicated_claims"], "ratio"),
        row("days_in_ar", days, dollars(ar_total), f"{dollars(charges)}/{AR_WINDOW_DAYS}", "days"),
        row("net_collection_rate", ratio(paid, collectible), dollars(paid), dollars(collectible), "ratio"),
        row("patient_collection_rate", ratio(patient_paid, patient_billable), dollars(patient_paid),
            dollars(patient_billable), "ratio"),
        row("write_off_rate", ratio(written_off, int(adjudicated["billed"].sum())), dollars(written_off),
            dollars(int(adjudicated["billed"].sum())), "ratio"),
        row("unapplied_credit", dollars(credit), dollars(credit), "", "dollars"),
    ]


def kpi_table(snap: Snapshot | None = None, *, today: date | None = None) -> pd.DataFrame:
    """The KPI table: kpi, value (Decimal), numerator, denominator, unit, definition."""
    today = today or date.today()
    snap = snap or load_snapshot()
    return pd.DataFrame(kpi_values(snap, claim_frame(snap, today), today))
