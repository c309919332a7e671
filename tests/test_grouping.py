from datetime import date

from otedi.claims.grouping import claim_id_for, group_into_claims, line_control_number
from tests.factories import coded

GROUP_BY = ("practice_id", "patient_id", "payer_id", "service_date")


def test_one_claim_per_patient_payer_and_date():
    lines = [
        coded(charge_id="A1", cpt="97530"),
        coded(charge_id="A2", cpt="97110"),
        coded(charge_id="B1", service_date=date(2026, 3, 4)),
        coded(charge_id="C1", patient_id="P200"),
        coded(charge_id="D1", payer_id="87726", claim_filing_code="CI"),
    ]
    claims = group_into_claims(lines, GROUP_BY, 50)
    assert sorted(tuple(l.charge.charge_id for l in c.lines) for c in claims) == [
        ("A1", "A2"), ("B1",), ("C1",), ("D1",)]


def test_claim_level_fields_split_claims_even_when_not_in_group_by():
    # A claim carries one rendering provider (2310B) and one place of service (CLM05-1).
    lines = [coded(charge_id="A1"), coded(charge_id="A2", rendering_npi="1543219871"),
             coded(charge_id="A3", place_of_service="12")]
    assert len(group_into_claims(lines, GROUP_BY, 50)) == 3


def test_fifty_lines_at_most_per_claim():
    lines = [coded(charge_id=f"L{n:03d}", service_date=date(2026, 1, 1 + n % 28)) for n in range(120)]
    claims = group_into_claims(lines, ("practice_id", "patient_id", "payer_id"), 50)
    assert [len(c.lines) for c in claims] == [50, 50, 20]
    assert [l.number for l in claims[2].lines] == list(range(1, 21))
    assert len({c.claim_id for c in claims}) == 3


def test_twelve_diagnoses_at_most_and_pointers_point_at_them():
    lines = [coded(charge_id=f"D{n:02d}", dx_codes=(f"M62{n:02d}", f"R27{n:02d}")) for n in range(8)]
    claims = group_into_claims(lines, GROUP_BY, 50)
    # 8 lines x 2 new codes = 16 codes: the 7th line would make 14, so the claim splits after 6 lines.
    assert [len(c.diagnoses) for c in claims] == [12, 4]
    for claim in claims:
        for line in claim.lines:
            assert tuple(claim.diagnoses[p - 1] for p in line.dx_pointers) == line.charge.dx_codes
    assert claims[0].diagnoses[0] == "M6200"  # principal: first line's first code


def test_claim_id_is_stable_and_short():
    first = group_into_claims([coded(charge_id="X1"), coded(charge_id="X2")], GROUP_BY, 50)[0]
    again = group_into_claims([coded(charge_id="X2"), coded(charge_id="X1")], GROUP_BY, 50)[0]
    assert first.claim_id == again.claim_id == claim_id_for(["X1", "X2"])
    assert len(first.claim_id) == 17 and first.claim_id.startswith("OT")
    assert claim_id_for(["X1"]) != claim_id_for(["X1", "X2"])


def test_line_control_number_is_charge_id_or_a_30_char_hash():
    assert line_control_number("C-000123") == "C-000123"
    long_id = "EHR/2026/03/02/" + "9" * 40
    lcn = line_control_number(long_id)
    assert len(lcn) == 30 and lcn != line_control_number(long_id + "0")
