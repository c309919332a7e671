"""Expected allowed amounts per line (mappings/fees/schedules.yaml).

Medicare PFS (non-facility), per unit: (work + PE + MP RVU) x CF nationally;
priced for a Medicare locality ("<mac>-<locality>", e.g. "15202-00" for Ohio)
(work x GPCIw + PE x GPCIpe + MP x GPCImp) x CF with the GPCIs of the
schedule's gpci file (ot_billing_rules.md §2.12, §6.1).
Therapy MPPR for codes with MULT PROC indicator 5: the single unit with the
highest practice-expense RVU of the day is paid in full; every other unit and
procedure of those codes has its PE multiplied by the schedule's factor (0.5).
An assistant (CO) line is then multiplied by the payer's factor (0.85).
Status B (bundled) and I (invalid for Medicare) codes are $0.
Each unit is rounded to cents (half up) and the line is the sum of its units.
The MPPR ranking uses the PE RVU: one locality has one PE GPCI, so the
order is the same as by the locality-adjusted PE.

Per-unit tables (Medicaid, commercial): the table's allowed amount per unit,
times the payer's assistant factor where it has one. No MPPR: the tables carry
no RVU split.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import cached_property, lru_cache

from otedi import config
from otedi.errors import ConfigError
from otedi.issues import Issue, Severity

SCHEDULES_FILE = "fees/schedules.yaml"
VINTAGE_RULE = "fee-schedule-vintage"  # priced from another period's file: the same for every visit of that year
CENT = Decimal("0.01")
METHODS = ("medicare_pfs", "per_unit")
UNPAID_STATUS = ("B", "I")


@dataclass(frozen=True)
class PfsRate:
    hcpcs: str
    status: str
    work_rvu: Decimal
    pe_rvu: Decimal  # non-facility
    mp_rvu: Decimal
    mult_proc: str
    conversion_factor: Decimal
    pctc: str = ""  # PC/TC indicator; 7 = therapy not payable to a private-practice therapist in a hospital


@dataclass(frozen=True)
class Gpci:
    """One Medicare locality's geographic practice cost indices (CMS Addendum E)."""

    mac: str
    locality: str
    locality_name: str
    state: str
    work: Decimal
    pe: Decimal
    mp: Decimal

    @property
    def key(self) -> str:
        return f"{self.mac}-{self.locality}"


@dataclass(frozen=True)
class FeeSchedule:
    schedule_id: str
    method: str  # medicare_pfs | per_unit
    file: str
    effective_from: date
    effective_to: date | None
    source: str
    mppr_pe_factor: Decimal | None = None
    pfs: dict[str, PfsRate] = field(default_factory=dict)
    per_unit: dict[str, Decimal] = field(default_factory=dict)
    gpci_file: str | None = None  # medicare_pfs: the locality GPCI table in mappings/fees/
    gpci_source: str = ""
    gpci_effective_from: date | None = None
    gpci_effective_to: date | None = None
    gpcis: dict[str, Gpci] = field(default_factory=dict)  # by "<mac>-<locality>"
    gpci: Gpci | None = None  # set on a schedule priced for one locality; None: national (GPCIs 1.0)

    def covers(self, day: date) -> bool:
        return self.effective_from <= day and (self.effective_to is None or day <= self.effective_to)

    @property
    def locality(self) -> str | None:
        return self.gpci.key if self.gpci else None

    def localized(self, locality: str) -> FeeSchedule:
        """This schedule priced with one locality's GPCIs."""
        if not self.gpci_file:
            raise ConfigError(f"fee schedule {self.schedule_id!r} ({self.file}) has no gpci file in "
                              f"{config.mappings_dir() / SCHEDULES_FILE}; cannot price locality {locality!r}")
        gpci = self.gpcis.get(locality.strip())
        if gpci is None:
            raise ConfigError(
                f"Medicare locality {locality!r} is not in {config.mappings_dir() / 'fees' / self.gpci_file} "
                f"(give \"<mac>-<locality>\", e.g. \"15202-00\" for Ohio)")
        return replace(self, gpci=gpci)

    def gpci_covers(self, day: date) -> bool:
        return (self.gpci_effective_from is None or self.gpci_effective_from <= day) and \
            (self.gpci_effective_to is None or day <= self.gpci_effective_to)

    def pfs_unit_amount(self, rate: PfsRate, discounted: bool, factor: Decimal | int) -> Decimal:
        """One unit of a PFS code at this schedule's locality, rounded to cents: its PE times the MPPR factor
        when `discounted`, the whole times `factor` (the assistant's, or 1). Each combination is priced once."""
        key = (rate.hcpcs, discounted, factor)
        amount = self._unit_amounts.get(key)
        if amount is None:
            g = self.gpci
            work_g, pe_g, mp_g = (g.work, g.pe, g.mp) if g else (Decimal(1), Decimal(1), Decimal(1))
            pe = rate.pe_rvu * self.mppr_pe_factor if discounted else rate.pe_rvu
            amount = (rate.work_rvu * work_g + pe * pe_g + rate.mp_rvu * mp_g) * rate.conversion_factor
            amount = self._unit_amounts[key] = _cents(amount * factor)
        return amount

    @cached_property
    def _unit_amounts(self) -> dict[tuple[str, bool, Decimal | int], Decimal]:
        return {}


@dataclass(frozen=True)
class PricingLine:
    charge_id: str
    cpt: str
    units: int
    assistant: bool  # CO line


def fee_schedule(schedule_id: str, day: date,
                 locality: str | None = None) -> tuple[FeeSchedule, Issue | None]:
    """The schedule in effect on a date; else the nearest in time, with a warning.

    locality ("<mac>-<locality>", e.g. "15202-00"): a medicare_pfs schedule is
    priced with that locality's GPCIs (ConfigError if the gpci file lacks it);
    None, or a per_unit schedule: unchanged (national, GPCIs 1.0).
    """
    versions = [s for s in _schedules(str(config.mappings_dir())) if s.schedule_id == schedule_id]
    if not versions:
        raise ConfigError(f"fee schedule {schedule_id!r} is not listed in {config.mappings_dir() / SCHEDULES_FILE}")
    chosen = next((s for s in versions if s.covers(day)), None)
    if chosen is not None:
        if locality is None or chosen.method != "medicare_pfs":
            return chosen, None
        chosen = chosen.localized(locality)
        if chosen.gpci_covers(day):
            return chosen, None
        return chosen, Issue(
            Severity.WARNING, VINTAGE_RULE,
            f"no GPCIs in effect on {day} for {schedule_id}; locality {chosen.locality} priced with "
            f"{chosen.gpci_file} ({chosen.gpci_effective_from} to {chosen.gpci_effective_to or 'open'}) - add "
            f"that year's GPCI file to {SCHEDULES_FILE}", f"mappings/{SCHEDULES_FILE}",
            value=f"{chosen.gpci_file} for {day.year}")
    nearest = min(versions, key=lambda s: min(abs((s.effective_from - day).days),
                                                abs(((s.effective_to or day) - day).days)))
    if locality is not None and nearest.method == "medicare_pfs":
        nearest = nearest.localized(locality)
    return nearest, Issue(
        Severity.WARNING, VINTAGE_RULE,
        f"no {schedule_id} schedule in effect on {day}; expected amounts priced from {nearest.file} "
        f"({nearest.effective_from} to {nearest.effective_to or 'open'}) - add that year's file to "
        f"{SCHEDULES_FILE}", f"mappings/{SCHEDULES_FILE}", value=f"{nearest.file} for {day.year}")


def price_lines(lines: Sequence[PricingLine], schedule: FeeSchedule,
                assistant_factor: Decimal | None) -> tuple[dict[str, Decimal | None], list[Issue]]:
    """Expected allowed amount of each line of one patient and date (None: no rate)."""
    factor = assistant_factor if assistant_factor is not None else Decimal(1)
    amounts: dict[str, Decimal | None] = {}
    issues: list[Issue] = []
    if schedule.method == "per_unit":
        for ln in lines:
            rate = schedule.per_unit.get(ln.cpt)
            amounts[ln.charge_id] = None if rate is None else \
                _cents(rate * (factor if ln.assistant else 1)) * ln.units
    else:
        full_unit_line = _highest_pe_line(lines, schedule)
        for ln in lines:
            rate = schedule.pfs.get(ln.cpt)
            if rate is None:
                amounts[ln.charge_id] = None
                continue
            if rate.status in UNPAID_STATUS:
                amounts[ln.charge_id] = Decimal("0.00")
                continue
            total = Decimal("0.00")
            for unit in range(ln.units):
                discounted = rate.mult_proc == "5" and not (ln.charge_id == full_unit_line and unit == 0)
                total += schedule.pfs_unit_amount(rate, discounted, factor if ln.assistant else 1)
            amounts[ln.charge_id] = total
    for ln in lines:
        if amounts[ln.charge_id] is None:
            issues.append(Issue(
                Severity.WARNING, "fee-schedule",
                f"{ln.cpt}: no allowed amount in {schedule.file}; the line has no expected payment "
                f"(and adds nothing to the KX threshold) - add the code to the schedule if this payer pays it",
                f"mappings/fees/{schedule.file}", charge_id=ln.charge_id, column="cpt", value=ln.cpt))
    return amounts, issues


def _highest_pe_line(lines: Sequence[PricingLine], schedule: FeeSchedule) -> str | None:
    """The line whose first unit is the day's full-price MPPR unit (highest PE, then total RVU)."""
    ranked = [(ln, schedule.pfs[ln.cpt]) for ln in lines
              if ln.units and ln.cpt in schedule.pfs and schedule.pfs[ln.cpt].mult_proc == "5"
              and schedule.pfs[ln.cpt].status not in UNPAID_STATUS]
    if not ranked:
        return None
    best = max(ranked, key=lambda p: (p[1].pe_rvu, p[1].work_rvu + p[1].pe_rvu + p[1].mp_rvu,
                                      -lines.index(p[0])))
    return best[0].charge_id


def _cents(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


@lru_cache(maxsize=4)
def _schedules(root: str) -> tuple[FeeSchedule, ...]:
    d = config.load_yaml(SCHEDULES_FILE)
    out = []
    for i, s in enumerate(d.get("schedules") or [], start=1):
        where = f"{config.mappings_dir() / SCHEDULES_FILE} schedule {i}"
        try:
            if s["method"] not in METHODS:
                raise ValueError(f"method {s['method']!r} is not one of {METHODS}")
            path = config.mappings_dir() / "fees" / s["file"]
            medicare = s["method"] == "medicare_pfs"
            g = (s.get("gpci") or {}) if medicare else {}
            out.append(FeeSchedule(
                schedule_id=s["id"], method=s["method"], file=s["file"],
                effective_from=s["effective_from"], effective_to=s.get("effective_to"), source=s["source"],
                mppr_pe_factor=Decimal(str(s["mppr_pe_factor"])) if medicare else None,
                pfs=_read_pfs(path) if medicare else {},
                per_unit={} if medicare else _read_per_unit(path),
                gpci_file=g["file"] if g else None, gpci_source=g["source"] if g else "",
                gpci_effective_from=g.get("effective_from"), gpci_effective_to=g.get("effective_to"),
                gpcis=_read_gpci(config.mappings_dir() / "fees" / g["file"]) if g else {},
            ))
        except KeyError as exc:
            raise ConfigError(f"{where}: missing key {exc}") from None
        except (ValueError, InvalidOperation) as exc:
            raise ConfigError(f"{where}: {exc!r}") from None
    return tuple(out)


def _read_pfs(path) -> dict[str, PfsRate]:
    out = {}
    for n, r in enumerate(_csv(path), start=2):
        try:
            out[r["hcpcs"].strip().upper()] = PfsRate(
                hcpcs=r["hcpcs"].strip().upper(), status=r["status_code"].strip(),
                work_rvu=Decimal(r["work_rvu"]), pe_rvu=Decimal(r["nonfacility_pe_rvu"]), mp_rvu=Decimal(r["mp_rvu"]),
                mult_proc=r["mult_proc_indicator"].strip(), conversion_factor=Decimal(r["conversion_factor"]),
                pctc=(r.get("pctc_indicator") or "").strip())
        except (KeyError, InvalidOperation) as exc:
            raise ConfigError(f"{path} line {n}: {exc!r}") from None
    return out


def medicare_localities() -> dict[str, dict[str, Gpci]]:
    """The localities ("<mac>-<locality>") of each GPCI file the medicare_pfs schedules name."""
    out: dict[str, dict[str, Gpci]] = {}
    for s in _schedules(str(config.mappings_dir())):
        if s.gpci_file:
            out.setdefault(s.gpci_file, {}).update(s.gpcis)
    return out


def _read_gpci(path) -> dict[str, Gpci]:
    out: dict[str, Gpci] = {}
    for n, r in enumerate(_csv(path), start=2):
        try:
            g = Gpci(mac=r["mac"].strip(), locality=r["locality"].strip(), locality_name=r["locality_name"].strip(),
                     state=r["state"].strip().upper(), work=Decimal(r["work_gpci"]), pe=Decimal(r["pe_gpci"]),
                     mp=Decimal(r["mp_gpci"]))
        except (KeyError, InvalidOperation) as exc:
            raise ConfigError(f"{path} line {n}: {exc!r}") from None
        if g.key in out:
            raise ConfigError(f"{path} line {n}: locality {g.key} is listed twice")
        out[g.key] = g
    return out


def _read_per_unit(path) -> dict[str, Decimal]:
    out = {}
    for n, r in enumerate(_csv(path), start=2):
        try:
            out[r["hcpcs"].strip().upper()] = Decimal(r["allowed_per_unit"])
        except (KeyError, InvalidOperation) as exc:
            raise ConfigError(f"{path} line {n}: {exc!r}") from None
    return out


def _csv(path) -> list[dict[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
