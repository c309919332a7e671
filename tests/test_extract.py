"""Reading extracts: file types, text-only values, row numbers, mappings, unreadable files."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from otedi.charges.extract import ROW, load_mapping, read_extract
from otedi.charges.record import CANONICAL_COLUMNS
from otedi.errors import ConfigError, ExtractError

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "extracts"
SMALL = FIXTURES / "canonical_small.csv"


def _write_xlsx(path: Path, rows: list[list]) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    book.save(path)


def _csv_rows(path: Path) -> list[list[str]]:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    return [list(frame.columns)] + frame.values.tolist()


def test_canonical_csv_reads_every_value_as_text():
    frame = read_extract(SMALL)
    assert list(frame.columns) == list(CANONICAL_COLUMNS) + [ROW]
    assert frame[ROW].tolist() == [2, 3, 4]
    assert frame["charge_id"].tolist() == ["C-1001", "C-1002", "C-1003"]
    assert frame["patient_zip"].tolist() == ["01002", "01002", "45402-1234"]  # leading zero kept
    assert frame["cpt"].tolist() == ["97110", "97018", "97530"]
    assert frame["minutes"].tolist() == ["23", "", "38"]
    assert frame["charge_amount"].tolist() == ["130.00", "28.00", "240.00"]
    assert frame["patient_address1"][2] == "4 OAK AVE, APT 2"
    # an optional column absent from the file comes back empty
    assert frame["plan_of_care_certified_through"].tolist() == ["", "", ""]
    assert all(str(frame[c].dtype) == "str" for c in CANONICAL_COLUMNS)


def test_bom_csv_reads_like_plain_csv():
    assert (FIXTURES / "canonical_bom.csv").read_bytes()[:3] == b"\xef\xbb\xbf"
    pd.testing.assert_frame_equal(read_extract(FIXTURES / "canonical_bom.csv"), read_extract(SMALL))


def test_csv_xlsx_and_parquet_read_to_the_same_frame(tmp_path):
    rows = _csv_rows(SMALL)
    _write_xlsx(tmp_path / "x.xlsx", rows)
    pq.write_table(pa.table({name: [r[i] for r in rows[1:]] for i, name in enumerate(rows[0])}), tmp_path / "x.parquet")
    expected = read_extract(SMALL)
    pd.testing.assert_frame_equal(read_extract(tmp_path / "x.xlsx"), expected)
    pd.testing.assert_frame_equal(read_extract(tmp_path / "x.parquet"), expected)


def test_values_are_stripped_and_blank_lines_keep_row_numbers(tmp_path):
    lines = SMALL.read_text(encoding="utf-8").splitlines()
    lines[1] = lines[1].replace("C-1001", "  C-1001 ").replace(",97110,", ", 97110 ,")
    path = tmp_path / "gaps.csv"
    path.write_text("\n".join([lines[0], lines[1], "", ",,,", lines[2], lines[3]]) + "\n", encoding="utf-8")
    frame = read_extract(path)
    assert frame[ROW].tolist() == [2, 5, 6]  # rows 3 and 4 are blank in the file
    assert frame["charge_id"][0] == "C-1001"
    assert frame["cpt"][0] == "97110"


def test_xlsx_typed_cells_become_the_text_a_person_typed(tmp_path):
    header = _csv_rows(SMALL)[0]
    row = dict(zip(header, _csv_rows(SMALL)[1]))
    row.update(cpt=97110, minutes=23, charge_amount=130.5, patient_zip="01002",
               service_date=datetime(2026, 3, 2), patient_dob=date(1950, 4, 17), units=None)
    path = tmp_path / "typed.xlsx"
    _write_xlsx(path, [header, [], [row[c] for c in header]])  # a blank sheet row 2
    frame = read_extract(path)
    assert frame[ROW].tolist() == [3]  # the sheet row
    got = frame.iloc[0]
    assert (got["cpt"], got["minutes"], got["charge_amount"]) == ("97110", "23", "130.5")
    assert (got["service_date"], got["patient_dob"], got["units"], got["patient_zip"]) == (
        "2026-03-02", "1950-04-17", "", "01002")


def test_parquet_typed_columns(tmp_path):
    header, *rows = _csv_rows(SMALL)
    data = {name: [r[i] for r in rows] for i, name in enumerate(header)}
    data["minutes"] = pa.array([23, None, 38], type=pa.int64())
    data["charge_amount"] = pa.array([130.0, 28.5, 240.0])
    data["service_date"] = pa.array([date(2026, 3, 2), date(2026, 3, 2), date(2026, 3, 3)])
    pq.write_table(pa.table(data), tmp_path / "typed.parquet")
    frame = read_extract(tmp_path / "typed.parquet")
    assert frame["minutes"].tolist() == ["23", "", "38"]
    assert frame["charge_amount"].tolist() == ["130", "28.5", "240"]
    assert frame["service_date"].tolist() == ["2026-03-02", "2026-03-02", "2026-03-03"]
    assert frame[ROW].tolist() == [2, 3, 4]


def test_header_only_file_is_an_empty_extract(tmp_path):
    path = tmp_path / "none.csv"
    path.write_text(SMALL.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    frame = read_extract(path)
    assert len(frame) == 0
    assert list(frame.columns) == list(CANONICAL_COLUMNS) + [ROW]


def _header_without(column: str) -> str:
    header, *rows = SMALL.read_text(encoding="utf-8").splitlines()
    names = header.split(",")
    keep = [i for i, n in enumerate(names) if n != column]
    return "\n".join(",".join(line.split(",")[i] for i in keep) for line in [header, rows[0]]) + "\n"


@pytest.mark.parametrize(
    "name, content, expected",
    [
        ("charges.txt", b"charge_id\n", "unknown file type '.txt'; an extract is .csv, .xlsx or .parquet"),
        ("empty.csv", b"", "file is empty"),
        ("blank.csv", b"\n\n", "no header row: the first row is empty"),
        ("broken.xlsx", b"charge_id,cpt\nC1,97110\n", "not a readable XLSX workbook"),
        ("broken.parquet", b"PAR1 not really parquet", "not a readable Parquet file"),
        ("latin1.csv", "charge_id,patient_last_name\nC1,MU\xd1OZ\n".encode("latin-1"),
         "not UTF-8 text (undecodable byte at offset 33); save the CSV as UTF-8"),
        ("noheader.csv", SMALL.read_bytes().split(b"\n", 1)[1],
         "no header row: the first row has none of the expected column names"),
        ("nodob.csv", _header_without("patient_dob").encode(), "required column(s) missing: patient_dob"),
        ("twice.csv", b"charge_id,cpt,cpt\nC1,97110,97112\n", "column 'cpt' appears more than once in the header"),
    ],
)
def test_unreadable_files_raise_one_error_naming_the_file(tmp_path, name, content, expected):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ExtractError) as err:
        read_extract(path)
    assert err.value.file == str(path)
    assert str(err.value).startswith(f"{path}: ")
    assert expected in str(err.value)


def test_missing_file_and_unknown_mapping(tmp_path):
    with pytest.raises(ExtractError, match="file not found"):
        read_extract(tmp_path / "nope.csv")
    with pytest.raises(ExtractError) as err:
        read_extract(SMALL, mapping="no_such_layout")
    assert str(err.value).startswith(f"{SMALL}: unknown extract mapping 'no_such_layout'")
    assert "available: webpt_style" in str(err.value)


# --- mappings --------------------------------------------------------------------------------

WEBPT_SAMPLE = ROOT / "sample_edi" / "webpt_style_sample.csv"


def test_webpt_style_sample_maps_to_exact_canonical_values():
    frame = read_extract(WEBPT_SAMPLE, mapping="webpt_style")
    assert len(frame) == 19
    assert frame[ROW].tolist() == list(range(2, 21))
    row = frame[frame["charge_id"] == "C002536"].iloc[0].to_dict()
    assert row == {
        "charge_id": "C002536", "practice_id": "HANDWORKS", "service_date": "2026-09-18",
        "patient_id": "P0000029", "patient_last_name": "STEWART", "patient_first_name": "STEVEN",
        "patient_dob": "1942-11-05", "patient_sex": "M", "patient_address1": "1484 LAKEVIEW DR",
        "patient_city": "FAIRFIELD", "patient_state": "OH", "patient_zip": "45014-3746",
        "payer_id": "87726", "payer_name": "UNITEDHEALTHCARE", "claim_filing_code": "CI", "payer_sequence": "P",
        "member_id": "636359360", "group_number": "0844777", "relationship": "01",
        "subscriber_last_name": "STEWART", "subscriber_first_name": "MARGARET", "subscriber_dob": "1947-06-19",
        "subscriber_sex": "F", "rendering_npi": "1976898605", "rendering_last_name": "NOLAN",
        "rendering_first_name": "KATIE", "rendering_role": "OTA", "referring_npi": "1396703732",
        "referring_last_name": "DIAZ", "referring_first_name": "MARCO", "place_of_service": "12",
        "cpt": "97530", "modifiers": "GO:CO", "minutes": "26", "units": "2", "charge_amount": "176.00",
        "dx_codes": "S52.501D|M25.641|M79.641|M62.81", "prior_auth_number": "",
        "initial_treatment_date": "2026-09-01", "plan_of_care_certified_through": "2026-11-29", ROW: 11,
        # columns the WebPT-style layout does not carry are empty
        "supervising_npi": "", "supervising_last_name": "", "supervising_first_name": "", "plan_of_care_start": "",
        "plan_of_care_signed_date": "", "progress_report_date": "", "msp_type": "", "qmb": "",
    }


def test_webpt_style_mapping_file_states_its_source():
    spec = load_mapping("webpt_style")
    assert spec.source.startswith("WebPT-style charge export")
    assert spec.constants == {"practice_id": "HANDWORKS", "payer_sequence": "P"}
    assert spec.sources()["Patient Name"] == ["patient_last_name", "patient_first_name"]


MINI_MAPPING = """
source: "test layout"
columns: {charge_id: Charge ID, service_date: DOS, patient_sex: Gender, units: Units}
split: [{column: Patient Name, separator: ",", into: [patient_last_name, patient_first_name]}]
join: [{columns: [Mod 1, Mod 2], separator: ":", into: modifiers}]
constants: {practice_id: HANDWORKS}
values: {patient_sex: {Female: F, Male: M, Unknown: U}}
dates: {service_date: "%m/%d/%Y"}
"""


@pytest.fixture
def mini_mappings(tmp_path, monkeypatch):
    (tmp_path / "extracts").mkdir()
    (tmp_path / "extracts" / "mini.yaml").write_text(MINI_MAPPING, encoding="utf-8")
    monkeypatch.setenv("OTEDI_MAPPINGS", str(tmp_path))
    return tmp_path / "extracts"


def test_mapping_rules_split_join_constants_values_dates(mini_mappings, tmp_path):
    # The mini layout lacks most required columns; add them under canonical names.
    mini = (FIXTURES / "webpt_mini.csv").read_text(encoding="utf-8").splitlines()
    extra = [c for c in CANONICAL_COLUMNS if c not in
             ("charge_id", "service_date", "patient_sex", "units", "patient_last_name", "patient_first_name",
              "modifiers", "practice_id")]
    path = tmp_path / "mini.csv"
    path.write_text("\n".join([mini[0] + "," + ",".join(extra)] + [line + "," * len(extra) for line in mini[1:]]),
                    encoding="utf-8")
    frame = read_extract(path, mapping="mini")
    assert frame["patient_last_name"].tolist() == ["O'NEIL", "NOCOMMA", "SMITH", "DOE"]
    assert frame["patient_first_name"].tolist() == ["MARY ANN", "", "JO", "JANE"]
    assert frame["modifiers"].tolist() == ["GO", "KX", "GO:59", ""]
    assert frame["practice_id"].tolist() == ["HANDWORKS"] * 4
    assert frame["patient_sex"].tolist() == ["F", "M", "U", "F"]  # matched ignoring case; "F" passes through
    # M/D/YYYY converted; an ISO value and a non-date pass unchanged for validation to judge
    assert frame["service_date"].tolist() == ["2026-03-02", "2026-03-15", "2026-03-16", "13/45/2026"]
    assert frame["units"].tolist() == ["2", "", "1", "1"]


def test_mapping_names_the_missing_source_column():
    with pytest.raises(ExtractError) as err:
        read_extract(FIXTURES / "webpt_mini.csv", mapping="webpt_style")
    message = str(err.value)
    assert message.startswith(f"{FIXTURES / 'webpt_mini.csv'}: column(s) named by mapping 'webpt_style' missing")
    assert "'DOB' (for patient_dob)" in message
    assert "'Insured Name' (for subscriber_last_name, subscriber_first_name)" in message


def test_mapping_then_required_column_still_missing(mini_mappings):
    with pytest.raises(ExtractError) as err:
        read_extract(FIXTURES / "webpt_mini.csv", mapping="mini")
    assert "required column(s) missing after mapping 'mini': patient_id, patient_dob" in str(err.value)


def test_mapping_picks_the_xlsx_sheet(mini_mappings, tmp_path):
    book = openpyxl.Workbook()
    book.active.title = "Summary"
    book.active.append(["nothing here"])
    charges = book.create_sheet("Charges")
    for row in _csv_rows(SMALL):
        charges.append(row)
    book.save(tmp_path / "two.xlsx")
    (mini_mappings / "sheet.yaml").write_text('source: "x"\nsheet: Charges\n', encoding="utf-8")
    (mini_mappings / "nosheet.yaml").write_text('source: "x"\nsheet: Visits\n', encoding="utf-8")
    pd.testing.assert_frame_equal(read_extract(tmp_path / "two.xlsx", mapping="sheet"), read_extract(SMALL))
    with pytest.raises(ExtractError, match=r"sheet 'Visits' not found \(sheets: Summary, Charges\)"):
        read_extract(tmp_path / "two.xlsx", mapping="nosheet")


def test_malformed_mapping_is_a_config_error(mini_mappings):
    (mini_mappings / "bad.yaml").write_text("source: x\ncolumns: {patient_name: Patient}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="'patient_name' is not a canonical column"):
        load_mapping("bad")
    (mini_mappings / "nosource.yaml").write_text("columns: {charge_id: ID}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="'source' is required"):
        load_mapping("nosource")
    (mini_mappings / "twice.yaml").write_text(
        "source: x\ncolumns: {practice_id: Clinic}\nconstants: {practice_id: HANDWORKS}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\['practice_id'\] are filled by more than one rule"):
        load_mapping("twice")


# --- property: any text survives the trip through a file -------------------------------------

TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), max_size=12).map(str.strip)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(TEXT, min_size=1, max_size=5))
def test_any_text_value_survives_csv_and_parquet(tmp_path, values):
    header, *rows = _csv_rows(SMALL)
    first = dict(zip(header, rows[0]))
    data = {name: [first[name]] * len(values) for name in header}
    data["patient_address1"] = values
    data["charge_id"] = [f"C{i}" for i in range(len(values))]  # keep every row non-blank
    frame = pd.DataFrame(data, dtype="str")
    frame.to_csv(tmp_path / "p.csv", index=False)
    frame.to_parquet(tmp_path / "p.parquet", index=False)
    for name in ("p.csv", "p.parquet"):
        assert read_extract(tmp_path / name)["patient_address1"].tolist() == values


def test_a_row_with_values_out_of_place_is_rejected_alone_without_showing_them(tmp_path):
    # An unquoted comma in an address shifts the ZIP and member id under other columns' names (issue 11
    # item 4): the row is rejected as a whole and its values are not repeated; the other rows load.
    from otedi.charges.validate import validate_rows

    lines = SMALL.read_text().splitlines()
    shifted = lines[1].replace("12 ELM ST", "12 ELM ST, APT 9", 1)
    extra = lines[1].replace("2026-02-23", "2026-02-23,,extra", 1).replace("C-1001", "C-1009", 1)
    path = tmp_path / "shifted.csv"
    path.write_text("\n".join([lines[0], shifted, *lines[2:], extra]) + "\n")
    frame = read_extract(path)
    charges, issues = validate_rows(frame, file=path.name, today=date(2026, 6, 30))
    rejects = [i for i in issues if i.severity == "reject"]
    assert [(i.row, i.rule) for i in rejects] == [(2, "row-shape"), (5, "row-shape")]
    assert [c.charge_id for c in charges] == ["C-1002", "C-1003"]
    text = " ".join(i.message + str(i.value) for i in rejects)
    for secret in ("01002", "1EG4TE5MK73", "AMHERST", "TESTPATIENT", "APT 9"):
        assert secret not in text


def test_pyarrow_strips_exactly_what_str_strip_does():
    # The plain-CSV path strips with pyarrow (extract._plain_csv); the csv path with str.strip().
    points = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    stripped = pc.utf8_trim_whitespace(pa.array([f"{ch}x{ch}" for ch in points])).to_pylist()
    assert [ch for ch, s in zip(points, stripped) if (s == "x") != ch.isspace()] == []


def _unnamed_columns(text: str) -> str:
    header, body = text.split("\n", 1)
    return " x ," + header + ",\n" + "".join(f",{line},\n" for line in body.splitlines())


PLAIN_EDITS = {
    "as written": lambda text: text,
    "crlf": lambda text: text.replace("\n", "\r\n"),
    "bom": lambda text: "\ufeff" + text,
    "no final newline": lambda text: text.rstrip("\n"),
    "blank rows of commas": lambda text: text.replace("\n", "\n" + "," * 47 + "\n", 3),
    "values padded with blanks": lambda text: text.replace(",", " ,\u3000", 40).replace("\nC000004,",
                                                                                      "\n\x1fC000004\t,"),
    "control and non-ASCII characters": lambda text: text.replace("C000002", "C00\x000002").replace("C000003",
                                                                                                   "CÖ😀3"),
    "unnamed and extra columns": _unnamed_columns,
    "a row of another width": lambda text: text.replace("\n", ",EXTRA\n", 5),
    "a quoted value": lambda text: text.replace("C000005", '"C000005, 6"'),
    "a lone carriage return": lambda text: text.replace("\n", "\r", 1),
    "a blank line": lambda text: text.replace("\n", "\n\n", 2),
}


@pytest.mark.parametrize("edit", PLAIN_EDITS)
def test_plain_csv_reads_as_the_csv_module_reads_it(tmp_path, monkeypatch, edit):
    from otedi.charges import extract
    from otedi.charges.synth import synth_charges

    source = tmp_path / "synth.csv"
    synth_charges(60, 4, source)
    path = tmp_path / "edited.csv"
    path.write_bytes(PLAIN_EDITS[edit](source.read_text(encoding="utf-8")).encode("utf-8"))
    fast = read_extract(path)
    with monkeypatch.context() as m:
        m.setattr(extract, "_plain_csv", lambda path: None)
        slow = read_extract(path)
    pd.testing.assert_frame_equal(fast, slow)
    assert fast.attrs == slow.attrs
    assert (extract._plain_csv(path) is not None) == (edit not in (
        "a row of another width", "a quoted value", "a lone carriage return", "a blank line")), "which path read it"
