"""practices.yaml checks at load: street billing address, pay-to address, Medicare locality."""

import shutil

import pytest
import yaml

from otedi import config
from otedi.config import is_po_box
from otedi.errors import ConfigError


@pytest.fixture
def mappings(tmp_path, monkeypatch):
    """A private copy of mappings/ (config caches by mappings path, so each test gets its own)."""
    root = tmp_path / "mappings"
    shutil.copytree(config.mappings_dir(), root)
    monkeypatch.setenv("OTEDI_MAPPINGS", str(root))
    return root


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
