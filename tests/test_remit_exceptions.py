"""Every remittance exception gets an action (issue 12): duplicate claim payments under another trace and
predeterminations are recorded, not posted; `remit accept` posts an 835 quarantined only for a faulty
envelope whose money balances; `remit match` links an unmatched claim payment to our claim and moves its
money onto it (reversal + repost, the ledger stays append-only). SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal as D
from pathlib import Path

import pytest
from sqlalchemy import func, select

from otedi import cli
from otedi.actions.audit import ActionError
from otedi.actions.remittances import accept_remittance, match_remittance_claim
from otedi.analytics import claim_reconciliation, line_reconciliation, payments, unmatched_remittances
from otedi.remit import post as post_module
from otedi.remit.post import earlier_trace
from otedi.warehouse import models
from otedi.warehouse.db import session_scope
from otedi.x12 import x835
from tests.remit_builder import Clp, Svc, interchange, remittance
from tests.test_remit_post import billed, claim_status, ledger, medicare_paid_a, post, write  # noqa: F401

TODAY = date(2026, 4, 30)


def exceptions(kind: str | None = None) -> list[models.RemitException]:
    with session_scope() as s:
        q = select(models.RemitException).order_by(models.RemitException.id)
        return list(s.scalars(q.where(models.RemitException.kind == kind) if kind else q))


def claim_row(claim_id: str) -> models.Claim:
    with session_scope() as s:
        return s.scalar(select(models.Claim).where(models.Claim.claim_id == claim_id))


def audit_rows() -> list[models.AuditEvent]:
    with session_scope() as s:
        return list(s.scalars(select(models.AuditEvent).order_by(models.AuditEvent.id)))


def entries_of_payment(payment_id: int) -> int:
    with session_scope() as s:
        return s.scalar(select(func.count()).select_from(models.LedgerEntry)
                        .where(models.LedgerEntry.claim_payment_id == payment_id))


def recon(claim_id: str) -> dict:
    [row] = [r for r in claim_reconciliation(today=TODAY).to_dict("records") if r["claim_id"] == claim_id]
    return row


PAID_A = {"payment": D("65.86"), "contractual": D("147.34"), "patient_responsibility": D("16.80")}


# -- 1. the same claim payment under another trace ----------------------------------------------------------


def test_the_same_claim_payment_under_another_trace_is_a_duplicate_not_a_second_payment(billed, tmp_path):
    post(write(tmp_path, "era1.835", interchange([remittance([medicare_paid_a(billed["A"])], trace="TRACE1")])))
    b_paid = Clp(billed["B"], icn="ICN-B", services=[
        Svc("97110", D("65.00"), D("40.00"), [("CO", "45", D("25.00"))], lcn="B-1", date="20260303")])
    # the payer sends claim A's payment again, under a new trace, with a payment of claim B
    again = post(write(tmp_path, "era2.835", interchange(
        [remittance([medicare_paid_a(billed["A"]), b_paid], trace="TRACE2")], control=2)))
    assert again.status == "posted"  # the transaction posts: its other claim is new money
    summary = again.summary()
    assert (summary["claims_matched"], summary["duplicate_claim_payments"]) == (1, 1)
    assert summary["totals"]["paid"] == "40.00" and summary["totals"]["bpr02"] == "105.86"
    assert ledger(billed["A"]) == PAID_A  # not twice
    assert ledger(billed["B"]) == {"payment": D("40.00"), "contractual": D("25.00")}
    [dup] = exceptions("duplicate_payment")
    assert (dup.reference, dup.charge_amount, dup.paid_amount, dup.resolved) == (billed["A"], D("230.00"),
                                                                                 D("65.86"), False)
    assert "already posted under trace TRACE1" in dup.message and "TRACE2" in dup.message
    assert entries_of_payment(dup.claim_payment_id) == 0
    with session_scope() as s:
        payment = s.get(models.ClaimPayment, dup.claim_payment_id)
        assert (payment.claim_pk, payment.status_code, payment.paid_amount) == (None, "1", D("65.86"))
    assert claim_status(billed["A"]) == "patient_balance" and claim_row(billed["A"]).payer_icn == "ICN-A"
    assert recon(billed["A"])["remittances"] == 1  # the copy is no second adjudication
    [p2] = [p for p in payments().to_dict("records") if p["trace_number"] == "TRACE2"]
    assert p2["difference"] == D("65.86")  # the deposit holds the duplicate: a refund for the biller to arrange


@pytest.mark.parametrize("batch", [1, post_module.BATCH])  # read back from the database, or not yet
def test_a_duplicate_under_two_traces_of_one_file_is_caught_too(billed, tmp_path, monkeypatch, batch):
    monkeypatch.setattr(post_module, "BATCH", batch)
    first = remittance([medicare_paid_a(billed["A"])], trace="T-ONE", st="0001")
    second = remittance([medicare_paid_a(billed["A"])], trace="T-TWO", st="0002")
    result = post(write(tmp_path, "both.835", interchange([first, second])))
    assert [t.duplicates for t in result.transactions] == [0, 1]
    assert ledger(billed["A"]) == PAID_A
    [dup] = exceptions("duplicate_payment")
    assert "trace T-ONE" in dup.message


def test_a_reversal_and_its_correction_with_the_same_figures_post_but_a_resent_copy_does_not(billed, tmp_path):
    post(write(tmp_path, "era1.835", interchange([remittance([medicare_paid_a(billed["A"])], trace="T1")])))
    # the payer reverses and re-adjudicates with the same figures and claim number (e.g. a corrected insured)
    redo = [medicare_paid_a(billed["A"], status="22", sign=-1), medicare_paid_a(billed["A"])]
    post(write(tmp_path, "era2.835", interchange([remittance(redo, trace="T2")], control=2)))
    assert exceptions("duplicate_payment") == []
    assert ledger(billed["A"]) == PAID_A and claim_status(billed["A"]) == "patient_balance"
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(models.LedgerEntry)) == 8 * 3
    # the same reversal and correction again under a third trace: nothing left to reverse, already paid
    post(write(tmp_path, "era3.835", interchange([remittance(redo, trace="T3")], control=3)))
    dups = exceptions("duplicate_payment")
    assert [(d.reference, "trace T2" in d.message) for d in dups] == [(billed["A"], True), (billed["A"], True)]
    assert ledger(billed["A"]) == PAID_A


def test_the_duplicate_rule_counts_reversals():
    p = ("1", D("230.00"), D("65.86"), "ICN-A")
    r = ("22", D("-230.00"), D("-65.86"), "ICN-A")
    assert earlier_trace(*p, "T2", [(*p, "T1")]) == "T1"
    assert earlier_trace(*p, "T1", [(*p, "T1")]) is None  # the same trace: the money key's business
    assert earlier_trace(*p, "T2", [(*p, "T1"), (*r, "T2")]) is None  # reversed since: the correction posts
    assert earlier_trace(*p, "T2", [(*p, "T1"), (*p[:3], "ICN-OTHER", "T0")]) == "T1"
    assert earlier_trace(*p[:3], "ICN-NEW", "T2", [(*p, "T1")]) is None  # another payer claim number
    assert earlier_trace(*r, "T3", [(*p, "T1"), (*r, "T2")]) == "T2"  # the same reversal again
    assert earlier_trace(*r, "T2", [(*p, "T1")]) is None  # the reversal of a payment
    # a reversal identical to one posted under another trace is taken as its copy
    assert earlier_trace(*r, "T3", [(*p, "T1"), (*r, "T2"), (*p, "T2")]) == "T2"
    assert earlier_trace(*p, "T3", [(*p, "T1"), (*r, "T2"), (*p, "T2")]) == "T2"  # the correction again


# -- 2. predeterminations ------------------------------------------------------------------------------------


def predetermination(pcn: str) -> Clp:
    return Clp(pcn, status="25", icn="PRE-777", services=[
        Svc("97110", D("65.00"), D("0.00"), [("CO", "45", D("20.00")), ("PR", "1", D("45.00"))], lcn="B-1",
            date="20260303")])


def test_a_predetermination_is_recorded_not_posted_and_leaves_the_claim_alone(billed, tmp_path):
    b_paid = Clp(billed["B"], icn="ICN-B", services=[
        Svc("97110", D("65.00"), D("40.00"), [("CO", "45", D("25.00"))], lcn="B-1", date="20260303")])
    post(write(tmp_path, "era1.835", interchange([remittance([b_paid], trace="T1")])))
    result = post(write(tmp_path, "pre.835", interchange([remittance([predetermination(billed["B"])],
                                                                     trace="T-PRE")], control=2)))
    assert result.status == "posted" and result.summary()["predeterminations"] == 1
    assert ledger(billed["B"]) == {"payment": D("40.00"), "contractual": D("25.00")}  # no denial, no PR
    claim = claim_row(billed["B"])
    assert (claim.status, claim.payer_icn) == ("paid", "ICN-B")
    [pre] = exceptions("predetermination")
    assert (pre.reference, pre.charge_amount, pre.paid_amount) == (billed["B"], D("65.00"), D("0.00"))
    assert "predetermination" in pre.message and "not posted" in pre.message
    assert entries_of_payment(pre.claim_payment_id) == 0
    with session_scope() as s:
        payment = s.get(models.ClaimPayment, pre.claim_payment_id)
        assert (payment.status_code, payment.claim_pk, payment.payer_claim_number) == ("25", None, "PRE-777")


def test_a_predetermination_alone_is_no_adjudication(billed, tmp_path):
    post(write(tmp_path, "pre.835", interchange([remittance([predetermination(billed["B"])], trace="T-PRE")])))
    assert ledger() == {}
    assert (claim_status(billed["B"]), claim_row(billed["B"]).payer_icn) == ("batched", None)
    row = recon(billed["B"])
    assert (row["adjudicated"], row["remittances"], row["open_balance"], row["awaiting_payer"]) == (
        False, 0, D("65.00"), D("65.00"))
    assert [e.kind for e in exceptions()] == ["predetermination"]  # no claim_not_found, no line_not_found


# -- 3. accept: an 835 quarantined only for its envelope ----------------------------------------------------


def faulty(text: str, *replacements: tuple[str, str]) -> str:
    for old, new in replacements:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


def era_a(pcn: str) -> str:
    return interchange([remittance([medicare_paid_a(pcn)], trace="T-ACC")])


def test_accept_posts_a_file_quarantined_for_its_control_numbers_and_is_audited(billed, tmp_path):
    path = write(tmp_path, "ctl.835", faulty(era_a(billed["A"]), ("IEA*1*000000001", "IEA*1*000000009"),
                                             ("GE*1*1~", "GE*1*7~")))
    first = post(path)
    assert first.status == "quarantined" and "IEA02" not in first.message and "GE02" in first.message
    assert ledger() == {}
    with session_scope() as s:
        changes = accept_remittance(s, path, who="biller1", note="called the clearinghouse: known envelope bug")
    assert changes["status"] == ["quarantined", "posted"] and changes["paid"] == "65.86"
    assert changes["waived_codes"] == ["GE02", "IEA02"]
    assert [w.split(": ", 1)[1].split(" ")[0] for w in changes["waived"]] == ["GE02", "IEA02"]  # file order
    assert ledger(billed["A"]) == PAID_A and claim_status(billed["A"]) == "patient_balance"
    with session_scope() as s:
        row = s.scalars(select(models.InboundFile)).one()
        assert (row.file_name, row.status) == ("ctl.835", "posted")
        assert "GE02 '7' does not match GS06 '1'" in row.message
    [event] = audit_rows()
    assert (event.actor, event.action, event.subject) == ("biller1", "remit_accept", "file:ctl.835")
    assert json.loads(event.changes)["waived"] == changes["waived"]
    # once posted, it is neither accepted nor posted again
    with pytest.raises(ActionError, match="is posted, not quarantined"):
        with session_scope() as s:
            accept_remittance(s, path, who="biller1", note="again")
    assert post(path).status == "already_posted" and ledger(billed["A"]) == PAID_A


def test_accept_uses_the_production_date_when_bpr16_is_missing(billed, tmp_path):
    text = faulty(era_a(billed["A"]), ("*DA*654321*20260320~", "*DA*654321~"), ("DTM*405*20260320", "DTM*405*20260318"))
    path = write(tmp_path, "nodate.835", text)
    assert "BPR16" in post(path).message
    with session_scope() as s:
        changes = accept_remittance(s, path, who="biller1", note="EFT of 2026-03-18 on the bank statement")
    assert changes["status"][1] == "posted" and "DTM*405 production date 2026-03-18" in changes["waived"][0]
    with session_scope() as s:
        assert s.scalar(select(models.Remittance.payment_date)) == date(2026, 3, 18)
    assert ledger(billed["A"]) == PAID_A


@pytest.mark.parametrize("replacements, why", [
    # an envelope fault beside money that does not balance
    ((("IEA*1*000000001", "IEA*1*000000009"), ("*47.14*", "*47.15*")), "money does not balance"),
    # an envelope fault beside a count that is off (a lost segment can balance by itself): not waived
    ((("IEA*1*000000001", "IEA*1*000000009"), ("~\nSE*", "~\nSE*9")), "SE01 says"),
    # BPR16 missing without a production date to stand in
    ((("*DA*654321*20260320~", "*DA*654321~"), ("DTM*405*20260320~\n", "")), "no DTM\\*405"),
    # the date shifted into BPR15 is another defect
    ((("DA*123456*1999999999**01", "DA*123456*1999999999*01"),), "BPR15 holds a date"),
])
def test_accept_refuses_any_other_defect_and_changes_nothing(billed, tmp_path, replacements, why):
    path = write(tmp_path, "bad.835", faulty(era_a(billed["A"]), *replacements))
    assert post(path).status == "quarantined"
    with pytest.raises(ActionError, match=why):
        with session_scope() as s:
            accept_remittance(s, path, who="biller1", note="looked at it")
    assert ledger() == {} and audit_rows() == []
    with session_scope() as s:
        assert s.scalars(select(models.InboundFile.status)).one() == "quarantined"


def test_accept_refuses_files_it_has_nothing_to_accept_for(billed, tmp_path):
    fine = write(tmp_path, "fine.835", era_a(billed["A"]))
    with pytest.raises(ActionError, match="never given to `otedi remit post`"):
        with session_scope() as s:
            accept_remittance(s, fine, who="biller1", note="looked")
    post(fine)
    with pytest.raises(ActionError, match="is posted, not quarantined"):
        with session_scope() as s:
            accept_remittance(s, fine, who="biller1", note="looked")
    with pytest.raises(ActionError, match="say why"):
        with session_scope() as s:
            accept_remittance(s, fine, who="biller1", note=" ")
    assert audit_rows() == []


def test_the_cli_accepts_with_one_line_or_json(billed, tmp_path, capsys):
    path = write(tmp_path, "ctl.835", faulty(era_a(billed["A"]), ("IEA*1*000000001", "IEA*1*000000002")))
    post(path)
    assert cli.main(["remit", "accept", str(path), "--note", "envelope only", "--by", "biller2"]) == 0
    out = capsys.readouterr().out.strip().splitlines()[-1]
    assert out.startswith("ctl.835: accepted and posted - 1 transaction(s), 1 claim(s) matched")
    assert out.endswith("waived: IEA02")
    assert cli.main(["remit", "accept", str(path), "--note", "again", "--json"]) == 2
    assert "is posted, not quarantined" in capsys.readouterr().err


# -- 4. match: an unmatched claim payment linked to our claim ------------------------------------------------


def stranger_pays_b() -> Clp:
    return Clp("OLDPCN-B7", icn="ICN-X", services=[
        Svc("97110", D("65.00"), D("30.00"), [("CO", "45", D("20.00")), ("PR", "2", D("15.00"))], date="20260303")])


def test_match_moves_an_unmatched_payment_onto_our_claim_by_reversal_and_repost(billed, tmp_path):
    post(write(tmp_path, "x.835", interchange([remittance([stranger_pays_b()], trace="T-X")])))
    [exc] = exceptions("claim_not_found")
    with session_scope() as s:
        changes = match_remittance_claim(s, "OLDPCN-B7", claim_id=billed["B"], who="biller1",
                                         note="old account number; EOB matches the 03/03 visit")
    assert changes["status"] == ["batched", "patient_balance"] and changes["payer_icn"] == "ICN-X"
    assert changes["posted"] == {"contractual": "20.00", "patient_responsibility": "15.00", "payment": "30.00"}
    assert ledger(billed["B"]) == {"payment": D("30.00"), "contractual": D("20.00"),
                                   "patient_responsibility": D("15.00")}
    with session_scope() as s:
        unlinked = dict(s.execute(select(models.LedgerEntry.entry_type, func.sum(models.LedgerEntry.amount))
                                  .where(models.LedgerEntry.claim_pk.is_(None))
                                  .group_by(models.LedgerEntry.entry_type)).all())
        total = s.scalar(select(func.count()).select_from(models.LedgerEntry))
        line_pk = s.scalar(select(models.ClaimLine.id).where(models.ClaimLine.charge_id == "B-1"))
        on_line = s.scalar(select(func.sum(models.LedgerEntry.amount))
                           .where(models.LedgerEntry.claim_line_pk == line_pk))
        payment = s.get(models.ClaimPayment, exc.claim_payment_id)
        claim = s.scalar(select(models.Claim).where(models.Claim.claim_id == billed["B"]))
        assert payment.claim_pk == claim.id
        assert (claim.status, claim.payer_icn) == ("patient_balance", "ICN-X")
        assert s.get(models.RemitException, exc.id).resolved
    assert all(v == 0 for v in unlinked.values())  # negated, not deleted
    assert total == 3 + 3 + 3 and on_line == D("65.00")
    row = recon(billed["B"])
    assert (row["billed"], row["paid"], row["contractual"], row["patient_responsibility"], row["other_adjustments"],
            row["open_balance"], row["adjudicated"], row["allowed_835"]) == (
        D("65.00"), D("30.00"), D("20.00"), D("15.00"), D("0.00"), D("0.00"), True, D("45.00"))
    for r in claim_reconciliation(today=TODAY).to_dict("records"):  # the identity, every claim
        assert r["billed"] == r["paid"] + r["contractual"] + r["patient_responsibility"] + \
            r["other_adjustments"] + r["open_balance"]
    [pay] = payments().to_dict("records")
    assert (pay["posted_payments"], pay["difference"], pay["matched"], pay["unmatched"]) == (D("30.00"), D("0.00"),
                                                                                             1, 0)
    assert bool(unmatched_remittances().to_dict("records")[0]["resolved"])
    [event] = audit_rows()
    assert (event.actor, event.action, event.subject) == ("biller1", "remit_match", f"claim:{billed['B']}")
    assert json.loads(event.changes)["payments"][0]["exception"] == exc.id


def test_a_copy_of_an_unmatched_payment_is_a_duplicate_and_match_moves_the_money_once(billed, tmp_path):
    post(write(tmp_path, "x1.835", interchange([remittance([stranger_pays_b()], trace="T-X")])))
    post(write(tmp_path, "x2.835", interchange([remittance([stranger_pays_b()], trace="T-Y")], control=2)))
    assert [(e.kind, e.reference) for e in exceptions()] == [("claim_not_found", "OLDPCN-B7"),
                                                             ("duplicate_payment", "OLDPCN-B7")]
    assert "not one of our claims" in exceptions("duplicate_payment")[0].message
    assert ledger() == {"payment": D("30.00"), "contractual": D("20.00"), "patient_responsibility": D("15.00")}
    with session_scope() as s:
        changes = match_remittance_claim(s, "OLDPCN-B7", claim_id=billed["B"], who="biller1", note="old number")
    assert len(changes["payments"]) == 1
    assert ledger(billed["B"]) == {"payment": D("30.00"), "contractual": D("20.00"),
                                   "patient_responsibility": D("15.00")}
    assert not exceptions("duplicate_payment")[0].resolved  # still the biller's: a refund to arrange


def test_matching_twice_is_refused_and_changes_nothing(billed, tmp_path):
    post(write(tmp_path, "x.835", interchange([remittance([stranger_pays_b()], trace="T-X")])))
    with session_scope() as s:
        match_remittance_claim(s, "OLDPCN-B7", claim_id=billed["B"], who="biller1", note="matched")
    before = ledger()
    with pytest.raises(ActionError, match=f"already matched to claim {billed['B']}"):
        with session_scope() as s:
            match_remittance_claim(s, "OLDPCN-B7", claim_id=billed["B"], who="biller1", note="again")
    assert ledger() == before and [e.action for e in audit_rows()] == ["remit_match"]


def test_match_splits_a_payment_over_the_claim_lines_as_posting_would(billed, tmp_path):
    clp = medicare_paid_a("EHR-A-OLD")
    for svc in clp.services:
        svc.lcn = None  # the 6R went with the old number
    post(write(tmp_path, "x.835", interchange([remittance([clp], trace="T-X")])))
    with session_scope() as s:
        match_remittance_claim(s, "EHR-A-OLD", claim_id=billed["A"], who="biller1", note="same visit")
    assert ledger(billed["A"]) == PAID_A and claim_status(billed["A"]) == "patient_balance"
    lines = {r["charge_id"]: r for r in line_reconciliation(today=TODAY).to_dict("records")}
    assert (lines["A-1"]["paid"], lines["A-1"]["open_balance"]) == (D("47.14"), D("0.00"))
    assert (lines["A-2"]["paid"], lines["A-2"]["open_balance"]) == (D("18.72"), D("0.00"))
    assert exceptions("line_not_found") == []


def test_a_matched_denial_makes_the_claim_denied(billed, tmp_path):
    denied = Clp("OLDPCN-B7", status="4", icn="ICN-D", services=[
        Svc("97110", D("65.00"), D("0.00"), [("CO", "197", D("65.00"))], date="20260303")])
    post(write(tmp_path, "d.835", interchange([remittance([denied], trace="T-D")])))
    with session_scope() as s:
        match_remittance_claim(s, "OLDPCN-B7", claim_id=billed["B"], who="biller1", note="auth missing")
    assert ledger(billed["B"]) == {"denial": D("65.00")} and claim_status(billed["B"]) == "denied"
    assert recon(billed["B"])["denied"] == D("65.00")


@pytest.mark.parametrize("pcn, claim, why", [
    ("NOSUCH", "B", "no unmatched remittance claim with CLP01 NOSUCH"),
    ("OLDPCN-B7", "ZZZ", "no claim ZZZ"),
    ("OLDPCN-B7", "held", "is held: it was never sent"),
])
def test_a_match_that_is_not_allowed_changes_nothing(billed, tmp_path, pcn, claim, why):
    post(write(tmp_path, "x.835", interchange([remittance([stranger_pays_b()], trace="T-X")])))
    claim_id = billed.get(claim, claim)
    if claim == "held":
        with session_scope() as s:
            s.scalar(select(models.Claim).where(models.Claim.claim_id == billed["B"])).status = "held"
        claim_id = billed["B"]
    before = ledger()
    with pytest.raises(ActionError, match=why):
        with session_scope() as s:
            match_remittance_claim(s, pcn, claim_id=claim_id, who="biller1", note="try")
    assert ledger() == before and audit_rows() == [] and not exceptions("claim_not_found")[0].resolved


def test_a_payment_charging_more_than_the_claim_billed_is_not_matched_to_it(billed, tmp_path):
    post(write(tmp_path, "x.835", interchange([remittance([stranger_pays_b()], trace="T-X")])))
    with pytest.raises(ActionError, match=r"charges 65.00 \(CLP03\), more than claim .* billed \(10.00\)"):
        with session_scope() as s:
            s.scalar(select(models.Claim).where(models.Claim.claim_id == billed["B"])).total_charge = D("10.00")
            match_remittance_claim(s, "OLDPCN-B7", claim_id=billed["B"], who="biller1", note="try")


def test_the_cli_matches_with_one_line_or_json(billed, tmp_path, capsys):
    post(write(tmp_path, "x.835", interchange([remittance([stranger_pays_b()], trace="T-X")])))
    assert cli.main(["remit", "match", "OLDPCN-B7", "--claim", billed["B"], "--note", "old number", "--by",
                     "biller3", "--json"]) == 0
    out = capsys.readouterr().out
    shown = json.loads(out[out.index("{"):])
    assert shown["claim"] == billed["B"] and shown["status"] == ["batched", "patient_balance"]
    assert cli.main(["remit", "match", "OLDPCN-B7", "--claim", billed["B"], "--note", "again"]) == 2
    assert "already matched" in capsys.readouterr().err


def test_one_line_when_not_json(billed, tmp_path, capsys):
    post(write(tmp_path, "x.835", interchange([remittance([stranger_pays_b()], trace="T-X")])))
    assert cli.main(["remit", "match", "OLDPCN-B7", "--claim", billed["B"], "--note", "old number"]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line == (f"CLP01 OLDPCN-B7 matched to claim {billed['B']}: 1 payment(s) moved onto it, paid 30.00; "
                    f"claim batched -> patient_balance")


def test_waivable_faults_are_named_by_their_element():
    assert set(x835.WAIVABLE) == {"IEA02", "GE02", "SE02", "BPR16"}
    with pytest.raises(ValueError, match="SE01"):
        x835.scan_835(Path(__file__), waive={"SE01"})


def test_remit_post_says_what_it_did_not_post(billed, tmp_path, capsys):
    from otedi import cli

    path = write(tmp_path, "pre.835", interchange([remittance([predetermination(billed["B"])], trace="T-PRE")]))
    assert cli.main(["remit", "post", str(path)]) == 0
    assert "not posted: 0 payment(s) already posted under another trace, 1 predetermination(s)" in \
        capsys.readouterr().out
