"""Load 999 and 277CA acknowledgments and move our claims' status on.

999: the clearinghouse's syntax verdict on each of our 837P transaction sets,
linked to our file by its group and transaction control numbers (AK102 =
our GS06, AK202 = our ST02) and by who sent it: control numbers are counted
per clearinghouse, so two clearinghouses can each have a group 1. A 999 is
addressed the other way round from our 837P: its ISA06/GS02 must be the
clearinghouse our file went to (isa_receiver_id / gs_receiver_code) and its
ISA08/GS03 the practice that sent it (submitter_id); AK101/AK103 and
AK201/AK203, when sent, must be what our GS01/GS08 and ST01/ST03 were. A set
that matches none of our files is recorded as unmatched (never guessed). A
rejected set rejects every claim in it; the IK3/IK4 errors are translated
into plain words and pinned to the claim whose segments they point at.

277CA: the payer's front-end verdict per claim, linked by the patient
control number (TRN02 = our CLM01), with the payer's claim number (REF*1K)
kept for later corrections.

Each file is processed once (content hash); a file that cannot be read is
quarantined with the segment and the problem. An 835 is refused and not
recorded, so `otedi remit post` still posts it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from otedi import config
from otedi.charges.load import file_sha256
from otedi.errors import X12Error
from otedi.warehouse import models
from otedi.warehouse.inbound import inbound_record
from otedi.x12 import x277ca, x837p, x999
from otedi.x12.reader import TransactionEnvelope, read_segments

log = logging.getLogger(__name__)

# A status from an acknowledgment never overrides what adjudication said later.
ACK_UPDATABLE = {"batched", "submitted", "accepted", "rejected"}

# Files another command loads (ST01 -> that command): refused here, not recorded as processed.
REMIT_KINDS = {"835": "otedi remit post"}
GROUP_REJECTED = ("R", "M", "W", "X")  # AK901: the whole functional group is rejected
ACK_KINDS = {"999": "otedi acks load", "277": "otedi acks load"}


def wrong_command_message(name: str, kind: str, command: str, right: dict[str, str]) -> str | None:
    """The one line refusing a file `command` does not load (None when it is not one of `right`'s kinds)."""
    if kind not in right:
        return None
    return (f"{name}: ST01 {kind} is not for `{command}`; refused, nothing recorded: "
            f"load it with `{right[kind]}`")


@dataclass
class AckFileResult:
    file: str
    kind: str  # 999 | 277 | 835 | unknown (ST01)
    status: str  # loaded | quarantined | already_loaded | refused (another command's file: not recorded)
    message: str | None = None
    transaction_sets: int = 0  # 999: sets acknowledged
    sets_rejected: int = 0
    claims_accepted: int = 0
    claims_rejected: int = 0
    unmatched: list[str] = field(default_factory=list)  # control numbers or claim ids we do not know

    def summary(self) -> dict:
        return {"file": self.file, "kind": self.kind, "status": self.status, "message": self.message,
                "transaction_sets": self.transaction_sets, "sets_rejected": self.sets_rejected,
                "claims_accepted": self.claims_accepted, "claims_rejected": self.claims_rejected,
                "unmatched": self.unmatched}


def load_ack_file(session: Session, path: str | Path, name: str | None = None) -> AckFileResult:
    """Load one 999 or 277CA file (idempotent by content hash). `name`: how to call it (default: its
    file name). The caller commits."""
    path = Path(path)
    name = name or path.name
    digest = file_sha256(path)
    kind = transaction_set_of(path)
    result = AckFileResult(file=name, kind=kind, status="loaded")
    refusal = wrong_command_message(name, kind, "otedi acks load", REMIT_KINDS)
    if refusal:
        result.status, result.message = "refused", refusal
        log.warning("%s", refusal)
        return result
    inbound = inbound_record(session, name, digest, path.stat().st_size, kind, "loaded")
    if inbound is None:
        result.status = "already_loaded"
        return result
    try:
        with session.begin_nested():
            if kind == "999":
                _load_999(session, path, inbound, result)
            elif kind == "277":
                _load_277ca(session, path, inbound, result)
            else:
                raise X12Error(f"not a 999 or 277CA (transaction set {kind})")
    except X12Error as exc:
        inbound.status, inbound.message = "quarantined", str(exc)
        result = AckFileResult(file=name, kind=kind, status="quarantined", message=str(exc))
        log.warning("acknowledgment %s quarantined: %s", name, exc)
    return result


def transaction_set_of(path: Path) -> str:
    """ST01 of the file's first transaction set ('999', '277', '835', ...), or 'unknown'."""
    try:
        for segment in read_segments(path, strict=False):
            if segment.id == "ST":
                return segment.element(1) or "unknown"
    except X12Error:
        pass
    return "unknown"


def _load_999(session: Session, path: Path, inbound: models.InboundFile, result: AckFileResult) -> None:
    for ack in x999.iter_999(path):
        for group in ack.groups:
            rejected_files: set[int] = set()
            for response in group.transaction_sets:
                result.transaction_sets += 1
                claim_file, why_not = _acknowledged_file(session, ack.envelope, group, response)
                errors = _describe_999(response, claim_file)
                session.add(models.AckResult(
                    inbound_file_id=inbound.id, claim_file_id=claim_file.id if claim_file else None,
                    group_control_number=group.control_number, transaction_control_number=response.control_number,
                    status=response.status, errors="\n".join(errors) or None))
                if not response.accepted:
                    result.sets_rejected += 1
                if claim_file is None:
                    unmatched = _unmatched_text(ack.envelope, group, response, why_not)
                    result.unmatched.append(unmatched)
                    inbound.message = (inbound.message or "") + f"unmatched {unmatched}; "
                    log.warning("999 %s: unmatched %s", result.file, unmatched)
                    continue
                if response.accepted:
                    continue
                for claim in session.scalars(select(models.Claim).where(models.Claim.claim_file_id == claim_file.id)):
                    mine = [e for e in errors if claim.claim_id in e] or errors
                    _event(session, inbound, claim, claim.claim_id, "999", None, response.status, False, None,
                           f"999 rejected transaction set {response.control_number} of {claim_file.file_name}: "
                           + "; ".join(mine or [response.status_text]))
                    result.claims_rejected += 1
                rejected_files.add(claim_file.id)
            if group.status in GROUP_REJECTED:
                _reject_group(session, ack.envelope, group, inbound, result, rejected_files)


def _reject_group(session: Session, envelope: TransactionEnvelope, group: x999.GroupResponse,
                  inbound: models.InboundFile, result: AckFileResult, done: set[int]) -> None:
    """AK9 rejected the whole functional group (R, M, W, X): every transaction set of ours in it is rejected,
    also those the 999 lists as accepted or does not list at all (a group rejection often has no AK2)."""
    why = "; ".join(group.error_texts) or group.status_text
    for claim_file in _group_files(session, envelope, group):
        if claim_file.id in done:
            continue
        done.add(claim_file.id)
        result.sets_rejected += 1
        for claim in session.scalars(select(models.Claim).where(models.Claim.claim_file_id == claim_file.id)):
            _event(session, inbound, claim, claim.claim_id, "999", None, group.status, False, None,
                   f"999 rejected functional group {group.control_number} of {claim_file.file_name} "
                   f"(AK9 {group.status}): {why}")
            result.claims_rejected += 1


def _group_files(session: Session, envelope: TransactionEnvelope, group: x999.GroupResponse) -> list[models.ClaimFile]:
    """Our 837P files in the group a 999 answers: GS06 = AK102, sent to whom the 999 comes from."""
    if group.functional_id not in ("", "HC") or group.version not in ("", x837p.VERSION):
        return []  # not an answer to our 837P groups
    if not (group.control_number.isascii() and group.control_number.isdigit()):
        return []
    isa, gs = envelope.interchange, envelope.group
    answered_by = ((isa.receiver_id.strip(), gs.application_receiver.strip()),
                   (isa.sender_id.strip(), gs.application_sender.strip()))
    return [f for f in session.scalars(select(models.ClaimFile).where(
        models.ClaimFile.group_control_number == int(group.control_number)).order_by(models.ClaimFile.id))
        if _sent_envelope(f) == answered_by]


def _unmatched_text(envelope: TransactionEnvelope, group: x999.GroupResponse, response: x999.TransactionSetResponse,
                    why_not: str) -> str:
    """Which set of which 999 matched none of our files, and why: control numbers and ids only (no PHI)."""
    isa, gs = envelope.interchange, envelope.group
    return (f"GS06 {group.control_number} / ST02 {response.control_number} (999 ISA13 {isa.control_number} "
            f"from ISA06 {isa.sender_id} / GS02 {gs.application_sender} to ISA08 {isa.receiver_id} / "
            f"GS03 {gs.application_receiver}): {why_not}")


def _acknowledged_file(session: Session, envelope: TransactionEnvelope, group: x999.GroupResponse,
                       response: x999.TransactionSetResponse) -> tuple[models.ClaimFile | None, str]:
    """Our 837P file this AK2 answers, or None and why not.

    Ours when its GS06/ST02 are AK102/AK202 (ours are numbers; anything else is not ours), the 999 comes
    from the receiver the file was sent to (999 ISA06 / GS02 = the file's ISA08 / GS03) and is addressed
    to its sender (999 ISA08 / GS03 = the file's ISA06 / GS02). Files written before their envelope was
    stored are compared with the configured clearinghouse and practice instead."""
    for element, sent, ours in (("AK101", group.functional_id, "HC"), ("AK103", group.version, x837p.VERSION),
                                ("AK201", response.transaction_set_id, "837"),
                                ("AK203", response.convention, x837p.VERSION)):
        if sent and sent != ours:
            return None, f"{element} {sent} is not our {ours}"
    group_control, transaction_control = group.control_number, response.control_number
    if not all(c.isascii() and c.isdigit() for c in (group_control, transaction_control)):
        return None, "not control numbers of ours"
    candidates = session.scalars(select(models.ClaimFile).where(
        models.ClaimFile.group_control_number == int(group_control),
        models.ClaimFile.transaction_control_number == int(transaction_control)).order_by(models.ClaimFile.id)).all()
    if not candidates:
        return None, "we sent no file with these control numbers"
    isa, gs = envelope.interchange, envelope.group
    sender, receiver = (isa.sender_id.strip(), gs.application_sender.strip()), \
        (isa.receiver_id.strip(), gs.application_receiver.strip())
    mine = [f for f in candidates if _sent_envelope(f) == (receiver, sender)]
    if len(mine) == 1:
        return mine[0], ""
    if mine:
        return None, f"{len(mine)} of our files match ({', '.join(f.file_name for f in mine)}); not guessed"
    went_to = ", ".join(sorted({f"{f.clearinghouse_id} from {f.practice_id}" for f in candidates}))
    return None, f"our file(s) with these control numbers went elsewhere ({went_to})"


def _sent_envelope(claim_file: models.ClaimFile) -> tuple[tuple[str, str], tuple[str, str]] | None:
    """((ISA06, GS02), (ISA08, GS03)) of the file as sent; None when that can no longer be told."""
    if claim_file.isa_sender_id is not None:
        return ((claim_file.isa_sender_id.strip(), claim_file.gs_sender_code.strip()),
                (claim_file.isa_receiver_id.strip(), claim_file.gs_receiver_code.strip()))
    clearinghouse = config.clearinghouses().get(claim_file.clearinghouse_id)
    practice = config.practices().get(claim_file.practice_id)
    if clearinghouse is None or practice is None:
        return None  # written before envelopes were stored, and no longer configured
    return ((practice.submitter_id, practice.submitter_id),
            (clearinghouse.isa_receiver_id, clearinghouse.gs_receiver_code))


def _describe_999(response: x999.TransactionSetResponse, claim_file: models.ClaimFile | None) -> list[str]:
    """IK3/IK4 in plain words, each naming the claim its segment belongs to when we can tell."""
    claims_by_position = _claim_positions(Path(claim_file.path)) if claim_file else []
    texts = []
    for seg in response.segment_errors:
        claim_id = next((cid for start, cid in reversed(claims_by_position) if start <= seg.position), None)
        where = f"segment {seg.position} ({seg.segment_id}{', loop ' + seg.loop_id if seg.loop_id else ''})"
        detail = "; ".join(f"element {e.element_position}"
                           f"{'-' + str(e.component_position) if e.component_position else ''}: {e.description}"
                           for e in seg.element_errors)
        texts.append(f"{where}{' in claim ' + claim_id if claim_id else ''}: {seg.description}"
                     + (f" ({detail})" if detail else ""))
    texts.extend(response.error_texts)
    return texts


def _claim_positions(path: Path) -> list[tuple[int, str]]:
    """(position counted from ST = 1, CLM01) of every claim in one of our single-ST 837P files."""
    if not path.exists():
        return []
    positions, st_number = [], None
    for segment in read_segments(path):
        if segment.id == "ST":
            st_number = segment.number
        elif segment.id == "CLM" and st_number is not None:
            positions.append((segment.number - st_number + 1, segment.element(1)))
    return positions


def _load_277ca(session: Session, path: Path, inbound: models.InboundFile, result: AckFileResult) -> None:
    for item in x277ca.iter_277ca(path):
        if isinstance(item, x277ca.ProviderStatus):
            if item.rejected:
                inbound.message = (inbound.message or "") + f"provider {item.provider_id} rejected; "
            continue
        claim = session.scalar(select(models.Claim).where(models.Claim.claim_id == item.patient_control_number))
        codes = [c for s in item.statuses for c in s.codes]
        first = codes[0] if codes else None
        text = "; ".join(c.text for c in codes)
        line_texts = [f"line {line.line_control_number or line.procedure}: " + "; ".join(
            c.text for s in line.statuses for c in s.codes) for line in item.lines if line.rejected]
        message = f"277CA {'rejected' if item.rejected else 'accepted'}: {text}" + (
            " | " + " | ".join(line_texts) if line_texts else "")
        _event(session, inbound, claim, item.patient_control_number, "277CA", first.category if first else None,
               first.status if first else None, not item.rejected, item.payer_claim_control_number or None, message)
        if claim is None:
            result.unmatched.append(item.patient_control_number)
        elif item.rejected:
            result.claims_rejected += 1
        else:
            result.claims_accepted += 1


def _event(session: Session, inbound: models.InboundFile, claim: models.Claim | None, pcn: str, source: str,
           category: str | None, status_code: str | None, accepted: bool, payer_claim_number: str | None,
           message: str) -> None:
    session.add(models.ClaimStatusEvent(
        inbound_file_id=inbound.id, claim_pk=claim.id if claim else None, patient_control_number=pcn,
        source=source, category_code=category, status_code=status_code, accepted=accepted,
        payer_claim_number=payer_claim_number, message=message))
    if claim is None:
        return
    if payer_claim_number:
        claim.payer_icn = payer_claim_number
    if claim.status in ACK_UPDATABLE:
        claim.status = "accepted" if accepted else "rejected"
