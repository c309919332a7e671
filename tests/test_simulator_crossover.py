"""The simulator's crossovers (a dual eligible's Medicare 835, then Medicaid's 835 in a later run) and
predeterminations (CLP02 25, then the adjudication in a later run).

Figures are checked against what the files say (pyx12, the 835's own balancing, the Medicare 835 read back)
and the payers' published DEMO rates (mappings/fees/*.csv), written out here as numbers."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from otedi import cli
from otedi.charges.synth import synth_charges
from otedi.outbound import run_outbound
from otedi.simulator import simulate, simulate_once
from otedi.simulator.eligibility import dual_eligibles
from otedi.simulator.model import Coverage
from otedi.simulator.settings import load_settings
from otedi.simulator.state import STATE_FILE, load_state
from otedi.warehouse import db
from otedi.x12 import x835
from otedi.x12.x835 import scan_835
from tests.factories import charge, coded, write_charges_csv
from tests.test_simulator import (TODAY, assert_balanced, assert_valid, claim, drop_837, medicare, quiet, remit,
                                  segments)

MEDICAID_MEMBER = "100000000017"
MEDICAID_RATE = {"97530": Decimal("24.55"), "97535": Decimal("22.68")}  # ohio_medicaid_ot_demo_2026.csv, per unit
UHC_97530 = Decimal("38.58")  # uhc_ot_demo_2026.csv, per unit
MEDICARE_PAYS = TODAY + timedelta(days=14)  # BPR16 of today's Medicare 835 (days_until_payment.medicare)
MEDICAID_ANSWERS = MEDICARE_PAYS + timedelta(days=21)  # days_until_payment.medicaid after Medicare's payment


def dual_extract(path: Path, *, dual: str, other: str) -> Path:
    """A canonical extract naming P1 (Medicare member `dual`) with Ohio Medicaid as secondary, and P2
    (Medicare member `other`) with Medicare alone."""
    write_charges_csv(path, [
        charge(charge_id="E1", patient_id="P1", member_id=dual),
        charge(charge_id="E2", patient_id="P1", payer_id="OHMCD", payer_name="OHIO MEDICAID", claim_filing_code="MC",
               payer_sequence="S", member_id=MEDICAID_MEMBER),
        charge(charge_id="E3", patient_id="P2", member_id=other),
    ])
    return path


def claim_segments(path: Path, claim_id: str) -> list[list[str]]:
    """The segments of one CLP loop (2100 and its 2110s) of an 835."""
    out, inside = [], False
    for seg in segments(path):
        if seg[0] == "CLP":
            inside = seg[1] == claim_id
        elif seg[0] in ("PLB", "SE"):
            inside = False
        if inside:
            out.append(seg)
    return out


def carriers(path: Path) -> dict[str, x835.Party | None]:
    """CLP01 -> the NM1*TT crossover carrier, as the poster's reader (otedi.x12.x835) sees it."""
    return {c.patient_control_number: c.crossover_carrier for c in x835.iter_835(path)
            if isinstance(c, x835.ClaimPayment)}


def test_the_extract_tells_medicare_who_is_dual_eligible(tmp_path):
    path = dual_extract(tmp_path / "charges.csv", dual="1EG4TE5MK01", other="1EG4TE5MK02")
    assert dual_eligibles([path]) == dual_eligibles([(path, None)]) == {
        "1EG4TE5MK01": Coverage("OHMCD", "OHIO MEDICAID", MEDICAID_MEMBER)}
    assert dual_eligibles([]) == {}


def test_a_dual_eligibles_claim_crosses_over_and_medicaid_pays_it_in_a_later_run_once(tmp_path):
    day = date(2026, 9, 8)
    lines = [medicare(2, "97530", "160.00", day, "P1"), medicare(1, "97535", "72.00", day, "P1")]
    drop = tmp_path / "drop"
    drop_837(drop, 1, claim("DUAL1", *lines),
             claim("DENIED1", medicare(1, "L3808", "450.00", date(2026, 9, 9), "P1", modifiers=())),
             claim("OTHER1", medicare(2, "97530", "160.00", day, "P2")))
    extract = dual_extract(tmp_path / "charges.csv", dual=lines[0].charge.member_id,
                           other=medicare(1, "97530", "80.00", day, "P2").charge.member_id)
    state = tmp_path / "state"
    settings = replace(quiet(), part_b_deductible={2026: Decimal("50.00")})  # the claim takes some deductible

    first = simulate(drop, state, seed=3, today=TODAY, settings=settings, eligibility_from=[extract])
    (medicare_835,) = first.remittances
    assert medicare_835.name.startswith("15202_")
    assert_valid(medicare_835)
    assert scan_835(medicare_835).ok
    statuses = {c["clp"][1]: c["clp"][2] for c in assert_balanced(medicare_835)["claims"]}
    # Paid with cost sharing left: forwarded. Denied (CO-109, the DME MAC pays orthoses): not. Not dual: not.
    assert statuses == {"DUAL1": "19", "DENIED1": "4", "OTHER1": "1"}
    assert ["NM1", "TT", "2", "OHIO MEDICAID", "", "", "", "", "PI", "OHMCD"] in claim_segments(medicare_835, "DUAL1")
    assert [s for s in segments(medicare_835) if s[:2] == ["NM1", "TT"]] == [
        ["NM1", "TT", "2", "OHIO MEDICAID", "", "", "", "", "PI", "OHMCD"]]
    assert {k: v and (v.name, v.id_qualifier, v.id) for k, v in carriers(medicare_835).items()} == {
        "DUAL1": ("OHIO MEDICAID", "PI", "OHMCD"), "DENIED1": None, "OTHER1": None}
    assert (first.crossed_over, first.crossovers_waiting, first.held_claims) == (1, 1, 0)
    medicare_claim = next(c for c in remit(medicare_835)["claims"] if c["clp"][1] == "DUAL1")

    # Medicaid answers on Medicare's payment date + its own days: not the day before, and without being told
    # who is dual again (the crossover waits in the state).
    early = simulate(drop, state, seed=3, today=MEDICAID_ANSWERS - timedelta(days=1), settings=settings)
    assert not early.remittances and early.crossovers_waiting == 1
    due = simulate(drop, state, seed=3, today=MEDICAID_ANSWERS, settings=settings)
    (medicaid_835,) = due.remittances
    assert medicaid_835.name.startswith("OHMCD_")
    assert_valid(medicaid_835)
    assert scan_835(medicaid_835).ok
    (medicaid_claim,) = assert_balanced(medicaid_835)["claims"]
    clp = medicaid_claim["clp"]
    assert clp[1] == "DUAL1" == medicare_claim["clp"][1]
    assert (clp[2], clp[6]) == ("2", "MC") and clp[7] != medicare_claim["clp"][7]
    assert clp[7].startswith(f"{MEDICARE_PAYS:%y}{MEDICARE_PAYS.timetuple().tm_yday:03d}")  # received then
    medicaid_header = load_settings().payers["medicaid"]
    mine = segments(medicaid_835)
    assert ["N1", "PR", "OHIO MEDICAID"] in mine and ["REF", "2U", "OHMCD"] in mine
    assert next(s for s in mine if s[0] == "TRN")[3] == "1" + medicaid_header.tin
    assert next(s for s in mine if s[0] == "BPR")[-1] == f"{MEDICAID_ANSWERS + timedelta(days=21):%Y%m%d}"
    loop = claim_segments(medicaid_835, "DUAL1")
    assert ["NM1", "QC", "1", lines[0].charge.patient_last_name, lines[0].charge.patient_first_name, "", "", "",
            "MI", MEDICAID_MEMBER] in loop
    assert ["DTM", "050", f"{MEDICARE_PAYS:%Y%m%d}"] in loop
    assert not [s for s in loop if s[:2] == ["NM1", "TT"]]

    units = {"97530": 2, "97535": 1}
    assert [ln["ref6r"] for ln in medicaid_claim["lines"]] == [ln["ref6r"] for ln in medicare_claim["lines"]]
    medicaid_paid = Decimal(0)
    for before, after in zip(medicare_claim["lines"], medicaid_claim["lines"]):
        cpt = before["svc"][1].split(":")[1]
        billed, medicare_paid = Decimal(before["svc"][2]), Decimal(before["svc"][3])
        cas = {(g, r): a for g, r, a in before["cas"]}
        deductible, coinsurance = cas.get(("PR", "1"), Decimal(0)), cas.get(("PR", "2"), Decimal(0))
        # Lesser of the cost sharing and Medicaid's rate less Medicare's payment; the deductible first.
        pays = min(deductible + coinsurance, max(Decimal(0), MEDICAID_RATE[cpt] * units[cpt] - medicare_paid))
        to_deductible = min(pays, deductible)
        expected = {("OA", "23"): billed - deductible - coinsurance, ("PR", "1"): deductible - to_deductible,
                    ("PR", "2"): coinsurance - (pays - to_deductible)}
        assert Decimal(after["svc"][2]) == billed and Decimal(after["svc"][3]) == pays
        assert {(g, r): a for g, r, a in after["cas"]} == {k: v for k, v in expected.items() if v}
        medicaid_paid += pays
    assert Decimal(clp[4]) == medicaid_paid > 0
    # Both lines meet the rate: on 97530x2 Medicaid pays 49.10 less Medicare's payment, toward the $50
    # deductible, part of which stays PR-1 with the coinsurance; on 97535 its 22.68 less Medicare's payment,
    # short of the coinsurance.
    (paid_1, paid_2), (medicare_1, medicare_2) = ([Decimal(ln["svc"][3]) for ln in c["lines"]]
                                                  for c in (medicaid_claim, medicare_claim))
    deductible_line, coinsurance_line = ({(g, r): a for g, r, a in ln["cas"]} for ln in medicaid_claim["lines"])
    assert paid_1 == Decimal("49.10") - medicare_1 and deductible_line[("PR", "1")] > 0
    assert paid_2 == Decimal("22.68") - medicare_2 and set(coinsurance_line) == {("OA", "23"), ("PR", "2")}

    # Never twice: not on a re-run of the same day, not later.
    assert not simulate(drop, state, seed=3, today=MEDICAID_ANSWERS, settings=settings).remittances
    later = simulate(drop, state, seed=3, today=MEDICAID_ANSWERS + timedelta(days=60), settings=settings,
                     eligibility_from=[extract])
    assert not later.remittances and later.crossovers_waiting == 0
    answers = [c for p in (drop / "inbound").glob("*.835") for c in remit(p)["claims"] if c["clp"][1] == "DUAL1"]
    assert sorted(c["clp"][2] for c in answers) == ["19", "2"]
    saved = load_state(state)
    assert not saved.pending
    assert {c.claim_id for c in saved.paid.values()} == {"DENIED1", "OTHER1"}  # neither side is ever reversed


def test_otedi_simulate_takes_the_eligibility_extracts(tmp_path, capsys):
    day = date(2026, 9, 8)
    line = medicare(2, "97530", "160.00", day, "P1")
    drop = tmp_path / "drop"
    drop_837(drop, 1, claim("DUAL1", line))
    extract = dual_extract(tmp_path / "charges.csv", dual=line.charge.member_id, other="1EG4TE5MK99")
    # The shipped rates apply; seed 1 neither holds the claim back nor denies it.
    assert cli.main(["simulate", "--drop", f"file://{drop}", "--seed", "1", "--today", TODAY.isoformat(),
                     "--eligibility-from", str(extract), "--eligibility-from", str(extract)]) == 0
    assert "crossed over to Medicaid 1, Medicaid's answers waiting 1" in capsys.readouterr().out
    (path,) = (drop / "inbound").glob("*.835")
    assert [c["clp"][2] for c in remit(path)["claims"]] == ["19"]


def test_without_eligibility_nothing_crosses_over(tmp_path):
    day = date(2026, 9, 8)
    drop = tmp_path / "drop"
    drop_837(drop, 1, claim("DUAL1", medicare(2, "97530", "160.00", day, "P1")))
    result = simulate(drop, tmp_path / "state", seed=3, today=TODAY, settings=quiet())
    (path,) = result.remittances
    assert [c["clp"][2] for c in remit(path)["claims"]] == ["1"]
    assert not [s for s in segments(path) if s[:2] == ["NM1", "TT"]] and result.crossed_over == 0


def test_a_crossover_waiting_in_a_state_file_survives_the_json_round_trip(tmp_path):
    day = date(2026, 9, 8)
    drop = tmp_path / "drop"
    line = medicare(2, "97530", "160.00", day, "P1")
    drop_837(drop, 1, claim("DUAL1", line))
    extract = dual_extract(tmp_path / "charges.csv", dual=line.charge.member_id, other="1EG4TE5MK99")
    simulate(drop, tmp_path / "state", seed=3, today=TODAY, settings=quiet(), eligibility_from=[extract])
    (waiting,) = load_state(tmp_path / "state").pending
    assert waiting.prior_payer_icn and waiting.member_id == MEDICAID_MEMBER and waiting.release_on == MEDICAID_ANSWERS
    saved = json.loads((tmp_path / "state" / STATE_FILE).read_text())
    assert saved["pending"][0]["crossover_carrier"] is None and saved["pending"][0]["payer_id"] == "OHMCD"


def test_a_predetermination_first_then_the_adjudication_weeks_later(tmp_path):
    """UHC answers first with CLP02 25 (nothing paid; CO-45, the copay PR-3 and the anticipated payment
    OA-101 explain the charge), then adjudicates the claim predetermination_weeks later under the same ICN."""
    day = date(2026, 9, 10)
    uhc = {"payer_id": "87726", "payer_name": "UNITEDHEALTHCARE", "claim_filing_code": "CI"}
    drop = tmp_path / "drop"
    drop_837(drop, 1, claim("PRED1", coded(units=2, cpt="97530", amount="160.00", service_date=day,
                                           member_id="UHC000001", **uhc)))
    settings = replace(quiet(), rates=replace(quiet().rates, predetermination=1.0), predetermination_weeks=(1, 1))
    state = tmp_path / "state"
    first = simulate(drop, state, seed=3, today=TODAY, settings=settings)
    (path,) = first.remittances
    assert_valid(path)
    assert scan_835(path).ok
    ((line,),) = [c["lines"] for c in assert_balanced(path)["claims"]]
    (clp,) = [c["clp"] for c in remit(path)["claims"]]
    allowed = UHC_97530 * 2
    copay = Decimal("30.00")
    assert (clp[2], Decimal(clp[3]), Decimal(clp[4]), Decimal(clp[5])) == ("25", Decimal("160.00"), 0, copay)
    assert line["cas"] == [("CO", "45", Decimal("160.00") - allowed), ("PR", "3", copay),
                           ("OA", "101", allowed - copay)]
    icn = next(s[2] for s in segments(first.acks_277ca[0]) if s[:2] == ["REF", "1K"])
    assert clp[7] == icn
    assert next(s for s in segments(path) if s[0] == "BPR")[:3] == ["BPR", "H", "0"]  # no money moves
    assert (first.predeterminations, first.paid_claims, first.held_claims) == (1, 0, 1)

    assert not simulate(drop, state, seed=3, today=TODAY + timedelta(days=6), settings=settings).remittances
    week = simulate(drop, state, seed=3, today=TODAY + timedelta(days=7), settings=settings)
    (adjudication,) = week.remittances
    assert_valid(adjudication)
    (paid,) = assert_balanced(adjudication)["claims"]
    assert (paid["clp"][2], paid["clp"][7], Decimal(paid["clp"][4])) == ("1", icn, allowed - copay)
    assert paid["lines"][0]["cas"] == [("CO", "45", Decimal("160.00") - allowed), ("PR", "3", copay)]
    assert (week.predeterminations, week.paid_claims, week.held_claims) == (0, 1, 0)
    assert not simulate(drop, state, seed=3, today=TODAY + timedelta(days=30), settings=settings).remittances
    assert list(load_state(state).paid) == [icn]  # the adjudication may be reversed later, the predetermination not


# --- the pipeline's own files ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> tuple[Path, list[Path]]:
    """A synthetic extract (seed 7: one dual eligible patient) and the 837P files the outbound job made of it."""
    tmp = tmp_path_factory.mktemp("pipeline")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OTEDI_DATABASE_URL", f"sqlite:///{tmp}/w.db")
        mp.setenv("OTEDI_HOME", str(tmp))
        db.upgrade()
        synth_charges(300, 7, tmp / "charges.csv", start=date(2026, 8, 3), days=56)
        files = run_outbound(tmp / "charges.csv", tmp / "out", today=TODAY).summary()["files"]
        db.engine().dispose()
    return tmp / "charges.csv", [Path(f) for f in files]


def test_the_pipelines_medicare_claims_of_a_dual_eligible_cross_over(pipeline, tmp_path):
    extract, files = pipeline
    duals = dual_eligibles([extract])
    assert len(duals) == 1
    (member,) = duals
    drop = tmp_path / "drop"
    (drop / "outbound").mkdir(parents=True)
    for f in files:
        shutil.copy(f, drop / "outbound")
    sent_to_medicare = {}  # CLM01 -> 2010BA member id of claims to Medicare, from our 837Ps
    for f in files:
        current = None
        for seg in segments(f):
            if seg[:2] == ["NM1", "IL"]:
                current = seg[9]
            elif seg[0] == "SBR":
                sbr09 = seg[9]
            elif seg[0] == "CLM" and sbr09 == "MB":
                sent_to_medicare[seg[1]] = current
    dual_claims = {c for c, m in sent_to_medicare.items() if m == member}
    assert dual_claims

    result = simulate_once(drop, seed=1, today=TODAY, eligibility_from=[extract])
    forwarded = {}
    for path in result.remittances:
        assert_valid(path)
        for c in assert_balanced(path)["claims"]:
            if c["clp"][2] == "19":
                forwarded[c["clp"][1]] = path
    assert forwarded and set(forwarded) <= dual_claims
    assert result.crossed_over == len(forwarded) == result.crossovers_waiting
    assert all(carriers(path)[c].id == "OHMCD" for c, path in forwarded.items())

    later = simulate_once(drop, seed=1, today=MEDICAID_ANSWERS)
    medicaid = [c for p in later.remittances if p.name.startswith("OHMCD_") for c in assert_balanced(p)["claims"]
                if c["clp"][2] == "2"]
    for path in later.remittances:
        assert_valid(path)
    assert sorted(c["clp"][1] for c in medicaid) == sorted(forwarded)
