"""A record skipped by hand on the dashboard stays skipped until the shop changes it.

Later runs read it again wherever their window or look-back overlap covers it (a manual
run reads from a day before the flow's last activity; a scheduled run that starts while
the user skips reads it from the retry list it had already taken). Each such run ends it
``skipped`` with the skip's own reason and never books it, even once the cause is fixed;
an order the shop changed after the skip is booked as any other."""

from __future__ import annotations

import datetime as dt

import pytest

pytestmark = pytest.mark.e2e

GHOST = "NOT-IN-QBO-SKIP"


def _latest(tenant, flow="orders") -> dict[str, dict]:
    latest: dict[str, dict] = {}
    for row in sorted(tenant.activity(flow), key=lambda r: r["id"]):
        latest[row["source_id"]] = row
    return latest


def test_a_skipped_order_stays_skipped_until_the_shop_changes_it(shop_factory, make_tenant):
    from koppel.store.state import StateStore
    from koppel.web.queries import skip_failed

    shop = shop_factory(orders=0, products=1, customers=1)
    line = {"sku": GHOST, "title": "Ghost", "price_incl": "12.10", "tax_rate": "0.21",
            "quantity": 1}
    created = shop.control.post("/orders", json={"orders": [
        {"lines": [line], "status": "completed_shipped", "payment_status": "paid"}
        for _ in range(2)]}).json()["orders"]
    skipped, retried = (str(o["id"]) for o in created)
    tenant = make_tenant(shop, settings={"unknown_sku": "fail",
                                         "error_threshold": {"max_fraction": 1.0}})

    # 1. both fail: the SKU is not in QuickBooks
    assert tenant.run("orders").state == "success"
    latest = _latest(tenant)
    assert [latest[i]["action"] for i in (skipped, retried)] == ["failed", "failed"]

    # 2. the user skips one on the dashboard, then fixes the cause in QuickBooks
    store = StateStore()
    skip_failed(store, tenant.tenant, "orders", [skipped], reason="booked by hand",
                user="accountant", at=dt.datetime.now(dt.timezone.utc))
    assert {r["source_id"] for r in store.failed(tenant.tenant, "orders")} == {retried}
    with tenant.qbo_hook() as qb:
        qb.create("Item", {"Name": "Ghost", "Sku": GHOST, "Type": "NonInventory",
                           "IncomeAccountRef": {"value": "1"}})

    # 3. the next run reads both (its look-back covers them): the retried order is
    #    booked, the skipped one stays skipped with the skip's reason
    run = tenant.run("orders")
    assert run.state == "success"
    rows = {r["source_id"]: r for r in tenant.activity("orders", run_id=run.run_id)}
    assert rows[retried]["action"] == "created"
    held = rows[skipped]
    assert (held["action"], held["reason"]) == ("skipped", "skipped by accountant: booked by hand")
    assert held["details"]["unchanged_since_skip"] is True and held["target_id"] is None
    receipts = [d for d in tenant.entities("SalesReceipt")]
    assert [d["DocNumber"] for d in receipts] == [created[1]["number"]]

    # 4. the shop changes the skipped order: the next run books it as any other
    changed = shop.control.patch(f"/orders/{skipped}", json={"status": "completed_shipped"})
    assert changed.status_code == 200, changed.text[:300]
    run = tenant.run("orders")
    assert run.state == "success"
    rows = {r["source_id"]: r for r in tenant.activity("orders", run_id=run.run_id)}
    assert rows[skipped]["action"] == "created", rows[skipped]
    assert rows[retried]["action"] == "skipped" and rows[retried]["reason"].startswith(
        "already booked as SalesReceipt")
    assert sorted(d["DocNumber"] for d in tenant.entities("SalesReceipt")) \
        == sorted(o["number"] for o in created)
