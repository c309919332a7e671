"""Seeded mutants of X12 files, for holding otedi's gate to pyx12's verdict.

`mutants(text, seed, n)` yields (name, text) pairs: each mutant is the file with one to three
edits of the kinds a sender gets wrong or a transmission breaks: a segment deleted,
duplicated, swapped with its neighbour or moved; an element emptied, lengthened, truncated,
given a wrong code, a wrong type, a control character or a component too many; an element
added or dropped; a qualifier changed to another code of the guide; an envelope count or
control number off by one; an HL parent or LX number changed; an unknown or lower-case
segment id; a leading space or trailing separator; an empty segment; a truncated file.
"""

from __future__ import annotations

import random
from typing import Callable, Iterator

CODES = ("", "X", "ZZ", "00", "01", "18", "P", "S", "Y", "N", "A", "D8", "RD8", "HC", "UN", "MJ",
         "PI", "XX", "46", "IL", "PR", "85", "87", "82", "DN", "DK", "QB", "77", "20", "22", "23",
         "11", "12", "472", "431", "454", "304", "ABK", "ABF", "BK", "6R", "EI", "SY", "G1", "F8",
         "MB", "CI", "MC", "BL", "PE", "PXC", "225X00000X", "1", "2", "3", "0", "9", "-1", "1.5")
NOISE = ("A", "9", " ", "-", ".", ":", "^", "~x", "\x07", "\x00", "\t", "é", "*", "20261332", "1259", "2460",
         "20260229", "20240229", "99999999999999999999", "ABC DEF ", "a", "?", "0.0")


def _edit_element(rng: random.Random, segs: list[str], ele: str, sub: str) -> None:
    i = rng.randrange(1, len(segs) - 1) if len(segs) > 2 else 0
    parts = segs[i].split(ele)
    if len(parts) < 2:
        return
    j = rng.randrange(1, len(parts))
    value = parts[j]
    kind = rng.randrange(9)
    if kind == 0:
        value = ""
    elif kind == 1:
        value = value + rng.choice(("X", "1", "A" * rng.randrange(1, 80)))
    elif kind == 2:
        value = value[: rng.randrange(len(value) + 1)]
    elif kind == 3:
        value = rng.choice(CODES)
    elif kind == 4:
        value = value + rng.choice(NOISE) if rng.random() < .5 else rng.choice(NOISE)
    elif kind == 5:
        value = value + sub + rng.choice(("", "X", "97530", "GO"))
    elif kind == 6:
        pos = rng.randrange(len(value) + 1)
        value = value[:pos] + rng.choice(NOISE) + value[pos:]
    elif kind == 7:
        value = str(rng.randrange(-2, 40))
    else:
        value = value.replace(sub, rng.choice((sub, "", ele)))
    parts[j] = value
    segs[i] = ele.join(parts)


def _structure(rng: random.Random, segs: list[str], ele: str, sub: str) -> None:
    n = len(segs)
    i = rng.randrange(n)
    kind = rng.randrange(12)
    if kind == 0 and n > 1:
        del segs[i]
    elif kind == 1:
        segs.insert(i, segs[i])
    elif kind == 2 and i + 1 < n:
        segs[i], segs[i + 1] = segs[i + 1], segs[i]
    elif kind == 3:
        seg = segs.pop(i)
        segs.insert(rng.randrange(len(segs) + 1), seg)
    elif kind == 4:
        segs[i] = segs[i] + ele + rng.choice(("", "X", "1"))
    elif kind == 5:
        parts = segs[i].split(ele)
        if len(parts) > 2:
            segs[i] = ele.join(parts[:-1])
    elif kind == 6:
        segs.insert(i, rng.choice(("ZZZ", "XYZ*1", "NTE*ADD*NOTE", "REF*G1*123", "K3*X", "PWK*OZ*BM", "HL*9*1*22*0",
                                  "LX*1", "CLM*X*1***11:B:1*Y*A*Y*Y", "DTP*472*D8*20260101", "SE*1*1", "ST*837*1")))
    elif kind == 7:
        parts = segs[i].split(ele)
        parts[0] = rng.choice((parts[0].lower(), parts[0] + "X", "", "1AB", parts[0][:1]))
        segs[i] = ele.join(parts)
    elif kind == 8:
        segs[i] = rng.choice((" ", "  ", "\n")) + segs[i]
    elif kind == 9:
        segs.insert(i, "")
    elif kind == 10:
        # an envelope count or control number off by one, or an HL/LX number changed
        targets = [k for k, s in enumerate(segs) if s.split(ele)[0] in ("SE", "GE", "IEA", "HL", "LX", "ST", "GS")]
        if targets:
            k = rng.choice(targets)
            parts = segs[k].split(ele)
            j = rng.randrange(1, min(len(parts), 4)) if len(parts) > 1 else 0
            if j:
                parts[j] = str(int(parts[j]) + rng.choice((-1, 1))) if parts[j].isdigit() else "1"
                segs[k] = ele.join(parts)
    else:
        j = rng.randrange(len(segs[i]) + 1)
        segs[i] = segs[i][:j]


def mutants(text: str, seed: int, count: int) -> Iterator[tuple[str, str]]:
    """`count` mutants of `text` (an X12 file whose ISA fixes the separators), reproducibly from `seed`."""
    ele, sub, term = text[3], text[104], text[105]
    segs = text.split(term)
    tail = segs.pop()  # what follows the last terminator (a newline)
    rng = random.Random(seed)
    edits: tuple[Callable, ...] = (_edit_element, _edit_element, _structure)
    for n in range(count):
        mutant = list(segs)
        for _ in range(rng.choice((1, 1, 1, 2, 3))):
            rng.choice(edits)(rng, mutant, ele, sub)
        out = term.join(mutant) + term + tail
        if rng.random() < 0.03:
            out = out[: rng.randrange(106, len(out))]
        if not out.startswith("ISA") and rng.random() < 0.5:
            out = text[:106] + out[106:]
        yield f"{seed}-{n}", out
