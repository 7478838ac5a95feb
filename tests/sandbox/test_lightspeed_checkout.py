"""Creating orders through checkouts (the reverse direction)."""

from __future__ import annotations

import re
from decimal import Decimal

from lightspeed_fixtures import *  # noqa: F401,F403
from lightspeed_fixtures import dec

ADDRESS = {"name": "Eva de Boer", "address1": "Dorpsstraat", "number": "12",
           "extension": "B", "zipcode": "1234 AB", "city": "Utrecht", "country": "nl"}


def start(api, **extra) -> dict:
    body = {"checkout": {"mode": "guest",
                         "customer": {"email": "eva@example.nl", "firstname": "Eva",
                                      "lastname": "de Boer"},
                         "billing_address": ADDRESS, **extra}}
    response = api.post("checkouts.json", json=body)
    assert response.status_code == 201
    return response.json()["checkout"]


def test_checkout_to_order(api):
    variants = api.get("variants.json", params={"limit": 5}).json()["variants"]
    checkout = start(api)
    cid = checkout["id"]
    assert api.get(f"checkouts/{cid}/validate.json").json()["validated"] is False
    for variant, qty in ((variants[0], 2), (variants[1], 1)):
        added = api.post(f"checkouts/{cid}/products.json",
                         json={"product": {"variant_id": variant["id"], "quantity": qty}})
        assert added.status_code == 201
    payments = api.get(f"checkouts/{cid}/payment_methods.json").json()["payment_methods"]
    shipments = api.get(f"checkouts/{cid}/shipment_methods.json").json()["shipment_methods"]
    assert "ideal" in [p["id"] for p in payments]
    api.put(f"checkouts/{cid}.json", json={"checkout": {
        "payment_method": {"id": "ideal"}, "shipment_method": {"id": shipments[0]["id"]}}})
    assert api.get(f"checkouts/{cid}/validate.json").json() == {"validated": True, "errors": {}}

    placed = api.post(f"checkouts/{cid}/order.json")
    assert placed.status_code == 201
    order = placed.json()["order"]
    assert order["status"] == "processing_awaiting_payment"
    assert order["paymentTitle"] == "iDEAL" and order["customer"] is False
    assert order["addressBillingStreet"] == "Dorpsstraat"
    assert order["addressBillingNumber"] == "12" and order["addressBillingExtension"] == "B"
    assert order["addressShippingCity"] == "Utrecht"  # shipping defaults to billing
    rows = order["products"]["resource"]["embedded"]
    assert [(r["variant"]["resource"]["id"], r["quantityOrdered"]) for r in rows] == [
        (variants[0]["id"], 2), (variants[1]["id"], 1)]
    expected = sum((dec(v["priceIncl"]) * q for v, q in ((variants[0], 2), (variants[1], 1))),
                   Decimal(0))
    assert sum(dec(r["priceIncl"]) for r in rows) == expected
    assert dec(order["priceIncl"]) == expected + dec(order["shipmentPriceIncl"]) \
        + dec(order["paymentPriceIncl"])
    fee = next(p for p in payments if p["id"] == "ideal")["price_incl"]
    assert dec(order["paymentPriceIncl"]) == dec(fee)  # iDEAL: 0.29 under €50
    assert api.get(f"orders/{order['id']}.json").status_code == 200
    assert api.get("orders/count.json").json() == {"count": 61}
    assert api.post(f"checkouts/{cid}/order.json").status_code == 422  # only once


def test_checkout_for_existing_customer_and_register(api):
    customers = api.get("customers.json").json()["customers"]
    customer = next(c for c in customers  # the first seeded ones have no or a bad e-mail
                    if re.fullmatch(r"[^@\s]+@[^@\s]+\.[a-z]+", c["email"]))
    variant = api.get("variants.json", params={"limit": 1}).json()["variants"][0]
    checkout = api.post("checkouts.json", json={"checkout": {
        "customer": {"id": customer["id"]}, "billing_address": ADDRESS,
        "payment_method": "afterpay", "shipment_method": "core|pickup|store"}}
    ).json()["checkout"]
    api.post(f"checkouts/{checkout['id']}/products.json",
             json={"variant_id": variant["id"], "quantity": 1})
    order = api.post(f"checkouts/{checkout['id']}/order.json")
    assert order.status_code == 201, order.json()
    assert order.json()["order"]["customer"]["resource"]["id"] == customer["id"]

    registering = start(api, mode="register", payment_method="paypal",
                        shipment_method="core|dhl|parcel")
    api.post(f"checkouts/{registering['id']}/products.json",
             json={"variant_id": variant["id"], "quantity": 3})
    placed = api.post(f"checkouts/{registering['id']}/order.json").json()["order"]
    new_id = placed["customer"]["resource"]["id"]
    assert api.get(f"customers/{new_id}.json").json()["customer"]["email"] == "eva@example.nl"


def test_checkout_validation_and_crud(api):
    checkout = start(api)
    bad = api.post(f"checkouts/{checkout['id']}/products.json",
                   json={"variant_id": 1, "quantity": 0})
    assert bad.status_code == 422
    assert set(bad.json()["error"]["errors"]) == {"variant_id", "quantity"}
    refused = api.post(f"checkouts/{checkout['id']}/order.json")
    assert refused.status_code == 422
    assert {"products", "payment_method", "shipment_method"} <= set(
        refused.json()["error"]["errors"])
    assert api.get("checkouts/count.json").json() == {"count": 1}
    assert api.delete(f"checkouts/{checkout['id']}.json").status_code == 204
    assert api.get(f"checkouts/{checkout['id']}.json").status_code == 404


def test_rows_at_catalogue_price_methods_priced_for_the_checkout_and_notifications(api):
    """Rows take a variant and a quantity only (a price sent along is ignored: no
    Lightspeed source documents one), ``shipment_methods.json`` prices each method for
    this checkout (free at home from €75), the checkout carries its ``quote``, and
    ``notifications`` decides the order's ``allowNotifications`` (default on)."""
    variants = api.get("variants.json", params={"limit": 50}).json()["variants"]
    cheap = next(v for v in variants if dec(v["priceIncl"]) < Decimal("30"))
    dear = next(v for v in variants if dec(v["priceIncl"]) >= Decimal("75"))
    quiet = start(api, notifications=False)
    added = api.post(f"checkouts/{quiet['id']}/products.json", json={"product": {
        "variant_id": cheap["id"], "quantity": 2, "price_incl": "1.00",
        "special_price_incl": "1.00", "discount": "5.00"}}).json()["product"]
    assert dec(added["price_incl"]) == dec(cheap["priceIncl"]) and added["tax_rate"] > 0
    shipments = {m["id"]: dec(m["price_incl"]) for m in api.get(
        f"checkouts/{quiet['id']}/shipment_methods.json").json()["shipment_methods"]}
    assert shipments["core|postnl|standard"] == Decimal("4.95")
    assert shipments["core|pickup|store"] == Decimal("0")
    api.put(f"checkouts/{quiet['id']}.json", json={"checkout": {
        "shipment_method": {"id": "core|postnl|standard"}, "payment_method": {"id": "bancontact"}}})
    checkout = api.get(f"checkouts/{quiet['id']}.json").json()["checkout"]
    assert checkout["notifications"] is False
    quote = checkout["quote"]
    rows = dec(cheap["priceIncl"]) * 2
    assert (dec(quote["products_price_incl"]), dec(quote["shipment_price_incl"]),
            dec(quote["payment_price_incl"]), dec(quote["price_incl"])) == (
        rows, Decimal("4.95"), Decimal("0"), rows + Decimal("4.95"))
    order = api.post(f"checkouts/{quiet['id']}/order.json").json()["order"]
    assert dec(order["priceIncl"]) == rows + Decimal("4.95")
    assert order["allowNotifications"] is False

    loud = start(api)
    api.post(f"checkouts/{loud['id']}/products.json",
             json={"variant_id": dear["id"], "quantity": 1})
    shipments = {m["id"]: dec(m["price_incl"]) for m in api.get(
        f"checkouts/{loud['id']}/shipment_methods.json").json()["shipment_methods"]}
    assert shipments["core|postnl|standard"] == Decimal("0")  # free from €75 at home
    assert api.put(f"checkouts/{loud['id']}.json",
                   json={"checkout": {"notifications": "no"}}).status_code == 422
    api.put(f"checkouts/{loud['id']}.json", json={"checkout": {
        "shipment_method": {"id": "core|postnl|standard"}, "payment_method": {"id": "ideal"}}})
    order = api.post(f"checkouts/{loud['id']}/order.json").json()["order"]
    assert order["allowNotifications"] is True
    assert dec(order["shipmentPriceIncl"]) == Decimal("0")
