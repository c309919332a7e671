"""What the simulator remembers between runs, in one JSON file (state.json):

- files: every 837P it answered (name -> sha256, run date, outcome), so a
  second run answers nothing twice;
- counters: interchange control numbers, payer claim control numbers (ICN)
  and payment trace numbers, so every answer gets fresh ones;
- deductible / kx: what each Medicare beneficiary has met this year (Part B
  deductible applied; allowed amounts toward the KX threshold, per bucket:
  "member|year|OT" for GO lines, "member|year|PT_SLP" for GP and GN lines);
- paid_lines: (payer, member, code, date) of every paid line, for duplicates;
- pending: answers not sent yet, each with the first run date that may send
  it: adjudicated claims (held back, or waiting behind their predetermination),
  predeterminations (CLP02 25), and Medicaid's claims of crossovers, queued
  when the Medicare 835 that forwarded them (CLP02 19) is sent; an answer
  leaves the list when its 835 is written, so it is never sent twice;
- paid: claims sent on an 835, which a later payment run may reverse (not
  predeterminations, nor either side of a crossover).

Written atomically (a .part file renamed over the old one) at the end of a run.
A state file from before the KX buckets ("member|year" kx keys, which only GO
lines accrued to) loads with those keys read as the OT bucket.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

from otedi.files import open_private, private_dir
from otedi.simulator.model import ClaimPayment, from_json, to_json

STATE_FILE = "state.json"
FORMAT = 1


@dataclass
class SimulatorState:
    files: dict[str, dict] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=lambda: {"interchange": 0, "icn": 0, "trace": 0})
    deductible: dict[str, Decimal] = field(default_factory=dict)  # "member|year" -> applied so far
    kx: dict[str, Decimal] = field(default_factory=dict)  # "member|year|bucket" -> allowed so far (OT, PT_SLP)
    paid_lines: dict[str, str] = field(default_factory=dict)  # "payer|member|cpt|date" -> ICN
    pending: list[ClaimPayment] = field(default_factory=list)
    paid: dict[str, ClaimPayment] = field(default_factory=dict)  # ICN -> claim as last paid
    paid_on: dict[str, str] = field(default_factory=dict)  # ICN -> ISO date of the 835

    def next(self, counter: str) -> int:
        self.counters[counter] += 1
        return self.counters[counter]

    def add(self, table: dict[str, Decimal], key: str, amount: Decimal) -> None:
        table[key] = table.get(key, Decimal("0.00")) + amount

    def record_paid(self, claim: ClaimPayment, on: date) -> None:
        self.paid[claim.icn] = claim
        self.paid_on[claim.icn] = on.isoformat()


def load_state(state_dir: Path) -> SimulatorState:
    path = state_dir / STATE_FILE
    if not path.exists():
        return SimulatorState()
    d = json.loads(path.read_text(encoding="utf-8"))
    if d.get("format") != FORMAT:
        raise ValueError(f"{path}: state format {d.get('format')!r} is not {FORMAT}")
    return SimulatorState(
        files=d["files"],
        counters=d["counters"],
        deductible={k: Decimal(v) for k, v in d["deductible"].items()},
        kx={_kx_key(k): Decimal(v) for k, v in d["kx"].items()},
        paid_lines=d["paid_lines"],
        pending=[from_json(c) for c in d["pending"]],
        paid={icn: from_json(c) for icn, c in d["paid"].items()},
        paid_on=d["paid_on"],
    )


def _kx_key(key: str) -> str:
    """A kx key as saved; one without a bucket ("member|year", before PT/SLP had their own) is OT's."""
    return key if key.count("|") >= 2 else f"{key}|OT"


def save_state(state: SimulatorState, state_dir: Path) -> None:
    private_dir(state_dir)
    d = {
        "format": FORMAT,
        "files": state.files,
        "counters": state.counters,
        "deductible": {k: str(v) for k, v in sorted(state.deductible.items())},
        "kx": {k: str(v) for k, v in sorted(state.kx.items())},
        "paid_lines": dict(sorted(state.paid_lines.items())),
        "pending": [to_json(c) for c in state.pending],
        "paid": {icn: to_json(c) for icn, c in sorted(state.paid.items())},
        "paid_on": dict(sorted(state.paid_on.items())),
    }
    write_atomically(state_dir / STATE_FILE, json.dumps(d, indent=1, sort_keys=True) + "\n")


def write_atomically(path: Path, text: str) -> None:
    """Write `<path>.part`, flush it to disk, then rename it to `path`."""
    partial = path.with_name(path.name + ".part")
    with open_private(partial, "w", encoding="ascii", newline="") as fh:  # answers and state name patients
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(partial, path)
