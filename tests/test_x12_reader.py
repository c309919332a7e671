"""The shared streaming reader: delimiters from the ISA, tolerated layout,
envelope checks and the errors they raise."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otedi.errors import X12Error
from otedi.x12.reader import X12Reader, read_segments

INBOUND = Path(__file__).parent / "fixtures" / "inbound"


def segments(data: bytes | str, **kwargs) -> list:
    raw = data.encode() if isinstance(data, str) else data
    return list(X12Reader(io.BytesIO(raw), **kwargs))


ISA = "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *260715*0830*^*00501*000000007*0*T*:~"
BPR = "BPR*I*0*C*NON************20260715~"
BODY = "GS*HP*S*R*20260715*0830*7*X*005010X221A1~ST*835*0001~" + BPR + "SE*3*0001~GE*1*7~IEA*1*000000007~"


def with_svc(svc: str) -> str:
    """The minimal interchange with one more segment after the BPR."""
    return ISA + BODY.replace(BPR, BPR + svc + "~").replace("SE*3", "SE*4")


def test_segments_are_numbered_from_the_isa_and_split_into_elements():
    segs = segments(ISA + BODY)
    assert [s.id for s in segs] == ["ISA", "GS", "ST", "BPR", "SE", "GE", "IEA"]
    assert [s.number for s in segs] == [1, 2, 3, 4, 5, 6, 7]
    bpr = segs[3]
    assert bpr.element(1) == "I" and bpr.element(16) == "20260715" and bpr.element(17) == ""
    assert segs[0].element(6) == "SENDER         "


def test_envelope_info_per_transaction():
    reader = X12Reader(INBOUND / "otedi_835_multi_interchange.835")
    seen = []
    for seg in reader:
        if seg.id == "ST":
            t = reader.transaction
            seen.append((t.interchange.control_number, t.interchange.sender_id, t.interchange.receiver_id,
                         t.group.control_number, t.group.version, t.transaction_set_id, t.control_number,
                         t.interchange.delimiters.element, t.interchange.delimiters.component))
    assert seen == [
        ("000001005", "OTPAYER", "BRIGHT01", "2005", "005010X221A1", "835", "0001", "*", ":"),
        ("000001005", "OTPAYER", "BRIGHT01", "2005", "005010X221A1", "835", "0002", "*", ":"),
        ("000001005", "OTPAYER", "BRIGHT01", "2006", "005010X221A1", "835", "0003", "*", ":"),
        ("000001006", "OTPAYER", "BRIGHT01", "2007", "005010X221A1", "835", "0001", "|", ">"),
    ]


def test_pipe_and_gt_delimiters_on_one_line():
    segs = list(read_segments(INBOUND / "otedi_835_pipe_gt_one_line.835"))
    svc = next(s for s in segs if s.id == "SVC")
    assert svc.delimiters.element == "|" and svc.delimiters.component == ">"
    assert svc.composite(1, required=2) == ["HC", "97530", "GO", "KX"]
    assert svc.element(2) == "130.00"


def test_bom_crlf_indentation_and_blank_lines_are_tolerated():
    segs = list(read_segments(INBOUND / "otedi_835_bom_crlf_indented.835"))
    assert segs[0].id == "ISA" and segs[-1].id == "IEA"
    clp = next(s for s in segs if s.id == "CLP")
    assert clp.element(1) == "OT-6001"  # indentation stripped
    assert len(segs) == 24


def test_newline_as_segment_terminator_and_last_segment_unterminated():
    text = (ISA[:-1] + "\n" + BODY.replace("~", "\n")).rstrip("\n")
    segs = segments(text.replace("\n", "\r\n"))
    assert [s.id for s in segs][-1] == "IEA"
    assert segs[3].element(16) == "20260715"


def test_small_chunks_give_the_same_segments():
    path = INBOUND / "otedi_835_multi_interchange.835"
    whole = [(s.number, s.id, s.elements) for s in X12Reader(path)]
    tiny = [(s.number, s.id, s.elements) for s in X12Reader(path, chunk_size=7)]
    assert whole == tiny and len(whole) == 84


def test_repetition_separator_and_4010_isa11():
    segs = segments(ISA + BODY.replace("BPR*I*0", "BPR*I*A^B"))
    assert segs[3].repetitions(2) == ["A", "B"]
    old = ISA.replace("*^*00501", "*U*00401")
    assert segments(old + BODY)[3].repetitions(2) == ["0"]


def test_composite_with_a_foreign_separator_is_reported_or_tolerated():
    svc = segments(with_svc("SVC*HC>97530>GO*1*1"))[4]
    mismatch = r"segment 5 \(SVC\): SVC01 separates components with '>' but ISA16 declares ':'"
    with pytest.raises(X12Error, match=mismatch):
        svc.composite(1, required=2)
    assert svc.composite(1, required=2, tolerant=True) == ["HC", "97530", "GO"]


def test_malformed_composite_is_named():
    svc = segments(with_svc("SVC*HC*1*1"))[4]
    malformed = r"SVC01 composite needs 2 non-empty component\(s\), found 1 \(malformed composite\)"
    with pytest.raises(X12Error, match=malformed):
        svc.composite(1, required=2, tolerant=True)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "file is empty"),
        ("ST*835*0001~BPR*I~SE*2*0001~", r"segment 1 \(ST\): ST-only fragment, no ISA envelope"),
        ("  \nGS*HP*S~", r"segment 1: file does not start with ISA"),
        (ISA + "ST*835*0001~SE*2*0001~IEA*0*000000007~", r"segment 2 \(ST\): ST outside a functional group \(no GS before it\)"),
        (ISA + BODY.replace("SE*3*", "SE*4*"), r"segment 5 \(SE\): SE01 says '4' but there are 3 segments from ST to SE"),
        (ISA + BODY.replace("SE*3*0001", "SE*3*0002"), r"segment 5 \(SE\): SE02 '0002' does not match ST02 '0001'"),
        (ISA + BODY.replace("GE*1*7", "GE*2*7"), r"segment 6 \(GE\): GE01 says '2' but there are 1 transaction sets in the group"),
        (ISA + BODY.replace("GE*1*7", "GE*1*8"), r"segment 6 \(GE\): GE02 '8' does not match GS06 '7'"),
        (ISA + BODY.replace("IEA*1*000000007", "IEA*1*000000008"), r"segment 7 \(IEA\): IEA02 '000000008' does not match ISA13 '000000007'"),
        (ISA + BODY.replace("IEA*1*", "IEA*3*"), r"segment 7 \(IEA\): IEA01 says '3' but there are 1 functional groups"),
        (ISA + BODY.split("SE*")[0], r"segment 3 \(ST\): file ends before SE: transaction set 0001 is not closed \(truncated file\?\)"),
        (ISA + BODY.split("IEA*")[0], r"segment 1 \(ISA\): file ends before IEA: interchange 000000007 is not closed"),
        (ISA + BODY.split("GE*")[0], r"segment 2 \(GS\): file ends before GE: group 7 is not closed"),
        (ISA + BODY.replace("SE*3*0001~", ""), r"segment 5 \(GE\): GE before SE: transaction set 0001 is not closed"),
        (ISA + BODY + "GS*HP~", r"segment 8: only an ISA may follow an IEA"),
        (ISA + "GS*HP*S*R*20260715*0830*7*X*005010X221A1~BPR*I~", r"segment 3 \(BPR\): segment in a functional group but outside a transaction set"),
        (ISA + BODY.replace("BPR*", "bp r*"), r"segment 4: segment id is not 2 or 3 capital letters"),
        (ISA[:60], "file ends inside the ISA"),
        (ISA.replace("*:~", "*~~"), "same character for two delimiters"),
        (ISA + BODY.replace("IEA*1*000000007~", "") + ISA + BODY, r"segment 7 \(ISA\): ISA inside an open interchange"),
    ],
)
def test_envelope_defects_raise_x12error_naming_the_segment(text, message):
    with pytest.raises(X12Error, match=message):
        segments(text)


def test_truncated_fixture_names_the_open_st(tmp_path):
    data = (INBOUND / "otedi_835_plb.835").read_text()
    cut = tmp_path / "truncated.835"
    cut.write_text(data[: data.index("SE*")])
    with pytest.raises(X12Error) as caught:
        list(read_segments(cut))
    assert caught.value.segment_number == 3 and caught.value.segment_id == "ST"
    assert "file ends before SE" in str(caught.value)


def test_lenient_mode_keeps_count_and_control_number_problems():
    reader = X12Reader(INBOUND / "imsweb_x12_999_accepted.txt", strict=False)
    assert [s.id for s in reader][-1] == "IEA"
    assert [str(p) for p in reader.problems] == [
        "segment 10 (IEA): IEA02 '000000001' does not match ISA13 '000000286'"
    ]
    # structural problems still raise in lenient mode
    with pytest.raises(X12Error, match="ST-only fragment"):
        segments("ST*835*1~SE*2*1~", strict=False)


def test_invalid_utf8_is_an_x12error():
    with pytest.raises(X12Error, match="is not valid utf-8 text"):
        segments(ISA.encode() + b"GS*HP*\xff\xfe~")
    assert segments((ISA + BODY.replace("NON", "NÓN")).encode("latin-1"), encoding="latin-1")[3].element(4) == "NÓN"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_only_ever_raise_x12error(data):
    try:
        segments(data)
    except X12Error:
        pass


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ISAGEST*~:^|>\n 0123456789", max_size=300))
def test_random_x12ish_text_only_ever_raises_x12error(text):
    try:
        segments(ISA + text)
    except X12Error:
        pass
