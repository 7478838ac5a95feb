"""Books a Dutch accountant signs: ordinary webshop orders (payment fees, shipping split over
VAT rates, free-shipping coupons, a Belgian business with a VAT number, an export to
Switzerland, a company name with a colon) booked through Airflow against the sandboxes,
then every document checked line by line, per VAT rate and in total — exact amounts."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from koppel.domain.verify import booked_figures

pytestmark = pytest.mark.e2e

ORDERS = [
    # 1. domestic, 21 % and 9 % rows (3 × 0.33), shipping 4.95 and an iDEAL fee of 0.29,
    #    both split pro rata over the goods' rates
    {"person": {"email": "jan@example.nl", "firstname": "Jan", "lastname": "Jansen"},
     "lines": [{"sku": "SHIRT", "title": "Shirt", "price_incl": "12.10", "tax_rate": "0.21", "quantity": 1},
               {"sku": "DROP", "title": "Drop", "price_incl": "0.33", "tax_rate": "0.09", "quantity": 3},
               {"sku": "BOOK", "title": "Book", "price_incl": "5.45", "tax_rate": "0.09", "quantity": 1}],
     "shipping_incl": "4.95", "payment_fee_incl": "0.29"},
    # 2. a Belgian business with a VAT number: intra-EU supply, VAT reverse charged
    {"person": {"email": "inkoop@zon.example.be", "firstname": "Els", "lastname": "Peeters"},
     "company_name": "Bakkerij De Zon: Gent", "is_company": True, "vat_number": "BE0123456789",
     "country": "be",
     "lines": [{"sku": "SHIRT", "title": "Shirt", "price_incl": "12.10", "tax_rate": "0.21", "quantity": 4}],
     "shipping_incl": "6.95"},
    # 3. an export to Switzerland
    {"person": {"email": "heidi@example.ch", "firstname": "Heidi", "lastname": "Meier"},
     "country": "ch",
     "lines": [{"sku": "BOOK", "title": "Book", "price_incl": "5.45", "tax_rate": "0.09", "quantity": 2}],
     "shipping_incl": "12.50"},
    # 4. free shipping (a shipment discount of all of it), a PayPal fee of 1.50
    {"person": {"email": "greet@example.nl", "firstname": "Greet", "lastname": "Vos"},
     "lines": [{"sku": "SHIRT", "title": "Shirt", "price_incl": "12.10", "tax_rate": "0.21", "quantity": 5}],
     "shipping_incl": "4.95", "shipment_discount_incl": "4.95", "payment_method": "paypal"},
]

#: per order: total, VAT per rate, and the lines (item, net Amount, tax code name)
EXPECTED = {
    "ORD00001": (D("23.78"), {"21": D("2.69"), "9": D("0.68")}, [
        ("SHIRT", D("10.00"), "21%"), ("DROP", D("0.91"), "9%"), ("BOOK", D("5.00"), "9%"),
        ("Verzendkosten", D("2.69"), "21%"), ("Verzendkosten", D("1.56"), "9%"),
        ("Betaalkosten", D("0.14"), "21%"), ("Betaalkosten", D("0.11"), "9%")]),
    "ORD00002": (D("47.24"), {"0": D("0.00")}, [
        ("SHIRT", D("40.00"), "0% ICP"), ("Verzendkosten", D("6.95"), "0% ICP"),
        ("Betaalkosten", D("0.29"), "0% ICP")]),
    "ORD00003": (D("22.79"), {"0": D("0.00")}, [
        ("BOOK", D("10.00"), "0% Export"), ("Verzendkosten", D("12.50"), "0% Export"),
        ("Betaalkosten", D("0.29"), "0% Export")]),
    "ORD00004": (D("62.00"), {"21": D("10.76")}, [
        ("SHIRT", D("50.00"), "21%"), ("Betaalkosten", D("1.24"), "21%")]),
}
TREATMENTS = {"ORD00001": "domestic", "ORD00002": "intra_eu_b2b", "ORD00003": "export",
              "ORD00004": "domestic"}


@pytest.mark.parametrize("prices_include_tax", [True, False], ids=["tax-inclusive", "tax-exclusive"])
def test_ordinary_orders_book_every_euro_and_the_invoice_vat(shop_factory, make_tenant,
                                                             prices_include_tax):
    shop = shop_factory(orders=0, products=4, customers=2)
    made = shop.control.post("/orders", json={"orders": [
        {**o, "status": "completed_shipped", "payment_status": "paid"} for o in ORDERS]}).json()["orders"]
    assert [o["number"] for o in made] == list(EXPECTED)
    tenant = make_tenant(shop, settings={"unknown_sku": "create_item",
                                         "prices_include_tax": prices_include_tax})
    assert tenant.run("orders").state == "success"

    latest = {}
    for row in sorted(tenant.activity("orders"), key=lambda r: r["id"]):
        latest[row["source_id"]] = row
    assert {e["action"] for e in latest.values()} == {"created"}, \
        [(e["source_id"], e["action"], e["reason"]) for e in latest.values()]
    items = {i["Id"]: i.get("Sku") or i["Name"] for i in tenant.entities("Item")}
    codes = {c["Id"]: c["Name"] for c in tenant.entities("TaxCode")}
    docs = {d["DocNumber"]: d for d in tenant.entities("SalesReceipt")}
    for order in made:
        total, vat, lines = EXPECTED[order["number"]]
        doc = docs[order["number"]]
        booked = booked_figures(doc)
        # the document equals the shop's order: total and VAT per rate to the cent
        assert booked.total == total == D(str(order["priceIncl"])).quantize(D("0.01"))
        assert booked.vat == vat
        assert {k: v for k, v in vat.items() if v} == {
            str(D(str(t["rate"])) * 100).rstrip("0").rstrip("."): D(str(t["amount"])).quantize(D("0.01"))
            for t in order["taxRates"] if t["amount"]}
        got = [(items[l["SalesItemLineDetail"]["ItemRef"]["value"]], D(str(l["Amount"])),
                codes[l["SalesItemLineDetail"]["TaxCodeRef"]["value"]])
               for l in doc["Line"] if l["DetailType"] == "SalesItemLineDetail"]
        assert got == lines, order["number"]
        assert doc["GlobalTaxCalculation"] == ("TaxInclusive" if prices_include_tax else "TaxExcluded")
        entry = latest[str(order["id"])]
        assert entry["details"]["vat_treatment"] == TREATMENTS[order["number"]]
        assert D(str(entry["amount"])) == total

    # the Belgian business: a company customer QuickBooks accepts, with its VAT number
    customers = {c["Id"]: c for c in tenant.entities("Customer")}
    business = customers[docs["ORD00002"]["CustomerRef"]["value"]]
    assert business["DisplayName"] == "Bakkerij De Zon - Gent"
    assert business["CompanyName"] == "Bakkerij De Zon - Gent"
    assert str(business["PrimaryTaxIdentifier"]).endswith("56789")

    # a second run books nothing again
    count = len(tenant.entities("SalesReceipt"))
    assert tenant.run("orders", full_resync=True).state == "success"
    assert len(tenant.entities("SalesReceipt")) == count


def test_invoice_mode_pays_paid_orders_and_orders_paid_later(shop_factory, make_tenant):
    """``document_type: invoice``: a paid order's invoice gets a Payment applied (balance
    0); an unpaid order booked as an open invoice gets its Payment when it is paid; no
    payment is ever made twice."""
    shop = shop_factory(orders=0, products=4, customers=2)
    lines = [{"sku": "SHIRT", "title": "Shirt", "price_incl": "12.10", "tax_rate": "0.21", "quantity": 2}]
    paid, open_ = shop.control.post("/orders", json={"orders": [
        {"person": {"email": "a@example.nl", "firstname": "A", "lastname": "Betaald"}, "lines": lines,
         "shipping_incl": "4.95", "status": "completed_shipped", "payment_status": "paid"},
        {"person": {"email": "b@example.nl", "firstname": "B", "lastname": "Later"}, "lines": lines,
         "shipping_incl": "4.95", "payment_method": "afterpay",
         "status": "processing_awaiting_shipment", "payment_status": "not_paid"},
    ]}).json()["orders"]
    tenant = make_tenant(shop, settings={
        "document_type": "invoice", "unknown_sku": "create_item",
        "booked": {"payment_status": ["paid", "not_paid"], "exclude_status": ["cancelled"]}})
    assert tenant.run("orders").state == "success"
    invoices = {i["DocNumber"]: i for i in tenant.entities("Invoice")}
    assert set(invoices) == {paid["number"], open_["number"]}
    for order in (paid, open_):
        assert D(str(invoices[order["number"]]["TotalAmt"])) == D(str(order["priceIncl"])).quantize(D("0.01"))
    assert D(str(invoices[paid["number"]]["Balance"])) == 0
    assert D(str(invoices[open_["number"]]["Balance"])) == D(str(open_["priceIncl"])).quantize(D("0.01"))
    (payment,) = tenant.entities("Payment")
    assert D(str(payment["TotalAmt"])) == D(str(paid["priceIncl"])).quantize(D("0.01"))
    assert payment["Line"][0]["LinkedTxn"] == [{"TxnId": invoices[paid["number"]]["Id"],
                                                 "TxnType": "Invoice"}]

    # the open order is paid in the shop: the next run applies its payment, once
    shop.control.patch(f"/orders/{open_['id']}", json={"paymentStatus": "paid"})
    assert tenant.run("orders").state == "success"
    invoices = {i["DocNumber"]: i for i in tenant.entities("Invoice")}
    assert D(str(invoices[open_["number"]]["Balance"])) == 0
    assert len(tenant.entities("Payment")) == 2
    latest = sorted((r for r in tenant.activity("orders") if r["source_id"] == str(open_["id"])),
                    key=lambda r: r["id"])[-1]
    assert latest["action"] == "updated" and "payment" in latest["reason"]
    assert tenant.run("orders", full_resync=True).state == "success"
    assert len(tenant.entities("Payment")) == 2 and len(tenant.entities("Invoice")) == 2


def test_a_gbp_shop_books_in_gbp_only_when_the_company_can(shop_factory, make_tenant, qbo_server):
    """A GBP shop on a EUR company: with multicurrency off every order fails naming the
    currency (never booked as EUR, no customer made for it); once multicurrency is on and
    GBP enabled, the retried order is booked in GBP for a GBP customer, to the cent."""
    import httpx

    shop = shop_factory(orders=0, products=4, customers=2, currency="GBP")
    (order,) = shop.control.post("/orders", json={"orders": [{
        "person": {"email": "liz@example.co.uk", "firstname": "Liz", "lastname": "Taylor"},
        "lines": [{"sku": "TEA", "title": "Tea", "price_incl": "12.10", "tax_rate": "0.21",
                   "quantity": 2}],
        "shipping_incl": "4.95", "payment_fee_incl": "0", "status": "completed_shipped",
        "payment_status": "paid"}]}).json()["orders"]
    tenant = make_tenant(shop, settings={"unknown_sku": "create_item", "error_threshold": {
        "max_count": 5, "max_fraction": None}})
    customers_before = len(tenant.entities("Customer"))
    assert tenant.run("orders").state == "success"
    (entry,) = [r for r in tenant.activity("orders") if r["source_id"] == str(order["id"])]
    assert entry["action"] == "failed"
    assert entry["reason"].startswith("currency: the order is in GBP, the QuickBooks company's "
                                      "home currency is EUR and multicurrency is off")
    assert tenant.entities("SalesReceipt") == []
    assert len(tenant.entities("Customer")) == customers_before

    httpx.put(f"{qbo_server.url}/_sandbox/realms/{tenant.realm_id}/multicurrency",
              json={"enabled": True, "currencies": ["GBP"]}, timeout=30).raise_for_status()
    assert tenant.run("orders").state == "success"
    (doc,) = tenant.entities("SalesReceipt")
    assert doc["CurrencyRef"]["value"] == "GBP"
    assert D(str(doc["TotalAmt"])) == D(str(order["priceIncl"])).quantize(D("0.01")) == D("29.15")
    assert booked_figures(doc).vat == {"21": D("5.06")}
    customer = next(c for c in tenant.entities("Customer") if c["Id"] == doc["CustomerRef"]["value"])
    assert customer["CurrencyRef"]["value"] == "GBP"
    assert D(str(doc["ExchangeRate"])) != 1 and D(str(doc["HomeTotalAmt"])) == \
        (D(str(doc["TotalAmt"])) * D(str(doc["ExchangeRate"]))).quantize(D("0.01"))


def test_every_order_on_the_default_debtor_when_the_tenant_says_so(shop_factory, make_tenant):
    shop = shop_factory(orders=0, products=4, customers=2)
    made = shop.control.post("/orders", json={"orders": [
        {"person": {"email": f"k{n}@example.nl", "firstname": "K", "lastname": str(n)},
         "lines": [{"sku": "SHIRT", "title": "Shirt", "price_incl": "12.10", "tax_rate": "0.21",
                    "quantity": 1}], "status": "completed_shipped", "payment_status": "paid"}
        for n in range(3)]}).json()["orders"]
    tenant = make_tenant(shop, settings={"unknown_sku": "create_item", "default_customer": {
        "display_name": "Webshop debiteur", "book_all_orders": True}})
    before = {c["Id"] for c in tenant.entities("Customer")}
    assert tenant.run("orders").state == "success"
    docs = tenant.entities("SalesReceipt")
    assert len(docs) == len(made)
    (debtor,) = [c for c in tenant.entities("Customer") if c["Id"] not in before]
    assert debtor["DisplayName"] == "Webshop debiteur"
    assert {d["CustomerRef"]["value"] for d in docs} == {debtor["Id"]}


@pytest.mark.parametrize("prices_include_tax", [True, False], ids=["tax-inclusive", "tax-exclusive"])
def test_a_seeded_shop_with_real_variety_books_without_failures_or_cent_differences(
        shop_factory, make_tenant, prices_include_tax):
    """The demo's seed (fees, split shipping, coupons, B2B EU, exports, colons, 0.33
    prices): every bookable order booked, none failed, none in conflict, and each
    document's total and VAT per rate equal to the shop's order to the cent."""
    shop = shop_factory(seed=1, orders=60, products=40, customers=40)
    tenant = make_tenant(shop, settings={"prices_include_tax": prices_include_tax,
                                         "unknown_sku": "create_item"})
    assert tenant.run("orders").state == "success"
    latest = {}
    for row in sorted(tenant.activity("orders"), key=lambda r: r["id"]):
        latest[row["source_id"]] = row
    actions = {e["action"] for e in latest.values()}
    assert actions <= {"created", "skipped"}, [
        (e["source_id"], e["action"], e["reason"]) for e in latest.values()
        if e["action"] not in ("created", "skipped")]
    docs = {d["DocNumber"]: d for d in tenant.entities("SalesReceipt")}
    orders = {str(o["id"]): o for o in shop.orders()}
    booked = [orders[i] for i, e in latest.items() if e["action"] == "created"]
    assert len(booked) == len(docs) >= 40
    treatments = set()
    for order in booked:
        figures = booked_figures(docs[order["number"]])
        assert figures.total == D(str(order["priceIncl"])).quantize(D("0.01")), order["number"]
        shop_vat = {}
        for t in order["taxRates"]:
            if t["amount"]:
                key = format((D(str(t["rate"])) * 100).normalize(), "f")
                shop_vat[key] = D(str(t["amount"])).quantize(D("0.01"))
        assert {k: v for k, v in figures.vat.items() if v} == shop_vat, order["number"]
        treatments.add(latest[str(order["id"])]["details"]["vat_treatment"])
    assert treatments == {"domestic", "intra_eu_b2b", "export"}


def test_a_gbp_shops_customers_and_orders_meet_in_gbp(shop_factory, make_tenant, qbo_server):
    """With multicurrency on, the customers flow makes a GBP shop's customers in GBP, and
    the orders flow books on exactly those customers: no second customer per buyer."""
    import httpx

    shop = shop_factory(orders=6, products=6, customers=6, currency="GBP")
    tenant = make_tenant(shop, settings={"unknown_sku": "create_item"})
    httpx.put(f"{qbo_server.url}/_sandbox/realms/{tenant.realm_id}/multicurrency",
              json={"enabled": True, "currencies": ["GBP"]}, timeout=30).raise_for_status()
    before = {c["Id"] for c in tenant.entities("Customer")}
    assert tenant.run("customers").state == "success"
    made = [c for c in tenant.entities("Customer") if c["Id"] not in before]
    assert made and {c["CurrencyRef"]["value"] for c in made} == {"GBP"}
    assert tenant.run("orders").state == "success"
    docs = tenant.entities("SalesReceipt")
    assert docs and {d["CurrencyRef"]["value"] for d in docs} == {"GBP"}
    customers = {c["Id"]: c for c in tenant.entities("Customer")}
    assert {customers[d["CustomerRef"]["value"]]["CurrencyRef"]["value"] for d in docs} == {"GBP"}
    assert not [c for c in customers.values() if c["DisplayName"].endswith("(GBP)")]
