"""Running otedi commands as separate processes on the sample extract, as an operator or a scheduler would."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_edi" / "charges_sample.csv"
TODAY = "2026-11-14"  # the night after the sample's last date of service: what `otedi run` bills by default
RUN = ["run", "--extract", str(SAMPLE), "--today", TODAY]


def otedi_env(home: Path | None = None, url: str | None = None) -> dict[str, str]:
    """This process's environment, with OTEDI_HOME / OTEDI_DATABASE_URL replaced when given."""
    env = dict(os.environ)
    if home is not None:
        env["OTEDI_HOME"] = str(home)
    if url is not None:
        env["OTEDI_DATABASE_URL"] = url
    return env


def command(args: list[str], kill_at: str | None = None) -> list[str]:
    """`otedi ARGS`, or the same killing itself at a step (tests/reliability/killpoint.py)."""
    prefix = ["-m", "tests.reliability.killpoint", kill_at, "--"] if kill_at else ["-m", "otedi.cli"]
    return [sys.executable, *prefix, *args]


def otedi(args: list[str], kill_at: str | None = None, env: dict[str, str] | None = None,
          timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(command(args, kill_at), cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env=env)


def drop_listing(home: Path) -> dict[str, list[str]]:
    """What the clearinghouse side holds: 837Ps delivered, answers taken from the inbox."""
    drop = home / "drop"
    return {folder: sorted(p.name for p in (drop / folder).iterdir())
            for folder in ("outbound", "inbound", "processed") if (drop / folder).is_dir()}


def sqlite_home(home: Path, template: Path) -> str:
    """A new OTEDI_HOME at `home` with a migrated, empty SQLite warehouse in it; returns its URL."""
    home.mkdir(parents=True)
    shutil.copy(template, home / "otedi.db")
    return f"sqlite:///{home / 'otedi.db'}"
