"""Reconciliation: what was billed against what the 835s posted, claim by claim and line by line.

Every amount comes from the append-only ledger (reversal entries included, so
a reversed payment nets to zero); only `billed` and `expected_allowed` come
from the claim as built.

The identities, for every claim (lines: the first, without written_off):

    billed = paid + contractual + patient_responsibility + other_adjustments + written_off + open_balance
    open_balance = denied_open + awaiting_payer
    patient_responsibility = patient_paid + patient_written_off + to_secondary + patient_balance

Denied amounts stay in the open balance until a person writes them off
(`written_off`: insurance-side write-offs, e.g. CO-29 timely filing, from
the account ledger of the practice's actions): a denial is still money the
payer may pay once the claim is corrected, resubmitted or appealed.
`denied` shows how much the payer refused, `denied_open` how much of that is
still open; `awaiting_payer` is the part no 835 has accounted for yet (not
adjudicated, or reversed and not re-adjudicated). `open_balance` is the
insurance balance. What the payer left to the patient is paid by the patient
(`patient_paid`), written off (`patient_written_off`), billed to a secondary
payer when a secondary claim was built from this one (`to_secondary`), or
still owed (`patient_balance`).

Lines carry what the 835 posted against them (SVC loops). Claim-level
adjustments and payments (CLP/CAS without a service line) and services the
835 returned that match none of our lines count on the claim only, so the
lines of a claim add up to the claim less its `claim_level` amount.

`allowed_835` is what the payer allowed as the ledger shows it: paid +
patient responsibility + sequestration (CO-253 is taken from the payment
after the allowed amount is set). It is empty until the claim is adjudicated.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
from sqlalchemy import Date, case, exists, func, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import aliased
from sqlalchemy.sql.functions import FunctionElement

from otedi.accounts.balances import billed_to_a_secondary_query
from otedi.analytics.snapshot import POSTED_TYPES, Snapshot, cents_sql, load_snapshot, money_out
from otedi.warehouse import models

POSTED = list(POSTED_TYPES.values())  # the ledger's sums per entry type (summed in SQL: snapshot._posted)
MONEY = ["billed", "expected_allowed", "allowed_835", *POSTED, "awaiting_payer", "open_balance"]
ACCOUNT = ["written_off", "denied_open", "patient_paid", "patient_written_off", "to_secondary", "patient_balance"]
ACCOUNT_COLUMNS = {("write_off", "insurance"): "written_off", ("patient_payment", "patient"): "patient_paid",
                   ("write_off", "patient"): "patient_written_off"}
# Never left for the payer, so not in AR: held for a biller, ready (no file yet), batched (in an 837P file not
# sent yet), quarantined (failed the gate) or voided. The one list every summary uses (otedi.analytics.summary).
NOT_SUBMITTED = ("held", "ready", "batched", "quarantined", "voided")
CLP_STATUS = {"1": "processed as primary", "2": "processed as secondary", "3": "processed as tertiary",
              "4": "denied", "19": "primary, forwarded", "20": "secondary, forwarded",
              "21": "tertiary, forwarded", "22": "reversal of previous payment", "23": "not our claim, forwarded",
              "25": "predetermination"}

CLAIM_COLUMNS = [
    "claim_id", "practice_id", "payer_id", "payer_name", "payer_kind", "payer_sequence", "patient_id",
    "rendering_npi", "service_date_from", "service_date_to", "frequency_code", "status", "payer_icn",
    "submitted_on", "crossover_of", "billed", "expected_allowed", "allowed_835", *POSTED, "awaiting_payer",
    "open_balance", *ACCOUNT, "claim_level", "adjudicated", "remittances", "days_outstanding", "last_event", "last_event_at",
    "superseded_by",
]
LINE_COLUMNS = [
    "claim_id", "line_number", "charge_id", "line_control_number", "practice_id", "payer_id", "patient_id",
    "rendering_npi", "service_date", "cpt", "modifiers", "units", "status", "billed", "expected_allowed",
    "allowed_835", *POSTED, "awaiting_payer", "open_balance", "adjudicated", "days_outstanding",
]


def _with_posted(frame: pd.DataFrame, posted: pd.DataFrame, key: str) -> pd.DataFrame:
    """`frame` with the ledger's sums per `key` (snapshot.posted_claims / posted_lines), the balances and
    allowed_835."""
    frame = frame.join(posted[[*POSTED, "sequestration"]], on=key)
    for col in [*POSTED, "sequestration"]:
        frame[col] = frame[col].fillna(0).astype("int64")
    frame["open_balance"] = frame["billed"] - frame[["paid", "contractual", "patient_responsibility",
                                                     "other_adjustments"]].sum(axis=1)
    frame["awaiting_payer"] = frame["open_balance"] - frame["denied"]
    allowed = frame["paid"] + frame["patient_responsibility"] + frame["sequestration"]
    frame["allowed_835"] = pd.array([a if adj else None for a, adj in zip(allowed, frame["adjudicated"])],
                                    dtype="Int64")
    return frame


def _with_account(c: pd.DataFrame, snap: Snapshot) -> pd.DataFrame:
    """The practice's own postings on each claim: write-offs, patient payments, and what is left."""
    rows = snap.account[snap.account["claim_pk"].notna()]
    rows = rows.assign(column=[ACCOUNT_COLUMNS.get(k) for k in zip(rows["entry_type"], rows["side"])])
    table = rows.dropna(subset=["column"]).groupby(["claim_pk", "column"])["amount_c"].sum().unstack("column")
    table = table.reindex(columns=list(ACCOUNT_COLUMNS.values())).fillna(0).astype("int64")
    table.index = table.index.astype("int64")
    for col in table.columns:
        c[col] = table[col].reindex(c["claim_pk"], fill_value=0).to_numpy()
    c["open_balance"] = c["open_balance"] - c["written_off"]
    c["denied_open"] = (c["denied"] - c["written_off"]).clip(lower=0)
    c["awaiting_payer"] = c["open_balance"] - c["denied_open"]
    left = c["patient_responsibility"] - c["patient_paid"] - c["patient_written_off"]
    forwarded = c["claim_pk"].isin(snap.forwarded)
    c["to_secondary"] = left.where(forwarded, 0).astype("int64")
    c["patient_balance"] = left.where(~forwarded, 0).astype("int64")
    return c


def _adjudication(snap: Snapshot) -> pd.DataFrame:
    """Per claim: 835s posted, and whether an adjudication stands (more originals than reversals)."""
    cp = snap.claim_payments[snap.claim_payments["claim_pk"].notna()]
    reversal = cp["status_code"] == "22"
    out = pd.DataFrame({
        "originals": cp[~reversal].groupby("claim_pk").size(),
        "reversals": cp[reversal].groupby("claim_pk").size(),
    }).fillna(0).astype("int64")
    out["adjudicated"] = out["originals"] > out["reversals"]
    out["remittances"] = cp.groupby("claim_pk")["remittance_id"].nunique()
    out.index = out.index.astype("int64")
    return out


def _last_events(snap: Snapshot) -> pd.DataFrame:
    """Latest of: claim built, 837P file written/sent, 999, 277CA, 835 - with a label."""
    c = snap.claims
    parts = [pd.DataFrame({"claim_pk": c["claim_pk"], "at": c["created_at"], "label": "claim built"})]
    filed = c[c["file_created_at"].notna()]
    parts.append(pd.DataFrame({
        "claim_pk": filed["claim_pk"], "at": filed["file_created_at"],
        "label": [f"837P {n} {'sent' if s == 'sent' else 'written'}" for n, s in zip(filed["file_name"],
                                                                                     filed["file_status"])]}))
    if len(snap.acks):
        acks = snap.acks.merge(c[["claim_pk", "claim_file_id"]], on="claim_file_id")
        parts.append(pd.DataFrame({"claim_pk": acks["claim_pk"], "at": acks["received_at"],
                                   "label": [f"999 {s}" for s in acks["status"]]}))
    ev = snap.status_events
    parts.append(pd.DataFrame({"claim_pk": ev["claim_pk"], "at": ev["created_at"], "label": [
        f"{src} {'accepted' if ok else 'rejected'}{' ' + cat + ':' + st if cat and st else ''}"
        for src, ok, cat, st in zip(ev["source"], ev["accepted"], ev["category_code"], ev["status_code"])]}))
    cp = snap.claim_payments[snap.claim_payments["claim_pk"].notna()]
    parts.append(pd.DataFrame({"claim_pk": cp["claim_pk"], "at": cp["posted_at"], "label": [
        f"835 {CLP_STATUS.get(s, 'status ' + s)} (trace {t})" for s, t in zip(cp["status_code"], cp["trace_number"])]}))
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame({"last_event_at": pd.Series(dtype="datetime64[ns, UTC]"),
                             "last_event": pd.Series(dtype=object)})
    events = pd.concat(parts, ignore_index=True)
    events["claim_pk"] = events["claim_pk"].astype("int64")
    events["at"] = pd.to_datetime(events["at"], utc=True)
    # ties (same instant): the later step of the cycle wins, which is the later part above
    events["order"] = range(len(events))
    last = events.sort_values(["at", "order"]).groupby("claim_pk").last()
    return last[["at", "label"]].rename(columns={"at": "last_event_at", "label": "last_event"})


def _days(frame: pd.DataFrame, today: date) -> list:
    return [(today - d).days if isinstance(d, date) and ob != 0 else None
            for d, ob in zip(frame["submitted_on"], frame["open_balance"])]


def claim_frame(snap: Snapshot, today: date) -> pd.DataFrame:
    """Claim reconciliation with money in integer cents (for the other analytics modules)."""
    c = snap.claims.copy()
    c["billed"] = c["total_charge"]
    c["expected_allowed"] = c["expected_allowed_c"]
    c = c.join(_adjudication(snap), on="claim_pk")
    c["adjudicated"] = c["adjudicated"].astype("boolean").fillna(False).astype(bool)
    c["remittances"] = c["remittances"].fillna(0).astype("int64")
    c = _with_posted(c, snap.posted_claims, "claim_pk")
    c = _with_account(c, snap)
    c["claim_level"] = snap.posted_claims["claim_level"].reindex(c["claim_pk"], fill_value=0).to_numpy() \
        + c["written_off"].to_numpy()  # write-offs are the claim's, not a line's
    # a crossover record was "submitted" by the primary payer: when its 835 forwarded the claim
    crossover = c["crossover_of"].notna()
    submitted = (c["file_created_at"].notna() | crossover) & ~c["status"].isin(NOT_SUBMITTED)
    c["in_ar"] = submitted
    c["submitted_on"] = [(t if isinstance(t, pd.Timestamp) else made).date() if ok else None
                         for t, made, ok in zip(c["file_created_at"], c["created_at"], submitted)]
    c["days_outstanding"] = pd.array(_days(c, today), dtype="Int64")
    c = c.join(_last_events(snap), on="claim_pk")
    return c


class utc_date(FunctionElement):
    """The UTC calendar day of a timestamp (the claim frame's `.date()` of a UTC time)."""
    type = Date()
    inherit_cache = True


@compiles(utc_date)
def _utc_date_sqlite(element, compiler, **kw):  # SQLite keeps UTC times as naive text
    return f"date({compiler.process(element.clauses, **kw)})"


@compiles(utc_date, "postgresql")
def _utc_date_postgresql(element, compiler, **kw):
    return f"CAST(timezone('UTC', {compiler.process(element.clauses, **kw)}) AS DATE)"


def claim_rows_sql():
    """claim_frame's per-claim columns the summaries add up, as one SELECT over the warehouse (a subquery):
    the ledger's and the account's sums per claim and the balances (cents), in_ar, crossover and live (0/1:
    not superseded) and submitted_on, with the keys practice_id, payer_id, claim_filing_code, status and
    charge_payer_name (the payer's name on the claim's first charge, when that charge is with its payer:
    snapshot.load_snapshot's payer_name before its fallbacks). For summaries that must not build the frame."""
    m = models
    claim = aliased(m.Claim)  # an alias: billed_to_a_secondary_query's own claim table stays uncorrelated
    le, ae, link = m.LedgerEntry, m.AccountEntry, m.ClaimLink
    amount_c = cents_sql(le.amount)
    posted = (select(le.claim_pk, *[func.sum(case((le.entry_type == kind, amount_c), else_=0)).label(col)
                                    for kind, col in POSTED_TYPES.items()])
              .where(le.claim_pk.is_not(None)).group_by(le.claim_pk).subquery())
    account_c = cents_sql(ae.amount)
    account = (select(ae.claim_pk, *[func.sum(case(((ae.entry_type == kind) & (ae.side == side), account_c),
                                                   else_=0)).label(col)
                                     for (kind, side), col in ACCOUNT_COLUMNS.items()])
               .where(ae.claim_pk.is_not(None)).group_by(ae.claim_pk).subquery())
    first_charge = (select(m.ClaimLine.claim_pk, m.Charge.payer_name, m.Charge.payer_id)
                    .join(m.Charge, m.Charge.charge_id == m.ClaimLine.charge_id)
                    .where(m.ClaimLine.line_number == 1).subquery())
    crossover = exists().where(link.claim_pk == claim.id, link.kind == "crossover")
    superseded = exists().where(link.original_claim_pk == claim.id,
                                link.kind.in_(("resubmission", "replacement", "void")))
    in_ar = (m.ClaimFile.created_at.is_not(None) | crossover) & claim.status.not_in(NOT_SUBMITTED)

    def flag(condition):
        return case((condition, 1), else_=0)

    billed = cents_sql(claim.total_charge)
    paid, contractual, responsibility, other, denied = (func.coalesce(posted.c[c], 0) for c in POSTED)
    written_off, patient_paid, patient_written_off = (func.coalesce(account.c[c], 0)
                                                      for c in ACCOUNT_COLUMNS.values())
    open_balance = billed - paid - contractual - responsibility - other - written_off
    denied_open = case((denied - written_off > 0, denied - written_off), else_=0)
    left = responsibility - patient_paid - patient_written_off
    forwarded = claim.id.in_(billed_to_a_secondary_query())
    return (select(
        claim.id.label("claim_pk"), claim.practice_id, claim.payer_id, claim.claim_filing_code, claim.status,
        first_charge.c.payer_name.label("charge_payer_name"), flag(in_ar).label("in_ar"),
        flag(crossover).label("crossover"), flag(~superseded).label("live"),
        case((in_ar, utc_date(func.coalesce(m.ClaimFile.created_at, claim.created_at)))).label("submitted_on"),
        billed.label("billed"), paid.label("paid"), contractual.label("contractual"),
        responsibility.label("patient_responsibility"), other.label("other_adjustments"), denied.label("denied"),
        written_off.label("written_off"), open_balance.label("open_balance"), denied_open.label("denied_open"),
        (open_balance - denied_open).label("awaiting_payer"), patient_paid.label("patient_paid"),
        patient_written_off.label("patient_written_off"), case((forwarded, left), else_=0).label("to_secondary"),
        case((forwarded, 0), else_=left).label("patient_balance"),
    ).select_from(claim).outerjoin(m.ClaimFile, m.ClaimFile.id == claim.claim_file_id)
        .outerjoin(posted, posted.c.claim_pk == claim.id).outerjoin(account, account.c.claim_pk == claim.id)
        .outerjoin(first_charge, (first_charge.c.claim_pk == claim.id) & (first_charge.c.payer_id == claim.payer_id))
        .subquery())


def line_frame(snap: Snapshot, today: date, claims: pd.DataFrame | None = None) -> pd.DataFrame:
    """Line reconciliation with money in integer cents."""
    claims = claim_frame(snap, today) if claims is None else claims
    header = claims[["claim_pk", "claim_id", "practice_id", "payer_id", "payer_kind", "claim_filing_code",
                     "patient_id", "rendering_npi", "status", "adjudicated", "submitted_on", "in_ar",
                     "superseded_by"]]
    lines = snap.lines.merge(header, on="claim_pk", how="left")
    lines["billed"] = lines["charge_amount"]
    lines["expected_allowed"] = lines["expected_allowed_c"]
    lines = _with_posted(lines, snap.posted_lines, "claim_line_pk")
    lines["days_outstanding"] = pd.array(_days(lines, today), dtype="Int64")
    return lines


def claim_reconciliation(snap: Snapshot | None = None, *, today: date | None = None) -> pd.DataFrame:
    """One row per claim (columns: see CLAIM_COLUMNS; money as Decimal)."""
    snap = snap or load_snapshot()
    return claim_table(claim_frame(snap, today or date.today()))


def claim_table(frame: pd.DataFrame) -> pd.DataFrame:
    """claim_reconciliation's table from a claim_frame already computed."""
    return money_out(frame[CLAIM_COLUMNS], [*MONEY, *ACCOUNT, "claim_level"]).reset_index(drop=True)


def line_reconciliation(snap: Snapshot | None = None, *, today: date | None = None) -> pd.DataFrame:
    """One row per claim line (columns: see LINE_COLUMNS; money as Decimal)."""
    snap = snap or load_snapshot()
    return line_table(line_frame(snap, today or date.today()))


def line_table(frame: pd.DataFrame) -> pd.DataFrame:
    """line_reconciliation's table from a line_frame already computed."""
    return money_out(frame[LINE_COLUMNS], MONEY).reset_index(drop=True)


PAYMENT_MONEY = ["bpr_amount", "posted_payments", "plb_total", "interest", "recoveries", "posted_net", "difference",
                 "contractual", "patient_responsibility", "other_adjustments", "denied"]


def payments(snap: Snapshot | None = None) -> pd.DataFrame:
    """One row per posted 835 payment (BPR/TRN) against what was posted from it.

    `bpr_amount` is BPR02 (negative for a debit, BPR03 = D); `posted_payments`
    is Σ ledger payment entries of the remittance (matched or not, reversals
    included); `plb_total` is Σ PLB amounts as sent (positive reduces the
    payment: recoveries; negative increases it: interest). The deposit ties
    when bpr_amount = posted_payments - plb_total (`difference` = 0).
    """
    snap = snap or load_snapshot()
    r = snap.remittances[snap.remittances["status"] == "posted"].copy()
    r["bpr_amount"] = [-a if cd == "D" else a for a, cd in zip(r["payment_amount"], r["credit_debit"])]
    by_type = snap.posted_remittances.rename(columns={"paid": "posted_payments"})
    r = r.join(by_type, on="remittance_id")
    plb = snap.provider_adjustments
    r["plb_total"] = plb.groupby("remittance_id")["amount"].sum().reindex(r["remittance_id"], fill_value=0).to_numpy()
    interest = plb[plb["reason_code"] == "L6"].groupby("remittance_id")["amount"].sum()
    recoveries = plb[plb["reason_code"] == "WO"].groupby("remittance_id")["amount"].sum()
    r["interest"] = -interest.reindex(r["remittance_id"], fill_value=0).to_numpy()
    r["recoveries"] = recoveries.reindex(r["remittance_id"], fill_value=0).to_numpy()
    for col in ["posted_payments", "contractual", "patient_responsibility", "other_adjustments", "denied"]:
        r[col] = r[col].fillna(0).astype("int64")
    r["posted_net"] = r["posted_payments"] - r["plb_total"]
    r["difference"] = r["bpr_amount"] - r["posted_net"]
    r["ties"] = r["difference"] == 0
    columns = ["remittance_id", "file_name", "payer_key", "payer_name", "trace_number", "payment_method",
               "payment_date", "bpr_amount", "claims", "matched", "unmatched", "posted_payments", "plb_total",
               "interest", "recoveries", "posted_net", "difference", "ties", "contractual",
               "patient_responsibility", "other_adjustments", "denied"]
    return money_out(r[columns], PAYMENT_MONEY).reset_index(drop=True)


def unmatched_remittances(snap: Snapshot | None = None) -> pd.DataFrame:
    """Claims and services an 835 paid that match none of ours (remit_exception), with their amounts."""
    snap = snap or load_snapshot()
    columns = ["exception_id", "remittance_id", "trace_number", "payer_key", "payment_date", "kind", "reference",
               "charge_amount", "paid_amount", "resolved", "message"]
    return money_out(snap.exceptions[columns], ["charge_amount", "paid_amount"]).reset_index(drop=True)


def held_remittances(snap: Snapshot | None = None) -> pd.DataFrame:
    """835 transactions not posted: unbalanced (held) or a trace number already posted (duplicate)."""
    snap = snap or load_snapshot()
    r = snap.remittances[snap.remittances["status"] != "posted"]
    columns = ["remittance_id", "file_name", "payer_key", "payer_name", "trace_number", "payment_method",
               "payment_date", "payment_amount", "claims_paid_total", "provider_adjustment_total", "status",
               "hold_reason"]
    return money_out(r[columns], ["payment_amount", "claims_paid_total", "provider_adjustment_total"]) \
        .reset_index(drop=True)
