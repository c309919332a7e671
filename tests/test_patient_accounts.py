"""Patient payments, refunds, credits and write-offs (issue 12), on SQLite and PostgreSQL: the money goes
to the account ledger as new entries, every action is audited, and the reconciliation identities hold
for every claim after every action."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from decimal import Decimal as D

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DatabaseError

from otedi import cli
from otedi.accounts.balances import claim_balances, patient_claims, unapplied_credit
from otedi.actions.adjustments import adjust, approve
from otedi.actions.audit import ActionError
from otedi.actions.patient_payments import pay, refund
from otedi.analytics.reconcile import claim_reconciliation
from otedi.outbound import run_outbound
from otedi.remit.post import post_remittance_file
from otedi.warehouse import models
from otedi.warehouse.db import session_scope
from tests.factories import charge, write_charges_csv
from tests.remit_builder import Clp, Svc, interchange, remittance

PRACTICE, PATIENT = "BRIGHTHANDS", "P100"
PAID_ON = date(2026, 4, 2)


@pytest.fixture
def owed(warehouse, tmp_path) -> dict[str, str]:
    """Two claims of one patient, each adjudicated with coinsurance left to the patient: the older one
    (A, 03-02) owes 16.80, the newer (C, 03-05) 12.00; a third (D, 03-06) was denied CO-29."""
    write_charges_csv(tmp_path / "charges.csv", [
        charge(charge_id="A-1", cpt="97530", minutes=30, units=2, charge_amount=D("160.00")),
        charge(charge_id="C-1", cpt="97110", minutes=15, units=1, charge_amount=D("65.00"),
               service_date=date(2026, 3, 5)),
        charge(charge_id="D-1", cpt="97110", minutes=15, units=1, charge_amount=D("65.00"),
               service_date=date(2026, 3, 6)),
    ])
    run_outbound(tmp_path / "charges.csv", tmp_path / "out", today=date(2026, 3, 10))
    with session_scope() as s:
        ids = dict(s.execute(select(models.ClaimLine.charge_id, models.Claim.claim_id)
                             .join(models.ClaimLine.claim)).all())
    a, c, d = ids["A-1"], ids["C-1"], ids["D-1"]
    era = interchange([remittance([
        Clp(a, icn="ICN-A", services=[Svc("97530", D("160.00"), D("67.20"),
                                          [("CO", "45", D("76.00")), ("PR", "2", D("16.80"))], lcn="A-1", units=2)]),
        Clp(c, icn="ICN-C", services=[Svc("97110", D("65.00"), D("48.00"),
                                          [("CO", "45", D("5.00")), ("PR", "2", D("12.00"))], lcn="C-1")]),
        Clp(d, status="4", icn="ICN-D", services=[Svc("97110", D("65.00"), D("0.00"), [("CO", "29", D("65.00"))],
                                                      lcn="D-1")]),
    ])])
    path = tmp_path / "era.835"
    path.write_text(era)
    with session_scope() as s:
        assert post_remittance_file(s, path).status == "posted"
    return {"A": a, "C": c, "D": d}


def owes() -> dict[str, D]:
    with session_scope() as s:
        claims = patient_claims(s, PRACTICE, PATIENT)
        return {b.claim_id: b.patient_owes for b in claim_balances(s, claims).values()}


def assert_identities() -> None:
    recon = claim_reconciliation()
    for r in recon.itertuples():
        assert r.billed == r.paid + r.contractual + r.patient_responsibility + r.other_adjustments + \
            r.written_off + r.open_balance, r.claim_id
        assert r.patient_responsibility == r.patient_paid + r.patient_written_off + r.to_secondary + \
            r.patient_balance, r.claim_id
        assert r.open_balance == r.denied_open + r.awaiting_payer, r.claim_id


def payment(amount: str, reference: str = "CHK1001", **kw):
    with session_scope() as s:
        return pay(s, practice_id=PRACTICE, patient_id=PATIENT, amount=amount, method="check",
                   reference=reference, received_on=PAID_ON, who="frontdesk", **kw)


def test_a_payment_applies_to_the_oldest_balance_first_once(owed):
    assert owes() == {owed["A"]: D("16.80"), owed["C"]: D("12.00"), owed["D"]: D("0.00")}
    result = payment("20.00")
    assert result.status == "posted" and result.applied == {owed["A"]: D("16.80"), owed["C"]: D("3.20")}
    assert owes() == {owed["A"]: D("0.00"), owed["C"]: D("8.80"), owed["D"]: D("0.00")}
    assert payment("20.00").status == "already_posted"  # the same check entered twice
    assert owes()[owed["C"]] == D("8.80")
    recon = claim_reconciliation().set_index("claim_id")
    assert (recon.loc[owed["A"], "patient_paid"], recon.loc[owed["C"], "patient_balance"]) == (D("16.80"), D("8.80"))
    assert_identities()
    with session_scope() as s:
        [event] = s.scalars(select(models.AuditEvent))
        assert (event.action, event.actor, json.loads(event.changes)["reference"]) == \
            ("patient_payment", "frontdesk", "CHK1001")


def test_an_overpayment_becomes_credit_that_pays_later_balances_or_is_refunded(owed):
    assert payment("40.00").credit == D("11.20")  # 16.80 + 12.00 owed
    with pytest.raises(ActionError, match="would exceed it"):
        with session_scope() as s:
            refund(s, practice_id=PRACTICE, patient_id=PATIENT, amount=D("11.21"), method="check",
                   reference="RF1", paid_on=PAID_ON, who="billing", note="overpaid")
    with session_scope() as s:
        done = refund(s, practice_id=PRACTICE, patient_id=PATIENT, amount=D("5.00"), method="check",
                      reference="RF1", paid_on=PAID_ON, who="billing", note="patient asked for part back")
    assert done.credit == D("6.20")
    with session_scope() as s:
        assert unapplied_credit(s, PRACTICE, PATIENT) == D("6.20")
    assert_identities()


def test_an_older_credit_is_used_on_a_balance_the_new_payment_did_not_reach(owed):
    payment("16.80", reference="CARD-1", claim_id=owed["A"])  # exactly claim A
    assert payment("30.00", reference="CARD-2").credit == D("18.00")  # C's 12.00 paid, 18.00 over
    assert owes()[owed["C"]] == D("0.00")
    assert_identities()


def test_small_write_offs_post_large_ones_wait_for_a_second_person(owed):
    with session_scope() as s:
        small = adjust(s, owed["C"], amount=D("2.00"), reason="small_balance", who="biller1", note="under $10")
        big = adjust(s, owed["A"], amount=D("16.80"), reason="bad_debt", who="biller1", note="returned mail x3")
    assert small["status"] == "posted" and big["status"] == "pending"
    assert str(big["needs_approval_above"]) == "0.00"  # money in cents, like every amount shown
    assert owes() == {owed["A"]: D("16.80"), owed["C"]: D("10.00"), owed["D"]: D("0.00")}
    with pytest.raises(ActionError, match="another person approves it"):
        with session_scope() as s:
            approve(s, big["adjustment"], who="biller1", note="ok")
    with session_scope() as s:
        approve(s, big["adjustment"], who="manager", note="collection effort documented")
    assert owes()[owed["A"]] == D("0.00")
    with pytest.raises(ActionError, match="not pending"):
        with session_scope() as s:
            approve(s, big["adjustment"], who="manager2", note="again")
    with session_scope() as s:
        actions = [e.action for e in s.scalars(select(models.AuditEvent).order_by(models.AuditEvent.id))]
    assert actions == ["write_off", "write_off_request", "write_off_approve"]
    assert_identities()


def test_a_timely_filing_denial_is_written_off_the_insurance_balance_never_past_it(owed):
    with pytest.raises(ActionError, match="would exceed it"):
        with session_scope() as s:
            adjust(s, owed["D"], amount=D("65.01"), reason="timely_filing", who="biller1", note="CO-29")
    with session_scope() as s:
        adjust(s, owed["D"], amount=D("65.00"), reason="timely_filing", who="biller1", note="CO-29 past filing")
    with session_scope() as s:
        approve(s, 1, who="manager", note="filing limit passed: confirmed")
    row = claim_reconciliation().set_index("claim_id").loc[owed["D"]]
    assert (row.denied, row.written_off, row.open_balance, row.denied_open) == (D("65.00"), D("65.00"), 0, 0)
    assert_identities()


def test_bad_input_and_unknown_reasons_are_refused(owed):
    for amount in ("0", "-5", "1.005", "abc"):
        with pytest.raises(ActionError, match="amount"):
            payment(amount)
    with pytest.raises(ActionError, match="method"):
        with session_scope() as s:
            pay(s, practice_id=PRACTICE, patient_id=PATIENT, amount=D("5"), method="bitcoin", reference="X",
                received_on=PAID_ON, who="a")
    with pytest.raises(ActionError, match="reason 'goodwill' is not one of"):
        with session_scope() as s:
            adjust(s, owed["A"], amount=D("1.00"), reason="goodwill", who="a", note="n")
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(models.AccountEntry)) == 0


def test_the_account_ledger_is_append_only(owed):
    payment("5.00")
    for statement in ("update account_entry set amount = 0", "delete from account_entry"):
        with pytest.raises(DatabaseError, match="append-only"):
            with session_scope() as s:
                s.execute(text(statement))


def test_the_cli_posts_a_payment_and_shows_the_balances(owed, capsys):
    args = ["patient", "pay", "--practice", PRACTICE, "--patient", PATIENT, "--amount", "10.00", "--method", "card",
            "--reference", "AUTH77", "--date", "2026-04-03", "--by", "frontdesk"]
    assert cli.main(args) == 0 and cli.main(args) == 0  # the second is recognised
    assert cli.main(["patient", "balance", "--practice", PRACTICE, "--patient", PATIENT, "--json"]) == 0
    out = capsys.readouterr().out
    shown = json.loads(out[out.index("{\n  \"claims\""):])
    assert {c["claim_id"]: c["patient_owes"] for c in shown["claims"]}[owed["A"]] == "6.80"
    assert cli.main(["patient", "balance", "--practice", PRACTICE, "--patient", PATIENT + "X"]) == 2  # a typo
    assert cli.main(["ar", "adjust", "--claim", owed["C"], "--amount", "99", "--reason", "small_balance",
                     "--note", "x"]) == 2  # more than is owed


def test_an_import_posts_each_row_once_and_rejects_bad_rows_by_number(owed, tmp_path, capsys):
    from otedi.actions.payment_import import import_payments

    export = tmp_path / "settlement.csv"
    export.write_text("Location ID,Customer Reference,Amount,Authorization Code,Settlement Date\n"
                      f"{PRACTICE},{PATIENT},10.00,AUTH1,04/01/2026\n"
                      f"{PRACTICE},{PATIENT},abc,AUTH2,04/01/2026\n"
                      f"{PRACTICE},NOSUCH,5.00,AUTH3,04/01/2026\n"
                      f"{PRACTICE},{PATIENT},2.00,AUTH4,2026-04-01\n"
                      f"{PRACTICE},{PATIENT},5.00,AUTH5,04/02/2026\n")
    with session_scope() as s:
        first = import_payments(s, export, who="importer", mapping="card_processor_style")
    assert (first.posted, first.already_posted) == (2, 0)
    assert [(r["row"], r["reason"].split(" ")[0]) for r in first.rejected] == \
        [(3, "amount"), (4, "no"), (5, "received_on")]
    assert owes()[owed["A"]] == D("1.80")  # 16.80 - 10.00 - 5.00
    with session_scope() as s:
        again = import_payments(s, export, who="importer", mapping="card_processor_style")
    assert (again.posted, again.already_posted) == (0, 2)
    assert owes()[owed["A"]] == D("1.80")
    # rows rejected: exit 3, the CLI's rule for data not taken (README, "The otedi command")
    assert cli.main(["patient", "import", str(export), "--mapping", "card_processor_style", "--by", "x"]) == 3
    assert "row 3: amount" in capsys.readouterr().err
    assert_identities()


def _pdf_text(path) -> str:
    """The text drawn in a PDF's (deflated) content streams."""
    import re
    import zlib

    data = path.read_bytes()
    streams = re.findall(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S)
    return b"".join(zlib.decompress(s) for s in streams if s[:1] == b"x").decode("latin-1")


def test_statements_go_to_patients_who_owe_once_per_cycle(owed, tmp_path, capsys):
    import stat

    from otedi.accounts.statements import write_statements

    payment("10.00")
    with session_scope() as s:
        run = write_statements(s, date(2026, 4, 10), tmp_path / "stmts", who="billing")
    [pdf] = map(Path, run.written)
    assert pdf.read_bytes().startswith(b"%PDF") and stat.S_IMODE(pdf.stat().st_mode) == 0o600
    text = _pdf_text(pdf)
    assert "Amount due $18.80" in text and "BRIGHT HANDS" in text  # 16.80 + 12.00 - 10.00
    vendor = [json.loads(x) for x in (tmp_path / "stmts" / "statements.jsonl").read_text().splitlines()]
    assert [(v["patient_id"], v["total_due"], len(v["lines"])) for v in vendor] == [(PATIENT, "18.80", 2)]
    assert {ln["claim_id"]: ln["you_owe"] for ln in vendor[0]["lines"]} == {owed["A"]: "6.80", owed["C"]: "12.00"}
    assert "statement_" in (tmp_path / "stmts" / "statements.csv").read_text()
    with session_scope() as s:  # ten days later: within the 30-day cycle
        again = write_statements(s, date(2026, 4, 20), tmp_path / "stmts2", who="billing")
    assert (again.written, again.skipped_this_cycle) == ([], 1)
    payment("17.00", reference="CHK2")  # 1.80 left: below the 5.00 minimum
    assert cli.main(["patient", "statements", "--as-of", "2026-05-20", "--out", str(tmp_path / "s3"), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["written"], shown["skipped_below_minimum"]) == ([], 1)


@pytest.mark.parametrize("subscriber, addressed_to", [
    (dict(relationship="19", subscriber_last_name="DOE", subscriber_first_name="MARY", subscriber_sex="F",
          subscriber_dob=date(1985, 6, 1)), "MARY DOE, parent or guardian of JANE DOE"),
    ({}, "Parent or guardian of JANE DOE"),  # a Medicaid child: their own subscriber, no parent named
])
def test_a_childs_statement_goes_to_the_parent_or_guardian(warehouse, tmp_path, subscriber, addressed_to):
    from otedi.accounts.statements import write_statements

    write_charges_csv(tmp_path / "charges.csv", [charge(
        charge_id="K-1", cpt="97110", minutes=15, units=1, charge_amount=D("65.00"), patient_dob=date(2018, 5, 1),
        payer_id="87726", payer_name="UNITEDHEALTHCARE", claim_filing_code="CI", member_id="991234567",
        **subscriber)])
    run_outbound(tmp_path / "charges.csv", tmp_path / "out", today=date(2026, 3, 10))
    with session_scope() as s:
        claim_id = s.scalar(select(models.Claim.claim_id))
    era = tmp_path / "era.835"
    era.write_text(interchange([remittance([Clp(claim_id, icn="ICN-K", services=[Svc(
        "97110", D("65.00"), D("40.00"), [("CO", "45", D("5.00")), ("PR", "3", D("20.00"))], lcn="K-1")])])]))
    with session_scope() as s:
        post_remittance_file(s, era)
        run = write_statements(s, date(2026, 4, 10), tmp_path / "stmts", who="billing")
    [pdf] = map(Path, run.written)
    text = _pdf_text(pdf)
    assert addressed_to in text and "Patient JANE DOE" in text and "Amount due $20.00" in text
    [vendor] = [json.loads(x) for x in (tmp_path / "stmts" / "statements.jsonl").read_text().splitlines()]
    assert (vendor["name"], vendor["patient_name"]) == (addressed_to, "JANE DOE")


def test_the_kpis_count_patient_payments_write_offs_and_credit(owed):
    from otedi.analytics.kpis import kpi_table

    payment("30.00")  # 28.80 applied, 1.20 credit
    with session_scope() as s:
        adjust(s, owed["D"], amount=D("65.00"), reason="timely_filing", who="b1", note="CO-29")
    with session_scope() as s:
        approve(s, 1, who="manager", note="ok")
    kpis = kpi_table(today=date(2026, 4, 10)).set_index("kpi")
    assert kpis.loc["patient_collection_rate", "numerator"] == "28.80"
    assert kpis.loc["patient_collection_rate", "denominator"] == "28.80"
    assert (kpis.loc["write_off_rate", "numerator"], kpis.loc["write_off_rate", "denominator"]) == ("65.00", "290.00")
    assert kpis.loc["unapplied_credit", "value"] == D("1.20")


def test_the_html_report_shows_patient_accounts_and_write_offs(owed, tmp_path):
    from otedi.analytics import write_html_report

    with session_scope() as s:
        adjust(s, owed["C"], amount=D("1.00"), reason="small_balance", who="b1", note="under $10")
    payment("30.00")  # 16.80 + 11.00 applied, 2.20 credit
    html = write_html_report(tmp_path / "r.html", today=date(2026, 4, 10)).read_text()
    section = html[html.index("<h2>Patient accounts</h2>"):html.index("<h2>AR aging</h2>")]
    assert "$27.80" in section and "$2.20" in section  # paid by the patient, left as credit
    assert "small_balance" in section and "$1.00" in section


def test_the_same_payment_entered_twice_at_once_posts_once(owed):
    import subprocess
    import sys

    args = [sys.executable, "-m", "otedi.cli", "patient", "pay", "--practice", PRACTICE, "--patient", PATIENT,
            "--amount", "10.00", "--method", "check", "--reference", "TWIN1", "--date", "2026-04-02", "--by", "desk"]
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-500:] for _, err in outs]
    assert sorted(out.split(" ")[2].rstrip(":") for out, _ in outs) == ["already_posted", "posted"]
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(models.PatientPayment)) == 1
    assert owes()[owed["A"]] == D("6.80")


def test_two_payments_of_one_patient_at_once_never_apply_more_than_is_owed(owed):
    import subprocess
    import sys

    def cmd(reference):
        return [sys.executable, "-m", "otedi.cli", "patient", "pay", "--practice", PRACTICE, "--patient", PATIENT,
                "--amount", "16.80", "--method", "card", "--reference", reference, "--date", "2026-04-02"]
    procs = [subprocess.Popen(cmd(ref), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for ref in ("CARD-A", "CARD-B")]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-500:] for _, err in outs]
    assert owes() == {owed["A"]: D("0.00"), owed["C"]: D("0.00"), owed["D"]: D("0.00")}
    with session_scope() as s:
        assert unapplied_credit(s, PRACTICE, PATIENT) == D("4.80")  # 33.60 paid, 28.80 owed
    assert_identities()
