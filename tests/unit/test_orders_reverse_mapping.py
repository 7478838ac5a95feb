"""QuickBooks documents through the shipped ``orders_reverse`` mapping into reverse orders
(the pure part of the QuickBooks → Lightspeed flow)."""

from __future__ import annotations

import json

import pytest

from koppel.flows import orders_reverse_mapping as rm
from koppel.flows.base import RecordError
from koppel.mapping import Mapper
from koppel.mapping.defaults import PACKAGED_DEFAULT_MAPPING

DEFAULT = json.loads(PACKAGED_DEFAULT_MAPPING.read_text(encoding="utf-8"))
ITEMS = {"7": {"Id": "7", "Name": "Mok blauw", "Sku": " MOK-1 "},
         "9": {"Id": "9", "Name": "Verzending", "Sku": ""}}
CUSTOMER = {"Id": "58", "DisplayName": "Krakeling BV", "CompanyName": "Krakeling  BV",
            "GivenName": "Anna", "FamilyName": "Bakker",
            "PrimaryEmailAddr": {"Address": "Anna@Krakeling.nl"},
            "PrimaryPhone": {"FreeFormNumber": " 030 123 4567 "},
            "BillAddr": {"Line1": "Oudegracht 200 bis", "City": "Utrecht",
                         "PostalCode": "3511 nb", "Country": "Netherlands"}}


def _line(item_id, qty, price, amount=None):
    return {"DetailType": "SalesItemLineDetail", "Amount": amount or str(qty * float(price)),
            "SalesItemLineDetail": {"ItemRef": {"value": item_id}, "Qty": qty,
                                    "UnitPrice": price}}


def _doc(**extra):
    return {"Id": "31", "DocNumber": "1042", "TxnDate": "2026-11-02", "TotalAmt": "29.95",
            "CurrencyRef": {"value": "eur"}, "CustomerRef": {"value": "58"},
            "PaymentMethodRef": {"value": "3", "name": " iDEAL "},
            "Line": [_line("7", 2, "12.50", "25.00"), _line("9", 1, "4.95", "4.95"),
                     {"DetailType": "SubTotalLineDetail", "Amount": "29.95"}], **extra}


def _reverse(doc, mapping=None, customer=CUSTOMER, default_email=None, entity="SalesReceipt"):
    mapper = Mapper("orders_reverse", mapping or DEFAULT["orders_reverse"])
    mapped = mapper.map(rm.mapping_source(doc, customer=customer, items=ITEMS,
                                          shipping_item="Verzending"))
    assert mapped.errors == []
    return rm.reverse_order(entity, doc, mapped.values, customer=customer, items=ITEMS,
                            shipping_item="Verzending", default_email=default_email)


def test_default_mapping_makes_a_checkout_ready_order():
    order = _reverse(_doc(BillEmail={"Address": "Boekhouding@Krakeling.nl"}))
    assert order["doc_number"] == "1042" and order["currency"] == "EUR"
    assert order["payment_method"] == "iDEAL" and order["payment_status"] == "paid"
    # the document's billing e-mail first, lower case; the company name tidied
    assert order["customer"] == {"qbo_id": "58", "email": "boekhouding@krakeling.nl",
                                 "company_name": "Krakeling BV", "given_name": "Anna",
                                 "family_name": "Bakker", "phone": "030 123 4567"}
    # no address on the document: the customer's, split as Lightspeed keeps it
    assert order["bill_addr"] == {"address1": "Oudegracht", "number": "200",
                                  "extension": "bis", "address2": "", "zipcode": "3511 NB",
                                  "city": "Utrecht", "region": "", "country": "nl"}
    assert order["ship_addr"] is None
    # the shipping item's line is shipping, the sub-total nothing, the product a row
    assert order["shipping"] == "4.95"
    assert order["lines"] == [{"index": 0, "item_id": "7", "sku": "MOK-1", "name": "Mok blauw",
                               "quantity": 2, "unit_price": "12.50", "amount": "25.00"}]


def test_document_address_wins_over_the_customer_and_mapping_overrides_apply():
    mapping = {**DEFAULT["orders_reverse"],
               "customer.email": {"path": "_customer.PrimaryEmailAddr.Address",
                                  "transforms": ["email"]},
               "customer.phone": None,
               "lines": {"each": "_lines", "fields": {
                   **DEFAULT["orders_reverse"]["lines"]["fields"],
                   "name": {"const": "Webshop article"}}}}
    mapping = {k: v for k, v in mapping.items() if v is not None}
    order = _reverse(_doc(BillEmail={"Address": "boekhouding@krakeling.nl"},
                          ShipAddr={"Line1": "Dorpsstraat 12a", "City": "Zeist",
                                    "PostalCode": "3701AB", "Country": "NLD"}), mapping)
    assert order["customer"]["email"] == "anna@krakeling.nl"
    assert order["customer"]["phone"] == ""
    assert order["lines"][0]["name"] == "Webshop article"
    assert order["ship_addr"]["address1"] == "Dorpsstraat"
    assert (order["ship_addr"]["number"], order["ship_addr"]["extension"]) == ("12", "a")
    assert order["ship_addr"]["country"] == "nl"


def test_names_fall_back_to_the_display_name_and_email_to_the_tenant_default():
    customer = {"Id": "60", "DisplayName": "Piet de Vries"}
    order = _reverse(_doc(), customer=customer, default_email="orders@shop.nl")
    assert order["customer"]["given_name"] == "Piet"
    assert order["customer"]["family_name"] == "de Vries"
    assert order["customer"]["email"] == "orders@shop.nl"
    with pytest.raises(RecordError) as err:
        _reverse(_doc(), customer=customer)
    assert err.value.field == "customer.email"


def test_invoice_payment_status_follows_the_balance_and_bad_quantities_fail():
    assert _reverse(_doc(Balance="29.95"), entity="Invoice")["payment_status"] == "not_paid"
    assert _reverse(_doc(Balance="10.00"), entity="Invoice")["payment_status"] == "partially_paid"
    assert _reverse(_doc(Balance="0"), entity="Invoice")["payment_status"] == "paid"
    with pytest.raises(RecordError) as err:
        _reverse(_doc(Line=[_line("7", 1.5, "10.00", "15.00")]))
    assert err.value.field == "Line[0].Qty"


def test_a_voided_document_keeps_no_rows_and_needs_no_customer():
    voided = _doc(PrivateNote="Voided", TotalAmt="0",
                  Line=[_line("7", 0, "0", "0"), _line("9", 0, "0", "0")])
    order = _reverse(voided, customer={})
    assert order["voided"] and order["payment_status"] == "cancelled"
    assert order["lines"] == [] and order["customer"] is None


def test_unknown_country_is_a_field_error():
    mapper = Mapper("orders_reverse", DEFAULT["orders_reverse"])
    doc = _doc(BillAddr={"Line1": "Main St 1", "City": "X", "Country": "Atlantis"})
    mapped = mapper.map(rm.mapping_source(doc, customer=CUSTOMER, items=ITEMS,
                                          shipping_item="Verzending"))
    assert [e.field for e in mapped.errors] == ["bill_addr.country"]


# -- the document's money, as the Lightspeed order must carry it -------------------------

FEE_ITEMS = {**ITEMS, "11": {"Id": "11", "Name": "Betaalkosten", "Sku": ""}}


def _gross_line(item_id, qty, net, gross, code="1"):
    return {"DetailType": "SalesItemLineDetail", "Amount": net,
            "SalesItemLineDetail": {"ItemRef": {"value": item_id}, "Qty": qty,
                                    "TaxInclusiveAmt": gross, "TaxCodeRef": {"value": code}}}


def _money_doc(mode="TaxInclusive"):
    """Mok 2 × 12.50 incl. 21 % (net 20.66), shipping 4.95 (net 4.09), fee 0.29 (net 0.24)."""
    return {"Id": "32", "DocNumber": "1043", "TotalAmt": "30.24",
            "GlobalTaxCalculation": mode, "CustomerRef": {"value": "58"},
            "Line": [_gross_line("7", 2, "20.66", "25.00"), _gross_line("9", 1, "4.09", "4.95"),
                     _gross_line("11", 1, "0.24", "0.29")],
            "TxnTaxDetail": {"TotalTax": "5.25", "TaxLine": [
                {"Amount": "5.25", "DetailType": "TaxLineDetail",
                 "TaxLineDetail": {"TaxPercent": 21, "NetAmountTaxable": "24.99"}},
                {"Amount": "0", "DetailType": "TaxLineDetail",
                 "TaxLineDetail": {"TaxPercent": 9, "NetAmountTaxable": "0"}}]}}


def _money_order(doc, notify=False):
    mapper = Mapper("orders_reverse", DEFAULT["orders_reverse"])
    mapped = mapper.map(rm.mapping_source(doc, customer=CUSTOMER, items=FEE_ITEMS,
                                          shipping_item="Verzending", fee_item="Betaalkosten"))
    return rm.reverse_order("SalesReceipt", doc, mapped.values, customer=CUSTOMER,
                            items=FEE_ITEMS, shipping_item="Verzending", default_email=None,
                            fee_item="Betaalkosten", notify=notify)


def test_tax_inclusive_document_is_checked_on_its_gross_amounts():
    from decimal import Decimal as D

    order = _money_order(_money_doc())
    assert order["basis"] == "incl"
    assert [(line["sku"], line["amount"], line["gross"]) for line in order["lines"]] == [
        ("MOK-1", "20.66", "25.00")]
    assert (order["shipping"], order["fees"]) == ("4.09", "0.24")  # QuickBooks' net amounts
    assert order["charges"] == {"shipping": "4.95", "fees": "0.29"}
    assert order["vat"] == {"21": "5.25"}  # the 0.00 line of 9 % is no VAT to check
    figures = rm.document_figures(order, ["MOK-1-BLAUW"])
    assert figures.rows == (("MOK-1-BLAUW", 2, D("25.00")),)
    assert (figures.shipping, figures.fees, figures.discount) == (D("4.95"), D("0.29"), D("0"))
    assert (figures.total, dict(figures.vat), figures.basis) == (D("30.24"), {"21": D("5.25")},
                                                                 "incl")


def test_tax_excluded_document_and_lines_without_gross_are_checked_net():
    from decimal import Decimal as D

    doc = _money_doc("TaxExcluded")
    assert rm.basis_of(doc) == "excl"
    order = _money_order(doc)
    figures = rm.document_figures(order)
    assert figures.rows == (("MOK-1", 2, D("20.66")),)
    assert (figures.shipping, figures.fees) == (D("4.09"), D("0.24"))
    mixed = _money_doc()
    del mixed["Line"][1]["SalesItemLineDetail"]["TaxInclusiveAmt"]
    assert rm.basis_of(mixed) == "excl"  # one line without its gross: all compared net
    assert rm.basis_of({**_money_doc(), "GlobalTaxCalculation": "NotApplicable"}) == "incl"


def test_checkout_asks_for_no_customer_emails_unless_the_tenant_does():
    order = _money_order(_money_doc())
    assert rm.checkout_payload(order, 12)["notifications"] is False
    asked = _money_order(_money_doc(), notify=True)
    assert rm.checkout_payload(asked, None)["notifications"] is True


def test_order_differences_name_each_figure_both_ways():
    from decimal import Decimal as D

    from koppel.domain.verify import OrderFigures, lightspeed_order_figures, order_differences

    document = rm.document_figures(_money_order(_money_doc()), ["MOK-1"])
    order = {"priceIncl": 31.85, "shipmentPriceIncl": 6.95, "paymentPriceIncl": 0.29,
             "discountIncl": 0, "taxRates": [{"name": "21% BTW", "rate": 0.21, "amount": 5.53},
                                             {"name": "9% BTW", "rate": 0.09, "amount": 0}]}
    rows = [{"sku": "MOK-1", "quantityOrdered": 2, "priceIncl": 24.61, "priceExcl": 20.3388}]
    placed = lightspeed_order_figures(order, rows, "incl")
    assert placed == OrderFigures("incl", (("MOK-1", 2, D("24.61")),), D("6.95"), D("0.29"),
                                  D("0.00"), D("31.85"), {"21": D("5.53")})
    assert order_differences(document, placed) == [
        "row 1 MOK-1 ×2 24.61 (QuickBooks 25.00)", "shipping 6.95 (QuickBooks 4.95)",
        "total 31.85 (QuickBooks 30.24)", "VAT 21% 5.53 (QuickBooks 5.25)"]
    same = lightspeed_order_figures(
        {**order, "priceIncl": 30.24, "shipmentPriceIncl": 4.95,
         "taxRates": [{"rate": 0.21, "amount": 5.25}]},
        [{**rows[0], "priceIncl": 25.0}], "incl")
    assert order_differences(document, same) == []
    other = lightspeed_order_figures(order, [{**rows[0], "sku": "MOK-2"}, rows[0]], "incl")
    assert order_differences(document, other)[:2] == [
        "2 rows (QuickBooks 1)", "row 1 MOK-2 ×2 (QuickBooks MOK-1 ×2)"]
