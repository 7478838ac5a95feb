"""Orders: Lightspeed orders booked in QuickBooks as sales receipts or invoices, exactly
once and to the cent.

extract   orders changed in the window (or the Params' order numbers) + last run's failures
enrich    their rows and the shop currency; the tenant's mapping → a canonical order
exists    booked before (cross-reference, else DocNumber in QBO)? skip, void or update;
          every row's SKU resolved to a QBO item (unknown SKU: the tenant's policy)
customers one customer upsert (``customer_upsert.py``) per chunk
load      sales receipts / invoices, payments, missing items, voids and updates through
          the QuickBooks writer (``koppel.hooks.qbo_writer``: batches of 30); conflicts

Vanished records: an order deleted in Lightspeed after it failed is retired as ``skipped``
"deleted in Lightspeed"; a booked document deleted by hand in QuickBooks fails the order
once (``details.deleted_in_quickbooks``) and is then retired, never booked again silently.

Exactly once: a booked order has a cross-reference; a crash after QBO wrote but before
koppel recorded it is caught by the DocNumber look-up (and QBO's own 6140) on the next
attempt, and batch writes carry deterministic request ids, so a retried request is
answered from the first one.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any, Iterator

from koppel.flows.base import (
    FlowRun,
    Process,
    Record,
    RecordError,
    RecordState,
    StepResult,
    is_systemic as _systemic,
    jsonable,
    run_window,
)

log = logging.getLogger(__name__)

ENTITY = {"sales_receipt": "SalesReceipt", "invoice": "Invoice"}


class OrderState(RecordState):
    """What an order carries between the orders flow's steps."""

    gone: str | None = None             # why it cannot be read: deleted in Lightspeed
    order: dict                         # the mapped order (enrich)
    doc_number: str | None = None       # the QuickBooks DocNumber it is booked under
    hash: str | None = None             # its content hash
    currency: str | None = None         # the shop's currency and the company's home one
    home_currency: str | None = None
    action: str | None = None           # create, update, void or pay (exists-check)
    target_type: str | None = None      # the booked document, when there is one
    target_id: str | None = None
    item_ids: dict                      # SKU → QuickBooks item id
    create_items: list | tuple = ()     # line indexes whose item is created at load
    create_fallback: bool = False       # the fallback item is created at load
    fallback_lines: list | None = None  # line indexes booked on the fallback item
    fallback_item_id: str | None = None
    customer: dict                      # the customer upsert's outcome
    vat_treatment: str | None = None    # domestic, reverse charge, export, exempt, OSS
    vat_treatment_reason: str | None = None
#: Cross-reference state of an order whose booked document was deleted in QuickBooks.
DELETED_IN_QUICKBOOKS = "deleted_in_quickbooks"


class OrdersProcess(Process):
    flow = "orders"
    source_type = "order"
    #: fewer, fuller chunks (kernel ``chunk_length``): each chunk's load leaves one partial
    #: QuickBooks batch per kind of write (customers, items, documents) and costs one
    #: task per step, so 1,000 orders are one chunk — 28 writes per batch and 8 tasks
    #: instead of 23 and 20 at 300 (make bench). Under the APIs' real limits the run takes
    #: as long either way (chunks share the shop's and the realm's budgets); the price is
    #: a retried task re-reading up to 1,000 orders. A chunk of 1,000 staged orders stays
    #: a few MB (issue "Scale and cost").
    chunk_size = 1000
    chunk_align = 30

    # -- helpers ---------------------------------------------------------------------------
    @property
    def settings(self):
        return self.run.tenant.settings

    @property
    def entity(self) -> str:
        return ENTITY[self.settings.document_type]

    def _order(self, record: Record):
        from koppel.domain.records import MappedOrder

        return MappedOrder.model_validate(OrderState(record).order)

    def _doc_number(self, order) -> str:
        from koppel.domain.qbo_payloads import PayloadError, doc_number

        try:
            return doc_number(order.number, self.settings.doc_number_prefix)
        except PayloadError as exc:
            raise RecordError(str(exc), field="number") from exc

    def _content_hash(self, order) -> str:
        from koppel.domain.hashing import content_hash

        data = order.model_dump(exclude={"updated_at", "status", "payment_status",
                                         "shipment_status"})
        return content_hash(data)

    # -- extract ---------------------------------------------------------------------------
    def extract(self) -> Iterator[Record]:
        """The window's orders as the API pages them, then last runs' failures not among
        them — a stream, so the extract task holds one chunk at a time however many
        orders the window has (the operator stages them chunk by chunk)."""
        hook = self.run.lightspeed
        cap = getattr(self.run.tenant.flows.orders, "max_records", None)
        seen: set[str] = set()
        shop: dict[str, Any] | None = None

        def record(order_id: str, order: dict[str, Any]) -> Record:
            nonlocal shop
            if shop is None:  # read once, and only when there is an order
                shop = shop_context(hook.get_shop().to_api())
            seen.add(order_id)
            return Record(order_id, jsonable({**order, "_shop": shop}), "order")

        for order_id, order in iter_run_orders(self.run):
            if cap and len(seen) >= cap:
                return
            if order_id not in seen:
                yield record(order_id, order)
        for failed in self.run.store.failed(self.run.tenant_id, self.flow):
            if cap and len(seen) >= cap:
                return
            if failed["source_id"] in seen:
                continue
            try:
                order = hook.get_order(int(failed["source_id"]), with_rows=False).to_api()
            except Exception as exc:  # a vanished order is reported, not fatal
                if _systemic(exc):
                    raise
                log.warning("order %s from the retry list could not be read: %s",
                            failed["source_id"], type(exc).__name__)
                from koppel.hooks.errors import LightspeedNotFound

                if isinstance(exc, LightspeedNotFound):  # retired in enrich
                    seen.add(failed["source_id"])
                    yield Record(failed["source_id"], {}, "order", state={
                        "gone": f"order {failed['source_id']} was deleted in Lightspeed "
                                "(retired: not retried)"})
                continue
            yield record(failed["source_id"], order)

    # -- enrich ----------------------------------------------------------------------------
    def enrich(self, records: list[Record]) -> StepResult:
        from koppel.domain.records import MappedOrder, parse_record
        from koppel.mapping import Mapper

        hook = self.run.lightspeed
        mapper = Mapper.for_tenant(self.run.tenant, "orders")
        result = StepResult()
        for record in records:
            if OrderState(record).gone:  # failed before, deleted in Lightspeed since
                result.end(record, "skipped", reason=OrderState(record).gone,
                           details={"deleted_in_lightspeed": True})
                continue
            try:
                rows = [row.to_api() for row in hook.get_order_rows(int(record.source_id))]
                source = {**record.data, "_rows": jsonable(rows)}
                mapped = mapper.map(source)
                if mapped.errors:
                    raise RecordError("; ".join(f"{e.field}: {e.message}" for e in mapped.errors))
                parsed = parse_record(MappedOrder, mapped.values)
                if parsed.errors:
                    raise RecordError("; ".join(f"{e.field}: {e.message}" for e in parsed.errors))
                OrderState(record).order = jsonable(parsed.record)
                result.passed.append(record)
            except RecordError as exc:
                result.fail(record, exc)
            except Exception as exc:
                if _systemic(exc):
                    raise
                result.fail(record, RecordError(f"could not read the order: {exc}"))
        return result

    # -- exists-check ----------------------------------------------------------------------
    def exists_check(self, records: list[Record]) -> StepResult:
        store, tenant = self.run.store, self.run.tenant_id
        result = StepResult()
        xrefs = store.xrefs(tenant, "order", [r.source_id for r in records])
        # Orders koppel itself created in Lightspeed from a QuickBooks document (the
        # reverse direction) are never booked back: that would loop.
        mirrored = store.xrefs_by_target(tenant, "order", [r.source_id for r in records])
        unknown: dict[str, Record] = {}
        for record in records:
            if record.source_id in mirrored:
                source_type, source_id = mirrored[record.source_id]
                result.end(record, "skipped", reason=f"created by koppel from QuickBooks "
                           f"{source_type} {source_id}; not booked back")
                continue
            try:
                order = self._order(record)
                OrderState(record).doc_number = self._doc_number(order)
                OrderState(record).hash = self._content_hash(order)
            except RecordError as exc:
                result.fail(record, exc)
                continue
            xref = xrefs.get(record.source_id)
            if xref is None:
                unknown[record.source_id] = record
                continue
            self._decide_booked(record, order, xref.target_type, xref.target_id,
                                xref.content_hash, xref.state, result)
        docs, items, refs = self._lookup(unknown, list(unknown.values()) + list(result.passed))
        if unknown:
            self._check_doc_numbers(unknown, result, docs)
        to_book = [r for r in result.passed if OrderState(r).action in ("create", "update")]
        if to_book:
            self._check_currency(to_book, result, refs)
            to_book = [r for r in to_book if r in result.passed]
            self._resolve_items(to_book, result, items)
        return result

    def _check_currency(self, records: list[Record], result: StepResult, refs) -> None:
        """An order in a currency other than the company's home currency is booked in its
        own currency, which QuickBooks allows only with multicurrency on: otherwise it
        fails here, naming the currency — before any customer is made for it — and is
        never booked as another currency."""
        home = refs.home_currency if refs is not None else None
        if home is None:
            return
        keep = []
        for record in list(result.passed):
            order = self._order(record) if record in records else None
            currency = (order.currency or "").upper() if order is not None else ""
            if order is None or not currency or currency == home or refs.multicurrency:
                if order is not None:
                    OrderState(record).currency = currency or home
                    OrderState(record).home_currency = home
                keep.append(record)
                continue
            result.fail(record, RecordError(
                f"the order is in {currency}, the QuickBooks company's home currency is {home} "
                f"and multicurrency is off: turn multicurrency on and enable {currency} in "
                "QuickBooks (it is never booked as another currency)", field="currency"))
        result.passed = keep

    def _lookup(self, unknown: dict[str, Record], candidates: list[Record]):
        """The look-ups the exists-check needs from QuickBooks (the hook's look-up policy:
        plain queries, or batches of 30 when that is cheaper under the realm's limits):
        documents by DocNumber for orders without a cross-reference, and items by SKU
        for every order that may be booked."""
        from koppel.flows.products_target import in_queries, query_batch
        from koppel.flows.qbo_refs import ref_queries, refs_from_rows, stage_refs

        skus: set[str] = set()
        for record in candidates:
            skus.update(line.sku for line in self._order(record).lines if line.sku)
        if candidates and self.settings.fallback_item_sku:
            skus.add(self.settings.fallback_item_sku)
        numbers = [OrderState(r).doc_number for r in unknown.values()]
        queries = {**in_queries("d", self.entity, "DocNumber", numbers),
                   **in_queries("s", "Item", "Sku", skus)}
        if candidates:  # the load's reference data rides along in the same request
            queries.update(ref_queries(self._helper_items()))
        # the chunk's documents follow (one write each): look-ups may leave them the batches
        rows = query_batch(self.run.quickbooks, queries, writes_to_follow=len(candidates))
        docs = [row for name, found in rows.items() if name.startswith("d") for row in found]
        items = [row for name, found in rows.items() if name.startswith("s") for row in found]
        refs = None
        if candidates:
            refs = refs_from_rows(rows)
            stage_refs(self.run, refs)
        return docs, items, refs

    def _helper_items(self) -> list[str]:
        s = self.settings
        return [n for n in (s.shipping_item, s.payment_fee_item, s.discount_item,
                            s.rounding.item if s.rounding.enabled else None) if n]

    def _refs(self):
        from koppel.flows.qbo_refs import run_refs

        return run_refs(self.run, self._helper_items())

    def _pays(self, order, target_type: str | None = None) -> bool:
        """Whether the order's invoice gets a Payment (invoice mode, order paid)."""
        return ((target_type or self.entity) == "Invoice"
                and self.settings.payments.apply_to_invoices
                and order.payment_status == "paid")

    def _deposit_account(self, refs, order) -> str | None:
        """The account a payment of ``order`` goes to: mapped per payment title, else the
        tenant's default, else Undeposited Funds. A name QuickBooks lacks is an error."""
        p = self.settings.payments
        name = next((p.deposit_accounts[k] for k in (order.payment_fee_name, order.payment_method)
                     if k and k in p.deposit_accounts), None) or p.default_deposit_account
        if name is None:
            return refs.deposit_account_id()
        account = refs.account_id(name)
        if account is None:
            raise RecordError(f"QuickBooks has no account named {name!r} "
                              "(settings.payments.deposit_accounts)", field="payment_method")
        return account

    def _bookable(self, order) -> str | None:
        """Why this order is not booked (tenant's statuses), or None."""
        booked = self.settings.booked
        if order.status in booked.exclude_status:
            return f"status {order.status} is not booked"
        if order.payment_status not in booked.payment_status:
            return f"payment status {order.payment_status} is not booked"
        return None

    def _decide_booked(self, record, order, target_type, target_id, booked_hash, state,
                       result: StepResult) -> None:
        OrderState(record).target_type = target_type
        OrderState(record).target_id = target_id
        cancelled = order.status == "cancelled"
        if state == DELETED_IN_QUICKBOOKS:
            result.end(record, "skipped", target_type=target_type, target_id=target_id,
                       reason=f"booked {target_type} {target_id} was deleted in QuickBooks "
                              "(retired: not booked again)",
                       details={"deleted_in_quickbooks": True})
        elif state == "voided":
            result.end(record, "skipped", target_type=target_type, target_id=target_id,
                       reason=f"already voided ({target_type} {target_id})")
        elif cancelled:
            OrderState(record).action = "void"
            result.passed.append(record)
        elif (booked_hash is None or booked_hash == OrderState(record).hash) \
                and self._pays(order, target_type) and state == "active":
            OrderState(record).action = "pay"  # an invoice booked open, the order paid since
            result.passed.append(record)
        elif booked_hash is None or booked_hash == OrderState(record).hash:
            result.end(record, "skipped", target_type=target_type, target_id=target_id,
                       reason=f"already booked as {target_type} {target_id}",
                       content_hash=OrderState(record).hash)
        elif self.settings.conflict_policy == "update":
            OrderState(record).action = "update"
            result.passed.append(record)
        else:
            result.end(record, "conflict", target_type=target_type, target_id=target_id,
                       reason="lines or amounts changed after booking; the tenant's "
                              "conflict policy is 'report'")

    def _check_doc_numbers(self, unknown: dict[str, Record], result: StepResult,
                           found: list[dict[str, Any]]) -> None:
        """Orders without a cross-reference: is their DocNumber in QBO already (a run that
        crashed after booking)? ``found``: the documents with their numbers."""
        by_number = {OrderState(r).doc_number: r for r in unknown.values()}
        existing = {str(row.get("DocNumber")): row for row in found}
        for number, record in by_number.items():
            order = self._order(record)
            row = existing.get(number)
            if row is not None:
                mismatch = adoption_mismatch(row, order)
                if mismatch:
                    result.end(record, "conflict", target_type=self.entity,
                               target_id=str(row["Id"]), reason=(
                                   f"{self.entity} {row['Id']} in QuickBooks has DocNumber "
                                   f"{number} but {mismatch}; not adopted, not booked again"),
                               details={"verification": True, "doc_number": number})
                    continue
                self.run.store.save_xref(self.run.tenant_id, "order", record.source_id,
                                         self.entity, str(row["Id"]), OrderState(record).hash)
                self._decide_booked(record, order, self.entity, str(row["Id"]),
                                    OrderState(record).hash, "active", result)
                continue
            if order.status == "cancelled":
                result.end(record, "skipped", reason="cancelled before it was booked")
                continue
            why_not = self._bookable(order)
            if why_not:
                result.end(record, "skipped", reason=why_not)
                continue
            OrderState(record).action = "create"
            result.passed.append(record)

    def _resolve_items(self, records: list[Record], result: StepResult,
                       rows: list[dict[str, Any]]) -> None:
        """Every row's SKU → one QBO item (``rows``: the items with the chunk's SKUs).
        Unknown SKUs follow ``settings.unknown_sku``; a SKU that matches several QBO
        items is reported, never guessed."""
        policy = self.settings.unknown_sku
        by_sku: dict[str, list[dict]] = {}
        for row in rows:
            if row.get("Sku"):
                by_sku.setdefault(str(row["Sku"]), []).append(row)
        fallback = by_sku.get(self.settings.fallback_item_sku or "", [])
        keep = []
        for record in list(result.passed):
            if record not in records:
                keep.append(record)
                continue
            try:
                item_ids, create = {}, []
                for index, line in enumerate(self._order(record).lines):
                    matches = by_sku.get(line.sku or "", [])
                    if len(matches) > 1:
                        ids = ", ".join(sorted(str(m["Id"]) for m in matches))
                        raise RecordError(f"SKU {line.sku!r} matches {len(matches)} QuickBooks "
                                          f"items (ids {ids})", field=f"lines[{index}].sku")
                    if matches:
                        item_ids[line.sku] = str(matches[0]["Id"])
                    elif policy == "create_item" and line.sku:
                        create.append(index)
                    elif policy in ("fallback_item", "create_item") and len(fallback) == 1:
                        OrderState(record).fallback_lines = [*(OrderState(record).fallback_lines or []), index]
                    elif policy in ("fallback_item", "create_item") and not fallback \
                            and self.settings.fallback_item_sku:
                        # the fallback item is a helper item: created at load when missing
                        OrderState(record).fallback_lines = [*(OrderState(record).fallback_lines or []), index]
                        OrderState(record).create_fallback = True
                    else:
                        raise RecordError(self._unknown_sku_reason(line, policy, fallback),
                                          field=f"lines[{index}].sku")
                OrderState(record).item_ids = item_ids
                OrderState(record).create_items = create
                if fallback:
                    OrderState(record).fallback_item_id = str(fallback[0]["Id"])
                keep.append(record)
            except RecordError as exc:
                result.fail(record, exc)
        result.passed = keep

    def _unknown_sku_reason(self, line, policy: str, fallback: list) -> str:
        """The real cause of a row without a QuickBooks item: a SKU Lightspeed variants
        share (the products flow refuses to sync it), a fallback item QuickBooks lacks,
        or an unknown SKU under the tenant's policy."""
        from koppel.flows.products import DUPLICATE_SKU_MARK

        what = f"unknown SKU {line.sku!r}" if line.sku else "row has no SKU"
        if line.variant_id:
            latest = self.run.store.activity(tenant=self.run.tenant_id, flow="products",
                                             source_id=line.variant_id, limit=1)
            if latest and latest[0]["action"] == "conflict" \
                    and DUPLICATE_SKU_MARK in (latest[0]["reason"] or ""):
                return (f"SKU {line.sku!r} of variant {line.variant_id} is a "
                        f"{latest[0]['reason'].split(': ', 1)[-1]}")
        if policy in ("fallback_item", "create_item") and self.settings.fallback_item_sku:
            sku = self.settings.fallback_item_sku
            if not fallback:
                return (f"{what}, and the fallback item (SKU {sku!r}, "
                        "settings.fallback_item_sku) does not exist in QuickBooks")
            return (f"{what}, and the fallback SKU {sku!r} matches {len(fallback)} QuickBooks "
                    "items")
        return f"{what} (unknown-SKU policy: {policy})"

    # -- customer upsert -------------------------------------------------------------------
    def customer_upsert(self, records: list[Record]) -> StepResult:
        from koppel.flows.customer_upsert import CustomerUpserter

        result = StepResult()
        needing = [r for r in records if OrderState(r).action in ("create", "update")]
        outcomes: dict[str, Any] = {}
        by_currency: dict[str | None, list[Record]] = {}
        for r in needing:  # QuickBooks fixes a customer's currency: one upsert per currency
            currency = OrderState(r).currency
            foreign = bool(currency) and currency != OrderState(r).home_currency
            by_currency.setdefault(currency if foreign else None, []).append(r)
        for currency, group in sorted(by_currency.items(), key=lambda kv: kv[0] or ""):
            upserter = CustomerUpserter(self.run, currency=currency,
                                        home_currency=OrderState(group[0]).home_currency)
            # "wanbetalingsdebiteur" mode: every order on the tenant's default customer
            everyone_default = self.settings.default_customer.book_all_orders
            outcomes.update(upserter.upsert({
                r.source_id: None if everyone_default else self._order(r).customer
                for r in group}))
        if self.settings.default_customer.book_all_orders:
            outcomes = {k: v if isinstance(v, Exception) else replace(
                v, reason="the tenant books every order on the default customer")
                for k, v in outcomes.items()}
        for record in records:
            if record not in needing:
                result.passed.append(record)
                continue
            outcome = outcomes[record.source_id]
            if isinstance(outcome, Exception):
                if _systemic(outcome):
                    raise outcome
                result.fail(record, RecordError(f"customer: {outcome}"))
                continue
            OrderState(record).customer = outcome.to_json()
            result.passed.append(record)
        return result

    # -- load ------------------------------------------------------------------------------
    def load(self, records: list[Record]) -> StepResult:
        from koppel.flows.qbo_refs import ensure_named

        result = StepResult()
        if not records:
            return result
        s = self.settings
        refs = self._refs()
        pay_methods = {self._order(r).payment_method for r in records
                       if OrderState(r).action != "void"} if self.entity == "SalesReceipt" else ()
        ensure_named(self.run.quickbooks, refs, items=self._helper_items(),
                     payment_methods=pay_methods, tenant=self.run.tenant_id,
                     income_account=s.products.accounts.income, dry_run=self.run.dry_run)
        creates = [r for r in records if OrderState(r).action == "create"]
        updates = [r for r in records if OrderState(r).action == "update"]
        voids = [r for r in records if OrderState(r).action == "void"]
        pays = [r for r in records if OrderState(r).action == "pay"]
        refused = self._create_missing_items(creates + updates, refs, result)
        built = self._build([r for r in creates + updates if r.source_id not in refused],
                            refs, result)
        to_pay = self._write_creates([r for r in creates if r.source_id in built], built, result)
        self._write_updates([r for r in updates if r.source_id in built], built, result)
        self._void(voids, result)
        to_pay += self._invoices_to_pay(pays, result)
        self._pay(to_pay, refs, result)
        return result

    def _options(self, refs):
        from koppel.domain.money import RoundingPolicy
        from koppel.domain.qbo_payloads import DocumentOptions, global_tax_calculation

        s = self.settings
        return DocumentOptions(
            doc_type=self.entity,
            tax_calculation=global_tax_calculation(s.prices_include_tax),
            rounding=RoundingPolicy(enabled=s.rounding.enabled,
                                    item_id=refs.item_id(s.rounding.item),
                                    max_amount=s.rounding.max_amount,
                                    tax_code_id=refs.tax_code_id(s.rounding.tax_code)
                                    or refs.tax_code_id(s.tax_codes.get("0"))),
            doc_number_prefix=s.doc_number_prefix, timezone=s.timezone,
            multicurrency=s.multicurrency or refs.multicurrency,
            supply_vat=s.vat_amounts == "shop")

    def _build(self, records, refs, result: StepResult) -> dict[str, Any]:
        from koppel.domain.qbo_payloads import OrderRefs, PayloadError

        from koppel.domain.vat import TreatmentError, decide
        from koppel.flows.qbo_refs import treatment_codes, unresolved_tax_codes

        s = self.settings
        options = self._options(refs)
        codes = treatment_codes(s, refs)
        built = {}
        for record in records:
            order = self._order(record)
            try:
                treatment = decide(order, codes)
                OrderState(record).vat_treatment = treatment.treatment
                OrderState(record).vat_treatment_reason = treatment.reason
                pm_name = order.payment_method
                term_name = s.payment_terms.get(order.payment_method or "") or s.default_payment_term
                item_ids = dict(OrderState(record).item_ids)
                order_refs = OrderRefs(
                    customer_id=OrderState(record).customer["customer_id"], item_ids=item_ids,
                    tax_code_ids=treatment.codes, row_tax_code_ids=treatment.row_codes,
                    tax_rate_ids=refs.tax_rate_ids(),
                    fallback_item_id=OrderState(record).fallback_item_id,
                    shipping_item_id=refs.item_id(s.shipping_item),
                    discount_item_id=refs.item_id(s.discount_item),
                    payment_fee_item_id=refs.item_id(s.payment_fee_item),
                    payment_method_id=refs.payment_method_id(pm_name),
                    term_id=refs.term_id(term_name),
                    deposit_account_id=self._deposit_account(refs, order))
                if self.entity == "SalesReceipt" and pm_name and order_refs.payment_method_id is None:
                    raise RecordError(f"QuickBooks has no payment method named {pm_name!r} "
                                      "(settings.payment_methods)", field="payment_method")
                doc = _build_document(order, order_refs, options)
                built[record.source_id] = doc
            except (RecordError, PayloadError, TreatmentError) as exc:
                if isinstance(exc, PayloadError) and "no QBO tax code" in str(exc):
                    exc = RecordError(f"{exc} ({unresolved_tax_codes(s, refs)})",
                                      field=exc.field)
                result.fail(record, exc if isinstance(exc, RecordError)
                            else RecordError(str(exc), field=getattr(exc, "field", None)))
        return built

    def _writer(self):
        """The tenant's QuickBooks writer (batches, request ids, dry run, duplicate
        numbers, faults and verification: ``koppel.hooks.qbo_writer``)."""
        from koppel.hooks.qbo_writer import QuickBooksWriter

        return QuickBooksWriter(self.run.quickbooks, tenant=self.run.tenant_id,
                                dry_run=self.run.dry_run)

    def _create_missing_items(self, records, refs, result: StepResult) -> set[str]:
        """Unknown SKUs under the ``create_item`` policy: one NonInventory item each; the
        tenant's fallback item (``settings.fallback_item_sku``) when QuickBooks lacks it.
        An item QuickBooks refuses fails the orders that need it, naming the SKU and the
        fault; returns their ids."""
        from types import SimpleNamespace

        from koppel.hooks.qbo_writer import WriteOp

        wanted: dict[str, Any] = {}
        fallback_sku = self.settings.fallback_item_sku
        for record in records:
            order = self._order(record)
            for index in OrderState(record).create_items:
                line = order.lines[index]
                wanted.setdefault(line.sku, line)
            if OrderState(record).create_fallback and fallback_sku:
                wanted.setdefault(fallback_sku, SimpleNamespace(name="Onbekend artikel"))
        if not wanted:
            return set()
        account = refs.account_id(self.settings.products.accounts.income)
        refused: dict[str, str] = {}
        if self.run.dry_run:
            ids = {sku: "(dry run)" for sku in wanted}
        else:
            hook = self.run.quickbooks
            # the products flow (or another chunk) may create the same SKU at this moment:
            # under the tenant's item lock, look again and create only what is still missing
            from koppel.flows.qbo_refs import item_lock_name

            with self.run.store.lock(item_lock_name(self.run.tenant_id, hook)):
                ids = {}
                for row in hook.query_in("Item", "Sku", sorted(wanted), select="*, Sku"):
                    if row.get("Sku") in wanted:
                        ids.setdefault(str(row["Sku"]), str(row["Id"]))
                missing = sorted(sku for sku in wanted if sku not in ids)
                outcomes = self._writer().write([WriteOp(
                    key=sku, operation="create", entity="Item", request_key=(sku,), payload={
                        "Name": _item_name(wanted[sku].name or sku, sku), "Sku": sku,
                        "Type": "NonInventory", "IncomeAccountRef": {"value": account}})
                    for sku in missing], scope="Item", bid_prefix="i")
                for sku, outcome in outcomes.items():
                    if outcome.written:
                        ids[sku] = outcome.target_id
                    else:
                        refused[sku] = outcome.reason or outcome.status
        failed: set[str] = set()
        for record in records:
            try:
                lines = self._order(record).lines
                for index in OrderState(record).create_items:
                    sku = lines[index].sku
                    if sku in refused:
                        raise RecordError(f"QuickBooks item for SKU {sku!r} could not be "
                                          f"created: {refused[sku]}", field=f"lines[{index}].sku")
                    if sku in ids:
                        OrderState(record).item_ids[sku] = ids[sku]
                if OrderState(record).create_fallback and fallback_sku in refused:
                    index = (OrderState(record).fallback_lines or [0])[0]
                    raise RecordError(f"the fallback item (SKU {fallback_sku!r}, "
                                      "settings.fallback_item_sku) could not be created: "
                                      f"{refused[fallback_sku]}", field=f"lines[{index}].sku")
                if OrderState(record).create_fallback and fallback_sku in ids:
                    OrderState(record).fallback_item_id = ids[fallback_sku]
            except RecordError as exc:
                result.fail(record, exc)
                failed.add(record.source_id)
        return failed

    def _write_creates(self, records, built, result: StepResult) -> list:
        """New documents through the writer; returns the invoices still to pay as
        ``(record, invoice, built document, the create's outcome)``."""
        from koppel.hooks.qbo_writer import ADOPTED, DRY_RUN, REFUSED, WriteOp

        if not records:
            return []
        ops = []
        for r in records:
            doc, order = built[r.source_id], self._order(r)
            ops.append(WriteOp(
                key=r.source_id, operation="create", entity=doc.entity, payload=doc.payload,
                request_key=(r.source_id, OrderState(r).hash), expected=doc.expected,
                doc_number=OrderState(r).doc_number,
                matches=lambda row, order=order: adoption_mismatch(row, order),
                summary=f"create {doc.entity} {OrderState(r).doc_number} "
                        f"(total {doc.predicted.total_amt})"))
        outcomes = self._writer().write(ops, scope=self.entity, bid_prefix="d")
        by_key = {op.key: op for op in ops}
        to_pay = []
        for record in records:
            outcome, doc = outcomes[record.source_id], built[record.source_id]
            if outcome.status == DRY_RUN:
                result.end(record, "skipped", reason=outcome.reason,
                           preview=by_key[record.source_id].preview())
            elif outcome.written and self._pays(self._order(record), doc.entity):
                # booked (cross-referenced now, so never twice); ended once it is paid
                self.run.store.save_xref(self.run.tenant_id, "order", record.source_id,
                                         doc.entity, outcome.target_id, OrderState(record).hash)
                to_pay.append((record, outcome.value, doc, outcome))
            elif outcome.written:
                self._booked(record, outcome, doc, "created", result)
            elif outcome.status == REFUSED:
                result.end(record, "conflict", target_type=outcome.entity,
                           target_id=outcome.target_id, reason=outcome.reason,
                           details={"verification": True})
            elif outcome.status == ADOPTED:
                self.run.store.save_xref(self.run.tenant_id, "order", record.source_id,
                                         outcome.entity, outcome.target_id, OrderState(record).hash)
                result.end(record, "skipped", target_type=outcome.entity,
                           target_id=outcome.target_id, reason=outcome.reason)
            else:
                result.fail(record, RecordError(outcome.reason, field=outcome.field))
        return to_pay

    def _invoices_to_pay(self, records, result: StepResult) -> list:
        """Invoices booked open whose orders are paid now: their current state."""
        if not records:
            return []
        current = self._current_documents(records)
        out = []
        for record in records:
            row = current.get(OrderState(record).target_id)
            if row is None:
                self._gone_in_quickbooks(record, "Invoice", OrderState(record).target_id, result)
            else:
                out.append((record, row, None, None))
        return out

    def _pay(self, pending, refs, result: StepResult) -> None:
        """A Payment applied to each invoice in ``pending`` (``(record, invoice as
        QuickBooks returned it, built document or None, the create's outcome or None)``)
        through the writer; an invoice QuickBooks already shows as paid gets none. A
        failed payment fails the record (its invoice stays booked; the next run pays)."""
        from koppel.domain.money import cents
        from koppel.domain.qbo_payloads import PayloadError, payment_payload, txn_date
        from koppel.hooks.qbo_writer import DRY_RUN, WriteOp

        if not pending:
            return
        ops, waiting = [], {}
        for record, invoice, doc, created in pending:
            order = self._order(record)
            balance = cents(invoice.get("Balance", invoice.get("TotalAmt")) or 0)
            if balance <= 0:
                self._paid(record, invoice, doc, None, result, created)
                continue
            when = order.updated_at if doc is None and order.updated_at else order.created_at
            try:
                payload = payment_payload(
                    invoice=invoice, amount=balance,
                    txn_date=txn_date(when, self.settings.timezone),
                    reference=OrderState(record).doc_number or order.number,
                    payment_method_id=refs.payment_method_id(order.payment_method),
                    deposit_account_id=self._deposit_account(refs, order),
                    note=f"Lightspeed order {order.number} (id {order.source_id}) paid")
            except (RecordError, PayloadError) as exc:
                result.fail(record, RecordError(f"Invoice {invoice['Id']} booked; its payment "
                                                f"cannot be made: {exc}", field="payment"))
                continue
            ops.append(WriteOp(key=record.source_id, operation="create", entity="Payment",
                               payload=payload, request_key=(record.source_id, str(invoice["Id"])),
                               summary=f"apply a payment of {balance} to Invoice {invoice['Id']}"))
            waiting[record.source_id] = (record, invoice, doc, created)
        outcomes = self._writer().write(ops, scope="Payment", bid_prefix="p")
        for key, outcome in outcomes.items():
            record, invoice, doc, created = waiting[key]
            if outcome.status == DRY_RUN:
                result.end(record, "skipped", reason=outcome.reason)
            elif outcome.written:
                self._paid(record, invoice, doc, outcome.value, result, created)
            else:
                result.fail(record, RecordError(f"Invoice {invoice['Id']} booked; its payment "
                                                f"failed: {outcome.reason}", field="payment"))

    def _paid(self, record, invoice, doc, payment, result: StepResult, created=None) -> None:
        self.run.store.save_xref(self.run.tenant_id, "order", record.source_id, "Invoice",
                                 str(invoice["Id"]), OrderState(record).hash, state="paid")
        note = (f"payment {payment['Id']} of {payment.get('TotalAmt')} applied" if payment
                else "already paid in QuickBooks")
        if doc is not None:
            self._booked(record, created, doc, "created", result, payment_note=note,
                         xref_state="paid")
        else:
            result.end(record, "updated", target_type="Invoice", target_id=str(invoice["Id"]),
                       reason=f"order paid: {note} to Invoice {invoice['Id']}",
                       details={"payment": payment["Id"] if payment else None})

    def _booked(self, record, outcome, doc, action, result: StepResult, *,
                payment_note: str | None = None, xref_state: str = "active") -> None:
        """A document QuickBooks wrote (the writer's ``outcome``, verified against the
        shop's figures from QuickBooks' own answer): cross-referenced (never booked
        twice), then ended as ``action`` or, when its figures differ, ``conflict``."""
        self.run.store.save_xref(self.run.tenant_id, "order", record.source_id, doc.entity,
                                 outcome.target_id, OrderState(record).hash, state=xref_state)
        order = self._order(record)
        kinds = [kind for kind, present in (
            ("payment fee", order.payment_fee_incl), ("split shipping", len(order.shipping_taxes) > 1),
            ("shipment discount", order.shipping_discount_incl),
            ("order discount", order.discount_incl),
            ("mixed VAT rates", len({line.tax_rate for line in order.lines}) > 1)) if present]
        details = {"doc_number": OrderState(record).doc_number, "order_number": str(order.number),
                   "customer": OrderState(record).customer["action"],
                   "vat_treatment": OrderState(record).vat_treatment, "kinds": kinds}
        reason = payment_note
        if doc.rounding_difference:
            details["rounding_line"] = str(doc.rounding_difference)
            reason = f"rounding line {doc.rounding_difference} closes QuickBooks' rounding"
        end_verified(result, record, outcome, action, details=details, reason=reason,
                     content_hash=OrderState(record).hash)

    def _current_documents(self, records) -> dict[str, dict]:
        ids = [OrderState(r).target_id for r in records]
        rows = self.run.quickbooks.query_in(self.entity, "Id", ids)
        return {str(row["Id"]): row for row in rows}

    def _write_updates(self, records, built, result: StepResult) -> None:
        """Booked orders whose lines or amounts changed (conflict policy ``update``): a full
        update of the document, so QBO's lines equal the shop's again. The writer sends
        it against the document's current version, whose SyncToken is part of the request
        id: a retry of the same write is answered from the first request, but after a
        stale-object fault (someone edited the document) the next run's write is a new
        request against the new version."""
        from koppel.hooks.qbo_writer import DRY_RUN, GONE, WriteOp

        if not records:
            return
        ops = [WriteOp(key=r.source_id, operation="update", entity=self.entity,
                       target_id=OrderState(r).target_id,
                       payload={**built[r.source_id].payload, "sparse": False},
                       request_key=(r.source_id, OrderState(r).hash),
                       expected=built[r.source_id].expected) for r in records]
        outcomes = self._writer().write(ops, scope=self.entity, bid_prefix="u")
        by_key = {op.key: op for op in ops}
        for record in records:
            outcome = outcomes[record.source_id]
            if outcome.status == DRY_RUN:
                result.end(record, "skipped", reason=outcome.reason,
                           preview=by_key[record.source_id].preview())
            elif outcome.status == GONE:
                self._gone_in_quickbooks(record, self.entity, OrderState(record).target_id, result)
            elif outcome.written:
                self._booked(record, outcome, built[record.source_id], "updated", result)
            elif outcome.code == 610:  # deleted meanwhile
                self._gone_in_quickbooks(record, self.entity, OrderState(record).target_id,
                                         result, outcome.reason)
            else:
                result.fail(record, RecordError(outcome.reason, field=outcome.field))

    def _gone_in_quickbooks(self, record, target_type: str, target_id: str,
                            result: StepResult, fault: str | None = None) -> None:
        """The document this order was booked as was deleted by hand in QuickBooks: never
        booked again silently. Reported once as a per-record error naming it; the
        cross-reference (and so the history) is kept with state ``deleted_in_quickbooks``,
        so the retry of the next run retires the order as ``skipped``."""
        self.run.store.save_xref(self.run.tenant_id, "order", record.source_id, target_type,
                                 target_id, OrderState(record).hash,
                                 state=DELETED_IN_QUICKBOOKS)
        result.end(record, "failed", target_type=target_type, target_id=target_id,
                   reason=f"booked {target_type} {target_id} was deleted in QuickBooks"
                          + (f" ({fault})" if fault else "")
                          + "; it is not booked again (book it by hand, or the order is "
                            "retired on the next run)",
                   details={"deleted_in_quickbooks": True})

    def _void(self, records, result: StepResult) -> None:
        """Orders cancelled after booking: the document is voided (kept, amounts zero),
        against its current version (the writer reads it; one request per void)."""
        from koppel.hooks.qbo_writer import DRY_RUN, GONE, WriteOp

        if not records:
            return
        ops = [WriteOp(key=r.source_id, operation="void", entity=OrderState(r).target_type,
                       target_id=OrderState(r).target_id, request_key=(OrderState(r).target_id,))
               for r in records]
        outcomes = self._writer().write(ops)
        for record in records:
            target_type, target_id = OrderState(record).target_type, OrderState(record).target_id
            outcome = outcomes[record.source_id]
            if outcome.status == DRY_RUN:
                result.end(record, "skipped", reason=outcome.reason)
            elif outcome.status == GONE:
                self._gone_in_quickbooks(record, target_type, target_id, result)
            elif outcome.written:
                self.run.store.save_xref(self.run.tenant_id, "order", record.source_id,
                                         target_type, target_id, OrderState(record).hash,
                                         state="voided")
                result.end(record, "voided", target_type=target_type, target_id=target_id,
                           reason="order cancelled after booking")
            else:
                result.fail(record, RecordError(f"void failed: {outcome.reason}"))


def end_verified(result: StepResult, record: Record, outcome, action: str, *,
                 details: dict[str, Any], reason: str | None = None, **kw: Any) -> None:
    """End ``record`` with the document the writer's ``outcome`` holds: ``action`` when
    its total and VAT per rate are the shop's to the cent, else a ``conflict`` that names
    both figures (``details["verification"]``: counted by the error threshold, alerted)."""
    from koppel.domain.verify import describe
    from koppel.hooks.qbo_writer import CONFLICT

    target_id = outcome.target_id
    if outcome.status == CONFLICT:
        details = {**details, "verification": True, **outcome.verification.figures()}
        action, reason = "conflict", describe(f"{action} {outcome.entity} {target_id}",
                                              list(outcome.problems))
    result.end(record, action, target_type=outcome.entity, target_id=target_id,
               amount=outcome.booked.total, reason=reason, details=details, **kw)


def adoption_mismatch(row: dict[str, Any], order) -> str | None:
    """Why a QuickBooks document with an order's DocNumber is not that order's booking
    (total, or billing e-mail when both have one), or None when it is."""
    from koppel.domain.emails import usable_email
    from koppel.domain.money import cents

    total = cents(row.get("TotalAmt") or 0)
    if total != cents(order.total_incl):
        return f"total {total} (shop {cents(order.total_incl)})"
    billed = usable_email((row.get("BillEmail") or {}).get("Address"))
    email = usable_email(order.customer.email) if order.customer else None
    if billed and email and billed.casefold() != email.casefold():
        return "another customer's e-mail address"
    return None


def _build_document(order, order_refs, options):
    from koppel.domain.qbo_payloads import build_sales_document

    return build_sales_document(order, order_refs, options)


def _item_name(name: str, sku: str) -> str:
    from koppel.domain.names import qbo_name

    return qbo_name(f"{name} ({sku})")


def iter_run_orders(run: FlowRun, span_out: list | None = None
                    ) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(id, order)`` for the Lightspeed orders a run is about (API form, without rows):
    the order numbers of the ``records`` Param, else the orders changed in the run's
    window, as the API pages them. ``span_out`` receives the window (an
    ``UpdatedWindow``; ``None`` for every order or for given numbers)."""
    from koppel.hooks.paging import UpdatedWindow

    hook = run.lightspeed
    numbers = [str(n) for n in run.params.get("records") or []]
    if numbers:
        if span_out is not None:
            span_out.append(None)
        for number in numbers:
            for order in hook.iter_orders(number=number):
                yield str(order.id), order.to_api()
        return
    window = run_window(run)
    span = UpdatedWindow(*window) if window else None
    if span_out is not None:
        span_out.append(span)
    for order in hook.iter_orders(span):
        yield str(order.id), order.to_api()


def read_orders(run: FlowRun) -> tuple[dict[str, dict[str, Any]], Any]:
    """:func:`iter_run_orders` as ``({id: order}, window)`` (for flows that need them all
    at once)."""
    span: list = []
    orders = dict(iter_run_orders(run, span))
    return orders, span[0] if span else None


def shop_context(shop: dict[str, Any]) -> dict[str, Any]:
    """The part of ``shop.json`` the mapping needs (no personal data)."""
    return {"id": shop.get("id"), "currency": shop.get("currency"),
            "language": shop.get("language")}
