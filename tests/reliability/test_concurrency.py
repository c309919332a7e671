"""Two runs at once on one warehouse and drop, several rounds, on SQLite and PostgreSQL (issue 11).

- Two whole `otedi run` cycles: the second starts 0, 1 and 2.5 seconds after the first, so the two collide
  in loading, building and writing, in sending, and in fetching and posting.
- Two ingests of the same clearinghouse answers: two `otedi drop fetch --ingest`, and two processes loading
  the acknowledgments and posting the 835s by hand (`otedi acks load` then `otedi remit post`).

Both processes of a round must exit 0 (a loser retries and finds the work done); the warehouse must hold
every invariant and equal one clean cycle. Each round starts from an empty warehouse and drop.
"""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import _truncate_all
from tests.phi import leaks, phi_values
from tests.reliability.invariants import violations, warehouse_snapshot
from tests.reliability.runs import ROOT, RUN, SAMPLE, TODAY, command, drop_listing, otedi, otedi_env, sqlite_home

pytestmark = [pytest.mark.reliability, pytest.mark.slow]

OFFSETS = (0.0, 1.0, 2.5)  # seconds between the two starts, one round each
SAMPLE_PHI = phi_values(SAMPLE)


def fresh(warehouse: str, sqlite_template: Path, home: Path) -> str:
    """An empty warehouse for one round: a new SQLite file, or the PostgreSQL database emptied."""
    if warehouse.startswith("sqlite"):
        return sqlite_home(home, sqlite_template)
    home.mkdir(parents=True)
    _truncate_all(warehouse)
    return warehouse


def at_once(first: list[list[str]], second: list[list[str]], env: dict, offset: float,
            done: tuple[int, ...] = (0,)) -> list[str]:
    """Run two sequences of commands side by side, the second starting `offset` seconds later; return the
    stderr of any that failed (an exit code not in `done`), and where an output carried PHI."""
    def start(cmds):
        script = " && ".join(subprocess.list2cmdline(c) for c in cmds)
        return subprocess.Popen(["bash", "-c", script], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    a = start(first)
    time.sleep(offset)
    b = start(second)
    failed = []
    for proc in (a, b):
        out, err = proc.communicate(timeout=600)
        if proc.returncode not in done:
            failed.append(f"exit {proc.returncode}: {err[-1500:]}")
        failed += [f"PHI in the output: {where}" for where in leaks({"stdout": out, "stderr": err}, SAMPLE_PHI)]
    return failed


@pytest.mark.parametrize("offset", OFFSETS)
def test_two_whole_cycles_at_once_end_as_one(warehouse, tmp_path, sqlite_template, clean, offset):
    home = tmp_path / "round"
    url = fresh(warehouse, sqlite_template, home)
    env = otedi_env(home, url)
    # the run that loads the sample rejects its bad rows (exit 3); the other finds it loaded (exit 0)
    assert at_once([command(RUN)], [command(RUN)], env, offset, done=(0, 3)) == []
    assert violations(url, home) == []
    snapshot = warehouse_snapshot(url)
    assert {k: v for k, v in snapshot.items() if v != clean["snapshot"][k]} == {}
    # What we delivered is the same; the answers can be numbered otherwise when the clearinghouse got our
    # files at two moments (it pays what it has when it runs).
    drop, reference = drop_listing(home), clean["drop"]
    assert drop["outbound"] == reference["outbound"] and drop["inbound"] == reference["inbound"] == []
    assert kinds(drop["processed"]) == kinds(reference["processed"])


def kinds(names: list[str]) -> dict[str, int]:
    return dict(Counter(Path(name).suffix for name in names))


def answered(home: Path, url: str) -> tuple[dict, str]:
    """Claims sent without the built-in answer, then the simulator answers them into the drop's inbox."""
    env = otedi_env(home, url)
    drop = f"file://{home / 'drop'}"
    # the run rejects the sample's bad rows (exit 3); the simulator exits 0
    for args, code in ((RUN + ["--no-simulator"], 3), (["simulate", "--drop", drop, "--seed", "7", "--today", TODAY], 0)):
        done = otedi(args, env=env)
        assert done.returncode == code, done.stderr[-1500:]
    return env, drop


@pytest.fixture(scope="module")
def one_ingest(tmp_path_factory, sqlite_template) -> dict:
    """The reference for the ingest rounds: the same answers fetched and ingested once."""
    home = tmp_path_factory.mktemp("one-ingest") / "home"
    url = sqlite_home(home, sqlite_template)
    env, drop = answered(home, url)
    done = otedi(["drop", "fetch", "--from", drop, "--ingest"], env=env)
    assert done.returncode == 0, done.stderr[-1500:]
    assert violations(url, home) == []
    return warehouse_snapshot(url)


@pytest.mark.parametrize("how", ["fetch --ingest", "acks load + remit post"])
def test_two_ingests_at_once_post_each_835_once(warehouse, tmp_path, sqlite_template, one_ingest, how):
    for round_, offset in enumerate(OFFSETS[:2]):
        home = tmp_path / f"round{round_}"
        url = fresh(warehouse, sqlite_template, home)
        env, drop = answered(home, url)
        fetch = command(["drop", "fetch", "--from", drop] + (["--ingest"] if how == "fetch --ingest" else []))
        if how == "fetch --ingest":
            twins = [[fetch], [fetch]]
        else:
            done = otedi(["drop", "fetch", "--from", drop], env=env)
            assert done.returncode == 0, done.stderr[-1500:]
            archive = home / "archive"
            acks = sorted(str(p) for p in [*archive.glob("*.999"), *archive.glob("*.277")])
            remits = sorted(str(p) for p in archive.glob("*.835"))
            assert acks and remits
            load = [command(["acks", "load", *acks]), command(["remit", "post", *remits])]
            twins = [load, load]
        assert at_once(*twins, env, offset) == []
        assert violations(url, home) == []
        snapshot = warehouse_snapshot(url)
        assert {k: v for k, v in snapshot.items() if v != one_ingest[k]} == {}, (how, round_)
