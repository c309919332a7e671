"""`otedi ar resubmit`: replacements, voids, new originals, Medicare reopenings and secondary claims,
each through the pyx12 gate (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D
from pathlib import Path

import pytest
from sqlalchemy import func, select

from otedi.charges.load import load_extract
from otedi.claims.batch import write_ready_claims
from otedi.claims.resubmit import new_claim_id, resubmit
from otedi.outbound import run_outbound
from otedi.remit.post import post_remittance_file
from otedi.warehouse import models
from otedi.warehouse.db import session_scope
from otedi.warehouse.models import ClaimLink
from otedi.x12.validate import validate_file
from tests.factories import charge, write_charges_csv
from tests.remit_builder import Clp, Svc, interchange, remittance

TODAY = date(2026, 3, 25)
UHC = dict(payer_id="87726", payer_name="UNITEDHEALTHCARE", claim_filing_code="CI", member_id="UHC4455667")


@pytest.fixture
def billed(warehouse, tmp_path) -> dict[str, str]:
    """Three claims sent: M (Medicare, 97530 x2 + 97535), U (UHC, 97110), R (UHC, 97110); {name: claim_id}."""
    charges = [
        charge(charge_id="M-1", cpt="97530", minutes=30, units=2, charge_amount=D("160.00")),
        charge(charge_id="M-2", cpt="97535", minutes=15, units=1, charge_amount=D("70.00")),
        charge(charge_id="U-1", cpt="97110", minutes=15, units=1, charge_amount=D("65.00"), patient_id="P300",
               service_date=date(2026, 3, 3), **UHC),
        charge(charge_id="R-1", cpt="97110", minutes=15, units=1, charge_amount=D("65.00"), patient_id="P400",
               service_date=date(2026, 3, 4), **UHC),
    ]
    write_charges_csv(tmp_path / "charges.csv", charges)
    run_outbound(tmp_path / "charges.csv", tmp_path / "out", today=date(2026, 3, 10))
    with session_scope() as s:
        rows = s.execute(select(models.ClaimLine.charge_id, models.Claim.claim_id, models.Claim.status)
                         .join(models.ClaimLine.claim)).all()
    assert {status for _, _, status in rows} == {"batched"}
    return {charge_id[0]: claim_id for charge_id, claim_id, _ in rows}


def post(tmp_path: Path, name: str, claims: list[Clp], trace: str) -> None:
    path = tmp_path / name
    path.write_text(interchange([remittance(claims, trace=trace)]))
    with session_scope() as s:
        assert post_remittance_file(s, path).status == "posted"


def medicare_paid(pcn: str, rarc: tuple[str, ...] = ()) -> Clp:
    return Clp(pcn, icn="ICN-M", services=[
        Svc("97530", D("160.00"), D("47.14"), [("CO", "45", D("99.88")), ("PR", "2", D("12.02")),
                                                ("CO", "253", D("0.96"))], lcn="M-1", units=2),
        Svc("97535", D("70.00"), D("18.72"), [("CO", "45", D("46.12")), ("PR", "2", D("4.78")),
                                               ("CO", "253", D("0.38"))], lcn="M-2", rarc=rarc),
    ])


def medicare_denied(pcn: str, rarc: tuple[str, ...] = ()) -> Clp:
    return Clp(pcn, status="4", icn="ICN-MD", services=[
        Svc("97530", D("160.00"), D("0"), [("CO", "50", D("160.00"))], lcn="M-1", units=2, rarc=rarc),
        Svc("97535", D("70.00"), D("0"), [("CO", "50", D("70.00"))], lcn="M-2", rarc=rarc),
    ])


def uhc(pcn: str, *, denied: bool) -> Clp:
    cas = [("CO", "197", D("65.00"))] if denied else [("CO", "45", D("20.00"))]
    return Clp(pcn, status="4" if denied else "1", icn="UHC-2026-0042",
               services=[Svc("97110", D("65.00"), D("0") if denied else D("45.00"), cas, lcn="U-1", date="20260303")])


def batch(tmp_path: Path) -> list[list[list[str]]]:
    """Write the ready claims through the normal batch and gate; the segments of each claim (CLM..)."""
    with session_scope() as s:
        files = write_ready_claims(s, tmp_path / "resubmitted")
    assert files and all(f.status == "ready" for f in files), [f.errors for f in files]
    return [_segments(Path(f.path).read_text()) for f in files]


def _segments(text: str) -> list[list[str]]:
    return [seg.split("*") for seg in text.replace("\n", "").split("~") if seg]


def find(segs, segment_id, *qualifier):
    return [s for s in segs if s[0] == segment_id and s[1:1 + len(qualifier)] == list(qualifier)]


def claim_row(claim_id: str) -> models.Claim:
    with session_scope() as s:
        row = s.scalar(select(models.Claim).where(models.Claim.claim_id == claim_id))
        s.expunge(row)
        return row


def claim_count() -> int:
    with session_scope() as s:
        return s.scalar(select(func.count()).select_from(models.Claim))


def test_denied_commercial_claim_is_replaced_with_frequency_7_and_ref_f8(billed, tmp_path):
    post(tmp_path, "uhc.835", [uhc(billed["U"], denied=True)], "T-U")
    with session_scope() as s:
        result = resubmit(s, today=TODAY, claim_ids=[billed["U"]])
    [built] = result.built
    assert (built.kind, built.frequency_code, built.original_claim_id) == ("replacement", "7", billed["U"])
    assert built.claim_id == new_claim_id(billed["U"], "replacement") and len(built.claim_id) == 17
    [segs] = batch(tmp_path)
    assert find(segs, "CLM")[0][1] == built.claim_id and find(segs, "CLM")[0][5] == "11:B:7"
    assert find(segs, "REF", "F8") == [["REF", "F8", "UHC-2026-0042"]]
    assert find(segs, "REF", "6R") == [["REF", "6R", f"{built.claim_id}-1"]]
    assert claim_row(billed["U"]).status == "replaced"
    assert claim_row(built.claim_id).status == "batched"


def test_paid_commercial_claim_is_voided_with_frequency_8(billed, tmp_path):
    post(tmp_path, "uhc.835", [uhc(billed["U"], denied=False)], "T-U")
    with session_scope() as s:
        result = resubmit(s, today=TODAY, claim_ids=(), void_ids=[billed["U"]])
    [built] = result.built
    assert (built.kind, built.frequency_code) == ("void", "8")
    [segs] = batch(tmp_path)
    assert find(segs, "CLM")[0][5] == "11:B:8" and find(segs, "REF", "F8")[0][2] == "UHC-2026-0042"
    assert claim_row(billed["U"]).status == "voided"


def test_rejected_claim_is_corrected_and_sent_as_a_new_original(billed, tmp_path):
    with session_scope() as s:  # the 277CA rejected the member id; the biller fixed it on the charge
        s.scalar(select(models.Claim).where(models.Claim.claim_id == billed["R"])).status = "rejected"
        s.scalar(select(models.Charge).where(models.Charge.charge_id == "R-1")).member_id = "UHC4455668"
    with session_scope() as s:
        result = resubmit(s, today=TODAY)  # every claim needing it: only R
    [built] = result.built
    assert (built.kind, built.frequency_code, built.original_claim_id) == ("resubmission", "1", billed["R"])
    assert built.claim_id != billed["R"]
    [segs] = batch(tmp_path)
    assert find(segs, "CLM")[0][1] == built.claim_id and find(segs, "CLM")[0][5] == "11:B:1"
    assert find(segs, "REF", "F8") == [] and find(segs, "NM1", "IL")[0][9] == "UHC4455668"
    assert claim_row(billed["R"]).status == "replaced"


def test_medicare_denial_becomes_a_reopening_work_item_without_an_837p(billed, tmp_path):
    post(tmp_path, "mcr.835", [medicare_denied(billed["M"])], "T-M")
    before = claim_count()
    with session_scope() as s:
        result = resubmit(s, today=TODAY, claim_ids=[billed["M"]], void_ids=[billed["M"]])
    assert result.built == []
    assert [w.next_step.split(",")[0] for w in result.work_items] == [
        "request a reopening for a clerical error", "ask the MAC to cancel the claim through a reopening"]
    assert claim_count() == before and claim_row(billed["M"]).status == "denied"
    with session_scope() as s:
        assert write_ready_claims(s, tmp_path / "none") == []


def test_medicare_unprocessable_denial_is_resubmitted_as_new(billed, tmp_path):
    post(tmp_path, "mcr.835", [medicare_denied(billed["M"], rarc=("MA130",))], "T-M")
    with session_scope() as s:
        [built] = resubmit(s, today=TODAY, claim_ids=[billed["M"]]).built
    assert (built.kind, built.frequency_code) == ("resubmission", "1")
    [segs] = batch(tmp_path)
    assert find(segs, "CLM")[0][5] == "11:B:1" and find(segs, "REF", "F8") == []


def test_resubmission_is_idempotent(billed, tmp_path):
    post(tmp_path, "uhc.835", [uhc(billed["U"], denied=True)], "T-U")
    with session_scope() as s:
        first = resubmit(s, today=TODAY, claim_ids=[billed["U"]])
    count = claim_count()
    with session_scope() as s:
        again = resubmit(s, today=TODAY, claim_ids=[billed["U"]])
    assert again.built == [] and again.existing == first.built and claim_count() == count
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(ClaimLink)) == 1


def with_secondary_charges(tmp_path) -> None:
    """The UHC secondary's copies of claim M's two charges."""
    rows = [charge(charge_id=f"M-{n}S", cpt=cpt, minutes=minutes, units=units, charge_amount=D(amount),
                   payer_sequence="S", **UHC)
            for n, cpt, minutes, units, amount in ((1, "97530", 30, 2, "160.00"), (2, "97535", 15, 1, "70.00"))]
    write_charges_csv(tmp_path / "secondary.csv", rows)
    with session_scope() as s:
        load_extract(s, tmp_path / "secondary.csv", today=TODAY)


def test_secondary_claim_carries_the_primary_adjudication_and_balances(billed, tmp_path):
    post(tmp_path, "mcr.835", [medicare_paid(billed["M"])], "T-M")
    with_secondary_charges(tmp_path)
    with session_scope() as s:
        result = resubmit(s, today=TODAY, claim_ids=(), secondary=True)
    [built] = result.built
    assert (built.kind, built.payer_id, built.original_claim_id) == ("secondary", "87726", billed["M"])
    assert claim_row(billed["M"]).status == "patient_balance"  # the primary stays as adjudicated

    segs = _write_with_prior_payers(built.claim_id, tmp_path)
    assert find(segs, "SBR")[0][1] == "S" and find(segs, "NM1", "PR")[0][9] == "87726"
    assert find(segs, "SBR")[1][1:3] == ["P", "18"] and find(segs, "NM1", "PR")[1][9] == "15202"
    assert find(segs, "REF", "F8") == [["REF", "F8", "ICN-M"]]  # 2330B: Medicare's claim number
    amt_d = D(find(segs, "AMT", "D")[0][2])
    assert amt_d == D("65.86") and find(segs, "AMT", "EAF")[0][2] == "16.8"
    svd = find(segs, "SVD")
    assert [(s[1], s[2], s[3], s[5]) for s in svd] == [("15202", "47.14", "HC:97530:GO", "2"),
                                                       ("15202", "18.72", "HC:97535:GO", "1")]
    assert [s[3] for s in find(segs, "DTP", "573")] == ["20260320", "20260320"]
    line_cas = []
    for start in (segs.index(s) for s in svd):
        cas = [seg for seg in segs[start + 1:start + 4] if seg[0] == "CAS"]
        line_cas.append(sum((D(seg[i]) for seg in cas for i in range(3, len(seg), 3) if seg[i]), D(0)))
    sv1 = [D(s[2]) for s in find(segs, "SV1")]
    assert [paid + cas for paid, cas in zip((D(s[2]) for s in svd), line_cas)] == sv1 == [D("160"), D("70")]
    assert D(find(segs, "CLM")[0][2]) - amt_d == sum(line_cas) == D("164.14")

    with session_scope() as s:
        statuses = dict(s.execute(select(models.Charge.charge_id, models.Charge.status)
                                  .where(models.Charge.payer_sequence == "S")).all())
        again = resubmit(s, today=TODAY, claim_ids=(), secondary=True)
    assert statuses == {"M-1S": "claimed", "M-2S": "claimed"}
    assert again.built == [] and again.existing == [built]


def _write_with_prior_payers(claim_id: str, tmp_path: Path) -> list[list[str]]:
    """The normal batch path (write_ready_claims, pyx12 gate) for the secondary claim."""
    with session_scope() as s:
        [written] = write_ready_claims(s, tmp_path / "secondary")
        row = s.scalar(select(models.Claim).where(models.Claim.claim_id == claim_id))
        assert (written.status, written.claims, row.status) == ("ready", 1, "batched")
    assert validate_file(written.path).ok
    return _segments(Path(written.path).read_text())