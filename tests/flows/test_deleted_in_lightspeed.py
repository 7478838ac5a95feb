"""An order deleted in the shop never blocks a flow (issue 24).

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
