"""Rebuild sample_edi/webpt_style_sample.csv: one day of HANDWORKS charges from
synthesize(3000, 7), written the way a WebPT-style EHR exports them. Reading it
with mappings/extracts/webpt_style.yaml gives back the synthetic canonical rows
(dx codes keep their dots, and self-insured rows repeat the patient as insured).

    .venv/bin/python sample_edi/make_webpt_style_sample.py
"""

import csv
from datetime import date
from pathlib import Path

from otedi.charges.synth import synthesize

OUT = Path(__file__).with_name("webpt_style_sample.csv")
DAY = "2026-09-18"
SEX = {"F": "Female", "M": "Male", "U": "Unknown"}
RELATIONSHIP = {"18": "Self", "01": "Spouse", "19": "Child", "G8": "Other"}
PAYER_TYPE = {"MB": "Medicare", "MC": "Medicaid", "CI": "Commercial"}
CREDENTIALS = {"OT": "OTR/L", "OTA": "COTA/L", "PT": "DPT", "PTA": "PTA"}
HEADER = [
    "Clinic", "Charge ID", "DOS", "Patient Account #", "Patient Name", "DOB", "Gender", "Address", "City", "State",
    "Zip", "Insurance", "Payer ID", "Payer Type", "Policy #", "Group #", "Relation to Insured", "Insured Name",
    "Insured DOB", "Insured Gender", "Therapist", "Credentials", "Therapist NPI", "Referring Provider",
    "Referring NPI", "POS", "CPT Code", "Mod 1", "Mod 2", "Mod 3", "Mod 4", "Minutes", "Units", "Billed Amount",
    "Dx 1", "Dx 2", "Dx 3", "Dx 4", "Auth #", "Start of Care", "POC End",
]


def us_date(iso: str) -> str:
    if not iso:
        return ""
    d = date.fromisoformat(iso)
    return f"{d.month}/{d.day}/{d.year}"


def dotted(code: str) -> str:
    return code if len(code) <= 3 else f"{code[:3]}.{code[3:]}"


def export_row(r: dict) -> list[str]:
    self_insured = r["relationship"] == "18"
    insured = ("patient_last_name", "patient_first_name", "patient_dob", "patient_sex") if self_insured else (
        "subscriber_last_name", "subscriber_first_name", "subscriber_dob", "subscriber_sex")
    mods = (r["modifiers"].split(":") if r["modifiers"] else []) + [""] * 4
    dx = [dotted(c) for c in r["dx_codes"].split("|")] + [""] * 4
    return [
        "HANDWORKS THERAPY GROUP - CINCINNATI", r["charge_id"], us_date(r["service_date"]), r["patient_id"],
        f'{r["patient_last_name"]}, {r["patient_first_name"]}', us_date(r["patient_dob"]), SEX[r["patient_sex"]],
        r["patient_address1"], r["patient_city"], r["patient_state"], r["patient_zip"], r["payer_name"],
        r["payer_id"], PAYER_TYPE[r["claim_filing_code"]], r["member_id"], r["group_number"],
        RELATIONSHIP[r["relationship"]], f"{r[insured[0]]}, {r[insured[1]]}", us_date(r[insured[2]]),
        SEX[r[insured[3]]], f'{r["rendering_last_name"]}, {r["rendering_first_name"]}',
        CREDENTIALS[r["rendering_role"]], r["rendering_npi"],
        f'{r["referring_last_name"]}, {r["referring_first_name"]}',
        r["referring_npi"], r["place_of_service"], r["cpt"], *mods[:4], r["minutes"], r["units"], r["charge_amount"],
        *dx[:4], r["prior_auth_number"], us_date(r["initial_treatment_date"]),
        us_date(r["plan_of_care_certified_through"]),
    ]


def main() -> None:
    frame = synthesize(3000, 7)
    day = frame[(frame.practice_id == "HANDWORKS") & (frame.service_date == DAY)]
    with open(OUT, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        writer.writerows(export_row(r) for r in day.to_dict("records"))


if __name__ == "__main__":
    main()
