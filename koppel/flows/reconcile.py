"""Reconciliation of one tenant for a range of days: reads the shop and the books, hands
them to :func:`koppel.domain.reconcile.reconcile`, and keeps the verdict.

What it reads (the API floor for the question asked):

- Lightspeed: the orders created in the range (list pages, no rows: the order's own
  totals and ``taxRates`` are the shop's figures), the orders updated or returned since
  the range began and their credits (one call per such order: Lightspeed has no list of
  credits across orders), the shop's currency.
- koppel's state database: the cross-references from each order and credit to the
  QuickBooks document koppel booked, and the VAT treatment it decided when booking.
- QuickBooks: those documents by id (``IN`` queries per entity, read back now, so a
  document edited or deleted by hand shows), and by document number for sales without a
  cross-reference.

What it keeps: one activity row per day (flow ``reconcile``, source type ``day``, source
id the date), action ``reconciled`` or ``conflict``, with the day's figures and its
differences in ``details`` — the dashboard's reconciliation view and its CSV read them.
No personal data: order numbers, ids and amounts only."""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal
from typing import Any, Iterable
from zoneinfo import ZoneInfo

from koppel.domain.money import cents, rate_key
from koppel.domain.reconcile import BookDoc, Link, Report, ShopSale, reconcile
from koppel.flows.base import FlowRun
from koppel.store.state import ActivityEntry

log = logging.getLogger(__name__)

FLOW = "reconcile"
SOURCE_TYPE = "day"
#: the QuickBooks entities koppel books sales and refunds as
SALE_ENTITIES = ("SalesReceipt", "Invoice")
REFUND_ENTITIES = ("RefundReceipt", "CreditMemo")
MAX_DAYS = 92


class ReconcileError(ValueError):
    """A reconciliation that cannot be asked (bad range)."""


def day_range(params: dict[str, Any], data_interval_start: Any, data_interval_end: Any,
              timezone: str, today: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """The days to reconcile: ``first_day``/``last_day`` Params when given; else the days
    the scheduled run's data interval completes (a daily run reconciles the day before
    it); else yesterday in the tenant's time zone."""
    tz = ZoneInfo(timezone)
    first, last = params.get("first_day"), params.get("last_day")
    if first or last:
        try:
            first_day = dt.date.fromisoformat(str(first or last))
            last_day = dt.date.fromisoformat(str(last or first))
        except ValueError as exc:
            raise ReconcileError(f"first_day/last_day must be dates (YYYY-MM-DD): {exc}") from exc
    elif data_interval_start is not None and data_interval_end is not None \
            and data_interval_end > data_interval_start:
        # the days that end (at midnight) inside the interval: a run at 06:00 whose
        # interval began at 06:00 the day before reconciles that day
        first_day = data_interval_start.astimezone(tz).date()
        last_day = data_interval_end.astimezone(tz).date() - dt.timedelta(days=1)
    else:
        today = today or dt.datetime.now(tz).date()
        first_day = last_day = today - dt.timedelta(days=1)
    if last_day < first_day:
        raise ReconcileError(f"last_day {last_day} is before first_day {first_day}")
    if (last_day - first_day).days + 1 > MAX_DAYS:
        raise ReconcileError(f"at most {MAX_DAYS} days per run ({first_day} … {last_day})")
    return first_day, last_day


def _money(value: Any) -> Decimal:
    return cents(Decimal(str(value or 0)))


def _vat(tax_rates: Iterable[dict[str, Any]], *, fraction: bool) -> dict[str, Decimal]:
    vat: dict[str, Decimal] = {}
    for tax in tax_rates or []:
        if not isinstance(tax, dict):
            continue
        rate = Decimal(str(tax.get("rate") or 0)) * (100 if fraction else 1)
        key = rate_key(rate)
        vat[key] = cents(vat.get(key, Decimal("0.00")) + _money(tax.get("amount")))
    return vat


class Reconciliation:
    """One tenant's reconciliation over ``[first_day, last_day]``."""

    def __init__(self, run: FlowRun, first_day: dt.date, last_day: dt.date) -> None:
        self.run = run
        self.first_day, self.last_day = first_day, last_day
        settings = run.tenant.settings
        self.tz = ZoneInfo(getattr(settings, "timezone", None) or "Europe/Amsterdam")
        self.booked = settings.booked
        self.start = dt.datetime.combine(first_day, dt.time(), self.tz).astimezone(dt.timezone.utc)
        self.end = dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(),
                                       self.tz).astimezone(dt.timezone.utc)

    def _day(self, stamp: Any) -> dt.date | None:
        from koppel.hooks.paging import parse_timestamp

        when = parse_timestamp(stamp)
        return when.astimezone(self.tz).date() if when else None

    # -- the shop --------------------------------------------------------------------------
    def _orders(self) -> list[dict[str, Any]]:
        from koppel.hooks.paging import UpdatedWindow

        window = UpdatedWindow(self.start, self.end, field="createdAt",
                               filter_prefix="created_at")
        return [o.to_api() for o in self.run.lightspeed.iter_orders(window)]

    def _orders_with_credits(self, known: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Orders that may have a credit made in the range: those updated or returned
        since the range began (a credit updates its order)."""
        from koppel.flows.refunds_source import order_ids_with_returns
        from koppel.hooks.paging import UpdatedWindow

        hook = self.run.lightspeed
        now = dt.datetime.now(dt.timezone.utc)
        window = UpdatedWindow(self.start, max(now, self.end))
        found = {str(o.id): o.to_api() for o in hook.iter_orders(window)}
        for order_id in sorted(order_ids_with_returns(hook, window) - {int(i) for i in found}):
            if str(order_id) in known:
                found[str(order_id)] = known[str(order_id)]
            else:
                found[str(order_id)] = hook.get_order(order_id, with_rows=False).to_api()
        return found

    def _bookable(self, order: dict[str, Any]) -> str | None:
        if order.get("status") in self.booked.exclude_status:
            return f"status {order.get('status')} is not booked"
        if order.get("paymentStatus") not in self.booked.payment_status:
            return f"payment status {order.get('paymentStatus')} is not booked"
        return None

    def shop_sales(self) -> list[ShopSale]:
        from koppel.flows.refunds_source import credits_of_orders

        currency = ((self.run.lightspeed.get_shop().to_api().get("currency") or {})
                    .get("shortcode") or None)
        currency = currency.upper() if isinstance(currency, str) else None
        orders = {str(o["id"]): o for o in self._orders()}
        treatments = self._treatments([*orders])
        sales = []
        for order_id, order in orders.items():
            why = self._bookable(order)
            sales.append(ShopSale(
                kind="order", source_id=order_id, number=str(order.get("number") or order_id),
                day=self._day(order.get("createdAt")), currency=currency,
                total_excl=_money(order.get("priceExcl")), total_incl=_money(order.get("priceIncl")),
                vat=_vat(order.get("taxRates"), fraction=True),
                treatment=treatments.get(order_id, "not booked" if why else "unknown"),
                shipping_incl=_money(order.get("shipmentPriceIncl")),
                fees_incl=_money(order.get("paymentPriceIncl")),
                booked=why is None, why_not_booked=why))
        for order, credit in credits_of_orders(self.run.lightspeed,
                                               self._orders_with_credits(orders).values()):
            day = self._day(credit.get("created_at"))
            if day is None or not (self.first_day <= day <= self.last_day):
                continue
            why = self._bookable(order)
            sales.append(ShopSale(
                kind="refund", source_id=credit["id"],
                number=f"{order.get('number') or order.get('id')}/{credit['number']}", day=day,
                currency=currency, total_excl=_money(credit.get("total_excl")),
                total_incl=_money(credit.get("total_incl")),
                vat=_vat(credit.get("tax_rates"), fraction=False),
                booked=why is None, why_not_booked=f"order {why}" if why else None))
        return sales

    def _treatments(self, order_ids: list[str]) -> dict[str, str]:
        """The VAT treatment koppel decided when it booked each order (activity log)."""
        found: dict[str, str] = {}
        store, tenant = self.run.store, self.run.tenant_id
        for source_id in order_ids:
            for row in store.activity(tenant=tenant, flow="orders", source_id=source_id,
                                      limit=20):
                treatment = (row.get("details") or {}).get("vat_treatment")
                if treatment:
                    found[source_id] = treatment
                    break
        return found

    # -- the books ---------------------------------------------------------------------------
    def links(self, sales: list[ShopSale]) -> list[Link]:
        store, tenant = self.run.store, self.run.tenant_id
        links = []
        for kind, entities in (("order", SALE_ENTITIES), ("refund", REFUND_ENTITIES)):
            ids = [s.source_id for s in sales if s.kind == kind]
            for entity in entities:
                for source_id, ref in store.xrefs(tenant, kind, ids, target_type=entity).items():
                    links.append(Link(kind, source_id, entity, str(ref.target_id),
                                      ref.state or "active"))
        return links

    def documents(self, sales: list[ShopSale], links: list[Link]) -> list[BookDoc]:
        hook = self.run.quickbooks
        docs: dict[tuple[str, str], BookDoc] = {}
        by_entity: dict[str, set[str]] = {}
        for link in links:
            by_entity.setdefault(link.entity, set()).add(link.doc_id)
        for entity, ids in sorted(by_entity.items()):
            for body in hook.query_in(entity, "Id", sorted(ids, key=_id_order)):
                docs[(entity, str(body["Id"]))] = BookDoc(entity, str(body["Id"]), body)
        linked = {(link.source_type, link.source_id) for link in links}
        numbers = sorted({s.number for s in sales
                          if s.kind == "order" and ("order", s.source_id) not in linked})
        if numbers:
            prefix = getattr(self.run.tenant.settings, "doc_number_prefix", "") or ""
            wanted = [f"{prefix}{n}" for n in numbers]
            for entity in SALE_ENTITIES:
                for body in hook.query_in(entity, "DocNumber", wanted):
                    docs[(entity, str(body["Id"]))] = BookDoc(entity, str(body["Id"]), body)
        return list(docs.values())

    # -- the verdict -------------------------------------------------------------------------
    def report(self) -> Report:
        sales = self.shop_sales()
        links = self.links(sales)
        docs = self.documents(sales, links)
        prefix = getattr(self.run.tenant.settings, "doc_number_prefix", "") or ""
        if prefix:  # a sale's document number is the order number behind the prefix
            sales = [s if s.kind != "order" else _renumbered(s, prefix) for s in sales]
        return reconcile(sales, links, docs, first_day=self.first_day, last_day=self.last_day)

    def record(self, report: Report) -> list[ActivityEntry]:
        """One activity row per day: the day's figures and its differences."""
        calls = self.run.api_calls()
        entries = []
        for figures in report.days:
            rows = [d.to_row() for d in report.differences if d.day == figures.day]
            action = "reconciled" if figures.reconciled else "conflict"
            reason = None if figures.reconciled else (
                f"{len(rows)} difference(s): " + "; ".join(
                    f"{r['kind']} {r['number']} {r['problem']} ({r['difference']})"
                    for r in rows[:10]))
            entries.append(ActivityEntry(
                SOURCE_TYPE, figures.day.isoformat(), action, reason=reason,
                amount=figures.revenue_incl,
                details={"figures": figures.to_dict(), "differences": rows,
                         "range": [self.first_day.isoformat(), self.last_day.isoformat()],
                         "api_calls": calls}))
        self.run.store.record_activity(tenant=self.run.tenant_id, flow=FLOW,
                                       run_id=self.run.run_id,
                                       direction="lightspeed_to_quickbooks",
                                       entries=entries, task_id="reconcile")
        return entries


def _renumbered(sale: ShopSale, prefix: str) -> ShopSale:
    from dataclasses import replace

    return replace(sale, number=f"{prefix}{sale.number}")


def _id_order(value: str) -> tuple[int, str]:
    return (int(value), "") if value.isdigit() else (1 << 62, value)


def summary(report: Report) -> str:
    """One line per unreconciled day, for the task log and the alert (no personal data)."""
    lines = []
    for figures in report.days:
        if figures.reconciled:
            continue
        found = [d for d in report.differences if d.day == figures.day]
        lines.append(f"{figures.day}: " + "; ".join(
            f"{d.kind} {d.number} {d.problem.replace('_', ' ')} "
            f"(shop {d.shop_total}, books {'—' if d.books_total is None else d.books_total})"
            for d in found))
    return "\n".join(lines)
