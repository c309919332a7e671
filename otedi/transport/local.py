"""file:// drop: the clearinghouse folders live on our own disk (the embedded default)."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from otedi.files import private_dir
from otedi.transport.base import (
    Drop,
    RemoteEntry,
    RemoteFolders,
    RetryPolicy,
    TransportError,
    HashingWriter,
    file_sha256,
    fsync_dir,
)


class LocalDrop(Drop):
    """Drop folders under a local base directory; they are created when missing."""

    def __init__(self, base: str | Path, folders: RemoteFolders | None = None, retry: RetryPolicy | None = None):
        super().__init__(folders, retry)
        self.base = Path(base)
        if not self.base.is_absolute():
            raise TransportError(f"file:// drop needs an absolute path, got {str(base)!r}")
        for folder in (self.folders.outbound, self.folders.inbound):
            private_dir(self.base / folder)

    def describe(self) -> str:
        return f"file://{self.base}"

    def _path(self, folder: str, name: str | None = None) -> str:
        return str(self.base / folder / name) if name else str(self.base / folder)

    def _size(self, path: str) -> int | None:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        if not stat.S_ISREG(st.st_mode):
            raise TransportError(f"{path} is not a regular file")
        return st.st_size

    def _sha256(self, path: str) -> str | None:
        return file_sha256(Path(path))[1]

    def _list(self, folder: str) -> list[RemoteEntry]:
        entries = []
        with os.scandir(self._path(folder)) as it:
            for e in it:
                try:
                    if e.is_file(follow_symlinks=False):
                        entries.append(RemoteEntry(e.name, e.stat(follow_symlinks=False).st_size))
                except FileNotFoundError:  # moved to processed/ by a concurrent fetch since the listing
                    continue
        return entries

    def _upload(self, local: Path, path: str) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as dst, open(local, "rb") as src:
            shutil.copyfileobj(src, dst)
            dst.flush()
            os.fsync(dst.fileno())

    def _download(self, path: str, sink: HashingWriter) -> None:
        with open(path, "rb") as src:
            shutil.copyfileobj(src, sink)

    def _rename(self, src: str, dst: str) -> None:
        os.replace(src, dst)
        fsync_dir(Path(dst).parent)

    def _remove(self, path: str) -> None:
        os.unlink(path)

    def _ensure_folder(self, folder: str) -> None:
        private_dir(self.base / folder)
