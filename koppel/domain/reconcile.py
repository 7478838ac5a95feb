"""Daily reconciliation: the shop's sales, VAT and refunds per day against what the books
hold now.

Pure: the caller reads both systems (``koppel.flows.reconcile``) and hands over three
lists — what the shop sold and refunded (:class:`ShopSale`), which QuickBooks document
koppel booked for each (:class:`Link`, from koppel's cross-references) and the documents
QuickBooks holds now (:class:`BookDoc`, read back, so a document edited or deleted by
hand in QuickBooks shows). Every sale the tenant books must have exactly one live
document with the shop's total and VAT per rate, to the cent; a sale the tenant does not
book (a cancelled order) must have none, or a voided one.

A day reconciles when none of its sales has a :class:`Difference`. The figures per day
(:class:`DayFigures`) are what an accountant compares with the VAT return: revenue
excl./incl., VAT per rate and treatment, shipping, payment fees, refunds.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Iterable, Mapping, Sequence

from koppel.domain.money import cents
from koppel.domain.verify import Expected, differences

ZERO = Decimal("0.00")


@dataclass(frozen=True)
class ShopSale:
    """One order (``kind="order"``) or one credit of an order (``kind="refund"``) as the
    shop reports it. Refund amounts are positive (money returned)."""

    kind: str
    source_id: str
    number: str
    day: dt.date
    currency: str | None
    total_excl: Decimal
    total_incl: Decimal
    vat: Mapping[str, Decimal]
    treatment: str = "domestic"
    shipping_incl: Decimal = ZERO
    fees_incl: Decimal = ZERO
    booked: bool = True
    why_not_booked: str | None = None


@dataclass(frozen=True)
class Link:
    """koppel's cross-reference from a sale to the QuickBooks document it booked."""

    source_type: str
    source_id: str
    entity: str
    doc_id: str
    state: str = "active"


@dataclass(frozen=True)
class BookDoc:
    """A QuickBooks document as it is now (``TotalAmt``, ``TxnTaxDetail``, …)."""

    entity: str
    doc_id: str
    body: Mapping

    @property
    def doc_number(self) -> str | None:
        return self.body.get("DocNumber")

    @property
    def voided(self) -> bool:
        note = str(self.body.get("PrivateNote") or "")
        return cents(self.body.get("TotalAmt") or 0) == ZERO and "Voided" in note


@dataclass(frozen=True)
class Difference:
    """One sale whose books differ from the shop, with both amounts."""

    day: dt.date
    kind: str  # order | refund
    source_id: str
    number: str
    problem: str  # not_booked | deleted_in_quickbooks | differs | should_be_void
    shop_total: Decimal
    books_total: Decimal | None
    entity: str | None = None
    doc_id: str | None = None
    detail: str = ""

    @property
    def amount(self) -> Decimal:
        """What the books miss (positive) or hold too much (negative)."""
        return cents(self.shop_total - (self.books_total or ZERO))

    def to_row(self) -> dict[str, str]:
        return {"day": self.day.isoformat(), "kind": self.kind, "source_id": self.source_id,
                "number": self.number, "problem": self.problem,
                "shop_total": str(self.shop_total),
                "books_total": "" if self.books_total is None else str(self.books_total),
                "difference": str(self.amount), "entity": self.entity or "",
                "doc_id": self.doc_id or "", "detail": self.detail}


@dataclass
class DayFigures:
    """One day's totals, shop and books side by side."""

    day: dt.date
    orders: int = 0
    refunds: int = 0
    revenue_excl: Decimal = ZERO
    revenue_incl: Decimal = ZERO
    vat: dict[str, Decimal] = field(default_factory=dict)  # "21" → amount
    vat_by_treatment: dict[str, Decimal] = field(default_factory=dict)
    revenue_by_treatment: dict[str, Decimal] = field(default_factory=dict)
    shipping_incl: Decimal = ZERO
    fees_incl: Decimal = ZERO
    refunds_incl: Decimal = ZERO
    refunds_vat: Decimal = ZERO
    books_sales: Decimal = ZERO
    books_refunds: Decimal = ZERO
    differences: int = 0

    @property
    def reconciled(self) -> bool:
        return self.differences == 0

    def to_dict(self) -> dict:
        def money(values: Mapping[str, Decimal]) -> dict[str, str]:
            return {k: str(v) for k, v in sorted(values.items())}

        return {"day": self.day.isoformat(), "orders": self.orders, "refunds": self.refunds,
                "revenue_excl": str(self.revenue_excl), "revenue_incl": str(self.revenue_incl),
                "vat": money(self.vat), "vat_by_treatment": money(self.vat_by_treatment),
                "revenue_by_treatment": money(self.revenue_by_treatment),
                "shipping_incl": str(self.shipping_incl), "fees_incl": str(self.fees_incl),
                "refunds_incl": str(self.refunds_incl), "refunds_vat": str(self.refunds_vat),
                "books_sales": str(self.books_sales), "books_refunds": str(self.books_refunds),
                "differences": self.differences, "reconciled": self.reconciled}


@dataclass
class Report:
    days: list[DayFigures]
    differences: list[Difference]

    @property
    def reconciled(self) -> bool:
        return not self.differences

    def unreconciled_days(self) -> list[dt.date]:
        return [d.day for d in self.days if not d.reconciled]


def _add(target: dict[str, Decimal], key: str, amount: Decimal) -> None:
    target[key] = cents(target.get(key, ZERO) + amount)


def reconcile(sales: Iterable[ShopSale], links: Iterable[Link], docs: Iterable[BookDoc], *,
              first_day: dt.date, last_day: dt.date) -> Report:
    """Compare every sale with the document koppel booked for it, as QuickBooks holds it
    now. ``docs`` must hold every linked document QuickBooks still has (a linked document
    it lacks was deleted there); a sale without a link is matched on its document number
    (a booking whose answer was lost still counts as booked)."""
    link_of: dict[tuple[str, str], Link] = {}
    for link in links:
        link_of[(link.source_type, link.source_id)] = link
    doc_of = {(d.entity, d.doc_id): d for d in docs}
    by_number: dict[str, list[BookDoc]] = defaultdict(list)
    for doc in doc_of.values():
        if doc.doc_number:
            by_number[doc.doc_number].append(doc)
    days = {first_day + dt.timedelta(days=i): DayFigures(first_day + dt.timedelta(days=i))
            for i in range((last_day - first_day).days + 1)}
    found: list[Difference] = []
    for sale in sorted(sales, key=lambda s: (s.day, s.kind, s.number, s.source_id)):
        figures = days.get(sale.day)
        if figures is None:
            continue
        doc = _document(sale, link_of, doc_of, by_number)
        _count(figures, sale, doc)
        difference = _compare(sale, link_of.get((sale.kind, sale.source_id)), doc)
        if difference is not None:
            figures.differences += 1
            found.append(difference)
    return Report(days=[days[d] for d in sorted(days)], differences=found)


def _document(sale: ShopSale, link_of, doc_of, by_number) -> BookDoc | None:
    link = link_of.get((sale.kind, sale.source_id))
    if link is not None:
        return doc_of.get((link.entity, link.doc_id))
    candidates = by_number.get(sale.number) or []
    return candidates[0] if len(candidates) == 1 else None


def _count(figures: DayFigures, sale: ShopSale, doc: BookDoc | None) -> None:
    books = cents(doc.body.get("TotalAmt") or 0) if doc is not None else ZERO
    if sale.kind == "refund":
        figures.refunds += 1
        figures.refunds_incl = cents(figures.refunds_incl + sale.total_incl)
        figures.refunds_vat = cents(figures.refunds_vat + sum(sale.vat.values(), ZERO))
        figures.books_refunds = cents(figures.books_refunds + books)
        return
    if not sale.booked:
        figures.books_sales = cents(figures.books_sales + books)
        return
    figures.orders += 1
    figures.revenue_excl = cents(figures.revenue_excl + sale.total_excl)
    figures.revenue_incl = cents(figures.revenue_incl + sale.total_incl)
    for rate, amount in sale.vat.items():
        _add(figures.vat, rate, amount)
    _add(figures.vat_by_treatment, sale.treatment, sum(sale.vat.values(), ZERO))
    _add(figures.revenue_by_treatment, sale.treatment, sale.total_excl)
    figures.shipping_incl = cents(figures.shipping_incl + sale.shipping_incl)
    figures.fees_incl = cents(figures.fees_incl + sale.fees_incl)
    figures.books_sales = cents(figures.books_sales + books)


def _compare(sale: ShopSale, link: Link | None, doc: BookDoc | None) -> Difference | None:
    def diff(problem: str, books: Decimal | None, detail: str) -> Difference:
        return Difference(day=sale.day, kind=sale.kind, source_id=sale.source_id,
                          number=sale.number, problem=problem, shop_total=cents(sale.total_incl),
                          books_total=books, entity=doc.entity if doc else (link.entity if link else None),
                          doc_id=doc.doc_id if doc else (link.doc_id if link else None),
                          detail=detail)

    if not sale.booked:
        if doc is None or doc.voided:
            return None
        total = cents(doc.body.get("TotalAmt") or 0)
        return Difference(day=sale.day, kind=sale.kind, source_id=sale.source_id,
                          number=sale.number, problem="should_be_void", shop_total=ZERO,
                          books_total=total, entity=doc.entity, doc_id=doc.doc_id,
                          detail=f"{sale.why_not_booked or 'not booked'}, but {doc.entity} "
                                 f"{doc.doc_id} holds {total}")
    if doc is None:
        if link is not None:
            return diff("deleted_in_quickbooks", None,
                        f"{link.entity} {link.doc_id} booked by koppel is no longer in QuickBooks")
        return diff("not_booked", None, "no document in QuickBooks")
    if doc.voided:
        return diff("differs", ZERO, f"{doc.entity} {doc.doc_id} is voided in QuickBooks")
    problems = differences(Expected(total=sale.total_incl, vat=sale.vat, currency=sale.currency),
                           doc.body)
    if problems:
        return diff("differs", cents(doc.body.get("TotalAmt") or 0), "; ".join(problems))
    return None


CSV_FIELDS: Sequence[str] = ("day", "kind", "source_id", "number", "problem", "shop_total",
                             "books_total", "difference", "entity", "doc_id", "detail")
