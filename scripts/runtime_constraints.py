"""Write constraints-runtime.txt: the pins of constraints.txt that otedi's runtime install needs.

The Docker image installs `pip install -c constraints-runtime.txt ".[airflow]"`: the locked versions of what
pyproject.toml's dependencies and its `airflow` extra pull in, and nothing of the `dev` extra (pytest,
hypothesis, x12sdk and what only they need). The set is the dependency closure of those requirements, read
from the metadata of the packages installed in this environment (`.venv`, installed from constraints.txt),
with each package's markers evaluated for this interpreter and the extras asked for.

    .venv/bin/python scripts/runtime_constraints.py > constraints-runtime.txt   # what `make constraints-runtime.txt` runs
    .venv/bin/python scripts/runtime_constraints.py --check                     # exit 1 when the file is stale
"""

from __future__ import annotations

import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "constraints.txt"
OUT = ROOT / "constraints-runtime.txt"
RUNTIME_EXTRAS = ("airflow",)
HEADER = """\
# Runtime pins of otedi (Python 3.11): the Docker image installs `pip install -c constraints-runtime.txt ".[airflow]"`.
# The pins of constraints.txt (the full lock, with the dev tools) that pyproject.toml's dependencies and its
# airflow extra need, and nothing else: no pytest, hypothesis or x12sdk. Generated, do not edit:
# `make constraints-runtime.txt` (scripts/runtime_constraints.py) after `make lock`; tests/test_packaging.py checks it.
"""


def project_requirements(extras: tuple[str, ...] = RUNTIME_EXTRAS) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    lines = list(project["dependencies"])
    for extra in extras:
        lines += project["optional-dependencies"][extra]
    return [Requirement(line) for line in lines]


def _applies(req: Requirement, extras: frozenset[str]) -> bool:
    if req.marker is None:
        return True
    return any(req.marker.evaluate({"extra": extra}) for extra in extras | {""})


def closure(requirements: list[Requirement]) -> dict[str, metadata.Distribution]:
    """Every installed distribution the requirements need, by canonical name (markers for this interpreter)."""
    found: dict[str, metadata.Distribution] = {}
    asked: dict[str, set[str]] = {}
    queue = [(req, frozenset()) for req in requirements if _applies(req, frozenset())]
    while queue:
        req, _ = queue.pop()
        name = canonicalize_name(req.name)
        new_extras = set(req.extras) - asked.get(name, set())
        if name in found and not new_extras:
            continue
        asked.setdefault(name, set()).update(req.extras)
        try:
            dist = found.get(name) or metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            raise SystemExit(f"{req.name} is needed by otedi's runtime install but not installed here: "
                             "run this with the .venv that `make` installs from constraints.txt") from None
        found[name] = dist
        extras = frozenset(asked[name])
        for line in dist.requires or ():
            sub = Requirement(line)
            if _applies(sub, extras):
                queue.append((sub, extras))
    return found


def lock_pins(path: Path = LOCK) -> dict[str, str]:
    """constraints.txt as {canonical name: 'Name==version' line}."""
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            pins[canonicalize_name(line.split("==", 1)[0])] = line
    return pins


def render() -> str:
    pins = lock_pins()
    needed = closure(project_requirements())
    needed.pop("otedi", None)
    lines = []
    for name, dist in needed.items():
        if name not in pins:
            raise SystemExit(f"{dist.metadata['Name']} is needed at run time but not pinned in constraints.txt: "
                             "run `make lock`")
        if pins[name].split("==", 1)[1] != dist.version:
            raise SystemExit(f"{pins[name]} in constraints.txt, {dist.version} installed: reinstall .venv (make)")
    for name, line in pins.items():  # in constraints.txt's order
        if name in needed:
            lines.append(line)
    return HEADER + "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if argv[1:] == ["--check"]:
        if OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT.name} is stale: run `make constraints-runtime.txt`", file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
