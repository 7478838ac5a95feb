"""A Lightspeed client that reads every resource a shop has — orders with their rows,
metafields and shipments, products with their images, variants, categories, customers,
returns, the shop — finishes against the sandbox under a limit it meets (429s with the
documented headers), with no 404 and every record once.

The client is koppel's own ``LightspeedHook`` (paging, since-id scans, pacing from the
``X-RateLimit-*`` headers, ``Retry-After``); no third-party Lightspeed eCom client can be
installed here (none is published on PyPI; see ``tests/thirdparty/README.md``)."""

from __future__ import annotations

from collections import Counter

from koppel.hooks.lightspeed import Resource
from koppel.hooks.lightspeed_models import LSModel

from conftest import control

SHIPMENTS = Resource("shipments.json", "shipments", LSModel)
ORDER_SHIPMENTS = Resource("orders/{order_id}/shipments.json", "shipments", LSModel)
RETURNS = Resource("returns.json", "returns", LSModel)
IMAGES = "product_images"


def test_every_resource_is_read_once_under_a_limit_the_client_meets(ls, ls_hook):
    hook = ls_hook
    # a 5-minute window of 40 calls, compressed to 1 s: the client must pace itself over
    # several windows; and three 429s with Retry-After it must wait out
    control(ls["url"], "PUT", "/ratelimit", json={"limit_5min": 40, "retry_after": "seconds",
                                                 "clear": True})
    control(ls["url"], "PUT", "/time-scale", json={"scale": 300.0})
    control(ls["url"], "POST", "/faults", json={"path": "^/nl/(products|orders/[0-9]+/shipments)",
                                                "kind": "429", "times": 3, "retry_after": 1})
    try:
        shop = hook.get_shop()
        orders = list(hook.iter_orders())
        rows = {o.id: list(hook.iter_order_rows(o.id)) for o in orders}
        metafields = {o.id: list(hook.iter_order_metafields(o.id)) for o in orders}
        shipments_by_order = {o.id: list(hook.iter_records(ORDER_SHIPMENTS, order_id=o.id))
                              for o in orders}
        shipments = list(hook.iter_records(SHIPMENTS))
        products = list(hook.iter_products())
        images = {p.id: list(hook.iter_product_images(p.id)) for p in products}
        variants = list(hook.iter_variants())
        categories = list(hook.iter_categories())
        customers = list(hook.iter_customers())
        returns = list(hook.iter_records(RETURNS))
    finally:
        control(ls["url"], "DELETE", "/faults")
        control(ls["url"], "PUT", "/time-scale", json={"scale": 1.0})
        control(ls["url"], "PUT", "/ratelimit", json={"limit_5min": 300, "clear": True})

    stats = control(ls["url"], "GET", "/stats")
    assert stats["total"] > 4 * 40, "fewer calls than four windows: the test proves nothing"
    assert stats["by_status"].get("429", 0) >= 3  # the injected ones, waited out
    assert "404" not in stats["by_status"], stats["by_status"]
    assert set(stats["by_status"]) <= {"200", "429"}, stats["by_status"]

    # every record once, and as many as the shop's own counts say
    def counted(path: str) -> int:
        return hook.count(path)

    assert shop.id
    for name, records in (("orders", orders), ("products", products), ("variants", variants),
                          ("categories", categories), ("customers", customers)):
        ids = [r.id for r in records]
        assert len(ids) == len(set(ids)) == counted(name), name
    assert len(orders) == 60 and len(customers) >= 12 and len(products) == 8
    assert all(rows[o.id] for o in orders)  # every order has rows
    # shipments: the shop-wide list holds exactly the per-order lists
    per_order = Counter(s.id for found in shipments_by_order.values() for s in found)
    assert sorted(per_order) == sorted(s.id for s in shipments)
    assert all(n == 1 for n in per_order.values())
    assert {int(s.to_api()["order"]["resource"]["id"]) for s in shipments} <= {o.id for o in orders}
    # returns point at orders the shop has
    assert {int(r.to_api()["order"]["resource"]["id"]) for r in returns} <= {o.id for o in orders}
    # every product's images read; metafields answered (an empty list is an answer)
    assert set(images) == {p.id for p in products}
    assert set(metafields) == {o.id for o in orders}
