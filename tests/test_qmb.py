"""QMB / dual-eligible patients (issue 12, ot_billing_rules.md §2.13), on SQLite and PostgreSQL: a Qualified
Medicare Beneficiary is never billed Medicare deductible, coinsurance or copays (SSA §1902(n)(3)(B); CMS MLN
SE1128): what Medicaid does not pay is written off (reason qmb) after the 835s post, audited like every
write-off, once, and never reaches a statement."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import date
from decimal import Decimal as D
from pathlib import Path

import pytest
from sqlalchemy import func, select

from otedi import config
from otedi.accounts.balances import claim_balances, unapplied_credit
from otedi.accounts.qmb import qmb_cost_sharing_claims, write_off_qmb_cost_sharing
from otedi.accounts.statements import write_statements
from otedi.actions.patient_payments import pay, refund
from otedi.analytics.reconcile import claim_reconciliation
from otedi.charges.load import file_sha256, from_model, load_extract
from otedi.claims.resubmit import resubmit
from otedi.clearinghouse import ingest_fetched
from otedi.outbound import run_outbound
from otedi.remit.post import post_remittance_file
from otedi.warehouse import models
from otedi.warehouse.db import in_own_transaction, session_scope
from tests.factories import charge, write_charges_csv
from tests.remit_builder import Clp, Svc, interchange, remittance
from tests.test_patient_accounts import assert_identities

TODAY = date(2026, 4, 1)
MEDICAID = dict(payer_id="OHMCD", payer_name="OHIO MEDICAID", claim_filing_code="MC", member_id="100200300400",
                payer_sequence="S", prior_auth_number="PA-7731")
MEDICAID_PAYER = "1888888888"  # TRN03 of the Medicaid 835s (Medicare's is the builder's default)


def medicare_835(pcn: str, lcn: str, *, status: str = "1", crossover: str | None = None) -> Clp:
    """Medicare's 835 for one 97530 x2 line billed 160.00: paid 50.00, CO-45 76.00, deductible (PR-1) 20.00
    and coinsurance (PR-2) 14.00: 34.00 of Medicare cost sharing."""
    return Clp(pcn, status=status, icn=f"MCR-{lcn}", crossover=crossover, services=[
        Svc("97530", D("160.00"), D("50.00"), [("CO", "45", D("76.00")), ("PR", "1", D("20.00")),
                                               ("PR", "2", D("14.00"))], lcn=lcn, units=2)])


def medicaid_835(pcn: str, lcn: str, *, status: str = "2") -> Clp:
    """Medicaid as secondary on the 34.00: pays 20.00, leaves 5.00 as PR-2 (OA-23 the prior payer's part,
    CO-45 9.00)."""
    return Clp(pcn, status=status, icn=f"MCD-{lcn}", services=[
        Svc("97530", D("160.00"), D("20.00"), [("OA", "23", D("126.00")), ("CO", "45", D("9.00")),
                                               ("PR", "2", D("5.00"))], lcn=lcn, units=2)])


def bill(tmp_path: Path, rows) -> dict[str, str]:
    """Load and build the charges; {charge_id: claim_id} of the claims built."""
    write_charges_csv(tmp_path / "charges.csv", rows)
    run_outbound(tmp_path / "charges.csv", tmp_path / "out", today=date(2026, 3, 10))
    with session_scope() as s:
        return dict(s.execute(select(models.ClaimLine.charge_id, models.Claim.claim_id)
                              .join(models.ClaimLine.claim)).all())


def post(tmp_path: Path, name: str, claims: list[Clp], trace: str, payer: str = "1999999999") -> None:
    path = tmp_path / name
    path.write_text(interchange([remittance(claims, trace=trace, payer=payer)]))
    with session_scope() as s:
        assert post_remittance_file(s, path).status == "posted"


def qmb_run():
    return in_own_transaction(lambda s: write_off_qmb_cost_sharing(s, today=TODAY), what="test")


def balance(claim_id: str):
    with session_scope() as s:
        claim = s.scalar(select(models.Claim).where(models.Claim.claim_id == claim_id))
        return claim_balances(s, [claim])[claim.id]


def adjustments() -> list[tuple[str, str, str, D, str, str]]:
    with session_scope() as s:
        return [(a.claim_id, r.reason, r.side, r.amount, r.status, r.requested_by) for r, a in s.execute(
            select(models.AccountAdjustment, models.Claim).join(models.Claim,
                                                                models.Claim.id == models.AccountAdjustment.claim_pk)
            .order_by(models.AccountAdjustment.id)).all()]


def statements(tmp_path: Path, folder: str) -> dict[str, str]:
    """{patient_id: total_due} of the statements written on 2026-04-10."""
    with session_scope() as s:
        write_statements(s, date(2026, 4, 10), tmp_path / folder, who="billing")
    jsonl = tmp_path / folder / "statements.jsonl"
    if not jsonl.exists():
        return {}
    return {v["patient_id"]: v["total_due"] for v in map(json.loads, jsonl.read_text().splitlines())}


@pytest.fixture
def two_patients(warehouse, tmp_path) -> dict[str, str]:
    """The same Medicare visit for P100 (a QMB, no Medicaid on file) and P200 (not a QMB); Medicare's 835
    left each 34.00 of cost sharing (PR-1 20.00, PR-2 14.00). {charge_id: claim_id}."""
    ids = bill(tmp_path, [charge(charge_id="Q-1", charge_amount=D("160.00"), qmb="Y"),
                          charge(charge_id="N-1", charge_amount=D("160.00"), patient_id="P200")])
    era = tmp_path / "archive" / "mcr.835"
    era.parent.mkdir()
    era.write_text(interchange([remittance([medicare_835(ids["Q-1"], "Q-1"), medicare_835(ids["N-1"], "N-1")],
                                           trace="T-MCR")]))
    with session_scope() as s:  # as fetched from the clearinghouse: the nightly ingest posts it
        s.add(models.FetchedFile(drop="file:///drop", remote_name=era.name, size=era.stat().st_size,
                                 sha256=file_sha256(era), kind="835", archive_path=str(era)))
    return ids


def test_a_qmb_patients_medicare_cost_sharing_is_written_off_after_the_835_posts(two_patients, tmp_path):
    qmb, other = two_patients["Q-1"], two_patients["N-1"]
    with session_scope() as s:
        result = ingest_fetched(s, today=TODAY)
    assert [r["status"] for r in result.remittances] == ["posted"]
    assert [(w.claim_id, w.amount, w.patient_paid) for w in result.qmb_written_off] == [(qmb, D("34.00"), D("0.00"))]
    assert result.qmb_refund_due == [] and not result.qmb_failed
    # (a) the QMB's claim: written off on the patient side with reason qmb, by otedi, at once
    assert adjustments() == [(qmb, "qmb", "patient", D("34.00"), "posted", "otedi")]
    assert (balance(qmb).patient_owes, balance(qmb).patient_written_off) == (D("0.00"), D("34.00"))
    with session_scope() as s:
        [event] = s.scalars(select(models.AuditEvent))
        [entry] = s.scalars(select(models.AccountEntry))
    changes = json.loads(event.changes)
    assert (event.action, event.actor, event.subject) == ("write_off", "otedi", f"claim:{qmb}")
    assert "1902(n)(3)(B)" in event.note and "SE1128" in event.note
    assert (changes["reason"], changes["amount"], changes["patient_responsibility"], changes["patient_paid"]) == \
        ("qmb", "34.00", "34.00", "0.00")
    assert (entry.entry_type, entry.side, entry.reason, entry.amount, entry.audit_event_id) == \
        ("write_off", "patient", "qmb", D("34.00"), event.id)
    recon = claim_reconciliation().set_index("claim_id")
    assert (recon.loc[qmb, "patient_responsibility"], recon.loc[qmb, "patient_written_off"],
            recon.loc[qmb, "patient_balance"]) == (D("34.00"), D("34.00"), 0)
    # (b) the other patient's identical claim keeps its balance, and only that patient gets a statement
    assert balance(other).patient_owes == D("34.00") and recon.loc[other, "patient_balance"] == D("34.00")
    assert_identities()
    assert statements(tmp_path, "stmts") == {"P200": "34.00"}


def test_statements_leave_qmb_cost_sharing_out_even_before_the_write_off_ran(two_patients, tmp_path):
    with session_scope() as s:
        for fetched in s.scalars(select(models.FetchedFile)):
            assert post_remittance_file(s, fetched.archive_path).status == "posted"  # posted, not written off
    assert balance(two_patients["Q-1"]).patient_owes == D("34.00")
    assert statements(tmp_path, "stmts") == {"P200": "34.00"}


def test_the_write_off_is_idempotent(two_patients):
    with session_scope() as s:
        assert len(ingest_fetched(s, today=TODAY).qmb_written_off) == 1
    with session_scope() as s:
        assert ingest_fetched(s, today=TODAY).qmb_written_off == []  # (d) the balance is 0 now
    assert qmb_run() == []
    assert len(adjustments()) == 1
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(models.AccountEntry)) == 1
        assert s.scalar(select(func.count()).select_from(models.AuditEvent)) == 1


def test_a_qmb_who_already_paid_gets_the_payment_back_as_credit_to_refund(two_patients):
    qmb = two_patients["Q-1"]
    with session_scope() as s:
        for fetched in s.scalars(select(models.FetchedFile)):
            post_remittance_file(s, fetched.archive_path, fetched.remote_name)
    with session_scope() as s:  # paid at the front desk before the write-off ran
        pay(s, practice_id="BRIGHTHANDS", patient_id="P100", amount="10.00", method="check", reference="CHK7",
            received_on=date(2026, 3, 30), who="frontdesk", claim_id=qmb)
    [done] = qmb_run()
    # all 34.00 of cost sharing written off; the 10.00 the patient paid is credit on their account again
    assert (done.claim_id, done.amount, done.patient_paid, done.refund_due) == (qmb, D("34.00"), D("10.00"), True)
    assert (balance(qmb).patient_owes, balance(qmb).patient_paid, balance(qmb).patient_written_off) == (
        D("0.00"), D("0.00"), D("34.00"))
    with session_scope() as s:
        assert unapplied_credit(s, "BRIGHTHANDS", "P100") == D("10.00")
        returned = s.scalar(select(models.AuditEvent).where(models.AuditEvent.action == "qmb_payment_returned"))
        event = s.scalar(select(models.AuditEvent).where(models.AuditEvent.action == "write_off"))
    assert returned.actor == "otedi" and json.loads(returned.changes)["amount"] == "10.00"
    assert json.loads(event.changes)["patient_paid"] == "10.00"
    assert qmb_run() == []  # nothing more to do
    with session_scope() as s:  # the biller refunds the credit the usual way
        refund(s, practice_id="BRIGHTHANDS", patient_id="P100", amount="10.00", method="check", reference="RF1",
               paid_on=date(2026, 4, 2), who="biller", note="QMB: cost sharing may not be collected")
        assert unapplied_credit(s, "BRIGHTHANDS", "P100") == D("0.00")
    assert_identities()


def test_a_medicaid_secondary_takes_the_medicare_cost_sharing_and_its_own_remainder_is_written_off(
        warehouse, tmp_path):
    # (c) a QMB with Ohio Medicaid on file as secondary: Medicare's 34.00 is Medicaid's to answer first
    ids = bill(tmp_path, [charge(charge_id="M-1", charge_amount=D("160.00"), qmb="Y"),
                          charge(charge_id="M-1S", charge_amount=D("160.00"), qmb="Y", **MEDICAID)])
    medicare = ids["M-1"]
    post(tmp_path, "mcr.835", [medicare_835(medicare, "M-1")], "T-MCR")
    assert balance(medicare).patient_owes == D("0.00")  # the secondary's to pay first
    assert qmb_run() == [] and adjustments() == []
    with session_scope() as s:
        [built] = resubmit(s, today=TODAY, claim_ids=(), secondary=True).built
    assert (built.kind, built.payer_id, built.original_claim_id) == ("secondary", "OHMCD", medicare)
    assert qmb_run() == []  # Medicaid has not answered: nothing is the patient's yet
    post(tmp_path, "mcd.835", [medicaid_835(built.claim_id, f"{built.claim_id}-1")], "T-MCD", MEDICAID_PAYER)
    assert balance(built.claim_id).patient_owes == D("5.00")
    [done] = qmb_run()
    assert (done.claim_id, done.amount) == (built.claim_id, D("5.00"))
    assert adjustments() == [(built.claim_id, "qmb", "patient", D("5.00"), "posted", "otedi")]
    assert balance(medicare).patient_written_off == D("0.00")  # nothing on the Medicare claim itself
    assert balance(built.claim_id).patient_owes == D("0.00")
    assert_identities()
    assert statements(tmp_path, "stmts") == {}


@pytest.fixture
def qmb_program_payer(tmp_path, monkeypatch) -> Path:
    """A copy of the mappings with a state QMB program payer (qmb_program: true)."""
    root = tmp_path / "mappings"
    shutil.copytree(config.mappings_dir(), root)
    text = (root / "payers" / "OHMCD_ohio_medicaid.yaml").read_text()
    assert text.count("qmb_program: false\n") == 1
    (root / "payers" / "OHQMB_ohio_qmb_program.yaml").write_text(
        text.replace("payer_id: OHMCD", "payer_id: OHQMB").replace("name: OHIO MEDICAID", "name: OHIO QMB PROGRAM")
        .replace("qmb_program: false\n", "qmb_program: true\n"))
    original = config.mappings_dir()
    monkeypatch.setenv("OTEDI_MAPPINGS", str(root))
    return original


def test_a_qmb_program_payer_makes_the_patient_a_qmb(warehouse, tmp_path, qmb_program_payer, monkeypatch):
    # (e) no qmb flag in the extract: the secondary charge is with the state's QMB program payer. Medicare
    # crosses the claim over to it (CLP02 19, NM1*TT); the program's own 835 posts to the crossover record.
    ids = bill(tmp_path, [charge(charge_id="X-1", charge_amount=D("160.00")),
                          charge(charge_id="X-1S", charge_amount=D("160.00"),
                                 **{**MEDICAID, "payer_id": "OHQMB", "payer_name": "OHIO QMB PROGRAM"})])
    medicare = ids["X-1"]
    post(tmp_path, "mcr.835", [medicare_835(medicare, "X-1", status="19", crossover="OHIO QMB PROGRAM")], "T-MCR")
    with session_scope() as s:
        link = s.scalar(select(models.ClaimLink).where(models.ClaimLink.kind == "crossover"))
        crossover = link.claim.claim_id
        assert (link.original.claim_id, link.claim.payer_id) == (medicare, "OHQMB")
        assert not s.scalar(select(models.Charge).where(models.Charge.charge_id == "X-1S")).qmb
    post(tmp_path, "qmb.835", [medicaid_835(medicare, "X-1")], "T-QMB", MEDICAID_PAYER)
    assert balance(crossover).patient_owes == D("5.00") and balance(medicare).patient_owes == D("0.00")
    with session_scope() as s:
        pks = dict(s.execute(select(models.Claim.claim_id, models.Claim.id)).all())
        assert qmb_cost_sharing_claims(s) == {pks[medicare], pks[crossover]}
    monkeypatch.setenv("OTEDI_MAPPINGS", str(qmb_program_payer))  # the shipped files: no QMB program payer
    with session_scope() as s:
        assert qmb_cost_sharing_claims(s) == set()
    monkeypatch.setenv("OTEDI_MAPPINGS", str(tmp_path / "mappings"))
    [done] = qmb_run()
    assert (done.claim_id, done.amount) == (crossover, D("5.00"))
    assert balance(crossover).patient_owes == D("0.00")
    assert_identities()


def test_validation_rejects_a_qmb_value_other_than_y_or_n_naming_row_and_column(warehouse, tmp_path):
    # (f) X is refused with its row and column; y is read as Y; the other rows load
    write_charges_csv(tmp_path / "charges.csv", [charge(charge_id="V-1", qmb="X"), charge(charge_id="V-2", qmb="y"),
                                                 charge(charge_id="V-3", qmb="N")])
    with session_scope() as s:
        result = load_extract(s, tmp_path / "charges.csv", today=TODAY)
    assert (result.rows, result.accepted, result.rejected) == (3, 2, 1)
    [issue] = result.issues
    assert (issue.row, issue.charge_id, issue.column, issue.value, issue.rule) == (2, "V-1", "qmb", "X", "qmb-flag")
    assert issue.message.startswith("charges.csv row 2 (charge_id V-1): qmb 'X' is not Y or N")
    with session_scope() as s:
        [reject] = s.scalars(select(models.ChargeReject))
        rows = {c.charge_id: c for c in s.scalars(select(models.Charge))}
        assert (reject.row_number, reject.column_name, reject.value) == (2, "qmb", "X")
        assert (rows["V-2"].qmb, rows["V-3"].qmb) == (True, False)
        assert (from_model(rows["V-2"]).qmb, from_model(rows["V-3"]).qmb) == ("Y", "N")


WRITE_OFF = ("from datetime import date; from otedi.accounts.qmb import write_off_qmb_cost_sharing; "
             "from otedi.warehouse.db import in_own_transaction; "
             "print(len(in_own_transaction(lambda s: write_off_qmb_cost_sharing(s, today=date(2026, 4, 1)), "
             "what='QMB write-offs')))")


def test_two_processes_at_once_write_it_off_once(two_patients):
    # (g) the nightly ingest and a re-run of it at the same time: one write-off, never two
    with session_scope() as s:
        for fetched in s.scalars(select(models.FetchedFile)):
            post_remittance_file(s, fetched.archive_path, fetched.remote_name)
    procs = [subprocess.Popen([sys.executable, "-c", WRITE_OFF], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-500:] for _, err in outs]
    assert sorted(out.strip() for out, _ in outs) == ["0", "1"]
    assert adjustments() == [(two_patients["Q-1"], "qmb", "patient", D("34.00"), "posted", "otedi")]
    assert balance(two_patients["Q-1"]).patient_owes == D("0.00")
    assert_identities()
