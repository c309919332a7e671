"""practices.yaml checks at load: street billing address, pay-to address, Medicare locality."""


import pytest
import yaml

from otedi import config
from otedi.config import is_po_box
from otedi.errors import ConfigError


def edit_practice(root, practice_id, **changes):
    path = root / "practices.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    [entry] = [p for p in data["practices"] if p["practice_id"] == practice_id]
    for k, v in changes.items():
        if v is None:
            entry.pop(k, None)
        else:
            entry[k] = v
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def test_shipped_practices_have_street_addresses_and_the_ohio_locality():
    practices = config.practices()
    assert {p.medicare_locality for p in practices.values()} == {"15202-00"}
    assert all(not is_po_box(p.address1) and not p.has_pay_to_address for p in practices.values())


@pytest.mark.parametrize("address", [
    "P.O. Box 1234", "PO BOX 1234", "po box 12", "P O Box 7", "POBOX 9", "POB 44", "P.O.B. 44",
    "Post Office Box 55", "Lock Box 77", "LOCKBOX 10", "BOX 123", "Box #12", "100 MAIN ST, PO BOX 3"])
def test_po_box_spellings(address):
    assert is_po_box(address)


@pytest.mark.parametrize("address", [
    "100 BOXWOOD LANE", "100 MAIN STREET", "2200 OAK AVENUE SUITE 3", "12 POBLANO WAY",
    "5 BOX ELDER CT", "1 POST OFFICE SQUARE", "300 POPLAR BLVD"])
def test_street_addresses_are_not_po_boxes(address):
    assert not is_po_box(address)


def test_po_box_billing_address_is_refused(mappings):
    edit_practice(mappings, "KIDSTHRIVE", address1="P.O. Box 1234")
    with pytest.raises(ConfigError) as exc:
        config.practices()
    message = str(exc.value)
    assert message.startswith("practices.yaml practice KIDSTHRIVE: address1 is a PO box; 2010AA (billing provider) "
                              "needs the street address where the practice is; put the PO box in pay_to_address1/")
    assert "(2010AB pay-to address)" in message


def test_po_box_goes_in_the_pay_to_address(mappings):
    edit_practice(mappings, "KIDSTHRIVE", pay_to_address1="PO BOX 1234", pay_to_city="DAYTON",
                  pay_to_state="OH", pay_to_zip="454011234")
    p = config.practice("KIDSTHRIVE")
    assert p.has_pay_to_address and (p.pay_to_address1, p.pay_to_city, p.pay_to_state, p.pay_to_zip) == (
        "PO BOX 1234", "DAYTON", "OH", "454011234")
    assert p.address1 == "2200 OAK AVENUE SUITE 3"
    assert not config.practice("BRIGHTHANDS").has_pay_to_address


def test_pay_to_address_needs_all_four_fields(mappings):
    edit_practice(mappings, "HANDWORKS", pay_to_address1="PO BOX 9", pay_to_city="CINCINNATI")
    with pytest.raises(ConfigError, match=r"practice HANDWORKS: .*missing \['pay_to_state', 'pay_to_zip'\]"):
        config.practices()


def test_unknown_medicare_locality_is_refused(mappings):
    edit_practice(mappings, "BRIGHTHANDS", medicare_locality="15202-01")
    with pytest.raises(ConfigError) as exc:
        config.practices()
    message = str(exc.value)
    assert "practices.yaml practice BRIGHTHANDS" in message and "'15202-01'" in message
    assert "fees/gpci_2026.csv" in message and "'15202-00'" in message and "'13202-01'" in message


def test_medicare_locality_is_optional(mappings):
    edit_practice(mappings, "BRIGHTHANDS", medicare_locality=None)
    assert config.practice("BRIGHTHANDS").medicare_locality is None
    assert config.practice("HANDWORKS").medicare_locality == "15202-00"


# -- pydantic validation of practices.yaml and clearinghouses.yaml: the file, the entry, the key, what is allowed

def edit_entry(root, file, key, entry_id, **changes):
    path = root / file
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    [entry] = [e for e in data[key] if e[f"{key[:-1]}_id"] == entry_id]
    for k, v in changes.items():
        if v is None:
            entry.pop(k, None)
        else:
            entry[k] = v
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def config_error(load) -> str:
    with pytest.raises(ConfigError) as exc:
        load()
    message = str(exc.value)
    assert "\n" not in message  # one line, as the CLI prints it
    return message


def test_every_shipped_configuration_file_is_valid():
    from otedi.coding.payers import _profiles

    assert sorted(config.practices()) == ["BRIGHTHANDS", "HANDWORKS", "KIDSTHRIVE"]
    assert sorted(config.clearinghouses()) == ["DEMOCH"]
    assert len(_profiles(str(config.mappings_dir()))) == len(list((config.mappings_dir() / "payers").glob("*.yaml")))


def test_the_models_have_the_fields_of_the_dataclasses():
    from dataclasses import fields

    assert list(config.PracticeConfig.model_fields) == [f.name for f in fields(config.Practice)]
    assert list(config.ClearinghouseConfig.model_fields) == [f.name for f in fields(config.Clearinghouse)]


def test_unknown_practice_key_names_the_file_entry_key_and_the_allowed_keys(mappings):
    edit_practice(mappings, "KIDSTHRIVE", address1=None, adress1="2200 OAK AVENUE SUITE 3")
    message = config_error(config.practices)
    assert message.startswith(f"{mappings / 'practices.yaml'}: practice KIDSTHRIVE (entry 2): ")
    assert "unknown key 'adress1' (did you mean 'address1'?); allowed keys: practice_id, name, npi, ein, " in message
    assert "required key 'address1' is missing: the street address (never a PO box)" in message


def test_missing_practice_key(mappings):
    edit_practice(mappings, "HANDWORKS", submitter_id=None)
    assert config_error(config.practices) == (
        f"{mappings / 'practices.yaml'}: practice HANDWORKS (entry 3): required key 'submitter_id' is missing: "
        "ISA06/GS02/1000A NM109 at the clearinghouse")


def test_wrong_type_of_practice_value(mappings):
    edit_practice(mappings, "BRIGHTHANDS", name=["BRIGHT HANDS", "OT"])
    assert config_error(config.practices).endswith(
        "practice BRIGHTHANDS (entry 1): key 'name': ['BRIGHT HANDS', 'OT'] is not text")


def test_unquoted_zip_that_lost_its_digits_says_to_quote_it(mappings):
    edit_practice(mappings, "BRIGHTHANDS", zip=43215)
    assert config_error(config.practices).endswith(
        "practice BRIGHTHANDS (entry 1): key 'zip': 43215 is not a 9-digit ZIP+4 without a dash (2010AA N403 needs "
        "all nine digits) (quote it: YAML reads an unquoted number as a number and drops its leading zeros, 01 as 1)")


@pytest.mark.parametrize("key, value, allowed", [
    ("state", "Ohio", "is not a US state, DC, territory or military code (two capital letters, e.g. OH)"),
    ("time_zone", "Eastern", "is not an IANA time zone name (e.g. America/New_York, America/Chicago)"),
    ("npi", "1234567890", "fails the NPI check digit, so it is mistyped; copy the NPI from the NPPES registry"),
    ("taxonomy", "225X", "is not allowed; write a NUCC taxonomy code: 10 capital letters and digits ending in X, "
                         "e.g. 225X00000X (2000A PRV03)"),
    ("medicare_locality", "15202", "is not allowed; write the Medicare locality as \"<mac>-<locality>\", "
                                   "e.g. \"15202-00\" (fees/gpci_*.csv)"),
])
def test_practice_value_not_allowed(mappings, key, value, allowed):
    edit_practice(mappings, "BRIGHTHANDS", **{key: value})
    assert config_error(config.practices) == (
        f"{mappings / 'practices.yaml'}: practice BRIGHTHANDS (entry 1): key {key!r}: {value!r} {allowed}")


def test_a_practice_configured_twice_is_refused(mappings):
    path = mappings / "practices.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["practices"].append(dict(data["practices"][0]))
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    assert config_error(config.practices) == (
        f"{path}: practice_id 'BRIGHTHANDS' is configured twice (entries 1 and 4); keep one")


def test_unknown_top_level_key(mappings):
    path = mappings / "practices.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("practices:\n", "practice:\n"), encoding="utf-8")
    assert config_error(config.practices) == (
        f"{path}: required key 'practices' is missing: one entry per practice; "
        "unknown key 'practice' (did you mean 'practices'?); allowed keys: source, practices")


@pytest.mark.parametrize("change, problem", [
    ({"max_claim_per_file": 100}, "unknown key 'max_claim_per_file' (did you mean 'max_claims_per_file'?); "
                                  "allowed keys: clearinghouse_id, name, isa_receiver_qualifier, isa_receiver_id, "
                                  "gs_receiver_code, receiver_name, receiver_id, isa_sender_qualifier, "
                                  "usage_indicator, max_claims_per_file"),
    ({"receiver_id": None}, "required key 'receiver_id' is missing: 1000B NM109"),
    ({"max_claims_per_file": "5k"}, "key 'max_claims_per_file': '5k' is not a whole number"),
    ({"max_claims_per_file": 0}, "key 'max_claims_per_file': 0 is not allowed; use a value at least 1"),
    ({"usage_indicator": "Test"}, "key 'usage_indicator': 'Test' is not allowed; use 'T' or 'P'"),
    ({"isa_receiver_qualifier": 1}, "key 'isa_receiver_qualifier': 1 is not allowed; use '01', '14', '20', '27', "
                                    "'28', '29', '30', '33' or 'ZZ' (quote it: YAML reads an unquoted number as a "
                                    "number and drops its leading zeros, 01 as 1)"),
    ({"isa_receiver_id": "DEMO-CLEARINGHOUSE"}, "key 'isa_receiver_id': 'DEMO-CLEARINGHOUSE' is longer than 15 "
                                                "characters (ISA08 holds 15 characters)"),
])
def test_clearinghouse_typo(mappings, change, problem):
    edit_entry(mappings, "clearinghouses.yaml", "clearinghouses", "DEMOCH", **change)
    assert config_error(config.clearinghouses) == (
        f"{mappings / 'clearinghouses.yaml'}: clearinghouse DEMOCH (entry 1): {problem}")


def test_numbers_written_for_ids_are_read_as_text(mappings):
    edit_entry(mappings, "clearinghouses.yaml", "clearinghouses", "DEMOCH", isa_receiver_id=123456789)
    assert config.clearinghouse("DEMOCH").isa_receiver_id == "123456789"
    assert config.clearinghouse("DEMOCH").max_claims_per_file == 5000
