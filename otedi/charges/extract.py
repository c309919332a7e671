"""Read a charge extract (CSV, XLSX or Parquet) into the canonical layout.

Every value comes back as a stripped string ("" when empty): ZIP codes keep
their leading zeros and "97110" stays text. The result has the canonical
columns in contract order (optional ones filled with "") and `_row`, the row
number a person sees in the file: header = row 1, first data row = row 2
(for XLSX the sheet row). Parquet has no header row but is numbered the same
way, so one extract has the same row numbers in every format. Blank rows are
skipped; columns the canonical layout does not use are dropped. A row whose
values cannot be where the header says (more values than the header, or fewer
in a file whose rows otherwise have them all) is listed in
`frame.attrs[RAGGED]` for row validation to reject whole.

Another export layout is read through a column-mapping file,
mappings/extracts/<name>.yaml:

    source: "WebPT-style billing export"   # required: which system/export
    description: "..."                     # optional
    sheet: Charges                         # optional: XLSX sheet (default: first)
    columns:                               # canonical column: source column
      charge_id: Charge ID
    split:                                 # one source column into several
      - {column: Patient Name, separator: ",", into: [patient_last_name, patient_first_name]}
    join:                                  # several source columns into one; empty parts skipped
      - {columns: [Mod 1, Mod 2, Mod 3, Mod 4], separator: ":", into: modifiers}
    constants:                             # the same value on every row
      practice_id: HANDWORKS
    dates:                                 # canonical column: strptime format of the source
      service_date: "%m/%d/%Y"
    values:                                # canonical column: {source value: canonical value}
      patient_sex: {Female: F, Male: M}

Rules run in that order: columns, split, join and constants fill the
canonical columns (a canonical column not named anywhere is taken from a
source column of the same name, if any); then value maps (matched ignoring
case; unlisted values pass unchanged) and date formats (a value that does not
match the format passes unchanged, for row validation to report).

A file that cannot be read at all (unknown suffix, corrupt, empty, no header,
duplicate header names, a column the mapping names or a required column
missing, unknown mapping) raises one ExtractError naming the file and what is
wrong; nothing partial is returned. A malformed mapping file is a ConfigError.
"""

from __future__ import annotations

import csv
import re
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv as pcsv

from otedi import config
from otedi.charges.record import CANONICAL_COLUMNS, REQUIRED_COLUMNS
from otedi.errors import ConfigError, ExtractError

ROW = "_row"
RAGGED = "ragged_rows"  # frame.attrs: {row number: (value count, header columns)} of rows with values out of place
SUFFIXES = (".csv", ".xlsx", ".parquet")
MAPPINGS = "extracts"
_MAPPING_KEYS = {"source", "description", "sheet", "columns", "split", "join", "constants", "dates", "values"}


@dataclass(frozen=True)
class Split:
    column: str  # source column
    separator: str
    into: tuple[str, ...]  # canonical columns, filled left to right; the last one takes the rest


@dataclass(frozen=True)
class Join:
    columns: tuple[str, ...]  # source columns; empty values are skipped
    separator: str
    into: str  # canonical column


@dataclass(frozen=True)
class ExtractMapping:
    """How one export layout becomes the canonical extract."""

    name: str
    source: str
    description: str = ""
    sheet: str | None = None
    columns: dict[str, str] = field(default_factory=dict)  # canonical column -> source column
    split: tuple[Split, ...] = ()
    join: tuple[Join, ...] = ()
    constants: dict[str, str] = field(default_factory=dict)
    dates: dict[str, str] = field(default_factory=dict)  # canonical column -> strptime format
    values: dict[str, dict[str, str]] = field(default_factory=dict)  # canonical column -> {SOURCE VALUE: value}

    def sources(self) -> dict[str, list[str]]:
        """source column -> the canonical columns it fills."""
        out: dict[str, list[str]] = {}
        for column, src in self.columns.items():
            out.setdefault(src, []).append(column)
        for s in self.split:
            out.setdefault(s.column, []).extend(s.into)
        for j in self.join:
            for src in j.columns:
                out.setdefault(src, []).append(j.into)
        return out


def available_mappings() -> list[str]:
    return sorted(p.stem for p in (config.mappings_dir() / MAPPINGS).glob("*.yaml"))


def mapping_path(name: str) -> Path:
    return config.mappings_dir() / MAPPINGS / f"{name}.yaml"


def _mapping_exists(name: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9_.-]+", name)) and mapping_path(name).is_file()


def load_mapping(name: str) -> ExtractMapping:
    """Load mappings/extracts/<name>.yaml. Raises ConfigError when it is missing or malformed."""
    path = mapping_path(name)
    if not _mapping_exists(name):
        raise ConfigError(f"{path}: no such extract mapping (available: {', '.join(available_mappings()) or 'none'})")
    data = config.load_yaml(Path(MAPPINGS) / f"{name}.yaml")
    where = str(path)

    def text(value, what: str) -> str:
        if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
            raise ConfigError(f"{where}: {what} must be text, got {value!r}")
        return str(value)

    def canonical(column, what: str) -> str:
        column = text(column, what)
        if column not in CANONICAL_COLUMNS:
            raise ConfigError(f"{where}: {what} {column!r} is not a canonical column")
        return column

    def table(key: str) -> dict:
        value = data.get(key) or {}
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: {key} must be a mapping of canonical column to value")
        return value

    def items(key: str) -> list[dict]:
        value = data.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise ConfigError(f"{where}: {key} must be a list of entries")
        return value

    unknown = set(data) - _MAPPING_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_MAPPING_KEYS)}")
    if not data.get("source"):
        raise ConfigError(f"{where}: 'source' is required (which system and export this file describes)")

    try:
        splits = tuple(
            Split(column=text(e["column"], "split column"), separator=text(e["separator"], "split separator"),
                  into=tuple(canonical(c, "split target") for c in e["into"]))
            for e in items("split")
        )
        joins = tuple(
            Join(columns=tuple(text(c, "join column") for c in e["columns"]),
                 separator=text(e.get("separator", " "), "join separator"), into=canonical(e["into"], "join target"))
            for e in items("join")
        )
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"{where}: split/join entry is missing {exc}") from None
    mapping = ExtractMapping(
        name=name,
        source=text(data["source"], "source"),
        description=str(data.get("description") or ""),
        sheet=text(data["sheet"], "sheet") if data.get("sheet") is not None else None,
        columns={canonical(c, "columns key"): text(s, f"source column of {c}") for c, s in table("columns").items()},
        split=splits,
        join=joins,
        constants={canonical(c, "constants key"): text(v, f"constant for {c}") for c, v in table("constants").items()},
        dates={canonical(c, "dates key"): text(f, f"date format of {c}") for c, f in table("dates").items()},
        values={
            canonical(c, "values key"): {text(k, "value").strip().upper(): text(v, "value") for k, v in m.items()}
            for c, m in table("values").items()
        },
    )
    targets = [*mapping.columns, *(c for s in splits for c in s.into), *(j.into for j in joins), *mapping.constants]
    repeated = sorted({c for c in targets if targets.count(c) > 1})
    if repeated:
        raise ConfigError(f"{where}: canonical column(s) {repeated} are filled by more than one rule")
    return mapping


def read_extract(path: str | Path, mapping: str | None = None) -> pd.DataFrame:
    """Read an extract file; with `mapping`, convert it from that layout first."""
    path = Path(path)
    file = str(path)
    if mapping is not None and not _mapping_exists(mapping):
        raise ExtractError(
            file, f"unknown extract mapping {mapping!r}: {mapping_path(mapping)} does not exist "
            f"(available: {', '.join(available_mappings()) or 'none'})"
        )
    spec = load_mapping(mapping) if mapping is not None else None
    header, columns, numbers, ragged = _read_table(path, sheet=spec.sheet if spec else None)
    raw = _frame(file, header, columns)
    out = _apply(file, raw, spec) if spec else _canonical(file, raw)
    out.insert(len(out.columns), ROW, pd.array(numbers, dtype="int64"))
    out.attrs[RAGGED] = ragged
    return out


# --- reading the three file types into (header, columns, row numbers) ------------------------

def _read_table(path: Path, *, sheet: str | None) -> tuple[list[str], list, list[int], dict[int, tuple[int, int]]]:
    file = str(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ExtractError(
            file, f"unknown file type {path.suffix or '(no suffix)'!r}; an extract is .csv, .xlsx or .parquet")
    if not path.is_file():
        raise ExtractError(file, "file not found")
    if path.stat().st_size == 0:
        raise ExtractError(file, "file is empty")
    if suffix == ".csv" and (table := _plain_csv(path)) is not None:
        return table
    if suffix == ".csv":
        records = _csv_records(path)
    elif suffix == ".xlsx":
        records = _xlsx_records(path, sheet)
    else:
        records = _parquet_records(path)
    if not records or not any(records[0][1]):
        raise ExtractError(file, "no header row: the first row is empty")
    (_, header), body = records[0], records[1:]
    width = len(header)
    body = [(number, values) for number, values in body if any(values)]  # blank lines are not charges
    # A row with more values than the header (and than the file's other rows: some exports end every row
    # with an empty field) has a value split by an unquoted comma; a row with fewer, in a file whose other
    # rows have them all, lost one. Either way its values are out of place, so it is rejected as a whole
    # (read_extract marks it) and none of them is shown. (Exports that drop trailing empty fields have no
    # usual full row: their short rows are read as they are.)
    counts = Counter(len(values) for _, values in body)
    common = max(counts, key=lambda n: (counts[n], n == width)) if body else width  # a tie goes to the header
    usual = max(width, common)
    rows, numbers, ragged = [], [], {}
    for number, values in body:
        if len(values) > usual or (len(values) > width and any(values[width:])) or len(values) < width <= common:
            ragged[number] = (len(values), width)
        values = values[:width]
        rows.append(values + [""] * (width - len(values)))
        numbers.append(number)
    return header, list(zip(*rows)) if rows else [()] * width, numbers, ragged


_BOM = b"\xef\xbb\xbf"


def _plain_csv(path: Path) -> tuple[list[str], list, list[int], dict] | None:
    """A CSV file with no quote, no carriage return outside a CRLF line end, no blank line and every row as wide
    as its header is read by pyarrow (the csv module takes most of a load's time otherwise): each line is then one
    row and its values are the text between the commas, exactly what the csv module reads. None for any other
    file, which _csv_records reads (and refuses, naming the problem)."""
    data = path.read_bytes().removeprefix(_BOM)
    if b'"' in data:
        return None
    if b"\r" in data:
        if data.count(b"\r") != data.count(b"\r\n"):
            return None
        data = data.replace(b"\r\n", b"\n")
    if data.startswith(b"\n") or b"\n\n" in data:
        return None
    end = data.find(b"\n")
    try:
        header = [name.strip() for name in data[:end if end >= 0 else len(data)].decode("utf-8").split(",")]
        names = [str(i) for i in range(len(header))]
        table = pcsv.read_csv(
            pa.py_buffer(data), read_options=pcsv.ReadOptions(column_names=names, skip_rows=1),
            parse_options=pcsv.ParseOptions(quote_char=False),
            convert_options=pcsv.ConvertOptions(column_types=dict.fromkeys(names, pa.large_string()),
                                                strings_can_be_null=False))
    except (UnicodeDecodeError, pa.ArrowInvalid):
        return None  # not UTF-8, or a row of another width
    longest = max((pc.max(pc.binary_length(c)).as_py() or 0 for c in table.columns), default=0)
    if not any(header) or longest > csv.field_size_limit():
        return None
    # utf8_trim_whitespace trims what str.strip() does (tests/test_extract.py checks every code point).
    columns = [pc.utf8_trim_whitespace(c) for c in table.columns]
    numbers = pa.array(range(2, table.num_rows + 2))  # the header is row 1; every line is a row
    blank = pc.equal(pc.binary_length(columns[0]), 0)  # rows empty in every column so far
    for c in columns[1:]:
        if not pc.any(blank).as_py():
            break
        blank = pc.and_(blank, pc.equal(pc.binary_length(c), 0))
    if pc.any(blank).as_py():  # blank rows are not charges
        keep = pc.invert(blank)
        columns, numbers = [pc.filter(c, keep) for c in columns], pc.filter(numbers, keep)
    return header, columns, numbers.to_pylist(), {}


def _csv_records(path: Path) -> list[tuple[int, list[str]]]:
    """Read strictly: a quoted value never closed would take every row after it into itself, and text after
    a closing quote is a value cut in two, so either refuses the file, naming the line the row starts on."""
    file = str(path)
    records: list[tuple[int, list[str]]] = []
    line = 0  # the last line of the last row read
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh, strict=True)
            for n, rec in enumerate(reader, start=1):
                records.append((n, [v.strip() for v in rec]))
                line = reader.line_num
    except UnicodeDecodeError as exc:
        raise ExtractError(
            file, f"not UTF-8 text (undecodable byte at offset {exc.start}); save the CSV as UTF-8") from None
    except csv.Error as exc:
        raise ExtractError(file, f"not a readable CSV file: the row starting on line {line + 1} is malformed "
                           f"({exc}); quote a value holding a quote whole and double its quotes") from None
    return records


def _xlsx_records(path: Path, sheet: str | None) -> list[tuple[int, list[str]]]:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    file = str(path)
    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
        raise ExtractError(file, f"not a readable XLSX workbook ({type(exc).__name__})") from None
    try:
        if sheet is not None and sheet not in book.sheetnames:
            raise ExtractError(file, f"sheet {sheet!r} not found (sheets: {', '.join(book.sheetnames)})")
        ws = book[sheet] if sheet is not None else book.worksheets[0]
        return [(n, [_cell_text(v) for v in row]) for n, row in enumerate(ws.iter_rows(values_only=True), start=1)]
    finally:
        book.close()


def _parquet_records(path: Path) -> list[tuple[int, list[str]]]:
    import pyarrow.parquet as pq

    file = str(path)
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise ExtractError(file, f"not a readable Parquet file ({type(exc).__name__})") from None
    columns = [
        [(v.strip() if v is not None else "") for v in col.to_pylist()]
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type)
        else [_cell_text(v) for v in col.to_pylist()]
        for col in table.columns
    ]
    header = [(1, [str(name).strip() for name in table.column_names])]
    return header + [(i + 2, list(values)) for i, values in enumerate(zip(*columns))]


def _cell_text(value) -> str:
    """A typed cell (XLSX, Parquet) as the text a person would have typed."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
    if isinstance(value, (date, Decimal, int)):
        return str(value)
    return str(value).strip()


# --- header checks and mapping ---------------------------------------------------------------

def _frame(file: str, header: list[str], columns: list) -> pd.DataFrame:
    named = [i for i, name in enumerate(header) if name]  # unnamed columns carry nothing we can map
    names = [header[i] for i in named]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ExtractError(file, f"column {name!r} appears more than once in the header")
        seen.add(name)
    data = {name: pd.Series(columns[i], dtype="str") for name, i in zip(names, named)}
    return pd.DataFrame(data, columns=names)


def _no_header(frame: pd.DataFrame, expected: set[str]) -> bool:
    return not expected & set(frame.columns)


def _no_header_error(file: str, expected: set[str]) -> ExtractError:
    return ExtractError(
        file, "no header row: the first row has none of the expected column names (e.g. "
        f"{', '.join(sorted(expected)[:3])})"
    )


def _canonical(file: str, raw: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    if missing and _no_header(raw, set(CANONICAL_COLUMNS)):
        raise _no_header_error(file, set(CANONICAL_COLUMNS))
    if missing:
        raise ExtractError(file, f"required column(s) missing: {', '.join(missing)}")
    data = {c: raw[c] if c in raw.columns else "" for c in CANONICAL_COLUMNS}
    return pd.DataFrame(data, index=raw.index, dtype="str")


def _apply(file: str, raw: pd.DataFrame, spec: ExtractMapping) -> pd.DataFrame:
    sources = spec.sources()
    absent = sorted(src for src in sources if src not in raw.columns)
    if absent and _no_header(raw, set(sources)):
        raise _no_header_error(file, set(sources))
    if absent:
        named = "; ".join(f"{src!r} (for {', '.join(sources[src])})" for src in absent)
        raise ExtractError(file, f"column(s) named by mapping {spec.name!r} missing: {named}")

    n = len(raw)
    out: dict[str, pd.Series | list[str]] = {}
    for column, src in spec.columns.items():
        out[column] = raw[src]
    for s in spec.split:
        parts = raw[s.column].str.split(s.separator, n=len(s.into) - 1, regex=False)
        for i, column in enumerate(s.into):
            out[column] = [p[i].strip() if i < len(p) else "" for p in parts]
    for j in spec.join:
        out[j.into] = [j.separator.join(v for v in values if v) for values in zip(*(raw[c] for c in j.columns))]
    for column, value in spec.constants.items():
        out[column] = [value] * n
    for column in CANONICAL_COLUMNS:
        if column not in out and column in raw.columns:
            out[column] = raw[column]  # same name in the export: taken as is

    missing = [c for c in REQUIRED_COLUMNS if c not in out]
    if missing:
        raise ExtractError(
            file, f"required column(s) missing after mapping {spec.name!r}: {', '.join(missing)} "
            "(neither mapped nor present under the canonical name)"
        )
    frame = pd.DataFrame({c: out.get(c, [""] * n) for c in CANONICAL_COLUMNS}, index=raw.index, dtype="str")
    for column, table in spec.values.items():
        frame[column] = _map_unique(frame[column], lambda v, t=table: t.get(v.upper(), v))
    for column, fmt in spec.dates.items():
        frame[column] = _map_unique(frame[column], lambda v, f=fmt: _iso_date(v, f))
    return frame


def _map_unique(series: pd.Series, convert) -> pd.Series:
    table = {v: convert(v) for v in series.unique() if v}
    return series.map(lambda v: table.get(v, v)).astype("str")


def _iso_date(value: str, fmt: str) -> str:
    """Convert to ISO; a value that does not match is left as is for row validation to report."""
    try:
        return datetime.strptime(value, fmt).date().isoformat()
    except ValueError:
        return value
