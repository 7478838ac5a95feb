"""The reverse orders flow end to end: QuickBooks sales receipts and invoices become
Lightspeed orders through Airflow, once; voids cancel; and with both directions enabled
nothing ever loops."""

from __future__ import annotations

from decimal import Decimal

import pytest

pytestmark = pytest.mark.e2e

REVERSE = {"orders_reverse": {"enabled": True, "schedule": None}}


def _hook(tenant):
    from koppel.hooks.quickbooks import QuickBooksHook

    return QuickBooksHook(f"qb_{tenant.tenant}")


def _variants(shop, n=2):
    """``n`` variants whose SKU no other variant shares (the seed has a few duplicates)."""
    from collections import Counter

    with shop.api() as api:
        variants = api.get("variants.json", params={"limit": 250}).json()["variants"]
    counts = Counter(v["sku"] for v in variants if v.get("sku"))
    return [v for v in variants if v.get("sku") and counts[v["sku"]] == 1][:n]


def _items(hook, variants):
    """QBO items carrying the shop's SKUs (what the products flow would have made)."""
    return [hook.create("Item", {"Name": f"Item {v['sku']}", "Sku": v["sku"],
                                 "Type": "NonInventory", "UnitPrice": str(v["priceIncl"]),
                                 "IncomeAccountRef": {"value": "1"}}) for v in variants]


def _line(item, qty, price="10.00"):
    return {"DetailType": "SalesItemLineDetail", "Amount": str(Decimal(price) * qty),
            "SalesItemLineDetail": {"ItemRef": {"value": item["Id"]}, "Qty": qty,
                                    "UnitPrice": price, "TaxCodeRef": {"value": "1"}}}


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
    assert made["isCompany"] and made["companyName"] == "Krakeling BV"
    assert made["addressBillingStreet"] == "Dorpsstraat" and made["addressBillingNumber"] == "12"
    assert Decimal(str(latest[r_key]["amount"])) == Decimal(str(receipt["TotalAmt"]))
    assert [m["value"] for m in _metafields(shop, made["id"])] == [f"SalesReceipt:{receipt['Id']}"]
    unpaid = shop.order(int(latest[i_key]["target_id"]))
    assert unpaid["paymentStatus"] == "not_paid"
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
    assert this_run[r_key] == "skipped" and this_run[i_key] == "skipped"
    assert this_run[f"Invoice:{bad['Id']}"] == "failed"


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
