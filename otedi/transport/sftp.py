"""sftp:// drop over a paramiko SFTPClient.

Two ways in, one core (`SftpDrop`):
  * CLI: `open_sftp_drop("sftp://user@host:port/base?host_key=...", key_file=...)`
    opens its own paramiko Transport, checks the host key and authenticates.
  * Airflow: `drop_from_sftp_hook(SFTPHook(ssh_conn_id=...), "/base")` takes the
    SFTPClient from the hook's `get_conn()`; the connection supplies host, login,
    key_file and host_key.

The host key must be known: pinned with `host_key`, or listed in a known_hosts
file (`known_hosts`, default ~/.ssh/known_hosts). Pinned keys win.
  * host_key takes several keys comma-separated, e.g. during a key rotation
    "ssh-ed25519 AAAA...,ecdsa-sha2-nistp256 AAAA..." (URL-encode it in a URL);
    the server may present any of them. Giving host_key (or any option)
    twice in a URL is an error.
  * known_hosts is read as OpenSSH writes it: several lines (keys of any type)
    per host, comma-separated host patterns with * ? and !negation, hashed
    hosts (|1|salt|hash), "[host]:port" for ports other than 22. A key on a
    `@revoked` line for the host (or *) is refused even if another line lists
    it; `@cert-authority` lines are ignored (host certificates are not
    accepted). Unreadable lines are skipped; with no usable key left the
    connection is refused (HostKeyError naming the host and the file).

Auth is by key file (passphrase from $OTEDI_SFTP_KEY_PASSPHRASE) or by a
password from $OTEDI_SFTP_PASSWORD; a URL carrying a password is refused. Rejected
credentials raise TransportAuthError at once and are never retried.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import posixpath
import re
import socket
import stat
from collections import Counter
from collections.abc import Mapping, Sequence
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


@dataclass(frozen=True)
class ExpectedHostKeys:
    """What the server may present: any key in `keys`, never one in `revoked`.

    `source` names where the keys came from ("host_key" or "known_hosts file
    /path") for error messages; `skipped` lists the known_hosts line numbers
    that might have been about this host but could not be used."""

    keys: tuple[paramiko.PKey, ...] = ()
    revoked: tuple[paramiko.PKey, ...] = ()
    source: str = "host_key"
    skipped: tuple[int, ...] = ()


def parse_host_key(text: str) -> paramiko.PKey:
    """A pinned key: "ssh-ed25519 AAAA..." (a trailing comment is ignored)."""
    parts = text.split()
    if len(parts) < 2:
        raise TransportError('host_key must look like "ssh-ed25519 AAAA..." (type, then base64 key)')
    try:
        return _decode_key(parts[0], parts[1])
    except ValueError as exc:
        raise TransportError(f"host_key of type {parts[0]!r} cannot be read ({exc})") from None


def parse_host_keys(value: str | Sequence[str]) -> list[paramiko.PKey]:
    """Several pinned keys: comma-separated ("ssh-ed25519 AAAA...,ecdsa-sha2-nistp256 AAAA..."),
    or a list of such strings. Base64 never contains a comma, so the split is unambiguous."""
    items = [value] if isinstance(value, str) else list(value)
    texts = [part.strip() for item in items for part in item.split(",") if part.strip()]
    if not texts:
        raise TransportError("host_key is empty")
    return [parse_host_key(text) for text in texts]


def _decode_key(key_type: str, b64: str) -> paramiko.PKey:
    """A public key from its type and base64 blob; ValueError (with a short reason) if unusable."""
    try:
        blob = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not base64") from None
    try:
        key = paramiko.PKey.from_type_string(key_type, blob)
    except paramiko.UnknownKeyType:
        raise ValueError("unknown key type") from None
    except Exception:  # noqa: BLE001 - a damaged blob can fail in many ways inside paramiko/cryptography
        raise ValueError("damaged key") from None
    if key.get_name() != key_type and key_type not in _KEY_ALGORITHMS.get(key.get_name(), ()):
        raise ValueError("key type does not match its data")
    return key


def _host_label(host: str, port: int) -> str:
    """The name known_hosts uses for a host: "host" on port 22, "[host]:port" otherwise."""
    return host if port == 22 else f"[{host}]:{port}"


def _pattern_matches(pattern: str, name: str) -> bool:
    """One known_hosts host pattern against the host's name: a hashed entry
    (|1|base64 salt|base64 HMAC-SHA1 of the name), or a name with * and ? wildcards."""
    if pattern.startswith("|"):
        parts = pattern.split("|")
        if len(parts) != 4 or parts[1] != "1":
            raise ValueError("unknown hashed host format")
        try:
            salt = base64.b64decode(parts[2], validate=True)
            digest = base64.b64decode(parts[3], validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("hashed host is not base64") from None
        if len(salt) != 20 or len(digest) != 20:
            raise ValueError("hashed host has the wrong length")
        return hmac.compare_digest(hmac.new(salt, name.encode(), hashlib.sha1).digest(), digest)
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, name, flags=re.IGNORECASE | re.DOTALL) is not None


def _hosts_match(field: str, name: str) -> bool:
    """A comma-separated host field, as OpenSSH reads it: a "!pattern" that
    matches excludes the host whatever else matches; otherwise any pattern may match."""
    matched = False
    for pattern in field.split(","):
        negated = pattern.startswith("!")
        if _pattern_matches(pattern[1:] if negated else pattern, name):
            if negated:
                return False
            matched = True
    return matched


def read_known_hosts(path: Path, host: str, port: int) -> ExpectedHostKeys:
    """The keys known_hosts lists for host:port, and the ones it marks @revoked.

    Lines are `[marker] hosts keytype base64 [comment]`. Blank lines and comments
    are ignored; @cert-authority lines are ignored (we do not accept host
    certificates); a line that cannot be read is skipped, never fatal, and only
    its number is logged (never its content)."""
    name = _host_label(host, port)
    keys: list[paramiko.PKey] = []
    revoked: list[paramiko.PKey] = []
    skipped: list[int] = []
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise TransportError(f"known_hosts file {path} cannot be read ({type(exc).__name__})") from None
    for lineno, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        marker = fields.pop(0) if fields[0].startswith("@") else None
        if marker == "@cert-authority":
            continue
        try:
            if marker not in (None, "@revoked"):
                raise ValueError("unknown marker")
            if len(fields) < 3:
                raise ValueError("too few fields")
            if not _hosts_match(fields[0], name):
                continue
            key = _decode_key(fields[1], fields[2])
        except ValueError as exc:
            log.debug("known_hosts file %s line %d skipped: %s", path, lineno, exc)
            skipped.append(lineno)
            continue
        (revoked if marker == "@revoked" else keys).append(key)
    blocked = {key.asbytes() for key in revoked}
    return ExpectedHostKeys(
        keys=tuple(key for key in keys if key.asbytes() not in blocked),
        revoked=tuple(revoked),
        source=f"known_hosts file {path}",
        skipped=tuple(skipped),
    )


def expected_host_keys(
    host: str, port: int, *, host_key: str | Sequence[str] | None, known_hosts: str | Path | None
) -> ExpectedHostKeys:
    """The keys the server may present. Pinned keys win over known_hosts;
    without either, ~/.ssh/known_hosts is consulted."""
    if host_key:
        return ExpectedHostKeys(keys=tuple(parse_host_keys(host_key)))
    path = Path(known_hosts).expanduser() if known_hosts else Path("~/.ssh/known_hosts").expanduser()
    if not path.is_file():
        if known_hosts:
            raise TransportError(f"known_hosts file {path} not found")
        return ExpectedHostKeys(source=f"known_hosts file {path} (missing)")
    return read_known_hosts(path, host, port)


def check_host_key(offered: paramiko.PKey, expected: ExpectedHostKeys, host: str, port: int) -> None:
    """Raise HostKeyError unless the offered key is one we expect (and not revoked)."""
    shown = f"{offered.get_name()} {offered.fingerprint}"
    if any(offered.asbytes() == key.asbytes() for key in expected.revoked):
        raise HostKeyError(
            f"host key of {host}:{port} ({shown}) is marked @revoked in {expected.source}; refusing to connect"
        )
    if not expected.keys:
        skipped = ""
        if expected.skipped:
            skipped = f" (skipped unreadable line(s) {', '.join(map(str, expected.skipped))})"
        raise HostKeyError(
            f"host key of {host}:{port} is unknown: {expected.source} has no usable key for "
            f"{_host_label(host, port)}{skipped}; server offered {shown}; refusing to connect. "
            f"Confirm the fingerprint with the clearinghouse, then pin it with host_key or add it to known_hosts"
        )
    if not any(offered.asbytes() == key.asbytes() for key in expected.keys):
        wanted = ", ".join(f"{k.get_name()} {k.fingerprint}" for k in expected.keys)
        raise HostKeyError(
            f"host key of {host}:{port} does not match: server offered {shown}, expected {wanted} "
            f"(from {expected.source}); "
            f"refusing to connect (possible man-in-the-middle, or the clearinghouse changed its key)"
        )


def _host_key_algorithms(expected: Sequence[paramiko.PKey]) -> list[str]:
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
        expected_keys: ExpectedHostKeys,
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
        if self._expected.keys:
            # Ask for the key types we know, so a server with several keys shows one of those.
            try:
                transport.get_security_options().key_types = _host_key_algorithms(self._expected.keys)
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
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    options = dict(pairs)
    repeated = sorted(k for k, n in Counter(k for k, _ in pairs).items() if n > 1)
    if repeated:
        raise TransportError(
            f"sftp:// URL option(s) {repeated} given more than once; "
            f"list several host keys comma-separated in one host_key"
        )
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
    host_key: str | Sequence[str] | None = None,
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
