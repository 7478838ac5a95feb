"""An order deleted in the shop — or a document or item deleted in QuickBooks — never
blocks a flow (issue 24).

Stock computes reservations from the open orders it can read and names, once, the one it
could not; refunds and orders report a refund / an order whose Lightspeed order is gone
once, as ``skipped`` "deleted in Lightspeed", and take it off the retry list, so later
runs neither fail nor report it again. Deletion is the Lightspeed sandbox's control plane
(``DELETE /_sandbox/orders/{id}``); an order deleted between a listing and the read of its
rows is staged with an injected 404 on the rows.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

pytestmark = pytest.mark.e2e

LEVELS = {"A": 20, "B": 10, "C": 7}
FLOWS = {"orders": {"schedule": None}, "refunds": {"enabled": True, "schedule": None}}


def _sku(letter: str) -> str:
    return f"GONETEST-{letter}"


def _on_hand(tenant) -> dict[str, Decimal]:
    return {i["Sku"]: Decimal(str(i["QtyOnHand"])) for i in tenant.entities("Item")
            if str(i.get("Sku", "")).startswith("GONETEST-")}


def _deleted(shop, order_id) -> None:
    assert shop.control.delete(f"/orders/{order_id}").status_code == 204
    with shop.api() as api:
        assert api.get(f"orders/{order_id}.json").status_code == 404


def _rows_404(shop, order_id) -> int:
    """Every read of the order's rows answers 404 (deleted after the listing)."""
    rule = shop.control.post("/faults", json={"path": f"/orders/{order_id}/products",
                                              "kind": "404"})
    rule.raise_for_status()
    return rule.json().get("id")


def _reports(rows, order_id) -> list[dict]:
    return [r for r in rows if f"order {order_id} " in (r["reason"] or "")]


def test_stock_reserves_from_the_orders_it_can_read_and_names_the_other_once(
        shop_factory, make_tenant):
    shop = shop_factory(orders=0, products=1, customers=1)
    variants: dict[str, int] = {}
    with shop.api() as api:
        for letter, level in LEVELS.items():
            created = shop.control.post("/products", json={"products": [{
                "title": f"Gone test {letter}", "sku": _sku(letter), "priceIncl": "10.00"}]})
            created.raise_for_status()
            product_id = created.json()["products"][0]["id"]
            vid = api.get("variants.json", params={"product": product_id}).json()["variants"][0]["id"]
            shop.control.patch(f"/variants/{vid}", json={"stockTracking": "enabled",
                                                         "stockLevel": level}).raise_for_status()
            variants[letter] = vid

    def order(letter, quantity):
        body = {"lines": [{"variant_id": variants[letter], "quantity": quantity}],
                "status": "processing_awaiting_payment"}
        return shop.control.post("/orders", json={"orders": [body]}).json()["orders"][0]["id"]

    order("A", 2)                 # read: A reserves 2
    deleted = order("B", 4)       # deleted in the shop before the run
    vanishing = order("C", 1)     # listed, then its rows answer 404
    tenant = make_tenant(shop)
    accounts = {a["Name"]: a["Id"] for a in tenant.entities("Account")}
    with tenant.qbo_hook() as qb:
        for letter in LEVELS:
            qb.create("Item", {
                "Name": f"Gone test {letter}", "Sku": _sku(letter), "Type": "Inventory",
                "TrackQtyOnHand": True, "QtyOnHand": 0, "InvStartDate": "2024-01-01",
                "IncomeAccountRef": {"value": accounts["Sales of Product Income"]},
                "ExpenseAccountRef": {"value": accounts["Cost of Goods Sold"]},
                "AssetAccountRef": {"value": accounts["Inventory Asset"]},
                "SalesTaxCodeRef": {"value": "1"}})
    _deleted(shop, deleted)
    _rows_404(shop, vanishing)
    with shop.api() as api:
        levels = {letter: api.get(f"variants/{vid}.json").json()["variant"]["stockLevel"]
                  for letter, vid in variants.items()}
    # only the order that can be read reserves: A 2 (B's order is gone, C's unreadable)
    expected = {_sku("A"): levels["A"] - 2, _sku("B"): levels["B"], _sku("C"): levels["C"]}

    first = tenant.run("stock")
    assert first.state == "success"
    assert _on_hand(tenant) == expected
    rows = tenant.activity("stock", first.run_id)
    (report,) = [r for r in rows if r["source_type"] == "order"]
    assert report["source_id"] == str(vanishing) and report["action"] == "skipped"
    assert f"order {vanishing} was deleted in Lightspeed" in report["reason"]
    assert report["details"]["reservations"] == "left out"
    assert not [r for r in rows if r["action"] == "failed"]

    second = tenant.run("stock")  # still unreadable: green, not reported again
    assert second.state == "success"
    again = tenant.activity("stock", second.run_id)
    assert not [r for r in again if r["source_type"] == "order" or r["action"] == "failed"]
    assert _on_hand(tenant) == expected


def test_refunds_and_orders_retire_an_order_deleted_in_the_shop(shop, make_tenant):
    tenant = make_tenant(shop, flows=FLOWS, settings={"unknown_sku": "create_item"})
    with shop.api() as api:
        variant = api.get("variants.json", params={"limit": 5}).json()["variants"][0]

    def new_order(**extra):
        return shop.control.post("/orders", json={"orders": [{
            "lines": [{"variant_id": variant["id"], "quantity": 2}],
            "status": "processing_awaiting_shipment", **extra}]}).json()["orders"][0]

    # a credited order the tenant does not book (partially paid): its refund waits
    credited = new_order(payment_status="partially_paid")
    row_id = shop.order(credited["id"])["products"]["resource"]["embedded"][0]["id"]
    with shop.api() as api:
        assert api.post(f"orders/{credited['id']}/credit.json", json={"credit": {
            "products": [{"id": row_id, "quantity": 1}]}}).status_code == 201
    # an order whose rows cannot be read in the orders run: it fails, goes on the retry list
    unreadable = new_order(payment_status="paid")
    _rows_404(shop, unreadable["id"])

    first = tenant.run("orders")
    assert first.state == "success"
    orders = {r["source_id"]: r for r in tenant.activity("orders", first.run_id)}
    assert orders[str(unreadable["id"])]["action"] == "failed"
    booked = {r["source_id"] for r in orders.values() if r["action"] == "created"}
    assert booked
    refunds = tenant.run("refunds")
    assert refunds.state == "success"
    rows = {r["source_id"]: r for r in tenant.activity("refunds", refunds.run_id)}
    (waiting,) = [r for r in rows.values() if r["action"] == "waiting"]
    assert waiting["details"]["order_id"] == str(credited["id"])
    assert len([r for r in rows.values() if r["action"] == "refunded"]) == 4  # the seeded

    # both orders are deleted in the shop
    shop.control.delete("/faults").raise_for_status()
    _deleted(shop, credited["id"])
    _deleted(shop, unreadable["id"])

    for flow, order_id, source_id in (("refunds", credited["id"], waiting["source_id"]),
                                      ("orders", unreadable["id"], str(unreadable["id"]))):
        run = tenant.run(flow)
        assert run.state == "success", flow
        rows = tenant.activity(flow, run.run_id)
        (report,) = _reports(rows, order_id)
        assert report["source_id"] == source_id and report["action"] == "skipped"
        assert f"order {order_id} was deleted in Lightspeed" in report["reason"]
        assert report["details"]["deleted_in_lightspeed"] is True
        assert not [r for r in rows if r["action"] in ("failed", "waiting")], flow
        # retired: off the retry list, history kept, not reported again
        from koppel.store.state import StateStore

        assert source_id not in {f["source_id"] for f in StateStore().failed(tenant.tenant, flow)}
        again = tenant.run(flow)
        assert again.state == "success", flow
        assert not _reports(tenant.activity(flow, again.run_id), order_id)
        history = [r for r in tenant.activity(flow) if r["source_id"] == source_id]
        assert len(_reports(history, order_id)) == 1 and len(history) >= 2
    assert len(tenant.entities("RefundReceipt")) == 4


def test_customers_retire_a_customer_deleted_in_the_shop(shop, make_tenant):
    """A customer on the retry list that the shop deleted is reported once and retired."""
    from koppel.store.state import StateStore

    tenant = make_tenant(shop)
    with shop.api() as api:
        customer_id = api.get("customers.json", params={"limit": 1}).json()["customers"][0]["id"]
    StateStore().mark_failed(tenant.tenant, "customers", str(customer_id), "an earlier failure")
    assert shop.control.delete(f"/customers/{customer_id}").status_code == 204

    run = tenant.run("customers")
    assert run.state == "success"
    (report,) = [r for r in tenant.activity("customers", run.run_id)
                 if r["source_id"] == str(customer_id)]
    assert report["action"] == "skipped"
    assert f"customer {customer_id} was deleted in Lightspeed" in report["reason"]
    assert str(customer_id) not in {f["source_id"] for f in
                                    StateStore().failed(tenant.tenant, "customers")}
    again = tenant.run("customers")
    assert again.state == "success"
    assert not [r for r in tenant.activity("customers", again.run_id)
                if r["source_id"] == str(customer_id)]


# -- products: a variant deleted in the shop, an item made inactive in QuickBooks ---------
PRODUCT_ACCOUNTS = {"income": "Sales of Product Income", "expense": "Cost of Goods Sold",
                    "asset": "Inventory Asset"}
#: small seeds: one reported record is more than the default 10 % of a run
ONE_REPORT_ALLOWED = {"error_threshold": {"max_fraction": None, "max_count": 1}}


def _qbo_control(tenant, method: str, path: str, **kw):
    import httpx

    response = httpx.request(method, f"{tenant.qbo_url}/_sandbox/realms/{tenant.realm_id}{path}",
                             timeout=30, **kw)
    response.raise_for_status()
    return response.json()


def test_products_retire_a_deleted_variant_and_an_item_made_inactive_in_quickbooks(
        shop_factory, make_tenant):
    from koppel.store.state import StateStore

    shop = shop_factory(orders=0, products=3, customers=1)
    tenant = make_tenant(shop, settings={"products": {"accounts": PRODUCT_ACCOUNTS},
                                         **ONE_REPORT_ALLOWED})
    assert tenant.run("products").state == "success"
    synced = {r["source_id"]: r for r in tenant.activity("products")
              if r["source_type"] == "variant" and r["action"] == "created"}
    with shop.api() as api:
        variants = {str(v["id"]): v for v in
                    api.get("variants.json", params={"limit": 250}).json()["variants"]}
    per_product: dict[int, list[str]] = {}
    for vid, variant in variants.items():
        per_product.setdefault(variant["product"]["resource"]["id"], []).append(vid)
    # a variant on the retry list whose (single-variant) product is deleted in the shop
    deleted_pid, (deleted_vid,) = next((pid, vids) for pid, vids in sorted(per_product.items())
                                       if len(vids) == 1 and vids[0] in synced)
    StateStore().mark_failed(tenant.tenant, "products", deleted_vid, "an earlier failure")
    assert shop.control.delete(f"/products/{deleted_pid}").status_code == 204
    # a synced variant whose item is made inactive by hand in QuickBooks
    inactive_vid = next(v for v in sorted(synced, key=int) if v != deleted_vid
                        and variants[v]["product"]["resource"]["id"] != deleted_pid)
    item_id = synced[inactive_vid]["target_id"]
    _qbo_control(tenant, "POST", f"/entities/Item/{item_id}/touch",
                 json={"changes": {"Active": False}})
    items_before = len(tenant.entities("Item"))

    first = tenant.run("products", full_resync=True)
    assert first.state == "success"
    rows = {r["source_id"]: r for r in tenant.activity("products", first.run_id)
            if r["source_type"] == "variant"}
    gone = rows[deleted_vid]
    assert (gone["action"], gone["details"]["deleted_in_lightspeed"]) == ("skipped", True)
    assert f"its product {deleted_pid} was deleted in Lightspeed" in gone["reason"] \
        or f"variant {deleted_vid} was deleted in Lightspeed" in gone["reason"]
    reported = rows[inactive_vid]
    assert reported["action"] == "failed"
    assert reported["details"]["deleted_in_quickbooks"] is True
    assert f"QuickBooks item {item_id} linked to variant {inactive_vid}" in reported["reason"]
    assert [r["source_id"] for r in rows.values() if r["action"] == "failed"] == [inactive_vid]
    assert len(tenant.entities("Item")) == items_before  # never re-created

    second = tenant.run("products", full_resync=True)
    assert second.state == "success"
    rows = {r["source_id"]: r for r in tenant.activity("products", second.run_id)
            if r["source_type"] == "variant"}
    assert deleted_vid not in rows
    retired = rows[inactive_vid]
    assert retired["action"] == "skipped" and "retired" in retired["reason"]
    assert retired["details"]["deleted_in_quickbooks"] is True
    assert not [r for r in rows.values() if r["action"] == "failed"]
    assert not StateStore().failed(tenant.tenant, "products")
    assert len(tenant.entities("Item")) == items_before


def test_orders_retire_an_order_whose_document_was_deleted_in_quickbooks(
        shop_factory, make_tenant):
    from koppel.store.state import StateStore

    shop = shop_factory(orders=8, products=3, customers=3)
    tenant = make_tenant(shop, settings={"unknown_sku": "create_item", **ONE_REPORT_ALLOWED})
    assert tenant.run("orders").state == "success"
    booked = sorted((r for r in tenant.activity("orders") if r["action"] == "created"),
                    key=lambda r: int(r["source_id"]))
    assert len(booked) >= 2
    victim, kept = booked[0], booked[1]
    _qbo_control(tenant, "DELETE", f"/entities/SalesReceipt/{victim['target_id']}")
    shop.control.patch(f"/orders/{victim['source_id']}",
                       json={"status": "cancelled"}).raise_for_status()  # → void it
    receipts = len(tenant.entities("SalesReceipt"))

    first = tenant.run("orders")
    assert first.state == "success"
    rows = {r["source_id"]: r for r in tenant.activity("orders", first.run_id)}
    report = rows[victim["source_id"]]
    assert report["action"] == "failed" and report["details"]["deleted_in_quickbooks"] is True
    assert f"booked SalesReceipt {victim['target_id']} was deleted in QuickBooks" \
        in report["reason"]
    assert [i for i, r in rows.items() if r["action"] == "failed"] == [victim["source_id"]]
    assert len(tenant.entities("SalesReceipt")) == receipts  # not booked again

    second = tenant.run("orders")
    assert second.state == "success"
    rows = {r["source_id"]: r for r in tenant.activity("orders", second.run_id)}
    retired = rows[victim["source_id"]]
    assert retired["action"] == "skipped" and "retired" in retired["reason"]
    assert retired["details"]["deleted_in_quickbooks"] is True
    assert not [r for r in rows.values() if r["action"] == "failed"]
    assert victim["source_id"] not in {f["source_id"] for f in
                                       StateStore().failed(tenant.tenant, "orders")}
    assert len(tenant.entities("SalesReceipt")) == receipts
    history = [r for r in tenant.activity("orders") if r["source_id"] == victim["source_id"]]
    assert [r["action"] for r in sorted(history, key=lambda r: r["id"])] == \
        ["created", "failed", "skipped"]
    assert kept["target_id"] in {d["Id"] for d in tenant.entities("SalesReceipt")}


def test_refunds_retire_a_credit_whose_receipt_was_deleted_in_quickbooks(shop, make_tenant):
    from koppel.store.state import StateStore

    tenant = make_tenant(shop, flows=FLOWS, settings={"unknown_sku": "create_item",
                                                      **ONE_REPORT_ALLOWED})
    assert tenant.run("orders").state == "success"
    booked = {r["source_id"]: r["target_id"] for r in tenant.activity("orders")
              if r["action"] == "created"}
    with shop.api() as api:
        credited = next(order_id for order_id in sorted(booked, key=int)
                        if api.get(f"orders/{order_id}/credit.json").json().get("credits"))
    receipt = booked[credited]
    _qbo_control(tenant, "DELETE", f"/entities/SalesReceipt/{receipt}")

    first = tenant.run("refunds")
    assert first.state == "success"
    rows = tenant.activity("refunds", first.run_id)
    (report,) = [r for r in rows if r["details"].get("order_id") == credited]
    assert report["action"] == "failed" and report["details"]["deleted_in_quickbooks"] is True
    assert f"booked SalesReceipt {receipt} was deleted in QuickBooks" in report["reason"]
    assert [r["source_id"] for r in rows if r["action"] == "failed"] == [report["source_id"]]
    refunded = len(tenant.entities("RefundReceipt"))
    assert refunded == len([r for r in rows if r["action"] == "refunded"])

    second = tenant.run("refunds")
    assert second.state == "success"
    rows = tenant.activity("refunds", second.run_id)
    (retired,) = [r for r in rows if r["source_id"] == report["source_id"]]
    assert retired["action"] == "skipped" and "retired" in retired["reason"]
    assert not [r for r in rows if r["action"] == "failed"]
    assert report["source_id"] not in {f["source_id"] for f in
                                       StateStore().failed(tenant.tenant, "refunds")}
    assert len(tenant.entities("RefundReceipt")) == refunded
