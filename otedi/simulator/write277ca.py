"""277CA claim acknowledgment (005010X214): one transaction set per accepted
837P transaction set, shaped like the eMedNY samples in shared/samples/acks.

Hierarchy per payer the claims went to:
  2000A HL*20 information source: the payer (NM1*PR), TRN*1 trace, received/processed dates
  2000B HL*21 information receiver: our submitter (NM1*41), TRN*2 = our BHT03, totals
  2000C HL*19 billing provider (NM1*85), TRN*1 = its NPI, totals
  2000D HL*PT patient (NM1*QC), TRN*2 = our CLM01, STC claim status, REF*1K payer
        claim control number when accepted, DTP*472 service dates;
        2220D SVC/STC/REF*FJ/DTP for the lines a rejection is about.
STC03 is WQ (accepted) or U (rejected).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from otedi.simulator.adjudicate import ClaimAck
from otedi.simulator.envelope import Interchange
from otedi.simulator.reader837 import Transaction837
from otedi.x12.segments import SegmentWriter
from otedi.x12.x837p import amount

VERSION = "005010X214"
RECEIVED = "19"  # claim status code: entity acknowledges receipt of claim


def render_277ca(answers: Sequence[tuple[Transaction837, list[ClaimAck]]], submitter_id: str,
                 envelope: Interchange, day: date) -> str:
    d8 = day.strftime("%Y%m%d")
    for number, (tx, acks) in enumerate(answers, 1):
        with envelope.transaction("277") as w:
            w.write("BHT", "0085", "08", f"{envelope.number}{number:04d}", d8, "0000", "TH")
            hl = 0
            for (payer_id, payer_name), payer_acks in _grouped(acks, lambda a: (a.claim.payer_id, a.claim.payer_name)):
                hl += 1
                source = hl
                w.write("HL", str(source), None, "20", "1")
                w.write("NM1", "PR", "2", payer_name, None, None, None, None, "PI", payer_id)
                w.write("TRN", "1", f"{envelope.number}{source:04d}")
                w.write("DTP", "050", "D8", d8)
                w.write("DTP", "009", "D8", d8)
                hl += 1
                receiver = hl
                w.write("HL", str(receiver), str(source), "21", "1")
                w.write("NM1", "41", "2", tx.submitter_name, None, None, None, None, "46", submitter_id)
                w.write("TRN", "2", tx.bht03)
                w.write("STC", ("A1", RECEIVED, "PR"), d8, "WQ", amount(_total(payer_acks)))
                _totals(w, payer_acks, "90", "AA")
                for (npi, name), provider_acks in _grouped(payer_acks, lambda a: (a.claim.billing_npi, a.claim.billing_name)):
                    hl += 1
                    provider = hl
                    w.write("HL", str(provider), str(receiver), "19", "1")
                    w.write("NM1", "85", "2", name, None, None, None, None, "XX", npi)
                    w.write("TRN", "1", npi)
                    w.write("STC", ("A1", RECEIVED, "85"), None, "WQ", amount(_total(provider_acks)))  # STC02 not used here
                    _totals(w, provider_acks, "QA", "QC")
                    for ack in provider_acks:
                        hl += 1
                        _patient(w, ack, hl, provider, d8)
    return envelope.text()


def _patient(w: SegmentWriter, ack: ClaimAck, hl: int, parent: int, d8: str) -> None:
    claim = ack.claim
    w.write("HL", str(hl), str(parent), "PT")
    w.write("NM1", "QC", "1", claim.patient_last, claim.patient_first or None, None, None, None, "MI", claim.member_id)
    w.write("TRN", "2", claim.claim_id)
    w.write("STC", (ack.category, ack.status, ack.entity or None), d8, "WQ" if ack.accepted else "U",
            amount(claim.total_charge))
    if ack.icn:
        w.write("REF", "1K", ack.icn)
    first, last = claim.first_date, claim.last_date
    if first == last:
        w.write("DTP", "472", "D8", first.strftime("%Y%m%d"))
    else:
        w.write("DTP", "472", "RD8", f"{first:%Y%m%d}-{last:%Y%m%d}")
    for line in ack.lines:
        w.write("SVC", ("HC", line.cpt, *line.modifiers), amount(line.charge), None, None, None, None, str(line.units))
        w.write("STC", (ack.category, ack.status), d8, "U")
        w.write("REF", "FJ", line.control_number)
        w.write("DTP", "472", "D8", line.service_date.strftime("%Y%m%d"))


def _totals(w: SegmentWriter, acks: list[ClaimAck], accepted_qty: str, rejected_qty: str) -> None:
    accepted = [a for a in acks if a.accepted]
    rejected = [a for a in acks if not a.accepted]
    if accepted:
        w.write("QTY", accepted_qty, str(len(accepted)))
    if rejected:
        w.write("QTY", rejected_qty, str(len(rejected)))
    if accepted:
        w.write("AMT", "YU", amount(_total(accepted)))
    if rejected:
        w.write("AMT", "YY", amount(_total(rejected)))


def _total(acks: list[ClaimAck]) -> Decimal:
    return sum(a.claim.total_charge for a in acks)


def _grouped(acks: list[ClaimAck], key) -> list[tuple[tuple[str, str], list[ClaimAck]]]:
    """Group in order of first appearance."""
    groups: dict[tuple[str, str], list[ClaimAck]] = {}
    for ack in acks:
        groups.setdefault(key(ack), []).append(ack)
    return list(groups.items())
