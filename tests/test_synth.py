"""Synthetic extracts: deterministic, realistic, valid at defect_rate 0, rejects at the defect rate."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pandas as pd
import pytest

from otedi.charges.extract import ROW, read_extract
from otedi.charges.record import CANONICAL_COLUMNS
from otedi.charges import synth
from otedi.charges.synth import synth_charges, synthesize, write_extract
from otedi.charges.validate import npi_is_valid, validate_rows
from otedi.coding.codes import lookup
from otedi.errors import ExtractError

TODAY = date(2026, 12, 31)
EVALS = {"97165", "97166", "97167"}


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return synthesize(2000, 42)


def _validate(frame: pd.DataFrame):
    return validate_rows(frame.assign(**{ROW: range(2, len(frame) + 2)}), file="synth.csv", today=TODAY)


def test_same_seed_same_rows_other_seed_other_rows(frame):
    pd.testing.assert_frame_equal(synthesize(2000, 42), frame)
    other = synthesize(2000, 43)
    assert not other.equals(frame)
    assert (other["patient_id"] + other["cpt"]).tolist() != (frame["patient_id"] + frame["cpt"]).tolist()


@pytest.mark.parametrize("rows", [0, 1, 137])
def test_exact_row_count_and_sequential_charge_ids(rows):
    out = synthesize(rows, 5)
    assert len(out) == rows
    assert list(out.columns) == list(CANONICAL_COLUMNS)
    assert out["charge_id"].tolist() == [f"C{n:06d}" for n in range(1, rows + 1)]


def test_two_thousand_rows_validate_with_zero_rejects(frame):
    charges, issues = _validate(frame)
    assert [i.message for i in issues] == []
    assert len(charges) == 2000
    assert all(isinstance(c.charge_amount, Decimal) for c in charges)


@pytest.fixture(scope="module")
def with_msp() -> pd.DataFrame:
    return synthesize(3000, 41)  # a seed whose patients include working-aged Medicare beneficiaries


def test_payers_are_exactly_the_configured_ones(with_msp):
    payers = set(map(tuple, with_msp[["payer_id", "payer_name", "claim_filing_code"]].drop_duplicates().values))
    assert payers == {("15202", "CGS MEDICARE PART B OHIO", "MB"), ("OHMCD", "OHIO MEDICAID", "MC"),
                      ("87726", "UNITEDHEALTHCARE", "CI"), ("DEMOEGHP", "EMPLOYER GROUP HEALTH PLAN (DEMO)", "CI")}
    assert set(with_msp["practice_id"]) == {"BRIGHTHANDS", "KIDSTHRIVE", "HANDWORKS"}


def test_working_aged_medicare_patients_come_twice_with_the_msp_type(with_msp):
    frame = with_msp
    assert set(frame.loc[frame["payer_sequence"] == "S", "payer_id"]) == {"15202", "OHMCD"}  # MSP and dual eligibles
    secondary = frame[(frame["payer_sequence"] == "S") & (frame["payer_id"] == "15202")]
    assert len(secondary) and set(secondary["msp_type"]) == {"12"}
    primary = frame[frame["payer_sequence"] == "P"]
    key = ["patient_id", "service_date", "cpt", "minutes", "rendering_npi"]
    assert set(map(tuple, secondary[key].values)) <= set(map(tuple, primary[key].values))
    assert set(primary.loc[primary["patient_id"].isin(secondary["patient_id"]), "payer_id"]) == {"DEMOEGHP"}


def medicaid_secondary(frame: pd.DataFrame) -> pd.Series:
    return (frame["payer_sequence"] == "S") & (frame["payer_id"] == "OHMCD")


def test_dual_eligibles_come_twice_with_medicaid_as_secondary_and_most_are_qmbs(with_msp):
    """Seed 41: two dual eligible Medicare patients (one QMB, one not) and one QMB whose Medicaid the practice
    has not on file."""
    frame = with_msp
    medicaid = frame[medicaid_secondary(frame)]
    duals = set(medicaid["patient_id"])
    assert len(duals) == 2
    assert set(map(tuple, medicaid[["payer_name", "claim_filing_code", "msp_type", "group_number"]].values)) == {
        ("OHIO MEDICAID", "MC", "", "")}
    primary = frame[frame["patient_id"].isin(duals) & (frame["payer_sequence"] == "P")]
    assert set(primary["payer_id"]) == {"15202"} and set(primary["claim_filing_code"]) == {"MB"}
    # The same services exported again for Medicaid: every column but the payer's own (and charge_id) alike.
    own = {"charge_id", "payer_id", "payer_name", "claim_filing_code", "payer_sequence", "member_id"}
    same = [c for c in frame.columns if c not in own]
    assert sorted(map(tuple, medicaid[same].values)) == sorted(map(tuple, primary[same].values))
    for patient in duals:  # one Medicaid member id per patient, shaped as the Medicaid children's, not the MBI
        ids = set(medicaid.loc[medicaid["patient_id"] == patient, "member_id"])
        assert len(ids) == 1 and ids.pop() not in set(primary["member_id"])
    assert medicaid["member_id"].str.fullmatch(r"1[0-9]{11}").all()
    qmb = frame.groupby("patient_id")["qmb"].agg(lambda v: "".join(sorted(set(v))))
    assert set(qmb) == {"", "Y", "N"}  # one value on all of a patient's rows
    assert sorted(qmb[list(duals)]) == ["N", "Y"]
    (qmb_only,) = set(qmb[qmb == "Y"].index) - duals
    rows = frame[frame["patient_id"] == qmb_only]
    assert set(rows["payer_id"]) == {"15202"} and set(rows["payer_sequence"]) == {"P"}
    assert set(frame.loc[frame["qmb"] != "", "payer_id"]) == {"15202", "OHMCD"}
    flagged = frame[frame["qmb"] != ""]
    charges, issues = _validate(flagged)
    assert [i.message for i in issues] == [] and sum(c.is_qmb for c in charges) == (flagged["qmb"] == "Y").sum() > 0


def test_dual_and_qmb_draws_leave_every_other_row_as_it_was(with_msp, monkeypatch):
    """With nobody dual or QMB the generator makes the rows it made before it drew those (the draws come from
    generators of their own): every other row of the same seed is one of those rows. The Medicaid rows take a
    share of the row count, so the last day is cut elsewhere and fewer episodes are drawn."""
    monkeypatch.setattr(synth, "DUAL_SHARE", 0.0)
    monkeypatch.setattr(synth, "QMB_ONLY_SHARE", 0.0)
    before = synthesize(3000, 41)
    assert (before["qmb"] == "").all() and not medicaid_secondary(before).any()
    columns = [c for c in before.columns if c not in ("charge_id", "qmb")]
    last_day = before["service_date"].max()
    now = with_msp[~medicaid_secondary(with_msp) & (with_msp["service_date"] < last_day)]
    earlier = set(map(tuple, before[columns].values))
    assert all(row in earlier for row in map(tuple, now[columns].values))
    assert len(now) > 0.9 * (before["service_date"] < last_day).sum()


def test_pt_beside_ot_assistants_name_their_supervisor_and_plans_are_dated(frame):
    roles = set(frame["rendering_role"])
    assert roles == {"OT", "OTA", "PT", "PTA"}
    assert set(frame.loc[frame["rendering_role"].isin(["PT", "PTA"]), "practice_id"]) == {"HANDWORKS"}
    assistants = frame[frame["rendering_role"].isin(["OTA", "PTA"])]
    assert (assistants["supervising_npi"] != "").all() and (assistants["supervising_npi"].map(npi_is_valid)).all()
    assert (frame.loc[~frame["rendering_role"].isin(["OTA", "PTA"]), "supervising_npi"] == "").all()
    start = pd.to_datetime(frame["plan_of_care_start"])
    assert (pd.to_datetime(frame["plan_of_care_certified_through"]) - start).dt.days.eq(89).all()
    assert (pd.to_datetime(frame["service_date"]) >= start).all()
    reported = frame[frame["progress_report_date"] != ""]
    assert len(reported) and (reported["progress_report_date"] <= reported["service_date"]).all()


def test_patients_are_realistic_and_stable(frame):
    age = frame["service_date"].str[:4].astype(int) - frame["patient_dob"].str[:4].astype(int)
    medicare = frame["payer_id"] == "15202"
    assert (age[medicare] >= 65).all()
    children = age < 18
    # a commercial child is the parent's dependent; a Medicaid child is their own subscriber (a few EHR rows
    # still chart the parent: validation warns and bills them as the subscriber)
    assert (frame.loc[children & (frame["payer_id"] == "87726"), "relationship"] == "19").all()
    assert (frame.loc[children & (frame["payer_id"] == "OHMCD"), "relationship"] == "19").mean() < 0.1
    assert set(frame.loc[children, "payer_id"]) <= {"OHMCD", "87726"}
    assert (frame.loc[frame["relationship"] == "01", "payer_id"] == "87726").all()
    assert (frame.loc[frame["payer_id"] == "OHMCD", "prior_auth_number"] != "").any()
    demographics = ["patient_last_name", "patient_first_name", "patient_dob", "patient_zip", "member_id"]
    primary = frame[frame["payer_sequence"] == "P"]  # a secondary payer has its own member id
    assert (primary.groupby("patient_id")[demographics].nunique() == 1).all().all()
    # several OT and OTA renderers per practice (and HANDWORKS's PTs and PTA), all with valid NPIs
    staff = frame.groupby(["practice_id", "rendering_role"])["rendering_npi"].nunique()
    assert (staff[[k for k in staff.index if k[1] in ("OT", "OTA")]] >= 2).all() and len(staff) == 8
    assert all(npi_is_valid(n) for n in set(frame["rendering_npi"]) | set(frame["referring_npi"]))


def test_episodes_open_with_an_evaluation_and_visits_repeat(frame):
    for _, episode in frame.groupby(["patient_id", "initial_treatment_date"]):
        first_day = episode["initial_treatment_date"].iloc[0]
        if episode["service_date"].min() == first_day:  # an episode already under way when the extract starts
            assert set(episode.loc[episode["service_date"] == first_day, "cpt"]) & EVALS
        assert not set(episode.loc[episode["service_date"] != first_day, "cpt"]) & EVALS
        assert (episode.loc[episode["cpt"].isin(EVALS), "rendering_role"] == "OT").all()
    visits = frame.groupby("patient_id")["service_date"].nunique()
    assert visits.median() >= 8


def test_minutes_units_and_charges_follow_the_ehr_rules(frame):
    timed = frame[frame["minutes"] != ""]
    minutes = timed["minutes"].astype(int)
    assert minutes.between(1, 45).all()
    # under 8 minutes only where therapist and assistant both charted the code that day (co-treatment)
    short = timed[minutes < 8]
    same_code = timed.groupby(["patient_id", "service_date", "cpt", "payer_sequence"])["rendering_role"].nunique()
    assert len(short) and all(same_code[(r.patient_id, r.service_date, r.cpt, r.payer_sequence)] >= 2
                              for r in short.itertuples())
    assert all(lookup(c).timed for c in set(timed["cpt"]))
    expected_units = minutes // 15 + (minutes % 15 >= 8)
    assert (timed["units"].astype(int) == expected_units.clip(lower=1)).all()
    untimed = frame[frame["minutes"] == ""]
    assert (untimed["units"] == "1").all() and not any(lookup(c).timed for c in set(untimed["cpt"]))
    # one chargemaster price per practice and code: amount / units is constant
    unit_price = frame["charge_amount"].map(Decimal) / frame["units"].astype(int).map(Decimal)
    assert (frame.assign(p=unit_price).groupby(["practice_id", "cpt"])["p"].nunique() == 1).all()
    assert frame.loc[(frame.practice_id == "BRIGHTHANDS") & (frame.cpt == "97530"), "charge_amount"].isin(
        ["80.00", "160.00", "240.00"]).all()
    # an individual treatment session of one discipline (no evaluation or group session that day) has 38-60
    # timed minutes; the last day may be cut short by the row count
    session = ["patient_id", "service_date", "discipline", "payer_sequence"]
    frame = frame.assign(discipline=frame["rendering_role"].str[:2])
    days = frame[frame["service_date"] < frame["service_date"].max()].groupby(session)
    sessions = days.filter(lambda d: not any(lookup(c).evaluation or c == "97150" for c in d["cpt"]))
    totals = sessions[sessions["minutes"] != ""].groupby(session)["minutes"].apply(lambda m: m.astype(int).sum())
    assert len(totals) > 300 and totals.between(38, 60).all()
    assert set(frame["place_of_service"]) == {"11", "12", "02"}
    assert (frame["place_of_service"] == "11").mean() > 0.7
    assert frame["dx_codes"].str.count(r"\|").between(0, 3).all()


def test_defect_rate_produces_rejects_on_exactly_the_damaged_rows(frame):
    damaged = synthesize(2000, 42, defect_rate=0.05)
    changed = set(damaged.loc[(damaged != frame).any(axis=1), "charge_id"])
    charges, issues = _validate(damaged)
    assert {i.charge_id for i in issues} == changed
    assert 60 <= len(changed) <= 140
    assert len(charges) == 2000 - len(changed)
    assert {i.rule for i in issues} == {"npi-luhn", "cpt-deleted", "minutes-required", "extract-date", "cpt-unknown"}


@pytest.mark.parametrize("suffix", [".csv", ".xlsx", ".parquet"])
def test_write_extract_round_trips_through_read_extract(tmp_path, suffix):
    small = synthesize(40, 9)
    write_extract(small, tmp_path / f"out{suffix}")
    back = read_extract(tmp_path / f"out{suffix}")
    pd.testing.assert_frame_equal(back.drop(columns=ROW), small)
    assert back[ROW].tolist() == list(range(2, 42))


def test_synth_charges_writes_the_file_and_returns_the_count(tmp_path):
    out = tmp_path / "charges.csv"
    assert synth_charges(25, 3, out, defect_rate=0.0) == 25
    pd.testing.assert_frame_equal(read_extract(out).drop(columns=ROW), synthesize(25, 3))
    with pytest.raises(ExtractError, match="unknown file type '.json'"):
        write_extract(synthesize(2, 3), tmp_path / "charges.json")
