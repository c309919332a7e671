"""Delimiters and the segment writer shared by every transaction we write.

The writer serialises exactly what it is given: it upper-cases and cleans
nothing (the transaction builders decide what goes into each element). It
refuses a value that contains one of the interchange's delimiters, because
such a value would silently shift every element after it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TextIO

from otedi.errors import X12Error

# An element is a simple value, a composite (its components in order) or absent.
Element = str | Sequence[str | None] | None


@dataclass(frozen=True)
class Delimiters:
    element: str = "*"
    component: str = ":"
    repetition: str = "^"
    segment: str = "~"

    @property
    def characters(self) -> str:
        return self.element + self.component + self.repetition + self.segment

    @cached_property
    def reserved(self) -> re.Pattern[str]:
        """Matches any delimiter character (compiled once per set of delimiters)."""
        return re.compile("[" + re.escape(self.characters) + "]")


def format_segment(
    segment_id: str, elements: Sequence[Element], delimiters: Delimiters, *, position: int | None = None
) -> str:
    """One segment without its terminator: `CLM*A1*100***11:B:1`.

    Trailing empty elements (and trailing empty components of a composite)
    are dropped, as X12 requires. `position` (the segment's number in the
    file) is only used to say where a refused value is.
    """
    component, separator = delimiters.component, delimiters.element
    texts, values = [segment_id], []
    for value in elements:
        if value is None:
            texts.append("")
        elif isinstance(value, str):
            texts.append(value)
            values.append(value)
        else:
            components = ["" if part is None else part for part in value]
            values += components
            texts.append(component.join(components).rstrip(component))
    # One search over all the values at once; only a hit goes back to find which element holds it.
    if delimiters.reserved.search("".join(values)):
        _refuse(segment_id, elements, delimiters, position)
    # Trailing empty elements (components) are dropped: stripping the separators does it, since no value
    # that got this far holds a delimiter.
    return separator.join(texts).rstrip(separator)


def _refuse(segment_id: str, elements: Sequence[Element], delimiters: Delimiters, position: int | None) -> None:
    for index, value in enumerate(elements, 1):
        parts = [value] if isinstance(value, str) else [] if value is None else list(value)
        for sub, part in enumerate(parts, 1):
            if part is not None:
                reference = f"{index:02d}" if isinstance(value, str) else f"{index:02d}-{sub}"
                _refuse_delimiters(segment_id, reference, part, delimiters, position)


def _refuse_delimiters(
    segment_id: str, reference: str, value: str, delimiters: Delimiters, position: int | None
) -> None:
    # The message names the element, never the value (it may be a name or a member id).
    if delimiters.reserved.search(value):
        raise X12Error(
            f"{segment_id}{reference} contains a delimiter character ({delimiters.characters!r} are reserved)",
            segment_number=position,
            segment_id=segment_id,
        )


class SegmentWriter:
    """Writes segments one per line (`~` then a newline; pyx12 and clearinghouses accept it)
    and counts them, so envelopes can compute SE01."""

    def __init__(self, out: TextIO, delimiters: Delimiters = Delimiters()):
        self.out = out
        self.delimiters = delimiters
        self.count = 0  # segments written so far, envelope segments included
        self._separator = delimiters.element
        self._terminator = delimiters.segment + "\n"
        # Every delimiter but the element separator: a segment of simple values may not hold any of them.
        self._others = re.compile("[" + re.escape(delimiters.characters.replace(delimiters.element, "")) + "]")

    def write(self, segment_id: str, *elements: Element) -> None:
        """Lay out and write one segment. A segment of plain strings ("" for an absent element) takes a
        fast path of C string calls; one with None or a composite takes format_segment. Both give the same
        text and refuse the same values with the same message."""
        separator = self._separator
        try:
            text = separator.join((segment_id, *elements))
        except TypeError:  # an element is None or a composite
            text = format_segment(segment_id, elements, self.delimiters, position=self.count + 1)
        else:
            # Clean values hold no delimiter: exactly one element separator per element, and no other one.
            if text.count(separator) != len(elements) or self._others.search(text):
                _refuse(segment_id, elements, self.delimiters, self.count + 1)
            text = text.rstrip(separator)  # trailing empty elements are dropped (no value ends in one)
        self.out.write(text + self._terminator)
        self.count += 1

    def write_formatted(self, text: str) -> None:
        """Write a segment that is already laid out (the fixed-width ISA)."""
        self.out.write(text + self._terminator)
        self.count += 1
