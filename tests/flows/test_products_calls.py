"""What a products sync costs in API calls, counted by the sandboxes (issue 20).

The expected counts are written out from the shop's size, per resource: pages of 250
for the catalogue lists, one shop read per run, one images read per product with a main
image, one upload request per ten image files (each file — by the hash of its bytes —
uploaded once, as one Attachable linked to the items of every variant that shows it), a
bounded number of QuickBooks look-ups and batches per chunk. A per-variant (or
per-product) read or upload that creeps back makes the counts differ.

Image downloads (``/_cdn``) are not Lightspeed API calls: the shop's CDN is outside the
API's rate limit (the sandbox's gate lets them through, as the live CDN does), so they
are counted apart.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter, defaultdict

import httpx
import pytest

ACCOUNTS = {"income": "Sales of Product Income", "expense": "Cost of Goods Sold",
            "asset": "Inventory Asset"}
PAGE = 250
CHUNK = 100
CDN = "GET /_cdn/"
UPLOAD = "POST /v3/company/{realm_id}/upload"
FILES_PER_UPLOAD = 10


def _pages(n: int) -> int:
    """Pages of a list scan: it stops at the first short page."""
    return n // PAGE + 1


def _one_by_one_or_scan(wanted: int, total: int) -> int:
    """Calls to read ``wanted`` of ``total`` records: one by one for up to three, else a
    count and a scan when the scan's pages are fewer than ``wanted``."""
    if wanted <= 3:
        return wanted
    pages = max(1, math.ceil(total / PAGE))
    return 1 + (_pages(total) if pages < wanted else wanted)


def _listing(shop, resource: str, key: str) -> list[dict]:
    out, page = [], 1
    with shop.api() as api:
        while True:
            batch = api.get(f"{resource}.json", params={"page": page, "limit": PAGE}).json()[key]
            out.extend(batch)
            if len(batch) < PAGE:
                return out
            page += 1


def _sku_of(variant: dict) -> str:
    return (variant.get("sku") or variant.get("articleCode") or "").strip()


def _calls(before: dict, after: dict) -> tuple[Counter, int]:
    """API calls by route (the CDN left out) and the CDN downloads, between two stats."""
    delta = Counter({k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)})
    cdn = sum(n for k, n in delta.items() if k.startswith(CDN))
    return Counter({k: n for k, n in delta.items() if not k.startswith(CDN)}), cdn


@pytest.mark.e2e
def test_products_sync_costs_a_fixed_number_of_calls_per_page_product_and_image(
        shop_factory, make_tenant):
    shop = shop_factory(orders=0, products=40, customers=1)
    tenant = make_tenant(shop, settings={"products": {"inventory": True, "accounts": ACCOUNTS}})
    products = {p["id"]: p for p in _listing(shop, "products", "products")}
    variants = _listing(shop, "variants", "variants")
    links = _listing(shop, "categories/products", "categoriesProducts")
    categories = _listing(shop, "categories", "categories")
    with shop.api() as api:
        srcs = {pid: [i["src"] for i in sorted(
                    api.get(f"products/{pid}/images.json").json()["productImages"],
                    key=lambda i: (i["sortOrder"], i["id"]))] for pid in products}
    images = {pid: len(s) for pid, s in srcs.items()}
    digest = {src: hashlib.sha256(httpx.get(src).content).hexdigest()
              for s in srcs.values() for src in s}
    skus = Counter(_sku_of(v) for v in variants)
    dups = [v for v in variants if skus[_sku_of(v)] > 1]
    synced = [v for v in variants if skus[_sku_of(v)] == 1]
    assert dups and synced, "the seed has a duplicate SKU and unique ones"
    pid = lambda v: v["product"]["resource"]["id"]  # noqa: E731
    synced_products = {pid(v) for v in synced}
    n_variants = len(variants)

    # -- first sync ---------------------------------------------------------------------
    ls0, qb0 = shop.stats()["by_route"], tenant.qbo_stats()["by_route"]
    first = tenant.run("products")
    assert first.state == "success"
    ls, cdn = _calls(ls0, shop.stats()["by_route"])
    qb, _ = _calls(qb0, tenant.qbo_stats()["by_route"])
    with_image = [p for p in synced_products if products[p].get("image")]
    expected_ls = {
        "GET /{lang}/products.json": _pages(len(products)),
        "GET /{lang}/variants.json": _pages(n_variants),
        "GET /{lang}/categories/products/count.json": 1,
        "GET /{lang}/categories/products.json": _pages(len(links)),
        "GET /{lang}/categories.json": _pages(len(categories)),
        "GET /{lang}/shop.json": 1,  # read once per run, staged for every chunk
        "GET /{lang}/products/{product_id:int}/images.json": len(with_image),
    }
    assert dict(ls) == {k: v for k, v in expected_ls.items() if v}
    assert n_variants <= CHUNK  # one chunk: every file of the run goes up in one pass
    # each file once (by its bytes), ten to a request; the items of every variant that
    # shows a file are all in its one Attachable's AttachableRef
    items_by_sku = {i["Sku"]: i["Id"] for i in tenant.entities("Item") if i.get("Sku")}
    wanted: dict[str, set[str]] = defaultdict(set)
    for variant in synced:
        for src in srcs[pid(variant)]:
            wanted[digest[src]].add(items_by_sku[_sku_of(variant)])
    uploads = math.ceil(len(wanted) / FILES_PER_UPLOAD)
    assert len(wanted) > uploads > 0
    assert qb[UPLOAD] == uploads
    attachables = tenant.entities("Attachable")
    ours = [a for a in attachables if a.get("FileName") and a["AttachableRef"]
            and a["AttachableRef"][0]["EntityRef"]["type"] == "Item"]
    assert len(ours) == len(wanted)  # one Attachable per file, none per item
    linked = sorted(sorted(r["EntityRef"]["value"] for r in a["AttachableRef"]) for a in ours)
    assert linked == sorted(sorted(ids) for ids in wanted.values())
    shared = [ids for ids in wanted.values() if len(ids) > 1]
    assert shared, "the seed has a product with images and several variants"
    assert cdn == len({src for p in with_image for src in srcs[p]})  # each downloaded once
    chunks = math.ceil(n_variants / CHUNK)
    # per chunk: the look-ups (up to 12 plain queries, or one batch of them), the
    # categories' look-up and up to three levels of category writes, the adopt-meanwhile
    # query, item batches of 30; plus the token. Nothing per record or per image.
    per_chunk = 12 + 1 + 3 + 1 + math.ceil(CHUNK / 30)
    assert sum(qb.values()) - uploads <= chunks * per_chunk + 2 < len(synced)

    # -- unchanged re-sync: only what changed since the last run (nothing) --------------
    ls0, qb0 = shop.stats()["by_route"], tenant.qbo_stats()["by_route"]
    again = tenant.run("products")
    assert again.state == "success"
    ls, cdn = _calls(ls0, shop.stats()["by_route"])
    qb, _ = _calls(qb0, tenant.qbo_stats()["by_route"])
    assert not qb and not cdn
    # the duplicate-SKU conflicts are read again every run (their repair is seen), with
    # their products; they build no item, so no links, categories or images are read
    dup_products = {pid(v) for v in dups}
    expected = (2  # products and variants changed in the window (none)
                + _one_by_one_or_scan(len(dups), n_variants)
                + _one_by_one_or_scan(len(dup_products), len(products))
                + 1)  # the shop, for the one chunk of conflicts
    assert sum(ls.values()) == expected, dict(ls)
    actions = Counter(a["action"] for a in tenant.activity("products", again.run_id))
    assert actions == {"conflict": len(dups)}

    # -- the duplicate SKUs repaired: their items join the Attachables of the files they
    # share with their products' other variants (a sparse update, no bytes sent again) --
    for variant in dups:
        shop.control.patch(f"/variants/{variant['id']}",
                           json={"sku": f"FIXED-{variant['id']}"}).raise_for_status()
    files_now = {digest[src] for v in dups for src in srcs[pid(v)]}
    to_link, to_upload = files_now & set(wanted), files_now - set(wanted)
    assert to_link, "the seed: a duplicate SKU's product has pictures and a synced variant"
    ls0, qb0 = shop.stats()["by_route"], tenant.qbo_stats()["by_route"]
    repaired = tenant.run("products")
    assert repaired.state == "success"
    _, cdn = _calls(ls0, shop.stats()["by_route"])
    qb, _ = _calls(qb0, tenant.qbo_stats()["by_route"])
    assert qb.get(UPLOAD, 0) == math.ceil(len(to_upload) / FILES_PER_UPLOAD)
    assert cdn == len({src for v in dups for src in srcs[pid(v)]})
    items_by_sku = {i["Sku"]: i["Id"] for i in tenant.entities("Item") if i.get("Sku")}
    for variant in dups:
        for src in srcs[pid(variant)]:
            wanted[digest[src]].add(items_by_sku[f"FIXED-{variant['id']}"])
    ours = [a for a in tenant.entities("Attachable") if a.get("FileName")
            and a["AttachableRef"] and a["AttachableRef"][0]["EntityRef"]["type"] == "Item"]
    assert len(ours) == len(wanted)
    linked = sorted(sorted(r["EntityRef"]["value"] for r in a["AttachableRef"]) for a in ours)
    assert linked == sorted(sorted(ids) for ids in wanted.values())
    actions = Counter(a["action"] for a in tenant.activity("products", repaired.run_id))
    assert actions == {"created": len(dups)}


@pytest.mark.e2e
def test_main_image_only_costs_no_images_call_and_attaches_each_products_main_picture(
        shop_factory, make_tenant):
    """``settings.products.images = "main"``: the inline main image of each product
    (already in the products page) is its items' one picture; no images.json call."""
    shop = shop_factory(orders=0, products=12, customers=1)
    tenant = make_tenant(shop, settings={"products": {"inventory": True, "accounts": ACCOUNTS,
                                                      "images": "main"}})
    products = {p["id"]: p for p in _listing(shop, "products", "products")}
    variants = _listing(shop, "variants", "variants")
    skus = Counter(_sku_of(v) for v in variants)
    synced = [v for v in variants if skus[_sku_of(v)] == 1]
    pid = lambda v: v["product"]["resource"]["id"]  # noqa: E731
    with shop.api() as api:
        more = [p for p in products if products[p].get("image") and len(
            api.get(f"products/{p}/images.json").json()["productImages"]) > 1]
    assert more, "the seed has a product with more than its main image"
    ls0 = shop.stats()["by_route"]
    first = tenant.run("products")
    assert first.state == "success"
    ls, cdn = _calls(ls0, shop.stats()["by_route"])
    assert "GET /{lang}/products/{product_id:int}/images.json" not in ls
    mains = {products[pid(v)]["image"]["src"] for v in synced if products[pid(v)].get("image")}
    assert cdn == len(mains)  # each main picture downloaded once, no other picture
    items_by_sku = {i["Sku"]: i["Id"] for i in tenant.entities("Item") if i.get("Sku")}
    wanted: dict[str, set[str]] = defaultdict(set)
    for variant in synced:
        image = products[pid(variant)].get("image")
        if image:
            wanted[hashlib.sha256(httpx.get(image["src"]).content).hexdigest()].add(
                items_by_sku[_sku_of(variant)])
    ours = [a for a in tenant.entities("Attachable") if a.get("FileName")
            and a["AttachableRef"] and a["AttachableRef"][0]["EntityRef"]["type"] == "Item"]
    linked = sorted(sorted(r["EntityRef"]["value"] for r in a["AttachableRef"]) for a in ours)
    assert linked == sorted(sorted(ids) for ids in wanted.values()) and linked
