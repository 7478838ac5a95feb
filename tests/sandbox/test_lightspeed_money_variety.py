"""The money variety of the Lightspeed sandbox: payment fees, shipping and fees split
over the goods' VAT rates, shipment discounts, intra-EU B2B at 0 %, export at 0 %,
awkward names, huge orders, the currency option, and control-plane orders with all of
it. Every amount is re-derived here, independently of the sandbox's code, from the
rules documented in ``koppel.sandbox.lightspeed.pricing``, exact to the cent."""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal

import httpx
import pytest

from koppel.sandbox.lightspeed import create_app
from koppel.sandbox.server import SandboxServer
from lightspeed_fixtures import *  # noqa: F401,F403
from lightspeed_fixtures import GENEROUS, dec

CENT = Decimal("0.01")
ZERO = Decimal("0")
EU = {"nl", "be", "de", "fr"}
SEEDS = (1, 2, 3, 4, 5)


# -- an independent model of the documented rules ------------------------------------------
def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def excl(incl: Decimal, rate: Decimal) -> Decimal:
    return cents(incl / (1 + rate))


def allocate(total: Decimal, weights: dict[Decimal, Decimal]) -> dict[Decimal, Decimal]:
    whole = sum(weights.values(), ZERO)
    if not total or not whole:
        return {k: ZERO for k in weights}
    shares = {k: cents(total * w / whole) for k, w in weights.items()}
    rest = total - sum(shares.values(), ZERO)
    if rest:
        shares[max(weights, key=lambda k: (weights[k], k))] += rest
    return shares


def split(amount: Decimal, goods: dict[Decimal, Decimal], mode: str) -> dict[Decimal, Decimal]:
    """incl per rate of a shipping/fee amount (zero shares left out)."""
    weights = dict(goods)
    if mode == "highest_rate" or sum(weights.values(), ZERO) <= 0:
        weights = {max(goods): Decimal(1)}
    return {r: s for r, s in allocate(amount, weights).items() if s}


def label(rate: Decimal) -> str:
    return f"{(rate * 100).normalize():f}% BTW"


def as_tax_rates(incl: dict[Decimal, Decimal]) -> list[tuple[str, Decimal, Decimal]]:
    return [(label(r), r, incl[r] - excl(incl[r], r)) for r in sorted(incl, reverse=True)]


def tax_rates(entries: list[dict]) -> list[tuple[str, Decimal, Decimal]]:
    return [(e["name"], dec(e["rate"]), dec(e["amount"])) for e in entries]


def check_order(order: dict, rows: list[dict], mode: str = "pro_rata") -> None:
    """Every money field of one order, exact to the cent."""
    where = order["number"]
    rows_incl: dict[Decimal, Decimal] = defaultdict(Decimal)
    rows_excl: dict[Decimal, Decimal] = defaultdict(Decimal)
    for row in rows:
        assert type(row["quantityOrdered"]) is int and row["quantityOrdered"] >= 1, where
        rate = dec(row["taxRate"])
        gross = cents(dec(row["basePriceIncl"]) * row["quantityOrdered"])
        assert dec(row["priceIncl"]) == gross - dec(row["discountIncl"]), where
        assert dec(row["priceExcl"]) == excl(dec(row["priceIncl"]), rate), where
        rows_incl[rate] += dec(row["priceIncl"])
        rows_excl[rate] += dec(row["priceExcl"])
    goods = dict(rows_incl)

    discount = dec(order["discountIncl"])
    disc_incl = allocate(discount, goods)
    disc_excl = {r: excl(d, r) for r, d in disc_incl.items()}
    assert dec(order["discountExcl"]) == sum(disc_excl.values(), ZERO), where

    base, ship_discount = dec(order["shipmentBasePriceIncl"]), dec(order["shipmentDiscountIncl"])
    ship = dec(order["shipmentPriceIncl"])
    assert 0 <= ship_discount <= base and ship == base - ship_discount, where
    base_split, ship_split = split(base, goods, mode), split(ship, goods, mode)
    base_excl = sum((excl(v, r) for r, v in base_split.items()), ZERO)
    ship_excl = {r: excl(v, r) for r, v in ship_split.items()}
    assert dec(order["shipmentBasePriceExcl"]) == base_excl, where
    assert dec(order["shipmentPriceExcl"]) == sum(ship_excl.values(), ZERO), where
    assert dec(order["shipmentDiscountExcl"]) == base_excl - dec(order["shipmentPriceExcl"])
    assert tax_rates(order["shipmentTaxRates"]) == as_tax_rates(ship_split), where

    fee = dec(order["paymentPriceIncl"])
    assert dec(order["paymentBasePriceIncl"]) == fee, where
    fee_split = split(fee, goods, mode)
    fee_excl = {r: excl(v, r) for r, v in fee_split.items()}
    assert dec(order["paymentPriceExcl"]) == sum(fee_excl.values(), ZERO), where
    assert dec(order["paymentBasePriceExcl"]) == dec(order["paymentPriceExcl"]), where
    assert tax_rates(order["paymentTaxRates"]) == as_tax_rates(fee_split), where

    total_incl: dict[Decimal, Decimal] = defaultdict(Decimal)
    total_excl: dict[Decimal, Decimal] = defaultdict(Decimal)
    for rate in goods:
        total_incl[rate] += rows_incl[rate] - disc_incl[rate]
        total_excl[rate] += rows_excl[rate] - disc_excl[rate]
    for part, part_excl in ((ship_split, ship_excl), (fee_split, fee_excl)):
        for rate, amount in part.items():
            total_incl[rate] += amount
            total_excl[rate] += part_excl[rate]
    expected = [(label(r), r, total_incl[r] - total_excl[r])
                for r in sorted(total_incl, reverse=True)]
    assert tax_rates(order["taxRates"]) == expected, where

    assert dec(order["priceIncl"]) == (sum(rows_incl.values(), ZERO) + ship + fee
                                       - discount), where
    assert dec(order["priceExcl"]) == (sum(rows_excl.values(), ZERO)
                                       + dec(order["shipmentPriceExcl"])
                                       + dec(order["paymentPriceExcl"])
                                       - dec(order["discountExcl"])), where
    assert sum((e[2] for e in expected), ZERO) == dec(order["priceIncl"]) - dec(order["priceExcl"])


# -- VAT numbers ---------------------------------------------------------------------------
def vat_ok(number: str) -> bool:
    """Format and check digits of NL, BE, DE and FR VAT numbers."""
    if m := re.fullmatch(r"NL(\d{9})B\d{2}", number):
        d = [int(c) for c in m[1]]
        return sum(x * (9 - i) for i, x in enumerate(d[:8])) % 11 == d[8]
    if m := re.fullmatch(r"BE([01]\d{7})(\d{2})", number):
        return 97 - int(m[1]) % 97 == int(m[2])
    if m := re.fullmatch(r"DE([1-9]\d{7})(\d)", number):
        product = 10
        for c in m[1]:
            product = (2 * ((int(c) + product) % 10 or 10)) % 11
        return (11 - product) % 10 == int(m[2])
    if m := re.fullmatch(r"FR(\d{2})(\d{9})", number):
        return int(m[1]) == (12 + 3 * (int(m[2]) % 97)) % 97
    return False


# -- helpers -------------------------------------------------------------------------------
def shop_orders(api) -> list[tuple[dict, list[dict]]]:
    orders = api.get("orders.json", params={"limit": 250}).json()["orders"]
    return [(o, api.get(f"orders/{o['id']}/products.json",
                        params={"limit": 250}).json()["orderProducts"]) for o in orders]


def country(order: dict) -> str:
    return order["addressBillingCountry"]["code"]


def names_of(order: dict) -> list[str]:
    return [order[k] for k in ("firstname", "middlename", "lastname", "companyName",
                               "addressBillingName", "addressShippingCompany")]


@pytest.fixture(scope="module")
def seeded(ls_server):
    """Orders with rows of seeds 1..5 at 60 orders (read once for the module)."""
    out = {}
    with httpx.Client(base_url=ls_server.url, timeout=60) as control:
        control.put("/_sandbox/ratelimit", json=GENEROUS).raise_for_status()
        for seed in SEEDS:
            control.post("/_sandbox/reset", json={"seed": seed}).raise_for_status()
            creds = control.get("/_sandbox/credentials").json()
            with httpx.Client(base_url=f"{ls_server.url}/nl/", timeout=60,
                              auth=(creds["api_key"], creds["api_secret"])) as api:
                out[seed] = shop_orders(api)
        control.post("/_sandbox/reset", json={"seed": 1}).raise_for_status()
    return out


# -- seeds ---------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
def test_every_seeded_order_adds_up_to_the_cent(seeded, seed):
    assert len(seeded[seed]) == 60
    for order, rows in seeded[seed]:
        check_order(order, rows)


@pytest.mark.parametrize("seed", SEEDS)
def test_every_kind_of_order_occurs_in_a_60_order_seed(seeded, seed):
    orders = seeded[seed]
    kinds = defaultdict(list)
    for order, rows in orders:
        rates = {dec(r["taxRate"]) for r in rows}
        if dec(order["paymentPriceIncl"]):
            kinds["fee"].append(order)
        if len(order["shipmentTaxRates"]) > 1:
            kinds["split shipping"].append(order)
        if len(order["paymentTaxRates"]) > 1:
            kinds["split fee"].append(order)
        if {Decimal("0.21"), Decimal("0.09")} <= rates:
            kinds["21 and 9"].append(order)
        base, off = dec(order["shipmentBasePriceIncl"]), dec(order["shipmentDiscountIncl"])
        if off and off == base:
            kinds["free shipping"].append(order)
        if 0 < off < base:
            kinds["partial shipment discount"].append(order)
        if order["isCompany"] and country(order) in EU - {"nl"} and rates == {ZERO}:
            kinds["reverse charge"].append(order)
        if country(order) not in EU:
            kinds["export"].append(order)
        if order["isCompany"] and order["companyVatNumber"].startswith("NL") \
                and rates - {ZERO}:
            kinds["dutch b2b"].append(order)
        text = " ".join(names_of(order))
        if ":" in text:
            kinds["colon"].append(order)
        if "'" in text:
            kinds["apostrophe"].append(order)
        if any(c.isalpha() and unicodedata.name(c).startswith(("GREEK", "CYRILLIC"))
               for c in text):
            kinds["greek or cyrillic"].append(order)
        if any(ord(c) >= 0x1F300 for c in text):
            kinds["emoji"].append(order)
        if any(len(n) > 100 for n in names_of(order)):
            kinds["over 100 characters"].append(order)
        if len(rows) >= 150:
            kinds["150+ rows"].append(order)
        if any(dec(r["basePriceIncl"]) == Decimal("0.33") and r["quantityOrdered"] == 3
               for r in rows):
            kinds["0.33 x 3"].append(order)
    expected = {"fee", "split shipping", "split fee", "21 and 9", "free shipping",
                "partial shipment discount", "reverse charge", "export", "dutch b2b",
                "colon", "apostrophe", "greek or cyrillic", "emoji", "over 100 characters",
                "150+ rows", "0.33 x 3"}
    assert expected <= set(kinds), expected - set(kinds)
    assert len(kinds["150+ rows"]) == 1  # index 45; fewer than 50 orders: at most one


@pytest.mark.parametrize("seed", range(1, 11))
def test_split_shipping_in_every_20_order_seed(seed):
    with SandboxServer(create_app(seed=seed, orders=20)) as server:
        httpx.put(f"{server.url}/_sandbox/ratelimit", json=GENEROUS).raise_for_status()
        creds = httpx.get(f"{server.url}/_sandbox/credentials").json()
        with httpx.Client(base_url=f"{server.url}/nl/",
                          auth=(creds["api_key"], creds["api_secret"])) as api:
            orders = shop_orders(api)
    for order, rows in orders:
        check_order(order, rows)
    assert any(len(o["shipmentTaxRates"]) > 1 for o, _ in orders)
    assert any(dec(o["paymentPriceIncl"]) for o, _ in orders)
    assert all(len(rows) <= 10 for _, rows in orders)  # no huge order below 46 orders


def test_proportions_over_five_seeds(seeded):
    orders = [(o, r) for seed in SEEDS for o, r in seeded[seed]]
    share = lambda test: sum(1 for o, r in orders if test(o, r)) / len(orders)  # noqa: E731
    assert 0.22 <= share(lambda o, r: dec(o["paymentPriceIncl"]) > 0) <= 0.45
    assert 0.06 <= share(lambda o, r: dec(o["shipmentDiscountIncl"]) > 0) <= 0.2
    assert 0.05 <= share(lambda o, r: o["isCompany"] and country(o) in EU - {"nl"}
                         and o["companyVatNumber"]) <= 0.2
    assert 0.04 <= share(lambda o, r: country(o) not in EU) <= 0.15
    assert 0.25 <= share(lambda o, r: len({r_["taxRate"] for r_ in r}) > 1) <= 0.6


def test_payment_fees_follow_the_shops_rules(seeded):
    seen = set()
    for seed in SEEDS:
        for order, rows in seeded[seed]:
            fee = dec(order["paymentPriceIncl"])
            goods = sum((dec(r["priceIncl"]) for r in rows), ZERO) - dec(order["discountIncl"])
            pid = order["paymentId"]
            if pid == "ideal":
                assert fee == (Decimal("0.29") if goods + dec(order["shipmentPriceIncl"])
                               < 50 else 0)
            elif pid == "paypal":
                assert fee == cents(Decimal("0.35") + (goods + dec(order["shipmentPriceIncl"]))
                                    * Decimal("0.019"))
            elif pid == "afterpay":
                assert fee == Decimal("1.95")
            elif pid == "cod":
                assert fee == Decimal("4.95") and order["paymentTitle"] == "Rembours"
                assert order["shipmentIsCashOnDelivery"] is True
                assert country(order) in ("nl", "be")
            else:
                assert fee == 0
            if fee:
                seen.add(pid)
    assert seen == {"ideal", "paypal", "afterpay", "cod"}


def test_b2b_eu_orders_are_reverse_charged_with_wellformed_vat_numbers(seeded):
    found = set()
    for seed in SEEDS:
        for order, rows in seeded[seed]:
            vat = order["companyVatNumber"]
            if order["isCompany"]:
                assert order["companyName"] and vat_ok(vat), (order["number"], vat)
                assert vat[:2].lower() == country(order), (order["number"], vat)
            if order["isCompany"] and country(order) in EU - {"nl"}:
                found.add(country(order))
                assert all(dec(r["taxRate"]) == 0 for r in rows), order["number"]
                assert [dec(t["amount"]) for t in order["taxRates"]] == [0]
                assert all(dec(t["rate"]) == 0 for t in order["shipmentTaxRates"]
                           + order["paymentTaxRates"])
                assert dec(order["priceIncl"]) == dec(order["priceExcl"])
    assert found == {"be", "de", "fr"}


def test_exports_outside_the_eu_are_zero_rated(seeded):
    found = set()
    for seed in SEEDS:
        for order, rows in seeded[seed]:
            if country(order) in EU:
                continue
            found.add(country(order))
            assert order["addressShippingCountry"]["code"] == country(order)
            assert all(dec(r["taxRate"]) == 0 for r in rows)
            assert all(dec(r["priceIncl"]) == dec(r["priceExcl"]) for r in rows)
            assert [dec(t["amount"]) for t in order["taxRates"]] == [0]
            assert dec(order["priceIncl"]) == dec(order["priceExcl"])
    assert found == {"ch", "us", "gb"}


def test_rows_are_priced_from_the_catalogue_by_vat_regime(seeded, api):
    """Zero-rated rows (reverse charge, export) charge the price excl. VAT; every other
    row, Dutch companies' included, the catalogue price at the variant's own rate."""
    variants = {v["id"]: v for v in api.get("variants.json", params={"limit": 250}).json()[
        "variants"]}
    checked = defaultdict(int)
    for order, rows in seeded[1]:
        zero = country(order) not in EU or (order["isCompany"] and country(order) != "nl")
        for row in rows:
            variant = variants.get(row["variant"]["resource"]["id"]) if row["variant"] else None
            if variant is None:
                continue
            rate = round(dec(variant["priceIncl"]) / dec(variant["priceExcl"]) - 1, 2)
            if zero:
                assert dec(row["taxRate"]) == 0
                assert dec(row["basePriceIncl"]) == cents(dec(variant["priceExcl"]))
                checked["zero"] += rate > 0
            else:
                assert dec(row["taxRate"]) == rate, order["number"]
                assert dec(row["basePriceIncl"]) == dec(variant["priceIncl"])
                checked["dutch b2b" if order["isCompany"] else "b2c"] += 1
    assert checked["zero"] and checked["dutch b2b"] and checked["b2c"]


def test_seeds_are_deterministic_and_quantities_whole(seeded, control, api):
    again = shop_orders(api)  # seed 1 again, after four other seeds
    assert again == seeded[1]
    assert seeded[1] != seeded[2]
    assert all(type(r["quantityOrdered"]) is int for _, rows in again for r in rows)


def test_highest_rate_mode_puts_shipping_and_fees_at_the_top_goods_rate(control, api):
    assert control.post("/_sandbox/reset", json={"seed": 1, "shipping_tax": "highest_rate"}
                        ).json()["shipping_tax"] == "highest_rate"
    try:
        orders = shop_orders(api)
        mixed = 0
        for order, rows in orders:
            check_order(order, rows, mode="highest_rate")
            top = max(dec(r["taxRate"]) for r in rows)
            for entry in order["shipmentTaxRates"] + order["paymentTaxRates"]:
                assert dec(entry["rate"]) == top
            mixed += len({r["taxRate"] for r in rows}) > 1 and dec(order["shipmentPriceIncl"]) > 0
        assert mixed
        assert control.get("/_sandbox/settings").json()["shipping_tax"] == "highest_rate"
    finally:
        control.post("/_sandbox/reset", json={"seed": 1, "shipping_tax": "pro_rata"})


# -- currency ------------------------------------------------------------------------------
@pytest.mark.parametrize("code,symbol", [("GBP", "£"), ("USD", "$"), ("EUR", "€")])
def test_currency_option_changes_the_shop_not_the_amounts(code, symbol):
    totals = {}
    for currency in (code, "EUR"):
        with SandboxServer(create_app(seed=2, orders=20, currency=currency)) as server:
            creds = httpx.get(f"{server.url}/_sandbox/credentials").json()
            with httpx.Client(base_url=f"{server.url}/nl/",
                              auth=(creds["api_key"], creds["api_secret"])) as api:
                shop = api.get("shop.json").json()["shop"]
                assert shop["currency"]["shortcode"] == currency
                if currency == code:
                    assert shop["currency"]["symbol"] == symbol
                    assert shop["currency"]["isDefault"] is True
                totals[currency] = [(o["number"], o["priceIncl"], o["taxRates"])
                                    for o in api.get("orders.json").json()["orders"]]
                assert all("currency" not in o for o in api.get("orders.json").json()["orders"])
    assert totals[code] == totals["EUR"]


def test_currency_through_the_control_plane(control, api):
    assert control.post("/_sandbox/reset", json={"seed": 1, "currency": "USD"}).json()[
        "currency"] == "USD"
    try:
        assert api.get("shop.json").json()["shop"]["currency"]["shortcode"] == "USD"
        control.post("/_sandbox/reset", json={"seed": 1})  # keeps the setting
        assert api.get("shop.json").json()["shop"]["currency"]["shortcode"] == "USD"
        assert control.put("/_sandbox/settings", json={"currency": "GBP"}).json()[
            "currency"] == "GBP"
        assert api.get("shop.json").json()["shop"]["currency"]["symbol"] == "£"
        assert control.post("/_sandbox/reset", json={"currency": "JPY"}).status_code == 422
    finally:
        control.post("/_sandbox/reset", json={"seed": 1, "currency": "EUR"})
    with pytest.raises(ValueError):
        create_app(currency="JPY")


# -- control plane -------------------------------------------------------------------------
MIXED_LINES = [
    {"sku": "MOK", "title": "Mok", "price_incl": "12.10", "tax_rate": "0.21", "quantity": 2},
    {"sku": "KOFFIE", "title": "Koffie", "price_incl": "10.90", "tax_rate": "0.09",
     "quantity": 1},
]


def _create(control, api, **data) -> tuple[dict, list[dict]]:
    made = control.post("/_sandbox/orders", json={"orders": [data]})
    assert made.status_code == 201, made.text
    order = api.get(f"orders/{made.json()['orders'][0]['id']}.json").json()["order"]
    return order, order["products"]["resource"]["embedded"]


def test_control_plane_order_with_fee_shipment_discount_and_split(control, api):
    order, rows = _create(control, api, lines=MIXED_LINES, payment_method="ideal",
                          shipping_incl="6.95", shipment_discount_incl="2.00",
                          payment_fee_incl="0.29", coupon="VERZEND2")
    check_order(order, rows)
    # worked by hand: goods 24.20 @21 % (20.00 excl) + 10.90 @9 % (10.00 excl)
    assert (dec(order["shipmentBasePriceIncl"]), dec(order["shipmentBasePriceExcl"])) == (
        Decimal("6.95"), Decimal("5.94"))          # 4.79/3.96 + 2.16/1.98
    assert (dec(order["shipmentDiscountIncl"]), dec(order["shipmentDiscountExcl"])) == (
        Decimal("2.00"), Decimal("1.71"))
    assert (dec(order["shipmentPriceIncl"]), dec(order["shipmentPriceExcl"])) == (
        Decimal("4.95"), Decimal("4.23"))          # 3.41/2.82 + 1.54/1.41
    assert tax_rates(order["shipmentTaxRates"]) == [
        ("21% BTW", Decimal("0.21"), Decimal("0.59")), ("9% BTW", Decimal("0.09"), Decimal("0.13"))]
    assert (dec(order["paymentPriceIncl"]), dec(order["paymentPriceExcl"])) == (
        Decimal("0.29"), Decimal("0.25"))          # 0.20/0.17 + 0.09/0.08
    assert tax_rates(order["paymentTaxRates"]) == [
        ("21% BTW", Decimal("0.21"), Decimal("0.03")), ("9% BTW", Decimal("0.09"), Decimal("0.01"))]
    assert (dec(order["priceIncl"]), dec(order["priceExcl"])) == (Decimal("40.34"),
                                                                  Decimal("34.48"))
    assert tax_rates(order["taxRates"]) == [
        ("21% BTW", Decimal("0.21"), Decimal("4.82")), ("9% BTW", Decimal("0.09"), Decimal("1.04"))]
    assert order["discountCouponCode"] == "VERZEND2" and order["isDiscounted"] is True


def test_control_plane_order_in_highest_rate_mode(control, api):
    control.put("/_sandbox/settings", json={"shipping_tax": "highest_rate"})
    try:
        order, rows = _create(control, api, lines=MIXED_LINES, shipping_incl="6.95",
                              shipment_discount_incl="2.00", payment_fee_incl="0.29")
    finally:
        control.put("/_sandbox/settings", json={"shipping_tax": "pro_rata"})
    check_order(order, rows, mode="highest_rate")
    assert dec(order["shipmentBasePriceExcl"]) == Decimal("5.74")
    assert dec(order["shipmentPriceExcl"]) == Decimal("4.09")
    assert dec(order["shipmentDiscountExcl"]) == Decimal("1.65")
    assert dec(order["paymentPriceExcl"]) == Decimal("0.24")
    assert [e["rate"] for e in order["shipmentTaxRates"] + order["paymentTaxRates"]] == [0.21,
                                                                                        0.21]


def test_control_plane_b2b_and_export_orders(control, api):
    variant = next(v for v in api.get("variants.json", params={"limit": 250}).json()[
        "variants"] if dec(v["priceIncl"]) > dec(v["priceExcl"]))
    lines = [{"variant_id": variant["id"], "quantity": 2}]
    b2b, rows = _create(control, api, lines=lines, country="be", is_company=True,
                        company_name="Brasserie L'Étoile", vat_number="BE0123456749",
                        coc_number="0123.456.749", shipping_incl="6.95")
    check_order(b2b, rows)
    assert b2b["isCompany"] is True and b2b["companyVatNumber"] == "BE0123456749"
    assert b2b["companyCoCNumber"] == "0123.456.749" and vat_ok("BE0123456749")
    assert b2b["addressShippingCountry"]["code"] == "be"
    assert dec(rows[0]["taxRate"]) == 0
    assert dec(rows[0]["basePriceIncl"]) == cents(dec(variant["priceExcl"]))
    assert tax_rates(b2b["shipmentTaxRates"]) == [("0% BTW", ZERO, ZERO)]
    assert dec(b2b["shipmentPriceExcl"]) == Decimal("6.95")

    export, rows = _create(control, api, lines=lines, country="us")
    check_order(export, rows)
    assert dec(rows[0]["taxRate"]) == 0 and export["addressBillingCountry"]["code"] == "us"

    charged, rows = _create(control, api, lines=lines, country="be", is_company=True,
                            company_name="Zonder Nummer", vat_regime="domestic",
                            vat_number="BE0123456749")
    check_order(charged, rows)  # a BE company charged Dutch VAT (number not verified)
    assert dec(rows[0]["taxRate"]) > 0
    assert dec(rows[0]["basePriceIncl"]) == dec(variant["priceIncl"])

    dutch, rows = _create(control, api, lines=MIXED_LINES, is_company=True,
                          company_name="Bakkerij De Zon: Utrecht", vat_number="NL123456782B01")
    check_order(dutch, rows)
    assert {dec(r["taxRate"]) for r in rows} == {Decimal("0.21"), Decimal("0.09")}
    assert dutch["companyName"] == "Bakkerij De Zon: Utrecht"

    bad = control.post("/_sandbox/orders", json={"orders": [{"lines": lines, "country": "xx"}]})
    assert bad.status_code == 422
    half = [{"variant_id": variant["id"], "quantity": 1.5}]
    assert control.post("/_sandbox/orders", json={"orders": [{"lines": half}]}
                        ).status_code == 422
    bad = control.post("/_sandbox/orders", json={"orders": [{"lines": lines,
                                                             "payment_fee_incl": "-1"}]})
    assert bad.status_code == 422


def test_control_plane_defaults_follow_the_shop_rules(control, api):
    """An existing payload (no money options) still works; the rules fill in."""
    order, rows = _create(control, api, lines=MIXED_LINES, payment_method="afterpay",
                          shipment_method="core|postnl|standard")
    check_order(order, rows)
    assert dec(order["shipmentBasePriceIncl"]) == Decimal("4.95")  # goods 35.10 < 75
    assert dec(order["paymentPriceIncl"]) == Decimal("1.95")
    assert len(order["shipmentTaxRates"]) == 2
    plain, rows = _create(control, api, lines=MIXED_LINES[:1], payment_method="creditcard")
    check_order(plain, rows)
    assert dec(plain["paymentPriceIncl"]) == 0 and plain["paymentTaxRates"] == []


def test_changing_lines_reprices_with_the_same_rules(control, api):
    order, _ = _create(control, api, lines=MIXED_LINES, payment_method="ideal",
                       shipping_incl="6.95", shipment_discount_incl="2.00")
    changed = control.patch(f"/_sandbox/orders/{order['id']}", json={"lines": MIXED_LINES[1:]})
    assert changed.status_code == 200
    order = api.get(f"orders/{order['id']}.json").json()["order"]
    rows = order["products"]["resource"]["embedded"]
    check_order(order, rows)
    assert len(order["shipmentTaxRates"]) == 1 and dec(order["shipmentDiscountIncl"]) == 2
    assert dec(order["paymentPriceIncl"]) == Decimal("0.29")  # iDEAL under €50
    fee = control.patch(f"/_sandbox/orders/{order['id']}",
                        json={"payment_fee_incl": "1.00", "shipment_discount_incl": None})
    assert fee.status_code == 200
    order = api.get(f"orders/{order['id']}.json").json()["order"]
    check_order(order, order["products"]["resource"]["embedded"])
    assert dec(order["paymentPriceIncl"]) == 1 and dec(order["shipmentDiscountIncl"]) == 0
    assert control.patch(f"/_sandbox/orders/{order['id']}",
                         json={"payment_fee_incl": "x"}).status_code == 422


def test_checkout_prices_fees_and_reverse_charge(control, api):
    variant = next(v for v in api.get("variants.json", params={"limit": 250}).json()[
        "variants"] if 5 < dec(v["priceIncl"]) < 30 and dec(v["priceIncl"]) > dec(v["priceExcl"]))
    address = {"name": "Jan Peeters", "address1": "Kerkstraat", "number": "5",
               "zipcode": "2000", "city": "Antwerpen", "country": "be"}
    checkout = api.post("checkouts.json", json={"checkout": {
        "customer": {"email": "jan@example.be", "firstname": "Jan", "lastname": "Peeters",
                     "companyName": "Peeters BV", "companyVatNumber": "BE0123456749"},
        "billing_address": address, "payment_method": "afterpay",
        "shipment_method": "core|postnl|standard"}}).json()["checkout"]
    api.post(f"checkouts/{checkout['id']}/products.json",
             json={"variant_id": variant["id"], "quantity": 1})
    methods = {m["id"]: m for m in api.get(
        f"checkouts/{checkout['id']}/payment_methods.json").json()["payment_methods"]}
    assert methods["afterpay"]["price_incl"] == 1.95 and methods["creditcard"]["price_incl"] == 0
    assert methods["cod"]["title"] == "Rembours" and methods["cod"]["price_incl"] == 4.95
    quote = api.get(f"checkouts/{checkout['id']}.json").json()["checkout"]["quote"]
    order = api.post(f"checkouts/{checkout['id']}/order.json").json()["order"]
    rows = order["products"]["resource"]["embedded"]
    check_order(order, rows)
    assert dec(rows[0]["taxRate"]) == 0 and order["companyVatNumber"] == "BE0123456749"
    assert dec(order["paymentPriceIncl"]) == Decimal("1.95")
    assert quote["price_incl"] == order["priceIncl"]
    assert quote["payment_price_incl"] == order["paymentPriceIncl"]
