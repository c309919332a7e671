"""835 health care claim payment/advice (005010X221A1): one payment (BPR/TRN)
from one payer to one payee.

Balancing, checked before anything is written:
  each line   SVC02 - SVC03 = sum of its CAS amounts
  each claim  CLP03 - CLP04 = sum of its lines' CAS amounts (no claim-level CAS is sent)
  the payment BPR02 = sum of CLP04 - sum of PLB amounts
PLB amounts are subtracted from the payment: interest paid to the provider
(L6) is negative, an overpayment recovered (WO) positive.

Loop 2100 names the patient (NM1*QC), the rendering provider when it is not
the payee (NM1*82) and, on a claim crossed over (CLP02 19), the crossover
carrier (NM1*TT) in that order, as the guide has them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from otedi.errors import X12Error
from otedi.simulator.envelope import Interchange
from otedi.simulator.model import ZERO, ClaimPayment, LinePayment
from otedi.simulator.settings import PayerHeader
from otedi.x12.segments import SegmentWriter
from otedi.x12.x837p import amount

VERSION = "005010X221A1"
MAX_CAS_PAIRS = 6  # CAS carries up to six reason/amount(/quantity) triplets
MAX_PLB_ADJUSTMENTS = 6  # PLB03..PLB14
# CLP06 takes fewer claim filing indicator codes than 837 SBR09 (no CI, BL, FI, 11):
# those are reported as ZZ (mutually defined).
CLP06_CODES = frozenset({"12", "13", "14", "15", "16", "17", "AM", "CH", "DS", "HM", "LM", "MA", "MB", "MC",
                         "OF", "TV", "VA", "WC", "ZZ"})


@dataclass(frozen=True)
class ProviderAdjustment:
    code: str  # PLB03-1: L6 interest, WO overpayment recovery
    reference: str  # PLB03-2: the payer claim control number it concerns
    amount: Decimal  # PLB04: subtracted from the payment


@dataclass(frozen=True)
class Payment:
    payer_kind: str
    payer_id: str
    payer_name: str
    payer: PayerHeader
    payee_name: str
    payee_npi: str
    payee_ein: str
    method: str  # ACH | CHK
    trace: str  # TRN02: EFT trace or check number, unique per payment
    effective: date  # BPR16
    claims: tuple[ClaimPayment, ...]
    adjustments: tuple[ProviderAdjustment, ...] = ()

    @property
    def total(self) -> Decimal:
        return sum((c.paid for c in self.claims), ZERO) - sum((a.amount for a in self.adjustments), ZERO)


def check_balance(payment: Payment) -> None:
    for claim in payment.claims:
        for ln in claim.lines:
            if ln.billed - ln.paid != sum((a.amount for a in ln.adjustments), ZERO):
                raise X12Error(f"835 claim {claim.claim_id} line {ln.control_number}: SVC02 - SVC03 != CAS")
    if payment.total < 0:
        raise X12Error(f"835 payment {payment.trace}: BPR02 would be negative ({payment.total})")


def render_835(payment: Payment, envelope: Interchange, bank_routing: str, day: date) -> str:
    check_balance(payment)
    with envelope.transaction("835", st03=False) as w:
        _bpr(w, payment, bank_routing)
        w.write("TRN", "1", payment.trace, "1" + payment.payer.tin)
        w.write("DTM", "405", day.strftime("%Y%m%d"))
        p = payment.payer
        w.write("N1", "PR", payment.payer_name)
        w.write("N3", p.address)
        w.write("N4", p.city, p.state, p.zip)
        w.write("REF", "2U", payment.payer_id)
        w.write("PER", "BL", p.contact, "TE", p.phone)
        w.write("N1", "PE", payment.payee_name, "XX", payment.payee_npi)
        if payment.payee_ein:
            w.write("REF", "TJ", payment.payee_ein)
        if payment.claims:
            w.write("LX", "1")
            for claim in payment.claims:
                _claim(w, claim)
        # One PLB carries up to six adjustments (pyx12 reads a second PLB as a second footer).
        for start in range(0, len(payment.adjustments), MAX_PLB_ADJUSTMENTS):
            pairs = []
            for adj in payment.adjustments[start:start + MAX_PLB_ADJUSTMENTS]:
                pairs += [(adj.code, adj.reference), amount(adj.amount)]
            w.write("PLB", payment.payee_npi, f"{day.year}1231", *pairs)
    return envelope.text()


def _bpr(w: SegmentWriter, payment: Payment, bank_routing: str) -> None:
    total, effective = payment.total, payment.effective.strftime("%Y%m%d")
    if total == 0:
        # BPR01 H: notification only, no money moves.
        w.write("BPR", "H", "0", "C", "NON", *[None] * 11, effective)
    elif payment.method == "CHK":
        w.write("BPR", "I", amount(total), "C", "CHK", *[None] * 11, effective)
    else:
        p = payment.payer
        w.write("BPR", "I", amount(total), "C", "ACH", "CCP", "01", p.routing, "DA", p.account, "1" + p.tin, None,
                "01", bank_routing, "DA", payment.payee_npi, effective)


def _claim(w: SegmentWriter, claim: ClaimPayment) -> None:
    w.write("CLP", claim.claim_id, claim.status, amount(claim.charge), amount(claim.paid),
            amount(claim.patient_responsibility) if claim.patient_responsibility else None,
            claim.filing_code if claim.filing_code in CLP06_CODES else "ZZ", claim.icn, claim.place_of_service, claim.frequency)
    w.write("NM1", "QC", "1", claim.patient_last, claim.patient_first or None, None, None, None, "MI", claim.member_id)
    if claim.rendering_npi and claim.rendering_npi != claim.payee_npi:
        w.write("NM1", "82", "1", None, None, None, None, None, "XX", claim.rendering_npi)
    if claim.crossover_carrier is not None:  # CLP02 19: the payer the claim was forwarded to (PI: payer id)
        carrier = claim.crossover_carrier
        w.write("NM1", "TT", "2", carrier.payer_name, None, None, None, None, "PI", carrier.payer_id)
    w.write("DTM", "050", claim.received.strftime("%Y%m%d"))
    for ln in claim.lines:
        _line(w, ln)


def _line(w: SegmentWriter, ln: LinePayment) -> None:
    w.write("SVC", ("HC", ln.cpt, *ln.modifiers), amount(ln.billed), amount(ln.paid), None, str(ln.units))
    w.write("DTM", "472", ln.service_date.strftime("%Y%m%d"))
    groups: dict[str, list] = {}
    for a in ln.adjustments:
        groups.setdefault(a.group, []).append(a)
    for group, adjustments in groups.items():
        for start in range(0, len(adjustments), MAX_CAS_PAIRS):
            triplets = []
            for a in adjustments[start:start + MAX_CAS_PAIRS]:
                triplets += [a.reason, amount(a.amount), None]
            w.write("CAS", group, *triplets)
    w.write("REF", "6R", ln.control_number)
    w.write("AMT", "B6", amount(ln.allowed))
    for remark in ln.remarks:
        w.write("LQ", "HE", remark)
