"""Files that may hold PHI: created mode 0600 in folders created 0700, whatever the process umask.

837P files, quarantine copies and their error reports, the SQLite warehouse, finance exports, the HTML
report and submission manifests name patients or their claims. The modes are set explicitly after
creation (a umask can only take bits away, and a permissive one must not add any). Folders that already
existed are left as their owner made them; folders otedi creates are 0700 at every level it creates.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: str | Path) -> Path:
    """`path` as a folder; every level created here is 0700."""
    path = Path(path)
    missing = []
    for level in (path, *path.parents):
        if level.exists():
            break
        missing.append(level)
    for level in reversed(missing):
        try:
            level.mkdir(mode=DIR_MODE)
        except FileExistsError:  # a concurrent twin made it first
            continue
        os.chmod(level, DIR_MODE)
    return path


def open_private(path: str | Path, mode: str = "w", **kwargs) -> IO:
    """Open `path` for writing (truncated), created 0600; `mode` is "w" or "wb"."""
    if mode not in ("w", "wb"):
        raise ValueError(f"open_private writes only: mode {mode!r}")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    os.fchmod(fd, FILE_MODE)
    return os.fdopen(fd, mode, **kwargs)


def write_private_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    with open_private(path, "w", encoding=encoding, newline="") as fh:
        fh.write(text)
    return Path(path)


def make_private(path: str | Path) -> Path:
    """A file another library wrote (pandas, SQLite): mode 0600."""
    os.chmod(path, FILE_MODE)
    return Path(path)
