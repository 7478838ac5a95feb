"""The stock flow: stock levels from the stock master to the other side.

Direction (``flows.stock.direction``):

* ``lightspeed_to_quickbooks`` (default) — the shop is the stock master. The quantity
  written to QBO inventory items is ``settings.stock.calculation`` over the shop's
  variants: available minus sales reservations (default), the stock level as is, or a
  formula (:mod:`koppel.domain.stock`).
* ``quickbooks_to_lightspeed`` (``settings.stock.target_manages_stock``) — QuickBooks is the
  master: each Lightspeed variant's ``stockLevel`` becomes its QBO item's ``QtyOnHand``.

Stock is a level, not an event: every run compares the whole catalogue (the data window
is not used; ``records`` limits a run to given variant ids / SKUs / QBO item ids) and only
quantities that differ are written. Unchanged items and items that do not track stock
(Lightspeed ``stockTracking`` disabled, QBO ``TrackQtyOnHand`` false) are left alone and
not logged; variants without a QBO item are logged as skipped.

Calls, shop → QuickBooks: ``variants.json`` pages (250 a page); for reservations, on the
first run (and a ``full_resync``) the ``orders.json`` pages (``page``/``limit`` 250, ids,
statuses and ``updatedAt`` only) with the open orders picked client-side and one rows
call per open order, kept in koppel's state database
(:class:`~koppel.store.reservations.ReservationBook`: ids, SKUs, quantities and statuses,
no personal data); on a repeat run one ``orders/count.json`` (SEOshop/API-PHP-Client
``ApiResourceOrders::count``; no list returns deleted orders, so deletions show as a short
count and make that run list every order once), the orders changed since the last scan
(``updated_at_min`` window) and one rows call per open order among them whose
``updatedAt`` moved, plus a retry of the open orders whose rows could not be read; per
chunk of variants the QBO
items by chunked ``Id IN`` / ``Sku IN`` queries, and one ``InventoryAdjustment``
carrying every changed quantity of the chunk (``QtyDiff`` lines). A company that cannot
post adjustments gets the items' ``QtyOnHand`` by sparse update, 30 to a batch request;
an adjustment of the chunk refused for another reason is sent again as one adjustment
per item, so the item at fault fails alone.

Every write goes through the one QuickBooks writer
(:class:`~koppel.hooks.qbo_writer.QuickBooksWriter`) in batch requests whose ids are
``request_id(tenant, kind, run_id, <chunk key>)`` — kind ``InventoryAdjustment``,
``InventoryAdjustment:each`` or ``Item:QtyOnHand``, the chunk key a digest of its items
and quantities (:meth:`StockProcess._chunk_key`) — and the hook derives each batch
request's id from that and the request's content. A retried load task reads the same
staged records (the adjustment's date is fixed by the exists-check), so it sends the same
requests under the same ids and QuickBooks answers them from the first attempt: a write
whose answer was lost is never booked twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Iterator
from zoneinfo import ZoneInfo

from koppel.flows.base import (
    Process,
    Record,
    RecordError,
    RecordState,
    StepResult,
    SystemicError,
    is_systemic,
)

log = logging.getLogger(__name__)


class StockState(RecordState):
    """What a stock record (a variant, or an item in the QuickBooks → shop direction)
    carries between the steps."""

    error: str | None = None       # a mapping error: the record fails at exists-check
    unreadable: str | None = None  # why its variant cannot be read
    skip: str | None = None        # why nothing is to be done for it
    conflict: str | None = None    # e.g. several variants share its SKU
    item: dict | None = None       # the QuickBooks item: id, SyncToken, quantity, tracked
    change: dict                   # current, target, quantity difference, adjustment date

#: Lightspeed order statuses whose orders may still hold unshipped rows (the values of
#: the order ``status`` enum in Falkplan/lightspeedecom-api ``domain/Order.java``, which
#: transcribes developers.seoshop.com/api/resources/order; ``offer``, the ``completed*``
#: statuses and ``cancelled`` never reserve stock).
#:
#: Lightspeed documents no ``status`` filter on ``orders.json`` (the documented list
#: filters are ``customer``, ``page`` and ``limit`` — Falkplan/lightspeedecom-api
#: ``LightspeedEComClient.getOrders``), so the open orders are picked from the listing
#: client-side: see ``StockProcess._open_orders``.
OPEN_ORDER_STATUSES = frozenset({
    "new",
    "on_hold",
    "processing",
    "processing_awaiting_payment",
    "processing_awaiting_shipment",
    "processing_awaiting_pickup",
    "processing_ready_for_pickup",
    "processing_partially_paid",
    "processing_partially_shipped",
    "processing_partially_picked_up",
})
#: Fields the reservation listing asks for (``fields`` narrows each order; a shop that
#: ignores it answers whole orders, which the selection reads the same way).
_OPEN_ORDER_FIELDS = "id,status,shipmentStatus,updatedAt"
#: A repeat run lists the orders changed since its last scan minus this margin (shop and
#: koppel clocks may differ; ``updated_at`` edges are not documented as inclusive). An
#: order seen again at the ``updatedAt`` the book holds costs no rows call.
RESCAN_OVERLAP = timedelta(hours=1)
#: The window's upper edge lies this far past now, so an order stamped by a shop clock
#: that runs ahead is read now rather than missed.
_FUTURE_EDGE = timedelta(days=1)
#: Orders read per transaction of the reservation book.
_WRITE_BATCH = 200
#: Account an adjustment books to, in order of preference (QBO's own default first,
#: then the tenant's expense account).
ADJUST_ACCOUNT = "Inventory Shrinkage"
#: Variant fields a stock formula may name besides the canonical ones.
_EXTRA_VARIANT_FIELDS = {"stock_minimum": "stockMinimum", "stock_alert": "stockAlert",
                         "stock_sold": "stockSold"}
#: QBO fault codes meaning "this company cannot post that entity".
_UNSUPPORTED_CODES = range(500, 600)

SHOP_TO_QBO = "lightspeed_to_quickbooks"
QBO_TO_SHOP = "quickbooks_to_lightspeed"


class StockProcess(Process):
    """Stock levels between Lightspeed variants and QuickBooks inventory items."""

    flow = "stock"
    source_type = "variant"
    target_type = "Item"
    chunk_size = 250

    # ------------------------------------------------------------------ extract
    def extract(self) -> list[Record]:
        if self.run.direction == QBO_TO_SHOP:
            return self._extract_from_quickbooks()
        return self._extract_from_shop()

    def _wanted(self) -> set[str] | None:
        """Ids/SKUs the run is limited to (``records`` plus last run's failures), or None."""
        wanted = {str(r).strip() for r in self.run.params.get("records") or [] if str(r).strip()}
        if not wanted:
            return None
        wanted |= {str(row["source_id"]) for row in
                   self.run.store.failed(self.run.tenant_id, self.run.flow)}
        return wanted

    def _variants(self) -> list[dict[str, Any]]:
        """Every Lightspeed variant as the API gives it, plus ``_product``/``_shop`` when the
        tenant's stock mapping reads them (the default does not: no extra calls)."""
        hook = self.run.lightspeed
        variants = [v.to_api() for v in hook.iter_variants()]
        rules = json.dumps(self.run.tenant.rules("stock"), default=str)
        if "_shop" in rules:
            shop = hook.get_shop().to_api()
            variants = [{**v, "_shop": shop} for v in variants]
        if "_product" in rules:
            products = {p.id: p.to_api() for p in hook.iter_products()}
            variants = [{**v, "_product": products.get(_ref_id(v.get("product"))) or {}}
                        for v in variants]
        return variants

    def _map_variants(self, variants: list[dict[str, Any]]) -> list[Record]:
        """Canonical stock records (:class:`MappedStock`) for every variant."""
        from koppel.domain.records import MappedStock, parse_record
        from koppel.mapping.mapper import Mapper

        mapper = Mapper.for_tenant(self.run.tenant, "stock")
        records = []
        for raw in variants:
            vid = str(raw["id"])
            mapped = mapper.map(raw)
            parsed = parse_record(MappedStock, {**mapped.values, "source_variant_id": vid}) \
                if mapped.ok else None
            data: dict[str, Any] = {"product_id": _ref_id(raw.get("product")),
                                    **{name: _number(raw.get(field))
                                       for name, field in _EXTRA_VARIANT_FIELDS.items()}}
            state: dict[str, Any] = {}
            if not mapped.ok:
                state["error"] = "; ".join(f"{e.field}: {e.message}" for e in mapped.errors)
            elif parsed.errors:
                state["error"] = "; ".join(f"{e.field}: {e.message}" for e in parsed.errors)
            else:
                stock = parsed.record
                data.update(sku=stock.sku, stock_level=float(stock.stock_level),
                            track_stock=stock.track_stock)
            records.append(Record(source_id=vid, data=data, source_type="variant", state=state))
        return records

    def _extract_from_shop(self) -> list[Record]:
        wanted = self._wanted()
        variants = self._variants()
        records = [r for r in self._map_variants(variants)
                   if StockState(r).error or r.data.get("track_stock")]
        # SKUs shared by stock-tracked variants, counted over the whole catalogue
        shared = Counter(r.data.get("sku") for r in records if r.data.get("sku"))
        if wanted is not None:
            keys = {str(v["id"]): _variant_keys(v) for v in variants}
            records = [r for r in records if keys[r.source_id] & wanted]
        for record in records:
            if shared.get(record.data.get("sku"), 0) > 1:
                record.data["sku_shared"] = shared[record.data["sku"]]
        reserved, unreadable = self._reservations() if self._needs_reservations() else ({}, {})
        for record in records:
            record.data["reserved"] = reserved.get(record.source_id, 0.0)
        log.info("stock %s: %d of %d variants track stock; %d hold reservations",
                 self.run.tenant_id, len(records), len(variants),
                 sum(1 for r in records if r.data["reserved"]))
        return records + self._unreadable_orders(unreadable)

    def _unreadable_orders(self, unreadable: dict[int, str]) -> list[Record]:
        """Open orders whose rows could not be read: their reservations are left out.
        Each is reported once, as a skipped ``order`` entry of this flow's activity log
        (ended in the exists-check); a later run that still cannot read it only logs."""
        if not unreadable:
            return []
        ids = ", ".join(str(i) for i in sorted(unreadable))
        log.warning("stock %s: %d open order(s) could not be read, their reservations are "
                    "left out: %s", self.run.tenant_id, len(unreadable), ids)
        store, tenant = self.run.store, self.run.tenant_id
        out = []
        for order_id, why in sorted(unreadable.items()):
            if store.activity(tenant=tenant, flow=self.flow, source_id=str(order_id), limit=1):
                continue  # reported by an earlier run
            out.append(Record(source_id=str(order_id), source_type="order", data={},
                              state={"unreadable": why}))
        return out

    @staticmethod
    def _unreadable_reason(order_id: int, exc: Exception) -> str:
        from koppel.hooks.errors import LightspeedNotFound

        if isinstance(exc, LightspeedNotFound):
            return (f"order {order_id} was deleted in Lightspeed (its rows answer 404); "
                    "its reservations are left out")
        return (f"the rows of order {order_id} could not be read ({type(exc).__name__}); "
                "its reservations are left out")

    def _needs_reservations(self) -> bool:
        stock = self.run.tenant.settings.stock
        if stock.calculation == "available_minus_reserved":
            return True
        return stock.calculation == "formula" and "reserved" in (stock.formula or "")

    def _open_orders(self) -> Iterator[Any]:
        """The shop's orders that may still reserve stock: every order is listed with the
        documented paging (``page``/``limit`` 250: Falkplan/lightspeedecom-api
        ``LightspeedEComClient`` ``DEFAULT_PAGE``/``MAX_LIMIT``, hotgluexyz/tap-lightspeed
        ``LightspeedStream``), ids, statuses and ``updatedAt`` only, and an order is kept
        when it is open (:func:`is_open_order`). One call per 250 orders of the shop's
        history. Every order listed is counted in :attr:`_listed` (id → order)."""
        self._listed: dict[int, Any] = {}
        for order in self.run.lightspeed.iter_orders(fields=_OPEN_ORDER_FIELDS):
            self._listed[int(order.id)] = order
            if is_open_order(order):
                yield order

    def _reservations(self) -> tuple[dict[str, float], dict[int, str]]:
        """Reserved quantity per variant id (pandas over the rows of the open orders koppel
        holds, :class:`~koppel.store.reservations.ReservationBook`), and the open orders
        whose rows could not be read (id → why): they reserve nothing.

        The book is brought up to date first (:meth:`_refresh_book`): the first run — and
        a ``full_resync`` — lists every order and reads the rows of every open one; a
        repeat run lists only the orders changed since its last scan and reads the rows of
        those that are open and changed (and of the open orders it could not read before),
        so its calls grow with the shop's changes, not with its open orders."""
        import pandas as pd

        from koppel.domain.stock import ORDER_ROW_COLUMNS, reservations
        from koppel.store.reservations import ReservationBook

        book = ReservationBook(self.run.store.engine, self.run.tenant_id)
        self._refresh_book(book)
        frame = pd.DataFrame(book.rows(), columns=list(ORDER_ROW_COLUMNS))
        unreadable = {int(o.order_id): o.unreadable for o in book.orders().values()
                      if o.unreadable and o.is_open}
        return {str(k): float(v) for k, v in reservations(frame).items()}, unreadable

    def _refresh_book(self, book) -> None:
        """Bring the book in line with the shop (see :meth:`_reservations`)."""
        mark = None if self.run.params.get("full_resync") else book.scan_mark()
        if mark is None:
            if self.run.params.get("full_resync"):
                book.reset()
            self._scan_all(book, reread=True)
            return
        if not self._scan_changed(book, mark):
            # orders were deleted in the shop since the last scan (the count is short):
            # list every order once to find them; rows are read only for changed orders
            self._scan_all(book, reread=False)

    def _scan_all(self, book, *, reread: bool) -> None:
        """List every order; read the rows of the open ones (``reread``: all of them, else
        only those the book does not hold at their ``updatedAt``); forget the rest."""
        scanned_at = _utcnow()
        known = book.orders()
        open_orders = list(self._open_orders())
        with _Batch(book) as batch:
            for order in open_orders:
                held = known.get(str(order.id))
                if not reread and _unchanged(held, order):
                    continue
                batch.add(self._read_rows(order))
        keep = {str(o.id) for o in open_orders}
        book.forget(set(known) - keep)
        listed = getattr(self, "_listed", {})
        book.save_scan(scanned_at=scanned_at, order_count=len(listed),
                       max_order_id=max(listed, default=0), full=True)
        log.info("stock %s: listed %d orders, %d open (every order; rows read for %s)",
                 self.run.tenant_id, len(listed), len(open_orders),
                 "every open order" if reread else "the changed ones")

    def _scan_changed(self, book, mark) -> bool:
        """The orders changed since the last scan (``updated_at_min`` window, widened by
        :data:`RESCAN_OVERLAP`); False when the shop's order count shows deletions, which
        a window cannot see (the caller then lists every order)."""
        from koppel.hooks.paging import UpdatedWindow

        hook = self.run.lightspeed
        scanned_at = _utcnow()
        count = hook.count("orders")
        window = UpdatedWindow(mark.scanned_at - RESCAN_OVERLAP, scanned_at + _FUTURE_EDGE)
        changed = list(hook.iter_orders(window, fields=_OPEN_ORDER_FIELDS))
        new = [int(o.id) for o in changed if int(o.id) > mark.max_order_id]
        if count != mark.order_count + len(new):
            log.info("stock %s: the shop holds %d orders, %d expected (%d at the last scan, "
                     "%d new): orders were deleted; every order is listed once",
                     self.run.tenant_id, count, mark.order_count + len(new),
                     mark.order_count, len(new))
            return False
        known = book.orders()
        seen: set[str] = set()
        closed: list[str] = []
        with _Batch(book) as batch:
            for order in changed:
                oid = str(order.id)
                seen.add(oid)
                held = known.get(oid)
                if not is_open_order(order):
                    if held is not None:
                        closed.append(oid)
                    continue
                if not _unchanged(held, order):
                    batch.add(self._read_rows(order))
            # open orders whose rows could not be read before are read again every run
            for oid, held in sorted(known.items(), key=lambda kv: int(kv[0])):
                if oid not in seen and held.unreadable:
                    batch.add(self._read_rows(_HeldOrder(int(oid), held)))
        book.forget(closed)
        read = batch.count
        book.save_scan(scanned_at=scanned_at, order_count=count,
                       max_order_id=max([mark.max_order_id, *new]), full=False)
        log.info("stock %s: %d orders changed since %s; rows read for %d",
                 self.run.tenant_id, len(changed), window.start.isoformat(), read)
        return True

    def _read_rows(self, order) -> dict[str, Any]:
        """Read one open order's rows: a book entry (:meth:`ReservationBook.put_orders`).
        An order whose rows cannot be read (deleted between the listing and its rows: 404)
        becomes an unreadable entry."""
        entry = {"order_id": order.id, "updated_at": order.updated_at,
                 "status": order.status, "shipment_status": order.shipment_status}
        try:
            order_rows = list(self.run.lightspeed.get_order_rows(int(order.id)))
        except Exception as exc:
            if is_systemic(exc):
                raise
            return {**entry, "unreadable": self._unreadable_reason(int(order.id), exc)}
        return {**entry, "rows": [
            {"row_id": row.id, "variant_id": row.variant_id, "sku": row.sku,
             "quantity_ordered": row.quantity_ordered or 0,
             "quantity_shipped": row.quantity_shipped or 0}
            for row in order_rows
            if row.variant_id is not None]}  # a loose row (no variant) reserves nothing

    # ------------------------------------------------------------------ exists check
    def exists_check(self, records: list[Record]) -> StepResult:
        result = StepResult()
        if self.run.direction == QBO_TO_SHOP:
            result.passed = records  # matched and compared in extract
            return result
        good = []
        for record in records:
            if StockState(record).unreadable:  # an open order (see _unreadable_orders)
                result.end(record, "skipped", reason=StockState(record).unreadable,
                           details={"order_id": record.source_id, "reservations": "left out"})
                continue
            if StockState(record).error:
                result.fail(record, RecordError(StockState(record).error))
            else:
                good.append(record)
        if not good:
            return result
        matches, linked = self._match_items(good)
        tracked: list[Record] = []
        for record in good:
            found = matches.get(record.source_id, [])
            shared = record.data.get("sku_shared", 1)
            if found and shared > 1 and record.source_id not in linked:
                result.end(record, "conflict", target_type="Item",
                           reason=f"{shared} Lightspeed variants share SKU "
                                  f"{record.data['sku']!r}; link them via the products flow")
            elif not found:
                why = (f"no QuickBooks item with SKU {record.data['sku']!r}"
                       if record.data.get("sku") else "the variant has no SKU to match")
                result.end(record, "skipped", reason=why)
            elif len(found) > 1:
                ids = ", ".join(sorted(str(i["Id"]) for i in found))
                result.end(record, "conflict", target_type="Item",
                           reason=f"{len(found)} QuickBooks items (ids {ids}) track SKU "
                                  f"{record.data.get('sku')!r}; link one via the products flow")
            else:
                StockState(record).item = _item_state(found[0])
                tracked.append(record)
        self._compare(tracked, result)
        self._resolve_in_sync(good, result)
        return result

    def _resolve_in_sync(self, records: list[Record], result: StepResult) -> None:
        """Records that failed in an earlier run and need no write now are ended as
        skipped, so they leave the retry list (unchanged records are otherwise not logged)."""
        failed = {str(row["source_id"]) for row in
                  self.run.store.failed(self.run.tenant_id, self.run.flow)}
        if not failed:
            return
        handled = {r.source_id for r in result.passed} | {e.source_id for e in result.ended}
        for record in records:
            if record.source_id in failed and record.source_id not in handled:
                item = StockState(record).item or {}
                result.end(record, "skipped", target_type="Item", target_id=item.get("id"),
                           reason="already in sync" if not item.get("untracked") else
                           "the QuickBooks item does not track quantity")

    def _match_items(self, records: list[Record]
                     ) -> tuple[dict[str, list[dict[str, Any]]], set[str]]:
        """Variant id → its QBO items: the products flow's xref first, then the SKU; and
        the ids of the variants matched by xref.

        Only items that track quantity count (an item that does not is returned marked
        ``_untracked`` and is left alone); QBO allows duplicate SKUs, so a SKU may match
        more than one item (the caller reports a conflict)."""
        from koppel.flows.products_target import in_queries, query_batch
        from koppel.flows.qbo_refs import QboRefs, stage_refs

        qb = self.run.quickbooks
        xrefs = self.run.store.xrefs(self.run.tenant_id, "variant",
                                     [r.source_id for r in records], target_type="Item")
        # one batch: linked items by id, the others by SKU, and the load's accounts
        rows = query_batch(qb, {
            **in_queries("id:", "Item", "Id", sorted({x.target_id for x in xrefs.values()})),
            **in_queries("sku:", "Item", "Sku", sorted(
                {r.data["sku"] for r in records if r.source_id not in xrefs and r.data.get("sku")})),
            **in_queries("acct:", "Account", "Name", self._adjust_account_names())})
        linked = {str(i["Id"]): i for name, found_rows in rows.items() if name.startswith("id:")
                  for i in found_rows}
        by_sku: dict[str, list[dict[str, Any]]] = {}
        for name, found_rows in rows.items():
            if name.startswith("sku:"):
                for item in found_rows:
                    by_sku.setdefault(str(item.get("Sku") or ""), []).append(item)
        stage_refs(self.run, QboRefs(accounts={
            str(a.get("Name", "")).casefold(): a for name, found_rows in rows.items()
            if name.startswith("acct:") for a in found_rows}))
        found: dict[str, list[dict[str, Any]]] = {}
        for record in records:
            xref = xrefs.get(record.source_id)
            if xref is not None and xref.target_id in linked:
                found[record.source_id] = [linked[xref.target_id]]
        unlinked = [r for r in records if r.source_id not in found and r.data.get("sku")]
        stale = sorted({r.data["sku"] for r in unlinked if r.source_id in xrefs})
        if stale:  # linked to an item that is gone: by SKU after all (rare)
            for item in qb.query_in("Item", "Sku", stale):
                by_sku.setdefault(str(item.get("Sku") or ""), []).append(item)
        for record in unlinked:
            found[record.source_id] = by_sku.get(record.data["sku"], [])
        matches: dict[str, list[dict[str, Any]]] = {}
        for vid, items in found.items():
            tracking = [i for i in items if i.get("TrackQtyOnHand")]
            if tracking:
                matches[vid] = tracking
            elif items:
                matches[vid] = [{"Id": items[0]["Id"], "_untracked": True}]
        linked_ids = {vid for vid in found if vid not in {r.source_id for r in unlinked}}
        return matches, linked_ids

    def _compare(self, records: list[Record], result: StepResult) -> None:
        """Target quantities for the chunk (pandas, all rows at once); pass the changes."""
        import pandas as pd

        from koppel.domain.stock import StockCalculation, qbo_stock_changes, target_quantities

        tracked = [r for r in records if not StockState(r).item.get("untracked")]
        if not tracked:
            return
        settings = self.run.tenant.settings.stock
        frame = pd.DataFrame([{
            "source_variant_id": r.source_id, "sku": r.data.get("sku"),
            "stock_level": r.data["stock_level"], "track_stock": True,
            **{name: r.data.get(name) for name in _EXTRA_VARIANT_FIELDS}} for r in tracked])
        for name in _EXTRA_VARIANT_FIELDS:
            frame[name] = pd.to_numeric(frame[name], errors="coerce")
        reserved = pd.Series({r.source_id: float(r.data.get("reserved") or 0) for r in tracked},
                             dtype="float64")
        on_hand = pd.Series({r.source_id: float(StockState(r).item["qty_on_hand"])
                             for r in tracked}, dtype="float64")
        calculation = StockCalculation(kind=settings.calculation, formula=settings.formula,
                                       buffer=Decimal(settings.buffer))
        targets = target_quantities(frame, reserved, calculation, qty_on_hand=on_hand)
        # QBO's quantity was only an input of the formula; the comparison brings its own
        targets = targets.drop(columns=["qty_on_hand"])
        by_id = {r.source_id: r for r in tracked}
        today = self._today().isoformat()
        for vid, target in zip(targets["source_variant_id"], targets["target"]):
            if pd.isna(target):
                result.fail(by_id[vid], RecordError(
                    "the stock formula gives no number for this variant", field="stock_level"))
        items = pd.DataFrame([{"source_variant_id": r.source_id,
                               "item_id": StockState(r).item["id"],
                               "qty_on_hand": StockState(r).item["qty_on_hand"],
                               "track_qty_on_hand": True} for r in tracked])
        changes = qbo_stock_changes(targets, items)
        reserved_by_id = dict(zip(targets["source_variant_id"], targets["reserved"]))
        for row in changes.itertuples(index=False):
            record = by_id[row.source_variant_id]
            StockState(record).change = {"current": float(row.current), "target": float(row.target),
                                      "qty_diff": float(row.qty_diff),
                                      "reserved": float(reserved_by_id.get(row.source_variant_id,
                                                                           0.0)),
                                      # the adjustment's date, fixed before the load so a
                                      # retried load sends the same request
                                      "txn_date": today}
            result.passed.append(record)

    # ------------------------------------------------------------------ load
    def load(self, records: list[Record]) -> StepResult:
        if self.run.direction == QBO_TO_SHOP:
            return self._load_into_shop(records)
        return self._load_into_quickbooks(records)

    def _load_into_quickbooks(self, records: list[Record]) -> StepResult:
        result = StepResult()
        if not records:
            return result
        if self.run.dry_run:
            for record in records:
                change, item = StockState(record).change, StockState(record).item
                result.end(record, "skipped", target_type="Item", target_id=item["id"],
                           reason=f"dry run: would adjust QtyOnHand of Item {item['id']} from "
                                  f"{_qty(change['current'])} to {_qty(change['target'])}",
                           details=_details(change))
            return result
        from koppel.hooks.qbo_writer import WriteOp

        key = self._chunk_key(records)
        op = WriteOp(key=key, operation="create", entity="InventoryAdjustment", bid="a",
                     payload=self._adjustment_payload(records),
                     summary=f"create InventoryAdjustment of {len(records)} item(s)")
        outcome = self._writer().write(
            [op], id_parts=("InventoryAdjustment", self.run.run_id, key))[key]
        if outcome.written:
            for record in records:
                self._end_updated(result, record, "InventoryAdjustment", outcome.target_id)
            return result
        if outcome.code in _UNSUPPORTED_CODES:
            log.info("stock %s: the company cannot post InventoryAdjustment (fault %s); "
                     "setting QtyOnHand by sparse update", self.run.tenant_id, outcome.code)
            return self._set_quantities(records, key)
        if len(records) == 1:
            result.fail(records[0], RecordError(_outcome_reason(outcome), field="QtyOnHand"))
            return result
        return self._adjust_one_by_one(records, key)

    def _writer(self):
        """The one QuickBooks writer (:mod:`koppel.hooks.qbo_writer`): deterministic
        request ids, batches of at most 30, each item's fault as its record's outcome.
        The load's dry run is decided before it (with the reasons it always had)."""
        from koppel.hooks.qbo_writer import QuickBooksWriter

        return QuickBooksWriter(self.run.quickbooks, tenant=self.run.tenant_id,
                                dry_run=self.run.dry_run)

    def _adjust_one_by_one(self, records: list[Record], key: str) -> StepResult:
        """An adjustment for the whole chunk was refused: one per item, in batch requests,
        so the item at fault fails alone. The request ids follow from the run and the
        chunk's content (``key``), so a retried task is answered from the first attempt."""
        from koppel.hooks.qbo_writer import WriteOp

        ops = [WriteOp(key=record.source_id, operation="create", entity="InventoryAdjustment",
                       bid=f"a{index}", payload=self._adjustment_payload([record]),
                       summary=f"create InventoryAdjustment of Item "
                               f"{StockState(record).item['id']}")
               for index, record in enumerate(records)]
        outcomes = self._writer().write(
            ops, id_parts=("InventoryAdjustment:each", self.run.run_id, key))
        result = StepResult()
        for record in records:
            outcome = outcomes[record.source_id]
            if outcome.written:
                self._end_updated(result, record, "InventoryAdjustment", outcome.target_id)
            else:
                result.fail(record, RecordError(_outcome_reason(outcome), field="QtyOnHand"))
        return result

    def _set_quantities(self, records: list[Record], key: str) -> StepResult:
        """``QtyOnHand`` by sparse update (companies without inventory adjustments), 30 to
        a batch request, against the SyncToken the exists-check read (no look-up); the
        request ids follow from the run and the chunk's content (``key``)."""
        from koppel.domain.qbo_payloads import money_json, sparse_update
        from koppel.hooks.qbo_writer import WriteOp

        ops = []
        for index, record in enumerate(records):
            item = StockState(record).item
            ops.append(WriteOp(
                key=record.source_id, operation="update", entity="Item", bid=f"q{index}",
                target_id=item["id"],
                payload=sparse_update(
                    {"Id": item["id"], "SyncToken": item["sync_token"]},
                    {"QtyOnHand": money_json(_decimal(StockState(record).change["target"]))}),
                summary=f"set QtyOnHand of Item {item['id']}"))
        outcomes = self._writer().write(ops, id_parts=("Item:QtyOnHand", self.run.run_id, key))
        result = StepResult()
        for record in records:
            outcome = outcomes[record.source_id]
            if outcome.written:
                self._end_updated(result, record, "QtyOnHand", StockState(record).item["id"])
            else:
                result.fail(record, RecordError(_outcome_reason(outcome), field="QtyOnHand"))
        return result

    def _adjustment_payload(self, records: list[Record]) -> dict[str, Any]:
        """One ``InventoryAdjustment`` carrying the ``QtyDiff`` of each record. Its date is
        the one the exists-check fixed (``change.txn_date``), so a retry of the load on a
        later day sends the same request."""
        from koppel.domain.qbo_payloads import AdjustmentRow, inventory_adjustment_payload

        rows = [AdjustmentRow(StockState(r).item["id"], _decimal(StockState(r).change["qty_diff"]))
                for r in records]
        dates = {StockState(r).change.get("txn_date") for r in records}
        fixed = next(iter(dates)) if len(dates) == 1 else None
        txn_date = date.fromisoformat(fixed) if fixed else self._today()
        return inventory_adjustment_payload(rows, adjust_account_id=self._adjust_account_id(),
                                            txn_date=txn_date, private_note=self._note())

    def _chunk_key(self, records: list[Record]) -> str:
        """The chunk's content (items and quantities), the last part of its request ids:
        a retry of the load task reads the same staged records, so it sends the same
        requests under the same ids and QuickBooks answers them from the first attempt
        (the adjustment it already made), never booking a quantity twice."""
        lines = sorted((StockState(r).item["id"], StockState(r).change["current"],
                        StockState(r).change["target"]) for r in records)
        return hashlib.sha256(json.dumps(lines).encode()).hexdigest()[:24]

    def _end_updated(self, result: StepResult, record: Record, method: str,
                     document_id: Any) -> None:
        change, item = StockState(record).change, StockState(record).item
        details = {**_details(change), "method": method}
        if method == "InventoryAdjustment" and document_id is not None:
            details["adjustment_id"] = str(document_id)
        result.end(record, "updated", target_type="Item", target_id=item["id"],
                   reason=f"QtyOnHand {_qty(change['current'])} → {_qty(change['target'])}",
                   details=details)

    def _adjust_account_names(self) -> list[str]:
        expense = self.run.tenant.settings.products.accounts.expense
        return [ADJUST_ACCOUNT] + ([expense] if expense else [])

    def _adjust_account_id(self) -> str:
        """The account inventory adjustments book to (read by the exists-check's batch;
        else queried now)."""
        from koppel.flows.qbo_refs import run_refs

        cached = getattr(self, "_account_id", None)
        if cached:
            return cached
        names = self._adjust_account_names()
        refs = run_refs(self.run, [])
        found = {name: refs.account_id(name) for name in names if refs.account_id(name)}
        if not found:
            found = {a.get("Name"): str(a["Id"]) for a in
                     self.run.quickbooks.query_in("Account", "Name", names)}
        for name in names:
            if name in found:
                self._account_id = found[name]
                return self._account_id
        raise SystemicError(f"QuickBooks has no account {' or '.join(map(repr, names))} "
                            "to book inventory adjustments to")

    def _today(self):
        return datetime.now(ZoneInfo(self.run.tenant.settings.timezone)).date()

    def _note(self) -> str:
        return f"koppel stock sync ({self.run.tenant_id}, run {self.run.run_id})"

    # ------------------------------------------------------------------ QuickBooks → shop
    def _extract_from_quickbooks(self) -> list[Record]:
        """QBO inventory items whose ``QtyOnHand`` differs from their variant's stock level
        (matched by the products flow's xref, else SKU), compared with pandas."""
        import pandas as pd

        from koppel.domain.stock import lightspeed_stock_updates

        wanted = self._wanted()
        items = list(self.run.quickbooks.query_all("Item", "Type = 'Inventory'"))
        items = [i for i in items if i.get("TrackQtyOnHand")]
        if wanted is not None:
            items = [i for i in items if {str(i["Id"]), str(i.get("Sku") or "")} & wanted]
        variants = self._map_variants(self._variants())
        shop = [r for r in variants if not StockState(r).error and r.data.get("track_stock")]
        untracked_skus = {r.data.get("sku") for r in variants
                          if not StockState(r).error and not r.data.get("track_stock")}
        errors = {r.source_id: StockState(r).error for r in variants if StockState(r).error}
        xrefs = self.run.store.xrefs(self.run.tenant_id, "variant", [r.source_id for r in shop],
                                     target_type="Item")
        by_sku: dict[str, list[Record]] = {}
        for record in shop:
            if record.data.get("sku"):
                by_sku.setdefault(record.data["sku"], []).append(record)
        linked: dict[str, list[Record]] = {}
        for record in shop:
            xref = xrefs.get(record.source_id)
            if xref is not None:
                linked.setdefault(xref.target_id, []).append(record)
        out: list[Record] = []
        pairs = []
        for item in items:
            item_id = str(item["Id"])
            matched = linked.get(item_id) or by_sku.get(str(item.get("Sku") or ""), [])
            record = Record(source_id=item_id, source_type="item",
                            data={"sku": item.get("Sku"), "qty_on_hand": _number(item.get("QtyOnHand"))})
            if len(matched) > 1 and item_id not in linked:
                StockState(record).conflict = (f"{len(matched)} Lightspeed variants share SKU "
                                            f"{item.get('Sku')!r}; link them via the products flow")
                out.append(record)
                continue
            if not matched and item.get("Sku") in untracked_skus:
                continue  # the shop does not track this variant's stock: left alone
            if not matched:
                StockState(record).skip = (f"no Lightspeed variant with SKU {item.get('Sku')!r}"
                                        if item.get("Sku") else "the item has no SKU to match")
                out.append(record)
                continue
            for variant in matched:
                pairs.append((item_id, variant))
        if pairs:
            shop_frame = pd.DataFrame([{"source_variant_id": v.source_id,
                                        "stock_level": v.data["stock_level"],
                                        "track_stock": v.data["track_stock"]} for _, v in pairs])
            on_hand = {str(i["Id"]): _number(i.get("QtyOnHand")) for i in items}
            item_frame = pd.DataFrame([{"source_variant_id": v.source_id, "item_id": i,
                                        "qty_on_hand": on_hand[i], "track_qty_on_hand": True}
                                       for i, v in pairs])
            updates = lightspeed_stock_updates(shop_frame, item_frame)
            item_of = {v.source_id: i for i, v in pairs}
            sku_of = {v.source_id: v.data.get("sku") for _, v in pairs}
            changing = {item_of[v] for v in updates["source_variant_id"]}
            failed = {str(row["source_id"]) for row in
                      self.run.store.failed(self.run.tenant_id, self.run.flow)}
            for item_id in sorted(failed & (set(item_of.values()) - changing)):
                out.append(Record(source_id=item_id, source_type="item", data={},
                                  state={"skip": "already in sync"}))
            for row in updates.itertuples(index=False):
                out.append(Record(source_id=item_of[row.source_variant_id], source_type="item",
                                  data={"variant_id": row.source_variant_id,
                                        "sku": sku_of[row.source_variant_id],
                                        "current": float(row.current),
                                        "stock_level": float(row.stock_level)}))
        for vid, error in sorted(errors.items()):
            out.append(Record(source_id=vid, source_type="variant", data={},
                              state={"error": error}))
        return out

    def _load_into_shop(self, records: list[Record]) -> StepResult:
        import math

        result = StepResult()
        hook = None if self.run.dry_run else self.run.lightspeed
        for record in records:
            if StockState(record).error:
                result.fail(record, RecordError(StockState(record).error))
                continue
            if StockState(record).skip:
                result.end(record, "skipped", reason=StockState(record).skip)
                continue
            if StockState(record).conflict:
                result.end(record, "conflict", reason=StockState(record).conflict)
                continue
            vid, level = record.data["variant_id"], math.floor(record.data["stock_level"])
            current = record.data["current"]
            details = {"from": current, "to": level, "item_id": record.source_id}
            if level == current:
                continue
            if hook is None:
                result.end(record, "skipped", target_type="variant", target_id=vid,
                           reason=f"dry run: would set stockLevel of variant {vid} from "
                                  f"{_qty(current)} to {level}", details=details)
                continue
            try:
                hook.update_variant_stock(int(vid), level, stock_tracking=None)
            except Exception as exc:
                if is_systemic(exc):
                    raise
                result.fail(record, RecordError(f"Lightspeed refused the stock level: {exc}",
                                                field="stockLevel"))
                continue
            result.end(record, "updated", target_type="variant", target_id=vid,
                       reason=f"stockLevel {_qty(current)} → {level}", details=details)
        return result


# ---------------------------------------------------------------------- helpers


def is_open_order(order: Any) -> bool:
    """An order that may still reserve stock: an open ``status``
    (:data:`OPEN_ORDER_STATUSES`) and a ``shipmentStatus`` that is neither ``shipped`` nor
    ``cancelled``."""
    status = (getattr(order, "status", None) or "").lower()
    shipment = (getattr(order, "shipment_status", None) or "").lower()
    return status in OPEN_ORDER_STATUSES and shipment not in ("shipped", "cancelled")


def _utcnow():
    import datetime as dt

    return dt.datetime.now(dt.timezone.utc)


def _unchanged(held: Any, order: Any) -> bool:
    """The book holds ``order``'s rows as of its current ``updatedAt`` (and could read
    them): they need no new read."""
    from koppel.hooks.paging import parse_timestamp

    if held is None or held.unreadable or held.updated_at is None:
        return False
    stamp = parse_timestamp(getattr(order, "updated_at", None))
    return stamp is not None and stamp == held.updated_at \
        and (held.status or "") == (order.status or "") \
        and (held.shipment_status or "") == (order.shipment_status or "")


class _Batch:
    """Order reads written to the reservation book in transactions of
    :data:`_WRITE_BATCH` orders (a first scan reads thousands); the rest on exit — only
    on a clean exit, so a failed read leaves the earlier batches and nothing half."""

    def __init__(self, book: Any) -> None:
        self.book = book
        self.pending: list[dict[str, Any]] = []
        self.count = 0

    def add(self, entry: dict[str, Any]) -> None:
        self.pending.append(entry)
        self.count += 1
        if len(self.pending) >= _WRITE_BATCH:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.book.put_orders(self.pending)
            self.pending = []

    def __enter__(self) -> "_Batch":
        return self

    def __exit__(self, exc_type, *_: Any) -> None:
        if exc_type is None:
            self.flush()


class _HeldOrder:
    """An order the book holds, in the shape :meth:`StockProcess._read_rows` reads."""

    def __init__(self, order_id: int, held: Any) -> None:
        self.id = order_id
        self.updated_at = held.updated_at
        self.status = held.status
        self.shipment_status = held.shipment_status


def _ref_id(reference: Any) -> int | None:
    from koppel.hooks.lightspeed_models import ref_id

    return ref_id(reference)


def _variant_keys(variant: dict[str, Any]) -> set[str]:
    return {str(variant["id"])} | {str(variant[k]).strip() for k in ("sku", "articleCode")
                                   if variant.get(k) not in (None, "", False)}


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool) or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _decimal(value: float) -> Decimal:
    from koppel.domain.stock import QUANTITY_DECIMALS

    return Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-QUANTITY_DECIMALS)).normalize()


def _qty(value: Any) -> str:
    number = float(value)
    return str(int(number)) if number == int(number) else f"{number:g}"


def _details(change: dict[str, Any]) -> dict[str, Any]:
    return {"from": change["current"], "to": change["target"], "qty_diff": change["qty_diff"],
            "reserved": change.get("reserved", 0.0)}


def _item_state(item: dict[str, Any]) -> dict[str, Any]:
    if item.get("_untracked"):
        return {"id": str(item["Id"]), "untracked": True}
    return {"id": str(item["Id"]), "sync_token": str(item.get("SyncToken", "0")),
            "qty_on_hand": _number(item.get("QtyOnHand")) or 0.0}


def _outcome_reason(outcome: Any) -> str:
    """Why the writer did not write a record (its fault, else the outcome's reason)."""
    if outcome.fault is not None:
        return _fault_reason(outcome.fault)
    why = outcome.reason or "no reason given"
    return f"QuickBooks did not write it ({outcome.status}): {why}"[:500]


def _fault_reason(fault: Any) -> str:
    code = getattr(fault, "code", None)
    detail = getattr(fault, "detail", "") or ""
    message = str(getattr(fault, "message", "") or fault)
    return f"QuickBooks fault {code}: {detail or message}"[:500]
