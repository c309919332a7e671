"""One streaming pass over an X12 file with pyx12 4.0.0's verdict.

The pass does what pyx12's `x12n_document` does with its reader (x12file.X12Reader), walker
(map_walker.walk_tree) and error handler (error_handler.err_handler), so that a file is valid
here exactly when pyx12 says it is and the first error lands on the same segment. The parts:

- Reading: segments split on the ISA's terminator, leading CR/LF dropped; an empty segment
  ends the file (pyx12's reader stops there) and text after the last terminator is ignored.
  Per segment the reader checks leading spaces, a trailing element separator, the segment id,
  envelope control numbers and counts, HL numbering and parents, and 2400 LX numbering.
- Walking: from the map node of the previous segment, pyx12 scans the rest of the loop, then
  each enclosing loop, for the node the segment matches (segment id and qualifier), noting
  required segments and loops passed over. The path of that scan depends only on the segment
  id and its qualifier values, never on counts, so it is planned once per (node, id,
  qualifiers) and cached; only the count checks run per segment.
- Filing errors: pyx12 files an error on "the current segment" of its error tree. That is not
  always the segment being read: an error found while reading a trailer (SE, GE, IEA) lands on
  the segment before it; a segment "not used" in the guide is filed on the previous segment;
  errors filed while the current node is an envelope header or trailer are dropped (pyx12's
  envelope nodes take no segment errors) and element errors there are counted without a
  position; reader errors of a segment the walker could not place wait for the next one it
  does. The gate reproduces where each error lands, because that is what decides pyx12's
  verdict and first error.
"""

from __future__ import annotations

import re
from typing import Iterator, TextIO

from otedi.x12.gate.checks import Pyx12Fails, check_segment
from otedi.x12.gate.maps import CONTROL_00501, X222A1, GuideMap, Loop, Segment, guide, map_index
from otedi.x12.validate import GROUP_CODES, INTERCHANGE_CODES, SEGMENT_CODES, TRANSACTION_CODES, X12Problem

CHUNK = 1 << 20
_SEGMENT_ID = re.compile(r"^[A-Z][A-Z0-9]{1,2}$")  # pyx12 segment.rec_seg_id, with its `$`
ENVELOPE_IDS = frozenset(("ISA", "IEA", "GS", "GE", "ST", "SE"))
READ_CHECKED = ENVELOPE_IDS | {"HL", "CLM", "LX"}
CLEAN_LIMIT = 200_000  # clean segments remembered per file, so memory stays flat on any file
# pyx12's error codes (ISA/GS/ST levels) that point at the header segment, not the trailer
ON_HEADER = {"ISA": {"025"}, "GS": {"6"}, "ST": {"1", "6", "7", "23"}}

MISS_SEG, MISS_LOOP, MATCH, ENTER, NOT_FOUND, LOST = range(6)
FIRST_ELEMENT = ((1, None),)  # most segments are told apart by their element 01


class MapNotFound(Exception):
    def __init__(self, icvn: str | None, fic: str | None, vriic: str | None) -> None:
        super().__init__(f"Map not found.  icvn={icvn}, fic={fic}, vriic={vriic}")


class NotX222A1(Exception):
    """The file holds a functional group of another guide: the caller hands it to pyx12."""


class ReaderStopped(Exception):
    """pyx12's reader raises X12Error (an ISA without 16 elements) and validates nothing more."""


class _Env:
    """An ISA, GS or ST level of pyx12's error tree."""

    __slots__ = ("kind", "header", "trailer", "trailer_id", "mapped", "errors", "children")

    def __init__(self, kind: str, line: int) -> None:
        self.kind = kind
        self.header = line
        self.trailer = None
        self.trailer_id = None
        self.mapped = line
        self.errors: list = []
        self.children: list = []


class _SegNode:
    """A segment of pyx12's error tree that holds at least one error."""

    __slots__ = ("line", "seg_id", "loop", "errors", "elements")

    def __init__(self, line: int, seg_id: str, loop: str | None) -> None:
        self.line = line
        self.seg_id = seg_id
        self.loop = loop
        self.errors: list = []
        self.elements: list = []


def _descendants(paths: set[str]) -> dict[str, tuple[str, ...]]:
    return {p: tuple(q for q in paths if q == p or q.startswith(p + "/")) for p in paths}


def _plan(gmap: GuideMap, start: Segment, signature: tuple) -> tuple:
    """The scan pyx12's walker makes from `start` for a segment with this id and qualifiers,
    as a list of operations; the count checks are left to the run."""
    seg_id = signature[0]
    values = dict(zip(gmap.match_positions.get(seg_id, ()), signature[1:]))
    ops: list = []

    def matches(node: Segment) -> bool:
        if node.id != seg_id:
            return False
        return node.match is None or values[node.match[:2]] in node.match[2]

    def loop_matches(loop: Loop) -> bool:
        first = loop.first_node()
        if first is None:
            return False
        if isinstance(first, Loop):
            return any(isinstance(child, Loop) and loop_matches(child) for child in loop.children)
        if matches(first):
            return True
        if loop.usage == "R":
            ops.append((MISS_LOOP, loop, first))
        return False

    def enter(loop: Loop) -> tuple | None:
        first = loop.first_node()
        if isinstance(first, Segment) and matches(first):
            return (ENTER, loop, first)
        for child in loop.children:
            if isinstance(child, Loop):
                found = enter(child)
                if found:
                    return found
        return None

    loop, pos = start.parent, start.pos
    while True:
        for child in loop.children:
            if child.pos < pos:
                continue
            if isinstance(child, Segment):
                if matches(child):
                    if loop.parent is not None and loop_matches(loop):
                        ops.append(enter(loop) or (LOST,))
                    else:
                        ops.append((MATCH, child))
                    return tuple(ops)
                if child.usage == "R":
                    ops.append((MISS_SEG, child))
            elif loop_matches(child):
                ops.append(enter(child) or (LOST,))
                return tuple(ops)
        if loop.parent is None:
            ops.append((NOT_FOUND,))
            return tuple(ops)
        loop, pos = loop.parent, loop.pos


def _value(elements: list[str], index: int, subele: str | None) -> str | None:
    """pyx12 Segment.get_value("NN"): None past the end, trailing empty components dropped."""
    if index > len(elements):
        return None
    value = elements[index - 1]
    return value.rstrip(subele) if subele else value


def _qualifier(elements: list[str], index: int, component: int | None, subele: str | None) -> str | None:
    """pyx12 Segment.get_value("NN") or ("NN-M"): the value a segment is matched on."""
    if component is None:
        return _value(elements, index, subele)
    if index > len(elements):
        return None
    parts = elements[index - 1].split(subele) if subele else [elements[index - 1]]
    return parts[component - 1] if component <= len(parts) else None


def _int(value: str | None) -> int | None:
    try:
        return int(value)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        return None


def _lines(text: TextIO, head: str, seg_term: str) -> Iterator[str]:
    """pyx12 rawx12file.RawX12File: segments up to the last terminator; an empty one ends the file."""
    buffer = head
    while True:
        chunk = text.read(CHUNK)
        buffer += chunk
        pieces = buffer.split(seg_term)
        buffer = pieces.pop()
        for line in pieces:
            line = line.lstrip("\n\r")
            if not line:
                return
            yield line
        if not chunk:
            return


class Run:
    """The state of one pass; `problems()` gives validate.py's view of pyx12's error tree."""

    def __init__(self) -> None:
        self.control = guide(CONTROL_00501)
        self.guide = guide(X222A1)
        self.reset_paths = _descendants(self.control.loop_paths | self.guide.loop_paths)
        self.counts: dict[str, dict[str, int]] = {}
        self.plans: dict[tuple, tuple] = {}
        self.valid = True
        self.line = 0  # the segment being read (1 = the first ISA)
        # pyx12's error tree
        self.isas: list[_Env] = []
        self.cur_isa = self.cur_gs = self.cur_st = None
        self.cursor = None  # an _Env, a pending segment (line, id, loop) or a _SegNode
        # pyx12's reader state
        self.pending: list = []
        self.loops: list = []
        self.isa_ids: list = []
        self.gs_ids: list = []
        self.st_ids: list = []
        self.gs_count = self.st_count = self.seg_count = self.hl_count = self.lx_count = 0
        self.hl_stack: list[int] = []
        self.check_lx = False
        self.last_header = {"ISA": 0, "GS": 0, "ST": 0}
        self.id_ok: dict[str, bool] = {}
        # segments (map node, text) already found clean in this file: checked once, whatever they repeat
        self.clean: set[tuple[int, str]] = set()
        self.clean_values: set = set()  # (element, value) pairs found clean (checks.check_segment)

    # --- counts (pyx12 nodeCounter, keyed by map path) -------------------------------------

    def bump(self, scope: str, path: str) -> int:
        counts = self.counts.get(scope)
        if counts is None:
            counts = self.counts[scope] = {}
        n = counts.get(path, 0) + 1
        counts[path] = n
        return n

    def reset(self, path: str) -> None:
        pop = self.counts.pop
        for p in self.reset_paths[path]:
            pop(p, None)

    # --- error filing (pyx12 err_handler) --------------------------------------------------

    def seg_error(self, code: str, message: str, detail: str) -> None:
        cursor = self.cursor
        if cursor.__class__ is tuple:
            if self.cur_st is None:
                return  # pyx12: "No current segment in error_handler": the error is dropped
            cursor = self.cursor = _SegNode(*cursor)
            self.cur_st.children.append(cursor)
        if cursor.__class__ is _SegNode:
            cursor.errors.append((code, message, detail))
        # on an envelope node pyx12's add_error takes no value argument: the error is dropped

    def ele_error(self, code: str, message: str, detail: str, element: str) -> None:
        cursor = self.cursor
        if cursor.__class__ is tuple:
            if self.cur_st is None:
                raise Pyx12Fails(code, "an element error outside any transaction set "
                                       "(pyx12 4.0.0 raises AttributeError)")
            cursor = self.cursor = _SegNode(*cursor)
            self.cur_st.children.append(cursor)
        if cursor.__class__ is _SegNode:
            cursor.elements.append((code, message, detail, element))
        # on an envelope node pyx12 counts it without a position in its report (see problems())

    def env_error(self, kind: str, code: str, message: str) -> None:
        node = self.cur_isa if kind == "ISA" else self.cur_gs if kind == "GS" else self.cur_st
        if node is None:
            raise Pyx12Fails(code, f"a {kind} level error before any {kind} (pyx12 4.0.0 raises AttributeError)")
        node.errors.append((code, message))

    def handle_pending(self) -> None:
        pending, self.pending = self.pending, []
        for kind, code, message, detail in pending:
            if kind == "SEG":
                self.seg_error(code, message, detail)
            else:
                self.env_error(kind, code, message)

    def open_env(self, kind: str, line: int) -> None:
        node = _Env(kind, line)
        if kind == "ISA":
            self.isas.append(node)
            self.cur_isa = node
        else:
            parent = self.cur_isa if kind == "GS" else self.cur_gs
            if parent is None:
                raise Pyx12Fails("ENVELOPE", f"a {kind} outside its envelope (pyx12 4.0.0 raises AttributeError)")
            parent.children.append(node)
            if kind == "GS":
                self.cur_gs = node
            else:
                self.cur_st = node
        self.cursor = node

    def close_env(self, kind: str, line: int, seg_id: str) -> None:
        node = self.cur_isa if kind == "ISA" else self.cur_gs if kind == "GS" else self.cur_st
        if node is None:
            raise Pyx12Fails("ENVELOPE", f"{seg_id} without {kind} (pyx12 4.0.0 raises AttributeError)")
        node.trailer, node.trailer_id, node.mapped = line, seg_id, self.last_header[kind]
        self.cursor = node

    # --- the reader's own checks (pyx12 x12file) -------------------------------------------

    def reader_error(self, kind: str, code: str, message: str, detail: str | None = None) -> None:
        self.pending.append((kind, code, message, detail or message))

    def common_checks(self, seg_id: str, elements: list[str], subele: str | None) -> None:
        """What pyx12's reader checks on every segment: not empty, a well-formed id."""
        if not elements or not (elements[0].strip(subele) if subele else elements[0]) and not any(
                e.strip(subele) if subele else e for e in elements):
            self.reader_error("SEG", "8", f"{SEGMENT_CODES['8']}: the segment is empty")
        known = self.id_ok.get(seg_id)
        if known is None:
            known = self.id_ok[seg_id] = _SEGMENT_ID.search(seg_id) is not None
        if not known:
            self.reader_error("SEG", "1", f"{SEGMENT_CODES['1']}: invalid segment identifier")

    def read_checks(self, seg_id: str, elements: list[str], subele: str | None) -> None:
        """The reader's checks of envelope, HL and LX segments (pyx12 x12file._parse_segment)."""
        self.common_checks(seg_id, elements, subele)
        if seg_id == "ISA":
            if len(elements) != 16:
                raise ReaderStopped()
            control = _value(elements, 13, None)
            if control in self.isa_ids:
                self.reader_error("ISA", "025", f"ISA Interchange Control Number {control} not unique within file")
            self.loops.append(("ISA", control))
            self.isa_ids.append(control)
            self.gs_count = 0
            self.gs_ids = []
        elif seg_id == "GS":
            control = _value(elements, 6, subele)
            if control in self.gs_ids:
                self.reader_error("GS", "6", f"GS Interchange Control Number {control} not unique within file")
            self.gs_count += 1
            self.gs_ids.append(control)
            self.loops.append(("GS", control))
            self.st_count = 0
            self.st_ids = []
        elif seg_id == "ST":
            self.hl_stack = []
            self.hl_count = 0
            control = _value(elements, 2, subele)
            if control in self.st_ids:
                self.reader_error("ST", "23", f"ST Interchange Control Number {control} not unique within file")
            self.st_count += 1
            self.st_ids.append(control)
            self.loops.append(("ST", control))
            self.seg_count = 1
        elif seg_id == "HL":
            self.hl_count += 1
            hl01 = _value(elements, 1, subele)
            if self.hl_count != _int(hl01):
                self.reader_error("SEG", "HL1", f"{SEGMENT_CODES['HL1']}: HL01 should be {self.hl_count}",
                                  f"My HL count {self.hl_count} does not match your HL count {hl01}")
            if _value(elements, 2, subele) != "":
                parent = _int(_value(elements, 2, subele))
                if parent not in self.hl_stack:
                    self.reader_error("SEG", "HL2", f"{SEGMENT_CODES['HL2']}: HL parent ({parent}) is not a valid parent")
                while self.hl_stack and parent != self.hl_stack[-1]:
                    self.hl_stack.pop()
            self.hl_stack.append(self.hl_count)
        elif self.check_lx and seg_id == "CLM":
            self.lx_count = 0
        elif self.check_lx and seg_id == "LX":
            self.lx_count += 1
            lx01 = _value(elements, 1, subele)
            if lx01 != str(self.lx_count):
                self.reader_error("SEG", "LX", f"{SEGMENT_CODES['LX']}: LX01 should be {self.lx_count}",
                                  f"Your 2400/LX01 Service Line Number {lx01} does not match my count of {self.lx_count}")
        if seg_id not in ENVELOPE_IDS:
            self.seg_count += 1
        loops = self.loops
        if seg_id == "IEA":
            if not loops:
                raise Pyx12Fails("023", "IEA without an open interchange (pyx12 4.0.0 raises IndexError)")
            if loops[-1][0] != "ISA":
                self.reader_error("ISA", "024", f"Unterminated Loop {loops[-1][0]}")
                del loops[-1]
            iea02 = _value(elements, 2, subele)
            if not loops:
                raise Pyx12Fails("023", "IEA without an open interchange (pyx12 4.0.0 raises IndexError)")
            if loops[-1][1] != iea02:
                self.reader_error("ISA", "001", f"IEA id={iea02} does not match ISA id={loops[-1][1]}")
            if _int(_value(elements, 1, subele)) != self.gs_count:
                self.reader_error("ISA", "021", f"IEA count for IEA02={iea02} is wrong")
            del loops[-1]
        elif seg_id == "GE":
            if not loops:
                raise Pyx12Fails("3", "GE without an open group (pyx12 4.0.0 raises IndexError)")
            if loops[-1][0] != "GS":
                self.reader_error("GS", "3", f"Unterminated segment {loops[-1][1]}")
                del loops[-1]
            ge01, ge02 = _value(elements, 1, subele), _value(elements, 2, subele)
            if not loops:
                raise Pyx12Fails("3", "GE without an open group (pyx12 4.0.0 raises IndexError)")
            if loops[-1][1] != ge02:
                self.reader_error("GS", "4", f"GE id={ge02} does not match GS id={loops[-1][1]}")
            if _int(ge01) != self.st_count:
                self.reader_error("GS", "5", f"GE count of {ge01} for GE02={ge02} is wrong. I count {self.st_count}")
            del loops[-1]
        elif seg_id == "SE":
            if not loops:
                raise Pyx12Fails("3", "SE without an open transaction set (pyx12 4.0.0 raises IndexError)")
            se01, se02 = _value(elements, 1, subele), _value(elements, 2, subele)
            if loops[-1][0] != "ST" or loops[-1][1] != se02:
                self.reader_error("ST", "3", f"SE id={se02} does not match ST id={loops[-1][1]}")
            if _int(se01) != self.seg_count + 1:
                self.reader_error("ST", "4", f"SE count of {se01} for SE02={se02} is wrong. I count {self.seg_count + 1}")
            del loops[-1]

    def end_of_file(self) -> None:
        for kind, control in self.loops:
            if kind == "ST":
                self.reader_error("ST", "2", f'Mandatory segment "Transaction Set Trailer" (SE={control}) missing')
            elif kind == "GS":
                self.reader_error("GS", "3", f'Mandatory segment "Functional Group Trailer" (GE={control}) missing')
            elif kind == "ISA":
                self.reader_error("ISA", "023", f'Mandatory segment "Interchange Control Trailer" (IEA={control}) missing')
        self.handle_pending()

    # --- the walk ----------------------------------------------------------------------------

    def walk(self, gmap: GuideMap, node: Segment, seg_id: str, elements: list[str], subele: str | None,
             line: int) -> Segment | None:
        positions = gmap.match_positions.get(seg_id)
        if positions is None:
            key = (node.uid, seg_id)
        elif positions == FIRST_ELEMENT:
            qualifier = elements[0] if elements else None
            key = (node.uid, seg_id, qualifier.rstrip(subele) if qualifier and subele else qualifier)
        else:
            key = (node.uid, seg_id, *[_qualifier(elements, i, sub, subele) for i, sub in positions])
        plan = self.plans.get(key)
        if plan is None:
            if len(self.plans) > 50_000:  # garbage qualifiers must not grow memory
                self.plans.clear()
            plan = self.plans[key] = _plan(gmap, node, key[1:])
        missing: list = []
        found = None
        errors: list = []
        counts = self.counts
        for op in plan:
            kind = op[0]
            if kind == MISS_SEG or kind == MISS_LOOP:
                scope = counts.get(op[1].scope)
                if not scope or scope.get(op[1].path, 0) < 1:
                    missing.append((op[1], None) if kind == MISS_SEG else (op[2], op[1]))
            elif kind == MATCH:
                found = op[1]
                n = self.bump(found.scope, found.path)
                if found.usage == "N":
                    errors.append((None, "2", f"{SEGMENT_CODES['2']}: segment {found.id} ({found.name})"))
                elif n > found.max_use:
                    errors.append((found, "5", f"{SEGMENT_CODES['5']}: segment {found.id} ({found.name}) "
                                              f"found {n} times, at most {found.max_use} allowed"))
                for seg, loop in missing:
                    if seg.same != found.same and seg.pos != found.pos:
                        errors.append(_missing(seg, loop))
            elif kind == ENTER:
                loop, found = op[1], op[2]
                if loop.usage == "N":
                    errors.append((None, "2", f"{SEGMENT_CODES['2']}: loop {loop.id} ({loop.name})"))
                else:
                    self.reset(loop.path)
                    n = self.bump(loop.scope, loop.path)
                    if n > loop.max_repeat:
                        errors.append((loop, "4", f"{SEGMENT_CODES['4']}: loop {loop.id} ({loop.name}) "
                                                  f"found {n} times, at most {loop.max_repeat} allowed"))
                self.bump(found.scope, found.path)
                for seg, missed in missing:
                    errors.append(_missing(seg, missed))
            elif kind == NOT_FOUND:
                errors.append((node, "1", f"{SEGMENT_CODES['1']} (unknown segment, out of order, or outside its loop)"))
        final_loop = (found or node).guide_loop
        for target, code, message in errors:
            if target is not None:
                self.cursor = (line, seg_id, final_loop)
            self.seg_error(code, message, message)
        return found

    # --- the pass ----------------------------------------------------------------------------

    def run(self, text: TextIO, head: str) -> None:
        seg_term, ele, isa_sub = head[105], head[3], head[104]
        control, x222 = self.control, self.guide
        isa_node = control.node("/ISA_LOOP/ISA")
        gs_node = control.node("/ISA_LOOP/GS_LOOP/GS")
        x222_gs = x222.node("/ISA_LOOP/GS_LOOP/GS")
        gmap, node = control, isa_node
        map_file, loaded = CONTROL_00501, None
        icvn = None
        index = map_index()
        clean, clean_values = self.clean, self.clean_values
        line = 0
        for raw in _lines(text, head, seg_term):
            line += 1
            self.line = line
            if raw[0] == " ":
                self.reader_error("SEG", "1", f"{SEGMENT_CODES['1']}: the segment starts with a space")
                raw = raw.lstrip()
                if not raw:
                    raise Pyx12Fails("1", "a segment of spaces only (pyx12 4.0.0 raises IndexError)")
            if raw[-1] == ele:
                self.reader_error("SEG", "SEG1", SEGMENT_CODES["SEG1"])
            elements = raw.split(ele)
            seg_id = elements.pop(0)
            subele = None if seg_id == "ISA" else isa_sub
            if seg_id in READ_CHECKED:
                self.read_checks(seg_id, elements, subele)
                if seg_id in self.last_header:
                    self.last_header[seg_id] = line
            else:
                self.common_checks(seg_id, elements, subele)
                self.seg_count += 1
            if seg_id == "ISA":
                gmap, found = control, isa_node
                self.reset("/ISA_LOOP")
                self.bump("/", "/ISA_LOOP")
                self.bump("/ISA_LOOP", "/ISA_LOOP/ISA")
            elif seg_id == "GS":
                gmap, found = control, gs_node
                self.reset("/ISA_LOOP/GS_LOOP")
                self.bump("/ISA_LOOP", "/ISA_LOOP/GS_LOOP")
                self.bump("/ISA_LOOP/GS_LOOP", "/ISA_LOOP/GS_LOOP/GS")
            else:
                found = self.walk(gmap, node, seg_id, elements, subele, line)
            if found is None:
                continue
            node = found
            if seg_id == "ISA":
                self.open_env("ISA", line)
                icvn = _value(elements, 12, None)
                self.handle_pending()
            elif seg_id == "IEA":
                self.handle_pending()
                self.close_env("ISA", line, seg_id)
            elif seg_id == "GS":
                fic, vriic = _value(elements, 1, subele), _value(elements, 8, subele)
                map_new = index.get((icvn, vriic, fic))
                if map_new != map_file:
                    if map_new is None:
                        raise MapNotFound(icvn, fic, vriic)
                    if map_new != X222A1:
                        raise NotX222A1(map_new)
                    map_file, loaded = map_new, x222
                    self.check_lx = loaded.id == "837"
                if loaded is None:
                    raise Pyx12Fails("GS", "a GS that names no guide (pyx12 4.0.0 raises AttributeError)")
                gmap, node = loaded, x222_gs
                self.open_env("GS", line)
                self.handle_pending()
            elif seg_id == "GE":
                self.handle_pending()
                self.close_env("GS", line, seg_id)
                if _int(_value(elements, 1, subele)) is None:
                    raise Pyx12Fails("5", "GE01 is not a number (pyx12 4.0.0 raises ValueError)")
            elif seg_id == "ST":
                self.open_env("ST", line)
                self.handle_pending()
            elif seg_id == "SE":
                self.handle_pending()
                self.close_env("ST", line, seg_id)
            else:
                self.cursor = (line, seg_id, node.guide_loop)
                self.handle_pending()
            key = (node.uid, raw)
            if key in clean:
                continue
            errors = check_segment(node, elements, subele, gmap.icvn, clean_values)
            if not errors:
                if len(clean) < CLEAN_LIMIT:
                    clean.add(key)
            else:
                self.valid = False
                for level, code, spec, message, detail in errors:
                    if level == "segment":
                        self.seg_error(code, message, detail)
                    else:
                        ref = f"{seg_id}{spec.ele_pos:02d}" + (f"-{spec.subele_pos}" if spec.subele_pos else "")
                        self.ele_error(code, message, detail, ref)
        self.end_of_file()

    def problems(self) -> list[X12Problem]:
        """validate.py's list: per interchange its errors, then per group, per transaction set,
        per segment; envelope errors about a header point at that header."""
        meanings = {"ISA": INTERCHANGE_CODES, "GS": GROUP_CODES, "ST": TRANSACTION_CODES}
        problems: list[X12Problem] = []

        def envelope(node: _Env) -> None:
            for code, detail in node.errors:
                line, seg_id = (node.trailer, node.trailer_id) if node.trailer else (node.header, node.kind)
                if code in ON_HEADER[node.kind]:
                    line, seg_id = node.mapped, node.kind
                plain = meanings[node.kind].get(code, "envelope error")
                problems.append(X12Problem(line, seg_id, None, None, code, f"{plain}: {detail}", detail))

        for isa in self.isas:
            envelope(isa)
            for gs in isa.children:
                envelope(gs)
                for st in gs.children:
                    envelope(st)
                    for seg in st.children:
                        for code, message, detail in seg.errors:
                            problems.append(X12Problem(seg.line, seg.seg_id, seg.loop, None, code, message, detail))
                        for code, message, detail, ref in seg.elements:
                            problems.append(X12Problem(seg.line, seg.seg_id, seg.loop, ref, code, message, detail))
        return problems


def _missing(seg: Segment, loop: Loop | None) -> tuple:
    if loop is None:
        return (seg, "3", f'required segment {seg.id} ("{seg.name}") is missing before this segment')
    return (seg, "3", f'required loop {loop.id} ("{loop.name}") is missing before this segment')
