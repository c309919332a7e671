"""Crossovers (ot_billing_rules.md §2.13): Medicare forwards a claim (CLP02 19, NM1*TT) and the secondary
payer's own 835 for it - under our CLP01 - posts to a crossover record linked to the Medicare claim, never
onto the Medicare claim and never over its ICN (SQLite and PostgreSQL). The 835s are checked by pyx12."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from decimal import Decimal as D
from pathlib import Path

import pandas as pd
from sqlalchemy import func, select

from otedi.accounts.balances import claim_balances
from otedi.analytics.reconcile import claim_reconciliation
from otedi.claims.resubmit import plan_resubmissions
from otedi.outbound import run_outbound
from otedi.remit.post import post_remittance_file
from otedi.warehouse import models
from otedi.warehouse.db import session_scope
from otedi.x12.validate import validate_file
from tests.factories import charge, write_charges_csv
from tests.remit_builder import Clp, Svc, interchange, remittance

MEDICARE, MEDICAID = "1999999999", "1888888888"  # TRN03 of each payer (its payer key)
MEDICAID_NAME = "OHIO DEPARTMENT OF MEDICAID"


def setup_claim(tmp_path: Path, *, medicaid_on_file: bool) -> str:
    """Claim A to Medicare (97530 x2, 97535 x1); with `medicaid_on_file` the extract also lists the same
    services for Ohio Medicaid as secondary. Returns A's claim id."""
    rows = [charge(charge_id="A-1", cpt="97530", minutes=30, units=2, charge_amount=D("160.00")),
            charge(charge_id="A-2", cpt="97535", minutes=15, units=1, charge_amount=D("70.00"))]
    if medicaid_on_file:
        rows += [charge(charge_id=f"S-{n}", cpt=r.cpt, minutes=r.minutes, units=r.units,
                        charge_amount=r.charge_amount, payer_id="OHMCD", payer_name=MEDICAID_NAME,
                        claim_filing_code="MC", payer_sequence="S", member_id="100200300400")
                 for n, r in enumerate(rows, 1)]
    write_charges_csv(tmp_path / "charges.csv", rows)
    run_outbound(tmp_path / "charges.csv", tmp_path / "out", today=date(2026, 3, 10))
    with session_scope() as s:
        return s.scalar(select(models.Claim.claim_id).where(models.Claim.payer_sequence == "P"))


def medicare(pcn: str, *, status: str = "19", sign: int = 1, carrier: str | None = MEDICAID_NAME) -> Clp:
    """Medicare's adjudication of A (the reference's worked example), forwarded to Medicaid."""
    n = D(sign)
    return Clp(pcn, status=status, icn="MCR-ICN-A", crossover=carrier, services=[
        Svc("97530", n * D("160.00"), n * D("47.14"), [("CO", "45", n * D("99.88")), ("PR", "2", n * D("12.02")),
                                                       ("CO", "253", n * D("0.96"))], lcn="A-1", units=2),
        Svc("97535", n * D("70.00"), n * D("18.72"), [("CO", "45", n * D("46.12")), ("PR", "2", n * D("4.78")),
                                                      ("CO", "253", n * D("0.38"))], lcn="A-2"),
    ])


def medicaid(pcn: str, *, status: str = "2", sign: int = 1) -> Clp:
    """Medicaid's crossover adjudication: OA-23 for what Medicare paid and adjusted, the lesser-of payment of
    the coinsurance (8.00 of 12.02 on line 1, all 4.78 on line 2), the rest left as PR-2."""
    n = D(sign)
    return Clp(pcn, status=status, icn="MCD-ICN-A", filing="MC", services=[
        Svc("97530", n * D("160.00"), n * D("8.00"), [("OA", "23", n * D("147.98")), ("PR", "2", n * D("4.02"))],
            lcn="A-1", units=2),
        Svc("97535", n * D("70.00"), n * D("4.78"), [("OA", "23", n * D("65.22"))], lcn="A-2"),
    ])


def post_file(tmp_path: Path, name: str, claims: list[Clp], *, payer: str, trace: str, control: int = 1,
              payer_name: str = "CGS MEDICARE PART B OHIO"):
    path = tmp_path / name
    path.write_text(interchange([remittance(claims, payer=payer, trace=trace, payer_name=payer_name)],
                                control=control))
    with session_scope() as s:
        return post_remittance_file(s, path)


def post_medicare(tmp_path: Path, clp: Clp, trace: str = "MCR-T1", control: int = 1):
    return post_file(tmp_path, f"{trace}.835", [clp], payer=MEDICARE, trace=trace, control=control)


def post_medicaid(tmp_path: Path, clp: Clp, trace: str = "MCD-T1", control: int = 2):
    return post_file(tmp_path, f"{trace}.835", [clp], payer=MEDICAID, trace=trace, control=control,
                     payer_name=MEDICAID_NAME)


def crossover_record(primary_id: str) -> models.Claim | None:
    with session_scope() as s:
        primary = s.scalar(select(models.Claim).where(models.Claim.claim_id == primary_id))
        link = s.scalar(select(models.ClaimLink).where(models.ClaimLink.original_claim_pk == primary.id,
                                                       models.ClaimLink.kind == "crossover"))
        if link is None:
            return None
        claim = s.get(models.Claim, link.claim_pk)
        claim.lines  # loaded for the caller
        return claim


def claim_row(claim_id: str) -> models.Claim:
    with session_scope() as s:
        return s.scalar(select(models.Claim).where(models.Claim.claim_id == claim_id))


def ledger(claim_id: str) -> dict[str, D]:
    with session_scope() as s:
        rows = s.execute(select(models.LedgerEntry.entry_type, func.sum(models.LedgerEntry.amount))
                         .join(models.Claim, models.Claim.id == models.LedgerEntry.claim_pk)
                         .where(models.Claim.claim_id == claim_id).group_by(models.LedgerEntry.entry_type)).all()
    return {k: D(v) for k, v in rows if D(v)}


def assert_identities() -> None:
    for r in claim_reconciliation().itertuples():
        assert r.billed == r.paid + r.contractual + r.patient_responsibility + r.other_adjustments + \
            r.written_off + r.open_balance, r.claim_id
        assert r.patient_responsibility == r.patient_paid + r.patient_written_off + r.to_secondary + \
            r.patient_balance, r.claim_id


MEDICARE_LEDGER = {"payment": D("65.86"), "contractual": D("147.34"), "patient_responsibility": D("16.80")}
MEDICAID_LEDGER = {"payment": D("12.78"), "other_adjustment": D("213.20"), "patient_responsibility": D("4.02")}


def test_the_835s_of_these_tests_are_valid_835s_for_pyx12(tmp_path):
    for name, clp, payer in (("mcr.835", medicare("A0001"), MEDICARE), ("mcd.835", medicaid("A0001"), MEDICAID)):
        path = tmp_path / name
        path.write_text(interchange([remittance([clp], payer=payer, trace="T1")]))
        result = validate_file(path)
        assert result.ok, result.errors[:5]


def test_medicare_forwarding_opens_a_crossover_record_and_medicaid_posts_to_it(warehouse, tmp_path):
    a = setup_claim(tmp_path, medicaid_on_file=False)
    post_medicare(tmp_path, medicare(a))
    primary, record = claim_row(a), crossover_record(a)
    assert primary.status == "forwarded" and primary.payer_icn == "MCR-ICN-A"
    assert record is not None and record.status == "crossed_over" and record.payer_sequence == "S"
    assert record.claim_file_id is None and record.total_charge == primary.total_charge
    # no Medicaid charge on file: the payer is the crossover carrier the 835 named (NM1*TT NM109)
    assert record.payer_id == "99999" and record.claim_filing_code == "ZZ"
    assert [(l.cpt, l.units, l.charge_amount) for l in record.lines] == [
        ("97530", 2, D("160.00")), ("97535", 1, D("70.00"))]
    assert {l.line_control_number for l in record.lines}.isdisjoint({"A-1", "A-2"})

    result = post_medicaid(tmp_path, medicaid(a))
    assert result.status == "posted" and result.summary()["unmatched"] == 0
    assert ledger(a) == MEDICARE_LEDGER  # Medicare's claim untouched
    assert ledger(record.claim_id) == MEDICAID_LEDGER
    primary, record = claim_row(a), crossover_record(a)
    assert primary.payer_icn == "MCR-ICN-A" and primary.status == "forwarded"
    assert record.payer_icn == "MCD-ICN-A" and record.status == "patient_balance"
    assert record.claim_filing_code == "MC"  # the carrier's CLP06, once it answered
    with session_scope() as s:  # every Medicaid line matched a line of the crossover record by our REF*6R
        assert s.scalar(select(func.count()).select_from(models.RemitException)) == 0
        lines = s.execute(select(models.LedgerEntry.claim_line_pk).where(
            models.LedgerEntry.claim_pk == record.id)).scalars().all()
        assert set(lines) == {l.id for l in record.lines}
        owes = claim_balances(s, [s.get(models.Claim, primary.id), s.get(models.Claim, record.id)])
    # Medicare's coinsurance was the secondary's to pay; what Medicaid left is on its own claim
    assert owes[primary.id].patient_owes == D("0.00") and owes[record.id].patient_owes == D("4.02")
    recon = claim_reconciliation().set_index("claim_id")
    assert recon.loc[a, "to_secondary"] == D("16.80") and recon.loc[a, "patient_balance"] == 0
    assert recon.loc[record.claim_id, "patient_balance"] == D("4.02")
    assert recon.loc[record.claim_id, "crossover_of"] == a and pd.isna(recon.loc[a, "crossover_of"])
    assert_identities()


def test_the_crossover_takes_the_patients_medicaid_charges_and_is_not_billed_again(warehouse, tmp_path):
    a = setup_claim(tmp_path, medicaid_on_file=True)
    post_medicare(tmp_path, medicare(a))
    record = crossover_record(a)
    assert (record.payer_id, record.claim_filing_code) == ("OHMCD", "MC")
    assert [l.charge_id for l in record.lines] == ["S-1", "S-2"]
    with session_scope() as s:
        assert set(s.scalars(select(models.Charge.status).where(models.Charge.payer_sequence == "S"))) == {"claimed"}
        plan = plan_resubmissions(s, today=date(2026, 3, 25), claim_ids=(), secondary=True)
    assert plan.planned == [] and plan.work_items == []  # no secondary claim of ours, no work item either
    post_medicaid(tmp_path, medicaid(a))
    assert ledger(record.claim_id) == MEDICAID_LEDGER and ledger(a) == MEDICARE_LEDGER
    assert_identities()


def test_medicaids_835_before_medicares_still_posts_to_the_secondary_side(warehouse, tmp_path):
    a = setup_claim(tmp_path, medicaid_on_file=False)
    post_medicaid(tmp_path, medicaid(a))  # CLP02 2: processed as secondary
    record = crossover_record(a)
    assert record is not None and record.payer_id == MEDICAID and record.claim_filing_code == "MC"
    assert ledger(record.claim_id) == MEDICAID_LEDGER and ledger(a) == {}
    assert claim_row(a).payer_icn is None  # Medicaid's ICN is not Medicare's
    post_medicare(tmp_path, medicare(a))
    assert ledger(a) == MEDICARE_LEDGER and claim_row(a).payer_icn == "MCR-ICN-A"
    assert crossover_record(a).claim_id == record.claim_id  # still one crossover record
    assert_identities()


def test_reversals_go_back_to_the_side_that_posted(warehouse, tmp_path):
    a = setup_claim(tmp_path, medicaid_on_file=False)
    post_medicare(tmp_path, medicare(a))
    post_medicaid(tmp_path, medicaid(a))
    record = crossover_record(a)
    # Medicaid takes its payment back and pays again (CLP02 22 then 2, one 835)
    post_file(tmp_path, "mcd-rev.835", [medicaid(a, status="22", sign=-1), medicaid(a)], payer=MEDICAID,
              trace="MCD-T2", control=3, payer_name=MEDICAID_NAME)
    assert ledger(record.claim_id) == MEDICAID_LEDGER and ledger(a) == MEDICARE_LEDGER
    # Medicare reverses its own: that is the primary's, and the crossover record keeps Medicaid's
    post_medicare(tmp_path, medicare(a, status="22", sign=-1, carrier=None), trace="MCR-T2", control=4)
    assert ledger(a) == {} and claim_row(a).status == "reversed"
    assert ledger(record.claim_id) == MEDICAID_LEDGER and crossover_record(a).payer_icn == "MCD-ICN-A"
    assert_identities()


def test_a_primary_payer_that_does_not_forward_posts_as_before(warehouse, tmp_path):
    a = setup_claim(tmp_path, medicaid_on_file=False)
    post_medicare(tmp_path, medicare(a, status="1", carrier=None))
    assert crossover_record(a) is None and claim_row(a).status == "patient_balance"
    assert ledger(a) == MEDICARE_LEDGER


def test_two_medicaid_835s_posted_at_once_share_one_crossover_record(warehouse, tmp_path):
    """Two processes post two Medicaid 835s for claim A at the same time (a payment and, under another
    trace, an interest-only follow-up): one crossover record, both posted to it."""
    a = setup_claim(tmp_path, medicaid_on_file=False)
    post_medicare(tmp_path, medicare(a, status="1", carrier=None))  # Medicare did not say it forwarded
    assert crossover_record(a) is None
    follow_up = Clp(a, status="2", icn="MCD-ICN-A", filing="MC", charge=D("0.00"), paid=D("0.00"))
    paths = []
    for n, clp in enumerate((medicaid(a), follow_up)):
        path = tmp_path / f"twin{n}.835"
        path.write_text(interchange([remittance([clp], payer=MEDICAID, trace=f"TW{n}", payer_name=MEDICAID_NAME)],
                                    control=10 + n))
        paths.append(path)
    procs = [subprocess.Popen([sys.executable, "-m", "otedi.cli", "remit", "post", str(p)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for p in paths]
    outs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-800:] for _, err in outs]
    with session_scope() as s:
        links = s.scalars(select(models.ClaimLink).where(models.ClaimLink.kind == "crossover")).all()
        assert len(links) == 1
        posted_to = set(s.scalars(select(models.ClaimPayment.claim_pk).join(models.Remittance).where(
            models.Remittance.payer_key == MEDICAID)))
        assert posted_to == {links[0].claim_pk}
    assert ledger(crossover_record(a).claim_id) == MEDICAID_LEDGER
