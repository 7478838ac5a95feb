"""The refunds flow end to end: orders booked first, then Lightspeed credits booked as
refund receipts / credit memos through Airflow; QuickBooks read back via the sandbox.

The seeded shop holds a partially credited order with a return, a fully credited order
(shipping included) and an order credited twice (see koppel.sandbox.lightspeed.credits).
"""

from __future__ import annotations

from decimal import Decimal

import pytest

pytestmark = pytest.mark.e2e

REFUND_FLOW = {"orders": {"schedule": None}, "refunds": {"enabled": True, "schedule": None}}
# A refund of a never-booked order is a reported failure; let the run itself succeed.
LENIENT = {"error_threshold": {"max_fraction": 1.0, "max_count": 100}}


def dec(value) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


def _credits(shop, order_id):
    with shop.api() as api:
        return api.get(f"orders/{order_id}/credit.json").json()["credits"]


def _credited_orders(shop):
    return {str(o["id"]): (o, _credits(shop, o["id"])) for o in shop.orders()
            if _credits(shop, o["id"])}


def _by_number(tenant, entity):
    out: dict[str, list[dict]] = {}
    for doc in tenant.entities(entity):
        out.setdefault(doc["DocNumber"], []).append(doc)
    return out


def _assert_books_match_shop(tenant, shop, booked_type, refund_type, credited):
    """Each booked order: booked total minus its booked refunds = the shop's net total;
    each refund once, equal to its credit, same customer, only the credited rows."""
    booked, refunds = _by_number(tenant, booked_type), _by_number(tenant, refund_type)
    for order_id, (order, credits) in credited.items():
        if order["number"] not in booked:
            continue
        (original,) = booked[order["number"]]
        refunded = Decimal("0.00")
        for n, credit in enumerate(credits, 1):
            docs = refunds.get(f"{order['number']}-R{n}", [])
            assert len(docs) == 1, (order["number"], n, len(docs))
            doc = docs[0]
            assert dec(doc["TotalAmt"]) == dec(credit["priceIncl"])
            assert doc["CustomerRef"]["value"] == original["CustomerRef"]["value"]
            assert original["DocNumber"] in doc["PrivateNote"]
            item_lines = [l for l in doc["Line"] if l.get("DetailType") == "SalesItemLineDetail"]
            credited_units = sum(p["quantity"] for p in credit["products"])
            shipping = 1 if dec(credit["shipmentPriceIncl"]) else 0
            assert len(item_lines) >= len(credit["products"]) + shipping
            assert sum(Decimal(str(l["SalesItemLineDetail"]["Qty"]))
                       for l in item_lines[:len(credit["products"])]) == credited_units
            refunded += dec(doc["TotalAmt"])
        net = dec(order["priceIncl"]) - sum((dec(c["priceIncl"]) for c in credits), Decimal(0))
        assert dec(original["TotalAmt"]) - refunded == net, order["number"]


def test_refunds_book_once_to_the_cent_and_wait_for_unbooked_orders(shop, make_tenant):
    tenant = make_tenant(shop, flows=REFUND_FLOW,
                         settings={"unknown_sku": "create_item", **LENIENT})
    # an order the tenant does not book (partially paid), credited all the same
    with shop.api() as api:
        variant = api.get("variants.json", params={"limit": 5}).json()["variants"][0]
    unbooked = shop.control.post("/orders", json={"orders": [{
        "lines": [{"variant_id": variant["id"], "quantity": 2}],
        "status": "processing_awaiting_shipment", "payment_status": "partially_paid"}]}
    ).json()["orders"][0]
    row_id = shop.order(unbooked["id"])["products"]["resource"]["embedded"][0]["id"]
    with shop.api() as api:
        assert api.post(f"orders/{unbooked['id']}/credit.json", json={"credit": {
            "products": [{"id": row_id, "quantity": 1}]}}).status_code == 201

    assert tenant.run("orders").state == "success"
    before = dict(shop.stats()["by_route"])
    assert tenant.run("refunds").state == "success"
    calls = {route: n - before.get(route, 0) for route, n in shop.stats()["by_route"].items()
             if n - before.get(route, 0)}
    orders_in_shop = len(shop.orders())
    # a first run reads every order: one listing, one returns listing, the shop, one
    # credits call per order (Lightspeed lists no credits across orders and marks no
    # credited order: koppel.flows.refunds_source) and the rows of the credited orders
    assert calls == {"GET /{lang}/orders.json": 1, "GET /{lang}/returns.json": 1,
                     "GET /{lang}/shop.json": 1,
                     "GET /{lang}/orders/{order_id:int}/credit.json": orders_in_shop,
                     "GET /{lang}/orders/{order_id:int}/products.json": 4}
    credited = _credited_orders(shop)
    assert len(credited) == 4
    _assert_books_match_shop(tenant, shop, "SalesReceipt", "RefundReceipt", credited)
    first = {r["source_id"]: r for r in tenant.activity("refunds")}
    refunded = [r for r in first.values() if r["action"] == "refunded"]
    assert len(refunded) == 4  # partial with return, full, and twice
    assert all(r["source_type"] == "refund" and r["target_type"] == "RefundReceipt"
               for r in refunded)
    (waiting,) = [r for r in first.values() if r["action"] == "waiting"]
    assert "not booked" in waiting["reason"] and unbooked["number"] in waiting["reason"]
    assert unbooked["number"] not in {d["DocNumber"].split("-R")[0]
                                      for d in tenant.entities("RefundReceipt")}

    # repeat: nothing is booked twice, and an order seen again unchanged whose credits
    # are all booked (or that has none) costs no credits call: only the waiting order's
    before = dict(shop.stats()["by_route"])
    assert tenant.run("refunds", full_resync=True).state == "success"
    assert len(tenant.entities("RefundReceipt")) == 4
    calls = {route: n - before.get(route, 0) for route, n in shop.stats()["by_route"].items()
             if n - before.get(route, 0)}
    assert calls.get("GET /{lang}/orders/{order_id:int}/credit.json") == 1, calls
    # a further partial refund on an order refunded before, and the unbooked order booked
    order_id, (order, credits) = next(
        (i, v) for i, v in credited.items()
        if any(r["quantityRefunded"] < r["quantityOrdered"]
               for r in shop.order(int(i))["products"]["resource"]["embedded"])
        and v[0]["paymentStatus"] == "paid")
    row = next(r for r in shop.order(int(order_id))["products"]["resource"]["embedded"]
               if r["quantityRefunded"] < r["quantityOrdered"])
    with shop.api() as api:
        assert api.post(f"orders/{order_id}/credit.json", json={"credit": {
            "products": [{"id": row["id"], "quantity": 1}]}}).status_code == 201
    shop.control.patch(f"/orders/{unbooked['id']}", json={"paymentStatus": "paid"})
    assert tenant.run("orders").state == "success"
    assert tenant.run("refunds").state == "success"
    credited = _credited_orders(shop)
    _assert_books_match_shop(tenant, shop, "SalesReceipt", "RefundReceipt", credited)
    assert len(tenant.entities("RefundReceipt")) == 6
    assert len(credited[order_id][1]) == len(credits) + 1
    latest = {}
    for entry in sorted(tenant.activity("refunds"), key=lambda r: r["id"]):
        latest[entry["source_id"]] = entry
    assert latest[waiting["source_id"]]["action"] == "refunded"


def test_paid_invoices_are_refunded_with_refund_receipts(shop, make_tenant):
    """Invoice mode applies a Payment to a paid order's invoice, so money the shop pays
    back is a RefundReceipt against it (a credit memo would leave a customer credit)."""
    tenant = make_tenant(shop, flows=REFUND_FLOW, settings={
        "document_type": "invoice", "unknown_sku": "create_item", **LENIENT})
    assert tenant.run("orders").state == "success"
    assert tenant.run("refunds").state == "success"
    credited = _credited_orders(shop)
    assert len(tenant.entities("RefundReceipt")) == 4
    assert tenant.entities("CreditMemo") == []
    _assert_books_match_shop(tenant, shop, "Invoice", "RefundReceipt", credited)


def test_open_invoices_are_refunded_with_credit_memos(shop, make_tenant):
    tenant = make_tenant(shop, flows=REFUND_FLOW, settings={
        "document_type": "invoice", "unknown_sku": "create_item",
        "payments": {"apply_to_invoices": False}, **LENIENT})
    assert tenant.run("orders").state == "success"
    assert tenant.run("refunds", dry_run=True).state == "success"
    assert tenant.entities("CreditMemo") == []
    assert {r["action"] for r in tenant.activity("refunds")} == {"skipped"}
    # the dry run's activity moved the fallback window past the seeded credits
    assert tenant.run("refunds", full_resync=True).state == "success"
    credited = _credited_orders(shop)
    assert len(tenant.entities("CreditMemo")) == 4
    assert tenant.entities("RefundReceipt") == []
    _assert_books_match_shop(tenant, shop, "Invoice", "CreditMemo", credited)


def test_a_full_credit_refunds_rows_split_shipping_and_the_payment_fee_with_their_vat(
        shop_factory, make_tenant):
    """An order with 21 % and 9 % rows, shipping and an iDEAL fee split over both rates,
    credited in full (shipping and fee included): the refund receipt equals the credit, per
    VAT rate as booked on the sale, on the shipping and payment-fee items."""
    from koppel.domain.verify import booked_figures

    shop = shop_factory(orders=0, products=4, customers=2)
    (order,) = shop.control.post("/orders", json={"orders": [{
        "person": {"email": "jan@example.nl", "firstname": "Jan", "lastname": "Jansen"},
        "lines": [{"sku": "SHIRT", "title": "Shirt", "price_incl": "12.10", "tax_rate": "0.21", "quantity": 1},
                  {"sku": "BOOK", "title": "Book", "price_incl": "5.45", "tax_rate": "0.09", "quantity": 2}],
        "shipping_incl": "4.95", "payment_fee_incl": "0.29", "status": "completed_shipped",
        "payment_status": "paid"}]}).json()["orders"]
    tenant = make_tenant(shop, flows=REFUND_FLOW, settings={"unknown_sku": "create_item"})
    assert tenant.run("orders").state == "success"
    rows = shop.api().get(f"orders/{order['id']}/products.json").json()["orderProducts"]
    with shop.api() as api:
        credit = api.post(f"orders/{order['id']}/credit.json", json={"credit": {
            "products": [{"id": r["id"], "quantity": r["quantityOrdered"]} for r in rows],
            "shipment": True, "payment": True}}).json()["credit"]
    assert dec(credit["priceIncl"]) == dec(order["priceIncl"])
    assert tenant.run("refunds").state == "success"
    (refund,) = tenant.entities("RefundReceipt")
    (sale,) = tenant.entities("SalesReceipt")
    assert dec(refund["TotalAmt"]) == dec(credit["priceIncl"]) == dec(sale["TotalAmt"])
    assert booked_figures(refund).vat == booked_figures(sale).vat
    names = {i["Id"]: i["Name"] for i in tenant.entities("Item")}
    items = [names[l["SalesItemLineDetail"]["ItemRef"]["value"]] for l in refund["Line"]
             if l["DetailType"] == "SalesItemLineDetail"]
    assert items.count("Verzendkosten") == 2 and items.count("Betaalkosten") == 2
    (entry,) = [r for r in tenant.activity("refunds") if r["action"] != "skipped"]
    assert entry["action"] == "refunded", entry["reason"]
