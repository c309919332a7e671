"""The AR work queue: one item per claim that needs a biller, with the reason and the next step.

Recomputed from the warehouse every time, so an item closes by itself once
the ledger (or a 999/277CA) resolves it: a payment posts, a reversal is
followed by its correction, a secondary claim is built, a replacement
claim supersedes the original. Submitted claims only (not held, ready or
quarantined: those are on the issues list).

Reasons, most urgent first (a claim with several shows the first as
`reason` and all of them in `reasons`):

  approaching_timely_filing  the payer has not accepted the claim yet, or it was denied in a
                             correctable category, and its filing limit ends within
                             `approaching_timely_filing_days` (mappings/ar_rules.yaml)
  rejected                   the 999 or 277CA rejected it: fix and send it again (it was never filed)
  denied                     the 835 denied some of it: the root-cause category's fix (once appealed:
                             wait for the decision, until an 835 after the appeal posts: paid, the item
                             closes; still denied, it is a denial to work again)
  reversed                   the payer reversed its payment and has not re-adjudicated
  no_835                     no 835 after the payer kind's expected days: claim status inquiry (for a
                             crossover record: ask the secondary payer whether the crossover reached it)
  underpaid                  allowed below the expected allowed amount beyond the tolerance
  secondary_claim_due        primary adjudicated with patient responsibility, the patient has a
                             secondary payer (a charge with payer_sequence S/T) and no
                             secondary claim covers these dates yet
  patient_balance_due        what the patient still owes (no secondary to bill first)

Each item carries the state a biller set on it (`otedi ar item`: open, in_progress, waiting, done).
"""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd

from otedi.analytics.denials import denial_frame
from otedi.analytics.reconcile import claim_frame, line_frame
from otedi.analytics.snapshot import Snapshot, ar_rules, filing_deadline, load_snapshot, money_out, money_text

REASONS = ("approaching_timely_filing", "rejected", "denied", "reversed", "no_835", "underpaid",
           "secondary_claim_due", "patient_balance_due")
COLUMNS = ["item_id", "claim_id", "practice_id", "payer_id", "payer_name", "patient_id", "service_date_from",
           "status", "reason", "reasons", "category", "amount", "detail", "next_step", "filing_deadline",
           "days_to_deadline", "days_outstanding", "priority", "state", "state_note", "state_by"]


def _underpaid(lines: pd.DataFrame) -> pd.Series:
    """claim_pk -> shortfall (cents) of allowed against expected on adjudicated, undenied lines."""
    ok = lines[lines["adjudicated"] & (lines["denied"] == 0) & lines["expected_allowed"].notna()]
    short = (ok["expected_allowed"] - ok["allowed_835"]).clip(lower=0)
    frame = pd.DataFrame({"claim_pk": ok["claim_pk"], "short": short, "expected": ok["expected_allowed"]})
    return frame.groupby("claim_pk")[["short", "expected"]].sum()


def _denials_by_claim(detail: pd.DataFrame) -> dict[int, list]:
    """claim_pk -> its net denials (denial_frame rows, in the frame's order) as plain tuples: the queue reads a
    few fields of each, once per denied claim, where a frame per claim costs milliseconds."""
    out: dict[int, list] = {}
    columns = ["claim_pk", "category", "category_label", "fix", "group_code", "carc", "rarc", "cpt", "denied",
               "correctable"]
    for d in detail[columns].itertuples(index=False):
        out.setdefault(d.claim_pk, []).append(d._replace(denied=int(d.denied), correctable=bool(d.correctable)))
    return out


def _secondary_billed(claims: pd.DataFrame) -> set[tuple]:
    """(practice, patient, date) covered by a secondary or tertiary claim."""
    later = claims[claims["payer_sequence"].isin(["S", "T"])]
    covered = set()
    for practice, patient, first, last in zip(later["practice_id"], later["patient_id"],
                                              later["service_date_from"], later["service_date_to"]):
        for day in pd.date_range(first, last).date:
            covered.add((practice, patient, day))
    return covered


def work_queue_frame(snap: Snapshot, today: date, claims: pd.DataFrame | None = None,
                     lines: pd.DataFrame | None = None, detail: pd.DataFrame | None = None) -> pd.DataFrame:
    """Open work items (amount in cents), most urgent first. `claims`, `lines`, `detail`: the claim_frame,
    line_frame and denial_frame of `snap` as of `today` when the caller has them already."""
    rules = ar_rules()
    claims = claim_frame(snap, today) if claims is None else claims
    lines = line_frame(snap, today, claims) if lines is None else lines
    detail = denial_frame(snap, claims, today) if detail is None else detail
    denied_by_claim = _denials_by_claim(detail)
    underpaid = {pk: (int(short), int(expected)) for pk, short, expected in _underpaid(lines).itertuples()}
    has_secondary = set(zip(snap.secondary_patients["practice_id"], snap.secondary_patients["patient_id"]))
    secondary_billed = _secondary_billed(claims)
    accepted_277 = set(snap.status_events.loc[snap.status_events["accepted"].astype(bool), "claim_pk"])
    rejections = snap.status_events[~snap.status_events["accepted"].astype(bool)].groupby("claim_pk")["message"].last()

    from otedi.claims.resubmit import secondary_payable_reasons

    secondary_payable = secondary_payable_reasons()
    items = []
    live = claims[claims["in_ar"] & claims["superseded_by"].isna()]
    for c in live.itertuples(index=False):
        found: dict[str, tuple[int, str, str, str | None]] = {}  # reason -> (amount, detail, next step, category)
        deadline = filing_deadline(c.payer_id, c.claim_filing_code, c.service_date_from)
        if c.status == "rejected":
            why = rejections.get(c.claim_pk, "rejected by the clearinghouse or payer")
            found["rejected"] = (c.open_balance, why, "Fix what the rejection names and send the claim again "
                                 "(a rejected claim was never filed, so send it as a new claim, frequency 1).", None)
        mine = denied_by_claim.get(c.claim_pk)
        appealed = snap.appeals.get(c.claim_id)
        answered = appealed is not None and _answered_since(snap, c.claim_pk, appealed["at"])
        if c.denied_open > 0 and mine is not None and appealed and not answered:
            from otedi.actions.appeals import appeal_rules  # actions import analytics: not at module level

            follow_up = appealed["on"] + timedelta(days=appeal_rules(c.payer_kind).decision_days)
            found["denied"] = (c.denied_open, f"appealed on {appealed['on']} ({appealed['file']})",
                               f"Wait for the payer's decision; follow up after {follow_up} if none came.", None)
        elif c.denied_open > 0 and mine is not None:  # not appealed, or the appeal was answered and denied
            by_cat: dict[str, int] = {}
            for d in sorted(mine, key=lambda d: d.category):  # ties: the first category alphabetically
                by_cat[d.category] = by_cat.get(d.category, 0) + d.denied
            first = max(by_cat, key=by_cat.get)
            top = next(d for d in mine if d.category == first)
            codes = ", ".join(f"{d.group_code}-{d.carc}{' (' + d.rarc + ')' if d.rarc else ''} {d.cpt} "
                              f"{money_text(d.denied)}" for d in mine)
            found["denied"] = (c.denied_open, f"{top.category_label}: {codes}",
                               " ".join(filter(None, (top.fix, _write_off_step(c, mine)))), top.category)
        if c.status == "reversed" and not c.adjudicated:
            found["reversed"] = (c.open_balance, f"payer reversed its payment (ICN {c.payer_icn or 'n/a'})",
                                 "Ask the payer why the claim was reversed and when the corrected adjudication "
                                 "comes; resubmit or appeal if it does not.", None)
        expected_days = rules.expected_days_to_835[c.payer_kind]
        if not c.adjudicated and c.remittances == 0 and c.status != "rejected" \
                and (today - c.submitted_on).days > expected_days:
            days = (today - c.submitted_on).days
            if isinstance(c.crossover_of, str):
                step = (f"The primary payer forwarded claim {c.crossover_of} to {c.payer_name} on {c.submitted_on}: "
                        f"ask {c.payer_name} whether it received the crossover; if it did not, bill it a "
                        f"secondary claim with the primary's adjudication.")
            elif c.claim_pk in accepted_277:
                step = (f"Claim status inquiry (276/277 or the payer portal) for ICN {c.payer_icn or 'n/a'}; "
                        f"resubmit only if the payer has no record of it.")
            else:
                step = (f"No 277CA acceptance on file: confirm with the clearinghouse that {c.file_name} reached "
                        f"the payer, then check the claim's status with the payer.")
            found["no_835"] = (c.open_balance, f"no 835 {days} days after "
                               f"{'the crossover' if isinstance(c.crossover_of, str) else 'submission'} "
                               f"({c.payer_kind} follow-up after {expected_days} days)", step, None)
        if c.claim_pk in underpaid and c.adjudicated:
            short, expected = underpaid[c.claim_pk]
            limit = max(rules.tolerance_amount_cents, int(rules.tolerance_percent * expected))
            if short > limit:
                found["underpaid"] = (int(short), f"allowed {money_text(expected - short)} of the expected "
                                      f"{money_text(expected)} on paid lines",
                                      "Compare the allowed amounts with the contract / fee schedule; appeal the "
                                      "underpayment, or correct mappings/fees if the contract changed.", None)
        # what a secondary payer may pay: the patient responsibility, and denials it may cover (resubmit.py)
        payable = 0 if mine is None else sum(d.denied for d in mine if d.carc in secondary_payable)
        needs_secondary = (c.adjudicated and c.payer_sequence == "P" and c.patient_responsibility + payable > 0
                           and c.status != "forwarded" and (c.practice_id, c.patient_id) in has_secondary)
        if needs_secondary and (c.practice_id, c.patient_id, c.service_date_from) not in secondary_billed:
            left = ", ".join(part for part in (
                f"{money_text(c.patient_responsibility)} patient responsibility" if c.patient_responsibility else "",
                f"{money_text(payable)} denied for reasons a secondary may cover" if payable else "") if part)
            found["secondary_claim_due"] = (
                c.patient_responsibility + payable, f"primary left {left}",
                "Bill the secondary payer: a secondary claim with the primary's adjudication (2320/2330/2430: CAS, "
                "AMT*D paid) for the remaining balance.", None)
        elif c.adjudicated and c.patient_balance > 0 and c.status != "forwarded" and not needs_secondary:
            found["patient_balance_due"] = (
                c.patient_balance, f"patient owes {money_text(c.patient_balance)} of "
                f"{money_text(c.patient_responsibility)} patient responsibility (deductible, coinsurance, copay)",
                "Send the patient a statement for the balance.", None)
        # a claim counts as filed once the payer accepted it (277CA) or answered it on an 835 (§2.8)
        not_filed = c.status == "rejected" or (c.remittances == 0 and c.claim_pk not in accepted_277)
        rework = "denied" in found and any(d.correctable for d in mine)
        days_left = (deadline - today).days
        if (not_filed or rework) and 0 <= days_left <= rules.approaching_timely_filing_days:
            first = next(r for r in REASONS[1:] if r in found) if found else None
            amount, detail, step, category = found[first] if first else (c.open_balance, "not accepted yet", "", None)
            found["approaching_timely_filing"] = (
                amount, f"filing limit ends {deadline} ({days_left} days left); {detail}",
                f"File by {deadline}: {step or 'confirm the payer received the claim.'}", category)
        elif (not_filed or rework) and days_left < 0:
            for reason in ("rejected", "denied", "no_835"):
                if reason in found:
                    amount, detail, step, category = found[reason]
                    found[reason] = (amount, detail, f"Filing limit ended {deadline}: only proof of timely filing "
                                     f"or an exception recovers this; otherwise write it off. {step}", category)
        if not found:
            continue
        ordered = [r for r in REASONS if r in found]
        amount, detail, step, category = found[ordered[0]]
        items.append({
            "item_id": f"{c.claim_id}:{ordered[0]}", "claim_id": c.claim_id, "practice_id": c.practice_id,
            "payer_id": c.payer_id, "payer_name": c.payer_name, "patient_id": c.patient_id,
            "service_date_from": c.service_date_from, "status": c.status, "reason": ordered[0],
            "reasons": ", ".join(ordered), "category": category, "amount": int(amount), "detail": detail,
            "next_step": step, "filing_deadline": deadline, "days_to_deadline": days_left,
            "days_outstanding": c.days_outstanding, "priority": REASONS.index(ordered[0]) + 1,
            **_state(snap.item_states.get(f"{c.claim_id}:{ordered[0]}")),
        })
    queue = pd.DataFrame(items, columns=COLUMNS)
    return queue.sort_values(["priority", "days_to_deadline", "claim_id"], ignore_index=True)


def _answered_since(snap: Snapshot, claim_pk: int, appealed_at) -> bool:
    """An 835 for the claim posted after the appeal was recorded: the payer decided it."""
    cp = snap.claim_payments[snap.claim_payments["claim_pk"] == claim_pk]
    return bool((cp["posted_at"] > appealed_at).any())


def _state(latest: dict | None) -> dict:
    """The biller's state on the item (open unless someone set another)."""
    if latest is None:
        return {"state": "open", "state_note": None, "state_by": None}
    return {"state": latest["state"], "state_note": latest["note"], "state_by": latest["by"]}


def _write_off_step(c, denials: list) -> str | None:
    """For a denial no correction recovers (CO-29 timely filing, CO-18 duplicate, CO-97 bundled): the
    write-off to make, as a command, so it does not stay open in AR for ever. None when some denied part
    of the claim is still recoverable."""
    from otedi.actions.adjustments import write_off_for

    offers = [(write_off_for(str(d.carc)), d.denied) for d in denials if not d.correctable]
    offers = [(r, a) for r, a in offers if r is not None]
    if not offers or len(offers) < len(denials):
        return None
    reason = offers[0][0]
    amount = min(sum(a for _, a in offers), int(c.denied_open))
    return (f"To write it off: otedi ar adjust --claim {c.claim_id} "
            f"--amount {money_text(amount).lstrip('$').replace(',', '')} --reason {reason.key} --note ...")


def work_queue(snap: Snapshot | None = None, *, today: date | None = None) -> pd.DataFrame:
    """Open work items, one per claim, most urgent first (amount as Decimal)."""
    snap = snap or load_snapshot()
    return money_out(work_queue_frame(snap, today or date.today()), ["amount"])


def work_queue_summary(queue: pd.DataFrame) -> pd.DataFrame:
    """Items and dollars per reason (and denial category), in order of urgency."""
    if queue.empty:
        return pd.DataFrame(columns=["reason", "category", "items", "amount"])
    table = queue.assign(category=queue["category"].fillna("")).groupby(["reason", "category"], as_index=False) \
        .agg(items=("claim_id", "size"), amount=("amount", "sum"))
    table["order"] = [REASONS.index(r) for r in table["reason"]]
    return table.sort_values(["order", "category"], ignore_index=True).drop(columns="order")
