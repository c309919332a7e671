"""The clearinghouse + payer simulator: our 837P files in, 999 / 277CA / 835 out."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from otedi import config
from otedi.charges.synth import synth_charges
from otedi.claims.model import Claim, ClaimLine
from otedi.coding.fees import PricingLine, fee_schedule, price_lines
from otedi.coding.payers import payer_rules
from otedi.coding.result import CodedLine, Rendering
from otedi.outbound import run_outbound
from otedi.simulator import simulate, simulate_once
from otedi.simulator import run as simulator_run
from otedi.simulator.reader837 import read_837p
from otedi.simulator.settings import Rates, Settings, load_settings
from otedi.simulator.state import STATE_FILE, SimulatorState, load_state, save_state
from otedi.warehouse import db
from otedi.x12.envelope import ControlNumbers
from otedi.x12.validate import validate_file
from otedi.x12.x835 import scan_835
from otedi.x12.x837p import write_837p
from tests.factories import coded

TODAY = date(2026, 10, 1)
MEDICAID = {"payer_id": "OHMCD", "payer_name": "OHIO MEDICAID", "claim_filing_code": "MC"}


# --- helpers ------------------------------------------------------------------------------------

def quiet() -> Settings:
    """The shipped settings with every random event switched off."""
    return replace(load_settings(), rates=Rates(0, 0, 0, 0, 0, 0))


def segments(path: Path) -> list[list[str]]:
    return [s.strip().split("*") for s in path.read_text(encoding="ascii").split("~") if s.strip()]


def claim(claim_id: str, *lines: CodedLine) -> Claim:
    return Claim(claim_id=claim_id, header=lines[0].charge, diagnoses=("M6281",), lines=tuple(
        ClaimLine(number=i, coded=ln, dx_pointers=(1,), line_control_number=f"{claim_id}-{i}")
        for i, ln in enumerate(lines, 1)))


def drop_837(drop: Path, number: int, *claims: Claim, practice=None) -> Path:
    path = drop / "outbound" / f"HAND_{number:09d}.837"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="ascii", newline="") as out:
        write_837p(claims, practice or config.practice("BRIGHTHANDS"), config.clearinghouse("DEMOCH"),
                   ControlNumbers(number, number, 1), out, created=datetime(2026, 9, 30, 18, 0))
    return path


def remit(path: Path) -> dict:
    """An 835 as {bpr, plb: [(code, ref, amount)], claims: [{clp, lines: [{svc, cas, ref6r, allowed, lq}]}]}."""
    out = {"plb": [], "claims": []}
    line = None
    for seg in segments(path):
        sid = seg[0]
        if sid == "BPR":
            out["bpr"] = Decimal(seg[2])
        elif sid == "CLP":
            out["claims"].append({"clp": seg, "lines": []})
            line = None
        elif sid == "SVC":
            line = {"svc": seg, "cas": [], "lq": []}
            out["claims"][-1]["lines"].append(line)
        elif sid == "CAS":
            line["cas"] += [(seg[1], seg[i], Decimal(seg[i + 1])) for i in range(2, len(seg), 3)]
        elif sid == "REF" and seg[1] == "6R":
            line["ref6r"] = seg[2]
        elif sid == "AMT" and seg[1] == "B6":
            line["allowed"] = Decimal(seg[2])
        elif sid == "LQ":
            line["lq"].append(seg[2])
        elif sid == "PLB":
            out["plb"] += [(seg[i].split(":")[0], seg[i].split(":")[1], Decimal(seg[i + 1]))
                           for i in range(3, len(seg), 2)]
    return out


def assert_balanced(path: Path) -> dict:
    r = remit(path)
    for c in r["claims"]:
        clp03, clp04 = Decimal(c["clp"][3]), Decimal(c["clp"][4])
        adjusted = Decimal(0)
        for ln in c["lines"]:
            line_cas = sum(a for _, _, a in ln["cas"])
            assert Decimal(ln["svc"][2]) - Decimal(ln["svc"][3]) == line_cas, (path.name, ln["svc"])
            adjusted += line_cas
        assert clp03 - clp04 == adjusted, (path.name, c["clp"])
        patient = sum(a for g, _, a in (x for ln in c["lines"] for x in ln["cas"]) if g == "PR")
        assert Decimal(c["clp"][5] or 0) == patient
    total = sum(Decimal(c["clp"][4]) for c in r["claims"]) - sum(a for _, _, a in r["plb"])
    assert r["bpr"] == total, path.name
    return r


def lines_by_control(paths) -> dict[str, dict]:
    return {ln["ref6r"]: {**ln, "clp": c["clp"]} for p in paths for c in remit(p)["claims"] for ln in c["lines"]}



def adjudicated_lines(drop, tmp_path, settings=None):
    """Simulate the drop's 837Ps (seed 3, no random events unless `settings` says); each 835 pyx12-valid and
    balanced; the lines by 6R."""
    result = simulate(drop, tmp_path / "state", seed=3, today=TODAY, settings=settings or quiet())
    for path in result.remittances:
        assert_valid(path)
        assert_balanced(path)
    return lines_by_control(result.remittances)

def assert_valid(path: Path) -> None:
    report = validate_file(path)
    assert report.ok, report.to_text(with_details=True)


# --- the pipeline's own files -------------------------------------------------------------------

@pytest.fixture(scope="module")
def pipeline_files(tmp_path_factory) -> list[Path]:
    """837P files from the real outbound job over a synthetic extract."""
    tmp = tmp_path_factory.mktemp("pipeline")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OTEDI_DATABASE_URL", f"sqlite:///{tmp}/w.db")
        mp.setenv("OTEDI_HOME", str(tmp))
        db.upgrade()
        synth_charges(300, 7, tmp / "charges.csv", start=date(2026, 8, 3), days=56)
        files = run_outbound(tmp / "charges.csv", tmp / "out", today=TODAY).summary()["files"]
        db.engine().dispose()
    assert files
    return [Path(f) for f in files]


def fresh_drop(tmp_path: Path, files: list[Path], name: str = "drop") -> Path:
    drop = tmp_path / name
    (drop / "outbound").mkdir(parents=True)
    for f in files:
        shutil.copy(f, drop / "outbound")
    return drop


def test_pipeline_files_are_acknowledged_adjudicated_and_paid(pipeline_files, tmp_path):
    drop = fresh_drop(tmp_path, pipeline_files)
    result = simulate(drop, tmp_path / "state", seed=1, today=TODAY)

    assert sorted(result.files_answered) == sorted(f.name for f in pipeline_files)
    assert [p.name for p in result.acks_999] == [f"{f.stem}.999" for f in sorted(pipeline_files)]
    claims_sent = rejected_sent = 0
    for f in pipeline_files:
        ack = segments(drop / "inbound" / f"{f.stem}.999")
        sent = segments(f)
        gs, st = next(s for s in sent if s[0] == "GS"), next(s for s in sent if s[0] == "ST")
        assert ["AK1", "HC", gs[6], "005010X222A1"] in ack and ["AK2", "837", st[2], "005010X222A1"] in ack
        assert ["IK5", "A"] in ack and ["AK9", "A", "1", "1", "1"] in ack
        # One 277CA patient level per claim: accepted with a payer claim control number, or (at the
        # configured eligibility rate) rejected because the payer cannot find the subscriber.
        status = segments(drop / "inbound" / f"{f.stem}.277")
        claim_ids = [s[1] for s in sent if s[0] == "CLM"]
        assert sorted(s[2] for s in status if s[:2] == ["TRN", "2"] and s[2] in claim_ids) == sorted(claim_ids)
        accepted = sum(1 for s in status if s[0] == "STC" and s[1] == "A2:20")
        not_found = sum(1 for s in status if s[0] == "STC" and s[1] == "A7:33:IL")
        assert accepted + not_found == len(claim_ids)
        assert sum(1 for s in status if s[:2] == ["REF", "1K"]) == accepted
        claims_sent += accepted
        rejected_sent += not_found
    assert result.accepted_claims == claims_sent and result.rejected_claims == rejected_sent
    for path in result.acks_999 + result.acks_277ca + result.remittances:
        assert_valid(path)
    assert all(scan_835(p).ok for p in result.remittances)  # the posting side's own balancing checks
    paid = [c for p in result.remittances for c in assert_balanced(p)["claims"]]
    # A predetermined claim (CLP02 25, commercial payers at rates.predetermination) is answered today and
    # still held for its adjudication.
    assert len(paid) == result.paid_claims + result.predeterminations
    assert result.paid_claims == claims_sent - result.held_claims
    # CLP07 is the REF*1K the 277CA gave the claim.
    icns = {s[2] for p in result.acks_277ca for s in segments(p) if s[:2] == ["REF", "1K"]}
    assert {c["clp"][7] for c in paid} <= icns
    assert {c["clp"][2] for c in paid} <= {"1", "4", "25"}
    reasons = {(g, r) for c in paid for ln in c["lines"] for g, r, _ in ln["cas"]}
    assert {("CO", "45"), ("PR", "1"), ("PR", "2"), ("CO", "253"), ("PR", "3")} <= reasons  # Medicare and commercial


def test_a_second_run_answers_nothing_twice(pipeline_files, tmp_path):
    drop = fresh_drop(tmp_path, pipeline_files)
    simulate(drop, tmp_path / "state", seed=1, today=TODAY, settings=quiet())
    before = {p.name: p.read_bytes() for p in (drop / "inbound").iterdir()}
    again = simulate(drop, tmp_path / "state", seed=1, today=TODAY, settings=quiet())
    assert not again.files_answered and not again.acks_999 and not again.remittances
    assert {p.name: p.read_bytes() for p in (drop / "inbound").iterdir()} == before
    assert not list((drop / "inbound").glob("*.part"))


def test_same_seed_gives_the_same_bytes(pipeline_files, tmp_path):
    outputs = []
    for name in ("a", "b"):
        drop = fresh_drop(tmp_path, pipeline_files, name)
        simulate(drop, tmp_path / f"state-{name}", seed=42, today=TODAY)
        outputs.append({p.name: p.read_bytes() for p in (drop / "inbound").iterdir()})
    assert outputs[0] == outputs[1] and len(outputs[0]) > 2 * len(pipeline_files)


# --- adjudication figures -----------------------------------------------------------------------

def medicare(units: int, cpt: str, amount: str, day: date, patient: str = "P1", **more) -> CodedLine:
    return coded(units=units, cpt=cpt, amount=amount, service_date=day, patient_id=patient,
                 member_id=f"1EG4TE5MK{patient[-2:]:0>2}", **more)


NATIONAL_NPI = "1112223338"  # a valid NPI no practice in practices.yaml has: priced nationally (GPCIs 1.0)


def test_medicare_worked_example_after_the_deductible(tmp_path):
    """ot_billing_rules.md §2.12: 97530x2 + 97535x1, no deductible left -> allowed 84.00,
    coinsurance 16.80, sequestration 1.34, paid 65.86. The earlier visit takes the 2026 deductible.
    The worked example is priced nationally: the billing NPI is no practice's, so no locality applies."""
    first = claim("DEDUCT1",
                  medicare(4, "97530", "320.00", date(2026, 9, 1)),
                  medicare(4, "97535", "288.00", date(2026, 9, 1)),
                  medicare(4, "97110", "272.00", date(2026, 9, 1)))
    example = claim("EXAMPLE1",
                    medicare(2, "97530", "160.00", date(2026, 9, 8)),
                    medicare(1, "97535", "72.00", date(2026, 9, 8)))
    drop = tmp_path / "drop"
    drop_837(drop, 1, first, example, practice=replace(config.practice("BRIGHTHANDS"), npi=NATIONAL_NPI))
    result = simulate(drop, tmp_path / "state", seed=3, today=TODAY, settings=quiet())

    (path,) = result.remittances
    assert_valid(path)
    r = assert_balanced(path)
    deductible, worked = r["claims"]
    assert sum(a for ln in deductible["lines"] for g, c, a in ln["cas"] if (g, c) == ("PR", "1")) == Decimal("283.00")
    lines = worked["lines"]
    assert [ln["allowed"] for ln in lines] == [Decimal("60.12"), Decimal("23.88")]  # 35.07 + 25.05; 23.88
    cas = [x for ln in lines for x in ln["cas"]]
    assert sum(a for g, c, a in cas if (g, c) == ("PR", "2")) == Decimal("16.80")
    assert sum(a for g, c, a in cas if (g, c) == ("CO", "253")) == Decimal("1.34")
    assert not [x for x in cas if x[:2] == ("PR", "1")]
    assert worked["clp"][:6] == ["CLP", "EXAMPLE1", "1", "232", "65.86", "16.8"]
    assert lines[0]["svc"][:6] == ["SVC", "HC:97530:GO", "160", "47.14", "", "2"]


def test_each_denial_has_its_group_and_reason(tmp_path):
    drop = tmp_path / "drop"
    day = date(2026, 9, 10)
    kx_lines = [medicare(u, cpt, "480.00", date(2026, 7, d), "P7")
                for d in range(1, 11) for u, cpt in ((6, "97530"), (6, "97535"))]
    drop_837(drop, 1,
             claim("PTP1", medicare(1, "97150", "42.00", day, "P2"), medicare(2, "97530", "160.00", day, "P2")),
             claim("PTP59", medicare(1, "97150", "42.00", day, "P8"),
                   medicare(2, "97530", "160.00", day, "P8", modifiers=("GO", "59"))),
             claim("MUE1", medicare(7, "97110", "476.00", day, "P3")),
             claim("LATE1", medicare(1, "97530", "80.00", date(2025, 8, 1), "P4")),
             claim("NONCOV1", medicare(1, "97014", "30.00", day, "P5"), medicare(1, "97530", "80.00", day, "P5")),
             claim("FIRST1", medicare(1, "97535", "72.00", day, "P6")),
             claim("DUP1", medicare(1, "97535", "72.00", day, "P6")),
             claim("KX1", *kx_lines))
    drop_837(drop, 2, claim("AUTH1", coded(units=1, cpt="97530", amount="80.00", service_date=day,
                                           member_id="9900112233", **MEDICAID)),
             claim("AUTH2", coded(units=1, cpt="97530", amount="80.00", service_date=day, member_id="9900112244",
                                  prior_auth_number="PA12345", **MEDICAID)))
    lines = adjudicated_lines(drop, tmp_path)

    def reasons(control):
        return [(g, c) for g, c, _ in lines[control]["cas"]]

    assert reasons("PTP1-2") == [("CO", "236")] and lines["PTP1-2"]["svc"][3] == "0"
    assert ("CO", "236") not in reasons("PTP59-2")
    assert reasons("MUE1-1") == [("CO", "151")] and lines["MUE1-1"]["lq"] == ["N362"]
    assert reasons("LATE1-1") == [("CO", "29")] and lines["LATE1-1"]["clp"][2] == "4"
    assert reasons("NONCOV1-1") == [("CO", "96")] and ("CO", "96") not in reasons("NONCOV1-2")
    assert ("CO", "18") not in reasons("FIRST1-1") and reasons("DUP1-1") == [("CO", "18")]
    assert reasons("AUTH1-1") == [("CO", "197")] and reasons("AUTH2-1") == [("CO", "45")]
    kx = [lines[f"KX1-{i}"] for i in range(1, len(kx_lines) + 1)]
    denied = [ln for ln in kx if [(g, c) for g, c, _ in ln["cas"]] == [("PR", "119")]]
    assert denied and kx[-1] in denied and kx[0] not in denied
    assert sum(ln["allowed"] for ln in kx) <= Decimal("2480.00")
    assert lines["KX1-1"]["clp"][5] == str(sum(a for ln in kx for g, _, a in ln["cas"] if g == "PR"))


def test_front_end_rejections_on_the_277ca(tmp_path):
    day = date(2026, 9, 10)
    drop = tmp_path / "drop"
    drop_837(drop, 1,
             claim("NOGO1", medicare(2, "97530", "160.00", day, "P2", modifiers=()),
                   medicare(1, "97535", "72.00", day, "P2")),
             claim("BADREND1", medicare(1, "97530", "80.00", day, "P3", rendering_npi="1234567890")),
             claim("GOOD1", medicare(1, "97530", "80.00", day, "P4")))
    drop_837(drop, 2, claim("BADBILL1", medicare(1, "97530", "80.00", day, "P5")),
             practice=replace(config.practice("BRIGHTHANDS"), npi="1234567890"))
    result = simulate(drop, tmp_path / "state", seed=3, today=TODAY, settings=quiet())

    assert result.rejected_claims == 3 and result.accepted_claims == 1
    for path in result.acks_277ca:
        assert_valid(path)
    first, second = (segments(p) for p in result.acks_277ca)
    stc = {}
    current = None
    for seg in first + second:
        if seg[:2] == ["TRN", "2"]:
            current = seg[2]
        elif seg[0] == "STC" and current:
            stc.setdefault(current, []).append(seg[1:4])
    assert stc["NOGO1"] == [["A3:453", "20261001", "U"], ["A3:453", "20261001", "U"]]  # claim, then line 1
    assert ["REF", "FJ", "NOGO1-1"] in first and ["REF", "FJ", "NOGO1-2"] not in first
    assert stc["BADREND1"] == [["A7:562:82", "20261001", "U"]]
    assert stc["GOOD1"] == [["A2:20", "20261001", "WQ"]]
    assert stc["BADBILL1"] == [["A7:562:85", "20261001", "U"]]
    assert ["QTY", "QA", "1"] in first and ["QTY", "QC", "2"] in first
    paid = {c["clp"][1] for p in result.remittances for c in remit(p)["claims"]}
    assert paid == {"GOOD1"}


def test_a_corrupted_837p_is_rejected_on_the_999(tmp_path):
    drop = tmp_path / "drop"
    path = drop_837(drop, 1, claim("GOOD1", medicare(1, "97530", "80.00", date(2026, 9, 10))))
    text = path.read_text(encoding="ascii")
    path.write_text(text.replace("\nDTP*472*", "\nDTP*472*XX*", 1), encoding="ascii")  # DTP02 is not a date format
    result = simulate(drop, tmp_path / "state", seed=3, today=TODAY, settings=quiet())

    (ack,) = result.acks_999
    assert_valid(ack)
    seg = segments(ack)
    ik3 = next(s for s in seg if s[0] == "IK3")
    assert ik3[1] == "DTP" and ik3[3] == "2400" and ik3[4] == "8"
    assert next(s for s in seg if s[0] == "IK4")[3] == "7"
    assert ["IK5", "R", "5"] in seg and ["AK9", "R", "1", "1", "0"] in seg
    assert not result.acks_277ca and not result.remittances and result.rejected_sets == 1


def test_a_837p_missing_a_segment_is_rejected_with_its_count_error(tmp_path):
    drop = tmp_path / "drop"
    path = drop_837(drop, 1, claim("GOOD1", medicare(1, "97530", "80.00", date(2026, 9, 10))))
    kept = [ln for ln in path.read_text(encoding="ascii").splitlines(keepends=True) if not ln.startswith("NM1*85")]
    path.write_text("".join(kept), encoding="ascii")
    result = simulate(drop, tmp_path / "state", seed=3, today=TODAY, settings=quiet())

    (ack,) = result.acks_999
    assert_valid(ack)
    seg = segments(ack)
    assert any(s[0] == "IK3" for s in seg)
    assert ["IK5", "R", "4", "5"] in seg  # SE01 count wrong, segments in error
    assert not result.acks_277ca and result.rejected_sets == 1


def test_a_file_that_is_not_x12_gets_no_answer(tmp_path):
    drop = tmp_path / "drop"
    (drop / "outbound").mkdir(parents=True)
    (drop / "outbound" / "junk.837").write_text("hello", encoding="ascii")
    result = simulate(drop, tmp_path / "state", seed=3, today=TODAY, settings=quiet())
    assert result.unreadable == ["junk.837"] and not list((drop / "inbound").iterdir())
    assert not simulate(drop, tmp_path / "state", seed=3, today=TODAY, settings=quiet()).files_answered


def test_held_claims_are_paid_when_their_day_comes(tmp_path):
    drop = tmp_path / "drop"
    drop_837(drop, 1, claim("HOLD1", medicare(1, "97530", "80.00", date(2026, 9, 10))))
    settings = replace(quiet(), rates=Rates(0, 1, 0, 0, 0, 0), delay_weeks=(3, 3))
    state = tmp_path / "state"
    first = simulate(drop, state, seed=3, today=TODAY, settings=settings)
    assert first.acks_999 and first.acks_277ca and not first.remittances and first.held_claims == 1
    assert not simulate(drop, state, seed=3, today=TODAY + timedelta(days=20), settings=settings).remittances
    late = simulate(drop, state, seed=3, today=TODAY + timedelta(days=21), settings=settings)
    assert not late.acks_999 and late.held_claims == 0
    (path,) = late.remittances
    assert_valid(path)
    r = assert_balanced(path)
    assert [c["clp"][1] for c in r["claims"]] == ["HOLD1"]
    assert ["DTM", "050", "20261001"] in segments(path) and ["DTM", "405", "20261022"] in segments(path)


def test_reversal_interest_recovery_and_split(tmp_path):
    """A second payment run reverses an earlier claim and re-adjudicates it in the same 835,
    pays interest (PLB L6, negative) and recovers part of an earlier payment (PLB WO, positive)."""
    drop = tmp_path / "drop"
    state = tmp_path / "state"
    drop_837(drop, 1, claim("FIRST1", medicare(2, "97530", "160.00", date(2026, 9, 1), "P1")),
             claim("FIRST2", medicare(2, "97530", "160.00", date(2026, 9, 1), "P2")))
    deductible_met = replace(quiet(), part_b_deductible={2026: Decimal("0.00")})
    simulate(drop, state, seed=3, today=TODAY, settings=deductible_met)
    drop_837(drop, 2, *(claim(f"SECOND{i}", medicare(2, "97530", "160.00", date(2026, 9, 8), f"P{i}"))
                        for i in range(1, 5)))
    busy = replace(deductible_met, rates=Rates(0, 0, 1, 1, 1, 1))
    result = simulate(drop, state, seed=3, today=TODAY + timedelta(days=7), settings=busy)

    assert result.reversals == 1 and len(result.remittances) >= 2
    remits = []
    for path in result.remittances:
        assert_valid(path)
        assert scan_835(path).ok
        remits.append(assert_balanced(path))
    traces = {s[2] for p in result.remittances for s in segments(p) if s[0] == "TRN"}
    assert len(traces) == len(result.remittances)
    claims = [c for r in remits for c in r["claims"]]
    reversal = next(i for i, c in enumerate(claims) if c["clp"][2] == "22")
    original, corrected = claims[reversal], claims[reversal + 1]
    assert original["clp"][1] == corrected["clp"][1] and corrected["clp"][2] == "1"
    assert Decimal(original["clp"][3]) == Decimal("-160") and Decimal(original["clp"][4]) < 0
    assert original["clp"][7] != corrected["clp"][7]
    assert Decimal(corrected["clp"][4]) > -Decimal(original["clp"][4])  # fee correction of +2%
    plb = [p for r in remits for p in r["plb"]]
    assert any(code == "L6" and amount < 0 for code, _, amount in plb)
    assert any(code == "WO" and amount > 0 for code, _, amount in plb)


def test_simulate_once_takes_a_folder_or_file_url(tmp_path, monkeypatch):
    drop = tmp_path / "drop"
    drop_837(drop, 1, claim("GOOD1", medicare(1, "97530", "80.00", date(2026, 9, 10))))
    result = simulate_once(f"file://{drop}", seed=9, today=TODAY)
    assert result.files_answered == ["HAND_000000001.837"] and (drop / ".simulator" / "state.json").exists()
    assert not simulate_once(drop, seed=9, today=TODAY).files_answered
    with pytest.raises(ValueError):
        simulate_once("ftp://example.org/drop", seed=9, today=TODAY)  # sftp:// is covered in tests/test_cycle.py


# --- payer rules applied as a payer would: locality, assistants, KX buckets, front-end edits -------

def deductible_met() -> Settings:
    return replace(quiet(), part_b_deductible={2026: Decimal("0.00")})


def claim_statuses(paths) -> dict[str, list[str]]:
    """STC01 of each claim's 2200D (and its 2220D lines) by CLM01, over 277CA files."""
    out: dict[str, list[str]] = {}
    current = None
    for path in paths:
        for seg in segments(path):
            if seg[:2] == ["TRN", "2"]:
                current = seg[2]
            elif seg[0] == "STC" and current:
                out.setdefault(current, []).append(seg[1])
    return out


def edit_837(path: Path, old: str, new: str) -> None:
    """Change one segment's text where the pipeline would refuse to write the case (SE01 unchanged)."""
    text = path.read_text(encoding="ascii")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="ascii")


def expected_fees(cpts_units: list[tuple[str, int, bool]], day: date, locality: str | None) -> list[Decimal]:
    rules, _ = payer_rules("15202", "MB", on=day)
    schedule, _ = fee_schedule(rules.fee_schedule, day, locality)
    amounts, _ = price_lines([PricingLine(str(i), cpt, units, assistant)
                              for i, (cpt, units, assistant) in enumerate(cpts_units)],
                             schedule, rules.assistant_payment_factor)
    return [amounts[str(i)] for i in range(len(cpts_units))]


def test_medicare_is_priced_at_the_billing_practice_locality(tmp_path):
    """The 2010AA NPI is BRIGHTHANDS', whose practices.yaml medicare_locality prices the PFS with its GPCIs,
    as the pipeline's expected_allowed is: a claim paid as expected does not look underpaid."""
    day = date(2026, 9, 8)
    drop = tmp_path / "drop"
    drop_837(drop, 1, claim("LOCAL1", medicare(2, "97530", "160.00", day), medicare(1, "97535", "72.00", day)))
    drop_837(drop, 2, claim("NATL1", medicare(2, "97530", "160.00", day, "P2"),
                            medicare(1, "97535", "72.00", day, "P2")),
             practice=replace(config.practice("BRIGHTHANDS"), npi=NATIONAL_NPI))
    lines = adjudicated_lines(drop, tmp_path, deductible_met())
    locality = config.practice("BRIGHTHANDS").medicare_locality
    assert locality
    local = expected_fees([("97530", 2, False), ("97535", 1, False)], day, locality)
    national = expected_fees([("97530", 2, False), ("97535", 1, False)], day, None)
    assert [lines["LOCAL1-1"]["allowed"], lines["LOCAL1-2"]["allowed"]] == local
    assert [lines["NATL1-1"]["allowed"], lines["NATL1-2"]["allowed"]] == national == [Decimal("60.12"),
                                                                                      Decimal("23.88")]
    assert local != national


def test_cq_lines_are_priced_as_assistant_lines_like_co(tmp_path):
    """PTA (CQ) and OTA (CO) lines: 85% of the PFS amount on Medicare."""
    day = date(2026, 9, 8)
    drop = tmp_path / "drop"
    drop_837(drop, 1,
             claim("PT1", medicare(2, "97110", "130.00", day, "P1", modifiers=("GP",))),
             claim("PTA1", medicare(2, "97110", "130.00", day, "P2", modifiers=("CQ", "GP"))),
             claim("OTA1", medicare(2, "97110", "130.00", day, "P3", modifiers=("CO", "GO"))))
    lines = adjudicated_lines(drop, tmp_path, deductible_met())
    locality = config.practice("BRIGHTHANDS").medicare_locality
    (full,) = expected_fees([("97110", 2, False)], day, locality)
    (assistant,) = expected_fees([("97110", 2, True)], day, locality)
    assert lines["PT1-1"]["allowed"] == full
    assert lines["PTA1-1"]["allowed"] == lines["OTA1-1"]["allowed"] == assistant < full


def test_kx_threshold_per_bucket_ot_alone_pt_and_slp_combined(tmp_path):
    """GP (PT) and GN (SLP) lines share one threshold, GO (OT) lines have their own: the GN lines that take
    PT+SLP over $2,480 without KX are denied PR-119, neither bucket's lines count toward the other."""
    p = "P9"
    gp = [medicare(4, "97110", "400.00", date(2026, 7, d), p, modifiers=("GP",)) for d in range(1, 16)]
    gn = [medicare(1, "92507", "150.00", date(2026, 7, d), p, modifiers=("GN",)) for d in range(16, 31)]
    go = [medicare(2, "97535", "160.00", date(2026, 8, d), p) for d in range(1, 11)]
    kx = medicare(1, "92507", "150.00", date(2026, 8, 11), p, modifiers=("GN", "KX"))
    drop = tmp_path / "drop"
    drop_837(drop, 1, claim("BUCKETS1", *gp, *gn, *go, kx))
    state = tmp_path / "state"
    result = simulate(drop, state, seed=3, today=TODAY, settings=quiet())
    for path in result.remittances:
        assert_valid(path)
        assert_balanced(path)
    lines = lines_by_control(result.remittances)

    def denied(n):
        return [(g, c) for g, c, _ in lines[f"BUCKETS1-{n}"]["cas"]] == [("PR", "119")]

    gp_n, gn_n, go_n = range(1, 16), range(16, 31), range(31, 41)
    assert sum(lines[f"BUCKETS1-{n}"]["allowed"] for n in gn_n) < Decimal("2480.00")  # GN alone stays under
    assert not any(denied(n) for n in gp_n) and not any(denied(n) for n in go_n)
    assert denied(30) and not denied(16)  # GN after the GP lines crosses the PT+SLP threshold
    assert not denied(41)  # KX: over the threshold and medically necessary
    pt_slp = sum(lines[f"BUCKETS1-{n}"]["allowed"] for n in [*gp_n, *gn_n] if not denied(n))
    assert pt_slp <= Decimal("2480.00")
    saved = load_state(state).kx
    member = gp[0].charge.member_id
    assert saved[f"{member}|2026|PT_SLP"] == pt_slp + lines["BUCKETS1-41"]["allowed"]
    assert saved[f"{member}|2026|OT"] == sum(lines[f"BUCKETS1-{n}"]["allowed"] for n in go_n)


def test_a_state_file_from_before_the_kx_buckets_loads_as_the_ot_bucket(tmp_path):
    save_state(SimulatorState(kx={"1EG4TE5MK01|2026|PT_SLP": Decimal("10.00")}), tmp_path)
    d = json.loads((tmp_path / STATE_FILE).read_text())
    d["kx"] = {"1EG4TE5MK01|2026": "2400.00", **d["kx"]}  # the old key: only GO lines accrued
    (tmp_path / STATE_FILE).write_text(json.dumps(d))
    assert load_state(tmp_path).kx == {"1EG4TE5MK01|2026|OT": Decimal("2400.00"),
                                       "1EG4TE5MK01|2026|PT_SLP": Decimal("10.00")}


def test_front_end_rejects_assistant_rendering_dependents_and_missing_sbr05(tmp_path):
    day = date(2026, 9, 10)
    ota = Rendering("1678901236", "LEE", "KIM", "224Z00000X")
    commercial = {"payer_id": "99999", "payer_name": "ACME HEALTH", "claim_filing_code": "CI"}
    child = {"relationship": "19", "subscriber_last_name": "DOE", "subscriber_first_name": "JOHN",
             "subscriber_dob": date(1980, 1, 2), "subscriber_sex": "M"}
    drop = tmp_path / "drop"
    drop_837(drop, 1,
             claim("OTAREND1", replace(medicare(1, "97530", "80.00", day, "P2", modifiers=("CO", "GO")),
                                       rendering=ota)),
             claim("OTACOMM1", replace(coded(units=1, cpt="97530", amount="80.00", service_date=day,
                                             member_id="ACME0001", modifiers=("CO", "GO"), **commercial),
                                       rendering=ota)),
             claim("MSPOK1", medicare(1, "97530", "80.00", day, "P3", payer_sequence="S", msp_type="12")),
             claim("NOSBR05", medicare(1, "97530", "80.00", day, "P4", payer_sequence="S", msp_type="12")),
             claim("CHILD1", coded(units=1, cpt="97530", amount="80.00", service_date=day, member_id="ACME0002",
                                   **commercial, **child)))
    path = drop_837(drop, 2, claim("MCDCHILD1", coded(units=1, cpt="97530", amount="80.00", service_date=day,
                                                      member_id="9900112255", **commercial, **child)))
    first = drop / "outbound" / "HAND_000000001.837"
    # The pipeline refuses both: SBR05 is required on a claim to Medicare as secondary, and a Medicaid
    # beneficiary is always the subscriber.
    text = first.read_text(encoding="ascii")
    nosbr05 = text.index("CLM*NOSBR05*")
    sbr = text.rindex("SBR*S*18**", 0, nosbr05)
    first.write_text(text[:sbr] + text[sbr:nosbr05].replace("SBR*S*18***12****MB", "SBR*S*18*******MB", 1)
                     + text[nosbr05:], encoding="ascii")
    edit_837(path, "******CI~", "******MC~")

    for f in (first, path):
        claims = {c.claim_id: c for tx in read_837p(f).transactions for c in tx.claims}
        if f is first:
            assert claims["MSPOK1"].insurance_type == "12" and claims["NOSBR05"].insurance_type == ""
            assert claims["OTAREND1"].rendering_taxonomy == "224Z00000X"
            assert claims["CHILD1"].patient_loop and not claims["MSPOK1"].patient_loop
            assert claims["CHILD1"].patient_first == "JANE" and claims["CHILD1"].member_id == "ACME0002"
        else:
            assert claims["MCDCHILD1"].patient_loop and claims["MCDCHILD1"].filing_code == "MC"
    result = simulate(drop, tmp_path / "state", seed=3, today=TODAY, settings=quiet())
    for ack in result.acks_999:
        assert ["IK5", "A"] in segments(ack)
    for ack in result.acks_277ca:
        assert_valid(ack)
    stc = claim_statuses(result.acks_277ca)
    assert stc["OTAREND1"] == ["A7:145:82"]  # Medicare does not enrol assistants: 2310B is the therapist
    assert stc["OTACOMM1"] == ["A2:20"]  # the fallback commercial profile credentials assistants
    assert stc["NOSBR05"] == ["A3:578:IL"] and stc["MSPOK1"] == ["A2:20"]
    assert stc["MCDCHILD1"] == ["A7:156:QC"] and stc["CHILD1"] == ["A2:20"]
    assert result.rejected_claims == 3 and result.accepted_claims == 3


def test_dmepos_on_part_b_and_uncovered_assistants_are_denied(tmp_path, monkeypatch):
    """CO-109: Medicare Part B (dme: hold) does not pay an orthosis, the DME MAC does; a commercial payer
    does (dme: bill). CO-170: an assistant the payer does not cover, known by the 2310B taxonomy."""
    real_rules = payer_rules

    def no_slpa(payer_id, filing_code, on=None):
        rules, issue = real_rules(payer_id, filing_code, on=on)
        return (replace(rules, assistants_covered=("OTA", "PTA")) if rules.payer_id == "DEFAULT-COMMERCIAL"
                else rules), issue

    monkeypatch.setattr(simulator_run, "payer_rules", no_slpa)
    day = date(2026, 9, 10)
    commercial = {"payer_id": "99999", "payer_name": "ACME HEALTH", "claim_filing_code": "CI"}
    slpa = Rendering("1678901236", "LEE", "KIM", "2355S0801X")
    pta = Rendering("1678901236", "LEE", "KIM", "225200000X")
    drop = tmp_path / "drop"
    drop_837(drop, 1,
             claim("ORTHO1", medicare(1, "L3808", "450.00", day, "P2", modifiers=()),
                   medicare(1, "97530", "80.00", day, "P2")),
             claim("ORTHOC1", coded(units=1, cpt="L3808", amount="450.00", service_date=day, member_id="ACME0003",
                                    modifiers=(), **commercial)),
             claim("SLPA1", replace(coded(units=1, cpt="92507", amount="150.00", service_date=day,
                                          member_id="ACME0004", modifiers=("GN",), **commercial), rendering=slpa)),
             claim("PTA2", replace(coded(units=1, cpt="97110", amount="65.00", service_date=day,
                                         member_id="ACME0005", modifiers=("CQ", "GP"), **commercial),
                                   rendering=pta)))
    lines = adjudicated_lines(drop, tmp_path)

    def reasons(control):
        return [(g, c) for g, c, _ in lines[control]["cas"]]

    assert reasons("ORTHO1-1") == [("CO", "109")] and ("CO", "45") in reasons("ORTHO1-2")
    assert ("CO", "109") not in reasons("ORTHOC1-1")
    assert reasons("SLPA1-1") == [("CO", "170")] and lines["SLPA1-1"]["clp"][2] == "4"
    assert ("CO", "170") not in reasons("PTA2-1") and lines["PTA2-1"]["allowed"] > 0


def test_discipline_modifier_check_takes_gp_from_a_pt_practice(tmp_path):
    """A3:453 (always-therapy code without GO/GP/GN) applies to PT and SLP practices too, and GP passes it."""
    day = date(2026, 9, 10)
    pt_practice = replace(config.practice("BRIGHTHANDS"), taxonomy="225100000X")
    drop = tmp_path / "drop"
    drop_837(drop, 1,
             claim("GP1", medicare(1, "97110", "65.00", day, "P2", modifiers=("GP",), rendering_role="PT")),
             claim("NOGP1", medicare(1, "97110", "65.00", day, "P3", modifiers=(), rendering_role="PT")),
             practice=pt_practice)
    result = simulate(drop, tmp_path / "state", seed=3, today=TODAY, settings=quiet())
    for ack in result.acks_277ca:
        assert_valid(ack)
    stc = claim_statuses(result.acks_277ca)
    assert stc["GP1"] == ["A2:20"]
    assert stc["NOGP1"] == ["A3:453", "A3:453"]
