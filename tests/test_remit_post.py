"""835 posting: balancing, matching, the append-only ledger, reversals, PLB, duplicates (SQLite and PostgreSQL)."""

from datetime import date
from decimal import Decimal as D
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from otedi.outbound import run_outbound
from otedi.remit import post as post_module
from otedi.remit.post import post_remittance_file
from otedi.warehouse import models
from otedi.warehouse.db import session_scope
from tests.factories import charge, write_charges_csv
from tests.remit_builder import Clp, Svc, interchange, remittance


@pytest.fixture
def billed(warehouse, tmp_path) -> dict[str, str]:
    """Two claims in the warehouse: A (97530 x2 + 97535 x1) and B (97110 x1); returns {name: claim_id}."""
    charges = [
        charge(charge_id="A-1", cpt="97530", minutes=30, units=2, charge_amount=D("160.00")),
        charge(charge_id="A-2", cpt="97535", minutes=15, units=1, charge_amount=D("70.00")),
        charge(charge_id="B-1", cpt="97110", minutes=15, units=1, charge_amount=D("65.00"),
               patient_id="P200", service_date=date(2026, 3, 3)),
    ]
    write_charges_csv(tmp_path / "charges.csv", charges)
    run_outbound(tmp_path / "charges.csv", tmp_path / "out", today=date(2026, 3, 10))
    with session_scope() as s:
        rows = s.execute(select(models.ClaimLine.charge_id, models.Claim.claim_id).join(models.ClaimLine.claim)).all()
    ids = {cid[0]: claim_id for cid, claim_id in ((r[0], r[1]) for r in rows)}
    return {"A": ids["A"], "B": ids["B"]}


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def ledger(claim_id: str | None = None) -> dict[str, D]:
    with session_scope() as s:
        q = select(models.LedgerEntry.entry_type, func.sum(models.LedgerEntry.amount)).group_by(
            models.LedgerEntry.entry_type)
        if claim_id:
            q = q.join(models.Claim, models.Claim.id == models.LedgerEntry.claim_pk).where(
                models.Claim.claim_id == claim_id)
        return {k: D(v) for k, v in s.execute(q).all()}


def claim_status(claim_id: str) -> str:
    with session_scope() as s:
        return s.scalar(select(models.Claim.status).where(models.Claim.claim_id == claim_id))


def post(path: Path):
    with session_scope() as s:
        return post_remittance_file(s, path)


def medicare_paid_a(pcn: str, status: str = "1", sign: int = 1) -> Clp:
    """Claim A adjudicated as the reference's worked example (allowed 84.00, 80% less 2% sequestration)."""
    n = D(sign)
    return Clp(pcn, status=status, icn="ICN-A", services=[
        Svc("97530", n * D("160.00"), n * D("47.14"), [("CO", "45", n * D("99.88")), ("PR", "2", n * D("12.02")),
                                                       ("CO", "253", n * D("0.96"))], lcn="A-1", units=2),
        Svc("97535", n * D("70.00"), n * D("18.72"), [("CO", "45", n * D("46.12")), ("PR", "2", n * D("4.78")),
                                                      ("CO", "253", n * D("0.38"))], lcn="A-2"),
    ])


def test_a_paid_claim_posts_to_the_cent_and_matches_lines(billed, tmp_path):
    path = write(tmp_path, "era1.835", interchange([remittance([medicare_paid_a(billed["A"])])]))
    result = post(path)
    summary = result.summary()
    assert result.status == "posted" and summary["claims_matched"] == 1 and summary["unmatched"] == 0
    assert summary["totals"] == {"paid": "65.86", "contractual": "147.34", "patient_responsibility": "16.80",
                                 "other_adjustments": "0.00", "denied": "0.00", "plb": "0.00", "bpr02": "65.86"}
    assert ledger(billed["A"]) == {"payment": D("65.86"), "contractual": D("147.34"),
                                   "patient_responsibility": D("16.80")}
    assert claim_status(billed["A"]) == "patient_balance"
    with session_scope() as s:
        lines = dict(s.execute(select(models.ClaimLine.charge_id, models.ClaimLine.id)).all())
        per_line = dict(s.execute(select(models.LedgerEntry.claim_line_pk, func.sum(models.LedgerEntry.amount))
                                  .group_by(models.LedgerEntry.claim_line_pk)).all())
        icn = s.scalar(select(models.Claim.payer_icn).where(models.Claim.claim_id == billed["A"]))
    assert per_line == {lines["A-1"]: D("160.00"), lines["A-2"]: D("70.00")}  # each line's entries sum to its charge
    assert icn == "ICN-A"


def test_the_same_file_posts_nothing_the_second_time(billed, tmp_path):
    path = write(tmp_path, "era1.835", interchange([remittance([medicare_paid_a(billed["A"])])]))
    post(path)
    before = ledger()
    assert post(path).status == "already_posted"
    assert ledger() == before


def test_the_same_trace_number_in_another_file_is_a_duplicate_payment(billed, tmp_path):
    post(write(tmp_path, "era1.835", interchange([remittance([medicare_paid_a(billed["A"])])], control=1)))
    before = ledger()
    again = post(write(tmp_path, "era1-resent.835", interchange([remittance([medicare_paid_a(billed["A"])])], control=2)))
    assert again.status == "held" and again.transactions[0].status == "duplicate"
    assert "TRACE1" in again.transactions[0].reason
    assert ledger() == before
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(models.Remittance).where(
            models.Remittance.status == "duplicate")) == 1


def test_an_unbalanced_transaction_is_held_and_the_balanced_one_posts(billed, tmp_path):
    good = remittance([medicare_paid_a(billed["A"])], trace="T-GOOD", st="0001")
    bad = remittance([Clp(billed["B"], services=[Svc("97110", D("65.00"), D("20.00"), [("CO", "45", D("40.00"))],
                                                     lcn="B-1", date="20260303")])], trace="T-BAD", st="0002")
    result = post(write(tmp_path, "mixed.835", interchange([good, bad])))
    assert result.status == "partly_held"
    held = [t for t in result.transactions if t.status == "held"][0]
    assert held.trace_number == "T-BAD" and "expected 45.00, found 40.00" in held.reason
    assert ledger(billed["B"]) == {}
    assert ledger(billed["A"])["payment"] == D("65.86")
    assert claim_status(billed["B"]) == "batched"


def test_reversal_then_correction_nets_to_the_correction(billed, tmp_path):
    post(write(tmp_path, "era1.835", interchange([remittance([medicare_paid_a(billed["A"])])])))
    corrected = Clp(billed["A"], icn="ICN-A2", services=[
        Svc("97530", D("160.00"), D("60.00"), [("CO", "45", D("100.00"))], lcn="A-1", units=2),
        Svc("97535", D("70.00"), D("25.00"), [("CO", "45", D("45.00"))], lcn="A-2"),
    ])
    reversal = medicare_paid_a(billed["A"], status="22", sign=-1)
    post(write(tmp_path, "era2.835", interchange([remittance([reversal, corrected], trace="TRACE2")], control=2)))
    assert ledger(billed["A"]) == {"payment": D("85.00"), "contractual": D("145.00"),
                                   "patient_responsibility": D("0.00")}
    assert claim_status(billed["A"]) == "paid"
    with session_scope() as s:
        reversed_total = s.scalar(select(func.sum(models.LedgerEntry.amount)).where(models.LedgerEntry.reversal))
        entries = s.scalar(select(func.count()).select_from(models.LedgerEntry))
    assert reversed_total == D("-230.00")  # every original entry negated, none updated
    assert entries == 8 + 8 + 4  # original, its negation, the correction


def test_a_reversal_alone_leaves_the_claim_reversed_with_nothing_paid(billed, tmp_path):
    post(write(tmp_path, "era1.835", interchange([remittance([medicare_paid_a(billed["A"])])])))
    post(write(tmp_path, "era2.835", interchange([remittance([medicare_paid_a(billed["A"], "22", -1)],
                                                             trace="TRACE2")], control=2)))
    assert claim_status(billed["A"]) == "reversed"
    assert all(v == 0 for v in ledger(billed["A"]).values())


def test_denials_post_as_denials_with_their_codes(billed, tmp_path):
    denied = Clp(billed["B"], status="4", services=[
        Svc("97110", D("65.00"), D("0.00"), [("CO", "236", D("65.00"))], lcn="B-1", date="20260303")])
    post(write(tmp_path, "deny.835", interchange([remittance([denied])])))
    assert ledger(billed["B"]) == {"denial": D("65.00")}
    assert claim_status(billed["B"]) == "denied"
    with session_scope() as s:
        entry = s.scalars(select(models.LedgerEntry)).one()
    assert (entry.group_code, entry.carc, entry.cpt) == ("CO", "236", "97110")


def test_a_line_denied_on_a_paid_claim_makes_it_partially_paid(billed, tmp_path):
    clp = Clp(billed["A"], services=[
        Svc("97530", D("160.00"), D("60.00"), [("CO", "45", D("100.00"))], lcn="A-1", units=2),
        Svc("97535", D("70.00"), D("0.00"), [("CO", "151", D("70.00"))], lcn="A-2", rarc=("N362",)),
    ])
    post(write(tmp_path, "p.835", interchange([remittance([clp])])))
    assert claim_status(billed["A"]) == "partially_paid"
    assert ledger(billed["A"])["denial"] == D("70.00")
    with session_scope() as s:
        assert s.scalar(select(models.LedgerEntry.rarc).where(models.LedgerEntry.carc == "151")) == "N362"


def test_lines_match_by_procedure_date_and_charge_when_6r_and_modifiers_are_missing(billed, tmp_path):
    clp = medicare_paid_a(billed["A"])
    for svc in clp.services:
        svc.lcn, svc.mods = None, ()
    post(write(tmp_path, "no6r.835", interchange([remittance([clp])])))
    with session_scope() as s:
        lines = dict(s.execute(select(models.ClaimLine.id, models.ClaimLine.charge_id)).all())
        matched = {lines[pk] for pk in s.scalars(select(models.LedgerEntry.claim_line_pk))}
        exceptions = s.scalar(select(func.count()).select_from(models.RemitException))
    assert matched == {"A-1", "A-2"} and exceptions == 0


def test_an_unknown_claim_is_recorded_with_its_amounts_in_the_exception_queue(billed, tmp_path):
    stranger = Clp("NOTOURS123", services=[Svc("97110", D("50.00"), D("30.00"), [("CO", "45", D("20.00"))])])
    result = post(write(tmp_path, "x.835", interchange([remittance([stranger])])))
    assert result.summary()["unmatched"] == 1
    with session_scope() as s:
        exc = s.scalars(select(models.RemitException)).one()
        unlinked = s.scalar(select(func.sum(models.LedgerEntry.amount)).where(models.LedgerEntry.claim_pk.is_(None)))
    assert (exc.kind, exc.reference, exc.charge_amount, exc.paid_amount) == ("claim_not_found", "NOTOURS123",
                                                                             D("50.00"), D("30.00"))
    assert unlinked == D("50.00")


def test_plb_posts_to_the_provider_ledger_and_the_payment_balances(billed, tmp_path):
    t = remittance([medicare_paid_a(billed["A"])], plb=[("L6", D("-2.15")), ("WO", D("10.00"))])
    result = post(write(tmp_path, "plb.835", interchange([t])))
    summary = result.summary()
    assert summary["totals"]["bpr02"] == "58.01" and summary["totals"]["plb"] == "7.85"
    with session_scope() as s:
        plb = dict(s.execute(select(models.ProviderAdjustment.reason_code, models.ProviderAdjustment.amount)).all())
    assert plb == {"L6": D("-2.15"), "WO": D("10.00")}


def test_claim_level_adjustments_only(billed, tmp_path):
    clp = Clp(billed["B"], services=[], charge=D("65.00"), paid=D("40.00"),
              claim_cas=[("CO", "45", D("15.00")), ("PR", "2", D("10.00"))])
    post(write(tmp_path, "claimlevel.835", interchange([remittance([clp])])))
    assert ledger(billed["B"]) == {"payment": D("40.00"), "contractual": D("15.00"),
                                   "patient_responsibility": D("10.00")}


def test_crossover_marks_the_claim_forwarded(billed, tmp_path):
    clp = medicare_paid_a(billed["A"], status="19")
    clp.crossover = "OHIO MEDICAID"
    post(write(tmp_path, "xover.835", interchange([remittance([clp])])))
    assert claim_status(billed["A"]) == "forwarded"
    with session_scope() as s:
        assert s.scalar(select(models.ClaimPayment.crossover_payer)) == "OHIO MEDICAID"


def test_a_truncated_file_is_quarantined_and_nothing_posts(billed, tmp_path):
    text = interchange([remittance([medicare_paid_a(billed["A"])])])
    result = post(write(tmp_path, "cut.835", text[: text.index("SE*")]))
    assert result.status == "quarantined" and "SE" in result.message or "truncated" in result.message.lower()
    assert ledger() == {}


SAMPLE_OUTCOMES = {
    "pyx12_835_mult_loops.txt": ("posted", None),
    "lfh_medicare-part-a.835": ("posted", None),
    "edi835parser_emedny_sample.txt": ("posted", None),
    "edi835parser_united_healthcare_legacy_sample.txt": ("posted", None),
    "lfh_managed-care.835": ("quarantined", "BPR16"),
    "lfh_secondary-payment.835": ("quarantined", "BPR15 holds a date"),
    "lfh_cob-contractural-adjustment.835": ("quarantined", "BPR15 holds a date"),
    "lfh_tertiary-payment.835": ("quarantined", "BPR15 holds a date"),
}


@pytest.mark.parametrize("name", sorted(SAMPLE_OUTCOMES))
def test_every_shared_sample_posts_and_balances_or_is_quarantined_for_its_defect(warehouse, name):
    status, reason = SAMPLE_OUTCOMES[name]
    result = post(Path(__file__).parent / "fixtures" / "inbound" / name)
    assert result.status == status
    if reason:
        assert reason in result.message and "segment" in result.message
        assert ledger() == {}
    else:
        totals = result.summary()["totals"]
        posted = sum(D(totals[k]) for k in ("paid",)) - D(totals["plb"])
        assert posted == D(totals["bpr02"])  # Σ CLP04 − Σ PLB = BPR02, to the cent


money = st.decimals(min_value=D("0.00"), max_value=D("999.99"), places=2)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_balanced_remittances_post_exactly_their_amounts(warehouse, tmp_path, data):
    claims, expected = [], {"payment": D(0), "contractual": D(0), "patient_responsibility": D(0), "denial": D(0)}
    # examples share one warehouse: each payment has its own trace, and each claim its own payer claim
    # number (the same CLP under another trace is a duplicate payment, not posted)
    trace = f"T{uuid.uuid4().hex[:12]}"
    for n in range(data.draw(st.integers(1, 4))):
        services = []
        for _ in range(data.draw(st.integers(0, 3))):
            co, pr, deny, paid = data.draw(money), data.draw(money), data.draw(money), data.draw(money)
            services.append(Svc("97110", co + pr + deny + paid, paid,
                                [("CO", "45", co), ("PR", "2", pr), ("CO", "197", deny)]))
            expected["payment"] += paid
            expected["contractual"] += co
            expected["patient_responsibility"] += pr
            expected["denial"] += deny
        claim_co = data.draw(money) if services and data.draw(st.booleans()) else D("0.00")
        clp = Clp(f"RND{n}", services=services, claim_cas=[("CO", "45", claim_co)] if claim_co else [],
                  icn=f"{trace}-{n}")
        if not services:  # claim-level only
            paid = data.draw(money)
            clp.charge, clp.paid, clp.claim_cas = paid + claim_co, paid, [("CO", "45", claim_co)] if claim_co else []
            expected["payment"] += paid
        else:
            expected["payment"] -= claim_co
        expected["contractual"] += claim_co
        claims.append(clp)
    path = tmp_path / f"{trace}.835"
    path.write_text(interchange([remittance(claims, trace=trace)]))
    with session_scope() as s:
        before = {k: D(v) for k, v in s.execute(select(models.LedgerEntry.entry_type, func.sum(models.LedgerEntry.amount))
                                               .group_by(models.LedgerEntry.entry_type)).all()}
    result = post(path)
    assert result.status == "posted", result.transactions[0].reason if result.transactions else result.message
    after = ledger()
    for kind, amount in expected.items():
        assert after.get(kind, D(0)) - before.get(kind, D(0)) == amount


def test_a_file_of_more_claims_than_one_batch_posts_each_payment_once(billed, tmp_path, monkeypatch):
    """Claims are looked up and written BATCH at a time: across batch boundaries, ours still match, unknown ones
    queue, and copies in a later transaction (of the claim and of an unmatched payment) are duplicates."""
    monkeypatch.setattr(post_module, "BATCH", 2)
    b_paid = Clp(billed["B"], icn="ICN-B", services=[
        Svc("97110", D("65.00"), D("40.00"), [("CO", "45", D("25.00"))], lcn="B-1", date="20260303")])
    unknown = [Clp(f"ZZ-UNKNOWN-{n}", icn=f"ICN-U{n}", services=[
        Svc("97110", D("50.00"), D("30.00"), [("CO", "45", D("20.00"))])]) for n in range(3)]
    first = remittance([unknown[0], medicare_paid_a(billed["A"]), unknown[1], b_paid, unknown[2]], trace="T1",
                       st="0001")
    again = remittance([medicare_paid_a(billed["A"]), unknown[0]], trace="T2", st="0002")
    result = post(write(tmp_path, "batches.835", interchange([first, again])))
    assert [(t.status, t.matched, t.unmatched, t.duplicates) for t in result.transactions] == [
        ("posted", 2, 3, 0), ("posted", 0, 0, 2)]
    assert ledger(billed["A"]) == {"payment": D("65.86"), "contractual": D("147.34"),
                                   "patient_responsibility": D("16.80")}
    assert ledger(billed["B"]) == {"payment": D("40.00"), "contractual": D("25.00")}
    assert claim_status(billed["A"]) == "patient_balance" and claim_status(billed["B"]) == "paid"
    with session_scope() as s:
        kinds = dict(s.execute(select(models.RemitException.kind, func.count())
                               .group_by(models.RemitException.kind)).all())
        per_payment = dict(s.execute(select(models.LedgerEntry.claim_payment_id, func.sum(models.LedgerEntry.amount))
                                     .group_by(models.LedgerEntry.claim_payment_id)).all())
        payments = s.execute(select(models.ClaimPayment.id, models.ClaimPayment.charge_amount,
                                    models.ClaimPayment.claim_pk)).all()
    assert kinds == {"claim_not_found": 3, "duplicate_payment": 2}
    posted = {pk: charge for pk, charge, claim_pk in payments if pk in per_payment}
    assert len(payments) == 7 and len(posted) == 5  # the two copies are recorded without entries
    assert all(per_payment[pk] == charge for pk, charge in posted.items())  # each payment's entries sum to CLP03
