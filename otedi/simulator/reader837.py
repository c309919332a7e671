"""Reads the 837P files our pipeline writes: the envelope of every transaction
(for the 999) and the claims in it (for the 277CA and the 835).

Delimiters come from the fixed-width ISA; segments are split on the segment
terminator, so one segment per line or all on one line both read. Loops are
told apart by the HL level and the NM1 entity code, which is all our files
need. Per claim it also notes what the front-end edits look at: SBR05 (the
Medicare secondary payer insurance type code) and whether the claim sits
under a 2000C patient level (HL03 23: the patient is not the subscriber).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

from otedi.errors import X12Error

ISA_LENGTH = 106


@dataclass(frozen=True)
class Segment:
    position: int  # 1 = the ISA
    elements: list[str]  # elements[0] is the segment id

    @property
    def id(self) -> str:
        return self.elements[0]

    def get(self, index: int) -> str:
        return self.elements[index] if index < len(self.elements) else ""


@dataclass
class ServiceLine:
    number: int  # LX01
    cpt: str
    modifiers: tuple[str, ...]
    charge: Decimal  # SV102
    units: int  # SV104
    service_date: date | None = None  # DTP*472
    control_number: str = ""  # REF*6R


@dataclass
class ClaimIn:
    claim_id: str  # CLM01
    total_charge: Decimal  # CLM02
    place_of_service: str  # CLM05-1
    frequency: str  # CLM05-3
    billing_name: str
    billing_npi: str
    billing_taxonomy: str
    billing_ein: str
    payer_sequence: str  # SBR01: P, S, T
    filing_code: str  # SBR09
    payer_name: str
    payer_id: str
    member_id: str
    patient_last: str
    patient_first: str
    prior_auth: str = ""  # REF*G1
    payer_claim_number: str = ""  # 2300 REF*F8: the claim a replacement (7) or void (8) stands for
    rendering_npi: str = ""
    rendering_taxonomy: str = ""
    insurance_type: str = ""  # 2000B SBR05: why Medicare is not primary (claims to Medicare as S/T)
    patient_loop: bool = False  # a 2000C patient level (HL03 23) sits between 2000B and this claim
    lines: list[ServiceLine] = field(default_factory=list)

    @property
    def first_date(self) -> date:
        return min(line.service_date for line in self.lines)

    @property
    def last_date(self) -> date:
        return max(line.service_date for line in self.lines)


@dataclass
class Transaction837:
    st02: str
    version: str  # ST03
    st_position: int
    se_position: int | None = None
    bht03: str = ""
    submitter_name: str = ""
    claims: list[ClaimIn] = field(default_factory=list)


@dataclass
class Interchange837:
    sender_qualifier: str  # ISA05
    sender_id: str  # ISA06: our submitter id
    receiver_qualifier: str  # ISA07
    receiver_id: str  # ISA08: the clearinghouse
    isa13: str
    usage: str  # ISA15
    gs01: str = ""
    gs02: str = ""
    gs03: str = ""
    gs06: str = ""
    gs08: str = ""
    transactions: list[Transaction837] = field(default_factory=list)


def read_segments(path: Path) -> list[Segment]:
    """Every segment of the file, split on the delimiters its ISA declares."""
    text = path.read_text(encoding="ascii", errors="replace").lstrip("\ufeff")
    if len(text) < ISA_LENGTH or not text.startswith("ISA"):
        raise X12Error(f"{path.name}: does not start with a 106-character ISA")
    element, terminator = text[3], text[105]
    out = []
    for raw in text.split(terminator):
        raw = raw.strip()
        if raw:
            out.append(Segment(len(out) + 1, raw.split(element)))
    return out


def read_837p(path: Path, *, claims: bool = True) -> Interchange837:
    """The interchange with its transactions; with `claims=False` only the
    envelopes (enough for a 999, and safe on a file whose body is corrupt)."""
    segments = read_segments(path)
    component = path.read_text(encoding="ascii", errors="replace").lstrip("\ufeff")[104]
    isa = segments[0]
    interchange = Interchange837(
        sender_qualifier=isa.get(5), sender_id=isa.get(6).strip(),
        receiver_qualifier=isa.get(7), receiver_id=isa.get(8).strip(),
        isa13=isa.get(13), usage=isa.get(15),
    )
    walker = _Walker(interchange, component)
    envelope_ids = ("GS", "ST", "SE")
    walker.walk(segments[1:] if claims else [seg for seg in segments[1:] if seg.id in envelope_ids])
    return interchange


class _Walker:
    """Sequential walk: remembers the current transaction, billing provider,
    subscriber, claim and line, and fills them from the segments."""

    def __init__(self, interchange: Interchange837, component: str):
        self.ic = interchange
        self.component = component
        self.tx: Transaction837 | None = None
        self.level = ""  # HL03 of the current hierarchical level
        self.billing: dict[str, str] = {}
        self.subscriber: dict[str, str] = {}
        self.patient_loop = False  # an HL*23 under the current subscriber
        self.claim: ClaimIn | None = None
        self.line: ServiceLine | None = None

    def walk(self, segments: list[Segment]) -> None:
        for seg in segments:
            try:
                self._segment(seg)
            except (IndexError, ValueError, InvalidOperation) as exc:
                raise X12Error(f"segment {seg.position} {seg.id} cannot be read: {exc}",
                               segment_number=seg.position, segment_id=seg.id) from None

    def _segment(self, seg: Segment) -> None:
        sid = seg.id
        if sid == "GS":
            self.ic.gs01, self.ic.gs02, self.ic.gs03 = seg.get(1), seg.get(2), seg.get(3)
            self.ic.gs06, self.ic.gs08 = seg.get(6), seg.get(8)
        elif sid == "ST":
            self.tx = Transaction837(st02=seg.get(2), version=seg.get(3), st_position=seg.position)
            self.ic.transactions.append(self.tx)
        elif sid == "SE" and self.tx is not None:
            self.tx.se_position = seg.position
            self.tx, self.claim, self.line = None, None, None
        elif self.tx is None:
            return
        elif sid == "BHT":
            self.tx.bht03 = seg.get(3)
        elif sid == "HL":
            self.level = seg.get(3)
            self.claim, self.line = None, None
            if self.level == "20":
                self.billing = {}
            if self.level in ("20", "22"):
                self.patient_loop = False
            elif self.level == "23":
                self.patient_loop = True
        elif sid == "PRV" and self.level == "20":
            self.billing["taxonomy"] = seg.get(3)
        elif sid == "REF" and self.level == "20" and seg.get(1) == "EI":
            self.billing["ein"] = seg.get(2)
        elif sid == "SBR" and self.claim is None:  # 2000B; a 2320 SBR (other payer) comes inside the claim
            self.subscriber = {"sequence": seg.get(1), "filing": seg.get(9), "insurance_type": seg.get(5)}
        elif sid == "NM1":
            self._name(seg)
        elif sid == "CLM":
            self._claim(seg)
        elif self.claim is None:
            return
        elif sid == "REF" and seg.get(1) == "G1" and self.line is None:
            self.claim.prior_auth = seg.get(2)
        elif sid == "REF" and seg.get(1) == "F8" and self.line is None and not self.claim.payer_claim_number:
            self.claim.payer_claim_number = seg.get(2)  # the first F8 is 2300's; 2330B's come after
        elif sid == "PRV" and seg.get(1) == "PE" and self.line is None:
            self.claim.rendering_taxonomy = seg.get(3)
        elif sid == "LX":
            self.line = ServiceLine(number=int(seg.get(1)), cpt="", modifiers=(), charge=Decimal(0), units=0)
            self.claim.lines.append(self.line)
        elif self.line is None:
            return
        elif sid == "SV1":
            parts = seg.get(1).split(self.component)
            self.line.cpt, self.line.modifiers = parts[1], tuple(p for p in parts[2:] if p)
            self.line.charge, self.line.units = Decimal(seg.get(2)), int(Decimal(seg.get(4)))
        elif sid == "DTP" and seg.get(1) == "472":
            value = seg.get(3)[:8]
            self.line.service_date = date(int(value[:4]), int(value[4:6]), int(value[6:8]))
        elif sid == "REF" and seg.get(1) == "6R":
            self.line.control_number = seg.get(2)

    def _name(self, seg: Segment) -> None:
        entity = seg.get(1)
        if entity == "41":
            self.tx.submitter_name = seg.get(3)
        elif entity == "85":
            self.billing.update(name=seg.get(3), npi=seg.get(9))
        elif entity in ("IL", "PR", "QC") and self.claim is not None:
            return  # 2330A/2330B: the other payer's subscriber and payer, inside the claim
        elif entity == "IL":
            self.subscriber.update(member=seg.get(9), last=seg.get(3), first=seg.get(4))
        elif entity == "PR":
            self.subscriber.update(payer_name=seg.get(3), payer_id=seg.get(9))
        elif entity == "QC":  # 2010CA: the patient is not the subscriber
            self.subscriber.update(last=seg.get(3), first=seg.get(4))
        elif entity == "82" and self.claim is not None and self.line is None:
            self.claim.rendering_npi = seg.get(9)

    def _claim(self, seg: Segment) -> None:
        pos = seg.get(5).split(self.component)
        b, s = self.billing, self.subscriber
        self.claim = ClaimIn(
            claim_id=seg.get(1), total_charge=Decimal(seg.get(2)),
            place_of_service=pos[0], frequency=pos[2] if len(pos) > 2 else "1",
            billing_name=b.get("name", ""), billing_npi=b.get("npi", ""),
            billing_taxonomy=b.get("taxonomy", ""), billing_ein=b.get("ein", ""),
            payer_sequence=s.get("sequence", "P"), filing_code=s.get("filing", ""),
            payer_name=s.get("payer_name", ""), payer_id=s.get("payer_id", ""),
            member_id=s.get("member", ""), patient_last=s.get("last", ""), patient_first=s.get("first", ""),
            insurance_type=s.get("insurance_type", ""), patient_loop=self.patient_loop,
        )
        self.line = None
        self.tx.claims.append(self.claim)
