"""file:// drop: send, fetch, archive and classification."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest

from otedi.transport import (
    LocalDrop,
    RemoteExistsError,
    RemoteFolders,
    RetryPolicy,
    TransportError,
    classify_bytes,
    classify_file,
    open_drop,
)

FAST = RetryPolicy(attempts=2, base_delay=0.001)


def isa(sep: str = "*", comp: str = ":", term: str = "~") -> str:
    """A fixed-width ISA segment with the given delimiters."""
    fields = ["ISA", "00", " " * 10, "00", " " * 10, "ZZ", "SUBMITTER".ljust(15), "ZZ", "RECEIVER".ljust(15),
              "240101", "1200", "^", "00501", "000000001", "0", "T", comp]
    segment = sep.join(fields) + term
    assert len(segment) == 106
    return segment


def x12(st01: str | None, *, sep: str = "*", comp: str = ":", term: str = "~", ta1: bool = False) -> bytes:
    segments = [isa(sep, comp, term)]
    if ta1:
        segments.append(sep.join(["TA1", "000000001", "240101", "1200", "A", "000"]) + term)
    if st01:
        segments += [sep.join(["GS", "HP", "RECEIVER", "SUBMITTER", "20240101", "1200", "1", "X", "005010"]) + term,
                     sep.join(["ST", st01, "0001"]) + term,
                     sep.join(["SE", "2", "0001"]) + term,
                     sep.join(["GE", "1", "1"]) + term]
    segments.append(sep.join(["IEA", "1", "000000001"]) + term)
    return "".join(segments).encode()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def drop(tmp_path) -> LocalDrop:
    d = open_drop(f"file://{tmp_path / 'drop'}", retry=FAST)
    assert isinstance(d, LocalDrop)
    return d


@pytest.fixture
def claim_file(tmp_path) -> Path:
    path = tmp_path / "out" / "batch-0001.837"
    path.parent.mkdir()
    path.write_bytes(x12("837") * 50)
    return path


# -- classify ------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["999", "277", "835"])
@pytest.mark.parametrize("delims", [("*", ":", "~"), ("|", ">", "\n"), ("*", ":", "~\r\n")])
def test_classify_by_st01(kind, delims):
    sep, comp, term = delims
    if term == "~\r\n":  # terminator "~" followed by line breaks
        data = x12(kind, sep=sep, comp=comp, term="~").replace(b"~", b"~\r\n")
    else:
        data = x12(kind, sep=sep, comp=comp, term=term)
    assert classify_bytes(data) == kind


@pytest.mark.parametrize("delims", [("*", ":", "~"), ("|", ">", "\n")])
def test_classify_ta1_only(delims):
    sep, comp, term = delims
    assert classify_bytes(x12(None, sep=sep, comp=comp, term=term, ta1=True)) == "TA1"


def test_classify_ta1_with_st_is_the_st():
    assert classify_bytes(x12("999", ta1=True)) == "999"


@pytest.mark.parametrize("data", [b"", b"hello", b"%PDF-1.4", x12("837"), x12(None), b"ISA*00*short~"])
def test_classify_unknown(data):
    assert classify_bytes(data) == "unknown"


def test_classify_file_skips_bom_and_leading_whitespace(tmp_path):
    path = tmp_path / "r.835"
    path.write_bytes(b"\xef\xbb\xbf\r\n" + x12("835"))
    assert classify_file(path) == "835"


# -- open_drop -------------------------------------------------------------------


def test_open_drop_creates_folders_and_reads_folder_options(tmp_path):
    base = tmp_path / "d"
    d = open_drop(f"file://{base}?outbound=to_ch&inbound=from_ch&processed=")
    assert d.folders == RemoteFolders("to_ch", "from_ch", None)
    assert (base / "to_ch").is_dir() and (base / "from_ch").is_dir()
    assert open_drop(f"file://{base}", remote_folders={"outbound": "o"}).folders.outbound == "o"


@pytest.mark.parametrize("url", ["ftp://host/x", "file://otherhost/x", "file:///x?bogus=1", "relative/path"])
def test_open_drop_rejects(url):
    with pytest.raises(TransportError):
        open_drop(url)


# -- send --------------------------------------------------------------------------


def test_send_twice_is_sent_then_already_sent(drop, claim_file):
    data = claim_file.read_bytes()
    first = drop.send(claim_file)
    assert (first.status, first.remote_name, first.size, first.sha256) == ("sent", claim_file.name, len(data), sha(data))
    assert (drop.base / "outbound" / claim_file.name).read_bytes() == data
    assert not (drop.base / "outbound" / f"{claim_file.name}.part").exists()
    assert drop.send(claim_file).status == "already_sent"
    assert sorted(p.name for p in (drop.base / "outbound").iterdir()) == [claim_file.name]


def test_send_under_another_name(drop, claim_file):
    assert drop.send(claim_file, "OT_20240101_0001.x12").remote_name == "OT_20240101_0001.x12"
    assert (drop.base / "outbound" / "OT_20240101_0001.x12").read_bytes() == claim_file.read_bytes()


@pytest.mark.parametrize("other", [b"different and shorter", None], ids=["other-size", "same-size-other-bytes"])
def test_send_never_overwrites_different_content(drop, claim_file, other):
    data = claim_file.read_bytes()
    other = other or bytes(reversed(data))
    remote = drop.base / "outbound" / claim_file.name
    remote.write_bytes(other)
    with pytest.raises(RemoteExistsError, match="not overwriting"):
        drop.send(claim_file)
    assert remote.read_bytes() == other


def test_send_replaces_stale_part(drop, claim_file):
    part = drop.base / "outbound" / f"{claim_file.name}.part"
    part.write_bytes(b"half of an earlier attempt")
    assert drop.send(claim_file).status == "sent"
    assert not part.exists()
    assert (drop.base / "outbound" / claim_file.name).read_bytes() == claim_file.read_bytes()


@pytest.mark.parametrize("name", ["x.part", ".hidden", "a/b", "..\\x"])
def test_send_rejects_bad_names(drop, claim_file, name):
    with pytest.raises(TransportError, match="not a valid drop file name"):
        drop.send(claim_file, name)


# -- fetch --------------------------------------------------------------------------


def put_inbound(drop: LocalDrop, name: str, data: bytes) -> None:
    (drop.base / "inbound" / name).write_bytes(data)


def test_fetch_stores_by_hash_with_mode_0600_and_kind(drop, tmp_path):
    data = x12("835")
    put_inbound(drop, "ERA_0001.835", data)
    [got] = drop.fetch(tmp_path / "archive")
    assert (got.remote_name, got.size, got.sha256, got.kind, got.archived_now) == (
        "ERA_0001.835", len(data), sha(data), "835", True)
    assert got.local_path == tmp_path / "archive" / f"{sha(data)}.835"
    assert got.local_path.read_bytes() == data
    assert stat.S_IMODE(got.local_path.stat().st_mode) == 0o600
    assert [p.name for p in (tmp_path / "archive").iterdir()] == [got.local_path.name]  # no temp files
    assert (drop.base / "inbound" / "ERA_0001.835").exists()  # left in place without move_to_processed


def test_fetch_twice_returns_nothing_new(drop, tmp_path):
    put_inbound(drop, "a.999", x12("999"))
    put_inbound(drop, "b.277", x12("277"))
    ledger: set[tuple[str, int]] = set()

    def already_have(name, size, digest):
        return (name, size) in ledger

    first = drop.fetch(tmp_path / "archive", already_have=already_have)
    assert sorted((f.remote_name, f.kind) for f in first) == [("a.999", "999"), ("b.277", "277")]
    ledger.update((f.remote_name, f.size) for f in first)
    assert drop.fetch(tmp_path / "archive", already_have=already_have) == []


def test_fetch_without_ledger_refetches_but_archives_once(drop, tmp_path):
    put_inbound(drop, "a.999", x12("999"))
    [first] = drop.fetch(tmp_path / "archive")
    [again] = drop.fetch(tmp_path / "archive")
    assert again.local_path == first.local_path and not again.archived_now
    assert len(list((tmp_path / "archive").iterdir())) == 1


def test_already_have_by_hash_skips_after_download(drop, tmp_path):
    data = x12("835")
    put_inbound(drop, "renamed.835", data)
    calls = []

    def already_have(name, size, digest):
        calls.append((name, size, digest))
        return digest == sha(data)

    assert drop.fetch(tmp_path / "archive", already_have=already_have) == []
    assert calls == [("renamed.835", len(data), None), ("renamed.835", len(data), sha(data))]
    assert list((tmp_path / "archive").iterdir()) == []


def test_same_content_under_two_names_is_archived_once(drop, tmp_path):
    data = x12("835")
    put_inbound(drop, "one.835", data)
    put_inbound(drop, "two.835", data)
    got = drop.fetch(tmp_path / "archive")
    assert [f.remote_name for f in got] == ["one.835", "two.835"]
    assert [f.archived_now for f in got] == [True, False]
    assert got[0].local_path == got[1].local_path
    assert len(list((tmp_path / "archive").iterdir())) == 1


def test_fetch_ignores_part_dot_files_and_folders(drop, tmp_path):
    put_inbound(drop, "upload.835.part", b"partial")
    put_inbound(drop, ".hidden", b"x")
    (drop.base / "inbound" / "sub").mkdir()
    put_inbound(drop, "real.999", x12("999"))
    assert [f.remote_name for f in drop.fetch(tmp_path / "archive")] == ["real.999"]


def test_move_to_processed_happens_after_storage(drop, tmp_path, monkeypatch):
    data = x12("835")
    put_inbound(drop, "r.835", data)
    archived = tmp_path / "archive" / f"{sha(data)}.835"
    seen = []
    real_rename = LocalDrop._rename

    def spy(self, src, dst):
        if "processed" in dst:
            seen.append(archived.is_file() and archived.read_bytes() == data)
        real_rename(self, src, dst)

    monkeypatch.setattr(LocalDrop, "_rename", spy)
    [got] = drop.fetch(tmp_path / "archive", move_to_processed=True)
    assert seen == [True]
    assert not (drop.base / "inbound" / "r.835").exists()
    assert (drop.base / "processed" / "r.835").read_bytes() == data
    assert got.local_path == archived


def test_failed_storage_leaves_remote_in_inbound(drop, tmp_path, monkeypatch):
    put_inbound(drop, "r.835", x12("835"))

    def broken_store(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(LocalDrop, "_store", broken_store)
    with pytest.raises(OSError, match="disk full"):
        drop.fetch(tmp_path / "archive", move_to_processed=True)
    assert (drop.base / "inbound" / "r.835").exists()
    assert not (drop.base / "processed").exists()
    assert list((tmp_path / "archive").iterdir()) == []  # temp file removed


def test_mark_processed_never_overwrites(drop, tmp_path):
    old, new = x12("835"), x12("835").replace(b"0001", b"0002")
    (drop.base / "processed").mkdir()
    (drop.base / "processed" / "r.835").write_bytes(old)
    put_inbound(drop, "r.835", new)
    [got] = drop.fetch(tmp_path / "archive", move_to_processed=True)
    assert (drop.base / "processed" / "r.835").read_bytes() == old
    assert (drop.base / "processed" / f"r.835.{got.sha256[:12]}").read_bytes() == new
    drop.mark_processed("r.835", got.sha256)  # repeat: nothing left to move, no error


def test_mark_processed_needs_a_processed_folder(tmp_path):
    d = open_drop(f"file://{tmp_path / 'd'}", remote_folders=RemoteFolders(processed=None))
    with pytest.raises(TransportError, match="no processed folder"):
        d.mark_processed("r.835")


def test_a_file_a_concurrent_fetch_moves_during_the_listing_is_passed_over(drop, monkeypatch):
    """The listing reads each entry's size after the directory scan: a twin moving the file to processed/
    in between makes that stat fail, and the file is simply not listed (the twin has it)."""
    import os

    inbox = drop.base / "inbound"
    for name in ("A.835", "B.835"):
        (inbox / name).write_bytes(x12("835"))
    real_scandir = os.scandir

    def scandir_then_move(path):
        entries = list(real_scandir(path))
        if Path(path) == inbox:
            (inbox / "A.835").rename(drop.base / "processed" / "A.835")  # the twin, between scan and stat
        return _Entries(entries)

    class _Entries(list):
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    (drop.base / "processed").mkdir(exist_ok=True)
    monkeypatch.setattr(os, "scandir", scandir_then_move)
    assert [e.name for e in drop.list_inbound()] == ["B.835"]


def test_a_file_a_concurrent_fetch_moves_before_the_download_is_passed_over(drop, tmp_path, monkeypatch):
    """The size check finds the file, then the twin moves it to processed/ before the read opens it: the
    fetch skips that file (the twin has it), leaves no partial download, and fetches the others."""
    inbox, processed = drop.base / "inbound", drop.base / "processed"
    processed.mkdir(exist_ok=True)
    put_inbound(drop, "A.835", x12("835"))
    put_inbound(drop, "B.835", x12("835").replace(b"0001", b"0002"))
    real_download = LocalDrop._download

    def twin_moves_first(self, path, sink):
        if path.endswith("A.835"):
            (inbox / "A.835").rename(processed / "A.835")
        real_download(self, path, sink)

    monkeypatch.setattr(LocalDrop, "_download", twin_moves_first)
    got = drop.fetch(tmp_path / "archive", move_to_processed=True)
    assert [f.remote_name for f in got] == ["B.835"]
    assert sorted(p.name for p in processed.iterdir()) == ["A.835", "B.835"]
    assert not list((tmp_path / "archive").glob(".fetch-*"))


def test_a_download_that_fails_while_the_file_is_still_there_raises(drop, tmp_path, monkeypatch):
    put_inbound(drop, "A.835", x12("835"))

    def unreadable(self, path, sink):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(LocalDrop, "_download", unreadable)
    with pytest.raises(PermissionError):
        drop.fetch(tmp_path / "archive", move_to_processed=True)
    assert (drop.base / "inbound" / "A.835").exists()
