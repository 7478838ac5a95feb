"""``shipments``, ``taxes`` and ``webhooks`` of the Lightspeed sandbox, over HTTP."""

from __future__ import annotations

from lightspeed_fixtures import *  # noqa: F401,F403
from lightspeed_fixtures import dec


def test_taxes_list_the_shops_vat_rates(api):
    taxes = api.get("taxes.json").json()["taxes"]
    assert {dec(t["rate"]) for t in taxes} == {dec("0.21"), dec("0.09"), dec("0")}
    assert [t["title"] for t in taxes if t["isDefault"]] == ["21% BTW"]
    assert api.get("taxes/count.json").json() == {"count": 3}
    one = api.get(f"taxes/{taxes[1]['id']}.json").json()
    assert one == {"tax": taxes[1]}
    assert api.get("taxes/1.json").status_code == 404


def test_shipped_orders_have_shipments(api):
    orders = api.get("orders.json", params={"limit": 250}).json()["orders"]
    shipped = {o["id"]: o for o in orders
               if o["shipmentStatus"] in ("shipped", "partially_shipped")}
    shipments = api.get("shipments.json", params={"limit": 250}).json()["shipments"]
    assert shipped and {s["order"]["resource"]["id"] for s in shipments} == set(shipped)
    assert api.get("shipments/count.json").json() == {"count": len(shipments)}
    assert [s["id"] for s in shipments] == sorted(s["id"] for s in shipments)
    first = shipments[0]
    order = shipped[first["order"]["resource"]["id"]]
    assert first["createdAt"] >= order["createdAt"]
    assert first["status"] == "shipped" and first["number"].startswith("SHP")
    assert api.get(f"shipments/{first['id']}.json").json() == {"shipment": first}
    assert api.get(f"orders/{order['id']}/shipments.json").json() == {"shipments": [first]}
    assert api.get("shipments.json", params={"order": order["id"]}).json() == {
        "shipments": [first]}
    products = api.get(f"shipments/{first['id']}/products.json").json()["shipmentProducts"]
    rows = {r["id"]: r for r in api.get(f"orders/{order['id']}/products.json").json()[
        "orderProducts"]}
    assert products and all(p["quantity"] <= rows[p["id"]]["quantityOrdered"]
                            for p in products)
    partial = next(o for o in orders if o["shipmentStatus"] == "partially_shipped")
    (parcel,) = api.get(f"orders/{partial['id']}/shipments.json").json()["shipments"]
    shipped_rows = api.get(f"shipments/{parcel['id']}/products.json").json()["shipmentProducts"]
    assert sum(p["quantity"] for p in shipped_rows) < sum(
        r["quantityOrdered"] for r in api.get(f"orders/{partial['id']}/products.json").json()[
            "orderProducts"])
    unshipped = next(o for o in orders if o["shipmentStatus"] == "not_shipped")
    assert api.get(f"orders/{unshipped['id']}/shipments.json").json() == {"shipments": []}
    assert api.get("shipments/1.json").status_code == 404
    assert api.get("orders/1/shipments.json").status_code == 404


def test_shipping_an_order_creates_a_shipment(control, api):
    before = api.get("shipments.json", params={"limit": 250}).json()["shipments"]
    order = next(o for o in api.get("orders.json", params={"limit": 250}).json()["orders"]
                 if o["shipmentStatus"] == "not_shipped" and o["status"] != "cancelled")
    control.patch(f"/_sandbox/orders/{order['id']}", json={"shipmentStatus": "shipped"})
    (new,) = api.get(f"orders/{order['id']}/shipments.json").json()["shipments"]
    assert new["id"] > max(s["id"] for s in before)
    assert api.get("shipments.json", params={"since_id": max(s["id"] for s in before)}
                   ).json()["shipments"] == [new]


def test_webhooks_crud_and_the_limit_of_ten(api):
    body = {"webhook": {"isActive": True, "itemGroup": "orders", "itemAction": "*",
                        "language": "nl", "format": "json",
                        "address": "https://example.com/hooks/lightspeed"}}
    created = api.post("webhooks.json", json=body)
    assert created.status_code == 201
    hook = created.json()["webhook"]
    assert hook["itemGroup"] == "orders" and hook["language"]["code"] == "nl"
    assert api.get(f"webhooks/{hook['id']}.json").json() == {"webhook": hook}
    changed = api.put(f"webhooks/{hook['id']}.json",
                      json={"webhook": {"isActive": False, "itemAction": "updated"}})
    assert changed.json()["webhook"]["isActive"] is False
    assert changed.json()["webhook"]["itemAction"] == "updated"
    for group in ("customers", "products", "variants", "shipments", "invoices", "returns",
                  "quotes", "reviews", "tickets"):
        answer = api.post("webhooks.json", json={"webhook": {**body["webhook"],
                                                             "itemGroup": group}})
        assert answer.status_code == 201, answer.text
    assert api.get("webhooks/count.json").json() == {"count": 10}
    eleventh = api.post("webhooks.json", json=body)
    assert eleventh.status_code == 422 and "webhook" in eleventh.json()["error"]["errors"]
    assert api.delete(f"webhooks/{hook['id']}.json").status_code == 204
    assert api.get(f"webhooks/{hook['id']}.json").status_code == 404
    assert api.post("webhooks.json", json=body).status_code == 201
    listed = api.get("webhooks.json").json()["webhooks"]
    assert len(listed) == 10 and hook["id"] not in [w["id"] for w in listed]
    bad = api.post("webhooks.json", json={"webhook": {"itemGroup": "pets", "itemAction": "eaten",
                                                      "address": "ftp://x"}})
    assert bad.status_code == 422
    assert set(bad.json()["error"]["errors"]) == {"itemGroup", "itemAction", "address"}
