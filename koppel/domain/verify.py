"""What QuickBooks booked, compared with what the shop charged: the check every write of a
sales document ends with.

koppel never trusts its own model of QuickBooks' arithmetic (``koppel.domain.money``)
for the verdict: the document QuickBooks *returns* from the write (``TotalAmt``,
``TxnTaxDetail.TaxLine`` per rate, ``CurrencyRef``) is compared with the shop's figures —
the order's total and the VAT per rate on the customer's invoice. The answer comes with
the write, so the check costs no API call. Any difference is a ``conflict`` record that
names both figures (see ``docs/accounting.md``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Mapping

from koppel.domain.money import cents, rate_key, to_decimal


@dataclass(frozen=True)
class Expected:
    """The shop's figures for one document: total incl. VAT, VAT per rate (``rate_key``
    → amount), the currency."""

    total: Decimal
    vat: Mapping[str, Decimal] = field(default_factory=dict)
    currency: str | None = None


@dataclass(frozen=True)
class Booked:
    """The figures of a document as QuickBooks returned it."""

    total: Decimal
    vat: Mapping[str, Decimal]
    currency: str | None


def booked_figures(document: Mapping[str, Any]) -> Booked:
    """Total, VAT per rate (summed over the ``TxnTaxDetail`` tax lines of each
    ``TaxPercent``) and currency of a returned SalesReceipt/Invoice/CreditMemo/RefundReceipt."""
    vat: dict[str, Decimal] = {}
    for line in (document.get("TxnTaxDetail") or {}).get("TaxLine") or []:
        detail = line.get("TaxLineDetail") or {}
        percent = detail.get("TaxPercent")
        key = rate_key(percent) if percent is not None else "?"
        vat[key] = vat.get(key, Decimal("0.00")) + cents(line.get("Amount") or 0)
    currency = (document.get("CurrencyRef") or {}).get("value")
    return Booked(total=cents(document.get("TotalAmt") or 0), vat=vat, currency=currency)


def _sort_key(key: str) -> tuple[int, Decimal | str]:
    try:
        return (0, -to_decimal(key))
    except Exception:  # "?": a tax line without a percentage
        return (1, key)


def differences(expected: Expected, document: Mapping[str, Any]) -> list[str]:
    """Each way the returned ``document`` differs from the shop's figures, as text
    (``"total 12.10 (shop 12.11)"``, ``"VAT 9% 0.83 (shop 0.82)"``); empty when it matches
    to the cent. A rate with no VAT on either side counts as 0.00."""
    return _money_differences(booked_figures(document), expected, "shop")


def _money_differences(got: Any, want: Any, side: str) -> list[str]:
    """Total, VAT per rate and currency of ``got`` against ``want`` (the ``side`` the
    wanted figures come from), to the cent; a rate with no VAT on either side is 0.00."""
    found: list[str] = []
    if got.total != cents(want.total):
        found.append(f"total {got.total} ({side} {cents(want.total)})")
    zero = Decimal("0.00")
    for key in sorted(set(got.vat) | set(want.vat), key=_sort_key):
        got_v, want_v = got.vat.get(key, zero), cents(want.vat.get(key, zero))
        if got_v != want_v:
            found.append(f"VAT {key}% {got_v} ({side} {want_v})")
    if want.currency and got.currency and got.currency != want.currency:
        found.append(f"currency {got.currency} ({side} {want.currency})")
    return found


def describe(booked_as: str, problems: list[str]) -> str:
    """The reason of a conflict record: what was booked, and each difference."""
    return f"{booked_as} differs from the shop: " + "; ".join(problems)


@dataclass(frozen=True)
class Verification:
    """The verdict on one document QuickBooks returned: the shop's figures, the booked
    ones and each difference (empty: it matches to the cent)."""

    expected: Expected
    booked: Booked
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def figures(self) -> dict[str, Any]:
        """Both sides, JSON-safe, for a conflict record's ``details``: ``{"booked":
        {"total", "vat"}, "shop": {"total", "vat"}}``."""
        return {"booked": {"total": str(self.booked.total),
                           "vat": {k: str(v) for k, v in self.booked.vat.items()}},
                "shop": {"total": str(self.expected.total),
                         "vat": {k: str(v) for k, v in self.expected.vat.items()}}}


def verify(expected: Expected, document: Mapping[str, Any]) -> Verification:
    """:func:`differences` of ``document`` from ``expected``, with both sides' figures."""
    return Verification(expected=expected, booked=booked_figures(document),
                        problems=tuple(differences(expected, document)))


# -- the reverse direction: a QuickBooks document placed as a Lightspeed order ------------

@dataclass(frozen=True)
class OrderFigures:
    """Money of one order, as the QuickBooks document has it or as Lightspeed charged it.

    ``basis`` is the document's tax mode: ``"incl"`` (``TaxInclusive`` or no tax) compares
    Lightspeed's amounts incl. VAT with the document's line amounts, ``"excl"``
    (``TaxExcluded``) its amounts excl. VAT. ``rows`` are ``(sku, quantity, amount)`` in
    document order; ``total`` is always incl. VAT; ``vat`` is per rate (``rate_key``)."""

    basis: str
    rows: tuple[tuple[str, int, Decimal], ...]
    shipping: Decimal
    fees: Decimal
    discount: Decimal
    total: Decimal
    vat: Mapping[str, Decimal] = field(default_factory=dict)
    currency: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe (for a conflict record's ``details``)."""
        return {"basis": self.basis,
                "rows": [{"sku": s, "quantity": q, "amount": str(cents(a))}
                         for s, q, a in self.rows],
                "shipping": str(cents(self.shipping)), "fees": str(cents(self.fees)),
                "discount": str(cents(self.discount)), "total": str(cents(self.total)),
                "vat": {k: str(cents(v)) for k, v in self.vat.items()},
                "currency": self.currency}


def _rate_percent(rate: object) -> str:
    """Lightspeed writes a rate as a fraction (``0.21``), QuickBooks as a percentage."""
    number = to_decimal(rate)
    return rate_key(number * 100 if abs(number) < 1 else number)


def lightspeed_vat(tax_rates: Any) -> dict[str, Decimal]:
    """VAT per rate from a Lightspeed ``taxRates`` list (``[{rate, amount}]``); a rate
    that carries no VAT is left out (QuickBooks lists no tax line for it either)."""
    vat: dict[str, Decimal] = {}
    for entry in tax_rates or []:
        if not isinstance(entry, Mapping) or entry.get("rate") is None:
            continue
        amount = cents(entry.get("amount") or 0)
        key = _rate_percent(entry["rate"])
        vat[key] = vat.get(key, Decimal("0.00")) + amount
    return {k: v for k, v in vat.items() if v != 0}


def lightspeed_order_figures(order: Mapping[str, Any], rows: list[Mapping[str, Any]],
                             basis: str) -> OrderFigures:
    """The figures of a placed Lightspeed order (``GET orders/{id}.json`` and its rows:
    ``priceIncl``/``priceExcl`` per row are the row's total, ``shipmentPriceIncl``,
    ``paymentPriceIncl``, ``discountAmount``, ``priceIncl``, ``taxRates``)."""
    suffix = "Incl" if basis == "incl" else "Excl"
    out_rows = tuple((str(r.get("sku") or ""), int(r.get("quantityOrdered") or 0),
                      cents(r.get(f"price{suffix}") or 0)) for r in rows)
    discount = cents(order.get(f"discount{suffix}") or order.get("discountAmount") or 0)
    return OrderFigures(
        basis=basis, rows=out_rows, shipping=cents(order.get(f"shipmentPrice{suffix}") or 0),
        fees=cents(order.get(f"paymentPrice{suffix}") or 0), discount=abs(discount),
        total=cents(order.get("priceIncl") or 0), vat=lightspeed_vat(order.get("taxRates")),
        currency=None)


def order_differences(document: OrderFigures, placed: OrderFigures,
                      what: str = "Lightspeed") -> list[str]:
    """Each way ``placed`` (a checkout's quote or a placed order) differs from the
    QuickBooks ``document``, as text (``"row 1 GER-1 ×2 83.98 (QuickBooks 80.00)"``);
    empty when it matches to the cent."""
    found: list[str] = []
    if len(placed.rows) != len(document.rows):
        found.append(f"{len(placed.rows)} rows (QuickBooks {len(document.rows)})")
    for pos, (want, got) in enumerate(zip(document.rows, placed.rows), start=1):
        sku, qty, amount = want
        if got[0] != sku or got[1] != qty:
            found.append(f"row {pos} {got[0]} ×{got[1]} (QuickBooks {sku} ×{qty})")
        elif got[2] != cents(amount):
            found.append(f"row {pos} {sku} ×{qty} {got[2]} (QuickBooks {cents(amount)})")
    for name in ("shipping", "fees", "discount"):
        got_v, want_v = getattr(placed, name), cents(getattr(document, name))
        if got_v != want_v:
            found.append(f"{name} {got_v} (QuickBooks {want_v})")
    return found + _money_differences(placed, document, "QuickBooks")
