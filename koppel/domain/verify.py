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
    booked = booked_figures(document)
    found: list[str] = []
    if booked.total != cents(expected.total):
        found.append(f"total {booked.total} (shop {cents(expected.total)})")
    zero = Decimal("0.00")
    for key in sorted(set(booked.vat) | set(expected.vat), key=_sort_key):
        got, want = booked.vat.get(key, zero), cents(expected.vat.get(key, zero))
        if got != want:
            found.append(f"VAT {key}% {got} (shop {want})")
    if expected.currency and booked.currency and booked.currency != expected.currency:
        found.append(f"currency {booked.currency} (shop {expected.currency})")
    return found


def describe(booked_as: str, problems: list[str]) -> str:
    """The reason of a conflict record: what was booked, and each difference."""
    return f"{booked_as} differs from the shop: " + "; ".join(problems)
