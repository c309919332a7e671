"""Settings from the environment, otedi's packaged data, and configuration from mappings/.

Environment (all optional; the defaults run everything on one machine):
  OTEDI_HOME          working folder for the SQLite warehouse, drop and archive (default ./var)
  OTEDI_DATABASE_URL  SQLAlchemy URL of the warehouse (default sqlite:///$OTEDI_HOME/otedi.db)
  OTEDI_MAPPINGS      folder of rule and configuration data (default: the mappings/ otedi ships, see data_path)

Packaged data. The repository keeps `mappings/`, `sample_edi/` and `docs/` at its top; `otedi/_data/` holds a
relative symlink to each, and pyproject.toml's package data copies what they point at into the wheel, as
`otedi/_data/...`. So `data_path()` finds them through importlib.resources in every kind of install: in a
source checkout or an editable install through the symlinks, in a wheel, `pip install .` or the Docker
image as real files in site-packages. It is the one way in: nothing reads the repository's folders by path.

Configuration files (practices.yaml, clearinghouses.yaml; payers/*.yaml in otedi.coding.payers) are checked
with pydantic models (`validated`): an unknown key, a wrong type, a missing key or a value not allowed is a
ConfigError of one line naming the file, the entry, the key and what is allowed.
"""

from __future__ import annotations

import difflib
import os
import re
import warnings
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from otedi.errors import ConfigError

DATA_PACKAGE = "otedi"
DATA_FOLDER = "_data"  # otedi/_data: mappings/, sample_edi/, docs/ (symlinks in the repository, files in a wheel)
SAMPLE_EXTRACT = ("sample_edi", "charges_sample.csv")
CONTRACT = ("docs", "charge_extract.md")


def home() -> Path:
    return Path(os.environ.get("OTEDI_HOME", "var")).resolve()


def drop_url() -> str:
    """The clearinghouse drop of the CLI and the DAGs: OTEDI_DROP_URL (file:///abs/path or sftp://...), else the
    local folder file://$OTEDI_HOME/drop. (An Airflow connection, OTEDI_SFTP_CONN_ID, wins in the DAGs.)"""
    return os.environ.get("OTEDI_DROP_URL") or f"file://{home() / 'drop'}"


def database_url() -> str:
    url = os.environ.get("OTEDI_DATABASE_URL")
    if url:
        return url
    return f"sqlite:///{home() / 'otedi.db'}"


# --- packaged data -------------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _data_root() -> Path:
    root = resources.files(DATA_PACKAGE) / DATA_FOLDER
    if not isinstance(root, Path):  # a zip import: pip always installs unzipped
        raise ConfigError(f"otedi's packaged data ({root}) is not on the file system; install otedi with pip "
                          "(not as a zip), or set OTEDI_MAPPINGS to a mappings folder")
    if not (root / "mappings").is_dir():
        raise ConfigError(f"{root}: otedi's packaged data has no mappings/ (a broken install or a checkout "
                          "without its symlinks); reinstall otedi, or set OTEDI_MAPPINGS to a mappings folder")
    return root


@lru_cache(maxsize=64)
def data_path(*parts: str) -> Path:
    """A file or folder otedi ships (`data_path("mappings")`, `data_path(*SAMPLE_EXTRACT)`): the one function
    that reaches the repository's mappings/, sample_edi/ and docs/, the same in every kind of install."""
    return _resolved(str(_data_root().joinpath(*parts)))


def sample_extract() -> Path:
    """The sample charge extract (sample_edi/charges_sample.csv) `otedi run` bills by default."""
    return data_path(*SAMPLE_EXTRACT)


def contract_path() -> Path:
    """The canonical charge extract contract (docs/charge_extract.md)."""
    return data_path(*CONTRACT)


def mappings_dir() -> Path:
    """OTEDI_MAPPINGS (a practice's own rules and configuration), else the mappings/ otedi ships. (Every rule
    lookup asks for it, hundreds of thousands of times a night: resolved once per value of the setting.)"""
    return _mappings_dir(os.environ.get("OTEDI_MAPPINGS") or None)


@lru_cache(maxsize=16)
def _mappings_dir(custom: str | None) -> Path:
    return _resolved(custom) if custom else data_path("mappings")


@lru_cache(maxsize=16)
def _resolved(path: str) -> Path:
    return Path(path).resolve()


def __getattr__(name: str):
    # REPO_ROOT was the source checkout; outside one (a wheel, the image) it does not exist. The data root has
    # the same layout for what otedi ships (mappings/, sample_edi/, docs/), so old callers keep working.
    if name == "REPO_ROOT":
        warnings.warn("otedi.config.REPO_ROOT is deprecated: use config.mappings_dir(), config.sample_extract() "
                      "or config.data_path()", DeprecationWarning, stacklevel=2)
        return _data_root()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_yaml(relative: str | Path) -> dict:
    path = mappings_dir() / relative
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


# --- validating configuration files with pydantic ------------------------------------------------------------

class ConfigModel(BaseModel):
    """A mapping in a configuration file: every key known (a typo is an error), numbers read as text where
    the key is text (YAML reads unquoted ids such as 12502 as numbers; ids are text)."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True, frozen=True)


M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], data: Any, file: str | Path) -> M:
    """`data` (a configuration file's content) as `model`, or one ConfigError line naming `file`, the entry,
    the key and what is allowed."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        problems = [_describe(model, data, e) for e in errors[:3]]
        if len(errors) > 3:
            problems.append(f"and {len(errors) - 3} more")
        raise ConfigError(f"{file}: {'; '.join(problems)}") from None


def _model_of(annotation) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _walk(model: type[BaseModel] | None, parts) -> type[BaseModel] | None:
    for part in parts:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part)
        model = _model_of(field.annotation) if field else None
    return model


def _key(parts) -> str:
    out = ""
    for part in parts:
        out += f"[{part + 1}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_TYPE_WORDS = {
    "string_type": "text", "int_type": "a whole number", "int_parsing": "a whole number",
    "int_from_float": "a whole number", "bool_type": "true or false", "bool_parsing": "true or false",
    "decimal_type": "a decimal number", "decimal_parsing": "a decimal number", "float_type": "a number",
    "float_parsing": "a number", "list_type": "a list ([a, b] or one '- item' line each)",
    "dict_type": "a mapping (key: value lines)", "model_type": "a mapping (key: value lines)",
    "model_attributes_type": "a mapping (key: value lines)",
}
_QUOTE_HINT = " (quote it: YAML reads an unquoted number as a number and drops its leading zeros, 01 as 1)"


def _describe(model: type[BaseModel], data, error: dict) -> str:
    loc, kind, value = list(error["loc"]), error["type"], error.get("input")
    label, owner = "", model
    noun = loc[0][:-1] if loc and isinstance(loc[0], str) and loc[0].endswith("s") else None
    entries = _walk(model, loc[:1]) if noun else None
    if len(loc) >= 2 and isinstance(loc[1], int) and entries and f"{noun}_id" in entries.model_fields:
        # an entry of a top-level list of named things (practices, clearinghouses): named by its id
        items = data.get(loc[0]) if isinstance(data, dict) else None
        item = items[loc[1]] if isinstance(items, list) and loc[1] < len(items) else None
        ident = item.get(f"{noun}_id") if isinstance(item, dict) else None
        label = f"{noun} {ident} (entry {loc[1] + 1}): " if ident is not None else f"{noun} entry {loc[1] + 1}: "
        owner, loc = entries, loc[2:]
    key = _key(loc)
    if kind == "extra_forbidden":
        parent = _walk(owner, loc[:-1])
        allowed = list(parent.model_fields) if parent else []
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.6)
        mean = f" (did you mean {close[0]!r}?)" if close else ""
        where = f" of {_key(loc[:-1])}" if loc[:-1] else ""
        return f"{label}unknown key {key!r}{mean}; allowed keys{where}: {', '.join(allowed)}"
    if kind == "missing":
        parent = _walk(owner, loc[:-1])
        field = parent.model_fields.get(loc[-1]) if parent and loc and isinstance(loc[-1], str) else None
        what = f": {field.description}" if field is not None and field.description else ""
        return f"{label}required key {key!r} is missing{what}"
    subject = f"key {key!r}: " if key else ""
    parent = _walk(owner, loc[:-1])
    field = parent.model_fields.get(loc[-1]) if parent and loc and isinstance(loc[-1], str) else None
    texty = kind == "literal_error" or (field is not None and str in (field.annotation, *get_args(field.annotation)))
    hint = _QUOTE_HINT if texty and isinstance(value, (int, float)) and not isinstance(value, bool) else ""
    if kind == "string_pattern_mismatch":
        expected = field.description if field is not None and field.description else f"text matching {error['ctx']['pattern']}"
        return f"{label}{subject}{_show(value)} is not allowed; write {expected}{hint}"
    if kind == "literal_error":
        return f"{label}{subject}{_show(value)} is not allowed; use {error['ctx']['expected']}{hint}"
    if kind in ("value_error", "assertion_error"):
        message = str(error["ctx"]["error"]) if error.get("ctx", {}).get("error") else error["msg"]
        return f"{label}{subject}{_show(value) + ' ' if key else ''}{message}{hint if key else ''}"
    if kind == "string_too_short":
        return f"{label}key {key!r} is empty; write a value"
    if kind == "too_short":
        return f"{label}key {key!r} is an empty list; give at least {error['ctx']['min_length']}"
    bounds = {"greater_than_equal": ("ge", "at least"), "greater_than": ("gt", "more than"),
              "less_than_equal": ("le", "at most"), "less_than": ("lt", "less than")}
    if kind in bounds:
        name, words = bounds[kind]
        return f"{label}{subject}{_show(value)} is not allowed; use a value {words} {error['ctx'][name]}"
    if kind in _TYPE_WORDS:
        return f"{label}{subject}{_show(value)} is not {_TYPE_WORDS[kind]}"
    return f"{label}{subject}{_show(value)}: {error['msg'][0].lower() + error['msg'][1:]}"


# Reusable field types. Each raises ValueError("is not ...") so the message reads "key 'zip': '4321' is not ...".

def _text(value):
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError("is not text")
    text = str(value)
    if not text.strip():
        raise ValueError("is empty; write a value")
    return text


Text = Annotated[str, BeforeValidator(_text)]


def digits(*lengths: int, what: str):
    """Text of only digits, of one of `lengths` (an unquoted YAML number is accepted and read as text)."""

    def check(value):
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ValueError(f"is not {what}")
        text = str(value)
        if not (text.isascii() and text.isdigit() and len(text) in lengths):
            raise ValueError(f"is not {what}")
        return text

    return Annotated[str, BeforeValidator(check)]


def at_most(limit: int, what: str):
    def check(value):
        text = _text(value)
        if len(text) > limit:
            raise ValueError(f"is longer than {limit} characters ({what})")
        return text

    return Annotated[str, BeforeValidator(check)]


def _config_date(value):
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError("is not a date; write it as YYYY-MM-DD")


ConfigDate = Annotated[date, BeforeValidator(_config_date)]


def _state(value):
    from otedi.charges.validate import STATES  # validate reads config: import here, not at the top

    text = _text(value)
    if text not in STATES:
        raise ValueError("is not a US state, DC, territory or military code (two capital letters, e.g. OH)")
    return text


def _npi(value):
    from otedi.charges.validate import npi_is_valid

    text = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    if not (len(text) == 10 and text.isascii() and text.isdigit()):
        raise ValueError("is not an NPI: an NPI is exactly 10 digits")
    if not npi_is_valid(text):
        raise ValueError("fails the NPI check digit, so it is mistyped; copy the NPI from the NPPES registry")
    return text


def _time_zone(value):
    text = _text(value)
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("is not an IANA time zone name (e.g. America/New_York, America/Chicago)") from None
    return text


State = Annotated[str, BeforeValidator(_state)]
Npi = Annotated[str, BeforeValidator(_npi)]
TimeZone = Annotated[str, BeforeValidator(_time_zone)]


# --- practices.yaml and clearinghouses.yaml ------------------------------------------------------------------

@dataclass(frozen=True)
class Practice:
    """A billing provider (837P loop 2000A/2010AA)."""

    practice_id: str
    name: str
    npi: str
    ein: str
    taxonomy: str
    address1: str
    city: str
    state: str
    zip: str
    contact_name: str
    contact_phone: str
    time_zone: str
    clearinghouse: str
    submitter_id: str
    # The practice's Medicare payment locality "<mac>-<locality>" (e.g. "15202-00",
    # CGS J15, Ohio statewide): Medicare expected amounts use its GPCIs.
    medicare_locality: str | None = None
    # 2010AB pay-to address, only when payments go elsewhere than the 2010AA
    # street address (a PO box or lock box goes here). All four or none.
    pay_to_address1: str | None = None
    pay_to_city: str | None = None
    pay_to_state: str | None = None
    pay_to_zip: str | None = None

    @property
    def has_pay_to_address(self) -> bool:
        return self.pay_to_address1 is not None


PAY_TO_FIELDS = ("pay_to_address1", "pay_to_city", "pay_to_state", "pay_to_zip")

# 837P TR3 2010AA N301: "The Billing Provider Address must be a street address.
# Post Office Box or Lock Box addresses are to be sent in the Pay-To Address
# Loop (Loop ID-2010AB), if necessary." Matched on the upper-cased address with
# punctuation removed: P.O. Box, PO BOX, POBOX, POB 12, Post Office Box, Lock
# Box, Lockbox, BOX 123 - not 100 BOXWOOD LANE.
_PO_BOX = re.compile(r"\bP\s?O\s?B(?:OX)?\b|\bPOST\s+OFFICE\s+BOX\b|\bLOCK\s?BOX\b|(^|\s)BOX\s*\d")


def is_po_box(address: str) -> bool:
    """True for a post office box or lock box address line."""
    text = re.sub(r"[.,#:;'\-/]", " ", str(address).upper())
    text = re.sub(r"\s+", " ", text).strip()
    return bool(_PO_BOX.search(text))


@dataclass(frozen=True)
class Clearinghouse:
    """Who receives our interchanges (ISA08/GS03, 837P loop 1000B)."""

    clearinghouse_id: str
    name: str
    isa_receiver_qualifier: str
    isa_receiver_id: str
    gs_receiver_code: str
    receiver_name: str
    receiver_id: str
    isa_sender_qualifier: str = "ZZ"
    usage_indicator: str = "T"
    max_claims_per_file: int = 5000


# ISA05/ISA07 interchange id qualifiers (X12 005010 ISA): DUNS, DUNS+4, HIN, carrier and FI codes, NAIC,
# Medicare/Medicaid ids, mutually defined.
IsaQualifier = Literal["01", "14", "20", "27", "28", "29", "30", "33", "ZZ"]


class PracticeConfig(ConfigModel):
    """One entry of practices.yaml: the fields of Practice, checked."""

    practice_id: Text = Field(description="the id the charge extracts use, e.g. BRIGHTHANDS")
    name: at_most(60, "2010AA NM103") = Field(description="the practice's legal name (2010AA NM103)")
    npi: Npi = Field(description="the practice's 10-digit group NPI (2010AA NM109)")
    ein: digits(9, what="an EIN: 9 digits, no dash") = Field(description="the 9-digit EIN (2010AA REF*EI)")
    taxonomy: Annotated[str, Field(pattern=r"^[0-9A-Z]{9}X$")] = Field(
        description="a NUCC taxonomy code: 10 capital letters and digits ending in X, e.g. 225X00000X (2000A PRV03)")
    address1: at_most(55, "2010AA N301") = Field(description="the street address (never a PO box)")
    city: at_most(30, "2010AA N401") = Field(description="2010AA N401")
    state: State = Field(description="two-letter state code, e.g. OH")
    zip: digits(9, what="a 9-digit ZIP+4 without a dash (2010AA N403 needs all nine digits)") = Field(
        description="the 9-digit ZIP+4, e.g. \"432151234\"")
    contact_name: Text = Field(description="1000A PER02")
    contact_phone: digits(10, what="a 10-digit phone number, digits only") = Field(description="1000A PER04")
    time_zone: TimeZone = Field(description="IANA time zone, e.g. America/New_York (the nightly batch date)")
    clearinghouse: Text = Field(description="a clearinghouse_id of clearinghouses.yaml")
    submitter_id: at_most(15, "ISA06 holds 15 characters") = Field(
        description="ISA06/GS02/1000A NM109 at the clearinghouse")
    medicare_locality: Annotated[str, Field(pattern=r"^\d{5}-\d{2}$")] | None = Field(
        None, description="the Medicare locality as \"<mac>-<locality>\", e.g. \"15202-00\" (fees/gpci_*.csv)")
    pay_to_address1: at_most(55, "2010AB N301") | None = None
    pay_to_city: at_most(30, "2010AB N401") | None = None
    pay_to_state: State | None = None
    pay_to_zip: digits(5, 9, what="a ZIP code: 5 or 9 digits, no dash") | None = None


class PracticesFile(ConfigModel):
    source: Text = Field(description="where these values come from")
    practices: Annotated[list[PracticeConfig], Field(min_length=1)] = Field(description="one entry per practice")

    @model_validator(mode="after")
    def _unique(self):
        _no_duplicates([p.practice_id for p in self.practices], "practice_id")
        return self


class ClearinghouseConfig(ConfigModel):
    """One entry of clearinghouses.yaml: the fields of Clearinghouse, checked."""

    clearinghouse_id: Text = Field(description="the id practices.yaml names in `clearinghouse`")
    name: Text = Field(description="the clearinghouse's name")
    isa_receiver_qualifier: IsaQualifier = Field(description="ISA07, e.g. ZZ")
    isa_receiver_id: at_most(15, "ISA08 holds 15 characters") = Field(description="ISA08")
    gs_receiver_code: at_most(15, "GS03 holds 15 characters") = Field(description="GS03")
    receiver_name: at_most(60, "1000B NM103") = Field(description="1000B NM103")
    receiver_id: at_most(80, "1000B NM109") = Field(description="1000B NM109")
    isa_sender_qualifier: IsaQualifier = "ZZ"
    usage_indicator: Literal["T", "P"] = "T"
    max_claims_per_file: Annotated[int, Field(ge=1)] = 5000


class ClearinghousesFile(ConfigModel):
    source: Text = Field(description="where these values come from")
    clearinghouses: Annotated[list[ClearinghouseConfig], Field(min_length=1)] = Field(
        description="one entry per clearinghouse")

    @model_validator(mode="after")
    def _unique(self):
        _no_duplicates([c.clearinghouse_id for c in self.clearinghouses], "clearinghouse_id")
        return self


def _no_duplicates(ids: list[str], key: str) -> None:
    seen: dict[str, int] = {}
    for i, ident in enumerate(ids, 1):
        if ident in seen:
            raise ValueError(f"{key} {ident!r} is configured twice (entries {seen[ident]} and {i}); keep one")
        seen[ident] = i


@lru_cache(maxsize=8)
def _practices(root: str) -> dict[str, Practice]:
    data = validated(PracticesFile, load_yaml("practices.yaml"), Path(root) / "practices.yaml")
    out = {}
    for entry in data.practices:
        p = Practice(**entry.model_dump())
        _check_practice(p)
        out[p.practice_id] = p
    if any(p.medicare_locality is not None for p in out.values()):
        _check_localities(out.values())
    return out


def _check_practice(p: Practice) -> None:
    where = f"practices.yaml practice {p.practice_id}"
    if is_po_box(p.address1):
        raise ConfigError(
            f"{where}: address1 is a PO box; 2010AA (billing provider) needs the street address where the "
            f"practice is; put the PO box in pay_to_address1/pay_to_city/pay_to_state/pay_to_zip "
            f"(2010AB pay-to address) [address1: {p.address1!r}]")
    given = [f for f in PAY_TO_FIELDS if getattr(p, f) not in (None, "")]
    if given and len(given) < len(PAY_TO_FIELDS):
        missing = [f for f in PAY_TO_FIELDS if f not in given]
        raise ConfigError(f"{where}: a pay-to address (2010AB) needs all of {list(PAY_TO_FIELDS)}; "
                          f"missing {missing}")


def _check_localities(practices) -> None:
    from otedi.coding.fees import medicare_localities  # fees reads config: import here, not at the top

    by_file = medicare_localities()
    allowed = sorted({k for table in by_file.values() for k in table})
    for p in practices:
        if p.medicare_locality is not None and p.medicare_locality not in allowed:
            raise ConfigError(
                f"practices.yaml practice {p.practice_id}: medicare_locality {p.medicare_locality!r} is not a "
                f"locality of {', '.join('fees/' + f for f in by_file) or 'any GPCI file in fees/schedules.yaml'}; "
                f"use \"<mac>-<locality>\", one of {allowed}")


@lru_cache(maxsize=8)
def _clearinghouses(root: str) -> dict[str, Clearinghouse]:
    data = validated(ClearinghousesFile, load_yaml("clearinghouses.yaml"), Path(root) / "clearinghouses.yaml")
    return {c.clearinghouse_id: Clearinghouse(**c.model_dump()) for c in data.clearinghouses}


def practices() -> dict[str, Practice]:
    return _practices(str(mappings_dir()))


def clearinghouses() -> dict[str, Clearinghouse]:
    return _clearinghouses(str(mappings_dir()))


def practice(practice_id: str) -> Practice:
    try:
        return practices()[practice_id]
    except KeyError:
        raise ConfigError(f"practice {practice_id!r} is not configured in {mappings_dir() / 'practices.yaml'}") from None


def clearinghouse(clearinghouse_id: str) -> Clearinghouse:
    try:
        return clearinghouses()[clearinghouse_id]
    except KeyError:
        raise ConfigError(
            f"clearinghouse {clearinghouse_id!r} is not configured in {mappings_dir() / 'clearinghouses.yaml'}"
        ) from None
