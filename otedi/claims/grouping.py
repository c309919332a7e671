"""Group coded lines into claims: claim ids, line control numbers, diagnosis pointers."""

from __future__ import annotations

import base64
import hashlib
import re
from collections import defaultdict
from operator import attrgetter
from typing import Iterable, Sequence

from otedi import config
from otedi.claims.model import MAX_DIAGNOSES, MAX_LINES, MAX_POINTERS, Claim, ClaimLine
from otedi.coding.result import CodedLine
from otedi.errors import ConfigError

# Values a claim carries once (2000B/2010BA/2010BB, SBR05, CLM05-1, 2310A, REF*G1, DTP*454); the billed
# rendering provider (2310B: for an assistant, maybe the supervising therapist) is added from the coded line.
CLAIM_LEVEL_FIELDS: tuple[str, ...] = (
    "practice_id", "patient_id", "payer_id", "payer_sequence", "claim_filing_code", "member_id",
    "group_number", "relationship", "msp_type", "referring_npi", "place_of_service",
    "prior_auth_number", "initial_treatment_date",
)
GROUPABLE_FIELDS: frozenset[str] = frozenset(CLAIM_LEVEL_FIELDS) | {"service_date", "rendering_npi"}

LINE_CONTROL_MAX = 30  # REF*6R: at most 30 characters
_LINE_CONTROL_OK = re.compile(r"^[A-Za-z0-9._-]{1,30}$")


def claim_grouping() -> tuple[tuple[str, ...], int]:
    data = config.load_yaml("claims.yaml")
    group_by = tuple(data.get("group_by") or ())
    unknown = [f for f in group_by if f not in GROUPABLE_FIELDS]
    if unknown:
        raise ConfigError(f"claims.yaml: cannot group claims by {unknown}; choose from {sorted(GROUPABLE_FIELDS)}")
    max_lines = int(data.get("max_lines", MAX_LINES))
    if not 1 <= max_lines <= MAX_LINES:
        raise ConfigError(f"claims.yaml: max_lines must be between 1 and {MAX_LINES}")
    return group_by, max_lines


def claim_id_for(charge_ids: Iterable[str]) -> str:
    """Patient control number (CLM01): 17 characters derived from the claim's charges.

    The same charges always give the same id, and charge ids are unique, so
    two claims never share one. 17 characters is the safe length for payers
    that truncate CLM01 (the field allows 20)."""
    digest = hashlib.sha256("|".join(sorted(charge_ids)).encode()).digest()
    # The first 15 base32 characters come from the digest's first 10 bytes (base32 turns each 5 bytes into
    # 8 characters on its own), so only those are encoded.
    return "OT" + base64.b32encode(digest[:10]).decode()[:15]


def line_control_number(charge_id: str) -> str:
    """REF*6R: the charge id itself when it fits, else a hash of it; unique because charge ids are."""
    if _LINE_CONTROL_OK.match(charge_id):
        return charge_id
    return "H" + hashlib.sha256(charge_id.encode()).hexdigest()[: LINE_CONTROL_MAX - 1].upper()


def group_into_claims(lines: Sequence[CodedLine], group_by: Sequence[str] | None = None,
                      max_lines: int | None = None) -> list[Claim]:
    """Group lines by the configured key plus the claim-level fields, then split
    each group so no claim has more than `max_lines` lines or 12 diagnoses."""
    if group_by is None or max_lines is None:
        cfg_group_by, cfg_max = claim_grouping()
        group_by = cfg_group_by if group_by is None else group_by
        max_lines = cfg_max if max_lines is None else max_lines
    key_fields = tuple(dict.fromkeys((*group_by, *CLAIM_LEVEL_FIELDS)))
    key_of = attrgetter(*key_fields)  # a tuple: the claim-level fields alone are more than one
    groups: dict[tuple, list[CodedLine]] = defaultdict(list)
    for line in lines:
        groups[(*key_of(line.charge), line.rendering_npi)].append(line)

    claims = []
    for key in sorted(groups, key=lambda k: tuple(map(str, k))):
        ordered = sorted(groups[key], key=lambda ln: (ln.charge.service_date, ln.charge.charge_id))
        for chunk in _split(ordered, max_lines):
            claims.append(_claim(chunk))
    return claims


def _line_dx(line: CodedLine) -> tuple[str, ...]:
    return line.charge.dx_codes[:MAX_POINTERS]


def _split(lines: list[CodedLine], max_lines: int) -> list[list[CodedLine]]:
    chunks: list[list[CodedLine]] = []
    current: list[CodedLine] = []
    dx: set[str] = set()
    for line in lines:
        new_dx = dx | set(_line_dx(line))
        if current and (len(current) >= max_lines or len(new_dx) > MAX_DIAGNOSES):
            chunks.append(current)
            current, new_dx = [], set(_line_dx(line))
        current.append(line)
        dx = new_dx
    if current:
        chunks.append(current)
    return chunks


def _claim(lines: list[CodedLine]) -> Claim:
    # Claim diagnoses: each line's first four codes, in order of first use,
    # so the principal diagnosis is the first line's first code.
    diagnoses: list[str] = []
    for line in lines:
        for code in _line_dx(line):
            if code not in diagnoses:
                diagnoses.append(code)
    claim_lines = tuple(
        ClaimLine(
            number=n,
            coded=line,
            dx_pointers=tuple(diagnoses.index(code) + 1 for code in _line_dx(line)),
            line_control_number=line_control_number(line.charge.charge_id),
        )
        for n, line in enumerate(lines, start=1)
    )
    return Claim(
        claim_id=claim_id_for(line.charge.charge_id for line in lines),
        header=lines[0].charge,
        lines=claim_lines,
        diagnoses=tuple(diagnoses),
    )
