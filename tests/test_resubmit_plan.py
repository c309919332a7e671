"""`otedi ar resubmit` as a person's action (issue 12): without --yes it shows what it would build, why and
for how much, and builds nothing; --yes builds exactly that plan and audits each claim built; and which
lines of a primary claim go to the secondary payer (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal as D

import pytest
from sqlalchemy import func, select

from otedi import cli
from otedi.actions.audit import ActionError
from otedi.claims.resubmit import SECONDARY_NOTE, new_claim_id, plan_resubmissions, resubmit
from otedi.outbound import run_outbound
from otedi.warehouse import models
from otedi.warehouse.db import session_scope
from tests.factories import charge, write_charges_csv
from tests.remit_builder import Clp, Svc
from tests.test_resubmit import (  # noqa: F401 - billed is a fixture
    UHC, _write_with_prior_payers, billed, claim_row, find, medicare_paid, post, uhc, with_secondary_charges)
from tests.test_secondary_recoding import EGHP, MEDICARE_SECONDARY

TODAY = date(2026, 3, 25)


def warehouse_state() -> dict:
    """Everything a resubmission writes: claims and their lines, links, charge statuses, issues, audit rows."""
    with session_scope() as s:
        return {
            "claims": sorted(s.execute(select(models.Claim.claim_id, models.Claim.status)).all()),
            "lines": s.scalar(select(func.count()).select_from(models.ClaimLine)),
            "links": s.scalar(select(func.count()).select_from(models.ClaimLink)),
            "charges": sorted(s.execute(select(models.Charge.charge_id, models.Charge.status)).all()),
            "issues": s.scalar(select(func.count()).select_from(models.EditIssue)),
            "audit": s.scalar(select(func.count()).select_from(models.AuditEvent)),
        }


def audit_rows() -> list[tuple[str, str, str, str, dict]]:
    with session_scope() as s:
        return [(e.actor, e.action, e.subject, e.note, json.loads(e.changes))
                for e in s.scalars(select(models.AuditEvent).order_by(models.AuditEvent.id))]


@pytest.fixture
def due(billed, tmp_path) -> dict[str, str]:
    """U denied CO-197 (a replacement is due), R rejected by the 277CA (a new claim), M paid by Medicare with
    coinsurance left and a UHC secondary on file (a secondary claim)."""
    post(tmp_path, "uhc.835", [uhc(billed["U"], denied=True)], "T-U")
    post(tmp_path, "mcr.835", [medicare_paid(billed["M"])], "T-M")
    with session_scope() as s:
        s.scalar(select(models.Claim).where(models.Claim.claim_id == billed["R"])).status = "rejected"
    with_secondary_charges(tmp_path)
    return billed


# --- the plan (dry run) and the build are one ----------------------------------------------------------


def test_the_plan_says_what_would_be_built_and_why_and_builds_nothing(due):
    before = warehouse_state()
    with session_scope() as s:
        plan = plan_resubmissions(s, today=TODAY, secondary=True)
    assert warehouse_state() == before  # nothing written, nothing changed
    got = {(p.original_claim_id, p.kind, p.frequency_code, p.payer_id, p.amount) for p in plan.planned}
    assert got == {(due["U"], "replacement", "7", "87726", D("65.00")),
                   (due["R"], "resubmission", "1", "87726", D("65.00")),
                   (due["M"], "secondary", "1", "87726", D("230.00"))}
    why = {p.kind: p.reason for p in plan.planned}
    assert why["replacement"] == "denied: 65.00 denied (CO-197); the corrected claim replaces payer claim UHC-2026-0042"
    assert why["resubmission"].startswith("rejected by the 999/277CA")
    assert why["secondary"] == "the primary (15202) left 16.80 patient responsibility"
    assert {p.claim_id for p in plan.planned} == {new_claim_id(due[k], kind) for k, kind in
                                                   (("U", "replacement"), ("R", "resubmission"), ("M", "secondary"))}

    with session_scope() as s:
        result = resubmit(s, today=TODAY, secondary=True)
    assert [(b.claim_id, b.original_claim_id, b.kind, b.frequency_code, b.payer_id) for b in result.built] == [
        (p.claim_id, p.original_claim_id, p.kind, p.frequency_code, p.payer_id) for p in plan.planned]
    assert claim_row(new_claim_id(due["M"], "secondary")).total_charge == D("230.00")
    assert audit_rows() == []  # a library call without a person (the nightly cycle's way) is not audited


def test_a_claim_corrected_and_voided_in_one_request_is_planned_as_it_is_built(due):
    with session_scope() as s:
        plan = plan_resubmissions(s, today=TODAY, claim_ids=[due["U"]], void_ids=[due["U"]])
    assert [p.kind for p in plan.planned] == ["replacement"]
    assert [w.reason for w in plan.work_items] == ["claim is replaced without a payer claim number to void"]
    with session_scope() as s:
        result = resubmit(s, today=TODAY, claim_ids=[due["U"]], void_ids=[due["U"]])
    assert [b.claim_id for b in result.built] == [p.claim_id for p in plan.planned]
    assert result.work_items == plan.work_items


def test_a_person_correcting_must_say_why_and_nothing_is_built_without(due):
    before = warehouse_state()
    with session_scope() as s, pytest.raises(ActionError, match="--note"):
        resubmit(s, today=TODAY, claim_ids=[due["U"]], who="biller1", note="  ")
    assert warehouse_state() == before


# --- the command ------------------------------------------------------------------------------------------


def test_ar_resubmit_without_yes_shows_the_plan_and_builds_nothing(due, tmp_path, capsys):
    before = warehouse_state()
    out = tmp_path / "resubmitted"
    assert cli.main(["ar", "resubmit", "--claim", due["U"], "--out", str(out), "--today", "2026-03-25"]) == 0
    text = capsys.readouterr().out
    replacement = new_claim_id(due["U"], "replacement")
    assert (f"would build  {due['U']} -> {replacement}  replacement (frequency 7)  payer 87726  65.00  denied: "
            f"65.00 denied (CO-197)") in text
    assert "nothing built: run again with --yes --note WHY to build the 1 claim(s) above" in text
    assert warehouse_state() == before and not out.exists()

    assert cli.main(["ar", "resubmit", "--secondary", "--json", "--out", str(out), "--today", "2026-03-25"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["dry_run"] is True and summary["work_items"] == [] and summary["already_built"] == []
    [secondary] = summary["would_build"]
    assert (secondary["original_claim_id"], secondary["kind"], secondary["amount"]) == (due["M"], "secondary",
                                                                                         "230.00")
    assert warehouse_state() == before and not out.exists()


def test_ar_resubmit_yes_builds_audits_each_claim_and_builds_nothing_the_second_time(due, tmp_path, capsys):
    out = tmp_path / "resubmitted"
    args = ["ar", "resubmit", "--claim", due["U"], "--claim", due["R"], "--yes", "--out", str(out),
            "--today", "2026-03-25"]
    assert cli.main(args) == 2  # a correction without a reason is refused before anything is built
    assert "--note" in capsys.readouterr().err
    assert warehouse_state()["links"] == 0

    note = "auth number added from the payer portal; member id corrected"
    assert cli.main([*args, "--note", note, "--by", "biller1", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["dry_run"] is False and len(summary["files"]) == 1 and summary["quarantined"] == []
    replacement, resubmission = new_claim_id(due["U"], "replacement"), new_claim_id(due["R"], "resubmission")
    assert {(b["claim_id"], b["kind"], b["amount"]) for b in summary["built"]} == {
        (replacement, "replacement", "65.00"), (resubmission, "resubmission", "65.00")}
    rows = audit_rows()
    assert sorted((who, action, subject, why) for who, action, subject, why, _ in rows) == sorted([
        ("biller1", "resubmit", f"claim:{due['R']}", note), ("biller1", "resubmit", f"claim:{due['U']}", note)])
    changes = {subject: c for _, _, subject, _, c in rows}
    assert changes[f"claim:{due['U']}"] == {
        "claim_id": replacement, "kind": "replacement", "frequency_code": "7", "payer_id": "87726",
        "total_charge": "65.00", "status": "ready", "original_status": ["denied", "replaced"],
        "reason": "denied: 65.00 denied (CO-197); the corrected claim replaces payer claim UHC-2026-0042"}
    assert changes[f"claim:{due['R']}"]["original_status"] == ["rejected", "replaced"]

    state = warehouse_state()
    assert cli.main([*args, "--note", "again"]) == 0  # asked twice: nothing new, nothing audited again
    text = capsys.readouterr().out
    assert "built  " not in text and f"already      {due['R']} -> {resubmission}  resubmission: built before" in text
    assert warehouse_state() == state


def test_ar_resubmit_yes_voids_with_frequency_8_and_audits_it(billed, tmp_path, capsys, monkeypatch):
    post(tmp_path, "uhc.835", [uhc(billed["U"], denied=False)], "T-U")
    monkeypatch.setenv("OTEDI_USER", "biller2")  # no --by: the service account or web session's user
    assert cli.main(["ar", "resubmit", "--void", billed["U"], "--yes", "--note", "billed in error: no visit",
                     "--out", str(tmp_path / "out"), "--today", "2026-03-25"]) == 0
    assert f"built        {billed['U']} -> {new_claim_id(billed['U'], 'void')}  void (frequency 8)" in \
        capsys.readouterr().out
    [(who, action, subject, note, changes)] = audit_rows()
    assert (who, action, subject, note) == ("biller2", "resubmit", f"claim:{billed['U']}", "billed in error: no visit")
    assert (changes["kind"], changes["frequency_code"], changes["original_status"]) == ("void", "8",
                                                                                        ["paid", "voided"])


def test_ar_resubmit_secondary_yes_needs_no_note_and_is_audited_with_the_default(due, tmp_path, capsys):
    assert cli.main(["ar", "resubmit", "--secondary", "--yes", "--by", "biller3", "--out", str(tmp_path / "out"),
                     "--today", "2026-03-25"]) == 0
    capsys.readouterr()
    [(who, action, subject, note, changes)] = audit_rows()
    assert (who, action, subject, note) == ("biller3", "resubmit", f"claim:{due['M']}", SECONDARY_NOTE)
    assert changes == {"claim_id": new_claim_id(due["M"], "secondary"), "kind": "secondary", "frequency_code": "1",
                       "payer_id": "87726", "total_charge": "230.00", "status": "ready",
                       "reason": "the primary (15202) left 16.80 patient responsibility"}
    assert claim_row(due["M"]).status == "patient_balance"  # the primary stays as adjudicated


# --- which lines of the primary go to the secondary payer -------------------------------------------------


def _primary_with_secondary(tmp_path, lines, secondary_for=None):
    """An employer-plan primary claim and Medicare as secondary (MSP 12) for the charges in `secondary_for`
    (default: all); the primary claim id and its lines as (line number, cpt)."""
    rows = []
    for n, (cpt, minutes, amount) in enumerate(lines, start=1):
        rows.append(charge(charge_id=f"E-{n}", cpt=cpt, minutes=minutes, units=1, charge_amount=D(amount), **EGHP))
        if secondary_for is None or n in secondary_for:
            rows.append(charge(charge_id=f"E-{n}S", cpt=cpt, minutes=minutes, units=1, charge_amount=D(amount),
                               **MEDICARE_SECONDARY))
    write_charges_csv(tmp_path / "charges.csv", rows)
    run_outbound(tmp_path / "charges.csv", tmp_path / "out", today=date(2026, 3, 10))
    with session_scope() as s:
        [claim] = s.scalars(select(models.Claim)).all()
        return claim.claim_id, [(ln.line_number, ln.cpt) for ln in claim.lines]


def _secondary_statuses() -> dict[str, str]:
    with session_scope() as s:
        return dict(s.execute(select(models.Charge.charge_id, models.Charge.status)
                              .where(models.Charge.payer_sequence == "S")).all())


COINSURANCE_AND_CO50 = [
    Svc("97110", D("68.00"), D("40.00"), [("CO", "45", D("13.00")), ("PR", "2", D("15.00"))], lcn="E-1"),
    Svc("97530", D("80.00"), D("0"), [("CO", "50", D("80.00"))], lcn="E-2"),
]


def test_secondary_carries_the_coinsurance_line_and_leaves_off_the_line_denied_co_50(warehouse, tmp_path):
    pcn, lines = _primary_with_secondary(tmp_path, [("97110", 22, "68.00"), ("97530", 22, "80.00")])
    assert lines == [(1, "97110"), (2, "97530")]
    post(tmp_path, "eghp.835", [Clp(pcn, icn="EGHP-7", services=COINSURANCE_AND_CO50)], "T-E7")
    assert claim_row(pcn).status == "partially_paid"
    with session_scope() as s:
        result = resubmit(s, today=TODAY, claim_ids=(), secondary=True)
    [built] = result.built
    # the medical-necessity denial stays with the primary: its secondary charge is neither coded nor billed
    assert _secondary_statuses() == {"E-1S": "claimed", "E-2S": "new"}
    [planned] = result.planned
    assert (planned.claim_id, planned.payer_id, planned.amount) == (built.claim_id, "15202", D("68.00"))
    assert planned.reason == ("the primary (DEMOEGHP) left 15.00 patient responsibility; line 2 left off (denied "
                              "CO-50 80.00: correct or appeal it with the primary)")
    segs = _write_with_prior_payers(built.claim_id, tmp_path)  # through the pyx12 gate
    assert [(s[1], s[2], s[3], s[5]) for s in find(segs, "SVD")] == [("DEMOEGHP", "40", "HC:97110:GO", "1")]
    assert find(segs, "SV1")[0][1:3] == ["HC:97110:GO", "68"] and find(segs, "CLM")[0][2] == "68"
    assert find(segs, "AMT", "D")[0][2] == "40" and not [seg for seg in segs if seg[:3] == ["CAS", "CO", "50"]]
    assert ["CAS", "PR", "2", "15"] in segs and ["CAS", "CO", "45", "13"] in segs


def test_secondary_goes_without_a_secondary_charge_for_the_line_left_off(warehouse, tmp_path):
    pcn, _ = _primary_with_secondary(tmp_path, [("97110", 22, "68.00"), ("97530", 22, "80.00")], secondary_for={1})
    post(tmp_path, "eghp.835", [Clp(pcn, icn="EGHP-8", services=COINSURANCE_AND_CO50)], "T-E8")
    with session_scope() as s:
        result = resubmit(s, today=TODAY, claim_ids=(), secondary=True)
    assert result.work_items == [] and [b.payer_id for b in result.built] == ["15202"]
    assert _secondary_statuses() == {"E-1S": "claimed"}


def test_secondary_goes_when_the_primary_denied_a_line_for_a_reason_it_may_pay(warehouse, tmp_path):
    from otedi.analytics import work_queue

    # no patient responsibility anywhere: line 1 paid (contractual only), line 2 not covered by the plan
    pcn, _ = _primary_with_secondary(tmp_path, [("97110", 22, "68.00"), ("97530", 22, "80.00")])
    post(tmp_path, "eghp.835", [Clp(pcn, icn="EGHP-9", services=[
        Svc("97110", D("68.00"), D("55.00"), [("CO", "45", D("13.00"))], lcn="E-1"),
        Svc("97530", D("80.00"), D("0"), [("CO", "204", D("80.00"))], lcn="E-2"),
    ])], "T-E9")
    item = work_queue(today=TODAY).set_index("claim_id").loc[pcn]  # the work queue says so too
    assert item["reasons"] == "denied, secondary_claim_due"  # no patient responsibility, yet due
    with session_scope() as s:
        result = resubmit(s, today=TODAY, claim_ids=(), secondary=True)
    [built] = result.built
    [planned] = result.planned
    assert (built.claim_id, built.payer_id, planned.amount) == (planned.claim_id, "15202", D("148.00"))
    assert planned.reason == "the primary (DEMOEGHP) denied 80.00 for reasons the secondary payer may pay (CO-204 80.00)"
    segs = _write_with_prior_payers(built.claim_id, tmp_path)
    assert [(s[2], s[3]) for s in find(segs, "SVD")] == [("55", "HC:97110:GO"), ("0", "HC:97530:GO")]
    assert ["CAS", "CO", "204", "80"] in segs and find(segs, "AMT", "D")[0][2] == "55"


def test_a_line_denied_for_a_payable_reason_beside_coinsurance_goes_too(warehouse, tmp_path):
    pcn, _ = _primary_with_secondary(tmp_path, [("97110", 22, "68.00"), ("97530", 22, "80.00")])
    post(tmp_path, "eghp.835", [Clp(pcn, icn="EGHP-10", services=[
        COINSURANCE_AND_CO50[0], Svc("97530", D("80.00"), D("0"), [("CO", "96", D("80.00"))], lcn="E-2")])],
        "T-E10")
    with session_scope() as s:
        [built] = resubmit(s, today=TODAY, claim_ids=(), secondary=True).built
    assert _secondary_statuses() == {"E-1S": "claimed", "E-2S": "claimed"}
    segs = _write_with_prior_payers(built.claim_id, tmp_path)
    assert [s[2] for s in find(segs, "SVD")] == ["40", "0"] and ["CAS", "CO", "96", "80"] in segs


def test_a_secondary_claim_built_under_an_earlier_payable_list_is_written_as_it_was_built(warehouse, tmp_path,
                                                                                         monkeypatch):
    pcn, _ = _primary_with_secondary(tmp_path, [("97110", 22, "68.00"), ("97530", 22, "80.00")])
    post(tmp_path, "eghp.835", [Clp(pcn, icn="EGHP-11", services=[
        COINSURANCE_AND_CO50[0], Svc("97530", D("80.00"), D("0"), [("CO", "96", D("80.00"))], lcn="E-2")])],
        "T-E11")
    with session_scope() as s:
        [built] = resubmit(s, today=TODAY, claim_ids=(), secondary=True).built  # CO-96 payable: both lines
    # secondary_payable_denials.yaml loses 96 before the nightly batch writes the claim
    monkeypatch.setattr("otedi.claims.resubmit.secondary_payable_reasons", lambda: frozenset({"35", "119", "204"}))
    segs = _write_with_prior_payers(built.claim_id, tmp_path)
    assert [s[2] for s in find(segs, "SV1")] == ["68", "80"]  # not 80.00 re-apportioned to nothing
    assert [s[2] for s in find(segs, "SVD")] == ["40", "0"] and ["CAS", "CO", "96", "80"] in segs
