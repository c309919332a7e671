"""837P secondary claims: loops 2320/2330A/2330B/2430 laid out, balanced and clean for pyx12."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal as D

import pytest

from otedi.claims.model import Adjustment, LineAdjudication, PriorPayer
from otedi.errors import X12Error
from tests.test_x837p import assert_valid, find, make_charge, make_claim, segments, write

PRIMARY = make_charge(payer_id="15202", payer_name="CGS Medicare Part B Ohio", claim_filing_code="MB",
                      member_id="1EG4TE5MK73", group_number=None)
PAID_ON = date(2026, 3, 20)


def medicare_adjudication(**overrides) -> PriorPayer:
    """Medicare's verdict on make_claim()'s lines: 97530 140.00 and 97110 35.50."""
    values = dict(
        coverage=PRIMARY,
        paid=D("78.54"),
        adjustments=(),
        lines=(
            LineAdjudication(1, D("62.72"), (Adjustment("CO", "45", D("60.00")), Adjustment("PR", "2", D("16.00")),
                                             Adjustment("CO", "253", D("1.28"))), PAID_ON),
            LineAdjudication(2, D("15.82"), (Adjustment("CO", "45", D("15.10")), Adjustment("PR", "2", D("4.26")),
                                             Adjustment("CO", "253", D("0.32"))), PAID_ON),
        ),
        patient_responsibility=D("20.26"),
        payer_claim_number="22026079001234",
    )
    values.update(overrides)
    return PriorPayer(**values)


def secondary_claim(prior: PriorPayer | None = None, **header):
    header = {"payer_id": "87726", "payer_name": "UnitedHealthcare", "claim_filing_code": "CI",
              "payer_sequence": "S", "member_id": "UHC9988776", **header}
    return replace(make_claim("BH0900", **header), prior_payers=(prior or medicare_adjudication(),))


def test_secondary_claim_is_valid_for_pyx12_and_balances(tmp_path):
    text, _ = write([secondary_claim()])
    assert_valid(text, tmp_path)
    segs = segments(text)
    assert find(segs, "SBR")[0][1] == "S"  # 2000B: billed to the secondary
    other = find(segs, "SBR")[1]
    assert other[1:4] == ["P", "18", ""] and other[9] == "MB"  # 2320: Medicare was primary
    amt_d = D(find(segs, "AMT", "D")[0][2])
    assert amt_d == D("78.54") and find(segs, "AMT", "EAF")[0][2] == "20.26"
    assert find(segs, "OI") == [["OI", "", "", "Y", "P", "", "Y"]]
    assert find(segs, "NM1", "IL")[1][9] == "1EG4TE5MK73"  # 2330A: the Medicare subscriber
    assert find(segs, "NM1", "PR")[1][9] == "15202" and find(segs, "REF", "F8") == [["REF", "F8", "22026079001234"]]

    # Balance: per line SV102 = SVD02 + 2430 CAS; per claim CLM02 - AMT*D = claim CAS + line CAS.
    sv1 = [D(s[2]) for s in find(segs, "SV1")]
    svd = find(segs, "SVD")
    assert [s[1] for s in svd] == ["15202", "15202"] and [s[3] for s in svd] == ["HC:97530:GO", "HC:97110:GO"]
    line_cas = _cas_between(segs, "SVD")
    for charge, paid, cas in zip(sv1, (D(s[2]) for s in svd), line_cas):
        assert charge == paid + cas
    clm02 = D(find(segs, "CLM")[0][2])
    assert clm02 - amt_d == sum(line_cas) == D("96.96")
    assert find(segs, "CAS", "CO")[0] == ["CAS", "CO", "45", "60", "", "253", "1.28"]  # grouped by group code
    assert [s[3] for s in find(segs, "DTP", "573")] == ["20260320", "20260320"]


def test_claim_level_adjustments_go_in_2320_and_count_in_the_balance(tmp_path):
    # The payer took 5.00 at claim level (CO-45) from what the lines paid: AMT*D = 78.54 - 5.00.
    prior = medicare_adjudication(paid=D("73.54"), adjustments=(Adjustment("CO", "45", D("5.00")),))
    text, _ = write([secondary_claim(prior)])
    assert_valid(text, tmp_path)
    segs = segments(text)
    sbr_2320 = segs.index(find(segs, "SBR")[1])
    assert segs[sbr_2320 + 1] == ["CAS", "CO", "45", "5"] and segs[sbr_2320 + 2] == ["AMT", "D", "73.54"]


def test_more_than_six_reasons_of_one_group_split_into_two_cas():
    many = tuple(Adjustment("CO", str(code), D("1.00")) for code in (45, 253, 59, 97, 151, 16, 50))
    line1 = LineAdjudication(1, D("133.00"), many, PAID_ON)
    line2 = LineAdjudication(2, D("35.50"), (), PAID_ON)
    text, _ = write([secondary_claim(medicare_adjudication(paid=D("168.50"), lines=(line1, line2),
                                                           patient_responsibility=None))])
    cas = find(segments(text), "CAS", "CO")
    assert len(cas) == 2 and len(cas[0]) == 2 + 3 * 6 - 1 and cas[1] == ["CAS", "CO", "50", "1"]
    assert find(segments(text), "AMT", "EAF") == []


@pytest.mark.parametrize("prior, message", [
    (medicare_adjudication(paid=D("80.00")), r"CLM02 175.50 less AMT\*D 80.00 is not the claim and line CAS"),
    (medicare_adjudication(lines=(LineAdjudication(1, D("62.72"), (), PAID_ON),)),
     r"line 1: SV102 140.00 is not SVD02 62.72 plus 2430 CAS 0"),
    (medicare_adjudication(lines=(LineAdjudication(3, D("1"), (), PAID_ON),)), r"2430 for line 3"),
    (medicare_adjudication(adjustments=(Adjustment("CO", "", D("1")),)), r"group code and reason code"),
])
def test_unbalanced_or_malformed_adjudication_is_refused(prior, message):
    with pytest.raises(X12Error, match=message):
        write([secondary_claim(prior)])


def _cas_between(segs: list[list[str]], start: str) -> list[D]:
    """Sum of CAS amounts following each `start` segment up to the next LX / end."""
    totals: list[D] = []
    inside = False
    for seg in segs:
        if seg[0] == start:
            totals.append(D(0))
            inside = True
        elif seg[0] in ("LX", "SE"):
            inside = False
        elif inside and seg[0] == "CAS":
            totals[-1] += sum((D(seg[i]) for i in range(3, len(seg), 3) if seg[i]), D(0))
    return totals
