"""Build small 835 and acknowledgment files for posting tests (balanced by construction unless told)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal


@dataclass
class Svc:
    code: str
    charge: Decimal
    paid: Decimal
    cas: list[tuple[str, str, Decimal]] = field(default_factory=list)  # (group, carc, amount)
    lcn: str | None = None
    mods: tuple[str, ...] = ("GO",)
    units: int = 1
    date: str = "20260302"
    rarc: tuple[str, ...] = ()


@dataclass
class Clp:
    pcn: str
    status: str = "1"
    services: list[Svc] = field(default_factory=list)
    claim_cas: list[tuple[str, str, Decimal]] = field(default_factory=list)
    icn: str = "ICN0001"
    charge: Decimal | None = None  # defaults: from the services and CAS
    paid: Decimal | None = None
    crossover: str | None = None
    filing: str = "MB"  # CLP06

    def totals(self) -> tuple[Decimal, Decimal, Decimal]:
        charge = self.charge if self.charge is not None else sum((s.charge for s in self.services), Decimal(0))
        paid = self.paid if self.paid is not None else (
            sum((s.paid for s in self.services), Decimal(0)) - sum((a for _, _, a in self.claim_cas), Decimal(0)))
        pr = sum((a for s in self.services for g, _, a in s.cas if g == "PR"), Decimal(0)) + \
            sum((a for g, _, a in self.claim_cas if g == "PR"), Decimal(0))
        return charge, paid, pr


def _cas(adjustments) -> list[str]:
    by_group: dict[str, list[str]] = {}
    for group, carc, amount in adjustments:
        by_group.setdefault(group, []).extend([carc, f"{amount}", ""])  # reason, amount, (no quantity)
    return [f"CAS*{g}*" + "*".join(v).rstrip("*") for g, v in by_group.items()]


def remittance(claims: list[Clp], *, trace: str = "TRACE1", payer: str = "1999999999", st: str = "0001",
               plb: list[tuple[str, Decimal]] = (), bpr: Decimal | None = None,
               payer_name: str = "CGS MEDICARE PART B OHIO") -> list[str]:
    """Segments of one 835 transaction set (ST..SE)."""
    total = sum((c.totals()[1] for c in claims), Decimal(0)) - sum((a for _, a in plb), Decimal(0))
    body = [
        f"BPR*I*{bpr if bpr is not None else total}*C*ACH*CCP*01*999999999*DA*123456*{payer}**01*888888888*DA*654321*20260320",
        f"TRN*1*{trace}*{payer}", "DTM*405*20260320", f"N1*PR*{payer_name}", "N3*PO BOX 1",
        "N4*NASHVILLE*TN*37202", "PER*BL*EDI*TE*8005551212", "N1*PE*BRIGHT HANDS OT*XX*1234567893", "LX*1",
    ]
    for c in claims:
        charge, paid, pr = c.totals()
        body.append(f"CLP*{c.pcn}*{c.status}*{charge}*{paid}*{pr}*{c.filing}*{c.icn}*11*1")
        body += _cas(c.claim_cas)
        body.append("NM1*QC*1*DOE*JANE****MI*1EG4TE5MK73")
        if c.crossover:
            body.append(f"NM1*TT*2*{c.crossover}*****PI*99999")
        for s in c.services:
            body.append(f"SVC*HC:{':'.join((s.code,) + s.mods)}*{s.charge}*{s.paid}**{s.units}")
            body.append(f"DTM*472*{s.date}")
            body += _cas(s.cas)
            if s.lcn:
                body.append(f"REF*6R*{s.lcn}")
            body += [f"LQ*HE*{r}" for r in s.rarc]
    for reason, amount in plb:
        body.append(f"PLB*1234567893*20261231*{reason}:REF1*{amount}")
    return [f"ST*835*{st}", *body, f"SE*{len(body) + 2}*{st}"]


def interchange(transactions: list[list[str]], *, functional_id: str = "HP", version: str = "005010X221A1",
                control: int = 1) -> str:
    isa = (f"ISA*00*          *00*          *ZZ*{'CLEARINGHOUSE':<15}*ZZ*{'BRIGHT01':<15}*260320*1200*^*00501*"
           f"{control:09d}*0*T*:")
    segments = [isa, f"GS*{functional_id}*CLEARINGHOUSE*BRIGHT01*20260320*1200*{control}*X*{version}"]
    for t in transactions:
        segments += t
    segments += [f"GE*{len(transactions)}*{control}", f"IEA*1*{control:09d}"]
    return "~\n".join(segments) + "~\n"
