"""The products flow end to end through Airflow against the sandboxes, plus the pure
pieces it is built from (window planning, category folding and keys).

The seeded shop (seed 3, five products) holds a size/colour product, a product without
images, two variants sharing one SKU and images on most products."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from koppel.flows.products import ProductsProcess, combined_description
from koppel.flows.products_source import LOOKBACK, plan_read, tax_rate
from koppel.flows.products_target import plan_categories

ACCOUNTS = {"income": "Sales of Product Income", "expense": "Cost of Goods Sold",
            "asset": "Inventory Asset"}


def _items(tenant) -> list[dict]:
    return [i for i in tenant.entities("Item") if i.get("Type") != "Category"
            and i.get("Sku") and i["Name"] not in ("Services", "Shipping", "T-shirt")]


def _variants(shop) -> list[dict]:
    with shop.api() as api:
        return api.get("variants.json", params={"limit": 250}).json()["variants"]


def _sku_of(variant: dict) -> str:
    return (variant.get("sku") or variant.get("articleCode") or "").strip()


@pytest.mark.e2e
def test_products_sync_end_to_end(shop_factory, make_tenant):
    shop = shop_factory(orders=0, products=5, customers=1)
    tenant = make_tenant(shop, settings={"products": {
        "inventory": True, "accounts": ACCOUNTS, "ean_target": "description",
        "update_policy": {"Name": "create_only", "UnitPrice": "always"}}})

    # -- first sync: every variant with a unique SKU becomes one item -------------------
    first = tenant.run("products")
    assert first.state == "success"
    variants = _variants(shop)
    skus = Counter(_sku_of(v) for v in variants)
    unique = {_sku_of(v): v for v in variants if skus[_sku_of(v)] == 1}
    shared = {s for s, n in skus.items() if n > 1}
    assert shared, "the seed has two variants sharing one SKU"
    items = _items(tenant)
    assert sorted(i["Sku"] for i in items) == sorted(unique)
    by_sku = {i["Sku"]: i for i in items}
    matrix = [v for v in variants if v.get("options")]
    assert matrix, "the seed has a size/colour product"
    for variant in matrix:
        if _sku_of(variant) in by_sku:
            name = by_sku[_sku_of(variant)]["Name"]
            assert all(opt["value"] in name for opt in variant["options"])
    categories = [i for i in tenant.entities("Item") if i.get("Type") == "Category"]
    ours = [c for c in categories if c["Name"] != "Clothing"]
    assert ours and max(c.get("Level", 0) for c in ours) == 2  # three seeded levels
    assert all(i.get("ParentRef") for i in items)
    assert len({c["FullyQualifiedName"] for c in ours}) == len(ours)  # each created once
    attachments = tenant.entities("Attachable")
    assert attachments, "the seeded products carry images"
    refs = Counter(a["AttachableRef"][0]["EntityRef"]["value"] for a in attachments)
    assert set(refs) <= {i["Id"] for i in items}
    activity = tenant.activity("products", first.run_id)
    conflicts = [a for a in activity if a["action"] == "conflict"]
    assert len(conflicts) == 2 and all("duplicate SKU" in a["reason"] for a in conflicts)
    created = [a for a in activity if a["action"] == "created" and a["source_type"] == "variant"]
    assert len(created) == len(unique)

    # -- second sync: nothing changed, nothing written ---------------------------------
    snapshot = {i["Id"]: i["SyncToken"] for i in tenant.entities("Item")}
    second = tenant.run("products", full_resync=True)
    assert second.state == "success"
    assert {i["Id"]: i["SyncToken"] for i in tenant.entities("Item")} == snapshot
    assert len(tenant.entities("Attachable")) == len(attachments)
    actions = Counter(a["action"] for a in tenant.activity("products", second.run_id))
    assert set(actions) <= {"skipped", "conflict"}

    # -- an update field changes: only that item is written -----------------------------
    target = next(v for v in variants if _sku_of(v) in unique and not v.get("options"))
    shop.control.patch(f"/variants/{target['id']}", json={"priceIncl": "123.45"}).raise_for_status()
    # -- a create-only field changes (the product title → item Name) --------------------
    other = next(v for v in variants if _sku_of(v) in unique and v["id"] != target["id"]
                 and v["product"]["resource"]["id"] != target["product"]["resource"]["id"])
    other_item = by_sku[_sku_of(other)]
    shop.control.patch(f"/products/{other['product']['resource']['id']}",
                       json={"title": "Volledig nieuwe titel"}).raise_for_status()
    # -- one side of the duplicate SKU changes: it is read alone, still reported --------
    duplicate = max((v for v in variants if _sku_of(v) in shared), key=lambda v: v["id"])
    shop.control.patch(f"/variants/{duplicate['id']}", json={"priceIncl": "77.00"}).raise_for_status()
    # -- a new variant (a new simple product) ------------------------------------------
    shop.control.post("/products", json={"products": [{
        "title": "Nieuw product", "sku": "NEW-SKU-1", "priceIncl": "9.95"}]}).raise_for_status()

    third = tenant.run("products")
    assert third.state == "success"
    after = {i["Id"]: i for i in tenant.entities("Item")}
    changed = {i for i, item in after.items() if i in snapshot and item["SyncToken"] != snapshot[i]}
    target_item = by_sku[_sku_of(target)]
    assert changed == {target_item["Id"]}
    assert float(after[target_item["Id"]]["UnitPrice"]) == 123.45
    assert after[other_item["Id"]]["Name"] == other_item["Name"]
    new = [i for i in after.values() if i.get("Sku") == "NEW-SKU-1"]
    assert len(new) == 1 and new[0]["Name"] == "Nieuw product"
    assert not [i for i in after.values() if i.get("Sku") in shared]  # still reported
    created_now = [i for i in after if i not in snapshot]
    assert created_now == [new[0]["Id"]]
    third_activity = tenant.activity("products", third.run_id)
    skipped_other = [a for a in third_activity if a["source_id"] == str(other["id"])]
    assert skipped_other and skipped_other[0]["action"] == "skipped"
    assert Counter(a["action"] for a in third_activity
                   if a["source_id"] in {str(v["id"]) for v in variants
                                         if _sku_of(v) in shared}) == {"conflict": 2}


@pytest.mark.e2e
def test_products_dry_run_writes_nothing(shop_factory, make_tenant):
    shop = shop_factory(orders=0, products=2, customers=1)
    tenant = make_tenant(shop, settings={"products": {"inventory": True, "accounts": ACCOUNTS}})
    before = len(tenant.entities("Item"))
    run = tenant.run("products", dry_run=True)
    assert run.state == "success"
    assert len(tenant.entities("Item")) == before
    assert not tenant.entities("Attachable")
    reasons = [a["reason"] for a in tenant.activity("products", run.run_id)
               if a["source_type"] == "variant"]
    assert reasons and all(r.startswith("dry run: would create Item") for r in reasons)


# --------------------------------------------------------------------------- pure pieces


def test_category_paths_deeper_than_four_levels_are_folded_and_keyed_by_ids():
    plan = plan_categories(["A", "B", "C", "D", "E", "F"], [1, 2, 3, 4, 5, 6])
    assert [n.name for n in plan.nodes] == ["A", "B", "C", "D > E > F"]
    assert plan.folded and plan.original_depth == 6
    assert [n.key for n in plan.nodes] == ["1", "2", "3", "4>5>6"]
    assert [n.parent for n in plan.nodes] == [None, "1", "2", "3"]
    assert plan.full_name == "A:B:C:D > E > F"


def test_category_keys_without_ids_follow_the_names():
    one = plan_categories(["Kleding", "Shirts"], None)
    two = plan_categories(["Kleding", "Broeken"], None)
    assert one.nodes[0].key == two.nodes[0].key
    assert one.nodes[1].key != two.nodes[1].key
    assert not one.folded


def test_the_catalogue_read_follows_koppels_one_read_policy():
    from koppel.flows.base import ReadWindow, read_window

    now = dt.datetime(2025, 7, 1, 12, tzinfo=dt.timezone.utc)
    last = now - dt.timedelta(hours=2)
    first = plan_read({}, read_window({}, run_type="manual", interval_start=None,
                                      interval_end=None, prev_success_end=None,
                                      last_activity=None, now=now))
    assert first.full and first.reason == "first run"
    manual = plan_read({}, read_window({}, run_type="manual", interval_start=None,
                                       interval_end=None, prev_success_end=None,
                                       last_activity=last, lookback=LOOKBACK, now=now))
    assert not manual.full and manual.window.start == last - LOOKBACK
    assert manual.window.end == now
    only = plan_read({"records": ["SKU-1"]}, ReadWindow(last, now, "since the last activity"))
    assert only.full and only.only == {"SKU-1"}
    since = plan_read({}, ReadWindow(dt.datetime(2025, 6, 1, tzinfo=dt.timezone.utc), now,
                                     "since/until params"))
    assert since.window.start == dt.datetime(2025, 6, 1, tzinfo=dt.timezone.utc)
    assert since.reason == "since/until params"


def test_tax_rate_from_prices_and_description_composition():
    assert tax_rate({"priceIncl": "12.10", "priceExcl": "10.00"}) == "0.21"
    assert tax_rate({"priceIncl": "10", "priceExcl": "0"}) is None
    from koppel.domain.records import MappedItem

    item = MappedItem(source_product_id="1", source_variant_id="2", name="T",
                      description="Short.", long_description="Long text.")
    assert combined_description(item) == "Short.\n\nLong text."
    same = item.model_copy(update={"long_description": "Short."})
    assert combined_description(same) == "Short."


def test_process_declares_its_steps():
    from koppel.flows import catalog

    assert catalog.flow("products").steps == ("extract", "enrich", "exists_check", "load")
    assert ProductsProcess.source_type == "variant" and ProductsProcess.target_type == "Item"


@pytest.mark.e2e
def test_same_names_in_parallel_chunks_get_distinct_names_not_failures(shop_factory, make_tenant,
                                                                       monkeypatch):
    """Chunks choose item names at exists-check, each knowing only its own: six products
    named alike (different SKUs) in three chunks would claim one name three times. The
    load, under the tenant's item lock, gives a name another chunk created meanwhile the
    next free one: every variant becomes one item, none fails."""
    from koppel.flows.products import ProductsProcess

    monkeypatch.setattr(ProductsProcess, "chunk_size", 2)
    shop = shop_factory(orders=0, products=0, customers=1)
    skus = [f"ZEEP-{n}" for n in range(1, 7)]
    shop.control.post("/products", json={"products": [
        {"title": "Zeep", "sku": sku, "priceIncl": "3.95"} for sku in skus]}).raise_for_status()
    tenant = make_tenant(shop)
    run = tenant.run("products")
    assert run.state == "success"
    activity = tenant.activity("products", run.run_id)
    assert Counter(a["action"] for a in activity) == {"created": 6}, \
        [(a["action"], a["reason"]) for a in activity if a["action"] != "created"]
    items = [i for i in tenant.entities("Item") if i.get("Sku") in skus]
    assert sorted(i["Sku"] for i in items) == skus
    names = [i["Name"] for i in items]
    assert len(set(names)) == 6 and "Zeep" in names, names
    assert all(n == "Zeep" or n.startswith("Zeep (") for n in names), names
