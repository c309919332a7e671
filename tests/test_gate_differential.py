"""otedi's 837P gate (otedi.x12.gate) against pyx12 4.0.0, the gate it replaces (issue 14).

On every 837P fixture, the shared samples (vendored in fixtures/x12, see SOURCES.md), files
otedi's own writer produces from a synthetic extract, and a seeded corpus of mutants of good
files: the same verdict, and for an invalid file the same first error (segment number and id).
On the fixtures the whole error lists must match (segment, id, loop, element, code). Where pyx12
raises instead of judging (IndexError, ValueError, AttributeError on some malformed input), the
gate must find the file invalid. Disagreements once found and fixed are kept in
fixtures/x12/gate_regressions/ (checked by test_regressions).
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

import pyx12.map_if
from otedi import cli
from otedi.errors import ConfigError
from otedi.x12 import gate
from otedi.x12 import validate as pyx12_gate
from tests.x12_mutants import mutants

FIXTURES = Path(__file__).parent / "fixtures" / "x12"
REGRESSIONS = FIXTURES / "gate_regressions"
FIXTURE_FILES = sorted(p for p in FIXTURES.iterdir() if p.suffix in (".837", ".txt"))
RESTAMPED = ("lfh_demo.example1.837", "lfh_demo.cob.example3.B.837", "lfh_demo.cob.example4.837")


@pytest.fixture(scope="module", autouse=True)
def pyx12_parses_each_map_once():
    """pyx12 parses its 1.1 MB map XML for every file (about 0.2 s); the oracle keeps the parsed maps
    (they hold no state of a run: the walker's counts live in its NodeCounter) so thousands of
    mutants fit in a CI run. test_cached_maps_do_not_change_pyx12 checks that."""
    parsed: dict = {}
    load = pyx12.map_if.load_map_file

    def load_once(map_file, param, map_path=None):
        if (map_file, map_path) not in parsed:
            parsed[map_file, map_path] = load(map_file, param, map_path)
        return parsed[map_file, map_path]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pyx12.map_if, "load_map_file", load_once)
        yield


def verdict(validate, path: Path) -> tuple:
    try:
        report = validate(path)
    except Exception as exc:  # pyx12 4.0.0 raises on some malformed input
        return ("raises", type(exc).__name__)
    first = report.errors[0] if report.errors else None
    return (report.ok, first and first.segment_number, first and first.segment_id)


def errors(report) -> list[tuple]:
    return [(p.segment_number, p.segment_id, p.loop_id, p.element, p.code) for p in report.errors]


def restamped(tmp_path: Path, name: str) -> Path:
    """A LinuxForHealth sample (stamped X222A2, which pyx12 does not map) as X222A1."""
    path = tmp_path / f"a1_{name}"
    path.write_text((FIXTURES / name).read_text().replace("005010X222A2", "005010X222A1"))
    return path


@pytest.fixture(scope="module")
def written(tmp_path_factory, sqlite_template) -> list[Path]:
    """837P files otedi writes from synthetic extracts (two practices' worth of seeds), through
    load, build and batch on a fresh SQLite warehouse, with the gate off."""
    import shutil

    from otedi.charges.synth import synth_charges
    from otedi.claims import batch
    from otedi.outbound import run_outbound
    from otedi.warehouse import db
    from otedi.x12.validate import ValidationReport

    work = tmp_path_factory.mktemp("written")
    paths = []
    with pytest.MonkeyPatch.context() as patch:
        for seed in (11, 13):
            folder = work / str(seed)
            folder.mkdir()
            shutil.copy(sqlite_template, folder / "otedi.db")
            url = f"sqlite:///{folder / 'otedi.db'}"
            patch.setenv("OTEDI_DATABASE_URL", url)
            patch.setenv("OTEDI_HOME", str(folder / "home"))
            patch.setattr(batch, "AuditedGate", lambda: lambda path: ValidationReport(path=Path(path), ok=True))
            synth_charges(150, seed, folder / "charges.csv", start=date(2026, 1, 5), days=56)
            result = run_outbound(folder / "charges.csv", folder / "out", today=date(2026, 3, 3))
            paths += [Path(f.path) for f in result.files]
            db.engine(url).dispose()
    assert len(paths) >= 4
    return paths


# --- whole files -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: p.name)
def test_fixture_files_agree_error_for_error(path):
    ours, theirs = gate.validate_file(path), pyx12_gate.validate_file(path)
    assert (ours.ok, ours.segments, ours.bom_stripped) == (theirs.ok, theirs.segments, theirs.bom_stripped)
    assert errors(ours) == errors(theirs)


@pytest.mark.parametrize("name", RESTAMPED)
def test_restamped_samples_agree_error_for_error(tmp_path, name):
    path = restamped(tmp_path, name)
    ours, theirs = gate.validate_file(path), pyx12_gate.validate_file(path)
    assert ours.validator == "otedi" and theirs.validator == "pyx12"
    assert ours.ok == theirs.ok and errors(ours) == errors(theirs)


def test_many_errors_sample_agrees_on_all_9018(tmp_path):
    report = gate.validate_file(FIXTURES / "imsweb_x12_many_claims.txt")
    assert len(report.errors) == 9018 and report.segments == 11490  # compared with pyx12 above


def test_files_otedi_writes_are_valid_for_both(written):
    for path in written:
        ours, theirs = gate.validate_file(path), pyx12_gate.validate_file(path)
        assert ours.ok and theirs.ok, ours.to_text() + theirs.to_text()
        assert ours.segments == theirs.segments == path.read_text().count("~")


# --- mutants ---------------------------------------------------------------------------------------------------

def disagreements(base: str, seed: int, count: int, tmp_path: Path) -> tuple[list, dict]:
    found, tally = [], {"valid": 0, "invalid": 0, "pyx12 raises": 0}
    path = tmp_path / "mutant.837"
    for name, text in mutants(base, seed, count):
        path.write_bytes(text.encode("utf-8"))
        ours, theirs = verdict(gate.validate_file, path), verdict(pyx12_gate.validate_file, path)
        if theirs[0] == "raises":
            tally["pyx12 raises"] += 1
            if ours[0] is not False:
                found.append((name, ours, theirs))
            continue
        tally["valid" if theirs[0] else "invalid"] += 1
        if ours != theirs:
            found.append((name, ours, theirs))
            (tmp_path / f"disagreement-{name}.837").write_bytes(text.encode("utf-8"))
    return found, tally


MUTANT_BASES = [("otedi_837p_mixed.837", 600), ("imsweb_x12_valid.txt", 250), ("imsweb_x12_complex.txt", 150)]


@pytest.mark.parametrize(("name", "count"), MUTANT_BASES, ids=[b[0] for b in MUTANT_BASES])
def test_mutants_of_fixtures_agree(tmp_path, name, count):
    found, tally = disagreements((FIXTURES / name).read_text(), 1400 + count, count, tmp_path)
    assert found == []
    assert tally["valid"] + tally["invalid"] + tally["pyx12 raises"] == count


@pytest.mark.parametrize("name", RESTAMPED)
def test_mutants_of_restamped_samples_agree(tmp_path, name):
    found, tally = disagreements(restamped(tmp_path, name).read_text(), len(name), 300, tmp_path)
    assert found == []
    if name != "lfh_demo.cob.example4.837":  # the one sample pyx12 finds invalid
        assert tally["valid"] >= 20  # the corpus is not all broken files


def test_mutants_of_written_files_agree(tmp_path, written):
    smallest = sorted(written, key=lambda p: p.stat().st_size)[:2]
    for n, path in enumerate(smallest):
        found, tally = disagreements(path.read_text(), 77 + n, 250, tmp_path)
        assert found == [], path.name
        assert tally["valid"] >= 20


def test_regressions():
    # each file here once got a different verdict or first error from the two gates
    for path in sorted(REGRESSIONS.glob("*")) if REGRESSIONS.exists() else []:
        assert verdict(gate.validate_file, path) == verdict(pyx12_gate.validate_file, path), path.name


def test_cached_maps_do_not_change_pyx12(tmp_path):
    path = tmp_path / "mutant.837"
    for _, mutant in mutants((FIXTURES / "otedi_837p_mixed.837").read_text(), 5, 8):
        path.write_text(mutant)
        cached = pyx12_gate.validate_file(path)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(pyx12.map_if, "load_map_file", pyx12.map_if._loader.load_map_file)
            fresh = pyx12_gate.validate_file(path)
        assert (cached.ok, errors(cached)) == (fresh.ok, errors(fresh))


# --- what the gate reports ---------------------------------------------------------------------------------------

def test_messages_never_quote_values(tmp_path):
    long_name = "RIVERA" + "X" * 60
    path = tmp_path / "long.837"
    path.write_text((FIXTURES / "otedi_837p_mixed.837").read_text().replace("NM1*IL*1*RIVERA*ANA", f"NM1*IL*1*{long_name}*ANA", 1))
    report = gate.validate_file(path)
    assert errors(report) == [(16, "NM1", "2010BA", "NM103", "5")]
    assert long_name not in report.to_text()
    assert long_name in report.to_text(with_details=True)
    assert report.to_text().startswith("long.837: INVALID, 1 error(s) (125 segments read by otedi)")


def test_a_composite_pyx12_cannot_read_is_invalid_at_its_segment(tmp_path):
    path = tmp_path / "components.837"
    path.write_text((FIXTURES / "otedi_837p_mixed.837").read_text().replace("SV1*HC:97530:GO*", "SV1*HC:97530:GO:::::::X*", 1))
    with pytest.raises(IndexError):
        pyx12_gate.validate_file(path)
    report = gate.validate_file(path)
    assert not report.ok and (report.errors[-1].segment_number, report.errors[-1].code) == (27, "3")


def test_other_guides_go_to_pyx12():
    report = gate.validate_file(FIXTURES / "pyx12_835_mult_loops.txt")
    assert report.ok and report.validator == "pyx12"


# --- choosing the gate -------------------------------------------------------------------------------------------

def test_the_setting_chooses_the_gate(monkeypatch):
    monkeypatch.delenv(gate.GATE_SETTING, raising=False)
    assert gate.gate_for() is gate.validate_file
    assert gate.validate_configured(FIXTURES / "otedi_837p_mixed.837").validator == "otedi"
    monkeypatch.setenv(gate.GATE_SETTING, "pyx12")
    assert gate.gate_for() is pyx12_gate.validate_file
    assert gate.validate_configured(FIXTURES / "otedi_837p_mixed.837").validator == "pyx12"
    monkeypatch.setenv(gate.GATE_SETTING, "fast")
    with pytest.raises(ConfigError, match="OTEDI_GATE must be one of otedi, pyx12"):  # a task fails at once
        gate.gate_for()


def test_otedi_validate_takes_a_gate(capsys, monkeypatch):
    monkeypatch.delenv(gate.GATE_SETTING, raising=False)
    fixture = str(FIXTURES / "otedi_837p_mixed.837")
    for argv, validator in (([], "otedi"), (["--gate", "pyx12"], "pyx12"), (["--gate", "otedi"], "otedi")):
        capsys.readouterr()
        assert cli.main(["validate", fixture, *argv]) == 0
        assert capsys.readouterr().out == f"otedi_837p_mixed.837: valid (125 segments read by {validator})\n"
    assert cli.main(["validate", fixture, "--gate", "fast"]) == 2


def test_a_batch_run_audits_its_first_file_and_a_sample_with_pyx12_whose_verdict_stands(tmp_path, monkeypatch,
                                                                                         caplog):
    monkeypatch.delenv(gate.GATE_SETTING, raising=False)
    monkeypatch.delenv(gate.AUDIT_SETTING, raising=False)
    good = FIXTURES / "otedi_837p_mixed.837"
    files = []
    for n in range(40):
        path = tmp_path / f"P_DEMOCH_{n:09d}.837"
        shutil.copy(good, path)
        files.append(path)
    audited = gate.AuditedGate()
    assert audited.fraction == 0.05 and all(audited(p).ok for p in files)
    assert audited.audited[0] == files[0] and 1 < len(audited.audited) < 10 and not audited.disagreements
    never = gate.AuditedGate(0)
    assert [never(p).validator for p in files[:3]] == ["otedi"] * 3 and never.audited == []

    # A disagreement (here: otedi's gate made to pass a file pyx12 rejects) gives pyx12's verdict, logged by name.
    broken = tmp_path / "P_DEMOCH_000000099.837"
    text = good.read_text()
    assert "\nSE*" in text
    broken.write_text(text.replace("\nSE*", "\nREF*XX~\nSE*", 1))
    monkeypatch.setattr(gate, "validate_file", lambda path: pyx12_gate.ValidationReport(path=Path(path), ok=True,
                                                                                         validator="otedi"))
    audited = gate.AuditedGate(1.0)
    audited.gate = gate.validate_file
    with caplog.at_level("WARNING", logger="otedi.x12.gate"):
        report = audited(broken)
    assert not report.ok and report.validator == "pyx12" and len(audited.disagreements) == 1
    assert "gate audit P_DEMOCH_000000099.837: otedi's gate says valid, pyx12 says invalid (first error segment" in \
        caplog.text
    monkeypatch.setenv(gate.AUDIT_SETTING, "often")
    with pytest.raises(ConfigError, match="OTEDI_GATE_AUDIT must be a fraction between 0 and 1"):
        gate.AuditedGate()
