"""Deleting orders, products and customers in the Lightspeed sandbox.

The official PHP client (SEOshop/API-PHP-Client) has ``delete`` on
``ApiResourceProducts`` and ``ApiResourceCustomers`` (``DELETE {lang}/products/{id}.json``,
``DELETE {lang}/customers/{id}.json``; ``ApiClient::sendRequest`` accepts any 2xx with an
empty body) and none on ``ApiResourceOrders``: an order is deleted in the back office,
which the control plane stands in for (``DELETE /_sandbox/orders/{id}``)."""

from __future__ import annotations

from lightspeed_fixtures import *  # noqa: F401,F403


def _credited_order_id(api) -> int:
    for order in api.get("orders.json", params={"limit": 250}).json()["orders"]:
        credits = api.get(f"orders/{order['id']}/credit.json").json().get("credits")
        if credits:
            return order["id"]
    raise AssertionError("the seeded shop has credited orders")


def _is_lightspeed_404(response, method: str = "GET") -> bool:
    if response.status_code != 404:
        return False
    error = response.json()["error"]
    return error["code"] == 404 and error["method"] == method and error["message"]


def test_a_deleted_order_and_everything_under_it_answer_404(api, control):
    order_id = _credited_order_id(api)
    metafield = api.post(f"orders/{order_id}/metafields.json",
                         json={"orderMetafield": {"key": "k", "value": "v"}})
    assert metafield.status_code == 201
    rows = api.get(f"orders/{order_id}/products.json").json()["orderProducts"]
    before = api.get("orders/count.json").json()["count"]

    deleted = control.delete(f"/_sandbox/orders/{order_id}")
    assert deleted.status_code == 204 and deleted.content == b""

    for path in (f"orders/{order_id}.json", f"orders/{order_id}/products.json",
                 f"orders/{order_id}/products/count.json",
                 f"orders/{order_id}/products/{rows[0]['id']}.json",
                 f"orders/{order_id}/credit.json", f"orders/{order_id}/metafields.json",
                 f"orders/{order_id}/shipments.json"):
        assert _is_lightspeed_404(api.get(path)), path
    assert api.get("orders/count.json").json()["count"] == before - 1
    listed = api.get("orders.json", params={"limit": 250}).json()["orders"]
    assert order_id not in {o["id"] for o in listed}
    assert all(r["order"]["resource"]["id"] != order_id
               for r in api.get("returns.json").json().get("returns") or [])
    # a second delete: the order is not there any more
    assert control.delete(f"/_sandbox/orders/{order_id}").status_code == 404
    # the API itself has no order DELETE (the official client has none)
    other = listed[0]["id"]
    assert api.delete(f"orders/{other}.json").status_code == 405
    assert api.get(f"orders/{other}.json").status_code == 200


def test_delete_product_through_the_api_removes_its_variants(api):
    product = api.get("products.json", params={"limit": 1}).json()["products"][0]
    variants = api.get("variants.json", params={"product": product["id"]}).json()["variants"]
    assert variants
    response = api.delete(f"products/{product['id']}.json")
    assert response.status_code == 204 and response.content == b""
    assert _is_lightspeed_404(api.get(f"products/{product['id']}.json"))
    assert _is_lightspeed_404(api.get(f"products/{product['id']}/images.json"))
    for variant in variants:
        assert _is_lightspeed_404(api.get(f"variants/{variant['id']}.json"))
    assert _is_lightspeed_404(api.delete(f"products/{product['id']}.json"), "DELETE")
    # orders that sold it keep their rows
    assert api.get("orders.json", params={"limit": 5}).status_code == 200


def test_delete_customer_through_the_api_and_the_control_plane(api, control):
    customers = api.get("customers.json", params={"limit": 2}).json()["customers"]
    first, second = customers[0]["id"], customers[1]["id"]
    assert api.delete(f"customers/{first}.json").status_code == 204
    assert _is_lightspeed_404(api.get(f"customers/{first}.json"))
    assert control.delete(f"/_sandbox/customers/{second}").status_code == 204
    assert _is_lightspeed_404(api.get(f"customers/{second}.json"))
    assert _is_lightspeed_404(api.delete(f"customers/{second}.json"), "DELETE")
    # orders of a deleted customer still read
    for order in api.get("orders.json", params={"limit": 250}).json()["orders"]:
        assert api.get(f"orders/{order['id']}.json").status_code == 200


def test_control_plane_deletes_a_product(api, control):
    product = api.get("products.json", params={"limit": 1}).json()["products"][0]
    assert control.delete(f"/_sandbox/products/{product['id']}").status_code == 204
    assert _is_lightspeed_404(api.get(f"products/{product['id']}.json"))
