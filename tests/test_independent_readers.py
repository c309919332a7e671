"""Independent X12 implementations read what otedi writes, and read what otedi reads, the same way.

Two outside implementations, neither sharing code with otedi:

- x12sdk 2.2.0 (PyPI; pydantic models of the 835 005010X221A1 and 837P 005010X222A2, the maintained fork of
  LinuxForHealth x12), in the main environment. It parses 835, 837P, 837I, 834, 270/271 and 276/277, and writes
  all of them from its models (`write_transactions`) or from a seed (`generate_835`, ...). It has no 999 and
  no 277CA (005010X214) model: both raise KeyError "not supported".
- edi-835-parser 1.8.0 (PyPI; reads 835s only, writes nothing). It requires pandas<3 and the lock has
  pandas 3, so it lives in its own small locked environment, `.venv/edi835` (`make test` builds it from
  constraints-edi835.txt; OTEDI_EDI835_PYTHON names another interpreter), and is called in a subprocess.
  Without that environment its tests are skipped with the reason printed, unless OTEDI_REQUIRE_EDI835=1 (set
  in CI), where they fail.

What is compared, per 835 transaction: payer, payee NPI, trace number (TRN02), BPR02; per claim CLP01, CLP02,
CLP03, CLP04, CLP07 (and the NM1*TT carrier of a crossover) and claim-level CAS; per service line the
procedure, modifiers, charge, paid, units, REF*6R and every CAS group/reason/amount. Per 837P claim: CLM01,
CLM02, each SV1 procedure/modifiers/charge/units and REF*6R, the subscriber's member id, the payer id and the
2310B rendering NPI, against the claims in the warehouse.

Where a library disagrees with otedi, the test says who is right and why (the TR3 usage as pyx12's
005010X221A1 map encodes it, tests/fixtures/inbound/SOURCES.md, ../shared/reference/x12_notes.md), asserts
what the library gets right, and pins its defect so a change of version is noticed:

x12sdk 2.2.0
  * NM103 is required in every NM1 (v5010.segments.Nm1Segment, min_length 1). The 835 TR3 makes NM103
    situational in loop 2100 NM1*82 (service provider), NM1*74 (corrected insured), NM1*QC, NM1*IL (pyx12's
    X221A1 map: usage S), so x12sdk refuses every 835 the simulator writes (NM1*82 with the NPI only, which
    pyx12 accepts) and the real UnitedHealthcare sample (NM1*74*1***C). It reads them once NM103 is filled
    in a copy (`x12sdk_readable`), and then agrees with otedi on every figure.
  * The 835 footer holds one PLB (loops.Footer.plb_segment is not a list); the TR3 repeats PLB (pyx12's
    X221A1 map: max use >1), so a file with two PLB segments is refused.
  * Loop 2000 is required; an 835 carrying only a PLB (no claims; TR3 loop 2000 is situational) is refused.
  * It accepts what the TR3 forbids, which otedi refuses: an 835 without BPR16 (the date one element too
    early, in BPR15), a BPR16 that is no date (20002316), and `SVC*HC*24599.00*...` (SVC01 with no procedure
    code: x12sdk then reads the code as the charge, 24599.00, and every amount after it one place off).
  * `generate_835` writes no BPR16 and no 1000A PER*BL (both required: pyx12 reports both), so what it
    generates cannot be posted; built from its models with those segments, its 835 posts to the cent.
edi-835-parser 1.8.0
  * CLP02 25 (predetermination) crashes it: its status registry lacks 25 and the fallback
    `Status('code', 'uncategorized', PayerClassification.UNKNOWN)` misses an argument (TypeError).
  * A CAS is read as its first reason/amount only (segments/service_adjustment.py), so CAS*CO*45*49.62**253*0.2
    loses CO-253; claim-level CAS is dropped ("CAS not handled in claim loop").
  * Only the first modifier (elements/service_modifier.py); no TRN (the trace number is not read at all);
    money as float; a payer N104 that is not all digits (N1*PR*...*XV*OHSHP, a CMS plan id) raises
    ValueError (int(N104)); one transaction set per file; SVC05 absent with nothing paid is read as 0 units
    (an absent SVC05 is one unit: the TR3's SVC05 note, and otedi's reading).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload
from x12sdk.generate import ClaimSpec, ServiceLineSpec, denial, generate_835
from x12sdk.io import X12ModelReader, X12SegmentReader, write_transactions
from x12sdk.support import count_segments
from x12sdk.v5010.x12_835_005010X221A1.transaction_set import HealthCareClaimPayment

from otedi import config
from otedi.charges.synth import synth_charges
from otedi.outbound import run_outbound
from otedi.remit.post import post_remittance_file
from otedi.simulator import simulate
from otedi.warehouse import db, models
from otedi.warehouse.db import session_scope
from otedi.x12 import x835
from otedi.x12.validate import validate_file
from tests.factories import charge, write_charges_csv
from tests.test_x837p import _mixed_batch

ROOT = Path(__file__).resolve().parents[1]
INBOUND = ROOT / "tests" / "fixtures" / "inbound"
EDI835_PYTHON = Path(os.environ.get("OTEDI_EDI835_PYTHON", ROOT / ".venv" / "edi835" / "bin" / "python"))
TODAY = date(2026, 10, 1)  # the night after the synthetic extract's last week
FOLLOW_UP = TODAY + timedelta(days=35)  # the second night (`make demo`): Medicaid's crossover 835s, adjudications


# --- otedi's reading (the reference every other reading is compared with) ---------------------------------

def otedi_835(path: Path, *, tolerant: bool = False) -> list[dict]:
    """Each transaction set as otedi.x12.x835 reads it: the compared fields only (no names, no member ids)."""
    out: list[dict] = []
    for item in x835.iter_835(path, tolerant=tolerant):
        if isinstance(item, x835.RemittanceHeader):
            out.append({"payer": item.payer.name, "payer_id": item.payer_id, "payee_npi": item.payee_npi,
                        "payee_id": item.payee.id, "trace": item.trace_number, "bpr02": item.amount, "claims": []})
        elif isinstance(item, x835.ClaimPayment):
            out[-1]["claims"].append({
                "clp01": item.patient_control_number, "clp02": item.status, "clp03": item.charge,
                "clp04": item.paid, "clp07": item.payer_claim_control_number,
                "crossover": item.crossover_carrier.id if item.crossover_carrier else None,
                "cas": [(a.group, a.reason, a.amount) for a in item.adjustments],
                "lines": [{"qualifier": s.qualifier, "procedure": s.procedure, "modifiers": s.modifiers,
                           "charge": s.charge, "paid": s.paid, "units": s.units, "ref6r": s.line_control_number,
                           "cas": [(a.group, a.reason, a.amount) for a in s.adjustments]} for s in item.services]})
    return out


# --- x12sdk ------------------------------------------------------------------------------------------------

def x12sdk_readable(path: Path) -> tuple[str, list[str]]:
    """The file's text with every empty NM103 filled with "X" (x12sdk's NM1 requires it, the TR3 does not),
    and the NM101 of each NM1 so filled. Nothing else changes, and no test compares NM103."""
    text = path.read_text(encoding="ascii")
    element, terminator = text[3], text[105]
    segments, filled = [], []
    for seg in text.split(terminator):
        fields = seg.split(element)
        if fields[0].strip() == "NM1" and len(fields) > 3 and fields[3] == "":
            fields[3] = "X"
            filled.append(fields[1])
        segments.append(element.join(fields))
    return terminator.join(segments), filled


def x12sdk_models(source: str) -> list:
    """Every transaction set model x12sdk reads from a file path or X12 text (raises what it raises)."""
    with X12ModelReader(source) as reader:
        return list(reader.models())


def component_separator(source: str) -> str:
    with X12SegmentReader(source) as reader:  # x12sdk's own reading of ISA16
        return reader.delimiters.component_separator


def _code(value) -> str:
    return getattr(value, "value", value)


def _triplets(segments) -> list[tuple[str, str, Decimal]]:
    """CAS segments as (group, reason, amount), in order: x12sdk keeps six reason/amount fields per CAS."""
    out = []
    for cas in segments or []:
        for n in range(1, 7):
            reason = getattr(cas, f"adjustment_reason_code_{n}")
            if reason:
                out.append((_code(cas.adjustment_group_code), reason, getattr(cas, f"monetary_amount_{n}")))
    return out


def _composite(value: str, separator: str) -> tuple[str, str, tuple[str, ...]]:
    """x12sdk keeps a composite as its text: split it at ISA16, as the X12 syntax says."""
    parts = value.split(separator)
    return parts[0], parts[1] if len(parts) > 1 else "", tuple(m for m in parts[2:6] if m)


def _ref(segments, qualifier: str) -> str | None:
    return next((r.reference_identification for r in segments or []
                 if r.reference_identification_qualifier == qualifier), None)


def x12sdk_835(source: str) -> list[dict]:
    """Each transaction set as x12sdk reads it, in otedi_835's shape."""
    separator = component_separator(source)
    out = []
    for model in x12sdk_models(source):
        payer, payee = model.loop_1000a.n1_segment, model.loop_1000b.n1_segment
        claims = []
        for paid in model.claims():
            clp = paid.claim.clp_segment
            carrier = next((n.identification_code for n in paid.claim.nm1_segment
                            if n.entity_identifier_code == "TT"), None)
            lines = []
            for loop in paid.service_lines:
                svc = loop.svc_segment
                qualifier, procedure, modifiers = _composite(svc.composite_medical_procedure_identifier_1, separator)
                lines.append({"qualifier": qualifier, "procedure": procedure, "modifiers": modifiers,
                              "charge": svc.line_item_charge_amount, "paid": svc.line_item_provider_payment_amount,
                              "units": svc.units_of_service_paid_count, "ref6r": _ref(loop.ref_segment, "6R"),
                              "cas": _triplets(loop.cas_segment)})
            claims.append({"clp01": clp.patient_control_number, "clp02": _code(clp.claim_status_code),
                           "clp03": clp.total_claim_charge_amount, "clp04": clp.claim_payment_amount,
                           "clp07": clp.payer_claim_control_number or "", "crossover": carrier,
                           "cas": _triplets(paid.adjustments), "lines": lines})
        out.append({"payer": payer.name,
                    "payer_id": payer.identification_code or _ref(model.loop_1000a.ref_segment, "2U") or "",
                    "payee_npi": payee.identification_code if _code(payee.identification_code_qualifier) == "XX"
                    else None,
                    "payee_id": payee.identification_code or "",
                    "trace": model.header.trn_segment.reference_identification_1,
                    "bpr02": model.header.bpr_segment.total_actual_provider_payment_amount, "claims": claims})
    return out


def refused_elements(path: Path) -> list[tuple[str, str]]:
    """What x12sdk refuses in a file as it stands: (NM101 of the NM1 at fault, field) for every validation
    error, located in the model of the readable copy. Fails the test on any error not in an NM1."""
    try:
        x12sdk_models(str(path))
    except ValidationError as exc:
        errors = exc.errors()
    else:
        return []
    (model,) = x12sdk_models(x12sdk_readable(path)[0])
    found = []
    for error in errors:
        *where, field = error["loc"]
        node = model
        for step in where:
            node = node[step] if isinstance(step, int) else getattr(node, step)
        assert type(node).__name__.endswith("Nm1Segment"), (error["loc"], error["msg"])  # never its input (PHI)
        found.append((node.entity_identifier_code, field))
    return found


# --- edi-835-parser (its own environment) ---------------------------------------------------------------------

EDI835_SCRIPT = r"""
import json, sys, traceback, warnings
from edi_835_parser import parse

def money(value):
    return None if value is None else repr(value)

out = {}
for path in sys.argv[1:]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            sets = parse(path).transaction_sets
            result = {"transactions": []}
            for ts in sets:
                payee = ts.payee.organization
                result["transactions"].append({
                    "payer": ts.payer.organization.name, "payee_id": payee.identification_code,
                    "bpr02": money(ts.financial_information.amount_paid),
                    "claims": [{
                        "clp01": c.claim.marker, "clp02": c.claim.status.code, "clp03": money(c.claim.charge_amount),
                        "clp04": money(c.claim.paid_amount), "clp07": c.claim.icn,
                        "lines": [{
                            "qualifier": s.service.qualifier, "procedure": s.service.code,
                            "modifier": s.service.modifier, "charge": money(s.service.charge_amount),
                            "paid": money(s.service.paid_amount), "units": s.service.allowed_units,
                            "ref6r": next((r.value for r in s.references if r.qualifier.code == "6R"), None),
                            "cas": [[a.group_code.code, a.reason_code.code, money(a.amount)] for a in s.adjustments],
                        } for s in c.services],
                    } for c in ts.claims],
                })
        except Exception as exc:
            result = {"error": f"{type(exc).__name__}: {exc}", "at": traceback.format_exc().splitlines()[-2].strip()}
        result["warnings"] = sorted({str(w.message) for w in caught})
    out[path] = result
json.dump(out, sys.stdout)
"""


def _edi835_unavailable() -> str | None:
    if not EDI835_PYTHON.exists():
        return f"{EDI835_PYTHON} not found (make test builds it from constraints-edi835.txt)"
    probe = subprocess.run([str(EDI835_PYTHON), "-c", "import edi_835_parser, importlib.metadata as m; "
                            "print(m.version('edi-835-parser'))"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"edi-835-parser does not import in {EDI835_PYTHON}: {probe.stderr.strip()[-300:]}"
    if probe.stdout.strip() != "1.8.0":
        return f"{EDI835_PYTHON} has edi-835-parser {probe.stdout.strip()}, these tests pin 1.8.0"
    return None


@pytest.fixture(scope="module")
def edi835():
    """Read 835 files with edi-835-parser in its environment: {path: {"transactions": [...]} or {"error"}}."""
    reason = _edi835_unavailable()
    if reason:
        if os.environ.get("OTEDI_REQUIRE_EDI835") == "1":
            pytest.fail(f"OTEDI_REQUIRE_EDI835=1 but {reason}")
        print(f"\nSKIP edi-835-parser tests: {reason}")
        pytest.skip(reason)

    def read(paths) -> dict[Path, dict]:
        paths = [Path(p) for p in paths]
        done = subprocess.run([str(EDI835_PYTHON), "-c", EDI835_SCRIPT, *map(str, paths)],
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            pytest.fail(f"the edi-835-parser reader exited {done.returncode}: {done.stderr.strip()[-500:]}")
        return {Path(k): v for k, v in json.loads(done.stdout).items()}

    return read


def _money(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)  # the float's repr: the amount's digits, exactly


def subsequence(short: list, long: list) -> bool:
    rest = iter(long)
    return all(any(x == y for y in rest) for x in short)


def assert_edi835_agrees(theirs: dict, ours: list[dict]) -> int:
    """edi-835-parser's reading against otedi's, on what it reads right. Returns the CAS triplets it lost
    (every one after the first in a CAS segment)."""
    (mine,) = ours  # edi-835-parser reads one transaction set per file
    (read,) = theirs["transactions"]
    assert (read["payer"], str(read["payee_id"]), _money(read["bpr02"])) == (  # N104 read as int
        mine["payer"], mine["payee_id"], mine["bpr02"])
    lost = 0
    assert [c["clp01"] for c in read["claims"]] == [c["clp01"] for c in mine["claims"]]
    for got, want in zip(read["claims"], mine["claims"]):
        assert (got["clp02"], _money(got["clp03"]), _money(got["clp04"]), got["clp07"]) == (
            want["clp02"], want["clp03"], want["clp04"], want["clp07"]), want["clp01"]
        assert len(got["lines"]) == len(want["lines"]), want["clp01"]
        for line, ref in zip(got["lines"], want["lines"]):
            assert (line["qualifier"], line["procedure"], line["modifier"], _money(line["charge"]),
                    _money(line["paid"]), line["ref6r"]) == (
                ref["qualifier"], ref["procedure"], ref["modifiers"][0] if ref["modifiers"] else None,
                ref["charge"], ref["paid"], ref["ref6r"]), (want["clp01"], ref["ref6r"])
            # SVC05: otedi keeps it as sent (None when absent: one unit, TR3); edi-835-parser says 1, or 0 when
            # nothing was paid.
            units = ref["units"] if ref["units"] is not None else (1 if ref["paid"] else 0)
            assert Decimal(line["units"]) == units, (want["clp01"], ref["ref6r"])
            cas = [(g, r, _money(a)) for g, r, a in line["cas"]]
            # Its CAS triplets are otedi's, in order, less those after the first of each segment (every group
            # is there).
            assert subsequence(cas, ref["cas"]), (want["clp01"], ref["ref6r"], cas, ref["cas"])
            assert {g for g, _, _ in cas} == {g for g, _, _ in ref["cas"]}
            lost += len(ref["cas"]) - len(cas)
    return lost


# --- the pipeline's own files --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> dict:
    """A synthetic extract (300 rows, seed 7) through the outbound job: the 837P files and, from the warehouse,
    every claim in them with the figures its 837P must carry."""
    tmp = tmp_path_factory.mktemp("pipeline")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OTEDI_DATABASE_URL", f"sqlite:///{tmp}/w.db")
        mp.setenv("OTEDI_HOME", str(tmp))
        db.upgrade()
        synth_charges(300, 7, tmp / "charges.csv", start=date(2026, 8, 3), days=56)
        files = [Path(f) for f in run_outbound(tmp / "charges.csv", tmp / "out", today=TODAY).summary()["files"]]
        with session_scope() as s:
            member = dict(s.execute(select(models.Charge.charge_id, models.Charge.member_id)).all())
            claims = {c.claim_id: {
                "clm02": c.total_charge, "payer_id": c.payer_id, "rendering_npi": c.rendering_npi,
                "member_id": {member[ln.charge_id] for ln in c.lines},
                "lines": [(ln.cpt, tuple(m for m in ln.modifiers.split(":") if m), ln.charge_amount,
                           Decimal(ln.units), ln.line_control_number) for ln in c.lines],
            } for c in s.scalars(select(models.Claim).where(models.Claim.status == "batched")
                                 .options(selectinload(models.Claim.lines)))}
        db.engine().dispose()
    assert files and claims
    return {"extract": tmp / "charges.csv", "files": files, "claims": claims}


@pytest.fixture(scope="module")
def remits(pipeline, tmp_path_factory) -> list[Path]:
    """The 835s the simulator (shipped settings, seed 1) answers the pipeline's 837Ps with over two nights, as
    in `make demo`: Medicare's, crossing a dual eligible's claims over (CLP02 19 + NM1*TT), commercial payers'
    with a predetermination (CLP02 25) and reversals (CLP02 22), PLB interest; 35 days later Medicaid's for the
    crossed-over claims (CLP02 2) and the adjudications."""
    tmp = tmp_path_factory.mktemp("cycle")
    (tmp / "drop" / "outbound").mkdir(parents=True)
    for f in pipeline["files"]:
        shutil.copy(f, tmp / "drop" / "outbound")
    first = simulate(tmp / "drop", tmp / "state", seed=1, today=TODAY, eligibility_from=[pipeline["extract"]])
    second = simulate(tmp / "drop", tmp / "state", seed=1, today=FOLLOW_UP)
    paths = [*first.remittances, *second.remittances]
    statuses = {c["clp02"] for p in paths for t in otedi_835(p) for c in t["claims"]}
    assert {"1", "2", "19", "22", "25"} <= statuses  # the cases this module is about are all there
    return paths


def test_x12sdk_refuses_the_simulators_835s_only_for_the_rendering_providers_empty_nm103(remits):
    for path in remits:
        refused = refused_elements(path)
        text, filled = x12sdk_readable(path)
        # Every NM1*82 (2100 service provider, NPI only) and nothing else; pyx12's X221A1 map has NM103 there
        # as situational and finds the file valid: x12sdk is wrong.
        assert refused == [("82", "name_last_or_organization_name")] * len(filled) and set(filled) == {"82"}
        assert validate_file(path).ok


def test_x12sdk_reads_the_simulators_835s_as_otedi_does(remits):
    claims = 0
    for path in remits:
        ours = otedi_835(path)
        assert x12sdk_835(x12sdk_readable(path)[0]) == ours, path.name
        claims += sum(len(t["claims"]) for t in ours)
    assert claims > 50


def test_the_crossover_medicaid_and_predetermination_claims_are_among_those_read_alike(remits):
    """The claims this module is about, in x12sdk's reading: Medicare's CLP02 19 naming Ohio Medicaid in
    NM1*TT, Medicaid's CLP02 2 under the same CLP01s, the CLP02 25 with nothing paid, the reversals."""
    read = {}
    for path in remits:
        for t in x12sdk_835(x12sdk_readable(path)[0]):
            for c in t["claims"]:
                read.setdefault(c["clp02"], []).append((t["payer_id"], c))
    crossed = {c["clp01"] for payer, c in read["19"]}
    assert crossed and {(payer, c["crossover"]) for payer, c in read["19"]} == {("15202", "OHMCD")}
    assert {c["clp01"] for payer, c in read["2"]} == crossed and {payer for payer, _ in read["2"]} == {"OHMCD"}
    assert read["25"] and all(c["clp04"] == 0 and c["lines"] for _, c in read["25"])
    # A reversal negates the claim payment it reverses: negative CLP03 and CLP04.
    assert read["22"] and all(c["clp03"] < 0 and c["clp04"] < 0 for _, c in read["22"])


def test_edi_835_parser_reads_the_simulators_835s_as_otedi_does_where_it_can(remits, edi835):
    readings = edi835(remits)
    lost = read = crashed = 0
    for path in remits:
        theirs, ours = readings[path], otedi_835(path)
        if any(c["clp02"] == "25" for t in ours for c in t["claims"]):
            # Its defect: CLP02 25 is not in its registry, and the fallback Status(...) raises TypeError.
            assert theirs["error"].startswith("TypeError: Status.__init__() missing 1 required positional")
            assert "ClaimStatus: Code 25 does not match a status" in " ".join(theirs["warnings"])
            crashed += 1
            continue
        assert "error" not in theirs, (path.name, theirs)
        lost += assert_edi835_agrees(theirs, ours)
        read += 1
    assert read + crashed == len(remits) and crashed >= 1
    assert lost > 0  # its first-triplet-only CAS (CO-253 after CO-45, PR-2 after PR-1): pinned, see above


# --- the 837P files ----------------------------------------------------------------------------------------

def x12sdk_837(path: Path) -> dict[str, dict]:
    """CLM01 -> what x12sdk reads of the claim, in the shape of the pipeline fixture's warehouse claims."""
    separator = component_separator(str(path))
    out = {}
    for model in x12sdk_models(str(path)):
        for claim in model.claims():
            loop = claim.claim
            assert claim.patient_control_number not in out
            out[claim.patient_control_number] = {
                "clm02": claim.charge, "payer_id": claim.payer.nm1_segment.identification_code,
                "rendering_npi": loop.loop_2310b.nm1_segment.identification_code if loop.loop_2310b else None,
                "member_id": {claim.member_id},
                "lines": [(*_composite(ln.sv1_segment.product_service_id_qualifier, separator)[1:],
                           ln.sv1_segment.line_item_charge_amount, ln.sv1_segment.service_unit_count,
                           _ref(ln.ref_segment, "6R")) for ln in claim.service_lines],
            }
    return out


def test_x12sdk_reads_the_837p_files_as_the_warehouse_has_the_claims(pipeline):
    read: dict[str, dict] = {}
    dependents = 0
    for path in pipeline["files"]:
        claims = x12sdk_837(path)
        assert not set(claims) & set(read)
        read.update(claims)
        dependents += sum(c.is_dependent for m in x12sdk_models(str(path)) for c in m.claims())
    assert read == pipeline["claims"]
    assert len(read) > 50 and dependents  # claims under 2000B and under 2000C alike


def test_x12sdk_reads_the_837p_fixture_as_the_claims_the_builder_wrote_it_from():
    """tests/fixtures/x12/otedi_837p_mixed.837 is what otedi.x12.x837p writes of tests/test_x837p.py's
    `_mixed_batch()` (kept in step there): a dependent under 2000C, four modifiers, a replacement, an assistant's
    claim to Medicare as secondary. x12sdk reads each claim as the Claim objects have it."""
    claims = {c.claim_id: {
        "clm02": c.total_charge, "payer_id": c.header.payer_id, "rendering_npi": c.rendering.npi,
        "member_id": {c.header.member_id},
        "lines": [(ln.coded.cpt, ln.coded.modifiers, ln.coded.charge_amount, Decimal(ln.coded.units),
                   ln.line_control_number) for ln in c.lines],
    } for c in _mixed_batch()}
    assert x12sdk_837(ROOT / "tests" / "fixtures" / "x12" / "otedi_837p_mixed.837") == claims
    assert len(claims) == 5 and ("CO", "GO", "KX", "59") in {ln[1] for c in claims.values() for ln in c["lines"]}


# --- public and project 835 samples -----------------------------------------------------------------------------

# Public samples otedi reads as they are (tests/fixtures/inbound/SOURCES.md): x12sdk reads the same.
PUBLIC_VALID = ["pyx12_835_mult_loops.txt", "lfh_medicare-part-a.835", "edi835parser_emedny_sample.txt",
                "edi835parser_united_healthcare_legacy_sample.txt"]
# The project's synthetic 835s x12sdk can read.
PROJECT_READABLE = ["otedi_835_crossover_negative_cas.835", "otedi_835_denial_claim_cas.835",
                    "otedi_835_pipe_gt_one_line.835", "otedi_835_reversal_correction.835"]


@pytest.mark.parametrize("name", PUBLIC_VALID + PROJECT_READABLE)
def test_x12sdk_reads_the_samples_as_otedi_does(name):
    path = INBOUND / name
    text, filled = x12sdk_readable(path)
    # Only the UHC sample has an empty NM103 (NM1*74*1***C, a corrected name: NM103 situational, TR3).
    assert refused_elements(path) == [(e, "name_last_or_organization_name") for e in filled]
    assert set(filled) == ({"74"} if "united" in name else set())
    assert x12sdk_835(text) == otedi_835(path)


def test_x12sdk_misreads_what_otedi_refuses_in_the_lfh_samples():
    """Three LinuxForHealth samples put the check date in BPR15 (one separator too few: BPR16, required, is
    empty), one has BPR16 20002316, one has SVC*HC*24599.00 (no procedure code). otedi refuses each naming the
    element; x12sdk reads all of them without a word."""
    for name, problem in [("lfh_secondary-payment.835", "BPR16 payment date is missing and BPR15 holds a date"),
                          ("lfh_cob-contractural-adjustment.835", "BPR16 payment date is missing and BPR15"),
                          ("lfh_tertiary-payment.835", "BPR16 payment date is missing and BPR15"),
                          ("lfh_managed-care.835", "BPR16 is not a valid CCYYMMDD date")]:
        with pytest.raises(x835.X12Error, match=problem):
            x835.scan_835(INBOUND / name)
        (model,) = x12sdk_models(str(INBOUND / name))
        assert model.header.bpr_segment.eft_effective_date in (None, "20002316")
    # Tertiary: SVC01 is "HC" alone, so x12sdk reads the code (24599.00) as the charge and the charge (1766.50,
    # = CLP03) as the payment. It never checks a line's SVC02 - SVC03 = Σ CAS (otedi does), only the claim's.
    (model,) = x12sdk_models(str(INBOUND / "lfh_tertiary-payment.835"))
    line = next(model.claims()).service_lines[0]
    svc = line.svc_segment
    assert (svc.composite_medical_procedure_identifier_1, svc.line_item_charge_amount,
            svc.line_item_provider_payment_amount) == ("HC", Decimal("24599.00"), Decimal("1766.50"))
    assert svc.line_item_charge_amount - svc.line_item_provider_payment_amount != sum(
        a for _, _, a in _triplets(line.cas_segment))


@pytest.mark.parametrize("name", ["lfh_secondary-payment.835", "lfh_cob-contractural-adjustment.835"])
def test_x12sdk_reads_the_money_of_the_tolerated_lfh_samples_as_otedi_does(name):
    """With `tolerant` (the date from BPR15, composites written with `>` under ISA16 `:`) otedi reads them;
    x12sdk agrees on every figure. Its procedure is the unsplit composite (`HC>12345>26`): the file uses
    another separator than its ISA16 declares, so x12sdk is not wrong there."""
    ours, theirs = otedi_835(INBOUND / name, tolerant=True), x12sdk_835(str(INBOUND / name))
    for t in ours + theirs:
        for c in t["claims"]:
            for ln in c["lines"]:
                ln["qualifier"] = ln["procedure"] = ln["modifiers"] = None
    assert theirs == ours


def test_x12sdk_refuses_two_plb_segments_and_a_plb_only_transaction():
    """TR3 (as pyx12's X221A1 map has it): PLB repeats (max use >1), loop 2000 is situational (a transaction of
    provider adjustments alone). x12sdk's footer holds one PLB and its loop 2000 is required. (pyx12 itself
    counts a second PLB as a second footer loop, against its own map: otedi's simulator writes one PLB of up
    to six adjustments for that reason.)"""
    with pytest.raises(ValidationError, match="footer.plb_segment"):
        x12sdk_models(str(INBOUND / "otedi_835_plb.835"))
    plbs = [i for i in x835.iter_835(INBOUND / "otedi_835_plb.835") if isinstance(i, x835.ProviderAdjustment)]
    assert len(plbs) == 2 and x835.scan_835(INBOUND / "otedi_835_plb.835").ok  # otedi reads and balances both
    with pytest.raises(ValidationError, match="loop_2000\n  Field required"):
        x12sdk_models(str(INBOUND / "otedi_835_multi_interchange.835"))
    assert [len(t["claims"]) for t in otedi_835(INBOUND / "otedi_835_multi_interchange.835")].count(0) == 1


def test_edi_835_parser_reads_the_public_samples_as_otedi_does(edi835, tmp_path):
    readings = edi835([INBOUND / n for n in PUBLIC_VALID])
    for name in PUBLIC_VALID:
        theirs, ours = readings[INBOUND / name], otedi_835(INBOUND / name)
        assert "error" not in theirs, (name, theirs)
        assert_edi835_agrees(theirs, ours)
    # lfh_medicare-part-a has claim-level CAS only: edi-835-parser drops it (and so cannot balance the claims).
    assert any(c["cas"] for c in otedi_835(INBOUND / "lfh_medicare-part-a.835")[0]["claims"])
    assert "Identifier: CAS not handled in claim loop." in readings[INBOUND / "lfh_medicare-part-a.835"]["warnings"]
    # The pyx12 sample's denied line without its SVC05: one unit (TR3; otedi and x12sdk keep it absent, which
    # means one), edi-835-parser says 0.
    copy = tmp_path / "pyx12_835_no_svc05.txt"
    copy.write_text((INBOUND / "pyx12_835_mult_loops.txt").read_text().replace("SVC*HC:T1005*500.04*0**68~",
                                                                                "SVC*HC:T1005*500.04*0~"))
    (claim,) = otedi_835(copy)[0]["claims"]
    assert (claim["lines"][0]["units"], claim["lines"][0]["paid"]) == (None, 0)
    assert x12sdk_835(str(copy)) == otedi_835(copy)
    (claim,) = edi835([copy])[copy]["transactions"][0]["claims"]
    assert claim["lines"][0]["units"] == 0


def test_edi_835_parser_fails_on_a_cms_plan_id_as_payer_identifier(edi835):
    """N1*PR*...*XV*OHSHP (1000A N103 XV, a CMS plan id: TR3-valid, pyx12-valid) raises ValueError in
    edi-835-parser, which reads N104 with int()."""
    path = INBOUND / "otedi_835_denial_claim_cas.835"
    assert otedi_835(path)[0]["payer_id"] == "OHSHP" and validate_file(path).ok
    assert edi835([path])[path]["error"] == "ValueError: invalid literal for int() with base 10: 'OHSHP'"


# --- x12sdk writes, otedi posts --------------------------------------------------------------------------------

@pytest.fixture
def billed(warehouse, tmp_path) -> dict[str, str]:
    """Claims A (97530 x2 + 97535, Medicare) and B (97110) billed through the outbound job; {charge_id: line
    control number} and the claim ids as "A" and "B"."""
    write_charges_csv(tmp_path / "charges.csv", [
        charge(charge_id="A-1", cpt="97530", minutes=30, units=2, charge_amount=Decimal("160.00")),
        charge(charge_id="A-2", cpt="97535", minutes=15, units=1, charge_amount=Decimal("70.00")),
        charge(charge_id="B-1", cpt="97110", minutes=15, units=1, charge_amount=Decimal("65.00"),
               patient_id="P200", service_date=date(2026, 3, 3)),
    ])
    run_outbound(tmp_path / "charges.csv", tmp_path / "out", today=date(2026, 3, 10))
    with session_scope() as s:
        rows = s.execute(select(models.ClaimLine.charge_id, models.ClaimLine.line_control_number,
                                models.Claim.claim_id).join(models.ClaimLine.claim)).all()
    ids = {charge_id: lcn for charge_id, lcn, _ in rows}
    ids.update({charge_id[0]: claim_id for charge_id, _, claim_id in rows})
    return ids


def _cas(*triplets) -> dict:
    fields = {"adjustment_group_code": triplets[0][0]}
    for n, (_, reason, amount) in enumerate(triplets, 1):
        fields[f"adjustment_reason_code_{n}"], fields[f"monetary_amount_{n}"] = reason, Decimal(amount)
    return fields


def x12sdk_remittance(ids: dict[str, str]) -> HealthCareClaimPayment:
    """An 835 built from x12sdk's models, figures of our choosing: A paid (allowed 60.12 and 23.88, 20%
    coinsurance, 2% sequestration of the rest), B denied CO-50 with N115, interest PLB L6 -1.25."""
    practice = config.practice("BRIGHTHANDS")

    def line(procedure, date_, charge_, paid, units, lcn, cas, allowed=None, remark=None):
        return {"svc_segment": {"composite_medical_procedure_identifier_1": f"HC:{procedure}:GO",
                                "line_item_charge_amount": charge_, "line_item_provider_payment_amount": paid,
                                "units_of_service_paid_count": units},
                "dtm_segment": [{"date_time_qualifier": "472", "production_date": date_}],
                "cas_segment": cas, "ref_segment": [{"reference_identification_qualifier": "6R",
                                                     "reference_identification": lcn}],
                "amt_segment": [{"amount_qualifier_code": "B6", "monetary_amount": allowed}]
                if allowed else None,
                "lq_segment": [{"code_list_qualifier_code": "HE", "form_identifier": remark}] if remark else None}

    def patient(last, member):
        return [{"entity_identifier_code": "QC", "entity_type_qualifier": "1", "name_last_or_organization_name": last,
                 "name_first": "JANE", "identification_code_qualifier": "MI", "identification_code": member}]

    structure = {
        "header": {
            "st_segment": {"transaction_set_identifier_code": "835", "transaction_set_control_number": "0001"},
            "bpr_segment": {"transaction_handling_code": "I", "total_actual_provider_payment_amount": Decimal("67.11"),
                            "credit_debit_flag_code": "C", "payment_method_code": "CHK",
                            "eft_effective_date": "20260324"},
            "trn_segment": {"trace_type_code": "1", "reference_identification_1": "X12SDK-CHECK-0001",
                            "originating_company_identifier": "1311234567"},
            "dtm_segment": {"date_time_qualifier": "405", "production_date": "20260320"},
        },
        "loop_1000a": {
            "n1_segment": {"entity_identifier_code": "PR", "name": "CGS MEDICARE PART B OHIO"},
            "n3_segment": {"address_information_1": "PO BOX 20018"},
            "n4_segment": {"city_name": "NASHVILLE", "state_province_code": "TN", "postal_code": "372020018"},
            "ref_segment": [{"reference_identification_qualifier": "2U", "reference_identification": "15202"}],
            "per_segment": [{"contact_function_code": "BL", "name": "EDI", "communication_number_qualifier_1": "TE",
                             "communication_number_1": "8665906703"}],
        },
        "loop_1000b": {
            "n1_segment": {"entity_identifier_code": "PE", "name": practice.name, "identification_code_qualifier": "XX",
                           "identification_code": practice.npi},
            "ref_segment": [{"reference_identification_qualifier": "TJ", "reference_identification": practice.ein}],
        },
        "loop_2000": [{"lx_segment": {"assigned_number": "1"}, "loop_2100": [
            {"clp_segment": {"patient_control_number": ids["A"], "claim_status_code": "1",
                             "total_claim_charge_amount": Decimal("230.00"), "claim_payment_amount": Decimal("65.86"),
                             "patient_responsibility_amount": Decimal("16.80"), "claim_filing_indicator_code": "MB",
                             "payer_claim_control_number": "X12SDK-ICN-A", "facility_type_code": "11",
                             "claim_frequency_type_code": "1"},
             "nm1_segment": patient("DOE", "1EG4TE5MK73"),
             "loop_2110": [
                 line("97530", "20260302", Decimal("160.00"), Decimal("47.14"), Decimal("2"), ids["A-1"],
                      [_cas(("CO", "45", "99.88"), ("CO", "253", "0.96")), _cas(("PR", "2", "12.02"))],
                      allowed=Decimal("60.12")),
                 line("97535", "20260302", Decimal("70.00"), Decimal("18.72"), Decimal("1"), ids["A-2"],
                      [_cas(("CO", "45", "46.12"), ("CO", "253", "0.38")), _cas(("PR", "2", "4.78"))],
                      allowed=Decimal("23.88")),
             ]},
            {"clp_segment": {"patient_control_number": ids["B"], "claim_status_code": "4",
                             "total_claim_charge_amount": Decimal("65.00"), "claim_payment_amount": Decimal("0"),
                             "claim_filing_indicator_code": "MB", "payer_claim_control_number": "X12SDK-ICN-B",
                             "facility_type_code": "11", "claim_frequency_type_code": "1"},
             "nm1_segment": patient("ROE", "1EG4TE5MK73"),
             "loop_2110": [line("97110", "20260303", Decimal("65.00"), Decimal("0"), Decimal("1"), ids["B-1"],
                                [_cas(("CO", "50", "65.00"))], remark="N115")]},
        ]}],
    }
    plb = {"provider_identifier": practice.npi, "fiscal_period_date": "20261231",
           "adjustment_reason_code_1": f"L6:{ids['A']}", "provider_adjustment_amount_1": Decimal("-1.25")}
    count = count_segments({**structure, "footer": {"plb_segment": plb, "se_segment": {}}})
    structure["footer"] = {"plb_segment": plb, "se_segment": {"transaction_segment_count": count,
                                                             "transaction_set_control_number": "0001"}}
    return HealthCareClaimPayment(**structure)


def ledger(claim_id: str) -> dict[tuple[str, str | None, str | None], Decimal]:
    with session_scope() as s:
        rows = s.execute(select(models.LedgerEntry.entry_type, models.LedgerEntry.group_code,
                                models.LedgerEntry.carc, func.sum(models.LedgerEntry.amount))
                         .join(models.Claim, models.Claim.id == models.LedgerEntry.claim_pk)
                         .where(models.Claim.claim_id == claim_id)
                         .group_by(models.LedgerEntry.entry_type, models.LedgerEntry.group_code,
                                   models.LedgerEntry.carc)).all()
    return {(t, g, c): Decimal(a) for t, g, c, a in rows}


def test_an_835_x12sdk_writes_is_pyx12_valid_and_posts_to_the_ledger_to_the_cent(billed, tmp_path):
    text = write_transactions([x12sdk_remittance(billed)], sender_id="CGSMEDICARE", receiver_id="BRIGHT01",
                              interchange_control_number="000004242", created=datetime(2026, 3, 20, 9, 30))
    path = tmp_path / "x12sdk.835"
    path.write_text(text, encoding="ascii")
    report = validate_file(path)
    assert report.ok, report.to_text()
    with session_scope() as s:
        result = post_remittance_file(s, path)
    assert result.status == "posted"
    summary = result.summary()
    assert (summary["claims_matched"], summary["unmatched"]) == (2, 0)
    assert summary["totals"] == {"paid": "65.86", "contractual": "147.34", "patient_responsibility": "16.80",
                                 "other_adjustments": "0.00", "denied": "65.00", "plb": "-1.25", "bpr02": "67.11"}
    assert ledger(billed["A"]) == {
        ("payment", None, None): Decimal("65.86"), ("contractual", "CO", "45"): Decimal("146.00"),
        ("contractual", "CO", "253"): Decimal("1.34"), ("patient_responsibility", "PR", "2"): Decimal("16.80")}
    assert ledger(billed["B"]) == {("denial", "CO", "50"): Decimal("65.00")}
    with session_scope() as s:
        claims = {c.claim_id: (c.status, c.payer_icn) for c in s.scalars(select(models.Claim))}
        lines = dict(s.execute(select(models.ClaimLine.line_control_number, func.sum(models.LedgerEntry.amount))
                               .join(models.LedgerEntry, models.LedgerEntry.claim_line_pk == models.ClaimLine.id)
                               .group_by(models.ClaimLine.line_control_number)).all())
        (interest,) = s.scalars(select(models.ProviderAdjustment)).all()
    assert claims == {billed["A"]: ("patient_balance", "X12SDK-ICN-A"), billed["B"]: ("denied", "X12SDK-ICN-B")}
    assert lines == {billed["A-1"]: Decimal("160.00"), billed["A-2"]: Decimal("70.00"), billed["B-1"]: Decimal("65.00")}
    assert (interest.reason_code, interest.reference, interest.amount) == ("L6", billed["A"], Decimal("-1.25"))


def test_what_x12sdk_generates_lacks_bpr16_and_per_and_is_quarantined(warehouse, tmp_path):
    """`generate_835` writes `BPR*I*amount*C*CHK` (no BPR16, the check date) and no 1000A PER*BL; both are
    required (pyx12 says so too). otedi quarantines the file naming BPR16, and posts nothing."""
    path = tmp_path / "generated.835"
    path.write_text(generate_835(seed=7, claims=[ClaimSpec(charge="160.00", patient_control_number="OTX1", lines=[
        ServiceLineSpec(charge="160.00", procedure="97530", units=2, adjustments=[denial("CO", "45", "99.88")])])]))
    problems = validate_file(path).to_text()
    assert "BPR16: required element missing" in problems and 'required segment PER' in problems
    with session_scope() as s:
        result = post_remittance_file(s, path)
        assert result.status == "quarantined" and "BPR16" in result.message
        assert s.scalar(select(func.count()).select_from(models.LedgerEntry)) == 0
