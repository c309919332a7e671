"""AR aging and the work queue over the `finance` dataset of test_reconcile (SQLite and PostgreSQL)."""

from datetime import date
from decimal import Decimal as D

import pandas as pd
import pytest

from otedi.analytics import ar_aging, work_queue, work_queue_summary
from otedi.analytics.aging import aging_frame, aging_sql, bucket
from otedi.analytics.reconcile import claim_frame
from otedi.analytics.snapshot import load_snapshot
from otedi.warehouse.db import session_scope
from tests.remit_builder import Clp, Svc, interchange, remittance
from tests.test_reconcile import TODAY, finance, post, write  # noqa: F401 - finance is a fixture


def test_buckets_have_inclusive_upper_bounds():
    assert [bucket(d) for d in (0, 30, 31, 60, 61, 90, 91, 120, 121, 400)] == [
        "0-30", "0-30", "31-60", "31-60", "61-90", "61-90", "91-120", "91-120", "120+", "120+"]


def test_aging_by_payer_for_insurance_and_patient_balances(finance):
    rows = {(r["balance_type"], r["payer_id"]): r for r in ar_aging(today=TODAY).to_dict("records")}
    assert set(rows) == {("insurance", "15202"), ("insurance", "87726"), ("patient", "15202")}
    medicare = rows[("insurance", "15202")]  # B, C, D denied 65 each, E reversed 160, F silent 65; 41 days old
    assert (medicare["31-60"], medicare["0-30"], medicare["120+"], medicare["total"], medicare["claims"]) == (
        D("420.00"), D("0.00"), D("0.00"), D("420.00"), 5)
    assert rows[("insurance", "87726")]["total"] == D("65.00")  # G, rejected
    patient = rows[("patient", "15202")]  # C 16.00; A's 16.80 is its secondary payer's to pay first
    assert (patient["31-60"], patient["claims"], patient["practice_id"]) == (D("16.00"), 1, "BRIGHTHANDS")
    later = {(r["balance_type"], r["payer_id"]): r for r in ar_aging(today=date(2026, 7, 9)).to_dict("records")}
    assert later[("insurance", "15202")]["120+"] == D("420.00")  # 121 days after submission


def test_the_aging_in_sql_is_the_claim_frames(finance):
    snap = load_snapshot()
    for today in (TODAY, date(2026, 7, 9)):
        with session_scope() as s:
            pd.testing.assert_frame_equal(aging_sql(s, today), aging_frame(claim_frame(snap, today), today))
        pd.testing.assert_frame_equal(ar_aging(today=today), ar_aging(snap, today=today))


def test_an_empty_warehouse_has_no_aging(warehouse):
    assert ar_aging(today=TODAY).empty and ar_aging(load_snapshot(), today=TODAY).empty


def test_one_item_per_claim_with_reason_and_next_step(finance):
    queue = {r["claim_id"]: r for r in work_queue(today=TODAY).to_dict("records")}
    reasons = {letter: queue[finance[letter]]["reason"] for letter in "ABCDEFGH"}
    assert reasons == {"A": "secondary_claim_due", "B": "denied", "C": "denied", "D": "denied", "E": "reversed",
                       "F": "no_835", "G": "rejected", "H": "underpaid"}
    b, c, d = (queue[finance[k]] for k in "BCD")
    assert (b["category"], b["amount"]) == ("bundling", D("65.00")) and "59 or XE/XS/XP/XU" in b["next_step"]
    assert "CO-236 97110 $65.00" in b["detail"]
    assert c["category"] == "authorization" and c["reasons"] == "denied, patient_balance_due"
    assert "authorization" in c["next_step"]
    assert d["category"] == "timely_filing" and "write the charge off" in d["next_step"]
    assert f"otedi ar adjust --claim {finance['D']} --amount 65.00 --reason timely_filing" in d["next_step"]
    assert "ar adjust" not in b["next_step"]  # a bundling denial is corrected (modifier), not written off
    f = queue[finance["F"]]
    assert "no 835 41 days after submission" in f["detail"] and "ICN-" in f["next_step"]
    assert "Claim status inquiry" in f["next_step"]
    g = queue[finance["G"]]
    assert "A7:562" in g["detail"] or "rejected" in g["detail"]
    assert "send the claim again" in g["next_step"]
    h = queue[finance["H"]]
    # expected: 97530 x2 at the Ohio locality (2026 GPCIs, test_fees.py): $33.33 + $24.18 = $57.51
    assert h["amount"] == D("27.51") and "allowed $30.00 of the expected $57.51" in h["detail"]
    a = queue[finance["A"]]
    assert a["amount"] == D("16.80") and "secondary payer" in a["next_step"]
    assert list(work_queue_summary(work_queue(today=TODAY))["reason"]) == [
        "rejected", "denied", "denied", "denied", "reversed", "no_835", "underpaid", "secondary_claim_due"]


def test_items_close_when_the_ledger_resolves_them(finance, tmp_path):
    before = set(work_queue(today=TODAY)["claim_id"])
    assert finance["F"] in before and finance["E"] in before
    f = Clp(finance["F"], icn="ICN-F", services=[
        Svc("97110", D("65.00"), D("29.06"), [("CO", "45", D("35.94"))], lcn="F-1", date="20260309")])
    e = Clp(finance["E"], icn="ICN-E2", services=[
        Svc("97530", D("160.00"), D("60.12"), [("CO", "45", D("99.88"))], lcn="E-1", units=2, date="20260306")])
    post(write(tmp_path, "era3.835", interchange([remittance([f, e], trace="T3")], control=3)))
    after = set(work_queue(today=TODAY)["claim_id"])
    assert after == before - {finance["F"], finance["E"]}


def test_approaching_timely_filing_comes_first(finance):
    # G (UHC, 90 days from 2026-02-23: ends 2026-05-24) was rejected and never filed
    queue = work_queue(today=date(2026, 5, 1)).set_index("claim_id")
    g = queue.loc[finance["G"]]
    assert (g["reason"], g["days_to_deadline"], g["reasons"]) == (
        "approaching_timely_filing", 23, "approaching_timely_filing, rejected")
    assert g["next_step"].startswith("File by 2026-05-24:") and g["priority"] == 1
    assert queue.iloc[0].name == finance["G"]
    past = work_queue(today=date(2026, 6, 1)).set_index("claim_id").loc[finance["G"]]
    assert past["reason"] == "rejected" and past["next_step"].startswith("Filing limit ended 2026-05-24")


def test_a_biller_sets_an_items_state_and_done_items_leave_the_default_worklist(finance, capsys):
    from otedi import cli

    item = f"{finance['F']}:no_835"
    assert cli.main(["ar", "item", item, "--state", "waiting", "--note", "called the payer, ref 88", "--by", "b1"]) == 0
    row = work_queue(today=TODAY).set_index("item_id").loc[item]
    assert (row["state"], row["state_by"], row["state_note"]) == ("waiting", "b1", "called the payer, ref 88")
    assert cli.main(["ar", "item", item, "--state", "done", "--note", "payer says paid, 835 next week"]) == 0
    capsys.readouterr()
    assert cli.main(["ar", "worklist", "--today", TODAY.isoformat()]) == 0
    assert finance["F"] not in capsys.readouterr().out
    assert cli.main(["ar", "worklist", "--today", TODAY.isoformat(), "--all"]) == 0
    assert "[done - " in capsys.readouterr().out
    assert cli.main(["ar", "item", f"{finance['F']}:lost", "--state", "done", "--note", "x"]) == 2
    capsys.readouterr()
    assert cli.main(["ar", "item", f"{finance['E']}:no_835", "--state", "done", "--note", "x"]) == 2  # E was paid
    assert f"{finance['E']}:no_835 is not in today's work queue" in capsys.readouterr().err
    assert cli.main(["ar", "item", item, "--state", "later", "--note", "x"]) == 2  # not a state: a usage error


def test_an_unrecoverable_denial_written_off_leaves_the_queue(finance):
    from otedi.actions.adjustments import adjust, approve
    from otedi.warehouse.db import session_scope

    d = finance["D"]  # CO-29 timely filing
    assert d in set(work_queue(today=TODAY)["claim_id"])
    with session_scope() as s:
        adjust(s, d, amount=D("65.00"), reason="timely_filing", who="b1", note="CO-29, no proof of timely filing")
    with session_scope() as s:
        approve(s, 1, who="manager", note="confirmed")
    assert d not in set(work_queue(today=TODAY)["claim_id"])


def test_an_appeal_letter_waits_for_the_decision_and_a_late_filing_denial_cannot_be_appealed(finance, tmp_path):
    from otedi import cli
    from otedi.actions.appeals import appeal
    from otedi.actions.audit import ActionError
    from otedi.warehouse.db import session_scope
    from tests.test_patient_accounts import _pdf_text

    c, d = finance["C"], finance["D"]
    with session_scope() as s:
        done = appeal(s, c, tmp_path / "appeals", who="b1", note="Authorization 55-1 was on file for 03-04.",
                      today=TODAY)
    assert done["deadline"] == date(2026, 7, 23) and not done["late"]  # decision 03-20 + 5 days receipt + 120
    text = _pdf_text(tmp_path / "appeals" / f"appeal_{c}_{TODAY}.pdf")
    assert "Medicare redetermination request" in text and "CO-197" in text and "Authorization 55-1" in text
    item = work_queue(today=TODAY).set_index("claim_id").loc[c]
    assert item["reason"] == "denied" and "appealed on 2026-04-20" in item["detail"]
    assert "follow up after 2026-06-19" in item["next_step"]
    with pytest.raises(ActionError, match="has not answered yet"):
        with session_scope() as s:
            appeal(s, c, tmp_path / "appeals", who="b1", note="again", today=TODAY)
    assert cli.main(["ar", "appeal", d, "--out", str(tmp_path / "appeals"), "--note", "x"]) == 2  # CO-29

    paid = Clp(c, icn="ICN-C2", services=[Svc("97535", D("65.00"), D("52.00"), [("CO", "45", D("13.00"))],
                                              lcn="C-2", date="20260304")])
    reversal = Clp(c, status="22", icn="ICN-C", services=[
        Svc("97535", D("-65.00"), D("0.00"), [("CO", "197", D("-65.00"))], lcn="C-2", date="20260304")])
    post(write(tmp_path, "era9.835", interchange([remittance([reversal, paid], trace="T9")], control=9)))
    queue = work_queue(today=TODAY).set_index("claim_id")
    assert c not in queue.index or queue.loc[c, "reason"] != "denied"


def test_coinsurance_a_secondary_payer_is_on_file_for_is_not_the_patients_yet(finance):
    """Claim A's patient has a secondary payer for its date of service, not billed yet: the 16.80 the
    primary left is the secondary's to pay first - not a patient balance, aging or statement."""
    from otedi.analytics import claim_reconciliation
    from otedi.warehouse.db import session_scope
    from otedi.accounts.statements import statements_due

    a = claim_reconciliation(today=TODAY).set_index("claim_id").loc[finance["A"]]
    assert (a["patient_responsibility"], a["to_secondary"], a["patient_balance"]) == (D("16.80"), D("16.80"), 0)
    with session_scope() as s:
        due, _, _ = statements_due(s, TODAY)
    assert finance["A"] not in {line["claim_id"] for st in due for line in st.lines}
    assert {line["claim_id"] for st in due for line in st.lines} >= {finance["C"]}


def test_a_claim_under_appeal_is_not_corrected_until_the_payer_decides(finance, tmp_path):
    # C is partly denied (CO-197) by Medicare, whose corrections are reopenings, so a dry run offers it as a
    # work item; once appealed it says to wait for the decision, named or not; the decision's 835 ends that.
    from otedi.actions.appeals import appeal
    from otedi.claims.resubmit import plan_resubmissions
    from otedi.warehouse.db import session_scope

    c = finance["C"]

    def offered(claim_ids=None):
        with session_scope() as s:
            plan = plan_resubmissions(s, today=TODAY, claim_ids=claim_ids)
            assert c not in {p.original_claim_id for p in plan.planned}
            return {w.claim_id: w.reason for w in plan.work_items}[c]

    assert offered() == "CGS MEDICARE PART B OHIO does not process corrected claims (frequency 7/8)"
    with session_scope() as s:
        appeal(s, c, tmp_path / "appeals", who="b1", note="Authorization 55-1 was on file.", today=TODAY)
    assert offered() == offered([c]) == "appealed on 2026-04-20: the payer has not decided yet"

    # The payer decides: it reprocesses the claim (reversal, then the new adjudication) and upholds the
    # CO-197 denial of line 2, so the claim is the biller's to work again.
    reversal = Clp(c, status="22", icn="ICN-C", services=[
        Svc("97530", D("-160.00"), D("-64.00"), [("CO", "45", D("-80.00")), ("PR", "2", D("-16.00"))],
            lcn="C-1", units=2, date="20260304"),
        Svc("97535", D("-65.00"), D("0.00"), [("CO", "197", D("-65.00"))], lcn="C-2", date="20260304")])
    upheld = Clp(c, icn="ICN-C3", services=[
        Svc("97530", D("160.00"), D("64.00"), [("CO", "45", D("80.00")), ("PR", "2", D("16.00"))],
            lcn="C-1", units=2, date="20260304"),
        Svc("97535", D("65.00"), D("0.00"), [("CO", "197", D("65.00"))], lcn="C-2", date="20260304")])
    post(write(tmp_path, "era10.835", interchange([remittance([reversal, upheld], trace="T10")], control=10)))
    assert offered() == "CGS MEDICARE PART B OHIO does not process corrected claims (frequency 7/8)"
