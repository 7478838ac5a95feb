"""Stock writes exactly once (issues 22 item 4 and 24): the stock flow's QuickBooks writes
go through the one writer (``koppel.hooks.qbo_writer``) under request ids that a retried
load task sends again, so QuickBooks answers the retry from the first attempt.

A shop of its own: three variants that track stock, no orders (nothing reserved), their
QuickBooks items made by a clean products run of the same tenant. Two stock levels then
change in the shop, and the stock run's load task has its write go wrong:

- ``drop_after`` on the stock write (staged through the QuickBooks sandbox's control plane
  when the load starts): QuickBooks books the chunk's inventory adjustment, then the
  connection drops before the answer arrives. The hooks' own retries are cut to one
  attempt, so the fault escapes them and Airflow retries the task (``retries: 1``);
- the worker dies right after QuickBooks answered the adjustment's batch request, before
  koppel recorded anything; Airflow retries the task.

Either way each item's ``QtyOnHand`` moves exactly once (one adjustment, read back through
the sandbox), the retried task logs the records as updated with that adjustment, and the
next run converges: no write, no record left failed.
"""

from __future__ import annotations

from contextlib import contextmanager
from decimal import Decimal
from typing import Any, Callable, Iterator

import httpx
import pytest

from reliability_helpers import capped_retries, killed_after_qbo_write

pytestmark = [pytest.mark.e2e, pytest.mark.faults]

#: the QuickBooks batch endpoint: every write of the stock flow goes through it
BATCH = r"^/v3/company/[^/]+/batch$"
START_LEVEL = 10
#: variant index → its new stock level in the shop (the third stays in sync)
NEW_LEVELS = {0: 17, 1: 4}


def _shop_api(shop) -> httpx.Client:
    creds = shop.credentials()
    return httpx.Client(base_url=f"{creds['base_url']}/{creds['language']}/",
                        auth=(creds["api_key"], creds["api_secret"]), timeout=60)


def _variants(shop) -> list[dict[str, Any]]:
    with _shop_api(shop) as api:
        return sorted(api.get("variants.json", params={"limit": 250}).json()["variants"],
                      key=lambda v: v["id"])


def _set_levels(shop, levels: dict[int, int]) -> None:
    for vid, level in levels.items():
        shop.control.patch(f"/variants/{vid}", json={"stockTracking": "enabled",
                                                     "stockLevel": level}).raise_for_status()


def _on_hand(tenant, skus: list[str]) -> dict[str, Decimal]:
    items = [i for i in tenant.entities("Item") if i.get("Sku") in skus]
    assert sorted(i["Sku"] for i in items) == sorted(skus), "one item per SKU"
    return {i["Sku"]: Decimal(str(i["QtyOnHand"])) for i in items}


def _item_ids(tenant, skus: list[str]) -> dict[str, str]:
    return {i["Sku"]: str(i["Id"]) for i in tenant.entities("Item") if i.get("Sku") in skus}


@contextmanager
def _from_the_load_on(install: Callable[[], None]) -> Iterator[list[int]]:
    """``install`` the fault when the stock load first starts (the exists-check reads
    QuickBooks through batch requests too). Yields how often the load ran."""
    from koppel.flows.stock import StockProcess

    real = StockProcess.load
    tries: list[int] = []

    def load(self, records):
        if not tries:
            install()
        tries.append(len(records))
        return real(self, records)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(StockProcess, "load", load)
        yield tries


@pytest.fixture
def stock_tenant(shop_factory, make_tenant):
    """A tenant whose tasks Airflow retries once, on a shop whose variants all track
    stock, their items made by a clean products run; then two levels change in the shop.
    Returns (tenant, the three variants watched, their SKUs)."""
    from collections import Counter

    shop = shop_factory(orders=0, products=8, customers=1, seed=7)
    variants = _variants(shop)
    _set_levels(shop, {v["id"]: START_LEVEL for v in variants})
    tenant = make_tenant(shop, settings={"retries": 1, "retry_delay_seconds": 0})
    assert tenant.run("products").state == "success"
    # variants with a SKU of their own and one quantity-tracking item under it
    shared = Counter(v.get("sku") for v in variants)
    items = Counter(i.get("Sku") for i in tenant.entities("Item") if i.get("TrackQtyOnHand"))
    watched = [v for v in variants if v.get("sku") and shared[v["sku"]] == 1
               and items[v["sku"]] == 1][:3]
    assert len(watched) == 3, "the seeded shop has too few variants with an item of their own"
    skus = [v["sku"] for v in watched]
    assert set(_on_hand(tenant, skus).values()) == {START_LEVEL}, "products set no quantity"
    _set_levels(shop, {watched[i]["id"]: level for i, level in NEW_LEVELS.items()})
    return tenant, watched, skus


def _load_tries(run) -> list[int]:
    """The try numbers of the run's load task instances."""
    return sorted(ti.try_number for ti in run.get_task_instances() if "load" in ti.task_id)


def _assert_booked_once(tenant, variants, skus, run, adjustments_before: int) -> None:
    """Each changed quantity moved exactly once, by one adjustment, logged as updated."""
    adjustments = tenant.entities("InventoryAdjustment")
    assert len(adjustments) == adjustments_before + 1, "the adjustment was booked twice"
    adjustment = adjustments[-1]
    ids = _item_ids(tenant, skus)
    lines = {line["ItemAdjustmentLineDetail"]["ItemRef"]["value"]:
             Decimal(str(line["ItemAdjustmentLineDetail"]["QtyDiff"]))
             for line in adjustment["Line"]}
    assert lines == {ids[skus[i]]: level - START_LEVEL for i, level in NEW_LEVELS.items()}
    expected = {sku: Decimal(START_LEVEL) for sku in skus}
    expected.update({skus[i]: Decimal(level) for i, level in NEW_LEVELS.items()})
    assert _on_hand(tenant, skus) == expected
    rows = [r for r in tenant.activity("stock") if r["run_id"] == run.run_id
            and r["source_type"] == "variant"]
    updated = {r["source_id"]: r for r in rows if r["action"] == "updated"}
    assert sorted(updated) == sorted(str(variants[i]["id"]) for i in NEW_LEVELS)
    assert len([r for r in rows if r["action"] == "updated"]) == len(NEW_LEVELS), \
        "a record was logged twice"
    for row in updated.values():
        assert row["details"]["method"] == "InventoryAdjustment"
        assert row["details"]["adjustment_id"] == str(adjustment["Id"])
    assert tenant.failed("stock") == set()


def _assert_next_run_writes_nothing(tenant, skus, qbo) -> None:
    quantities = _on_hand(tenant, skus)
    adjustments = len(tenant.entities("InventoryAdjustment"))
    writes = qbo.stats().get("batch_write_operations", 0)
    run = tenant.run("stock")
    assert run.state == "success"
    assert qbo.stats().get("batch_write_operations", 0) == writes, "the next run wrote"
    assert len(tenant.entities("InventoryAdjustment")) == adjustments
    assert _on_hand(tenant, skus) == quantities
    assert not [r for r in tenant.activity("stock") if r["run_id"] == run.run_id
                and r["action"] == "updated"]
    assert tenant.failed("stock") == set()


def test_answer_lost_after_the_adjustment_the_retried_task_books_nothing_twice(
        stock_tenant, qbo):
    tenant, variants, skus = stock_tenant
    adjustments_before = len(tenant.entities("InventoryAdjustment"))
    stats = qbo.stats()
    dropped, replays = stats["faults"].get("drop_after", 0), stats.get("requestid_replays", 0)
    try:
        with _from_the_load_on(lambda: qbo.fault(path=BATCH, method="POST",
                                                 kind="drop_after", times=1)) as tries, \
                capped_retries(1):
            run = tenant.run("stock")
    finally:
        qbo.clear_faults()
    stats = qbo.stats()
    assert stats["faults"].get("drop_after", 0) == dropped + 1, "the fault never fired"
    assert len(tries) == 2, "Airflow did not retry the load task"
    assert _load_tries(run) == [2]
    assert run.state == "success"
    _assert_booked_once(tenant, variants, skus, run, adjustments_before)
    # the retried task's request carried the first one's id: answered from it
    assert stats.get("requestid_replays", 0) >= replays + 1
    _assert_next_run_writes_nothing(tenant, skus, qbo)


def test_worker_killed_after_the_adjustment_the_retried_task_books_nothing_twice(
        stock_tenant, qbo):
    tenant, variants, skus = stock_tenant
    adjustments_before = len(tenant.entities("InventoryAdjustment"))
    with killed_after_qbo_write("InventoryAdjustment") as written:
        run = tenant.run("stock")
    assert written == [1], "the worker was not killed after QuickBooks booked the adjustment"
    assert _load_tries(run) == [2], "Airflow did not retry the load task"
    assert run.state == "success"
    _assert_booked_once(tenant, variants, skus, run, adjustments_before)
    _assert_next_run_writes_nothing(tenant, skus, qbo)
