"""Synthetic charge extracts in the canonical layout, for demos, tests and benchmarks.

The data imitates three practices over most of a year: an adult
neuro/general OT clinic (BRIGHTHANDS), a pediatric OT clinic (KIDSTHRIVE)
and a hand therapy group (HANDWORKS) that bills PT beside OT. Patients keep
their demographics and insurance; each comes for an episode of care (1-3
visits a week for 4-10 weeks, a few longer than the 90 certified days, some
return for a second episode) that opens with an evaluation by a therapist
and continues with 2-4 timed codes a visit from the therapist or an
assistant (the assistant's rows name the supervising therapist; on some
visits both chart minutes of the same code). A third of HANDWORKS's OT
episodes come with a PT episode on the same days. Each episode has a plan
of care (start, physician signature a few days later - late or missing for
a few -, certified for 90 days) and a progress report every 10th treatment
day (a few late). Some working-aged Medicare patients have an employer plan
as primary and Medicare as secondary (MSP type 12): their rows come twice,
once per payer. Some Medicare-primary patients are dual eligible: Ohio
Medicaid is their secondary payer (payer_sequence S, its own member id), so
their rows come twice too, and most of them are Qualified Medicare
Beneficiaries (qmb Y on all their rows; N for the other duals); a few more
are QMBs whose Medicaid coverage the practice has not on file (Medicare rows
only, qmb Y). Everyone else's qmb is empty. Units use the EHR's per-code
midpoint rounding and charge_amount is the practice's chargemaster price
times units.

Everything is drawn from random.Random(seed), so the same seed gives the
same rows; whether a Medicare patient is dual eligible or a QMB is drawn
from a generator of its own (seed and patient number), so those draws leave
every other row as the main sequence makes it (the Medicaid rows take their
share of the row count, though). Every name, NPI, id and address is made
up. With defect_rate > 0 that share of rows gets one defect a biller would
meet in a real extract.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pandas as pd

from otedi.charges.record import CANONICAL_COLUMNS
from otedi.charges.validate import npi_is_valid
from otedi.coding import codes
from otedi.errors import ExtractError

BUNDLING_CODES = frozenset({"97150", "97760", "97763"})
SPAN_DAYS = 300  # by default, visits fall within this many days from `start`


@dataclass(frozen=True)
class Payer:
    payer_id: str
    payer_name: str
    filing_code: str


MEDICARE = Payer("15202", "CGS MEDICARE PART B OHIO", "MB")
MEDICAID = Payer("OHMCD", "OHIO MEDICAID", "MC")
COMMERCIAL = Payer("87726", "UNITEDHEALTHCARE", "CI")
EMPLOYER_PLAN = Payer("DEMOEGHP", "EMPLOYER GROUP HEALTH PLAN (DEMO)", "CI")
DUAL_SHARE = 0.15  # Medicare-primary patients who are dual eligible, Ohio Medicaid on file as their secondary
QMB_SHARE = 0.8  # of those, the Qualified Medicare Beneficiaries (the others: other full-benefit duals)
QMB_ONLY_SHARE = 0.04  # Medicare-primary patients who are QMBs without their Medicaid coverage on file

# Chargemaster list prices (one unit) at BRIGHTHANDS; the others scale it (see _Practice.price_factor).
BASE_PRICES = {
    "97165": 195, "97166": 225, "97167": 260, "97168": 140,
    "97110": 68, "97112": 74, "97140": 66, "97530": 80, "97533": 98, "97535": 72, "97542": 70,
    "97760": 88, "97763": 78, "97129": 64, "97130": 58, "97150": 42, "97018": 28,
    "97161": 190, "97162": 215, "97163": 250, "97164": 135, "97116": 66,
}
EVALUATIONS = {"OT": (("97165", 3), ("97166", 5), ("97167", 2)), "PT": (("97161", 3), ("97162", 5), ("97163", 2))}
REEVALUATION = {"OT": "97168", "PT": "97164"}
PT_TIMED = (("97110", 4), ("97112", 2), ("97140", 3), ("97530", 2), ("97116", 2))
PROGRESS_EVERY = 10  # treatment days between progress reports (MBPM ch.15 §220.3.D)
COGNITIVE = "97129"  # stands for the 97129 + 97130 pair in a practice's code mix

LAST_NAMES = (
    "SMITH JOHNSON WILLIAMS BROWN JONES MILLER DAVIS WILSON ANDERSON TAYLOR THOMAS MOORE MARTIN JACKSON "
    "THOMPSON WHITE HARRIS CLARK LEWIS ROBINSON WALKER YOUNG ALLEN KING WRIGHT SCOTT HILL GREEN ADAMS BAKER "
    "NELSON CARTER MITCHELL ROBERTS TURNER PHILLIPS CAMPBELL PARKER EVANS EDWARDS COLLINS STEWART MORRIS "
    "MURPHY COOK ROGERS MORGAN PETERSON COOPER REED BAILEY BELL KELLY HOWARD WARD COX RICHARDSON WOOD"
).split()
FEMALE_NAMES = (
    "MARY PATRICIA LINDA BARBARA ELIZABETH JENNIFER SUSAN MARGARET DOROTHY KAREN NANCY BETTY HELEN SANDRA "
    "DONNA CAROL RUTH SHARON MICHELLE LAURA SARAH KIMBERLY DEBORAH JESSICA SHIRLEY ANGELA MELISSA AMY ANNA"
).split()
MALE_NAMES = (
    "JAMES JOHN ROBERT MICHAEL WILLIAM DAVID RICHARD JOSEPH THOMAS CHARLES DANIEL MATTHEW ANTHONY DONALD "
    "MARK PAUL STEVEN ANDREW KENNETH GEORGE JOSHUA KEVIN BRIAN EDWARD RONALD TIMOTHY JASON JEFFREY GARY LARRY"
).split()
GIRL_NAMES = "EMMA OLIVIA AVA SOPHIA ISABELLA MIA AMELIA HARPER EVELYN ABIGAIL ELLA LILY CHLOE GRACE ZOEY NORA".split()
BOY_NAMES = "LIAM NOAH OLIVER ELIJAH LUCAS MASON LOGAN ETHAN AIDEN JACKSON LEVI OWEN CALEB HENRY WYATT ELI".split()
STREETS = (
    "MAIN ST", "HIGH ST", "OAK AVE", "MAPLE DR", "ELM ST", "PARK AVE", "CEDAR LN", "WALNUT ST", "LINCOLN AVE",
    "WASHINGTON BLVD", "RIDGE RD", "SPRING ST", "CHURCH ST", "HILLCREST DR", "LAKEVIEW DR", "SUMMIT AVE",
)
PHYSICIANS = (
    ("PATEL", "ANIL"), ("NGUYEN", "LINH"), ("OKAFOR", "CHIDI"), ("SCHULTZ", "KAREN"), ("RAMIREZ", "LUIS"),
    ("CHEN", "MEI"), ("GOLDBERG", "DAVID"), ("MURRAY", "ELLEN"), ("HASSAN", "OMAR"), ("BECKER", "ANNE"),
    ("FISCHER", "PAUL"), ("IYER", "RADHA"), ("O'BRIEN", "SEAN"), ("KOWALSKI", "JANET"), ("DIAZ", "MARCO"),
)
THERAPISTS = (
    ("ABBOTT", "CLAIRE"), ("BURNS", "MEGAN"), ("CHANG", "KEVIN"), ("DOYLE", "RACHEL"), ("ELLIS", "TARA"),
    ("FOSTER", "NINA"), ("GRAVES", "OWEN"), ("HOLT", "PAIGE"), ("IRWIN", "DANA"), ("JENSEN", "ERIK"),
    ("KEMP", "LAURA"), ("LOPEZ", "ANA"), ("MEYER", "JOSH"), ("NOLAN", "KATIE"), ("ORTIZ", "SOFIA"),
)
PHYSICAL_THERAPISTS = (("PRICE", "ADAM"), ("QUINN", "HOLLY"), ("RHODES", "VICTOR"))  # HANDWORKS: 2 PTs, 1 PTA


@dataclass(frozen=True)
class _Practice:
    practice_id: str
    places: tuple[tuple[str, str], ...]  # (city, zip) where its patients live
    ages: tuple[int, int]
    older_share: float  # share of adult patients aged 65 or more
    primary_dx: tuple[str, ...]
    secondary_dx: tuple[str, ...]
    timed: tuple[tuple[str, int], ...]  # (code, weight)
    price_factor: Decimal
    charts_go: bool  # this EHR charts GO (and CO, RT/LT) itself
    group_share: float = 0.0  # visits that include a 97150 group session
    paraffin_share: float = 0.0  # visits that start with 97018
    pt_share: float = 0.0  # OT episodes that come with a PT episode on the same days


PRACTICES = (
    _Practice(
        "BRIGHTHANDS",
        (("COLUMBUS", "43201"), ("COLUMBUS", "43204"), ("COLUMBUS", "43214"), ("COLUMBUS", "43228"),
         ("WESTERVILLE", "43081"), ("DUBLIN", "43017"), ("GROVE CITY", "43123"), ("REYNOLDSBURG", "43068")),
        (30, 92), 0.65,
        ("I69.351", "G35", "G81.91", "G20.A1", "Z47.89", "M19.011", "Z96.651", "I69.354"),
        ("M62.81", "R27.8", "R26.89", "R41.841", "R53.81", "Z91.81"),
        (("97110", 3), ("97112", 3), ("97530", 4), ("97535", 3), ("97542", 1), ("97140", 1), (COGNITIVE, 1)),
        Decimal("1.00"), False, group_share=0.08,
    ),
    _Practice(
        "KIDSTHRIVE",
        (("DAYTON", "45402"), ("DAYTON", "45405"), ("DAYTON", "45410"), ("DAYTON", "45420"),
         ("KETTERING", "45429"), ("BEAVERCREEK", "45431"), ("HUBER HEIGHTS", "45424"), ("CENTERVILLE", "45459")),
        (2, 14), 0.0,
        ("F82", "F84.0", "F88", "G80.9", "Q90.9", "F90.2", "R62.50"),
        ("R27.8", "M62.81", "H93.25", "R48.8", "F80.9"),
        (("97530", 5), ("97533", 3), ("97112", 2), ("97535", 2), ("97110", 1)),
        Decimal("0.95"), False, group_share=0.10,
    ),
    _Practice(
        "HANDWORKS",
        (("CINCINNATI", "45202"), ("CINCINNATI", "45208"), ("CINCINNATI", "45211"), ("CINCINNATI", "45230"),
         ("NORWOOD", "45212"), ("MASON", "45040"), ("FAIRFIELD", "45014")),
        (22, 88), 0.45,
        ("S62.101D", "S52.501D", "M19.041", "G56.01", "M65.4", "M72.0", "S63.501D", "S66.011D"),
        ("M25.631", "M25.641", "M79.641", "M62.81", "Z47.89"),
        (("97110", 4), ("97140", 4), ("97530", 3), ("97535", 1)),
        Decimal("1.10"), True, paraffin_share=0.25, pt_share=0.35,
    ),
)


@dataclass(frozen=True)
class _Person:
    last: str
    first: str
    role: str  # OT, OTA, PT or PTA for therapists, "" for physicians
    npi: str


@dataclass
class _Patient:
    base: dict[str, str]  # demographic and insurance columns, fixed for the patient
    practice: _Practice
    payer: Payer
    busy_until: int = -1  # day offset of the last visit of the latest episode
    secondary: dict[str, str] | None = None  # the secondary coverage's columns (Medicare MSP, Medicaid), if any


@dataclass
class _Staff:
    ots: list[_Person] = field(default_factory=list)
    otas: list[_Person] = field(default_factory=list)
    referrers: list[_Person] = field(default_factory=list)
    pts: list[_Person] = field(default_factory=list)
    ptas: list[_Person] = field(default_factory=list)

    def of(self, discipline: str) -> tuple[list[_Person], list[_Person]]:
        return (self.ots, self.otas) if discipline == "OT" else (self.pts, self.ptas)


def synthesize(rows: int, seed: int, *, start: date = date(2026, 1, 5), days: int = SPAN_DAYS,
               defect_rate: float = 0.0) -> pd.DataFrame:
    """Exactly `rows` charge lines in the canonical layout (every value a string), sorted by
    service date, all within `days` days from `start`; charge_id is C + a zero-padded sequence number."""
    if rows < 0 or not 0.0 <= defect_rate <= 1.0 or days < 28:
        raise ValueError("rows must be >= 0, days at least 28 and defect_rate between 0 and 1")
    rng = random.Random(seed)
    staff = _staff()
    patients: dict[str, list[_Patient]] = {p.practice_id: [] for p in PRACTICES}
    lines: list[dict] = []
    while len(lines) < rows:
        practice = rng.choices(PRACTICES, weights=(4, 3, 3))[0]
        pool = [p for p in patients[practice.practice_id] if p.busy_until < days - 60]
        if pool and rng.random() < 0.2:
            patient = rng.choice(pool)  # a patient back for another episode
        else:
            patient = _new_patient(rng, practice, sum(map(len, patients.values())) + 1, start, seed)
            patients[practice.practice_id].append(patient)
        episode = _episode(rng, patient, staff[practice.practice_id], start, days, len(lines))
        if episode and practice.pt_share and rng.random() < practice.pt_share:
            visit_days = sorted({line["service_date"] for line in episode})
            episode += _episode(rng, patient, staff[practice.practice_id], start, days, len(lines) + len(episode),
                                discipline="PT", on_days=visit_days)
        lines.extend(episode)
        if patient.secondary:  # the same services exported again for the secondary payer
            lines.extend([{**line, **patient.secondary, "_seq": line["_seq"] + 0.5} for line in episode])
    lines.sort(key=lambda r: (r["service_date"], r["practice_id"], r["patient_id"], r["_seq"]))
    del lines[rows:]
    width = max(6, len(str(rows)))
    for n, line in enumerate(lines, start=1):
        line["charge_id"] = f"C{n:0{width}d}"
    if defect_rate:
        _inject_defects(random.Random(f"defects-{seed}"), lines, defect_rate)
    return pd.DataFrame.from_records(lines, columns=list(CANONICAL_COLUMNS)).astype("str")


def write_extract(frame: pd.DataFrame, path: str | Path) -> None:
    """Write a canonical frame as CSV (UTF-8), XLSX or Parquet, chosen by the suffix; all values as text."""
    path = Path(path)
    suffix = path.suffix.lower()
    frame = frame.astype("str")
    if suffix == ".csv":
        frame.to_csv(path, index=False, encoding="utf-8")
    elif suffix == ".xlsx":
        frame.to_excel(path, index=False, sheet_name="Charges")
    elif suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        raise ExtractError(
            str(path), f"unknown file type {path.suffix or '(no suffix)'!r}; use .csv, .xlsx or .parquet")


def synth_charges(rows: int, seed: int, out: str | Path, defect_rate: float = 0.0,
                  start: date = date(2026, 1, 5), days: int = SPAN_DAYS) -> int:
    """`otedi synth charges`: write a synthetic extract; returns the number of rows written."""
    frame = synthesize(rows, seed, start=start, days=days, defect_rate=defect_rate)
    write_extract(frame, out)
    return len(frame)


# --- people ----------------------------------------------------------------------------------

def _npi(rng: random.Random) -> str:
    stem = "1" + "".join(rng.choice("0123456789") for _ in range(8))
    return next(stem + d for d in "0123456789" if npi_is_valid(stem + d))


def _staff() -> dict[str, _Staff]:
    """Each practice's therapists and referring physicians: the same for every seed."""
    rng = random.Random("otedi-staff")
    out = {}
    for i, practice in enumerate(PRACTICES):
        names = THERAPISTS[i * 5:(i + 1) * 5]
        staff = _Staff(
            ots=[_Person(last, first, "OT", _npi(rng)) for last, first in names[:3]],
            otas=[_Person(last, first, "OTA", _npi(rng)) for last, first in names[3:]],
            referrers=[_Person(last, first, "", _npi(rng)) for last, first in PHYSICIANS[i * 5:(i + 1) * 5]],
        )
        out[practice.practice_id] = staff
    pt_rng = random.Random("otedi-staff-pt")
    hand = out["HANDWORKS"]
    hand.pts = [_Person(last, first, "PT", _npi(pt_rng)) for last, first in PHYSICAL_THERAPISTS[:2]]
    hand.ptas = [_Person(last, first, "PTA", _npi(pt_rng)) for last, first in PHYSICAL_THERAPISTS[2:]]
    return out


def _birth_date(rng: random.Random, age: int, on: date) -> date:
    return date(on.year - age - 1, 1, 1) + timedelta(days=rng.randrange(365))


def _mbi(rng: random.Random) -> str:
    """A Medicare Beneficiary Identifier shaped id (made up)."""
    letters = "ACDEFGHJKMNPQRTUVWXY"
    alnum = letters + "0123456789"
    pattern = ("123456789", letters, alnum, "0123456789", letters, alnum, "0123456789", letters, letters,
               "0123456789", "0123456789")
    return "".join(rng.choice(chars) for chars in pattern)


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def _new_patient(rng: random.Random, practice: _Practice, number: int, start: date, seed: int) -> _Patient:
    lo, hi = practice.ages
    child = hi < 18
    if child:
        age = rng.randint(lo, hi)
    elif rng.random() < practice.older_share:
        age = rng.randint(65, hi)
    else:
        age = rng.randint(lo, 64)
    sex = rng.choice("FM")
    if child:
        first = rng.choice(GIRL_NAMES if sex == "F" else BOY_NAMES)
    else:
        first = rng.choice(FEMALE_NAMES if sex == "F" else MALE_NAMES)
    last = rng.choice(LAST_NAMES)
    city, zip5 = rng.choice(practice.places)
    base = {
        "practice_id": practice.practice_id,
        "patient_id": f"P{number:07d}",
        "patient_last_name": last,
        "patient_first_name": first,
        "patient_dob": _birth_date(rng, age, start).isoformat(),
        "patient_sex": sex,
        "patient_address1": f"{rng.randint(10, 9899)} {rng.choice(STREETS)}",
        "patient_city": city,
        "patient_state": "OH",
        "patient_zip": zip5 + (f"-{_digits(rng, 4)}" if rng.random() < 0.2 else ""),
        "payer_sequence": "P",
        "group_number": "",
        "relationship": "18",
        "subscriber_last_name": "", "subscriber_first_name": "", "subscriber_dob": "", "subscriber_sex": "",
        "qmb": "",
    }
    roll = rng.random()
    secondary = None
    if child:
        payer = MEDICAID if roll < 0.6 else COMMERCIAL
        # A Medicaid child has a member id of their own and is the subscriber; a few EHRs still chart the parent.
        if payer is COMMERCIAL or rng.random() < 0.03:
            parent_sex = "F" if rng.random() < 0.7 else "M"
            base.update(relationship="19", subscriber_last_name=last, subscriber_sex=parent_sex,
                        subscriber_first_name=rng.choice(FEMALE_NAMES if parent_sex == "F" else MALE_NAMES),
                        subscriber_dob=_birth_date(rng, age + rng.randint(22, 40), start).isoformat())
    elif age >= 65:
        payer = MEDICARE if roll < 0.88 else COMMERCIAL
        if payer is MEDICARE and age <= 74 and rng.random() < 0.3:
            # Working aged: the employer's group plan pays first, Medicare second (MSP type 12).
            payer = EMPLOYER_PLAN
            secondary = {"payer_id": MEDICARE.payer_id, "payer_name": MEDICARE.payer_name,
                         "claim_filing_code": MEDICARE.filing_code, "payer_sequence": "S", "member_id": _mbi(rng),
                         "group_number": "", "msp_type": "12"}
    else:
        payer = COMMERCIAL if roll < 0.7 else MEDICAID
    if payer is COMMERCIAL and not child and rng.random() < 0.3:
        spouse_sex = "M" if sex == "F" else "F"
        base.update(relationship="01", subscriber_last_name=last, subscriber_sex=spouse_sex,
                    subscriber_first_name=rng.choice(FEMALE_NAMES if spouse_sex == "F" else MALE_NAMES),
                    subscriber_dob=_birth_date(rng, max(18, age + rng.randint(-6, 6)), start).isoformat())
    if payer is MEDICARE:
        member_id = _mbi(rng)
    elif payer is EMPLOYER_PLAN:
        member_id = _digits(rng, 11)
        base["group_number"] = "E" + _digits(rng, 5)
    elif payer is MEDICAID:
        member_id = "1" + _digits(rng, 11)
    else:
        member_id = _digits(rng, 9)
        if rng.random() < 0.7:
            base["group_number"] = "0" + _digits(rng, 6)
    base.update(payer_id=payer.payer_id, payer_name=payer.payer_name, claim_filing_code=payer.filing_code,
                member_id=member_id, msp_type="")
    if payer is MEDICARE:
        secondary = _dual_eligibility(random.Random(f"otedi-dual-{seed}-{number}"), base)
    return _Patient(base=base, practice=practice, payer=payer, secondary=secondary)


def _dual_eligibility(rng: random.Random, base: dict[str, str]) -> dict[str, str] | None:
    """Whether a Medicare-primary patient is dual eligible or a QMB (sets base["qmb"]); the Medicaid
    secondary coverage's columns of a dual eligible, else None."""
    roll = rng.random()
    if roll < DUAL_SHARE:
        base["qmb"] = "Y" if rng.random() < QMB_SHARE else "N"
        return {"payer_id": MEDICAID.payer_id, "payer_name": MEDICAID.payer_name,
                "claim_filing_code": MEDICAID.filing_code, "payer_sequence": "S", "member_id": "1" + _digits(rng, 11),
                "group_number": "", "msp_type": ""}
    if roll < DUAL_SHARE + QMB_ONLY_SHARE:
        base["qmb"] = "Y"
    return None


# --- visits ----------------------------------------------------------------------------------

def _pick(rng: random.Random, weighted: tuple[tuple[str, int], ...], k: int) -> list[str]:
    """k distinct codes drawn by weight."""
    choices = list(weighted)
    out = []
    for _ in range(min(k, len(choices))):
        code = rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]
        out.append(code)
        choices = [(c, w) for c, w in choices if c != code]
    return out


def _split_minutes(rng: random.Random, total: int, n: int) -> list[int]:
    """total minutes over n codes, each at least 8."""
    weights = [rng.random() + 0.3 for _ in range(n)]
    extra = total - 8 * n
    parts = [8 + int(extra * w / sum(weights)) for w in weights]
    parts[0] += total - sum(parts)
    return parts


def _units(code: str, minutes: int | None, table: dict[str, codes.CodeInfo]) -> int:
    """EHR-style per-code midpoint rounding, at least 1 unit."""
    info = table.get(code)
    if minutes is None or info is None or not info.timed:
        return 1
    size = info.unit_minutes
    return max(1, minutes // size + (1 if 2 * (minutes % size) >= size else 0))


def _timed_lines(rng: random.Random, timed: tuple[tuple[str, int], ...], total: int,
                 n: int) -> list[tuple[str, int | None]]:
    codes_ = _pick(rng, timed, n)
    out: list[tuple[str, int | None]] = []
    for code, minutes in zip(codes_, _split_minutes(rng, total, len(codes_))):
        if code == COGNITIVE and minutes >= 23:
            out += [("97129", 15), ("97130", minutes - 15)]
        else:
            out.append((code, minutes))
    return out


def _visit_codes(rng: random.Random, practice: _Practice, kind: str, visit: int,
                 in_clinic: bool, discipline: str = "OT") -> list[tuple[str, int | None]]:
    """(code, minutes) for one visit; minutes None for untimed codes. Paraffin, orthotics and
    group sessions happen in the clinic only, in OT visits."""
    timed = practice.timed if discipline == "OT" else PT_TIMED
    if kind == "eval":
        evaluations = EVALUATIONS[discipline]
        code = rng.choices([c for c, _ in evaluations], weights=[w for _, w in evaluations])[0]
        n = rng.choice((0, 1, 1, 2))
        return [(code, None)] + (_timed_lines(rng, timed, rng.randint(8 * n, 22 * n), n) if n else [])
    if kind == "reeval":
        return [(REEVALUATION[discipline], None)] + _timed_lines(rng, timed, rng.randint(16, 30), rng.choice((1, 2)))
    if discipline != "OT":
        return _timed_lines(rng, timed, rng.randint(38, 53), rng.choice((2, 2, 3)))
    lines: list[tuple[str, int | None]] = []
    if in_clinic and practice.paraffin_share and rng.random() < practice.paraffin_share:
        lines.append(("97018", None))
    n = rng.choice((2, 3, 3, 4))
    total = rng.randint(38, 60)
    if in_clinic and practice.practice_id == "HANDWORKS" and (visit == 1 or rng.random() < 0.1):
        minutes = rng.randint(15, 30)
        lines.append(("97760" if visit == 1 else "97763", minutes))
        n, total = n - 1, total - minutes
    if in_clinic and n > 1 and practice.group_share and rng.random() < practice.group_share:
        lines.append(("97150", None))  # the group session takes one timed code's share of the time
        n, total = n - 1, total * (n - 1) // n
    return lines + _timed_lines(rng, timed, max(total, 8 * n), n)


def _visit_days(rng: random.Random, first: int, weekday: int, weeks: int, per_week: int) -> list[int]:
    """Day offsets of the visits: the first day (a weekday), then per_week weekdays a week."""
    monday = first - weekday
    days = [first]
    for week in range(weeks):
        for day_of_week in sorted(rng.sample(range(5), per_week)):
            day = monday + 7 * week + day_of_week
            if day > first:
                days.append(day)
    return days


def _episode(rng: random.Random, patient: _Patient, staff: _Staff, start: date, span: int, seq: int,
             discipline: str = "OT", on_days: list[str] | None = None) -> list[dict]:
    """The charge lines of one episode of care; `_seq` keeps the charting order within a day.
    `on_days` gives the visit dates of an episode of another discipline running alongside."""
    practice = patient.practice
    table = codes.code_table()
    if on_days is None:
        weeks = rng.randint(13, 14) if rng.random() < 0.03 else rng.randint(4, 10)  # a few outrun the 90 days
        per_week = rng.choice((1, 2, 2, 3))
        earliest = patient.busy_until + 14 if patient.busy_until >= 0 else 0
        first = rng.randint(earliest, max(earliest, span - 7 * weeks))
        weekday = (start.weekday() + first) % 7
        if weekday > 4:  # a weekend start moves to Monday
            first, weekday = first + 7 - weekday, 0
        days = [d for d in _visit_days(rng, first, weekday, weeks, per_week) if d < span]
    else:
        days = [(date.fromisoformat(d) - start).days for d in on_days]
    if not days:  # the episode would start after the span ends
        return []
    patient.busy_until = max(patient.busy_until, days[-1])

    therapists, assistants = staff.of(discipline)
    lead = rng.choice(therapists)
    assistant = rng.choice(assistants)
    referrer = rng.choice(staff.referrers)
    n_dx = rng.choice((1, 2, 2, 3, 3, 4))
    dx = [rng.choice(practice.primary_dx)] + rng.sample(practice.secondary_dx, n_dx - 1)
    side = "RT" if rng.random() < 0.75 else "LT"
    place = "12" if rng.random() < 0.12 else "11"  # office, or home visits for the whole episode
    first_day = start + timedelta(days=days[0])
    episode = {
        **patient.base,
        "referring_npi": referrer.npi, "referring_last_name": referrer.last, "referring_first_name": referrer.first,
        "dx_codes": "|".join(d.replace(".", "") for d in dx),
        # Medicaid authorizes treatment; a few charges arrive before the authorization is recorded.
        "prior_auth_number": _digits(rng, 10) if patient.payer is MEDICAID and rng.random() < 0.93 else "",
        "initial_treatment_date": first_day.isoformat(),
        **_plan_of_care(rng, first_day, start + timedelta(days=span - 1)),
    }
    reports = _progress_reports(rng, [start + timedelta(days=d) for d in days])
    modifier_of = {"OT": ("GO", "CO"), "PT": ("GP", "CQ")}[discipline]
    reeval_done = False
    lines = []
    for visit, day in enumerate(days):
        if visit == 0:
            kind = "eval"
        elif not reeval_done and visit >= 8 and rng.random() < 0.08:
            kind, reeval_done = "reeval", True
        else:
            kind = "treat"
        therapist = lead if kind != "treat" or rng.random() < 0.65 else assistant
        when = start + timedelta(days=day)
        pos = "02" if place == "11" and kind == "treat" and rng.random() < 0.06 else place  # some by telehealth
        visit_codes = _visit_codes(rng, practice, kind, visit, pos == "11", discipline)
        # Group sessions and orthotic fitting bundle the one-on-one codes under NCCI; therapists
        # usually document those as separate time blocks and chart 59 on them.
        bundling = any(code in BUNDLING_CODES for code, _ in visit_codes)
        report = max((r for r in reports if r <= when), default=None)
        rows = []
        for code, minutes in visit_codes:
            people = [(therapist, minutes)]
            if therapist is assistant and minutes and minutes >= 16 and rng.random() < 0.15:
                # The therapist also treated: both chart minutes of the same code.
                own = rng.randint(5, minutes - 8)
                people = [(lead, own), (assistant, minutes - own)]
            for person, person_minutes in people:
                rows.append((code, person, person_minutes))
        for code, person, minutes in rows:
            units = _units(code, minutes, table)
            modifiers = []
            if practice.charts_go:
                modifiers.append(modifier_of[0])
                if person is assistant:
                    modifiers.append(modifier_of[1])
                if code in ("97760", "97763"):
                    modifiers.append(side)
            if bundling and minutes is not None and code not in BUNDLING_CODES and rng.random() < 0.85:
                modifiers.append("59")
            price = (BASE_PRICES[code] * practice.price_factor).quantize(Decimal("1"))
            supervised = person is assistant
            seq += 1
            lines.append({
                **episode,
                "_seq": seq,
                "service_date": when.isoformat(),
                "place_of_service": pos,
                "rendering_npi": person.npi, "rendering_last_name": person.last,
                "rendering_first_name": person.first, "rendering_role": person.role,
                "supervising_npi": lead.npi if supervised else "",
                "supervising_last_name": lead.last if supervised else "",
                "supervising_first_name": lead.first if supervised else "",
                "progress_report_date": report.isoformat() if report else "",
                "cpt": code, "modifiers": ":".join(modifiers),
                "minutes": "" if minutes is None else str(minutes), "units": str(units),
                "charge_amount": f"{price * units:.2f}",
            })
    return lines


def _plan_of_care(rng: random.Random, first_day: date, last_day: date) -> dict[str, str]:
    """The plan starts at the evaluation and is certified for 90 days; the physician signs it a few days
    later (a few late, a few not yet signed when the extract is taken)."""
    roll = rng.random()
    signed = None if roll < 0.015 else first_day + timedelta(
        days=rng.randint(31, 50) if roll < 0.05 else rng.randint(1, 20))
    return {
        "plan_of_care_start": first_day.isoformat(),
        "plan_of_care_signed_date": signed.isoformat() if signed and signed <= last_day else "",
        "plan_of_care_certified_through": (first_day + timedelta(days=89)).isoformat(),
    }


def _progress_reports(rng: random.Random, visit_dates: list[date]) -> list[date]:
    """The therapist writes a progress report on every 10th treatment day; a few are a visit or two late."""
    reports = []
    due = PROGRESS_EVERY - 1
    while due < len(visit_dates):
        written = due + (rng.choice((1, 2)) if rng.random() < 0.04 else 0)
        if written < len(visit_dates):
            reports.append(visit_dates[written])
        due = written + PROGRESS_EVERY
    return reports


# --- defects ---------------------------------------------------------------------------------

def _inject_defects(rng: random.Random, lines: list[dict], rate: float) -> None:
    """One realistic defect on each chosen row; every defect makes the row a reject."""
    for line in lines:
        if rng.random() >= rate:
            continue
        kind = rng.choice(("npi", "deleted", "minutes", "date", "unknown"))
        if kind == "minutes" and not line["minutes"]:
            kind = "npi"  # an untimed code has no minutes to lose
        if kind == "npi":
            npi = line["rendering_npi"]
            line["rendering_npi"] = npi[:-1] + str((int(npi[-1]) + 1) % 10)
        elif kind == "deleted":
            line.update(cpt="97003", minutes="", units="1")
        elif kind == "minutes":
            line["minutes"] = ""
        elif kind == "date":
            y, m, d = line["service_date"].split("-")
            line["service_date"] = f"{m}/{d}/{y}"
        else:
            line["cpt"] = line["cpt"][:-1] + "O"  # letter O typed for a zero/digit
