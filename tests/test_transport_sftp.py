"""sftp:// drop against an in-process asyncssh server and a real OpenSSH sshd on 127.0.0.1.

The OpenSSH variants skip (with the reason printed) when /usr/sbin/sshd is
missing, unless OTEDI_REQUIRE_SSHD=1, where they fail instead.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

asyncssh = pytest.importorskip("asyncssh", reason="asyncssh/paramiko come with the airflow extra")
pytest.importorskip("paramiko", reason="asyncssh/paramiko come with the airflow extra")

from otedi.transport import (
    HostKeyError,
    RemoteExistsError,
    RetryPolicy,
    TransportAuthError,
    TransportError,
    open_drop,
)
from otedi.transport.sftp import SftpDrop, parse_host_key
from tests.sftp_servers import AsyncsshSftpServer, OpenSshServer, public_key_line
from tests.test_transport_local import x12

ROOT = Path(__file__).resolve().parents[1]
FAST = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05)
TIMEOUT = 5.0
BIG = 300_000  # several SFTP write/read requests, so faults can hit mid-transfer


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def other_key_line() -> str:
    return " ".join(asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().split()[:2])


@dataclass
class Remote:
    """A drop on one of the test servers; `base` is the same folder seen from this machine."""

    url: str
    key_file: Path
    host_key: str
    base: Path
    server: AsyncsshSftpServer | OpenSshServer

    def open(self, **kwargs) -> SftpDrop:
        kwargs.setdefault("key_file", self.key_file)
        kwargs.setdefault("host_key", self.host_key)
        kwargs.setdefault("retry", FAST)
        kwargs.setdefault("timeout", TIMEOUT)
        return open_drop(self.url, **kwargs)

    def put_inbound(self, name: str, data: bytes) -> None:
        (self.base / "inbound" / name).write_bytes(data)


@pytest.fixture
def asyncssh_server(tmp_path):
    root = tmp_path / "sftp-root"
    keys = tmp_path / "keys"
    root.mkdir()
    keys.mkdir()
    server = AsyncsshSftpServer(root, keys).start()
    yield server
    server.stop()


@pytest.fixture(params=["asyncssh", "openssh"])
def remote(request, tmp_path) -> Remote:
    if request.param == "asyncssh":
        server = request.getfixturevalue("asyncssh_server")
        base, url = server.root / "drop", server.url("/drop")
    else:
        server = request.getfixturevalue("openssh_server")
        base = tmp_path / "drop"
        url = server.url(str(base))
    (base / "outbound").mkdir(parents=True)
    (base / "inbound").mkdir()
    return Remote(url, server.key_file, server.host_key_line, base, server)


@pytest.fixture
def aremote(asyncssh_server) -> Remote:
    """The asyncssh server only: for fault injection and server-side counting."""
    base = asyncssh_server.root / "drop"
    (base / "outbound").mkdir(parents=True)
    (base / "inbound").mkdir()
    return Remote(asyncssh_server.url("/drop"), asyncssh_server.key_file, asyncssh_server.host_key_line,
                  base, asyncssh_server)


@pytest.fixture
def claim_file(tmp_path) -> Path:
    path = tmp_path / "batch-0001.837"
    path.write_bytes(x12("837") * 50)
    return path


@pytest.fixture
def big_file(tmp_path) -> Path:
    path = tmp_path / "big-0001.837"
    path.write_bytes(os.urandom(BIG))
    return path


def archive_files(archive: Path) -> list[str]:
    return sorted(p.name for p in archive.iterdir()) if archive.exists() else []


# -- behaviour on both servers -------------------------------------------------------


def test_send_twice_is_sent_then_already_sent(remote, claim_file):
    with remote.open() as drop:
        first = drop.send(claim_file)
        second = drop.send(claim_file)
    assert (first.status, second.status) == ("sent", "already_sent")
    assert first.sha256 == sha(claim_file.read_bytes())
    assert sorted(p.name for p in (remote.base / "outbound").iterdir()) == [claim_file.name]
    assert (remote.base / "outbound" / claim_file.name).read_bytes() == claim_file.read_bytes()


def test_send_never_overwrites(remote, claim_file):
    existing = remote.base / "outbound" / claim_file.name
    existing.write_bytes(b"someone else's file")
    with remote.open() as drop, pytest.raises(RemoteExistsError, match="not overwriting"):
        drop.send(claim_file)
    assert existing.read_bytes() == b"someone else's file"


def test_stale_part_is_replaced(remote, claim_file):
    part = remote.base / "outbound" / f"{claim_file.name}.part"
    part.write_bytes(b"x" * 10)
    with remote.open() as drop:
        assert drop.send(claim_file).status == "sent"
    assert not part.exists()
    assert (remote.base / "outbound" / claim_file.name).read_bytes() == claim_file.read_bytes()


def test_fetch_archives_then_moves_to_processed(remote, tmp_path):
    remote.put_inbound("a.999", x12("999"))
    remote.put_inbound("b.835", x12("835"))
    remote.put_inbound("c.835.part", b"still uploading")
    remote.put_inbound(".lock", b"")
    (remote.base / "inbound" / "subfolder").mkdir()
    archive = tmp_path / "archive"
    ledger: set[tuple[str, str]] = set()
    with remote.open() as drop:
        got = drop.fetch(archive, already_have=lambda n, s, h: any(n == name for name, _ in ledger),
                         move_to_processed=True)
        assert [(f.remote_name, f.kind) for f in got] == [("a.999", "999"), ("b.835", "835")]
        ledger.update((f.remote_name, f.sha256) for f in got)
        for f in got:
            assert f.local_path.name == f"{f.sha256}.{f.kind}"
            assert stat.S_IMODE(f.local_path.stat().st_mode) == 0o600
        assert sorted(p.name for p in (remote.base / "processed").iterdir()) == ["a.999", "b.835"]
        assert sorted(p.name for p in (remote.base / "inbound").iterdir()) == [".lock", "c.835.part", "subfolder"]
        assert drop.fetch(archive, already_have=lambda n, s, h: False, move_to_processed=True) == []


def test_fetch_twice_with_ledger_returns_nothing_new(remote, tmp_path):
    remote.put_inbound("a.999", x12("999"))
    seen: set[tuple[str, int]] = set()
    with remote.open() as drop:
        first = drop.fetch(tmp_path / "archive", already_have=lambda n, s, h: (n, s) in seen)
        seen.update((f.remote_name, f.size) for f in first)
        assert len(first) == 1
        assert drop.fetch(tmp_path / "archive", already_have=lambda n, s, h: (n, s) in seen) == []


def test_same_content_under_two_names_is_archived_once(remote, tmp_path):
    remote.put_inbound("one.835", x12("835"))
    remote.put_inbound("two.835", x12("835"))
    with remote.open() as drop:
        got = drop.fetch(tmp_path / "archive")
    assert [f.archived_now for f in got] == [True, False]
    assert archive_files(tmp_path / "archive") == [f"{sha(x12('835'))}.835"]


def test_wrong_host_key_is_refused(remote, claim_file):
    real = parse_host_key(remote.host_key).fingerprint
    with remote.open(host_key=other_key_line()) as drop, pytest.raises(HostKeyError) as err:
        drop.send(claim_file)
    message = str(err.value)
    assert "does not match" in message and real in message
    assert f"127.0.0.1:{remote.server.port}" in message
    assert list((remote.base / "outbound").iterdir()) == []


def test_unknown_host_is_refused(remote, claim_file, tmp_path):
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:1 {other_key_line()}\n")
    with remote.open(host_key=None, known_hosts=known_hosts) as drop, pytest.raises(HostKeyError) as err:
        drop.send(claim_file)
    assert "unknown" in str(err.value) and parse_host_key(remote.host_key).fingerprint in str(err.value)


def test_known_hosts_entry_is_accepted(remote, claim_file, tmp_path):
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{remote.server.port} {remote.host_key}\n")
    with remote.open(host_key=None, known_hosts=known_hosts) as drop:
        assert drop.send(claim_file).status == "sent"


# -- known_hosts: several keys per host, markers, malformed lines; several pinned keys -----


def key_line(key_type: str = "ssh-ed25519") -> str:
    return public_key_line(asyncssh.generate_private_key(key_type))


def hashed(name: str) -> str:
    """A hashed known_hosts host field, as `ssh-keygen -H` writes it."""
    salt = os.urandom(20)
    digest = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"


def label(remote: Remote) -> str:
    return f"[127.0.0.1]:{remote.server.port}"


def write_known_hosts(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def keyed_server(tmp_path):
    """Start an asyncssh server holding host keys of the given types."""
    started: list[AsyncsshSftpServer] = []

    def start(*key_types: str) -> Remote:
        n = len(started)
        root, keys = tmp_path / f"root{n}", tmp_path / f"keys{n}"
        root.mkdir()
        keys.mkdir()
        server = AsyncsshSftpServer(root, keys, host_key_types=key_types).start()
        started.append(server)
        (root / "drop" / "outbound").mkdir(parents=True)
        (root / "drop" / "inbound").mkdir()
        return Remote(server.url("/drop"), server.key_file, server.host_key_line, root / "drop", server)

    yield start
    for server in started:
        server.stop()


@pytest.mark.parametrize("key_type", ["ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa"])
@pytest.mark.parametrize("form", ["plain", "hashed", "patterns", "wildcard"])
def test_known_hosts_old_and_new_keys_accepts_the_current_one(keyed_server, claim_file, tmp_path, key_type, form):
    remote = keyed_server(key_type)
    name = label(remote)
    host = {
        "plain": name,
        "hashed": hashed(name),
        "patterns": f"ch.example.com,{name},10.0.0.9",
        "wildcard": f"[127.0.0.*]:{remote.server.port}",
    }[form]
    known_hosts = write_known_hosts(
        tmp_path / "known_hosts",
        "# clearinghouse keys (rotated)",
        f"{host} {key_line('ssh-ed25519')}",  # an old key of another type
        f"{host} {key_line(key_type)}",  # an old key of the server's type, listed first
        "",
        f"{host} {remote.host_key} current-key-comment",
    )
    with remote.open(host_key=None, known_hosts=known_hosts) as drop:
        assert drop.send(claim_file).status == "sent"


def test_known_hosts_server_with_several_keys_matches_the_listed_type(keyed_server, claim_file, tmp_path):
    remote = keyed_server("ssh-ed25519", "ecdsa-sha2-nistp256")
    ecdsa = public_key_line(remote.server.host_keys[1])
    known_hosts = write_known_hosts(tmp_path / "known_hosts", f"{hashed(label(remote))} {ecdsa}")
    with remote.open(host_key=None, known_hosts=known_hosts) as drop:
        assert drop.send(claim_file).status == "sent"


def test_known_hosts_none_of_the_listed_keys_is_refused(keyed_server, claim_file, tmp_path):
    remote = keyed_server("ssh-ed25519")
    name = label(remote)
    known_hosts = write_known_hosts(
        tmp_path / "known_hosts",
        f"{name} {key_line('ssh-ed25519')}",
        f"{hashed(name)} {key_line('ecdsa-sha2-nistp256')}",
        f"127.0.0.1 {remote.host_key}",  # port 22 only
        f"[127.0.0.1]:1 {remote.host_key}",  # another port
        f"*,!{name} {remote.host_key}",  # negated for this host
    )
    with remote.open(host_key=None, known_hosts=known_hosts) as drop, pytest.raises(HostKeyError) as err:
        drop.send(claim_file)
    assert "does not match" in str(err.value)
    assert list((remote.base / "outbound").iterdir()) == []


@pytest.mark.parametrize("pattern", ["*", "host", "hashed"])
def test_revoked_key_is_refused_even_when_listed_as_valid(keyed_server, claim_file, tmp_path, pattern):
    remote = keyed_server("ssh-ed25519")
    name = label(remote)
    revoked_for = {"*": "*", "host": f"ch.example.com,{name}", "hashed": hashed(name)}[pattern]
    known_hosts = write_known_hosts(
        tmp_path / "known_hosts",
        f"{name} {remote.host_key}",
        f"@revoked {revoked_for} {remote.host_key}",
    )
    with remote.open(host_key=None, known_hosts=known_hosts) as drop, pytest.raises(HostKeyError) as err:
        drop.send(claim_file)
    message = str(err.value)
    assert "revoked" in message and str(known_hosts) in message and "\n" not in message
    assert list((remote.base / "outbound").iterdir()) == []


def test_revoked_old_key_does_not_block_the_current_one(keyed_server, claim_file, tmp_path):
    remote = keyed_server("ssh-ed25519")
    old = key_line("ssh-ed25519")
    known_hosts = write_known_hosts(
        tmp_path / "known_hosts", f"{label(remote)} {old}", f"@revoked * {old}", f"{label(remote)} {remote.host_key}"
    )
    with remote.open(host_key=None, known_hosts=known_hosts) as drop:
        assert drop.send(claim_file).status == "sent"


def test_cert_authority_lines_are_not_host_keys(keyed_server, claim_file, tmp_path):
    remote = keyed_server("ssh-ed25519")
    ca_lines = [f"@cert-authority {label(remote)} {remote.host_key}", f"@cert-authority *.example.com {key_line()}"]
    only_ca = write_known_hosts(tmp_path / "known_hosts", *ca_lines)
    with remote.open(host_key=None, known_hosts=only_ca) as drop, pytest.raises(HostKeyError) as err:
        drop.send(claim_file)
    assert "unknown" in str(err.value) and str(only_ca) in str(err.value)
    with_key = write_known_hosts(tmp_path / "known_hosts2", *ca_lines, f"{label(remote)} {remote.host_key}")
    with remote.open(host_key=None, known_hosts=with_key) as drop:
        assert drop.send(claim_file).status == "sent"


def malformed_lines(name: str) -> list[str]:
    real_b64 = key_line().split()[1]
    return [
        "this is not a known_hosts line at all",
        "lonelyword",
        "   # an indented comment",
        "\t",
        f"{name} ssh-ed25519",  # no key
        f"{name} ssh-ed25519 !!!not-base64!!!",
        f"{name} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5",  # valid base64, truncated key
        f"{name} ssh-ed25519 {real_b64[:-7]}",  # bad padding
        f"{name} ssh-foo {real_b64}",  # unknown type
        f"{name} ecdsa-sha2-nistp256 {real_b64}",  # type and blob disagree
        f"{name} sk-ssh-ed25519@openssh.com {real_b64}",
        f"|1|not*base64|x ssh-ed25519 {real_b64}",  # broken hashed host field
        f"|1|c2FsdA==|aGFzaA== ssh-ed25519 {real_b64}",  # salt of the wrong length
        f"|2|abc|def ssh-ed25519 {real_b64}",
        f"@bogus-marker * ssh-ed25519 {real_b64}",
        "@revoked",
        f"@revoked {name}",
        "@cert-authority",
    ]


def test_malformed_known_hosts_lines_are_skipped(keyed_server, claim_file, tmp_path):
    remote = keyed_server("ssh-ed25519")
    known_hosts = tmp_path / "known_hosts"
    text = "\n".join([*malformed_lines(label(remote)), f"{label(remote)} {remote.host_key}", ""])
    known_hosts.write_bytes(b"\xff\xfe not utf-8 \x00\n" + text.encode())
    with remote.open(host_key=None, known_hosts=known_hosts) as drop:
        assert drop.send(claim_file).status == "sent"


def test_no_usable_known_hosts_key_is_one_clear_error(keyed_server, claim_file, tmp_path):
    remote = keyed_server("ssh-ed25519")
    known_hosts = write_known_hosts(tmp_path / "known_hosts", *malformed_lines(label(remote)))
    with remote.open(host_key=None, known_hosts=known_hosts) as drop, pytest.raises(HostKeyError) as err:
        drop.send(claim_file)
    message = str(err.value)
    assert isinstance(err.value, TransportError)
    assert f"127.0.0.1:{remote.server.port}" in message and str(known_hosts) in message
    assert "refusing to connect" in message and "\n" not in message
    assert "AAAA" not in message and remote.host_key.split()[1] not in message
    assert list((remote.base / "outbound").iterdir()) == []


def test_several_pinned_host_keys_accept_any(aremote, claim_file):
    keys = ",".join([other_key_line(), key_line("ecdsa-sha2-nistp256"), aremote.host_key])
    url = f"{aremote.url}?key_file={aremote.key_file}&host_key={quote(keys, safe='')}"
    with open_drop(url, retry=FAST, timeout=TIMEOUT) as drop:
        assert drop.send(claim_file).status == "sent"
    with aremote.open(host_key=f"{other_key_line()}, {aremote.host_key}") as drop:
        assert drop.send(claim_file).status == "already_sent"


def test_several_pinned_host_keys_none_matching_is_refused(aremote, claim_file):
    wrong = [other_key_line(), key_line("ecdsa-sha2-nistp256")]
    with aremote.open(host_key=",".join(wrong)) as drop, pytest.raises(HostKeyError) as err:
        drop.send(claim_file)
    message = str(err.value)
    assert "does not match" in message
    assert all(parse_host_key(k).fingerprint in message for k in wrong)


def test_repeated_url_option_is_refused(aremote):
    one, two = (quote(other_key_line(), safe="") for _ in range(2))
    with pytest.raises(TransportError, match="host_key.*more than once"):
        open_drop(f"{aremote.url}?key_file={aremote.key_file}&host_key={one}&host_key={two}")


# -- credentials (asyncssh: the server counts connections) ----------------------------


def test_rejected_key_is_not_retried(aremote, claim_file, tmp_path):
    wrong = tmp_path / "wrong_key"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(wrong))
    started = time.monotonic()
    with aremote.open(key_file=wrong, retry=RetryPolicy(attempts=5, base_delay=1.0)) as drop:
        with pytest.raises(TransportAuthError, match="not retrying"):
            drop.send(claim_file)
    assert aremote.server.connections == 1
    assert time.monotonic() - started < 1.0  # no backoff sleep


def test_password_comes_from_the_environment_and_is_never_shown(aremote, claim_file, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("OTEDI_SFTP_PASSWORD", "wrong-secret-1")
    with aremote.open(key_file=None, retry=RetryPolicy(attempts=5, base_delay=1.0)) as drop:
        with pytest.raises(TransportAuthError) as err:
            drop.send(claim_file)
    assert aremote.server.connections == 1
    assert "wrong-secret-1" not in str(err.value)
    monkeypatch.setenv("OTEDI_SFTP_PASSWORD", aremote.server.password)
    with aremote.open(key_file=None) as drop:
        assert drop.send(claim_file).status == "sent"
    assert "wrong-secret-1" not in caplog.text and aremote.server.password not in caplog.text


def test_url_with_password_is_refused_without_echoing_it():
    with pytest.raises(TransportError) as err:
        open_drop("sftp://acme:hunter2@127.0.0.1:2222/edi", host_key=other_key_line())
    assert "hunter2" not in str(err.value) and "OTEDI_SFTP_PASSWORD" in str(err.value)


def test_no_credentials_is_an_error(aremote, monkeypatch):
    monkeypatch.delenv("OTEDI_SFTP_PASSWORD", raising=False)
    with pytest.raises(TransportError, match="no credentials"):
        aremote.open(key_file=None)


def test_url_options_are_read(aremote, claim_file):
    url = f"{aremote.url}?key_file={aremote.key_file}&host_key={aremote.host_key.replace(' ', '%20').replace('+', '%2B')}"
    with open_drop(url, retry=FAST, timeout=TIMEOUT) as drop:
        assert drop.send(claim_file).status == "sent"
    with pytest.raises(TransportError, match="bogus"):
        open_drop(f"{aremote.url}?bogus=1")


# -- faults ---------------------------------------------------------------------------------


def test_upload_dropped_midway_is_retried_to_completion(aremote, big_file):
    aremote.server.faults.drop_upload_after = 64 * 1024
    with aremote.open() as drop:
        result = drop.send(big_file)
    assert result.status == "sent"
    assert aremote.server.connections == 2
    assert (aremote.base / "outbound" / big_file.name).read_bytes() == big_file.read_bytes()
    assert not (aremote.base / "outbound" / f"{big_file.name}.part").exists()


def test_upload_dropped_leaves_no_file_under_its_final_name(aremote, big_file):
    aremote.server.faults.drop_upload_after = 64 * 1024
    with aremote.open(retry=RetryPolicy(attempts=1)) as drop, pytest.raises(TransportError, match="gave up"):
        drop.send(big_file)
    assert not (aremote.base / "outbound" / big_file.name).exists()
    assert (aremote.base / "outbound" / f"{big_file.name}.part").stat().st_size < BIG
    with aremote.open() as drop:  # a later run replaces the partial .part
        assert drop.send(big_file).status == "sent"
    assert (aremote.base / "outbound" / big_file.name).read_bytes() == big_file.read_bytes()


def test_download_dropped_leaves_no_corrupt_archive_copy(aremote, tmp_path):
    data = os.urandom(BIG)
    aremote.put_inbound("big.835", data)
    archive = tmp_path / "archive"
    aremote.server.faults.drop_download_after = 64 * 1024
    with aremote.open(retry=RetryPolicy(attempts=1)) as drop, pytest.raises(TransportError, match="gave up"):
        drop.fetch(archive, move_to_processed=True)
    assert archive_files(archive) == []
    assert (aremote.base / "inbound" / "big.835").exists()
    with aremote.open() as drop:
        [got] = drop.fetch(archive, move_to_processed=True)
    assert got.sha256 == sha(data) and got.local_path.read_bytes() == data


def test_download_dropped_midway_is_retried_to_completion(aremote, tmp_path):
    data = os.urandom(BIG)
    aremote.put_inbound("big.835", data)
    aremote.server.faults.drop_download_after = 64 * 1024
    with aremote.open() as drop:
        [got] = drop.fetch(tmp_path / "archive")
    assert aremote.server.connections == 2
    assert got.sha256 == sha(data)
    assert archive_files(tmp_path / "archive") == [f"{sha(data)}.dat"]


def test_unreachable_server_is_retried_then_given_up(aremote, claim_file):
    aremote.server.stop()
    started = time.monotonic()
    with aremote.open() as drop, pytest.raises(TransportError, match="gave up after 3 attempts"):
        drop.send(claim_file)
    assert time.monotonic() - started < 5


# -- Airflow SFTPHook path ---------------------------------------------------------------

_AIRFLOW_SCRIPT = """
import json, sys
from airflow.providers.sftp.hooks.sftp import SFTPHook
from otedi.transport import (HostKeyError, RetryPolicy, TransportAuthError, drop_from_airflow_connection,
                             drop_from_sftp_hook)

claim, archive = sys.argv[1], sys.argv[2]
fast = RetryPolicy(attempts=5, base_delay=0.01)
out = {}
with drop_from_sftp_hook(SFTPHook(ssh_conn_id="otedi_ch"), "/drop", retry=fast, timeout=5) as drop:
    out["send"] = [drop.send(claim).status, drop.send(claim).status]
    out["fetch"] = [[f.remote_name, f.kind] for f in drop.fetch(archive, move_to_processed=True)]
for conn_id, error in (("otedi_ch_bad_key", TransportAuthError), ("otedi_ch_bad_host_key", HostKeyError)):
    try:
        with drop_from_airflow_connection(conn_id, "/drop", retry=fast, timeout=5) as drop:
            drop.list_inbound()
    except error as exc:
        out[conn_id] = str(exc)
print(json.dumps(out))
"""


def test_airflow_sftp_hook_shares_the_drop(aremote, claim_file, tmp_path):
    pytest.importorskip("airflow.providers.sftp")
    wrong_key = tmp_path / "wrong_key"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(wrong_key))

    def conn(key_file: Path, host_key: str) -> str:
        return json.dumps({
            "conn_type": "sftp", "host": "127.0.0.1", "port": aremote.server.port, "login": aremote.server.user,
            "extra": {"key_file": str(key_file), "host_key": host_key, "look_for_keys": "false"},
        })

    aremote.put_inbound("r.835", x12("835"))
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow-home"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "PYTHONPATH": str(ROOT),
        "AIRFLOW_CONN_OTEDI_CH": conn(aremote.key_file, aremote.host_key),
        "AIRFLOW_CONN_OTEDI_CH_BAD_KEY": conn(wrong_key, aremote.host_key),
        "AIRFLOW_CONN_OTEDI_CH_BAD_HOST_KEY": conn(aremote.key_file, other_key_line()),
    }
    proc = subprocess.run([sys.executable, "-c", _AIRFLOW_SCRIPT, str(claim_file), str(tmp_path / "archive")],
                          env=env, capture_output=True, text=True, timeout=90, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["send"] == ["sent", "already_sent"]
    assert out["fetch"] == [["r.835", "835"]]
    assert (aremote.base / "outbound" / claim_file.name).read_bytes() == claim_file.read_bytes()
    assert (aremote.base / "processed" / "r.835").exists()
    assert "not retrying" in out["otedi_ch_bad_key"]
    assert "does not match" in out["otedi_ch_bad_host_key"]
    # one session for the good connection, one for the rejected key, one for the bad host key
    assert aremote.server.connections == 3
