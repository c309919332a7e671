"""CMS NCCI edits: procedure-to-procedure (PTP), medically unlikely (MUE) and add-on code (AOC).

CMS publishes one edit set per program: Medicare NCCI and Medicaid NCCI (cms.gov
ncci-medicaid), each with its own practitioner PTP and MUE files. Which files
are loaded for each program is set in mappings/ncci/sources.yaml, one section
per program (medicare, medicaid) with source, vintage, quarter_start and the
ptp, mue and aoc file lists. A section may say `fallback: medicare` instead of
listing files: the other program's edits are then used and every issue says so
("Medicaid NCCI not loaded: Medicare practitioner edits used"). Each file may be
the shipped subset layout (column1, column2, effective_date, deletion_date, ...;
`unknown` and `*` for missing dates) or a CMS quarterly file as published: CSV,
tab-delimited TXT or XLSX, with copyright/preamble lines before a header row
("Column 1", "Column 2", "*=in existence prior to 1996", "Effective Date",
"Deletion Date *=no data", "Modifier 0=not allowed 1=allowed 9=not applicable",
"PTP Edit Rationale"; or "HCPCS/CPT Code", "Practitioner Services MUE Values",
"MUE Adjudication Indicator", "MUE Rationale"). The header row is found by its
column names; a header split over two rows is joined. Medicaid files use the
same column names; older Medicaid MUE files have no MUE Adjudication Indicator
column: their edits are applied per line (indicator 1, the strictest reading of
a units-per-line value) and the issue says the indicator was not in the file.

How the edits apply to one date of service:
- PTP: both codes billed for the patient on the date by the same rendering
  provider (the one billed in 2310B: for Medicare an assistant's supervising
  therapist, so an OTA's and the OT's lines are compared), edit in effect (effective date <= DOS < deletion date). Indicator
  0: never together -> hold. Indicator 1: hold unless a distinct-service
  modifier (59, XE, XS, XP, XU) is on the column-2 line (on either line for
  Medicare since 2019-07-01). Indicator 9: no edit. 59 is never added here.
- MUE: adjudication indicator 1 = per line; 2 and 3 = units summed per date.
- AOC: an add-on code without one of its primary codes on the date -> hold.
- Currency: a date of service in a later calendar quarter than the loaded
  edit set (quarter_start) gets a warning to drop in the current CMS files.
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

from otedi import config
from otedi.coding.modifiers import ModifierRules, modifier_rules
from otedi.coding.result import CodedLine
from otedi.errors import ConfigError
from otedi.issues import Issue, Severity

SOURCES_FILE = "ncci/sources.yaml"
VINTAGE_RULE = "ncci-vintage"
PROGRAMS = ("medicare", "medicaid")
PROGRAM_NAMES = {"medicare": "Medicare", "medicaid": "Medicaid"}
_CODE = re.compile(r"^[0-9A-Z]\d{3}[0-9A-Z]$")
_MISSING = {"", "*", "unknown", "none", "n/a"}


@dataclass(frozen=True)
class PtpEdit:
    column1: str
    column2: str
    effective: date | None  # None: not recorded (in effect from the start)
    deletion: date | None  # None: still active
    modifier_indicator: str  # 0 not allowed, 1 allowed, 9 not applicable
    rationale: str

    def in_effect(self, day: date) -> bool:
        return (self.effective is None or self.effective <= day) and (self.deletion is None or day < self.deletion)


@dataclass(frozen=True)
class MueEdit:
    code: str
    value: int  # maximum units
    adjudication_indicator: int  # 1 line edit; 2 date-of-service edit (policy); 3 date-of-service edit (clinical)
    rationale: str
    indicator_in_file: bool = True  # False: the file had no MAI column (older Medicaid MUE files); 1 assumed


@dataclass(frozen=True)
class AocEdit:
    addon: str
    primary: str
    effective: date | None
    deletion: date | None

    def in_effect(self, day: date) -> bool:
        return (self.effective is None or self.effective <= day) and (self.deletion is None or day < self.deletion)


@dataclass(frozen=True)
class NcciTables:
    ptp: dict[tuple[str, str], tuple[PtpEdit, ...]]
    mue: dict[str, MueEdit]
    aoc: dict[str, tuple[AocEdit, ...]]  # add-on code -> its primary codes
    vintage: str
    source: str
    program: str = "medicare"  # the program whose edits were asked for
    quarter_start: date | None = None  # first day of the calendar quarter the loaded files are for
    loaded_program: str = "medicare"  # whose files were loaded (differs from program for a fallback)

    @property
    def fallback(self) -> bool:
        return self.loaded_program != self.program

    @property
    def quarter(self) -> str | None:
        return _quarter_label(self.quarter_start) if self.quarter_start else None

    def describe(self, what: str) -> str:
        """The issue source: which program's files, which quarter, where they are configured."""
        loaded = f"CMS {PROGRAM_NAMES.get(self.loaded_program, self.loaded_program)} NCCI {what}"
        text = f"{loaded} ({self.vintage}, mappings/{SOURCES_FILE})"
        if self.fallback:
            name = PROGRAM_NAMES.get(self.program, self.program)
            other = PROGRAM_NAMES.get(self.loaded_program, self.loaded_program)
            text = f"{name} NCCI not loaded: {other} practitioner edits used; {text}"
        return text

    def ptp_edit(self, column1: str, column2: str, day: date) -> PtpEdit | None:
        """The edit in effect for an ordered pair; the strictest when records overlap."""
        live = [e for e in self.ptp.get((column1, column2), ()) if e.in_effect(day)]
        return min(live, key=lambda e: e.modifier_indicator, default=None)


def ncci_tables(program: str = "medicare") -> NcciTables:
    """The edit set for a program (medicare | medicaid) as configured in mappings/ncci/sources.yaml."""
    if program not in PROGRAMS:
        raise ConfigError(f"NCCI program {program!r} is not one of {', '.join(PROGRAMS)}")
    return _tables(str(config.mappings_dir()), program)


def ncci_currency_issue(day: date, program: str = "medicare", *, charge_id: str | None = None) -> Issue | None:
    """A warning when the loaded edit set is for an earlier quarter than the date of service.

    CMS replaces the NCCI files every calendar quarter; edits added or deleted
    since the loaded quarter are not applied to later dates of service.
    """
    tables = ncci_tables(program)
    dos_quarter = _quarter_label(day)
    name = PROGRAM_NAMES.get(program, program)
    source = tables.describe("edit set")
    if tables.quarter_start is None:
        return Issue(
            Severity.WARNING, VINTAGE_RULE,
            f"the {name} NCCI edit set loaded ({tables.vintage}) states no quarter_start, so it cannot be checked "
            f"against the date of service {day} ({dos_quarter}); set quarter_start in mappings/{SOURCES_FILE}",
            source, charge_id=charge_id, value=tables.vintage)
    if tables.quarter_start >= _quarter_start(day):
        return None
    return Issue(
        Severity.WARNING, VINTAGE_RULE,
        f"the {name} NCCI edits loaded are for {tables.quarter} (quarter from {tables.quarter_start}); the date of "
        f"service {day} is in {dos_quarter}: edits CMS added or deleted since {tables.quarter} are not applied - "
        f"drop in the current CMS {name} NCCI files (PTP, MUE, add-on codes) as described in mappings/ncci/README.md",
        source, charge_id=charge_id, value=tables.quarter)


def _quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def _quarter_label(day: date) -> str:
    return f"{day.year}Q{(day.month - 1) // 3 + 1}"


def _rendering_npi(line: CodedLine) -> str:
    """The provider billed as rendering (2310B); for Medicare an assistant's supervising therapist."""
    npi = getattr(line, "rendering_npi", None)
    if not npi:
        rendering = getattr(line, "rendering", None)
        npi = getattr(rendering, "npi", None)
    return npi or line.charge.rendering_npi


# --- edits ---------------------------------------------------------------------------------------

def ptp_issues(lines: Sequence[CodedLine], *, modifier_on_either_column: bool, program: str = "medicare",
               tables: NcciTables | None = None, rules: ModifierRules | None = None) -> list[Issue]:
    """(`tables` and `rules`: the program's edit set and the modifier rules, when the caller has them at hand.)"""
    tables = tables or ncci_tables(program)
    distinct = set((rules or modifier_rules()).distinct_service)
    source = tables.describe("practitioner PTP edits")
    issues = []
    npis = [_rendering_npi(line) for line in lines]
    for a, a_npi in zip(lines, npis):
        for b, b_npi in zip(lines, npis):
            if a is b or a_npi != b_npi or (a.cpt, b.cpt) not in tables.ptp:
                continue
            edit = tables.ptp_edit(a.cpt, b.cpt, b.charge.service_date)
            if edit is None or edit.modifier_indicator == "9":
                continue
            day = b.charge.service_date
            where = (f"NCCI PTP edit {edit.column1}/{edit.column2} ({edit.rationale}) on {day}: "
                     f"{edit.column2} (charge {b.charge.charge_id}) is bundled into {edit.column1} "
                     f"(charge {a.charge.charge_id}) for the same rendering provider")
            if edit.modifier_indicator == "0":
                issues.append(Issue(
                    Severity.HOLD, "ncci-ptp",
                    f"{where}; modifier indicator 0: never billed together, no modifier bypasses it - "
                    f"remove {edit.column2} or correct the coding", source,
                    charge_id=b.charge.charge_id, value=f"{edit.column1}/{edit.column2}"))
                continue
            carriers = set(b.modifiers) | (set(a.modifiers) if modifier_on_either_column else set())
            if carriers & distinct:
                continue
            on = "either code" if modifier_on_either_column else edit.column2
            issues.append(Issue(
                Severity.HOLD, "ncci-ptp",
                f"{where}; modifier indicator 1: if the documentation shows a separate, distinct service "
                f"(separate time block), add 59 or XE/XS/XP/XU to {on}, otherwise remove {edit.column2}",
                source, charge_id=b.charge.charge_id, value=f"{edit.column1}/{edit.column2}"))
    return issues


def mue_issues(lines: Sequence[CodedLine], program: str = "medicare", tables: NcciTables | None = None) -> list[Issue]:
    tables = tables or ncci_tables(program)
    source = tables.describe("practitioner MUE")
    issues = []
    by_code: dict[str, list[CodedLine]] = defaultdict(list)
    for line in lines:
        by_code[line.cpt].append(line)
    for code, group in by_code.items():
        edit = tables.mue.get(code)
        if edit is None:
            continue
        day = group[0].charge.service_date
        if edit.adjudication_indicator == 1:
            over = [(ln, ln.units) for ln in group if ln.units > edit.value]
            what = "on one line"
        else:
            total = sum(ln.units for ln in group)
            over = [(group[0], total)] if total > edit.value else []
            what = "on the date of service"
        indicator = (f"adjudication indicator {edit.adjudication_indicator}" if edit.indicator_in_file else
                     "no adjudication indicator in the file: applied per line")
        for line, units in over:
            issues.append(Issue(
                Severity.HOLD, "mue",
                f"{code} on {day}: {units} units {what} exceed the MUE of {edit.value} "
                f"({indicator}, {edit.rationale}); "
                f"units over the MUE are denied (CARC 151/N362) - check the minutes and units",
                source, charge_id=line.charge.charge_id, column="units", value=str(units)))
    return issues


def aoc_issues(lines: Sequence[CodedLine], program: str = "medicare", tables: NcciTables | None = None) -> list[Issue]:
    tables = tables or ncci_tables(program)
    source = tables.describe("add-on code edits")
    billed = {line.cpt for line in lines}
    issues = []
    for line in lines:
        day = line.charge.service_date
        primaries = sorted({e.primary for e in tables.aoc.get(line.cpt, ()) if e.in_effect(day)})
        if primaries and not billed & set(primaries):
            issues.append(Issue(
                Severity.HOLD, "ncci-aoc",
                f"{line.cpt} on {day} is an add-on code and needs its primary code {' or '.join(primaries)} "
                f"on the same date; add the primary service or correct the code",
                source, charge_id=line.charge.charge_id, column="cpt", value=line.cpt))
    return issues


# --- reading the files ---------------------------------------------------------------------------

PTP_COLUMNS = {  # field -> predicate on a normalised header cell
    "column1": lambda h: h in ("column1", "column 1"),
    "column2": lambda h: h in ("column2", "column 2"),
    "effective": lambda h: "effective" in h,
    "deletion": lambda h: "deletion" in h,
    "modifier": lambda h: h.startswith("modifier"),
    "rationale": lambda h: "rationale" in h,
}
MUE_COLUMNS = {
    "code": lambda h: "hcpcs" in h,
    "value": lambda h: h == "mue value" or "mue values" in h,
    "mai": lambda h: "adjudication" in h,
    "rationale": lambda h: "rationale" in h,
}
AOC_COLUMNS = {
    "addon": lambda h: h in ("addon code", "add-on code", "add on code"),
    "primary": lambda h: h == "primary code",
    "effective": lambda h: h in ("effective year", "aoc edit effective date"),
    "deletion": lambda h: h in ("deletion", "aoc edit deletion date"),
}


def read_ptp(path: Path) -> list[PtpEdit]:
    return [PtpEdit(
        column1=r["column1"], column2=r["column2"],
        effective=_date(r["effective"], path, n), deletion=_date(r["deletion"], path, n),
        modifier_indicator=_indicator(r["modifier"], path, n), rationale=r["rationale"],
    ) for n, r in _records(path, PTP_COLUMNS, ("column1", "column2", "modifier"))]


def read_mue(path: Path) -> list[MueEdit]:
    """MUE records; a file without an adjudication indicator column (older Medicaid MUE files) gets 1 (per line)."""
    out = []
    for n, r, found in _records(path, MUE_COLUMNS, ("code", "value"), with_columns=True):
        if not (r["value"].strip().isascii() and r["value"].strip().isdigit()):
            raise ConfigError(f"{path} row {n}: MUE value {r['value']!r} not understood")
        if "mai" not in found:
            out.append(MueEdit(r["code"], int(r["value"]), 1, r["rationale"], indicator_in_file=False))
            continue
        mai = re.match(r"\s*([123])", r["mai"])
        if not mai:
            raise ConfigError(f"{path} row {n}: MUE adjudication indicator {r['mai']!r} is not 1, 2 or 3")
        out.append(MueEdit(r["code"], int(r["value"]), int(mai.group(1)), r["rationale"]))
    return out


def read_aoc(path: Path) -> list[AocEdit]:
    return [AocEdit(
        addon=r["addon"], primary=r["primary"],
        effective=_date(r["effective"], path, n), deletion=_date(r["deletion"], path, n),
    ) for n, r in _records(path, AOC_COLUMNS, ("addon", "primary"))]


def _records(path: Path, columns: dict, required: tuple[str, ...], *, with_columns: bool = False) -> Iterator[tuple]:
    """Data rows of a CMS-style table as {field: text}, after its header row.

    Lines before the header (title, copyright) are skipped; non-code lines
    between the header and the first data row continue the header; after
    that, lines that do not start with a code (footnotes) are skipped. With
    with_columns, each row also carries the set of fields the header has.
    """
    header: list[str] | None = None
    index: dict[str, int] = {}
    in_data = False
    for n, row in enumerate(_rows(path), start=1):
        cells = [str(c).strip() for c in row]
        if header is None:
            found = _match(cells, columns)
            if all(f in found for f in required):
                header, index = cells, found
            continue
        if not (cells and _CODE.match(cells[0].upper())):
            if not in_data and any(cells):
                header = [f"{h} {c}".strip() for h, c in zip(header, cells + [""] * len(header))]
                index = _match(header, columns) | index
            continue
        in_data = True
        rec = {f: (cells[index[f]] if f in index and index[f] < len(cells) else "") for f in columns}
        for f in ("column1", "column2", "code", "addon", "primary"):
            if f in rec:
                rec[f] = rec[f].upper()
        yield (n, rec, set(index)) if with_columns else (n, rec)
    if header is None:
        raise ConfigError(f"{path}: no header row with columns {', '.join(required)} found")


def _match(cells: list[str], columns: dict) -> dict[str, int]:
    found: dict[str, int] = {}
    for i, cell in enumerate(cells):
        h = re.sub(r"\s+", " ", cell.replace("_", " ").lower()).strip()
        for name, test in columns.items():
            if name not in found and test(h):
                found[name] = i
                break
    return found


def _rows(path: Path) -> Iterator[list]:
    if path.suffix.lower() == ".xlsx":
        from openpyxl import load_workbook
        book = load_workbook(path, read_only=True, data_only=True)
        try:
            for sheet in book.worksheets:
                for row in sheet.iter_rows(values_only=True):
                    yield [_cell(c) for c in row]
        finally:
            book.close()
        return
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as fh:
        for line in fh:
            delimiter = "\t" if "\t" in line else ","
            yield next(csv.reader([line], delimiter=delimiter), [])


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if hasattr(value, "strftime"):
        return value.strftime("%Y%m%d")
    return str(value)


def _date(text: str, path: Path, n: int) -> date | None:
    t = text.strip().lower()
    if t in _MISSING:
        return None
    try:
        if re.fullmatch(r"\d{8}", t):
            return date(int(t[:4]), int(t[4:6]), int(t[6:]))
        if re.fullmatch(r"\d{4}", t):  # add-on file: only the year survived
            return date(int(t), 1, 1)
        return date.fromisoformat(t)
    except ValueError:
        raise ConfigError(f"{path} row {n}: date {text!r} is not YYYYMMDD, YYYY-MM-DD, * or unknown") from None


def _indicator(text: str, path: Path, n: int) -> str:
    t = text.strip()[:1]
    if t not in ("0", "1", "9"):
        raise ConfigError(f"{path} row {n}: modifier indicator {text!r} is not 0, 1 or 9")
    return t


@lru_cache(maxsize=8)
def _tables(root: str, program: str) -> NcciTables:
    d = config.load_yaml(SOURCES_FILE)
    where = config.mappings_dir() / SOURCES_FILE
    if "ptp" in d:  # the single-set layout of earlier versions: the Medicare edits
        d = {"medicare": d}
    section = d.get(program)
    if not isinstance(section, dict):
        raise ConfigError(f"{where}: no {program!r} section (one per program: {', '.join(PROGRAMS)})")
    loaded = section.get("fallback")
    if loaded is not None:
        if loaded == program or loaded not in PROGRAMS or "fallback" in (d.get(loaded) or {}):
            raise ConfigError(f"{where}: {program}.fallback must name another program's section, not {loaded!r}")
        base = _tables(root, loaded)
        return NcciTables(
            ptp=base.ptp, mue=base.mue, aoc=base.aoc,
            vintage=str(section.get("vintage") or f"{base.vintage} ({loaded} fallback)"),
            source=str(section.get("source") or base.source),
            program=program, quarter_start=base.quarter_start, loaded_program=loaded)
    folder = config.mappings_dir() / "ncci"
    try:
        files = {kind: [folder / name for name in section[kind]] for kind in ("ptp", "mue", "aoc")}
        vintage, source = str(section["vintage"]), section["source"]
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"{where}: {program} needs ptp, mue, aoc, vintage, source ({exc!r})")
    for path in (p for paths in files.values() for p in paths):
        if not path.exists():
            raise ConfigError(f"{path}: listed in {SOURCES_FILE} ({program}) but not found")
    ptp: dict[tuple[str, str], list[PtpEdit]] = defaultdict(list)
    for path in files["ptp"]:
        for e in read_ptp(path):
            ptp[(e.column1, e.column2)].append(e)
    mue = {e.code: e for path in files["mue"] for e in read_mue(path)}
    aoc: dict[str, list[AocEdit]] = defaultdict(list)
    for path in files["aoc"]:
        for e in read_aoc(path):
            aoc[e.addon].append(e)
    return NcciTables(
        ptp={k: tuple(v) for k, v in ptp.items()}, mue=mue, aoc={k: tuple(v) for k, v in aoc.items()},
        vintage=vintage, source=source, program=program,
        quarter_start=_loaded_quarter(section.get("quarter_start"), vintage, where, program), loaded_program=program)


def _loaded_quarter(value, vintage: str, where: Path, program: str) -> date | None:
    """quarter_start as the first day of its quarter; without it, the quarter named in the vintage (2024Q3)."""
    if value is None or value == "":
        m = re.search(r"(\d{4})\s*Q([1-4])", vintage, re.I)
        return date(int(m.group(1)), 3 * int(m.group(2)) - 2, 1) if m else None
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value.strip())
        except ValueError:
            raise ConfigError(f"{where}: {program}.quarter_start {value!r} is not a date (YYYY-MM-DD)") from None
    if not isinstance(value, date):
        raise ConfigError(f"{where}: {program}.quarter_start {value!r} is not a date (YYYY-MM-DD)")
    return _quarter_start(value)
