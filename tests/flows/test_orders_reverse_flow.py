"""The reverse orders flow end to end: QuickBooks sales receipts and invoices become
Lightspeed orders through Airflow, once, carrying the document's money (rows, shipping,
VAT per rate, total — checked against the order Lightspeed returns) or not at all (a
``conflict`` with both figures and an alert); voids cancel; no customer e-mails; and
with both directions enabled nothing ever loops."""

from __future__ import annotations

from decimal import Decimal

import pytest

pytestmark = pytest.mark.e2e

REVERSE = {"orders_reverse": {"enabled": True, "schedule": None}}


def _hook(tenant):
    from koppel.hooks.quickbooks import QuickBooksHook

    return QuickBooksHook(f"qb_{tenant.tenant}")


def _rate(variant) -> Decimal:
    """A variant's VAT rate in percent (its prices incl. and excl. VAT)."""
    return ((Decimal(str(variant["priceIncl"])) / Decimal(str(variant["priceExcl"])) - 1)
            * 100).quantize(Decimal(1))


def _variants(shop, n=2, rate=None):
    """``n`` variants whose SKU no other variant shares (the seed has a few duplicates),
    of VAT ``rate`` if given."""
    from collections import Counter

    with shop.api() as api:
        variants = api.get("variants.json", params={"limit": 250}).json()["variants"]
    counts = Counter(v["sku"] for v in variants if v.get("sku"))
    found = [v for v in variants if v.get("sku") and counts[v["sku"]] == 1
             and (rate is None or _rate(v) == rate)][:n]
    assert len(found) == n, "the seeded shop lacks the variants this test needs"
    return found


def _price(item) -> Decimal:
    """The shop's price incl. VAT of the variant behind a QuickBooks item, in cents."""
    return Decimal(str(item["_v"]["priceIncl"])).quantize(Decimal("0.01"))


#: the QuickBooks sandbox's NL tax codes by rate
TAX_CODE = {Decimal(21): "1", Decimal(9): "2", Decimal(0): "3"}


def _items(hook, variants):
    """QBO items carrying the shop's SKUs and prices (what the products flow makes)."""
    return [hook.create("Item", {"Name": f"Item {v['sku']}", "Sku": v["sku"],
                                 "Type": "NonInventory", "UnitPrice": str(v["priceIncl"]),
                                 "IncomeAccountRef": {"value": "1"}}) | {"_v": v}
            for v in variants]


def _line(item, qty, price=None, code=None):
    """A line of a ``TaxInclusive`` document on ``item``: ``qty`` at the shop's price
    incl. VAT (``price``: another one) as the line's gross (``TaxInclusiveAmt``, from
    which QuickBooks derives the net ``Amount``)."""
    variant = item.get("_v") or {}
    price = Decimal(str(price if price is not None else variant.get("priceIncl", "10.00")))
    code = code or TAX_CODE.get(_rate(variant) if variant else Decimal(21), "1")
    return {"DetailType": "SalesItemLineDetail",
            "SalesItemLineDetail": {"ItemRef": {"value": item["Id"]}, "Qty": qty,
                                    "TaxInclusiveAmt": str(price * qty),
                                    "TaxCodeRef": {"value": code}}}


ADDRESS = {"Line1": "Dorpsstraat 12a", "City": "Utrecht", "PostalCode": "3511 AB",
           "Country": "NLD"}


def _document(hook, entity, customer, lines, **extra):
    return hook.create(entity, {"CustomerRef": {"value": customer["Id"]}, "Line": lines,
                                "GlobalTaxCalculation": "TaxInclusive", "BillAddr": ADDRESS,
                                **extra})


def _latest(tenant):
    latest = {}
    for row in sorted(tenant.activity("orders_reverse"), key=lambda r: r["id"]):
        latest[row["source_id"]] = row
    return latest


def _vat_of(doc) -> dict[str, Decimal]:
    """A QuickBooks document's VAT per rate (its ``TxnTaxDetail``)."""
    vat: dict[str, Decimal] = {}
    for line in (doc.get("TxnTaxDetail") or {}).get("TaxLine") or []:
        key = str(Decimal(str(line["TaxLineDetail"]["TaxPercent"])).quantize(Decimal(1)))
        vat[key] = vat.get(key, Decimal(0)) + Decimal(str(line["Amount"]))
    return {k: v for k, v in vat.items() if v}


def _money(shop, order_id) -> dict:
    """A Lightspeed order's money: rows ``(sku, qty, priceIncl)``, shipping, payment fee,
    VAT per rate and total, as the API returns them."""
    order = shop.order(order_id)
    with shop.api() as api:
        rows = api.get(f"orders/{order_id}/products.json").json()["orderProducts"]
    return {"rows": [(r["sku"], r["quantityOrdered"], Decimal(str(r["priceIncl"]))) for r in rows],
            "shipping": Decimal(str(order["shipmentPriceIncl"])),
            "fee": Decimal(str(order["paymentPriceIncl"])),
            "vat": {str((Decimal(str(t["rate"])) * 100).quantize(Decimal(1))):
                    Decimal(str(t["amount"])) for t in order["taxRates"] if t["amount"]},
            "total": Decimal(str(order["priceIncl"])),
            "notifications": order["allowNotifications"]}


def _metafields(shop, order_id):
    with shop.api() as api:
        return api.get(f"orders/{order_id}/metafields.json").json()["orderMetafields"]


def test_documents_become_orders_once_follow_payment_and_voids(shop_factory, make_tenant):
    shop = shop_factory(orders=3)
    tenant = make_tenant(shop, settings={"unknown_sku": "fail",
                                         "error_threshold": {"max_fraction": 1.0}},
                         flows=REVERSE)
    hook = _hook(tenant)
    items = _items(hook, _variants(shop))
    stray = hook.create("Item", {"Name": "Not in the shop", "Sku": "NOWHERE-1",
                                 "Type": "NonInventory", "IncomeAccountRef": {"value": "1"}})
    company = hook.create("Customer", {"DisplayName": "Krakeling BV", "CompanyName": "Krakeling BV",
                                       "GivenName": "Anna", "FamilyName": "Bakker",
                                       "PrimaryEmailAddr": {"Address": "anna@krakeling.nl"}})
    person = hook.create("Customer", {"DisplayName": "Piet Visser", "GivenName": "Piet",
                                      "FamilyName": "Visser",
                                      "PrimaryEmailAddr": {"Address": "piet@example.nl"}})
    receipt = _document(hook, "SalesReceipt", company, [_line(items[0], 2), _line(items[1], 1)])
    invoice = _document(hook, "Invoice", person, [_line(items[1], 3)])
    own = _document(hook, "SalesReceipt", person, [_line(items[0], 1)],
                    PrivateNote="Lightspeed order ORD00042 (id 42)")
    bad = _document(hook, "Invoice", person, [_line(items[0], 1), _line(stray, 1)])
    orders_before = len(shop.orders())

    # -- first run: two orders, koppel's own document skipped, the bad one fails alone ----
    assert tenant.run("orders_reverse").state == "success"
    latest = _latest(tenant)
    r_key, i_key = f"SalesReceipt:{receipt['Id']}", f"Invoice:{invoice['Id']}"
    assert latest[r_key]["action"] == "created", latest[r_key]["reason"]
    assert latest[i_key]["action"] == "created", latest[i_key]["reason"]
    assert latest[f"SalesReceipt:{own['Id']}"]["action"] == "skipped"
    assert "trace" in latest[f"SalesReceipt:{own['Id']}"]["reason"]
    failed = latest[f"Invoice:{bad['Id']}"]
    assert failed["action"] == "failed" and "NOWHERE-1" in failed["reason"]
    assert "Line[1]" in failed["reason"]
    assert len(shop.orders()) == orders_before + 2
    made = shop.order(int(latest[r_key]["target_id"]))
    assert made["paymentStatus"] == "paid"
    v0, v1 = items[0]["_v"], items[1]["_v"]
    p0, p1 = Decimal(str(v0["priceIncl"])), Decimal(str(v1["priceIncl"]))
    receipt_money = _money(shop, made["id"])
    assert receipt_money == {
        "rows": [(v0["sku"], 2, p0 * 2), (v1["sku"], 1, p1)], "shipping": Decimal("0.00"),
        "fee": Decimal("0.00"), "vat": _vat_of(receipt), "total": p0 * 2 + p1,
        "notifications": False}
    assert Decimal(str(receipt["TotalAmt"])) == p0 * 2 + p1
    assert made["isCompany"] and made["companyName"] == "Krakeling BV"
    assert made["addressBillingStreet"] == "Dorpsstraat" and made["addressBillingNumber"] == "12"
    assert Decimal(str(latest[r_key]["amount"])) == Decimal(str(receipt["TotalAmt"]))
    assert [m["value"] for m in _metafields(shop, made["id"])] == [f"SalesReceipt:{receipt['Id']}"]
    unpaid = shop.order(int(latest[i_key]["target_id"]))
    assert unpaid["paymentStatus"] == "not_paid"
    assert _money(shop, unpaid["id"]) == {
        "rows": [(v1["sku"], 3, p1 * 3)], "shipping": Decimal("0.00"), "fee": Decimal("0.00"),
        "vat": _vat_of(invoice), "total": p1 * 3, "notifications": False}
    with shop.api() as api:
        found = api.get("customers.json", params={"email": "anna@krakeling.nl"}).json()["customers"]
    assert len(found) == 1 and found[0]["isCompany"] is True and found[0]["firstname"] == "Anna"

    # -- the invoice is paid, the receipt voided -------------------------------------------
    hook.create("Payment", {"CustomerRef": {"value": person["Id"]}, "TotalAmt": invoice["TotalAmt"],
                            "Line": [{"Amount": invoice["TotalAmt"], "LinkedTxn": [
                                {"TxnId": invoice["Id"], "TxnType": "Invoice"}]}]})
    current = hook.read("SalesReceipt", receipt["Id"])
    hook.api("POST", "salesreceipt", body={"Id": current["Id"], "SyncToken": current["SyncToken"],
                                           "sparse": True},
             params={"operation": "update", "include": "void"})
    assert tenant.run("orders_reverse", full_resync=True).state == "success"
    latest = _latest(tenant)
    assert latest[i_key]["action"] == "updated"
    assert shop.order(unpaid["id"])["paymentStatus"] == "paid"
    assert latest[r_key]["action"] == "voided"
    assert shop.order(made["id"])["status"] == "cancelled"
    assert len(shop.orders()) == orders_before + 2

    # -- a re-run (windowed on MetaData.LastUpdatedTime) changes nothing -----------------
    writes = _shop_writes(shop)
    run = tenant.run("orders_reverse")
    assert run.state == "success"
    assert len(shop.orders()) == orders_before + 2
    assert _shop_writes(shop) == writes
    this_run = {r["source_id"]: r["action"] for r in tenant.activity("orders_reverse", run.run_id)}
    assert this_run == {r_key: "skipped", i_key: "skipped",
                        f"SalesReceipt:{own['Id']}": "skipped",
                        f"Invoice:{bad['Id']}": "failed"}, (run.run_id, this_run)


def test_tenant_mapping_decides_the_order_fields(shop_factory, make_tenant):
    """The ``orders_reverse`` section of the tenant file overrides the shipped default per
    field: here the customer's own e-mail instead of the document's billing e-mail, the
    city in capitals and the document's memo replaced by a constant. A document changed
    after its order was made is reported as a conflict, never made a second time."""
    shop = shop_factory(orders=1)
    mappings = {"orders_reverse": {
        "customer.email": {"path": "_customer.PrimaryEmailAddr.Address",
                           "transforms": ["email"]},
        "bill_addr.city": {"path": "_bill.City", "transforms": ["upper"]},
        "memo": {"const": "Phone order"}}}
    tenant = make_tenant(shop, settings={"unknown_sku": "fail"}, flows=REVERSE,
                         mappings=mappings)
    hook = _hook(tenant)
    items = _items(hook, _variants(shop, 1))
    person = hook.create("Customer", {"DisplayName": "Joke Smit", "GivenName": "Joke",
                                      "FamilyName": "Smit",
                                      "PrimaryEmailAddr": {"Address": "joke@smit.nl"}})
    receipt = _document(hook, "SalesReceipt", person, [_line(items[0], 1)],
                        BillEmail={"Address": "administratie@smit.nl"},
                        CustomerMemo={"value": "Bel even aan"})

    assert tenant.run("orders_reverse").state == "success"
    entry = _latest(tenant)[f"SalesReceipt:{receipt['Id']}"]
    assert entry["action"] == "created", entry["reason"]
    made = shop.order(int(entry["target_id"]))
    assert made["email"] == "joke@smit.nl"
    assert made["addressBillingCity"] == "UTRECHT"
    assert made["addressBillingStreet"] == "Dorpsstraat"
    assert "Phone order" in made["comment"] and "Bel even aan" not in made["comment"]
    assert f"(id {receipt['Id']})" in made["comment"]  # koppel's trace stays

    # a document changed in QuickBooks after its order was made: reported, never re-made
    orders_before = len(shop.orders())
    current = hook.read("SalesReceipt", receipt["Id"])
    hook.sparse_update("SalesReceipt", receipt["Id"], {"Line": [_line(items[0], 3)]},
                       sync_token=current["SyncToken"])
    assert tenant.run("orders_reverse", full_resync=True).state == "success"
    entry = _latest(tenant)[f"SalesReceipt:{receipt['Id']}"]
    assert entry["action"] == "conflict" and entry["target_id"] == str(made["id"])
    assert len(shop.orders()) == orders_before


def _shop_writes(shop) -> int:
    return sum(n for route, n in shop.stats()["by_route"].items()
               if route.split()[0] in ("POST", "PUT", "DELETE"))


def test_both_directions_never_loop(shop_factory, make_tenant):
    """Lightspeed → QuickBooks and QuickBooks → Lightspeed enabled together, run over and
    over: after the first round the number of documents and orders stays put."""
    shop = shop_factory(orders=6)
    tenant = make_tenant(shop, settings={"unknown_sku": "create_item"}, flows=REVERSE)
    hook = _hook(tenant)
    items = _items(hook, _variants(shop, 1))
    person = hook.create("Customer", {"DisplayName": "Loes Jansen", "GivenName": "Loes",
                                      "FamilyName": "Jansen",
                                      "PrimaryEmailAddr": {"Address": "loes@example.nl"}})
    _document(hook, "SalesReceipt", person, [_line(items[0], 1)])
    _document(hook, "Invoice", person, [_line(items[0], 2)])

    def counts():
        return (len(tenant.entities("SalesReceipt")) + len(tenant.entities("Invoice")),
                len(shop.orders()))

    start = counts()
    seen = []
    for _ in range(3):
        assert tenant.run("orders", full_resync=True).state == "success"
        assert tenant.run("orders_reverse", full_resync=True).state == "success"
        seen.append(counts())
    documents, orders = seen[0]
    assert documents > start[0], "the forward flow booked the shop's paid orders"
    assert orders == start[1] + 2, "the two QuickBooks documents became orders, nothing else"
    assert seen == [seen[0]] * 3, seen
    reverse = [r for r in tenant.activity("orders_reverse") if r["action"] == "created"]
    forward_skips = [r for r in tenant.activity("orders")
                     if r["action"] == "skipped" and "not booked back" in (r["reason"] or "")]
    assert {r["target_id"] for r in reverse} <= {r["source_id"] for r in forward_skips}


def _alerts(monkeypatch) -> list[list[str]]:
    """The conflict alerts koppel sends (each a list of lines)."""
    from koppel.alerts import KoppelFailureNotifier

    sent: list[list[str]] = []
    monkeypatch.setattr(KoppelFailureNotifier, "notify_conflicts",
                        lambda self, context, lines, total: sent.append(list(lines)))
    return sent


ALERTING = {"unknown_sku": "fail", "error_threshold": {"max_fraction": 1.0},
            "alerts": {"emails": ["ops@example.nl"]}}


def test_shipping_and_paid_invoice_carry_the_documents_money(shop_factory, make_tenant):
    """A sales receipt with a shipping line, and an invoice paid in full before its first
    run: each order carries the document's rows, shipping (the shipment method that
    charges the document's shipping is chosen), VAT per rate and total to the cent, and
    its payment status."""
    shop = shop_factory(orders=0, products=6, customers=2)
    tenant = make_tenant(shop, settings={"unknown_sku": "fail"}, flows=REVERSE)
    hook = _hook(tenant)
    (item,) = _items(hook, _variants(shop, 1, rate=Decimal(21)))
    shipping = hook.create("Item", {"Name": "Verzendkosten", "Type": "Service",
                                    "IncomeAccountRef": {"value": "1"}})
    person = hook.create("Customer", {"DisplayName": "Sam de Wit", "GivenName": "Sam",
                                      "FamilyName": "de Wit",
                                      "PrimaryEmailAddr": {"Address": "sam@example.nl"}})
    price = _price(item)
    assert price < Decimal("75"), "a single row under the free-shipping threshold"
    receipt = _document(hook, "SalesReceipt", person,
                        [_line(item, 1), _line(shipping, 1, price="4.95", code="1")])
    invoice = _document(hook, "Invoice", person, [_line(item, 1)])
    hook.create("Payment", {"CustomerRef": {"value": person["Id"]}, "TotalAmt": invoice["TotalAmt"],
                            "Line": [{"Amount": invoice["TotalAmt"], "LinkedTxn": [
                                {"TxnId": invoice["Id"], "TxnType": "Invoice"}]}]})

    assert tenant.run("orders_reverse").state == "success"
    latest = _latest(tenant)
    shipped = latest[f"SalesReceipt:{receipt['Id']}"]
    assert shipped["action"] == "created", shipped["reason"]
    order = shop.order(int(shipped["target_id"]))
    assert order["shipmentTitle"] == "PostNL Standaard" and order["paymentStatus"] == "paid"
    assert _money(shop, order["id"]) == {
        "rows": [(item["_v"]["sku"], 1, price)], "shipping": Decimal("4.95"),
        "fee": Decimal("0.00"), "vat": _vat_of(receipt), "total": price + Decimal("4.95"),
        "notifications": False}
    assert Decimal(str(receipt["TotalAmt"])) == price + Decimal("4.95")
    paid = latest[f"Invoice:{invoice['Id']}"]
    assert paid["action"] == "created", paid["reason"]
    order = shop.order(int(paid["target_id"]))
    assert order["paymentStatus"] == "paid"
    assert _money(shop, order["id"]) == {
        "rows": [(item["_v"]["sku"], 1, price)], "shipping": Decimal("0.00"),
        "fee": Decimal("0.00"), "vat": _vat_of(invoice), "total": price,
        "notifications": False}


def test_money_the_shop_would_not_charge_is_a_conflict_never_an_order(shop_factory, make_tenant,
                                                                     monkeypatch):
    """A row below the shop's price and a discount line: Lightspeed would charge other
    money (it prices checkout rows at the catalogue and documents no amount off), so no
    order is placed, the checkout is deleted, and each document is a ``conflict`` naming
    both figures, alerted once; an unchanged document is not tried again."""
    sent = _alerts(monkeypatch)
    shop = shop_factory(orders=0, products=6, customers=2)
    tenant = make_tenant(shop, settings=ALERTING, flows=REVERSE)
    hook = _hook(tenant)
    (item,) = _items(hook, _variants(shop, 1, rate=Decimal(21)))
    price = _price(item)
    person = hook.create("Customer", {"DisplayName": "Ria Kok", "GivenName": "Ria",
                                      "FamilyName": "Kok",
                                      "PrimaryEmailAddr": {"Address": "ria@example.nl"}})
    cheap = _document(hook, "SalesReceipt", person, [_line(item, 2, price=price - 1)])
    discounted = _document(hook, "Invoice", person, [
        _line(item, 1), {"DetailType": "DiscountLineDetail", "Amount": "2.00",
                         "DiscountLineDetail": {"PercentBased": False}}])
    orders_before = len(shop.orders())

    assert tenant.run("orders_reverse").state == "success"
    latest = _latest(tenant)
    low = latest[f"SalesReceipt:{cheap['Id']}"]
    assert low["action"] == "conflict" and low["target_id"] is None
    row = f"row 1 {item['_v']['sku']} ×2 {price * 2} (QuickBooks {(price - 1) * 2})"
    assert row in low["reason"], low["reason"]
    assert f"total {price * 2} (QuickBooks {(price - 1) * 2})" in low["reason"]
    assert low["details"]["verification"] is True and low["details"]["placed"] is False
    assert low["details"]["quickbooks"]["total"] == str((price - 1) * 2)
    assert low["details"]["lightspeed"]["total"] == str(price * 2)
    off = latest[f"Invoice:{discounted['Id']}"]
    assert off["action"] == "conflict"
    assert "discount 2.00: Lightspeed checkouts have no documented way" in off["reason"]
    assert len(shop.orders()) == orders_before
    with shop.api() as api:
        assert api.get("checkouts/count.json").json() == {"count": 0}
    assert len(sent) == 1 and len(sent[0]) == 2
    assert any(f"SalesReceipt:{cheap['Id']}" in line and "total" in line for line in sent[0])

    run = tenant.run("orders_reverse", full_resync=True)
    assert run.state == "success"
    this_run = {r["source_id"]: r for r in tenant.activity("orders_reverse", run.run_id)}
    assert this_run[f"SalesReceipt:{cheap['Id']}"]["action"] == "skipped"
    assert "refused earlier" in this_run[f"SalesReceipt:{cheap['Id']}"]["reason"]
    assert len(sent) == 1 and len(shop.orders()) == orders_before


def test_placed_order_that_differs_is_cancelled_and_a_conflict(shop_factory, make_tenant,
                                                              monkeypatch):
    """Should a checkout answer carry no quote to check, the order Lightspeed places is
    still checked as it returns it: an order at other money is cancelled at once and the
    document becomes a conflict naming both figures (alerted); no second order follows."""
    from koppel.flows import orders_reverse_lightspeed as ls

    sent = _alerts(monkeypatch)
    monkeypatch.setattr(ls, "checkout_figures", lambda checkout, basis: None)
    shop = shop_factory(orders=0, products=6, customers=2)
    tenant = make_tenant(shop, settings=ALERTING, flows=REVERSE)
    hook = _hook(tenant)
    (item,) = _items(hook, _variants(shop, 1, rate=Decimal(21)))
    price = _price(item)
    person = hook.create("Customer", {"DisplayName": "Bo Mol", "GivenName": "Bo",
                                      "FamilyName": "Mol",
                                      "PrimaryEmailAddr": {"Address": "bo@example.nl"}})
    doc = _document(hook, "Invoice", person, [_line(item, 1, price=price + 5)])

    assert tenant.run("orders_reverse").state == "success"
    entry = _latest(tenant)[f"Invoice:{doc['Id']}"]
    assert entry["action"] == "conflict" and entry["details"]["placed"] is True
    assert f"total {price} (QuickBooks {price + 5})" in entry["reason"]
    order = shop.order(int(entry["target_id"]))
    assert order["status"] == "cancelled" and Decimal(str(order["priceIncl"])) == price
    assert len(sent) == 1
    assert tenant.run("orders_reverse", full_resync=True).state == "success"
    assert len(shop.orders()) == 1 and len(sent) == 1
