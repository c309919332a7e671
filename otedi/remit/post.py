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

The second pass posts BATCH claims at a time: their claims, lines and earlier
payments are looked up by set, and their rows written in bulk
(`otedi.warehouse.bulk`); a claim payment that may belong to a crossover
record goes the ORM way, after and before what the batch wrote so far.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from sqlalchemy import bindparam, exists, func, select, update
from sqlalchemy.orm import Session, selectinload

from otedi import config
from otedi.charges.load import file_sha256
from otedi.errors import X12Error
from otedi.remit import crossover
from otedi.warehouse import models
from otedi.warehouse.bulk import insert_rows, reserve_ids
from otedi.warehouse.inbound import inbound_record
from otedi.x12 import x835

log = logging.getLogger(__name__)

ZERO = Decimal("0.00")
BATCH = 500  # claims looked up together (one IN list: both databases cap bound parameters) and written together
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


def posting_rules() -> dict[str, str]:
    """CARC -> ledger entry type of CO/OA/PI adjustments (mappings/remit/adjustment_posting.yaml)."""
    return _posting_rules(str(config.mappings_dir()))


def entry_type_for(group: str, carc: str, rules: dict[str, str]) -> str:
    """Ledger entry type of a CAS adjustment, by `posting_rules()`."""
    if group == "PR":
        return "patient_responsibility"
    if group == "CR":
        return "other_adjustment"
    return rules.get(carc, "denial")


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
    with _unprepared(session):
        for item in x835.iter_835(path, waive=waive):
            poster.feed(item)
        poster.finish()
    result.transactions = poster.outcomes
    held = sum(1 for t in poster.outcomes if t.status != "posted")
    if held:
        result.status = "held" if held == len(poster.outcomes) else "partly_held"
    inbound.status = result.status
    session.flush()
    log.info("835 %s: %d transaction(s), %d held or duplicate", name, len(poster.outcomes), held)
    return result


@contextmanager
def _unprepared(session: Session) -> Iterator[None]:
    """PostgreSQL: the posting's statements sent unprepared, so that each is planned for its own values.
    psycopg prepares a statement run 5 times, and PostgreSQL then plans it once for any values: for the lookup
    of earlier payments by a batch's CLP01s that generic plan walks every payment of the remittance (0.3-0.5 s
    a batch at 20,000 claims, growing), where planned for the batch's values it takes the CLP01 index (a few
    ms). (plan_cache_mode would do it too, but would also re-plan the foreign key checks of every row.)"""
    if session.get_bind().dialect.name != "postgresql":
        yield
        return
    driver = session.connection().connection.driver_connection
    threshold, driver.prepare_threshold = driver.prepare_threshold, None
    try:
        yield
    finally:
        driver.prepare_threshold = threshold


@dataclass(slots=True)
class _Claim:
    """One of our claims as posting reads and sets it, read in bulk (the crossover path uses the ORM claim)."""

    id: int
    claim_id: str
    payer_sequence: str
    status: str
    payer_icn: str | None
    lines: list = field(default_factory=list)  # claim_line rows (id, line_number, line_control_number, ...)


class _Poster:
    """Second pass: turns the parsed items of one file into ledger rows, BATCH claims at a time: their claims,
    lines and earlier payments looked up by set, their rows written in bulk."""

    def __init__(self, session: Session, inbound: models.InboundFile, summaries: list[x835.TransactionSummary]):
        self.session = session
        self.inbound = inbound
        self.summaries = iter(summaries)
        self.outcomes: list[TransactionOutcome] = []
        self.remittance: models.Remittance | None = None
        self.outcome: TransactionOutcome | None = None
        self.posted_here: set[tuple[str, str]] = set()
        self.occurrences: Counter[str] = Counter()
        self.rules = posting_rules()
        self.batch: list[x835.ClaimPayment] = []
        # the batch's lookups: our claims by CLP01, and per CLP01 the claim payments posted before it (with
        # those the batch posts, as they post) as (claim_pk, CLP02, CLP03, CLP04, CLP07, trace)
        self.claims: dict[str, _Claim] = {}
        self.posted: dict[str, list[tuple]] = {}
        # rows not written yet: claim payments, and the ledger entries and exceptions pointing at them (by the
        # payment's dict under "payment", replaced by its id when written), claims' new status
        self.payments: list[dict] = []
        self.entries: list[dict] = []
        self.exceptions: list[dict] = []
        self.claim_updates: list[dict] = []

    def feed(self, item) -> None:
        if isinstance(item, x835.RemittanceHeader):
            self._post_batch()
            self._start(item, next(self.summaries))
        elif self.outcome.status != "posted":
            return
        elif isinstance(item, x835.ClaimPayment):
            self.batch.append(item)
            if len(self.batch) >= BATCH:
                self._post_batch()
        elif isinstance(item, x835.ProviderAdjustment):
            self._post_plb(item)

    def finish(self) -> None:
        self._post_batch()
        self.session.flush()

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

    def _post_batch(self) -> None:
        """Post the claims collected so far: look up their claims, lines and earlier payments, post each,
        write the rows."""
        batch, self.batch = self.batch, []
        if not batch:
            return
        pcns = sorted({clp.patient_control_number for clp in batch})
        self.claims = _claims_of(self.session, pcns)
        self.posted = defaultdict(list)
        for pk, pcn, *figures in self.session.execute(_POSTED, {"pcns": pcns}):
            self.posted[pcn].append((pk, *figures))
        for clp in batch:
            self._post_claim(clp)
        self._write()

    def _post_claim(self, clp: x835.ClaimPayment) -> None:
        claim = self.claims.get(clp.patient_control_number)
        primary = None  # set when the payment posts to the crossover record of this (primary) claim
        routed = claim is not None and clp.status != PREDETERMINATION and crossover.needs_routing(claim, clp)
        if routed:  # from here on the ORM claim (and its crossover record), read after what was posted so far
            primary, claim = self._side(claim.id, clp)
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
            if routed:
                self._routed_done(clp)
            return
        self.posted.setdefault(clp.patient_control_number, []).append(
            (claim.id if claim else None, clp.status, clp.charge, clp.paid, clp.payer_claim_control_number or None,
             self.remittance.trace_number))
        payment = self._claim_payment(clp, claim.id if claim else None)
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
        claim_pk = claim.id if claim else None
        reversal = clp.is_reversal
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
            line_pk = line.id if line else None
            cpt = service.original_procedure or service.procedure
            service_date = service.service_date or (line.service_date if line else None)
            if service.paid:
                entries.append(self._entry(payment, claim_pk, reversal, "payment", service.paid, None, None,
                                           remarks, line_pk, cpt, service_date, service.units))
            for adj in service.adjustments:
                entries.append(self._entry(payment, claim_pk, reversal,
                                           entry_type_for(adj.group, adj.reason, self.rules), adj.amount, adj.group,
                                           adj.reason, remarks, line_pk, cpt, service_date, service.units))
        # Claim level: the payment not carried by lines (all of it when there are none, or the part
        # claim-level adjustments took from the line payments), then the claim-level CAS.
        claim_level_paid = clp.paid - sum((s.paid for s in clp.services), ZERO)
        if claim_level_paid:
            entries.append(self._entry(payment, claim_pk, reversal, "payment", claim_level_paid, None, None,
                                       claim_remarks))
        for adj in clp.adjustments:
            entries.append(self._entry(payment, claim_pk, reversal, entry_type_for(adj.group, adj.reason, self.rules),
                                       adj.amount, adj.group, adj.reason, claim_remarks))
        totals = self.outcome.totals
        for entry in entries:
            totals[entry["entry_type"]] += entry["amount"]
        self.entries.extend(entries)
        if claim is not None:
            _update_claim(claim, clp, entries)
            if not routed:
                self.claim_updates.append({"pk": claim.id, "new_status": claim.status,
                                           "icn": claim.payer_icn if clp.payer_claim_control_number else None})
        if routed:
            if primary is not None and claim.claim_filing_code == crossover.UNKNOWN_FILING and clp.filing_indicator:
                claim.claim_filing_code = clp.filing_indicator[:2]  # the carrier's own CLP06, now that it answered
            if primary is None and crossover.forwards(claim, clp):
                self._write()
                crossover.open_crossover(self.session, claim, *crossover.carrier_of(
                    clp, self.remittance.payer_key, self.remittance.payer_name))
            self._routed_done(clp)

    def _side(self, claim_pk: int, clp: x835.ClaimPayment) -> tuple[models.Claim | None, models.Claim]:
        """(primary, claim to post to), ORM claims: (None, claim) when the payment is the primary's, else (claim,
        its crossover record), the record created when this is the first 835 of the secondary side."""
        self._write()  # the question reads what this file posted so far
        claim = self.session.get(models.Claim, claim_pk, options=[selectinload(models.Claim.lines)],
                                 populate_existing=True)
        payer_key = self.remittance.payer_key
        side = crossover.crossover_of(self.session, claim)
        if not crossover.belongs_to_crossover(self.session, claim, side, clp, payer_key):
            return None, claim
        if side is None:
            side = crossover.open_crossover(self.session, claim, *crossover.carrier_of(
                clp, payer_key, self.remittance.payer_name))
        return claim, side

    def _routed_done(self, clp: x835.ClaimPayment) -> None:
        """After a claim payment on the crossover path: write it, and read its claim again for the rest of the
        batch (its status may have changed)."""
        self._write()
        self.session.flush()
        self.claims.update(_claims_of(self.session, [clp.patient_control_number]))

    def _not_posted(self, clp: x835.ClaimPayment, kind: str, message: str) -> None:
        """Record a claim payment that posts nothing (no ledger entries, no claim_pk, claim untouched)."""
        payment = self._claim_payment(clp, claim_pk=None)
        self._exception(payment, kind, clp.patient_control_number, clp.charge, clp.paid, message)

    def _claim_payment(self, clp: x835.ClaimPayment, claim_pk: int | None) -> dict:
        """A claim_payment row, written with the batch (its id is reserved then)."""
        payment = dict(
            id=None, remittance_id=self.remittance.id, claim_pk=claim_pk,
            patient_control_number=clp.patient_control_number, status_code=clp.status, charge_amount=clp.charge,
            paid_amount=clp.paid, patient_responsibility=clp.patient_responsibility,
            payer_claim_number=clp.payer_claim_control_number or None,
            crossover_payer=(clp.crossover_carrier.name[:60] if clp.crossover_carrier else None),
            remark_codes=":".join(clp.remark_codes) or None,
            money_key=self._money_key(clp),
        )
        self.payments.append(payment)
        return payment

    def _posted_under_another_trace(self, clp: x835.ClaimPayment, claim) -> str | None:
        """The trace an identical claim payment (CLP01, 02, 03, 04, 07) already posted under, when it is
        another trace than this remittance's and that payment still stands (not reversed since). Our claim's
        payments are those posted to it (claim_pk); a CLP01 not ours has those of any claim_pk."""
        posted = self.posted.get(clp.patient_control_number, ())
        rows = [r[1:] for r in posted if claim is None or r[0] == claim.id]
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

    def _write(self) -> None:
        """Write the rows posted since the last write: the claim payments (with reserved ids), then the ledger
        entries and exceptions pointing at them, then the claims' new status; the ORM's rows first."""
        self.session.flush()
        if not self.payments:
            return
        connection = self.session.connection()
        ids = reserve_ids(connection, models.ClaimPayment.__table__, len(self.payments))
        for payment, pk in zip(self.payments, ids):
            payment["id"] = pk
        now = models.utcnow()
        for entry in self.entries:
            entry["claim_payment_id"] = entry.pop("payment")["id"]
            entry["posted_at"] = now
        for exception in self.exceptions:
            exception["claim_payment_id"] = exception.pop("payment")["id"]
        insert_rows(connection, models.ClaimPayment.__table__, self.payments)
        insert_rows(connection, models.LedgerEntry.__table__, self.entries)
        insert_rows(connection, models.RemitException.__table__, self.exceptions)
        if self.claim_updates:
            connection.execute(_SET_CLAIM, self.claim_updates)
        self.payments, self.entries, self.exceptions, self.claim_updates = [], [], [], []

    def _entry(self, payment: dict, claim_pk: int | None, reversal: bool, entry_type: str, amount: Decimal,
               group_code: str | None, carc: str | None, rarc: str | None, claim_line_pk: int | None = None,
               cpt: str | None = None, service_date=None, units: Decimal | None = None) -> dict:
        """A ledger row, written with the batch (once its payment has an id)."""
        return dict(remittance_id=self.remittance.id, payment=payment, claim_pk=claim_pk,
                    claim_line_pk=claim_line_pk, entry_type=entry_type, group_code=group_code, carc=carc, rarc=rarc,
                    amount=amount, units=units, cpt=cpt, service_date=service_date, reversal=reversal)

    def _exception(self, payment: dict, kind: str, reference: str, charge: Decimal, paid: Decimal,
                   message: str) -> None:
        self.exceptions.append(dict(
            remittance_id=self.remittance.id, payment=payment, kind=kind, reference=reference[:80],
            charge_amount=charge, paid_amount=paid, message=message, resolved=False))

    def _post_plb(self, plb: x835.ProviderAdjustment) -> None:
        for item in plb.items:
            self.session.add(models.ProviderAdjustment(
                remittance_id=self.remittance.id, provider_id=plb.provider_id,
                fiscal_period_date=plb.fiscal_period_end, reason_code=item.reason,
                reference=item.reference or None, amount=item.amount))
            self.outcome.provider_adjustments += item.amount


def _claims_of(session: Session, pcns: list[str]) -> dict[str, _Claim]:
    """Our claims with these CLP01s (at most BATCH), with their lines, by claim id."""
    claims = {row.claim_id: _Claim(*row) for row in session.execute(_CLAIMS, {"ids": pcns})}
    by_pk = {claim.id: claim for claim in claims.values()}
    if by_pk:
        for line in session.execute(_LINES, {"pks": list(by_pk)}):
            by_pk[line.claim_pk].lines.append(line)
    return claims


_CLAIMS = select(models.Claim.id, models.Claim.claim_id, models.Claim.payer_sequence, models.Claim.status,
                 models.Claim.payer_icn).where(models.Claim.claim_id.in_(bindparam("ids", expanding=True)))
_LINES = (select(models.ClaimLine.claim_pk, models.ClaimLine.id, models.ClaimLine.line_number,
                 models.ClaimLine.line_control_number, models.ClaimLine.cpt, models.ClaimLine.service_date,
                 models.ClaimLine.charge_amount)
          .where(models.ClaimLine.claim_pk.in_(bindparam("pks", expanding=True)))
          .order_by(models.ClaimLine.claim_pk, models.ClaimLine.line_number))
_CP, _REM = models.ClaimPayment, models.Remittance
# Posted claim payments of some CLP01s, oldest first, as (claim_pk, CLP01, CLP02, CLP03, CLP04, CLP07, trace):
# every payment of a posted remittance but those recorded and not posted (duplicates, predeterminations).
_POSTED = (select(_CP.claim_pk, _CP.patient_control_number, _CP.status_code, _CP.charge_amount, _CP.paid_amount,
                  _CP.payer_claim_number, _REM.trace_number)
           .join(_REM, _REM.id == _CP.remittance_id)
           .where(_REM.status == "posted", _CP.patient_control_number.in_(bindparam("pcns", expanding=True)),
                  ~exists().where(models.RemitException.claim_payment_id == _CP.id,
                                  models.RemitException.kind.in_(NOT_POSTED_KINDS)))
           .order_by(_CP.id))
_CLAIM_TABLE = models.Claim.__table__
# A claim's status after a claim payment; its payer ICN when the payment named one (else unchanged).
_SET_CLAIM = (update(_CLAIM_TABLE).where(_CLAIM_TABLE.c.id == bindparam("pk"))
              .values(status=bindparam("new_status"),
                      payer_icn=func.coalesce(bindparam("icn"), _CLAIM_TABLE.c.payer_icn)))


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
