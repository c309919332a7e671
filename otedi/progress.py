"""How the long library steps report their progress, for whoever shows it.

A step that works through a known number of things (extract rows, patients to code, claims into 837P files,
fetched files to load or post, finance tables to write) calls `progress(step, done, total)`: once with done=0
when it starts, then as it goes, and with done=total when it ends. The CLI turns the calls into Rich bars
with counts and ETA (cli_common.tracking); the nightly tasks and the tests pass nothing (`silent`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

Progress = Callable[[str, int, int], None]
T = TypeVar("T")

REPORTS_PER_STEP = 200  # a 100,000-row load reports every 500 rows, not on every row


def silent(step: str, done: int, total: int) -> None:
    """No one watching."""


def counted(items: Iterable[T], step: str, total: int, progress: Progress) -> Iterator[T]:
    """Yield `items` (`total` of them), reporting `step` at the start, every total/REPORTS_PER_STEP items and at
    the end (when the loop runs to its end)."""
    stride = max(1, total // REPORTS_PER_STEP)
    progress(step, 0, total)
    done = 0
    for item in items:
        yield item
        done += 1
        if done % stride == 0 or done == total:
            progress(step, done, total)
