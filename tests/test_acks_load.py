"""Loading 999 and 277CA acknowledgments against our own 837P files, on SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import date
from decimal import Decimal as D
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from otedi import config
from otedi.acks.load import load_ack_file
from otedi.outbound import run_outbound
from otedi.remit.post import post_remittance_file
from otedi.warehouse import models
from otedi.warehouse.db import session_scope
from tests.factories import charge, write_charges_csv
from tests.remit_builder import Clp, Svc, interchange, remittance

TODAY = date(2026, 3, 10)
ROW_MODELS = (models.InboundFile, models.AckResult, models.ClaimStatusEvent)


@dataclass
class Sent:
    """One 837P file we wrote, as read back from the file itself."""

    path: Path
    file_name: str
    gs06: str
    st02: str
    claim_ids: list[str]  # CLM01 in file order
    clm_positions: list[int]  # each CLM's position counted from our ST = 1


def read_837(path: Path) -> Sent:
    segments = [line.rstrip("\n").rstrip("~").split("*") for line in open(path, encoding="ascii")]
    st_index = next(i for i, s in enumerate(segments) if s[0] == "ST")
    gs = next(s for s in segments if s[0] == "GS")
    clms = [(i - st_index + 1, s[1]) for i, s in enumerate(segments) if s[0] == "CLM"]
    return Sent(path, path.name, gs[6], segments[st_index][2], [c for _, c in clms], [p for p, _ in clms])


@pytest.fixture
def sent(warehouse, tmp_path) -> Sent:
    """Four claims for two patients on four dates (A1 and A2 share a visit), in one 837P file."""
    extract = tmp_path / "charges.csv"
    write_charges_csv(extract, [
        charge(charge_id="A1"),
        charge(charge_id="A2", cpt="97110", minutes=15, units=1),
        charge(charge_id="A3", service_date=date(2026, 3, 4)),
        charge(charge_id="B1", patient_id="P200", patient_last_name="ROE", member_id="2EG4TE5MK74",
               service_date=date(2026, 3, 3)),
        charge(charge_id="B2", patient_id="P200", patient_last_name="ROE", member_id="2EG4TE5MK74",
               service_date=date(2026, 3, 5), cpt="97110", minutes=15, units=1),
    ])
    result = run_outbound(extract, tmp_path / "out", today=TODAY)
    files = result.summary()["files"]
    assert len(files) == 1 and not result.summary()["quarantined"]
    ours = read_837(Path(files[0]))
    assert len(ours.claim_ids) == 4
    with session_scope() as s:
        claim_file = s.scalar(select(models.ClaimFile))
        assert (claim_file.file_name, claim_file.group_control_number, claim_file.transaction_control_number) == \
            (ours.file_name, int(ours.gs06), int(ours.st02))
        in_file = {c.claim_id: c.status for c in s.scalars(
            select(models.Claim).where(models.Claim.claim_file_id == claim_file.id))}
    assert in_file == {cid: "batched" for cid in ours.claim_ids}
    return ours


# -- file builders ------------------------------------------------------------------------------------------

def addressed(text: str, sender: str = "DEMOCH", receiver: str = "BRIGHT01", gs_sender: str | None = None) -> str:
    """An interchange from `sender` (ISA06, and GS02 unless `gs_sender`: a clearinghouse) to `receiver`
    (ISA08/GS03: our submitter id)."""
    isa, gs, rest = text.split("~\n", 2)
    isa_elements, gs_elements = isa.split("*"), gs.split("*")
    isa_elements[6], isa_elements[8] = f"{sender:<15}", f"{receiver:<15}"
    gs_elements[2], gs_elements[3] = gs_sender or sender, receiver
    return "*".join(isa_elements) + "~\n" + "*".join(gs_elements) + "~\n" + rest


def ack_999(sets: list[tuple[str, list[str], str]], gs06: str, *, group_status: str | None = None,
            sender: str = "DEMOCH", receiver: str = "BRIGHT01", gs_sender: str | None = None, control: int = 71,
            version: str = "005010X222A1") -> str:
    """One 999 from clearinghouse `sender` to submitter `receiver` answering group `gs06`;
    `sets`: (ST02, IK3/IK4 segments, IK5 segment)."""
    body = [f"AK1*HC*{gs06}*{version}"]
    for st02, errors, ik5 in sets:
        body += [f"AK2*837*{st02}*{version}", *errors, ik5]
    accepted = sum(1 for _, _, ik5 in sets if ik5.split("*")[1] in ("A", "E"))
    status = group_status or ("A" if accepted == len(sets) else "R" if accepted == 0 else "P")
    body.append(f"AK9*{status}*{len(sets)}*{len(sets)}*{accepted}")
    st = ["ST*999*0001*005010X231A1", *body, f"SE*{len(body) + 2}*0001"]
    return addressed(interchange([st], functional_id="FA", version="005010X231A1", control=control),
                     sender, receiver, gs_sender)


def ack_277ca(claims: list[tuple[str, str, str | None]], *, control: int = 72) -> str:
    """One 277CA; `claims`: (TRN02 = our CLM01, STC01 composite, REF*1K or None)."""
    body = [
        "BHT*0085*08*BATCH1*20260316*1200*TH",
        "HL*1**20*1", "NM1*PR*2*CGS MEDICARE PART B OHIO*****PI*15202", "TRN*1*BATCH1",
        "DTP*050*D8*20260316", "DTP*009*D8*20260316",
        "HL*2*1*21*1", "NM1*41*2*BRIGHT HANDS OCCUPATIONAL THERAPY PLLC*****46*BRIGHT01", "TRN*2*BATCH1",
        "STC*A1:19*20260316*WQ*480.00",
        "HL*3*2*19*1", "NM1*85*2*BRIGHT HANDS OCCUPATIONAL THERAPY PLLC*****XX*1234567893", "TRN*1*0",
    ]
    for n, (pcn, stc01, icn) in enumerate(claims):
        rejected = stc01.split(":")[0] in ("A3", "A6", "A7", "A8")
        body += [f"HL*{4 + n}*3*PT", "NM1*QC*1*DOE*JANE****MI*1EG4TE5MK73", f"TRN*2*{pcn}",
                 f"STC*{stc01}*20260316*{'U' if rejected else 'WQ'}*120.00"]
        if icn:
            body.append(f"REF*1K*{icn}")
        body.append("DTP*472*D8*20260302")
    st = ["ST*277*0001*005010X214", *body, f"SE*{len(body) + 2}*0001"]
    return interchange([st], functional_id="HN", version="005010X214", control=control)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="ascii")
    return path


def load(path: Path):
    with session_scope() as s:
        return load_ack_file(s, path)


def row_counts() -> dict[str, int]:
    with session_scope() as s:
        return {m.__tablename__: s.scalar(select(func.count()).select_from(m)) for m in ROW_MODELS}


def statuses() -> dict[str, str]:
    with session_scope() as s:
        return dict(s.execute(select(models.Claim.claim_id, models.Claim.status)).all())


def events() -> list[models.ClaimStatusEvent]:
    with session_scope() as s:
        rows = list(s.scalars(select(models.ClaimStatusEvent).order_by(models.ClaimStatusEvent.id)))
        s.expunge_all()
        return rows


# -- 999 ------------------------------------------------------------------------------------------------------

def test_999_accepting_our_transaction_set_links_the_result_and_leaves_claims_alone(sent, tmp_path):
    path = write(tmp_path, "accept.999", ack_999([(sent.st02, [], "IK5*A")], sent.gs06))

    summary = load(path).summary()

    assert summary == {"file": "accept.999", "kind": "999", "status": "loaded", "message": None,
                       "transaction_sets": 1, "sets_rejected": 0, "claims_accepted": 0, "claims_rejected": 0,
                       "unmatched": []}
    with session_scope() as s:
        claim_file_id = s.scalar(select(models.ClaimFile.id).where(models.ClaimFile.file_name == sent.file_name))
        acks = [(a.claim_file_id, a.group_control_number, a.transaction_control_number, a.status, a.errors)
                for a in s.scalars(select(models.AckResult))]
        inbound = [(f.file_name, f.kind, f.status) for f in s.scalars(select(models.InboundFile))]
    assert acks == [(claim_file_id, sent.gs06, sent.st02, "A", None)]
    assert inbound == [("accept.999", "999", "loaded")]
    assert statuses() == {cid: "batched" for cid in sent.claim_ids}
    assert events() == []


def test_999_rejecting_our_set_rejects_every_claim_and_pins_the_error_to_its_claim(sent, tmp_path):
    second, position = sent.claim_ids[1], sent.clm_positions[1]
    errors = [f"IK3*CLM*{position}*2300*8", "IK4*5:1*1331*7*99"]  # CLM05-1 place of service: invalid code
    path = write(tmp_path, "reject.999", ack_999([(sent.st02, errors, "IK5*R*5")], sent.gs06))

    summary = load(path).summary()

    assert (summary["status"], summary["transaction_sets"], summary["sets_rejected"], summary["claims_rejected"],
            summary["claims_accepted"], summary["unmatched"]) == ("loaded", 1, 1, 4, 0, [])
    assert statuses() == {cid: "rejected" for cid in sent.claim_ids}
    pinned = (f"segment {position} (CLM, loop 2300) in claim {second}: segment has data element errors "
              f"(element 5-1: invalid code value)")
    with session_scope() as s:
        ack = s.scalar(select(models.AckResult))
        assert ack.status == "R"
        assert ack.errors == f"{pinned}\none or more segments in error"
    by_claim = {e.patient_control_number: e for e in events()}
    assert set(by_claim) == set(sent.claim_ids)
    for event in by_claim.values():
        assert (event.source, event.status_code, event.accepted, event.category_code) == ("999", "R", False, None)
        assert event.message.startswith(f"999 rejected transaction set {sent.st02} of {sent.file_name}: ")
    # The claim the IK3 points into gets exactly that error, in words (IK304 8, IK403 7).
    assert by_claim[second].message == \
        f"999 rejected transaction set {sent.st02} of {sent.file_name}: {pinned}"
    with session_scope() as s:
        pks = dict(s.execute(select(models.Claim.claim_id, models.Claim.id)).all())
    assert {cid: e.claim_pk for cid, e in by_claim.items()} == pks


def test_999_error_before_the_first_claim_names_no_claim(sent, tmp_path):
    # Position 2 is our BHT: in the header, before any CLM. IK304 3 / IK5 I5.
    path = write(tmp_path, "header.999", ack_999([(sent.st02, ["IK3*BHT*2**3"], "IK5*R*I5")], sent.gs06))

    assert load(path).summary()["claims_rejected"] == 4

    for event in events():
        assert event.message == (f"999 rejected transaction set {sent.st02} of {sent.file_name}: "
                                 "segment 2 (BHT): required segment missing; "
                                 "implementation one or more segments in error")


def test_999_for_control_numbers_we_never_sent_is_recorded_as_unmatched(sent, tmp_path):
    path = write(tmp_path, "foreign.999", ack_999([("4321", ["IK3*CLM*22*2300*8", "IK4*2*782*1"], "IK5*R*5")],
                                                  "98765"))

    summary = load(path).summary()

    assert (summary["status"], summary["transaction_sets"], summary["sets_rejected"], summary["claims_rejected"]) == \
        ("loaded", 1, 1, 0)
    assert summary["unmatched"] == ["GS06 98765 / ST02 4321 (999 ISA13 000000071 from ISA06 DEMOCH / GS02 DEMOCH "
                                    "to ISA08 BRIGHT01 / GS03 BRIGHT01): we sent no file with these control numbers"]
    with session_scope() as s:
        acks = [(a.claim_file_id, a.group_control_number, a.transaction_control_number, a.status, a.errors)
                for a in s.scalars(select(models.AckResult))]
    assert acks == [(None, "98765", "4321", "R", "segment 22 (CLM, loop 2300): segment has data element errors "
                                                 "(element 2: required data element missing)\n"
                                                 "one or more segments in error")]
    assert statuses() == {cid: "batched" for cid in sent.claim_ids}
    assert events() == []


def test_999_for_another_implementation_guide_is_not_matched_to_our_837p(sent, tmp_path):
    path = write(tmp_path, "837i.999", ack_999([(sent.st02, [], "IK5*R*5")], sent.gs06, version="005010X223A2"))

    summary = load(path).summary()

    assert summary["unmatched"] == [
        f"GS06 {sent.gs06} / ST02 {sent.st02} (999 ISA13 000000071 from ISA06 DEMOCH / GS02 DEMOCH to ISA08 "
        "BRIGHT01 / GS03 BRIGHT01): AK103 005010X223A2 is not our 005010X222A1"]
    assert statuses() == {cid: "batched" for cid in sent.claim_ids}


def test_999_rejecting_the_whole_group_without_set_responses_rejects_its_claims(sent, tmp_path):
    """AK9*R with AK905 codes and no AK2 loop (a group-level rejection): today only IK501 was read, so the
    claims stayed batched. Every claim of our file in that group is now rejected, naming the AK9 reason."""
    body = [f"AK1*HC*{sent.gs06}*005010X222A1", "AK9*R*1*1*0*4"]  # AK905 4: group control number mismatch
    st = ["ST*999*0001*005010X231A1", *body, f"SE*{len(body) + 2}*0001"]
    path = write(tmp_path, "group.999", addressed(interchange([st], functional_id="FA", version="005010X231A1",
                                                              control=77), "DEMOCH", "BRIGHT01", None))
    from otedi.x12.validate import validate_file

    assert validate_file(path).ok  # pyx12 (005010X231A1): a 999 may reject a group with no AK2 loop

    summary = load(path).summary()

    assert (summary["sets_rejected"], summary["claims_rejected"]) == (1, len(sent.claim_ids))
    assert statuses() == {cid: "rejected" for cid in sent.claim_ids}
    assert all("AK9 R" in e.message and "group control number" in e.message.lower() for e in events())


def test_999_group_rejection_from_another_clearinghouse_rejects_nothing(sent, tmp_path):
    body = [f"AK1*HC*{sent.gs06}*005010X222A1", "AK9*R*1*1*0"]
    st = ["ST*999*0001*005010X231A1", *body, f"SE*{len(body) + 2}*0001"]
    path = write(tmp_path, "other.999", addressed(interchange([st], functional_id="FA", version="005010X231A1",
                                                              control=78), "STRANGER", "BRIGHT01", None))
    assert load(path).summary()["claims_rejected"] == 0
    assert statuses() == {cid: "batched" for cid in sent.claim_ids}


# -- who sent the 999 -----------------------------------------------------------------------------------------

# A second clearinghouse whose ISA and GS ids differ from each other (and from DEMOCH's).
OTHERCH = {"clearinghouse_id": "OTHERCH", "name": "OTHER CLEARINGHOUSE", "isa_receiver_qualifier": "ZZ",
           "isa_receiver_id": "OTHERCH01", "gs_receiver_code": "OTHERCHGS", "receiver_name": "OTHER CLEARINGHOUSE",
           "receiver_id": "OTHERCH01", "isa_sender_qualifier": "ZZ", "usage_indicator": "T",
           "max_claims_per_file": 5000}
# clearinghouse -> (its ISA06 in a 999, its GS02, the practice that sends to it, that practice's submitter id)
ROUTES = {"DEMOCH": ("DEMOCH", "DEMOCH", "BRIGHTHANDS", "BRIGHT01"),
          "OTHERCH": ("OTHERCH01", "OTHERCHGS", "KIDSTHRIVE", "KIDSTH01")}


def _edit_yaml(path: Path, edit) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    edit(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


@pytest.fixture
def two_clearinghouses(warehouse, tmp_path, monkeypatch) -> dict[str, Sent]:
    """BRIGHTHANDS sends to DEMOCH, KIDSTHRIVE to OTHERCH. Control numbers are counted per clearinghouse,
    so both 837P files carry the same GS06 and ST02."""
    root = tmp_path / "mappings"
    shutil.copytree(config.mappings_dir(), root)
    _edit_yaml(root / "clearinghouses.yaml", lambda d: d["clearinghouses"].append(dict(OTHERCH)))

    def to_other(data):
        [kids] = [p for p in data["practices"] if p["practice_id"] == "KIDSTHRIVE"]
        kids["clearinghouse"] = "OTHERCH"
    _edit_yaml(root / "practices.yaml", to_other)
    monkeypatch.setenv("OTEDI_MAPPINGS", str(root))
    extract = tmp_path / "charges.csv"
    write_charges_csv(extract, [
        charge(charge_id="A1"),
        charge(charge_id="A3", service_date=date(2026, 3, 4)),
        charge(charge_id="K1", practice_id="KIDSTHRIVE", patient_id="K100", patient_last_name="ROE",
               member_id="2EG4TE5MK74", service_date=date(2026, 3, 3), cpt="97110", minutes=15, units=1),
        charge(charge_id="K2", practice_id="KIDSTHRIVE", patient_id="K100", patient_last_name="ROE",
               member_id="2EG4TE5MK74", service_date=date(2026, 3, 5), cpt="97110", minutes=15, units=1),
    ])
    result = run_outbound(extract, tmp_path / "out", today=TODAY)
    assert not result.summary()["quarantined"]
    files = [read_837(Path(f)) for f in result.summary()["files"]]
    by_house = {next(h for h in ROUTES if f"_{h}_" in f.file_name): f for f in files}
    assert sorted(by_house) == ["DEMOCH", "OTHERCH"] and len(files) == 2
    assert (by_house["DEMOCH"].gs06, by_house["DEMOCH"].st02) == (by_house["OTHERCH"].gs06, by_house["OTHERCH"].st02)
    with session_scope() as s:
        rows = {(f.file_name, f.clearinghouse_id, f.practice_id) for f in s.scalars(select(models.ClaimFile))}
    assert rows == {(by_house[h].file_name, h, ROUTES[h][2]) for h in ROUTES}
    return by_house


def _reply_from(house: str, sets, gs06: str, **kw) -> str:
    isa06, gs02, _, submitter = ROUTES[house]
    return ack_999(sets, gs06, sender=isa06, gs_sender=gs02, receiver=submitter, **kw)


def _file_id(file_name: str) -> int:
    with session_scope() as s:
        return s.scalar(select(models.ClaimFile.id).where(models.ClaimFile.file_name == file_name))


@pytest.mark.parametrize("answering", ["DEMOCH", "OTHERCH"])
def test_999_rejects_only_the_claims_of_the_clearinghouse_that_sent_it(two_clearinghouses, tmp_path, answering):
    ours = two_clearinghouses[answering]
    other = next(f for h, f in two_clearinghouses.items() if h != answering)
    path = write(tmp_path, "reject.999", _reply_from(answering, [(ours.st02, [], "IK5*R*5")], ours.gs06))

    summary = load(path).summary()

    assert (summary["sets_rejected"], summary["claims_rejected"], summary["unmatched"]) == \
        (1, len(ours.claim_ids), [])
    assert statuses() == {**{cid: "rejected" for cid in ours.claim_ids}, **{cid: "batched" for cid in other.claim_ids}}
    with session_scope() as s:
        linked = list(s.scalars(select(models.AckResult.claim_file_id)))
    assert linked == [_file_id(ours.file_name)]
    assert {e.patient_control_number for e in events()} == set(ours.claim_ids)


def test_999_addressed_to_another_submitter_or_from_a_stranger_is_unmatched_and_the_load_goes_on(
        two_clearinghouses, tmp_path):
    kids = two_clearinghouses["OTHERCH"]
    # OTHERCH's ids, but addressed to BRIGHT01, who never sent to OTHERCH.
    misaddressed = write(tmp_path, "misaddressed.999", ack_999(
        [(kids.st02, [], "IK5*R*5")], kids.gs06, sender="OTHERCH01", gs_sender="OTHERCHGS", receiver="BRIGHT01"))
    # A sender that is none of our clearinghouses, addressed to the right submitter.
    stranger = write(tmp_path, "stranger.999", ack_999(
        [(kids.st02, [], "IK5*R*5")], kids.gs06, sender="STRANGER", receiver="KIDSTH01", control=73))
    # The right sender and receiver: the known set is loaded though the next one matches no file.
    mixed = write(tmp_path, "mixed.999", _reply_from("OTHERCH", [(kids.st02, [], "IK5*R*5"), ("4321", [], "IK5*A")],
                                                     kids.gs06, control=74))

    first, second, third = (load(p).summary() for p in (misaddressed, stranger, mixed))

    elsewhere = ("our file(s) with these control numbers went elsewhere "
                 "(DEMOCH from BRIGHTHANDS, OTHERCH from KIDSTHRIVE)")
    assert first["unmatched"] == [
        f"GS06 {kids.gs06} / ST02 {kids.st02} (999 ISA13 000000071 from ISA06 OTHERCH01 / GS02 OTHERCHGS to "
        f"ISA08 BRIGHT01 / GS03 BRIGHT01): {elsewhere}"]
    assert second["unmatched"] == [
        f"GS06 {kids.gs06} / ST02 {kids.st02} (999 ISA13 000000073 from ISA06 STRANGER / GS02 STRANGER to "
        f"ISA08 KIDSTH01 / GS03 KIDSTH01): {elsewhere}"]
    assert (first["claims_rejected"], second["claims_rejected"]) == (0, 0)
    assert (third["status"], third["transaction_sets"], third["claims_rejected"]) == ("loaded", 2, len(kids.claim_ids))
    assert third["unmatched"] == [
        f"GS06 {kids.gs06} / ST02 4321 (999 ISA13 000000074 from ISA06 OTHERCH01 / GS02 OTHERCHGS to "
        "ISA08 KIDSTH01 / GS03 KIDSTH01): we sent no file with these control numbers"]
    assert statuses() == {**{cid: "batched" for cid in two_clearinghouses["DEMOCH"].claim_ids},
                          **{cid: "rejected" for cid in kids.claim_ids}}
    with session_scope() as s:
        inbound = {f.file_name: (f.status, f.message) for f in s.scalars(select(models.InboundFile))}
    assert inbound["misaddressed.999"] == ("loaded", f"unmatched {first['unmatched'][0]}; ")
    assert inbound["mixed.999"] == ("loaded", f"unmatched {third['unmatched'][0]}; ")
    for text in ("DOE", "ROE", "JANE", "1EG4TE5MK73", "2EG4TE5MK74"):  # ids and control numbers only
        assert not any(text in u for u in first["unmatched"] + second["unmatched"] + third["unmatched"])


def test_999_matches_the_envelope_the_file_was_sent_with_not_todays_configuration(two_clearinghouses, tmp_path,
                                                                                   monkeypatch):
    """OTHERCH changes its ISA/GS ids after our files went out: its 999 for the file sent under the old ids
    still rejects that file's claims, and a 999 from the new ids for the old file matches nothing."""
    kids = two_clearinghouses["OTHERCH"]
    root = tmp_path / "mappings-now"
    shutil.copytree(config.mappings_dir(), root)

    def new_ids(data):
        [other] = [c for c in data["clearinghouses"] if c["clearinghouse_id"] == "OTHERCH"]
        other.update(isa_receiver_id="OTHERCH02", gs_receiver_code="OTHERCHG2")
    _edit_yaml(root / "clearinghouses.yaml", new_ids)
    monkeypatch.setenv("OTEDI_MAPPINGS", str(root))
    with session_scope() as s:
        stored = s.scalar(select(models.ClaimFile).where(models.ClaimFile.file_name == kids.file_name))
        assert (stored.isa_receiver_id, stored.gs_receiver_code, stored.isa_sender_id) == \
            ("OTHERCH01", "OTHERCHGS", "KIDSTH01")

    new_sender = write(tmp_path, "new.999", ack_999([(kids.st02, [], "IK5*R*5")], kids.gs06, sender="OTHERCH02",
                                                    gs_sender="OTHERCHG2", receiver="KIDSTH01", control=75))
    old_sender = write(tmp_path, "old.999", _reply_from("OTHERCH", [(kids.st02, [], "IK5*R*5")], kids.gs06,
                                                        control=76))
    assert load(new_sender).summary()["claims_rejected"] == 0
    assert load(old_sender).summary()["claims_rejected"] == len(kids.claim_ids)
    assert statuses() == {**{cid: "batched" for cid in two_clearinghouses["DEMOCH"].claim_ids},
                          **{cid: "rejected" for cid in kids.claim_ids}}


# -- the wrong file -------------------------------------------------------------------------------------------

def test_an_835_is_refused_unrecorded_so_remit_post_still_posts_it(sent, tmp_path):
    era = write(tmp_path, "era.835", interchange([remittance([Clp(sent.claim_ids[0], services=[
        Svc("97530", D("120.00"), D("90.00"), [("CO", "45", D("30.00"))], units=2)])])], control=80))

    result = load(era)

    assert (result.kind, result.status, result.message) == (
        "835", "refused", "era.835: ST01 835 is not for `otedi acks load`; refused, nothing recorded: "
                          "load it with `otedi remit post`")
    assert row_counts() == {"inbound_file": 0, "ack_result": 0, "claim_status_event": 0}
    with session_scope() as s:
        posted = post_remittance_file(s, era).summary()
    assert (posted["status"], posted["claims_matched"]) == ("posted", 1)


def test_files_an_older_otedi_recorded_under_the_wrong_command_load_with_the_right_one(sent, tmp_path):
    """Before the refusal above, `remit post` given a 999 recorded it as a quarantined 835 and `acks load`
    given an 835 recorded it quarantined, so the right command later said "already loaded". A quarantined
    file loaded nothing: the right command now loads it, once."""
    from otedi.charges.load import file_sha256

    reject = write(tmp_path, "reject.999", ack_999([(sent.st02, [], "IK5*R*5")], sent.gs06))
    era = write(tmp_path, "era.835", interchange([remittance([Clp(sent.claim_ids[0], services=[
        Svc("97530", D("120.00"), D("90.00"), [("CO", "45", D("30.00"))], units=2)])])], control=81))
    with session_scope() as s:  # the rows an older otedi wrote
        s.add(models.InboundFile(file_name="reject.999", sha256=file_sha256(reject), size=1, kind="835",
                                 status="quarantined", message="not an 835"))
        s.add(models.InboundFile(file_name="era.835", sha256=file_sha256(era), size=1, kind="835",
                                 status="quarantined", message="not a 999 or 277CA (transaction set 835)"))

    assert load(reject).summary()["claims_rejected"] == len(sent.claim_ids)
    with session_scope() as s:
        posted = post_remittance_file(s, era).summary()
    assert (posted["status"], posted["claims_matched"]) == ("posted", 1)
    assert load(reject).status == "already_loaded"
    with session_scope() as s:
        assert post_remittance_file(s, era).status == "already_posted"
        rows = {f.file_name: (f.kind, f.status, f.message) for f in s.scalars(select(models.InboundFile))}
    assert rows == {"reject.999": ("999", "loaded", None), "era.835": ("835", "posted", None)}


# -- 277CA ----------------------------------------------------------------------------------------------------

def test_277ca_accepts_one_claim_rejects_another_and_lists_an_unknown_claim(sent, tmp_path):
    good, bad, untouched = sent.claim_ids[0], sent.claim_ids[2], sent.claim_ids[1]
    path = write(tmp_path, "ack.277", ack_277ca([(good, "A2:20", "PAYERICN001"), (bad, "A7:562:85", None),
                                                 ("OTNOTOURS0000000", "A2:20", "PAYERICN999")]))

    summary = load(path).summary()

    assert summary == {"file": "ack.277", "kind": "277", "status": "loaded", "message": None,
                       "transaction_sets": 0, "sets_rejected": 0, "claims_accepted": 1, "claims_rejected": 1,
                       "unmatched": ["OTNOTOURS0000000"]}
    assert statuses() == {good: "accepted", bad: "rejected", untouched: "batched", sent.claim_ids[3]: "batched"}
    with session_scope() as s:
        icns = dict(s.execute(select(models.Claim.claim_id, models.Claim.payer_icn)).all())
    assert icns == {good: "PAYERICN001", bad: None, untouched: None, sent.claim_ids[3]: None}
    got = {e.patient_control_number: (e.source, e.category_code, e.status_code, e.accepted, e.payer_claim_number,
                                      e.message, e.claim_pk is not None) for e in events()}
    assert got == {
        good: ("277CA", "A2", "20", True, "PAYERICN001",
               "277CA accepted: A2 acknowledged: accepted into the adjudication system; 20 accepted for processing",
               True),
        bad: ("277CA", "A7", "562", False, None,
              "277CA rejected: A7 acknowledged: rejected for invalid information; "
              "562 entity's National Provider Identifier (NPI) (billing provider)", True),
        "OTNOTOURS0000000": ("277CA", "A2", "20", True, "PAYERICN999",
                             "277CA accepted: A2 acknowledged: accepted into the adjudication system; "
                             "20 accepted for processing", False),
    }


def test_277ca_does_not_overwrite_a_claim_already_paid(sent, tmp_path):
    paid = sent.claim_ids[0]
    with session_scope() as s:
        s.scalar(select(models.Claim).where(models.Claim.claim_id == paid)).status = "paid"
    path = write(tmp_path, "late.277", ack_277ca([(paid, "A7:562:85", None)]))

    summary = load(path).summary()

    assert (summary["status"], summary["claims_rejected"], summary["unmatched"]) == ("loaded", 1, [])
    assert statuses()[paid] == "paid"
    [event] = events()
    assert (event.patient_control_number, event.source, event.category_code, event.status_code, event.accepted) == \
        (paid, "277CA", "A7", "562", False)
    assert event.claim_pk is not None


# -- once only, and unreadable files ------------------------------------------------------------------------

def test_loading_the_same_file_twice_adds_nothing(sent, tmp_path):
    text = ack_277ca([(sent.claim_ids[0], "A2:20", "PAYERICN001")])
    first = load(write(tmp_path, "ack.277", text))
    before = row_counts()
    again = load(write(tmp_path, "ack-copy.277", text))  # same content under another name

    assert first.status == "loaded" and first.claims_accepted == 1
    assert before == {"inbound_file": 1, "ack_result": 0, "claim_status_event": 1}
    assert again.summary() == {"file": "ack-copy.277", "kind": "277", "status": "already_loaded", "message": None,
                               "transaction_sets": 0, "sets_rejected": 0, "claims_accepted": 0,
                               "claims_rejected": 0, "unmatched": []}
    assert row_counts() == before


def test_a_truncated_999_is_quarantined_naming_the_segment(sent, tmp_path):
    whole = ack_999([(sent.st02, ["IK3*CLM*22*2300*8", "IK4*2*782*1"], "IK5*R*5")], sent.gs06)
    cut = whole[:whole.index("\nSE*") + 1]  # ends after AK9: no SE, GE or IEA
    path = write(tmp_path, "cut.999", cut)

    result = load(path)

    assert (result.kind, result.status) == ("999", "quarantined")
    assert result.message == "segment 3 (ST): file ends before SE: transaction set 0001 is not closed (truncated file?)"
    with session_scope() as s:
        inbound = [(f.file_name, f.status, f.message) for f in s.scalars(select(models.InboundFile))]
    assert inbound == [("cut.999", "quarantined", result.message)]
    assert row_counts() == {"inbound_file": 1, "ack_result": 0, "claim_status_event": 0}
    assert statuses() == {cid: "batched" for cid in sent.claim_ids}


def test_999_with_a_non_numeric_control_number_does_not_crash_the_load(sent, tmp_path):
    path = write(tmp_path, "odd.999", ack_999([(sent.st02, [], "IK5*A")], "ABC"))

    result = load(path)

    assert result.status in ("loaded", "quarantined")
    if result.status == "loaded":
        assert result.unmatched == [f"GS06 ABC / ST02 {sent.st02} (999 ISA13 000000071 from ISA06 DEMOCH / "
                                    "GS02 DEMOCH to ISA08 BRIGHT01 / GS03 BRIGHT01): not control numbers of ours"]
    else:
        assert "AK1" in result.message or "AK102" in result.message
    assert row_counts()["inbound_file"] == 1
    assert statuses() == {cid: "batched" for cid in sent.claim_ids}
