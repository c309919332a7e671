"""One read of the warehouse for the finance tables, and money as integer cents.

Every analytics table is computed from one `Snapshot`: the claims, lines and
ledger as they are at one moment, read in one transaction, so the tables of
one report agree with each other. Money is carried as integer cents (int64)
inside the frames, where sums are exact, and turned back into Decimal for
the public tables (`money_out`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache

import pandas as pd
from sqlalchemy import BigInteger, case, cast, func, select
from sqlalchemy.orm import Session, aliased

from otedi import config
from otedi.coding.payers import payer_rules
from otedi.warehouse import models
from otedi.warehouse.db import session_scope

CENT = Decimal("0.01")
AR_RULES = "ar_rules.yaml"


def cents(value: Decimal | None) -> int:
    """Decimal dollars -> integer cents (0 for None)."""
    return 0 if value is None else int((Decimal(value).quantize(CENT) * 100).to_integral_value())


def money_text(value) -> str:
    """$1,234.56 / -$0.46 from cents or Decimal ("" when unknown)."""
    amount = value if isinstance(value, Decimal) else dollars(value)
    if amount is None:
        return ""
    return f"{'-' if amount < 0 else ''}${abs(amount):,.2f}"


def dollars(value) -> Decimal | None:
    """Integer cents -> Decimal dollars (None stays None)."""
    if value is None or pd.isna(value):
        return None
    return Decimal(int(value)).scaleb(-2)  # exact: 1234 -> 12.34, 0 -> 0.00


def money_out(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """A copy of `frame` with the cents columns given as Decimal dollars."""
    out = frame.copy()
    for col in columns:
        values = out[col]
        if values.dtype == "int64":  # no missing value: the fast path (a million claims have ~30 such columns)
            amounts = [Decimal(v).scaleb(-2) for v in values.tolist()]
        else:
            amounts = [dollars(v) for v in values]
        out[col] = pd.Series(amounts, index=out.index, dtype=object)
    return out


@dataclass(frozen=True)
class ArRules:
    expected_days_to_835: dict[str, int]
    approaching_timely_filing_days: int
    tolerance_amount_cents: int
    tolerance_percent: Decimal


@lru_cache(maxsize=4)
def _ar_rules(root: str) -> ArRules:
    data = config.load_yaml(AR_RULES)
    tol = data["underpayment_tolerance"]
    return ArRules(
        expected_days_to_835={k: int(v) for k, v in data["expected_days_to_835"].items()},
        approaching_timely_filing_days=int(data["approaching_timely_filing_days"]),
        tolerance_amount_cents=cents(Decimal(str(tol["amount"]))),
        tolerance_percent=Decimal(str(tol["percent"])),
    )


def ar_rules() -> ArRules:
    return _ar_rules(str(config.mappings_dir()))


@lru_cache(maxsize=512)
def payer_profile(payer_id: str, filing_code: str) -> tuple[str, str]:
    """(kind, payer rules name) for a payer id and claim filing code."""
    rules, _ = payer_rules(payer_id, filing_code)
    return rules.kind, rules.name


def filing_deadline(payer_id: str, filing_code: str, service_date: date) -> date:
    """Last day to file a claim for this date of service (payer rules, ot_billing_rules.md §2.8). Computed once
    per payer, filing code and date (a few thousand of them for a million claims)."""
    return _filing_deadline(str(config.mappings_dir()), payer_id, filing_code, service_date)


@lru_cache(maxsize=65536)
def _filing_deadline(root: str, payer_id: str, filing_code: str, service_date: date) -> date:
    rules, _ = payer_rules(payer_id, filing_code, on=service_date)
    return rules.timely_filing.deadline(service_date)


@dataclass
class Snapshot:
    claims: pd.DataFrame  # one row per claim, with its file and payer
    lines: pd.DataFrame  # one row per claim line
    posted_claims: pd.DataFrame  # per claim_pk: the ledger summed per entry type (cents; POSTED_TYPES), with
    #                              sequestration (CO-253) and claim_level (entries without a service line)
    posted_lines: pd.DataFrame  # per claim_line_pk: the same sums, with sequestration
    posted_remittances: pd.DataFrame  # per remittance_id: the same sums
    denial_entries: pd.DataFrame  # every ledger entry of type denial (amount_c in cents), with its remittance
    #                               and CLP status
    postings: pd.DataFrame  # the ledger per claim_pk (None: unmatched), remittance and posted_at, with its
    #                         payment_date, paid_c (its payment entries summed, cents) and payments (how many)
    claim_payments: pd.DataFrame  # every CLP of a posted remittance
    remittances: pd.DataFrame  # every 835 transaction (posted, held, duplicate)
    provider_adjustments: pd.DataFrame  # PLB items
    exceptions: pd.DataFrame  # remit_exception rows
    status_events: pd.DataFrame  # 999/277CA claim status events
    acks: pd.DataFrame  # 999 verdicts per claim file
    hold_issues: pd.DataFrame  # claim ids that had a HOLD edit when built
    secondary_patients: pd.DataFrame  # (practice_id, patient_id) with a secondary payer on a charge
    account: pd.DataFrame  # account entries of the practice's actions (patient payments, credits, write-offs)
    forwarded: frozenset[int]  # claims whose patient responsibility is a secondary payer's (accounts.balances)
    item_states: dict[str, dict]  # work item id -> the latest state a biller set (otedi.actions.work_items)
    appeals: dict[str, dict]  # claim id -> its latest appeal {on, deadline, file} (otedi.actions.appeals)


# ledger entry type -> its column in the sums (reconcile's and the finance tables' column names)
POSTED_TYPES = {"payment": "paid", "contractual": "contractual", "patient_responsibility": "patient_responsibility",
                "other_adjustment": "other_adjustments", "denial": "denied"}
SEQUESTRATION = "253"  # CO-253: taken from the payment after the allowed amount is set


def cents_sql(amount, *, null: bool = False):
    """A money column as integer cents in SQL (exact: SQLite keeps NUMERIC as REAL, which rounds back to the cent;
    PostgreSQL's numeric is exact); NULL as 0 unless `null` (as `cents` does)."""
    value = cast(func.round(amount * 100), BigInteger)
    return value if null else func.coalesce(value, 0)


def _posted(session: Session, key, amount_c, *, sequestration: bool = False, **extra) -> pd.DataFrame:
    """The ledger summed in SQL per `key` (rows with a key): one cents column per POSTED_TYPES entry type, and
    `sequestration` (CO-253 entries) and any `extra` sums; indexed by the key, int64."""
    le = models.LedgerEntry
    sums = [func.sum(case((le.entry_type == kind, amount_c), else_=0)).label(col) for kind, col in POSTED_TYPES.items()]
    if sequestration:
        sums.append(func.sum(case((le.carc == SEQUESTRATION, amount_c), else_=0)).label("sequestration"))
    sums += [value.label(name) for name, value in extra.items()]
    frame = _frame(session, select(key.label("key"), *sums).where(key.is_not(None)).group_by(key))
    return frame.set_index("key").rename_axis(key.key).astype("int64")


def _frame(session: Session, stmt, money: tuple[str, ...] = (), times: tuple[str, ...] = ()) -> pd.DataFrame:
    """The rows of `stmt` as a frame; `money`: integer cents columns (cents_sql) made int64 (empty ones too)."""
    result = session.execute(stmt)
    frame = pd.DataFrame.from_records(result.all(), columns=list(result.keys()), coerce_float=False)
    for col in money:
        frame[col] = frame[col].astype("int64")
    for col in times:  # SQLite gives naive UTC, PostgreSQL aware: make both aware UTC
        frame[col] = pd.to_datetime(frame[col], utc=True)
    return frame


def load_snapshot(session: Session | None = None) -> Snapshot:
    """Read everything the finance tables need (in the caller's session, or a new one)."""
    if session is None:
        with session_scope() as own:
            return load_snapshot(own)
    m = models
    # the payer's name as the claim's first charge gives it, when that charge is with the claim's payer (a
    # crossover record's lines may repeat the primary's charges: its payer is then the carrier the 835 named)
    payer_names = (select(m.ClaimLine.claim_pk, m.Charge.payer_name, m.Charge.payer_id)
                   .join(m.Charge, m.Charge.charge_id == m.ClaimLine.charge_id)
                   .where(m.ClaimLine.line_number == 1).subquery())
    primary = aliased(m.Claim)
    crossovers = (select(m.ClaimLink.claim_pk, primary.claim_id.label("crossover_of"))
                  .join(primary, primary.id == m.ClaimLink.original_claim_pk)
                  .where(m.ClaimLink.kind == "crossover").subquery())
    # A resubmission, replacement or void takes the original's place (a secondary claim does not).
    newer = aliased(m.Claim)
    superseding = (select(m.ClaimLink.original_claim_pk, newer.claim_id.label("superseded_by"))
                   .join(newer, newer.id == m.ClaimLink.claim_pk)
                   .where(m.ClaimLink.kind.in_(("resubmission", "replacement", "void"))).subquery())
    claims = _frame(session, select(
        m.Claim.id.label("claim_pk"), m.Claim.claim_id, m.Claim.practice_id, m.Claim.patient_id, m.Claim.payer_id,
        payer_names.c.payer_name, m.Claim.payer_sequence, m.Claim.claim_filing_code, m.Claim.rendering_npi,
        m.Claim.service_date_from, m.Claim.service_date_to, cents_sql(m.Claim.total_charge).label("total_charge"),
        cents_sql(m.Claim.expected_allowed, null=True).label("expected_allowed_c"),
        m.Claim.frequency_code, m.Claim.payer_claim_number, m.Claim.payer_icn, m.Claim.status,
        m.Claim.claim_file_id, m.Claim.created_at, m.ClaimFile.file_name, m.ClaimFile.status.label("file_status"),
        m.ClaimFile.created_at.label("file_created_at"), superseding.c.superseded_by, crossovers.c.crossover_of,
    ).outerjoin(m.ClaimFile, m.ClaimFile.id == m.Claim.claim_file_id)
        .outerjoin(payer_names, (payer_names.c.claim_pk == m.Claim.id) & (payer_names.c.payer_id == m.Claim.payer_id))
        .outerjoin(superseding, superseding.c.original_claim_pk == m.Claim.id)
        .outerjoin(crossovers, crossovers.c.claim_pk == m.Claim.id).order_by(m.Claim.id),
        money=("total_charge",), times=("created_at", "file_created_at"))
    claims["expected_allowed_c"] = claims["expected_allowed_c"].astype("Int64")
    kinds = [payer_profile(p, f) for p, f in zip(claims["payer_id"], claims["claim_filing_code"])]
    claims["payer_kind"] = [k for k, _ in kinds]
    # no charge with the claim's payer (a crossover to a carrier we have no charge for): the name the 835 gave
    claims["payer_name"] = [n if isinstance(n, str) and n else payer if isinstance(of, str) else rules_name
                            for n, payer, of, (_, rules_name) in zip(claims["payer_name"], claims["payer_id"],
                                                                    claims["crossover_of"], kinds)]

    lines = _frame(session, select(
        m.ClaimLine.id.label("claim_line_pk"), m.ClaimLine.claim_pk, m.ClaimLine.line_number, m.ClaimLine.charge_id,
        m.ClaimLine.line_control_number, m.ClaimLine.service_date, m.ClaimLine.cpt, m.ClaimLine.modifiers,
        m.ClaimLine.units, cents_sql(m.ClaimLine.charge_amount).label("charge_amount"),
        cents_sql(m.ClaimLine.expected_allowed, null=True).label("expected_allowed_c"),
    ).order_by(m.ClaimLine.claim_pk, m.ClaimLine.line_number), money=("charge_amount",))
    lines["expected_allowed_c"] = lines["expected_allowed_c"].astype("Int64")

    le = m.LedgerEntry
    amount_c = cents_sql(le.amount)
    posted_claims = _posted(session, le.claim_pk, amount_c, sequestration=True,
                            claim_level=func.sum(case((le.claim_line_pk.is_(None), amount_c), else_=0)))
    posted_lines = _posted(session, le.claim_line_pk, amount_c, sequestration=True)
    posted_remittances = _posted(session, le.remittance_id, amount_c)
    denial_entries = _frame(session, select(
        le.id.label("entry_id"), le.remittance_id, le.claim_payment_id, le.claim_pk, le.claim_line_pk,
        le.entry_type, le.group_code, le.carc, le.rarc, amount_c.label("amount_c"), le.cpt, le.service_date,
        le.reversal, le.posted_at, m.Remittance.payment_date, m.Remittance.trace_number, m.ClaimPayment.status_code,
    ).join(m.Remittance, m.Remittance.id == le.remittance_id)
        .join(m.ClaimPayment, m.ClaimPayment.id == le.claim_payment_id)
        .where(le.entry_type == "denial").order_by(le.id), money=("amount_c",), times=("posted_at",))
    # one row per claim, remittance and posting instant: what the report's posting dates and payments need
    postings = _frame(session, select(
        le.claim_pk, le.remittance_id, m.Remittance.payment_date, le.posted_at,
        func.sum(case((le.entry_type == "payment", amount_c), else_=0)).label("paid_c"),
        func.sum(case((le.entry_type == "payment", 1), else_=0)).label("payments"),
    ).join(m.Remittance, m.Remittance.id == le.remittance_id)
        .group_by(le.claim_pk, le.remittance_id, m.Remittance.payment_date, le.posted_at)
        .order_by(le.remittance_id, le.claim_pk, le.posted_at), money=("paid_c", "payments"), times=("posted_at",))

    claim_payments = _frame(session, select(
        m.ClaimPayment.id.label("claim_payment_id"), m.ClaimPayment.remittance_id, m.ClaimPayment.claim_pk,
        m.ClaimPayment.patient_control_number, m.ClaimPayment.status_code,
        cents_sql(m.ClaimPayment.paid_amount).label("paid_amount"),
        m.ClaimPayment.payer_claim_number, m.ClaimPayment.crossover_payer, m.Remittance.trace_number,
        m.Remittance.payment_date, m.Remittance.posted_at,
    ).join(m.Remittance, m.Remittance.id == m.ClaimPayment.remittance_id).order_by(m.ClaimPayment.id),
        money=("paid_amount",), times=("posted_at",))

    remittances = _frame(session, select(
        m.Remittance.id.label("remittance_id"), m.InboundFile.file_name, m.Remittance.transaction_control_number,
        m.Remittance.payer_key, m.Remittance.payer_name, m.Remittance.trace_number, m.Remittance.payment_method,
        m.Remittance.credit_debit, m.Remittance.payment_date,
        cents_sql(m.Remittance.payment_amount).label("payment_amount"),
        cents_sql(m.Remittance.claims_paid_total).label("claims_paid_total"),
        cents_sql(m.Remittance.provider_adjustment_total).label("provider_adjustment_total"), m.Remittance.claims,
        m.Remittance.matched, m.Remittance.unmatched, m.Remittance.status, m.Remittance.hold_reason,
        m.Remittance.posted_at,
    ).join(m.InboundFile, m.InboundFile.id == m.Remittance.inbound_file_id).order_by(m.Remittance.id),
        money=("payment_amount", "claims_paid_total", "provider_adjustment_total"), times=("posted_at",))

    provider_adjustments = _frame(session, select(
        m.ProviderAdjustment.remittance_id, m.ProviderAdjustment.reason_code, m.ProviderAdjustment.reference,
        cents_sql(m.ProviderAdjustment.amount).label("amount")).order_by(m.ProviderAdjustment.id), money=("amount",))

    exceptions = _frame(session, select(
        m.RemitException.id.label("exception_id"), m.RemitException.remittance_id, m.Remittance.trace_number,
        m.Remittance.payer_key, m.Remittance.payment_date, m.RemitException.kind, m.RemitException.reference,
        cents_sql(m.RemitException.charge_amount).label("charge_amount"),
        cents_sql(m.RemitException.paid_amount).label("paid_amount"), m.RemitException.resolved,
        m.RemitException.message,
    ).join(m.Remittance, m.Remittance.id == m.RemitException.remittance_id).order_by(m.RemitException.id),
        money=("charge_amount", "paid_amount"))

    status_events = _frame(session, select(
        m.ClaimStatusEvent.id.label("event_id"), m.ClaimStatusEvent.claim_pk, m.ClaimStatusEvent.source,
        m.ClaimStatusEvent.category_code, m.ClaimStatusEvent.status_code, m.ClaimStatusEvent.accepted,
        m.ClaimStatusEvent.message, m.ClaimStatusEvent.created_at,
    ).where(m.ClaimStatusEvent.claim_pk.is_not(None)).order_by(m.ClaimStatusEvent.id), times=("created_at",))

    acks = _frame(session, select(
        m.AckResult.claim_file_id, m.AckResult.status, m.InboundFile.received_at,
    ).join(m.InboundFile, m.InboundFile.id == m.AckResult.inbound_file_id)
        .where(m.AckResult.claim_file_id.is_not(None)).order_by(m.AckResult.id), times=("received_at",))

    hold_issues = _frame(session, select(m.EditIssue.claim_id).where(
        m.EditIssue.severity == "hold", m.EditIssue.claim_id.is_not(None)).distinct())

    secondary_patients = _frame(session, select(m.Charge.practice_id, m.Charge.patient_id).where(
        m.Charge.payer_sequence.in_(("S", "T"))).distinct())

    account = _frame(session, select(
        m.AccountEntry.id.label("entry_id"), m.AccountEntry.practice_id, m.AccountEntry.patient_id,
        m.AccountEntry.claim_pk, m.AccountEntry.entry_type, m.AccountEntry.side, m.AccountEntry.reason,
        cents_sql(m.AccountEntry.amount).label("amount_c"), m.AccountEntry.posted_at,
    ).order_by(m.AccountEntry.id), money=("amount_c",), times=("posted_at",))
    from otedi.accounts.balances import billed_to_a_secondary

    forwarded = frozenset(billed_to_a_secondary(session))

    from otedi.actions.appeals import appeals_filed
    from otedi.actions.work_items import states

    return Snapshot(claims, lines, posted_claims, posted_lines, posted_remittances, denial_entries, postings,
                    claim_payments, remittances, provider_adjustments, exceptions,
                    status_events, acks, hold_issues, secondary_patients, account, forwarded, states(session),
                    appeals_filed(session))
