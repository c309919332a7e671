"""Root-cause category of an 835 adjustment from its group code, CARC and RARCs.

The mapping is data (mappings/remit/denial_categories.yaml): ordered rules,
the first match wins, so `CO-16 + M62` (authorization) is told apart from
`CO-16 + M77` (coding) and `CO-151 + N362` (units over the MUE) from a plain
`CO-151` (medical review). Each category says whether correcting and
resubmitting can still recover the money, and what the biller should do.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from otedi import config
from otedi.errors import ConfigError

CATEGORIES_FILE = "remit/denial_categories.yaml"
FALLBACK = "other"


@dataclass(frozen=True)
class Category:
    key: str
    label: str
    correctable: bool
    fix: str


@dataclass(frozen=True)
class Rule:
    category: str
    group: str | None = None
    carcs: frozenset[str] | None = None
    rarcs: frozenset[str] | None = None
    fix: str | None = None

    def matches(self, group: str, carc: str, rarcs: set[str]) -> bool:
        return ((self.group is None or self.group == group)
                and (self.carcs is None or carc in self.carcs)
                and (self.rarcs is None or bool(self.rarcs & rarcs)))


@dataclass(frozen=True)
class Classification:
    category: str
    label: str
    correctable: bool
    fix: str


@dataclass(frozen=True)
class CategoryMap:
    categories: dict[str, Category]
    rules: tuple[Rule, ...]

    def classify(self, group: str | None, carc: str | None, rarc: str | None = None) -> Classification:
        """The root cause of one adjustment; `rarc` is ':'-joined as in the ledger."""
        group, carc = (group or "").upper(), (carc or "").upper()
        remarks = {r.strip().upper() for r in (rarc or "").split(":") if r.strip()}
        rule = next((r for r in self.rules if r.matches(group, carc, remarks)), None)
        category = self.categories[rule.category if rule else FALLBACK]
        return Classification(category.key, category.label, category.correctable,
                              (rule.fix if rule and rule.fix else category.fix))


def _codes(value) -> frozenset[str] | None:
    if value is None:
        return None
    items = value if isinstance(value, list) else [value]
    return frozenset(str(v).upper() for v in items)


@lru_cache(maxsize=4)
def _load(root: str) -> CategoryMap:
    data = config.load_yaml(CATEGORIES_FILE)
    where = config.mappings_dir() / CATEGORIES_FILE
    try:
        categories = {key: Category(key, c["label"], bool(c["correctable"]), " ".join(str(c["fix"]).split()))
                      for key, c in data["categories"].items()}
        rules = tuple(Rule(category=r["category"], group=r.get("group"), carcs=_codes(r.get("carc")),
                           rarcs=_codes(r.get("rarc")), fix=r.get("fix")) for r in data["rules"])
    except (KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{where}: each category needs label, correctable and fix; each rule a category "
                          f"({type(exc).__name__}: {exc})") from None
    unknown = {r.category for r in rules} - set(categories)
    if unknown or FALLBACK not in categories:
        raise ConfigError(f"{where}: rules name unknown categories {sorted(unknown)} "
                          f"or the fallback category {FALLBACK!r} is missing")
    return CategoryMap(categories, rules)


def category_map() -> CategoryMap:
    return _load(str(config.mappings_dir()))


def classify(group: str | None, carc: str | None, rarc: str | None = None) -> Classification:
    return category_map().classify(group, carc, rarc)
