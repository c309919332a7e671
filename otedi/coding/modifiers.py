"""Line modifiers: GO/GP/GN, CO/CQ for assistants, KX over the therapy threshold, in billing order.

- The discipline modifier of the rendering role's plan of care (GO for OT and
  OTA, GP for PT and PTA, GN for SLP and SLPA; rules/disciplines.yaml) goes on
  every therapy line: "always therapy" codes always, "sometimes therapy" codes
  when a therapist furnishes them under a plan of care, which is every line
  this pipeline bills.
- CO (OTA) or CQ (PTA) on the lines of the units an assistant furnished, with
  GO/GP; which units those are is decided by the 10% de minimis split
  (coding/assistants.py).
- KX once the patient's incurred amount in the line's bucket (OT, or PT and
  SLP combined) for the year reaches the threshold
  (mappings/rules/kx_threshold.yaml), for payers whose rules use it.
- Charted modifiers are kept (deduplicated); a charted discipline modifier of
  another discipline holds the line.
Order and the per-line maximum come from mappings/rules/modifier_order.yaml.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cached_property, lru_cache

from otedi import config
from otedi.charges.record import Charge
from otedi.coding import disciplines
from otedi.coding.codes import CodeInfo
from otedi.coding.payers import PayerRules
from otedi.errors import ConfigError
from otedi.issues import Issue, Severity

ORDER_FILE = "rules/modifier_order.yaml"
KX_FILE = "rules/kx_threshold.yaml"


@dataclass(frozen=True)
class ModifierRules:
    order: tuple[tuple[str, ...], ...]
    max_per_line: int
    distinct_service: tuple[str, ...]
    source: str

    def ordered(self, modifiers: Sequence[str]) -> tuple[str, ...]:
        """order_modifiers: each distinct list of modifiers is ordered once (lines repeat a handful of them)."""
        key = tuple(modifiers)
        found = self._ordered.get(key)
        if found is None:
            rank, last = self._ranks, len(self.order)
            unique = dict.fromkeys(m.strip().upper() for m in key if m.strip())
            # a stable sort: modifiers of one group stay in charted order
            found = self._ordered[key] = tuple(sorted(unique, key=lambda m: rank.get(m, last)))
        return found

    @cached_property
    def _ranks(self) -> dict[str, int]:
        return {m: i for i, group in enumerate(self.order) for m in group}

    @cached_property
    def _ordered(self) -> dict[tuple[str, ...], tuple[str, ...]]:
        return {}


@dataclass(frozen=True)
class KxThreshold:
    amount: Decimal
    effective_from: date
    effective_to: date | None
    source: str


@dataclass(frozen=True)
class KxRules:
    """mappings/rules/kx_threshold.yaml: the thresholds by date and the bucket of each discipline modifier."""

    values: tuple[KxThreshold, ...]
    medical_review: tuple[KxThreshold, ...]
    buckets: dict[str, tuple[str, ...]]

    def threshold(self, day: date) -> KxThreshold | None:
        return _in_effect(self.values, day)

    def review(self, day: date) -> KxThreshold | None:
        return _in_effect(self.medical_review, day)

    def bucket(self, modifiers: Sequence[str]) -> str | None:
        return next((bucket for bucket, marks in self.buckets.items() if set(marks) & set(modifiers)), None)


def modifier_rules() -> ModifierRules:
    return _modifier_rules(str(config.mappings_dir()))


def kx_rules() -> KxRules:
    return _kx_file(str(config.mappings_dir()))


def kx_threshold(day: date) -> KxThreshold | None:
    """The KX threshold (each bucket's: OT, PT+SLP) in effect on a date, or None when the file has no row for it."""
    return kx_rules().threshold(day)


def medical_review_threshold(day: date) -> KxThreshold | None:
    """The targeted medical review threshold in effect on a date (each bucket's)."""
    return kx_rules().review(day)


def kx_bucket(modifiers: Sequence[str]) -> str | None:
    """The threshold bucket a line accrues to, by its discipline modifier (None: not a therapy line)."""
    return kx_rules().bucket(modifiers)


def _in_effect(rows: tuple[KxThreshold, ...], day: date) -> KxThreshold | None:
    return next((t for t in rows if t.effective_from <= day and (t.effective_to is None or day <= t.effective_to)),
                None)


def order_modifiers(modifiers: Sequence[str], rules: ModifierRules | None = None) -> tuple[str, ...]:
    """Deduplicate and order: pricing, discipline, KX, distinct-service, then the rest as charted."""
    return (rules or modifier_rules()).ordered(modifiers)


ASSISTANT_MODIFIERS = ("CO", "CQ")


def assistant_modifier(charge: Charge, payer: PayerRules, rules: ModifierRules | None = None,
                       table: disciplines.Disciplines | None = None) -> str | None:
    """CO/CQ when the line is an assistant's and the payer takes assistant modifiers, or when charted.
    (`rules` and `table`: the modifier and discipline rules, when the caller has them at hand.)"""
    charted = [m for m in order_modifiers(charge.modifiers, rules) if m in ASSISTANT_MODIFIERS]
    if charted:
        return charted[0]
    table = table or disciplines.disciplines()
    role = table.role(charge.rendering_role)
    if role.assistant and payer.assistant_modifiers:
        return table.of_role(role.role).assistant_modifier
    return None


def is_assistant_line(charge: Charge, payer: PayerRules, rules: ModifierRules | None = None,
                      table: disciplines.Disciplines | None = None) -> bool:
    """True when the line carries the assistant modifier (charted, or added for an assistant)."""
    return assistant_modifier(charge, payer, rules, table) is not None


def assign_kx(lines: Sequence[tuple[Charge, Decimal | None]], incurred_before: Decimal,
              day: date, bucket: str = "OT", kx: KxRules | None = None) -> tuple[set[str], list[Issue]]:
    """Which therapy lines of a visit in one bucket get KX, in charting order.

    lines: the visit's lines of the bucket (GO, or GP/GN) with their expected allowed amounts.
    incurred_before: the patient's incurred amount in the bucket this year before this visit.
    The line whose amount reaches the threshold and every later line get KX; the line that
    passes the targeted medical review threshold is warned about. `kx`: the threshold file, when at hand.
    """
    what = "OT" if bucket == "OT" else "PT and SLP"
    kx = kx or kx_rules()
    threshold = kx.threshold(day)
    if threshold is None:
        first = lines[0][0] if lines else None
        return set(), [Issue(
            Severity.HOLD, "kx-threshold",
            f"no {what} KX threshold for {day.year} in {KX_FILE}; add the CMS amount for that year "
            f"so lines over it carry KX", f"mappings/{KX_FILE}",
            charge_id=first.charge_id if first else None)]
    review = kx.review(day)
    running = incurred_before
    kx: set[str] = set()
    issues: list[Issue] = []
    for charge, allowed in lines:
        before = running
        running += allowed or Decimal("0")
        if running >= threshold.amount:
            kx.add(charge.charge_id)
            issues.append(Issue(
                Severity.WARNING, "kx-threshold",
                f"{charge.cpt} on {day}: {what} incurred ${before:,.2f} this year before this line, "
                f"${running:,.2f} with it, reaches the {day.year} KX threshold ${threshold.amount:,.2f}; "
                f"KX appended - confirm the documentation supports medical necessity",
                threshold.source, charge_id=charge.charge_id, value="KX"))
        if review is not None and before < review.amount <= running:
            issues.append(Issue(
                Severity.WARNING, "medical-review-threshold",
                f"{charge.cpt} on {day}: {what} incurred reaches ${running:,.2f} this year, past the "
                f"${review.amount:,.2f} targeted medical review threshold; the claim may be selected for "
                f"medical review - keep the plan of care, progress reports and treatment notes ready",
                review.source, charge_id=charge.charge_id))
    return kx, issues


def line_modifiers(charge: Charge, info: CodeInfo, payer: PayerRules, *, kx: bool, rules: ModifierRules | None = None,
                   table: disciplines.Disciplines | None = None) -> tuple[tuple[str, ...], list[Issue]]:
    """The final, ordered modifiers of one line and any issues with them (`rules` and `table`: the modifier
    and discipline rules, when the caller has them at hand)."""
    rules = rules or modifier_rules()
    table = table or disciplines.disciplines()
    own = table.of_role(charge.rendering_role)
    charted = order_modifiers(charge.modifiers, rules)
    mods = list(charted)
    issues: list[Issue] = []
    wrong = [m for m in charted if m in table.modifiers and m != own.modifier]
    wrong += [m for m in charted if m in ASSISTANT_MODIFIERS and m != own.assistant_modifier]
    if wrong:
        issues.append(Issue(
            Severity.HOLD, "discipline-modifier",
            f"{charge.cpt} on {charge.service_date}: charted {'/'.join(wrong)} does not belong to the "
            f"{charge.rendering_role}'s {own.name} plan of care ({own.modifier}); remove it ({own.modifier} is "
            f"added) or chart the service under the right discipline",
            table.source, charge_id=charge.charge_id, column="modifiers", value=":".join(charge.modifiers)))
    if info.is_therapy and payer.discipline_modifier:
        mods.append(own.modifier)
    assistant = assistant_modifier(charge, payer, rules, table) if payer.assistant_modifiers else None
    if assistant:
        mods.append(assistant)
    if kx:
        mods.append("KX")
    final = order_modifiers(mods, rules)
    if len(final) > rules.max_per_line:
        issues.append(Issue(
            Severity.HOLD, "modifier-count",
            f"{charge.cpt} on {charge.service_date}: {len(final)} modifiers ({':'.join(final)}) but a line holds "
            f"{rules.max_per_line}; drop the ones the payer does not need",
            rules.source, charge_id=charge.charge_id, column="modifiers", value=":".join(final)))
    return final, issues


@lru_cache(maxsize=4)
def _modifier_rules(root: str) -> ModifierRules:
    d = config.load_yaml(ORDER_FILE)
    try:
        return ModifierRules(
            order=tuple(tuple(str(m) for m in group) for group in d["order"]),
            max_per_line=int(d["max_per_line"]),
            distinct_service=tuple(str(m) for m in d["distinct_service"]),
            source=d["source"],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{config.mappings_dir() / ORDER_FILE}: {exc!r}") from None


@lru_cache(maxsize=4)
def _kx_file(root: str) -> KxRules:
    d = config.load_yaml(KX_FILE)
    try:
        def rows(key: str) -> tuple[KxThreshold, ...]:
            return tuple(KxThreshold(amount=Decimal(str(v["amount"])), effective_from=v["effective_from"],
                                     effective_to=v.get("effective_to"), source=d["source"]) for v in d[key])
        return KxRules(values=rows("values"), medical_review=rows("medical_review"),
                       buckets={str(k): tuple(v) for k, v in d["buckets"].items()})
    except (KeyError, TypeError, ArithmeticError, AttributeError) as exc:
        raise ConfigError(f"{config.mappings_dir() / KX_FILE}: {exc!r}") from None
