"""Tell inbound X12 files apart by their first ST01 (or a lone TA1).

Delimiters are read from the ISA: the element separator is the character
after "ISA", the component separator is ISA16 and the segment terminator is
the character that follows it. Line breaks after terminators are ignored.
"""

from __future__ import annotations

from pathlib import Path

KINDS = ("999", "277", "835", "TA1")
UNKNOWN = "unknown"

# An ST normally follows the ISA and GS within a few hundred bytes.
_HEAD_BYTES = 64 * 1024


def classify_bytes(data: bytes) -> str:
    """Return "999", "277", "835", "TA1" or "unknown" for the start of an X12 file."""
    text = data.decode("latin-1").lstrip("\ufeff\xef\xbb\xbf \t\r\n")
    if not text.startswith("ISA") or len(text) < 4:
        return UNKNOWN
    sep = text[3]
    terminator = _segment_terminator(text, sep)
    if terminator is None:
        return UNKNOWN
    saw_ta1 = False
    for raw in text.split(terminator):
        segment = raw.strip("\r\n")
        elements = segment.split(sep)
        if elements[0] == "ST":
            st01 = elements[1].strip() if len(elements) > 1 else ""
            return st01 if st01 in KINDS else UNKNOWN
        if elements[0] == "TA1":
            saw_ta1 = True
    return "TA1" if saw_ta1 else UNKNOWN


def classify_file(path: str | Path) -> str:
    with open(path, "rb") as fh:
        return classify_bytes(fh.read(_HEAD_BYTES))


def _segment_terminator(text: str, sep: str) -> str | None:
    """The character after ISA16 (ISA16 is the one character after the 16th separator)."""
    count = 0
    for i, ch in enumerate(text):
        if ch == sep:
            count += 1
            if count == 16:
                return text[i + 2] if i + 2 < len(text) else None
    return None
