"""999 and 277CA acknowledgments: the shared imsweb samples and synthetic
fixtures with IK3/IK4 detail, line-level and provider-level 277CA statuses."""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from otedi.errors import X12Error
from otedi.x12.x277ca import ClaimStatus, ProviderStatus, StatusCode, iter_277ca
from otedi.x12.x999 import iter_999

INBOUND = Path(__file__).parent / "fixtures" / "inbound"


# -- 999 -----------------------------------------------------------------------


def test_999_accepted_sample_has_a_mismatched_iea02():
    with pytest.raises(X12Error, match=r"segment 10 \(IEA\): IEA02 '000000001' does not match ISA13 '000000286'"):
        list(iter_999(INBOUND / "imsweb_x12_999_accepted.txt"))
    [ack] = iter_999(INBOUND / "imsweb_x12_999_accepted.txt", strict=False)
    [group] = ack.groups
    assert (group.functional_id, group.control_number, group.version) == ("HC", "17456", "005010X223A2")
    assert (group.status, group.status_text, group.included, group.received, group.accepted_count) == (
        "A", "accepted", 1, 1, 1)
    [response] = group.transaction_sets
    assert (response.transaction_set_id, response.control_number, response.convention) == ("837", "0001", "005010X223A2")
    assert response.accepted and response.status_text == "accepted" and response.segment_errors == []


def test_999_rejected_sample_with_pipe_component_separator():
    [ack] = iter_999(INBOUND / "imsweb_x12_999_rejected.txt")
    assert ack.envelope.interchange.delimiters.component == "|" and ack.envelope.group.control_number == "95832987"
    [group] = ack.groups
    assert (group.control_number, group.status, group.accepted_count) == ("28", "R", 0)
    [response] = group.transaction_sets
    assert response.control_number == "0028" and not response.accepted
    assert (response.status_text, response.error_codes, response.error_texts) == (
        "rejected", ["5"], ["one or more segments in error"])
    [error] = response.segment_errors
    assert (error.segment_id, error.position, error.loop_id, error.code, error.description) == (
        "NM", 17, "", "1", "unrecognized segment id")


def test_999_partial_acceptance_with_ik4_detail():
    [ack] = iter_999(INBOUND / "otedi_999_partial.999")
    [group] = ack.groups
    assert (group.status, group.status_text, group.included, group.accepted_count) == (
        "P", "partially accepted, at least one transaction set was rejected", 3, 2)
    rejected, noted, clean = group.transaction_sets
    assert (rejected.status, rejected.error_texts) == ("R", ["implementation one or more segments in error"])
    nm1, sv1 = rejected.segment_errors
    assert (nm1.segment_id, nm1.position, nm1.loop_id, nm1.description) == (
        "NM1", 24, "2010BA", "segment has data element errors")
    assert [(e.element_position, e.component_position, e.element_reference, e.description)
            for e in nm1.element_errors] == [(9, None, "67", "invalid code value")]
    assert [(e.element_position, e.component_position, e.code, e.description, e.bad_value)
            for e in sv1.element_errors] == [(1, 2, "7", "invalid code value", "97999"),
                                             (4, None, "1", "required data element missing", "")]
    assert "97999" not in repr(sv1)  # IK404 echoes claim data: kept out of repr
    assert noted.accepted and noted.status_text == "accepted, but errors were noted"
    assert noted.segment_errors[0].description == "implementation 'not used' segment present"
    assert clean.accepted and clean.segment_errors == []


def test_999_structure_errors():
    text = (INBOUND / "otedi_999_partial.999").read_text()
    with pytest.raises(X12Error, match=r"\(IK4\): IK4 outside an IK3 segment error"):
        list(iter_999(io.BytesIO(text.replace("IK3*NM1*24*2010BA*8~\n", "").replace("SE*16", "SE*15").encode())))
    with pytest.raises(X12Error, match=r"\(IK3\): IK302 is not a whole number"):
        list(iter_999(io.BytesIO(text.replace("IK3*NM1*24*", "IK3*NM1*X*").encode())))
    with pytest.raises(X12Error, match=r"transaction set '277' is not a 999"):
        list(iter_999(INBOUND / "imsweb_x12_277CA_accepted.txt"))


# -- 277CA ---------------------------------------------------------------------


def test_277ca_accepted_sample():
    [claim] = iter_277ca(INBOUND / "imsweb_x12_277CA_accepted.txt")
    assert isinstance(claim, ClaimStatus)
    assert (claim.patient_control_number, claim.payer_claim_control_number, claim.billing_provider_id) == (
        "5781", "1107000000014420", "1234567890")
    [status] = claim.statuses
    assert status.codes == (StatusCode("A2", "20", ""),)
    assert (status.effective_date, status.action, status.amount) == (date(2011, 3, 11), "WQ", Decimal("125"))
    assert claim.accepted and not claim.rejected
    assert status.codes[0].category_text == "acknowledged: accepted into the adjudication system"


def test_277ca_rejected_sample_one_line_pipe_separator():
    [claim] = iter_277ca(INBOUND / "imsweb_x12_277CA_rejected.txt")
    assert claim.patient_control_number == "3920394930203" and claim.rejected and not claim.accepted
    [code] = claim.statuses[0].codes
    assert (code.category, code.status, code.entity) == ("A7", "562", "85")
    assert code.text == ("A7 acknowledged: rejected for invalid information; "
                         "562 entity's National Provider Identifier (NPI) (billing provider)")
    assert claim.service_start == date(2009, 3, 11) == claim.service_end


def test_277ca_lines_dates_traces_and_provider_level_rejection():
    accepted, rejected, provider = iter_277ca(INBOUND / "otedi_277ca_mixed.277")
    assert accepted.accepted and accepted.clearinghouse_trace_number == "CH8001"
    assert (accepted.service_start, accepted.service_end) == (date(2026, 7, 1), date(2026, 7, 3))
    assert rejected.rejected and [(c.category, c.status, c.entity) for c in rejected.statuses[0].codes] == [
        ("A7", "21", "85"), ("A7", "562", "85")]
    assert rejected.statuses[0].action == "U" and rejected.statuses[0].amount == Decimal("280.00")
    first, second = rejected.lines
    assert (first.procedure, first.modifiers, first.charge, first.units, first.line_control_number) == (
        "97530", ("GO",), Decimal("160.00"), Decimal("2"), "OT-8002-1")
    assert first.rejected and first.statuses[0].codes[0].status_text == "procedure code for services rendered"
    assert not second.rejected and second.statuses[0].codes[0].category_text.startswith("acknowledged: received")
    assert isinstance(provider, ProviderStatus) and provider.provider_id == "1987654326" and provider.rejected
    assert provider.statuses[0].codes[0].text == (
        "A3 acknowledged: returned as unprocessable claim; 24 entity not approved as an electronic submitter "
        "(billing provider)")
    assert "RIVERA" not in repr(accepted) and "2026, 7, 1)" not in repr(accepted)


def test_277ca_claim_segment_before_trn_is_refused():
    text = (INBOUND / "otedi_277ca_mixed.277").read_text().replace("TRN*2*OT-8001~\n", "").replace("SE*44", "SE*43")
    with pytest.raises(X12Error, match=r"\(STC\): STC of loop 2200D before its TRN"):
        list(iter_277ca(io.BytesIO(text.encode())))
