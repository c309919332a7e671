"""Row validation: canonical extract rows -> Charge objects plus reject Issues.

Every row is checked in full, so a biller sees all of a row's problems at
once. A row with any problem is rejected (one Issue per problem) and not
returned as a Charge; the other rows proceed.

How (issue 14: hundreds of thousands of rows a run): each column is checked
once per distinct value (codes, dates, NPIs, a patient's name on all of their
lines repeat) by the column's own rules (_column_rules), and the rules that
read several columns compare the parsed columns as arrays (_suspect). Only
the rows some rule finds a problem with, or warns about, are then checked row
by row (_check, with the same rules), which writes their Issues; every other
row is accepted as parsed. tests/test_validate_differential.py holds what the
row-by-row validator returned before, and checks it stays so.

Messages read `<file> row 14 (charge_id C-8812): <column> <what is wrong and
what to do>`. They name codes and ids but never a patient's or subscriber's
name, birth date, member id or address: for those columns Issue.value is
None and the message describes the problem without repeating the value.

Decisions worth knowing:
- dx_codes: `|` separated, dots removed, upper-cased; a code repeated in the
  same row is kept once. More than 12 codes is a reject (an 837P claim
  carries at most 12 diagnoses in HI).
- place_of_service and relationship given as one digit ("2", "1") are read
  as "02", "01".
- Codes (sex, state, role, cpt, modifiers, ...) are accepted in any case and
  stored upper-cased; patient_zip is stored as digits without the dash.
- A value with a control character (a NUL byte, an escape; tabs and line
  breaks are blanks) is damaged: its column is rejected naming the position
  and checked no further, so the value is never repeated or stored.
- Numbers are bounded by what a line can be: minutes by a day, units and
  the charge amount by a limit no real line reaches (a typing error), so the
  warehouse columns always hold them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from otedi import config
from otedi.charges.extract import RAGGED, ROW
from otedi.charges.record import CANONICAL_COLUMNS, REQUIRED_COLUMNS, Charge
from otedi.coding import codes
from otedi.issues import Issue, Severity
from otedi.progress import Progress, silent

CONTRACT = "docs/charge_extract.md"
NPI_SOURCE = "CMS NPI standard: 10 digits, Luhn check digit over prefix 80840"
ICD_SOURCE = "ICD-10-CM code structure; 837P HI carries at most 12 diagnoses"
POS_SOURCE = "CMS Place of Service code set"
SBR09_SOURCE = "X12 005010X222A1 SBR09 claim filing indicator codes"

# Columns whose values are PHI: never echoed in a message or Issue.value.
PHI_COLUMNS = frozenset({
    "patient_last_name", "patient_first_name", "patient_dob", "patient_address1", "patient_city", "patient_zip",
    "member_id", "subscriber_last_name", "subscriber_first_name", "subscriber_dob",
})

SEX_CODES = ("F", "M", "U")
RELATIONSHIPS = ("18", "01", "19", "G8")
PAYER_SEQUENCES = ("P", "S", "T")
ROLES = ("OT", "OTA", "PT", "PTA", "SLP", "SLPA")
SUBSCRIBER_RULE = "rules/subscriber.yaml"
# 2000B SBR05 insurance type codes for a claim to Medicare when Medicare is not the primary payer.
MSP_TYPES = {
    "12": "working aged, employer group health plan", "13": "end-stage renal disease, employer group health plan",
    "14": "no-fault insurance", "15": "workers' compensation", "16": "public health service or other federal agency",
    "41": "black lung", "42": "veterans affairs", "43": "disabled, large employer group health plan",
    "47": "other liability insurance",
}
MSP_SOURCE = "X12 005010X222A1 2000B SBR05 (required when the destination payer is Medicare and Medicare is not primary)"
QMB_SOURCE = ("SSA §1902(n)(3)(B); CMS MLN SE1128 / MLN6739664 (Prohibition on Balance Billing Qualified Medicare "
              "Beneficiaries)")
MEDICARE_FILING_CODES = ("MA", "MB")
FILING_CODES = frozenset({
    "11", "12", "13", "14", "15", "16", "17", "AM", "BL", "CH", "CI", "DS", "FI", "HM",
    "LM", "MA", "MB", "MC", "OF", "TV", "VA", "WC", "ZZ",
})
# States, DC, territories (AS GU MP PR VI, and the freely associated FM MH PW) and military post codes.
STATES = frozenset(
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY "
    "NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY AS GU MP PR VI FM MH PW AA AE AP".split()
)
POS_CODES = {
    "01": "pharmacy", "02": "telehealth other than in the patient's home", "03": "school",
    "04": "homeless shelter", "05": "IHS free-standing facility", "06": "IHS provider-based facility",
    "07": "tribal 638 free-standing facility", "08": "tribal 638 provider-based facility",
    "09": "prison/correctional facility", "10": "telehealth in the patient's home", "11": "office",
    "12": "home", "13": "assisted living facility", "14": "group home", "15": "mobile unit",
    "16": "temporary lodging", "17": "walk-in retail health clinic", "18": "place of employment/worksite",
    "19": "off-campus outpatient hospital", "20": "urgent care facility", "21": "inpatient hospital",
    "22": "on-campus outpatient hospital", "23": "emergency room", "24": "ambulatory surgical center",
    "25": "birthing center", "26": "military treatment facility", "27": "outreach site/street",
    "31": "skilled nursing facility", "32": "nursing facility", "33": "custodial care facility", "34": "hospice",
    "41": "ambulance (land)", "42": "ambulance (air or water)", "49": "independent clinic",
    "50": "federally qualified health center", "51": "inpatient psychiatric facility",
    "52": "psychiatric facility partial hospitalization", "53": "community mental health center",
    "54": "intermediate care facility/individuals with intellectual disabilities",
    "55": "residential substance abuse treatment facility", "56": "psychiatric residential treatment center",
    "57": "non-residential substance abuse treatment facility", "58": "non-residential opioid treatment facility",
    "60": "mass immunization center", "61": "comprehensive inpatient rehabilitation facility",
    "62": "comprehensive outpatient rehabilitation facility", "65": "end-stage renal disease treatment facility",
    "71": "public health clinic", "72": "rural health clinic", "81": "independent laboratory", "99": "other",
}
MAX_DX = 12
MAX_MODIFIERS = 4
MAX_AGE_YEARS = 120
MAX_MINUTES = 1440  # a day
MAX_UNITS = 999
MAX_CHARGE = Decimal("99999.99")  # per line; 50 lines still fit a claim total
SHOWN_MAX = 255  # the longest value a reject keeps (charge_reject.value); a longer one is only described

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ICD10 = re.compile(r"[A-Z][0-9][0-9A-Z][0-9A-Z]{0,4}")
_MODIFIER = re.compile(r"[0-9A-Z]{2}")
_AMOUNT = re.compile(r"\d+(\.\d{1,2})?")
_ZIP = re.compile(r"\d{5}(-?\d{4})?")
_INT = re.compile(r"\d+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # tab, LF and CR are blanks
_SUBSCRIBER_COLUMNS = ("subscriber_last_name", "subscriber_first_name", "subscriber_dob", "subscriber_sex")

X12_SOURCE = "X12 005010X222A1 element maximum lengths; X12 basic and extended character sets"
# Free text the 837P writer folds to the X12 basic set (x12_text): the TR3 maximum of the element it fills.
TEXT_LIMITS = {
    "patient_last_name": 60, "patient_first_name": 35, "patient_address1": 55, "patient_city": 30,
    "subscriber_last_name": 60, "subscriber_first_name": 35, "payer_name": 60,
    "rendering_last_name": 60, "rendering_first_name": 35, "referring_last_name": 60, "referring_first_name": 35,
}
NAMES_NEEDED = ("patient_last_name", "rendering_last_name", "referring_last_name", "subscriber_last_name",
                "payer_name")  # NM103: must keep a letter or digit once folded to the X12 basic set
# Identifiers are sent as given: the element's maximum and the X12 character set, without our delimiters.
ID_LIMITS = {
    "charge_id": 64, "patient_id": 64, "payer_id": 80, "member_id": 80, "group_number": 50,
    "prior_auth_number": 50,
}
_X12_ID_CLASS = r"[A-Za-z0-9 !\"&'()+,\-./;?=%@\[\]_{}\\|<>#$]"  # basic + extended, no * : ^ ~
_X12_ID_CHARS = re.compile(_X12_ID_CLASS + "*")


def npi_is_valid(npi: str) -> bool:
    """10 digits whose last digit is the Luhn check digit of 80840 + the first nine."""
    if len(npi) != 10 or not (npi.isascii() and npi.isdigit()):
        return False
    total = 0
    for i, ch in enumerate(reversed("80840" + npi)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


class _Row:
    """One row being checked: reads and parses its values, collecting Issues."""

    def __init__(self, values: dict[str, str], number: int, file: str):
        self.values = values
        self.number = number
        self.file = file
        # column -> (1-based position, character) of the first control character in its value
        self.damaged = {c: (m.start() + 1, m.group()) for c, v in values.items() if (m := _CONTROL.search(v))}
        charge_id = values.get("charge_id") or None
        storable = charge_id and "charge_id" not in self.damaged and len(charge_id) <= ID_LIMITS["charge_id"]
        self.charge_id = charge_id if storable else None
        self.issues: list[Issue] = []  # rejects: the row is not loaded
        self.warnings: list[Issue] = []  # the row is loaded; the biller should know

    def reject(self, rule: str, column: str, reason: str, *, source: str = CONTRACT) -> None:
        self.issues.append(self._issue(Severity.REJECT, rule, column, reason, source))

    def warn(self, rule: str, column: str, reason: str, *, source: str = CONTRACT) -> None:
        self.warnings.append(self._issue(Severity.WARNING, rule, column, reason, source))

    def _issue(self, severity: Severity, rule: str, column: str, reason: str, source: str) -> Issue:
        where = f"{self.file} row {self.number}" + (f" (charge_id {self.charge_id})" if self.charge_id else "")
        value = self.values.get(column, "")
        shown = column not in PHI_COLUMNS and column not in self.damaged and len(value) <= SHOWN_MAX
        return Issue(severity=severity, rule=rule, message=f"{where}: {reason}", source=source,
                     charge_id=self.charge_id, row=self.number, column=column, value=value if shown else None)

    def text(self, column: str) -> str | None:
        """The value, or None when it is empty (a reject when required) or damaged (rejected already)."""
        value = self.values.get(column, "")
        if column in self.damaged:
            return None
        if value:
            return value
        if column in REQUIRED_COLUMNS:
            self.reject("extract-required", column, f"{column} is empty; it is required on every charge line")
        return None

    def code(self, column: str, allowed, what: str, *, rule: str, default: str | None = None,
             source: str = CONTRACT) -> str | None:
        value = self.text(column)
        if value is None:
            return default
        value = value.upper()
        if value in allowed:
            return value
        self.reject(rule, column, f"{column} {self.values[column]!r} is not {what}", source=source)
        return None

    def day(self, column: str) -> date | None:
        value = self.text(column)
        if value is None:
            return None
        try:
            if _ISO_DATE.fullmatch(value):
                return date.fromisoformat(value)
        except ValueError:
            pass
        shown = "" if column in PHI_COLUMNS else f" {value!r}"
        self.reject("extract-date", column, f"{column}{shown} is not a valid date; write it as YYYY-MM-DD")
        return None

    def count(self, column: str, rule: str, what: str, *, maximum: int) -> int | None:
        value = self.text(column)
        if value is None:
            return None
        if not (_INT.fullmatch(value) and int(value) > 0):
            self.reject(rule, column, f"{column} {value!r} is not a whole number above 0; {what}")
        elif int(value) > maximum:
            self.reject(rule, column, f"{column} {value!r} is more than {maximum} on one line; check it for a "
                        "typing error")
        else:
            return int(value)
        return None

    def npi(self, column: str) -> str | None:
        value = self.text(column)
        if value is None:
            return None
        if len(value) != 10 or not (value.isascii() and value.isdigit()):
            self.reject("npi-format", column, f"{column} {value!r} is not an NPI: an NPI is exactly 10 digits",
                        source=NPI_SOURCE)
            return None
        if not npi_is_valid(value):
            self.reject("npi-luhn", column, f"{column} {value} fails the NPI check digit, so it is mistyped; "
                        "copy the NPI from the NPPES registry", source=NPI_SOURCE)
            return None
        return value


@dataclass
class Checked:
    """What validation found: the accepted rows as columns and every Issue, in row order."""

    rows: list[int]  # the row number of each accepted row, in file order
    columns: dict[str, list]  # Charge field -> its value on each accepted row (the Charge's types)
    issues: list[Issue]

    def charges(self) -> list[Charge]:
        names = list(self.columns)
        return [Charge(**dict(zip(names, values))) for values in zip(*self.columns.values())]


def validate_rows(frame: pd.DataFrame, *, file: str, today: date | None = None,
                  progress: Progress = silent) -> tuple[list[Charge], list[Issue]]:
    """Check every row of a canonical frame (from read_extract). Returns the good rows as
    Charges and one reject Issue per problem found, plus the warnings of rows that were
    accepted (severity WARNING). `today` bounds the service date (default: the current date); `progress`
    hears of the rows checked (otedi.progress)."""
    checked = check_frame(frame, file=file, today=today, progress=progress)
    return checked.charges(), checked.issues


def check_frame(frame: pd.DataFrame, *, file: str, today: date | None = None,
                progress: Progress = silent) -> Checked:
    """validate_rows, with the accepted rows as columns (what the load stores)."""
    today = today or date.today()
    name = Path(file).name
    total = len(frame)
    progress(STEP, 0, total)
    rules = _column_rules(config.practices(), codes.code_table(), today)
    always_subscriber = _subscriber_rule()
    names = [c for c in frame.columns if c != ROW]  # the order a row's control characters are reported in
    numbers = frame[ROW].to_numpy(dtype="int64") if ROW in frame.columns else np.arange(2, total + 2)
    ragged = frame.attrs.get(RAGGED, {})
    columns = {c: _Column(frame[c], rules.get(c), c, name) for c in names}
    for c in CANONICAL_COLUMNS:
        if c not in columns:  # a column the frame lacks is empty on every row
            columns[c] = _Column(pd.Series([""] * total, dtype="str"), rules[c], c, name)
    is_ragged = np.isin(numbers, np.fromiter(ragged, dtype="int64", count=len(ragged)))
    first_row, repeated = _repeated_ids(columns["charge_id"], numbers, is_ragged)
    suspect = _suspect(columns, names, always_subscriber["filing_codes"]) | repeated | is_ragged

    values = _fields(columns)
    accepted = ~suspect
    issues: list[Issue] = []
    done = total - int(suspect.sum())
    progress(STEP, done, total)
    for i in np.flatnonzero(suspect):
        charge, found = _explain(columns, names, i, int(numbers[i]), ragged, first_row, rules, always_subscriber,
                                 name)
        issues.extend(found)
        if charge is not None:  # accepted with a warning
            accepted[i] = True
            for field, column in values.items():
                column[i] = getattr(charge, field)
        done += 1
        if done % STRIDE == 0:
            progress(STEP, done, total)
    progress(STEP, total, total)
    return Checked(rows=numbers[accepted].tolist(),
                   columns={field: column[accepted].tolist() for field, column in values.items()}, issues=issues)


STEP = "checking rows"
STRIDE = 500  # rows explained one by one between two progress reports
CHARGE_FIELDS = tuple(f.name for f in fields(Charge))
_CHARGE_ID = re.compile(f"{_X12_ID_CLASS}{{1,{ID_LIMITS['charge_id']}}}")  # what passes all charge_id's rules


class _Column:
    """One column, checked once per distinct value by the column's own rules (the ones that read no other
    column): `values` are its distinct values, stripped, and `index` gives each row's."""

    def __init__(self, series: pd.Series, rule, column: str, file: str):
        index, distinct = _distinct(series)
        self.values = [v.strip() if isinstance(v, str) else "" for v in distinct] + [""]  # a missing value is ""
        self.index = np.where(index < 0, len(self.values) - 1, index)
        if column == "charge_id":  # a distinct value on nearly every row: one pattern, not a _Row each
            self.ok = [_CHARGE_ID.fullmatch(v) is not None for v in self.values]
            self.sound = [ok or not _CONTROL.search(v) for v, ok in zip(self.values, self.ok)]
            self.parsed = list(self.values)
            return
        self.parsed, self.sound, self.ok = [], [], []
        for value in self.values:
            row = _Row({column: value}, 0, file)
            self.parsed.append(rule(row) if rule else None)
            _x12_check(row, column)
            self.sound.append(not row.damaged)
            self.ok.append(not (row.damaged or row.issues or row.warnings))

    def rows(self, per_value: list, dtype=object) -> np.ndarray:
        """A list over the distinct values, on every row."""
        return (_objects(per_value) if dtype is object else np.asarray(per_value, dtype=dtype))[self.index]

    def flags(self, per_value) -> np.ndarray:
        return self.rows(list(per_value), bool)

    def days(self) -> np.ndarray:
        """The parsed date as a day number on every row, -1 where there is none."""
        return self.rows([d.toordinal() if d else -1 for d in self.parsed], "int64")

    def years(self) -> np.ndarray:
        return self.rows([d.year if d else 0 for d in self.parsed], "int64")

    def empty(self) -> np.ndarray:
        return self.flags(v == "" for v in self.values)

    def is_in(self, allowed) -> np.ndarray:
        return self.flags(p in allowed for p in self.parsed)


def _distinct(series: pd.Series) -> tuple[np.ndarray, list]:
    """The column's distinct values, and each row's index into them (-1 where the value is missing)."""
    if isinstance(series.array, pd.arrays.ArrowStringArray):  # what read_extract gives: encoded by pyarrow
        array = pa.array(series.array)  # chunked as the file was read
        encoded = pc.dictionary_encode(array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array)
        return encoded.indices.fill_null(-1).to_numpy(), encoded.dictionary.to_pylist()
    index, distinct = pd.factorize(series, use_na_sentinel=True)
    return index, list(distinct)


def _objects(values: list) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):  # one by one: a tuple (dx_codes, modifiers) stays one value
        out[i] = v
    return out


def _repeated_ids(ids: _Column, numbers: np.ndarray, is_ragged: np.ndarray) -> tuple[dict[str, int], np.ndarray]:
    """The charge_ids on more than one row -> the first of those rows, and the rows after it. A row out of place
    does not count (its charge_id is not read), nor an id that is not stored (_Row.charge_id)."""
    storable = [bool(v) and s and len(v) <= ID_LIMITS["charge_id"] for v, s in zip(ids.values, ids.sound)]
    counted = np.flatnonzero(ids.rows(storable, bool) & ~is_ragged)
    same: dict[str, int] = {}  # stripped: "C-1 " is C-1
    keys = pd.Series(ids.rows([same.setdefault(v, len(same)) for v in ids.values], "int64")[counted])
    later = np.zeros(len(numbers), dtype=bool)
    later[counted[keys.duplicated(keep="first").to_numpy()]] = True
    repeated = keys.duplicated(keep=False).to_numpy()
    first: dict[str, int] = {}
    for i, number in zip(counted[repeated], numbers[counted[repeated]]):
        first.setdefault(ids.values[ids.index[i]], int(number))
    return first, later


def _suspect(columns: dict[str, _Column], names: list[str], always_subscriber: frozenset[str]) -> np.ndarray:
    """Rows some rule may find a problem with or warn about; the others are accepted as they are. The column
    rules were applied per distinct value; here are the rules that read several columns, as _check applies
    them row by row."""
    c = columns
    suspect = np.zeros(len(c["charge_id"].index), dtype=bool)
    for column in names:  # the subscriber's birth date and sex are checked only when the patient is not the subscriber
        column_ok = c[column].sound if column in ("subscriber_dob", "subscriber_sex") else c[column].ok
        suspect |= ~c[column].rows(column_ok, bool)
    served = c["service_date"].days()

    def after(later: np.ndarray, earlier: np.ndarray) -> np.ndarray:
        return (later >= 0) & (earlier >= 0) & (later > earlier)

    def bad_birth(column: str) -> np.ndarray:  # _check_dob
        born = c[column].days()
        return after(born, served) | ((born >= 0) & (served >= 0) &
                                      (c["service_date"].years() - c[column].years() > MAX_AGE_YEARS))

    suspect |= bad_birth("patient_dob") | after(c["initial_treatment_date"].days(), served)
    suspect |= after(c["plan_of_care_start"].days(), c["plan_of_care_certified_through"].days())
    suspect |= after(c["progress_report_date"].days(), served)

    filing = c["claim_filing_code"]
    not_self = ~c["relationship"].is_in(("18",))
    suspect |= not_self & filing.is_in(always_subscriber)  # warned: the patient is the subscriber
    subscriber = ~c["subscriber_dob"].flags(c["subscriber_dob"].ok) | ~c["subscriber_sex"].flags(c["subscriber_sex"].ok)
    subscriber |= bad_birth("subscriber_dob")
    for column in _SUBSCRIBER_COLUMNS:
        subscriber |= c[column].empty()
    suspect |= not_self & subscriber
    suspect |= filing.is_in(MEDICARE_FILING_CODES) & c["payer_sequence"].is_in(("S", "T")) & c["msp_type"].empty()

    supervising = c["supervising_npi"]
    supervised = supervising.flags(npi is not None for npi in supervising.parsed)
    suspect |= supervised & c["supervising_last_name"].empty()
    suspect |= supervised & (supervising.rows(supervising.parsed) == c["rendering_npi"].rows(c["rendering_npi"].parsed))

    cpt = c["cpt"]
    infos = [info for _, info in cpt.parsed]
    until = cpt.rows([i.effective_to.toordinal() if i and i.effective_to else date.max.toordinal() for i in infos],
                     "int64")
    since = cpt.rows([i.effective_from.toordinal() if i else 0 for i in infos], "int64")
    suspect |= (served >= 0) & ((served > until) | (served < since))
    suspect |= cpt.flags(bool(i and i.timed) for i in infos) & c["minutes"].empty()
    return suspect


def _fields(columns: dict[str, _Column]) -> dict[str, np.ndarray]:
    """Each Charge field on every row, as the row's Charge has it when the row is accepted."""
    out = {}
    for field in CHARGE_FIELDS:
        col = columns[field]
        out[field] = col.rows([cpt for cpt, _ in col.parsed] if field == "cpt" else col.parsed)
    not_self = out["relationship"] != "18"
    for column in _SUBSCRIBER_COLUMNS:  # the patient is the subscriber: the subscriber_* values are not used
        out[column] = np.where(not_self, out[column], None)
    return out


def _explain(columns: dict[str, _Column], names: list[str], i: int, number: int, ragged: dict,
             first_row: dict[str, int], rules: dict, subscriber_rule: dict,
             file: str) -> tuple[Charge | None, list[Issue]]:
    """Row i checked on its own: its Charge (None when it is rejected) and its Issues."""
    row = _Row({c: columns[c].values[columns[c].index[i]] for c in names}, number, file)
    if (shape := ragged.get(number)) is not None:
        # Values out of place: checking them would repeat a ZIP or member id under another column's name.
        count, width = shape
        cause = ("more than the header's columns: a value holds an unquoted comma; quote it" if count > width
                 else "fewer than the header's columns: a value is missing, so the ones after it are under "
                 "the wrong columns; correct the row")
        row.reject("row-shape", "charge_id", f"row has {count} values, {cause} and export again (none of this "
                   "row's values is shown)")
        return None, row.issues
    charge = _check(row, rules, subscriber_rule)
    if row.charge_id and first_row.get(row.charge_id, number) != number:
        row.reject("charge-id-duplicate", "charge_id",
                   f"charge_id {row.charge_id} already appears on row {first_row[row.charge_id]} of this "
                   "file; each charge line needs its own charge_id, so this row is not billed")
    if row.issues:
        return None, row.issues
    return charge, row.warnings


# The free-text columns that only need a value.
FREE_TEXT = ("patient_id", "patient_last_name", "patient_first_name", "patient_address1", "patient_city",
             "payer_id", "payer_name", "member_id", "rendering_last_name", "rendering_first_name",
             "referring_last_name", "referring_first_name")


def _column_rules(practices: dict, table: dict[str, codes.CodeInfo], today: date) -> dict[str, Callable]:
    """Each column's own rules, the ones that read no other column: column -> rule(row), which rejects on the
    row and returns the parsed value. _check applies them row by row, check_frame once per distinct value."""

    def practice(row: _Row) -> str | None:
        practice_id = row.text("practice_id")
        if practice_id is not None and practice_id not in practices:
            row.reject("practice-unknown", "practice_id",
                       f"practice_id {practice_id!r} is not configured in mappings/practices.yaml "
                       f"(configured: {', '.join(sorted(practices))})")
        return practice_id

    def service_date(row: _Row) -> date | None:
        served = row.day("service_date")
        if served is not None and served > today:
            row.reject("service-date-future", "service_date",
                       f"service_date {served} is after today ({today}); a service is billed after it is given")
        return served

    def supervising_name(column: str, limit: int):  # NM103 / NM104
        def rule(row: _Row) -> str | None:
            if len(row.values.get(column) or "") > limit:
                row.reject("field-length", column, f"{column} is longer than {limit} characters (837P 2310B maximum)")
            return row.values.get(column) or None
        return rule

    def text(column: str):
        return lambda row: row.text(column)

    def day(column: str):
        return lambda row: row.day(column)

    def npi(column: str):
        return lambda row: row.npi(column)

    def given(column: str):  # used as given when the patient is not the subscriber
        return lambda row: row.values.get(column) or None

    def sex(column: str):
        return lambda row: row.code(column, SEX_CODES, "F, M or U", rule="sex-code")

    return {
        "charge_id": text("charge_id"), "practice_id": practice, "service_date": service_date,
        **{column: text(column) for column in (*FREE_TEXT, "group_number", "prior_auth_number")},
        **{column: day(column) for column in ("patient_dob", "initial_treatment_date", "plan_of_care_start",
                                              "plan_of_care_signed_date", "plan_of_care_certified_through",
                                              "progress_report_date", "subscriber_dob")},
        "patient_sex": sex("patient_sex"), "subscriber_sex": sex("subscriber_sex"),
        "patient_state": lambda row: row.code("patient_state", STATES, "a US state or territory code (e.g. OH)",
                                              rule="state-code"),
        "patient_zip": _zip,
        "claim_filing_code": lambda row: row.code(
            "claim_filing_code", FILING_CODES, "a claim filing code (SBR09: MB Medicare Part B, MC Medicaid, "
            "CI commercial, BL BCBS, HM HMO, 16 Medicare Advantage HMO, ...)", rule="filing-code",
            source=SBR09_SOURCE),
        "payer_sequence": lambda row: row.code("payer_sequence", PAYER_SEQUENCES,
                                               "P, S or T (primary, secondary, tertiary)", rule="payer-sequence",
                                               default="P"),
        "relationship": _relationship_code,
        "subscriber_last_name": given("subscriber_last_name"), "subscriber_first_name": given("subscriber_first_name"),
        "msp_type": _msp_code,
        "qmb": lambda row: row.code(
            "qmb", ("Y", "N"), "Y or N (Y: the patient is a Qualified Medicare Beneficiary, QMB or QMB Plus, on "
            "this date of service, as the Medicaid eligibility response says; empty is N)", rule="qmb-flag",
            default="N", source=QMB_SOURCE) or "N",
        "rendering_npi": npi("rendering_npi"), "supervising_npi": npi("supervising_npi"),
        "referring_npi": npi("referring_npi"),
        "rendering_role": lambda row: row.code("rendering_role", ROLES, "a rendering role: OT, OTA, PT, PTA, SLP or "
                                               "SLPA", rule="rendering-role"),
        "supervising_last_name": supervising_name("supervising_last_name", 60),
        "supervising_first_name": supervising_name("supervising_first_name", 35),
        "place_of_service": _place_of_service,
        "cpt": lambda row: _cpt_code(row, table),
        "modifiers": _modifiers,
        "minutes": lambda row: row.count("minutes", "minutes-invalid", "minutes are the treatment minutes for this "
                                         "code", maximum=MAX_MINUTES),
        "units": lambda row: row.count("units", "units-invalid", "leave it empty to compute units from minutes",
                                       maximum=MAX_UNITS),
        "charge_amount": _amount,
        "dx_codes": _dx_codes,
    }


def _check(row: _Row, rules: dict[str, Callable], subscriber_rule: dict) -> Charge | None:
    """Parse and check one row; returns the Charge when no Issue was raised. `subscriber_rule`: _subscriber_rule()."""
    def rule(column: str):
        return rules[column](row)

    for column, (position, character) in row.damaged.items():
        row.reject("control-character", column, f"{column} has a control character (U+{ord(character):04X}) at "
                   f"position {position}: the value is damaged; correct it in the EHR and export again")
    charge_id = rule("charge_id")
    practice_id = rule("practice_id")
    service_date = rule("service_date")
    patient_dob = rule("patient_dob")
    _check_dob(row, "patient_dob", patient_dob, service_date)
    initial_treatment_date = rule("initial_treatment_date")
    if initial_treatment_date and service_date and initial_treatment_date > service_date:
        row.reject("extract-date", "initial_treatment_date",
                   f"initial_treatment_date {initial_treatment_date} is after service_date {service_date}; "
                   "it is the first day of this episode of therapy")
    plan = _plan_of_care(row, rules, service_date)

    patient_sex = rule("patient_sex")
    patient_state = rule("patient_state")
    patient_zip = rule("patient_zip")
    filing = rule("claim_filing_code")
    sequence = rule("payer_sequence")
    relationship = _relationship(row, rules, subscriber_rule, filing)
    subscriber = _subscriber(row, rules, relationship, service_date)
    msp_type = _msp_type(row, rules, filing, sequence)
    qmb = rule("qmb")

    rendering_npi = rule("rendering_npi")
    role = rule("rendering_role")
    supervising = _supervising(row, rules, rendering_npi)
    referring_npi = rule("referring_npi")
    pos = rule("place_of_service")

    cpt, info = _cpt_in_effect(row, *rule("cpt"), service_date)
    modifiers = rule("modifiers")
    minutes = rule("minutes")
    if info is not None and info.timed and minutes is None and not row.values.get("minutes"):
        row.reject("minutes-required", "minutes",
                   f"minutes is empty; cpt {cpt} is a timed code ({info.unit_minutes}-minute units), "
                   "so the treatment minutes are needed to bill its units")
    units = rule("units")
    amount = rule("charge_amount")
    dx = rule("dx_codes")
    text = {column: rule(column) for column in FREE_TEXT}

    for column in (*TEXT_LIMITS, *ID_LIMITS):
        _x12_check(row, column)
    if row.issues:
        return None
    return Charge(
        charge_id=charge_id, practice_id=practice_id, service_date=service_date, patient_dob=patient_dob,
        patient_sex=patient_sex, patient_state=patient_state, patient_zip=patient_zip, claim_filing_code=filing,
        rendering_npi=rendering_npi, rendering_role=role, referring_npi=referring_npi, place_of_service=pos,
        cpt=cpt, charge_amount=amount, dx_codes=dx, payer_sequence=sequence, group_number=rule("group_number"),
        relationship=relationship, modifiers=modifiers, minutes=minutes, units=units,
        prior_auth_number=rule("prior_auth_number"), initial_treatment_date=initial_treatment_date,
        msp_type=msp_type, qmb=qmb, **text, **plan, **supervising, **subscriber,
    )


def _x12_check(row: _Row, column: str) -> None:
    """What the 837P cannot carry is rejected here, with the column, not discovered by the writer (which
    would stop a whole practice's file). Values of PHI columns are never repeated in the message."""
    from otedi.x12.x837p import x12_text  # the same folding the writer applies

    if column in row.damaged:
        return
    value = row.values.get(column) or ""
    if column in TEXT_LIMITS:
        limit = TEXT_LIMITS[column]
        if len(value) > limit:
            row.reject("field-length", column, f"{column} has {len(value)} characters; the 837P element holds "
                       f"{limit} - shorten it in the EHR", source=X12_SOURCE)
        elif value and column in NAMES_NEEDED and not x12_text(value):
            row.reject("x12-characters", column, f"{column} has no letter or digit of the X12 character set "
                       "(A-Z, 0-9) once accents are folded; enter the name in Latin letters", source=X12_SOURCE)
    elif column in ID_LIMITS:
        limit = ID_LIMITS[column]
        if len(value) > limit:
            row.reject("field-length", column, f"{column} has {len(value)} characters; at most {limit} are "
                       "allowed", source=X12_SOURCE)
        elif not _X12_ID_CHARS.fullmatch(value):
            bad = next(i for i, ch in enumerate(value, 1) if not _X12_ID_CHARS.fullmatch(ch))
            row.reject("x12-characters", column, f"{column} has a character at position {bad} that X12 cannot "
                       "carry (a delimiter * : ^ ~, a control character or a letter outside A-Z); correct the id",
                       source=X12_SOURCE)


def _check_dob(row: _Row, column: str, dob: date | None, service_date: date | None) -> None:
    if dob is None or service_date is None:
        return
    if dob > service_date:
        row.reject("extract-date", column, f"{column} is after service_date {service_date}; check the birth date")
    elif service_date.year - dob.year > MAX_AGE_YEARS:
        row.reject("extract-date", column,
                   f"{column} is more than {MAX_AGE_YEARS} years before service_date; check the birth date")


def _zip(row: _Row) -> str | None:
    value = row.text("patient_zip")
    if value is None:
        return None
    if _ZIP.fullmatch(value):
        return value.replace("-", "")
    row.reject("zip-format", "patient_zip",
               f"patient_zip is not a ZIP code ({len(value)} characters); write 5 digits or ZIP+4 (12345-6789)")
    return None


def _relationship_code(row: _Row) -> str:
    value = row.values.get("relationship", "")
    if len(value) == 1 and value.isascii() and value.isdigit():
        row.values["relationship"] = value = "0" + value
    return row.code("relationship", RELATIONSHIPS, "a relationship code: 18 self, 01 spouse, 19 child, G8 other",
                    rule="relationship-code", default="18") or "18"


def _relationship(row: _Row, rules: dict[str, Callable], rule: dict, filing: str | None) -> str:
    relationship = rules["relationship"](row)
    if relationship != "18" and filing in rule["filing_codes"]:
        row.warn("patient-is-subscriber", "relationship",
                 f"relationship {relationship} with claim filing code {filing}: a Medicare or Medicaid "
                 "beneficiary has a member id of their own and is always the subscriber, so the claim is billed "
                 "with the patient as subscriber (no 2000C loop) and the subscriber_* columns are not used; "
                 "correct the relationship in the EHR", source=rule["source"])
        return "18"
    return relationship


@lru_cache(maxsize=4)
def _subscriber_rule_for(root: str) -> dict:
    data = config.load_yaml(SUBSCRIBER_RULE)
    return {"filing_codes": frozenset(str(c) for c in data["filing_codes"]), "source": data["source"]}


def _subscriber_rule() -> dict:
    return _subscriber_rule_for(str(config.mappings_dir()))


def patient_always_subscriber(claim_filing_code: str) -> bool:
    """Medicare and Medicaid beneficiaries are their own subscribers (rules/subscriber.yaml)."""
    return claim_filing_code in _subscriber_rule()["filing_codes"]


def _msp_code(row: _Row) -> str | None:
    value = row.values.get("msp_type", "")
    if value and value not in MSP_TYPES:
        row.reject("msp-type", "msp_type", f"msp_type {value!r} is not a Medicare secondary payer insurance type "
                   f"code ({', '.join(f'{k} {v}' for k, v in MSP_TYPES.items())})", source=MSP_SOURCE)
        return None
    return value or None


def _msp_type(row: _Row, rules: dict[str, Callable], filing: str | None, sequence: str | None) -> str | None:
    msp_type = rules["msp_type"](row)
    if filing in MEDICARE_FILING_CODES and sequence in ("S", "T") and not row.values.get("msp_type"):
        row.reject("msp-type-required", "msp_type",
                   f"msp_type is empty; Medicare is the {'secondary' if sequence == 'S' else 'tertiary'} payer on "
                   "this row, so the claim must say why Medicare is not primary (SBR05: 12 working aged, 13 ESRD, "
                   "14 no-fault, 15 workers' compensation, 16 federal, 41 black lung, 42 VA, 43 disabled, "
                   "47 other liability) - take it from the MSP questionnaire", source=MSP_SOURCE)
    return msp_type


def _supervising(row: _Row, rules: dict[str, Callable], rendering_npi: str | None) -> dict:
    """The supervising therapist: optional here; whether a payer needs one is a coding rule."""
    npi = rules["supervising_npi"](row)
    if npi and not row.values.get("supervising_last_name"):
        row.reject("supervising-name", "supervising_last_name",
                   "supervising_last_name is empty; it is required with supervising_npi (2310B NM103)")
    last, first = rules["supervising_last_name"](row), rules["supervising_first_name"](row)
    if npi and npi == rendering_npi:
        row.reject("supervising-self", "supervising_npi",
                   f"supervising_npi {npi} is the rendering provider's own NPI; name the supervising therapist")
    return {"supervising_npi": npi, "supervising_last_name": last, "supervising_first_name": first}


def _plan_of_care(row: _Row, rules: dict[str, Callable], service_date: date | None) -> dict:
    start, signed, through, report = (rules[c](row) for c in ("plan_of_care_start", "plan_of_care_signed_date",
                                                              "plan_of_care_certified_through",
                                                              "progress_report_date"))
    if start and through and through < start:
        row.reject("extract-date", "plan_of_care_certified_through",
                   f"plan_of_care_certified_through {through} is before plan_of_care_start {start}")
    if report and service_date and report > service_date:
        row.reject("extract-date", "progress_report_date",
                   f"progress_report_date {report} is after service_date {service_date}; give the latest "
                   "progress report written on or before this visit")
    return {"plan_of_care_start": start, "plan_of_care_signed_date": signed,
            "plan_of_care_certified_through": through, "progress_report_date": report}


def _subscriber(row: _Row, rules: dict[str, Callable], relationship: str, service_date: date | None) -> dict:
    """The subscriber_* fields: required when the patient is not the subscriber."""
    if relationship == "18":
        return {}  # the patient is the subscriber; any subscriber_* values are redundant
    for column in _SUBSCRIBER_COLUMNS:
        if not row.values.get(column):
            row.reject("subscriber-required", column,
                       f"{column} is empty; it is required when relationship is {relationship} "
                       "(the patient is not the subscriber)")
    dob = rules["subscriber_dob"](row)
    _check_dob(row, "subscriber_dob", dob, service_date)
    sex = rules["subscriber_sex"](row)
    return {
        "subscriber_last_name": rules["subscriber_last_name"](row),
        "subscriber_first_name": rules["subscriber_first_name"](row),
        "subscriber_dob": dob,
        "subscriber_sex": sex,
    }


def _place_of_service(row: _Row) -> str | None:
    value = row.values.get("place_of_service", "")
    if len(value) == 1 and value.isascii() and value.isdigit():
        row.values["place_of_service"] = value = "0" + value
    return row.code("place_of_service", POS_CODES, "a CMS place-of-service code (11 office, 12 home, "
                    "02/10 telehealth, 22 outpatient hospital, ...)", rule="pos-code", source=POS_SOURCE)


def _cpt_code(row: _Row, table: dict[str, codes.CodeInfo]) -> tuple[str | None, codes.CodeInfo | None]:
    value = row.text("cpt")
    if value is None:
        return None, None
    cpt = value.upper()
    info = table.get(cpt)
    if info is None:
        row.reject("cpt-unknown", "cpt", f"cpt {value} is not in the OT code table (mappings/codes/ot_codes.csv); "
                   "check the code, or add it to the table with its source if it is a new OT code")
        return None, None
    return cpt, info


def _cpt_in_effect(row: _Row, cpt: str | None, info: codes.CodeInfo | None,
                   service_date: date | None) -> tuple[str | None, codes.CodeInfo | None]:
    if info is None:
        return None, None
    if service_date is not None and info.effective_to is not None and service_date > info.effective_to:
        deleted = info.effective_to + timedelta(days=1)
        instead = f"bill {info.replaced_by}" if info.replaced_by else "it has no replacement code"
        row.reject("cpt-deleted", "cpt", f"cpt {cpt} was deleted on {deleted}; {instead}", source=info.source)
        return None, None
    if service_date is not None and service_date < info.effective_from:
        row.reject("cpt-not-yet-valid", "cpt", f"cpt {cpt} took effect on {info.effective_from}, after "
                   f"service_date {service_date}; check the code or the date", source=info.source)
        return None, None
    return cpt, info


def _modifiers(row: _Row) -> tuple[str, ...]:
    value = row.values.get("modifiers", "")
    found = tuple(m.upper() for m in re.split(r"[:\s]+", value) if m)
    bad = [m for m in found if not _MODIFIER.fullmatch(m)]
    if bad:
        row.reject("modifier-format", "modifiers", f"modifiers {value!r}: {', '.join(repr(m) for m in bad)} "
                   "is not a modifier; a modifier is 2 letters or digits, separated by ':' or spaces")
    elif len(found) > MAX_MODIFIERS:
        row.reject("modifier-count", "modifiers", f"modifiers {value!r} has {len(found)} modifiers; "
                   f"a service line carries at most {MAX_MODIFIERS}")
    return found


def _amount(row: _Row) -> Decimal | None:
    value = row.text("charge_amount")
    if value is None:
        return None
    try:
        amount = Decimal(value) if _AMOUNT.fullmatch(value) else None
    except InvalidOperation:
        amount = None
    if amount is None or amount <= 0:
        row.reject("charge-amount", "charge_amount", f"charge_amount {value!r} is not an amount above 0 with at "
                   "most 2 decimal places; write digits only, e.g. 130.00")
        return None
    if amount > MAX_CHARGE:
        row.reject("charge-amount", "charge_amount", f"charge_amount {value!r} is more than {MAX_CHARGE} for one "
                   "line; check it for a typing error")
        return None
    return amount


def _dx_codes(row: _Row) -> tuple[str, ...]:
    value = row.text("dx_codes")
    if value is None:
        return ()
    found: list[str] = []
    for raw in value.split("|"):
        code = raw.strip().replace(".", "").upper()
        if not code:
            continue
        if not _ICD10.fullmatch(code):
            hint = "; separate codes with '|'" if re.search(r"[,;\s]", raw.strip()) else ""
            row.reject("icd10-shape", "dx_codes", f"dx_codes {raw.strip()!r} is not an ICD-10-CM code (a letter, "
                       f"a digit, then 1 to 5 letters or digits, e.g. M62.81){hint}", source=ICD_SOURCE)
        elif code not in found:
            found.append(code)
    if not found and not any(i.column == "dx_codes" for i in row.issues):
        row.reject("extract-required", "dx_codes", "dx_codes has no diagnosis code; at least one is required")
    if len(found) > MAX_DX:
        row.reject("icd10-count", "dx_codes", f"dx_codes has {len(found)} diagnosis codes; a claim carries at "
                   f"most {MAX_DX}: keep the {MAX_DX} most relevant", source=ICD_SOURCE)
    return tuple(found)
