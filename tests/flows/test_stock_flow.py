"""The stock flow end to end through Airflow, both directions, against the sandboxes.

A small known catalogue is added to a freshly seeded shop: variants A, B, C track stock,
D does not, E has no QuickBooks item. Known orders reserve stock:

==========  =====================================  ==========================
order       lines (variant × quantity)              reserves
==========  =====================================  ==========================
open        A × 2, awaiting payment                 A 2
partly      A × 3, B × 4, partially shipped (A      B 4
            shipped in full, B not at all)
shipped     B × 5, completed and shipped            nothing
cancelled   C × 6                                   nothing
pickup      C × 1, awaiting pickup                  C 1
==========  =====================================  ==========================
"""

from __future__ import annotations

from decimal import Decimal

import pytest

pytestmark = pytest.mark.e2e

LEVELS = {"A": 20, "B": 10, "C": 7, "D": 0, "E": 4}
TRACKED = {"A": True, "B": True, "C": True, "D": False, "E": True}
RESERVED = {"A": 2, "B": 4, "C": 1}


def _sku(letter: str) -> str:
    return f"STOCKTEST-{letter}"


@pytest.fixture
def catalogue(shop_factory):
    """The shop with variants A–E and the known orders; returns (shop, variant ids)."""
    shop = shop_factory(orders=0, products=1, customers=1)
    variants: dict[str, int] = {}
    with shop.api() as api:
        for letter in LEVELS:
            created = shop.control.post("/products", json={"products": [{
                "title": f"Stock test {letter}", "sku": _sku(letter), "priceIncl": "10.00"}]})
            created.raise_for_status()
            product_id = created.json()["products"][0]["id"]
            found = api.get("variants.json", params={"product": product_id}).json()["variants"]
            variants[letter] = found[0]["id"]
    for letter, vid in variants.items():
        shop.control.patch(f"/variants/{vid}", json={
            "stockTracking": "enabled" if TRACKED[letter] else "disabled",
            "stockLevel": LEVELS[letter]}).raise_for_status()

    def order(lines, status, **extra):
        body = {"lines": [{"variant_id": variants[k], "quantity": q} for k, q in lines],
                "status": status, **extra}
        shop.control.post("/orders", json={"orders": [body]}).raise_for_status()

    order([("A", 2)], "processing_awaiting_payment")
    order([("A", 3), ("B", 4)], "processing_awaiting_shipment", shipment_status="partially_shipped")
    order([("B", 5)], "completed_shipped")
    order([("C", 6)], "cancelled")
    order([("C", 1)], "processing_awaiting_pickup", shipment_method="core|pickup|store")
    return shop, variants


def _inventory_items(tenant, quantities: dict[str, float]) -> dict[str, str]:
    """QBO inventory items with the test SKUs; returns SKU letter → item id."""
    accounts = {a["Name"]: a["Id"] for a in tenant.entities("Account")}
    ids = {}
    with tenant.qbo_hook() as qb:
        for letter, qty in quantities.items():
            item = qb.create("Item", {
                "Name": f"Stock test {letter}", "Sku": _sku(letter), "Type": "Inventory",
                "TrackQtyOnHand": True, "QtyOnHand": qty, "InvStartDate": "2024-01-01",
                "IncomeAccountRef": {"value": accounts["Sales of Product Income"]},
                "ExpenseAccountRef": {"value": accounts["Cost of Goods Sold"]},
                "AssetAccountRef": {"value": accounts["Inventory Asset"]},
                "SalesTaxCodeRef": {"value": "1"}})
            ids[letter] = item["Id"]
    return ids


def _on_hand(tenant) -> dict[str, Decimal]:
    return {i["Sku"]: Decimal(str(i["QtyOnHand"])) for i in tenant.entities("Item")
            if str(i.get("Sku", "")).startswith("STOCKTEST-")}


def _levels(shop, variants) -> dict[str, int]:
    with shop.api() as api:
        return {letter: api.get(f"variants/{vid}.json").json()["variant"]["stockLevel"]
                for letter, vid in variants.items()}


def _mine(rows, ids) -> dict[str, dict]:
    wanted = {str(i) for i in ids}
    return {r["source_id"]: r for r in rows if r["source_id"] in wanted}


def test_shop_to_quickbooks_writes_available_minus_reserved_once(catalogue, make_tenant):
    shop, variants = catalogue
    tenant = make_tenant(shop)
    items = _inventory_items(tenant, {"A": 5, "B": 6, "C": 0, "D": 3})
    calls_before = dict(shop.stats()["by_route"])
    qbo_before = tenant.qbo_stats()

    first = tenant.run("stock")
    assert first.state == "success"
    qbo_after = tenant.qbo_stats()
    # QuickBooks: the chunk's one adjustment is one write in one batch request (the one
    # writer's); the exists-check's two look-ups are plain queries (fewer than the 12 that
    # would cost as much as a batch request under the limits); no other write route
    assert qbo_after.get("batch_write_operations", 0) - \
        qbo_before.get("batch_write_operations", 0) == 1
    qbo_calls = {route: n - qbo_before["by_route"].get(route, 0)
                 for route, n in qbo_after["by_route"].items()
                 if n - qbo_before["by_route"].get(route, 0)}
    assert qbo_calls.get("POST /v3/company/{realm_id}/batch") == 1
    assert qbo_calls.get("POST /v3/company/{realm_id}/query") == 2
    assert not [r for r in qbo_calls if r.startswith("POST /v3/")
                and not r.endswith(("/batch", "/query"))]
    calls = {route: n - calls_before.get(route, 0)
             for route, n in shop.stats()["by_route"].items()}
    # Lightspeed documents no ``status`` filter on orders.json: one listing of every order
    # (one page here) with the open ones picked client-side, then the rows of the three
    # open orders (open, partly, pickup) only
    assert calls.get("GET /{lang}/orders.json") == 1
    assert calls.get("GET /{lang}/orders/{order_id:int}/products.json") == 3
    on_hand = _on_hand(tenant)
    assert on_hand[_sku("A")] == LEVELS["A"] - RESERVED["A"]  # 18
    assert on_hand[_sku("B")] == LEVELS["B"] - RESERVED["B"]  # 6: already right
    assert on_hand[_sku("C")] == LEVELS["C"] - RESERVED["C"]  # 6
    assert on_hand[_sku("D")] == 3  # the shop does not track D: left alone
    adjustments = tenant.entities("InventoryAdjustment")
    assert len(adjustments) == 1  # every change of the chunk in one adjustment
    lines = {line["ItemAdjustmentLineDetail"]["ItemRef"]["value"]:
             Decimal(str(line["ItemAdjustmentLineDetail"]["QtyDiff"]))
             for line in adjustments[0]["Line"]}
    assert lines == {items["A"]: 13, items["C"]: 6}  # only changed quantities

    activity = _mine(tenant.activity("stock", first.run_id), variants.values())
    assert activity[str(variants["A"])]["action"] == "updated"
    assert activity[str(variants["A"])]["target_id"] == items["A"]
    assert activity[str(variants["C"])]["action"] == "updated"
    assert activity[str(variants["E"])]["action"] == "skipped"
    assert "no QuickBooks item" in activity[str(variants["E"])]["reason"]
    assert str(variants["B"]) not in activity and str(variants["D"]) not in activity

    before_second = dict(shop.stats()["by_route"])
    second = tenant.run("stock")
    assert second.state == "success"
    calls = {route: n - before_second.get(route, 0)
             for route, n in shop.stats()["by_route"].items() if n - before_second.get(route, 0)}
    # a repeat run holds the open orders' rows (koppel's reservations table): one count,
    # one listing of the orders changed since the last scan, no rows read again
    assert calls == {"GET /{lang}/variants.json": 1, "GET /{lang}/orders/count.json": 1,
                     "GET /{lang}/orders.json": 1}
    assert len(tenant.entities("InventoryAdjustment")) == 1  # nothing changed: no write
    again = _mine(tenant.activity("stock", second.run_id), variants.values())
    assert not [r for r in again.values() if r["action"] == "updated"]
    assert _on_hand(tenant) == on_hand


def test_quickbooks_to_shop_sets_stock_levels_once(catalogue, make_tenant):
    shop, variants = catalogue
    tenant = make_tenant(shop, settings={"stock": {"calculation": "stock_level",
                                                   "target_manages_stock": True}},
                         flows={"stock": {"direction": "quickbooks_to_lightspeed"}})
    _inventory_items(tenant, {"A": 11, "B": 10, "C": 0, "D": 3, "F": 2})

    first = tenant.run("stock")
    assert first.state == "success"
    levels = _levels(shop, variants)
    assert levels == {"A": 11, "B": 10, "C": 0, "D": 0, "E": 4}  # D untracked: left alone
    activity = tenant.activity("stock", first.run_id)
    updated = {r["target_id"] for r in activity if r["action"] == "updated"}
    assert updated == {str(variants["A"]), str(variants["C"])}
    skipped = [r for r in activity if r["action"] == "skipped"]
    assert any("STOCKTEST-F" in (r["reason"] or "") for r in skipped)

    writes = shop.stats()["by_route"].get("PUT /{lang}/variants/{variant_id}.json", 0)
    second = tenant.run("stock")
    assert second.state == "success"
    assert shop.stats()["by_route"].get("PUT /{lang}/variants/{variant_id}.json", 0) == writes
    assert not [r for r in tenant.activity("stock", second.run_id) if r["action"] == "updated"]


def test_company_without_inventory_adjustments_gets_qty_on_hand_by_sparse_update(
        catalogue, make_tenant):
    """A company that refuses InventoryAdjustment (fault 500, unsupported operation)."""
    from koppel.flows.base import FlowRun
    from koppel.flows.registry import load_tenant, _tenant_set
    from koppel.flows.stock import StockProcess
    from koppel.hooks.errors import QBOFault
    from koppel.hooks.quickbooks import BatchResult

    shop, variants = catalogue
    tenant = make_tenant(shop)
    _inventory_items(tenant, {"A": 5, "B": 6, "C": 0})
    _tenant_set.cache_clear()
    run = FlowRun(tenant=load_tenant(tenant.tenant), flow="stock", run_id="manual__fallback",
                  params={})
    qb = tenant.qbo_hook()
    real_batch = qb.batch
    sent: list[tuple[list[str], str | None]] = []

    def batch(ops, **kw):
        ops = list(ops)
        if any(op.entity == "InventoryAdjustment" for op in ops):
            sent.append(([op.entity for op in ops], kw.get("request_id")))
            return {op.bid: BatchResult(op.bid, fault=QBOFault(
                "Unsupported Operation", code=500, detail="not on this plan")) for op in ops}
        if any(op.operation == "update" for op in ops):
            sent.append(([op.entity for op in ops], kw.get("request_id")))
        return real_batch(ops, **kw)

    qb.batch = batch
    run.__dict__["quickbooks"] = qb
    # B failed last run; it needs no write now, so it is ended (and leaves the retry list)
    run.store.mark_failed(tenant.tenant, "stock", str(variants["B"]), "QuickBooks fault 6000")
    process = StockProcess(run)
    checked = process.exists_check(process.extract())
    in_sync = {e.source_id: (e.action, e.reason) for e in checked.ended}
    assert in_sync[str(variants["B"])] == ("skipped", "already in sync")
    result = process.load(checked.passed)
    assert {e.source_id: e.details["method"] for e in result.ended} == {
        str(variants["A"]): "QtyOnHand", str(variants["C"]): "QtyOnHand"}
    on_hand = _on_hand(tenant)
    assert (on_hand[_sku("A")], on_hand[_sku("B")], on_hand[_sku("C")]) == (18, 6, 6)
    assert tenant.entities("InventoryAdjustment") == []
    # through the one writer: one adjustment request, then one batch of sparse updates,
    # each under a deterministic request id
    assert [entities for entities, _ in sent] == [["InventoryAdjustment"], ["Item", "Item"]]
    assert all(rid for _, rid in sent)
    qb.close()


def test_dry_run_with_a_formula_reports_and_sends_nothing(catalogue, make_tenant):
    shop, variants = catalogue
    tenant = make_tenant(shop, settings={"stock": {
        "calculation": "formula", "formula": "max(stock_level - reserved - buffer, 0)",
        "buffer": 5}})
    items = _inventory_items(tenant, {"A": 5, "B": 6, "C": 0})

    run = tenant.run("stock", dry_run=True)
    assert run.state == "success"
    assert tenant.entities("InventoryAdjustment") == []
    assert _on_hand(tenant) == {_sku("A"): 5, _sku("B"): 6, _sku("C"): 0}
    activity = _mine(tenant.activity("stock", run.run_id), variants.values())
    expected = {"A": (5, 13), "B": (6, 1), "C": (0, 1)}  # max(level - reserved - 5, 0)
    for letter, (before, after) in expected.items():
        row = activity[str(variants[letter])]
        assert row["action"] == "skipped"
        assert row["reason"] == (f"dry run: would adjust QtyOnHand of Item {items[letter]} "
                                 f"from {before} to {after}")


def test_open_orders_are_picked_client_side_without_a_status_filter():
    """Lightspeed documents no ``status`` filter on orders.json (Falkplan/lightspeedecom-api
    ``LightspeedEComClient.getOrders``: "filters as 'customer', 'page' or 'limit'"), so the
    reservations read every order once, ids and statuses only, and keep the open ones:
    an open ``status`` (the ``Order.java`` enum values that may hold unshipped rows) and a
    ``shipmentStatus`` that is neither ``shipped`` nor ``cancelled``."""
    from types import SimpleNamespace

    from koppel.flows.stock import StockProcess
    from koppel.hooks.lightspeed_models import Order

    statuses = [("new", "not_shipped"), ("offer", "not_shipped"), ("on_hold", "not_shipped"),
                ("processing_partially_shipped", "partially_shipped"),
                ("processing_awaiting_shipment", "shipped"), ("completed_shipped", "shipped"),
                ("cancelled", "cancelled"), ("processing_awaiting_payment", "cancelled"),
                ("PROCESSING", "not_shipped"), ("processing_ready_for_pickup", None)]
    orders = [Order.from_api({"id": i, "status": s, "shipmentStatus": sh})
              for i, (s, sh) in enumerate(statuses, start=1)]
    calls: list[dict] = []

    class Hook:
        def iter_orders(self, window=None, **filters):
            calls.append({"window": window, **filters})
            return iter(orders)

    process = StockProcess(SimpleNamespace(lightspeed=Hook()))
    assert [o.id for o in process._open_orders()] == [1, 3, 4, 9, 10]
    assert calls == [{"window": None, "fields": "id,status,shipmentStatus,updatedAt"}]
    assert sorted(process._listed) == list(range(1, 11))  # every order counted


def _calls_since(shop, before: dict) -> dict[str, int]:
    return {route: n - before.get(route, 0) for route, n in shop.stats()["by_route"].items()
            if n - before.get(route, 0)}


def test_repeat_runs_read_only_changed_orders_and_notice_deletions(catalogue, make_tenant):
    """Reservations come from the rows koppel holds: a repeat run reads the rows of the
    open orders changed since its last scan only; an order shipped since drops out, an
    order deleted in the shop (a short order count) makes that run list every order once;
    a full resync reads every open order again. Each step: the same quantities as a
    fresh read of the shop would give."""
    shop, variants = catalogue
    tenant = make_tenant(shop)
    _inventory_items(tenant, {"A": 5, "B": 6, "C": 0})
    assert tenant.run("stock").state == "success"
    assert _on_hand(tenant) == {_sku("A"): 18, _sku("B"): 6, _sku("C"): 6}
    by_status = {o["status"]: o["id"] for o in shop.orders()}

    # the A × 2 order ships, a new order reserves A × 3
    shop.control.patch(f"/orders/{by_status['processing_awaiting_payment']}", json={
        "status": "completed_shipped", "shipmentStatus": "shipped"}).raise_for_status()
    shop.control.post("/orders", json={"orders": [{
        "lines": [{"variant_id": variants["A"], "quantity": 3}],
        "status": "processing_awaiting_shipment"}]}).raise_for_status()
    before = dict(shop.stats()["by_route"])
    assert tenant.run("stock").state == "success"
    assert _calls_since(shop, before) == {
        "GET /{lang}/variants.json": 1, "GET /{lang}/orders/count.json": 1,
        "GET /{lang}/orders.json": 1,
        "GET /{lang}/orders/{order_id:int}/products.json": 1}  # the new order only
    assert _on_hand(tenant) == {_sku("A"): 17, _sku("B"): 6, _sku("C"): 6}

    # the pickup order (C × 1) is deleted in the shop: no window shows that, the count does
    assert shop.control.delete(f"/orders/{by_status['processing_awaiting_pickup']}"
                               ).status_code == 204
    before = dict(shop.stats()["by_route"])
    assert tenant.run("stock").state == "success"
    assert _calls_since(shop, before) == {
        "GET /{lang}/variants.json": 1, "GET /{lang}/orders/count.json": 1,
        "GET /{lang}/orders.json": 2}  # the window, then every order once; no rows
    assert _on_hand(tenant) == {_sku("A"): 17, _sku("B"): 6, _sku("C"): 7}

    before = dict(shop.stats()["by_route"])
    assert tenant.run("stock").state == "success"  # nothing changed: a count and a window
    assert _calls_since(shop, before) == {
        "GET /{lang}/variants.json": 1, "GET /{lang}/orders/count.json": 1,
        "GET /{lang}/orders.json": 1}

    before = dict(shop.stats()["by_route"])
    assert tenant.run("stock", full_resync=True).state == "success"
    assert _calls_since(shop, before) == {
        "GET /{lang}/variants.json": 1, "GET /{lang}/orders.json": 1,
        "GET /{lang}/orders/{order_id:int}/products.json": 2}  # partly and the new one
    assert _on_hand(tenant) == {_sku("A"): 17, _sku("B"): 6, _sku("C"): 7}
