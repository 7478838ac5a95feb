"""Turning one Lightspeed credit into a QuickBooks refund document.

The credit is the source of truth for money: its rows carry exactly what Lightspeed
refunded (row totals after discount, pro rata, the order discount's share taken off). So
the domain's :func:`~koppel.domain.qbo_payloads.build_refund_document` is given the
order *as credited* — one line per credited row whose quantity and amounts are the
credit's, and the credited shipping — and asked to refund all of it. Its amounts then
equal the credit to the cent, and its rounding policy closes any difference QuickBooks'
own VAT rounding would make.

Items, customer and payment method come from the booked document itself (its first
lines are the order rows, in order), so a refund books against exactly what was sold,
to the same customer.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from koppel.flows.base import RecordError

ORIGINAL_FOR = {"credit_memo": "Invoice", "refund_receipt": "SalesReceipt"}


@dataclass(frozen=True)
class Original:
    """The booked QuickBooks document of an order, as the refund needs it."""

    id: str
    entity: str
    doc_number: str
    customer_id: str
    line_items: tuple[str | None, ...]
    line_quantities: tuple[str | None, ...]
    payment_method_id: str | None

    @classmethod
    def from_row(cls, entity: str, row: dict[str, Any]) -> "Original":
        items, quantities = [], []
        for line in row.get("Line") or []:
            if line.get("DetailType") != "SalesItemLineDetail":
                continue
            detail = line.get("SalesItemLineDetail") or {}
            items.append((detail.get("ItemRef") or {}).get("value"))
            quantities.append(None if detail.get("Qty") is None else str(detail["Qty"]))
        return cls(id=str(row["Id"]), entity=entity, doc_number=str(row.get("DocNumber") or ""),
                   customer_id=str((row.get("CustomerRef") or {}).get("value") or ""),
                   line_items=tuple(items), line_quantities=tuple(quantities),
                   payment_method_id=(row.get("PaymentMethodRef") or {}).get("value"))

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> "Original":
        return cls(**{**raw, "line_items": tuple(raw["line_items"]),
                      "line_quantities": tuple(raw["line_quantities"])})


def refund_entity(setting: str, original_entity: str, paid: bool = False) -> str:
    """``settings.refunds.document`` → the QBO entity of the refund. ``auto``: money paid
    back (a sales receipt, or an invoice koppel applied a Payment to) is a RefundReceipt;
    an open invoice is credited with a CreditMemo."""
    kind = {"Invoice": "CreditMemo", "SalesReceipt": "RefundReceipt"}
    if setting == "auto":
        return "RefundReceipt" if paid else kind[original_entity]
    return kind[ORIGINAL_FOR[setting]]


def credited_order(order, credit: dict[str, Any]):
    """``order`` (a MappedOrder) reduced to what ``credit`` refunds; row ``sku`` becomes
    a per-row key (``row:<id>``) that :func:`refund_refs` maps to the booked line's item."""
    from koppel.hooks.paging import parse_timestamp

    lines = []
    for index, line in enumerate(order.lines):
        row = credit["rows"].get(line.source_id)
        if not row:
            continue
        quantity = Decimal(row["quantity"])
        if quantity <= 0 or quantity > line.quantity:
            raise RecordError(f"credited quantity {quantity} outside 1..{line.quantity}",
                              field=f"lines[{index}].quantity")
        lines.append(line.model_copy(update={
            "sku": f"row:{line.source_id}", "quantity": quantity,
            "amount_incl": Decimal(row["amount_incl"]), "amount_excl": Decimal(row["amount_excl"]),
            "discount_incl": None, "discount_excl": None,
            "unit_price_incl": None, "unit_price_excl": None}))
    unknown = set(credit["rows"]) - {line.source_id for line in order.lines}
    if unknown:
        raise RecordError(f"credited rows {', '.join(sorted(unknown))} are not on the order",
                          field="lines")
    created = parse_timestamp(credit.get("created_at")) or order.created_at
    from koppel.domain.qbo_payloads import payment_fee_parts, shipping_parts
    from koppel.domain.records import MappedTax

    shipping_incl, shipping_excl = Decimal(credit["shipping_incl"]), Decimal(credit["shipping_excl"])
    shipping_taxes = credited_charge_taxes(order.shipping_taxes, shipping_parts(order),
                                           order.shipping_incl, shipping_incl)
    if shipping_taxes is not order.shipping_taxes:
        shipping_excl = shipping_incl - sum((t.amount for t in shipping_taxes), Decimal(0))
    fee_incl = Decimal(credit.get("payment_incl") or "0.00")
    fee_excl = Decimal(credit.get("payment_excl") or "0.00")
    fee_taxes = credited_charge_taxes(order.payment_fee_taxes, payment_fee_parts(order),
                                      order.payment_fee_incl, fee_incl) if fee_incl else []
    if fee_incl and fee_taxes is not order.payment_fee_taxes:
        fee_excl = fee_incl - sum((t.amount for t in fee_taxes), Decimal(0))
    # a credit refunds rows, shipping and (when Lightspeed credits it) the payment fee;
    # its VAT per rate is the credit's own (``taxRates`` of the credit note)
    return order.model_copy(update={
        "lines": lines, "created_at": created,
        "shipping_incl": shipping_incl, "shipping_excl": shipping_excl,
        "shipping_taxes": shipping_taxes, "shipping_discount_excl": None,
        "shipping_discount_incl": None,
        "payment_fee_excl": fee_excl or None, "payment_fee_incl": fee_incl or None,
        "payment_fee_taxes": fee_taxes,
        "tax_lines": [MappedTax.model_validate(t) for t in credit.get("tax_rates") or []],
        "discount_incl": None, "discount_excl": None,
        "total_incl": Decimal(credit["total_incl"]), "total_excl": Decimal(credit["total_excl"])})


def credited_charge_taxes(taxes: list, parts: list, charged_incl, credited_incl: Decimal) -> list:
    """The VAT per rate of ``credited_incl`` refunded of a charge (shipping, payment fee)
    the order split as ``parts`` (reported as ``taxes``): the order's own split when all
    of it is refunded, else the same split pro rata (each share's VAT from its gross)."""
    from koppel.domain.money import allocate, tax_in_gross
    from koppel.domain.records import MappedTax

    if len(taxes) <= 1 or credited_incl == (charged_incl or 0) or not parts:
        return taxes
    grosses = allocate(credited_incl, [p.gross for p in parts])
    return [MappedTax(rate=p.rate, amount=tax_in_gross(g, p.rate)) for p, g in zip(parts, grosses)]


def row_items(order, original: Original) -> dict[str, str]:
    """``row:<id>`` → the item its row was booked on (the booked document's first lines
    are the order's rows, in order; a mismatch is reported, never guessed)."""
    if len(original.line_items) < len(order.lines):
        raise RecordError(f"booked {original.entity} {original.id} has fewer item lines than "
                          "the order has rows", field="lines")
    out = {}
    for index, line in enumerate(order.lines):
        item, quantity = original.line_items[index], original.line_quantities[index]
        if not item or quantity is None or Decimal(quantity) != line.quantity:
            raise RecordError(f"line {index + 1} of booked {original.entity} {original.id} "
                              "does not match the order row", field=f"lines[{index}]")
        out[f"row:{line.source_id}"] = str(item)
    return out
