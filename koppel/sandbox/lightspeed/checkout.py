"""Checkouts: the only way to create an order through the API (the reverse direction).

A checkout collects a customer (an existing one by id, or inline person data for a
guest; ``mode: "register"`` also creates the customer), a billing and a shipping address,
rows (variant and quantity), a shipment and a payment method. ``order.json`` turns a
valid checkout into a real order, priced exactly like seeded orders: the shop's rules
for shipping (free at home from €75), payment fees (``payment_methods.json`` shows the
fee each method would add to this checkout) and VAT (an EU company outside NL with a
VAT number, or an address outside the EU, is charged 0 %) apply.

Rows are priced at the catalogue: ``products.json`` takes a variant and a quantity only
(fields such as a price or a discount are ignored, as no Lightspeed source documents
one); ``shipment_methods.json`` and ``payment_methods.json`` list each method with what
it would add to *this* checkout. ``notifications`` (default ``true``) is copied to the
order's ``allowNotifications``; an order placed with it ``true`` counts as one whose
customer the shop e-mailed (``orders_notified`` of the checkout store; assumed, see
docs/vendor-facts.md section 8).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .errors import ApiError, invalid, not_found
from .money import VAT_HIGH, ZERO, excl_from_incl
from .pricing import RowSpec, build_row
from .seed import COUNTRIES, PAYMENT_METHODS, SHIPMENT_METHODS, vat_regime
from .store import EMAIL_RE, PERSON_FIELDS, ShopStore, parse_country

ADDRESS_KEYS = ("name", "company", "address1", "address2", "number", "extension", "zipcode",
                "city", "region", "country")
CUSTOMER_KEYS = ("email", "firstname", "middlename", "lastname", "phone", "mobile",
                 "companyName", "companyCoCNumber", "companyVatNumber")


def payment_methods(quotes: dict[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The methods with the fee each adds (``quotes``: a checkout's quote per method)."""
    out = []
    for pid, title in PAYMENT_METHODS:
        quote = (quotes or {}).get(pid) or {}
        out.append({"id": pid, "title": title,
                    "price_excl": float(quote.get("payment_price_excl", ZERO)),
                    "price_incl": float(quote.get("payment_price_incl", ZERO))})
    return out


def shipment_methods(quotes: dict[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The methods with the price each adds (``quotes``: a checkout's quote per method;
    without, the list price)."""
    out = []
    for sid, title, price, pickup in SHIPMENT_METHODS:
        quote = (quotes or {}).get(sid)
        incl = quote["shipment_price_incl"] if quote else price
        excl = quote["shipment_price_excl"] if quote else excl_from_incl(price, VAT_HIGH)
        out.append({"id": sid, "title": title, "price_incl": float(incl),
                    "price_excl": float(excl), "pickup": pickup})
    return out


class Checkouts:
    """Checkout operations on a :class:`ShopStore` (callers hold ``store.lock``)."""

    def __init__(self, store: ShopStore) -> None:
        self.store = store

    @property
    def orders_notified(self) -> list[int]:
        """Ids of the orders whose customer the shop e-mailed: placed from a checkout
        with ``notifications`` on."""
        return sorted(int(c["order_id"]) for c in self.store.checkouts.values()
                      if c["order_id"] and c["notifications"])

    # -- records ------------------------------------------------------------------------
    def get(self, checkout_id: int) -> dict[str, Any]:
        record = self.store.checkouts.get(checkout_id)
        if record is None:
            raise not_found()
        return record

    def create(self, data: dict[str, Any]) -> dict[str, Any]:
        now = self.store.clock.now()
        cid = self.store.ids.next("checkouts")
        record: dict[str, Any] = {
            "id": cid, "createdAt": now, "updatedAt": now, "mode": "guest",
            "customer": {}, "billing_address": {}, "shipping_address": {},
            "shipment_method": False, "payment_method": False, "products": [],
            "comment": "", "notifications": True, "order_id": False, "_customer_id": None,
            "_next_line": 1,
        }
        self.store.checkouts[cid] = record
        self._apply(record, data)
        return record

    def update(self, checkout_id: int, data: dict[str, Any]) -> dict[str, Any]:
        record = self.get(checkout_id)
        self._locked(record)
        self._apply(record, data)
        record["updatedAt"] = self.store.clock.now()
        return record

    def delete(self, checkout_id: int) -> None:
        self.get(checkout_id)
        del self.store.checkouts[checkout_id]

    @staticmethod
    def _locked(record: dict[str, Any]) -> None:
        if record["order_id"]:
            raise invalid({"checkout": ["This checkout has already been turned into an order."]})

    def _apply(self, record: dict[str, Any], data: dict[str, Any]) -> None:
        errors: dict[str, list[str]] = {}
        if "mode" in data:
            if data["mode"] not in ("guest", "register", "login"):
                errors["mode"] = ["Must be guest, register or login."]
            else:
                record["mode"] = data["mode"]
        customer = data.get("customer")
        if isinstance(customer, dict):
            if customer.get("id") is not None:
                found = self.store.customers.get(int(customer["id"]))
                if found is None:
                    errors["customer.id"] = ["Unknown customer."]
                else:
                    record["_customer_id"] = found["id"]
                    record["mode"] = "login"
                    record["customer"] = {k: found[k] for k in CUSTOMER_KEYS}
                    record["customer"]["id"] = found["id"]
            else:
                record["customer"].update({k: v for k, v in customer.items()
                                           if k in CUSTOMER_KEYS})
        for key in ("billing_address", "shipping_address"):
            if isinstance(data.get(key), dict):
                record[key].update({k: v for k, v in data[key].items() if k in ADDRESS_KEYS})
        for key, options in (("shipment_method", SHIPMENT_METHODS),
                             ("payment_method", PAYMENT_METHODS)):
            if key in data:
                wanted = data[key].get("id") if isinstance(data[key], dict) else data[key]
                match = next((o for o in options if o[0] == wanted), None)
                if match is None:
                    errors[key] = [f"Unknown {key.replace('_', ' ')} '{wanted}'."]
                else:
                    record[key] = {"id": match[0], "title": match[1]}
        if "comment" in data:
            record["comment"] = str(data["comment"])
        if "notifications" in data:
            if not isinstance(data["notifications"], bool):
                errors["notifications"] = ["Must be true or false."]
            else:
                record["notifications"] = data["notifications"]
        if errors:
            raise invalid(errors)

    # -- rows ---------------------------------------------------------------------------
    def add_product(self, checkout_id: int, data: dict[str, Any]) -> dict[str, Any]:
        record = self.get(checkout_id)
        self._locked(record)
        variant_id = data.get("variant_id", data.get("variant"))
        if isinstance(variant_id, dict):
            variant_id = variant_id.get("id")
        quantity = data.get("quantity", 1)
        errors = {}
        variant = self.store.variants.get(int(variant_id)) if str(variant_id).isdigit() else None
        if variant is None:
            errors["variant_id"] = [f"Unknown variant '{variant_id}'."]
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
            errors["quantity"] = ["Must be a whole number of at least 1."]
        if errors:
            raise invalid(errors)
        product = self.store.products[variant["product"].id]
        line = {"id": record["_next_line"], "product_id": product["id"],
                "variant_id": variant["id"], "title": product["title"],
                "variant": variant["title"], "sku": variant["sku"], "quantity": quantity,
                "price_incl": variant["priceIncl"], "price_excl": variant["priceExcl"],
                "tax_rate": variant["_tax_rate"]}
        record["_next_line"] += 1
        record["products"].append(line)
        record["updatedAt"] = self.store.clock.now()
        return line

    # -- validation and the order -------------------------------------------------------
    def validate(self, checkout_id: int) -> dict[str, list[str]]:
        record = self.get(checkout_id)
        errors: dict[str, list[str]] = {}
        customer = record["customer"]
        if not EMAIL_RE.match(str(customer.get("email", ""))):
            errors["customer.email"] = ["A valid e-mail address is required."]
        for key in ("firstname", "lastname"):
            if not customer.get(key):
                errors[f"customer.{key}"] = ["This field is required."]
        for kind in ("billing_address", "shipping_address"):
            address = record[kind] or (record["billing_address"]
                                       if kind == "shipping_address" else {})
            for key in ("address1", "zipcode", "city", "country"):
                if not address.get(key):
                    errors[f"{kind}.{key}"] = ["This field is required."]
            if address.get("country") and str(
                    address["country"] if not isinstance(address["country"], dict)
                    else address["country"].get("code", "")).lower() not in COUNTRIES:
                errors[f"{kind}.country"] = ["Unknown country."]
        if not record["products"]:
            errors["products"] = ["Add at least one product."]
        if not record["shipment_method"]:
            errors["shipment_method"] = ["Choose a shipment method."]
        if not record["payment_method"]:
            errors["payment_method"] = ["Choose a payment method."]
        return errors

    def place_order(self, checkout_id: int) -> dict[str, Any]:
        record = self.get(checkout_id)
        self._locked(record)
        errors = self.validate(checkout_id)
        if errors:
            raise invalid(errors)
        store = self.store
        now: datetime = store.clock.now()
        customer = store.customers.get(record["_customer_id"]) \
            if record["_customer_id"] else None
        if customer is None and record["mode"] == "register":
            customer = store.create_customer({**record["customer"],
                                              **self._address_fields(record)})
        person = self._person(record)
        specs = self._specs(record)
        shipment = next(o for o in SHIPMENT_METHODS if o[0] == record["shipment_method"]["id"])
        payment = next(o for o in PAYMENT_METHODS if o[0] == record["payment_method"]["id"])
        status = "processing_awaiting_shipment" if payment[0] == "afterpay" \
            else "processing_awaiting_payment"
        order = store._assemble(
            created=now, updated=now, person=person, customer=customer, specs=specs,
            status=status, payment=payment, payment_status="not_paid", shipment=shipment,
            shipment_status="not_shipped", discount=("amount", ZERO, "", ZERO),
            comment=record["comment"])
        order["allowNotifications"] = bool(record["notifications"])
        record["order_id"] = order["id"]
        record["updatedAt"] = now
        return order

    def _person(self, record: dict[str, Any]) -> dict[str, Any]:
        person = {k: "" for k in PERSON_FIELDS if not k.startswith("address")}
        person.pop("isConfirmed", None)
        person.update({k: record["customer"].get(k, "") for k in CUSTOMER_KEYS})
        person["isCompany"] = bool(person["companyName"])
        person.update(self._address_fields(record))
        return person

    def _specs(self, record: dict[str, Any]) -> list[RowSpec]:
        store = self.store
        return [store._spec(store.variants[line["variant_id"]],
                            store.products[line["product_id"]], line["quantity"])
                for line in record["products"]]

    @staticmethod
    def _address_fields(record: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for kind, prefix in (("billing_address", "addressBilling"),
                             ("shipping_address", "addressShipping")):
            address = record[kind] or record["billing_address"]
            out.update({
                f"{prefix}Name": address.get("name") or " ".join(
                    p for p in (record["customer"].get("firstname"),
                                record["customer"].get("middlename"),
                                record["customer"].get("lastname")) if p),
                f"{prefix}Street": address.get("address1", ""),
                f"{prefix}Street2": address.get("address2", ""),
                f"{prefix}Number": str(address.get("number", "")),
                f"{prefix}Extension": address.get("extension", ""),
                f"{prefix}Zipcode": address.get("zipcode", ""),
                f"{prefix}City": address.get("city", ""),
                f"{prefix}Region": address.get("region", ""),
                f"{prefix}Country": parse_country(address.get("country", "nl")),
            })
        out["addressShippingCompany"] = (record["shipping_address"] or {}).get("company", "")
        return out

    def quote(self, record: dict[str, Any], payment_id: str | None = None,
              shipment_id: str | None = None) -> dict[str, Any]:
        """Running totals of a checkout, computed exactly as the order will be (the
        shop's shipping, fee and VAT rules; ``payment_id``/``shipment_id`` price another
        method)."""
        store = self.store
        try:
            person = self._person(record)
        except ApiError:  # an unknown country: priced as a Dutch address until valid
            person = {"addressBillingCountry": dict(COUNTRIES["nl"]),
                      "addressShippingCountry": dict(COUNTRIES["nl"])}
        specs = self._specs(record)
        if vat_regime(person, store.settings.reverse_charge) != "domestic":
            specs = [store.gen.zero_rated(spec) for spec in specs]
        rows = [build_row(0, spec) for spec in specs]
        sid = shipment_id or (record["shipment_method"] or {}).get("id")
        shipment = next((o for o in SHIPMENT_METHODS if o[0] == sid), None)
        pid = payment_id or (record["payment_method"] or {}).get("id", "")
        order = {"addressShippingCountry": person["addressShippingCountry"],
                 "paymentId": pid}
        if shipment is None:  # no method chosen yet: no shipping
            order["_charges"] = {"shipping_incl": ZERO}
            shipment = SHIPMENT_METHODS[0]
        store._price(order, rows, shipment, ("amount", ZERO, "", ZERO))
        sub_incl = sum((r["priceIncl"] for r in rows), ZERO)
        sub_excl = sum((r["priceExcl"] for r in rows), ZERO)
        return {"products_price_excl": sub_excl, "products_price_incl": sub_incl,
                "shipment_price_excl": order["shipmentPriceExcl"],
                "shipment_price_incl": order["shipmentPriceIncl"],
                "payment_price_excl": order["paymentPriceExcl"],
                "payment_price_incl": order["paymentPriceIncl"],
                "price_excl": order["priceExcl"], "price_incl": order["priceIncl"],
                "tax_rates": order["taxRates"]}

    def payment_quotes(self, record: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return {pid: self.quote(record, pid) for pid, _ in PAYMENT_METHODS}

    def shipment_quotes(self, record: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return {method[0]: self.quote(record, shipment_id=method[0])
                for method in SHIPMENT_METHODS}
