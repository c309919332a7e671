"""Settings from the environment and reference data from mappings/.

Environment (all optional; the defaults run everything on one machine):
  OTEDI_HOME          working folder for the SQLite warehouse, drop and archive (default ./var)
  OTEDI_DATABASE_URL  SQLAlchemy URL of the warehouse (default sqlite:///$OTEDI_HOME/otedi.db)
  OTEDI_MAPPINGS      folder of rule and configuration data (default: the repository's mappings/)
"""

from __future__ import annotations

import os
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
        out[p.practice_id] = p
    return out


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
