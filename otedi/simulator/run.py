"""One simulator run: answer new 837P files, then make today's payments.

Drop folder (what the clearinghouse shares with us):
  <drop>/outbound/   our 837P files (anything but *.part and dot-files)
  <drop>/inbound/    the answers: <837 name stem>.999, <837 name stem>.277,
                     <payer id>_<payee NPI>_<YYYYMMDD><payment number>.835 (the TRN02 trace)
Each answer is written as <name>.part and renamed, so a reader never sees half a file.

Per new 837P file: pyx12 validates it and a 999 answers every transaction
set; claims of accepted sets get front-end edits and a 277CA; accepted
claims are adjudicated at once (deductible, KX and duplicate history move in
file order) and wait in the state for their payment run. A commercial payer
answers a few original claims with a predetermination first (CLP02 25) and
adjudicates them predetermination_weeks later.

The payment run sends, per payer and payee, every answer whose release date
has come: adjudicated claims, predeterminations, and Medicaid's claims of
crossovers. Sometimes with a reversal and its correction, interest or a
recovery, sometimes split over several 835 files.

Crossovers: given the charge extracts (`eligibility_from`, read by
eligibility.py as the states' dual-eligible files), Medicare forwards a dual
eligible's paid claim with cost sharing left to the Medicaid payer (CLP02 19,
NM1*TT). When that Medicare 835 is sent, Medicaid's claim of it (CLP02 2,
same CLP01 and REF*6R, Medicaid's own ICN) is queued in the state's pending
list for the payment run on Medicare's payment date (BPR16) plus
days_until_payment.medicaid: a later run, once. Neither side of a crossover is
ever reversed or recovered from (model.ClaimPayment.reversible); without
eligibility nothing is crossed over.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlparse

from otedi import config
from otedi.coding.payers import payer_rules
from otedi.errors import X12Error
from otedi.files import private_dir
from otedi.simulator.adjudicate import Adjudicator, ClaimAck, front_end, readjudicate, seeded
from otedi.simulator.eligibility import Extract, dual_eligibles
from otedi.simulator.envelope import Interchange, Parties
from otedi.simulator.model import ZERO, ClaimPayment, Coverage, cents
from otedi.simulator.reader837 import read_837p
from otedi.simulator.settings import Settings, load_settings
from otedi.simulator.state import SimulatorState, load_state, save_state, write_atomically
from otedi.simulator import write277ca, write835, write999
from otedi.transport import RemoteFolders, open_drop
from otedi.x12.validate import validate_file

STATE_DIR = ".simulator"  # simulate_once keeps its state in <drop>/.simulator/


@dataclass
class SimulationResult:
    files_answered: list[str] = field(default_factory=list)  # 837P names picked up this run
    unreadable: list[str] = field(default_factory=list)  # not X12 at all: no 999 is possible
    acks_999: list[Path] = field(default_factory=list)
    acks_277ca: list[Path] = field(default_factory=list)
    remittances: list[Path] = field(default_factory=list)
    rejected_sets: int = 0  # 837P transaction sets rejected on the 999
    accepted_claims: int = 0  # 277CA A2
    rejected_claims: int = 0  # 277CA A3/A7
    paid_claims: int = 0  # claims on today's 835s but reversals and predeterminations (corrections included)
    reversals: int = 0
    predeterminations: int = 0  # CLP02 25 on today's 835s (their adjudication follows later)
    crossed_over: int = 0  # Medicare claims on today's 835s forwarded to Medicaid (CLP02 19)
    held_claims: int = 0  # adjudicated, 835 not sent yet (after this run), predetermined ones included
    crossovers_waiting: int = 0  # Medicaid's claims of crossovers not sent yet (after this run)


def simulate_once(drop: str | Path, seed: int = 0, today: date | None = None, *,
                  key_file: str | None = None, state_dir: Path | None = None,
                  eligibility_from: Sequence[Extract] = ()) -> SimulationResult:
    """For the CLI. `drop` is a folder or a file:// URL (state in <drop>/.simulator/), or an
    sftp:// URL (state in `state_dir`, default $OTEDI_HOME/simulator). `eligibility_from`: charge
    extracts that tell Medicare who is dual eligible (eligibility.py)."""
    text = str(drop)
    parsed = urlparse(text)
    today = today or date.today()
    if parsed.scheme == "sftp":
        return _simulate_over_sftp(text, seed, today, key_file, state_dir or config.home() / "simulator",
                                   eligibility_from)
    if parsed.scheme == "file":
        folder = Path(parsed.path)
    elif len(parsed.scheme) <= 1:  # a plain path (or a Windows drive letter)
        folder = Path(text)
    else:
        raise ValueError(f"the simulator works on file:// and sftp:// drops, not {parsed.scheme}://")
    return simulate(folder, folder / STATE_DIR, seed=seed, today=today, eligibility_from=eligibility_from)


def _simulate_over_sftp(url: str, seed: int, today: date, key_file: str | None, state_dir: Path,
                        eligibility_from: Sequence[Extract]) -> SimulationResult:
    """The clearinghouse's side of an SFTP drop, as the mirror image of our client: it fetches our
    837P files from outbound/ into a local copy of the drop, answers them there, and uploads each
    answer to inbound/ once (the names uploaded are kept beside the state)."""
    mirror = state_dir / "drop"
    (mirror / "outbound").mkdir(parents=True, exist_ok=True)
    uploaded_list = state_dir / "uploaded.txt"
    uploaded = set(uploaded_list.read_text().split()) if uploaded_list.exists() else set()
    swapped = RemoteFolders(outbound="inbound", inbound="outbound", processed=None)
    with open_drop(url, key_file=key_file, remote_folders=swapped) as drop:
        received = drop.fetch(state_dir / "received",
                              already_have=lambda name, size, sha: (mirror / "outbound" / name).exists())
        for fetched in received:
            shutil.copyfile(fetched.local_path, mirror / "outbound" / fetched.remote_name)
        result = simulate(mirror, state_dir, seed=seed, today=today, eligibility_from=eligibility_from)
        for answer in sorted((mirror / "inbound").iterdir()):
            if answer.name not in uploaded and not answer.name.endswith(".part"):
                drop.send(answer, remote_name=answer.name)
                uploaded.add(answer.name)
                write_atomically(uploaded_list, "\n".join(sorted(uploaded)) + "\n")
    return result


def simulate(drop_dir: Path, state_dir: Path, *, seed: int, today: date, settings: Settings | None = None,
             eligibility_from: Sequence[Extract] = ()) -> SimulationResult:
    """Answer the new 837P files and make today's payments. One simulator at a time per state: a second
    one started meanwhile (two `otedi run` at once) waits, then finds the files answered.
    `eligibility_from`: charge extracts, each a path or (path, column mapping), whose patients with a
    Medicare primary and a Medicaid secondary are dual eligible (eligibility.py); none: no crossovers."""
    drop_dir, state_dir = Path(drop_dir), Path(state_dir)
    duals = dual_eligibles(eligibility_from)
    private_dir(state_dir)
    with open(state_dir / "lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or by the kernel if killed
        return _simulate(drop_dir, state_dir, seed=seed, today=today, settings=settings, duals=duals)


def _simulate(drop_dir: Path, state_dir: Path, *, seed: int, today: date, settings: Settings | None,
              duals: dict[str, Coverage]) -> SimulationResult:
    run = _Run(load_state(state_dir), settings or load_settings(), seed, today, drop_dir / "inbound", duals)
    private_dir(run.inbound)
    outbound = drop_dir / "outbound"
    names = sorted(p.name for p in outbound.iterdir()) if outbound.is_dir() else []
    for name in names:
        path = outbound / name
        if path.is_file() and not name.endswith(".part") and not name.startswith(".") and name not in run.state.files:
            run.answer_file(path)
    run.payment_run()
    waiting = [c for c in run.state.pending if c.status != "25"]  # a predetermined claim counts by its adjudication
    run.result.crossovers_waiting = sum(1 for c in waiting if c.prior_payer_icn)
    run.result.held_claims = len(waiting) - run.result.crossovers_waiting
    save_state(run.state, state_dir)
    return run.result


class _Run:
    def __init__(self, state: SimulatorState, settings: Settings, seed: int, today: date, inbound: Path,
                 duals: dict[str, Coverage]):
        self.state = state
        self.settings = settings
        self.seed = seed
        self.today = today
        self.inbound = inbound
        self.result = SimulationResult()
        self.adjudicator = Adjudicator(state, settings, seed, today, duals)

    def _write(self, name: str, text: str) -> Path:
        path = self.inbound / name
        write_atomically(path, text)
        return path

    # --- 999 and 277CA ----------------------------------------------------------------------------

    def answer_file(self, path: Path) -> None:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        record = {"sha256": digest, "answered_on": self.today.isoformat()}
        self.state.files[path.name] = record
        self.result.files_answered.append(path.name)
        try:
            envelope_only = read_837p(path, claims=False)
        except X12Error:
            record["outcome"] = "unreadable"
            self.result.unreadable.append(path.name)
            return
        parties = Parties(envelope_only.receiver_qualifier, envelope_only.receiver_id, envelope_only.gs03,
                          envelope_only.sender_qualifier, envelope_only.sender_id, envelope_only.usage)
        ack = write999.acknowledge(envelope_only, validate_file(path))
        envelope = Interchange(parties, self.state.next("interchange"), self.today,
                               functional_id="FA", version=write999.VERSION)
        self.result.acks_999.append(self._write(f"{path.stem}.999", write999.render_999(envelope_only, ack, envelope)))
        accepted = {s.transaction.st02 for s in ack.accepted_sets}
        self.result.rejected_sets += len(ack.sets) - len(accepted)
        record["outcome"] = f"{len(accepted)} of {len(ack.sets)} transaction sets accepted"
        if not accepted:
            return
        full = read_837p(path)
        answers = []
        for tx in full.transactions:
            if tx.st02 in accepted:
                answers.append((tx, [self._claim(claim, full) for claim in tx.claims]))
        envelope = Interchange(parties, self.state.next("interchange"), self.today,
                               functional_id="HN", version=write277ca.VERSION)
        text = write277ca.render_277ca(answers, full.sender_id, envelope, self.today)
        self.result.acks_277ca.append(self._write(f"{path.stem}.277", text))

    def _claim(self, claim, interchange) -> ClaimAck:
        rules, _ = payer_rules(claim.payer_id, claim.filing_code, on=claim.first_date)
        rejection = front_end(claim, rules)
        if rejection is None and seeded(self.seed, "eligibility", claim.claim_id).random() < \
                self.settings.rates.eligibility_rejection:
            rejection = ClaimAck(claim, "A7", "33", "IL")  # the payer cannot find the subscriber
        if rejection is not None:
            self.result.rejected_claims += 1
            return rejection
        self.result.accepted_claims += 1
        icn = self._icn()
        # A replacement (7) or void (8) names the payer's claim number it stands for (REF*F8): that
        # claim's lines stop counting as paid, so the replacement is not denied as their duplicate,
        # and its payment is reversed (CLP02 22) in the same payment as the replacement's.
        original = self._take_back(claim) if claim.frequency in ("7", "8") else None
        release_on = self.today
        if claim.frequency != "8":  # a void only takes the original back
            answers = self.adjudicator.with_predetermination(
                claim, rules, self.adjudicator.claim(claim, rules, interchange, icn))
            self.state.pending.extend(answers)
            release_on = answers[-1].release_on  # a reversal goes with the adjudication, not a predetermination
        if original is not None:
            self.state.pending.append(replace(original.reversed(), release_on=release_on))
            self.result.reversals += 1
        return ClaimAck(claim, "A2", "20", icn=icn)

    def _take_back(self, claim) -> ClaimPayment | None:
        original = self.state.paid.pop(claim.payer_claim_number, None)
        if original is not None:
            del self.state.paid_on[claim.payer_claim_number]
            for key in [k for k, icn in self.state.paid_lines.items() if icn == original.icn]:
                del self.state.paid_lines[key]
        return original

    def _icn(self, received: date | None = None) -> str:
        """Payer claim control number: YYDDD (Julian receipt date, default today) + a sequence number."""
        received = received or self.today
        return f"{received:%y}{received.timetuple().tm_yday:03d}{self.state.next('icn'):08d}"

    # --- 835 ----------------------------------------------------------------------------------------

    def payment_run(self) -> None:
        due = [c for c in self.state.pending if c.release_on <= self.today]
        self.state.pending = [c for c in self.state.pending if c.release_on > self.today]
        groups: dict[tuple[str, str], list[ClaimPayment]] = defaultdict(list)
        for claim in due:
            groups[claim.group_key].append(claim)
        for key in sorted(groups):
            self._pay_group(key, groups[key])

    def _pay_group(self, key: tuple[str, str], claims: list[ClaimPayment]) -> None:
        rates = self.settings.rates
        rng = seeded(self.seed, "payment", *key, self.today)
        reversals = [c for c in claims if c.status == "22"]
        if reversals and sum((c.paid for c in claims), ZERO) < 0:
            # A payment cannot be negative: the reversals wait for a run with more to pay.
            self.state.pending.extend(reversals)
            claims = [c for c in claims if c.status != "22"]
            reversals = []
            if not claims:
                return
        chunks = [claims]
        if len(claims) >= 2 and not reversals and rng.random() < rates.split:
            parts = rng.randint(2, min(3, len(claims)))
            size = -(-len(claims) // parts)
            chunks = [claims[i:i + size] for i in range(0, len(claims), size)]
        earlier = [c for icn, c in sorted(self.state.paid.items())
                   if c.group_key == key and c.paid > 0 and self.state.paid_on[icn] < self.today.isoformat()]
        if earlier and rng.random() < rates.reversal:
            original = rng.choice(earlier)
            corrected = readjudicate(original, self._icn(), self.settings)
            if sum((c.paid for c in chunks[0]), corrected.paid - original.paid) >= 0:
                del self.state.paid[original.icn], self.state.paid_on[original.icn]
                earlier.remove(original)
                chunks[0] = [original.reversed(), corrected, *chunks[0]]
                self.result.reversals += 1
        for chunk in chunks:
            self._send(chunk, self._provider_adjustments(rng, chunk, earlier))

    def _provider_adjustments(self, rng, claims: list[ClaimPayment],
                              earlier: list[ClaimPayment]) -> tuple[write835.ProviderAdjustment, ...]:
        rates, out = self.settings.rates, []
        total = sum((c.paid for c in claims), ZERO)
        paid = [c for c in claims if c.status != "22" and c.paid > 0]
        if paid and rng.random() < rates.interest:
            claim = rng.choice(paid)
            days = rng.randint(*self.settings.interest_days)
            interest = cents(claim.paid * self.settings.interest_annual_rate * days / 365)
            if interest > 0:
                out.append(write835.ProviderAdjustment("L6", claim.icn, -interest))
                total += interest
        if earlier and rng.random() < rates.recovery:
            claim = rng.choice(earlier)
            earlier.remove(claim)  # recovered once per run
            low, high = self.settings.recovery_share
            share = low + (high - low) * Decimal(str(round(rng.random(), 4)))
            recovery = min(cents(claim.paid * share), total)
            if recovery > 0:
                out.append(write835.ProviderAdjustment("WO", claim.icn, recovery))
        return tuple(out)

    def _send(self, claims: list[ClaimPayment], adjustments: tuple) -> None:
        first = claims[0]
        kind = first.payer_kind
        trace = f"{self.today:%Y%m%d}{self.state.next('trace'):06d}"
        payment = write835.Payment(
            payer_kind=kind, payer_id=first.payer_id, payer_name=first.payer_name,
            payer=self.settings.payers[kind], payee_name=first.payee_name, payee_npi=first.payee_npi,
            payee_ein=first.payee_ein, method=self.settings.method[kind], trace=trace,
            effective=self.today + timedelta(days=self.settings.days_until_payment[kind]),
            claims=tuple(claims), adjustments=adjustments)
        parties = Parties(first.clearinghouse_qualifier, first.clearinghouse_id, first.gs_clearinghouse,
                          first.submitter_qualifier, first.submitter_id, first.usage)
        envelope = Interchange(parties, self.state.next("interchange"), self.today,
                               functional_id="HP", version=write835.VERSION)
        text = write835.render_835(payment, envelope, self.settings.provider_bank_routing, self.today)
        self.result.remittances.append(self._write(f"{first.payer_id}_{first.payee_npi}_{trace}.835", text))
        for claim in claims:
            if claim.reversible:
                self.state.record_paid(claim, self.today)
            if claim.status == "25":
                self.result.predeterminations += 1
            elif claim.status != "22":
                self.result.paid_claims += 1
            if claim.crossover_carrier is not None:
                self._cross_over(claim, payment.effective)

    def _cross_over(self, claim: ClaimPayment, paid_on: date) -> None:
        """Queue Medicaid's claim of a claim Medicare forwarded on today's 835: Medicaid receives it on
        Medicare's payment date and answers days_until_payment.medicaid later. Its ICN is its receipt date,
        the Medicare ICN's sequence number and 01 (a crossover): drawn from the Medicare claim rather than
        the counter, so every ICN is the same whichever run of the simulator crossed the claim over."""
        release_on = paid_on + timedelta(days=self.settings.days_until_payment["medicaid"])
        icn = f"{paid_on:%y}{paid_on.timetuple().tm_yday:03d}{claim.icn[5:]}01"
        self.state.pending.append(self.adjudicator.crossover(claim, icn, paid_on, release_on))
        self.result.crossed_over += 1
