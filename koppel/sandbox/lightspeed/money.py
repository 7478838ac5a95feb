"""Money arithmetic of the emulated shop: Decimal throughout, rounded half up.

Lightspeed gives line totals after discount (``priceExcl``/``priceIncl``) and unit prices
(``basePriceExcl``/``basePriceIncl``). The sandbox fixes one exact model so tests can
check every invariant to the cent:

* a price including VAT is the source of truth (shops enter prices incl. VAT);
* the price excluding VAT is ``incl / (1 + rate)`` rounded half up (4 dp for unit prices,
  2 dp for totals), so ``excl * (1 + rate)`` is within a cent of ``incl``;
* an order total is the sum of its rows plus shipping minus the order discount.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
UNIT = Decimal("0.0001")
ZERO = Decimal("0.00")
ONE = Decimal(1)

#: VAT rates the shop uses, as fractions (Lightspeed's ``taxRate`` is a fraction: 0.21).
VAT_HIGH = Decimal("0.21")
VAT_LOW = Decimal("0.09")
VAT_ZERO = Decimal("0")


def cents(value: Decimal | int | str) -> Decimal:
    """Round half up to whole cents."""
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def unit(value: Decimal | int | str) -> Decimal:
    """Round half up to 4 decimals (Lightspeed's precision for unit prices excl. VAT)."""
    return Decimal(value).quantize(UNIT, rounding=ROUND_HALF_UP)


def excl_from_incl(incl: Decimal, rate: Decimal, *, places: str = "cents") -> Decimal:
    """The amount excluding VAT for an amount including VAT at ``rate``."""
    raw = incl / (ONE + rate)
    return unit(raw) if places == "unit" else cents(raw)


def vat_label(rate: Decimal) -> str:
    """``"21% BTW"`` for 0.21."""
    return f"{(rate * 100).normalize():f}% BTW"
