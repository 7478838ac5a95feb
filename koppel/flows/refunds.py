"""Refunds: Lightspeed credits of booked orders become QuickBooks refund receipts or
credit memos, each exactly once and equal to the credit to the cent.

extract   orders changed in the window (or the Params' order numbers), orders whose
          returns changed, and last run's failed refunds → one record per credit
enrich    the order's rows, mapped as the orders flow maps them
exists    refunded before (cross-reference ``refund`` → skip; DocNumber in QBO → adopt)?
          the order booked (cross-reference ``order``)? its booked document read back
load      one refund document per credit, through the QuickBooks writer
          (``koppel.hooks.qbo_writer``: batches of 30, deterministic request ids)

Document: ``settings.refunds.document`` — ``auto`` (a refund receipt against a booked
sales receipt, a credit memo against a booked invoice), ``refund_receipt`` or
``credit_memo``. Numbers: ``<prefix><order number>-R<n>`` for the order's n-th credit.

A credit whose order's booked document was deleted in QuickBooks fails once
(``details.deleted_in_quickbooks``) and is retired on its next retry; a credit of an order
deleted in Lightspeed is retired as ``skipped`` "deleted in Lightspeed".

A credit of an order koppel never booked is reported as ``waiting``, with the reason, and
retried every run (not an error: it does not count towards the error threshold): it is booked as soon as the orders flow books its order (never
guessed from the shop's data alone). The window falls back like every flow
(:func:`koppel.flows.base.run_window`): Params, data interval, a day before the last
activity, or — on the first run — every order.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from koppel.flows.base import (
    Process,
    Record,
    RecordError,
    RecordState,
    StepResult,
    is_systemic as _systemic,
    jsonable,
)
from koppel.flows.refunds_build import Original, credited_order, refund_entity, row_items
from koppel.flows.refunds_source import credits_of_orders, order_ids_with_returns

log = logging.getLogger(__name__)

SOURCE_TYPE = "refund"


class RefundState(RecordState):
    """What a refund record carries between the steps."""

    gone: str | None = None       # why its order cannot be read (extract)
    order: dict                   # the mapped order (enrich)
    original_type: str            # the document the order was booked as (enrich)
    original_id: str
    original_paid: bool = False
    entity: str                   # RefundReceipt or CreditMemo (exists-check)
    doc_number: str
    hash: str                     # the credit's content hash
    original: dict                # the booked document's lines and refs (exists-check)


class RefundsProcess(Process):
    flow = "refunds"
    source_type = SOURCE_TYPE
    target_type = "RefundReceipt"
    #: fewer, fuller chunks: a chunk's load fills QuickBooks batches of 30 (kernel
    #: ``chunk_length``); 300 records stay small in memory (issue "Scale and cost")
    chunk_size = 300
    chunk_align = 30

    @property
    def settings(self):
        return self.run.tenant.settings

    # -- extract ---------------------------------------------------------------------------
    def extract(self) -> list[Record]:
        from koppel.flows.orders import shop_context, read_orders
        from koppel.store.credit_checks import CreditChecks

        hook = self.run.lightspeed
        orders, span = read_orders(self.run)
        # an order seen again unchanged whose credits are all booked (or that has none)
        # needs no credits call; a records run reads what it was asked for
        checks = None if self.run.params.get("records") else \
            CreditChecks(self.run.store.engine, self.run.tenant_id)
        gone: dict[str, str] = {}  # order id → why it cannot be read
        failed = self._failed_order_ids()
        if not self.run.params.get("records"):
            extra = order_ids_with_returns(hook, span) - {int(i) for i in orders}
            extra |= {int(i) for i in failed} - {int(i) for i in orders}
            for order_id in sorted(extra):
                try:
                    orders[str(order_id)] = hook.get_order(order_id, with_rows=False).to_api()
                except Exception as exc:
                    if _systemic(exc):
                        raise
                    gone[str(order_id)] = _unreadable(order_id, exc)
        shop = shop_context(hook.get_shop().to_api()) if orders else {}
        records = []
        for order_id in sorted(orders, key=int):
            try:
                found = credits_of_orders(hook, [orders[order_id]], checks)
            except Exception as exc:  # deleted between the listing and its credits
                if _systemic(exc) or not _deleted(exc):
                    raise
                gone[order_id] = _unreadable(order_id, exc)
                continue
            for order, credit in found:
                records.append(Record(credit["id"], jsonable({"order": {**order, "_shop": shop},
                                                              "credit": credit}), SOURCE_TYPE))
        records += self._gone_records(gone, failed)
        cap = getattr(self.run.tenant.flows.refunds, "max_records", None)
        return records[:cap] if cap else records

    def _gone_records(self, gone: dict[str, str], failed: dict[str, list[str]]) -> list[Record]:
        """Orders that cannot be read any more. Their refunds on the retry list become
        records that end in enrich (reported, then off the retry list); an order with no
        refund koppel knows of is only logged (without personal data)."""
        if gone:
            log.warning("refunds %s: %d order(s) could not be read: %s", self.run.tenant_id,
                        len(gone), "; ".join(gone[i] for i in sorted(gone, key=int)))
        out = []
        for order_id in sorted(gone, key=int):
            if "was deleted in Lightspeed" not in gone[order_id]:
                continue  # unreadable for another reason: its refunds stay on the retry list
            for credit_id in failed.get(order_id, []):
                out.append(Record(credit_id, {"order": {"id": order_id}, "credit": {
                    "id": credit_id, "order_id": order_id, "number": credit_id}},
                    SOURCE_TYPE, state={"gone": gone[order_id]}))
        return out

    def _failed_order_ids(self) -> dict[str, list[str]]:
        """Orders of last runs' failed refunds (each failure logs its order id) → the
        ids of those refunds (credits)."""
        store, tenant = self.run.store, self.run.tenant_id
        ids: dict[str, list[str]] = {}
        for failed in store.failed(tenant, self.flow):
            rows = store.activity(tenant=tenant, flow=self.flow, source_id=failed["source_id"],
                                  limit=1)
            order_id = ((rows[0].get("details") or {}) if rows else {}).get("order_id")
            if order_id:
                ids.setdefault(str(order_id), []).append(str(failed["source_id"]))
        return ids

    # -- enrich ----------------------------------------------------------------------------
    def enrich(self, records: list[Record]) -> StepResult:
        from koppel.domain.records import MappedOrder, parse_record
        from koppel.mapping import Mapper

        hook = self.run.lightspeed
        mapper = Mapper.for_tenant(self.run.tenant, "orders")
        result = StepResult()
        mapped_orders: dict[str, Any] = {}
        for record in records:
            order_id = record.data["credit"]["order_id"]
            if RefundState(record).gone:  # see _gone_records
                self._end(result, record, "skipped", reason=RefundState(record).gone,
                          details={"deleted_in_lightspeed": True})
                continue
            try:
                if order_id not in mapped_orders:
                    rows = [row.to_api() for row in hook.get_order_rows(int(order_id))]
                    mapped = mapper.map({**record.data["order"], "_rows": jsonable(rows)})
                    if mapped.errors:
                        raise RecordError("; ".join(f"{e.field}: {e.message}" for e in mapped.errors))
                    parsed = parse_record(MappedOrder, mapped.values)
                    if parsed.errors:
                        raise RecordError("; ".join(f"{e.field}: {e.message}" for e in parsed.errors))
                    mapped_orders[order_id] = jsonable(parsed.record)
                RefundState(record).order = mapped_orders[order_id]
                result.passed.append(record)
            except RecordError as exc:
                self._fail(result, record, exc)
            except Exception as exc:
                if _systemic(exc):
                    raise
                if _deleted(exc):  # deleted between the listing and its rows
                    self._end(result, record, "skipped", reason=_unreadable(order_id, exc),
                              details={"deleted_in_lightspeed": True})
                    continue
                self._fail(result, record, RecordError(f"could not read the order: {exc}"))
        return result

    # -- exists-check ----------------------------------------------------------------------
    def exists_check(self, records: list[Record]) -> StepResult:
        store, tenant = self.run.store, self.run.tenant_id
        result = StepResult()
        refunds = store.xrefs(tenant, SOURCE_TYPE, [r.source_id for r in records])
        orders = store.xrefs(tenant, "order", [r.data["credit"]["order_id"] for r in records])
        pending: list[Record] = []
        for record in records:
            credit = record.data["credit"]
            booked = refunds.get(record.source_id)
            if booked is not None:
                self._end(result, record, "skipped", target_type=booked.target_type,
                          target_id=booked.target_id, content_hash=booked.content_hash,
                          reason=f"already refunded as {booked.target_type} {booked.target_id}")
                continue
            order_xref = orders.get(credit["order_id"])
            number = self._order(record).number
            if order_xref is None:
                self._fail(result, record, RecordError(
                    f"order {number} is not booked in QuickBooks; the refund waits for the "
                    "orders flow to book it", field="order", action="waiting"))
                continue
            if order_xref.state == "voided":
                self._end(result, record, "skipped", target_type=order_xref.target_type,
                          target_id=order_xref.target_id,
                          reason=f"{order_xref.target_type} {order_xref.target_id} of order "
                                 f"{number} is voided; nothing left to refund")
                continue
            state = RefundState(record)
            state.original_type = order_xref.target_type
            state.original_id = order_xref.target_id
            state.original_paid = order_xref.state == "paid"
            pending.append(record)
        if pending:
            self._read_originals(pending, result)
        return result

    def _read_originals(self, records: list[Record], result: StepResult) -> None:
        """One batch request: the booked documents (by Id), refunds already in QBO under
        their number (a run that crashed after writing: adopted, not written again — only
        when :func:`refund_mismatch` finds it is this credit's, as the writer adopts; else a
        ``conflict`` with both totals) and the load's reference data."""
        from koppel.domain.hashing import content_hash
        from koppel.domain.money import cents
        from koppel.domain.qbo_payloads import PayloadError, doc_number
        from koppel.flows.products_target import in_queries, query_batch
        from koppel.flows.qbo_refs import ref_queries, refs_from_rows, stage_refs

        numbered: list[Record] = []
        for record in records:
            order, credit = self._order(record), record.data["credit"]
            try:
                number = doc_number(order.number, self.settings.doc_number_prefix,
                                    f"-R{credit['sequence']}")
            except PayloadError as exc:
                self._fail(result, record, RecordError(str(exc), field="number"))
                continue
            entity = refund_entity(self.settings.refunds.document, RefundState(record).original_type,
                                   paid=RefundState(record).original_paid)
            state = RefundState(record)
            state.entity, state.doc_number, state.hash = entity, number, content_hash(credit)
            numbered.append(record)
        if not numbered:
            return
        queries: dict[str, str] = {}
        for entity in sorted({RefundState(r).original_type for r in numbered}):
            queries.update(in_queries(f"original:{entity}:", entity, "Id", [
                RefundState(r).original_id for r in numbered if RefundState(r).original_type == entity]))
        for entity in sorted({RefundState(r).entity for r in numbered}):
            queries.update(in_queries(f"refund:{entity}:", entity, "DocNumber", [
                RefundState(r).doc_number for r in numbered if RefundState(r).entity == entity]))
        queries.update(ref_queries(self._helper_items()))
        rows = query_batch(self.run.quickbooks, queries)
        stage_refs(self.run, refs_from_rows(rows))
        originals: dict[str, Original] = {}
        existing: dict[tuple[str, str], dict[str, Any]] = {}
        for name, found in rows.items():
            kind, entity = name.split(":")[:2]
            for row in found:
                if kind == "original":
                    originals[f"{entity}:{row['Id']}"] = Original.from_row(entity, row)
                elif kind == "refund":
                    existing[(entity, str(row.get("DocNumber")))] = row
        for record in numbered:
            original = originals.get(f"{RefundState(record).original_type}:{RefundState(record).original_id}")
            if original is None:
                self._original_gone(result, record)
                continue
            RefundState(record).original = original.to_json()
            entity = RefundState(record).entity
            row = existing.get((entity, RefundState(record).doc_number))
            if row is None:
                result.passed.append(record)
                continue
            credit = Decimal(record.data["credit"]["total_incl"])
            why_not = refund_mismatch(row, credit)
            if why_not:  # the number is another document's: never adopted (as the writer)
                self._end(result, record, "conflict", target_type=entity,
                          target_id=str(row["Id"]),
                          reason=(f"{entity} {row['Id']} in QuickBooks has DocNumber "
                                  f"{RefundState(record).doc_number} but {why_not}; not adopted"),
                          details={"verification": True,
                                   "doc_number": RefundState(record).doc_number,
                                   "booked_total": str(cents(row.get("TotalAmt") or 0)),
                                   "credit_total": str(cents(credit))})
                continue
            self.run.store.save_xref(self.run.tenant_id, SOURCE_TYPE, record.source_id,
                                     entity, str(row["Id"]), RefundState(record).hash)
            self._end(result, record, "skipped", target_type=entity, target_id=str(row["Id"]),
                      content_hash=RefundState(record).hash,
                      reason=f"already in QuickBooks ({entity} {RefundState(record).doc_number})")

    def _helper_items(self) -> list[str]:
        s = self.settings
        return [n for n in (s.shipping_item, s.payment_fee_item,
                            s.rounding.item if s.rounding.enabled else None) if n]

    # -- load ------------------------------------------------------------------------------
    def load(self, records: list[Record]) -> StepResult:
        from koppel.flows.qbo_refs import ensure_named, run_refs

        result = StepResult()
        if not records:
            return result
        s = self.settings
        refs = run_refs(self.run, self._helper_items())
        ensure_named(self.run.quickbooks, refs, items=self._helper_items(),
                     tenant=self.run.tenant_id, income_account=s.products.accounts.income,
                     dry_run=self.run.dry_run)
        built = self._build(records, refs, result)
        self._write([r for r in records if r.source_id in built], built, result)
        return result

    def _options(self, refs, sequence: int):
        from koppel.domain.money import RoundingPolicy
        from koppel.domain.qbo_payloads import DocumentOptions, global_tax_calculation

        s = self.settings
        return DocumentOptions(
            tax_calculation=global_tax_calculation(s.prices_include_tax),
            rounding=RoundingPolicy(enabled=s.rounding.enabled,
                                    item_id=refs.item_id(s.rounding.item),
                                    max_amount=s.rounding.max_amount,
                                    tax_code_id=refs.tax_code_id(s.rounding.tax_code)
                                    or refs.tax_code_id(s.tax_codes.get("0"))),
            doc_number_prefix=s.doc_number_prefix, timezone=s.timezone,
            multicurrency=s.multicurrency, supply_vat=s.vat_amounts == "shop", refund_suffix=f"-R{sequence}")

    def _build(self, records, refs, result: StepResult) -> dict[str, Any]:
        from koppel.domain.qbo_payloads import (OrderRefs, OriginalDocument, PayloadError,
                                                build_refund_document)
        from koppel.domain.vat import TreatmentError, decide
        from koppel.flows.qbo_refs import treatment_codes, unresolved_tax_codes

        s = self.settings
        codes = treatment_codes(s, refs)
        account = refs.account_id(s.refunds.account) if s.refunds.account else \
            refs.deposit_account_id()
        built = {}
        for record in records:
            credit = record.data["credit"]
            original = Original.from_json(RefundState(record).original)
            try:
                if s.refunds.account and account is None:
                    raise RecordError(f"QuickBooks has no account named {s.refunds.account!r}",
                                      field="settings.refunds.account")
                order = self._order(record)
                items = row_items(order, original)
                refund = credited_order(order, credit)
                # a refund books on the tax codes of the order's VAT treatment (an ICP
                # order's refund is an ICP correction, an export's an export's)
                treatment = decide(order, codes)
                order_refs = OrderRefs(
                    customer_id=original.customer_id, item_ids=items,
                    tax_code_ids=treatment.codes,
                    tax_rate_ids=refs.tax_rate_ids(),
                    shipping_item_id=refs.item_id(s.shipping_item),
                    payment_fee_item_id=refs.item_id(s.payment_fee_item),
                    payment_method_id=original.payment_method_id,
                    deposit_account_id=account)
                # The domain picks CreditMemo for an Invoice and RefundReceipt for a
                # SalesReceipt; a tenant forcing the other kind is served by naming the
                # matching original type, then the note is put right.
                as_type = "Invoice" if RefundState(record).entity == "CreditMemo" else "SalesReceipt"
                doc = build_refund_document(
                    refund, {line.source_id: line.quantity for line in refund.lines}, order_refs,
                    self._options(refs, credit["sequence"]),
                    OriginalDocument(original.id, as_type, original.doc_number),
                    refund_shipping=Decimal(credit["shipping_incl"]) != 0)
                note = doc.payload.get("PrivateNote", "")
                if as_type != original.entity:
                    note = note.replace(f"refund of {as_type} ", f"refund of {original.entity} ")
                trail = f"Lightspeed credit {credit['number']} (id {credit['id']})"
                if credit.get("return_id"):
                    trail += f", return {credit['return_id']}"
                doc.payload["PrivateNote"] = f"{note}; {trail}"[:4000]
                built[record.source_id] = doc
            except (RecordError, PayloadError, TreatmentError) as exc:
                if isinstance(exc, PayloadError) and "no QBO tax code" in str(exc):
                    exc = RecordError(f"{exc} ({unresolved_tax_codes(s, refs)})", field=exc.field)
                self._fail(result, record, exc if isinstance(exc, RecordError)
                           else RecordError(str(exc), field=getattr(exc, "field", None)))
        return built

    def _write(self, records, built, result: StepResult) -> None:
        """The refund documents through the writer (batches of 30, deterministic request
        ids, dry run, duplicate numbers, faults); each answer verified against the
        credit: its total and the lines' VAT per rate."""
        from dataclasses import replace

        from koppel.domain.verify import Expected
        from koppel.hooks.qbo_writer import ADOPTED, DRY_RUN, REFUSED, WriteOp

        if not records:
            return
        ops = []
        for r in records:
            doc = built[r.source_id]
            credit = Decimal(r.data["credit"]["total_incl"])
            ops.append(WriteOp(
                key=r.source_id, operation="create", entity=doc.entity, payload=doc.payload,
                request_key=(r.source_id, RefundState(r).hash),
                expected=replace(doc.expected, total=credit) if doc.expected is not None
                else Expected(total=credit),
                doc_number=RefundState(r).doc_number,
                matches=lambda row, credit=credit: refund_mismatch(row, credit),
                summary=f"create {doc.entity} {RefundState(r).doc_number} "
                        f"(total {doc.predicted.total_amt})"))
        outcomes = self._writer().write(ops, scope=SOURCE_TYPE, bid_prefix="r")
        by_key = {op.key: op for op in ops}
        for record in records:
            outcome, doc = outcomes[record.source_id], built[record.source_id]
            if outcome.status == DRY_RUN:
                self._end(result, record, "skipped", reason=outcome.reason,
                          preview=by_key[record.source_id].preview())
            elif outcome.written:
                self._booked(record, outcome, doc, result)
            elif outcome.status == ADOPTED:
                self.run.store.save_xref(self.run.tenant_id, SOURCE_TYPE, record.source_id,
                                         outcome.entity, outcome.target_id, RefundState(record).hash)
                self._end(result, record, "skipped", target_type=outcome.entity,
                          target_id=outcome.target_id, reason=outcome.reason)
            elif outcome.status == REFUSED:
                self._end(result, record, "conflict", target_type=outcome.entity,
                          target_id=outcome.target_id, reason=outcome.reason,
                          details={"verification": True})
            else:
                self._fail(result, record, RecordError(outcome.reason, field=outcome.field))

    def _writer(self):
        """The tenant's QuickBooks writer (``koppel.hooks.qbo_writer``)."""
        from koppel.hooks.qbo_writer import QuickBooksWriter

        return QuickBooksWriter(self.run.quickbooks, tenant=self.run.tenant_id,
                                dry_run=self.run.dry_run)

    def _booked(self, record, outcome, doc, result: StepResult) -> None:
        """A refund QuickBooks wrote: cross-referenced (never twice), then ended as
        ``refunded`` or — when the writer found its figures differ from the credit's —
        ``conflict`` naming both."""
        from koppel.domain.verify import describe
        from koppel.hooks.qbo_writer import CONFLICT

        target_id = outcome.target_id
        self.run.store.save_xref(self.run.tenant_id, SOURCE_TYPE, record.source_id, doc.entity,
                                 target_id, RefundState(record).hash)
        credit = Decimal(record.data["credit"]["total_incl"])
        original = RefundState(record).original
        details = {"doc_number": RefundState(record).doc_number,
                   "original": f"{original['entity']} {original['id']}",
                   "credit_total": str(credit)}
        reason = f"refund of {original['entity']} {original['doc_number']}"
        action = "refunded"
        if doc.rounding_difference:
            details["rounding_line"] = str(doc.rounding_difference)
        booked = outcome.booked
        if outcome.status == CONFLICT:
            action = "conflict"
            details.update(verification=True, booked_total=str(booked.total))
            reason = describe(f"refunded as {doc.entity} {target_id}", list(outcome.problems))
        self._end(result, record, action, target_type=doc.entity, target_id=target_id,
                  content_hash=RefundState(record).hash, amount=booked.total, reason=reason,
                  details=details)

    # -- helpers ---------------------------------------------------------------------------
    def _order(self, record: Record):
        from koppel.domain.records import MappedOrder

        return MappedOrder.model_validate(RefundState(record).order)

    @staticmethod
    def _end(result: StepResult, record: Record, action: str, **kw: Any) -> None:
        """Every entry names its order, so a failed refund can be found again."""
        credit = record.data["credit"]
        details = {"order_id": credit["order_id"], "credit": credit["number"],
                   **kw.pop("details", {})}
        result.end(record, action, details=details, **kw)

    def _original_gone(self, result: StepResult, record: Record) -> None:
        """The document the credit's order was booked as was deleted by hand in
        QuickBooks: the refund is reported once as a per-record error naming it, then
        (its next retry) retired as ``skipped`` "deleted in QuickBooks" — never booked
        against nothing, never failing every run. History stays in the activity log."""
        what = f"booked {RefundState(record).original_type} {RefundState(record).original_id}"
        details = {"deleted_in_quickbooks": True}
        store, tenant = self.run.store, self.run.tenant_id
        last = store.activity(tenant=tenant, flow=self.flow, source_id=record.source_id,
                              limit=1)
        if last and last[0]["action"] == "failed" \
                and (last[0].get("details") or {}).get("deleted_in_quickbooks"):
            self._end(result, record, "skipped", details=details,
                      reason=f"{what} of this refund's order was deleted in QuickBooks "
                             "(retired: not booked)")
            return
        self._end(result, record, "failed", details=details,
                  reason=f"order: {what} was deleted in QuickBooks; the refund is not booked "
                         "(book the order again by hand, or it is retired on the next run)")

    def _fail(self, result: StepResult, record: Record, error: RecordError) -> None:
        self._end(result, record, getattr(error, "action", "failed"), reason=str(error))


def refund_mismatch(row: dict[str, Any], credit: Decimal) -> str | None:
    """Why a QuickBooks refund document with a credit's DocNumber is not that credit's
    refund (its total), or None when it is."""
    from koppel.domain.money import cents

    total = cents(row.get("TotalAmt") or 0)
    if total != cents(credit):
        return f"total {total} (credit {cents(credit)})"
    return None


def _deleted(exc: BaseException) -> bool:
    """Lightspeed answered 404 (after the hook's retries of a transient 404) or 410."""
    from koppel.hooks.errors import LightspeedNotFound

    return isinstance(exc, LightspeedNotFound) or getattr(exc, "status", None) == 410


def _unreadable(order_id: Any, exc: BaseException) -> str:
    """Why an order's refunds cannot be booked, naming the order (no personal data)."""
    if _deleted(exc):
        return (f"order {order_id} was deleted in Lightspeed; its refunds are not booked "
                "(retired: not retried)")
    return f"order {order_id} could not be read ({type(exc).__name__})"
