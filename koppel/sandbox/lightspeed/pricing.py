"""Order rows and order totals, computed exactly (see :mod:`.money` for the model).

Used for seeded orders, orders added through the control plane and orders created
through checkouts, so all three obey the same invariants:

* row ``priceIncl = round(basePriceIncl * quantity) - discountIncl`` and
  ``priceExcl = round(priceIncl / (1 + taxRate))``; likewise ``discountExcl``;
* order ``priceIncl = Σ row priceIncl + shipmentPriceIncl - discountIncl`` and
  ``priceExcl = Σ row priceExcl + shipmentPriceExcl - discountExcl`` (exactly);
* the order discount is spread over the VAT rates in proportion to the rows' totals
  incl. VAT (largest share takes the rounding rest), each share converted to excl. VAT
  at its own rate;
* ``taxRates`` holds one ``{name, rate, amount}`` per rate; the amounts add up to
  ``priceIncl - priceExcl`` exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .money import VAT_HIGH, ZERO, cents, excl_from_incl, vat_label
from .serialize import Ref


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


def _allocate(total: Decimal, weights: dict[Decimal, Decimal]) -> dict[Decimal, Decimal]:
    """Split ``total`` (cents) over keys in proportion to ``weights``; exact sum."""
    whole = sum(weights.values(), ZERO)
    if total == ZERO or whole == ZERO:
        return {k: ZERO for k in weights}
    shares = {k: cents(total * w / whole) for k, w in weights.items()}
    rest = total - sum(shares.values(), ZERO)
    if rest:
        biggest = max(weights, key=lambda k: (weights[k], k))
        shares[biggest] += rest
    return shares


def apply_totals(order: dict[str, Any], rows: list[dict[str, Any]], *,
                 shipment_price_incl: Decimal, discount_incl: Decimal,
                 shipment_rate: Decimal = VAT_HIGH) -> None:
    """Fill the order's money fields from its rows, shipping and order discount."""
    rows_incl: dict[Decimal, Decimal] = {}
    rows_excl: dict[Decimal, Decimal] = {}
    for row in rows:
        rate = row["taxRate"]
        rows_incl[rate] = rows_incl.get(rate, ZERO) + row["priceIncl"]
        rows_excl[rate] = rows_excl.get(rate, ZERO) + row["priceExcl"]
    sum_incl = sum(rows_incl.values(), ZERO)
    discount_incl = min(cents(discount_incl), sum_incl)
    discount_shares = _allocate(discount_incl, rows_incl)
    discount_excl_by_rate = {r: excl_from_incl(d, r) for r, d in discount_shares.items()}

    ship_incl = cents(shipment_price_incl)
    ship_excl = excl_from_incl(ship_incl, shipment_rate)

    total_incl: dict[Decimal, Decimal] = {}
    total_excl: dict[Decimal, Decimal] = {}
    for rate in rows_incl:
        total_incl[rate] = rows_incl[rate] - discount_shares[rate]
        total_excl[rate] = rows_excl[rate] - discount_excl_by_rate[rate]
    if ship_incl:
        total_incl[shipment_rate] = total_incl.get(shipment_rate, ZERO) + ship_incl
        total_excl[shipment_rate] = total_excl.get(shipment_rate, ZERO) + ship_excl

    discount_excl = sum(discount_excl_by_rate.values(), ZERO)
    order["priceCost"] = cents(sum((r["priceCost"] * r["quantityOrdered"] for r in rows), ZERO))
    order["priceExcl"] = sum(total_excl.values(), ZERO)
    order["priceIncl"] = sum(total_incl.values(), ZERO)
    order["taxRates"] = [
        {"name": vat_label(rate), "rate": rate, "amount": total_incl[rate] - total_excl[rate]}
        for rate in sorted(total_incl, reverse=True)
    ]
    order["shipmentBasePriceExcl"] = ship_excl
    order["shipmentBasePriceIncl"] = ship_incl
    order["shipmentPriceExcl"] = ship_excl
    order["shipmentPriceIncl"] = ship_incl
    order["shipmentDiscountExcl"] = ZERO
    order["shipmentDiscountIncl"] = ZERO
    order["shipmentTaxRates"] = (
        [{"name": vat_label(shipment_rate), "rate": shipment_rate,
          "amount": ship_incl - ship_excl}] if ship_incl else [])
    order["paymentBasePriceExcl"] = ZERO
    order["paymentBasePriceIncl"] = ZERO
    order["paymentPriceExcl"] = ZERO
    order["paymentPriceIncl"] = ZERO
    order["paymentTaxRates"] = []
    order["isDiscounted"] = bool(discount_incl) or any(r["discountIncl"] for r in rows)
    order["discountAmount"] = discount_incl
    order["discountExcl"] = discount_excl
    order["discountIncl"] = discount_incl
    order["weight"] = 0
    order["volume"] = 0
    order["colli"] = 0
