"""Orders in the other direction: QuickBooks sales receipts and invoices become Lightspeed
orders, once, and never loop back.

extract   documents changed in the window (``MetaData.LastUpdatedTime``), or the Params'
          ids / DocNumbers, plus last run's failures
enrich    one batch for the chunk's customers and items → a reverse order per document
          (``orders_reverse_mapping``)
exists    koppel's own documents are skipped (cross-reference *target* of the forward
          flow, or koppel's Lightspeed trace in the private note); documents already
          turned into orders are skipped, paid, cancelled or reported; every line's SKU
          resolved to one Lightspeed variant (unknown SKU: the tenant's policy)
customers Lightspeed customers by e-mail; new ones created (company with contact person,
          else a person)
load      checkout → rows → the shipment and payment method that charge the document's
          shipping and fees → the checkout's quote checked against the document → order,
          checked again as Lightspeed returns it; the QuickBooks reference as order
          metafield; payment status as the document says (receipt: paid; invoice: paid at
          zero balance, partially paid, else open); voided documents cancel their order

The order carries the document's money or is not made: rows at the document's amounts,
its shipping and payment fees, total and VAT per rate to the cent. Lightspeed prices
checkout rows at the catalogue price and documents no way to give a row another price
or an amount off (``docs/vendor-facts.md``, section 8), so a document whose money the
shop would not charge becomes a ``conflict`` record naming both figures
(``details.verification``: alerted, counted by the error threshold): before placing
(the checkout is deleted) or, should the placed order differ, after (the order is
cancelled). Such a document is not tried again until it changes (or a run names it in
``records``). Checkouts are sent with ``notifications: false`` unless the tenant's
``reverse_orders.notify_customer`` asks for the shop's e-mails.

Records: ``source_type`` ``qbo:SalesReceipt`` / ``qbo:Invoice`` and ``source_id``
``"<Entity>:<Id>"`` (QuickBooks numbers each document type on its own, so the Id alone is
not unique within a run). Cross-references use the bare QuickBooks Id:
``(qbo:<Entity>, Id) → ("order", Lightspeed order id)``, which the forward orders flow
reads to never book such an order back.
"""

from __future__ import annotations

import datetime
import logging
from decimal import Decimal
from typing import Any

from koppel.domain.money import cents
from koppel.flows import orders_reverse_lightspeed as ls
from koppel.flows import orders_reverse_mapping as rm
from koppel.flows.orders_reverse_lightspeed import ReverseOrderState
from koppel.flows.base import Process, Record, RecordError, StepResult, is_systemic, jsonable, run_window

log = logging.getLogger(__name__)

FORWARD_TARGETS = ("SalesReceipt", "Invoice")
#: cross-reference kind of a document refused because the shop would charge other money
REFUSED = "refused"


def record_id(entity: str, doc_id: Any) -> str:
    return f"{entity}:{doc_id}"


def parse_record_id(value: str) -> tuple[str | None, str]:
    entity, sep, doc_id = str(value).partition(":")
    return (entity, doc_id) if sep and entity in FORWARD_TARGETS else (None, str(value))


class ReverseOrdersProcess(Process):
    flow = "orders_reverse"
    source_type = "qbo:document"
    target_type = "order"
    chunk_size = 50

    # -- helpers ---------------------------------------------------------------------------
    @property
    def settings(self):
        return self.run.tenant.settings

    @property
    def options(self):
        return self.settings.reverse_orders

    @property
    def entities(self) -> list[str]:
        return [rm.ENTITY_OF[t] for t in self.options.document_types]

    @staticmethod
    def _doc_id(record: Record) -> str:
        return str(record.data["doc"]["Id"])

    # -- extract ---------------------------------------------------------------------------
    def extract(self) -> list[Record]:
        hook = self.run.quickbooks
        docs: dict[str, tuple[str, dict[str, Any]]] = {}
        wanted = [str(w) for w in self.run.params.get("records") or []]
        if wanted:
            self._read_wanted(hook, wanted, docs)
        else:
            window = run_window(self.run)
            where = None
            if window is not None:
                # QuickBooks compares whole seconds: the start rounds down and the end up,
                # so a document changed in the window's last second is never left out.
                start = window[0].replace(microsecond=0).isoformat()
                end = (window[1].replace(microsecond=0)
                       + (datetime.timedelta(seconds=1) if window[1].microsecond else
                          datetime.timedelta(0))).isoformat()
                where = (f"MetaData.LastUpdatedTime >= '{start}' AND "
                         f"MetaData.LastUpdatedTime <= '{end}'")
            for entity in self.entities:
                for doc in hook.query_all(entity, where):
                    docs[record_id(entity, doc["Id"])] = (entity, doc)
        retry: dict[str, list[str]] = {}
        for failed in self.run.store.failed(self.run.tenant_id, self.flow):
            entity, doc_id = parse_record_id(failed["source_id"])
            if entity in self.entities and failed["source_id"] not in docs:
                retry.setdefault(entity, []).append(doc_id)
        for entity, ids in retry.items():
            for doc in hook.query_in(entity, "Id", ids):
                docs[record_id(entity, doc["Id"])] = (entity, doc)
        cap = self.run.tenant.flows.orders_reverse.max_records
        keys = sorted(docs, key=lambda k: (docs[k][0], int(docs[k][1]["Id"])))[:cap]
        return [Record(key, jsonable({"entity": docs[key][0], "doc": docs[key][1]}),
                       rm.SOURCE_TYPES[docs[key][0]]) for key in keys]

    def _read_wanted(self, hook, wanted: list[str], docs) -> None:
        """Params ``records``: ``"SalesReceipt:12"``, bare QuickBooks ids or DocNumbers."""
        by_entity: dict[str, list[str]] = {}
        loose = []
        for value in wanted:
            entity, doc_id = parse_record_id(value)
            if entity:
                by_entity.setdefault(entity, []).append(doc_id)
            else:
                loose.append(value)
        for entity in self.entities:
            ids = by_entity.get(entity, []) + [v for v in loose if v.isdigit()]
            rows = hook.query_in(entity, "Id", ids) + hook.query_in(entity, "DocNumber", loose)
            for doc in rows:
                docs[record_id(entity, doc["Id"])] = (entity, doc)

    # -- enrich ----------------------------------------------------------------------------
    def enrich(self, records: list[Record]) -> StepResult:
        """The chunk's customers and items (the hook's look-up policy, ``query_many``), then
        one reverse order per document."""
        from koppel.hooks.quickbooks import quote
        from koppel.mapping import Mapper

        result = StepResult()
        customer_ids = sorted({str(r.data["doc"].get("CustomerRef", {}).get("value"))
                               for r in records if r.data["doc"].get("CustomerRef")})
        item_ids = sorted({str(line["SalesItemLineDetail"]["ItemRef"]["value"])
                           for r in records for line in r.data["doc"].get("Line") or []
                           if (line.get("SalesItemLineDetail") or {}).get("ItemRef")})
        lookups = {f"c{i}": "SELECT * FROM Customer WHERE Active IN (true, false) AND Id IN ("
                   + ", ".join(quote(x) for x in chunk) + ") MAXRESULTS 1000"
                   for i, chunk in enumerate(_chunks(customer_ids, 100))}
        lookups.update({f"i{i}": "SELECT *, Sku FROM Item WHERE Active IN (true, false) AND "
                        "Id IN (" + ", ".join(quote(x) for x in chunk) + ") MAXRESULTS 1000"
                        for i, chunk in enumerate(_chunks(item_ids, 100))})
        customers: dict[str, dict] = {}
        items: dict[str, dict] = {}
        for name, rows in self.run.quickbooks.query_many(lookups).items():
            table = customers if name.startswith("c") else items
            for row in rows:
                table[str(row["Id"])] = jsonable(row)
        default_email = self.settings.default_customer.email
        mapper = Mapper.for_tenant(self.run.tenant, "orders_reverse")
        for record in records:
            doc = record.data["doc"]
            try:
                customer = customers.get(str((doc.get("CustomerRef") or {}).get("value")))
                shipping_item = self.settings.shipping_item
                fee_item = self.settings.payment_fee_item
                mapped = mapper.map(rm.mapping_source(doc, customer=customer, items=items,
                                                      shipping_item=shipping_item,
                                                      fee_item=fee_item))
                if mapped.errors:
                    raise RecordError("; ".join(f"{e.field}: {e.message}"
                                                for e in mapped.errors),
                                      field=mapped.errors[0].field)
                order = rm.reverse_order(record.data["entity"], doc, mapped.values,
                                         customer=customer, items=items,
                                         shipping_item=shipping_item,
                                         default_email=default_email, fee_item=fee_item,
                                         notify=self.options.notify_customer)
                ReverseOrderState(record).order = jsonable(order)
                ReverseOrderState(record).hash = rm.content_hash(order)
                result.passed.append(record)
            except RecordError as exc:
                result.fail(record, exc)
        return result

    # -- exists-check ----------------------------------------------------------------------
    def exists_check(self, records: list[Record]) -> StepResult:
        store, tenant = self.run.store, self.run.tenant_id
        result = StepResult()
        by_type: dict[str, list[Record]] = {}
        for record in records:
            by_type.setdefault(record.source_type, []).append(record)
        to_create: list[Record] = []
        for source_type, group in by_type.items():
            entity = source_type.split(":", 1)[1]
            ids = [self._doc_id(r) for r in group]
            booked_from_shop = store.xrefs_by_target(tenant, entity, ids)
            orders = store.xrefs(tenant, source_type, ids, target_type=ls.ORDER)
            checkouts = store.xrefs(tenant, source_type, ids, target_type=ls.CHECKOUT)
            refused = store.xrefs(tenant, source_type, ids, target_type=REFUSED)
            named = {str(w) for w in self.run.params.get("records") or []}
            for record in group:
                doc_id, doc = self._doc_id(record), record.data["doc"]
                if doc_id in booked_from_shop:
                    src_type, src_id = booked_from_shop[doc_id]
                    result.end(record, "skipped", reason=f"booked by koppel from Lightspeed "
                               f"{src_type} {src_id}; not turned back into an order")
                    continue
                if rm.has_koppel_trace(doc):
                    result.end(record, "skipped", reason="carries koppel's Lightspeed trace "
                               "(PrivateNote); not turned back into an order")
                    continue
                xref = orders.get(doc_id)
                if xref is not None:
                    self._decide_existing(record, xref, result)
                    if ReverseOrderState(record).adopt_rows:
                        ReverseOrderState(record).adopt_rows = False
                        to_create.append(record)
                    continue
                pending = checkouts.get(doc_id)
                if pending is not None and pending.state == "pending":
                    adopted = ls.resume_checkout(self.run.lightspeed, int(pending.target_id))
                    if adopted is not None:
                        ReverseOrderState(record).action = "adopt"
                        ReverseOrderState(record).order_id = adopted
                        to_create.append(record)
                        continue
                if ReverseOrderState(record).order["voided"]:
                    result.end(record, "skipped", reason="voided before it became an order")
                    continue
                before = refused.get(doc_id)
                if before is not None and before.content_hash == ReverseOrderState(record).hash \
                        and not named & {record.source_id, doc_id}:
                    result.end(record, "skipped", reason="refused earlier: the shop would "
                               "charge other money than the document (see its conflict); "
                               "tried again when the document changes or a run names it")
                    continue
                ReverseOrderState(record).action = "create"
                to_create.append(record)
        if to_create:
            self._resolve_variants(to_create, result)
        return result

    def _decide_existing(self, record: Record, xref, result: StepResult) -> None:
        order = ReverseOrderState(record).order
        ReverseOrderState(record).order_id = int(xref.target_id)
        target = {"target_type": "order", "target_id": xref.target_id}
        if xref.state == "cancelled":
            result.end(record, "skipped", reason=f"order {xref.target_id} already cancelled",
                       **target)
        elif order["voided"]:
            ReverseOrderState(record).action = "cancel"
            result.passed.append(record)
        elif xref.content_hash not in (None, ReverseOrderState(record).hash):
            result.end(record, "conflict", reason="lines, customer or amounts changed in "
                       "QuickBooks after the order was created (Lightspeed orders cannot be "
                       "rewritten); change the order in the shop", **target)
        elif xref.state == "placed":
            ReverseOrderState(record).action = "adopt"  # placed, but not checked or finished yet
            ReverseOrderState(record).adopt_rows = True
        elif order["payment_status"] != xref.state and order["payment_status"] in (
                "paid", "partially_paid"):
            ReverseOrderState(record).action = "pay"
            result.passed.append(record)
        else:
            result.end(record, "skipped", reason=f"already created as order {xref.target_id}",
                       content_hash=ReverseOrderState(record).hash, **target)

    def _resolve_variants(self, records: list[Record], result: StepResult) -> None:
        """Each line's variant (its SKU is what the order's row must carry)."""
        by_sku = ls.variants_by_sku(self.run.lightspeed)
        for record in records:
            try:
                ReverseOrderState(record).rows = ls.resolve_lines(
                    ReverseOrderState(record).order["lines"], by_sku, policy=self.settings.unknown_sku,
                    fallback_sku=self.settings.fallback_item_sku)
                result.passed.append(record)
            except RecordError as exc:
                result.fail(record, exc)

    # -- customer upsert -------------------------------------------------------------------
    def customer_upsert(self, records: list[Record]) -> StepResult:
        """Existing Lightspeed customers by e-mail; new ones created once per e-mail."""
        result = StepResult(passed=[r for r in records if ReverseOrderState(r).action != "create"])
        creating = [r for r in records if ReverseOrderState(r).action == "create"]
        if not creating:
            return result
        hook = self.run.lightspeed
        found = ls.find_customers(hook, [ReverseOrderState(r).order["customer"]["email"] for r in creating])
        for record in creating:
            key = ReverseOrderState(record).order["customer"]["email"].casefold()
            try:
                if key not in found and not self.run.dry_run:
                    created = hook.create_customer(rm.lightspeed_customer(ReverseOrderState(record).order))
                    found[key] = int(created.id)
                    ReverseOrderState(record).customer_action = "created"
                else:
                    ReverseOrderState(record).customer_action = "existing" if key in found else "new"
                ReverseOrderState(record).customer_id = found.get(key)
                result.passed.append(record)
            except Exception as exc:
                if is_systemic(exc):
                    raise
                result.fail(record, RecordError(f"Lightspeed customer: {exc}", field="customer"))
        return result

    # -- load ------------------------------------------------------------------------------
    def load(self, records: list[Record]) -> StepResult:
        result = StepResult()
        methods = ls.Methods(shipment=self.options.shipment_method,
                             payment=self.options.payment_method,
                             payment_map=dict(self.options.payment_methods))
        for record in records:
            action = ReverseOrderState(record).action
            order = ReverseOrderState(record).order
            try:
                if self.run.dry_run:
                    result.end(record, "skipped", reason=self._dry_run_reason(record))
                elif action == "create":
                    expected = self._expected(record)
                    if expected.discount:
                        raise ls.OrderMismatch(
                            [f"discount {cents(expected.discount)}: Lightspeed checkouts have no "
                             "documented way to give an amount off"], expected, None,
                            placed=False)
                    order_id = ls.place_order(self.run, record,
                                              rm.checkout_payload(order, ReverseOrderState(record).customer_id),
                                              ReverseOrderState(record).rows, methods,
                                              order["payment_method"], expected)
                    ReverseOrderState(record).order_id = order_id
                    ls.verify_placed(self.run.lightspeed, order_id, expected)
                    self._finish(record, order_id, fresh=True)
                    self._created(record, order_id, "created", result, expected)
                elif action == "adopt":
                    expected = self._expected(record)
                    ls.verify_placed(self.run.lightspeed, ReverseOrderState(record).order_id, expected)
                    self._finish(record, ReverseOrderState(record).order_id, fresh=False)
                    self._created(record, ReverseOrderState(record).order_id, "created", result,
                                  expected, reason="order placed by an earlier, interrupted run")
                elif action == "pay":
                    self.run.lightspeed.update_order_status(
                        ReverseOrderState(record).order_id, payment_status=order["payment_status"])
                    self._save_state(record, order["payment_status"])
                    result.end(record, "updated", target_type="order",
                               target_id=str(ReverseOrderState(record).order_id),
                               content_hash=ReverseOrderState(record).hash,
                               reason=f"payment status {order['payment_status']} as in QuickBooks")
                elif action == "cancel":
                    self.run.lightspeed.update_order_status(ReverseOrderState(record).order_id,
                                                            status="cancelled")
                    self._save_state(record, "cancelled")
                    result.end(record, "voided", target_type="order",
                               target_id=str(ReverseOrderState(record).order_id),
                               reason=f"QuickBooks {order['entity']} voided; order cancelled")
            except ls.OrderMismatch as exc:
                self._refused(record, exc, result)
            except RecordError as exc:
                result.fail(record, exc)
            except Exception as exc:
                if is_systemic(exc):
                    raise
                result.fail(record, RecordError(f"Lightspeed refused the {action}: {exc}"))
        return result

    def _expected(self, record: Record):
        """The document's money as the order must carry it (rows under the SKU each line
        resolved to in the shop)."""
        rows = ReverseOrderState(record).rows
        skus = [row["sku"] for row in rows] if rows else None
        return rm.document_figures(ReverseOrderState(record).order, skus)

    def _refused(self, record: Record, exc, result: StepResult) -> None:
        """A document whose money the shop would not (or did not) charge: the placed order
        is cancelled, and the record ends as a verified ``conflict`` naming both figures."""
        from koppel.domain.verify import describe

        order = ReverseOrderState(record).order
        tenant, doc_id = self.run.tenant_id, self._doc_id(record)
        target: dict[str, Any] = {}
        if exc.placed:
            self.run.lightspeed.update_order_status(exc.order_id, status="cancelled")
            self.run.store.save_xref(tenant, record.source_type, doc_id, ls.ORDER,
                                     str(exc.order_id), ReverseOrderState(record).hash, state="cancelled")
            target = {"target_type": "order", "target_id": str(exc.order_id)}
            what = f"Lightspeed order {exc.order_id} (cancelled)"
        else:
            self.run.store.save_xref(tenant, record.source_type, doc_id, REFUSED, doc_id,
                                     ReverseOrderState(record).hash, state="refused")
            what = "the Lightspeed checkout (not placed)"
        details = {"verification": True, "placed": exc.placed,
                   "doc_number": order["doc_number"],
                   "quickbooks": exc.document.as_dict() if exc.document else None,
                   "lightspeed": exc.lightspeed.as_dict() if exc.lightspeed else None}
        result.end(record, "conflict", amount=Decimal(order["total"]),
                   content_hash=ReverseOrderState(record).hash, details=details,
                   reason=describe(f"{what} for {order['entity']} "
                                   f"{order['doc_number'] or order['doc_id']}",
                                   exc.problems).replace("differs from the shop",
                                                         "differs from the document"),
                   **target)

    def _finish(self, record: Record, order_id: int, *, fresh: bool) -> None:
        order = ReverseOrderState(record).order
        ls.finish_order(self.run, record, order_id, metafield_key=self.options.metafield_key,
                        metafield_value=rm.metafield_value(order),
                        payment_status=order["payment_status"], fresh=fresh)

    def _save_state(self, record: Record, state: str) -> None:
        self.run.store.save_xref(self.run.tenant_id, record.source_type, self._doc_id(record),
                                 ls.ORDER, str(ReverseOrderState(record).order_id), ReverseOrderState(record).hash,
                                 state=state)

    def _created(self, record: Record, order_id: int, action: str, result: StepResult,
                 expected, reason: str | None = None) -> None:
        """Ends an order checked against the document (:func:`ls.verify_placed`)."""
        order = ReverseOrderState(record).order
        details = {"doc_number": order["doc_number"], "payment_status": order["payment_status"],
                   "customer": ReverseOrderState(record).customer_action,
                   "figures": expected.as_dict()}
        result.end(record, action, target_type="order", target_id=str(order_id),
                   content_hash=ReverseOrderState(record).hash, amount=Decimal(order["total"]),
                   reason=reason, details=details)

    def _dry_run_reason(self, record: Record) -> str:
        order, action = ReverseOrderState(record).order, ReverseOrderState(record).action
        what = {"create": f"create a Lightspeed order from {order['entity']} "
                          f"{order['doc_number'] or order['doc_id']} ({len(order['lines'])} rows, "
                          f"total {order['total']}, {order['payment_status']})",
                "adopt": f"finish order {ReverseOrderState(record).order_id}",
                "pay": f"mark order {ReverseOrderState(record).order_id} {order['payment_status']}",
                "cancel": f"cancel order {ReverseOrderState(record).order_id}"}[action]
        return f"dry run: would {what}"


def _chunks(values: list[str], size: int):
    for start in range(0, len(values), size):
        yield values[start:start + size]
