"""Payer rules as data (mappings/payers/*.yaml): one file per payer and period.

Each file names its payer id, the claim filing codes it covers, its source and
the dates it applies, and how that payer wants OT billed: rounding method,
modifiers, KX threshold, prior authorization, visit limits, timely filing,
corrected-claim method, fee schedule and whether the CMS NCCI edits apply.
Files marked `fallback: true` are the profiles used for a payer id that has no
file of its own, chosen by claim filing code. `qmb_program: true` (default false)
marks a state's QMB / Medicare Savings Program payer: a patient whose secondary
charge is with it is a Qualified Medicare Beneficiary (otedi.accounts.qmb).
"""

from __future__ import annotations

import calendar
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, StrictBool, model_validator

from otedi import config
from otedi.errors import ConfigError
from otedi.coding.disciplines import DISCIPLINES_FILE, disciplines
from otedi.coding.units import ROUNDING_METHODS
from otedi.issues import Issue, Severity

PAYER_DIR = "payers"
TIMELY_FILING = "rules/timely_filing.yaml"
KINDS = ("medicare", "medicaid", "commercial")
CORRECTION_METHODS = ("reopening", "frequency_7_8")
NCCI_PROGRAMS = ("medicare", "medicaid")
DME_ACTIONS = ("bill", "hold")


@dataclass(frozen=True)
class VisitLimit:
    visits: int
    period: str  # calendar_year | rolling_days
    days: int | None = None  # window length for rolling_days

    def window(self, day: date) -> tuple[date, date]:
        """The dates whose visits count against the limit for a visit on `day`."""
        if self.period == "calendar_year":
            return date(day.year, 1, 1), date(day.year, 12, 31)
        return day - timedelta(days=self.days - 1), day

    def describe(self) -> str:
        return f"{self.visits} visits per calendar year" if self.period == "calendar_year" else \
            f"{self.visits} visits per {self.days} days"


@dataclass(frozen=True)
class TimelyFiling:
    months: int | None = None
    days: int | None = None

    def deadline(self, service_date: date) -> date:
        if self.days is not None:
            return service_date + timedelta(days=self.days)
        # Medicare: one calendar year from the date of service; Feb 29 -> Feb 28.
        month0 = service_date.month - 1 + self.months
        year, month = service_date.year + month0 // 12, month0 % 12 + 1
        return date(year, month, min(service_date.day, calendar.monthrange(year, month)[1]))

    def describe(self) -> str:
        return f"{self.days} days" if self.days is not None else f"{self.months} months"


@dataclass(frozen=True)
class PriorAuth:
    codes: str | tuple[str, ...]  # "therapy" = every therapy code, or a list of codes
    exempt: tuple[str, ...] = ()

    def required_for(self, cpt: str, is_therapy: bool) -> bool:
        if cpt in self.exempt:
            return False
        return is_therapy if self.codes == "therapy" else cpt in self.codes


@dataclass(frozen=True)
class PlanOfCare:
    """Medicare certification of the therapy plan of care (MBPM Pub 100-02 ch.15 §220.1.3)."""

    certification_days: int  # a certified plan covers at most this many calendar days from its start
    signature_within_days: int  # timely initial certification: signed within this many days of the start
    evaluation_exempt: bool  # an evaluation is paid on the referral/order, before the plan is certified


@dataclass(frozen=True)
class PayerRules:
    payer_id: str
    name: str
    kind: str  # medicare | medicaid | commercial
    claim_filing_codes: tuple[str, ...]
    effective_from: date
    effective_to: date | None
    source: str
    file: str
    rounding: str  # cms_total_time | cpt_midpoint
    discipline_modifier: bool  # add GO to every therapy line
    assistant_modifiers: bool  # CO/CQ on the units an assistant furnished (disciplines.yaml)
    assistant_payment_factor: Decimal | None  # 0.85 Medicare; None = contract price unchanged
    assistants_render: bool  # the payer enrolls assistants as rendering providers (Medicare: never)
    assistants_covered: tuple[str, ...]  # assistant roles whose services the payer pays (Medicare: OTA, PTA)
    kx_threshold: bool
    medicare_status_edits: bool  # reject status B/I codes
    prior_auth: PriorAuth | None
    visit_limits: tuple[VisitLimit, ...]
    timely_filing: TimelyFiling
    corrected_claim: str  # reopening | frequency_7_8
    fee_schedule: str  # id in mappings/fees/schedules.yaml
    ncci_ptp: bool
    ncci_mue: bool
    ncci_modifier_either_column: bool  # 59/X{EPSU} accepted on either code (Medicare since 2019-07-01)
    ncci_program: str  # medicare | medicaid: which CMS NCCI edit set applies
    plan_of_care: PlanOfCare | None  # certification checks (Medicare)
    progress_report_days: int | None  # a progress report at least every N treatment days (Medicare: 10)
    dme: str  # bill | hold: DMEPOS items (L-codes); Medicare Part B MACs do not take them
    dme_note: str | None  # where DMEPOS claims go instead
    fallback: bool = False
    # a state's QMB program / Medicare Savings Program payer: its secondary patients are QMBs, never billed
    # Medicare cost sharing (SSA §1902(n)(3)(B); otedi.accounts.qmb)
    qmb_program: bool = False

    def valid_on(self, day: date) -> bool:
        return self.effective_from <= day and (self.effective_to is None or day <= self.effective_to)


def kind_for_filing_code(claim_filing_code: str) -> str:
    """Payer kind by SBR09: MB/MA Medicare, MC Medicaid, anything else commercial."""
    code = claim_filing_code.strip().upper()
    return "medicare" if code in ("MB", "MA") else "medicaid" if code == "MC" else "commercial"


def payer_rules(payer_id: str, claim_filing_code: str, on: date | None = None) -> tuple[PayerRules, Issue | None]:
    """The rules for a payer (on a date of service, when given).

    An unknown payer id gets the fallback profile for its claim filing code
    and a warning naming the id.
    """
    profiles = _profiles(str(config.mappings_dir()))
    candidates = [p for p in profiles if not p.fallback and p.payer_id == payer_id.strip()]
    dated = [p for p in candidates if on is None or p.valid_on(on)]
    if dated:
        return dated[-1], None
    kind = kind_for_filing_code(claim_filing_code)
    fallback = next(p for p in profiles if p.fallback and p.kind == kind)
    if candidates:
        why = f"payer {payer_id} has rules in mappings/{PAYER_DIR}/ but none in effect on {on}"
    else:
        why = f"payer {payer_id} has no rules file in mappings/{PAYER_DIR}/"
    return fallback, Issue(
        Severity.WARNING, "payer-unknown",
        f"{why}; used the {fallback.name} for claim filing code {claim_filing_code}. "
        f"Add a payer file to bill this payer by its own rules",
        source=f"mappings/{PAYER_DIR}/{fallback.file}", value=payer_id)


# --- checks a visit needs from the payer rules -------------------------------------------------

def timely_filing_issue(rules: PayerRules, service_date: date, today: date, charge_id: str,
                        warn_days: int | None = None) -> Issue | None:
    """A hold past the filing limit, a warning close to it (`warn_days`: the rule file's warn_days_before,
    when the caller has it at hand)."""
    deadline = rules.timely_filing.deadline(service_date)
    source = f"mappings/{PAYER_DIR}/{rules.file} (timely_filing {rules.timely_filing.describe()})"
    if today > deadline:
        return Issue(
            Severity.HOLD, "timely-filing",
            f"date of service {service_date}: the {rules.name} filing limit of {rules.timely_filing.describe()} "
            f"ended {deadline}; the claim will be denied (CARC 29) unless an exception applies - "
            f"document the exception or write the charges off",
            source, charge_id=charge_id, column="service_date", value=str(service_date))
    if warn_days is None:
        warn_days = timely_filing_warn_days()
    if (deadline - today).days <= warn_days:
        return Issue(
            Severity.WARNING, "timely-filing",
            f"date of service {service_date}: the {rules.name} filing limit ends {deadline} "
            f"({(deadline - today).days} days left); send this claim first",
            source, charge_id=charge_id, column="service_date", value=str(service_date))
    return None


def visit_limit_issues(rules: PayerRules, prior_visit_dates: Collection[date], service_date: date,
                       charge_id: str) -> list[Issue]:
    """Hold a visit that goes over a payer's visit limit.

    prior_visit_dates: the patient's other visit dates with this payer (the
    visit being scrubbed is counted here).
    """
    issues = []
    for limit in rules.visit_limits:
        start, end = limit.window(service_date)
        used = len({d for d in prior_visit_dates if start <= d <= end and d != service_date})
        if used + 1 > limit.visits:
            issues.append(Issue(
                Severity.HOLD, "visit-limit",
                f"visit on {service_date} is visit {used + 1} of {rules.name}'s limit of {limit.describe()} "
                f"({start} to {end}); get an authorization for more visits or bill the patient under the "
                f"payer's rules", f"mappings/{PAYER_DIR}/{rules.file}", charge_id=charge_id))
    return issues


# --- loading -----------------------------------------------------------------------------------

class _VisitLimitConfig(config.ConfigModel):
    visits: Annotated[int, Field(ge=1)] = Field(description="how many visits the period allows")
    period: Literal["calendar_year", "rolling_days"] = Field(description="calendar_year or rolling_days")
    days: Annotated[int, Field(ge=1)] | None = Field(None, description="the window length, for rolling_days")

    @model_validator(mode="after")
    def _window(self):
        if self.period == "rolling_days" and not self.days:
            raise ValueError("needs days (the window length) with period rolling_days")
        return self


class _TimelyFilingConfig(config.ConfigModel):
    months: Annotated[int, Field(ge=1)] | None = None
    days: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _one(self):
        if (self.months is None) == (self.days is None):
            raise ValueError("needs exactly one of months or days, e.g. {months: 12} or {days: 90}")
        return self


def _auth_codes(value):
    if value == "therapy":
        return value
    if isinstance(value, list) and value and all(isinstance(c, (str, int)) and not isinstance(c, bool)
                                                 for c in value):
        return tuple(str(c) for c in value)
    raise ValueError('is not "therapy" (every therapy code) or a list of CPT/HCPCS codes')


class _PriorAuthConfig(config.ConfigModel):
    codes: Annotated[Any, BeforeValidator(_auth_codes)] = Field(
        description='"therapy" (every therapy code) or a list of codes')
    exempt: list[str] | None = None


class _PlanOfCareConfig(config.ConfigModel):
    certification_days: Annotated[int, Field(ge=1)] = Field(description="days a certified plan covers (Medicare: 90)")
    signature_within_days: Annotated[int, Field(ge=1)] = Field(
        description="days from the start for a timely signature (Medicare: 30)")
    evaluation_exempt: StrictBool = Field(description="true when an evaluation needs no certified plan")


class _DmeConfig(config.ConfigModel):
    action: Literal[DME_ACTIONS] = Field(description="bill or hold DMEPOS items (L-codes)")
    note: config.Text | None = None


def _filing_code(value):
    from otedi.charges.validate import FILING_CODES  # validate reads payers: import here, not at the top

    text = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    if text != "*" and text not in FILING_CODES:
        raise ValueError(f"is not an SBR09 claim filing code (one of {', '.join(sorted(FILING_CODES))}, "
                         f"or \"*\" in a fallback profile)")
    return text


def _assistant_role(value):
    roles = sorted(r.role for r in disciplines().roles.values() if r.assistant)
    if value not in roles:
        raise ValueError(f"is not an assistant role of {DISCIPLINES_FILE}; use {', '.join(roles)}")
    return value


def _payment_factor(value):
    try:
        factor = Decimal(str(value))
    except ArithmeticError:
        raise ValueError("is not a decimal number such as \"0.85\"") from None
    if isinstance(value, bool) or not (0 < factor <= 1):
        raise ValueError("is not a fraction above 0 and at most 1, such as \"0.85\"")
    return factor


class PayerFile(config.ConfigModel):
    """A file of mappings/payers/: how one payer (or a fallback profile) wants therapy billed."""

    payer_id: config.Text = Field(description="the payer's EDI id at the clearinghouse (2010BB NM109)")
    name: config.Text = Field(description="the payer's name")
    kind: Literal[KINDS] = Field(description="medicare, medicaid or commercial")
    claim_filing_codes: Annotated[list[Annotated[str, BeforeValidator(_filing_code)]], Field(min_length=1)] = \
        Field(description="the SBR09 codes this file covers, e.g. [MB]")
    effective_from: config.ConfigDate = Field(description="the first date of service it applies to (YYYY-MM-DD)")
    effective_to: config.ConfigDate | None = None
    source: config.Text = Field(description="where each rule comes from")
    rounding: Literal[ROUNDING_METHODS] = Field(description="cms_total_time or cpt_midpoint")
    discipline_modifier: StrictBool = Field(description="true or false: GO/GP/GN on every therapy line")
    assistant_modifiers: StrictBool = Field(description="true or false: CO/CQ on assistant units")
    assistant_payment_factor: Annotated[Decimal, BeforeValidator(_payment_factor)] | None = None
    assistants_render: StrictBool = Field(description="true or false: the payer enrols assistants as rendering")
    assistants_covered: list[Annotated[str, BeforeValidator(_assistant_role)]] = Field(
        description="the assistant roles the payer pays, e.g. [OTA, PTA]")
    kx_threshold: StrictBool = Field(description="true or false: the Medicare KX threshold applies")
    medicare_status_edits: StrictBool = Field(description="true or false: reject Medicare status B/I codes")
    prior_auth: _PriorAuthConfig | None = None
    visit_limits: list[_VisitLimitConfig] | None = None
    timely_filing: _TimelyFilingConfig | None = None
    corrected_claim: Literal[CORRECTION_METHODS] = Field(description="reopening or frequency_7_8")
    fee_schedule: config.Text = Field(description="a schedule id of fees/schedules.yaml")
    ncci_ptp: StrictBool = Field(description="true or false: NCCI procedure-to-procedure edits")
    ncci_mue: StrictBool = Field(description="true or false: NCCI medically unlikely edits")
    ncci_modifier_either_column: StrictBool = Field(
        description="true or false: 59/X{EPSU} accepted on either code of a pair")
    ncci_program: Literal[NCCI_PROGRAMS] = Field(description="medicare or medicaid: which NCCI edit set applies")
    plan_of_care: _PlanOfCareConfig | None = None
    progress_report_days: Annotated[int, Field(ge=1)] | None = None
    dme: _DmeConfig = Field(description="{action: bill} or {action: hold, note: where DMEPOS claims go}")
    fallback: StrictBool | None = None
    qmb_program: StrictBool | None = None

    @model_validator(mode="after")
    def _dates(self):
        if self.effective_to is not None and self.effective_to < self.effective_from:
            raise ValueError(f"effective_to {self.effective_to} is before effective_from {self.effective_from}")
        return self


def timely_filing_warn_days() -> int:
    """How many days before the filing limit a claim is warned about (rules/timely_filing.yaml)."""
    return _timely_filing_defaults(str(config.mappings_dir()))["warn_days_before"]


@lru_cache(maxsize=4)
def _timely_filing_defaults(root: str) -> dict:
    data = config.load_yaml(TIMELY_FILING)
    if "warn_days_before" not in data or "defaults" not in data:
        raise ConfigError(f"{config.mappings_dir() / TIMELY_FILING}: needs warn_days_before and defaults")
    return data


@lru_cache(maxsize=4)
def _profiles(root: str) -> tuple[PayerRules, ...]:
    folder = config.mappings_dir() / PAYER_DIR
    profiles = [_parse(path.name, config.load_yaml(f"{PAYER_DIR}/{path.name}"))
                for path in sorted(folder.glob("*.yaml"))]
    for kind in KINDS:
        if not any(p.fallback and p.kind == kind for p in profiles):
            raise ConfigError(f"{folder}: no fallback payer profile (fallback: true) of kind {kind}")
    return tuple(sorted(profiles, key=lambda p: p.effective_from))


def _parse(name: str, d: dict) -> PayerRules:
    where = config.mappings_dir() / PAYER_DIR / name
    f = config.validated(PayerFile, d, where)
    tf = f.timely_filing or _TimelyFilingConfig.model_validate(
        _timely_filing_defaults(str(config.mappings_dir()))["defaults"][f.kind])
    pa = f.prior_auth
    return PayerRules(
        payer_id=f.payer_id,
        name=f.name,
        kind=f.kind,
        claim_filing_codes=tuple(f.claim_filing_codes),
        effective_from=f.effective_from,
        effective_to=f.effective_to,
        source=f.source,
        file=name,
        rounding=f.rounding,
        discipline_modifier=f.discipline_modifier,
        assistant_modifiers=f.assistant_modifiers,
        assistant_payment_factor=f.assistant_payment_factor,
        assistants_render=f.assistants_render,
        assistants_covered=tuple(f.assistants_covered),
        kx_threshold=f.kx_threshold,
        medicare_status_edits=f.medicare_status_edits,
        prior_auth=PriorAuth(codes=pa.codes, exempt=tuple(pa.exempt or ())) if pa else None,
        visit_limits=tuple(VisitLimit(visits=v.visits, period=v.period, days=v.days) for v in f.visit_limits or ()),
        timely_filing=TimelyFiling(months=tf.months, days=tf.days),
        corrected_claim=f.corrected_claim,
        fee_schedule=f.fee_schedule,
        ncci_ptp=f.ncci_ptp,
        ncci_mue=f.ncci_mue,
        ncci_modifier_either_column=f.ncci_modifier_either_column,
        ncci_program=f.ncci_program,
        plan_of_care=PlanOfCare(
            certification_days=poc.certification_days,
            signature_within_days=poc.signature_within_days,
            evaluation_exempt=poc.evaluation_exempt,
        ) if (poc := f.plan_of_care) else None,
        progress_report_days=f.progress_report_days,
        dme=f.dme.action,
        dme_note=f.dme.note,
        fallback=bool(f.fallback),
        qmb_program=bool(f.qmb_program),
    )
