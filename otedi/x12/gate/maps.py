"""pyx12's map XML compiled into compact Python structures, once per process.

The rules are pyx12 4.0.0's own data, read from the files it ships in
`pyx12/map/` (site-packages): `837.5010.X222.A1.xml` (the 837P guide: loops,
segments, usage, repeats, element usage, code lists, syntax rules),
`x12.control.00501.xml` (the envelope before a GS names a guide),
`dataele.xml` (data type, min/max length of every data element),
`codes.xml` (external code lists: states, country, pos, ...) and
`maps.xml` (which file serves an ISA12/GS01/GS08).

Compiled at first use and kept with functools.lru_cache: parsing the 1.1 MB
guide takes a fraction of a second, once per process, and reading pyx12's
files (not a generated copy) keeps the rules in step with the installed
pyx12 by construction.

Node identity follows pyx12's map interface, because its walker depends on
it: a node's counter key is its path (segments at a shared position in a
loop get a `[first code]` suffix), so segments with one path share one
count; and two nodes are "the same" when their ids and their parents' ids
are (map_if `x12_node.__eq__`).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from typing import Iterator

import defusedxml.ElementTree as ET

MAXINT = 2147483647  # pyx12's "unbounded" repeat
_uids = itertools.count()  # node ids unique across every compiled map
X222A1 = "837.5010.X222.A1.xml"
CONTROL_00501 = "x12.control.00501.xml"


def _map_file(name: str):
    return files("pyx12").joinpath("map", name)


def _text(elem, name: str) -> str | None:
    """pyx12 reads each property from an attribute or, failing that, a child element."""
    return elem.get(name) or elem.findtext(name)


@dataclass(frozen=True, slots=True)
class DataElement:
    data_type: str | None
    min_len: int
    max_len: int


@lru_cache(maxsize=1)
def data_elements() -> dict[str, DataElement]:
    with _map_file("dataele.xml").open("rb") as fh:
        root = ET.parse(fh).getroot()
    return {e.get("ele_num"): DataElement(e.get("data_type"), int(e.get("min_len")), int(e.get("max_len")))
            for e in root.iter("data_ele")}


@lru_cache(maxsize=1)
def external_codes() -> dict[str, frozenset]:
    with _map_file("codes.xml").open("rb") as fh:
        root = ET.parse(fh).getroot()
    return {c.findtext("id"): frozenset(code.text for code in c.iterfind("version/code")) for c in root.iter("codeset")}


@lru_cache(maxsize=1)
def map_index() -> dict[tuple[str | None, str | None, str | None], str]:
    """(ISA12, GS08, GS01) -> map file name, first entry wins (pyx12 map_index.get_filename)."""
    with _map_file("maps.xml").open("rb") as fh:
        root = ET.parse(fh).getroot()
    index: dict[tuple, str] = {}
    for version in root.iter("version"):
        for entry in version.iterfind("map"):
            index.setdefault((version.get("icvn"), entry.get("vriic"), entry.get("fic")), entry.text)
    return index


class Element:
    """A simple data element (or a component of a composite)."""

    __slots__ = ("name", "refdes", "data_ele", "usage", "seq", "data_type", "min_len", "max_len", "numeric",
                 "text_type", "codes", "code_list", "external", "regex", "ele_pos", "subele_pos",
                 "in_composite", "parent_usage", "required_when_empty")

    def __init__(self, elem, parent_usage: str | None, composite_seq: int | None) -> None:
        self.name = _text(elem, "name")
        self.refdes = elem.get("xid")
        self.data_ele = _text(elem, "data_ele")
        self.usage = _text(elem, "usage")
        self.seq = int(_text(elem, "seq"))
        definition = data_elements()[self.data_ele]
        self.data_type = definition.data_type
        self.min_len = definition.min_len
        self.max_len = definition.max_len
        # pyx12 measures N and R values without their sign and decimal point
        self.numeric = bool(self.data_type) and (self.data_type == "R" or self.data_type[0] == "N")
        self.text_type = self.data_type in ("AN", "ID")
        valid = elem.find("valid_codes")
        self.code_list = [c.text for c in valid.findall("code")] if valid is not None else []
        self.external = valid.get("external") if valid is not None else None
        self.codes = frozenset(self.code_list)
        pattern = elem.findtext("regex")
        self.regex = re.compile(pattern, re.S) if pattern else None
        self.in_composite = composite_seq is not None
        self.parent_usage = parent_usage
        self.ele_pos = composite_seq if composite_seq is not None else self.seq
        self.subele_pos = self.seq if composite_seq is not None else None
        # a required component at position 1 of a composite that is not itself required may be empty
        self.required_when_empty = self.usage == "R" and (
            self.seq != 1 or not self.in_composite or parent_usage == "R")


class Composite:
    __slots__ = ("name", "refdes", "usage", "seq", "components")

    def __init__(self, elem) -> None:
        self.name = _text(elem, "name")
        self.refdes = elem.findtext("refdes") or elem.get("xid")
        self.usage = _text(elem, "usage")
        self.seq = int(_text(elem, "seq"))
        self.components = [Element(e, self.usage, self.seq) for e in elem.findall("element")]


class Segment:
    __slots__ = ("uid", "id", "name", "usage", "pos", "max_use", "path", "scope", "parent", "same", "children",
                 "syntax", "match", "guide_loop", "required_after")

    def __init__(self, elem, parent: "Loop") -> None:
        self.uid = 0
        self.id = elem.get("xid")
        self.name = _text(elem, "name")
        self.usage = _text(elem, "usage")
        self.pos = int(_text(elem, "pos"))
        max_use = _text(elem, "max_use")
        self.max_use = MAXINT if max_use is None or max_use == ">1" else int(max_use)
        self.parent = parent
        self.path = self.id  # completed by Loop once its children are known
        self.scope = parent.path  # pyx12 keeps a node's count beside those of its loop's other children
        self.same = (self.id, parent.id)
        self.guide_loop = parent.id if parent.id and parent.id[0].isdigit() else None
        self.syntax = []
        for rule in elem.findall("syntax"):
            text = rule.text
            if text and text[0] in "PRCLE":
                self.syntax.append((text[0], tuple(int(text[i:i + 2]) for i in range(1, len(text) - 1, 2))))
        by_seq = {int(_text(e, "seq")): e for e in elem.findall("element")}
        by_seq.update({int(_text(e, "seq")): e for e in elem.findall("composite")})
        self.children = [Element(e, None, None) if e.tag == "element" else Composite(e)
                         for _, e in sorted(by_seq.items())]
        self.match = self._match_key()
        # per count of elements sent: the children after them that pyx12 reports missing
        self.required_after = [
            tuple(c for c in self.children[n:] if (c.usage == "R" if isinstance(c, Composite) else c.required_when_empty))
            for n in range(len(self.children) + 1)]

    def _match_key(self) -> tuple[int, int | None, frozenset] | None:
        """Where pyx12 reads the qualifier that tells this segment from others with its id
        (map_if segment_if._resolve_unique_key_field, with_qual=False): an ID element 01 that is
        required and has codes; ENT02; a CTX composite's AN component 01-1; an ID component 01-1; HL03."""
        c = self.children
        c0, c1, c2 = (c + [None, None, None])[:3]
        if isinstance(c0, Element) and c0.data_type == "ID" and c0.usage == "R" and c0.code_list:
            return (1, None, c0.codes)
        if self.id == "ENT" and isinstance(c1, Element) and c1.data_type == "ID" and c1.code_list:
            return (2, None, c1.codes)
        if isinstance(c0, Composite):
            first = c0.components[0]
            if self.id == "CTX" and first.data_type == "AN" and first.code_list:
                return (1, 1, first.codes)
            if first.data_type == "ID" and first.code_list:
                return (1, 1, first.codes)
        if self.id == "HL" and isinstance(c2, Element) and c2.code_list:
            return (3, None, c2.codes)
        return None

    def unique_key_code(self) -> str | None:
        """The first code of the element pyx12 uses to tell apart segments sharing a position
        (segment_if.guess_unique_key_id_element)."""
        c = self.children
        c0, c1, c2 = (c + [None, None, None])[:3]
        if isinstance(c0, Element) and c0.data_type == "ID" and c0.code_list:
            return c0.code_list[0]
        if self.id == "ENT" and isinstance(c1, Element) and c1.data_type == "ID" and c1.code_list:
            return c1.code_list[0]
        if isinstance(c0, Composite) and c0.components[0].data_type == "ID" and c0.components[0].code_list:
            return c0.components[0].code_list[0]
        if self.id == "HL" and isinstance(c2, Element) and c2.code_list:
            return c2.code_list[0]
        return None


class Loop:
    """A loop, a wrapper loop (HEADER, DETAIL) or the map root (parent None)."""

    __slots__ = ("uid", "id", "name", "usage", "pos", "max_repeat", "path", "scope", "parent", "same", "children")

    def __init__(self, elem, parent: "Loop | None") -> None:
        self.uid = 0
        self.id = elem.get("xid")
        self.name = _text(elem, "name")
        self.parent = parent
        self.same = (self.id, parent.id if parent else None)
        if parent is None:
            self.usage, self.pos, self.max_repeat, self.path = None, None, MAXINT, "/"
        else:
            self.usage = _text(elem, "usage")
            self.pos = int(_text(elem, "pos"))
            repeat = _text(elem, "repeat")
            self.max_repeat = MAXINT if repeat is None or repeat == ">1" else int(repeat)
            self.path = ("" if parent.parent is None else parent.path) + "/" + self.id
        self.scope = parent.path if parent else None
        # pyx12 orders children by position; within one position, loops before segments, each in file order
        by_pos: dict[int, list] = {}
        for e in elem.findall("loop"):
            child = Loop(e, self)
            by_pos.setdefault(child.pos, []).append(child)
        for e in elem.findall("segment"):
            child = Segment(e, self)
            by_pos.setdefault(child.pos, []).append(child)
        self.children = [child for pos in sorted(by_pos) for child in by_pos[pos]]
        for pos, group in by_pos.items():
            for child in group:
                if isinstance(child, Segment):
                    suffix = ""
                    code = child.unique_key_code() if len(group) > 1 and parent is not None else None
                    if code is not None:
                        suffix = f"[{code}]"
                    child.path = ("" if parent is None else self.path) + "/" + child.id + suffix

    def first_node(self) -> "Loop | Segment | None":
        return self.children[0] if self.children else None

    def walk(self) -> Iterator["Loop | Segment"]:
        yield self
        for child in self.children:
            if isinstance(child, Loop):
                yield from child.walk()
            else:
                yield child


class GuideMap:
    """One compiled map: its root, its nodes by uid, and per segment id the qualifier
    positions its segments are matched on."""

    def __init__(self, file_name: str) -> None:
        with _map_file(file_name).open("rb") as fh:
            root = ET.parse(fh).getroot()
        self.file_name = file_name
        self.id = root.get("xid")
        self.root = Loop(root, None)
        self.nodes = list(self.root.walk())
        for node in self.nodes:
            node.uid = next(_uids)
        self.segments = [n for n in self.nodes if isinstance(n, Segment)]
        self.loop_paths = {n.path for n in self.nodes if isinstance(n, Loop)}
        keys: dict[str, set] = {}
        for seg in self.segments:
            if seg.match is not None:
                keys.setdefault(seg.id, set()).add(seg.match[:2])
        self.match_positions = {seg_id: tuple(sorted(k, key=lambda x: (x[0], x[1] or 0))) for seg_id, k in keys.items()}
        isa = self.node("/ISA_LOOP/ISA")
        isa12 = isa.children[11] if isa is not None and len(isa.children) > 11 else None
        self.icvn = isa12.code_list[0] if isinstance(isa12, Element) and isa12.code_list else None

    def node(self, path: str):
        for n in self.nodes:
            if n.path == path:
                return n
        return None


@lru_cache(maxsize=4)
def guide(file_name: str) -> GuideMap:
    return GuideMap(file_name)
