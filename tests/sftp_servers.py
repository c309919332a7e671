"""SFTP servers for the transport tests, both on 127.0.0.1 only.

AsyncsshSftpServer: pure-Python asyncssh server on its own event-loop thread,
chrooted to a temp folder, key or password auth, with fault hooks (drop the
connection after N bytes uploaded or downloaded) and a connection counter.

OpenSshServer: the system's /usr/sbin/sshd in the foreground (-D -e) with a
temp config, its own host key and authorized key, internal-sftp, on a free
port. It logs in as the current user; the test drop lives in a temp folder.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import asyncssh

SSHD = Path("/usr/sbin/sshd")
LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def public_key_line(key: asyncssh.SSHKey) -> str:
    """"ssh-ed25519 AAAA..." without a comment."""
    return " ".join(key.export_public_key().decode().split()[:2])


@dataclass
class Faults:
    """One-shot faults: abort the SSH connection once this many bytes have passed."""

    drop_upload_after: int | None = None
    drop_download_after: int | None = None
    uploaded: int = 0
    downloaded: int = 0

    def upload_tripped(self, n: int) -> bool:
        if self.drop_upload_after is None:
            return False
        self.uploaded += n
        if self.uploaded < self.drop_upload_after:
            return False
        self.drop_upload_after = None
        return True

    def download_tripped(self, n: int) -> bool:
        if self.drop_download_after is None:
            return False
        self.downloaded += n
        if self.downloaded < self.drop_download_after:
            return False
        self.drop_download_after = None
        return True


class _FaultySFTPServer(asyncssh.SFTPServer):
    def __init__(self, chan: asyncssh.SSHServerChannel, owner: AsyncsshSftpServer):
        super().__init__(chan, chroot=str(owner.root))
        self._owner = owner

    def write(self, file_obj, offset, data):
        written = super().write(file_obj, offset, data)  # keep the partial file, like a real drop
        if self._owner.faults.upload_tripped(len(data)):
            self.connection.abort()
        return written

    def read(self, file_obj, offset, size):
        data = super().read(file_obj, offset, size)
        if self._owner.faults.download_tripped(len(data)):
            self.connection.abort()
            raise asyncssh.SFTPFailure("connection dropped by test")
        return data


class _Auth(asyncssh.SSHServer):
    def __init__(self, owner: AsyncsshSftpServer):
        self._owner = owner
        owner.connections += 1

    def begin_auth(self, username: str) -> bool:
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return username == self._owner.user and public_key_line(key) == public_key_line(self._owner.client_key)

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return username == self._owner.user and password == self._owner.password


class AsyncsshSftpServer:
    def __init__(self, root: Path, keydir: Path, user: str = "otedi", password: str = "test-password",
                 host_key_types: tuple[str, ...] = ("ssh-ed25519",)):
        self.root = root
        self.user = user
        self.password = password
        # One host key per type; `host_key` is the first (the one most tests pin).
        self.host_keys = [asyncssh.generate_private_key(t) for t in host_key_types]
        self.host_key = self.host_keys[0]
        self.client_key = asyncssh.generate_private_key("ssh-ed25519")
        self.key_file = keydir / "client_ed25519"
        self.client_key.write_private_key(str(self.key_file))
        self.key_file.chmod(0o600)
        self.connections = 0
        self.faults = Faults()
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="asyncssh-test-server", daemon=True)
        self._acceptor: asyncssh.SSHAcceptor | None = None

    def _run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    def start(self) -> AsyncsshSftpServer:
        self._thread.start()
        self._acceptor = self._run(self._listen())
        self.port = self._acceptor.sockets[0].getsockname()[1]
        return self

    async def _listen(self) -> asyncssh.SSHAcceptor:
        return await asyncssh.listen(
            LOOPBACK,
            0,
            server_host_keys=self.host_keys,
            server_factory=lambda: _Auth(self),
            sftp_factory=lambda chan: _FaultySFTPServer(chan, self),
            allow_scp=False,
        )

    async def _shutdown(self) -> None:
        if self._acceptor is not None:
            self._acceptor.close()
            await self._acceptor.wait_closed()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    def stop(self) -> None:
        if self._loop.is_closed():
            return
        self._run(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    @property
    def host_key_line(self) -> str:
        return public_key_line(self.host_key)

    def known_hosts_line(self) -> str:
        return f"[{LOOPBACK}]:{self.port} {self.host_key_line}\n"

    def url(self, path: str = "/") -> str:
        return f"sftp://{self.user}@{LOOPBACK}:{self.port}{path}"


class OpenSshServer:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.user = getpass.getuser()
        self.host_key_file = workdir / "ssh_host_ed25519_key"
        self.key_file = workdir / "client_ed25519"
        self.authorized_keys = workdir / "authorized_keys"
        self.config = workdir / "sshd_config"
        self.log_file = workdir / "sshd.log"
        self.port = 0
        self._proc: subprocess.Popen | None = None
        for path in (self.host_key_file, self.key_file):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "otedi-test", "-f", str(path)],
                           check=True, timeout=30)
        self.authorized_keys.write_text(Path(f"{self.key_file}.pub").read_text())
        self.authorized_keys.chmod(0o600)

    @property
    def host_key_line(self) -> str:
        return " ".join(Path(f"{self.host_key_file}.pub").read_text().split()[:2])

    def url(self, path: str) -> str:
        return f"sftp://{self.user}@{LOOPBACK}:{self.port}{path}"

    def start(self) -> OpenSshServer:
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)  # privilege separation dir
        self.port = free_port()
        self.config.write_text(
            "\n".join([
                f"ListenAddress {LOOPBACK}",
                f"Port {self.port}",
                f"HostKey {self.host_key_file}",
                f"AuthorizedKeysFile {self.authorized_keys}",
                "PidFile none",
                "UsePAM no",
                "StrictModes no",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",
                "Subsystem sftp internal-sftp",
                "LogLevel VERBOSE",
                "",
            ])
        )
        with open(self.log_file, "wb") as log:
            self._proc = subprocess.Popen(
                [str(SSHD), "-D", "-e", "-f", str(self.config)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"sshd exited with {self._proc.returncode}: {self.log_tail()}")
            try:
                with socket.create_connection((LOOPBACK, self.port), timeout=0.5) as s:
                    s.settimeout(2)
                    if s.recv(8).startswith(b"SSH-"):
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"sshd did not start listening on {LOOPBACK}:{self.port}: {self.log_tail()}")

    def log_tail(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self._proc is None or self._proc.poll() is not None:
            return
        # sshd runs in its own session: signal its process group (the listener and its session children).
        os.killpg(self._proc.pid, signal.SIGTERM)
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait(timeout=5)
