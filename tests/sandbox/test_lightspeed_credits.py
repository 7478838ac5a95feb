"""Credits (``orders/{id}/credit``) and ``returns`` of the Lightspeed sandbox, over HTTP."""

from __future__ import annotations

from decimal import Decimal

from lightspeed_fixtures import *  # noqa: F401,F403
from lightspeed_fixtures import dec

ZERO = Decimal("0.00")


def _credits(api, order_id):
    return api.get(f"orders/{order_id}/credit.json").json()["credits"]


def _paid_order(api, min_units=1, credited=False, min_row_units=1):
    for order in api.get("orders.json", params={"limit": 250}).json()["orders"]:
        if order["paymentStatus"] != "paid" or order["status"] == "cancelled":
            continue
        if bool(_credits(api, order["id"])) != credited:
            continue
        rows = api.get(f"orders/{order['id']}/products.json").json()["orderProducts"]
        if sum(r["quantityOrdered"] for r in rows) >= min_units and \
                max(r["quantityOrdered"] for r in rows) >= min_row_units and \
                (credited or dec(order["shipmentPriceIncl"]) > 0):
            return order, rows
    raise AssertionError("no suitable order in the seeded shop")


def test_seeded_shop_has_credited_and_returned_orders(api):
    orders = api.get("orders.json", params={"limit": 250}).json()["orders"]
    credited = {o["id"]: _credits(api, o["id"]) for o in orders}
    credited = {k: v for k, v in credited.items() if v}
    assert len(credited) == 3
    assert sorted(len(v) for v in credited.values()) == [1, 1, 2]
    for order_id, credits in credited.items():
        rows = {r["id"]: r for r in api.get(f"orders/{order_id}/products.json").json()["orderProducts"]}
        refunded = {}
        for credit in credits:
            assert credit["order"]["resource"]["id"] == order_id
            assert dec(credit["priceIncl"]) == sum(
                (dec(p["priceIncl"]) for p in credit["products"]), ZERO) + dec(
                    credit["shipmentPriceIncl"]) + dec(credit["paymentPriceIncl"])
            assert dec(credit["priceIncl"]) - dec(credit["priceExcl"]) == sum(
                (dec(t["amount"]) for t in credit["taxRates"]), ZERO)
            for product in credit["products"]:
                row_id = product["orderProduct"]["resource"]["id"]
                refunded[row_id] = refunded.get(row_id, 0) + product["quantity"]
        for row_id, row in rows.items():
            assert row["quantityRefunded"] == refunded.get(row_id, 0)
    returns = api.get("returns.json").json()["returns"]
    assert len(returns) == 1 and returns[0]["status"] == "credited"
    (ret,) = returns
    assert ret["credit"]["resource"]["id"] in {c["id"] for cs in credited.values() for c in cs}
    row = api.get(f"orders/{ret['order']['resource']['id']}/products.json").json()["orderProducts"]
    assert sum(r["quantityReturned"] for r in row) == ret["products"][0]["quantity"] == 1
    # the fully credited order refunds exactly what was paid
    for order_id, credits in credited.items():
        order = api.get(f"orders/{order_id}.json").json()["order"]
        if all(r["quantityRefunded"] == r["quantityOrdered"]
               for r in order["products"]["resource"]["embedded"]):
            assert sum((dec(c["priceIncl"]) for c in credits), ZERO) == dec(order["priceIncl"])
            break
    else:
        raise AssertionError("no fully credited order")


def test_partial_credits_add_up_to_the_paid_total_and_limits_hold(api, control):
    order, rows = _paid_order(api, min_units=2)
    before = order["updatedAt"]
    control.put("/_sandbox/clock", json={"now": "2030-01-01T10:00:00+00:00"})
    total = ZERO
    for row in rows:
        for _ in range(row["quantityOrdered"]):
            answer = api.post(f"orders/{order['id']}/credit.json",
                              json={"credit": {"products": [{"id": row["id"], "quantity": 1}]}})
            assert answer.status_code == 201, answer.text
            total += dec(answer.json()["credit"]["priceIncl"])
    again = api.post(f"orders/{order['id']}/credit.json",
                     json={"credit": {"products": [{"id": rows[0]["id"], "quantity": 1}]}})
    assert again.status_code == 422 and "products" in again.json()["error"]["errors"]
    ship = api.post(f"orders/{order['id']}/credit.json", json={"credit": {"shipment": True}})
    assert ship.status_code == 201
    total += dec(ship.json()["credit"]["priceIncl"])
    if dec(order["paymentPriceIncl"]):  # a payment fee is credited on its own
        fee = api.post(f"orders/{order['id']}/credit.json", json={"credit": {"payment": True}})
        assert fee.status_code == 201
        assert dec(fee.json()["credit"]["paymentPriceIncl"]) == dec(order["paymentPriceIncl"])
        total += dec(fee.json()["credit"]["priceIncl"])
        assert api.post(f"orders/{order['id']}/credit.json",
                        json={"credit": {"payment": True}}).status_code == 422
    assert total == dec(order["priceIncl"])
    assert api.post(f"orders/{order['id']}/credit.json",
                    json={"credit": {"shipment": True}}).status_code == 422
    assert api.post(f"orders/{order['id']}/credit.json", json={"credit": {}}).status_code == 422
    after = api.get(f"orders/{order['id']}.json").json()["order"]
    assert after["updatedAt"] != before and after["updatedAt"].startswith("2030-01-01")
    assert dec(after["priceIncl"]) == dec(order["priceIncl"]), "order totals stay as ordered"
    assert len(_credits(api, order["id"])) == sum(r["quantityOrdered"] for r in rows) + 1 \
        + bool(dec(order["paymentPriceIncl"]))


def test_return_lifecycle_and_credit_from_a_return(api, control):
    order, rows = _paid_order(api, min_row_units=2)
    row = max(rows, key=lambda r: r["quantityOrdered"])
    opened = control.post(f"/_sandbox/orders/{order['id']}/returns",
                          json={"products": [{"id": row["id"], "quantity": 1}], "reason": "Kapot"})
    assert opened.status_code == 201
    ret = opened.json()["return"]
    assert ret["status"] == "requested" and ret["credit"] is False
    listed = api.get("returns.json", params={"order": order["id"]}).json()["returns"]
    assert [r["id"] for r in listed] == [ret["id"]]
    assert api.get("returns/count.json", params={"status": "requested"}).json()["count"] == 1
    assert api.put(f"returns/{ret['id']}.json",
                   json={"return": {"status": "credited"}}).status_code == 422
    received = api.put(f"returns/{ret['id']}.json", json={"return": {"status": "received"}})
    assert received.json()["return"]["status"] == "received"
    assert api.get(f"orders/{order['id']}/products/{row['id']}.json").json()[
        "orderProduct"]["quantityReturned"] == 1
    credit = api.post(f"orders/{order['id']}/credit.json",
                      json={"credit": {"return": ret["id"]}}).json()["credit"]
    assert credit["return"]["resource"]["id"] == ret["id"]
    assert [p["quantity"] for p in credit["products"]] == [1]
    linked = api.get(f"returns/{ret['id']}.json").json()["return"]
    assert linked["status"] == "credited" and linked["credit"]["resource"]["id"] == credit["id"]
    assert api.delete(f"returns/{ret['id']}.json").status_code == 422
    assert api.post(f"orders/{order['id']}/credit.json",
                    json={"credit": {"return": ret["id"]}}).status_code == 422
    other = control.post(f"/_sandbox/orders/{order['id']}/returns",
                         json={"products": [{"id": row["id"], "quantity": 1}]}).json()["return"]
    assert api.delete(f"returns/{other['id']}.json").status_code == 204
    assert api.get(f"returns/{other['id']}.json").status_code == 404
