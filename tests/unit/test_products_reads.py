"""The products flow's Lightspeed reads: a few records one by one, many as a paged scan,
whichever costs fewer calls; a record a scan does not list is read alone, so a deleted
one is still told by its 404 (issue 20)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from koppel.flows.products_source import (
    ReadPlan,
    read_catalogue,
    read_category_links,
    read_product_context,
    scan_is_cheaper,
)


class LightspeedNotFound(Exception):
    status = 404


def _ref(kind: str, rid: int) -> dict:
    return {"resource": {"id": rid, "url": f"{kind}/{rid}", "link": ""}}


class Rec(SimpleNamespace):
    def to_api(self) -> dict:
        return dict(vars(self))


class FakeShop:
    """Products, variants and category links, counting every call like the API would."""

    def __init__(self, products: int, variants_per_product: int = 2) -> None:
        self.products = {p: {"id": p, "title": f"P{p}", "image": False, "type": False}
                         for p in range(1, products + 1)}
        self.variants = {}
        for pid in self.products:
            for n in range(variants_per_product):
                vid = pid * 100 + n
                self.variants[vid] = {"id": vid, "sku": f"S{vid}", "product": _ref("products", pid)}
        self.links = [{"id": i, "sortOrder": 1, "product": _ref("products", pid),
                       "category": _ref("categories", 7)} for i, pid in enumerate(self.products)]
        self.calls: list[str] = []

    def _page(self, rows):
        rows = list(rows)
        for start in range(0, len(rows) + 1, 250):  # pages until a short one
            self.calls.append("page")
            yield from rows[start:start + 250]
            if len(rows[start:start + 250]) < 250:
                return

    def count(self, resource: str, **filters) -> int:
        self.calls.append(f"count {resource}")
        return {"variants": len(self.variants), "products": len(self.products),
                "categories_products": len(self.links)}[resource]

    def iter_products(self, window=None, **filters):
        self.calls.append("products")
        return (Rec(**p) for p in ([] if window else list(self.products.values())))

    def iter_variants(self, window=None, **filters):
        self.calls.append("variants" + (f" product={filters['product']}" if filters else ""))
        rows = [] if window else [v for v in self.variants.values()
                                  if "product" not in filters
                                  or v["product"]["resource"]["id"] == filters["product"]]
        return (Rec(**v) for v in rows)

    def iter_category_products(self, **filters):
        self.calls.append("links" + (f" product={filters['product']}" if filters else ""))
        return (Rec(**link) for link in self.links if "product" not in filters
                or link["product"]["resource"]["id"] == filters["product"])

    def get_variant(self, vid: int):
        self.calls.append(f"variant {vid}")
        if vid not in self.variants:
            raise LightspeedNotFound(vid)
        return Rec(**self.variants[vid])

    def get_product(self, pid: int):
        self.calls.append(f"product {pid}")
        if pid not in self.products:
            raise LightspeedNotFound(pid)
        return Rec(**self.products[pid])

    def iter_product_images(self, pid: int):
        self.calls.append(f"images {pid}")
        return iter([])

    def iter_product_attributes(self, pid: int):
        self.calls.append(f"attributes {pid}")
        return iter([])


WINDOW = ReadPlan(full=False, window=object(), reason="since the last activity")


def test_a_few_retries_are_read_one_by_one():
    shop = FakeShop(products=50)
    cat = read_catalogue(shop, WINDOW, ["101", "201", "301"])
    assert sorted(cat.variants) == [101, 201, 301] and sorted(cat.products) == [1, 2, 3]
    assert shop.calls == ["products", "variants", "variant 101", "variant 201", "variant 301",
                          "product 1", "product 2", "product 3"]


def test_many_retries_cost_a_count_and_a_scan_not_a_call_each():
    shop = FakeShop(products=50)
    retry = [str(pid * 100) for pid in range(1, 11)]  # ten variants of ten products
    cat = read_catalogue(shop, WINDOW, retry)
    assert sorted(cat.variants) == sorted(int(r) for r in retry)
    assert sorted(cat.products) == list(range(1, 11))
    assert shop.calls == ["products", "variants", "count variants", "variants",
                          "count products", "products"]


def test_a_retried_variant_the_scan_does_not_list_is_confirmed_gone_by_its_404():
    shop = FakeShop(products=50)
    retry = [str(pid * 100) for pid in range(1, 6)] + ["999999"]
    cat = read_catalogue(shop, WINDOW, retry)
    assert cat.gone == {999999: "variant 999999 was deleted in Lightspeed (retired: not retried)"}
    assert "variant 999999" in shop.calls and "variant 100" not in shop.calls


def test_a_scan_is_not_chosen_when_its_pages_outnumber_the_single_reads():
    shop = FakeShop(products=1000, variants_per_product=2)  # 2,000 variants: 8 pages
    assert not scan_is_cheaper(shop, "variants", 5)
    assert scan_is_cheaper(shop, "variants", 9)
    assert not scan_is_cheaper(shop, "variants", 3) and shop.calls == ["count variants"] * 2


def test_category_links_per_product_for_a_few_and_one_scan_for_many():
    shop = FakeShop(products=30)
    assert read_category_links(shop, [1, 2]) == {1: [(1, 7)], 2: [(1, 7)]}
    assert shop.calls == ["links product=1", "links product=2"]
    shop.calls.clear()
    links = read_category_links(shop, range(1, 31))
    assert len(links) == 30 and all(v == [(1, 7)] for v in links.values())
    assert shop.calls == ["count categories_products", "links"]


@pytest.mark.parametrize(("used", "reads"), [(True, ["images 4", "attributes 4"]),
                                              (False, ["images 4"])])
def test_attributes_are_read_only_when_the_mapping_can_carry_them(used, reads):
    shop = FakeShop(products=5)
    product = {"id": 4, "image": {"src": "x"}, "type": _ref("types", 1)}
    read_product_context(shop, product, attributes_used=used)
    assert shop.calls == reads


def _process(overrides: dict):
    import copy
    import json
    from pathlib import Path

    from koppel.flows.products import ProductsProcess
    from koppel.tenants.loader import load_default_mapping, parse_tenant

    root = Path(__file__).resolve().parents[2]
    doc = copy.deepcopy(json.loads((root / "include" / "mappings" / "demo.json").read_text()))
    doc.pop("$schema", None)
    for key, value in overrides.items():
        section, name = key.split(".", 1)
        doc.setdefault(section, {}).setdefault(name, {}).update(value)
    defaults, errors = load_default_mapping()
    assert not errors
    tenant, errors = parse_tenant(doc, "demo.json", defaults)
    assert tenant is not None, errors
    process = ProductsProcess.__new__(ProductsProcess)
    process.run = SimpleNamespace(tenant=tenant, tenant_id=tenant.tenant)
    return process


@pytest.mark.parametrize(("overrides", "used"), [
    ({}, False),  # the default: attributes go nowhere in QuickBooks
    ({"settings.products": {"attributes_target": "description"}}, True),
    ({"mappings.products": {"long_description": {"path": "_attributes.Materiaal"}}}, True),
])
def test_attributes_are_used_when_a_target_or_a_rule_carries_them(overrides, used):
    process = _process(overrides)
    assert process.attributes_used(process.mapper()) is used


@pytest.mark.parametrize(("setting", "reads", "srcs"), [
    ("all", ["images 4"], []),            # FakeShop's images list is empty
    ("main", [], ["https://cdn/main.png"]),
    ("none", [], []),
])
def test_images_setting_decides_the_images_call(setting, reads, srcs):
    shop = FakeShop(products=5)
    product = {"id": 4, "image": {"src": "https://cdn/main.png", "thumb": "t", "title": "Mok",
                                  "extension": "png", "size": 10, "_image_id": 9}}
    context = read_product_context(shop, product, attributes_used=False, images=setting)
    assert shop.calls == reads
    assert [i["src"] for i in context.images] == srcs
    assert all(not k.startswith("_") for i in context.images for k in i)


def test_a_product_without_a_picture_costs_no_images_call_in_any_setting():
    for setting in ("all", "main", "none"):
        shop = FakeShop(products=5)
        context = read_product_context(shop, {"id": 4, "image": False}, images=setting)
        assert shop.calls == [] and context.images == []


@pytest.mark.parametrize(("overrides", "read"), [
    ({}, "all"),  # the default mapping attaches every image (image_urls: _images.*.src)
    ({"settings.products": {"images": "main"}}, "main"),
    ({"mappings.products": {"image_urls": None}}, "none"),  # no rule reads _images
])
def test_images_are_read_only_when_the_mapping_carries_them(overrides, read):
    process = _process(overrides)
    assert process.images_read(process.mapper()) == read
