"""LightspeedHook against the Lightspeed sandbox over real HTTP."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest

from conftest import control  # noqa: I001 - the test folder's own helpers
from koppel.hooks import errors
from koppel.hooks.lightspeed import LightspeedHook
from koppel.hooks.paging import PageNumberPaginator, SinceIdPaginator, UpdatedWindow, parse_timestamp


def test_iterates_every_order_once_over_many_pages(ls, ls_hook):
    total = ls_hook.count("orders")
    assert total == 60
    orders = list(ls_hook.iter_records("orders", paginator=PageNumberPaginator(limit=7)))
    assert len(orders) == total
    assert len({o.id for o in orders}) == total
    assert all(o.number for o in orders)
    assert ls_hook.calls["GET orders.json"] == 9  # ceil(60 / 7)
    assert ls_hook.calls["GET orders/count.json"] == 1


def test_since_id_scan_survives_records_arriving_midway(ls, ls_hook):
    before = {o.id for o in ls_hook.iter_orders(since_id=0)}
    seen: list[int] = []
    pages = ls_hook.iter_pages("orders", paginator=SinceIdPaginator(limit=10))
    for index, page in enumerate(pages):
        seen.extend(r["id"] for r in page)
        if index == 1:  # two new orders arrive while we are scanning
            for _ in range(2):
                control(ls["url"], "POST", "/orders", json={})
    assert len(seen) == len(set(seen))
    assert before <= set(seen)
    assert len(set(seen) - before) == 2


def test_updated_windows_split_at_a_record_neither_lose_nor_repeat(ls, ls_hook):
    orders = list(ls_hook.iter_orders())
    stamps = sorted(parse_timestamp(o.to_api()["updatedAt"]) for o in orders)
    edge = stamps[len(stamps) // 2]  # a record sits exactly on the edge
    start, end = stamps[0] - timedelta(seconds=1), stamps[-1] + timedelta(seconds=1)
    first = [o.id for o in ls_hook.iter_orders(UpdatedWindow(start, edge))]
    second = [o.id for o in ls_hook.iter_orders(UpdatedWindow(edge, end))]
    assert not set(first) & set(second)
    assert sorted(first + second) == sorted(o.id for o in orders)
    edge_ids = {o.id for o in orders if parse_timestamp(o.to_api()["updatedAt"]) == edge}
    assert edge_ids <= set(second)


def test_get_order_embeds_rows_and_typed_fields(ls_hook):
    order_id = next(iter(ls_hook.iter_orders())).id
    order = ls_hook.get_order(order_id)
    rows = ls_hook.get_order_rows(order_id)
    assert order.rows is not None and len(order.rows) == len(rows) > 0
    assert {r.id for r in order.rows} == {r.id for r in rows}
    assert order.price_incl is not None and order.price_incl >= 0
    assert isinstance(order.number, str)
    assert order.to_api()["id"] == order_id


def test_catalogue_resources_stream(ls_hook):
    products = list(ls_hook.iter_products())
    variants = list(ls_hook.iter_variants())
    assert len(products) == ls_hook.count("products") > 0
    assert len(variants) >= len(products)
    assert {v.product_id for v in variants} <= {p.id for p in products}
    assert ls_hook.get_shop().currency_code


def test_retries_5xx_drops_timeouts_and_transient_order_404s(ls, ls_hook):
    ls_hook.timeout = 1.0
    ls_hook.close()
    order_id = next(iter(ls_hook.iter_orders())).id
    control(ls["url"], "POST", "/faults", json={
        "path": f"/orders/{order_id}\\.json$", "sequence": ["500", "503", "drop", "404", "ok"]})
    control(ls["url"], "POST", "/faults", json={
        "path": "/customers\\.json$", "kind": "latency", "latency_ms": 2500, "times": 1})
    assert ls_hook.get_order(order_id).id == order_id
    assert len(list(ls_hook.iter_customers())) == 12
    assert ls_hook.calls["GET orders/{order_id}.json"] == 5
    assert ls_hook.calls["GET customers.json"] == 2


def test_a_real_404_is_not_found_with_context(ls_hook):
    with pytest.raises(errors.LightspeedNotFound) as caught:
        ls_hook.get_order(987654321)
    assert caught.value.record_id == 987654321
    assert "GET orders/987654321.json" in str(caught.value)
    assert ls_hook.calls["GET orders/{order_id}.json"] == 1 + ls_hook.transient_404_retries


def test_429_storm_is_paced_through(ls, ls_hook):
    control(ls["url"], "POST", "/faults", json={
        "path": "/orders/\\d+/products\\.json$", "kind": "429", "probability": 0.3,
        "retry_after": 0, "times": 15})
    ids = [o.id for o in ls_hook.iter_orders()][:25]
    rows = {order_id: ls_hook.get_order_rows(order_id) for order_id in ids}
    assert all(rows.values())
    stats = control(ls["url"], "GET", "/stats")
    assert stats["throttled"] > 0  # the storm happened, and the hook came through it


def test_writes(ls_hook):
    variant = next(iter(ls_hook.iter_variants()))
    updated = ls_hook.update_variant_stock(variant.id, 17)
    assert updated.stock_level == 17 and ls_hook.get_variant(variant.id).stock_level == 17

    created = ls_hook.create_customer({"email": "new.person@example.test",
                                       "firstname": "New", "lastname": "Person"})
    assert created.email == "new.person@example.test"
    changed = ls_hook.update_customer(created.id, {"lastname": "Changed"})
    assert changed.lastname == "Changed"

    order_id = next(iter(ls_hook.iter_orders())).id
    first = ls_hook.set_order_metafield(order_id, "qbo_id", "42")
    again = ls_hook.set_order_metafield(order_id, "qbo_id", "43")
    assert first.id == again.id
    fields = [m.to_api() for m in ls_hook.iter_order_metafields(order_id)]
    assert [(f["key"], f["value"]) for f in fields if f["key"] == "qbo_id"] == [("qbo_id", "43")]

    order = ls_hook.update_order_status(order_id, status="completed_shipped")
    assert order.status == "completed_shipped"


def test_validation_error_carries_the_api_message(ls_hook):
    with pytest.raises(errors.LightspeedError) as caught:
        ls_hook.update_variant_stock(next(iter(ls_hook.iter_variants())).id, 5,
                                     stock_tracking="sometimes")
    assert caught.value.status in (400, 422)
    assert "PUT variants/" in str(caught.value)


def _env_connection(monkeypatch, conn_id, **fields):
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))


def test_connection_test_from_env_json(ls, monkeypatch, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    good = dict(conn_type="lightspeed_ecom", host=ls["url"], login=ls["api_key"],
                password=ls["api_secret"], extra={"language": ls["language"]})
    _env_connection(monkeypatch, "ls_good", **good)
    _env_connection(monkeypatch, "ls_bad_secret", **{**good, "password": "x" * 32})
    _env_connection(monkeypatch, "ls_bad_lang", **{**good, "extra": {"language": "qq"}})
    _env_connection(monkeypatch, "ls_down", **{**good, "host": "http://127.0.0.1:9"})

    ok, message = LightspeedHook("ls_good").test_connection()
    assert ok, message
    ok, message = LightspeedHook("ls_bad_secret").test_connection()
    assert not ok and "Access denied" in message
    ok, message = LightspeedHook("ls_bad_lang").test_connection()
    assert not ok and "'qq'" in message
    ok, message = LightspeedHook("ls_down").test_connection()
    assert not ok and "Cannot reach" in message

    with pytest.raises(errors.LightspeedAuthError):
        LightspeedHook("ls_bad_secret", retry=None).get_shop()
    captured = capsys.readouterr()
    text = caplog.text + captured.out + captured.err
    assert ls["api_key"] not in text and ls["api_secret"] not in text


def test_real_rate_limit_is_paced_from_headers(ls, ls_hook):
    """Tiny windows (time scale): the hook slows down from the X-RateLimit headers and
    finishes far more calls than one window allows, without running out of retries."""
    control(ls["url"], "PUT", "/ratelimit", json={"limit_5min": 15, "retry_after": "http-date",
                                                 "clear": True})
    control(ls["url"], "PUT", "/time-scale", json={"scale": 300.0})  # 5 min -> 1 s
    try:
        ids = [o.id for o in ls_hook.iter_orders()][:40]
        rows = [ls_hook.get_order_rows(order_id) for order_id in ids]
        assert len(rows) == 40 and all(rows)
        stats = control(ls["url"], "GET", "/stats")
        assert stats["by_status"].get("200", 0) >= 41
        assert stats["throttled"] <= 5  # paced, not hammering
    finally:
        control(ls["url"], "PUT", "/ratelimit", json={"limit_5min": 300, "retry_after": "seconds",
                                                     "clear": True})


ADDRESS = {"address1": "Kerkstraat 1", "zipcode": "1011 AA", "city": "Amsterdam",
           "country": "NL"}


def test_order_through_checkout(ls_hook):
    variants = [v for v in ls_hook.iter_variants()][:2]
    before = ls_hook.count("orders")
    order = ls_hook.create_order_via_checkout(
        {"customer": {"email": "buyer@example.test", "firstname": "Bo", "lastname": "Buyer"},
         "billing_address": ADDRESS, "shipping_address": ADDRESS},
        [(variants[0].id, 2), (variants[1].id, 1)])
    assert ls_hook.count("orders") == before + 1
    assert sorted(r.quantity_ordered for r in order.rows) == [1, 2]
