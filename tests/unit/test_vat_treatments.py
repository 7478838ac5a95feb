"""The VAT treatment decision table (koppel.domain.vat; docs/accounting.md)."""

from __future__ import annotations

import pytest

from koppel.domain.records import MappedOrder
from koppel.domain.vat import TreatmentCodes, TreatmentError, decide, vat_number_ok

CODES = TreatmentCodes(
    domestic={"21": "T21", "9": "T9", "0": "T0"}, intra_eu_b2b="ICP", export="EXP",
    exempt="EX", exempt_tax_names=("vrijgesteld",), oss={"DE": {"19": "DE19", "7": "DE7"}},
    names={"vat_treatments.intra_eu_b2b": "0% ICP"})


def order(country: str, rates=(21,), *, company: str | None = None, vat: str | None = None,
          is_company: bool = False, tax_name: str | None = None, ship_country: str | None = None):
    lines = [{"source_id": i, "sku": f"S{i}", "name": "x", "quantity": 1, "amount_excl": "10",
              "amount_incl": "10", "tax_rate": rate, "tax_name": tax_name}
             for i, rate in enumerate(rates, 1)]
    customer = {"email": "a@example.com", "company_name": company, "vat_number": vat,
                "bill_addr": {"country": country}}
    data = {"source_id": "1", "number": "1", "created_at": "2026-11-30T10:00:00+00:00",
            "customer": customer, "lines": lines, "total_excl": "10", "total_incl": "10",
            "is_company": is_company}
    if ship_country:
        data["ship_addr"] = {"country": ship_country}
    return MappedOrder.model_validate(data)


def test_domestic_sales_book_on_the_rates_codes():
    decision = decide(order("NL", (21, 9, 0)), CODES)
    assert decision.treatment == "domestic"
    assert decision.codes == {"21": "T21", "9": "T9", "0": "T0"} and decision.row_codes == {}


def test_intra_eu_business_with_a_vat_number_is_reverse_charged_on_the_icp_code():
    decision = decide(order("BE", (0,), company="Bakkerij De Zon: Gent", vat="BE 0123.456.789"),
                      CODES)
    assert decision.treatment == "intra_eu_b2b"
    assert decision.codes == {"0": "ICP"}
    # Greece's VAT numbers start with EL
    assert decide(order("GR", (0,), is_company=True, vat="EL123456789"), CODES).treatment == \
        "intra_eu_b2b"


def test_a_business_without_a_valid_vat_number_is_not_icp_and_says_why():
    decision = decide(order("BE", (0,), company="Bakkerij", vat="NL123456789B01"), CODES)
    assert decision.treatment == "domestic"
    assert "without a valid BE VAT number" in decision.reason


def test_exports_put_zero_rate_lines_on_the_export_code():
    decision = decide(order("NL", (0,), ship_country="CH"), CODES)
    assert decision.treatment == "export" and decision.codes["0"] == "EXP"
    assert decide(order("US", (0,)), CODES).codes["0"] == "EXP"
    # a taxed line of an export stays on its rate's code
    assert decide(order("GB", (21, 0)), CODES).codes["21"] == "T21"


def test_oss_sales_book_on_the_countrys_codes_and_a_missing_one_is_named():
    decision = decide(order("DE", (19, 7)), CODES)
    assert decision.treatment == "oss"
    assert decision.codes["19"] == "DE19" and decision.codes["7"] == "DE7"
    with pytest.raises(TreatmentError, match=r"OSS sale to FR at 20% needs a tax code: set "
                                             r"settings.vat_treatments.oss.FR.20"):
        decide(order("FR", (20,)), CODES)
    # an EU consumer taxed at the shop's own rates (under the OSS threshold) is domestic
    assert decide(order("BE", (21,)), CODES).treatment == "domestic"


def test_exempt_rows_are_told_by_the_shops_tax_name():
    decision = decide(order("NL", (21, 0), tax_name="Vrijgesteld van BTW"), CODES)
    assert decision.row_codes == {1: "EX"}


def test_a_treatment_whose_code_quickbooks_lacks_names_the_setting_and_the_code():
    codes = TreatmentCodes(domestic={"0": "T0"}, intra_eu_b2b=None,
                           names={"vat_treatments.intra_eu_b2b": "0% ICP"})
    with pytest.raises(TreatmentError, match=r"needs QuickBooks tax code '0% ICP' "
                                             r"\(settings.vat_treatments.intra_eu_b2b\)"):
        decide(order("DE", (0,), is_company=True, vat="DE123456789"), codes)


@pytest.mark.parametrize("number,country,ok", [
    ("BE0123456789", "BE", True), ("DE123456789", "DE", True), ("FR12345678901", "FR", True),
    ("NL123456789B01", "NL", True), ("DE12", "DE", True), ("BE0123456789", "DE", False),
    ("", "DE", False), (None, "BE", False), ("DE1", "DE", False)])
def test_vat_number_form(number, country, ok):
    assert vat_number_ok(number, country) is ok
