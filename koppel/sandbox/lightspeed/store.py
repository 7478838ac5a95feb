"""The shop's in-memory state: one lock around everything, records kept in id order.

Dicts keep insertion order and ids only grow, so iterating a table is iterating by
ascending id: page/limit and ``since_id`` scans never skip or repeat a record when new
ones arrive during the scan (they land at the end).
"""

from __future__ import annotations

import hashlib
import random
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Iterable, Iterator

from koppel.limits import LIGHTSPEED

from .clock import Clock
from .credits import CreditBook, seed_credits
from .errors import ApiError, invalid, not_found
from .money import ZERO, cents, excl_from_incl, unit
from .pricing import RowSpec, apply_totals, build_row
from .pricing import SHIPPING_TAX_MODES
from .seed import (COUNTRIES, CURRENCIES, DEFAULT_ANCHOR, ORDER_STATUSES, PAYMENT_METHODS,
                   PAYMENT_WEIGHTS, PICKUP_STATUSES, SEED_SPAN, SHIPMENT_METHODS,
                   SHIPMENT_PROMOS, SPECIAL_NAMES, IdSource, ShopGenerator, address_fields,
                   is_huge_order, payment_fee, shipment_discount, shipped_quantities,
                   shipping_base, statuses_for, vat_regime)
from .serialize import Ref

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
PAYMENT_STATUSES = ("not_paid", "partially_paid", "paid", "cancelled")
SHIPMENT_STATUSES = ("not_shipped", "partially_shipped", "shipped", "cancelled")
PERSON_FIELDS = (
    "email", "firstname", "middlename", "lastname", "phone", "mobile", "gender",
    "birthDate", "nationalId", "isCompany", "companyName", "companyCoCNumber",
    "companyVatNumber", "memo", "isConfirmed",
    *(f"address{k}{f}" for k in ("Billing", "Shipping")
      for f in ("Name", "Street", "Street2", "Number", "Extension", "Zipcode", "City",
                "Region", "Country")),
    "addressShippingCompany",
)
ORDER_PERSON_FIELDS = tuple(k for k in PERSON_FIELDS if k not in ("memo", "isConfirmed"))
PRODUCT_FIELDS = ("title", "fulltitle", "description", "content", "visibility", "url",
                  "data01", "data02", "data03", "isVisible")
VARIANT_FIELDS = ("sku", "ean", "articleCode", "title", "stockLevel", "stockTracking",
                  "stockAlert", "stockMinimum", "stockBuyMinimum", "stockBuyMaximum",
                  "priceExcl", "priceIncl", "priceCost", "oldPriceExcl", "oldPriceIncl",
                  "isDefault", "sortOrder", "hs")
ORDER_WRITABLE = ("status", "paymentStatus", "shipmentStatus", "memo", "comment",
                  "deliveryDate", "shippingDate")
#: Control-plane amounts that override the shop's rules (create and PATCH).
MONEY_OPTIONS = ("shipping_incl", "shipment_discount_incl", "payment_fee_incl")


@dataclass(frozen=True)
class Sizes:
    orders: int = 60
    products: int = 40
    customers: int = 40


@dataclass
class ShopSettings:
    """Shop-level settings that change how orders are priced or shown.

    ``currency``: the shop currency in ``shop.json`` (orders carry none; amounts are the
    same numbers in any currency). ``shipping_tax``: how shipping and payment fees are
    taxed when an order mixes VAT rates (``pro_rata`` or ``highest_rate``, see
    :mod:`.pricing`). ``reverse_charge``: EU companies outside NL with a VAT number are
    charged 0 % (intra-community supply)."""

    currency: str = "EUR"
    shipping_tax: str = "pro_rata"
    reverse_charge: bool = True

    def check(self) -> None:
        if self.currency not in CURRENCIES:
            raise ValueError(f"currency must be one of {', '.join(CURRENCIES)}")
        if self.shipping_tax not in SHIPPING_TAX_MODES:
            raise ValueError(f"shipping_tax must be one of {', '.join(SHIPPING_TAX_MODES)}")


TAXES = (  # the shop's VAT rates (``taxes.json``)
    (Decimal("0.21"), "21% BTW", True), (Decimal("0.09"), "9% BTW", False),
    (Decimal("0"), "0% BTW", False),
)
WEBHOOK_GROUPS = ("customers", "invoices", "orders", "products", "quotes", "reviews",
                  "returns", "shipments", "subscriptions", "tickets", "variants")
WEBHOOK_ACTIONS = ("*", "created", "updated", "deleted")
MAX_WEBHOOKS = LIGHTSPEED.webhooks_per_shop


def credentials_for(seed: int) -> tuple[str, str]:
    """A 32-character API key and secret, deterministic from the seed."""
    key = hashlib.sha256(f"koppel-lightspeed-key-{seed}".encode()).hexdigest()[:32]
    secret = hashlib.sha256(f"koppel-lightspeed-secret-{seed}".encode()).hexdigest()[:32]
    return key, secret


def parse_country(value: Any) -> dict[str, Any]:
    code = value.get("code") if isinstance(value, dict) else value
    code = str(code or "").lower()
    if code not in COUNTRIES:
        raise invalid({"country": [f"Unknown country '{code}'."]})
    return dict(COUNTRIES[code])


def parse_money(value: Any, field: str) -> Decimal:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise invalid({field: ["Must be a number."]}) from None
    if amount < 0 or not amount.is_finite():
        raise invalid({field: ["Must be zero or more."]})
    return amount


class LazyOrders:
    """The order table. Seeded orders are stubs until first read (see ``_seed_orders``);
    ``headers()`` gives id, number and timestamps without building anything. Callers
    hold the store lock."""

    def __init__(self, build: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        self._records: dict[int, dict[str, Any]] = {}
        self._build = build

    def add_stub(self, stub: dict[str, Any]) -> None:
        self._records[stub["id"]] = stub

    def _full(self, record: dict[str, Any]) -> dict[str, Any]:
        if "_seed_index" in record:
            record = self._build(record)
            self._records[record["id"]] = record
        return record

    def __setitem__(self, order_id: int, record: dict[str, Any]) -> None:
        self._records[order_id] = record

    def get(self, order_id: int, default: Any = None) -> Any:
        record = self._records.get(order_id)
        return default if record is None else self._full(record)

    def __getitem__(self, order_id: int) -> dict[str, Any]:
        return self._full(self._records[order_id])

    def __contains__(self, order_id: object) -> bool:
        return order_id in self._records

    def __delitem__(self, order_id: int) -> None:
        del self._records[order_id]

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[int]:
        return iter(list(self._records))

    def headers(self) -> list[dict[str, Any]]:
        return list(self._records.values())

    def full(self, records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        return [self._full(r) for r in records]

    def values(self) -> list[dict[str, Any]]:
        return self.full(list(self._records.values()))

    def materialize_all(self) -> None:
        self.values()


class ShopStore:
    """Every table of one emulated shop, guarded by ``self.lock``."""

    def __init__(self, seed: int = 1, sizes: Sizes = Sizes(),
                 anchor: datetime = DEFAULT_ANCHOR, clock: Clock | None = None,
                 settings: ShopSettings | None = None) -> None:
        self.lock = threading.RLock()
        self.clock = clock or Clock()
        self.anchor = anchor
        self.settings = settings or ShopSettings()
        self.settings.check()
        self.reset(seed, sizes)

    # -- seeding -----------------------------------------------------------------------
    def reset(self, seed: int, sizes: Sizes, *, currency: str | None = None,
              shipping_tax: str | None = None) -> None:
        """Reseed everything; ``currency``/``shipping_tax`` change the shop settings
        (left out: kept as they were)."""
        with self.lock:
            settings = ShopSettings(currency or self.settings.currency,
                                    shipping_tax or self.settings.shipping_tax,
                                    self.settings.reverse_charge)
            settings.check()
            self.settings = settings
            self.seed = seed
            self.sizes = sizes
            self.api_key, self.api_secret = credentials_for(seed)
            self.ids = IdSource()
            self.gen = ShopGenerator(seed, self.anchor)
            self.shop = self._shop()
            self.customers: dict[int, dict[str, Any]] = {}
            self.orders = LazyOrders(self._materialize)
            self._seed_customer_ids: list[int] = []
            self._seed_variants: list[dict[str, Any]] = []
            self.metafields: dict[int, dict[str, Any]] = {}
            self.movements: dict[int, dict[str, Any]] = {}
            self.checkouts: dict[int, dict[str, Any]] = {}
            self.webhooks: dict[int, dict[str, Any]] = {}
            self.taxes = {310_100 + i: {"id": 310_100 + i, "createdAt": self.shop["createdAt"],
                                        "updatedAt": self.shop["createdAt"],
                                        "isDefault": default, "rate": rate, "title": title}
                          for i, (rate, title, default) in enumerate(TAXES)}
            self.credit_book = CreditBook()
            self.order_number = 0
            cat = self.gen.catalogue(sizes.products, self.ids)
            self.products, self.variants = cat.products, cat.variants
            self.categories, self.categories_products = cat.categories, cat.categories_products
            self.images, self.brands, self.suppliers = cat.images, cat.brands, cat.suppliers
            self.types, self.types_attributes = cat.types, cat.types_attributes
            self.attributes = cat.attributes
            self._seed_customers(sizes.customers)
            self._seed_orders(sizes.orders)
            seed_credits(self)

    def _shop(self) -> dict[str, Any]:
        sid = 100000 + self.seed
        return {
            "id": sid, "createdAt": self.anchor - SEED_SPAN - timedelta(days=60),
            "updatedAt": self.anchor, "isLive": True, "title": "Koppel Demowinkel",
            "mainDomain": f"demowinkel-{self.seed}.webshopapp.com",
            "currency": {**CURRENCIES[self.settings.currency], "isDefault": True,
                         "currencyRate": 1},
            "language": {"id": 1, "code": "nl", "locale": "nl_NL", "title": "Nederlands"},
            "languages": ["nl", "en"], "country": dict(COUNTRIES["nl"]),
            "timezone": "Europe/Amsterdam",
        }

    def _seed_customers(self, count: int) -> None:
        start = self.anchor - SEED_SPAN - timedelta(days=20)
        span = (self.anchor - start).total_seconds()
        rng = self.gen.rng
        for index in range(count):
            created = start + timedelta(seconds=int(span * (index + rng.random()) / max(count, 1)))
            updated = min(self.anchor, created + timedelta(days=rng.choice((0, 0, 1, 30))))
            cid = self.ids.next("customers")
            self.customers[cid] = self.gen.customer(cid, index, created, updated)

    def _seed_orders(self, count: int) -> None:
        """Seeded orders start as stubs (id, number, timestamps) and are built on first
        access from their own ``Random(seed/order/index)``, so startup stays fast and the
        result does not depend on the order in which they are read."""
        start = self.anchor - SEED_SPAN
        span = SEED_SPAN.total_seconds()
        rng = self.gen.rng
        self._seed_customer_ids = list(self.customers)
        self._seed_variants = list(self.variants.values())
        first_id = IdSource.STARTS["orders"]
        huge_rows = IdSource.STARTS["order_rows"] + 10 * count + 10
        for index in range(count):
            created = start + timedelta(seconds=int(span * (index + rng.random()) / max(count, 1)))
            updated = created if rng.random() < 0.3 else min(
                self.anchor, created + timedelta(hours=rng.randint(1, 24 * 20)))
            oid = first_id + 2 * index + rng.randint(0, 1)
            stub = {"id": oid, "createdAt": created, "updatedAt": updated,
                    "number": f"ORD{index + 1:05d}", "_seed_index": index}
            huge = is_huge_order(self.seed, index)
            if huge:  # its rows get ids of their own, after the 10 per order
                stub["_huge"], stub["_row_base"] = huge, huge_rows
                huge_rows += huge
            self.orders.add_stub(stub)
        self.order_number = count
        self.ids.skip_to("orders", first_id + 2 * count + 2)
        self.ids.skip_to("order_rows", huge_rows)
        self.ids.skip_to("shipments", IdSource.STARTS["shipments"] + count + 1)

    def _materialize(self, stub: dict[str, Any]) -> dict[str, Any]:
        index = stub["_seed_index"]
        with self.lock, self.gen.using(random.Random(f"{self.seed}/order/{index}")):
            row_base = stub.get("_row_base", IdSource.STARTS["order_rows"] + 10 * index)
            order = self._random_order(index, stub["createdAt"], stub["updatedAt"],
                                       order_id=stub["id"], number=stub["number"],
                                       row_base=row_base, huge=stub.get("_huge", 0))
            self._sync_shipment(order, shipment_id=IdSource.STARTS["shipments"] + index)
            return order

    def _before_catalogue_change(self) -> None:
        """Seeded orders snapshot customers and variants: build them before those change."""
        self.orders.materialize_all()

    # -- order assembly ----------------------------------------------------------------
    def _random_order(self, index: int, created: datetime, updated: datetime, *,
                      order_id: int | None = None, number: str | None = None,
                      row_base: int | None = None, huge: int = 0) -> dict[str, Any]:
        gen = self.gen
        rng = gen.rng
        status = gen.order_status(index)
        plan = gen.order_plan(index)
        kind = plan["kind"]
        needs_shipping = bool(plan.get("mixed") or plan.get("promo"))
        if needs_shipping and status in PICKUP_STATUSES:
            status = "completed_shipped"  # a pinned case that must show shipping costs
        customer_ids = self._seed_customer_ids or list(self.customers)
        guest = index == 4 or not customer_ids or (index > 10 and rng.random() < 0.2)
        customer = None if guest else self.customers[rng.choice(customer_ids)] \
            if index > 10 else self.customers[customer_ids[index % len(customer_ids)]]
        names = plan.get("names")
        special = False
        if kind == "b2b_nl" and not names:  # a registered Dutch company, if there is one
            dutch = [c for c in (self.customers[i] for i in customer_ids)
                     if c["isCompany"] and c["addressBillingCountry"]["code"] == "nl"]
            customer = rng.choice(dutch) if dutch else None
            special = customer is None
        elif kind != "domestic" or names:
            customer, special = None, True
        if special:
            company = kind in ("b2b_nl", "b2b_eu") or (
                kind == "domestic" and bool(names) and SPECIAL_NAMES[names][3] is not None)
            person = gen.order_person(plan.get("country", "nl"), company=company,
                                      names=names)
        elif customer is None:
            person = gen.person(index + 1000, guest=True).fields
        else:
            person = {k: customer[k] for k in ORDER_PERSON_FIELDS if k in customer}
        if needs_shipping and vat_regime(person) != "domestic":
            customer, person = None, gen.person(index + 1000, guest=True).fields
        country = person["addressBillingCountry"]["code"]
        weights = PAYMENT_WEIGHTS["nl" if country in ("nl", "be") else "abroad"]
        payment_id = rng.choices(list(weights), weights=list(weights.values()))[0]
        if country == "be" and rng.random() < 0.5:
            payment_id = "bancontact"
        if index < 10:
            payment_id = PAYMENT_METHODS[index % 5][0]
        payment_id = plan.get("payment", payment_id)
        payment = next(m for m in PAYMENT_METHODS if m[0] == payment_id)
        payment_status, shipment_status = statuses_for(status, payment[0], rng)
        if index == 2:
            shipment_status = "partially_shipped"
        variants = self._seed_variants or list(self.variants.values())
        if huge:
            lines = gen.huge_lines(huge, variants)
        elif plan.get("mixed"):
            lines = [(v, 1) for v in self._cheapest_per_rate(variants)]
        elif plan.get("cheap") and any(v["priceIncl"] < 1 for v in variants):
            cheap = next(v for v in variants if v["priceIncl"] < 1)
            lines = [(cheap, 3)] + gen.random_lines(index, variants, self.products)[:1]
        else:
            lines = gen.random_lines(index, variants, self.products)
        specs = []
        quantities = [q for _, q in lines]
        shipped = shipped_quantities(shipment_status, quantities)
        # pinned money cases stay plain (no unknown SKUs, row or order discounts)
        pinned = bool(plan.get("mixed") or plan.get("cheap") or plan.get("promo"))
        for pos, ((variant, qty), qty_shipped) in enumerate(zip(lines, shipped)):
            product = self.products.get(variant["product"].id)
            unknown = None
            if (index == 1 and pos == len(lines) - 1) or (
                    index > 10 and not pinned and rng.random() < 0.03):
                unknown = f"OUD-{rng.randint(1000, 9999)}"
            if index == 5 and pos == 0:
                no_sku = next((v for v in variants if not v["sku"]), None)
                if no_sku is not None:
                    variant, product = no_sku, self.products[no_sku["product"].id]
            discount = ZERO
            if index == 6 or (not pinned and rng.random() < 0.12):
                pct = rng.choice((Decimal("0.10"), Decimal("0.15"), Decimal("0.20")))
                discount = cents(variant["priceIncl"] * qty * pct)
            invoiced = qty if payment_status == "paid" else 0
            specs.append(self._spec(variant, product, qty, discount, qty_shipped, invoiced,
                                    unknown))
        discount_type, discount_pct, coupon, discount_incl = "amount", ZERO, "", ZERO
        if index == 3 or (index > 10 and not pinned and rng.random() < 0.1):
            if rng.random() < 0.5:
                discount_type, coupon, discount_incl = "amount", "WELKOM5", Decimal("5.00")
            else:
                discount_type, discount_pct, coupon = "percentage", Decimal("10"), "ZOMER10"
        if status in PICKUP_STATUSES:
            shipment = SHIPMENT_METHODS[2]
        elif country not in ("nl", "be"):
            shipment = SHIPMENT_METHODS[3]
        else:
            shipment = rng.choice(SHIPMENT_METHODS[:2])
        promo = plan.get("promo")
        if promo is None and index > 22 and not coupon and rng.random() < 0.33:
            promo = rng.choices(tuple(SHIPMENT_PROMOS), weights=(45, 30, 25))[0]
        if promo and not coupon:
            coupon = SHIPMENT_PROMOS[promo][0]
        order = self._assemble(
            created=created, updated=updated, person=person, customer=customer,
            specs=specs, status=status, payment=payment, payment_status=payment_status,
            shipment=shipment, shipment_status=shipment_status,
            discount=(discount_type, discount_pct, coupon, discount_incl),
            order_id=order_id, number=number, row_base=row_base,
            charges={"promo": promo} if promo else None)
        return order

    @staticmethod
    def _cheapest_per_rate(variants: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One variant per VAT rate (the cheapest), highest rate first."""
        best: dict[Decimal, dict[str, Any]] = {}
        priced = [v for v in variants if v["priceIncl"] >= 1] or variants
        for variant in priced:
            rate = variant["_tax_rate"]
            if rate not in best or variant["priceIncl"] < best[rate]["priceIncl"]:
                best[rate] = variant
        return [best[rate] for rate in sorted(best, reverse=True)]

    def _spec(self, variant: dict[str, Any] | None, product: dict[str, Any] | None,
              quantity: int, discount: Decimal = ZERO, shipped: int = 0, invoiced: int = 0,
              unknown_sku: str | None = None) -> RowSpec:
        brand = ""
        if product and product["brand"]:
            brand = self.brands[product["brand"].id]["title"]
        return self.gen.row_spec(variant, product, quantity, brand, discount_incl=discount,
                                 quantity_shipped=shipped, quantity_invoiced=invoiced,
                                 unknown_sku=unknown_sku)

    def _assemble(self, *, created: datetime, updated: datetime, person: dict[str, Any],
                  customer: dict[str, Any] | None, specs: list[RowSpec], status: str,
                  payment: tuple[str, str], payment_status: str,
                  shipment: tuple[str, str, Decimal, bool], shipment_status: str,
                  discount: tuple[str, Decimal, str, Decimal], comment: str = "",
                  order_id: int | None = None, number: str | None = None,
                  row_base: int | None = None, charges: dict[str, Any] | None = None,
                  regime: str | None = None) -> dict[str, Any]:
        """An order from its parts. ``charges`` fixes amounts the shop's rules would
        otherwise set (``shipping_incl``, ``shipment_discount_incl``,
        ``payment_fee_incl``) or names a shipment ``promo``; ``regime`` overrides the
        VAT treatment derived from the person (:func:`~.seed.vat_regime`)."""
        if order_id is None:
            order_id = self.ids.next("orders", gap=1 + len(self.orders) % 2)
            self.order_number += 1
            number = f"ORD{self.order_number:05d}"
        oid = order_id
        regime = regime or vat_regime(person, self.settings.reverse_charge)
        if regime != "domestic":
            specs = [self.gen.zero_rated(spec) for spec in specs]
        rows = [build_row(row_base + pos if row_base is not None
                          else self.ids.next("order_rows"), spec)
                for pos, spec in enumerate(specs)]
        order: dict[str, Any] = {
            "id": oid, "createdAt": created, "updatedAt": updated,
            "number": number, "status": status,
            "customStatusId": False, "channel": "main", "remoteIp": "", "userAgent": "",
            "referralId": False,
        }
        order.update(person)
        order.update({
            "paymentId": payment[0], "paymentStatus": payment_status,
            "paymentIsPost": False, "paymentIsInvoiceExternal": payment[0] == "afterpay",
            "paymentTitle": payment[1], "paymentData": [],
            "shipmentId": shipment[0], "shipmentStatus": shipment_status,
            "shipmentIsCashOnDelivery": payment[0] == "cod",
            "shipmentIsPickup": shipment[3],
            "shipmentTitle": shipment[1], "shipmentData": [],
            "shippingDate": "", "deliveryDate": "",
            "isNewCustomer": customer is None or customer["createdAt"] >= created,
            "comment": comment, "memo": "", "allowNotifications": True,
            "customer": Ref(f"customers/{customer['id']}", customer["id"]) if customer else False,
            "invoices": Ref(f"invoices?order={oid}"),
            "shipments": Ref(f"shipments?order={oid}"),
            "products": Ref(f"orders/{oid}/products"),
            "metafields": Ref(f"orders/{oid}/metafields"),
            "_rows": rows,
            "_shipment": shipment,
            "_discount": discount,
            "_charges": dict(charges or {}),
            "_regime": regime,
        })
        self._price(order, rows, shipment, discount)
        self.orders[oid] = order
        if row_base is None:  # seeded orders get their shipment in _materialize
            self._sync_shipment(order)
        return order

    def _price(self, order: dict[str, Any], rows: list[dict[str, Any]],
               shipment: tuple[str, str, Decimal, bool],
               discount: tuple[str, Decimal, str, Decimal]) -> None:
        """Money fields from the rows and the shop's rules for shipping (free from
        €75 at home), shipment promotions and payment fees, unless ``_charges`` fixes
        them."""
        kind, pct, coupon, amount = discount
        charges = order.get("_charges") or {}
        rows_incl = sum((r["priceIncl"] for r in rows), ZERO)
        discount_incl = cents(rows_incl * pct / 100) if kind == "percentage" else amount
        discount_incl = min(cents(discount_incl), rows_incl)
        country = order["addressShippingCountry"]["code"]
        base = charges.get("shipping_incl")
        if base is None:
            base = shipping_base(shipment, rows_incl, country)
        ship_discount = charges.get("shipment_discount_incl")
        if ship_discount is None:
            ship_discount = shipment_discount(charges.get("promo"), base, rows_incl)
        ship_discount = min(ship_discount, base)
        fee = charges.get("payment_fee_incl")
        if fee is None:
            fee = payment_fee(order["paymentId"],
                              rows_incl - discount_incl + base - ship_discount)
        apply_totals(order, rows, shipment_price_incl=base, discount_incl=discount_incl,
                     shipment_discount_incl=ship_discount, payment_price_incl=fee,
                     shipping_tax=self.settings.shipping_tax)
        order["discountType"] = kind
        order["discountPercentage"] = pct
        order["discountCouponCode"] = coupon

    # -- shipments ---------------------------------------------------------------------
    def _sync_shipment(self, order: dict[str, Any], shipment_id: int | None = None) -> None:
        """An order that is (partially) shipped has one shipment record (created when
        it is first seen shipped; seeded ones get an id from their index)."""
        if order["shipmentStatus"] not in ("shipped", "partially_shipped") \
                or order.get("_shipment_record"):
            return
        if shipment_id is None:
            shipment_id = self.ids.next("shipments")
            when = order["updatedAt"]
        else:
            when = min(order["updatedAt"], order["createdAt"] + timedelta(days=1))
        digest = hashlib.sha256(f"{self.seed}/{shipment_id}".encode()).hexdigest()
        order["_shipment_record"] = {
            "id": shipment_id, "createdAt": when, "updatedAt": when,
            "number": f"SHP{shipment_id - IdSource.STARTS['shipments'] + 1:05d}",
            "status": "shipped",
            "trackingCode": "" if order["shipmentIsPickup"]
            else "3SKOPP" + str(int(digest[:12], 16))[:9],
            "doNotifyShipped": True, "doNotifyReadyForPickup": order["shipmentIsPickup"],
            "doNotifyTrackingCode": not order["shipmentIsPickup"],
            "totalWeight": 0, "totalSizeX": 0, "totalSizeY": 0, "totalSizeZ": 0,
            "customer": order["customer"],
            "order": Ref(f"orders/{order['id']}", order["id"]),
            "products": Ref(f"shipments/{shipment_id}/products"),
            "metafields": Ref(f"shipments/{shipment_id}/metafields"),
            "events": Ref(f"orders/{order['id']}/events"),
            "_order_id": order["id"],
        }

    def shipments(self, order_id: int | None = None) -> list[dict[str, Any]]:
        """Shipment records in id order (builds the seeded orders it needs)."""
        if order_id is not None:
            order = self.get(self.orders, order_id)
            record = order.get("_shipment_record")
            return [record] if record else []
        records = [o["_shipment_record"] for o in self.orders.values()
                   if o.get("_shipment_record")]
        return sorted(records, key=lambda r: r["id"])

    def shipment(self, shipment_id: int) -> dict[str, Any]:
        for record in self.shipments():
            if record["id"] == shipment_id:
                return record
        raise not_found()

    def shipment_products(self, shipment: dict[str, Any]) -> list[dict[str, Any]]:
        """The shipped rows (``quantityShipped``; a fully shipped order ships all)."""
        order = self.orders[shipment["_order_id"]]
        out = []
        for row in order["_rows"]:
            quantity = row["quantityShipped"] or (
                row["quantityOrdered"] if order["shipmentStatus"] == "shipped" else 0)
            if quantity:
                out.append({"id": row["id"], "productTitle": row["productTitle"],
                            "variantTitle": row["variantTitle"],
                            "articleCode": row["articleCode"], "ean": row["ean"],
                            "sku": row["sku"], "quantity": quantity,
                            "orderProduct": Ref(f"orders/{order['id']}/products/{row['id']}",
                                                row["id"]),
                            "product": row["product"], "variant": row["variant"]})
        return out

    # -- webhooks ----------------------------------------------------------------------
    def _webhook_changes(self, data: dict[str, Any], *, creating: bool) -> dict[str, Any]:
        errors: dict[str, list[str]] = {}
        out: dict[str, Any] = {}
        checks = (("itemGroup", WEBHOOK_GROUPS), ("itemAction", WEBHOOK_ACTIONS),
                  ("format", ("json", "xml")))
        for key, allowed in checks:
            if key in data:
                if data[key] not in allowed:
                    errors[key] = [f"Must be one of {', '.join(allowed)}."]
                else:
                    out[key] = data[key]
            elif creating and key != "format":
                errors[key] = ["This field is required."]
        if "address" in data or creating:
            address = str(data.get("address") or "")
            if not re.match(r"^https?://[^\s/]+", address) or len(address) > 255:
                errors["address"] = ["Must be an http(s) URL of at most 255 characters."]
            else:
                out["address"] = address
        if "isActive" in data:
            if not isinstance(data["isActive"], bool):
                errors["isActive"] = ["Must be true or false."]
            else:
                out["isActive"] = data["isActive"]
        if "language" in data:
            code = data["language"].get("code") if isinstance(data["language"], dict) \
                else data["language"]
            if code not in self.shop["languages"]:
                errors["language"] = [f"Unknown or inactive language '{code}'."]
            else:
                out["language"] = self._language(code)
        if errors:
            raise invalid(errors)
        return out

    def _language(self, code: str) -> dict[str, Any]:
        languages = {"nl": {"id": 1, "code": "nl", "locale": "nl_NL", "title": "Nederlands"},
                     "en": {"id": 2, "code": "en", "locale": "en_GB", "title": "English"}}
        return dict(languages[code])

    def create_webhook(self, data: dict[str, Any], lang: str = "nl") -> dict[str, Any]:
        with self.lock:
            changes = self._webhook_changes(data, creating=True)
            if len(self.webhooks) >= MAX_WEBHOOKS:
                raise invalid({"webhook": [f"A shop can have at most {MAX_WEBHOOKS} webhooks."]})
            now = self.clock.now()
            wid = self.ids.next("webhooks")
            record = {"id": wid, "createdAt": now, "updatedAt": now, "isActive": True,
                      "itemGroup": "", "itemAction": "", "language": self._language(
                          lang if lang in self.shop["languages"] else "nl"),
                      "format": "json", "address": ""}
            record.update(changes)
            self.webhooks[wid] = record
            return record

    def update_webhook(self, webhook_id: int, data: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            record = self.get(self.webhooks, webhook_id)
            record.update(self._webhook_changes(data, creating=False))
            record["updatedAt"] = self.clock.now()
            return record

    def delete_webhook(self, webhook_id: int) -> None:
        with self.lock:
            self.get(self.webhooks, webhook_id)
            del self.webhooks[webhook_id]

    def change_settings(self, *, currency: str | None = None,
                        shipping_tax: str | None = None) -> ShopSettings:
        """Shop settings changed at runtime: orders placed afterwards follow them;
        seeded orders are built first so they keep the settings they were made with."""
        with self.lock:
            settings = ShopSettings(currency or self.settings.currency,
                                    shipping_tax or self.settings.shipping_tax,
                                    self.settings.reverse_charge)
            settings.check()
            self.orders.materialize_all()
            self.settings = settings
            self.shop["currency"] = {**CURRENCIES[settings.currency], "isDefault": True,
                                     "currencyRate": 1}
            return settings

    def add_orders(self, count: int) -> list[dict[str, Any]]:
        """Random new orders created now (control plane)."""
        with self.lock:
            now = self.clock.now()
            return [self._random_order(10_000 + i, now, now) for i in range(count)]

    def create_order(self, data: dict[str, Any]) -> dict[str, Any]:
        """An order from explicit data (control plane)::

            {"customer_id": 6100001, "lines": [{"variant_id": 64000003, "quantity": 2,
              "discount_incl": "1.00"} | {"sku": "NOT-IN-CATALOGUE", "title": "…",
              "price_incl": "9.95", "tax_rate": "0.21", "quantity": 1}],
             "status": "processing_awaiting_shipment", "payment_method": "ideal",
             "shipment_method": "core|postnl|standard", "discount_incl": "5.00",
             "created_at": "2025-07-01T10:00:00+00:00"}

        Optional money and person fields (left out: the shop's rules and the customer's
        or guest's data apply, as before): ``shipping_incl`` (shipping before discount),
        ``shipment_discount_incl``, ``payment_fee_incl``, ``coupon``; ``is_company``,
        ``company_name``, ``vat_number``, ``coc_number``, ``country`` (billing and
        shipping), ``vat_regime`` (``domestic``/``reverse_charge``/``export``; default:
        derived from country, company and VAT number)."""
        with self.lock:
            now = self.clock.now()
            created = _parse_time(data["created_at"]) if data.get("created_at") else now
            customer = None
            if data.get("customer_id") is not None:
                customer = self.customers.get(int(data["customer_id"]))
                if customer is None:
                    raise invalid({"customer_id": ["Unknown customer."]})
                person = {k: customer[k] for k in ORDER_PERSON_FIELDS if k in customer}
            else:
                person = self.gen.person(10_000, guest=True).fields
                person.update({k: v for k, v in data.get("person", {}).items()
                               if k in PERSON_FIELDS})
            self._person_overrides(person, data)
            status = data.get("status", "processing_awaiting_payment")
            _check_choice("status", status, ORDER_STATUSES)
            payment = _pick(PAYMENT_METHODS, data.get("payment_method", "ideal"),
                            "payment_method")
            shipment = _pick(SHIPMENT_METHODS, data.get("shipment_method",
                                                        SHIPMENT_METHODS[0][0]),
                             "shipment_method")
            pay_status, ship_status = statuses_for(status, payment[0], self.gen.rng)
            pay_status = data.get("payment_status", pay_status)
            ship_status = data.get("shipment_status", ship_status)
            specs = self._line_specs(data.get("lines") or [], ship_status)
            discount = ("amount", ZERO, data.get("coupon", ""),
                        parse_money(data.get("discount_incl", 0), "discount_incl"))
            charges = {key: cents(parse_money(data[key], key))
                       for key in MONEY_OPTIONS if data.get(key) is not None}
            regime = data.get("vat_regime")
            if regime is not None:
                _check_choice("vat_regime", regime, ("domestic", "reverse_charge", "export"))
            return self._assemble(created=created, updated=created, person=person,
                                  customer=customer, specs=specs, status=status,
                                  payment=payment, payment_status=pay_status,
                                  shipment=shipment, shipment_status=ship_status,
                                  discount=discount, comment=data.get("comment", ""),
                                  charges=charges, regime=regime)

    @staticmethod
    def _person_overrides(person: dict[str, Any], data: dict[str, Any]) -> None:
        """``is_company``/``company_name``/``vat_number``/``coc_number``/``country`` of
        a control-plane order (they change the order only, not the customer)."""
        if data.get("country") is not None:
            try:
                country = parse_country(data["country"])
            except ApiError:
                raise invalid({"country": [f"Unknown country '{data['country']}'."]}) from None
            person["addressBillingCountry"] = dict(country)
            person["addressShippingCountry"] = dict(country)
        for key, field in (("company_name", "companyName"), ("vat_number", "companyVatNumber"),
                           ("coc_number", "companyCoCNumber")):
            if data.get(key) is not None:
                person[field] = str(data[key])
        if data.get("company_name") is not None:
            person["addressShippingCompany"] = str(data["company_name"])
        if data.get("is_company") is not None:
            person["isCompany"] = bool(data["is_company"])
        elif data.get("company_name"):
            person["isCompany"] = True

    def _line_specs(self, lines: list[dict[str, Any]], shipment_status: str) -> list[RowSpec]:
        if not lines:
            raise invalid({"lines": ["At least one line is required."]})
        quantities = []
        for line in lines:
            quantity = line.get("quantity", 1)
            if isinstance(quantity, str) and quantity.strip().isdigit():
                quantity = int(quantity)
            if isinstance(quantity, bool) or not isinstance(quantity, int):
                raise invalid({"quantity": ["Must be a whole number (quantityOrdered is an "
                                            "integer)."]})
            quantities.append(quantity)
        shipped = shipped_quantities(shipment_status, quantities)
        specs = []
        for line, qty, qty_shipped in zip(lines, quantities, shipped):
            if qty < 1:
                raise invalid({"quantity": ["Must be at least 1."]})
            discount = parse_money(line.get("discount_incl", 0), "discount_incl")
            if "variant_id" in line:
                variant = self.variants.get(int(line["variant_id"]))
                if variant is None:
                    raise invalid({"variant_id": [f"Unknown variant {line['variant_id']}."]})
                product = self.products[variant["product"].id]
                specs.append(self._spec(variant, product, qty, discount, qty_shipped))
            else:
                rate = Decimal(str(line.get("tax_rate", "0.21")))
                specs.append(RowSpec(None, None, line.get("title", "Los artikel"), "",
                                     line.get("sku", ""), "", "", "", rate,
                                     parse_money(line.get("price_incl", "10.00"),
                                                 "price_incl"),
                                     ZERO, qty, discount, qty_shipped, 0))
        return specs

    def change_order(self, order_id: int, changes: dict[str, Any], *,
                     api: bool = False) -> dict[str, Any]:
        """Status/field changes (API ``PUT orders/{id}``) or anything (control plane)."""
        with self.lock:
            order = self.get(self.orders, order_id)
            changes = dict(changes)
            errors: dict[str, list[str]] = {}
            status = changes.pop("status", None)
            if status is not None:
                if status not in ORDER_STATUSES:
                    errors["status"] = [f"Invalid status '{status}'."]
                else:
                    order["status"] = status
                    if status == "cancelled":
                        order["paymentStatus"] = "cancelled"
                        order["shipmentStatus"] = "cancelled"
            for key, allowed in (("paymentStatus", PAYMENT_STATUSES),
                                 ("shipmentStatus", SHIPMENT_STATUSES)):
                if key in changes:
                    value = changes.pop(key)
                    if value not in allowed:
                        errors[key] = [f"Invalid value '{value}'."]
                    else:
                        order[key] = value
            lines = changes.pop("lines", None)
            updated_at = changes.pop("updated_at", None)
            money = {} if api else {key: changes.pop(key) for key in MONEY_OPTIONS
                                    if key in changes}
            for key, value in money.items():
                try:
                    money[key] = None if value is None else cents(parse_money(value, key))
                except ApiError as exc:
                    errors.update(exc.errors)
            for key, value in changes.items():
                if api and key not in ORDER_WRITABLE:
                    continue  # read-only fields are ignored, as the live API does
                if key.startswith("_") or key in ("id", "number", "createdAt") \
                        or key not in order:
                    errors[key] = ["Unknown or read-only field."]
                    continue
                order[key] = value
            if errors:
                raise invalid(errors)
            if lines is not None:
                specs = self._line_specs(lines, order["shipmentStatus"])
                if order.get("_regime", "domestic") != "domestic":
                    specs = [self.gen.zero_rated(spec) for spec in specs]
                order["_rows"] = [build_row(self.ids.next("order_rows"), s) for s in specs]
            if money:  # null: back to the shop's rule
                order["_charges"] = {**order.get("_charges", {}), **money}
            if lines is not None or money:
                self._price(order, order["_rows"], order["_shipment"], order["_discount"])
            order["updatedAt"] = _parse_time(updated_at) if updated_at else self.clock.now()
            self._sync_shipment(order)
            return order

    # -- generic helpers ---------------------------------------------------------------
    @staticmethod
    def get(table: dict[int, dict[str, Any]], record_id: int) -> dict[str, Any]:
        record = table.get(record_id)
        if record is None:
            raise not_found()
        return record

    def snapshot(self, records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Shallow copies taken under the lock, safe to render outside it."""
        with self.lock:
            return [dict(r) for r in records]

    # -- customers ---------------------------------------------------------------------
    def _person_changes(self, data: dict[str, Any], *, creating: bool) -> dict[str, Any]:
        errors: dict[str, list[str]] = {}
        out: dict[str, Any] = {}
        for key, value in data.items():
            if key not in PERSON_FIELDS:
                continue
            if key.endswith("Country"):
                try:
                    out[key] = parse_country(value)
                except ApiError as exc:
                    errors[key] = exc.errors["country"]
                continue
            out[key] = value
        email = out.get("email")
        if email is not None and not EMAIL_RE.match(str(email)):
            errors["email"] = ["The e-mail address is not valid."]
        if creating:
            for key in ("email", "firstname", "lastname"):
                if not data.get(key):
                    errors.setdefault(key, ["This field is required."])
        for key in ("firstname", "lastname", "companyName"):
            if key in out and len(str(out[key])) > 255:
                errors[key] = ["Must be at most 255 characters."]
        if errors:
            raise invalid(errors)
        return out

    def create_customer(self, data: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self._before_catalogue_change()
            changes = self._person_changes(data, creating=True)
            if any(c["email"].lower() == changes["email"].lower()
                   for c in self.customers.values()):
                raise invalid({"email": ["A customer with this e-mail address exists."]})
            now = self.clock.now()
            cid = self.ids.next("customers")
            blank = {k: "" for k in PERSON_FIELDS}
            blank.update(address_fields("Billing", _no_address(), "", "nl"))
            blank.update(address_fields("Shipping", _no_address(), "", "nl"))
            blank.update({"isCompany": False, "isConfirmed": True})
            record = {"id": cid, "createdAt": now, "updatedAt": now, "type": "registered",
                      "lastOnlineAt": now, "lastIp": "", "remoteIp": "", **blank, **changes,
                      "language": Ref("languages/1", 1), "doNotifyRegistered": True,
                      "doNotifyConfirmed": True, "doNotifyPassword": True}
            record["isCompany"] = bool(record.get("companyName"))
            self.customers[cid] = record
            return record

    def update_customer(self, customer_id: int, data: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self._before_catalogue_change()
            record = self.get(self.customers, customer_id)
            record.update(self._person_changes(data, creating=False))
            record["updatedAt"] = self.clock.now()
            return record

    def add_customers(self, count: int) -> list[dict[str, Any]]:
        with self.lock:
            now = self.clock.now()
            out = []
            for i in range(count):
                cid = self.ids.next("customers")
                self.customers[cid] = self.gen.customer(cid, 10_000 + i, now, now)
                out.append(self.customers[cid])
            return out

    # -- products and variants ---------------------------------------------------------
    def create_product(self, data: dict[str, Any]) -> dict[str, Any]:
        """A product with its default variant (``priceIncl``, ``sku``, ``taxRate`` are
        taken for that variant)."""
        with self.lock:
            if not data.get("title"):
                raise invalid({"title": ["This field is required."]})
            return self._new_product(data)

    def add_products(self, count: int) -> list[dict[str, Any]]:
        """Simple products created now (control plane)."""
        rng = self.gen.rng
        with self.lock:
            out = []
            for _ in range(count):
                number = len(self.products) + 1
                out.append(self._new_product({
                    "title": f"Nieuw artikel {number}", "sku": f"NEW-{number:05d}",
                    "priceIncl": f"{rng.randint(5, 90)}.95"}))
            return out

    def _new_product(self, data: dict[str, Any]) -> dict[str, Any]:
        now = self.clock.now()
        try:
            rate = Decimal(str(data.get("taxRate", "0.21")))
        except InvalidOperation:
            raise invalid({"taxRate": ["Must be a number."]}) from None
        price_incl = cents(parse_money(data.get("priceIncl", "0"), "priceIncl"))
        pid = self.ids.next("products")
        title = str(data["title"])
        product = {
            "id": pid, "createdAt": now, "updatedAt": now, "isVisible": True,
            "visibility": "visible", "hasMatrix": False, "data01": "", "data02": "",
            "data03": "", "url": re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-"),
            "title": title, "fulltitle": title, "description": "", "content": "",
            "set": False, "brand": False, "supplier": False, "deliverydate": False,
            "type": False, "image": False, "images": Ref(f"products/{pid}/images"),
            "variants": Ref(f"variants?product={pid}"),
            "categories": Ref(f"categories/products?product={pid}"),
            "attributes": Ref(f"products/{pid}/attributes"), "_attributes": [],
            "_tax_rate": rate,
        }
        product.update({k: v for k, v in data.items() if k in PRODUCT_FIELDS})
        self.products[pid] = product
        vid = self.ids.next("variants")
        self.variants[vid] = {
            "id": vid, "createdAt": now, "updatedAt": now, "isDefault": True,
            "sortOrder": 1, "articleCode": "", "ean": "", "sku": str(data.get("sku", "")),
            "hs": "", "tax": False,
            "priceExcl": excl_from_incl(price_incl, rate, places="unit"),
            "priceIncl": price_incl, "priceCost": ZERO, "oldPriceExcl": ZERO,
            "oldPriceIncl": ZERO, "unitPrice": ZERO, "unitUnit": "", "taxType": "incl",
            "title": "Default", "options": [], "stockTracking": "disabled",
            "stockLevel": 0, "stockAlert": 0, "stockMinimum": 0, "stockSold": 0,
            "stockBuyMinimum": 1, "stockBuyMaximum": 10000, "weight": 0, "volume": 0,
            "colli": 0, "image": False, "product": Ref(f"products/{pid}", pid),
            "_tax_rate": rate,
        }
        return product

    def update_product(self, product_id: int, data: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self._before_catalogue_change()
            product = self.get(self.products, product_id)
            if "title" in data and not data["title"]:
                raise invalid({"title": ["This field is required."]})
            product.update({k: v for k, v in data.items() if k in PRODUCT_FIELDS})
            product["updatedAt"] = self.clock.now()
            return product

    def update_variant(self, variant_id: int, data: dict[str, Any],
                       channel: str = "api") -> dict[str, Any]:
        with self.lock:
            variant = self.get(self.variants, variant_id)
            self._before_catalogue_change()
            changes = {k: v for k, v in data.items() if k in VARIANT_FIELDS}
            errors: dict[str, list[str]] = {}
            if "stockTracking" in changes and changes["stockTracking"] not in (
                    "enabled", "disabled", "indicator"):
                errors["stockTracking"] = ["Must be enabled, disabled or indicator."]
            if "stockLevel" in changes:
                if isinstance(changes["stockLevel"], bool) or not isinstance(
                        changes["stockLevel"], int):
                    errors["stockLevel"] = ["Must be a whole number."]
            money = {}
            for key in ("priceExcl", "priceIncl", "priceCost", "oldPriceExcl", "oldPriceIncl"):
                if key in changes:
                    try:
                        money[key] = parse_money(changes.pop(key), key)
                    except ApiError as exc:
                        errors.update(exc.errors)
            if errors:
                raise invalid(errors)
            rate = variant["_tax_rate"]
            if "priceIncl" in money:
                money["priceIncl"] = cents(money["priceIncl"])
                money.setdefault("priceExcl", excl_from_incl(money["priceIncl"], rate, places="unit"))
            elif "priceExcl" in money:
                money["priceExcl"] = unit(money["priceExcl"])
                money["priceIncl"] = cents(money["priceExcl"] * (1 + rate))
            old_level = variant["stockLevel"]
            variant.update(changes)
            variant.update(money)
            now = self.clock.now()
            variant["updatedAt"] = now
            if "stockLevel" in changes and changes["stockLevel"] != old_level:
                mid = self.ids.next("movements")
                self.movements[mid] = {
                    "id": mid, "createdAt": now, "updatedAt": now, "channel": channel,
                    "stockLevelChange": changes["stockLevel"] - old_level,
                    "product": variant["product"],
                    "variant": Ref(f"variants/{variant_id}", variant_id),
                }
            return variant

    # -- deletion ----------------------------------------------------------------------
    def delete_order(self, order_id: int) -> None:
        """The order is gone with everything under it: rows, shipment, metafields,
        credits and returns answer 404 from now on (its id is never reused)."""
        with self.lock:
            self.get(self.orders, order_id)
            del self.orders[order_id]
            for mid in [m for m, r in self.metafields.items() if r["_order_id"] == order_id]:
                del self.metafields[mid]
            book = self.credit_book
            for cid in [c for c, r in book.credits.items() if r["order"].id == order_id]:
                del book.credits[cid]
            for rid in [r for r, rec in book.returns.items() if rec["order"].id == order_id]:
                del book.returns[rid]

    def delete_customer(self, customer_id: int) -> None:
        """The customer is gone; its orders stay (they keep the customer's data as
        placed, and no longer embed the customer)."""
        with self.lock:
            self.get(self.customers, customer_id)
            self._before_catalogue_change()  # seeded orders snapshot their customer
            del self.customers[customer_id]
            self._seed_customer_ids = [c for c in self._seed_customer_ids if c != customer_id]

    def delete_product(self, product_id: int) -> None:
        """The product and its variants and images are gone; orders keep their rows."""
        with self.lock:
            self.get(self.products, product_id)
            self._before_catalogue_change()
            del self.products[product_id]
            gone = {vid for vid, v in self.variants.items()
                    if v["product"] and v["product"].id == product_id}
            for vid in gone:
                del self.variants[vid]
            self._seed_variants = [v for v in self._seed_variants if v["id"] not in gone]
            for iid in [i for i, r in self.images.items() if r.get("_product_id") == product_id]:
                del self.images[iid]

    # -- order metafields --------------------------------------------------------------
    def create_metafield(self, order_id: int, data: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.get(self.orders, order_id)
            key, value = data.get("key"), data.get("value")
            errors = {}
            if not key or not isinstance(key, str) or len(key) > 255:
                errors["key"] = ["This field is required (at most 255 characters)."]
            if value is None:
                errors["value"] = ["This field is required."]
            if not errors and any(m["_order_id"] == order_id and m["key"] == key
                                  for m in self.metafields.values()):
                errors["key"] = ["A metafield with this key exists."]
            if errors:
                raise invalid(errors)
            now = self.clock.now()
            mid = self.ids.next("metafields")
            self.metafields[mid] = {"id": mid, "createdAt": now, "updatedAt": now,
                                    "key": key, "value": str(value), "_order_id": order_id}
            return self.metafields[mid]

    def order_metafield(self, order_id: int, metafield_id: int) -> dict[str, Any]:
        record = self.metafields.get(metafield_id)
        if record is None or record["_order_id"] != order_id:
            raise not_found()
        return record

    def update_metafield(self, order_id: int, metafield_id: int,
                         data: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            record = self.order_metafield(order_id, metafield_id)
            if "value" in data:
                record["value"] = str(data["value"])
            record["updatedAt"] = self.clock.now()
            return record

    def delete_metafield(self, order_id: int, metafield_id: int) -> None:
        with self.lock:
            self.order_metafield(order_id, metafield_id)
            del self.metafields[metafield_id]


def _no_address() -> dict[str, str]:
    return {"street": "", "number": "", "extension": "", "zipcode": "", "city": ""}


def _check_choice(field: str, value: Any, allowed: Iterable[str]) -> None:
    if value not in allowed:
        raise invalid({field: [f"Invalid value '{value}'."]})


def _pick(options: tuple[tuple, ...], key: str, field: str) -> tuple:
    for option in options:
        if option[0] == key:
            return option
    raise invalid({field: [f"Unknown {field} '{key}'."]})


def _parse_time(value: str) -> datetime:
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise invalid({"time": ["Give a timezone."]})
    return moment.replace(microsecond=0)

