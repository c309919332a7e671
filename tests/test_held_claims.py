"""A biller's actions on held claims (issue 12): review, release (with modifiers and units a person
attests to) into the next batch, void; each audited, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal as D

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DatabaseError

from otedi import cli
from otedi.actions.audit import ActionError
from otedi.actions.held_claims import release, review, void
from otedi.claims.batch import write_ready_claims
from otedi.outbound import run_outbound
from otedi.warehouse import models
from otedi.warehouse.db import session_scope
from otedi.x12.validate import validate_file
from tests.factories import charge, write_charges_csv

TODAY = date(2026, 3, 20)


@pytest.fixture
def held(warehouse, tmp_path) -> str:
    """One claim held because its plan of care is not signed; another ready beside it."""
    extract = tmp_path / "charges.csv"
    write_charges_csv(extract, [
        charge(charge_id="R1"),
        charge(charge_id="H1", patient_id="P200", patient_last_name="ROE", member_id="2EG4TE5MK74",
               plan_of_care_signed_date=None),
    ])
    run_outbound(extract, tmp_path / "night1", today=TODAY)
    with session_scope() as s:
        [claim_id] = s.scalars(select(models.Claim.claim_id).where(models.Claim.status == "held"))
    return claim_id


def claim(claim_id: str) -> models.Claim:
    with session_scope() as s:
        row = s.scalar(select(models.Claim).where(models.Claim.claim_id == claim_id))
        row.lines  # noqa: B018 - loaded before the session closes
        return row


def audit_rows() -> list[models.AuditEvent]:
    with session_scope() as s:
        return list(s.scalars(select(models.AuditEvent).order_by(models.AuditEvent.id)))


def test_review_shows_the_lines_and_the_rule_that_held_the_claim(held):
    with session_scope() as s:
        r = review(s, held)
    assert (r.status, r.total_charge, len(r.lines)) == ("held", D("120.00"), 1)
    assert r.lines[0]["cpt"] == "97530" and r.lines[0]["units"] == 2
    assert any(i["rule"] == "plan-of-care" and i["severity"] == "hold" for i in r.issues)


def test_release_with_a_modifier_and_units_goes_out_in_the_next_batch_and_is_audited(held, tmp_path):
    with session_scope() as s:
        changes = release(s, held, who="biller1", note="POC signed 2026-02-20, scanned in; 3 units documented",
                          add_modifiers={1: ["59"]}, units={1: 3})
    line = claim(held).lines[0]
    assert (line.modifiers, line.units, line.charge_amount) == ("GO:59", 3, D("180.00"))  # 120 / 2 units x 3
    assert (claim(held).status, claim(held).total_charge) == ("ready", D("180.00"))
    [event] = audit_rows()
    assert (event.actor, event.action, event.subject) == ("biller1", "claim_release", f"claim:{held}")
    assert json.loads(event.changes) == json.loads(json.dumps(changes, default=str)) and "POC signed" in event.note

    with session_scope() as s:
        [written] = write_ready_claims(s, tmp_path / "night2")
    assert written.status == "ready" and claim(held).status == "batched"
    assert validate_file(written.path).ok
    body = open(written.path, encoding="ascii").read()
    assert f"CLM*{held}*180" in body and "SV1*HC:97530:GO:59*180*UN*3" in body


@pytest.mark.parametrize("kwargs, why", [
    ({"add_modifiers": {1: ["GP"]}}, "cannot be added"),
    ({"add_modifiers": {2: ["59"]}}, "no line 2"),
    ({"units": {1: 0}}, "units must be 1 to 99"),
    ({"note": "  "}, "say why"),
    ({"add_modifiers": {1: ["59", "XU", "KX", "76"]}}, "would carry 5 modifiers"),
])
def test_a_release_that_is_not_allowed_changes_nothing(held, kwargs, why):
    args = {"who": "biller1", "note": "reviewed", **kwargs}
    with pytest.raises(ActionError, match=why):
        with session_scope() as s:
            release(s, held, **args)
    assert claim(held).status == "held" and claim(held).lines[0].modifiers == "GO" and audit_rows() == []


def test_void_drops_the_claim_and_a_second_action_is_refused(held, tmp_path):
    with session_scope() as s:
        void(s, held, who="biller2", note="duplicate of a claim billed by hand")
    assert claim(held).status == "voided"
    with pytest.raises(ActionError, match="is voided, not held"):
        with session_scope() as s:
            release(s, held, who="biller1", note="changed my mind")
    with session_scope() as s:
        assert write_ready_claims(s, tmp_path / "night2") == []  # the ready one went out the first night
    assert [e.action for e in audit_rows()] == ["claim_void"]


def test_the_audit_trail_is_append_only(held):
    with session_scope() as s:
        release(s, held, who="biller1", note="reviewed")
    for statement in ("update audit_event set note = 'rewritten'", "delete from audit_event"):
        with pytest.raises(DatabaseError, match="append-only"):
            with session_scope() as s:
                s.execute(text(statement))
    assert [e.note for e in audit_rows()] == ["reviewed"]


def test_the_cli_releases_and_reviews_with_the_actions_listed(held, capsys):
    assert cli.main(["claims", "release", held, "--note", "signature on file", "--add-modifier", "1:xu",
                     "--by", "biller3"]) == 0
    assert cli.main(["claims", "review", held, "--json"]) == 0
    out = capsys.readouterr().out
    shown = json.loads(out[out.index("{"):])
    assert shown["status"] == "ready" and shown["lines"][0]["modifiers"] == "GO:XU"
    assert [(a["by"], a["action"], a["note"]) for a in shown["actions"]] == \
        [("biller3", "claim_release", "signature on file")]
    assert cli.main(["claims", "release", held, "--note", "again", "--by", "biller3"]) == 2  # not held any more
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(models.AuditEvent)) == 1
