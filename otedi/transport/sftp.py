"""sftp:// drop over a paramiko SFTPClient.

Two ways in, one core (`SftpDrop`):
  * CLI: `open_sftp_drop("sftp://user@host:port/base?host_key=...", key_file=...)`
    opens its own paramiko Transport, checks the host key and authenticates.
  * Airflow: `drop_from_sftp_hook(SFTPHook(ssh_conn_id=...), "/base")` takes the
    SFTPClient from the hook's `get_conn()`; the connection supplies host, login,
    key_file and host_key.

The host key must be known (pinned `host_key` or a known_hosts entry). Auth is
by key file (passphrase from $OTEDI_SFTP_KEY_PASSPHRASE) or by a password from
$OTEDI_SFTP_PASSWORD; a URL carrying a password is refused. Rejected
credentials raise TransportAuthError at once and are never retried.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import posixpath
import socket
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

import paramiko

from otedi.transport.base import (
    Drop,
    HashingWriter,
    HostKeyError,
    RemoteEntry,
    RemoteFolders,
    RetryPolicy,
    TransferIncompleteError,
    TransportAuthError,
    TransportError,
)

log = logging.getLogger("otedi.transport")

PASSWORD_ENV = "OTEDI_SFTP_PASSWORD"
PASSPHRASE_ENV = "OTEDI_SFTP_KEY_PASSPHRASE"
DEFAULT_TIMEOUT = 30.0

# Options accepted in the URL query string (values are never logged).
URL_OPTIONS = {"host_key", "known_hosts", "key_file", "timeout", "outbound", "inbound", "processed"}

# Host-key algorithms a server may use to prove it holds a key of a given type.
_KEY_ALGORITHMS = {"ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256")}


class SftpSession(Protocol):
    """Opens and drops the SFTPClient a SftpDrop works through."""

    def open(self) -> paramiko.SFTPClient: ...

    def close(self) -> None: ...


# -- host keys ----------------------------------------------------------------


def parse_host_key(text: str) -> paramiko.PKey:
    """A pinned key: "ssh-ed25519 AAAA..." (a trailing comment is ignored)."""
    parts = text.split()
    if len(parts) < 2:
        raise TransportError('host_key must look like "ssh-ed25519 AAAA..." (type, then base64 key)')
    try:
        return paramiko.PKey.from_type_string(parts[0], base64.b64decode(parts[1], validate=True))
    except (binascii.Error, paramiko.SSHException, ValueError) as exc:
        raise TransportError(f"host_key of type {parts[0]!r} cannot be read ({type(exc).__name__})") from None


def _host_label(host: str, port: int) -> str:
    """The name known_hosts uses for a host: "host" on port 22, "[host]:port" otherwise."""
    return host if port == 22 else f"[{host}]:{port}"


def expected_host_keys(
    host: str, port: int, *, host_key: str | None, known_hosts: str | Path | None
) -> list[paramiko.PKey]:
    """The keys the server may present. A pinned key wins over known_hosts;
    without either, ~/.ssh/known_hosts is consulted."""
    if host_key:
        return [parse_host_key(host_key)]
    path = Path(known_hosts).expanduser() if known_hosts else Path("~/.ssh/known_hosts").expanduser()
    if not path.is_file():
        if known_hosts:
            raise TransportError(f"known_hosts file {path} not found")
        return []
    entries = paramiko.HostKeys(str(path)).lookup(_host_label(host, port))
    return list(entries.values()) if entries else []


def check_host_key(offered: paramiko.PKey, expected: list[paramiko.PKey], host: str, port: int) -> None:
    """Raise HostKeyError unless the offered key is one we expect."""
    shown = f"{offered.get_name()} {offered.fingerprint}"
    if not expected:
        raise HostKeyError(
            f"host key of {host}:{port} is unknown (server offered {shown}); refusing to connect. "
            f"Confirm the fingerprint with the clearinghouse, then pin it with host_key or add it to known_hosts"
        )
    if not any(offered.asbytes() == key.asbytes() for key in expected):
        wanted = ", ".join(f"{k.get_name()} {k.fingerprint}" for k in expected)
        raise HostKeyError(
            f"host key of {host}:{port} does not match: server offered {shown}, expected {wanted}; "
            f"refusing to connect (possible man-in-the-middle, or the clearinghouse changed its key)"
        )


def _host_key_algorithms(expected: list[paramiko.PKey]) -> list[str]:
    names: list[str] = []
    for key in expected:
        for name in _KEY_ALGORITHMS.get(key.get_name(), (key.get_name(),)):
            if name not in names:
                names.append(name)
    return names


# -- sessions -----------------------------------------------------------------


@dataclass(frozen=True)
class SftpTarget:
    host: str
    port: int
    username: str
    base_path: str


class DirectSession:
    """Our own paramiko Transport: host key check, then key or password auth."""

    def __init__(
        self,
        target: SftpTarget,
        *,
        pkey: paramiko.PKey | None,
        password: str | None,
        expected_keys: list[paramiko.PKey],
        timeout: float,
    ):
        if pkey is None and password is None:
            raise TransportError(f"no credentials for {target.host}: give a key file or set ${PASSWORD_ENV}")
        self.target = target
        self._pkey = pkey
        self._password = password
        self._expected = expected_keys
        self._timeout = timeout
        self._transport: paramiko.Transport | None = None

    def open(self) -> paramiko.SFTPClient:
        host, port = self.target.host, self.target.port
        sock = socket.create_connection((host, port), timeout=self._timeout)
        transport = paramiko.Transport(sock)
        self._transport = transport
        transport.banner_timeout = transport.handshake_timeout = self._timeout
        transport.auth_timeout = transport.channel_timeout = self._timeout
        if self._expected:
            # Ask for the key type we know, so a server with several keys shows that one.
            try:
                transport.get_security_options().key_types = _host_key_algorithms(self._expected)
            except ValueError:
                raise TransportError(f"unsupported host key type for {host}:{port}") from None
        try:
            transport.start_client(timeout=self._timeout)
        except paramiko.IncompatiblePeer as exc:
            raise TransportError(f"cannot negotiate SSH with {host}:{port}: {exc}") from None
        check_host_key(transport.get_remote_server_key(), self._expected, host, port)
        try:
            if self._pkey is not None:
                transport.auth_publickey(self.target.username, self._pkey)
            else:
                transport.auth_password(self.target.username, self._password)
        except paramiko.AuthenticationException:
            method = "key" if self._pkey is not None else "password"
            raise TransportAuthError(
                f"{host}:{port} rejected {method} authentication for user {self.target.username!r}; "
                f"not retrying (repeated failures can lock the clearinghouse account)"
            ) from None
        sftp = paramiko.SFTPClient.from_transport(transport)
        sftp.get_channel().settimeout(self._timeout)
        return sftp

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None


class HookSession:
    """The SFTPClient of an Airflow SFTPHook (paramiko under the hood)."""

    def __init__(self, hook: Any, timeout: float):
        self._hook = hook
        self._timeout = timeout
        # One connect per open(): our retry loop handles transport failures and
        # must never replay rejected credentials (the hook retries 3 times by default).
        hook.conn_retry_attempts = 1
        self.host = str(hook.remote_host)
        self.port = int(hook.port or 22)

    def open(self) -> paramiko.SFTPClient:
        try:
            sftp = self._hook.get_conn()
        except paramiko.AuthenticationException:
            raise TransportAuthError(
                f"{self.host}:{self.port} rejected authentication for connection {self._hook.ssh_conn_id!r}; "
                f"not retrying (repeated failures can lock the clearinghouse account)"
            ) from None
        except paramiko.BadHostKeyException as exc:
            raise HostKeyError(
                f"host key of {self.host}:{self.port} does not match: server offered "
                f"{exc.key.get_name()} {exc.key.fingerprint}, expected {exc.expected_key.fingerprint}; "
                f"refusing to connect"
            ) from None
        except paramiko.SSHException as exc:
            if "known_hosts" in str(exc):
                raise HostKeyError(
                    f"host key of {self.host}:{self.port} is unknown; refusing to connect. "
                    f"Set host_key in connection {self._hook.ssh_conn_id!r} or add the host to known_hosts"
                ) from None
            raise
        sftp.get_channel().settimeout(self._timeout)
        return sftp

    def close(self) -> None:
        self._hook.close_conn()
        client = getattr(self._hook, "client", None)
        if client is not None:
            client.close()
            self._hook.client = None


# -- the drop -----------------------------------------------------------------


class SftpDrop(Drop):
    def __init__(
        self,
        session: SftpSession,
        base_path: str,
        where: str,
        folders: RemoteFolders | None = None,
        retry: RetryPolicy | None = None,
    ):
        super().__init__(folders, retry)
        self._session = session
        self._base = base_path or "."
        self._where = where
        self._sftp: paramiko.SFTPClient | None = None

    def describe(self) -> str:
        return self._where

    def _client(self) -> paramiko.SFTPClient:
        if self._sftp is None:
            raise TransportError(f"{self._where}: not connected")
        return self._sftp

    def _connect(self) -> None:
        if self._sftp is None:
            try:
                self._sftp = self._session.open()
            except BaseException:
                self._session.close()
                raise

    def _disconnect(self) -> None:
        self._sftp = None
        try:
            self._session.close()
        except Exception:  # noqa: BLE001 - the session is being dropped anyway
            log.debug("closing %s failed", self._where, exc_info=True)

    def _alive(self) -> bool:
        if self._sftp is None:
            return False
        channel = self._sftp.get_channel()
        return channel is not None and not channel.closed and channel.get_transport().is_active()

    def _is_transient(self, exc: BaseException) -> bool:
        if isinstance(exc, TransportError):
            return isinstance(exc, TransferIncompleteError)
        if isinstance(exc, (paramiko.AuthenticationException, paramiko.BadHostKeyException)):
            return False
        if isinstance(exc, (EOFError, paramiko.SSHException, TimeoutError, ConnectionError)):
            return True
        # SFTP status errors (no such file, permission denied) arrive as OSError on a
        # live session; an OSError on a dead session is the network.
        return isinstance(exc, OSError) and not self._alive()

    def _path(self, folder: str, name: str | None = None) -> str:
        return posixpath.join(self._base, folder, name) if name else posixpath.join(self._base, folder)

    def _size(self, path: str) -> int | None:
        try:
            st = self._client().stat(path)
        except FileNotFoundError:
            return None
        if st.st_mode is not None and not stat.S_ISREG(st.st_mode):
            raise TransportError(f"{path} on {self._where} is not a regular file")
        return st.st_size

    def _list(self, folder: str) -> list[RemoteEntry]:
        path = self._path(folder)
        try:
            attrs = self._client().listdir_attr(path)
        except FileNotFoundError:
            raise TransportError(f"folder {path} not found on {self._where}") from None
        return [
            RemoteEntry(a.filename, a.st_size or 0)
            for a in attrs
            if a.filename not in (".", "..") and a.st_mode is not None and stat.S_ISREG(a.st_mode)
        ]

    def _upload(self, local: Path, path: str) -> None:
        with open(local, "rb") as fh:
            self._client().putfo(fh, path, confirm=False)

    def _download(self, path: str, sink: HashingWriter) -> None:
        self._client().getfo(path, sink)

    def _rename(self, src: str, dst: str) -> None:
        self._client().posix_rename(src, dst)

    def _remove(self, path: str) -> None:
        self._client().remove(path)

    def _ensure_folder(self, folder: str) -> None:
        path = self._path(folder)
        try:
            self._client().stat(path)
        except FileNotFoundError:
            self._client().mkdir(path, 0o700)


# -- constructors ---------------------------------------------------------------


def parse_sftp_url(url: str) -> tuple[SftpTarget, dict[str, str]]:
    """sftp://user@host[:port][/base/path][?option=value...] -> target and options.

    Error messages name the host and option keys only, never the URL."""
    parts = urlsplit(url)
    if parts.scheme != "sftp":
        raise TransportError(f"not an sftp:// URL (scheme {parts.scheme!r})")
    if parts.password is not None:
        raise TransportError(f"an sftp:// URL must not carry a password; set ${PASSWORD_ENV} instead")
    if not parts.hostname:
        raise TransportError("sftp:// URL has no host")
    if not parts.username:
        raise TransportError(f"sftp:// URL for {parts.hostname} has no user name (sftp://user@host/...)")
    try:
        port = parts.port or 22
    except ValueError:
        raise TransportError(f"sftp:// URL for {parts.hostname} has an invalid port") from None
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = set(options) - URL_OPTIONS
    if unknown:
        raise TransportError(f"unknown sftp:// URL option(s) {sorted(unknown)}; known: {sorted(URL_OPTIONS)}")
    base = unquote(parts.path) or "."
    return SftpTarget(parts.hostname, port, unquote(parts.username), base), options


def _load_key(key_file: str | Path, passphrase_env: str) -> paramiko.PKey:
    path = Path(key_file).expanduser()
    try:
        return paramiko.PKey.from_path(path, password=os.environ.get(passphrase_env))
    except FileNotFoundError:
        raise TransportError(f"key file {path} not found") from None
    except paramiko.PasswordRequiredException:
        raise TransportError(f"key file {path} is encrypted; set ${passphrase_env}") from None
    except (paramiko.SSHException, ValueError, OSError) as exc:
        raise TransportError(f"key file {path} cannot be read ({type(exc).__name__})") from None


def open_sftp_drop(
    url: str,
    *,
    key_file: str | Path | None = None,
    known_hosts: str | Path | None = None,
    host_key: str | None = None,
    remote_folders: RemoteFolders | Mapping[str, str | None] | None = None,
    retry: RetryPolicy | None = None,
    timeout: float | None = None,
    password_env: str = PASSWORD_ENV,
    passphrase_env: str = PASSPHRASE_ENV,
) -> SftpDrop:
    """Drop at an sftp:// URL. Keyword arguments win over URL options.

    Nothing connects until the first operation; the key file is read now."""
    target, options = parse_sftp_url(url)
    key_file = key_file or options.get("key_file")
    host_key = host_key or options.get("host_key")
    known_hosts = known_hosts or options.get("known_hosts")
    try:
        timeout = timeout or float(options.get("timeout", DEFAULT_TIMEOUT))
    except ValueError:
        raise TransportError("sftp:// URL option timeout must be a number of seconds") from None
    if remote_folders is None:
        remote_folders = {k: options[k] for k in ("outbound", "inbound", "processed") if k in options} or None
    session = DirectSession(
        target,
        pkey=_load_key(key_file, passphrase_env) if key_file else None,
        password=None if key_file else (os.environ.get(password_env) or None),
        expected_keys=expected_host_keys(target.host, target.port, host_key=host_key, known_hosts=known_hosts),
        timeout=timeout,
    )
    where = f"sftp://{target.host}:{target.port}/{target.base_path.lstrip('/')}"
    return SftpDrop(session, target.base_path, where, RemoteFolders.coerce(remote_folders), retry)


def drop_from_sftp_hook(
    hook: Any,
    base_path: str,
    *,
    remote_folders: RemoteFolders | Mapping[str, str | None] | None = None,
    retry: RetryPolicy | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> SftpDrop:
    """Drop reached through an Airflow SFTPHook (airflow.providers.sftp.hooks.sftp.SFTPHook).

    Host key checking, key file and login come from the Airflow connection.
    Sets hook.conn_retry_attempts to 1 (see HookSession)."""
    session = HookSession(hook, timeout)
    where = f"sftp://{session.host}:{session.port}/{base_path.lstrip('/')} (connection {hook.ssh_conn_id})"
    return SftpDrop(session, base_path, where, RemoteFolders.coerce(remote_folders), retry)


def drop_from_airflow_connection(conn_id: str, base_path: str, **kwargs: Any) -> SftpDrop:
    """Build an SFTPHook for an Airflow connection id and wrap it (Airflow imported here, lazily)."""
    from airflow.providers.sftp.hooks.sftp import SFTPHook

    return drop_from_sftp_hook(SFTPHook(ssh_conn_id=conn_id, conn_retry_attempts=1), base_path, **kwargs)
