"""Finance exports keep one declared schema per table in CSV (+ datapackage.json), Parquet and XLSX.

Nights compared: an empty warehouse (every table empty), the `finance` dataset of test_reconcile, and the
same after a duplicate 835 (held_remittances goes from empty to one row). SQLite and PostgreSQL."""

import csv
import json
import zipfile
from datetime import date
from decimal import Decimal as D

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from openpyxl import load_workbook
from sqlalchemy import update

from otedi.analytics import export
from otedi.analytics.export import SCHEMAS, ExportError, export_tables
from otedi.warehouse import models
from otedi.warehouse.db import session_scope
from tests.test_reconcile import TODAY, finance, paid_e, post, write  # noqa: F401 - finance is a fixture
from tests.remit_builder import interchange, remittance

TABLES = list(SCHEMAS)
ID_COLUMNS = {"claim_id", "patient_id", "rendering_npi", "payer_id", "payer_icn", "trace_number", "charge_id",
              "cpt", "carc", "practice_id", "payer_key", "reference", "line_control_number"}


def night(folder, today) -> dict:
    """Every format of one night's export: {fmt: {table: (column names, column types, rows)}}."""
    paths = {fmt: export_tables(folder / fmt, fmt, today=today) for fmt in export.FORMATS}
    out = {"csv": {}, "parquet": {}, "xlsx": {}}
    package = json.loads((folder / "csv" / "datapackage.json").read_text())
    for resource in package["resources"]:
        with open(folder / "csv" / resource["path"], newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
        out["csv"][resource["name"]] = (rows[0], [f["type"] for f in resource["schema"]["fields"]], len(rows) - 1)
    for path in paths["parquet"]:
        table = pq.read_table(path)
        out["parquet"][path.stem] = (table.schema.names, [str(t) for t in table.schema.types], table.num_rows)
    [book] = paths["xlsx"]
    wb = load_workbook(book)
    for name in TABLES:
        sheet = wb[name]
        header = [c.value for c in sheet[1]]
        out["xlsx"][name] = (header, None, sheet.max_row - 1)
    return out


def test_export_schemas_are_the_same_every_night_empty_tables_included(warehouse, tmp_path, request):
    empty = night(tmp_path / "n1", date(2026, 3, 1))
    request.getfixturevalue("finance")
    busy = night(tmp_path / "n2", TODAY)
    again = remittance([paid_e(request.getfixturevalue("finance")["E"])], trace="T1")  # T1 again: a duplicate
    post(write(tmp_path, "dup.835", interchange([again], control=4)))
    later = night(tmp_path / "n3", TODAY)

    # night 1: every table empty but the KPIs, which are there with no value (unapplied credit: 0.00)
    assert {name: rows for name, (_, _, rows) in empty["parquet"].items() if rows} == {"kpis": 8}
    assert pq.read_table(tmp_path / "n1" / "parquet" / "kpis.parquet").column("value").null_count == 7
    assert busy["parquet"]["reconciliation_claims"][2] == 8 and busy["parquet"]["held_remittances"][2] == 0
    assert later["parquet"]["held_remittances"][2] == 1
    for fmt in ("csv", "parquet", "xlsx"):
        assert list(empty[fmt]) == TABLES
        for name in TABLES:
            declared = [c.name for c in SCHEMAS[name]]
            assert empty[fmt][name][:2] == busy[fmt][name][:2] == later[fmt][name][:2], (fmt, name)
            assert empty[fmt][name][0] == declared, (fmt, name)
    # the same rows whatever the format
    for name in TABLES:
        assert busy["csv"][name][2] == busy["parquet"][name][2] == busy["xlsx"][name][2], name
    # the schema file is the same every night but for its title
    packages = [json.loads((tmp_path / n / "csv" / "datapackage.json").read_text()) for n in ("n1", "n2", "n3")]
    assert packages[0]["resources"] == packages[1]["resources"] == packages[2]["resources"]


def test_parquet_money_is_decimal_12_2_and_ids_are_strings_on_every_night(warehouse, tmp_path, request):
    for n, today in enumerate((date(2026, 3, 1), TODAY)):
        if n:
            request.getfixturevalue("finance")
        for path in export_tables(tmp_path / str(n), "parquet", today=today):
            schema = pq.read_schema(path)
            for col in SCHEMAS[path.stem]:
                field = schema.field(col.name)
                if col.type == "money":
                    assert field.type == pa.decimal128(12, 2), (path.stem, col.name)
                if col.name in ID_COLUMNS:
                    assert field.type == pa.string(), (path.stem, col.name)
                if col.type == "date":
                    assert field.type == pa.date32(), (path.stem, col.name)
                assert field.metadata[b"description"] == col.description.encode()
    lines = pq.read_table(tmp_path / "1" / "reconciliation_lines.parquet").to_pydict()
    assert sum(lines["denied"]) == D("195.00") and lines["service_date"][0] == date(2026, 3, 2)
    kpis = pq.read_table(tmp_path / "1" / "kpis.parquet").to_pydict()
    assert dict(zip(kpis["kpi"], kpis["value"]))["days_in_ar"] == D("42.2000")


def test_a_money_column_with_no_value_is_still_decimal(warehouse, tmp_path, monkeypatch):
    tables = export.finance_tables(today=date(2026, 3, 1))
    tables["ar_aging"] = pd.DataFrame([{
        "balance_type": "insurance", "practice_id": "BRIGHTHANDS", "payer_id": "00123", "payer_name": "X",
        **{b: None for b in ("0-30", "31-60", "61-90", "91-120", "120+")}, "total": None, "claims": 0}])
    monkeypatch.setattr(export, "finance_tables", lambda snap=None, today=None: tables)
    export_tables(tmp_path, "parquet", today=date(2026, 3, 1))
    table = pq.read_table(tmp_path / "ar_aging.parquet")
    assert table.schema.field("total").type == pa.decimal128(12, 2) and table.column("total").null_count == 1
    assert table.column("payer_id").to_pylist() == ["00123"]


def test_a_table_that_changes_shape_is_refused(warehouse, tmp_path, monkeypatch):
    tables = export.finance_tables(today=date(2026, 3, 1))
    tables["kpis"] = tables["kpis"].assign(extra=None)
    monkeypatch.setattr(export, "finance_tables", lambda snap=None, today=None: tables)
    with pytest.raises(ExportError, match=r"export table kpis: columns \[\] are declared but missing, \['extra'\]"):
        export_tables(tmp_path, "csv", today=date(2026, 3, 1))
    with pytest.raises(ValueError, match="csv, parquet, xlsx"):
        export_tables(tmp_path, "json")


def _leading_zeros(finance) -> None:
    """Ids that start with zeros: a patient id, the payer's ICN, an 835 trace number."""
    with session_scope() as s:
        s.execute(update(models.Claim).where(models.Claim.claim_id == finance["B"])
                  .values(patient_id="000417", payer_icn="0009876"))
        s.execute(update(models.Remittance).where(models.Remittance.trace_number == "T2")
                  .values(trace_number="000042"))


def test_ids_keep_their_leading_zeros_in_every_format(finance, tmp_path):
    _leading_zeros(finance)
    for fmt in export.FORMATS:
        export_tables(tmp_path / fmt, fmt, today=TODAY)
    with open(tmp_path / "csv" / "reconciliation_claims.csv", newline="") as fh:
        claims = {r["claim_id"]: r for r in csv.DictReader(fh)}
    assert (claims[finance["B"]]["patient_id"], claims[finance["B"]]["payer_icn"]) == ("000417", "0009876")
    with open(tmp_path / "csv" / "payments.csv", newline="") as fh:
        assert {r["trace_number"] for r in csv.DictReader(fh)} == {"T1", "000042"}
    pq_claims = pq.read_table(tmp_path / "parquet" / "reconciliation_claims.parquet").to_pandas()
    row = pq_claims.set_index("claim_id").loc[finance["B"]]
    assert (row["patient_id"], row["payer_icn"], row["rendering_npi"]) == ("000417", "0009876", "1678901236")
    assert "000042" in pq.read_table(tmp_path / "parquet" / "payments.parquet").column("trace_number").to_pylist()
    wb = load_workbook(tmp_path / "xlsx" / "finance_tables.xlsx")
    sheet = wb["reconciliation_claims"]
    header = [c.value for c in sheet[1]]
    cells = {r[0].value: dict(zip(header, r)) for r in sheet.iter_rows(min_row=2)}
    cell = cells[finance["B"]]["patient_id"]
    assert (cell.value, cell.data_type) == ("000417", "s")
    assert cells[finance["B"]]["billed"].value == 65 and cells[finance["B"]]["billed"].data_type == "n"
    traces = [r[4] for r in wb["payments"].iter_rows(min_row=2, values_only=True)]
    assert "000042" in traces


FORMULAS = {"kind": "=1+2", "reference": "=HYPERLINK(\"http://example.invalid\",\"x\")",
            "message": "@SUM(A1)", "trace_number": "-2+3"}


def test_xlsx_and_csv_never_carry_a_formula_and_numbers_stay_numbers(finance, tmp_path):
    with session_scope() as s:  # what an 835 could send in CLP01 or a payer could name itself
        s.execute(update(models.RemitException).values(kind=FORMULAS["kind"], reference=FORMULAS["reference"],
                                                       message=FORMULAS["message"] + "\tand\rmore"))
        s.execute(update(models.Remittance).where(models.Remittance.trace_number == "T1")
                  .values(trace_number=FORMULAS["trace_number"]))
    [book] = export_tables(tmp_path / "x", "xlsx", today=TODAY)
    with zipfile.ZipFile(book) as z:
        sheets = [z.read(n).decode() for n in z.namelist() if n.startswith("xl/worksheets/")]
    assert sheets and not any("<f>" in s or "<f " in s for s in sheets)  # not one formula in the workbook
    wb = load_workbook(book)
    sheet = wb["unmatched_remittances"]
    header = [c.value for c in sheet[1]]
    [row] = [dict(zip(header, r)) for r in sheet.iter_rows(min_row=2)]
    for col in ("kind", "reference"):
        assert (row[col].value, row[col].data_type, row[col].quotePrefix) == (FORMULAS[col], "s", True)
    # (XML reads a CR inside a text back as a line feed)
    assert row["message"].value == "@SUM(A1)\tand\nmore" and row["message"].quotePrefix
    assert (row["paid_amount"].value, row["paid_amount"].data_type, row["paid_amount"].number_format) == (
        30, "n", "#,##0.00")
    pay = wb["payments"]
    header = [c.value for c in pay[1]]
    rows = [dict(zip(header, r)) for r in pay.iter_rows(min_row=2)]
    [t1] = [r for r in rows if r["trace_number"].value == "-2+3"]
    assert t1["trace_number"].quotePrefix
    assert (t1["bpr_amount"].value, t1["bpr_amount"].data_type) == (pytest.approx(230.01), "n")
    assert t1["payment_date"].is_date and t1["ties"].value is True

    export_tables(tmp_path / "c", "csv", today=TODAY)
    with open(tmp_path / "c" / "unmatched_remittances.csv", newline="") as fh:
        [r] = list(csv.DictReader(fh))
    assert (r["kind"], r["reference"], r["paid_amount"]) == ("'=1+2", "'" + FORMULAS["reference"], "30.00")
    assert r["message"] == "'@SUM(A1)\tand\rmore"  # quoted in the CSV, so the CR does not end the row


def test_the_csv_schema_file_describes_every_csv_column_in_order(finance, tmp_path):
    written = export_tables(tmp_path, "csv", today=TODAY)
    assert [p.name for p in written] == [f"{t}.csv" for t in TABLES] + ["datapackage.json"]
    package = json.loads((tmp_path / "datapackage.json").read_text())
    assert package["profile"] == "tabular-data-package" and [r["name"] for r in package["resources"]] == TABLES
    for resource in package["resources"]:
        with open(tmp_path / resource["path"], newline="") as fh:
            header = next(csv.reader(fh))
        fields = resource["schema"]["fields"]
        assert header == [f["name"] for f in fields], resource["name"]
        assert all(f["description"] for f in fields)
        types = {f["name"]: (f["type"], f["otedi:type"]) for f in fields}
        for name in ID_COLUMNS & set(types):
            assert types[name] == ("string", "string"), (resource["name"], name)
    claims = {f["name"]: f for f in package["resources"][0]["schema"]["fields"]}
    assert (claims["billed"]["type"], claims["billed"]["otedi:type"]) == ("number", "decimal(12,2)")
    assert claims["service_date_from"]["type"] == "date" and claims["last_event_at"]["type"] == "datetime"
    assert claims["adjudicated"]["trueValues"] == ["true"]
    frame = pd.read_csv(tmp_path / "reconciliation_claims.csv", dtype=str, keep_default_na=False)
    assert set(frame["adjudicated"]) == {"true", "false"} and frame["billed"].str.fullmatch(r"-?\d+\.\d\d").all()
