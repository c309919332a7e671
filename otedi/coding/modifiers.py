"""Line modifiers: GO, CO for assistants, KX over the therapy threshold, in billing order.

- GO (occupational therapy plan of care) goes on every therapy line: "always
  therapy" codes always, "sometimes therapy" codes when an OT furnishes them
  under a plan of care, which is every line this pipeline bills.
- CO when an occupational therapy assistant rendered the service, with GO.
- KX once the patient's OT incurred amount for the year reaches the threshold
  (mappings/rules/kx_threshold.yaml), for payers whose rules use it.
- Charted modifiers are kept (deduplicated); a charted GP or GN names the wrong
  discipline and holds the line.
Order and the per-line maximum come from mappings/rules/modifier_order.yaml.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache

from otedi import config
from otedi.charges.record import Charge
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
    discipline: str
    other_disciplines: tuple[str, ...]
    distinct_service: tuple[str, ...]
    source: str


@dataclass(frozen=True)
class KxThreshold:
    amount: Decimal
    effective_from: date
    effective_to: date | None
    source: str


def modifier_rules() -> ModifierRules:
    return _modifier_rules(str(config.mappings_dir()))


def kx_threshold(day: date) -> KxThreshold | None:
    """The OT KX threshold in effect on a date, or None when the file has no row for it."""
    return next((t for t in _kx_thresholds(str(config.mappings_dir()))
                 if t.effective_from <= day and (t.effective_to is None or day <= t.effective_to)), None)


def order_modifiers(modifiers: Sequence[str]) -> tuple[str, ...]:
    """Deduplicate and order: pricing, discipline, KX, distinct-service, then the rest as charted."""
    rules = modifier_rules()
    rank = {m: i for i, group in enumerate(rules.order) for m in group}
    unique = list(dict.fromkeys(m.strip().upper() for m in modifiers if m.strip()))
    return tuple(sorted(unique, key=lambda m: (rank.get(m, len(rules.order)), unique.index(m))))


def is_assistant_line(charge: Charge, payer: PayerRules) -> bool:
    """True when the line carries the assistant modifier (charted, or added for an OTA)."""
    charted = {m.strip().upper() for m in charge.modifiers}
    return "CO" in charted or (payer.assistant_modifier == "CO" and charge.rendering_role.upper() == "OTA")


def assign_kx(lines: Sequence[tuple[Charge, Decimal | None]], incurred_before: Decimal,
              day: date) -> tuple[set[str], list[Issue]]:
    """Which therapy lines of a visit get KX, in charting order.

    lines: the visit's GO lines with their expected allowed amounts.
    incurred_before: the patient's OT incurred amount this year before this visit.
    The line whose amount reaches the threshold and every later line get KX.
    """
    threshold = kx_threshold(day)
    if threshold is None:
        first = lines[0][0] if lines else None
        return set(), [Issue(
            Severity.HOLD, "kx-threshold",
            f"no OT KX threshold for {day.year} in {KX_FILE}; add the CMS amount for that year "
            f"so lines over it carry KX", f"mappings/{KX_FILE}",
            charge_id=first.charge_id if first else None)]
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
                f"{charge.cpt} on {day}: OT incurred ${before:,.2f} this year before this line, "
                f"${running:,.2f} with it, reaches the {day.year} KX threshold ${threshold.amount:,.2f}; "
                f"KX appended - confirm the documentation supports medical necessity",
                threshold.source, charge_id=charge.charge_id, value="KX"))
    return kx, issues


def line_modifiers(charge: Charge, info: CodeInfo, payer: PayerRules, *, kx: bool) -> tuple[tuple[str, ...], list[Issue]]:
    """The final, ordered modifiers of one line and any issues with them."""
    rules = modifier_rules()
    charted = order_modifiers(charge.modifiers)
    mods = list(charted)
    issues: list[Issue] = []
    wrong = [m for m in charted if m in rules.other_disciplines]
    if wrong:
        issues.append(Issue(
            Severity.HOLD, "discipline-modifier",
            f"{charge.cpt} on {charge.service_date}: charted {'/'.join(wrong)} marks a PT or SLP plan of care "
            f"on an occupational therapy line; remove it (GO is added) or bill it under the right discipline",
            rules.source, charge_id=charge.charge_id, column="modifiers", value=":".join(charge.modifiers)))
    if info.is_therapy and payer.discipline_modifier:
        mods.append(rules.discipline)
    if is_assistant_line(charge, payer) and payer.assistant_modifier:
        mods.append(payer.assistant_modifier)
    if kx:
        mods.append("KX")
    final = order_modifiers(mods)
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
            discipline=str(d["discipline"]),
            other_disciplines=tuple(str(m) for m in d["other_disciplines"]),
            distinct_service=tuple(str(m) for m in d["distinct_service"]),
            source=d["source"],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{config.mappings_dir() / ORDER_FILE}: {exc!r}") from None


@lru_cache(maxsize=4)
def _kx_thresholds(root: str) -> tuple[KxThreshold, ...]:
    d = config.load_yaml(KX_FILE)
    try:
        return tuple(KxThreshold(
            amount=Decimal(str(v["amount"])),
            effective_from=v["effective_from"],
            effective_to=v.get("effective_to"),
            source=d["source"],
        ) for v in d["values"])
    except (KeyError, TypeError, ArithmeticError) as exc:
        raise ConfigError(f"{config.mappings_dir() / KX_FILE}: {exc!r}") from None
