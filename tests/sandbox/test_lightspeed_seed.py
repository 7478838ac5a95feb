"""Seeded data: money invariants to the cent, determinism, the awkward cases, startup."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from decimal import Decimal

import httpx
import pytest

from koppel.sandbox.lightspeed import create_app
from koppel.sandbox.server import SandboxServer
from lightspeed_fixtures import *  # noqa: F401,F403
from lightspeed_fixtures import dec

CENT = Decimal("0.01")


@pytest.fixture()
def orders_with_rows(api):
    orders = api.get("orders.json", params={"limit": 250}).json()["orders"]
    return [(o, api.get(f"orders/{o['id']}/products.json",
                        params={"limit": 250}).json()["orderProducts"])
            for o in orders]


def test_row_money_invariants(orders_with_rows):
    for _, rows in orders_with_rows:
        for row in rows:
            rate = dec(row["taxRate"])
            incl, excl = dec(row["priceIncl"]), dec(row["priceExcl"])
            assert abs(excl * (1 + rate) - incl) <= CENT, row
            gross = (dec(row["basePriceIncl"]) * row["quantityOrdered"]).quantize(CENT)
            assert incl == gross - dec(row["discountIncl"])
            assert abs(dec(row["discountExcl"]) * (1 + rate) - dec(row["discountIncl"])) <= CENT
            # a few seeded orders are credited or returned (test_lightspeed_credits.py)
            assert 0 <= row["quantityRefunded"] <= row["quantityOrdered"]
            assert 0 <= row["quantityReturned"] <= row["quantityOrdered"]
            assert 0 <= row["quantityShipped"] <= row["quantityOrdered"]


def test_order_totals_add_up_exactly(orders_with_rows):
    """The sums; the per-rate split rules are checked exactly in
    test_lightspeed_money_variety.py."""
    for order, rows in orders_with_rows:
        rows_incl = sum((dec(r["priceIncl"]) for r in rows), Decimal(0))
        rows_excl = sum((dec(r["priceExcl"]) for r in rows), Decimal(0))
        assert dec(order["priceIncl"]) == (rows_incl + dec(order["shipmentPriceIncl"])
                                           + dec(order["paymentPriceIncl"])
                                           - dec(order["discountIncl"]))
        assert dec(order["priceExcl"]) == (rows_excl + dec(order["shipmentPriceExcl"])
                                           + dec(order["paymentPriceExcl"])
                                           - dec(order["discountExcl"]))
        taxes = sum((dec(t["amount"]) for t in order["taxRates"]), Decimal(0))
        assert taxes == dec(order["priceIncl"]) - dec(order["priceExcl"])
        for kind in ("shipment", "payment"):
            split = sum((dec(t["amount"]) for t in order[f"{kind}TaxRates"]), Decimal(0))
            assert split == dec(order[f"{kind}PriceIncl"]) - dec(order[f"{kind}PriceExcl"])
            assert {dec(t["rate"]) for t in order[f"{kind}TaxRates"]} <= {
                dec(r["taxRate"]) for r in rows}
        if dec(order["discountIncl"]):
            continue  # the order discount's split over rates is internal; sums checked above
        # each rate's VAT is close to rate x its base (row-level rounding, one cent a row)
        base = defaultdict(Decimal)
        for row in rows:
            base[dec(row["taxRate"])] += dec(row["priceExcl"])
        extra = defaultdict(Decimal)
        for kind in ("shipment", "payment"):
            for entry in order[f"{kind}TaxRates"]:
                extra[dec(entry["rate"])] += dec(entry["amount"])
        for entry in order["taxRates"]:
            rate = dec(entry["rate"])
            assert abs(dec(entry["amount"]) - extra[rate] - base[rate] * rate) \
                <= CENT * (len(rows) + 2)


def test_statuses_are_consistent_and_all_present(orders_with_rows):
    statuses = {o["status"] for o, _ in orders_with_rows}
    assert statuses == {"on_hold", "processing_awaiting_payment",
                        "processing_awaiting_shipment", "processing_awaiting_pickup",
                        "processing_ready_for_pickup", "completed", "completed_shipped",
                        "completed_picked_up", "cancelled"}
    for order, rows in orders_with_rows:
        if order["status"] == "cancelled":
            assert order["paymentStatus"] == order["shipmentStatus"] == "cancelled"
        if order["shipmentStatus"] == "shipped":
            assert all(r["quantityShipped"] == r["quantityOrdered"] for r in rows)
        if order["shipmentStatus"] == "not_shipped":
            assert all(r["quantityShipped"] == 0 for r in rows)
        if order["shipmentStatus"] == "partially_shipped":
            assert any(r["quantityShipped"] < r["quantityOrdered"] for r in rows)
        if order["status"] in ("on_hold", "processing_awaiting_payment"):
            assert order["paymentStatus"] in ("not_paid", "partially_paid")
    titles = {o["paymentTitle"] for o, _ in orders_with_rows}
    assert {"iDEAL", "PayPal", "Bancontact", "Creditcard", "Achteraf betalen"} <= titles
    assert any(o["updatedAt"] > o["createdAt"] for o, _ in orders_with_rows)
    assert any(dec(o["discountIncl"]) > 0 for o, _ in orders_with_rows)
    assert any(dec(r["discountIncl"]) > 0 for _, rows in orders_with_rows for r in rows)
    assert all(1 <= len(rows) <= 10 or len(rows) >= 150 for _, rows in orders_with_rows)
    assert sum(len(rows) >= 150 for _, rows in orders_with_rows) == 1  # index 45


def test_awkward_rows_skus_and_customers(api, orders_with_rows):
    rows = [r for _, rs in orders_with_rows for r in rs]
    variants = api.get("variants.json", params={"limit": 250}).json()["variants"]
    catalogue = {v["sku"] for v in variants if v["sku"]}
    assert any(r["sku"] == "" for r in rows)
    assert any(r["sku"] and r["sku"] not in catalogue for r in rows)
    skus = [v["sku"] for v in variants if v["sku"]]
    assert len(skus) > len(set(skus))  # a duplicate SKU
    assert any(v["stockTracking"] == "disabled" for v in variants)
    rates = {dec(v["priceIncl"]) / dec(v["priceExcl"]) for v in variants}
    assert {round(r, 2) for r in rates} >= {Decimal("1.21"), Decimal("1.09"), Decimal("1.00")}

    customers = api.get("customers.json", params={"limit": 250}).json()["customers"]
    emails = [c["email"] for c in customers]
    assert "" in emails and any(e and not e.count("@") == 1 or " " in e for e in emails)
    assert any(len(c["lastname"]) > 100 or len(c["companyName"]) > 100 for c in customers)
    assert any(not (c["firstname"] + c["lastname"]).isascii() for c in customers)
    assert any(c["addressBillingNumber"] == "" and c["addressBillingStreet"][-1].isalnum()
               for c in customers)
    companies = [c for c in customers if c["isCompany"]]
    assert companies and all(c["companyVatNumber"] and c["companyCoCNumber"]
                             for c in companies)
    by_company = defaultdict(list)
    for c in companies:
        by_company[c["companyVatNumber"]].append(c["id"])
    assert any(len(ids) > 1 for ids in by_company.values())  # contacts sharing a company
    assert {c["addressBillingCountry"]["code"] for c in customers} >= {"nl", "be"}


def _dump(url: str, auth: tuple[str, str]) -> str:
    with httpx.Client(base_url=f"{url}/nl/", auth=auth) as client:
        parts = [client.get(f"{r}.json", params={"limit": 250}).json()
                 for r in ("orders", "customers", "products", "variants", "categories")]
        first = parts[0]["orders"][5]["id"]
        parts.append(client.get(f"orders/{first}.json").json())
    return json.dumps(parts, sort_keys=True)


def test_same_seed_gives_identical_data_other_seed_differs():
    dumps = []
    for seed in (7, 7, 8):
        with SandboxServer(create_app(seed=seed, base_url="http://shop")) as server:
            creds = httpx.get(f"{server.url}/_sandbox/credentials").json()
            dumps.append(_dump(server.url, (creds["api_key"], creds["api_secret"])))
    assert dumps[0] == dumps[1]
    assert dumps[0] != dumps[2]


def test_reset_reseeds(control, api, ls):
    before = api.get("orders.json").json()
    control.post("/_sandbox/orders", json={"count": 3})
    control.post("/_sandbox/reset", json={"seed": 1})
    assert api.get("orders.json").json() == before
    control.post("/_sandbox/reset", json={"seed": 1, "orders": 5, "products": 3,
                                          "customers": 4})
    assert api.get("orders/count.json").json() == {"count": 5}
    assert api.get("customers/count.json").json() == {"count": 4}


def test_startup_with_ten_thousand_orders():
    started = time.perf_counter()
    app = create_app(seed=3, orders=10_000)
    elapsed = time.perf_counter() - started
    print(f"\ncreate_app(orders=10000) took {elapsed:.2f} s")
    with SandboxServer(app) as server:
        creds = httpx.get(f"{server.url}/_sandbox/credentials").json()
        auth = (creds["api_key"], creds["api_secret"])
        count = httpx.get(f"{server.url}/nl/orders/count.json", auth=auth).json()
        last = httpx.get(f"{server.url}/nl/orders.json", auth=auth,
                         params={"page": 40, "limit": 250}).json()["orders"]
    assert count == {"count": 10_000}
    assert last[-1]["number"] == "ORD10000"
