"""The secondary-claim layout (2320/2330A/2330B/2430), pinned byte for byte.

tests/fixtures/x12/otedi_837p_cob.837 was written by the writer as it stood before the issue-14 speed work
(commit 447224e); a faster writer must still write exactly these bytes. Regenerate it from cob_batch() only
when the layout is meant to change."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal as D
from pathlib import Path

from otedi.claims.model import Adjustment, LineAdjudication
from tests.test_x837p import write
from tests.test_x837p_cob import PAID_ON, PRIMARY, medicare_adjudication, secondary_claim

FIXTURE = Path(__file__).parent / "fixtures" / "x12" / "otedi_837p_cob.837"


def cob_batch():
    """Secondary claims with claim-level CAS, more than six reasons of one group, no patient responsibility,
    a dependent patient, and Medicare as the secondary (SBR05) after a commercial primary."""
    many = tuple(Adjustment("CO", str(code), D("1.00")) for code in (45, 253, 59, 97, 151, 16, 50))
    split = medicare_adjudication(paid=D("168.50"), lines=(LineAdjudication(1, D("133.00"), many, PAID_ON),
                                                           LineAdjudication(2, D("35.50"), (), PAID_ON)),
                                  patient_responsibility=None, payer_claim_number=None)
    claim_level = medicare_adjudication(paid=D("73.54"), adjustments=(Adjustment("CO", "45", D("5.00")),))
    dependent = secondary_claim(relationship="19", patient_first_name="Leo", subscriber_last_name="Rivera",
                                subscriber_first_name="Marco", group_number=None)
    commercial_first = replace(medicare_adjudication(), coverage=replace(
        PRIMARY, payer_id="87726", payer_name="UnitedHealthcare", claim_filing_code="CI", member_id="UHC9988776"))
    medicare_second = secondary_claim(commercial_first, payer_id="15202", payer_name="CGS Medicare Part B Ohio",
                                      claim_filing_code="MB", member_id="1EG4TE5MK73", msp_type="47")
    return [secondary_claim(), secondary_claim(claim_level), secondary_claim(split), dependent, medicare_second]


def test_secondary_claims_are_written_exactly_as_pinned():
    text, stats = write(cob_batch())
    assert stats.claims == 5
    assert text == FIXTURE.read_text(encoding="ascii")
