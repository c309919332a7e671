"""Clearinghouse drops: send 837P files out, fetch 999/277CA/835/TA1 files in.

    with open_drop("file:///srv/otedi/drop") as drop:           # embedded default
        drop.send("batch-0001.837")
    with open_drop("sftp://acme@sftp.ch.example:22/edi?host_key=ssh-ed25519%20AAAA...",
                   key_file="/run/secrets/ch_ed25519") as drop:
        for f in drop.fetch(archive_dir):
            ...

Airflow tasks use drop_from_sftp_hook(SFTPHook(ssh_conn_id=...), "/edi") or
drop_from_airflow_connection(conn_id, "/edi"); both share SftpDrop with the URL path.
paramiko and Airflow are imported only when an sftp drop is opened.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from otedi.transport.base import (
    Drop,
    FetchedFile,
    HostKeyError,
    RemoteEntry,
    RemoteExistsError,
    RemoteFolders,
    RetryPolicy,
    SendResult,
    TransferIncompleteError,
    TransportAuthError,
    TransportError,
)
from otedi.transport.classify import classify_bytes, classify_file
from otedi.transport.local import LocalDrop

if TYPE_CHECKING:
    from otedi.transport.sftp import SftpDrop

__all__ = [
    "Drop",
    "FetchedFile",
    "HostKeyError",
    "LocalDrop",
    "RemoteEntry",
    "RemoteExistsError",
    "RemoteFolders",
    "RetryPolicy",
    "SendResult",
    "TransferIncompleteError",
    "TransportAuthError",
    "TransportError",
    "classify_bytes",
    "classify_file",
    "drop_from_airflow_connection",
    "drop_from_sftp_hook",
    "open_drop",
]

_FOLDER_OPTIONS = ("outbound", "inbound", "processed")


def open_drop(
    url: str,
    *,
    key_file: str | Path | None = None,
    known_hosts: str | Path | None = None,
    host_key: str | None = None,
    remote_folders: RemoteFolders | Mapping[str, str | None] | None = None,
    retry: RetryPolicy | None = None,
    timeout: float | None = None,
) -> Drop:
    """Open the drop at a file:///abs/path or sftp://user@host:port/base/path URL.

    Both accept ?outbound=..&inbound=..&processed=.. to rename the folders;
    sftp:// also takes host_key, known_hosts, key_file and timeout options.
    """
    scheme = urlsplit(url).scheme
    if scheme == "file":
        return _open_local(url, remote_folders, retry)
    if scheme == "sftp":
        from otedi.transport.sftp import open_sftp_drop

        return open_sftp_drop(url, key_file=key_file, known_hosts=known_hosts, host_key=host_key,
                              remote_folders=remote_folders, retry=retry, timeout=timeout)
    raise TransportError(f"unsupported drop URL scheme {scheme!r}; use file:// or sftp://")


def _open_local(
    url: str, remote_folders: RemoteFolders | Mapping[str, str | None] | None, retry: RetryPolicy | None
) -> LocalDrop:
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise TransportError(f"file:// drop must be local (file:///abs/path), got host {parts.netloc!r}")
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = set(options) - set(_FOLDER_OPTIONS)
    if unknown:
        raise TransportError(f"unknown file:// URL option(s) {sorted(unknown)}")
    if remote_folders is None and options:
        remote_folders = options
    return LocalDrop(Path(unquote(parts.path)), RemoteFolders.coerce(remote_folders), retry)


def drop_from_sftp_hook(hook: Any, base_path: str, **kwargs: Any) -> SftpDrop:
    """See otedi.transport.sftp.drop_from_sftp_hook."""
    from otedi.transport.sftp import drop_from_sftp_hook as build

    return build(hook, base_path, **kwargs)


def drop_from_airflow_connection(conn_id: str, base_path: str, **kwargs: Any) -> SftpDrop:
    """See otedi.transport.sftp.drop_from_airflow_connection."""
    from otedi.transport.sftp import drop_from_airflow_connection as build

    return build(conn_id, base_path, **kwargs)
