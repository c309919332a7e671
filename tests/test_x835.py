"""835 parsing (streamed), balancing and the two-pass API, on the shared
public samples and on synthetic fixtures."""

from __future__ import annotations

import io
import tracemalloc
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otedi.errors import X12Error
from otedi.x12.x835 import (
    Adjustment,
    Balance,
    ClaimPayment,
    ProviderAdjustment,
    RemittanceHeader,
    ServicePayment,
    TransactionEnd,
    balance_claim,
    balance_service,
    iter_835,
    scan_835,
)

INBOUND = Path(__file__).parent / "fixtures" / "inbound"
D = Decimal


def items(name: str, **kwargs) -> list:
    return list(iter_835(INBOUND / name, **kwargs))


def claims(name: str, **kwargs) -> list[ClaimPayment]:
    return [i for i in items(name, **kwargs) if isinstance(i, ClaimPayment)]


# -- shared samples: each parses or names its defect ---------------------------


@pytest.mark.parametrize(
    ("name", "claim_count", "paid", "payment"),
    [
        ("pyx12_835_mult_loops.txt", 1, D("0"), D("0")),
        ("lfh_medicare-part-a.835", 2, D("149998.73"), D("150000.00")),
        ("edi835parser_emedny_sample.txt", 3, D("45.75"), D("45.75")),
        ("edi835parser_united_healthcare_legacy_sample.txt", 2, D("349.99"), D("349.99")),
    ],
)
def test_clean_shared_samples_scan_and_balance(name, claim_count, paid, payment):
    scan = scan_835(INBOUND / name)
    [summary] = scan.transactions
    assert (summary.claim_count, summary.total_paid, summary.payment_amount) == (claim_count, paid, payment)
    assert summary.balanced and scan.ok


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("lfh_managed-care.835", r"segment 4 \(BPR\): BPR16 is not a valid CCYYMMDD date"),
        ("lfh_secondary-payment.835", r"segment 4 \(BPR\): BPR16 payment date is missing and BPR15 holds a date"),
        ("lfh_cob-contractural-adjustment.835", r"segment 4 \(BPR\): BPR16 payment date is missing"),
        ("lfh_tertiary-payment.835", r"segment 4 \(BPR\): BPR16 payment date is missing"),
    ],
)
def test_defective_shared_samples_name_the_defect(name, message):
    with pytest.raises(X12Error, match=message):
        scan_835(INBOUND / name)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("lfh_secondary-payment.835", r"segment 29 \(SVC\): SVC01 separates components with '>' but ISA16 declares ':'"),
        ("lfh_cob-contractural-adjustment.835", r"segment 21 \(SVC\): SVC01 separates components with '>'"),
        ("lfh_tertiary-payment.835", r"segment 20 \(SVC\): SVC01 composite needs 2 non-empty component\(s\), found 1"),
    ],
)
def test_shared_samples_with_the_bpr_date_fixed_report_the_svc_defect(tmp_path, name, message):
    fixed = tmp_path / name
    fixed.write_bytes((INBOUND / name).read_bytes().replace(b"CHK***********", b"CHK************"))
    with pytest.raises(X12Error, match=message):
        scan_835(fixed)


def test_tolerant_mode_reads_the_gt_composites_and_the_shifted_bpr_date():
    scan = scan_835(INBOUND / "lfh_secondary-payment.835", tolerant=True)
    assert scan.ok and scan.transactions[0].total_paid == D("1222.00")
    header, first, second, end = items("lfh_secondary-payment.835", tolerant=True)
    assert header.payment_date == date(2005, 4, 12) and header.payment_method == "CHK"
    assert first.adjustments == [Adjustment("OA", "23", D("9411.64"))] and first.services == []
    svc = second.services[1]
    assert (svc.qualifier, svc.procedure, svc.modifiers, svc.revenue_code) == ("HC", "66543", ("26",), "220")
    assert svc.adjustments == [Adjustment("PR", "1", D("150.00")), Adjustment("PR", "2", D("70.00")),
                               Adjustment("CO", "42", D("85.00"))]
    assert svc.allowed == D("500.00") and svc.references == {"1B": "43285"}
    # the malformed SVC01 is refused even when tolerant
    with pytest.raises(X12Error, match=r"segment 20 \(SVC\): SVC01 composite needs 2"):
        scan_835(INBOUND / "lfh_tertiary-payment.835", tolerant=True)


def test_cob_sample_negative_cas_when_tolerant():
    [claim] = claims("lfh_cob-contractural-adjustment.835", tolerant=True)
    assert claim.services[0].adjustments == [Adjustment("OA", "23", D("516.00")), Adjustment("OA", "94", D("-9.00"))]
    assert all(b.ok for b in balance_claim(claim))


def test_emedny_header_and_claims():
    header, *rest = items("edi835parser_emedny_sample.txt")
    assert isinstance(header, RemittanceHeader)
    assert (header.handling_code, header.amount, header.credit_debit, header.payment_method, header.payment_format) == (
        "I", D("45.75"), "C", "ACH", "CCP")
    assert header.payment_date == date(2010, 1, 1) and header.production_date == date(2010, 1, 1)
    assert (header.trace_number, header.originating_company_id) == ("10100000000", "1000000000")
    assert header.payer.name == "NYSDOH" and header.payee_npi == "9999999995"
    assert header.payee_references == {"TJ": "000000000"} and header.references == {"EV": "ETIN"}
    first, second, third, end = rest
    assert (first.status, first.charge, first.paid, first.filing_indicator, first.payer_claim_control_number,
            first.facility_type) == ("1", D("34.25"), D("34.25"), "MC", "1000210000000030", "11")
    assert first.corrected_insured is not None and first.corrected_insured.entity == "74"
    assert first.amounts == {"AU": D("34.25")} and first.references == {"EA": "PATIENT ACCOUNT NUMBER"}
    assert [(s.procedure, s.modifiers, s.charge, s.units) for s in first.services] == [
        ("V2020", ("RB",), D("6"), D("1")), ("V2700", ("RB",), D("2.75"), D("1")),
        ("V2103", ("RB",), D("5.5"), D("1")), ("S0580", (), D("20"), D("2"))]
    assert second.services[0].adjustments == [Adjustment("CO", "29", D("12"))]
    assert third.services[2].remarks == [("HE", "N206")]
    assert isinstance(end, TransactionEnd) and end.claim_count == 3 and end.balance.ok


def test_uhc_gt_component_separator_multi_triplet_cas_and_line_control_numbers():
    header, first, second, end = items("edi835parser_united_healthcare_legacy_sample.txt")
    assert header.payer_id == "87726" and header.payer_references == {"2U": "87726"}
    assert first.received == date(2021, 1, 14) and first.frequency == "1" and first.patient_responsibility == D("105.26")
    assert [s.line_control_number for s in second.services] == ["123456789012", "123456789013", "123456789014"]
    assert second.services[2].adjustments == [
        Adjustment("PR", "2", D("5.13")), Adjustment("PR", "1", D("110")), Adjustment("CO", "45", D("184.32"))]
    assert second.services[0].procedure == "B4154" and second.services[0].units == D("249")


def test_medicare_part_a_ts3_ts2_mia_moa_plb():
    header, first, second, plb, end = items("lfh_medicare-part-a.835")
    assert header.handling_code == "C" and header.payment_format == "CTX"
    assert first.header_number == "110212" and first.provider_summary.total_charge == D("211366.97")
    assert first.provider_summary.fiscal_period_end == date(2002, 12, 31)
    assert first.provider_summary.supplemental[:3] == [D("2178.45"), D("1919.71"), None]
    assert second.header_number == "130212" and second.remark_codes == ["MA02"]
    assert first.adjustments == [Adjustment("CO", "45", D("73348.57"))] and first.services == []
    assert isinstance(plb, ProviderAdjustment)
    assert (plb.provider_id, plb.fiscal_period_end, plb.total) == ("6543210903", date(2002, 12, 31), D("-1.27"))
    assert plb.items[0].reason == "CV" and plb.items[0].reference == "CP"
    assert end.balance.ok and end.provider_adjustment_total == D("-1.27")


def test_pyx12_sample_denial_with_line_cas_and_lq():
    [claim] = claims("pyx12_835_mult_loops.txt")
    assert claim.is_denial and claim.status_text == "denied"
    assert claim.provider_summary.provider_id == "653423424"
    assert [s.service_start for s in claim.services] == [date(2003, 11, 29), date(2003, 10, 30), date(2003, 10, 31)]
    assert [s.remarks for s in claim.services] == [[("HE", "N14")]] * 3
    assert sum(a.amount for s in claim.services for a in s.adjustments) == D("915.39")


# -- synthetic fixtures ------------------------------------------------------


def test_reversal_then_correction():
    header, reversal, correction, end = items("otedi_835_reversal_correction.835")
    assert reversal.is_reversal and reversal.payer_claim_control_number == "ICN20260601A"
    assert (reversal.charge, reversal.paid, reversal.patient_responsibility) == (D("-300.00"), D("-180.00"), D("-45.00"))
    assert [(s.line_control_number, s.units, s.paid, s.allowed) for s in reversal.services] == [
        ("OT-1001-1", D("-2"), D("-120.00"), D("-150.00")), ("OT-1001-2", D("-1"), D("-60.00"), D("-75.00"))]
    assert reversal.services[0].adjustments == [Adjustment("CO", "45", D("-50.00")), Adjustment("PR", "2", D("-30.00"))]
    assert correction.status == "1" and correction.references["F8"] == "ICN20260601A"
    assert correction.remark_codes == ["MA01"] and correction.paid == D("200.00")
    assert correction.rendering_provider.id == "1467583920"
    assert all(b.ok for c in (reversal, correction) for b in balance_claim(c))
    assert end.total_paid == D("20.00") and end.balance.ok


def test_provider_level_adjustments():
    header, claim, plb1, plb2, end = items("otedi_835_plb.835")
    assert [(i.reason, i.reference, i.amount, i.reason_text) for i in plb1.items] == [
        ("L6", "OT-2001", D("-3.27"), "interest owed"),
        ("WO", "ICN20260301Z", D("120.00"), "overpayment recovery"),
        ("FB", "FB202607", D("50.00"), "forwarding balance"),
    ]
    assert [(i.reason, i.reference, i.amount) for i in plb2.items] == [("72", "", D("25.00")), ("CS", "ADJ9", D("-10.00"))]
    assert plb1.fiscal_period_end == date(2026, 12, 31)
    assert end.provider_adjustment_total == D("181.73")
    assert end.balance.ok and end.balance.expected == D("68.27")
    assert claim.insured.entity == "IL" and claim.services[1].references == {"6R": "OT-2001-2", "LU": "11"}
    assert header.payee_npi == "1234567893" and header.payee_tin == "731234567"


def test_denial_and_claim_level_only_cas():
    denial, claim_cas = claims("otedi_835_denial_claim_cas.835")
    assert denial.is_denial and denial.paid == 0 and denial.remark_codes == ["N54"]
    assert [s.adjustments for s in denial.services] == [[Adjustment("CO", "197", D("160.00"))],
                                                        [Adjustment("CO", "197", D("80.00"))]]
    assert [s.remarks for s in denial.services] == [[("HE", "N54")], [("HE", "M62")]]
    assert claim_cas.services == []
    assert claim_cas.adjustments == [Adjustment("CO", "45", D("30.00"), D("1")), Adjustment("CO", "253", D("10.00")),
                                     Adjustment("PR", "1", D("10.00"))]
    assert [b.rule for b in balance_claim(claim_cas)] == ["CLP03 charge − CLP04 paid = Σ claim and line CAS"]
    assert all(b.ok for b in balance_claim(claim_cas) + balance_claim(denial))


def test_crossover_negative_cas_and_restated_procedure():
    header, crossover, restated, end = items("otedi_835_crossover_negative_cas.835")
    assert header.payment_method == "CHK" and header.trace_number == "CHK000123"
    assert crossover.is_crossover and crossover.status == "19"
    assert crossover.crossover_carrier.name == "OHIO MEDICAID CROSSOVER" and crossover.crossover_carrier.id == "OHMCD"
    assert crossover.services[0].adjustments[-1] == Adjustment("OA", "94", D("-4.00"))
    line = restated.services[0]
    assert line.restated and (line.procedure, line.original_procedure, line.original_modifiers, line.original_units) == (
        "97150", "97530", ("GO",), D("1"))
    assert not restated.is_crossover and end.balance.ok


def test_several_interchanges_groups_and_transactions():
    scan = scan_835(INBOUND / "otedi_835_multi_interchange.835")
    assert [(t.envelope.interchange.control_number, t.envelope.group.control_number, t.envelope.control_number,
             t.claim_count, t.total_paid, t.provider_adjustment_total, t.payment_amount) for t in scan.transactions] == [
        ("000001005", "2005", "0001", 1, D("100.00"), D("0"), D("100.00")),
        ("000001005", "2005", "0002", 1, D("80.00"), D("0"), D("80.00")),
        ("000001005", "2006", "0003", 0, D("0"), D("0.00"), D("0.00")),
        ("000001006", "2007", "0001", 1, D("45.00"), D("0"), D("45.00")),
    ]
    assert scan.ok
    modifiers = [c.services[0].modifiers for c in claims("otedi_835_multi_interchange.835")]
    assert modifiers == [("GO",), ("GO",), ("GO", "59")]


@pytest.mark.parametrize("name", ["otedi_835_bom_crlf_indented.835", "otedi_835_pipe_gt_one_line.835"])
def test_layout_variants_parse(name):
    [claim] = claims(name)
    assert claim.services[0].qualifier == "HC" and claim.services[0].line_control_number.startswith(claim.patient_control_number)
    assert scan_835(INBOUND / name).ok


def test_pipe_fixture_modifiers():
    [claim] = claims("otedi_835_pipe_gt_one_line.835")
    assert claim.services[0].modifiers == ("GO", "KX")


def test_phi_stays_out_of_repr():
    claim = claims("otedi_835_reversal_correction.835")[0]
    text = repr(claim)
    assert "RIVERA" not in text and "1EG4TE5MK73" not in text and "OT-1001" in text


def test_not_an_835_and_missing_header():
    with pytest.raises(X12Error, match=r"segment 3 \(ST\): transaction set '999' is not an 835"):
        scan_835(INBOUND / "imsweb_x12_999_rejected.txt")
    text = (INBOUND / "otedi_835_plb.835").read_text().replace("N1*PE*", "N9*PE*")
    with pytest.raises(X12Error, match=r"segment 16 \(LX\): 835 header has no N1\*PE \(loop 1000B payee\)"):
        scan_835(io.BytesIO(text.encode()))


def test_bad_amount_and_bad_service_date_name_the_element_not_the_value():
    text = (INBOUND / "otedi_835_plb.835").read_text()
    with pytest.raises(X12Error, match=r"\(CLP\): CLP04 is not a decimal number"):
        scan_835(io.BytesIO(text.replace("*320.00*250.00*", "*320.00*2S0.00*").encode()))
    with pytest.raises(X12Error, match=r"\(DTM\): DTM02 is not a valid CCYYMMDD date$"):
        scan_835(io.BytesIO(text.replace("DTM*472*20260610", "DTM*472*20261310", 1).encode()))


def test_a_bpr_that_stops_before_bpr16_is_a_missing_payment_date():
    """A check payment sent as BPR*I*amount*C*CHK (BPR05 on absent): BPR16 is required."""
    text = (INBOUND / "otedi_835_plb.835").read_text()
    bpr = next(seg for seg in text.split("~") if seg.strip().startswith("BPR*"))
    short = "*".join(bpr.strip().split("*")[:5]).replace("*ACH", "*CHK")
    with pytest.raises(X12Error, match=r"\(BPR\): BPR16 payment date is missing \(required"):
        scan_835(io.BytesIO(text.replace(bpr.strip(), short).encode()))


# -- balancing ---------------------------------------------------------------


def _claim(charge, paid, claim_cas=(), lines=()) -> ClaimPayment:
    claim = ClaimPayment(1, None, None, "OT-9", "1", D(charge), D(paid), None, "12", "ICN", "11", "1")
    claim.adjustments = [Adjustment("CO", "45", D(a)) for a in claim_cas]
    for n, (line_charge, line_paid, cas) in enumerate(lines):
        claim.services.append(
            ServicePayment(10 + n, "HC", "97530", ("GO",), D(line_charge), D(line_paid), "", D("1"),
                           adjustments=[Adjustment("CO", "45", D(a)) for a in cas]))
    return claim


def test_balanced_line_claim_and_figures():
    claim = _claim("200.00", "150.00", claim_cas=["10.00"], lines=[("120.00", "90.00", ["30.00"]),
                                                                     ("80.00", "70.00", ["10.00"])])
    checks = balance_claim(claim)
    assert [(b.level, b.expected, b.actual, b.ok) for b in checks] == [
        ("claim", D("50.00"), D("50.00"), True),
        ("claim", D("150.00"), D("150.00"), True),
        ("service", D("30.00"), D("30.00"), True),
        ("service", D("10.00"), D("10.00"), True),
    ]


def test_unbalanced_line_and_claim_messages():
    claim = _claim("200.00", "150.00", lines=[("120.00", "90.00", ["25.00"]), ("80.00", "60.00", ["20.00"])])
    bad = [b for b in balance_claim(claim) if not b.ok]
    assert [b.message for b in bad] == [
        "claim CLP01 OT-9 (segment 1): CLP03 charge − CLP04 paid = Σ claim and line CAS: "
        "expected 50.00, found 45.00 (off by -5.00)",
        "claim CLP01 OT-9 line 1 (segment 10): SVC02 charge − SVC03 paid = Σ line CAS: "
        "expected 30.00, found 25.00 (off by -5.00)",
    ]
    assert balance_service(claim.services[1], claim, 2).ok


def test_lines_not_adding_up_to_clp04():
    claim = _claim("200.00", "160.00", lines=[("120.00", "90.00", ["30.00"]), ("80.00", "60.00", ["20.00"])])
    bad = [b for b in balance_claim(claim) if not b.ok]
    assert [(b.rule, b.expected, b.actual, b.difference) for b in bad] == [
        ("CLP03 charge − CLP04 paid = Σ claim and line CAS", D("40.00"), D("50.00"), D("10.00")),
        ("Σ SVC03 paid − Σ claim-level CAS = CLP04 paid", D("160.00"), D("150.00"), D("-10.00")),
    ]


def test_unbalanced_transaction_is_a_scan_problem_not_an_exception():
    text = (INBOUND / "otedi_835_plb.835").read_text().replace("BPR*I*68.27*", "BPR*I*70.00*")
    scan = scan_835(io.BytesIO(text.encode()))
    [summary] = scan.transactions
    assert not scan.ok and [p.level for p in summary.problems] == ["transaction"]
    assert summary.problems[0].message == (
        "transaction set ST02 0001 (segment 3): Σ CLP04 paid − Σ PLB adjustments = BPR02 payment: "
        "expected 70.00, found 68.27 (off by -1.73)")


def test_unbalanced_claim_is_reported_by_scan():
    text = (INBOUND / "otedi_835_plb.835").read_text().replace("CAS*CO*45*30.00", "CAS*CO*45*31.00")
    [summary] = scan_835(io.BytesIO(text.encode())).transactions
    assert [(p.level, p.difference) for p in summary.problems] == [("claim", D("1.00")), ("service", D("1.00"))]


def test_balance_value_object():
    b = Balance("transaction", "x", "rule", D("1.00"), D("1.50"))
    assert b.difference == D("0.50") and not b.ok


# -- robustness --------------------------------------------------------------

VALID = (INBOUND / "otedi_835_plb.835").read_bytes()


def _consume(data: bytes) -> None:
    for run in (lambda: scan_835(io.BytesIO(data)), lambda: list(iter_835(io.BytesIO(data), tolerant=True))):
        try:
            run()
        except X12Error:
            pass


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_only_raise_x12error(data):
    _consume(data)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 3), st.binary(max_size=4)),
                min_size=1, max_size=4))
def test_mutated_835_only_raises_x12error(mutations):
    data = bytearray(VALID)
    for position, kind, payload in mutations:
        position %= max(len(data), 1)
        if kind == 0:
            data[position:position + 1] = payload  # replace a byte
        elif kind == 1:
            data[position:position] = payload  # insert
        elif kind == 2:
            del data[position:position + len(payload) + 1]  # delete
        else:
            data[position:position + 1] = b"*~:^|>-."[len(payload) % 8:len(payload) % 8 + 1]  # a delimiter
    _consume(bytes(data))


# -- memory and the two passes on a big file -----------------------------------


def write_large_835(path: Path, claims: int, lines: int = 2) -> int:
    """An 835 of `claims` balanced claims of `lines` lines each, streamed to disk.
    Returns the segment count."""
    body_count = 0
    with path.open("w") as out:
        out.write("ISA*00*          *00*          *ZZ*OTPAYER        *ZZ*BRIGHT01       *260715*0830*^*00501*000009001*0*T*:~\n")
        out.write("GS*HP*OTPAYER*BRIGHT01*20260715*0830*9001*X*005010X221A1~\n")
        header = [
            "ST*835*0001",
            f"BPR*I*{D('90.00') * lines * claims}*C*ACH*CCP*01*011000015*DA*123456789*1999999999**01*021000021*DA*987654321*20260715",
            "TRN*1*EFTBIG*1999999999", "DTM*405*20260714", "N1*PR*OHIO STATE HEALTH PLAN*XV*OHSHP",
            "N3*1 PAYER PLAZA", "N4*COLUMBUS*OH*43215", "PER*BL*PROVIDER SERVICES*TE*8005550100",
            "N1*PE*BRIGHT HANDS OCCUPATIONAL THERAPY*XX*1234567893", "LX*1",
        ]
        out.write("~\n".join(header) + "~\n")
        body_count += len(header)
        for n in range(claims):
            pcn = f"OT-{n:07d}"
            out.write(f"CLP*{pcn}*1*{120 * lines}.00*{90 * lines}.00*{12 * lines}.00*12*ICN{n:09d}*11*1~\n"
                      f"NM1*QC*1*DOE*JANE****MI*M{n:09d}~\nDTM*232*20260601~\n")
            for line in range(1, lines + 1):
                out.write("SVC*HC:97530:GO*120.00*90.00**2~\nDTM*472*20260601~\nCAS*CO*45*18.00~\n"
                          f"CAS*PR*2*12.00~\nREF*6R*{pcn}-{line}~\nAMT*B6*102.00~\n")
            body_count += 3 + 6 * lines
        out.write(f"SE*{body_count + 1}*0001~\nGE*1*9001~\nIEA*1*000009001~\n")
    return body_count + 5


def test_large_835_scans_in_flat_memory_and_posts_in_a_second_pass(tmp_path):
    path = tmp_path / "big.835"
    segment_count = write_large_835(path, 20_000, lines=1)
    assert path.stat().st_size > 3_500_000 and segment_count == 180_015
    tracemalloc.start()
    try:
        scan = scan_835(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"
    [summary] = scan.transactions
    assert (summary.claim_count, summary.service_count, summary.total_paid, summary.total_charge) == (
        20_000, 20_000, D("1800000.00"), D("2400000.00"))
    assert scan.ok
    # second pass: a consumer that posts claim by claim
    posted = sum(item.paid for item in iter_835(path) if isinstance(item, ClaimPayment))
    assert posted == summary.payment_amount
