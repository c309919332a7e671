"""Settings from the environment and reference data from mappings/.

Environment (all optional; the defaults run everything on one machine):
  OTEDI_HOME          working folder for the SQLite warehouse, drop and archive (default ./var)
  OTEDI_DATABASE_URL  SQLAlchemy URL of the warehouse (default sqlite:///$OTEDI_HOME/otedi.db)
  OTEDI_MAPPINGS      folder of rule and configuration data (default: the repository's mappings/)
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path

import yaml

from otedi.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent


def home() -> Path:
    return Path(os.environ.get("OTEDI_HOME", "var")).resolve()


def database_url() -> str:
    url = os.environ.get("OTEDI_DATABASE_URL")
    if url:
        return url
    return f"sqlite:///{home() / 'otedi.db'}"


def mappings_dir() -> Path:
    return _resolved(os.environ.get("OTEDI_MAPPINGS") or str(REPO_ROOT / "mappings"))


@lru_cache(maxsize=16)
def _resolved(path: str) -> Path:
    return Path(path).resolve()


def load_yaml(relative: str | Path) -> dict:
    path = mappings_dir() / relative
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def _build(cls, entry: dict, where: str):
    names = {f.name for f in fields(cls)}
    unknown = set(entry) - names
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}")
    try:
        # YAML reads unquoted ids such as 12502 as numbers; ids are text.
        return cls(**{k: (str(v) if isinstance(v, int) and k not in _INT_KEYS else v) for k, v in entry.items()})
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None


_INT_KEYS = {"max_claims_per_file"}


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


@lru_cache(maxsize=8)
def _practices(root: str) -> dict[str, Practice]:
    data = load_yaml("practices.yaml")
    out = {}
    for i, entry in enumerate(data.get("practices") or []):
        p = _build(Practice, entry, f"practices.yaml entry {i + 1}")
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
    data = load_yaml("clearinghouses.yaml")
    out = {}
    for i, entry in enumerate(data.get("clearinghouses") or []):
        c = _build(Clearinghouse, entry, f"clearinghouses.yaml entry {i + 1}")
        out[c.clearinghouse_id] = c
    return out


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
