"""The emulated Lightspeed eCom API over real HTTP: envelopes, references, quirks,
auth, paging, filters and writes."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import httpx

from lightspeed_fixtures import *  # noqa: F401,F403
from lightspeed_fixtures import dec

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$")


def all_pages(api, resource: str, key: str, limit: int = 7, **params) -> list[dict]:
    out, page = [], 1
    while True:
        batch = api.get(f"{resource}.json", params={"page": page, "limit": limit, **params}
                        ).json()[key]
        out.extend(batch)
        if len(batch) < limit:
            return out
        page += 1


# -- auth, language, errors -------------------------------------------------------------
def test_bad_credentials_get_lightspeeds_401_body(ls_server, ls):
    bad = httpx.get(f"{ls_server.url}/nl/orders.json", auth=(ls["api_key"], "x" * 32))
    assert bad.status_code == 401
    assert bad.json() == {"error": {"code": 401, "method": "GET",
                                    "request": "/nl/orders.json", "message": "Access denied."}}
    assert httpx.get(f"{ls_server.url}/nl/orders.json").status_code == 401


def test_credentials_are_32_characters_and_follow_the_seed(ls):
    assert len(ls["api_key"]) == 32 and len(ls["api_secret"]) == 32
    assert ls["api_key"] != ls["api_secret"] and ls["language"] == "nl"


def test_unknown_language_is_404(api, ls_server):
    response = api.get(f"{ls_server.url}/xx/orders.json")
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "Unknown or inactive language"
    assert api.get(f"{ls_server.url}/en/orders/count.json").status_code == 200


def test_unknown_record_uses_error_envelope(api):
    response = api.get("orders/1.json")
    assert response.status_code == 404
    assert response.json()["error"] == {"code": 404, "method": "GET",
                                        "request": "/nl/orders/1.json",
                                        "message": "Not found."}


# -- envelopes, references and quirks -------------------------------------------------
def test_list_single_and_count_envelopes(api, ls_server):
    orders = api.get("orders.json").json()["orders"]
    assert len(orders) == 50  # default page size
    assert api.get("orders/count.json").json() == {"count": 60}
    first = orders[0]
    assert first["number"] == "ORD00001" and isinstance(first["number"], str)
    assert TIMESTAMP.match(first["createdAt"]) and TIMESTAMP.match(first["updatedAt"])
    assert "currency" not in first
    # lists reference rows without embedding them
    assert "embedded" not in first["products"]["resource"]
    single = api.get(f"orders/{first['id']}.json").json()["order"]
    rows = single["products"]["resource"]["embedded"]
    assert rows and rows == api.get(f"orders/{first['id']}/products.json").json()["orderProducts"]
    link = single["products"]["resource"]["link"]
    assert link == f"{ls_server.url}/nl/orders/{first['id']}/products.json"
    assert api.get("shop.json").json()["shop"]["currency"]["shortcode"] == "EUR"


def test_country_objects_and_customer_reference(api):
    orders = api.get("orders.json", params={"limit": 250}).json()["orders"]
    countries = {o["addressBillingCountry"]["code"] for o in orders}
    assert countries <= {"nl", "be", "de", "fr", "ch", "gb", "us"} and "nl" in countries
    nl = next(o["addressBillingCountry"] for o in orders
              if o["addressBillingCountry"]["code"] == "nl")
    assert nl == {"id": 150, "code": "nl", "code3": "nld", "title": "Netherlands"}
    guests = [o for o in orders if o["customer"] is False]
    registered = [o for o in orders if o["customer"]]
    assert guests and registered
    ref = registered[0]["customer"]["resource"]
    assert ref["url"] == f"customers/{ref['id']}"
    embedded = api.get(f"orders/{registered[0]['id']}.json").json()["order"]["customer"]
    assert embedded["resource"]["embedded"]["id"] == ref["id"]


def test_false_for_missing_objects_and_empty_strings(api):
    products = api.get("products.json", params={"limit": 250}).json()["products"]
    assert any(p["image"] is False for p in products)
    assert any(p["brand"] is False for p in products)
    assert any(p["type"] is False for p in products)
    assert all(p["data01"] == "" for p in products)
    with_brand = next(p for p in products if p["brand"])
    brand = with_brand["brand"]["resource"]
    assert api.get(f"brands/{brand['id']}.json").json()["brand"]["id"] == brand["id"]


def test_fields_parameter_narrows_objects(api):
    orders = api.get("orders.json", params={"fields": "id,number", "limit": 3}).json()
    assert all(set(o) == {"id", "number"} for o in orders["orders"])


# -- paging ----------------------------------------------------------------------------
def test_page_and_limit_cover_every_order_once(api):
    listed = all_pages(api, "orders", "orders", limit=7)
    ids = [o["id"] for o in listed]
    assert len(ids) == 60 == len(set(ids)) and ids == sorted(ids)


def test_limit_above_250_is_clamped(control, api):
    control.post("/_sandbox/orders", json={"count": 200}).raise_for_status()
    assert len(api.get("orders.json", params={"limit": 1000}).json()["orders"]) == 250


def test_since_id_scan_loses_nothing_while_orders_arrive(control, api):
    seen, since = [], 0
    while True:
        batch = api.get("orders.json", params={"since_id": since, "limit": 9}).json()["orders"]
        if not batch:
            break
        seen.extend(o["id"] for o in batch)
        since = batch[-1]["id"]
        if len(seen) < 60:  # new orders keep arriving during the first pass
            control.post("/_sandbox/orders", json={"count": 2}).raise_for_status()
    total = api.get("orders/count.json").json()["count"]
    assert total > 60
    assert len(seen) == total == len(set(seen)) and seen == sorted(seen)


def test_page_scan_loses_nothing_while_orders_arrive(control, api):
    seen, page = [], 1
    while True:
        batch = api.get("orders.json", params={"page": page, "limit": 11}).json()["orders"]
        seen.extend(o["id"] for o in batch)
        if len(batch) < 11:
            break
        page += 1
        control.post("/_sandbox/orders", json={"count": 1}).raise_for_status()
    assert len(seen) == len(set(seen)) == api.get("orders/count.json").json()["count"]


# -- filters ---------------------------------------------------------------------------
def test_updated_at_window(control, api):
    control.put("/_sandbox/clock", json={"now": "2030-01-01T10:00:00+00:00"})
    target = api.get("orders.json", params={"limit": 5}).json()["orders"][3]
    control.patch(f"/_sandbox/orders/{target['id']}", json={"status": "cancelled"}
                  ).raise_for_status()
    control.post("/_sandbox/orders", json={"count": 2}).raise_for_status()
    found = api.get("orders.json", params={"updated_at_min": "2030-01-01 09:59:59",
                                           "updated_at_max": "2030-01-01 10:00:00"}
                    ).json()["orders"]
    assert target["id"] in [o["id"] for o in found] and len(found) == 3
    changed = next(o for o in found if o["id"] == target["id"])
    assert changed["status"] == "cancelled" and changed["paymentStatus"] == "cancelled"
    assert changed["updatedAt"] == "2030-01-01T10:00:00+00:00"
    assert changed["createdAt"] == target["createdAt"]
    earlier = api.get("orders/count.json", params={"updated_at_max": "2029-12-31 23:59:59"})
    assert earlier.json()["count"] == 59
    assert api.get("orders.json", params={"updated_at_min": "yesterday"}).status_code == 400


def test_created_at_window_matches_timestamps(api):
    orders = api.get("orders.json", params={"limit": 250}).json()["orders"]
    pivot = datetime.fromisoformat(orders[30]["createdAt"])
    fmt = pivot.strftime("%Y-%m-%d %H:%M:%S")
    newer = api.get("orders.json", params={"created_at_min": fmt, "limit": 250}).json()
    assert [o["id"] for o in newer["orders"]] == [o["id"] for o in orders[30:]]


def test_number_customer_email_product_filters(api):
    orders = api.get("orders.json", params={"limit": 250}).json()["orders"]
    one = api.get("orders.json", params={"number": orders[7]["number"]}).json()["orders"]
    assert [o["id"] for o in one] == [orders[7]["id"]]
    customer_id = next(o["customer"]["resource"]["id"] for o in orders if o["customer"])
    theirs = api.get("orders.json", params={"customer": customer_id}).json()["orders"]
    assert theirs and all(o["customer"]["resource"]["id"] == customer_id for o in theirs)
    customers = api.get("customers.json").json()["customers"]
    target = next(c for c in customers if "@" in c["email"] and "." in c["email"])
    hits = api.get("customers.json", params={"email": target["email"].upper()}).json()
    assert [c["id"] for c in hits["customers"]] == [target["id"]]
    product = api.get("products.json").json()["products"][0]
    variants = api.get("variants.json", params={"product": product["id"]}).json()["variants"]
    assert variants and all(v["product"]["resource"]["id"] == product["id"] for v in variants)
    links = api.get("categories/products.json", params={"product": product["id"]}).json()
    assert links["categoriesProducts"]


# -- catalogue ---------------------------------------------------------------------------
def test_categories_three_levels_with_parent_refs(api):
    categories = api.get("categories.json").json()["categories"]
    by_id = {c["id"]: c for c in categories}
    assert {c["depth"] for c in categories} == {1, 2, 3}
    for category in categories:
        if category["depth"] == 1:
            assert category["parent"] is False
        else:
            parent = by_id[category["parent"]["resource"]["id"]]
            assert parent["depth"] == category["depth"] - 1
            assert category["path"] == parent["path"] + [str(category["id"])]
    top = next(c for c in categories if c["depth"] == 1)
    children = api.get("categories.json", params={"parent": top["id"]}).json()["categories"]
    assert children and all(c["depth"] == 2 for c in children)


def test_variant_products_and_images(api):
    products = api.get("products.json", params={"limit": 250}).json()["products"]
    matrix = next(p for p in products if p["hasMatrix"])
    assert matrix["set"]["options"][0]["values"]
    variants = api.get("variants.json", params={"product": matrix["id"]}).json()["variants"]
    assert len(variants) >= 2 and all(" / " in v["title"] for v in variants)
    assert all(v["options"] for v in variants)
    pictured = next(p for p in products if p["image"])
    images = api.get(f"products/{pictured['id']}/images.json").json()["productImages"]
    assert images[0]["src"] == pictured["image"]["src"]
    data = httpx.get(images[0]["src"]).content
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) == images[0]["size"]


def test_types_and_product_attributes(api):
    attributes = api.get("attributes.json").json()["attributes"]
    titles = {a["title"] for a in attributes}
    assert {"Land van herkomst", "Levertijd"} <= titles
    assert api.get("types/attributes.json").json()["typesAttributes"]
    products = api.get("products.json", params={"limit": 250}).json()["products"]
    typed = next(p for p in products if p["type"])
    values = api.get(f"products/{typed['id']}/attributes.json").json()["productAttributes"]
    assert values and all(set(v) == {"id", "value", "attribute"} for v in values)
    assert values[0]["attribute"]["title"] == "Land van herkomst"


def test_stock_update_writes_a_movement(api):
    variant = api.get("variants.json").json()["variants"][0]
    new_level = variant["stockLevel"] + 7
    response = api.put(f"variants/{variant['id']}.json",
                       json={"variant": {"stockLevel": new_level, "stockTracking": "enabled"}})
    assert response.status_code == 200
    assert response.json()["variant"]["stockLevel"] == new_level
    movements = api.get("variants/movements.json", params={"variant": variant["id"]}).json()
    assert [m["stockLevelChange"] for m in movements["variantsMovements"]] == [7]
    assert api.get("variants/movements/count.json").json() == {"count": 1}
    bad = api.put(f"variants/{variant['id']}.json", json={"variant": {"stockLevel": "many"}})
    assert bad.status_code == 422 and "stockLevel" in bad.json()["error"]["errors"]


def test_product_create_and_update(api):
    created = api.post("products.json", json={"product": {"title": "Test mok",
                                                          "priceIncl": 12.10, "sku": "T-1"}})
    assert created.status_code == 201
    product = created.json()["product"]
    variants = api.get("variants.json", params={"product": product["id"]}).json()["variants"]
    assert len(variants) == 1 and variants[0]["sku"] == "T-1"
    assert dec(variants[0]["priceExcl"]) == dec("10.0000")
    updated = api.put(f"products/{product['id']}.json", json={"product": {"title": "Mok"}})
    assert updated.json()["product"]["title"] == "Mok"
    assert api.post("products.json", json={"product": {}}).status_code == 422


# -- customers ---------------------------------------------------------------------------
def test_customer_create_update_and_field_errors(api):
    body = {"customer": {"email": "nieuw@example.nl", "firstname": "Anouk",
                         "lastname": "Visser", "addressBillingCountry": "be"}}
    created = api.post("customers.json", json=body)
    assert created.status_code == 201
    customer = created.json()["customer"]
    assert customer["addressBillingCountry"]["code3"] == "bel"
    assert api.post("customers.json", json=body).status_code == 422  # duplicate e-mail
    bad = api.put(f"customers/{customer['id']}.json",
                  json={"customer": {"email": "not-an-email"}})
    assert bad.status_code == 422
    error = bad.json()["error"]
    assert error["code"] == 422 and error["method"] == "PUT" and "email" in error["errors"]
    good = api.put(f"customers/{customer['id']}.json", json={"customer": {"phone": "0612"}})
    assert good.json()["customer"]["phone"] == "0612"
    missing = api.post("customers.json", json={"customer": {"email": "a@example.nl"}})
    assert set(missing.json()["error"]["errors"]) == {"firstname", "lastname"}


# -- order writes ------------------------------------------------------------------------
def test_order_status_change_and_metafields(api):
    order = api.get("orders.json", params={"limit": 1, "page": 3}).json()["orders"][0]
    cancelled = api.put(f"orders/{order['id']}.json", json={"order": {"status": "cancelled"}})
    assert cancelled.status_code == 200
    assert cancelled.json()["order"]["status"] == "cancelled"
    assert cancelled.json()["order"]["updatedAt"] >= order["updatedAt"]
    assert api.put(f"orders/{order['id']}.json",
                   json={"order": {"status": "lost"}}).status_code == 422

    url = f"orders/{order['id']}/metafields"
    made = api.post(f"{url}.json", json={"orderMetafield": {"key": "qbo_id", "value": "145"}})
    assert made.status_code == 201
    meta = made.json()["orderMetafield"]
    assert api.post(f"{url}.json", json={"orderMetafield": {"key": "qbo_id", "value": "1"}}
                    ).status_code == 422
    api.put(f"{url}/{meta['id']}.json", json={"orderMetafield": {"value": "146"}})
    listed = api.get(f"{url}.json").json()["orderMetafields"]
    assert [(m["key"], m["value"]) for m in listed] == [("qbo_id", "146")]
    assert api.delete(f"{url}/{meta['id']}.json").status_code == 204
    assert api.get(f"{url}/count.json").json() == {"count": 0}


def test_control_plane_order_with_explicit_lines(control, api):
    variant = api.get("variants.json").json()["variants"][0]
    made = control.post("/_sandbox/orders", json={"orders": [{
        "lines": [{"variant_id": variant["id"], "quantity": 2},
                  {"sku": "GEEN-CATALOGUS", "title": "Los", "price_incl": "9.95",
                   "quantity": 1}],
        "status": "completed_shipped", "payment_method": "paypal"}]})
    assert made.status_code == 201
    order = made.json()["orders"][0]
    rows = api.get(f"orders/{order['id']}/products.json").json()["orderProducts"]
    assert [r["sku"] for r in rows] == [variant["sku"], "GEEN-CATALOGUS"]
    assert rows[1]["product"] is False
    assert all(r["quantityShipped"] == r["quantityOrdered"] for r in rows)
    assert order["paymentTitle"] == "PayPal"
    new_created = datetime.fromisoformat(order["createdAt"])
    assert new_created > datetime.now(timezone.utc) - timedelta(minutes=5)
