"""The payer side: front-end edits (277CA) and line adjudication (835).

Front end (the claim never reaches adjudication). STC01 is category:status:entity;
category codes (X12 code source 507, pyx12 map/codes.xml `claim_status_cat`):
A3 "Acknowledgement/Returned as unprocessable claim", A7 "Acknowledgement/Rejected
for Invalid Information"; status codes (code source 508, `claim_status`):
- an NPI whose check digit is wrong -> A7:562 "Entity's National Provider
  Identifier (NPI)" (entity 85 billing, 82 rendering);
- a 2310B rendering provider whose PRV03 taxonomy is an assistant's (224Z00000X
  OTA, 225200000X PTA, 2355S0801X speech-language assistant;
  rules/disciplines.yaml) for a payer that does not enrol assistants
  (assistants_render: false, Medicare: the supervising therapist renders)
  -> A7:145:82 "Entity's specialty/taxonomy code", entity 82 rendering provider;
- a 2000C patient level (HL03 23) on a claim with SBR09 MA, MB or MC: the
  Medicare or Medicaid beneficiary is always the subscriber -> A7:156:QC
  "Patient relationship to subscriber", entity QC patient;
- a claim to Medicare (SBR09 MA/MB) where Medicare is not primary (SBR01 S, T
  or any other than P) without SBR05 -> A3:578:IL "Insurance Type Code", entity IL subscriber (SBR05
  is in the subscriber loop; the 837P TR3 requires it "when the destination
  payer is Medicare and Medicare is not the primary payer");
- an "always therapy" code without GO/GP/GN from an OT, PT or SLP practice
  (2000A PRV03 225X..., 2251..., 235Z...), for a payer that wants the
  discipline modifier -> A3:453 "Procedure Code Modifier(s) for Service(s)
  Rendered", returned as unprocessable (ot_billing_rules.md §2.1: specialty
  65/67 without the modifier is returned).

Adjudication, each line in date and line order; the first edit that fails
denies the line:
  CO-109 a DMEPOS item (codes: dme yes) for a payer whose rules hold DMEPOS
         (dme: hold, Medicare Part B: the DME MAC pays it): not covered by this
         payer/contractor, send it to the correct one
  CO-29  past the payer's timely filing limit on the day the claim arrived (§2.8)
  CO-18  the same patient, code and date was already paid (exact duplicate)
  CO-170 the rendering provider's taxonomy is an assistant role the payer does
         not pay for (assistants_covered): payment denied when performed by
         this type of provider
  CO-96  the code has no rate in the payer's fee schedule, or Medicare status B/I (+ N130)
  CO-197 the payer wants prior authorization for the code and REF*G1 is missing
  CO-236 NCCI PTP column-2 code without 59/X{EPSU} (indicator 1) or at all (0) (§2.7)
  CO-151 units over the MUE (+ N362); MAI 1 per line, MAI 2/3 per code and date (§2.7)
  CO-50  a seeded share of the remaining lines: not medically necessary (+ N115)
then the survivors are priced per date (fees.price_lines: PFS at the billing
practice's Medicare locality (practices.yaml medicare_locality of the 2010AA
NPI; national when it has none) with the therapy MPPR and the 85% factor on CO
and CQ lines, or the payer's per-unit table), allowed = lesser of billed and
fee, CO-45 for the difference, and
  PR-119 Medicare therapy line that takes the year's allowed amounts of its KX
         bucket (GO: OT; GP and GN: PT and SLP combined) over the threshold
         without KX (Palmetto, §2.3)
  Medicare: PR-1 Part B deductible (per beneficiary and year), PR-2 20% of
            the rest, CO-253 2% of the Medicare payment, line level (§2.12, §7)
  commercial: PR-3 copay per date of service; Medicaid: no cost sharing.

Crossovers (ot_billing_rules.md §2.13): Medicare processes a dual eligible's
claim (the beneficiary's Medicaid coverage comes from eligibility.py) as
primary and forwards it - CLP02 19 and NM1*TT naming the Medicaid payer -
when it allowed at least one line and left deductible or coinsurance (PR-1,
PR-2) to pay; a claim it denied whole, or as secondary payer (MSP), is not
forwarded.
Medicaid's adjudication of it (`Adjudicator.crossover`, CLP02 2) takes
Medicare's as it is, without edits: per line, what Medicare paid and adjusted
is OA-23 (impact of prior payer); of the cost sharing Medicaid pays the lesser
of it and Medicaid's rate (lesser of billed and its fee) less Medicare's
payment, never below zero, the deductible first; the rest stays PR-1/PR-2
with Medicare's CARC, which a QMB patient may not be billed for. A line
Medicare denied is all OA-23.

Predeterminations: a commercial payer answers a seeded share of the original
claims it pays without denying a line with a predetermination first (CLP02
25): nothing paid, each line's anticipated payment OA-101 beside its CO-45
and PR-3; the adjudication follows predetermination_weeks later.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal

from otedi import config
from otedi.charges.validate import npi_is_valid
from otedi.coding import codes
from otedi.coding.disciplines import Role, disciplines
from otedi.coding.fees import UNPAID_STATUS, PricingLine, fee_schedule, price_lines
from otedi.coding.modifiers import ASSISTANT_MODIFIERS, kx_bucket, kx_threshold, modifier_rules
from otedi.coding.ncci import ncci_tables
from otedi.coding.payers import PayerRules, payer_rules
from otedi.simulator.model import ZERO, Adjustment, ClaimPayment, Coverage, LinePayment, cents
from otedi.simulator.reader837 import ClaimIn, Interchange837, ServiceLine
from otedi.simulator.settings import Settings
from otedi.simulator.state import SimulatorState

DISCIPLINES = ("GO", "GP", "GN")
STATUS_BY_SEQUENCE = {"P": "1", "S": "2", "T": "3"}  # CLP02 by SBR01 payer responsibility
MEDICARE_FILING_CODES = ("MA", "MB")
SUBSCRIBER_ONLY_FILING_CODES = ("MA", "MB", "MC")  # Medicare and Medicaid: the beneficiary is the subscriber


def seeded(seed: int, *parts: object) -> random.Random:
    """A generator for one decision: the same seed and parts give the same draws
    whatever order claims are processed in."""
    return random.Random("|".join([str(seed), *map(str, parts)]))


@dataclass(frozen=True)
class ClaimAck:
    """One claim's 277CA status (loop 2200D) and, for line problems, its 2220D lines."""

    claim: ClaimIn
    category: str  # STC01-1: A2 accepted, A3 returned as unprocessable, A7 rejected for invalid information
    status: str  # STC01-2: 20 accepted, 33 subscriber not found, 145 taxonomy, 156 patient relationship,
    #               453 procedure modifier, 562 NPI, 578 insurance type code
    entity: str = ""  # STC01-3: 85 billing provider, 82 rendering provider, IL subscriber, QC patient
    icn: str = ""  # REF*1K payer claim control number, accepted claims only
    lines: tuple[ServiceLine, ...] = ()

    @property
    def accepted(self) -> bool:
        return self.category == "A2"


def front_end(claim: ClaimIn, rules: PayerRules) -> ClaimAck | None:
    """The 277CA rejection for a claim the payer will not adjudicate, else None."""
    if not npi_is_valid(claim.billing_npi):
        return ClaimAck(claim, "A7", "562", "85")
    if claim.rendering_npi and not npi_is_valid(claim.rendering_npi):
        return ClaimAck(claim, "A7", "562", "82")
    rendering = role_of_taxonomy(claim.rendering_taxonomy)
    if not rules.assistants_render and rendering is not None and rendering.assistant:
        return ClaimAck(claim, "A7", "145", "82")
    if claim.patient_loop and claim.filing_code in SUBSCRIBER_ONLY_FILING_CODES:
        return ClaimAck(claim, "A7", "156", "QC")
    if claim.filing_code in MEDICARE_FILING_CODES and claim.payer_sequence != "P" and not claim.insurance_type:
        return ClaimAck(claim, "A3", "578", "IL")
    if rules.discipline_modifier and _therapy_practice(claim.billing_taxonomy):
        missing = tuple(ln for ln in claim.lines if _always_therapy(ln.cpt) and not set(ln.modifiers) & set(DISCIPLINES))
        if missing:
            return ClaimAck(claim, "A3", "453", lines=missing)
    return None


def _always_therapy(cpt: str) -> bool:
    info = codes.lookup(cpt)
    return info is not None and info.therapy == "always"


def _therapy_practice(taxonomy: str) -> bool:
    """An OT, PT or SLP billing taxonomy: the therapist's NUCC code or one of its specializations."""
    return any(taxonomy.startswith(d.therapist.taxonomy[:4]) for d in disciplines().by_name.values())


def role_of_taxonomy(taxonomy: str) -> Role | None:
    """The rendering role (OT, OTA, PT, PTA, SLP, SLPA) a NUCC taxonomy belongs to: its code in
    rules/disciplines.yaml, or a specialization of a "...00000X" code there (same first four characters)."""
    taxonomy = taxonomy.strip().upper()
    if not taxonomy:
        return None
    roles = disciplines().roles.values()
    exact = next((r for r in roles if r.taxonomy == taxonomy), None)
    if exact is not None:
        return exact
    return next((r for r in roles if r.taxonomy.endswith("00000X") and taxonomy[:4] == r.taxonomy[:4]), None)


def medicare_locality(billing_npi: str) -> str | None:
    """The Medicare locality ("<mac>-<locality>") of the practice whose NPI bills the claim (2010AA NM109);
    None (national prices) when no practice in practices.yaml has that NPI or it names no locality."""
    return next((p.medicare_locality for p in config.practices().values()
                 if p.npi == billing_npi and p.medicare_locality), None)


@dataclass(frozen=True)
class _Denial:
    group: str
    reason: str
    remarks: tuple[str, ...] = ()


class Adjudicator:
    def __init__(self, state: SimulatorState, settings: Settings, seed: int, today: date,
                 duals: dict[str, Coverage] | None = None):
        self.state = state
        self.settings = settings
        self.seed = seed
        self.today = today
        self.duals = duals or {}  # Medicare member id -> Medicaid coverage (eligibility.py)

    def claim(self, claim: ClaimIn, rules: PayerRules, envelope: Interchange837, icn: str) -> ClaimPayment:
        lines = sorted(claim.lines, key=lambda ln: (ln.service_date, ln.number))
        locality = medicare_locality(claim.billing_npi)
        denials = self._edits(claim, lines, rules, locality)
        fees = self._fees([ln for ln in lines if ln.control_number not in denials], rules, locality)
        paid_lines = []
        copay_left: dict[date, Decimal] = defaultdict(lambda: self.settings.copay_per_visit)
        for ln in lines:
            denial = denials.get(ln.control_number)
            if denial is None:
                allowed = min(ln.charge, fees[ln.control_number])
                denial = self._kx(claim, ln, rules, allowed)
            if denial is not None:
                paid_lines.append(_denied(ln, denial, fees.get(ln.control_number)))
                continue
            paid_lines.append(self._pay(claim, ln, rules, fees[ln.control_number], copay_left))
        status = "4" if all(p.denied for p in paid_lines) else STATUS_BY_SEQUENCE.get(claim.payer_sequence, "1")
        for p in paid_lines:
            if not p.denied:
                self.state.paid_lines[_line_key(claim, p.cpt, p.service_date)] = icn
        rng = seeded(self.seed, "delay", claim.claim_id)
        held = rng.random() < self.settings.rates.delay
        release_on = self.today + timedelta(weeks=rng.randint(*self.settings.delay_weeks)) if held else self.today
        payment = ClaimPayment(
            claim_id=claim.claim_id, status=status, icn=icn, payer_kind=rules.kind,
            payer_id=claim.payer_id, payer_name=claim.payer_name, filing_code=claim.filing_code,
            payee_name=claim.billing_name, payee_npi=claim.billing_npi, payee_ein=claim.billing_ein,
            submitter_id=envelope.sender_id, submitter_qualifier=envelope.sender_qualifier,
            clearinghouse_id=envelope.receiver_id, clearinghouse_qualifier=envelope.receiver_qualifier,
            gs_clearinghouse=envelope.gs03, usage=envelope.usage,
            patient_last=claim.patient_last, patient_first=claim.patient_first, member_id=claim.member_id,
            rendering_npi=claim.rendering_npi, place_of_service=claim.place_of_service,
            frequency=claim.frequency, received=self.today, release_on=release_on, lines=tuple(paid_lines),
        )
        carrier = self.duals.get(claim.member_id) if rules.kind == "medicare" else None
        if carrier is not None and status == "1" and payment.cost_sharing > 0:
            payment = replace(payment, status="19", crossover_carrier=carrier)  # forwarded to Medicaid
        return payment

    def with_predetermination(self, claim: ClaimIn, rules: PayerRules,
                              payment: ClaimPayment) -> tuple[ClaimPayment, ...]:
        """The answers to an adjudicated claim, in the order they are sent: the adjudication alone, or (a
        seeded share of the original claims a commercial payer pays without denying a line) a predetermination
        (CLP02 25) on the claim's release date and the adjudication predetermination_weeks later."""
        rng = seeded(self.seed, "predetermination", claim.claim_id)
        if rules.kind != "commercial" or claim.frequency != "1" or any(ln.denied for ln in payment.lines) \
                or rng.random() >= self.settings.rates.predetermination:
            return (payment,)
        lines = tuple(replace(ln, paid=ZERO, adjustments=tuple(
            a for a in (*ln.adjustments, Adjustment("OA", "101", ln.paid)) if a.amount)) for ln in payment.lines)
        later = payment.release_on + timedelta(weeks=rng.randint(*self.settings.predetermination_weeks))
        return replace(payment, status="25", lines=lines), replace(payment, release_on=later)

    def crossover(self, medicare: ClaimPayment, icn: str, received: date, release_on: date) -> ClaimPayment:
        """Medicaid's claim of a claim Medicare crossed over to it (CLP02 19), as the module text says: same
        CLP01 and REF*6R, CLP02 2, the Medicaid payer's own ICN, payer and member id."""
        carrier = medicare.crossover_carrier
        rules, _ = payer_rules(carrier.payer_id, "MC", on=min(ln.service_date for ln in medicare.lines))
        locality = medicare_locality(medicare.payee_npi)
        fees = self._fees([ln for ln in medicare.lines if not ln.denied], rules, locality)
        lines = []
        for ln in medicare.lines:
            deductible, coinsurance = ln.adjustment("PR", "1"), ln.adjustment("PR", "2")
            fee = fees.get(ln.control_number)
            rate = min(ln.billed, fee or ZERO)
            paid = min(deductible + coinsurance, max(ZERO, rate - ln.paid))
            to_deductible = min(paid, deductible)
            adjustments = (Adjustment("OA", "23", ln.billed - deductible - coinsurance),
                           Adjustment("PR", "1", deductible - to_deductible),
                           Adjustment("PR", "2", coinsurance - (paid - to_deductible)))
            lines.append(replace(ln, fee=fee, allowed=ZERO if ln.denied else rate, paid=paid, remarks=(),
                                 adjustments=tuple(a for a in adjustments if a.amount)))
        return replace(medicare, status="2", icn=icn, payer_kind=rules.kind, payer_id=carrier.payer_id,
                       payer_name=carrier.payer_name, filing_code="MC", member_id=carrier.member_id,
                       received=received, release_on=release_on, lines=tuple(lines), crossover_carrier=None,
                       prior_payer_icn=medicare.icn)

    # --- edits that deny a line before pricing ----------------------------------------------------

    def _edits(self, claim: ClaimIn, lines: list[ServiceLine], rules: PayerRules,
               locality: str | None = None) -> dict[str, _Denial]:
        denials: dict[str, _Denial] = {}
        for ln in lines:
            denial = self._line_edit(claim, ln, rules, locality)
            if denial:
                denials[ln.control_number] = denial
        by_date: dict[date, list[ServiceLine]] = defaultdict(list)
        for ln in lines:
            if ln.control_number not in denials:
                by_date[ln.service_date].append(ln)
        for day_lines in by_date.values():
            if rules.ncci_ptp:
                for ln in _ptp_denied(day_lines, rules):
                    denials.setdefault(ln.control_number, _Denial("CO", "236"))
            if rules.ncci_mue:
                for ln in _mue_denied([x for x in day_lines if x.control_number not in denials]):
                    denials.setdefault(ln.control_number, _Denial("CO", "151", ("N362",)))
        for ln in lines:
            if ln.control_number not in denials and \
                    seeded(self.seed, "deny", claim.claim_id, ln.control_number).random() < self.settings.rates.random_denial:
                denials[ln.control_number] = _Denial("CO", "50", ("N115",))
        return denials

    def _line_edit(self, claim: ClaimIn, ln: ServiceLine, rules: PayerRules,
                   locality: str | None = None) -> _Denial | None:
        info = codes.lookup(ln.cpt)
        if rules.dme == "hold" and info is not None and info.dme:
            return _Denial("CO", "109")  # the DME MAC, not this contractor, pays DMEPOS
        if self.today > rules.timely_filing.deadline(ln.service_date):
            return _Denial("CO", "29")
        if _line_key(claim, ln.cpt, ln.service_date) in self.state.paid_lines:
            return _Denial("CO", "18")
        rendering = role_of_taxonomy(claim.rendering_taxonomy)
        if rendering is not None and rendering.assistant and rendering.role not in rules.assistants_covered:
            return _Denial("CO", "170")
        if not _covered(ln, rules, locality):
            return _Denial("CO", "96", ("N130",))
        if rules.prior_auth and not claim.prior_auth and \
                rules.prior_auth.required_for(ln.cpt, info is not None and info.is_therapy):
            return _Denial("CO", "197")
        return None

    # --- pricing -----------------------------------------------------------------------------------

    def _fees(self, lines: Sequence[ServiceLine | LinePayment], rules: PayerRules,
              locality: str | None = None) -> dict[str, Decimal | None]:
        """Fee schedule amount of each line (by control number), priced together per date (MPPR), at the
        practice's Medicare locality (None: national); None for a code without a rate."""
        by_date: dict[date, list[ServiceLine | LinePayment]] = defaultdict(list)
        for ln in lines:
            by_date[ln.service_date].append(ln)
        fees: dict[str, Decimal | None] = {}
        for day, day_lines in sorted(by_date.items()):
            schedule, _ = fee_schedule(rules.fee_schedule, day, locality)
            amounts, _ = price_lines(
                [PricingLine(ln.control_number, ln.cpt, ln.units, bool(set(ASSISTANT_MODIFIERS) & set(ln.modifiers)))
                 for ln in day_lines],
                schedule, rules.assistant_payment_factor)
            fees.update(amounts)
        return fees

    def _kx(self, claim: ClaimIn, ln: ServiceLine, rules: PayerRules, allowed: Decimal) -> _Denial | None:
        """Medicare therapy threshold per bucket (GO: OT; GP/GN: PT and SLP combined): count the line's
        allowed amount in its bucket, or deny it PR-119 when it takes the bucket over the threshold
        without KX."""
        bucket = kx_bucket(ln.modifiers) if rules.kx_threshold else None
        if bucket is None:
            return None
        threshold = kx_threshold(ln.service_date)
        key = kx_key(claim.member_id, ln.service_date.year, bucket)
        before = self.state.kx.get(key, ZERO)
        if threshold is not None and "KX" not in ln.modifiers and before + allowed > threshold.amount:
            return _Denial("PR", "119")
        self.state.add(self.state.kx, key, allowed)
        return None

    # --- payment -----------------------------------------------------------------------------------

    def _pay(self, claim: ClaimIn, ln: ServiceLine, rules: PayerRules, fee: Decimal,
             copay_left: dict[date, Decimal]) -> LinePayment:
        allowed = min(ln.charge, fee)
        deductible = copay = ZERO
        if rules.kind == "medicare":
            key = f"{claim.member_id}|{ln.service_date.year}"
            remaining = self.settings.deductible(ln.service_date.year) - self.state.deductible.get(key, ZERO)
            deductible = min(max(remaining, ZERO), allowed)
            self.state.add(self.state.deductible, key, deductible)
        elif rules.kind == "commercial":
            copay = min(copay_left[ln.service_date], allowed)
            copay_left[ln.service_date] -= copay
        paid, adjustments = cost_share(rules.kind, ln.charge, allowed, deductible, copay, self.settings)
        return LinePayment(
            control_number=ln.control_number, cpt=ln.cpt, modifiers=ln.modifiers, service_date=ln.service_date,
            units=ln.units, billed=ln.charge, fee=fee, allowed=allowed, paid=paid, adjustments=adjustments)


def cost_share(kind: str, billed: Decimal, allowed: Decimal, deductible: Decimal, copay: Decimal,
               settings: Settings) -> tuple[Decimal, tuple[Adjustment, ...]]:
    """What the payer pays on an allowed line and the adjustments that explain the rest.

    Medicare (§2.12): coinsurance 20% of (allowed - deductible); the Medicare
    payment is the remainder, and sequestration takes 2% of that payment
    only (the patient's share is not reduced).
    """
    adjustments = [Adjustment("CO", "45", billed - allowed)]
    paid = allowed
    if kind == "medicare":
        coinsurance = cents((allowed - deductible) * settings.coinsurance)
        medicare_payment = allowed - deductible - coinsurance
        sequestration = cents(medicare_payment * settings.sequestration)
        paid = medicare_payment - sequestration
        adjustments += [Adjustment("PR", "1", deductible), Adjustment("PR", "2", coinsurance),
                        Adjustment("CO", "253", sequestration)]
    elif kind == "commercial":
        paid = allowed - copay
        adjustments.append(Adjustment("PR", "3", copay))
    return paid, tuple(a for a in adjustments if a.amount)


def readjudicate(original: ClaimPayment, icn: str, settings: Settings) -> ClaimPayment:
    """The corrected claim after a reversal: every paid line re-priced at fee x the
    configured correction (a retroactive fee schedule fix), the deductible and
    copay it already took kept (capped at the new allowed amount)."""
    lines = []
    for ln in original.lines:
        if ln.denied or ln.fee is None:
            lines.append(ln)
            continue
        fee = cents(ln.fee * settings.reversal_fee_correction)
        allowed = min(ln.billed, fee)
        paid, adjustments = cost_share(original.payer_kind, ln.billed, allowed,
                                       min(ln.adjustment("PR", "1"), allowed),
                                       min(ln.adjustment("PR", "3"), allowed), settings)
        lines.append(replace(ln, fee=fee, allowed=allowed, paid=paid, adjustments=adjustments))
    return replace(original, icn=icn, lines=tuple(lines))


def _denied(ln: ServiceLine, denial: _Denial, fee: Decimal | None) -> LinePayment:
    return LinePayment(
        control_number=ln.control_number, cpt=ln.cpt, modifiers=ln.modifiers, service_date=ln.service_date,
        units=ln.units, billed=ln.charge, fee=fee, allowed=ZERO, paid=ZERO,
        adjustments=(Adjustment(denial.group, denial.reason, ln.charge),) if ln.charge else (),
        remarks=denial.remarks, denied=True)


def kx_key(member_id: str, year: int, bucket: str) -> str:
    """SimulatorState.kx key: one running total per beneficiary, year and KX bucket (OT, PT_SLP)."""
    return f"{member_id}|{year}|{bucket}"


def _covered(ln: ServiceLine, rules: PayerRules, locality: str | None = None) -> bool:
    """The payer's fee schedule has a rate for the code (Medicare: and pays it: status not B or I)."""
    schedule, _ = fee_schedule(rules.fee_schedule, ln.service_date, locality)
    if schedule.method == "per_unit":
        return ln.cpt in schedule.per_unit
    rate = schedule.pfs.get(ln.cpt)
    return rate is not None and not (rules.medicare_status_edits and rate.status in UNPAID_STATUS)


def _line_key(claim: ClaimIn, cpt: str, day: date) -> str:
    return f"{claim.payer_id}|{claim.member_id}|{cpt}|{day.isoformat()}"


def _ptp_denied(lines: list[ServiceLine], rules: PayerRules) -> list[ServiceLine]:
    """Column-2 lines of NCCI pairs billed together on one date without a valid bypass."""
    tables = ncci_tables()
    distinct = set(modifier_rules().distinct_service)
    out = []
    for b in lines:
        for a in lines:
            if a is b:
                continue
            edit = tables.ptp_edit(a.cpt, b.cpt, b.service_date)
            if edit is None or edit.modifier_indicator == "9":
                continue
            carriers = set(b.modifiers) | (set(a.modifiers) if rules.ncci_modifier_either_column else set())
            if edit.modifier_indicator == "0" or not carriers & distinct:
                out.append(b)
                break
    return out


def _mue_denied(lines: list[ServiceLine]) -> list[ServiceLine]:
    tables = ncci_tables()
    by_code: dict[str, list[ServiceLine]] = defaultdict(list)
    for ln in lines:
        by_code[ln.cpt].append(ln)
    out = []
    for code, group in by_code.items():
        edit = tables.mue.get(code)
        if edit is None:
            continue
        if edit.adjudication_indicator == 1:
            out += [ln for ln in group if ln.units > edit.value]
        elif sum(ln.units for ln in group) > edit.value:
            out += group
    return out
