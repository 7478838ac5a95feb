"""The canonical record fields a mapping may fill, per flow, with their value kinds.

Forward flows: derived from the canonical records of ``koppel.domain.records`` (the one
place a field is declared): the mapper outputs plain dicts with exactly these names and
the domain validates them into its models. Adding a mapping field is adding it to the
record model (and to the default mapping). Nested records are written as dotted targets
in a mapping (``customer.email``, ``bill_addr.line1``); order rows are the ``lines`` list.

Kinds: ``str`` (empty → ``None``, scalars → text), ``decimal``, ``int``, ``bool``,
``datetime``, ``list``, ``dict``, ``any`` (as mapped). The mapper coerces each mapped
value to its kind, so a bad value is a per-field mapping error rather than a failure
later on. A model field whose validator accepts several shapes says so with
``json_schema_extra={"mapping_kind": "any"}``.
"""

from __future__ import annotations

import datetime as _dt
import decimal as _decimal
import types as _types
import typing as _typing
from typing import Any

from pydantic import BaseModel

from koppel.domain.records import MappedCustomer, MappedItem, MappedOrder, MappedStock

_SCALARS = {str: "str", _decimal.Decimal: "decimal", int: "int", bool: "bool",
            _dt.datetime: "datetime", dict: "dict", list: "list", Any: "any"}


def _kind(annotation: Any) -> Any:
    origin = _typing.get_origin(annotation)
    args = [a for a in _typing.get_args(annotation) if a is not type(None)]
    if origin in (_typing.Union, _types.UnionType):
        return _kind(args[0]) if len(args) == 1 else "any"
    if origin is list:
        inner = args[0] if args else None
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            return [model_tree(inner)]
        return "list"
    if origin is dict:
        return "dict"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return model_tree(annotation)
    if annotation in _SCALARS:
        return _SCALARS[annotation]
    raise TypeError(f"no mapping kind for {annotation!r}")


def model_tree(model: type[BaseModel]) -> dict[str, Any]:
    """``{field: kind | sub-tree | [sub-tree]}`` of a canonical record model."""
    tree: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        tree[name] = extra.get("mapping_kind") or _kind(info.annotation)
    return tree


CUSTOMER = model_tree(MappedCustomer)
ORDER = model_tree(MappedOrder)
ITEM = model_tree(MappedItem)
STOCK = model_tree(MappedStock)

# The reverse direction: a QuickBooks sales document becomes a Lightspeed order, so its
# addresses and customer take Lightspeed's checkout shapes (street, number and extension
# apart; country alpha-2 in lower case). Money and structure (shipping and discount
# lines, voiding, payment status) are the flow's, not the mapping's; there is no
# canonical record model for it (the checkout is built in orders_reverse_mapping), so
# its targets are declared here.
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
