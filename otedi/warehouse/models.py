"""Warehouse schema: SQLAlchemy 2 typed models. Every change is an Alembic migration.

Natural keys are unique constraints, so the database itself refuses a duplicate:
extract file sha256, charge_id, claim patient control number, line control
number, outbound file name and interchange control number.
Money is Numeric(12, 2) and Decimal in Python, never float.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Iterator

from sqlalchemy import Boolean, Date, DateTime, ForeignKey, Index, Integer, Numeric, String, Text, UniqueConstraint, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

Money = Numeric(12, 2)


log = logging.getLogger(__name__)

# The as-of date rows are stamped on (stamped_as_of) and the whole days the wall clock is moved by to reach it.
_AS_OF: ContextVar[tuple[date, timedelta] | None] = ContextVar("otedi_as_of", default=None)


def utcnow() -> datetime:
    """What a row's timestamp column (created_at, sent_at, fetched_at, posted_at ...) is stamped with: the wall
    clock (UTC), or inside `stamped_as_of(day)` that clock moved onto `day` (see as_of_timestamp)."""
    now = datetime.now(timezone.utc)
    as_of = _AS_OF.get()
    return now if as_of is None else _on_day(now, *as_of)


def as_of_timestamp(today: date | None, now: datetime | None = None) -> datetime:
    """The timestamp of something done `now` (default: the wall clock) in a run as of `today`: the current UTC
    time of day on `today` - the wall clock itself when `today` is the current UTC date; None: the wall clock."""
    now = now or datetime.now(timezone.utc)
    if today is None:
        return now
    return _on_day(now, today, _shift(today, now))


def _shift(today: date, now: datetime) -> timedelta:
    return timedelta(days=(today - now.astimezone(timezone.utc).date()).days)


def _on_day(now: datetime, today: date, shift: timedelta) -> datetime:
    # Never past the as-of date: a run that crosses midnight UTC stamps the rest of its rows at its last instant
    # (still in order, and still that date), never on the next day.
    last = datetime.combine(today, time.max, tzinfo=timezone.utc)
    return min(now.astimezone(timezone.utc) + shift, last)


@contextmanager
def stamped_as_of(today: date | None) -> Iterator[None]:
    """Stamp every row created inside (column defaults, and explicit `utcnow()`) as of `today`.

    The rule: the wall clock moved by whole days onto `today`, the shift fixed when the block starts, and never
    past the end of `today` (UTC). So one run's rows keep their order and all carry `today`'s date: a demo or
    back-dated run as of 2026-11-14 on a machine whose clock says 2026-12-01 files, sends and posts on
    2026-11-14. On the current UTC date the stamps are the wall clock. `today=None` changes nothing (outside a
    block: the wall clock).
    Nested blocks of the same date keep the outer block's shift. Rows are stamped when they are flushed, so the
    block must cover the flush or commit that writes them."""
    current = _AS_OF.get()
    if today is None or (current is not None and current[0] == today):
        yield
        return
    now = datetime.now(timezone.utc)
    shift = _shift(today, now)
    if shift:
        log.info("rows are stamped as of %s (the wall clock moved %+d days)", today.isoformat(), shift.days)
    token = _AS_OF.set((today, shift))
    try:
        yield
    finally:
        _AS_OF.reset(token)


class Base(DeclarativeBase):
    pass


class ExtractFile(Base):
    """A charge-entry extract as loaded; the same content is never loaded twice."""

    __tablename__ = "extract_file"

    id: Mapped[int] = mapped_column(primary_key=True)
    file_name: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    mapping: Mapped[str | None] = mapped_column(String(64))
    rows: Mapped[int] = mapped_column(Integer)
    accepted: Mapped[int] = mapped_column(Integer)
    rejected: Mapped[int] = mapped_column(Integer)
    duplicates: Mapped[int] = mapped_column(Integer, default=0)
    loaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Charge(Base):
    """One charged service line from an extract (the canonical columns)."""

    __tablename__ = "charge"

    id: Mapped[int] = mapped_column(primary_key=True)
    charge_id: Mapped[str] = mapped_column(String(64), unique=True)
    extract_file_id: Mapped[int] = mapped_column(ForeignKey("extract_file.id"))
    row_number: Mapped[int] = mapped_column(Integer)
    # new -> claimed (on a claim line) | not_billed (rejected by coding)
    status: Mapped[str] = mapped_column(String(16), default="new", index=True)
    practice_id: Mapped[str] = mapped_column(String(32), index=True)
    service_date: Mapped[date] = mapped_column(Date, index=True)
    patient_id: Mapped[str] = mapped_column(String(64), index=True)
    patient_last_name: Mapped[str] = mapped_column(String(60))
    patient_first_name: Mapped[str] = mapped_column(String(35))
    patient_dob: Mapped[date] = mapped_column(Date)
    patient_sex: Mapped[str] = mapped_column(String(1))
    patient_address1: Mapped[str] = mapped_column(String(55))
    patient_city: Mapped[str] = mapped_column(String(30))
    patient_state: Mapped[str] = mapped_column(String(2))
    patient_zip: Mapped[str] = mapped_column(String(10))
    payer_id: Mapped[str] = mapped_column(String(80))
    payer_name: Mapped[str] = mapped_column(String(60))
    claim_filing_code: Mapped[str] = mapped_column(String(2))
    payer_sequence: Mapped[str] = mapped_column(String(1))
    member_id: Mapped[str] = mapped_column(String(80))
    group_number: Mapped[str | None] = mapped_column(String(50))
    relationship: Mapped[str] = mapped_column(String(2))
    subscriber_last_name: Mapped[str | None] = mapped_column(String(60))
    subscriber_first_name: Mapped[str | None] = mapped_column(String(35))
    subscriber_dob: Mapped[date | None] = mapped_column(Date)
    subscriber_sex: Mapped[str | None] = mapped_column(String(1))
    rendering_npi: Mapped[str] = mapped_column(String(10))
    rendering_last_name: Mapped[str] = mapped_column(String(60))
    rendering_first_name: Mapped[str] = mapped_column(String(35))
    rendering_role: Mapped[str] = mapped_column(String(4))  # OT OTA PT PTA SLP SLPA
    supervising_npi: Mapped[str | None] = mapped_column(String(10))
    supervising_last_name: Mapped[str | None] = mapped_column(String(60))
    supervising_first_name: Mapped[str | None] = mapped_column(String(35))
    referring_npi: Mapped[str] = mapped_column(String(10))
    referring_last_name: Mapped[str] = mapped_column(String(60))
    referring_first_name: Mapped[str] = mapped_column(String(35))
    place_of_service: Mapped[str] = mapped_column(String(2))
    cpt: Mapped[str] = mapped_column(String(5))
    modifiers: Mapped[str] = mapped_column(String(11), default="")  # as charted, ':'-joined
    minutes: Mapped[int | None] = mapped_column(Integer)
    units: Mapped[int | None] = mapped_column(Integer)
    charge_amount: Mapped[Decimal] = mapped_column(Money)
    dx_codes: Mapped[str] = mapped_column(String(120))  # '|'-joined, no dots
    prior_auth_number: Mapped[str | None] = mapped_column(String(50))
    initial_treatment_date: Mapped[date | None] = mapped_column(Date)
    plan_of_care_start: Mapped[date | None] = mapped_column(Date)
    plan_of_care_signed_date: Mapped[date | None] = mapped_column(Date)
    plan_of_care_certified_through: Mapped[date | None] = mapped_column(Date)
    progress_report_date: Mapped[date | None] = mapped_column(Date)
    msp_type: Mapped[str | None] = mapped_column(String(2))
    # a Qualified Medicare Beneficiary on this date of service (extract qmb Y): never billed Medicare cost
    # sharing (otedi.accounts.qmb)
    qmb: Mapped[bool] = mapped_column(Boolean, default=False)
    loaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ChargeReject(Base):
    """A row that could not be billed, with what is wrong and where."""

    __tablename__ = "charge_reject"

    id: Mapped[int] = mapped_column(primary_key=True)
    extract_file_id: Mapped[int] = mapped_column(ForeignKey("extract_file.id"), index=True)
    row_number: Mapped[int | None] = mapped_column(Integer)
    charge_id: Mapped[str | None] = mapped_column(String(64), index=True)
    column_name: Mapped[str | None] = mapped_column(String(64))
    value: Mapped[str | None] = mapped_column(String(255))
    rule: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ClaimFile(Base):
    """An outbound 837P interchange file; its control numbers are never reused."""

    __tablename__ = "claim_file"
    __table_args__ = (UniqueConstraint("clearinghouse_id", "interchange_control_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    file_name: Mapped[str] = mapped_column(String(255), unique=True)
    path: Mapped[str] = mapped_column(String(1024))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    practice_id: Mapped[str] = mapped_column(String(32))
    clearinghouse_id: Mapped[str] = mapped_column(String(32))
    interchange_control_number: Mapped[int] = mapped_column(Integer)
    group_control_number: Mapped[int] = mapped_column(Integer)
    transaction_control_number: Mapped[int] = mapped_column(Integer)
    # the envelope it was sent with (ISA06, ISA08, GS02, GS03): what a 999 for it is matched on
    isa_sender_id: Mapped[str | None] = mapped_column(String(15))
    isa_receiver_id: Mapped[str | None] = mapped_column(String(15))
    gs_sender_code: Mapped[str | None] = mapped_column(String(15))
    gs_receiver_code: Mapped[str | None] = mapped_column(String(15))
    claims: Mapped[int] = mapped_column(Integer)
    lines: Mapped[int] = mapped_column(Integer)
    total_charge: Mapped[Decimal] = mapped_column(Money)
    # ready (passed the 837P gate) | quarantined (failed it) | sent (uploaded)
    status: Mapped[str] = mapped_column(String(16), index=True)
    errors: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Claim(Base):
    """A claim (837P loop 2300). claim_id is the patient control number, CLM01 / 835 CLP01."""

    __tablename__ = "claim"

    id: Mapped[int] = mapped_column(primary_key=True)
    claim_id: Mapped[str] = mapped_column(String(17), unique=True)
    practice_id: Mapped[str] = mapped_column(String(32), index=True)
    patient_id: Mapped[str] = mapped_column(String(64), index=True)
    payer_id: Mapped[str] = mapped_column(String(80), index=True)
    payer_sequence: Mapped[str] = mapped_column(String(1))
    claim_filing_code: Mapped[str] = mapped_column(String(2))
    rendering_npi: Mapped[str] = mapped_column(String(10))
    service_date_from: Mapped[date] = mapped_column(Date)
    service_date_to: Mapped[date] = mapped_column(Date)
    total_charge: Mapped[Decimal] = mapped_column(Money)
    expected_allowed: Mapped[Decimal | None] = mapped_column(Money)
    frequency_code: Mapped[str] = mapped_column(String(1), default="1")
    payer_claim_number: Mapped[str | None] = mapped_column(String(50))  # REF*F8 when this claim replaces/voids
    payer_icn: Mapped[str | None] = mapped_column(String(50))  # the payer's claim number for this claim (277CA / CLP07)
    diagnoses: Mapped[str] = mapped_column(String(120))
    # held (an edit needs a biller) | ready (to batch) | batched (in a ready file) | quarantined | submitted
    # | rejected / accepted (999, 277CA) | paid | partially_paid | denied | reversed | forwarded | patient_balance
    status: Mapped[str] = mapped_column(String(16), index=True)
    claim_file_id: Mapped[int | None] = mapped_column(ForeignKey("claim_file.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    lines: Mapped[list[ClaimLine]] = relationship(back_populates="claim", order_by="ClaimLine.line_number")


class ClaimLine(Base):
    """A service line (837P loop 2400): one per charge per claim. A charge is billed on one original
    claim; only a replacement, void or corrected resubmission of that claim repeats it."""

    __tablename__ = "claim_line"
    __table_args__ = (UniqueConstraint("claim_pk", "line_number"),
                      UniqueConstraint("claim_pk", "charge_id", name="uq_claim_line_claim_pk_charge_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    claim_pk: Mapped[int] = mapped_column(ForeignKey("claim.id"), index=True)
    line_number: Mapped[int] = mapped_column(Integer)
    charge_id: Mapped[str] = mapped_column(ForeignKey("charge.charge_id"), index=True)
    line_control_number: Mapped[str] = mapped_column(String(30), unique=True)
    service_date: Mapped[date] = mapped_column(Date)
    cpt: Mapped[str] = mapped_column(String(5))
    modifiers: Mapped[str] = mapped_column(String(11))  # billed, ':'-joined
    units: Mapped[int] = mapped_column(Integer)
    charge_amount: Mapped[Decimal] = mapped_column(Money)
    expected_allowed: Mapped[Decimal | None] = mapped_column(Money)
    dx_pointers: Mapped[str] = mapped_column(String(11))

    claim: Mapped[Claim] = relationship(back_populates="lines")


class EditIssue(Base):
    """A coding/scrubbing finding on a charge or claim (reject, hold or warning)."""

    __tablename__ = "edit_issue"

    id: Mapped[int] = mapped_column(primary_key=True)
    charge_id: Mapped[str | None] = mapped_column(String(64), index=True)
    claim_id: Mapped[str | None] = mapped_column(String(17), index=True)
    severity: Mapped[str] = mapped_column(String(8))
    rule: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(Text, default="")
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ControlCounter(Base):
    """Last X12 control number handed out, per counter (e.g. 'isa:DEMOCH')."""

    __tablename__ = "control_counter"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_value: Mapped[int] = mapped_column(Integer)


class InboundFile(Base):
    """A file received from the clearinghouse (999, 277CA, 835); the same content is processed once."""

    __tablename__ = "inbound_file"

    id: Mapped[int] = mapped_column(primary_key=True)
    file_name: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    size: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(8))  # 835 | 999 | 277 | unknown
    # posted / loaded (all of it) | partly_held (some transactions held) | held | quarantined (malformed)
    status: Mapped[str] = mapped_column(String(16))
    message: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Remittance(Base):
    """One 835 transaction: one payment (BPR) with its trace number (TRN)."""

    __tablename__ = "remittance"
    __table_args__ = (
        # A payer's trace number posts once; held or duplicate copies are kept beside it.
        Index("uq_remittance_posted_trace", "payer_key", "trace_number", unique=True,
              postgresql_where=text("status = 'posted'"), sqlite_where=text("status = 'posted'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    inbound_file_id: Mapped[int] = mapped_column(ForeignKey("inbound_file.id"), index=True)
    transaction_control_number: Mapped[str] = mapped_column(String(9))
    payer_key: Mapped[str] = mapped_column(String(80))  # TRN03 (originating company), else the N1*PR id
    payer_name: Mapped[str | None] = mapped_column(String(60))
    trace_number: Mapped[str] = mapped_column(String(50))  # TRN02: EFT trace or check number
    payment_amount: Mapped[Decimal] = mapped_column(Money)  # BPR02
    credit_debit: Mapped[str] = mapped_column(String(1))  # BPR03: C or D
    payment_method: Mapped[str] = mapped_column(String(3))  # BPR04: ACH, CHK, NON, ...
    payment_date: Mapped[date | None] = mapped_column(Date)  # BPR16
    payee_npi: Mapped[str | None] = mapped_column(String(10))
    claims_paid_total: Mapped[Decimal] = mapped_column(Money)  # sum of CLP04
    provider_adjustment_total: Mapped[Decimal] = mapped_column(Money)  # sum of PLB amounts
    claims: Mapped[int] = mapped_column(Integer)
    matched: Mapped[int] = mapped_column(Integer)
    unmatched: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # posted | held | duplicate
    hold_reason: Mapped[str | None] = mapped_column(Text)
    posted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ClaimPayment(Base):
    """One CLP loop of a posted remittance, matched to our claim when we can."""

    __tablename__ = "claim_payment"
    __table_args__ = (UniqueConstraint("money_key", name="uq_claim_payment_money_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    remittance_id: Mapped[int] = mapped_column(ForeignKey("remittance.id"), index=True)
    claim_pk: Mapped[int | None] = mapped_column(ForeignKey("claim.id"), index=True)
    patient_control_number: Mapped[str] = mapped_column(String(38), index=True)  # CLP01
    status_code: Mapped[str] = mapped_column(String(2))  # CLP02: 1, 2, 3, 4, 19, 20, 21, 22, 23, 25
    charge_amount: Mapped[Decimal] = mapped_column(Money)  # CLP03
    paid_amount: Mapped[Decimal] = mapped_column(Money)  # CLP04
    patient_responsibility: Mapped[Decimal | None] = mapped_column(Money)  # CLP05
    payer_claim_number: Mapped[str | None] = mapped_column(String(50))  # CLP07
    crossover_payer: Mapped[str | None] = mapped_column(String(60))  # NM1*TT
    remark_codes: Mapped[str | None] = mapped_column(Text)  # MIA/MOA remarks, ':'-joined
    # The money itself, once: sha256 of payer, trace, CLP01, CLP02, CLP03, CLP04, CLP07 and its occurrence in
    # the remittance. Unique, so a payment cannot post twice even if a remittance's status is edited.
    money_key: Mapped[str | None] = mapped_column(String(64))


class LedgerEntry(Base):
    """Append-only: every posted amount. A reversal is a new negating entry, never an update."""

    __tablename__ = "ledger_entry"

    id: Mapped[int] = mapped_column(primary_key=True)
    remittance_id: Mapped[int] = mapped_column(ForeignKey("remittance.id"), index=True)
    claim_payment_id: Mapped[int] = mapped_column(ForeignKey("claim_payment.id"), index=True)
    claim_pk: Mapped[int | None] = mapped_column(ForeignKey("claim.id"), index=True)
    claim_line_pk: Mapped[int | None] = mapped_column(ForeignKey("claim_line.id"), index=True)
    # payment | contractual | patient_responsibility | other_adjustment | denial
    entry_type: Mapped[str] = mapped_column(String(24))
    group_code: Mapped[str | None] = mapped_column(String(2))  # CO, PR, OA, PI, CR
    carc: Mapped[str | None] = mapped_column(String(5))
    rarc: Mapped[str | None] = mapped_column(Text)  # ':'-joined LQ/MOA remarks (LQ repeats up to 99 times)
    amount: Mapped[Decimal] = mapped_column(Money)
    units: Mapped[Decimal | None] = mapped_column(Numeric(9, 2))
    cpt: Mapped[str | None] = mapped_column(String(80))  # SVC01-2 procedure code (X12 allows 48)
    service_date: Mapped[date | None] = mapped_column(Date)
    reversal: Mapped[bool] = mapped_column(Boolean, default=False)  # from a CLP02=22 reversal
    posted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ProviderAdjustment(Base):
    """PLB: provider-level adjustments against a payment (interest, recoveries, forwarding balances)."""

    __tablename__ = "provider_adjustment"

    id: Mapped[int] = mapped_column(primary_key=True)
    remittance_id: Mapped[int] = mapped_column(ForeignKey("remittance.id"), index=True)
    provider_id: Mapped[str] = mapped_column(String(50))
    fiscal_period_date: Mapped[date | None] = mapped_column(Date)
    reason_code: Mapped[str] = mapped_column(String(2))  # L6 interest, WO recovery, FB, 72, CS, ...
    reference: Mapped[str | None] = mapped_column(String(50))
    amount: Mapped[Decimal] = mapped_column(Money)  # as in PLB: positive reduces the payment


class RemitException(Base):
    """What could not be matched to our claims, with its amounts: work for a biller."""

    __tablename__ = "remit_exception"

    id: Mapped[int] = mapped_column(primary_key=True)
    remittance_id: Mapped[int] = mapped_column(ForeignKey("remittance.id"), index=True)
    claim_payment_id: Mapped[int] = mapped_column(ForeignKey("claim_payment.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))  # claim_not_found | line_not_found
    reference: Mapped[str] = mapped_column(String(80))  # CLP01, or the line's 6R / procedure and date
    charge_amount: Mapped[Decimal] = mapped_column(Money)
    paid_amount: Mapped[Decimal] = mapped_column(Money)
    message: Mapped[str] = mapped_column(Text)
    resolved: Mapped[bool] = mapped_column(Boolean, default=False)

    claim_payment: Mapped[ClaimPayment] = relationship()


class AckResult(Base):
    """A 999 verdict on one of our transaction sets (AK2/IK5)."""

    __tablename__ = "ack_result"

    id: Mapped[int] = mapped_column(primary_key=True)
    inbound_file_id: Mapped[int] = mapped_column(ForeignKey("inbound_file.id"), index=True)
    claim_file_id: Mapped[int | None] = mapped_column(ForeignKey("claim_file.id"), index=True)
    group_control_number: Mapped[str] = mapped_column(String(9))  # AK102 = our GS06
    transaction_control_number: Mapped[str] = mapped_column(String(9))  # AK202 = our ST02
    status: Mapped[str] = mapped_column(String(1))  # IK501: A accepted, E accepted with errors, R rejected
    errors: Mapped[str | None] = mapped_column(Text)  # IK3/IK4 in plain words


class ClaimStatusEvent(Base):
    """A claim-level status from a 277CA (or a 999 rejection of the claim's file)."""

    __tablename__ = "claim_status_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    inbound_file_id: Mapped[int] = mapped_column(ForeignKey("inbound_file.id"), index=True)
    claim_pk: Mapped[int | None] = mapped_column(ForeignKey("claim.id"), index=True)
    patient_control_number: Mapped[str] = mapped_column(String(50))  # 277CA TRN02 (AN 1-50)
    source: Mapped[str] = mapped_column(String(8))  # 277CA | 999
    category_code: Mapped[str | None] = mapped_column(String(3))  # STC01-1: A1, A2, A3, A7, ...
    status_code: Mapped[str | None] = mapped_column(String(30))  # STC01-2 (AN 1-30)
    accepted: Mapped[bool] = mapped_column(Boolean)
    payer_claim_number: Mapped[str | None] = mapped_column(String(50))  # REF*1K
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Submission(Base):
    """An 837P file handed to the clearinghouse: one remote name per file, never sent twice."""

    __tablename__ = "submission"

    id: Mapped[int] = mapped_column(primary_key=True)
    claim_file_id: Mapped[int] = mapped_column(ForeignKey("claim_file.id"), unique=True)
    clearinghouse_id: Mapped[str] = mapped_column(String(32))
    drop: Mapped[str] = mapped_column(String(255))  # where it went, without credentials
    remote_name: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # sent | already_sent (found there from an earlier attempt)
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class FetchedFile(Base):
    """A file downloaded from the clearinghouse inbox into the local archive."""

    __tablename__ = "fetched_file"
    __table_args__ = (UniqueConstraint("drop", "remote_name", "sha256"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    drop: Mapped[str] = mapped_column(String(255))
    remote_name: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(8))  # 999 | 277 | 835 | TA1 | unknown (ST01)
    archive_path: Mapped[str] = mapped_column(String(1024))
    fetched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ClaimLink(Base):
    """Which claim a resubmitted, replacement, void, secondary or crossover claim was built from.

    Written with the new claim, so the original shows what became of it and asking again builds
    nothing new: one new claim per original and kind.
    """

    __tablename__ = "claim_link"
    __table_args__ = (UniqueConstraint("original_claim_pk", "kind"),)

    KINDS = ("resubmission", "replacement", "void", "secondary", "crossover")
    # resubmission: a new original (frequency 1) for a claim rejected before adjudication
    # replacement: frequency 7 with REF*F8; void: frequency 8 with REF*F8
    # secondary: the claim to the next payer, carrying this claim's adjudication (2320/2330/2430)
    # crossover: the record of the claim the primary payer forwarded to the next payer itself (no 837P of
    # ours; the secondary payer's 835 posts to it, otedi.remit.crossover)

    id: Mapped[int] = mapped_column(primary_key=True)
    claim_pk: Mapped[int] = mapped_column(ForeignKey("claim.id"), unique=True)  # the claim built
    original_claim_pk: Mapped[int] = mapped_column(ForeignKey("claim.id"), index=True)
    kind: Mapped[str] = mapped_column(String(12))
    original_status: Mapped[str] = mapped_column(String(16))  # the original's status when the link was made
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    claim: Mapped[Claim] = relationship(foreign_keys=[claim_pk])
    original: Mapped[Claim] = relationship(foreign_keys=[original_claim_pk])


class ExternalTherapyUsage(Base):
    """Therapy amounts a patient already incurred this year at other providers (KX threshold bucket),
    as reported by a CSV import (MAC portal, HETS 271). Figures are year-to-date totals: the latest
    as_of per patient, year and bucket counts. Rows are never updated; a new report is a new row."""

    __tablename__ = "external_therapy_usage"
    __table_args__ = (UniqueConstraint("patient_id", "year", "bucket", "as_of", "source",
                                       name="uq_external_therapy_usage_report"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[str] = mapped_column(String(64), index=True)
    year: Mapped[int] = mapped_column(Integer)
    bucket: Mapped[str] = mapped_column(String(8))  # OT | PT_SLP
    amount: Mapped[Decimal] = mapped_column(Money)
    as_of: Mapped[date] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(60))
    file_name: Mapped[str] = mapped_column(String(255))
    row_number: Mapped[int] = mapped_column(Integer)
    loaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AuditEvent(Base):
    """One action a person took (release, void, write-off, accept, match ...): append-only (migration 0010)."""

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))  # who: --by, else OTEDI_USER, else the login name
    action: Mapped[str] = mapped_column(String(32))  # claim_release, claim_void, ...
    subject: Mapped[str] = mapped_column(String(80), index=True)  # what: "claim:<claim id>", "file:<name>" ...
    note: Mapped[str] = mapped_column(Text)  # why, in the person's words
    changes: Mapped[str] = mapped_column(Text)  # JSON: what it changed (ids, codes, statuses, amounts)


class PatientPayment(Base):
    """Money a patient paid, or was refunded (kind). One reference, amount and date per patient is one payment."""

    __tablename__ = "patient_payment"
    __table_args__ = (UniqueConstraint("practice_id", "patient_id", "kind", "reference", "amount", "received_on",
                                       name="uq_patient_payment_identity"),
                      Index("ix_patient_payment_patient", "practice_id", "patient_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[str] = mapped_column(String(32))
    patient_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(8))  # payment | refund
    method: Mapped[str] = mapped_column(String(8))  # cash | check | card | eft
    reference: Mapped[str] = mapped_column(String(50))  # check number, card authorisation, EFT trace
    amount: Mapped[Decimal] = mapped_column(Money)  # positive
    received_on: Mapped[date] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(80))  # cli | import:<file name>
    audit_event_id: Mapped[int | None] = mapped_column(ForeignKey("audit_event.id"))


class AccountAdjustment(Base):
    """A write-off a person asked for; above its reason's limit it waits for a second person (status)."""

    __tablename__ = "account_adjustment"

    id: Mapped[int] = mapped_column(primary_key=True)
    claim_pk: Mapped[int] = mapped_column(ForeignKey("claim.id"), index=True)
    reason: Mapped[str] = mapped_column(String(24))  # a key of mappings/ar/adjustment_reasons.yaml
    side: Mapped[str] = mapped_column(String(9))  # insurance | patient: which balance it writes off
    amount: Mapped[Decimal] = mapped_column(Money)
    status: Mapped[str] = mapped_column(String(16))  # posted | pending | declined
    requested_by: Mapped[str] = mapped_column(String(64))
    decided_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AccountEntry(Base):
    """What the practice's own actions post, append-only (migration 0011); ledger_entry holds what payers said.

    entry_type: patient_payment (applied to a claim's patient balance), unapplied_credit (+ overpaid,
    - applied later or refunded; no claim), write_off (side insurance: of the open balance; side patient:
    of the patient balance)."""

    __tablename__ = "account_entry"
    __table_args__ = (Index("ix_account_entry_patient", "practice_id", "patient_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    practice_id: Mapped[str] = mapped_column(String(32))
    patient_id: Mapped[str] = mapped_column(String(64))
    claim_pk: Mapped[int | None] = mapped_column(ForeignKey("claim.id"), index=True)
    entry_type: Mapped[str] = mapped_column(String(24))
    side: Mapped[str] = mapped_column(String(9))  # patient | insurance
    reason: Mapped[str | None] = mapped_column(String(24))
    amount: Mapped[Decimal] = mapped_column(Money)
    patient_payment_id: Mapped[int | None] = mapped_column(ForeignKey("patient_payment.id"))
    account_adjustment_id: Mapped[int | None] = mapped_column(ForeignKey("account_adjustment.id"))
    audit_event_id: Mapped[int] = mapped_column(ForeignKey("audit_event.id"))
    posted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
