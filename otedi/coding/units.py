"""Billed units from charted minutes: the CMS 8-minute rule and the CPT midpoint rule.

CMS "total time" method (MCPM Pub 100-04 ch.5 §20.2): add up the minutes of
every 15-minute timed code on the date, turn the total into units
(8-22 = 1, 23-37 = 2, ...), give each code one unit per full 15 minutes, then
hand the remaining units to the codes with the most minutes left over.

CPT midpoint method (payers that do not follow CMS): each code is rounded on
its own; a unit is attained once the midpoint of the unit's time is passed
(8 of 15 minutes, 16 of 30, 31 of 60).

One line per code and date for each of therapist and assistant: rows of the
same code by the same role are summed (minutes and charge) into one line,
and the code's units are split between the therapist's and the assistant's
line by the 10% de minimis standard (coding/assistants.py), so CO/CQ goes
only on the assistant's units.

"First-unit" codes: a code that some add-on code names as its primary
(97129 + 97130, 97550 + 97551) is billed at most once a day; the family's
minutes are counted together and the time beyond the first unit goes to the
add-on. Codes whose unit is not 15 minutes (97550, 96125) are always rounded by
the midpoint rule and stay out of the 15-minute pool, with their add-ons.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from otedi.charges.record import Charge
from otedi.coding.assistants import split_units
from otedi.coding.codes import CODE_TABLE, CodeInfo, CodeTable, code_table
from otedi.coding.disciplines import Disciplines, disciplines
from otedi.issues import Issue, Severity

CMS_TOTAL_TIME = "cms_total_time"
CPT_MIDPOINT = "cpt_midpoint"
ROUNDING_METHODS = (CMS_TOTAL_TIME, CPT_MIDPOINT)

CMS_SOURCE = "CMS MCPM Pub 100-04 ch.5 §20.2 (8-minute rule, total time method)"
MIDPOINT_SOURCE = "AMA CPT time rule: a unit is attained when the midpoint is passed"
POOL_UNIT = 15


def units_for_total_minutes(total: int) -> int:
    """The CMS table: 8-22 minutes = 1 unit, 23-37 = 2, ... (0 below 8)."""
    if total < 8:
        return 0
    return total // POOL_UNIT + (1 if total % POOL_UNIT >= 8 else 0)


def midpoint_units(minutes: int, unit_minutes: int) -> int:
    """One unit per full unit of time, plus one when the remainder passes the midpoint."""
    if minutes <= 0:
        return 0
    full, rest = divmod(minutes, unit_minutes)
    return full + (1 if 2 * rest > unit_minutes else 0)


def allocate_total_time(minutes: Mapping[str, int]) -> dict[str, int]:
    """Split the day's total-time units across codes (keys in charting order).

    Each code gets floor(m/15) units; the remaining units go to the largest
    leftover minutes (ties: more minutes overall, then charting order). The
    sum never exceeds units_for_total_minutes(sum of minutes).
    """
    keys = list(minutes)
    total_units = units_for_total_minutes(sum(minutes.values()))
    units = {k: minutes[k] // POOL_UNIT for k in keys}
    remaining = total_units - sum(units.values())
    ranked = sorted(keys, key=lambda k: (-(minutes[k] % POOL_UNIT), -minutes[k], keys.index(k)))
    for k in ranked[:max(remaining, 0)]:
        units[k] += 1
    return units


@dataclass(frozen=True)
class UnitAssignment:
    units: dict[str, int]  # charge_id -> billed units (0 = not billed)
    issues: list[Issue] = field(default_factory=list)
    merged: dict[str, str] = field(default_factory=dict)  # charge_id -> the charge whose line carries it


@dataclass
class _Group:
    """The charges of one code, or of one first-unit family, on the date."""

    primary: str  # the code, or the family's first-unit code
    charges: list[Charge] = field(default_factory=list)

    @property
    def minutes(self) -> int:
        return sum(c.minutes or 0 for c in self.charges)


def assign_units(charges: Sequence[Charge], method: str, table: CodeTable | None = None,
                 roles: Disciplines | None = None) -> UnitAssignment:
    """Billed units for each charge of one patient and date of service.

    Untimed codes bill the charted units (1 when none). Timed codes bill from
    minutes; a timed code charted with units but no minutes keeps its units
    and is held, since the time rule cannot be checked. (`table` and `roles`: the code table and the
    discipline rules, when the caller has them at hand.)
    """
    if method not in ROUNDING_METHODS:
        raise ValueError(f"unknown rounding method {method!r}; expected one of {ROUNDING_METHODS}")
    table = table or code_table()
    roles = roles or disciplines()
    source = CMS_SOURCE if method == CMS_TOTAL_TIME else MIDPOINT_SOURCE
    rule = "8-minute-rule" if method == CMS_TOTAL_TIME else "cpt-midpoint"
    units: dict[str, int] = {}
    issues: list[Issue] = []
    merged: dict[str, str] = {}
    groups: dict[str, _Group] = {}
    present = {c.cpt for c in charges}

    for c in charges:
        info = table[c.cpt]
        if not info.timed:
            units[c.charge_id] = c.units if c.units is not None else 1
            if c.units == 0:
                issues.append(Issue(
                    Severity.REJECT, "units", f"{c.cpt} on {c.service_date}: charted 0 units; nothing to bill",
                    f"mappings/{CODE_TABLE} (untimed code: charted units)", charge_id=c.charge_id,
                    column="units", value="0"))
        elif c.minutes is None:
            if c.units:
                units[c.charge_id] = c.units
                issues.append(Issue(
                    Severity.HOLD, rule,
                    f"{c.cpt} on {c.service_date}: timed code charted as {c.units} unit(s) without minutes; "
                    f"add the treatment minutes so the units can be checked",
                    source, charge_id=c.charge_id, column="minutes"))
            else:
                units[c.charge_id] = 0
                issues.append(Issue(
                    Severity.REJECT, rule,
                    f"{c.cpt} on {c.service_date}: timed code charted without minutes or units; "
                    f"add the treatment minutes", source, charge_id=c.charge_id, column="minutes"))
        else:
            # An add-on joins its primary's family when the primary is charted the same day.
            key = info.addon_to if info.addon_to in present else c.cpt
            groups.setdefault(key, _Group(key)).charges.append(c)

    minutes = {k: g.minutes for k, g in groups.items()}
    pool = {k: g for k, g in groups.items() if method == CMS_TOTAL_TIME and _unit_of(table[k]) == POOL_UNIT}
    pool_units = allocate_total_time({k: minutes[k] for k in pool})
    pool_total = sum(minutes[k] for k in pool)

    for key, group in groups.items():
        issues += _split_group(group, minutes[key], pool_units.get(key), table, roles, units, merged, rule, source)

    # Every timed charge left without units is reported once, with the reason.
    explained = {i.charge_id for i in issues} | set(merged)
    for key, group in groups.items():
        for c in group.charges:
            if units[c.charge_id] or c.charge_id in explained:
                continue
            if key not in pool:
                why = f"{minutes[key]} min do not pass the midpoint of a {_unit_of(table[c.cpt])}-minute unit"
            elif len(pool) == 1 and group.primary == c.cpt:
                why = "a lone timed service under 8 minutes is not billable"
            else:
                why = (f"the day's {pool_total} timed minutes allow {units_for_total_minutes(pool_total)} unit(s), "
                       f"which went to codes with more (or, on a tie, earlier-charted) minutes; keep it documented")
            issues.append(Issue(
                Severity.REJECT, rule, f"{c.cpt} on {c.service_date} ({c.minutes} min) not billed: {why}",
                source, charge_id=c.charge_id, column="minutes", value=str(c.minutes)))
    return UnitAssignment(units, issues, merged)


def _unit_of(info: CodeInfo) -> int:
    return info.unit_minutes or POOL_UNIT


def _split_group(group: _Group, minutes: int, pooled_units: int | None, table: CodeTable, roles: Disciplines,
                 units: dict[str, int], merged: dict[str, str], rule: str, source: str) -> list[Issue]:
    """Give a group's units to its charges: one line per code, date and role (therapist or assistant).

    minutes are the group's (group.minutes); pooled_units is the 8-minute-rule allocation; None means round
    the group by the midpoint rule. In a first-unit family the primary gets one unit and the
    add-on the rest. Each code's units are split between therapist and assistant
    by the de minimis standard; further charges of the same code and role are
    merged into the first one's line.
    """
    issues: list[Issue] = []
    primary = table[group.primary]
    addons = table.addons(group.primary)
    by_code: dict[str, list[Charge]] = {}
    for c in group.charges:
        by_code.setdefault(c.cpt, []).append(c)

    if not addons:
        n = pooled_units if pooled_units is not None else midpoint_units(minutes, _unit_of(primary))
        shares = {group.primary: n}
    else:
        addon = next((a for a in by_code if a in addons), None) or sorted(addons)[0]
        if pooled_units is not None:
            first = min(pooled_units, 1)
            rest = pooled_units - first
        else:
            first = min(midpoint_units(minutes, _unit_of(primary)), 1)
            rest = midpoint_units(minutes - _unit_of(primary), _unit_of(table[addon]))
        shares = {group.primary: first, addon: rest}
        if rest and addon not in by_code:
            c = by_code[group.primary][0]
            issues.append(Issue(
                Severity.HOLD, rule,
                f"{c.cpt} on {c.service_date}: {minutes} min come to {first + rest} units but {c.cpt} is billed "
                f"once a day; add a {addon} charge for the other {rest} unit(s)",
                source, charge_id=c.charge_id, column="minutes", value=str(minutes)))

    for code, charged in by_code.items():
        therapist = [c for c in charged if not roles.role(c.rendering_role).assistant]
        assistant = [c for c in charged if roles.role(c.rendering_role).assistant]
        split = split_units(sum(c.minutes or 0 for c in therapist), sum(c.minutes or 0 for c in assistant),
                            shares.get(code, 0), _unit_of(table[code]))
        keeps: list[Charge] = []
        for rows, n in ((therapist, split[0]), (assistant, split[1])):
            if rows:
                units[rows[0].charge_id] = n
                keeps.append(rows[0])
                for c in rows[1:]:
                    units[c.charge_id] = 0
                    merged[c.charge_id] = rows[0].charge_id
        if len(keeps) == 2 and shares.get(code, 0):
            # A role left without a unit furnished too little of it to count apart (de minimis):
            # its minutes and charge ride on the other role's line.
            empty, full = (keeps[0], keeps[1]) if not units[keeps[0].charge_id] else (keeps[1], keeps[0])
            if not units[empty.charge_id]:
                for cid, target in list(merged.items()):
                    if target == empty.charge_id:
                        merged[cid] = full.charge_id
                merged[empty.charge_id] = full.charge_id
        by_id = {c.charge_id: c for c in charged}
        for cid, target in merged.items():
            if cid in by_id:
                c = by_id[cid]
                issues.append(Issue(
                    Severity.WARNING, "same-code-combined",
                    f"{c.cpt} on {c.service_date}: charge {cid} ({c.minutes} min, {c.rendering_role}) is billed "
                    f"on charge {target}'s line: one line per code and date for the therapist's units and one "
                    f"for the assistant's, minutes and charges summed", source, charge_id=cid,
                    column="cpt", value=c.cpt))
    return issues
