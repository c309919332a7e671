"""Element and segment checks, with pyx12 4.0.0's verdicts (map_if element_if, composite_if,
segment_if.is_valid_errors, validation.py, syntax.py).

`check_segment` returns the errors of one segment as tuples
`(level, code, node, message, detail)`: level "element" carries the map element (its name and
position), level "segment" is what pyx12 files as a segment error "8" (too many elements, a
required composite missing, a composite not used, a syntax rule broken). Messages name map
elements, never values; `detail` may quote the value (shown only on request).

The common case is a value that passes: one length comparison, one set lookup or one
precompiled pattern per element, and no allocation.
"""

from __future__ import annotations

import re

from otedi.x12.gate.maps import Composite, Element, Segment, external_codes
from otedi.x12.validate import ELEMENT_CODES

# Character set "E" (extended) of 005010, as pyx12's rec_ID_E5; 004010 maps lack ^ and `.
_TEXT_OK_00501 = re.compile(r"""[A-Z0-9!"&'()*+,\-./:;?= a-z%~@\[\]_{}\\|<>^`#$]*""")
_TEXT_OK_00401 = re.compile(r"""[A-Z0-9!"&'()*+,\-./:;?= a-z%~@\[\]_{}\\|<>#$]*""")
_INTEGER = re.compile(r"-?[0-9]+")
_DECIMAL = re.compile(r"-?[0-9]*(?:\.[0-9]+)?")
_DIGITS = re.compile(r"[0-9]*")
# pyx12 rejects these control characters before any other check of the value
_CONTROL = re.compile("[\x07\x09\x0a\x0b\x0c\x0d\x1c\x1d\x1e\x1f\x01-\x06\x11-\x17]")
DATE_TYPES = ("RD8", "DT", "D8", "D6")
CLEAN_LIMIT = 200_000  # clean values remembered per file, so memory stays flat on any file


class Pyx12Fails(Exception):
    """Input on which pyx12 4.0.0 raises instead of reporting (IndexError, ValueError, ...).

    The gate reports such a file invalid at the segment concerned."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def is_valid_date(data_type: str, value: str) -> bool:
    if data_type == "D8" and len(value) != 8 or data_type == "D6" and len(value) != 6:
        return False
    if not _DIGITS.fullmatch(value) or len(value) not in (6, 8, 12):
        return False
    if len(value) == 6:
        value = ("20" if int(value[0:2]) < 50 else "19") + value
    year, month, day = int(value[0:4]), int(value[4:6]), int(value[6:8])
    if year < 1800 or not 1 <= month <= 12:
        return False
    if month in (1, 3, 5, 7, 8, 10, 12):
        last = 31
    elif month in (4, 6, 9, 11):
        last = 30
    else:
        last = 29 if year % 4 == 0 and not (year % 100 == 0 and year % 400 != 0) else 28
    if not 1 <= day <= last:
        return False
    return len(value) != 12 or is_valid_time(value[8:12])


def is_valid_time(value: str) -> bool:
    # pyx12 compares hours, minutes and seconds as strings ("9" > "23")
    if not _DIGITS.fullmatch(value):
        return False
    if value[0:2] > "23" or value[2:4] > "59":
        return False
    if len(value) > 4:
        return len(value) >= 6 and value[4:6] <= "59" and len(value) <= 8
    return True


def is_valid_type(value: str, data_type: str | None, icvn: str) -> bool:
    if not data_type:
        return True
    if data_type[0] == "N":
        return _INTEGER.fullmatch(value) is not None
    if data_type == "R":
        return _DECIMAL.fullmatch(value) is not None
    if data_type in ("ID", "AN"):
        return (_TEXT_OK_00501 if icvn == "00501" else _TEXT_OK_00401).fullmatch(value) is not None
    if data_type == "RD8":
        if "-" not in value:
            return False
        parts = value.split("-")
        if len(parts) != 2:
            raise Pyx12Fails("8", "a date range holds more than one '-' (pyx12 4.0.0 raises ValueError)")
        return is_valid_type(parts[0], "D8", icvn) and is_valid_type(parts[1], "D8", icvn)
    if data_type in ("DT", "D8", "D6"):
        return is_valid_date(data_type, value)
    if data_type == "TM":
        return is_valid_time(value)
    return data_type == "B"


def _problem(spec: Element, code: str, what: str, value: str | None = None):
    detail = f"{spec.name} ({spec.refdes}): {what}" + (f" ({value})" if value is not None else "")
    return ("element", code, spec, f'{ELEMENT_CODES[code]} in "{spec.name}"', detail)


def check_element(spec: Element, value: str | None, icvn: str, type_list: list | None, errors: list) -> None:
    """pyx12 element_if.is_valid_errors for a value that is not a composite."""
    if not value:
        if spec.required_when_empty:
            errors.append(_absent(spec))
        return
    if spec.usage == "N":
        errors.append(("element", "10", spec, f'{ELEMENT_CODES["10"]}: "{spec.name}" ({spec.refdes})',
                       f"{spec.name} ({spec.refdes}) is marked as not used"))
        return
    data_type = spec.data_type
    size = len(value.replace("-", "").replace(".", "")) if spec.numeric else len(value)
    # fast path: the length fits, the type's pattern matches, the code is listed, no trailing space
    if (spec.min_len <= size <= spec.max_len and (not spec.text_type or value[-1] != " ")
            and (value in spec.codes if spec.codes else spec.external is None)
            and spec.regex is None and not type_list):
        if data_type == "AN" or data_type == "ID":
            if (_TEXT_OK_00501 if icvn == "00501" else _TEXT_OK_00401).fullmatch(value) is not None:
                return
        elif data_type == "R":
            if _DECIMAL.fullmatch(value) is not None:
                return
        elif data_type and data_type[0] == "N":
            if _INTEGER.fullmatch(value) is not None:
                return
    if size < spec.min_len:
        errors.append(_problem(spec, "4", "value too short", value))
    if size > spec.max_len:
        errors.append(_problem(spec, "5", "value too long", value))
    if _CONTROL.search(value):
        errors.append(_problem(spec, "6", "invalid character (a control character)", value))
        return
    if spec.text_type and value[-1] == " " and len(value.rstrip()) >= spec.min_len:
        errors.append(_problem(spec, "6", "invalid character (trailing spaces)", value))
    if (spec.codes or spec.external is not None) and value not in spec.codes and not (
            spec.external is not None and value in external_codes()[spec.external]):
        errors.append(_problem(spec, "7", "invalid code value", value))
    if not is_valid_type(value, data_type, icvn):
        if data_type in DATE_TYPES:
            errors.append(_problem(spec, "8", "invalid date", value))
        elif data_type == "TM":
            errors.append(_problem(spec, "9", "invalid time", value))
        else:
            errors.append(_problem(spec, "6", f"invalid character for type {data_type}", value))
    if type_list:
        # pyx12 checks these with its 004010 defaults
        if not any(t is not None and is_valid_type(value, t, "00401") for t in type_list):
            if "TM" in type_list:
                errors.append(_problem(spec, "9", "invalid time", value))
            elif any(t in type_list for t in DATE_TYPES):
                errors.append(_problem(spec, "8", "invalid date", value))
    if spec.regex is not None and not spec.regex.search(value):
        errors.append(_problem(spec, "7", "value does not match the guide's pattern", value))


def _check_value(spec: Element, value: str, icvn: str, errors: list, clean: set) -> None:
    """check_element without a type list, remembering the values found clean (they repeat: codes,
    dates, amounts, the same provider on every claim)."""
    key = (spec, value)
    if key in clean:
        return
    before = len(errors)
    check_element(spec, value, icvn, None, errors)
    if len(errors) == before and len(clean) < CLEAN_LIMIT:
        clean.add(key)


def _check_composite(spec: Composite, parts: list[str], icvn: str, errors: list, clean: set) -> None:
    if not any(parts):
        if spec.usage == "R":
            errors.append(_absent(spec))
        return
    if spec.usage == "N":
        errors.append(("segment", "8", spec, f'composite "{spec.name}" ({spec.refdes}) must not be sent',
                       f"Composite {spec.name} ({spec.refdes}) is marked as not used"))
        return
    for i, component in enumerate(spec.components):
        if i < len(parts) and parts[i]:
            _check_value(component, parts[i], icvn, errors, clean)
        elif component.required_when_empty:
            errors.append(_absent(component))


def _absent(spec: Element | Composite) -> tuple:
    if spec.__class__ is Composite:
        return ("segment", "8", spec, f'required composite "{spec.name}" ({spec.refdes}) is missing',
                f"Mandatory composite {spec.name} ({spec.refdes}) is missing")
    return ("element", "1", spec, f'{ELEMENT_CODES["1"]}: "{spec.name}" ({spec.refdes})',
            f"{spec.name} ({spec.refdes}) is missing")


def _count_present(positions: tuple, elements: list[str], subele: str | None) -> int:
    n = len(elements)
    present = 0
    for p in positions:
        if p <= n:
            value = elements[p - 1]
            if value and (subele is None or value.rstrip(subele)):
                present += 1
    return present


def _syntax_broken(rule: str, positions: tuple, elements: list[str], subele: str | None) -> str | None:
    """pyx12 syntax.is_syntax_valid for the X12 relational conditions P, R, E, C and L."""
    if len(positions) < 2:
        return "a syntax rule needs two elements"
    if rule == "P":
        present = _count_present(positions, elements, subele)
        return "if any is present, all are required" if 0 < present < len(positions) else None
    if rule == "R":
        return "at least one is required" if _count_present(positions, elements, subele) == 0 else None
    if rule == "E":
        return "at most one may be present" if _count_present(positions, elements, subele) > 1 else None
    if not _count_present(positions[:1], elements, subele):
        return None
    rest = _count_present(positions[1:], elements, subele)
    if rule == "C" and rest != len(positions) - 1:
        return "the first is present, so all the others are required"
    if rule == "L" and rest == 0:
        return "the first is present, so at least one of the others is required"
    return None


def check_segment(seg: Segment, elements: list[str], subele: str | None, icvn: str, clean: set) -> list:
    """All errors of one segment against its map node; `elements` excludes the segment id.
    `subele` is None for the ISA, whose elements are never split into components. `clean` holds the
    (element, value) pairs of the file found clean so far (see _check_value)."""
    errors: list = []
    children = seg.children
    count = len(children)
    n = len(elements)
    if n > count:
        errors.append(("segment", "8", None, f"too many elements (the guide defines {count})",
                       f"Too many elements in segment {seg.name} ({seg.id}). Has {n}, should have {count}"))
        n = count
    dtp = seg.id == "DTP"
    type_list = None  # date formats a 1250 qualifier allows, for the 1251 value after it
    dtp_type: list = []
    for i in range(n):
        spec = children[i]
        value = elements[i]
        if spec.__class__ is Composite:
            if not value:
                if spec.usage == "R":
                    errors.append(_absent(spec))
                continue
            parts = value.split(subele) if subele else [value]
            if len(parts) > len(spec.components) and spec.usage != "N":
                raise Pyx12Fails("3", f"too many components in composite {spec.refdes} "
                                      "(pyx12 4.0.0 raises IndexError)")
            _check_composite(spec, parts, icvn, errors, clean)
            continue
        if spec.data_ele == "1250":
            type_list = (type_list or []) + spec.code_list
        if not value:
            if spec.required_when_empty:
                errors.append(_absent(spec))
            continue
        if dtp and i == 1:
            qualifier = value.rstrip(subele) if subele else value
            if qualifier in ("RD8", "D8", "D6", "DT", "TM"):
                dtp_type = [qualifier]
        if subele and subele in value:
            errors.append(_problem(spec, "6", "components where the guide has one element"))
        elif dtp and i == 2:
            check_element(spec, value, icvn, dtp_type, errors)
        elif type_list and spec.data_ele == "1251":
            check_element(spec, value, icvn, type_list, errors)
        else:
            _check_value(spec, value, icvn, errors, clean)
    for spec in seg.required_after[n]:
        errors.append(_absent(spec))
    for rule, positions in seg.syntax:
        broken = _syntax_broken(rule, positions, elements, subele)
        if broken:
            names = ", ".join(f"{seg.id}{p:02d}" for p in positions)
            errors.append(("segment", "8", None, f"syntax rule {rule} on {names} broken",
                           f"Syntax error ({rule} {names}): {broken}"))
    return errors
