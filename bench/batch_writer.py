"""A straightforward batch writer: the shape Singer targets for QuickBooks take, to put
koppel's wall time and calls next to a writer that does batch its creates.

The same paid orders as :mod:`bench.baseline`, with plain python-quickbooks objects
against the QuickBooks sandbox. Per order, look-ups as plain queries, one request each:

1. the sales receipt by DocNumber — skip the order when it is there;
2. the customer by display name — created on the spot when missing (its Id is needed
   for the receipt; a found one is used as it is);
3. each row's SKU — a NonInventory item created on the spot when missing.

The sales receipts are queued and created 30 to a batch request (QuickBooks' maximum,
python-quickbooks' ``batch_create``), the queue flushed when full and at the end.
Reference data (income account, tax codes) is read once up front and lines are built as
in the baseline (:class:`bench.baseline.PerRecordSync`). Nothing personal is printed: a
failure is named by order number and QuickBooks' fault code."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from bench.baseline import (BaselineResult, PerRecordSync, _quote, describe, fill_customer,
                            paid_orders, qbo_client)

BATCH_SIZE = 30  # QuickBooks' limit of items per batch request


@dataclass
class Flushed:
    booked: int
    failed: list[str]


class BatchWriter(PerRecordSync):
    """Per-order look-ups, sales receipts created in batches of :data:`BATCH_SIZE`."""

    def __init__(self, client, tax_code_names: dict[str, str],
                 batch_size: int = BATCH_SIZE) -> None:
        if not 1 <= batch_size <= BATCH_SIZE:
            raise ValueError(f"batch size {batch_size}: QuickBooks takes 1 to {BATCH_SIZE}")
        super().__init__(client, tax_code_names)
        self.batch_size = batch_size
        self.queue: list[Any] = []

    def add(self, order: dict[str, Any], rows: list[dict[str, Any]]) -> str:
        """``skipped`` (booked already) or ``queued``; a full queue is flushed by the
        caller (:meth:`full`)."""
        from quickbooks.objects.salesreceipt import SalesReceipt

        number = str(order["number"])
        existing = SalesReceipt.query(
            f"SELECT * FROM SalesReceipt WHERE DocNumber = '{_quote(number)}'", qb=self.qb)
        if existing:
            return "skipped"
        receipt = SalesReceipt()
        receipt.DocNumber = number
        receipt.CustomerRef = self._customer(order).to_ref()
        receipt.GlobalTaxCalculation = "TaxExcluded"
        receipt.Line = [self._line(row) for row in rows]
        self.queue.append(receipt)
        return "queued"

    @property
    def full(self) -> bool:
        return len(self.queue) >= self.batch_size

    def flush(self) -> Flushed:
        """Create the queued receipts in one batch request."""
        from quickbooks.batch import batch_create

        if not self.queue:
            return Flushed(0, [])
        queued, self.queue = self.queue, []
        response = batch_create(queued, qb=self.qb)
        failed = []
        for fault in response.faults:
            original = getattr(fault, "original_object", None)
            codes = ",".join(str(getattr(e, "code", "") or "?")
                             for e in (getattr(fault, "Error", None) or [])) or "?"
            failed.append(f"order {getattr(original, 'DocNumber', '?')}: QuickBooks fault "
                          f"{codes} in a batch create")
        return Flushed(len(response.successes), failed)

    def _customer(self, order: dict[str, Any]):
        from quickbooks.objects.customer import Customer

        name = self.customer_name(order)
        found = Customer.query(
            f"SELECT * FROM Customer WHERE DisplayName = '{_quote(name)}'", qb=self.qb)
        if found:
            return found[0]
        customer = fill_customer(Customer(), name, order)
        customer.save(qb=self.qb)
        return customer


def run_batch_writer(ls_credentials: dict[str, Any], realm: dict[str, Any],
                     tax_code_names: dict[str, str], limit: int | None = None,
                     batch_size: int = BATCH_SIZE, client=None) -> BaselineResult:
    """Books the shop's paid orders (the first ``limit`` read) the batch-writer way.
    ``client``: a python-quickbooks client of ``realm`` already signed in (the realm's
    first refresh token is spent once used)."""
    result = BaselineResult()
    started = time.monotonic()
    writer = BatchWriter(client or qbo_client(realm), tax_code_names, batch_size)

    def flush() -> None:
        pending = len(writer.queue)
        try:
            flushed = writer.flush()
        except Exception as exc:  # a refused batch request fails its orders, not the run
            result.failed += pending
            result.errors.append(f"a batch create of {pending} receipts: {describe(exc)}")
            return
        result.booked += flushed.booked
        result.failed += len(flushed.failed)
        result.errors.extend(flushed.failed)

    for outcome in paid_orders(ls_credentials, limit, result, writer.add):
        if outcome == "skipped":
            result.skipped += 1
        elif writer.full:
            flush()
    flush()
    result.wall_seconds = time.monotonic() - started
    return result
