"""Products flow: Lightspeed catalogue → QuickBooks items (create or update by SKU).

One record per Lightspeed variant (``source_type`` ``variant``); a simple product is its
single variant. Steps:

* **extract** reads the variants changed in the run window (see
  :mod:`koppel.flows.products_source`; a first run or ``full_resync`` reads the whole
  catalogue), the failed variants of earlier runs, and flags SKUs shared by several
  variants of the read (reported as ``conflict``, never guessed); it reads the category
  links of the variants it syncs and the category tree once, so each record carries its
  category chain.
* **enrich** adds the mapping context (product, shop — read once per run and staged for
  the other chunks —, category path, attributes, images, VAT rate), maps the variant
  with the tenant's mapping and validates a ``MappedItem``.
  Its content hash is the change detector. A product's images and attributes are read
  once per chunk, and only when they can matter (see :mod:`products_source`).
* **exists_check** skips variants whose hash matches their cross-reference (no
  QuickBooks call at all), then looks up the rest (the hook's look-up policy: items by
  linked id, SKU and name; accounts; home currency): it links a variant to the one item
  carrying its SKU, reports SKUs carried by several items (or linked to another variant),
  and picks a free, deterministic name for items to create.
* **load** creates or renames the category items, then creates items and sends sparse
  updates in batches of 30 (only the fields whose policy is ``always``, and only when
  they differ), then attaches the images not attached yet: each file (by the hash of
  its bytes) uploaded once and linked to every item of the chunk that shows it.

Vanished records: a variant (or its product) deleted in Lightspeed after it was listed
or after it failed is reported once as ``skipped`` with ``details.deleted_in_lightspeed``
and leaves the retry list. An item deleted or made inactive by hand in QuickBooks is never
re-created: the variant fails once naming the item (``details.deleted_in_quickbooks``),
its cross-reference is kept with state ``deleted_in_quickbooks``, and later runs retire it
as ``skipped`` (reactivating the item links it again).

Update policy: a QBO field is updated when ``settings.products.update_policy`` says
``always`` *and* no canonical field it is built from is mapped ``"on": "create_only"``
(e.g. ``long_description`` create-only keeps ``Description`` as first written, so text
edited in QuickBooks stays). The sales ``Description`` is the short description, the long
description (when different) and, by default, the EAN line.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from koppel.domain.items import (
    ItemPolicy,
    desired_item,
    duplicate_skus,
    item_changes,
    item_name,
    item_content_hash,
    resolve_item_name,
)
from koppel.domain.qbo_payloads import ItemAccounts, PayloadError
from koppel.domain.records import MappedItem, parse_record
from koppel.flows.base import Process, Record, RecordError, RecordState, StepResult, run_read_window
from koppel.flows.products_source import (
    IMAGES_NONE,
    LOOKBACK,
    CategoryTree,
    ProductContext,
    json_safe,
    plan_read,
    read_catalogue,
    read_category_links,
    read_product_context,
    ref_id,
    enriched_variant,
    is_gone,
)
from koppel.flows.products_target import (
    CategoryPlan,
    CategoryNode,
    ItemImages,
    NameIndex,
    load_target_state,
    plan_categories,
    sync_categories,
    sync_images,
)
from koppel.flows.qbo_refs import item_lock_name
from koppel.hooks.qbo_writer import ADOPTED, GONE, REFUSED, QuickBooksWriter, WriteOp
from koppel.mapping.mapper import Mapper
from koppel.store.state import ActivityEntry

log = logging.getLogger(__name__)


class ItemState(RecordState):
    """What a variant carries between the products flow's steps."""

    gone: str | None = None              # why it cannot be read: deleted in Lightspeed
    duplicate_sku: list | None = None    # other variants with its SKU (extract)
    ended: list | tuple | None = None    # (action, reason) it ends with at the next step
    ended_details: dict | None = None    # details of that ending
    item: dict | None = None             # the desired QuickBooks item (enrich)
    hash: str | None = None              # its content hash
    category_ids: list | None = None     # its category chain's ids
    linked_id: str | None = None         # the item its cross-reference names
    xref_state: str | None = None
    xref_hash: str | None = None
    plan: list | None = None             # the category nodes to make (exists-check)
    folded: list | None = None           # whether the category path was folded, and from
    accounts: dict | None = None         # income/expense/asset account ids
    mode: str | None = None              # create or update
    existing: dict | None = None         # the QuickBooks item it updates
    name: str | None = None              # the name it is created under
    target_id: str | None = None         # the item written
    adopted: bool | str | None = None    # True: an earlier attempt's; "meanwhile": another's
    changed_fields: list | tuple = ()    # the fields an update changes
    images: dict | None = None           # images uploaded and kept

#: The staged payload (step name) holding the shop read once per run.
SHOP_STEP = "products:shop"
#: Marks duplicate-SKU conflicts in the activity log (they are re-read every run).
DUPLICATE_SKU_MARK = "duplicate SKU"
#: Cross-reference state of a record whose QuickBooks object was deleted (or made
#: inactive) by hand in QuickBooks: retired, its history kept.
DELETED_IN_QUICKBOOKS = "deleted_in_quickbooks"

#: QBO item field → the canonical fields it is built from (for ``on: create_only``).
FIELD_SOURCES: dict[str, frozenset[str]] = {
    "Name": frozenset({"name", "options"}),
    "Sku": frozenset({"sku"}),
    "Description": frozenset({"description", "long_description"}),
    "PurchaseDesc": frozenset(),
    "UnitPrice": frozenset({"price_excl", "price_incl"}),
    "SalesTaxIncluded": frozenset({"price_excl", "price_incl"}),
    "PurchaseCost": frozenset({"purchase_cost"}),
    "Active": frozenset({"active"}),
    "ParentRef": frozenset({"category_path"}),
}


def combined_description(item: MappedItem) -> str | None:
    """Short description, then the long one when it adds something (blank line between)."""
    short = (item.description or "").strip()
    long = (item.long_description or "").strip()
    if long and " ".join(long.split()) != " ".join(short.split()):
        return f"{short}\n\n{long}" if short else long
    return short or None


def _rules_read(mapper: Mapper, key: str, besides: str | None = None) -> bool:
    """Whether a mapping rule (other than the one for target ``besides``) reads the
    context key ``key`` of the enriched variant (``_attributes``, ``_images``)."""
    return any(key in json.dumps(rule.model_dump(mode="json"), default=str)
               for target, rule in mapper.rules.items() if target != besides)


class ProductsProcess(Process):
    """Lightspeed variants → QuickBooks items, categories and image attachments."""

    flow: ClassVar[str] = "products"
    source_type: ClassVar[str] = "variant"
    target_type: ClassVar[str] = "Item"
    chunk_size: ClassVar[int] = 100

    # ------------------------------------------------------------------ settings

    @property
    def tenant_id(self) -> str:
        return self.run.tenant_id

    @property
    def product_settings(self) -> Any:
        return self.run.tenant.settings.products

    def item_policy(self) -> ItemPolicy:
        settings = self.run.tenant.settings
        products = settings.products
        return ItemPolicy(prices_include_tax=settings.prices_include_tax,
                          ean_target=products.ean_target,
                          attributes_target=products.attributes_target,
                          inventory_enabled=products.inventory,
                          untracked_type=products.untracked_type,
                          update_policy=self.update_policy())

    def mapper(self) -> Mapper:
        return Mapper.for_tenant(self.run.tenant, "products")

    def update_policy(self) -> dict[str, str]:
        """The tenant's per-field policy, with fields built from ``create_only`` mapped
        canonical fields turned ``create_only`` too."""
        policy = dict(self.product_settings.update_policy.model_dump())
        create_only = set(self.mapper().fields_for_update().create_only)
        sources = dict(FIELD_SOURCES)
        ean_field = {"description": "Description", "purchase_description": "PurchaseDesc"}.get(
            self.product_settings.ean_target)
        if ean_field:
            sources[ean_field] = sources[ean_field] | {"ean"}
        features_field = {"description": "Description", "purchase_description": "PurchaseDesc"}.get(
            self.product_settings.attributes_target)
        if features_field:
            sources[features_field] = sources[features_field] | {"attributes"}
        for qbo_field, canonical in sources.items():
            if canonical & create_only:
                policy[qbo_field] = "create_only"
        return policy

    def _today(self) -> dt.date:
        zone = ZoneInfo(getattr(self.run.tenant.settings, "timezone", "UTC") or "UTC")
        return dt.datetime.now(zone).date()

    # ------------------------------------------------------------------ extract

    def extract(self) -> list[Record]:
        run = self.run
        plan = plan_read(run.params, run_read_window(run, lookback=LOOKBACK))
        retry = [row["source_id"] for row in run.store.failed(self.tenant_id, self.flow)]
        retry += self._open_sku_conflicts()
        catalogue = read_catalogue(run.lightspeed, plan, retry)
        log.info("products %s: read %s (%s), %d variants of %d products, %d to retry",
                 self.tenant_id, "the catalogue" if plan.full else "changes", plan.reason,
                 len(catalogue.variants), len(catalogue.products), len(retry))
        records: list[Record] = []
        for variant in catalogue.variants.values():
            pid = ref_id(variant.get("product"))
            product = catalogue.products.get(pid) if pid is not None else None
            if product is None:
                continue
            records.append(Record(
                source_id=str(variant["id"]), source_type=self.source_type,
                data={"variant": json_safe(variant), "product": json_safe(product)}))
        records.sort(key=lambda r: (int(r.data["product"]["id"]),
                                    int(r.data["variant"].get("sortOrder") or 0),
                                    int(r.source_id)))
        cap = getattr(run.tenant.flows.products, "max_records", None)
        if cap:
            records = records[:cap]
        self._flag_duplicates(records)
        self._add_category_chains(records)
        records += [Record(source_id=str(vid), source_type=self.source_type, data={},
                           state={"gone": why}) for vid, why in sorted(catalogue.gone.items())]
        return records

    def _add_category_chains(self, records: list[Record]) -> None:
        """Each record's category chain (root → leaf of its product's deepest linked
        category), from the links and the category tree read once per run. Variants
        flagged as duplicate SKUs build no item, so their links are not read."""
        hook = self.run.lightspeed
        synced = [r for r in records if not ItemState(r).duplicate_sku]
        links = read_category_links(hook, {int(r.data["product"]["id"]) for r in synced})
        tree = CategoryTree.read(hook) if any(links.values()) else CategoryTree({})
        for record in records:
            found = links.get(int(record.data["product"]["id"]), [])
            record.data["category_chain"] = [list(node) for node in tree.deepest(found)]

    def _open_sku_conflicts(self) -> list[str]:
        """Variants whose last outcome was a duplicate-SKU conflict: read again every run,
        so a windowed read still sees both sides of the duplicate (and its repair)."""
        store, tenant = self.run.store, self.tenant_id
        rows = store.activity(tenant=tenant, flow=self.flow, action="conflict", limit=5000)
        candidates = sorted({r["source_id"] for r in rows if r["source_type"] == self.source_type
                             and DUPLICATE_SKU_MARK in (r["reason"] or "")})
        still_open = []
        for source_id in candidates:
            latest = store.activity(tenant=tenant, flow=self.flow, source_id=source_id, limit=1)
            if latest and latest[0]["action"] == "conflict":
                still_open.append(source_id)
        return still_open

    def _flag_duplicates(self, records: list[Record]) -> None:
        """Mark variants of this read that share a SKU (mapped as the mapping maps it)."""
        mapper = self.mapper()
        items = []
        for record in records:
            values = mapper.map({**record.data["variant"], "_product": record.data["product"]}).values
            sku = values.get("sku")
            if sku:
                items.append(MappedItem.model_construct(source_variant_id=record.source_id,
                                                        sku=str(sku)))
        shared = duplicate_skus(items)
        by_variant = {vid: ids for ids in shared.values() for vid in ids}
        for record in records:
            if record.source_id in by_variant:
                ItemState(record).duplicate_sku = list(by_variant[record.source_id])

    # ------------------------------------------------------------------ enrich

    def enrich(self, records: list[Record]) -> StepResult:
        result = StepResult()
        hook = self.run.lightspeed
        live = [r for r in records if not ItemState(r).gone]
        shop = self._shop(hook) if live else {}
        contexts: dict[int, Any] = {}
        mapper = self.mapper()
        attributes_used = self.attributes_used(mapper)
        images = self.images_read(mapper)
        for record in records:
            if ItemState(record).gone:  # deleted in Lightspeed: reported once, retired
                result.end(record, "skipped", reason=ItemState(record).gone,
                           details={"deleted_in_lightspeed": True})
                continue
            try:
                self._enrich_one(record, shop, contexts, mapper, hook, attributes_used,
                                 images)
            except RecordError as exc:
                result.fail(record, exc)
                continue
            except Exception as exc:
                if not is_gone(exc):
                    raise
                pid = record.data["product"]["id"]
                result.end(record, "skipped", reason=(
                    f"variant {record.source_id}: its product {pid} was deleted in Lightspeed "
                    "while it was read (retired: not synced)"),
                    details={"deleted_in_lightspeed": True})
                continue
            if ItemState(record).ended:
                action, reason = ItemState(record).take("ended")
                result.end(record, action, reason=reason, target_type=self.target_type)
                continue
            result.passed.append(record)
        return result

    def _shop(self, hook: Any) -> dict[str, Any]:
        """The shop (``_shop`` of the mapping), read once per run: the first chunk reads
        it and stages it for the run's other chunks (one Lightspeed call, not one per
        chunk; parallel chunks may each read it once before it is staged)."""
        store, ref = self.run.store, {"run_key": self.run.run_key, "step": SHOP_STEP, "chunk": 0}
        try:
            return store.staged(ref)
        except LookupError:
            shop = json_safe(hook.get_shop().to_api())
            store.stage(ref["run_key"], SHOP_STEP, 0, shop)
            return shop

    def attributes_used(self, mapper: Mapper) -> bool:
        """Whether a product's attributes can reach QuickBooks: ``attributes_target`` puts
        them in a description, or a mapping rule other than the canonical ``attributes``
        (which only feeds that target) reads ``_attributes``. Otherwise they are not read
        (one Lightspeed call per typed product saved)."""
        if self.product_settings.attributes_target != "none":
            return True
        return _rules_read(mapper, "_attributes", besides="attributes")

    def images_read(self, mapper: Mapper) -> str:
        """Which images enrich reads (:func:`read_product_context`): the tenant's
        ``settings.products.images``, or ``"none"`` when no mapping rule reads
        ``_images`` (the images could not reach QuickBooks: no call is spent on them)."""
        if not _rules_read(mapper, "_images"):
            return IMAGES_NONE
        return self.product_settings.images

    def _enrich_one(self, record: Record, shop: dict, contexts: dict, mapper: Mapper,
                    hook: Any, attributes_used: bool, images: str) -> None:
        variant, product = record.data["variant"], record.data["product"]
        pid = int(product["id"])
        if ItemState(record).duplicate_sku:
            context = ProductContext(images=[], attributes={})  # a conflict: no item built
        else:
            if pid not in contexts:
                contexts[pid] = read_product_context(hook, product,
                                                     attributes_used=attributes_used,
                                                     images=images)
            context = contexts[pid]
        chain = [(int(cid), str(title)) for cid, title in record.data.get("category_chain") or []]
        source = json_safe(enriched_variant(variant, product, shop, chain, context))
        mapped = mapper.map(source)
        if mapped.errors:
            raise RecordError("; ".join(f"{e.field}: {e.message}" for e in mapped.errors),
                              field="mapping")
        parsed = parse_record(MappedItem, mapped.values)
        if not parsed.ok:
            raise RecordError("; ".join(f"{e.field}: {e.message}" for e in parsed.errors))
        item = parsed.record
        if not item.sku:
            ItemState(record).ended = ("skipped", "sku: the variant has no SKU (nor article "
                                                "code): not synced")
        elif ItemState(record).duplicate_sku:
            others = [v for v in ItemState(record).duplicate_sku if v != record.source_id]
            ItemState(record).ended = ("conflict", f"sku: {DUPLICATE_SKU_MARK} in Lightspeed, shared "
                                                 f"with variant(s) {', '.join(others)}: not "
                                                 "synced (make the SKUs unique)")
        titles = [title for _, title in chain if title]
        ItemState(record).category_ids = [cid for cid, title in chain if title] \
            if list(item.category_path) == titles else None
        ItemState(record).item = item.model_dump(mode="json")
        ItemState(record).hash = item_content_hash(item)
        record.data = {"sku": item.sku}

    # ------------------------------------------------------------------ exists check

    def exists_check(self, records: list[Record]) -> StepResult:
        result = StepResult()
        store, tenant = self.run.store, self.tenant_id
        xrefs = store.xrefs(tenant, self.source_type, [r.source_id for r in records],
                            target_type=self.target_type)
        full = bool(self.run.params.get("full_resync"))
        todo: list[Record] = []
        for record in records:
            xref = xrefs.get(record.source_id)
            if xref is not None and xref.state == "active" and not full \
                    and xref.content_hash == ItemState(record).hash:
                result.end(record, "skipped", target_type=self.target_type,
                           target_id=xref.target_id, content_hash=xref.content_hash,
                           reason="unchanged since the last sync")
                continue
            if xref is not None:
                ItemState(record).linked_id = xref.target_id
                ItemState(record).xref_state = xref.state
                ItemState(record).xref_hash = xref.content_hash
            todo.append(record)
        if not todo:
            return result
        items = {r.source_id: MappedItem.model_validate(ItemState(r).item) for r in todo}
        plans = {r.source_id: self._category_plan(r, items[r.source_id]) for r in todo}
        names: set[str] = set()
        for record in todo:
            base = item_name(items[record.source_id])
            names.update({base, f"{base} ({items[record.source_id].sku})"})
        accounts = self.product_settings.accounts
        account_names = [n for n in (accounts.income, accounts.expense, accounts.asset) if n]
        hook = self.run.quickbooks
        target = load_target_state(hook, item_ids=[ItemState(r).linked_id for r in todo],
                                   skus=[items[r.source_id].sku for r in todo], names=names,
                                   account_names=account_names, writes_to_follow=len(todo))
        linked_elsewhere = store.xrefs_by_target(
            tenant, self.target_type,
            [i["Id"] for bucket in target.by_sku.values() for i in bucket])
        index = NameIndex(hook, target)
        account_ids = {"income": target.accounts.get(accounts.income),
                       "expense": target.accounts.get(accounts.expense) if accounts.expense else None,
                       "asset": target.accounts.get(accounts.asset) if accounts.asset else None}
        for record in todo:
            item = items[record.source_id]
            try:
                self._match(record, item, plans[record.source_id], target, linked_elsewhere,
                            index, account_ids)
            except RecordError as exc:
                result.fail(record, exc)
                continue
            if ItemState(record).ended:
                action, reason = ItemState(record).take("ended")
                result.end(record, action, reason=reason, target_type=self.target_type,
                           details=ItemState(record).take("ended_details") or {})
                continue
            result.passed.append(record)
        return result

    def _category_plan(self, record: Record, item: MappedItem) -> CategoryPlan:
        if not self.product_settings.sync_categories:
            return CategoryPlan((), False, 0)
        return plan_categories(list(item.category_path), ItemState(record).category_ids)

    def _match(self, record: Record, item: MappedItem, plan: CategoryPlan, target: Any,
               linked_elsewhere: dict, index: NameIndex, account_ids: dict) -> None:
        settings = self.run.tenant.settings
        if item.currency and target.home_currency and not settings.multicurrency \
                and item.currency.upper() != target.home_currency:
            raise RecordError(f"the shop currency {item.currency} differs from the QuickBooks "
                              f"home currency {target.home_currency}", field="currency")
        linked = ItemState(record).linked_id
        existing = target.by_id.get(linked or "")
        if linked and existing is None:
            self._linked_item_gone(record, linked)
            return
        if existing is None:
            candidates = target.by_sku.get(item.sku.strip().casefold(), [])
            if len(candidates) > 1:
                ids = ", ".join(sorted(str(c["Id"]) for c in candidates))
                ItemState(record).ended = ("conflict", f"sku: {len(candidates)} QuickBooks items "
                                         f"carry this SKU (ids {ids}): not guessing which one")
                return
            if candidates:
                other = linked_elsewhere.get(str(candidates[0]["Id"]))
                if other is not None and other[1] != record.source_id:
                    ItemState(record).ended = ("conflict", f"sku: {DUPLICATE_SKU_MARK}: QuickBooks item "
                                             f"{candidates[0]['Id']} with this SKU is linked to "
                                             f"variant {other[1]}")
                    return
                existing = candidates[0]
        ItemState(record).plan = [[n.key, n.name, n.parent, n.level] for n in plan.nodes]
        ItemState(record).folded = [plan.folded, plan.original_depth]
        ItemState(record).accounts = account_ids
        if existing is not None:
            ItemState(record).mode = "update"
            ItemState(record).existing = json_safe(existing)
            return
        if not account_ids.get("income"):
            raise RecordError(f"income account '{self.product_settings.accounts.income}' is not "
                              "in QuickBooks (settings.products.accounts.income)",
                              field="settings.products.accounts")
        prefix = plan.full_name
        name = resolve_item_name(item, index.taken_under(prefix, None))
        index.claim(prefix, name)
        ItemState(record).mode = "create"
        ItemState(record).name = name

    def _linked_item_gone(self, record: Record, item_id: str) -> None:
        """The item this variant is linked to no longer answers a query: deleted or made
        inactive by hand in QuickBooks. Never re-created silently: reported once as a
        per-record error, then retired "deleted in QuickBooks" (cross-reference and history
        kept; reactivating the item in QuickBooks links the variant again)."""
        sku = ItemState(record).item.get("sku")
        details = {"deleted_in_quickbooks": True, "sku": sku, "item_id": item_id}
        if ItemState(record).xref_state == DELETED_IN_QUICKBOOKS:
            ItemState(record).ended = ("skipped", f"QuickBooks item {item_id} (SKU {sku}) was "
                                     "deleted or made inactive in QuickBooks (retired: not "
                                     "re-created; reactivate it to sync this variant again)")
            ItemState(record).ended_details = details
            return
        self.run.store.save_xref(self.tenant_id, self.source_type, record.source_id,
                                 self.target_type, item_id, ItemState(record).xref_hash,
                                 state=DELETED_IN_QUICKBOOKS)
        ItemState(record).ended = ("failed", f"item_id: QuickBooks item {item_id} linked to "
                                 f"variant {record.source_id} (SKU {sku}) was deleted or made "
                                 "inactive in QuickBooks; it is not re-created (reactivate it, "
                                 "or the variant is retired on the next run)")
        ItemState(record).ended_details = details

    # ------------------------------------------------------------------ load

    def load(self, records: list[Record]) -> StepResult:
        result = StepResult()
        run, store, tenant = self.run, self.run.store, self.tenant_id
        plans = {r.source_id: _plan_from_state(r) for r in records}
        policy = self.item_policy()
        needs_category = [plans[r.source_id] for r in records
                          if ItemState(r).mode == "create" or policy.update_policy.get("ParentRef") == "always"]
        categories = sync_categories(run.quickbooks if needs_category and not run.dry_run else None,
                                     store, tenant, run.run_key, needs_category, dry_run=run.dry_run)
        self._log_categories(categories)
        ops: list[WriteOp] = []
        pending: dict[str, tuple[Record, dict]] = {}
        for record in records:
            try:
                op = self._operation(record, plans[record.source_id], categories, policy, len(ops))
            except RecordError as exc:
                result.fail(record, exc)
                continue
            if ItemState(record).ended:
                action, reason = ItemState(record).take("ended")
                result.end(record, action, reason=reason, target_type=self.target_type,
                           target_id=ItemState(record).target_id,
                           content_hash=ItemState(record).hash, details=self._details(record))
                continue
            if op is None:  # no item field to change: images may still be missing
                pending[record.source_id] = (record, {})
                continue
            ops.append(op)
            pending[record.source_id] = (record, {"key": op.key})
        writer = QuickBooksWriter(run.quickbooks, tenant=tenant, dry_run=run.dry_run)
        answers: dict[str, Any] = {}
        if any(op.operation == "create" for op in ops):
            # orders (unknown SKUs under ``create_item``) may create one of these SKUs at
            # this moment: under the tenant's item lock, adopt what appeared meanwhile
            with store.lock(item_lock_name(tenant, run.quickbooks)):
                answers = self._adopt_created_meanwhile(ops, pending)
                ops = [op for op in ops if op.key not in answers]
                self._rename_names_taken_meanwhile(ops, pending)
                if ops:
                    answers.update(writer.write(ops, id_parts=(run.run_key, "items")))
        elif ops:
            answers = writer.write(ops, id_parts=(run.run_key, "items"))
        finished: list[tuple[Record, dict | None]] = []
        for source_id, (record, meta) in pending.items():
            answer = answers.get(meta["key"]) if meta.get("key") else None
            try:
                written = self._written(record, answer)
            except RecordError as exc:
                result.fail(record, exc)
                continue
            if written:
                ItemState(record).target_id = str(written["Id"])
            finished.append((record, written))
        images = self._sync_images([record for record, _ in finished])
        for record, written in finished:
            try:
                self._finish(record, written, images.get(record.source_id), result)
            except RecordError as exc:
                result.fail(record, exc)
        return result

    def _sync_images(self, records: list[Record]) -> dict[str, Any]:
        """The chunk's images in one pass: each file uploaded once for all the items that
        show it (:func:`koppel.flows.products_target.sync_images`)."""
        wants = [ItemImages(variant_id=r.source_id, item_id=str(ItemState(r).target_id),
                            urls=list(ItemState(r).item.get("image_urls") or []))
                 for r in records if ItemState(r).item.get("image_urls")]
        if not wants:
            return {}
        return sync_images(self.run.lightspeed, self.run.quickbooks, self.run.store,
                           self.tenant_id, wants)

    def _adopt_created_meanwhile(self, ops: list[WriteOp],
                                 pending: dict[str, tuple[Record, dict]]) -> dict[str, dict]:
        """Creates whose SKU another flow created since the exists-check: answered with
        that item instead (its hash is not kept, so the next run brings it up to date)."""
        creates = {str(op.payload.get("Sku")): op for op in ops if op.operation == "create"}
        rows = self.run.quickbooks.query_in("Item", "Sku", sorted(creates), select="*, Sku")
        answered: dict[str, dict] = {}
        for row in rows:
            op = creates.get(str(row.get("Sku")))
            if op is None or op.key in answered:
                continue
            record, _meta = pending[op.key]
            ItemState(record).adopted = "meanwhile"
            answered[op.key] = dict(row)
        return answered

    def _rename_names_taken_meanwhile(self, ops: list[WriteOp],
                                      pending: dict[str, tuple[Record, dict]]) -> None:
        """Chunks choose item names at exists-check in parallel, each knowing only the
        names it claimed itself, so two chunks can choose one name for different SKUs.
        Under the tenant's item lock (loads write one at a time), a create whose name an
        item of another SKU holds now gets the next free name — as the exists-check would
        have chosen had it known — instead of failing on QuickBooks' duplicate name."""
        creates = [op for op in ops if op.operation == "create" and op.payload.get("Name")]
        if not creates:
            return
        hook = self.run.quickbooks
        holders: dict[str, str] = {}  # casefolded full name → the SKU of its item

        def look_up(names: list[str]) -> None:
            for row in hook.query_in("Item", "Name", names, select="*, Sku"):
                full = str(row.get("FullyQualifiedName") or row.get("Name") or "")
                holders[full.casefold()] = str(row.get("Sku") or "")

        def full_name(record: Record, name: str) -> str:
            prefix = ":".join(str(node[1]) for node in (ItemState(record).plan or []))
            return f"{prefix}:{name}" if prefix else name

        look_up(sorted({str(op.payload["Name"]) for op in creates}))
        claimed = {full_name(pending[op.key][0], str(op.payload["Name"])).casefold()
                   for op in creates}
        for op in creates:
            record = pending[op.key][0]
            sku = str(op.payload.get("Sku") or "")
            own = full_name(record, str(op.payload["Name"])).casefold()
            holder = holders.get(own)
            if holder is None or holder == sku:
                continue  # free, or this SKU's own item (adopted by its SKU above)

            def taken(candidate: str, record: Record = record) -> bool:
                key = full_name(record, candidate).casefold()
                if key in claimed or key in holders:
                    return True
                look_up([candidate])
                return key in holders

            name = resolve_item_name(MappedItem.model_validate(ItemState(record).item), taken)
            log.info("products %s: item name %r was taken meanwhile by another SKU; variant "
                     "%s is created as %r", self.tenant_id, op.payload["Name"],
                     record.source_id, name)
            op.payload["Name"] = name
            ItemState(record).name = name
            claimed.add(full_name(record, name).casefold())

    def _operation(self, record: Record, plan: CategoryPlan, categories: Any,
                   policy: ItemPolicy, number: int) -> WriteOp | None:
        item = MappedItem.model_validate(ItemState(record).item)
        leaf = plan.leaf
        category_id = None
        wants_category = ItemState(record).mode == "create" or \
            policy.update_policy.get("ParentRef") == "always"
        if leaf is not None and wants_category:
            if leaf.key in categories.errors:
                raise RecordError(categories.errors[leaf.key], field="category_path")
            category_id = categories.ids.get(leaf.key)
            if category_id is None and not self.run.dry_run:
                raise RecordError(f"category '{plan.full_name}' is not in QuickBooks",
                                  field="category_path")
        accounts = ItemState(record).accounts
        item_accounts = ItemAccounts(accounts.get("income") or "", accounts.get("expense"),
                                     accounts.get("asset"))
        try:
            if ItemState(record).mode == "create":
                payload = desired_item(item.model_copy(update={"description": combined_description(item)}),
                                       name=ItemState(record).name, policy=policy,
                                       accounts=item_accounts, category_id=category_id,
                                       inventory_start_date=self._today())
                if self.run.dry_run:
                    ItemState(record).ended = ("skipped", f"dry run: would create Item "
                                             f"'{payload['Name']}' ({payload['Type']}, SKU "
                                             f"{item.sku}{', under ' + plan.full_name if leaf else ''})")
                    log.info("products %s dry run: create Item for variant %s: fields %s",
                             self.tenant_id, record.source_id, ", ".join(sorted(payload)))
                    return None
                sku = item.sku
                return WriteOp(key=record.source_id, operation="create", entity="Item",
                               payload=payload, bid=f"c{number}", name=str(payload["Name"]),
                               matches=lambda row: _same_sku(row, sku))
            existing = ItemState(record).existing
            ItemState(record).target_id = str(existing["Id"])
            update_item = item.model_copy(update={"description": combined_description(item)})
            desired = desired_item(update_item, name=str(existing.get("Name") or ""), policy=policy,
                                   accounts=item_accounts,
                                   category_id=category_id if category_id else None,
                                   inventory_start_date=self._today())
        except PayloadError as exc:
            raise RecordError(str(exc), field=exc.field) from None
        if category_id is None:
            desired.pop("ParentRef", None)
        changes = item_changes(existing, desired, policy.update_policy)
        if self.run.dry_run:
            fields = sorted(k for k in (changes or {}) if k not in ("Id", "SyncToken", "sparse"))
            ItemState(record).ended = ("skipped", f"dry run: would update Item {existing['Id']}: "
                                     f"{', '.join(fields)}" if fields else
                                     "dry run: no update field differs")
            return None
        if changes is None:
            return None
        ItemState(record).changed_fields = sorted(k for k in changes
                                                if k not in ("Id", "SyncToken", "sparse"))
        return WriteOp(key=record.source_id, operation="update", entity="Item", payload=changes,
                       target_id=str(existing["Id"]), bid=f"u{number}")

    def _written(self, record: Record, answer: Any) -> dict | None:
        """The created/updated item (the writer's outcome, or an item adopted meanwhile),
        or None when no write was needed."""
        if answer is None:
            return None
        if isinstance(answer, dict):  # created meanwhile by another flow: adopted
            return answer
        if answer.written:
            return answer.value or {}
        if answer.status == ADOPTED:
            ItemState(record).adopted = True
            return answer.value  # created by an earlier attempt whose answer was lost
        fault = answer.fault
        if ItemState(record).mode == "create" and answer.field == "name":
            why = f"{fault.message}" if answer.status != REFUSED else \
                f"{fault.message}: {answer.reason}"
            raise RecordError(f"QuickBooks refused the name '{ItemState(record).name}' "
                              f"(taken meanwhile): {why}", field="Name")
        if ItemState(record).mode == "update" and (answer.status == GONE
                                                 or str(answer.code or "") == "610"):
            item_id = str(ItemState(record).existing["Id"])  # gone between look-up and write
            self.run.store.save_xref(self.tenant_id, self.source_type, record.source_id,
                                     self.target_type, item_id, ItemState(record).xref_hash,
                                     state=DELETED_IN_QUICKBOOKS)
            raise RecordError(f"QuickBooks item {item_id} linked to variant "
                              f"{record.source_id} was deleted or made inactive in QuickBooks "
                              f"({fault.message if fault else answer.reason}); it is not "
                              "re-created", field="item_id")
        if fault is None:
            raise RecordError(f"item: {answer.reason}", field="item_id")
        raise RecordError(f"QuickBooks fault {fault.code}: {fault.message}",
                          field=getattr(fault, "element", None) or None)

    def _finish(self, record: Record, written: dict | None, images: Any,
                result: StepResult) -> None:
        store, tenant = self.run.store, self.tenant_id
        mode = ItemState(record).mode
        item_id = ItemState(record).target_id
        if images is not None:
            ItemState(record).images = {"uploaded": images.uploaded, "kept": images.kept}
        content_hash = ItemState(record).hash if not (images and images.error) else None
        if ItemState(record).adopted == "meanwhile":
            content_hash = None  # created by another flow: compare fields on the next run
        store.save_xref(tenant, self.source_type, record.source_id, self.target_type, item_id,
                        content_hash)
        if images and images.error:
            raise RecordError(f"item {'created' if mode == 'create' else 'linked'} as {item_id}, "
                              f"but {images.error}", field="image_urls")
        if written is not None and not ItemState(record).adopted:
            action = "created" if mode == "create" else "updated"
            reason = None if mode == "create" else \
                "changed: " + ", ".join(ItemState(record).changed_fields)
        elif images and images.uploaded:
            action, reason = "updated", f"{images.uploaded} image(s) attached"
        else:
            action = "skipped"
            reason = ("linked to the QuickBooks item another flow created with this SKU "
                      "meanwhile; its fields are compared on the next run"
                      if ItemState(record).adopted == "meanwhile" else
                      "linked to the existing QuickBooks item with this name and SKU"
                      if ItemState(record).adopted else
                      "changes only in create-only fields or fields QuickBooks already has")
        result.end(record, action, target_type=self.target_type, target_id=item_id,
                   content_hash=ItemState(record).hash, reason=reason, details=self._details(record))

    def _details(self, record: Record) -> dict[str, Any]:
        item = ItemState(record).item or {}
        details: dict[str, Any] = {"sku": item.get("sku")}
        if ItemState(record).name:
            details["name"] = ItemState(record).name
        folded, depth = (ItemState(record).folded or [False, 0])
        if folded:
            details["category_folded_from_depth"] = depth
        if ItemState(record).images:
            details["images"] = ItemState(record).images
        return details

    def _log_categories(self, categories: Any) -> None:
        if not categories.entries:
            return
        entries = [ActivityEntry("category", e["source_id"], e["action"], target_type="Item",
                                 target_id=e["target_id"], reason=e["reason"],
                                 details=e["details"]) for e in categories.entries]
        for entry in entries:
            if entry.details.get("folded_from_depth"):
                log.warning("products %s: category '%s' folds a %d-level Lightspeed path into "
                            "QuickBooks' 4 levels", self.tenant_id, entry.details["name"],
                            entry.details["folded_from_depth"])
        self.run.store.record_activity(tenant=self.tenant_id, flow=self.flow,
                                       run_id=self.run.run_id, direction=self.run.direction,
                                       entries=entries, task_id="load")


def _same_sku(row: dict[str, Any], sku: str) -> str | None:
    """Whether an item found by the name a create clashed on (6240) is this variant's:
    the same SKU (an earlier attempt whose answer was lost), else why not."""
    have = str(row.get("Sku") or "").strip()
    if have.casefold() == str(sku or "").strip().casefold():
        return None
    return f"SKU {have or '(none)'} (variant's SKU {sku})"


def _plan_from_state(record: Record) -> CategoryPlan:
    nodes = tuple(CategoryNode(key=k, name=n, parent=p, level=level)
                  for k, n, p, level in ItemState(record).plan or [])
    folded, depth = ItemState(record).folded or [False, len(nodes)]
    return CategoryPlan(nodes, bool(folded), int(depth))
