"""Contract tests: the emulated Lightspeed eCom API against Lightspeed's own documentation.

Lightspeed's developer pages (developers.lightspeedhq.com/ecom/endpoints/…, formerly
developers.seoshop.com/api/resources/…) are not in the stores this project can read, so
each test names the public client that transcribes them, and the vendor page that client
cites. Short names used in the docstrings:

* JAVA — Falkplan/lightspeedecom-api, ``com/lightspeedhq/ecom/LightspeedEComClient.java``
  and ``domain/*.java``: https://github.com/Falkplan/lightspeedecom-api (doc comments link
  the vendor page of each resource, e.g. http://developers.seoshop.com/api/resources/order).
* PHP — Lightspeed's official client, SEOshop/API-PHP-Client ``src/ApiClient.php`` and
  ``src/ApiResource*.php``: https://github.com/SEOshop/API-PHP-Client
* TAP — hotgluexyz/tap-lightspeed ``tap_lightspeed/streams.py`` (JSON types of every
  stream, checked against live shops) and ``client.py`` (paging, filters, errors):
  https://github.com/hotgluexyz/tap-lightspeed
* SDK — jessegall/php-lightspeed-sdk ``src/Resources/*.php``:
  https://github.com/jessegall/php-lightspeed-sdk

Each test sends the request as the source shows it and checks the documented envelope
(``{"orders": [...]}``, ``{"order": {...}}``, ``{"count": n}``), field names and JSON
types, references ``{"resource": {"id", "url", "link"}}`` and the error bodies and
rate-limit headers. Where the sandbox had to choose, ``docs/sandbox-fidelity.md`` (section
"Lightspeed eCom") lists the choice as **assumed**; tests of such choices say so.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from lightspeed_fixtures import *  # noqa: F401,F403

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")
LIMITS = re.compile(r"^\d+/\d+/\d+$")

# JSON kinds, as TAP declares them (``th.IntegerType`` …).
INT, NUM, STR, BOOL, TIME, REF, COUNTRY, RATES = (
    "integer", "number", "string", "boolean", "date-time", "resource", "country", "taxRates")
#: A reference that may be ``false`` (no related record, e.g. a guest order's customer):
#: TAP ``clean_values`` turns the ``false`` live shops send for such fields into null.
REF_OR_FALSE = "resource-or-false"
#: ``{"id", "code", ...}``: SDK ``Webhook.php`` ``getLanguage(): array``, JAVA
#: ``Webhook.language`` of type ``Language``.
LANGUAGE = "language"


def is_kind(value, kind: str) -> bool:
    if kind == INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == NUM:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == STR:
        return isinstance(value, str)
    if kind == BOOL:
        return isinstance(value, bool)
    if kind == TIME:
        return isinstance(value, str) and bool(ISO.match(value))
    if kind == REF:
        return is_reference(value)
    if kind == REF_OR_FALSE:
        return value is False or is_reference(value)
    if kind == LANGUAGE:
        return isinstance(value, dict) and is_kind(value.get("code"), STR)
    if kind == COUNTRY:
        return (isinstance(value, dict) and set(value) >= {"id", "code", "code3", "title"}
                and is_kind(value["id"], INT) and len(value["code"]) == 2
                and len(value["code3"]) == 3 and is_kind(value["title"], STR))
    if kind == RATES:
        return isinstance(value, list) and all(
            set(r) == {"name", "rate", "amount"} and is_kind(r["name"], STR)
            and is_kind(r["rate"], NUM) and is_kind(r["amount"], NUM) for r in value)
    raise AssertionError(f"unknown kind {kind}")


def is_reference(value) -> bool:
    """``{"resource": {"id", "url", "link"}}`` (JAVA ``domain/Resource.java``; TAP
    ``resources``); ``id`` is ``false`` for a collection link."""
    if not (isinstance(value, dict) and set(value) == {"resource"}):
        return False
    body = value["resource"]
    return (set(body) - {"embedded"} == {"id", "url", "link"}
            and (is_kind(body["id"], INT) or body["id"] is False)
            and isinstance(body["url"], str) and isinstance(body["link"], str)
            and (body["link"].endswith(".json") or ".json?" in body["link"]))


def assert_shape(record: dict, schema: dict[str, str], where: str) -> None:
    missing = sorted(set(schema) - set(record))
    assert not missing, f"{where}: missing documented fields {missing}"
    wrong = {f: record[f] for f, kind in schema.items() if not is_kind(record[f], kind)}
    assert not wrong, f"{where}: fields of the wrong JSON type {wrong}"


def ref_id(value) -> int:
    return value["resource"]["id"]


def link_of(api, url: str) -> str:
    return f"{str(api.base_url).rstrip('/')}/{url}.json"


# -- documented schemas (TAP streams.py unless said otherwise) --------------------------
ORDER = {
    "id": INT, "createdAt": TIME, "updatedAt": TIME, "number": STR, "status": STR,
    "channel": STR, "priceCost": NUM, "priceExcl": NUM, "priceIncl": NUM, "weight": INT,
    "volume": INT, "colli": INT, "email": STR, "firstname": STR, "middlename": STR,
    "lastname": STR, "phone": STR, "mobile": STR, "isCompany": BOOL, "companyName": STR,
    "companyCoCNumber": STR, "companyVatNumber": STR, "addressBillingName": STR,
    "addressBillingStreet": STR, "addressBillingStreet2": STR, "addressBillingNumber": STR,
    "addressBillingExtension": STR, "addressBillingZipcode": STR, "addressBillingCity": STR,
    "addressBillingRegion": STR, "addressBillingCountry": COUNTRY,
    "addressShippingName": STR, "addressShippingStreet": STR, "addressShippingZipcode": STR,
    "addressShippingCity": STR, "addressShippingCountry": COUNTRY, "paymentId": STR,
    "paymentStatus": STR, "paymentIsPost": BOOL, "paymentIsInvoiceExternal": BOOL,
    "paymentTaxRate": NUM, "paymentTaxRates": RATES, "paymentBasePriceExcl": NUM,
    "paymentBasePriceIncl": NUM, "paymentPriceExcl": NUM, "paymentPriceIncl": NUM,
    "paymentTitle": STR, "shipmentId": STR, "shipmentStatus": STR,
    "shipmentIsCashOnDelivery": BOOL, "shipmentIsPickup": BOOL, "shipmentTaxRate": NUM,
    "shipmentTaxRates": RATES, "shipmentBasePriceExcl": NUM, "shipmentBasePriceIncl": NUM,
    "shipmentPriceExcl": NUM, "shipmentPriceIncl": NUM, "shipmentDiscountExcl": NUM,
    "shipmentDiscountIncl": NUM, "shipmentTitle": STR, "taxRates": RATES,
    "isDiscounted": BOOL, "discountType": STR, "discountAmount": NUM,
    "discountPercentage": NUM, "discountCouponCode": STR, "isNewCustomer": BOOL,
    "comment": STR, "memo": STR, "customer": REF_OR_FALSE, "invoices": REF, "shipments": REF,
    "products": REF, "metafields": REF,
}
ORDER_PRODUCT = {
    "id": INT, "supplierTitle": STR, "brandTitle": STR, "productTitle": STR,
    "variantTitle": STR, "taxRate": NUM, "quantityOrdered": INT, "quantityInvoiced": INT,
    "quantityShipped": INT, "quantityRefunded": INT, "quantityReturned": INT,
    "articleCode": STR, "ean": STR, "sku": STR, "weight": INT, "volume": INT, "colli": INT,
    "priceCost": NUM, "basePriceExcl": NUM, "basePriceIncl": NUM, "priceExcl": NUM,
    "priceIncl": NUM, "discountExcl": NUM, "discountIncl": NUM, "product": REF,
    "variant": REF,
}
CUSTOMER = {
    "id": INT, "createdAt": TIME, "updatedAt": TIME, "lastOnlineAt": TIME,
    "isConfirmed": BOOL, "remoteIp": STR, "gender": STR, "nationalId": STR, "email": STR,
    "firstname": STR, "middlename": STR, "lastname": STR, "phone": STR, "mobile": STR,
    "isCompany": BOOL, "companyName": STR, "companyCoCNumber": STR, "companyVatNumber": STR,
    "addressBillingName": STR, "addressBillingStreet": STR, "addressBillingStreet2": STR,
    "addressBillingNumber": STR, "addressBillingExtension": STR,
    "addressBillingZipcode": STR, "addressBillingRegion": STR,
    "addressBillingCountry": COUNTRY, "addressShippingCompany": STR,
    "addressShippingName": STR, "addressShippingStreet": STR, "addressShippingStreet2": STR,
    "addressShippingNumber": STR, "addressShippingExtension": STR,
    "addressShippingZipcode": STR, "addressShippingCity": STR, "addressShippingRegion": STR,
    "addressShippingCountry": COUNTRY, "memo": STR, "doNotifyRegistered": BOOL,
    "doNotifyConfirmed": BOOL, "doNotifyPassword": BOOL,
}
PRODUCT = {
    "id": INT, "createdAt": TIME, "updatedAt": TIME, "isVisible": BOOL, "visibility": STR,
    "data01": STR, "data02": STR, "data03": STR, "url": STR, "title": STR, "fulltitle": STR,
    "description": STR, "content": STR, "images": REF, "variants": REF, "categories": REF,
    "attributes": REF,
}
VARIANT = {
    "id": INT, "createdAt": TIME, "updatedAt": TIME, "isDefault": BOOL, "sortOrder": INT,
    "articleCode": STR, "ean": STR, "sku": STR, "hs": STR, "unitPrice": NUM, "unitUnit": STR,
    "priceExcl": NUM, "priceIncl": NUM, "priceCost": NUM, "oldPriceExcl": NUM,
    "oldPriceIncl": NUM, "stockTracking": STR, "stockLevel": NUM, "stockAlert": NUM,
    "stockMinimum": NUM, "stockSold": NUM, "stockBuyMaximum": NUM, "weight": NUM,
    "volume": NUM, "colli": NUM, "title": STR, "taxType": STR, "product": REF,
}
CATEGORY = {
    "id": INT, "createdAt": TIME, "updatedAt": TIME, "isVisible": BOOL, "depth": INT,
    "type": STR, "sortOrder": INT, "url": STR, "title": STR, "fulltitle": STR,
    "description": STR, "content": STR, "children": REF, "products": REF,
}
CATEGORIES_PRODUCT = {"id": INT, "sortOrder": INT, "category": REF, "product": REF}
PRODUCT_IMAGE = {"id": INT, "sortOrder": INT, "createdAt": TIME, "extension": STR,
                 "size": INT, "title": STR, "thumb": STR, "src": STR}
SHIPMENT = {
    "id": INT, "createdAt": TIME, "updatedAt": TIME, "number": STR, "status": STR,
    "trackingCode": STR, "doNotifyShipped": BOOL, "doNotifyReadyForPickup": BOOL,
    "doNotifyTrackingCode": BOOL, "totalWeight": INT, "totalSizeX": INT, "totalSizeY": INT,
    "totalSizeZ": INT, "customer": REF_OR_FALSE, "order": REF, "products": REF, "metafields": REF,
    "events": REF,
}
METAFIELD = {"id": INT, "createdAt": TIME, "updatedAt": TIME, "key": STR, "value": STR}
RETURN = {"id": INT, "createdAt": TIME, "updatedAt": TIME, "status": STR, "orderId": INT,
          "customerId": INT, "numProducts": INT, "returnReason": STR,
          "customerComment": STR}
TAX = {"id": INT, "isDefault": BOOL, "rate": NUM, "title": STR}  # SDK Tax.php
WEBHOOK = {"id": INT, "createdAt": TIME, "updatedAt": TIME, "isActive": BOOL,  # JAVA
           "itemGroup": STR, "itemAction": STR, "language": LANGUAGE, "format": STR,
           "address": STR}


# -- errors, auth, language, rate limits ------------------------------------------------
def test_bad_credentials_answer_the_documented_error_body(ls_server, ls):
    """JAVA ``domain/LightspeedEComError.java`` (``@JsonRootName("error")``: ``code``,
    ``method``, ``request``, ``message``) and PHP ``ApiClient::handleResponseError`` (reads
    ``error.message``); HTTP Basic with key and secret: PHP ``ApiClient::getUrl``.
    The message text "Access denied." is from the reference notes (assumed)."""
    bad = httpx.get(f"{ls_server.url}/nl/orders.json", auth=(ls["api_key"], "0" * 32))
    assert bad.status_code == 401
    assert bad.json() == {"error": {"code": 401, "method": "GET",
                                    "request": "/nl/orders.json", "message": "Access denied."}}
    assert httpx.get(f"{ls_server.url}/nl/orders.json").status_code == 401


@pytest.mark.parametrize("path", [
    "orders/1.json", "orders/1/products.json", "customers/1.json", "products/1.json",
    "variants/1.json", "categories/1.json", "shipments/1.json", "webhooks/1.json",
    "returns/1.json", "taxes/1.json", "products/1/images.json"])
def test_unknown_record_is_404_in_the_error_envelope(api, path):
    """JAVA ``LightspeedEComError`` (the error envelope on every 4xx) and
    ``LightspeedEComErrorDecoder`` (any 400–599 carries it); SDK
    ``Exceptions/Lightspeed/ResourceNotFoundException`` (404 for a missing record). The
    text "Not found." is assumed."""
    response = api.get(path)
    assert response.status_code == 404
    assert response.json() == {"error": {"code": 404, "method": "GET",
                                         "request": f"/nl/{path}", "message": "Not found."}}


def test_unknown_language_is_404_unknown_or_inactive_language(api, ls_server):
    """TAP ``client.py`` ``validate_response``: a 404 whose text holds "Unknown or inactive
    language" means a bad shop language; PHP ``checkLoginCredentials`` (2-letter language)."""
    response = api.get(f"{ls_server.url}/xx/shop.json")
    assert response.status_code == 404
    assert response.json()["error"] == {"code": 404, "method": "GET",
                                        "request": "/xx/shop.json",
                                        "message": "Unknown or inactive language"}


def test_rate_limit_headers_on_every_response(control, api):
    """JAVA ``Limiter.update``: ``X-RateLimit-Limit``/``-Remaining``/``-Reset`` on every
    response, each three integers split by ``/`` (5 minutes/hour/day); the limits
    300/3000/12000 per key are from the reference notes (assumed)."""
    control.put("/_sandbox/ratelimit", json={"limit_5min": 300, "limit_hour": 3000,
                                             "limit_day": 12000, "clear": True})
    first, second = api.get("orders/count.json"), api.get("products/1.json")
    assert first.status_code == 200 and second.status_code == 404
    for response in (first, second):
        for header in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
            assert LIMITS.match(response.headers[header]), (header, response.headers[header])
    assert first.headers["X-RateLimit-Limit"] == "300/3000/12000"
    assert first.headers["X-RateLimit-Remaining"] == "299/2999/11999"
    assert second.headers["X-RateLimit-Remaining"] == "298/2998/11998"


def test_429_carries_the_error_body_and_the_reset_header(control, api):
    """JAVA ``LightspeedEComErrorDecoder``: a 429 has the error body and an
    ``X-RateLimit-Reset`` whose first value is the seconds to wait; TAP ``validate_response``
    reads ``Retry-After`` on a 429."""
    control.put("/_sandbox/ratelimit", json={"limit_5min": 2, "clear": True})
    assert [api.get("shop.json").status_code for _ in range(2)] == [200, 200]
    throttled = api.get("orders.json")
    assert throttled.status_code == 429
    assert throttled.json() == {"error": {"code": 429, "method": "GET",
                                          "request": "/nl/orders.json",
                                          "message": "Too many requests."}}
    reset = [int(v) for v in throttled.headers["X-RateLimit-Reset"].split("/")]
    assert 0 < reset[0] <= 300
    assert throttled.headers["X-RateLimit-Remaining"].startswith("0/")
    assert 1 <= int(throttled.headers["Retry-After"]) <= 300


def test_account_ratelimit_windows(control, api):
    """JAVA ``domain/AccountRatelimit.java`` (developers.seoshop.com/api/resources/
    accountratelimit): ``limit5Min``, ``limitHour``, ``limitDay``, each ``{limit,
    remaining, reset, resetTime}`` (ints, ``resetTime`` ISO 8601); SDK
    ``AccountRatelimit.php``. JAVA names the envelope ``accountRatelimit``; the sandbox
    answers ``ratelimit`` (a known deviation, listed in docs/sandbox-fidelity.md)."""
    control.put("/_sandbox/ratelimit", json={"limit_5min": 300, "limit_hour": 3000,
                                             "limit_day": 12000, "clear": True})
    body = api.get("account/ratelimit.json").json()
    assert list(body) == ["ratelimit"]
    windows = body["ratelimit"]
    assert list(windows) == ["limit5Min", "limitHour", "limitDay"]
    for window in windows.values():
        assert_shape(window, {"limit": INT, "remaining": INT, "reset": INT,
                              "resetTime": TIME}, "ratelimit")
    assert [w["limit"] for w in windows.values()] == [300, 3000, 12000]
    assert [w["remaining"] for w in windows.values()] == [299, 2999, 11999]


# -- paging and list filters ------------------------------------------------------------
def test_page_and_limit_default_50_max_250(api):
    """JAVA ``LightspeedEComClient``: ``DEFAULT_PAGE`` 1, ``DEFAULT_LIMIT`` 50,
    ``MAX_LIMIT`` 250; TAP pages with ``page`` and ``limit=250`` and stops at a short page.
    A limit above 250 is clamped (the sandbox's choice, assumed)."""
    everything = api.get("orders.json", params={"limit": 250}).json()["orders"]
    assert len(everything) == api.get("orders/count.json").json()["count"] == 60
    ids = [o["id"] for o in everything]
    assert ids == sorted(ids)
    assert [o["id"] for o in api.get("orders.json").json()["orders"]] == ids[:50]
    second = api.get("orders.json", params={"page": 2, "limit": 50}).json()["orders"]
    assert [o["id"] for o in second] == ids[50:]
    assert len(api.get("orders.json", params={"limit": 1000}).json()["orders"]) == 60


def test_updated_at_min_max_in_utc(api):
    """TAP ``client.py`` ``get_url_params``: ``updated_at_min`` (the replication filter)
    and ``updated_at_max`` as ``YYYY-MM-DD HH:MM:SS`` in UTC."""
    orders = api.get("orders.json", params={"limit": 250}).json()["orders"]
    stamps = sorted({datetime.fromisoformat(o["updatedAt"]) for o in orders})
    low, high = stamps[10], stamps[40]
    fmt = "%Y-%m-%d %H:%M:%S"
    found = api.get("orders.json", params={
        "limit": 250, "updated_at_min": low.astimezone(timezone.utc).strftime(fmt),
        "updated_at_max": high.astimezone(timezone.utc).strftime(fmt)}).json()["orders"]
    expected = [o["id"] for o in orders if low <= datetime.fromisoformat(o["updatedAt"]) <= high]
    assert [o["id"] for o in found] == expected and len(expected) >= 31


def test_assumed_filters_since_id_created_at_and_fields(api):
    """**Assumed** (no stored source documents them; koppel's hook pages windows by
    ``since_id``, the reconcile flow filters ``created_at``, the orders flow looks orders
    up by ``number``, the stock flow narrows with ``fields``): ``since_id`` keeps ids above
    it, ``created_at_min`` the orders created at or after it, ``number`` the order with
    that number, ``fields`` narrows each record to the named keys."""
    orders = api.get("orders.json", params={"limit": 250}).json()["orders"]
    after = api.get("orders.json", params={"since_id": orders[29]["id"], "limit": 250}
                    ).json()["orders"]
    assert [o["id"] for o in after] == [o["id"] for o in orders[30:]]
    moment = sorted(datetime.fromisoformat(o["createdAt"]) for o in orders)[45]
    created = api.get("orders.json", params={
        "limit": 250, "created_at_min": moment.astimezone(timezone.utc).strftime(
            "%Y-%m-%d %H:%M:%S")}).json()["orders"]
    assert [o["id"] for o in created] == [
        o["id"] for o in orders if datetime.fromisoformat(o["createdAt"]) >= moment]
    by_number = api.get("orders.json", params={"number": orders[7]["number"]}).json()
    assert [o["id"] for o in by_number["orders"]] == [orders[7]["id"]]
    narrow = api.get("orders.json", params={"fields": "id,status,shipmentStatus",
                                            "limit": 3}).json()["orders"]
    assert narrow == [{"id": o["id"], "status": o["status"],
                       "shipmentStatus": o["shipmentStatus"]} for o in orders[:3]]


def test_undocumented_status_filter_is_not_answered(api):
    """No stored source documents ``status`` on ``orders.json`` (JAVA ``getOrders``:
    "filters as 'customer', 'page' or 'limit'"), so the sandbox ignores it like any unknown
    parameter: the listing and the count are those of every order."""
    every = [o["id"] for o in api.get("orders.json", params={"limit": 250}).json()["orders"]]
    filtered = api.get("orders.json", params={"status": "cancelled", "limit": 250}).json()
    assert [o["id"] for o in filtered["orders"]] == every
    assert api.get("orders/count.json", params={"status": "cancelled"}).json() == {
        "count": len(every)}


# -- orders and their sub-resources -----------------------------------------------------
def test_orders_list_single_and_count(api):
    """http://developers.seoshop.com/api/resources/order via JAVA ``getOrders``/``Order``
    and TAP ``OrdersStream`` (field types; references as ``{"resource": {...}}``); PHP
    ``ApiResourceOrders`` ``get``/``count``. List answers do not embed the rows (TAP reads
    them per order from ``orders/{id}/products.json``)."""
    listed = api.get("orders.json", params={"limit": 5}).json()
    assert list(listed) == ["orders"] and len(listed["orders"]) == 5
    for order in listed["orders"]:
        assert_shape(order, ORDER, f"order {order['id']}")
        assert "embedded" not in order["products"]["resource"]
        assert order["products"]["resource"]["url"] == f"orders/{order['id']}/products"
        assert order["products"]["resource"]["link"] == link_of(
            api, f"orders/{order['id']}/products")
    first = listed["orders"][0]
    single = api.get(f"orders/{first['id']}.json").json()
    assert list(single) == ["order"]
    assert_shape(single["order"], ORDER, "order")
    assert single["order"]["number"] == first["number"]
    assert api.get("orders/count.json").json() == {"count": 60}


def test_orders_customer_filter(api):
    """JAVA ``getOrders``: "Retrieve a list of orders by customer … filters as 'customer'"
    (developers.seoshop.com/api/resources/order)."""
    every = api.get("orders.json", params={"limit": 250}).json()["orders"]
    customer = ref_id(next(o for o in every if o["customer"])["customer"])
    mine = api.get("orders.json", params={"customer": customer, "limit": 250}).json()["orders"]
    expected = [o["id"] for o in every if o["customer"] and ref_id(o["customer"]) == customer]
    assert [o["id"] for o in mine] == expected and expected
    assert api.get("orders/count.json", params={"customer": customer}).json() == {
        "count": len(expected)}


def test_order_rows(api):
    """TAP ``OrderLinesStream`` (``orders/{order_id}/products.json``, key
    ``orderProducts``; quantities integers); PHP ``ApiResourceOrdersProducts``
    ``get``/``count``."""
    order = api.get("orders.json", params={"limit": 1}).json()["orders"][0]
    rows = api.get(f"orders/{order['id']}/products.json").json()
    assert list(rows) == ["orderProducts"] and rows["orderProducts"]
    for row in rows["orderProducts"]:
        assert_shape(row, ORDER_PRODUCT, f"orderProduct {row['id']}")
    count = api.get(f"orders/{order['id']}/products/count.json").json()
    assert count == {"count": len(rows["orderProducts"])}
    row = rows["orderProducts"][0]
    single = api.get(f"orders/{order['id']}/products/{row['id']}.json").json()
    assert single == {"orderProduct": row}


def test_order_metafields_crud(api):
    """PHP ``ApiResourceOrdersMetafields`` (``create`` wraps ``{"orderMetafield": …}``;
    ``get``/``count``/``update``/``delete``); TAP ``OrderMetafieldsStream`` (key
    ``orderMetafields``: ``id``, ``createdAt``, ``updatedAt``, ``key``, ``value``)."""
    order_id = api.get("orders.json", params={"limit": 1}).json()["orders"][0]["id"]
    base = f"orders/{order_id}/metafields"
    created = api.post(f"{base}.json", json={"orderMetafield": {"key": "qbo_id",
                                                                "value": "123"}})
    assert created.status_code == 201
    field = created.json()["orderMetafield"]
    assert_shape(field, METAFIELD, "orderMetafield")
    assert (field["key"], field["value"]) == ("qbo_id", "123")
    assert api.get(f"{base}.json").json() == {"orderMetafields": [field]}
    assert api.get(f"{base}/count.json").json() == {"count": 1}
    updated = api.put(f"{base}/{field['id']}.json",
                      json={"orderMetafield": {"value": "456"}}).json()["orderMetafield"]
    assert (updated["id"], updated["value"]) == (field["id"], "456")
    assert api.delete(f"{base}/{field['id']}.json").status_code in (200, 204)
    assert api.get(f"{base}/count.json").json() == {"count": 0}


def test_shipments_and_the_order_filter(api):
    """PHP ``ApiResourceShipments`` (``get``/``count``/``update``); TAP
    ``ShipmentsLinesStream`` (``shipments.json?order={order_id}``, key ``shipments``, field
    types)."""
    listed = api.get("shipments.json", params={"limit": 250}).json()
    assert list(listed) == ["shipments"] and listed["shipments"]
    for shipment in listed["shipments"]:
        assert_shape(shipment, SHIPMENT, f"shipment {shipment['id']}")
    assert api.get("shipments/count.json").json() == {"count": len(listed["shipments"])}
    first = listed["shipments"][0]
    order_id = ref_id(first["order"])
    of_order = api.get("shipments.json", params={"order": order_id}).json()["shipments"]
    assert [s["id"] for s in of_order] == [
        s["id"] for s in listed["shipments"] if ref_id(s["order"]) == order_id]
    assert api.get(f"shipments/{first['id']}.json").json() == {"shipment": first}


def test_credit_and_returns(api):
    """PHP ``ApiResourceOrdersCredit::create`` (``POST orders/{id}/credit`` with
    ``{"credit": …}``) and ``ApiResourceReturns`` (``get``/``count``/``update``/
    ``delete``, wrapper ``return``); TAP ``ReturnsStream`` (key ``returns``; ``orderId``,
    ``customerId``, ``numProducts``, ``returnReason``, ``customerComment``,
    ``orderProducts [{id, quantity}]``). The credit's own fields are assumed."""
    returns = api.get("returns.json").json()
    assert list(returns) == ["returns"] and returns["returns"]
    for record in returns["returns"]:
        assert_shape(record, RETURN, f"return {record['id']}")
        assert record["orderProducts"] == [
            {"id": ref_id(p["orderProduct"]), "quantity": p["quantity"]}
            for p in record["products"]]
        assert record["numProducts"] == sum(p["quantity"] for p in record["orderProducts"])
        assert record["orderId"] == ref_id(record["order"])
    assert api.get("returns/count.json").json() == {"count": len(returns["returns"])}
    first = returns["returns"][0]
    assert api.get(f"returns/{first['id']}.json").json() == {"return": first}

    order = next(o for o in api.get("orders.json", params={"limit": 250}).json()["orders"]
                 if o["status"] == "completed_shipped")
    row = api.get(f"orders/{order['id']}/products.json").json()["orderProducts"][0]
    credited = api.post(f"orders/{order['id']}/credit.json", json={"credit": {
        "products": [{"id": row["id"], "quantity": 1}]}})
    assert credited.status_code == 201 and list(credited.json()) == ["credit"]
    assert ref_id(credited.json()["credit"]["order"]) == order["id"]
    after = api.get(f"orders/{order['id']}/products/{row['id']}.json").json()["orderProduct"]
    assert after["quantityRefunded"] == row["quantityRefunded"] + 1


# -- catalogue ---------------------------------------------------------------------------
def test_products_list_single_and_count(api):
    """http://developers.seoshop.com/api/resources/product via JAVA ``getProducts``
    ("filters as 'page', 'limit'"), ``getProduct``, ``getProductCount``; TAP
    ``ProductsStream`` field types. Missing objects (``brand``, ``supplier``, ``image``)
    come as ``false`` (TAP ``clean_values`` turns such ``false`` into null)."""
    listed = api.get("products.json", params={"limit": 250}).json()
    assert list(listed) == ["products"] and len(listed["products"]) == 40
    for product in listed["products"]:
        assert_shape(product, PRODUCT, f"product {product['id']}")
        assert product["brand"] is False or is_reference(product["brand"])
        assert product["image"] is False or is_kind(product["image"]["src"], STR)
        assert product["variants"]["resource"]["url"] == f"variants?product={product['id']}"
    first = listed["products"][0]
    assert api.get(f"products/{first['id']}.json").json() == {"product": first}
    assert api.get("products/count.json").json() == {"count": 40}


def test_variants_product_filter_and_stock_update(api):
    """http://developers.lightspeedhq.com/ecom/endpoints/variant/ via JAVA
    ``getVariants`` ("filters as 'product'") and ``getVariantCount``; TAP
    ``VariantsStream`` (``variants.json?product=…``, field types); the write wrapper
    ``{"variant": {...}}`` as PHP ``ApiResourceVariants::update`` sends it."""
    listed = api.get("variants.json", params={"limit": 250}).json()
    assert list(listed) == ["variants"]
    assert len(listed["variants"]) == api.get("variants/count.json").json()["count"]
    for variant in listed["variants"]:
        assert_shape(variant, VARIANT, f"variant {variant['id']}")
    product_id = ref_id(listed["variants"][0]["product"])
    of_product = api.get("variants.json", params={"product": product_id}).json()["variants"]
    assert [v["id"] for v in of_product] == [
        v["id"] for v in listed["variants"] if ref_id(v["product"]) == product_id]
    target = next(v for v in listed["variants"] if v["stockTracking"] == "enabled")
    updated = api.put(f"variants/{target['id']}.json",
                      json={"variant": {"stockLevel": 17}}).json()
    assert list(updated) == ["variant"] and updated["variant"]["stockLevel"] == 17
    assert api.get(f"variants/{target['id']}.json").json()["variant"]["stockLevel"] == 17


def test_categories_and_the_parent_filter(api):
    """http://developers.seoshop.com/api/resources/category via JAVA ``getCategories``
    ("filters as 'parent'"), ``getCategoryCount``, ``getCategory``; TAP
    ``CategoriesStream`` (``path`` an array of strings, ``parent`` a reference)."""
    listed = api.get("categories.json", params={"limit": 250}).json()
    assert list(listed) == ["categories"]
    for category in listed["categories"]:
        assert_shape(category, CATEGORY, f"category {category['id']}")
        assert all(isinstance(p, str) for p in category["path"])
        assert category["parent"] is False or is_reference(category["parent"])
    assert api.get("categories/count.json").json() == {"count": len(listed["categories"])}
    child = next(c for c in listed["categories"] if c["parent"])
    parent = ref_id(child["parent"])
    children = api.get("categories.json", params={"parent": parent}).json()["categories"]
    assert [c["id"] for c in children] == [
        c["id"] for c in listed["categories"] if c["parent"] and ref_id(c["parent"]) == parent]
    assert api.get(f"categories/{child['id']}.json").json() == {"category": child}


def test_categories_products_filters(api):
    """http://developers.seoshop.com/api/resources/categoriesproduct via JAVA
    ``getCategoriesProducts`` ("filters as 'page', 'limit', 'category', 'product'") and
    ``getCategoriesProductsCount`` (developers.lightspeedhq.com/ecom/endpoints/
    categoryproduct/); TAP ``CategoriesProductStream`` (key ``categoriesProducts``)."""
    listed = api.get("categories/products.json", params={"limit": 250}).json()
    assert list(listed) == ["categoriesProducts"] and listed["categoriesProducts"]
    links = listed["categoriesProducts"]
    for link in links:
        assert_shape(link, CATEGORIES_PRODUCT, f"categoriesProduct {link['id']}")
    assert api.get("categories/products/count.json").json() == {"count": len(links)}
    product = ref_id(links[0]["product"])
    category = ref_id(links[0]["category"])
    by_product = api.get("categories/products.json", params={"product": product}).json()
    assert [x["id"] for x in by_product["categoriesProducts"]] == [
        x["id"] for x in links if ref_id(x["product"]) == product]
    by_category = api.get("categories/products/count.json", params={"category": category})
    assert by_category.json() == {"count": sum(ref_id(x["category"]) == category
                                               for x in links)}


def test_product_images(api):
    """TAP ``ProductsImagesStream`` (``products/{product_id}/images.json``, key
    ``productImages``: ``id``, ``sortOrder``, ``createdAt``, ``extension``, ``size``,
    ``title``, ``thumb``, ``src``); PHP ``ApiResourceProductsImages``."""
    product = next(p for p in api.get("products.json", params={"limit": 250}).json()["products"]
                   if p["image"])
    images = api.get(f"products/{product['id']}/images.json").json()
    assert list(images) == ["productImages"] and images["productImages"]
    for image in images["productImages"]:
        assert_shape(image, PRODUCT_IMAGE, f"productImage {image['id']}")
    assert api.get(f"products/{product['id']}/images/count.json").json() == {
        "count": len(images["productImages"])}
    first = images["productImages"][0]
    assert api.get(f"products/{product['id']}/images/{first['id']}.json").json() == {
        "productImage": first}


def test_types_and_attributes(api):
    """JAVA ``getTypeAttributes`` ("filters as 'attribute'",
    developers.seoshop.com/api/resources/typesattribute) and ``domain/Type.java``,
    ``Attribute.java``: keys ``types``, ``attributes``, ``typesAttributes``."""
    types = api.get("types.json").json()
    attributes = api.get("attributes.json").json()
    assert list(types) == ["types"] and list(attributes) == ["attributes"]
    assert all(is_kind(t["id"], INT) and is_kind(t["title"], STR) for t in types["types"])
    links = api.get("types/attributes.json", params={"limit": 250}).json()["typesAttributes"]
    assert links
    attribute = ref_id(links[0]["attribute"])
    of_attribute = api.get("types/attributes.json", params={"attribute": attribute}).json()
    assert [x["id"] for x in of_attribute["typesAttributes"]] == [
        x["id"] for x in links if ref_id(x["attribute"]) == attribute]


# -- customers ---------------------------------------------------------------------------
def test_customers_crud_and_email_filter(api):
    """http://developers.lightspeedhq.com/ecom/endpoints/customer/ via JAVA
    ``createCustomer``, ``getCustomer``, ``getCustomers`` ("Find customer by email …
    filters as 'email'"), ``updateCustomer``, ``removeCustomer``; TAP ``CustomersStream``
    field types; PHP ``ApiResourceCustomers`` (wrapper ``customer``)."""
    listed = api.get("customers.json", params={"limit": 250}).json()
    assert list(listed) == ["customers"] and len(listed["customers"]) == 40
    for customer in listed["customers"]:
        assert_shape(customer, CUSTOMER, f"customer {customer['id']}")
    assert api.get("customers/count.json").json() == {"count": 40}
    created = api.post("customers.json", json={"customer": {
        "email": "contract@example.nl", "firstname": "Ada", "lastname": "Contract"}})
    assert created.status_code == 201
    customer = created.json()["customer"]
    assert_shape(customer, CUSTOMER, "created customer")
    found = api.get("customers.json", params={"email": "contract@example.nl"}).json()
    assert [c["id"] for c in found["customers"]] == [customer["id"]]
    updated = api.put(f"customers/{customer['id']}.json",
                      json={"customer": {"lastname": "Contracts"}}).json()
    assert updated["customer"]["lastname"] == "Contracts"
    assert api.delete(f"customers/{customer['id']}.json").status_code in (200, 204)
    assert api.get(f"customers/{customer['id']}.json").status_code == 404


# -- taxes, webhooks, shop ----------------------------------------------------------------
def test_taxes(api):
    """PHP ``ApiResourceTaxes`` (``get``/``count``, wrapper ``tax``); SDK ``Tax.php``
    (``isDefault``, ``rate``, ``title``)."""
    taxes = api.get("taxes.json").json()
    assert list(taxes) == ["taxes"] and taxes["taxes"]
    for tax in taxes["taxes"]:
        assert_shape(tax, TAX, f"tax {tax['id']}")
    assert [t["isDefault"] for t in taxes["taxes"]].count(True) == 1
    assert api.get("taxes/count.json").json() == {"count": len(taxes["taxes"])}
    first = taxes["taxes"][0]
    assert api.get(f"taxes/{first['id']}.json").json() == {"tax": first}


def test_webhooks_crud(api):
    """http://developers.seoshop.com/api/resources/webhook via JAVA ``createWebhook``,
    ``getWebhooks``, ``getWebhooksCount``, ``getWebhook``, ``updateWebhook``,
    ``deleteWebhook`` and ``domain/Webhook.java`` (``isActive``, ``itemGroup``
    ``orders``…, ``itemAction`` ``*|created|updated|deleted``, ``language``, ``format``
    ``json|xml``, ``address``)."""
    body = {"webhook": {"isActive": True, "itemGroup": "orders", "itemAction": "updated",
                        "language": "nl", "format": "json",
                        "address": "https://koppel.example/hooks/orders"}}
    created = api.post("webhooks.json", json=body)
    assert created.status_code == 201
    hook = created.json()["webhook"]
    assert_shape(hook, WEBHOOK, "webhook")
    sent = {k: v for k, v in body["webhook"].items() if k != "language"}
    assert {k: hook[k] for k in sent} == sent and hook["language"]["code"] == "nl"
    assert api.get("webhooks.json").json() == {"webhooks": [hook]}
    assert api.get("webhooks/count.json").json() == {"count": 1}
    changed = api.put(f"webhooks/{hook['id']}.json",
                      json={"webhook": {"isActive": False}}).json()["webhook"]
    assert (changed["id"], changed["isActive"]) == (hook["id"], False)
    assert api.get(f"webhooks/{hook['id']}.json").json()["webhook"]["isActive"] is False
    assert api.delete(f"webhooks/{hook['id']}.json").status_code in (200, 204)
    assert api.get("webhooks/count.json").json() == {"count": 0}


def test_shop_and_its_currency(api):
    """TAP ``ShopStream`` (``shop.json``, record at ``$.shop``: ``id``, ``createdAt``,
    ``mainDomain``, ``currency {shortcode, symbol, title, isDefault, currencyRate}``);
    PHP ``ApiResourceShop::get``. Orders carry no currency (TAP ``OrdersStream`` has
    none), so koppel reads ``currency.shortcode``."""
    shop = api.get("shop.json").json()
    assert list(shop) == ["shop"]
    assert_shape(shop["shop"], {"id": INT, "createdAt": TIME, "mainDomain": STR}, "shop")
    currency = shop["shop"]["currency"]
    assert set(currency) == {"shortcode", "symbol", "title", "isDefault", "currencyRate"}
    assert (currency["shortcode"], currency["symbol"], currency["isDefault"]) == (
        "EUR", "€", True)
    order = api.get("orders.json", params={"limit": 1}).json()["orders"][0]
    assert "currency" not in order


def test_references_link_to_the_json_of_the_record(api):
    """JAVA ``domain/Resource.java`` (``id``, ``url``, ``link``) and TAP ``resources``:
    ``url`` is relative (``customers/123``), ``link`` the absolute ``.json`` address in the
    request's language, and following it answers the record."""
    order = next(o for o in api.get("orders.json", params={"limit": 250}).json()["orders"]
                 if o["customer"])
    ref = order["customer"]["resource"]
    assert ref["url"] == f"customers/{ref['id']}"
    assert ref["link"] == link_of(api, f"customers/{ref['id']}")
    followed = api.get(ref["link"]).json()
    assert followed["customer"]["id"] == ref["id"]


def test_time_fields_are_iso_8601_with_offset(api):
    """JAVA ``LightspeedEComClient.DATETIME_FORMAT`` ``yyyy-MM-dd'T'HH:mm:ssZ`` and the
    ``Webhook`` examples (``2013-09-24T21:48:17+02:00``): seconds precision and an
    offset. The sandbox answers in UTC (``+00:00``; assumed)."""
    order = api.get("orders.json", params={"limit": 1}).json()["orders"][0]
    for key in ("createdAt", "updatedAt"):
        stamp = datetime.fromisoformat(order[key])
        assert ISO.match(order[key]) and stamp.utcoffset() == timedelta(0)
        assert stamp <= datetime.now(timezone.utc) + timedelta(days=1)
