"""Order rows and order totals, computed exactly (see :mod:`.money` for the model).

Used for seeded orders, orders added through the control plane and orders created
through checkouts, so all three obey the same invariants. Lightspeed documents the
fields (``shipmentBasePriceExcl/Incl``, ``shipmentDiscountExcl/Incl``,
``shipmentPriceExcl/Incl``, ``shipmentTaxRates``, ``paymentBasePriceExcl/Incl``,
``paymentPriceExcl/Incl``, ``paymentTaxRates``, ``taxRates``) but not how it rounds or
splits them; the rules below are **the sandbox's assumption** wherever Lightspeed's
documentation is silent. Every amount is a ``Decimal`` in cents, rounded half up.

Rows
  ``priceIncl = round(basePriceIncl * quantityOrdered) - discountIncl`` and
  ``priceExcl = round(priceIncl / (1 + taxRate))``; likewise ``discountExcl``.
  ``quantityOrdered`` is a whole number (as in Lightspeed).

Order discount
  Spread over the goods' VAT rates in proportion to the rows' totals incl. VAT
  (``priceIncl``, i.e. after row discounts); the largest share takes the rounding rest;
  each share's excl = ``round(share / (1 + rate))``. ``discountExcl`` is the sum of
  those excl shares. It never touches shipping or the payment fee.

Shipping and payment fee follow the goods (shop setting ``shipping_tax``)
  * ``"pro_rata"`` (default): an amount incl. VAT is split over the goods' rates in
    proportion to the rows' ``priceIncl`` per rate (after row discounts, before the order
    discount); the largest share takes the rounding rest (ties: the higher rate); each
    share's excl = ``round(share / (1 + rate))``. An order with one goods rate has one
    share. If every row is free, everything goes to the highest goods rate.
  * ``"highest_rate"``: the whole amount at the highest goods rate.
  ``shipmentTaxRates`` / ``paymentTaxRates`` hold one ``{name, rate, amount}`` per
  share (``amount`` = share incl - share excl), highest rate first; empty when the amount
  is zero. ``shipmentTaxRate`` / ``paymentTaxRate`` name the rate of the largest share.

Shipment discount
  ``shipmentBasePriceIncl`` is the method's price (before discount),
  ``shipmentDiscountIncl`` the discount on it (a free-shipping coupon equals the base),
  ``shipmentPriceIncl = shipmentBasePriceIncl - shipmentDiscountIncl``. Base and price
  are each split as above; ``shipmentBasePriceExcl`` / ``shipmentPriceExcl`` are the
  sums of their excl shares and ``shipmentDiscountExcl`` is their difference, so
  ``shipmentPriceExcl = shipmentBasePriceExcl - shipmentDiscountExcl`` exactly. VAT is
  owed on what is charged: ``shipmentTaxRates`` split ``shipmentPriceIncl``.

Payment fee
  ``paymentBasePriceIncl = paymentPriceIncl`` (no payment discounts),
  ``paymentPriceExcl`` the sum of its excl shares.

Order totals (exact to the cent)
  ``priceIncl = Σ row priceIncl + shipmentPriceIncl + paymentPriceIncl - discountIncl``
  and ``priceExcl = Σ row priceExcl + shipmentPriceExcl + paymentPriceExcl -
  discountExcl``. ``taxRates`` holds one ``{name, rate, amount}`` per rate; at each rate
  ``amount = (rows + shipping share + fee share - discount share) incl - (same) excl``,
  so the amounts add up to ``priceIncl - priceExcl`` exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .money import VAT_HIGH, ZERO, cents, excl_from_incl, vat_label
from .serialize import Ref

SHIPPING_TAX_MODES = ("pro_rata", "highest_rate")


@dataclass(frozen=True)
class RowSpec:
    """What an order row is made of (a snapshot of the variant at order time)."""

    product_id: int | None
    variant_id: int | None
    product_title: str
    variant_title: str
    sku: str
    ean: str
    article_code: str
    brand_title: str
    tax_rate: Decimal
    base_price_incl: Decimal
    price_cost: Decimal
    quantity: int
    discount_incl: Decimal = ZERO
    quantity_shipped: int = 0
    quantity_invoiced: int = 0


def build_row(row_id: int, spec: RowSpec) -> dict[str, Any]:
    """One ``orderProduct`` record."""
    rate = spec.tax_rate
    gross_incl = cents(spec.base_price_incl * spec.quantity)
    discount_incl = min(cents(spec.discount_incl), gross_incl)
    price_incl = gross_incl - discount_incl
    return {
        "id": row_id,
        "supplierTitle": "",
        "brandTitle": spec.brand_title,
        "productTitle": spec.product_title,
        "variantTitle": spec.variant_title,
        "taxRate": rate,
        "taxRates": [{"name": vat_label(rate), "rate": rate,
                      "amount": price_incl - excl_from_incl(price_incl, rate)}],
        "quantityOrdered": spec.quantity,
        "quantityInvoiced": spec.quantity_invoiced,
        "quantityShipped": spec.quantity_shipped,
        "quantityRefunded": 0,
        "quantityReturned": 0,
        "articleCode": spec.article_code,
        "ean": spec.ean,
        "sku": spec.sku,
        "weight": 0,
        "volume": 0,
        "colli": 0,
        "sizeX": 0,
        "sizeY": 0,
        "sizeZ": 0,
        "priceCost": spec.price_cost,
        "customFields": False,
        "basePriceExcl": excl_from_incl(spec.base_price_incl, rate, places="unit"),
        "basePriceIncl": spec.base_price_incl,
        "priceExcl": excl_from_incl(price_incl, rate),
        "priceIncl": price_incl,
        "discountExcl": excl_from_incl(discount_incl, rate),
        "discountIncl": discount_incl,
        "product": Ref(f"products/{spec.product_id}", spec.product_id)
        if spec.product_id else False,
        "variant": Ref(f"variants/{spec.variant_id}", spec.variant_id)
        if spec.variant_id else False,
    }


def _allocate(total: Decimal, weights: dict[Any, Decimal]) -> dict[Any, Decimal]:
    """Split ``total`` (cents) over keys in proportion to ``weights``; exact sum. The
    key with the largest weight (ties: the largest key) takes the rounding rest."""
    whole = sum(weights.values(), ZERO)
    if total == ZERO or whole == ZERO:
        return {k: ZERO for k in weights}
    shares = {k: cents(total * w / whole) for k, w in weights.items()}
    rest = total - sum(shares.values(), ZERO)
    if rest:
        biggest = max(weights, key=lambda k: (weights[k], k))
        shares[biggest] += rest
    return shares


@dataclass(frozen=True)
class Split:
    """An amount incl. VAT split over VAT rates: ``incl``/``excl`` per rate."""

    incl: dict[Decimal, Decimal]
    excl: dict[Decimal, Decimal]
    main_rate: Decimal

    @property
    def total_incl(self) -> Decimal:
        return sum(self.incl.values(), ZERO)

    @property
    def total_excl(self) -> Decimal:
        return sum(self.excl.values(), ZERO)

    def tax_rates(self) -> list[dict[str, Any]]:
        return [{"name": vat_label(rate), "rate": rate,
                 "amount": self.incl[rate] - self.excl[rate]}
                for rate in sorted(self.incl, reverse=True) if self.incl[rate]]


def split_over_rates(amount_incl: Decimal, goods_incl: dict[Decimal, Decimal],
                     mode: str = "pro_rata") -> Split:
    """Split a shipping or payment amount over the goods' rates (module docstring)."""
    amount_incl = cents(amount_incl)
    rates = list(goods_incl) or [VAT_HIGH]  # no goods (an empty checkout): standard rate
    highest = max(rates)
    weights = {r: goods_incl.get(r, ZERO) for r in rates}
    if mode == "highest_rate" or sum(weights.values(), ZERO) <= ZERO:
        weights = {highest: Decimal(1)}
    elif mode != "pro_rata":
        raise ValueError(f"unknown shipping tax mode {mode!r}")
    incl = {r: s for r, s in _allocate(amount_incl, weights).items() if s}
    excl = {r: excl_from_incl(s, r) for r, s in incl.items()}
    main = max(weights, key=lambda k: (weights[k], k))
    return Split(incl, excl, main)


def apply_totals(order: dict[str, Any], rows: list[dict[str, Any]], *,
                 shipment_price_incl: Decimal, discount_incl: Decimal,
                 shipment_discount_incl: Decimal = ZERO,
                 payment_price_incl: Decimal = ZERO,
                 shipping_tax: str = "pro_rata",
                 shipment_rate: Decimal | None = None) -> None:
    """Fill the order's money fields from its rows, shipping, fee and order discount.

    ``shipment_price_incl`` is the shipping price *before* ``shipment_discount_incl``
    (the base); ``shipment_rate`` forces one rate for shipping and fee (else they follow
    the goods by ``shipping_tax``)."""
    rows_incl: dict[Decimal, Decimal] = {}
    rows_excl: dict[Decimal, Decimal] = {}
    for row in rows:
        rate = row["taxRate"]
        rows_incl[rate] = rows_incl.get(rate, ZERO) + row["priceIncl"]
        rows_excl[rate] = rows_excl.get(rate, ZERO) + row["priceExcl"]
    sum_incl = sum(rows_incl.values(), ZERO)
    discount_incl = max(ZERO, min(cents(discount_incl), sum_incl))
    discount_shares = _allocate(discount_incl, rows_incl)
    discount_excl_by_rate = {r: excl_from_incl(d, r) for r, d in discount_shares.items()}

    goods = rows_incl if shipment_rate is None else {shipment_rate: Decimal(1)}
    ship_base = max(ZERO, cents(shipment_price_incl))
    ship_discount = max(ZERO, min(cents(shipment_discount_incl), ship_base))
    base_split = split_over_rates(ship_base, goods, shipping_tax)
    ship_split = split_over_rates(ship_base - ship_discount, goods, shipping_tax)
    fee_split = split_over_rates(max(ZERO, cents(payment_price_incl)), goods, shipping_tax)

    total_incl: dict[Decimal, Decimal] = {}
    total_excl: dict[Decimal, Decimal] = {}
    for rate in rows_incl:
        total_incl[rate] = rows_incl[rate] - discount_shares[rate]
        total_excl[rate] = rows_excl[rate] - discount_excl_by_rate[rate]
    for split in (ship_split, fee_split):
        for rate, amount in split.incl.items():
            total_incl[rate] = total_incl.get(rate, ZERO) + amount
            total_excl[rate] = total_excl.get(rate, ZERO) + split.excl[rate]

    discount_excl = sum(discount_excl_by_rate.values(), ZERO)
    order["priceCost"] = cents(sum((r["priceCost"] * r["quantityOrdered"] for r in rows), ZERO))
    order["priceExcl"] = sum(total_excl.values(), ZERO)
    order["priceIncl"] = sum(total_incl.values(), ZERO)
    order["taxRates"] = [
        {"name": vat_label(rate), "rate": rate, "amount": total_incl[rate] - total_excl[rate]}
        for rate in sorted(total_incl, reverse=True)
    ]
    order["shipmentTaxRate"] = ship_split.main_rate
    order["shipmentBasePriceExcl"] = base_split.total_excl
    order["shipmentBasePriceIncl"] = ship_base
    order["shipmentDiscountExcl"] = base_split.total_excl - ship_split.total_excl
    order["shipmentDiscountIncl"] = ship_discount
    order["shipmentPriceExcl"] = ship_split.total_excl
    order["shipmentPriceIncl"] = ship_split.total_incl
    order["shipmentTaxRates"] = ship_split.tax_rates()
    order["paymentTaxRate"] = fee_split.main_rate
    order["paymentBasePriceExcl"] = fee_split.total_excl
    order["paymentBasePriceIncl"] = fee_split.total_incl
    order["paymentPriceExcl"] = fee_split.total_excl
    order["paymentPriceIncl"] = fee_split.total_incl
    order["paymentTaxRates"] = fee_split.tax_rates()
    order["isDiscounted"] = (bool(discount_incl) or bool(ship_discount)
                             or any(r["discountIncl"] for r in rows))
    order["discountAmount"] = discount_incl
    order["discountExcl"] = discount_excl
    order["discountIncl"] = discount_incl
    order["weight"] = 0
    order["volume"] = 0
    order["colli"] = 0
