"""QuickBooks sales documents read as Lightspeed orders-to-be: pure functions, no I/O.

A QuickBooks ``SalesReceipt`` or ``Invoice`` (with its customer and the items its lines
book) is first given to the tenant's ``orders_reverse`` mapping (:func:`mapping_source`:
the document plus ``_customer``, ``_bill``, ``_ship`` and ``_lines``; the shipped rules
are in ``koppel/mapping/default_mapping.json``), then the mapped fields become a
*reverse order* (:func:`reverse_order`), a JSON-safe dict the load step turns into a
Lightspeed checkout::

    {"entity", "doc_id", "doc_number", "txn_date", "currency", "total", "balance",
     "voided", "payment_status", "payment_method", "memo",
     "customer": {"qbo_id", "email", "company_name", "given_name", "family_name", "phone"},
     "bill_addr": {address1, number, extension, address2, zipcode, city, region,
                   country} | None,
     "ship_addr": ... | None,
     "lines": [{"index", "item_id", "sku", "name", "quantity", "unit_price", "amount"}],
     "shipping": "4.09", "fees": "0.00", "discount": "0.00",
     "basis": "incl" | "excl", "charges": {"shipping": "4.95", "fees": "0.00"},
     "vat": {"21": "5.12", ...}, "notify": false}

QuickBooks line ``Amount`` is always excl. VAT (``lines[].amount``, ``shipping``,
``fees``, ``discount``); a ``TaxInclusive`` document carries each line's gross in
``SalesItemLineDetail.TaxInclusiveAmt`` (``lines[].gross``). ``basis`` says which the
order is checked in: ``incl`` for a ``TaxInclusive`` document whose lines all carry
their gross (and for ``NotApplicable``, whose amounts have no VAT), else ``excl``;
``charges`` are shipping and fees in that basis. ``total`` is the document's
``TotalAmt`` and ``vat`` its ``TxnTaxDetail`` per rate. :func:`document_figures` turns them into the
:class:`~koppel.domain.verify.OrderFigures` the order Lightspeed places is checked against.

The mapping decides the fields (where the e-mail, names, addresses, line names and SKUs
come from); this module keeps the structure: which lines are products, shipping or
discount, voiding, payment status and the checks Lightspeed needs (an e-mail, both
names, whole quantities). Money stays ``Decimal`` while computed and travels as strings.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any, Mapping

from koppel.flows.base import RecordError

ENTITY_OF = {"sales_receipt": "SalesReceipt", "invoice": "Invoice"}
SOURCE_TYPES = {"SalesReceipt": "qbo:SalesReceipt", "Invoice": "qbo:Invoice"}
ZERO = Decimal("0")
CENT = Decimal("0.01")

# koppel's own trace on documents it booked from Lightspeed (qbo_payloads._trace_note)
_TRACE = re.compile(r"^Lightspeed order \S+ \(id \d+\)")


def money(value: Any, field: str) -> Decimal:
    if value in (None, ""):
        return ZERO
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise RecordError(f"not an amount ({value!r})", field=field) from None


def has_koppel_trace(doc: Mapping[str, Any]) -> bool:
    """Whether the document's private note says koppel booked it from a Lightspeed order."""
    return bool(_TRACE.match(str(doc.get("PrivateNote") or "")))


def is_voided(doc: Mapping[str, Any]) -> bool:
    """QuickBooks keeps a voided document with zero amounts and the note "Voided"."""
    note = str(doc.get("PrivateNote") or "").strip().lower()
    return note.startswith("voided") and money(doc.get("TotalAmt"), "TotalAmt") == ZERO


def payment_status(entity: str, doc: Mapping[str, Any]) -> str:
    """Lightspeed payment status that follows the document: a sales receipt is paid; an
    invoice is paid when its balance is zero, partially paid when some is paid."""
    if entity == "SalesReceipt":
        return "paid"
    total = money(doc.get("TotalAmt"), "TotalAmt")
    balance = money(doc.get("Balance", total), "Balance")
    if balance <= ZERO:
        return "paid"
    if balance < total:
        return "partially_paid"
    return "not_paid"


def _has_address(addr: Mapping[str, Any] | None) -> bool:
    return bool(addr) and any((addr or {}).get(k) for k in ("Line1", "City", "PostalCode"))


def _gross(line: Mapping[str, Any]) -> Any:
    return (line.get("SalesItemLineDetail") or {}).get("TaxInclusiveAmt")


def basis_of(doc: Mapping[str, Any]) -> str:
    """``incl`` or ``excl``: the terms the document's line amounts can be compared in."""
    mode = doc.get("GlobalTaxCalculation")
    if mode == "NotApplicable":
        return "incl"
    items = [line for line in doc.get("Line") or []
             if line.get("DetailType") == "SalesItemLineDetail"]
    if mode == "TaxInclusive" and items and all(_gross(line) not in (None, "", 0, "0")
                                                for line in items):
        return "incl"
    return "excl"


def split_lines(doc: Mapping[str, Any], items: Mapping[str, Mapping[str, Any]],
                shipping_item: str | None, fee_item: str | None = None, *,
                gross: bool = False) -> tuple[list[tuple[int, dict]], Decimal, Decimal, Decimal]:
    """The document's product lines (``(index, line)``) and its shipping, payment-fee and
    discount amounts: lines on the tenant's shipping item are shipping (Lightspeed prices
    it through the checkout's shipment method), lines on its payment-fee item a fee
    (the checkout's payment method), discount lines a discount; sub-totals,
    descriptions and group headers are none of these. ``gross``: shipping and fees as
    the lines' ``TaxInclusiveAmt``, else their ``Amount``."""
    lines, shipping, fees, discount = [], ZERO, ZERO, ZERO
    shipping_key = (shipping_item or "").casefold()
    fee_key = (fee_item or "").casefold()
    for index, line in enumerate(doc.get("Line") or []):
        kind = line.get("DetailType")
        if kind == "DiscountLineDetail":
            discount += money(line.get("Amount"), f"Line[{index}].Amount")
            continue
        if kind != "SalesItemLineDetail":
            continue
        ref = (line.get("SalesItemLineDetail") or {}).get("ItemRef") or {}
        item = items.get(str(ref.get("value") or "")) or {}
        name = str(item.get("Name") or ref.get("name") or "").casefold()
        value = (money(_gross(line), f"Line[{index}].SalesItemLineDetail.TaxInclusiveAmt")
                 if gross else money(line.get("Amount"), f"Line[{index}].Amount"))
        if shipping_key and name == shipping_key:
            shipping += value
            continue
        if fee_key and name == fee_key:
            fees += value
            continue
        lines.append((index, line))
    return lines, shipping, fees, discount


def product_lines(doc: Mapping[str, Any], items: Mapping[str, Mapping[str, Any]],
                  shipping_item: str | None, fee_item: str | None = None
                  ) -> tuple[list[tuple[int, dict]], Decimal, Decimal]:
    """The product lines, shipping and discount of :func:`split_lines` (fees left out)."""
    lines, shipping, _fees, discount = split_lines(doc, items, shipping_item, fee_item)
    return lines, shipping, discount


def mapping_source(doc: Mapping[str, Any], *, customer: Mapping[str, Any] | None,
                   items: Mapping[str, Mapping[str, Any]],
                   shipping_item: str | None, fee_item: str | None = None) -> dict[str, Any]:
    """The document as the tenant's ``orders_reverse`` mapping reads it: ``_customer``
    (its QuickBooks customer), ``_bill``/``_ship`` (the document's address, else the
    customer's) and ``_lines`` (the product lines, each with ``_item``)."""
    customer = dict(customer or {})
    lines, _shipping, _discount = product_lines(doc, items, shipping_item, fee_item)

    def item_of(line):
        ref = (line.get("SalesItemLineDetail") or {}).get("ItemRef") or {}
        return dict(items.get(str(ref.get("value") or "")) or {})

    bill = doc.get("BillAddr") if _has_address(doc.get("BillAddr")) else customer.get("BillAddr")
    ship = doc.get("ShipAddr") if _has_address(doc.get("ShipAddr")) else customer.get("ShipAddr")
    return {**doc, "_customer": customer,
            "_bill": dict(bill) if _has_address(bill) else {},
            "_ship": dict(ship) if _has_address(ship) else {},
            "_lines": [{**line, "_item": item_of(line)} for _index, line in lines]}


def _address(mapped: Mapping[str, Any] | None) -> dict[str, str] | None:
    """A mapped address as a Lightspeed checkout address, ``None`` when it is empty."""
    mapped = mapped or {}
    if not any(mapped.get(k) for k in ("address1", "number", "zipcode", "city")):
        return None
    return {key: str(mapped.get(key) or "") for key in
            ("address1", "number", "extension", "address2", "zipcode", "city", "region",
             "country")}


def _names(person: Mapping[str, Any]) -> tuple[str, str]:
    """Given and family name; a customer with only a display name is split on its first
    space (Lightspeed checkouts require both names)."""
    given = " ".join(str(person.get("given_name") or "").split())
    family = " ".join(str(person.get("family_name") or "").split())
    if given and family:
        return given, family
    display = " ".join(str(person.get("display_name") or "").split())
    first, _, rest = display.partition(" ")
    return given or first, family or rest or first


def customer_of(doc: Mapping[str, Any], mapped: Mapping[str, Any] | None,
                row: Mapping[str, Any] | None, default_email: str | None) -> dict[str, Any]:
    """The Lightspeed customer to find or create for this document, from the mapped
    customer (default mapping: the document's ``BillEmail`` first, then the QuickBooks
    customer's e-mail, company name and contact person)."""
    mapped = mapped or {}
    email = str(mapped.get("email") or default_email or "").strip()
    if not email:
        raise RecordError("the QuickBooks customer has no usable e-mail address and the "
                          "tenant has no default customer e-mail (Lightspeed checkouts need "
                          "one)", field="customer.email")
    given, family = _names(mapped)
    if not (given and family):
        raise RecordError("the QuickBooks customer has no name", field="customer.given_name")
    return {"qbo_id": str((row or {}).get("Id") or (doc.get("CustomerRef") or {}).get("value")
                          or ""),
            "email": email, "company_name": str(mapped.get("company_name") or ""),
            "given_name": given, "family_name": family, "phone": str(mapped.get("phone") or "")}


def reverse_order(entity: str, doc: Mapping[str, Any], mapped: Mapping[str, Any], *,
                  customer: Mapping[str, Any] | None, items: Mapping[str, Mapping[str, Any]],
                  shipping_item: str | None, default_email: str | None,
                  fee_item: str | None = None, notify: bool = False) -> dict[str, Any]:
    """The reverse order of one document from its mapped fields (``mapped``: the tenant's
    ``orders_reverse`` mapping applied to :func:`mapping_source`); raises
    :class:`RecordError` naming the field. ``notify``: whether Lightspeed may e-mail the
    customer about the order (the tenant's choice; koppel's default is no)."""
    from koppel.domain.verify import booked_figures

    voided = is_voided(doc)
    basis = basis_of(doc)
    product, shipping, fees, discount = split_lines(doc, items, shipping_item, fee_item)
    _p, ship_charged, fees_charged, _d = split_lines(
        doc, items, shipping_item, fee_item,
        gross=basis == "incl" and doc.get("GlobalTaxCalculation") == "TaxInclusive")
    mapped_lines = list(mapped.get("lines") or [])
    lines = []
    for position, (index, line) in enumerate(product):
        values = mapped_lines[position] if position < len(mapped_lines) else {}
        field = f"Line[{index}]"
        quantity = _quantity(values.get("quantity"), f"{field}.Qty", voided)
        if quantity is None:
            continue  # a voided document's zeroed line
        ref = (line.get("SalesItemLineDetail") or {}).get("ItemRef") or {}
        entry = {"index": index, "item_id": str(ref.get("value") or ""),
                 "sku": str(values.get("sku") or "").strip(),
                 "name": str(values.get("name") or ""),
                 "quantity": quantity,
                 "unit_price": str(money(values.get("unit_price"), f"{field}.UnitPrice")),
                 "amount": str(money(values.get("amount"), f"{field}.Amount"))}
        if basis == "incl" and _gross(line) not in (None, ""):
            entry["gross"] = str(money(_gross(line), f"{field}.TaxInclusiveAmt"))
        lines.append(entry)
    if not lines and not voided:
        raise RecordError("the document has no product lines", field="Line")
    total = money(doc.get("TotalAmt"), "TotalAmt")
    return {
        "entity": entity, "doc_id": str(doc["Id"]),
        "doc_number": str(mapped.get("doc_number") or ""),
        "txn_date": str(mapped.get("txn_date") or ""),
        "currency": str(mapped.get("currency") or ""),
        "total": str(total), "balance": str(money(doc.get("Balance", total), "Balance")),
        "voided": voided, "payment_status": "cancelled" if voided else payment_status(entity, doc),
        "payment_method": str(mapped.get("payment_method") or ""),
        "memo": str(mapped.get("memo") or ""),
        "customer": customer_of(doc, mapped.get("customer"), customer, default_email)
        if not voided else None,
        "bill_addr": _address(mapped.get("bill_addr")),
        "ship_addr": _address(mapped.get("ship_addr")),
        "lines": lines, "shipping": str(shipping), "fees": str(fees),
        "discount": str(abs(discount)),
        "basis": basis,
        "charges": {"shipping": str(ship_charged), "fees": str(fees_charged)},
        "vat": {k: str(v) for k, v in booked_figures(doc).vat.items() if v != ZERO},
        "notify": bool(notify),
    }


def _quantity(value: Any, field: str, voided: bool) -> int | None:
    qty = money(value if value not in (None, "") else 1, field)
    if qty == ZERO and voided:
        return None
    if qty <= ZERO or qty != qty.to_integral_value():
        raise RecordError(f"quantity {qty} is not a whole number of at least 1 (Lightspeed "
                          "order rows count whole units)", field=field)
    return int(qty)


def content_hash(order: Mapping[str, Any]) -> str:
    """What the Lightspeed order was made of: customer, addresses, lines and amounts (the
    payment state and voiding are followed separately)."""
    from koppel.domain.hashing import content_hash as _hash

    keep = {k: order.get(k) for k in ("entity", "doc_number", "customer", "bill_addr",
                                      "ship_addr", "shipping", "discount")}
    if order.get("fees") not in (None, "0", "0.00"):  # hashes of fee-less orders unchanged
        keep["fees"] = order["fees"]
    keep["lines"] = [{k: line[k] for k in ("sku", "quantity", "amount")}
                     for line in order.get("lines", [])]
    return _hash(keep)


def document_figures(order: Mapping[str, Any], skus: list[str] | None = None):
    """What the Lightspeed order must carry, from the reverse order: each product line
    (``skus``: the SKU each line resolved to in the shop, else the line's own), shipping,
    payment fees, discount, total and VAT per rate, in the document's tax basis."""
    from koppel.domain.verify import OrderFigures

    lines = order["lines"]
    names = skus if skus is not None else [line["sku"] for line in lines]
    basis = order.get("basis") or "excl"
    charges = order.get("charges") or {"shipping": order.get("shipping"),
                                       "fees": order.get("fees")}
    return OrderFigures(
        basis=basis,
        rows=tuple((str(sku), int(line["quantity"]),
                    Decimal(line["gross"] if basis == "incl" and line.get("gross")
                            else line["amount"]))
                   for sku, line in zip(names, lines)),
        shipping=Decimal(charges.get("shipping") or "0"),
        fees=Decimal(charges.get("fees") or "0"),
        discount=Decimal(order.get("discount") or "0"), total=Decimal(order["total"]),
        vat={k: Decimal(v) for k, v in (order.get("vat") or {}).items()},
        currency=None)


def trace_comment(order: Mapping[str, Any]) -> str:
    """The checkout comment: where the order came from (no personal data)."""
    number = f" {order['doc_number']}" if order.get("doc_number") else ""
    return f"QuickBooks {order['entity']}{number} (id {order['doc_id']}), created by koppel"


def metafield_value(order: Mapping[str, Any]) -> str:
    return f"{order['entity']}:{order['doc_id']}"


def checkout_payload(order: Mapping[str, Any], customer_id: int | None) -> dict[str, Any]:
    """``POST checkouts.json``: the known customer (``login``) or the person inline, the
    document's addresses (shipping falls back to billing) and koppel's trace comment,
    followed by the document's mapped memo (the customer's message) if any."""
    person = order["customer"]
    memo = str(order.get("memo") or "").strip()
    payload: dict[str, Any] = {"comment": trace_comment(order) + (f"\n{memo}" if memo else ""),
                               # no e-mail to the customer unless the tenant asks for it
                               "notifications": bool(order.get("notify"))}
    if customer_id is not None:
        payload["mode"] = "login"
        payload["customer"] = {"id": int(customer_id)}
    else:
        payload["mode"] = "guest"
        payload["customer"] = {"email": person["email"], "firstname": person["given_name"],
                               "lastname": person["family_name"], "phone": person["phone"],
                               "companyName": person["company_name"]}
    name = " ".join(p for p in (person["given_name"], person["family_name"]) if p)
    bill = order.get("bill_addr")
    if bill:
        payload["billing_address"] = {**bill, "name": name, "company": person["company_name"]}
    ship = order.get("ship_addr") or bill
    if ship:
        payload["shipping_address"] = {**ship, "name": name, "company": person["company_name"]}
    return payload


def lightspeed_customer(order: Mapping[str, Any]) -> dict[str, Any]:
    """``POST customers.json`` for a new customer: a company with its contact person when
    the QBO customer has a company name, else a person."""
    person = order["customer"]
    fields: dict[str, Any] = {"email": person["email"], "firstname": person["given_name"],
                              "lastname": person["family_name"]}
    if person["phone"]:
        fields["phone"] = person["phone"]
    if person["company_name"]:
        fields.update(isCompany=True, companyName=person["company_name"])
    else:
        fields["isCompany"] = False
    return fields
