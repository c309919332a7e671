"""Run an otedi command that SIGKILLs itself at a named step: `python -m tests.reliability.killpoint STEP[:N] -- ARGS`.

The kill comes from outside the library: before the command starts, the function at the step is wrapped so
that its N-th call (default the first) kills the process - no `finally`, no rollback handler, no flush runs,
as when the machine loses power or the OOM killer strikes. The library itself has no hook for this.

Steps, in the order of a cycle (outbound, then inbound): after_build, mid_write, after_write, before_send,
mid_upload, after_remote_rename, before_submission_commit, mid_download, after_fetch_record, after_ack_load,
mid_posting, after_posting, before_secondaries (each explained where it is installed below).
"""

from __future__ import annotations

import io
import os
import signal
import sys
from types import SimpleNamespace
from typing import Callable


def die() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), signal.SIGKILL)


class _Countdown:
    def __init__(self, nth: int):
        self.left = nth

    def hit(self) -> bool:
        self.left -= 1
        return self.left == 0


def _wrap(owner, name: str, countdown: _Countdown, *, when: str,
          partial: Callable[..., None] | None = None) -> None:
    """Replace owner.name: kill `before` or `after` the N-th call, or (`mid`) run `partial` and kill."""
    real = getattr(owner, name)

    def wrapper(*args, **kwargs):
        if countdown.hit():
            if when == "before":
                die()
            if when == "mid":
                partial(real, *args, **kwargs)
                die()
            result = real(*args, **kwargs)
            die()
            return result
        return real(*args, **kwargs)

    setattr(owner, name, wrapper)


def _half_837(real, claims, practice, house, control, fh, **kwargs):
    """Write the first half of the 837P the real writer makes, flushed to disk."""
    buffer = io.StringIO()
    real(claims, practice, house, control, buffer, **kwargs)
    fh.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    fh.flush()
    os.fsync(fh.fileno())


def _half_upload(real, self, local, path):
    data = local.read_bytes()
    with open(path, "wb") as fh:
        fh.write(data[: len(data) // 2])


def _half_download(real, self, path, sink):
    with open(path, "rb") as fh:
        data = fh.read()
    sink.write(data[: len(data) // 2])
    sink._fh.flush()


def _install(step: str, nth: int) -> None:
    from otedi import clearinghouse, cycle, outbound
    from otedi.claims import batch
    from otedi.remit import post
    from otedi.transport import base, local

    countdown = _Countdown(nth)
    if step == "after_build":  # claims built and committed, no file written yet
        _wrap(outbound, "write_ready_claims", countdown, when="before")
    elif step == "mid_write":  # half an 837P on disk under its .part name
        _wrap(batch, "write_837p", countdown, when="mid", partial=_half_837)
    elif step == "after_write":  # the 837P renamed into place, the warehouse not told yet
        proxy = SimpleNamespace(**{k: getattr(os, k) for k in dir(os) if not k.startswith("__")})
        _wrap(proxy, "replace", countdown, when="after")
        batch.os = proxy
    elif step == "before_send":  # files written and recorded ready, nothing sent
        _wrap(cycle, "send_ready_files", countdown, when="before")
    elif step == "mid_upload":  # half the file in the drop under its .part name
        _wrap(local.LocalDrop, "_upload", countdown, when="mid", partial=_half_upload)
    elif step == "after_remote_rename":  # the clearinghouse can take the file; no submission recorded yet
        real_rename = local.LocalDrop._rename

        def rename(self, src, dst):
            real_rename(self, src, dst)
            if src.endswith(".part") and countdown.hit():
                die()

        local.LocalDrop._rename = rename
    elif step == "before_submission_commit":  # delivered, the submission's commit not made
        _wrap(clearinghouse, "_recorded", countdown, when="before")
    elif step == "mid_download":  # half an inbound file in a .fetch-*.tmp
        _wrap(local.LocalDrop, "_download", countdown, when="mid", partial=_half_download)
    elif step == "after_fetch_record":  # the fetched file recorded, the remote copy not moved to processed/
        _wrap(base.Drop, "mark_processed", countdown, when="before")
    elif step == "after_ack_load":  # a 999/277CA loaded, not committed
        _wrap(clearinghouse, "load_ack_file", countdown, when="after")
    elif step == "mid_posting":  # some claims of an 835 posted (flushed), not committed
        _wrap(post._Poster, "_post_claim", countdown, when="before")
    elif step == "after_posting":  # an 835 posted, not committed
        _wrap(clearinghouse, "post_remittance_file", countdown, when="after")
    elif step == "before_secondaries":  # everything posted and committed; the secondary claims not built
        _wrap(cycle, "resubmit", countdown, when="before")
    else:
        raise SystemExit(f"unknown kill point {step!r}; known: {', '.join(STEPS)}")


STEPS = ("after_build", "mid_write", "after_write", "before_send", "mid_upload", "after_remote_rename",
         "before_submission_commit", "mid_download", "after_fetch_record", "after_ack_load", "mid_posting",
         "after_posting", "before_secondaries")


def main(argv: list[str]) -> int:
    point, _, args = argv[0], argv[1], argv[2:]
    step, _, nth = point.partition(":")
    _install(step, int(nth or 1))
    from otedi import cli

    return cli.main(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
