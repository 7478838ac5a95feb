"""The canonical record fields a mapping may fill, per flow, with their value kinds.

These mirror the canonical records of ``koppel.domain.records`` (see
docs/architecture.md): the mapper outputs plain dicts with exactly these names and the
domain validates them into its models. Nested records are written as dotted targets in
a mapping (``customer.email``, ``bill_addr.line1``); order rows are the ``lines`` list.

Kinds: ``str`` (empty → ``None``, scalars → text), ``decimal``, ``int``, ``bool``,
``datetime``, ``list``, ``dict``, ``any`` (as mapped). The mapper coerces each mapped
value to its kind, so a bad value is a per-field mapping error rather than a failure
later on.
"""

from __future__ import annotations

ADDRESS = {
    "line1": "str",
    "line2": "str",
    "city": "str",
    "postal_code": "str",
    "country": "str",
    "region": "str",
}

CUSTOMER = {
    "source_id": "str",
    "email": "str",
    "company_name": "str",
    "given_name": "str",
    "middle_name": "str",
    "family_name": "str",
    "phone": "str",
    "vat_number": "str",
    "coc_number": "str",
    "bill_addr": ADDRESS,
    "ship_addr": ADDRESS,
    "notes": "str",
}

ORDER_LINE = {
    "source_id": "str",
    "sku": "str",
    "name": "str",
    "description": "str",
    "quantity": "decimal",
    "unit_price_excl": "decimal",
    "unit_price_incl": "decimal",
    "amount_excl": "decimal",
    "amount_incl": "decimal",
    "discount_excl": "decimal",
    "discount_incl": "decimal",
    "tax_rate": "decimal",
    "tax_name": "str",
    "variant_id": "str",
}

TAX_AMOUNT = {
    "rate": "decimal",
    "amount": "decimal",
}

ORDER = {
    "source_id": "str",
    "number": "str",
    "created_at": "datetime",
    "updated_at": "datetime",
    "status": "str",
    "payment_status": "str",
    "shipment_status": "str",
    "payment_method": "str",
    "currency": "str",
    "customer": CUSTOMER,
    "bill_addr": ADDRESS,
    "ship_addr": ADDRESS,
    "lines": [ORDER_LINE],
    "shipping_excl": "decimal",
    "shipping_incl": "decimal",
    "shipping_tax_rate": "decimal",
    "shipping_name": "str",
    "shipping_taxes": [TAX_AMOUNT],
    "shipping_discount_excl": "decimal",
    "shipping_discount_incl": "decimal",
    "payment_fee_excl": "decimal",
    "payment_fee_incl": "decimal",
    "payment_fee_taxes": [TAX_AMOUNT],
    "payment_fee_name": "str",
    "discount_excl": "decimal",
    "discount_incl": "decimal",
    "total_excl": "decimal",
    "total_incl": "decimal",
    "tax_lines": [TAX_AMOUNT],
    "is_company": "bool",
    "memo": "str",
}

ITEM = {
    "source_product_id": "str",
    "source_variant_id": "str",
    "sku": "str",
    "name": "str",
    "description": "str",
    "long_description": "str",
    "price_excl": "decimal",
    "price_incl": "decimal",
    "tax_rate": "decimal",
    "purchase_cost": "decimal",
    "quantity": "decimal",
    "track_stock": "bool",
    "ean": "str",
    "currency": "str",
    "category_path": "list",
    "options": "any",
    "attributes": "dict",
    "image_urls": "list",
    "active": "bool",
}

STOCK = {
    "source_variant_id": "str",
    "sku": "str",
    "stock_level": "decimal",
    "track_stock": "bool",
}

# The reverse direction: a QuickBooks sales document becomes a Lightspeed order, so its
# addresses and customer take Lightspeed's checkout shapes (street, number and extension
# apart; country alpha-2 in lower case). Money and structure (shipping and discount
# lines, voiding, payment status) are the flow's, not the mapping's.
CHECKOUT_ADDRESS = {
    "address1": "str",
    "number": "str",
    "extension": "str",
    "address2": "str",
    "zipcode": "str",
    "city": "str",
    "region": "str",
    "country": "str",
}

REVERSE_CUSTOMER = {
    "email": "str",
    "company_name": "str",
    "given_name": "str",
    "family_name": "str",
    "display_name": "str",
    "phone": "str",
}

REVERSE_LINE = {
    "sku": "str",
    "name": "str",
    "quantity": "decimal",
    "unit_price": "decimal",
    "amount": "decimal",
}

REVERSE_ORDER = {
    "doc_number": "str",
    "txn_date": "str",
    "currency": "str",
    "payment_method": "str",
    "memo": "str",
    "customer": REVERSE_CUSTOMER,
    "bill_addr": CHECKOUT_ADDRESS,
    "ship_addr": CHECKOUT_ADDRESS,
    "lines": [REVERSE_LINE],
}

#: flow → target tree
FLOW_TARGETS: dict[str, dict] = {
    "orders": ORDER,
    "products": ITEM,
    "customers": CUSTOMER,
    "stock": STOCK,
    "orders_reverse": REVERSE_ORDER,
}

FLOWS = tuple(FLOW_TARGETS)


def resolve_target(tree: dict, target: str):
    """The kind (``"str"``…), sub-tree (``dict``) or list-of-tree (``[dict]``) that a
    dotted ``target`` names in ``tree``; ``KeyError`` with the known names if none."""
    node: object = tree
    for segment in target.split("."):
        if not isinstance(node, dict) or segment not in node:
            known = ", ".join(sorted(node)) if isinstance(node, dict) else ""
            raise KeyError(f"unknown target field {target!r}" + (f" (known here: {known})" if known else ""))
        node = node[segment]
    return node
