"""Warehouse schema: SQLAlchemy 2 typed models. Every change is an Alembic migration.

Natural keys are unique constraints, so the database itself refuses a duplicate:
extract file sha256, charge_id, claim patient control number, line control
number, outbound file name and interchange control number.
Money is Numeric(12, 2) and Decimal in Python, never float.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

from sqlalchemy import Date, DateTime, ForeignKey, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

Money = Numeric(12, 2)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


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
    rendering_role: Mapped[str] = mapped_column(String(3))
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
    plan_of_care_certified_through: Mapped[date | None] = mapped_column(Date)
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
    claims: Mapped[int] = mapped_column(Integer)
    lines: Mapped[int] = mapped_column(Integer)
    total_charge: Mapped[Decimal] = mapped_column(Money)
    # ready (passed the pyx12 gate) | quarantined (failed it) | sent (uploaded)
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
    payer_claim_number: Mapped[str | None] = mapped_column(String(50))
    diagnoses: Mapped[str] = mapped_column(String(120))
    # held (an edit needs a biller) | ready (to batch) | batched (in a ready file) | quarantined | submitted
    status: Mapped[str] = mapped_column(String(16), index=True)
    claim_file_id: Mapped[int | None] = mapped_column(ForeignKey("claim_file.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    lines: Mapped[list[ClaimLine]] = relationship(back_populates="claim", order_by="ClaimLine.line_number")


class ClaimLine(Base):
    """A service line (837P loop 2400); one per charge, never two."""

    __tablename__ = "claim_line"
    __table_args__ = (UniqueConstraint("claim_pk", "line_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    claim_pk: Mapped[int] = mapped_column(ForeignKey("claim.id"), index=True)
    line_number: Mapped[int] = mapped_column(Integer)
    charge_id: Mapped[str] = mapped_column(ForeignKey("charge.charge_id"), unique=True)
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
