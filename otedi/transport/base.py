"""The drop interface and the logic every transport shares.

A drop is a folder tree at the clearinghouse (or on our own disk for
file://) with three folders, relative to its base path:

  outbound/   files we send (837P)
  inbound/    files we fetch (999, 277CA, 835, TA1)
  processed/  optional: fetched files are moved here once safely stored

`Drop` implements send/fetch once, over a handful of primitives (stat,
list, upload, download, rename, remove) that each transport provides.
Logs carry names, sizes and hashes only.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal, TypeVar

from otedi.errors import OtediError
from otedi.transport.classify import UNKNOWN, classify_file

log = logging.getLogger("otedi.transport")

T = TypeVar("T")
PART_SUFFIX = ".part"
STALE_DOWNLOAD_SECONDS = 600  # a .fetch-*.tmp untouched this long belongs to a download that died


class TransportError(OtediError):
    """A drop operation failed; the message names the drop and file, never a secret."""


class TransportAuthError(TransportError):
    """The server rejected our credentials. Never retried: clearinghouses lock accounts."""


class HostKeyError(TransportError):
    """The server's host key is unknown or differs from the one we expect."""


class RemoteExistsError(TransportError):
    """A file with that name but different content is already in the drop; we never overwrite."""


class TransferIncompleteError(TransportError):
    """The size after a transfer differs from the source; the transfer is retried."""


@dataclass(frozen=True)
class RemoteFolders:
    outbound: str = "outbound"
    inbound: str = "inbound"
    processed: str | None = "processed"

    @classmethod
    def coerce(cls, value: RemoteFolders | Mapping[str, str | None] | None) -> RemoteFolders:
        if value is None:
            return cls()
        if isinstance(value, RemoteFolders):
            return value
        unknown = set(value) - {"outbound", "inbound", "processed"}
        if unknown:
            raise TransportError(f"unknown remote folder key(s) {sorted(unknown)}")
        values = dict(value)
        if "processed" in values:
            values["processed"] = values["processed"] or None  # "" turns the move off
        return cls(**values)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff for transient network errors: base_delay, 2x, 4x ... capped at max_delay."""

    attempts: int = 4
    base_delay: float = 1.0
    max_delay: float = 30.0

    def delay(self, failed_attempts: int) -> float:
        return min(self.max_delay, self.base_delay * 2 ** (failed_attempts - 1))


@dataclass(frozen=True)
class SendResult:
    remote_name: str
    size: int
    sha256: str
    status: Literal["sent", "already_sent"]


@dataclass(frozen=True)
class FetchedFile:
    remote_name: str
    local_path: Path
    size: int
    sha256: str
    kind: str
    archived_now: bool  # False when the archive already held this content


@dataclass(frozen=True)
class RemoteEntry:
    name: str
    size: int


# already_have(remote_name, size, sha256 or None) -> True to skip the file.
AlreadyHave = Callable[[str, int, "str | None"], bool]


class HashingWriter:
    """File-like sink that counts and hashes what passes through it."""

    def __init__(self, fh: BinaryIO):
        self._fh = fh
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._hash.update(data)
        self.size += len(data)
        return self._fh.write(data)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def file_sha256(path: Path) -> tuple[int, str]:
    """(size, sha256 hex) of a local file."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _check_name(name: str) -> None:
    if not name or "/" in name or "\\" in name or name.startswith(".") or name.endswith(PART_SUFFIX):
        raise TransportError(f"{name!r} is not a valid drop file name")


def _archive_ext(kind: str) -> str:
    return "dat" if kind == UNKNOWN else kind.lower()


class Drop(ABC):
    """A clearinghouse drop. Use as a context manager, or call close()."""

    def __init__(self, folders: RemoteFolders | None = None, retry: RetryPolicy | None = None):
        self.folders = folders or RemoteFolders()
        self.retry = retry or RetryPolicy()

    # -- primitives each transport provides ---------------------------------

    @abstractmethod
    def describe(self) -> str:
        """Where the drop is, safe to log (no user name, password or options)."""

    @abstractmethod
    def _path(self, folder: str, name: str | None = None) -> str: ...

    @abstractmethod
    def _size(self, path: str) -> int | None:
        """Size of a regular file, None when it does not exist."""

    def _sha256(self, path: str) -> str | None:
        """Hash of a remote file when it is cheap to get; None otherwise."""
        return None

    @abstractmethod
    def _list(self, folder: str) -> list[RemoteEntry]:
        """Regular files in a folder."""

    @abstractmethod
    def _upload(self, local: Path, path: str) -> None: ...

    @abstractmethod
    def _download(self, path: str, sink: HashingWriter) -> None: ...

    @abstractmethod
    def _rename(self, src: str, dst: str) -> None:
        """Atomic rename; callers have checked that dst does not exist."""

    @abstractmethod
    def _remove(self, path: str) -> None: ...

    @abstractmethod
    def _ensure_folder(self, folder: str) -> None: ...

    def _connect(self) -> None:
        """Open the session if it is not open."""

    def _disconnect(self) -> None:
        """Drop the session after a failure; the next _connect opens a fresh one."""

    def _is_transient(self, exc: BaseException) -> bool:
        return isinstance(exc, TransferIncompleteError)

    def close(self) -> None:
        self._disconnect()

    def __enter__(self) -> Drop:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- retry ---------------------------------------------------------------

    def _retrying(self, what: str, op: Callable[[], T]) -> T:
        attempts = max(1, self.retry.attempts)
        attempt = 0
        while True:
            attempt += 1
            try:
                self._connect()
                return op()
            except Exception as exc:
                if not self._is_transient(exc):
                    raise
                self._disconnect()
                reason = type(exc).__name__
                if attempt == attempts:
                    raise TransportError(
                        f"{what} on {self.describe()}: gave up after {attempts} attempts ({reason})"
                    ) from exc
                delay = self.retry.delay(attempt)
                log.warning("%s on %s: attempt %d/%d failed (%s); retrying in %.2fs",
                            what, self.describe(), attempt, attempts, reason, delay)
                time.sleep(delay)

    # -- outbound ------------------------------------------------------------

    def send(self, local_path: str | Path, remote_name: str | None = None,
             before_publish: Callable[[], None] | None = None) -> SendResult:
        """Upload a file to outbound/ under .part, check its size, then rename it into place.

        Never overwrites: a file already there with the same size (and hash,
        where the transport can tell) is reported as "already_sent"; one with
        other content raises RemoteExistsError. `before_publish` runs once the
        .part is complete, just before the rename (the caller records that the
        file may now be delivered: see clearinghouse.deliver).
        """
        local = Path(local_path)
        name = remote_name or local.name
        _check_name(name)
        size, digest = file_sha256(local)
        result = self._retrying(f"send {name}",
                                lambda: self._send_once(local, name, size, digest, before_publish))
        log.info("send %s: %s (%d bytes, sha256 %s) to %s", name, result.status, size, digest, self.describe())
        return result

    def locate(self, name: str) -> Literal["published", "partial", "absent"]:
        """Where an upload of `name` stands on the drop: renamed into outbound/, only its .part, or neither."""
        final = self._path(self.folders.outbound, name)
        if self._retrying(f"look for {name}", lambda: self._size(final)) is not None:
            return "published"
        if self._retrying(f"look for {name}{PART_SUFFIX}", lambda: self._size(final + PART_SUFFIX)) is not None:
            return "partial"
        return "absent"

    def _send_once(self, local: Path, name: str, size: int, digest: str,
                   before_publish: Callable[[], None] | None = None) -> SendResult:
        final = self._path(self.folders.outbound, name)
        part = final + PART_SUFFIX
        existing = self._size(final)
        if existing is not None:
            return self._compare_existing(final, name, size, digest, existing)
        if self._size(part) is not None:
            log.info("send %s: replacing a stale %s%s", name, name, PART_SUFFIX)
            self._remove(part)
        self._upload(local, part)
        uploaded = self._size(part)
        if uploaded != size:
            raise TransferIncompleteError(f"send {name}: remote size {uploaded} after upload, expected {size}")
        existing = self._size(final)
        if existing is not None:  # appeared while we uploaded
            self._remove(part)
            return self._compare_existing(final, name, size, digest, existing)
        if before_publish is not None:
            before_publish()
        self._rename(part, final)
        return SendResult(name, size, digest, "sent")

    def _compare_existing(self, final: str, name: str, size: int, digest: str, existing: int) -> SendResult:
        remote_digest = self._sha256(final)
        if existing == size and remote_digest in (None, digest):
            return SendResult(name, size, digest, "already_sent")
        raise RemoteExistsError(
            f"{self.folders.outbound}/{name} already exists on {self.describe()} with different content "
            f"({existing} bytes there, {size} bytes here); not overwriting"
        )

    # -- inbound -------------------------------------------------------------

    def list_inbound(self) -> list[RemoteEntry]:
        """Files waiting in inbound/, by name; skips dot files, .part files and folders."""
        entries = self._retrying("list inbound", lambda: self._list(self.folders.inbound))
        return sorted(
            (e for e in entries if not e.name.startswith(".") and not e.name.endswith(PART_SUFFIX)),
            key=lambda e: e.name,
        )

    def fetch(
        self,
        archive_dir: str | Path,
        *,
        already_have: AlreadyHave | None = None,
        move_to_processed: bool = False,
    ) -> list[FetchedFile]:
        """Download new inbound files into archive_dir as <sha256>.<kind>, mode 0600.

        already_have(name, size, sha256) is asked before the download with
        sha256=None and again after it with the hash; True skips the file.
        Every file not skipped is returned, including one whose content the
        archive already held (archived_now=False). With move_to_processed, a
        file moves to processed/ only after its archive copy is on disk (and
        a skipped file moves too: its owner already has it). Callers who
        record files in a ledger first can leave this off and call
        mark_processed() after recording.
        """
        archive = Path(archive_dir)
        archive.mkdir(parents=True, exist_ok=True, mode=0o700)
        _clean_stale_downloads(archive)
        fetched: list[FetchedFile] = []
        for entry in self.list_inbound():
            if already_have and already_have(entry.name, entry.size, None):
                log.info("fetch %s: already have it (%d bytes); skipped", entry.name, entry.size)
                if move_to_processed:
                    self.mark_processed(entry.name)
                continue
            got = self._retrying(f"fetch {entry.name}", lambda: self._download_once(entry.name, archive))
            if got is None:
                log.info("fetch %s: gone from inbound before download; skipped", entry.name)
                continue
            tmp, size, digest = got
            try:
                if already_have and already_have(entry.name, size, digest):
                    log.info("fetch %s: already have sha256 %s; skipped", entry.name, digest)
                    item = None
                else:
                    item = self._store(entry.name, tmp, size, digest, archive)
            finally:
                tmp.unlink(missing_ok=True)
            if item is not None:
                fetched.append(item)
            if move_to_processed:
                self.mark_processed(entry.name, digest)
        return fetched

    def finish_moves(self, recorded: Callable[[str, int], str | None]) -> list[str]:
        """Move to processed/ every inbound file its owner already recorded (a crash or a failed move after
        the record left it behind); recorded(name, size) gives the recorded sha256, or None."""
        moved = []
        if self.folders.processed is None:
            return moved
        for entry in self.list_inbound():
            digest = recorded(entry.name, entry.size)
            if digest is not None:
                self.mark_processed(entry.name, digest)
                moved.append(entry.name)
        return moved

    def _download_once(self, name: str, archive: Path) -> tuple[Path, int, str] | None:
        remote = self._path(self.folders.inbound, name)
        expected = self._size(remote)
        if expected is None:
            return None
        fd, tmp_name = tempfile.mkstemp(dir=archive, prefix=_download_prefix(), suffix=".tmp")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as fh:
                sink = HashingWriter(fh)
                self._download(remote, sink)
                fh.flush()
                os.fsync(fh.fileno())
            if sink.size != expected:
                raise TransferIncompleteError(f"fetch {name}: got {sink.size} bytes, expected {expected}")
            return tmp, sink.size, sink.hexdigest()
        except OSError:
            tmp.unlink(missing_ok=True)
            if self._size(remote) is None:
                return None  # a concurrent fetch moved it to processed/ between the size check and the read
            raise
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def _store(self, name: str, tmp: Path, size: int, digest: str, archive: Path) -> FetchedFile:
        kind = classify_file(tmp)
        final = archive / f"{digest}.{_archive_ext(kind)}"
        archived_now = not final.exists()
        if archived_now:
            os.chmod(tmp, 0o600)
            os.replace(tmp, final)
            fsync_dir(archive)
        log.info("fetch %s: %d bytes, sha256 %s, kind %s, %s", name, size, digest, kind,
                 "archived" if archived_now else "already in archive")
        return FetchedFile(name, final, size, digest, kind, archived_now)

    def mark_processed(self, remote_name: str, sha256: str | None = None) -> None:
        """Move inbound/<name> to processed/. Safe to repeat; never overwrites.

        If processed/ already has that name, the file goes to <name>.<sha12>
        (needs sha256); if that exists too, the content is already there and
        the inbound copy is removed.
        """
        _check_name(remote_name)
        if self.folders.processed is None:
            raise TransportError(f"no processed folder is configured for {self.describe()}")
        self._retrying(f"move {remote_name} to processed",
                       lambda: self._move_once(remote_name, self.folders.processed, sha256))

    def _move_once(self, name: str, processed: str, sha256: str | None) -> None:
        src = self._path(self.folders.inbound, name)
        if self._size(src) is None:
            return  # moved by an earlier attempt
        self._ensure_folder(processed)
        dst = self._path(processed, name)
        if self._size(dst) is not None:
            if sha256 is None:
                raise RemoteExistsError(f"{processed}/{name} already exists on {self.describe()}; not overwriting")
            dst = self._path(processed, f"{name}.{sha256[:12]}")
            if self._size(dst) is not None:
                try:
                    self._remove(src)
                except OSError:
                    if self._size(src) is not None:
                        raise  # still there: a real failure, not a twin's move
                log.info("move %s: identical content already in %s; removed from inbound", name, processed)
                return
        try:
            self._rename(src, dst)
        except OSError:
            if self._size(src) is None:
                log.info("move %s: moved by a concurrent fetch", name)
                return
            raise
        log.info("move %s: inbound -> %s", name, processed)


def _download_prefix() -> str:
    """.fetch-<pid>@<host>-: names the process downloading, so a re-run can tell a dead one's file."""
    return f".fetch-{os.getpid()}@{socket.gethostname()}-"


def _owner_is_dead(name: str) -> bool:
    """True when the .fetch-*.tmp was started by a process of this host that no longer runs."""
    pid, at, rest = name.removeprefix(".fetch-").partition("@")
    if not at or not (pid.isascii() and pid.isdigit()) or rest.rsplit("-", 1)[0] != socket.gethostname():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def _clean_stale_downloads(archive: Path) -> None:
    """Remove the .fetch-*.tmp files of downloads that died: started by a process of this host that is gone
    (killed mid-download), or untouched for STALE_DOWNLOAD_SECONDS (another host's, or an older name); a live
    download, also a concurrent twin's, keeps its file."""
    cutoff = time.time() - STALE_DOWNLOAD_SECONDS
    for tmp in archive.glob(".fetch-*.tmp"):
        try:
            if _owner_is_dead(tmp.name) or tmp.stat().st_mtime < cutoff:
                tmp.unlink()
                log.info("removed a partial download left by a dead process: %s", tmp.name)
        except FileNotFoundError:
            continue
