"""The Lightspeed side of the products flow: which variants a run reads, and the
context the default mapping expects next to each variant (``_product``, ``_shop``,
``_categories``, ``_attributes``, ``_images``, ``_tax_rate``).

Reading costs API calls and Lightspeed allows only 300 per 5 minutes, so:

* the run window comes from the Params, else the data interval, else the time of the
  flow's last activity (a first run, or ``full_resync``, reads the whole catalogue);
* a product changed in the window brings all its variants, a variant changed in the
  window brings its product;
* a handful of records (category links of a few products, the products and variants
  that failed earlier) is read one by one; more are read as a paged list scan whenever
  the scan (its ``count`` call plus its pages of 250) costs fewer calls;
* the category tree is read once per run (in extract), not once per chunk;
* images (``settings.products.images``, default ``all``; nothing when no mapping rule
  reads ``_images``) are read only for products that have a main image (``image`` is
  ``false`` otherwise), one ``products/{id}/images.json`` each; with ``main`` the
  inline main image is used and no images call is made. Lightspeed documents no cheaper
  way — no images list across products, the product's ``images`` is a bare collection
  reference (no count), and the ``catalog`` resource the official client names
  (SEOshop/API-PHP-Client ``ApiResourceCatalog``) has no documented answer shape — so
  that read is the floor (see docs/sandbox-fidelity.md); attributes only for
  products that have a type (Lightspeed keeps attributes per product type) and only when
  the tenant's mapping can carry them into QuickBooks (``settings.products
  .attributes_target``, or a mapping rule reading ``_attributes``); variants that end
  before their item is built (a duplicate SKU) cost no context reads at all.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Iterable, Mapping

from koppel.hooks.paging import UpdatedWindow
from koppel.limits import LIGHTSPEED

log = logging.getLogger(__name__)

#: Up to this many records are read one by one without asking for a count first: a
#: list scan costs at least two calls (its count and one page).
ONE_BY_ONE_LIMIT = 3
#: A fallback window (last activity of the flow) starts this much earlier, so records
#: changed while the previous run was reading are read again (hashes make that cheap).
#: how far before the flow's last activity a manual run reads (the catalogue is read by
#: change window; unchanged variants are skipped by their content hash)
LOOKBACK = dt.timedelta(minutes=15)


def json_safe(value: Any) -> Any:
    """A JSON-serialisable copy: Decimals as plain strings, datetimes as ISO-8601."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return value


def ref_id(reference: Any) -> int | None:
    """The id of a Lightspeed ``{"resource": {"id": …}}`` reference, or ``None``."""
    if isinstance(reference, dict):
        inner = reference.get("resource", reference)
        if isinstance(inner, dict) and inner.get("id") not in (None, False, ""):
            try:
                return int(inner["id"])
            except (TypeError, ValueError):
                return None
    return None


# --------------------------------------------------------------------------- the window


@dataclass(frozen=True)
class ReadPlan:
    """What extract reads: the whole catalogue, or what changed in ``window``."""

    full: bool
    window: UpdatedWindow | None = None
    only: frozenset[str] = frozenset()
    reason: str = ""


def plan_read(params: Mapping[str, Any], window: Any) -> ReadPlan:
    """The catalogue read for a run: ``records`` scan the catalogue for those records;
    otherwise ``window`` (a :class:`koppel.flows.base.ReadWindow`, from koppel's one read
    policy) — the whole catalogue, or what changed in it."""
    only = frozenset(str(r).strip() for r in (params.get("records") or []) if str(r).strip())
    if only:
        return ReadPlan(full=True, only=only, reason=f"{len(only)} requested record(s)")
    if window.everything:
        return ReadPlan(full=True, reason=window.reason)
    return ReadPlan(full=False, window=_window(window.start, window.end), reason=window.reason)


def _window(start: dt.datetime, end: dt.datetime) -> UpdatedWindow:
    return UpdatedWindow(start, max(end, start + dt.timedelta(seconds=1)))


# --------------------------------------------------------------------------- extract


@dataclass
class Catalogue:
    """Products and variants read for one run (raw API dicts by id; the category links
    are read afterwards, for the variants that are synced: :func:`read_category_links`)."""

    products: dict[int, dict[str, Any]] = field(default_factory=dict)
    variants: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: variant id → why it cannot be synced: it (or its product) answered 404/410, i.e.
    #: was deleted in Lightspeed after it was listed or after it failed in an earlier run
    gone: dict[int, str] = field(default_factory=dict)

    def add_variant(self, variant: dict[str, Any]) -> None:
        self.variants[int(variant["id"])] = variant


def _raw(model: Any) -> dict[str, Any]:
    return model.to_api() if hasattr(model, "to_api") else dict(model)


def read_catalogue(hook: Any, plan: ReadPlan, retry_ids: Iterable[str]) -> Catalogue:
    """The variants (with their products) this run syncs."""
    cat = Catalogue()
    if plan.full:
        for product in hook.iter_products():
            cat.products[int(product.id)] = _raw(product)
        for variant in hook.iter_variants():
            cat.add_variant(_raw(variant))
        if plan.only:
            keep = {vid for vid, v in cat.variants.items() if _matches(v, plan.only)}
            cat.variants = {vid: cat.variants[vid] for vid in keep}
    else:
        assert plan.window is not None
        changed_products = {int(p.id): _raw(p) for p in hook.iter_products(plan.window)}
        cat.products.update(changed_products)
        for variant in hook.iter_variants(plan.window):
            cat.add_variant(_raw(variant))
        # a changed product brings all its variants: per product, or one scan for many
        wanted = set(changed_products)
        if scan_is_cheaper(hook, "variants", len(wanted)):
            for variant in hook.iter_variants():
                if ref_id(variant.product) in wanted:
                    cat.add_variant(_raw(variant))
        else:
            for pid in sorted(wanted):
                for variant in hook.iter_variants(product=pid):
                    cat.add_variant(_raw(variant))
    _read_retries(hook, cat, plan, retry_ids)
    missing = sorted({ref_id(v.get("product")) for v in cat.variants.values()}
                     - set(cat.products) - {None})
    if scan_is_cheaper(hook, "products", len(missing)):
        wanted = set(missing)
        for product in hook.iter_products():
            if int(product.id) in wanted:
                cat.products[int(product.id)] = _raw(product)
    for pid in missing:
        if pid in cat.products:
            continue
        try:  # one by one; after a scan only a product it did not list (deleted: 404)
            cat.products[pid] = _raw(hook.get_product(pid))
        except Exception as exc:  # deleted between the variants' listing and this read
            if not is_gone(exc):
                raise
            for vid, variant in list(cat.variants.items()):
                if ref_id(variant.get("product")) == pid:
                    del cat.variants[vid]
                    cat.gone[vid] = (f"variant {vid}: its product {pid} was deleted in "
                                     "Lightspeed (retired: not synced)")
    return cat


def _read_retries(hook: Any, cat: Catalogue, plan: ReadPlan, retry_ids: Iterable[str]) -> None:
    """The variants that failed (or were in conflict) earlier and are not in this read:
    one by one, or one scan of the variants when that costs fewer calls. A variant the
    scan does not list is read alone, so a deleted one is told by its 404 as before."""
    todo: dict[int, None] = {}  # ordered, each id once
    for raw_id in retry_ids:
        try:
            vid = int(raw_id)
        except ValueError:
            continue
        if vid in cat.variants or plan.only:
            continue
        todo[vid] = None
    if scan_is_cheaper(hook, "variants", len(todo)):
        wanted = set(todo)
        for variant in hook.iter_variants():
            if int(variant.id) in wanted:
                cat.add_variant(_raw(variant))
    for vid in todo:
        if vid in cat.variants:
            continue
        try:
            cat.add_variant(_raw(hook.get_variant(vid)))
        except Exception as exc:  # a failed variant deleted meanwhile: retired, not retried
            if not is_gone(exc):
                raise
            log.info("products: variant %s failed earlier and no longer exists", vid)
            cat.gone[vid] = f"variant {vid} was deleted in Lightspeed (retired: not retried)"


def scan_is_cheaper(hook: Any, resource: str, one_by_one: int, **filters: Any) -> bool:
    """Whether reading ``resource`` as a paged list (its count call, then pages of 250)
    costs fewer Lightspeed calls than ``one_by_one`` single reads. A few records are read
    one by one without asking; otherwise the count call is spent either way."""
    if one_by_one <= ONE_BY_ONE_LIMIT:
        return False
    pages = max(1, math.ceil(hook.count(resource, **filters) / LIGHTSPEED.page_limit))
    return pages < one_by_one


def is_gone(exc: BaseException) -> bool:
    """A 404 or 410 from Lightspeed: the record was deleted (or can no longer be read)."""
    return type(exc).__name__ == "LightspeedNotFound" or getattr(exc, "status", None) == 410


def _matches(variant: Mapping[str, Any], wanted: frozenset[str]) -> bool:
    keys = {str(variant.get("id")), str(variant.get("sku") or "").strip(),
            str(variant.get("articleCode") or "").strip()}
    return bool(keys & wanted)


def read_category_links(hook: Any, product_ids: Iterable[int]) -> dict[int, list[tuple[int, int]]]:
    """``{product id: [(sort order, category id), …]}`` of ``product_ids``: per product
    for a few, else one paged scan of ``categories/products`` (whichever costs fewer
    calls)."""
    needed = sorted({int(pid) for pid in product_ids if pid is not None})
    links: dict[int, list[tuple[int, int]]] = {pid: [] for pid in needed}
    if not needed:
        return links
    if scan_is_cheaper(hook, "categories_products", len(needed)):
        rows = hook.iter_category_products()
    else:
        rows = (link for pid in needed for link in hook.iter_category_products(product=pid))
    for link in rows:
        raw = _raw(link)
        pid, cid = ref_id(raw.get("product")), ref_id(raw.get("category"))
        if pid in links and cid is not None:
            links[pid].append((int(raw.get("sortOrder") or 0), cid))
    return links


# --------------------------------------------------------------------------- enrich


@dataclass
class CategoryTree:
    """Lightspeed categories by id, and the root → leaf chain of any of them."""

    categories: dict[int, dict[str, Any]]

    @classmethod
    def read(cls, hook: Any) -> "CategoryTree":
        return cls({int(c.id): _raw(c) for c in hook.iter_categories()})

    def chain(self, category_id: int) -> list[tuple[int, str]]:
        """``[(id, title), …]`` root first; stops at a missing parent or a cycle."""
        out: list[tuple[int, str]] = []
        seen: set[int] = set()
        current: int | None = category_id
        while current is not None and current in self.categories and current not in seen:
            seen.add(current)
            record = self.categories[current]
            out.append((current, str(record.get("title") or record.get("fulltitle") or "").strip()))
            current = ref_id(record.get("parent"))
        return list(reversed(out))

    def deepest(self, links: Iterable[tuple[int, int]]) -> list[tuple[int, str]]:
        """The chain of the deepest linked category (ties: lowest sort order, then id)."""
        best: list[tuple[int, str]] = []
        best_key: tuple[int, int, int] | None = None
        for sort_order, cid in links:
            chain = self.chain(cid)
            if not chain:
                continue
            key = (-len(chain), sort_order, cid)
            if best_key is None or key < best_key:
                best, best_key = chain, key
        return best


def tax_rate(variant: Mapping[str, Any]) -> str | None:
    """The variant's VAT rate as a fraction (``"0.21"``), from its incl and excl price."""
    try:
        incl = Decimal(str(variant.get("priceIncl")))
        excl = Decimal(str(variant.get("priceExcl")))
    except (InvalidOperation, TypeError, ValueError):
        return None
    if excl <= 0 or incl < excl:
        return None
    rate = (incl / excl - 1).quantize(Decimal("0.001"))
    return format(rate.normalize(), "f")


def attribute_pairs(rows: Iterable[Any]) -> dict[str, str]:
    """``{attribute title: value}`` of a product's ``productAttributes``."""
    pairs: dict[str, str] = {}
    for row in rows:
        raw = _raw(row)
        attribute = raw.get("attribute")
        title = None
        if isinstance(attribute, dict):
            inner = attribute.get("resource", attribute)
            if isinstance(inner, dict):
                title = inner.get("title") or (inner.get("embedded") or {}).get("title")
        value = raw.get("value")
        if title and value not in (None, "", False):
            pairs[str(title)] = str(value)
    return pairs


@dataclass
class ProductContext:
    """What enrich reads once per product of a chunk."""

    images: list[dict[str, Any]]
    attributes: dict[str, str]


#: which of a product's images are read (``settings.products.images``)
IMAGES_ALL, IMAGES_MAIN, IMAGES_NONE = "all", "main", "none"


def main_image(product: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The product's main image as the one entry of ``_images``: the inline ``image``
    (``{src, thumb, title, extension, size}``) the product read already holds, or
    nothing (``image`` is ``false`` for a product without pictures)."""
    image = product.get("image")
    if not isinstance(image, dict) or not image.get("src"):
        return []
    return [{"sortOrder": 1, **{k: v for k, v in image.items() if not str(k).startswith("_")}}]


def read_product_context(hook: Any, product: Mapping[str, Any], *,
                         attributes_used: bool = True,
                         images: str = IMAGES_ALL) -> ProductContext:
    """A product's images and attributes, at the fewest calls.

    ``images``: ``"all"`` reads ``products/{id}/images.json`` for a product that has a
    main image (one call; none when ``image`` is ``false``), ``"main"`` takes the inline
    main image (no call), ``"none"`` nothing. Attributes are read only when the product
    has a type and ``attributes_used`` (the mapping can carry them into QuickBooks)."""
    pid = int(product["id"])
    found: list[dict[str, Any]] = []
    if images == IMAGES_MAIN:
        found = main_image(product)
    elif images == IMAGES_ALL and product.get("image"):
        found = sorted((_raw(i) for i in hook.iter_product_images(pid)),
                       key=lambda i: (int(i.get("sortOrder") or 0), int(i["id"])))
    attributes: dict[str, str] = {}
    if attributes_used and product.get("type"):
        attributes = attribute_pairs(hook.iter_product_attributes(pid))
    return ProductContext(images=found, attributes=attributes)


def enriched_variant(variant: Mapping[str, Any], product: Mapping[str, Any],
                     shop: Mapping[str, Any], chain: list[tuple[int, str]],
                     context: ProductContext) -> dict[str, Any]:
    """The variant plus the context keys the products mapping reads."""
    return {
        **variant,
        "_product": dict(product),
        "_shop": dict(shop),
        "_categories": [title for _, title in chain if title],
        "_attributes": dict(context.attributes),
        "_images": [dict(i) for i in context.images],
        "_tax_rate": tax_rate(variant),
    }
