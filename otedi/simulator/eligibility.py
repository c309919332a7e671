"""Who is dual eligible: the simulated Medicare's stand-in for the states' dual-eligible files.

In the real world CMS's coordination of benefits contractor (COBA) receives each state's file of the
beneficiaries it covers as dual eligibles and crosses their Medicare claims over to that state's
Medicaid. The simulator has no state file; it reads the practices' own charge extracts instead (the
canonical layout of otedi/charges/record.py, or another layout through a column mapping, read by
otedi.charges.extract): a patient with a Medicare primary row (claim_filing_code MB, payer_sequence P)
and a Medicaid secondary row (claim_filing_code MC, payer_sequence S) is dual eligible. The result maps
the Medicare member id (the claim's 2010BA NM109) to the Medicaid payer id, name and member id.

Rows are not validated: a row with either member id empty is passed over. Member ids are never logged.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from otedi.charges.extract import read_extract
from otedi.simulator.model import Coverage

# An extract: its path (canonical layout), or (path, name of its column mapping in mappings/extracts/).
Extract = str | Path | tuple[str | Path, str | None]


def dual_eligibles(extracts: Iterable[Extract]) -> dict[str, Coverage]:
    """Medicare member id -> Medicaid coverage of every dual eligible patient in the extracts (a later
    extract's rows win)."""
    medicare: dict[tuple[str, str], str] = {}  # (practice, patient) -> Medicare member id
    medicaid: dict[tuple[str, str], Coverage] = {}
    for extract in extracts:
        path, mapping = extract if isinstance(extract, tuple) else (extract, None)
        frame = read_extract(path, mapping)
        filing = frame["claim_filing_code"].str.upper()
        sequence = frame["payer_sequence"].str.upper().replace("", "P")  # the canonical default is primary
        for row in frame[(filing == "MB") & (sequence == "P") & (frame["member_id"] != "")].itertuples():
            medicare[row.practice_id, row.patient_id] = row.member_id
        for row in frame[(filing == "MC") & (sequence == "S") & (frame["member_id"] != "")].itertuples():
            medicaid[row.practice_id, row.patient_id] = Coverage(row.payer_id, row.payer_name, row.member_id)
    return {member: medicaid[patient] for patient, member in medicare.items() if patient in medicaid}
