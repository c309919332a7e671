"""Packaging (issue 13): packaged data through importlib.resources, the extract contract in the repository,
the Docker build context and the runtime-only pins it installs.

The wheel tests build otedi's wheel the way the Dockerfile's first stage does (from the folders it copies,
filtered by .dockerignore), install it into a scratch virtual environment that borrows .venv's installed
dependencies, and run `otedi run` from a folder outside the repository with no OTEDI_MAPPINGS.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import sysconfig
from importlib import metadata, resources
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from otedi import config
from otedi.charges.record import CANONICAL_COLUMNS, OPTIONAL_COLUMNS
from scripts import runtime_constraints

ROOT = Path(__file__).resolve().parent.parent
DATA_LINKS = ("mappings", "sample_edi", "docs")


# -- the canonical extract contract (docs/charge_extract.md) --------------------------------------------------

def contract_rows(text: str) -> list[tuple[list[str], str]]:
    """The column table under '## Columns': (column names of a row, its meaning)."""
    section = text.split("## Columns", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or cells[0] in ("column", "") or set(cells[0]) <= {"-"}:
            continue
        rows.append(([name.strip() for name in cells[0].split(",")], cells[1]))
    return rows


def test_contract_lists_every_canonical_column_in_order():
    documented = [name for names, _ in contract_rows(config.contract_path().read_text(encoding="utf-8"))
                  for name in names]
    assert documented == list(CANONICAL_COLUMNS)
    assert "qmb" in documented and len(documented) == 48


def test_contract_marks_exactly_the_optional_columns_optional():
    marked = {name for names, meaning in contract_rows(config.contract_path().read_text(encoding="utf-8"))
              if re.search(r"\boptional\b", meaning) for name in names}
    assert marked == set(OPTIONAL_COLUMNS)


def test_contract_documents_the_qmb_flag():
    [(_, meaning)] = [row for row in contract_rows(config.contract_path().read_text(encoding="utf-8"))
                      if row[0] == ["qmb"]]
    assert meaning.startswith("optional; Y or N") and "empty or absent is N" in meaning
    assert "Qualified Medicare Beneficiary" in meaning and "SSA §1902(n)(3)(B)" in meaning


def test_contract_is_vendored_from_shared_and_says_so():
    text = (ROOT / "docs" / "charge_extract.md").read_text(encoding="utf-8")
    assert text.startswith("<!-- Vendored from ../shared/contracts/charge_extract.md")
    shared = ROOT.parent / "shared" / "contracts" / "charge_extract.md"
    if shared.exists():  # ours only adds to it: every column the shared copy names is still documented
        theirs = [n for names, _ in contract_rows(shared.read_text(encoding="utf-8")) for n in names]
        assert set(theirs) <= set(CANONICAL_COLUMNS) and set(CANONICAL_COLUMNS) - set(theirs) == {"qmb"}


# -- packaged data ---------------------------------------------------------------------------------------------

def test_packaged_data_is_read_through_importlib_resources():
    data = resources.files("otedi") / "_data"
    assert config.data_path("mappings") == Path(str(data / "mappings")).resolve()
    # in this checkout the links lead to the repository's own folders
    assert config.mappings_dir() == ROOT / "mappings"
    assert config.sample_extract() == ROOT / "sample_edi" / "charges_sample.csv"
    assert config.contract_path() == ROOT / "docs" / "charge_extract.md"
    assert config.sample_extract().read_text(encoding="utf-8").startswith("charge_id,practice_id,service_date,")


def test_data_folders_are_relative_symlinks_to_the_repository_layout():
    for name in DATA_LINKS:
        link = ROOT / "otedi" / "_data" / name
        assert link.is_symlink() and os.readlink(link) == f"../../{name}"
        assert link.resolve() == ROOT / name


def test_otedi_mappings_overrides_the_packaged_mappings(tmp_path, monkeypatch):
    own = tmp_path / "practice-rules"
    shutil.copytree(ROOT / "mappings", own)
    monkeypatch.setenv("OTEDI_MAPPINGS", str(own))
    assert config.mappings_dir() == own.resolve()
    (own / "practices.yaml").write_text(
        (own / "practices.yaml").read_text(encoding="utf-8").replace("BILLING OFFICE", "OWN BILLING DESK"),
        encoding="utf-8")
    assert config.practice("BRIGHTHANDS").contact_name == "OWN BILLING DESK"
    monkeypatch.delenv("OTEDI_MAPPINGS")
    assert config.practice("BRIGHTHANDS").contact_name == "BILLING OFFICE"


def test_repo_root_is_a_deprecated_name_for_the_data_root():
    with pytest.deprecated_call(match="config.sample_extract"):
        root = config.REPO_ROOT
    assert (root / "sample_edi" / "charges_sample.csv").resolve() == config.sample_extract()
    assert (root / "mappings").resolve() == config.data_path("mappings")


def test_no_module_finds_the_repository_from_its_own_path():
    """Only otedi/config.py reaches mappings/, sample_edi/ and docs/ (data_path); nothing climbs out of the
    package from __file__, which leads nowhere in a wheel."""
    climbing = re.compile(r"__file__[^\n]*(\.parent\.parent|\.parents\[|\.\./)")
    outside = re.compile(r"shared/contracts|\.\./mappings|\.\./sample_edi")
    offenders = []
    for path in sorted([*(ROOT / "otedi").rglob("*.py"), *(ROOT / "dags").glob("*.py")]):
        if path == ROOT / "otedi" / "config.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#")[0]
            if climbing.search(code) or (outside.search(code) and '"""' not in code):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


# -- the Docker build context and what the image installs ------------------------------------------------------

def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _pattern_regex(pattern: str) -> re.Pattern:
    """A .dockerignore pattern (Go filepath.Match plus `**`) as a regex over a relative path."""
    assert not pattern.startswith("!"), "exceptions are not used (and not modelled here)"
    pattern, out, i = pattern.strip("/"), "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i:end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + "$")


def dockerignored(relative: str) -> bool:
    """Docker leaves a path out of the context when it or any folder above it matches a pattern."""
    regexes = [_pattern_regex(p) for p in dockerignore_patterns()]
    parts = relative.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    return any(r.match(prefix) for r in regexes for prefix in prefixes)


@pytest.mark.parametrize("path", [
    ".venv/bin/python", ".venv/edi835/bin/python", ".git/HEAD", "var/demo/otedi.db", "var/demo/archive/ab/cd.835",
    "otedi/__pycache__/config.cpython-311.pyc", "otedi/coding/__pycache__/payers.cpython-311.pyc",
    ".pytest_cache/v/cache/lastfailed", ".hypothesis/examples/1/2", "tests/test_config.py", "benchmarks/run.py",
    "warehouse.db", "otedi.db-journal", "sample_edi/old_extracts.tar.gz", "exports.zip", "otedi.egg-info/PKG-INFO",
    "build/lib/otedi/config.py", "dist/otedi-0.1.0-py3-none-any.whl", "outbound/BRIGHTHANDS_0001.837", ".env",
])
def test_dockerignore_leaves_out(path):
    assert dockerignored(path)


def dockerfile_copies() -> list[tuple[str, str]]:
    """(stage, source) of every COPY from the build context."""
    stage, out = "", []
    for line in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines():
        if line.startswith("FROM "):
            stage = line.split()[-1] if " AS " in line else "final"
        elif line.startswith("COPY ") and "--from=" not in line:
            args = [a for a in line.split()[1:] if not a.startswith("--")]
            out += [(stage, src) for src in args[:-1]]
    return out


def context_files(source: str) -> list[str]:
    """The files (and symlinks) under `source` that the build context holds."""
    path = ROOT / source
    if not path.is_dir() or path.is_symlink():
        return [source]
    found = []
    for p in sorted(path.rglob("*")):
        rel = str(p.relative_to(ROOT))
        if (p.is_file() or p.is_symlink()) and not dockerignored(rel) and not any(
                q.is_symlink() for q in p.relative_to(ROOT).parents if str(q) != "." and (ROOT / q).is_symlink()):
            found.append(rel)
    return found


def test_everything_the_dockerfile_copies_is_in_the_build_context():
    sources = [src for _, src in dockerfile_copies()]
    assert sources == ["pyproject.toml", "otedi", "mappings", "sample_edi", "docs", "constraints-runtime.txt", "dags"]
    for src in sources:
        assert (ROOT / src).exists() and not dockerignored(src), src
    otedi_files = context_files("otedi")
    for name in DATA_LINKS:  # the wheel stage follows these links into the folders copied beside them
        assert f"otedi/_data/{name}" in otedi_files
    assert "mappings/practices.yaml" in context_files("mappings")
    assert "sample_edi/charges_sample.csv" in context_files("sample_edi")
    assert "otedi/config.py" in otedi_files and not any("__pycache__" in f for f in otedi_files)


def test_the_image_installs_runtime_pins_only_on_its_airflow_version():
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    pins = runtime_constraints.lock_pins(ROOT / "constraints-runtime.txt")
    airflow = pins["apache-airflow"].split("==")[1]
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert [line.split()[1] for line in text.splitlines() if line.startswith("FROM ")] == \
        [f"apache/airflow:{airflow}-python{python}"] * 2
    assert f"apache-airflow=={airflow}" in {str(r) for r in runtime_constraints.project_requirements()}
    joined = text.replace("\\\n", " ")
    [install] = [line for line in joined.splitlines() if line.startswith("RUN pip install")]
    assert f'"apache-airflow=={airflow}"' in install
    assert "-c /tmp/otedi/constraints-runtime.txt" in install and "[airflow]" in install
    assert "constraints.txt" not in install.replace("constraints-runtime.txt", "") and "dev" not in install
    assert "OTEDI_MAPPINGS=" not in text  # the mappings ship in the wheel


# -- constraints-runtime.txt ----------------------------------------------------------------------------------

def test_runtime_constraints_are_up_to_date():
    assert (ROOT / "constraints-runtime.txt").read_text(encoding="utf-8") == runtime_constraints.render(), \
        "run `make constraints-runtime.txt`"


def test_runtime_constraints_hold_no_dev_or_test_tool():
    pins = runtime_constraints.lock_pins(ROOT / "constraints-runtime.txt")
    runtime = set(runtime_constraints.closure(runtime_constraints.project_requirements()))
    dev = set(runtime_constraints.closure(runtime_constraints.project_requirements(("dev",)))) - runtime
    assert {"pytest", "hypothesis", "x12sdk", "iniconfig"} <= dev
    assert dev.isdisjoint(pins)
    # what both need stays: the SFTP provider needs asyncssh, a dev dependency too
    assert "asyncssh" in pins and "asyncssh" not in dev


def test_runtime_constraints_pin_every_runtime_requirement_and_satisfy_each():
    pins = runtime_constraints.lock_pins(ROOT / "constraints-runtime.txt")
    version = {name: line.split("==")[1] for name, line in pins.items()}
    needed = runtime_constraints.closure(runtime_constraints.project_requirements())
    assert set(needed) - {"otedi"} == set(pins)
    requirements = [("otedi", r) for r in runtime_constraints.project_requirements()]
    requirements += [(name, Requirement(line)) for name, dist in needed.items() for line in dist.requires or ()]
    unmet = [f"{by} needs {req}, pinned {version[canonicalize_name(req.name)]}"
             for by, req in requirements
             if canonicalize_name(req.name) in version and (req.marker is None or req.marker.evaluate({"extra": ""}))
             and not req.specifier.contains(version[canonicalize_name(req.name)], prereleases=True)]
    assert unmet == []
    assert version["pydantic"] == metadata.version("pydantic")


def third_party_imports() -> dict[str, str]:
    """{top-level module: the first file importing it} for otedi/ and dags/ (not the standard library)."""
    import ast

    found: dict[str, str] = {}
    for path in sorted([*(ROOT / "otedi").rglob("*.py"), *(ROOT / "dags").glob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for top in (n.split(".")[0] for n in names):
                if top not in sys.stdlib_module_names and top not in ("otedi", "__future__"):
                    found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def test_every_third_party_import_is_a_declared_runtime_dependency():
    """What otedi imports is in pyproject.toml's dependencies (so in constraints-runtime.txt and the image),
    not only installed in .venv by hand or pulled in by something else. DAG files may also use what Airflow
    brings (pendulum); a namespace shared by several distributions (airflow) needs one of them."""
    requirements = runtime_constraints.project_requirements()
    declared = {canonicalize_name(r.name) for r in requirements}
    with_airflow = set(runtime_constraints.closure(requirements))
    providers = metadata.packages_distributions()
    undeclared = []
    for module, path in third_party_imports().items():
        dists = {canonicalize_name(d) for d in providers.get(module, ())}
        allowed = with_airflow if path.startswith("dags/") or len(dists) > 1 else declared
        if not dists & allowed:
            undeclared.append(f"{path} imports {module} ({', '.join(sorted(dists)) or 'not installed'})")
    assert undeclared == [], "add to pyproject.toml dependencies, then `make lock`: " + "; ".join(undeclared)


# -- a wheel, installed outside the repository ------------------------------------------------------------------

def _clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("OTEDI_MAPPINGS", "OTEDI_HOME", "OTEDI_DATABASE_URL", "PYTHONPATH", "VIRTUAL_ENV")}
    return {**env, **extra}


def _run(*args, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(args, capture_output=True, text=True, timeout=600, **kwargs)
    assert result.returncode == 0, f"{args}: {result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """otedi's wheel built as the Dockerfile's first stage builds it: from the folders it copies."""
    context = tmp_path_factory.mktemp("docker-context")
    for stage, src in dockerfile_copies():
        if stage != "wheel":
            continue
        for rel in context_files(src):
            dest = context / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            if (ROOT / rel).is_symlink():
                os.symlink(os.readlink(ROOT / rel), dest)
            else:
                shutil.copy2(ROOT / rel, dest)
    out = tmp_path_factory.mktemp("dist")
    _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out), str(context))
    [built] = out.glob("otedi-*.whl")
    return built


def _purelib(python: Path) -> Path:
    return Path(_run(str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())


def _scratch_venv(where: Path) -> Path:
    """A virtual environment whose own site-packages come first and that borrows .venv's installed packages
    (a path line in a .pth file: the .pth files there, such as the editable otedi's, are not run)."""
    _run(sys.executable, "-m", "venv", "--without-pip", str(where))
    python = where / "bin" / "python"
    (_purelib(python) / "borrowed-otedi-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n",
                                                              encoding="utf-8")
    return python


@pytest.mark.slow
def test_the_wheel_carries_mappings_the_sample_and_the_contract(wheel):
    import zipfile

    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {n.removeprefix("otedi/_data/") for n in names if n.startswith("otedi/_data/")}
    expected = {str(p.relative_to(ROOT)) for p in (ROOT / "mappings").rglob("*") if p.is_file()}
    expected |= {"sample_edi/charges_sample.csv", "sample_edi/webpt_style_sample.csv", "sample_edi/README.md",
                 "docs/charge_extract.md"}
    assert shipped == expected
    assert "otedi/warehouse/migrations/versions/0001_outbound_claims.py" in names
    assert not any(n.startswith(("tests/", "mappings/", "sample_edi/", "dags/", "scripts/")) or "__pycache__" in n
                   for n in names)


@pytest.mark.slow
def test_a_wheel_install_runs_the_first_night_outside_the_repository(wheel, tmp_path):
    python = _scratch_venv(tmp_path / "venv")
    _run(sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps", "--no-index",
         str(wheel))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = _clean_env(OTEDI_HOME=str(tmp_path / "home"))
    site = _purelib(python)
    probe = _run(str(python), "-c", "import json, otedi, otedi.config as c; print(json.dumps([otedi.__file__, "
                 "str(c.mappings_dir()), str(c.sample_extract()), str(c.contract_path()), sorted(c.practices())]))",
                 cwd=elsewhere, env=env)
    package, mappings, sample, contract, practices = json.loads(probe.stdout)
    assert Path(package) == site / "otedi" / "__init__.py"
    assert Path(mappings) == site / "otedi" / "_data" / "mappings"
    assert Path(sample) == site / "otedi" / "_data" / "sample_edi" / "charges_sample.csv"
    assert Path(contract) == site / "otedi" / "_data" / "docs" / "charge_extract.md"
    assert practices == ["BRIGHTHANDS", "HANDWORKS", "KIDSTHRIVE"]

    run = subprocess.run([str(python.parent / "otedi"), "run"], cwd=elsewhere, env=env, capture_output=True,
                         text=True, timeout=600)
    assert "Traceback" not in run.stderr and "ConfigError" not in run.stderr, run.stderr[-3000:]
    with sqlite3.connect(tmp_path / "home" / "otedi.db") as db:  # the first night of `make demo`
        assert db.execute("select count(*) from charge").fetchone() == (1188,)  # 1,200 rows, 12 rejected
        assert db.execute("select count(*) from claim_file where status = 'sent'").fetchone() == (3,)
        assert db.execute("select count(*) from ledger_entry").fetchone()[0] > 0
    assert list(elsewhere.iterdir()) == []  # nothing was written to the current folder


@pytest.mark.slow
def test_an_editable_install_reads_the_checkout_through_the_links(tmp_path):
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for src in ("pyproject.toml", "otedi", "mappings", "sample_edi", "docs"):
        if (ROOT / src).is_dir():
            shutil.copytree(ROOT / src, checkout / src, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(ROOT / src, checkout / src)
    python = _scratch_venv(tmp_path / "venv")
    _run(sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps", "-e", str(checkout))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    probe = _run(str(python), "-c", "import json, otedi.config as c; print(json.dumps([str(c.mappings_dir()), "
                 "str(c.sample_extract()), str(c.contract_path())]))", cwd=elsewhere, env=_clean_env())
    assert json.loads(probe.stdout) == [str(checkout / "mappings"), str(checkout / "sample_edi" / "charges_sample.csv"),
                                        str(checkout / "docs" / "charge_extract.md")]


_NETWORK_TROUBLE = ("Failed to establish a new connection", "Temporary failure in name resolution",
                    "Network is unreachable", "timed out", "ConnectionError", "Max retries exceeded")


@pytest.mark.slow
def test_pip_resolves_the_image_install_to_exactly_the_runtime_pins(wheel, tmp_path):
    """The Dockerfile's install, resolved by pip itself (--dry-run, nothing installed): every package it
    would install is pinned in constraints-runtime.txt at that version, and every pin is used."""
    report = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet", "--report",
         str(report), "-c", str(ROOT / "constraints-runtime.txt"), "apache-airflow==3.3.2", f"{wheel}[airflow]"],
        capture_output=True, text=True, timeout=600, env=_clean_env())
    if result.returncode != 0 and any(t in result.stderr for t in _NETWORK_TROUBLE):
        pytest.skip(f"no package index reachable: {result.stderr.strip().splitlines()[-1]}")
    assert result.returncode == 0, result.stderr[-3000:]
    resolved = {canonicalize_name(i["metadata"]["name"]): i["metadata"]["version"]
                for i in json.loads(report.read_text(encoding="utf-8"))["install"]}
    assert resolved.pop("otedi") == "0.1.0"
    pins = {name: line.split("==")[1]
            for name, line in runtime_constraints.lock_pins(ROOT / "constraints-runtime.txt").items()}
    assert resolved == pins
