"""837P professional claims, implementation guide 005010X222A1.

`write_837p` writes one interchange (ISA/GS/ST) holding every claim it is
given; the caller splits big batches. Loop functions are named after the
guide's loops. Billing rules (units, modifiers, which claims exist) are made
upstream in coding/ and claims/; this module only lays claims out.

Claims to a secondary (or tertiary) payer carry the earlier payers'
adjudication (`Claim.prior_payers`): loop 2320 per payer with its claim-level
CAS, AMT*D and OI, 2330A/2330B for its subscriber and payer, and a 2430 per
line (SVD, CAS, DTP*573). The writer refuses a claim whose figures do not
balance: per line SV102 = SVD02 + 2430 CAS, per payer CLM02 - AMT*D = claim
CAS + line CAS. Remaining patient liability goes at claim level only (AMT*EAF).

Text: names and addresses are upper-cased, accents folded to ASCII, and
every character outside A-Z, 0-9, space and & ' ( ) , - . / is replaced by
a space (runs of spaces collapse). That keeps them inside the X12 basic
character set and clear of our delimiters (* : ^ ~) on every clearinghouse.
Identifiers (claim ids, member ids, authorisation numbers) are sent as
given; the segment writer refuses them if they contain a delimiter.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import TextIO

from otedi.charges.record import Charge
from otedi.charges.validate import patient_always_subscriber
from otedi.claims.model import (
    MAX_DIAGNOSES, MAX_LINES, MAX_POINTERS, Adjustment, Claim, ClaimLine, LineAdjudication, PriorPayer,
)
from otedi.coding.result import Rendering
from otedi.config import Clearinghouse, Practice
from otedi.errors import X12Error
from otedi.x12.envelope import ControlNumbers, Envelope, transaction
from otedi.x12.segments import SegmentWriter

VERSION = "005010X222A1"
SELF = "18"  # individual relationship code: the patient is the subscriber
MEDICARE_FILING_CODES = ("MA", "MB")  # SBR09: Medicare Part A / Part B
FREQUENCIES_NEEDING_PAYER_CLAIM_NUMBER = ("7", "8")  # replacement, void
MAX_MODIFIERS = 4
MAX_PRIOR_PAYERS = 10  # 2320 repeats at most 10 times
CAS_PAIRS = 6  # reason/amount pairs one CAS segment carries
ENVELOPE_SEGMENTS = 4  # ISA, GS, GE, IEA: outside the ST..SE count

_OUTSIDE_CHARACTER_SET = re.compile(r"[^A-Z0-9 &'(),\-./]")


@dataclass(frozen=True)
class BatchStats:
    segments: int  # every segment in the file, ISA to IEA
    transaction_segments: int  # SE01: ST to SE
    claims: int
    lines: int
    total_charge: Decimal
    envelope: Envelope  # who the interchange says sent it to whom (ISA06/08, GS02/03)


def write_837p(
    claims: Sequence[Claim],
    practice: Practice,
    clearinghouse: Clearinghouse,
    control: ControlNumbers,
    out: TextIO,
    *,
    created: datetime,
) -> BatchStats:
    """Write `claims` (all billed by `practice`) as one 837P interchange to `out`."""
    if not claims:
        raise X12Error("an 837P needs at least one claim")
    for claim in claims:
        _check_claim(claim, practice)

    writer = SegmentWriter(out)
    envelope = Envelope.outbound(
        practice, clearinghouse, control, created, functional_id="HC", transaction_set="837", version=VERSION
    )
    total = Decimal("0")
    lines = 0
    with transaction(writer, envelope):
        _header(writer, control, created)
        _loop_1000a(writer, practice)
        _loop_1000b(writer, clearinghouse)
        _loop_2000a(writer, practice)
        hl = 1  # the 2000A billing provider is HL 1; every claim adds a 2000B and maybe a 2000C
        for claim in claims:
            hl = _claim_hierarchy(writer, claim, parent_hl=1, last_hl=hl)
            total += _claim_total(claim)
            lines += len(claim.lines)
    return BatchStats(
        segments=writer.count,
        transaction_segments=writer.count - ENVELOPE_SEGMENTS,
        claims=len(claims),
        lines=lines,
        total_charge=total,
        envelope=envelope,
    )


def _check_claim(claim: Claim, practice: Practice) -> None:
    """Refuse claims the guide cannot express. Messages carry the claim id only."""
    where = f"claim {claim.claim_id}"
    if claim.header.practice_id != practice.practice_id:
        raise X12Error(f"{where}: billed by practice {claim.header.practice_id}, not {practice.practice_id}")
    if not 1 <= len(claim.lines) <= MAX_LINES:
        raise X12Error(f"{where}: has {len(claim.lines)} service lines; an 837P claim carries 1 to {MAX_LINES}")
    if not 1 <= len(claim.diagnoses) <= MAX_DIAGNOSES:
        raise X12Error(f"{where}: has {len(claim.diagnoses)} diagnoses; HI carries 1 to {MAX_DIAGNOSES}")
    if [line.number for line in claim.lines] != list(range(1, len(claim.lines) + 1)):
        raise X12Error(f"{where}: line numbers (LX01) must run 1, 2, 3, ... in order")
    for line in claim.lines:
        if not 1 <= len(line.dx_pointers) <= MAX_POINTERS:
            raise X12Error(f"{where} line {line.number}: SV107 needs 1 to {MAX_POINTERS} diagnosis pointers")
        if any(not 1 <= p <= len(claim.diagnoses) for p in line.dx_pointers):
            raise X12Error(f"{where} line {line.number}: SV107 points past the {len(claim.diagnoses)} diagnoses")
        if len(line.coded.modifiers) > MAX_MODIFIERS:
            raise X12Error(f"{where} line {line.number}: SV101 carries at most {MAX_MODIFIERS} modifiers")
        if line.coded.charge_amount < 0:
            raise X12Error(f"{where} line {line.number}: SV102 charge is negative")
    if claim.frequency_code in FREQUENCIES_NEEDING_PAYER_CLAIM_NUMBER and not claim.payer_claim_number:
        raise X12Error(
            f"{where}: frequency {claim.frequency_code} needs the payer claim control number (REF*F8, from 835 CLP07)"
        )
    _check_prior_payers(claim, where)
    header = claim.header
    if not header.patient_is_subscriber and patient_always_subscriber(header.claim_filing_code):
        raise X12Error(f"{where}: claim filing code {header.claim_filing_code}: the beneficiary is always the "
                       f"subscriber, so the claim cannot carry a 2000C patient loop")
    if _medicare_secondary(header.claim_filing_code, header.payer_sequence) and not header.msp_type:
        raise X12Error(f"{where}: Medicare is not the primary payer (SBR01 {header.payer_sequence}), so SBR05 "
                       f"needs the Medicare secondary payer insurance type code")
    rendering = claim.rendering
    if not rendering.taxonomy or not rendering.npi:
        raise X12Error(f"{where}: 2310B needs the rendering provider's NPI and taxonomy")
    names = {"patient": header.patient_last_name, "2310B rendering provider": rendering.last_name}
    if not header.patient_is_subscriber:
        names["2010BA subscriber"] = header.subscriber_last_name or ""
    if header.referring_npi:
        names["2310A referring provider"] = header.referring_last_name
    for loop, last_name in names.items():
        if not x12_text(last_name):
            raise X12Error(f"{where}: {loop} last name (NM103) is empty once cleaned to the X12 character set")


def _check_prior_payers(claim: Claim, where: str) -> None:
    """COB edits: each prior payer's lines and claim balance, SVD02 not negative, CAS pairs complete."""
    if len(claim.prior_payers) > MAX_PRIOR_PAYERS:
        raise X12Error(f"{where}: carries {len(claim.prior_payers)} prior payers; 2320 repeats at most "
                       f"{MAX_PRIOR_PAYERS} times")
    charges = {line.number: line.coded.charge_amount for line in claim.lines}
    for payer in claim.prior_payers:
        who = f"{where} prior payer {payer.coverage.payer_id}"
        adjustments = [*payer.adjustments, *(a for line in payer.lines for a in line.adjustments)]
        if any(not a.group or not a.reason for a in adjustments):
            raise X12Error(f"{who}: every CAS amount needs its group code and reason code")
        seen: set[int] = set()
        for line in payer.lines:
            if line.line_number not in charges or line.line_number in seen:
                raise X12Error(f"{who}: 2430 for line {line.line_number}, which the claim has not or has twice")
            seen.add(line.line_number)
            if line.paid < 0:
                raise X12Error(f"{who} line {line.line_number}: SVD02 paid amount is negative")
            adjusted = line.paid + _sum(line.adjustments)
            if adjusted != charges[line.line_number]:
                raise X12Error(f"{who} line {line.line_number}: SV102 {charges[line.line_number]} is not SVD02 "
                               f"{line.paid} plus 2430 CAS {_sum(line.adjustments)}")
        if _claim_total(claim) - payer.paid != _sum(adjustments):
            raise X12Error(f"{who}: CLM02 {_claim_total(claim)} less AMT*D {payer.paid} is not the claim and "
                           f"line CAS total {_sum(adjustments)}")


def _sum(adjustments: Sequence[Adjustment]) -> Decimal:
    return sum((a.amount for a in adjustments), Decimal("0"))


# --- header and 1000 loops ---------------------------------------------------


def _header(writer: SegmentWriter, control: ControlNumbers, created: datetime) -> None:
    writer.write(
        "BHT",
        "0019",  # hierarchical structure: information source, subscriber, dependent
        "00",  # original
        control.isa13,  # BHT03 originator reference: our interchange control number
        created.strftime("%Y%m%d"),
        created.strftime("%H%M"),
        "CH",  # chargeable (fee-for-service) claims
    )


def _loop_1000a(writer: SegmentWriter, practice: Practice) -> None:
    """Submitter: the practice, identified by the id the clearinghouse gave it."""
    writer.write("NM1", "41", "2", x12_text(practice.name), "", "", "", "", "46", practice.submitter_id)
    writer.write("PER", "IC", x12_text(practice.contact_name), "TE", _digits(practice.contact_phone))


def _loop_1000b(writer: SegmentWriter, clearinghouse: Clearinghouse) -> None:
    writer.write(
        "NM1", "40", "2", x12_text(clearinghouse.receiver_name), "", "", "", "", "46", clearinghouse.receiver_id
    )


# --- 2000A billing provider -----------------------------------------------------


def _loop_2000a(writer: SegmentWriter, practice: Practice) -> None:
    writer.write("HL", "1", "", "20", "1")
    writer.write("PRV", "BI", "PXC", practice.taxonomy)
    _loop_2010aa(writer, practice)
    _loop_2010ab(writer, practice)


def _loop_2010aa(writer: SegmentWriter, practice: Practice) -> None:
    zip_code = _digits(practice.zip)
    if len(zip_code) != 9:
        raise X12Error(f"practice {practice.practice_id}: 2010AA N403 needs the 9-digit ZIP code")
    writer.write("NM1", "85", "2", x12_text(practice.name), "", "", "", "", "XX", practice.npi)
    writer.write("N3", x12_text(practice.address1))
    writer.write("N4", x12_text(practice.city), practice.state.upper(), zip_code)
    writer.write("REF", "EI", _digits(practice.ein))


def _loop_2010ab(writer: SegmentWriter, practice: Practice) -> None:
    """Pay-to address: where payments go when not to the billing provider's street address (a PO box)."""
    if not practice.pay_to_address1:
        return
    writer.write("NM1", "87", "2")
    writer.write("N3", x12_text(practice.pay_to_address1))
    writer.write("N4", x12_text(practice.pay_to_city), practice.pay_to_state.upper(), _digits(practice.pay_to_zip))


# --- 2000B subscriber / 2000C patient -------------------------------------------


def _claim_hierarchy(writer: SegmentWriter, claim: Claim, *, parent_hl: int, last_hl: int) -> int:
    """Write one claim's 2000B (and 2000C when the patient is not the subscriber)
    with its 2300 claim; return the last HL number used."""
    header = claim.header
    subscriber_hl = last_hl + 1
    _loop_2000b(writer, header, hl=subscriber_hl, parent_hl=parent_hl)
    if header.patient_is_subscriber:
        _loop_2300(writer, claim)
        return subscriber_hl
    patient_hl = subscriber_hl + 1
    _loop_2000c(writer, header, hl=patient_hl, parent_hl=subscriber_hl)
    _loop_2300(writer, claim)
    return patient_hl


def _loop_2000b(writer: SegmentWriter, header: Charge, *, hl: int, parent_hl: int) -> None:
    has_patient_level = "0" if header.patient_is_subscriber else "1"
    writer.write("HL", str(hl), str(parent_hl), "22", has_patient_level)
    writer.write(
        "SBR",
        header.payer_sequence,
        SELF if header.patient_is_subscriber else "",  # SBR02 only when the patient is the subscriber
        header.group_number or "",
        "",  # SBR04 group name
        _insurance_type(header),  # SBR05: why Medicare is not primary, on a claim to Medicare as S/T
        "", "", "",
        header.claim_filing_code,
    )
    _loop_2010ba(writer, header)
    _loop_2010bb(writer, header)


def _loop_2010ba(writer: SegmentWriter, header: Charge) -> None:
    """Subscriber. N3/N4 and DMG go here only when the patient is the subscriber: the TR3 says
    "required when the patient is the subscriber ... if not required, do not send" (X12 RFI 2281);
    otherwise the patient's address and demographics go in 2010CA."""
    if header.patient_is_subscriber:
        _person_name(writer, "IL", header.patient_last_name, header.patient_first_name, "MI", header.member_id)
        _address(writer, header)
        writer.write("DMG", "D8", _d8(header.patient_dob), _sex(header.patient_sex))
    else:
        _person_name(writer, "IL", header.subscriber_last_name or "", header.subscriber_first_name or "", "MI",
                     header.member_id)


def _loop_2010bb(writer: SegmentWriter, header: Charge) -> None:
    writer.write("NM1", "PR", "2", x12_text(header.payer_name), "", "", "", "", "PI", header.payer_id)


def _loop_2000c(writer: SegmentWriter, header: Charge, *, hl: int, parent_hl: int) -> None:
    writer.write("HL", str(hl), str(parent_hl), "23", "0")
    writer.write("PAT", header.relationship)
    _loop_2010ca(writer, header)


def _loop_2010ca(writer: SegmentWriter, header: Charge) -> None:
    _person_name(writer, "QC", header.patient_last_name, header.patient_first_name, "", "")
    _address(writer, header)
    writer.write("DMG", "D8", _d8(header.patient_dob), _sex(header.patient_sex))


# --- 2300 claim -------------------------------------------------------------------


def _loop_2300(writer: SegmentWriter, claim: Claim) -> None:
    header = claim.header
    writer.write(
        "CLM",
        claim.claim_id,
        amount(_claim_total(claim)),  # CLM02 = sum of SV102
        "", "",
        (header.place_of_service, "B", claim.frequency_code),  # CLM05: POS, B = professional, frequency
        "Y",  # CLM06 provider signature on file
        "A",  # CLM07 assigned
        "Y",  # CLM08 benefits assigned to the provider
        "Y",  # CLM09 release of information: signed statement on file
    )
    if header.initial_treatment_date is not None:
        writer.write("DTP", "454", "D8", _d8(header.initial_treatment_date))
    # REF order follows the guide: G1 prior authorization before F8 payer claim control number.
    if header.prior_auth_number:
        writer.write("REF", "G1", header.prior_auth_number)
    if claim.frequency_code in FREQUENCIES_NEEDING_PAYER_CLAIM_NUMBER:
        writer.write("REF", "F8", claim.payer_claim_number)
    writer.write("HI", *_health_care_codes(claim.diagnoses))
    _loop_2310a(writer, header)
    _loop_2310b(writer, claim.rendering)
    for payer in claim.prior_payers:
        _loop_2320(writer, payer)
    for line in claim.lines:
        adjudications = [(payer, adj) for payer in claim.prior_payers for adj in payer.lines
                         if adj.line_number == line.number] if claim.prior_payers else ()
        _loop_2400(writer, line, claim_place_of_service=header.place_of_service, adjudications=adjudications)


def _health_care_codes(diagnoses: Sequence[str]) -> list[tuple[str, str]]:
    """HI01 = ABK principal ICD-10-CM, HI02.. = ABF others; codes go without the dot."""
    codes = [code.replace(".", "").upper() for code in diagnoses]
    return [("ABK", codes[0]), *(("ABF", code) for code in codes[1:])]


def _loop_2310a(writer: SegmentWriter, header: Charge) -> None:
    """Referring provider: for Medicare OT, the physician/NPP who certified the plan of care."""
    if header.referring_npi:
        _person_name(writer, "DN", header.referring_last_name, header.referring_first_name, "XX", header.referring_npi)


def _loop_2310b(writer: SegmentWriter, rendering: Rendering) -> None:
    """Rendering provider: the therapist, or the supervising therapist of an assistant the payer does not
    enrol (Medicare); the assistant's part shows in CO/CQ on the lines."""
    _person_name(writer, "82", rendering.last_name, rendering.first_name, "XX", rendering.npi)
    writer.write("PRV", "PE", "PXC", rendering.taxonomy)


# --- 2320/2330 other subscriber (coordination of benefits) ------------------------


def _loop_2320(writer: SegmentWriter, payer: PriorPayer) -> None:
    """A payer that adjudicated the claim before: its subscriber, claim-level CAS and payment."""
    coverage = payer.coverage
    writer.write(
        "SBR",
        payer.sequence,
        coverage.relationship,  # SBR02: the patient's relationship to that payer's subscriber (required here)
        coverage.group_number or "",
        "",
        _insurance_type(coverage, sequence=payer.sequence),  # SBR05 when that payer is Medicare, not primary
        "", "", "",
        coverage.claim_filing_code,
    )
    _cas(writer, payer.adjustments)
    writer.write("AMT", "D", amount(payer.paid))  # required whenever 2430 is sent, 0 when nothing was paid
    if payer.patient_responsibility is not None:
        writer.write("AMT", "EAF", amount(payer.patient_responsibility))
    writer.write("OI", "", "", "Y", "P", "", "Y")  # benefits assigned, signature on file, release (= CLM09)
    _loop_2330a(writer, coverage)
    _loop_2330b(writer, payer)


def _loop_2330a(writer: SegmentWriter, coverage: Charge) -> None:
    """That payer's subscriber, named as in its own 2010BA."""
    if coverage.patient_is_subscriber:
        last, first = coverage.patient_last_name, coverage.patient_first_name
    else:
        last, first = coverage.subscriber_last_name or "", coverage.subscriber_first_name or ""
    _person_name(writer, "IL", last, first, "MI", coverage.member_id)


def _loop_2330b(writer: SegmentWriter, payer: PriorPayer) -> None:
    coverage = payer.coverage
    writer.write("NM1", "PR", "2", x12_text(coverage.payer_name), "", "", "", "", "PI", coverage.payer_id)
    if payer.payer_claim_number:
        writer.write("REF", "F8", payer.payer_claim_number)  # other payer claim control number (its CLP07)


def _cas(writer: SegmentWriter, adjustments: Sequence[Adjustment]) -> None:
    """CAS grouped by group code in first-seen order, at most six reason/amount pairs a segment."""
    by_group: dict[str, list[Adjustment]] = {}
    for adjustment in adjustments:
        by_group.setdefault(adjustment.group, []).append(adjustment)
    for group, items in by_group.items():
        for start in range(0, len(items), CAS_PAIRS):
            elements: list[str] = []
            for item in items[start:start + CAS_PAIRS]:
                elements += [item.reason, amount(item.amount), ""]  # reason, amount, (no quantity)
            writer.write("CAS", group, *elements)


# --- 2400 service line ----------------------------------------------------------------


def _loop_2400(writer: SegmentWriter, line: ClaimLine, *, claim_place_of_service: str,
               adjudications: Sequence[tuple[PriorPayer, LineAdjudication]] = ()) -> None:
    coded, charge = line.coded, line.charge
    line_place_of_service = charge.place_of_service if charge.place_of_service != claim_place_of_service else ""
    writer.write("LX", str(line.number))
    writer.write(
        "SV1",
        ("HC", coded.cpt, *coded.modifiers),
        amount(coded.charge_amount),
        "UN",
        str(coded.units),
        line_place_of_service,  # SV105 only when it differs from CLM05-1
        "",
        tuple(map(str, line.dx_pointers)),
    )
    writer.write("DTP", "472", "D8", _d8(charge.service_date))
    writer.write("REF", "6R", line.line_control_number)
    for payer, adjudication in adjudications:
        _loop_2430(writer, line, payer, adjudication)


def _loop_2430(writer: SegmentWriter, line: ClaimLine, payer: PriorPayer, adjudication: LineAdjudication) -> None:
    """Line adjudication by a prior payer; SVD01 repeats that payer's 2330B NM109."""
    coded = line.coded
    writer.write(
        "SVD",
        payer.coverage.payer_id,
        amount(adjudication.paid),
        ("HC", coded.cpt, *coded.modifiers),
        "",
        str(coded.units),
    )
    _cas(writer, adjudication.adjustments)
    writer.write("DTP", "573", "D8", _d8(adjudication.adjudicated))


# --- values -----------------------------------------------------------------------------


def amount(value: Decimal) -> str:
    """X12 decimal (R) without trailing zeros: 100, 35.5, 35.07."""
    return format(value.quantize(Decimal("0.01")).normalize(), "f")


# Names, cities, dates and ZIP codes repeat from claim to claim (a patient's visits, a practice's
# providers and payers): their cleaned text is computed once per distinct value.
@lru_cache(maxsize=65_536)
def x12_text(value: str) -> str:
    """Upper-case, fold accents, and keep only the characters listed in the module docstring."""
    folded = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode("ascii")
    return " ".join(_OUTSIDE_CHARACTER_SET.sub(" ", folded.upper()).split())


def _medicare_secondary(claim_filing_code: str, sequence: str) -> bool:
    return claim_filing_code in MEDICARE_FILING_CODES and sequence != "P"


def _insurance_type(coverage: Charge, sequence: str | None = None) -> str:
    """SBR05: "required when the destination payer is Medicare and Medicare is not the primary payer"."""
    return (coverage.msp_type or "") if _medicare_secondary(coverage.claim_filing_code,
                                                            sequence or coverage.payer_sequence) else ""


def _claim_total(claim: Claim) -> Decimal:
    return sum((line.coded.charge_amount for line in claim.lines), Decimal("0"))


def _person_name(
    writer: SegmentWriter,
    entity: str,
    last: str,
    first: str,
    id_qualifier: str,
    identifier: str,
) -> None:
    writer.write("NM1", entity, "1", x12_text(last), x12_text(first), "", "", "", id_qualifier, identifier)


def _address(writer: SegmentWriter, header: Charge) -> None:
    writer.write("N3", x12_text(header.patient_address1))
    writer.write("N4", x12_text(header.patient_city), header.patient_state.upper(), _digits(header.patient_zip))


@lru_cache(maxsize=4_096)
def _d8(value: date) -> str:
    return value.strftime("%Y%m%d")


def _sex(value: str | None) -> str:
    return value if value in ("F", "M") else "U"


@lru_cache(maxsize=65_536)
def _digits(value: str) -> str:
    return "".join(ch for ch in value if ch.isascii() and ch.isdigit())
