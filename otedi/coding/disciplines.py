"""Therapy disciplines (mappings/rules/disciplines.yaml): which discipline a rendering role belongs to,
its plan-of-care modifier (GO/GP/GN), its assistant and assistant modifier (CO/CQ), its KX bucket and
the NUCC taxonomy each role is billed under (2310B PRV03)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

from otedi import config
from otedi.errors import ConfigError

DISCIPLINES_FILE = "rules/disciplines.yaml"


@dataclass(frozen=True)
class Role:
    role: str  # OT, OTA, PT, PTA, SLP, SLPA
    discipline: str  # OT, PT, SLP
    assistant: bool
    taxonomy: str


@dataclass(frozen=True)
class Discipline:
    name: str
    modifier: str  # GO | GP | GN
    kx_bucket: str  # OT | PT_SLP
    therapist: Role
    assistant: Role
    assistant_modifier: str | None  # CO | CQ | None


@dataclass(frozen=True)
class Disciplines:
    by_name: dict[str, Discipline]
    roles: dict[str, Role]
    source: str

    def of_role(self, role: str) -> Discipline:
        return self.by_name[self.roles[role.upper()].discipline]

    def role(self, name: str) -> Role:
        try:
            return self.roles[name.upper()]
        except KeyError:
            raise ConfigError(f"rendering role {name!r} is not in {config.mappings_dir() / DISCIPLINES_FILE}") from None

    @cached_property
    def modifiers(self) -> frozenset[str]:
        return frozenset(d.modifier for d in self.by_name.values())


def disciplines() -> Disciplines:
    return _load(str(config.mappings_dir()))


def role(name: str) -> Role:
    return disciplines().role(name)


@lru_cache(maxsize=4)
def _load(root: str) -> Disciplines:
    d = config.load_yaml(DISCIPLINES_FILE)
    try:
        by_name, roles = {}, {}
        for name, entry in d["disciplines"].items():
            therapist = Role(entry["therapist"]["role"], name, False, entry["therapist"]["taxonomy"])
            assistant = Role(entry["assistant"]["role"], name, True, entry["assistant"]["taxonomy"])
            by_name[name] = Discipline(name, entry["modifier"], entry["kx_bucket"], therapist, assistant,
                                       entry["assistant"].get("modifier"))
            roles[therapist.role] = therapist
            roles[assistant.role] = assistant
        return Disciplines(by_name, roles, d["source"])
    except (KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{config.mappings_dir() / DISCIPLINES_FILE}: {exc!r}") from None
