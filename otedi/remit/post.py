"""Post 835 remittances to the append-only ledger.

Two passes over each file (`otedi.x12.x835`): the first checks structure and
every balance (line, claim, transaction) without keeping claims in memory;
the second posts. One file is one database transaction, so nothing from a
malformed file is ever partly posted:

- a malformed or wrongly enveloped file is quarantined with the segment and
  the problem, nothing posted;
- an unbalanced transaction (ST..SE) is held with its figures, nothing from
  it posted, while balanced transactions of the same file post;
- the same file (content hash) posts nothing the second time, and the same
  trace number (TRN02) from the same payer in another file is kept as a
  duplicate payment, not posted again;
- the same claim payment (CLP01, CLP02, CLP03, CLP04, CLP07) already posted
  under another trace number is recorded with a `duplicate_payment`
  exception naming that trace, and not posted (unless a reversal of it
  posted since, so a reversal's correction with the same figures posts);
- a predetermination (CLP02 25) is recorded with a `predetermination`
  exception and not posted: it is no adjudication, so it neither pays nor
  denies, and the claim's status and payer claim number stay as they were.

Claim payments that are recorded but not posted (duplicates,
predeterminations) carry no claim_pk: the analytics count every claim
payment of a claim as an adjudication; the exception's reference (CLP01)
and message name the claim.

Claims match on CLP01 = our patient control number, lines on REF*6R = our
line control number, falling back to procedure + date + charge when the
payer dropped the 6R or the modifiers. What cannot be matched is still
posted (without a claim) and listed in `remit_exception` for a biller.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from sqlalchemy import bindparam, exists, insert, or_, select
from sqlalchemy.orm import Session, selectinload

from otedi import config
from otedi.charges.load import file_sha256
from otedi.errors import X12Error
from otedi.remit import crossover
from otedi.warehouse import models
from otedi.warehouse.inbound import inbound_record
from otedi.x12 import x835

log = logging.getLogger(__name__)

ZERO = Decimal("0.00")
FLUSH_EVERY = 500  # claims posted between flushes
ENTRY_TYPES = ("payment", "contractual", "patient_responsibility", "other_adjustment", "denial")
PREDETERMINATION = "25"  # CLP02: pricing only, no adjudication
# remit_exception kinds of claim payments recorded but not posted (no ledger entries)
NOT_POSTED_KINDS = ("duplicate_payment", "predetermination")


@lru_cache(maxsize=4)
def _posting_rules(root: str) -> dict[str, str]:
    data = config.load_yaml("remit/adjustment_posting.yaml")
    rules = {str(code): "contractual" for code in data.get("contractual") or {}}
    rules.update({str(code): "other_adjustment" for code in data.get("other_adjustment") or {}})
    return rules


def entry_type_for(group: str, carc: str) -> str:
    """Ledger entry type of a CAS adjustment (see mappings/remit/adjustment_posting.yaml)."""
    if group == "PR":
        return "patient_responsibility"
    if group == "CR":
        return "other_adjustment"
    return _posting_rules(str(config.mappings_dir())).get(carc, "denial")


@dataclass
class TransactionOutcome:
    transaction_control_number: str
    trace_number: str
    payer: str
    payment_amount: Decimal  # BPR02
    status: str  # posted | held | duplicate
    reason: str | None = None
    claims: int = 0
    matched: int = 0
    unmatched: int = 0
    duplicates: int = 0  # claim payments already posted under another trace: recorded, not posted
    predeterminations: int = 0  # CLP02 25: recorded, not posted
    totals: dict[str, Decimal] = field(default_factory=lambda: {t: ZERO for t in ENTRY_TYPES})
    provider_adjustments: Decimal = ZERO


@dataclass
class RemitFileResult:
    file: str
    sha256: str
    status: str  # posted | partly_held | held | quarantined | already_posted
    message: str | None = None
    transactions: list[TransactionOutcome] = field(default_factory=list)

    def summary(self) -> dict:
        posted = [t for t in self.transactions if t.status == "posted"]
        total = {t: sum((o.totals[t] for o in posted), ZERO) for t in ENTRY_TYPES}
        return {
            "file": self.file, "status": self.status, "message": self.message,
            "transactions": len(self.transactions),
            "claims_matched": sum(t.matched for t in posted),
            "unmatched": sum(t.unmatched for t in posted),
            "duplicate_claim_payments": sum(t.duplicates for t in posted),
            "predeterminations": sum(t.predeterminations for t in posted),
            "held": [{"transaction": t.transaction_control_number, "trace_number": t.trace_number,
                      "status": t.status, "reason": t.reason} for t in self.transactions if t.status != "posted"],
            "totals": {
                "paid": str(total["payment"]), "contractual": str(total["contractual"]),
                "patient_responsibility": str(total["patient_responsibility"]),
                "other_adjustments": str(total["other_adjustment"]), "denied": str(total["denial"]),
                "plb": str(sum((t.provider_adjustments for t in posted), ZERO)),
                "bpr02": str(sum((t.payment_amount for t in posted), ZERO)),
            },
        }


def post_remittance_file(session: Session, path: str | Path, name: str | None = None, *,
                         waive: frozenset[str] = frozenset()) -> RemitFileResult:
    """Post one 835 file (idempotent by content hash). `name`: how to call it (default: its file name).
    `waive`: faults of `x835.WAIVABLE` a person accepted (`otedi.actions.remittances.accept_remittance`);
    nothing else passes. The caller commits."""
    path = Path(path)
    name = name or path.name
    digest = file_sha256(path)
    result = RemitFileResult(file=name, sha256=digest, status="posted")
    inbound = inbound_record(session, name, digest, path.stat().st_size, "835", "posted")
    if inbound is None:
        result.status = "already_posted"
        return result
    try:
        scan = x835.scan_835(path, waive=waive)
    except X12Error as exc:
        inbound.status, inbound.message = "quarantined", str(exc)
        result.status, result.message = "quarantined", str(exc)
        log.warning("835 %s quarantined: %s", name, exc)
        return result
    session.flush()

    poster = _Poster(session, inbound, scan.transactions)
    for item in x835.iter_835(path, waive=waive):
        poster.feed(item)
    poster.flush()
    result.transactions = poster.outcomes
    held = sum(1 for t in poster.outcomes if t.status != "posted")
    if held:
        result.status = "held" if held == len(poster.outcomes) else "partly_held"
    inbound.status = result.status
    session.flush()
    log.info("835 %s: %d transaction(s), %d held or duplicate", name, len(poster.outcomes), held)
    return result


class _Poster:
    """Second pass: turns the parsed items of one file into ledger rows."""

    def __init__(self, session: Session, inbound: models.InboundFile, summaries: list[x835.TransactionSummary]):
        self.session = session
        self.inbound = inbound
        self.summaries = iter(summaries)
        self.outcomes: list[TransactionOutcome] = []
        self.remittance: models.Remittance | None = None
        self.outcome: TransactionOutcome | None = None
        self.posted_here: set[tuple[str, str]] = set()
        self.pending_rows: list = []
        self.pending_entries: list[dict] = []
        self.claims_since_flush = 0
        self.occurrences: Counter[str] = Counter()
        # claim payments posted since the last flush, per CLP01 (the duplicate check reads the rest from
        # the database): (CLP02, CLP03, CLP04, CLP07, trace)
        self.unflushed: dict[str, list[tuple]] = defaultdict(list)
        # CLP01s not ours that have posted claim payments (claim_payment has no index on CLP01): read once,
        # on the first such CLP01 of the file, so only those are looked up
        self.foreign_pcns: set[str] | None = None

    def feed(self, item) -> None:
        if isinstance(item, x835.RemittanceHeader):
            self._start(item, next(self.summaries))
        elif self.outcome.status != "posted":
            return
        elif isinstance(item, x835.ClaimPayment):
            self._post_claim(item)
        elif isinstance(item, x835.ProviderAdjustment):
            self._post_plb(item)

    def _start(self, header: x835.RemittanceHeader, summary: x835.TransactionSummary) -> None:
        payer_key = header.originating_company_id or header.payer_id
        status, reason = "posted", None
        if not summary.balanced:
            status = "held"
            reason = "; ".join(b.message for b in summary.problems)
        elif (payer_key, header.trace_number) in self.posted_here or self.session.scalar(
                select(models.Remittance.id).where(models.Remittance.payer_key == payer_key,
                                                   models.Remittance.trace_number == header.trace_number,
                                                   models.Remittance.status == "posted")) is not None:
            status = "duplicate"
            reason = (f"trace number {header.trace_number} from payer {payer_key} was already posted from "
                      f"another file; this copy is not posted again (a duplicate payment)")
        if status == "posted":
            self.posted_here.add((payer_key, header.trace_number))
        self.remittance = models.Remittance(
            inbound_file_id=self.inbound.id, transaction_control_number=header.envelope.control_number,
            payer_key=payer_key, payer_name=header.payer.name[:60] or None, trace_number=header.trace_number,
            payment_amount=header.amount, credit_debit=header.credit_debit, payment_method=header.payment_method,
            payment_date=header.payment_date, payee_npi=header.payee_npi,
            claims_paid_total=summary.total_paid, provider_adjustment_total=summary.provider_adjustment_total,
            claims=summary.claim_count, matched=0, unmatched=0, status=status, hold_reason=reason,
        )
        self.session.add(self.remittance)
        self.session.flush()
        self.outcome = TransactionOutcome(
            transaction_control_number=header.envelope.control_number, trace_number=header.trace_number,
            payer=payer_key, payment_amount=header.amount, status=status, reason=reason,
            claims=summary.claim_count)
        self.outcomes.append(self.outcome)
        if status != "posted":
            log.warning("835 transaction %s %s: %s", header.envelope.control_number, status, reason)

    def _post_claim(self, clp: x835.ClaimPayment) -> None:
        with self.session.no_autoflush:  # rows are flushed in batches (see _added)
            claim = self.session.scalar(
                select(models.Claim).where(models.Claim.claim_id == clp.patient_control_number)
                .options(selectinload(models.Claim.lines)))
        primary = None  # set when the payment posts to the crossover record of this (primary) claim
        if claim is not None and clp.status != PREDETERMINATION and crossover.needs_routing(claim, clp):
            primary, claim = self._side(claim, clp)
        with self.session.no_autoflush:
            earlier = None if clp.status == PREDETERMINATION else self._posted_under_another_trace(clp, claim)
        if clp.status == PREDETERMINATION or earlier is not None:
            ours = f"claim {clp.patient_control_number}" if claim else \
                f"CLP01 {clp.patient_control_number} (not one of our claims)"
            figures = f"charge {clp.charge}, paid {clp.paid}, payer claim {clp.payer_claim_control_number or 'n/a'}"
            if earlier is None:
                self.outcome.predeterminations += 1
                self._not_posted(clp, "predetermination",
                                 f"predetermination (CLP02 25, pricing only) for {ours}: {figures}; recorded, not "
                                 f"posted - no payment, no denial; the claim's status and payer claim number are "
                                 f"unchanged")
            else:
                self.outcome.duplicates += 1
                self._not_posted(clp, "duplicate_payment",
                                 f"{ours} (CLP02 {clp.status}, {figures}) was already posted under trace {earlier}; "
                                 f"this copy under trace {self.remittance.trace_number} is not posted (a duplicate "
                                 f"payment: if the payer paid twice, arrange the refund or recoupment with it)")
            return
        self.unflushed[clp.patient_control_number].append(
            (clp.status, clp.charge, clp.paid, clp.payer_claim_control_number or None, self.remittance.trace_number))
        payment = self._claim_payment(clp, claim.id if claim else None)
        self._added(payment, claim)
        if claim is None:
            self.outcome.unmatched += 1
            self.remittance.unmatched += 1
            self._exception(payment, "claim_not_found", clp.patient_control_number, clp.charge, clp.paid,
                            f"CLP01 {clp.patient_control_number} is not one of our claims; "
                            f"posted without a claim (payer claim {clp.payer_claim_control_number or 'n/a'})")
        else:
            self.outcome.matched += 1
            self.remittance.matched += 1

        entries: list[dict] = []
        claim_remarks = ":".join(clp.remark_codes) or None
        used: set[int] = set()
        # the secondary payer of a crossover returns the primary's REF*6R: match on the primary's lines
        matching = primary.lines if primary else claim.lines if claim else []
        same_line = {line.line_number: line for line in claim.lines} if primary else None
        for service in clp.services:
            line = match_line(service, matching, used)
            if line is not None:
                used.add(line.id)
                if same_line is not None:
                    line = same_line[line.line_number]
            elif claim is not None:
                self._exception(payment, "line_not_found",
                                service.line_control_number or f"{service.procedure} {service.service_date}",
                                service.charge, service.paid,
                                f"service {service.procedure} on {service.service_date} (6R "
                                f"{service.line_control_number or 'missing'}) matches no line of claim "
                                f"{clp.patient_control_number}")
            remarks = ":".join(code for _, code in service.remarks) or claim_remarks
            common = dict(claim_line_pk=line.id if line else None, cpt=service.original_procedure or service.procedure,
                          service_date=service.service_date or (line.service_date if line else None),
                          units=service.units, rarc=remarks)
            if service.paid:
                entries.append(self._entry(payment, "payment", service.paid, **common))
            for adj in service.adjustments:
                entries.append(self._entry(payment, entry_type_for(adj.group, adj.reason), adj.amount,
                                           group_code=adj.group, carc=adj.reason, **common))
        # Claim level: the payment not carried by lines (all of it when there are none, or the part
        # claim-level adjustments took from the line payments), then the claim-level CAS.
        claim_level_paid = clp.paid - sum((s.paid for s in clp.services), ZERO)
        if claim_level_paid:
            entries.append(self._entry(payment, "payment", claim_level_paid, rarc=claim_remarks))
        for adj in clp.adjustments:
            entries.append(self._entry(payment, entry_type_for(adj.group, adj.reason), adj.amount,
                                       group_code=adj.group, carc=adj.reason, rarc=claim_remarks))
        for entry in entries:
            entry.update(claim_pk=payment.claim_pk, reversal=clp.is_reversal)
            self.outcome.totals[entry["entry_type"]] += entry["amount"]
        self.pending_entries.extend(entries)
        if primary is not None and claim.claim_filing_code == crossover.UNKNOWN_FILING and clp.filing_indicator:
            claim.claim_filing_code = clp.filing_indicator[:2]  # the carrier's own CLP06, now that it answered
        if claim is not None:
            _update_claim(claim, clp, entries)
            self.pending_rows.extend(claim.lines)
            if primary is None and crossover.forwards(claim, clp):
                self.flush()
                crossover.open_crossover(self.session, claim, *crossover.carrier_of(
                    clp, self.remittance.payer_key, self.remittance.payer_name))
        self.claims_since_flush += 1
        if self.claims_since_flush >= FLUSH_EVERY:
            self.flush()

    def _side(self, claim: models.Claim, clp: x835.ClaimPayment) -> tuple[models.Claim | None, models.Claim]:
        """(primary, claim to post to): (None, claim) when the payment is the primary's, else (claim, its
        crossover record), the record created when this is the first 835 of the secondary side."""
        self.flush()  # the question reads what this file posted so far (and lets go of the claims it posted)
        claim = self.session.get(models.Claim, claim.id, options=[selectinload(models.Claim.lines)])
        payer_key = self.remittance.payer_key
        side = crossover.crossover_of(self.session, claim)
        if not crossover.belongs_to_crossover(self.session, claim, side, clp, payer_key):
            return None, claim
        if side is None:
            side = crossover.open_crossover(self.session, claim, *crossover.carrier_of(
                clp, payer_key, self.remittance.payer_name))
        return claim, side

    def _not_posted(self, clp: x835.ClaimPayment, kind: str, message: str) -> None:
        """Record a claim payment that posts nothing (no ledger entries, no claim_pk, claim untouched)."""
        payment = self._claim_payment(clp, claim_pk=None)
        self._added(payment)
        self._exception(payment, kind, clp.patient_control_number, clp.charge, clp.paid, message)
        self.claims_since_flush += 1
        if self.claims_since_flush >= FLUSH_EVERY:
            self.flush()

    def _claim_payment(self, clp: x835.ClaimPayment, claim_pk: int | None) -> models.ClaimPayment:
        return models.ClaimPayment(
            remittance_id=self.remittance.id, claim_pk=claim_pk,
            patient_control_number=clp.patient_control_number, status_code=clp.status, charge_amount=clp.charge,
            paid_amount=clp.paid, patient_responsibility=clp.patient_responsibility,
            payer_claim_number=clp.payer_claim_control_number or None,
            crossover_payer=(clp.crossover_carrier.name[:60] if clp.crossover_carrier else None),
            remark_codes=":".join(clp.remark_codes) or None,
            money_key=self._money_key(clp),
        )

    def _posted_under_another_trace(self, clp: x835.ClaimPayment, claim: models.Claim | None) -> str | None:
        """The trace an identical claim payment (CLP01, 02, 03, 04, 07) already posted under, when it is
        another trace than this remittance's and that payment still stands (not reversed since)."""
        params = {"pcn": clp.patient_control_number, "charge": clp.charge, "negated_charge": -clp.charge,
                  "paid": clp.paid, "negated_paid": -clp.paid}
        if claim is not None:
            params["claim_pk"] = claim.id
        else:
            if self.foreign_pcns is None:
                self.foreign_pcns = set(self.session.connection().execute(_FOREIGN_PCNS).scalars())
            known = clp.patient_control_number in self.foreign_pcns
            self.foreign_pcns.add(clp.patient_control_number)  # it posts now, or is a copy of what did
            if not known:
                return None
        # on the session's connection: no autoflush (rows are flushed in batches), no ORM overhead per claim
        found = self.session.connection().execute(_POSTED_BY_CLAIM if claim is not None else _POSTED_BY_PCN, params)
        rows = [tuple(r) for r in found] + self.unflushed.get(clp.patient_control_number, [])
        return earlier_trace(clp.status, clp.charge, clp.paid, clp.payer_claim_control_number or None,
                             self.remittance.trace_number, rows)

    def _money_key(self, clp: x835.ClaimPayment) -> str:
        """The payment's identity: payer, trace and the CLP's figures, with its occurrence in this remittance
        (a claim can legitimately appear twice in one, e.g. reversed and corrected)."""
        base = "|".join(str(v) for v in (self.remittance.payer_key, self.remittance.trace_number,
                                          clp.patient_control_number, clp.status, clp.charge, clp.paid,
                                          clp.payer_claim_control_number or ""))
        self.occurrences[base] += 1
        return hashlib.sha256(f"{base}|{self.occurrences[base]}".encode()).hexdigest()

    def _added(self, *rows) -> None:
        rows = [r for r in rows if r is not None]
        self.session.add_all(rows)
        self.pending_rows.extend(rows)

    def flush(self) -> None:
        """Write what this batch of claims posted and let it go, so memory stays flat."""
        self.session.flush()
        if self.pending_entries:
            self.session.execute(insert(models.LedgerEntry), [
                {**{k: v for k, v in e.items() if k != "claim_payment"}, "claim_payment_id": e["claim_payment"].id}
                for e in self.pending_entries])
            self.pending_entries.clear()
        for row in self.pending_rows:
            if row in self.session:  # a claim paid twice in one file (reversal, correction) is listed twice
                self.session.expunge(row)
        self.pending_rows.clear()
        self.unflushed.clear()
        self.claims_since_flush = 0

    def _entry(self, payment: models.ClaimPayment, entry_type: str, amount: Decimal, **values) -> dict:
        """A ledger row, inserted in bulk at the next flush (once the payment has its id)."""
        return dict(remittance_id=self.remittance.id, claim_payment=payment, entry_type=entry_type, amount=amount,
                    claim_line_pk=None, cpt=None, service_date=None, units=None, rarc=None, group_code=None,
                    carc=None) | values

    def _exception(self, payment: models.ClaimPayment, kind: str, reference: str, charge: Decimal, paid: Decimal,
                   message: str) -> None:
        self._added(models.RemitException(
            remittance_id=self.remittance.id, claim_payment=payment, kind=kind, reference=reference[:80],
            charge_amount=charge, paid_amount=paid, message=message))

    def _post_plb(self, plb: x835.ProviderAdjustment) -> None:
        for item in plb.items:
            self.session.add(models.ProviderAdjustment(
                remittance_id=self.remittance.id, provider_id=plb.provider_id,
                fiscal_period_date=plb.fiscal_period_end, reason_code=item.reason,
                reference=item.reference or None, amount=item.amount))
            self.outcome.provider_adjustments += item.amount


def _posted_like(by_claim: bool):
    """Posted claim payments of one CLP01 with the same or negated CLP03 and CLP04, oldest first, as
    (CLP02, CLP03, CLP04, CLP07, trace); by claim_pk (indexed) when the claim is ours."""
    cp, rem = models.ClaimPayment, models.Remittance
    query = (select(cp.status_code, cp.charge_amount, cp.paid_amount, cp.payer_claim_number, rem.trace_number)
             .join(rem, rem.id == cp.remittance_id)
             .where(rem.status == "posted", cp.patient_control_number == bindparam("pcn"),
                    or_(cp.charge_amount == bindparam("charge"), cp.charge_amount == bindparam("negated_charge")),
                    or_(cp.paid_amount == bindparam("paid"), cp.paid_amount == bindparam("negated_paid")),
                    ~exists().where(models.RemitException.claim_payment_id == cp.id,
                                    models.RemitException.kind.in_(NOT_POSTED_KINDS)))
             .order_by(cp.id))
    return query.where(cp.claim_pk == bindparam("claim_pk")) if by_claim else query


_POSTED_BY_CLAIM = _posted_like(by_claim=True)
_POSTED_BY_PCN = _posted_like(by_claim=False)
# CLP01s of claim payments posted without a claim, or linked by hand to a claim of another id
_FOREIGN_PCNS = select(models.ClaimPayment.patient_control_number).distinct().where(or_(
    models.ClaimPayment.claim_pk.is_(None),
    ~exists().where(models.Claim.claim_id == models.ClaimPayment.patient_control_number)))


def earlier_trace(status: str, charge: Decimal, paid: Decimal, payer_claim_number: str | None, trace: str,
                  posted: list[tuple]) -> str | None:
    """Is this claim payment a duplicate? `posted`: the claim payments of its CLP01 already posted, as
    (CLP02, CLP03, CLP04, CLP07, trace). It is when an identical one was posted under another trace - unless
    reversals (CLP02 22, the figures negated) took back every identical one posted: then this is the
    payer's new adjudication after its reversal, and it posts. A reversal identical to one posted under
    another trace is a copy (a reissued check repeats its reversals too). Returns that other trace."""
    same = [r for r in posted if (r[0], r[1], r[2], r[3]) == (status, charge, paid, payer_claim_number)]
    others = [r[4] for r in same if r[4] != trace]
    if not others:
        return None
    if status == "22":
        return others[-1]
    reversals = sum(1 for r in posted if r[0] == "22" and r[1] == -charge and r[2] == -paid)
    return others[-1] if len(same) > reversals else None


def match_line(service: x835.ServicePayment, lines: list[models.ClaimLine], used: set[int]):
    """Our claim line for a 2110 service: by REF*6R, else by procedure, date and charge."""
    free = [line for line in lines if line.id not in used]
    if service.line_control_number:
        for line in free:
            if line.line_control_number == service.line_control_number:
                return line
    code = service.original_procedure or service.procedure
    candidates = [line for line in free if line.cpt == code
                  and (service.service_date is None or line.service_date == service.service_date)]
    same_charge = [line for line in candidates if line.charge_amount == abs(service.charge)]
    return (same_charge or candidates or [None])[0]


def _update_claim(claim: models.Claim, clp: x835.ClaimPayment, entries: list[dict]) -> None:
    """The claim's state after this adjudication (the ledger keeps every figure)."""
    apply_adjudication(claim, status=clp.status, payer_claim_number=clp.payer_claim_control_number or None,
                       crossover=clp.is_crossover, entries=entries)


def apply_adjudication(claim: models.Claim, *, status: str, payer_claim_number: str | None, crossover: bool,
                       entries: list[dict]) -> None:
    """Set the claim's status (and payer ICN) from one claim payment (CLP02, CLP07, NM1*TT) and the ledger
    entries it posted to the claim (dicts with entry_type and amount)."""
    reversal = status == "22"
    if payer_claim_number and not reversal:
        claim.payer_icn = payer_claim_number
    totals: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for entry in entries:
        totals[entry["entry_type"]] += entry["amount"]
    if reversal:
        claim.status = "reversed"
    elif crossover or status in ("19", "20", "21"):
        claim.status = "forwarded"
    elif status == "4" or (totals["payment"] <= 0 and totals["denial"] > 0):
        claim.status = "denied"
    elif totals["denial"] > 0:
        claim.status = "partially_paid"
    elif totals["patient_responsibility"] > 0:
        claim.status = "patient_balance"
    else:
        claim.status = "paid"
