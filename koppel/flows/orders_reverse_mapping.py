"""QuickBooks sales documents read as Lightspeed orders-to-be: pure functions, no I/O.

A QuickBooks ``SalesReceipt`` or ``Invoice`` (with its customer and the items its lines
book) becomes a *reverse order*, a JSON-safe dict the load step turns into a Lightspeed
checkout::

    {"entity", "doc_id", "doc_number", "txn_date", "currency", "total", "balance",
     "voided", "payment_status", "payment_method",
     "customer": {"qbo_id", "email", "company_name", "given_name", "family_name", "phone"},
     "bill_addr": {address1, number, extension, zipcode, city, region, country} | None,
     "ship_addr": ... | None,
     "lines": [{"index", "item_id", "sku", "name", "quantity", "unit_price", "amount"}],
     "shipping": "4.95", "discount": "0.00"}

Money stays ``Decimal`` while computed and travels as strings. Lines booked on the
tenant's shipping item become the order's shipping amount (Lightspeed prices shipping
through the checkout's shipment method); discount lines are reported, not rows.
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
_HOUSE_NUMBER = re.compile(r"^(?P<street>.*?\D)\s+(?P<number>\d+)\s*(?P<ext>[A-Za-z0-9\-/]{0,6})$")


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


def split_street(line: str | None) -> dict[str, str]:
    """``"Dorpsstraat 12a"`` → street, number and extension (Lightspeed keeps them apart)."""
    text = " ".join(str(line or "").split())
    match = _HOUSE_NUMBER.match(text)
    if not match:
        return {"address1": text, "number": "", "extension": ""}
    return {"address1": match["street"].strip().rstrip(","), "number": match["number"],
            "extension": match["ext"] or ""}


def address(addr: Mapping[str, Any] | None, field: str) -> dict[str, str] | None:
    """A QBO ``BillAddr``/``ShipAddr`` as a Lightspeed checkout address (country alpha-2,
    lower case as Lightspeed writes it), or ``None`` when the document has none."""
    from koppel.mapping.countries import country_code

    if not addr or not any(addr.get(k) for k in ("Line1", "City", "PostalCode")):
        return None
    country_text = str(addr.get("Country") or "").strip()
    country = country_code(country_text) if country_text else None
    if country_text and country is None:
        raise RecordError(f"unknown country {country_text!r}", field=f"{field}.Country")
    street = split_street(addr.get("Line1"))
    return {**street, "address2": str(addr.get("Line2") or ""),
            "zipcode": str(addr.get("PostalCode") or ""), "city": str(addr.get("City") or ""),
            "region": str(addr.get("CountrySubDivisionCode") or ""),
            "country": (country or "").lower()}


def _names(customer: Mapping[str, Any]) -> tuple[str, str]:
    """Given and family name; a customer with only a display name is split on its first
    space (Lightspeed checkouts require both names)."""
    given = " ".join(str(customer.get("GivenName") or "").split())
    family = " ".join(str(customer.get("FamilyName") or "").split())
    if given and family:
        return given, family
    display = " ".join(str(customer.get("DisplayName") or "").split())
    first, _, rest = display.partition(" ")
    return given or first, family or rest or first


def customer_of(doc: Mapping[str, Any], row: Mapping[str, Any] | None,
                default_email: str | None) -> dict[str, Any]:
    """The Lightspeed customer to find or create for this document: the QBO customer's
    e-mail (the document's ``BillEmail`` first), company name and contact person."""
    row = row or {}
    email = ((doc.get("BillEmail") or {}).get("Address")
             or (row.get("PrimaryEmailAddr") or {}).get("Address") or default_email or "")
    email = email.strip()
    if not email:
        raise RecordError("the QuickBooks customer has no e-mail address and the tenant has "
                          "no default customer e-mail (Lightspeed checkouts need one)",
                          field="BillEmail")
    company = " ".join(str(row.get("CompanyName") or "").split())
    given, family = _names(row) if row else ("", "")
    if not (given and family):
        raise RecordError("the QuickBooks customer has no name", field="CustomerRef")
    phone = (row.get("PrimaryPhone") or {}).get("FreeFormNumber") or ""
    return {"qbo_id": str(row.get("Id") or (doc.get("CustomerRef") or {}).get("value") or ""),
            "email": email, "company_name": company, "given_name": given,
            "family_name": family, "phone": str(phone)}


def reverse_order(entity: str, doc: Mapping[str, Any], *, customer: Mapping[str, Any] | None,
                  items: Mapping[str, Mapping[str, Any]], shipping_item: str | None,
                  default_email: str | None) -> dict[str, Any]:
    """The reverse order of one document (raises :class:`RecordError` naming the field)."""
    lines, shipping, discount = [], ZERO, ZERO
    shipping_key = (shipping_item or "").casefold()
    voided = is_voided(doc)
    for index, line in enumerate(doc.get("Line") or []):
        kind = line.get("DetailType")
        field = f"Line[{index}]"
        if kind == "DiscountLineDetail":
            discount += money(line.get("Amount"), f"{field}.Amount")
            continue
        if kind != "SalesItemLineDetail":
            continue  # sub-totals, descriptions, group headers
        detail = line.get("SalesItemLineDetail") or {}
        item_id = str((detail.get("ItemRef") or {}).get("value") or "")
        item = items.get(item_id) or {}
        amount = money(line.get("Amount"), f"{field}.Amount")
        if shipping_key and str(item.get("Name") or (detail.get("ItemRef") or {}).get("name")
                                or "").casefold() == shipping_key:
            shipping += amount
            continue
        quantity = _quantity(detail.get("Qty"), f"{field}.Qty", voided)
        if quantity is None:
            continue  # a voided document's zeroed line
        lines.append({"index": index, "item_id": item_id,
                      "sku": str(item.get("Sku") or "").strip(),
                      "name": str(item.get("Name") or (detail.get("ItemRef") or {}).get("name")
                                  or ""),
                      "quantity": quantity,
                      "unit_price": str(money(detail.get("UnitPrice"), f"{field}.UnitPrice")),
                      "amount": str(amount)})
    if not lines and not voided:
        raise RecordError("the document has no product lines", field="Line")
    bill = address(doc.get("BillAddr") or (customer or {}).get("BillAddr"), "BillAddr")
    ship = address(doc.get("ShipAddr") or (customer or {}).get("ShipAddr"), "ShipAddr")
    total = money(doc.get("TotalAmt"), "TotalAmt")
    return {
        "entity": entity, "doc_id": str(doc["Id"]), "doc_number": str(doc.get("DocNumber") or ""),
        "txn_date": str(doc.get("TxnDate") or ""),
        "currency": str((doc.get("CurrencyRef") or {}).get("value") or ""),
        "total": str(total), "balance": str(money(doc.get("Balance", total), "Balance")),
        "voided": voided, "payment_status": "cancelled" if voided else payment_status(entity, doc),
        "payment_method": str((doc.get("PaymentMethodRef") or {}).get("name") or ""),
        "customer": customer_of(doc, customer, default_email) if not voided else None,
        "bill_addr": bill, "ship_addr": ship, "lines": lines,
        "shipping": str(shipping), "discount": str(discount),
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
    keep["lines"] = [{k: line[k] for k in ("sku", "quantity", "amount")}
                     for line in order.get("lines", [])]
    return _hash(keep)


def trace_comment(order: Mapping[str, Any]) -> str:
    """The checkout comment: where the order came from (no personal data)."""
    number = f" {order['doc_number']}" if order.get("doc_number") else ""
    return f"QuickBooks {order['entity']}{number} (id {order['doc_id']}), created by koppel"


def metafield_value(order: Mapping[str, Any]) -> str:
    return f"{order['entity']}:{order['doc_id']}"


def checkout_payload(order: Mapping[str, Any], customer_id: int | None) -> dict[str, Any]:
    """``POST checkouts.json``: the known customer (``login``) or the person inline, the
    document's addresses (shipping falls back to billing) and koppel's trace comment."""
    person = order["customer"]
    payload: dict[str, Any] = {"comment": trace_comment(order)}
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
