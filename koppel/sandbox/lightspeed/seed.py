"""Deterministic seed data for a Dutch/Belgian webshop.

Faker is called only to fill small pools (names, streets, cities, phone numbers) per
locale; every record is then drawn from those pools with one ``random.Random(seed)``, so
startup stays fast with tens of thousands of orders and the same seed always yields the
same shop. The first records of each kind are pinned to the awkward cases a sync must
handle (missing and malformed e-mail, very long names, street and number stored
together, duplicate and missing SKUs, every order status), so even the small default
shop contains them; after that the cases occur at random.

Money variety of a Dutch/EU webshop (:data:`PINNED_ORDERS` pins each case to one of
orders 10-22, so every seed of 23+ orders has all of them and every seed of 20+ orders
has split shipping and fees; :mod:`.pricing` has the arithmetic):
payment fees (iDEAL under €50, PayPal, "Achteraf betalen", "Rembours"), mixed 21/9/0 %
orders with shipping and fees split over the rates, shipment discounts (free-shipping
and partial coupons, a free-shipping-from-€40 action), intra-EU B2B orders at 0 %
(reverse charge: BE/DE/FR company with a VAT number), export orders at 0 % (CH, US,
GB), Dutch companies at the normal rates, names with ``:``, apostrophes, Greek and
Cyrillic letters, an emoji or more than 100 characters, unit prices such as 0.33 bought
3 at a time, and about one order in 200 with 150 or more rows.
"""

from __future__ import annotations

import random
import re
import unicodedata
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from contextlib import contextmanager
from typing import Any, Iterator

from faker import Faker

from .images import png_bytes
from .money import VAT_HIGH, VAT_LOW, VAT_ZERO, ZERO, cents, excl_from_incl
from .pricing import RowSpec
from .serialize import Cdn, Ref

#: Seeded data ends here (fixed, so the same seed gives identical data on any day).
DEFAULT_ANCHOR = datetime(2025, 6, 30, 12, 0, 0, tzinfo=timezone.utc)
SEED_SPAN = timedelta(days=365)

COUNTRIES: dict[str, dict[str, Any]] = {
    "nl": {"id": 150, "code": "nl", "code3": "nld", "title": "Netherlands"},
    "be": {"id": 21, "code": "be", "code3": "bel", "title": "Belgium"},
    "de": {"id": 80, "code": "de", "code3": "deu", "title": "Germany"},
    "fr": {"id": 73, "code": "fr", "code3": "fra", "title": "France"},
    "ch": {"id": 204, "code": "ch", "code3": "che", "title": "Switzerland"},
    "gb": {"id": 222, "code": "gb", "code3": "gbr", "title": "United Kingdom"},
    "us": {"id": 223, "code": "us", "code3": "usa", "title": "United States"},
}
#: Countries whose sales are intra-EU (0 % reverse charge for a company with a VAT
#: number); every other country outside this set is export (0 %).
EU_COUNTRIES = frozenset({"nl", "be", "de", "fr"})
LOCALES = {"nl": "nl_NL", "be": "nl_BE", "de": "de_DE", "fr": "fr_FR", "ch": "de_CH",
           "gb": "en_GB", "us": "en_US"}
EMAIL_DOMAINS = {"nl": "example.nl", "be": "example.be", "de": "example.de",
                 "fr": "example.fr", "ch": "example.ch", "gb": "example.co.uk",
                 "us": "example.com"}
CURRENCIES = {  # shop.json ``currency`` per shop currency (amounts are the same numbers)
    "EUR": {"shortcode": "EUR", "symbol": "€", "title": "Euro"},
    "GBP": {"shortcode": "GBP", "symbol": "£", "title": "Pound sterling"},
    "USD": {"shortcode": "USD", "symbol": "$", "title": "US dollar"},
}

ORDER_STATUSES = (
    "on_hold", "processing_awaiting_payment", "processing_awaiting_shipment",
    "processing_awaiting_pickup", "processing_ready_for_pickup", "completed",
    "completed_shipped", "completed_picked_up", "cancelled",
)
PAYMENT_METHODS = (  # (paymentId, paymentTitle)
    ("ideal", "iDEAL"), ("paypal", "PayPal"), ("bancontact", "Bancontact"),
    ("creditcard", "Creditcard"), ("afterpay", "Achteraf betalen"),
    ("cod", "Rembours"),
)
#: How often seeded orders use each method: at home (Belgians pay with Bancontact half
#: the time) and abroad (no iDEAL, no cash on delivery).
PAYMENT_WEIGHTS = {
    "nl": {"ideal": 50, "paypal": 7, "bancontact": 3, "creditcard": 19, "afterpay": 9,
           "cod": 3},
    "abroad": {"creditcard": 65, "paypal": 30, "afterpay": 5},
}
SHIPMENT_METHODS = (  # (shipmentId, title, price incl, is pickup)
    ("core|postnl|standard", "PostNL Standaard", Decimal("4.95"), False),
    ("core|dhl|parcel", "DHL Parcel", Decimal("6.95"), False),
    ("core|pickup|store", "Afhalen in de winkel", Decimal("0.00"), True),
    ("core|postnl|international", "PostNL Internationaal", Decimal("14.95"), False),
)
FREE_SHIPPING_FROM = Decimal("75.00")  # domestic (NL/BE) shipping costs nothing from here
#: Shipment discounts: (coupon code, kind, amount incl); "free" = the whole base price,
#: "threshold" = free shipping from SHIPPING_ACTION_FROM without a code (an action).
SHIPMENT_PROMOS = {
    "free": ("GRATISVERZENDING", Decimal("0")),
    "partial": ("VERZEND250", Decimal("2.50")),
    "threshold": ("", Decimal("0")),
}
SHIPPING_ACTION_FROM = Decimal("40.00")
#: Payment fees incl. VAT (the shop's "transactiekosten"): iDEAL only under €50.
IDEAL_FEE, IDEAL_FEE_BELOW = Decimal("0.29"), Decimal("50.00")
PAYPAL_FEE, PAYPAL_FEE_PERCENT = Decimal("0.35"), Decimal("1.9")
AFTERPAY_FEE = Decimal("1.95")
COD_FEE = Decimal("4.95")
PICKUP_STATUSES = {"processing_awaiting_pickup", "processing_ready_for_pickup",
                   "completed_picked_up"}

CATEGORY_TREE = {
    "Kleding": {"Heren": ["T-shirts", "Truien"], "Dames": ["Jurken", "Blouses"]},
    "Wonen": {"Keuken": ["Servies", "Textiel"], "Decoratie": ["Kaarsen", "Vazen"]},
    "Boeken & Eten": {"Boeken": ["Kookboeken", "Romans"], "Delicatessen": ["Koffie", "Thee"]},
}
PRODUCT_NOUNS = {  # top category -> (nouns, VAT rate, has size/colour matrix)
    "Kleding": (["T-shirt", "Trui", "Jurk", "Blouse", "Hoodie", "Polo"], VAT_HIGH, True),
    "Wonen": (["Mok", "Bord", "Theedoek", "Kaars", "Vaas", "Schaal"], VAT_HIGH, False),
    "Boeken & Eten": (["Kookboek", "Roman", "Koffiebonen", "Theemelange", "Chocolade"],
                      VAT_LOW, False),
}
ADJECTIVES = ["Katoenen", "Biologische", "Handgemaakte", "Klassieke", "Zachte", "Stoere",
              "Groene", "Luxe", "Ambachtelijke", "Gerecyclede", "Crème", "Café"]
SIZES = ["S", "M", "L", "XL"]
COLOURS = ["Rood", "Blauw", "Zwart", "Wit", "Groen"]
BRANDS = ["Zeeuws Atelier", "Kaapse Kracht", "Brouwerij De Hoek", "Maison Lumière",
          "Fjällstrand"]
SUPPLIERS = ["Groothandel Noord B.V.", "Textiel Import Twente", "Boekhuis Centraal"]
ATTRIBUTES = [("Land van herkomst", ""), ("Levertijd", "1-2 werkdagen"), ("Materiaal", "")]
ORIGINS = ["Nederland", "België", "Duitsland", "Portugal", "India", "Turkije"]
DELIVERY = ["1-2 werkdagen", "3-5 werkdagen", "Op voorraad", "2 weken"]
MATERIALS = ["Katoen", "Linnen", "Keramiek", "Glas", "Wol", "Papier"]
ACCENTED_FIRST = ["Zoë", "Chloé", "Hélène", "François", "Jürgen", "Sören", "Noël", "Inès"]
ACCENTED_LAST = ["Müller", "Çelik", "Sánchez", "Dübel", "Lefèvre", "Ødegård"]
LONG_WORDS = ["Stichting", "Vereniging", "tot", "Behoud", "en", "Bevordering", "van",
              "het", "Historisch", "Erfgoed", "Landelijke", "Ambachtelijke", "Meubelmakers"]
MIDDLE_PREFIXES = ("van der ", "van den ", "van de ", "van ", "de ", "den ", "ter ", "in 't ")
#: Names a sync must carry unchanged (QuickBooks rejects ``:`` in DisplayName, limits
#: names to 100 characters, …): (firstname, middlename, lastname, company name or None).
SPECIAL_NAMES = {
    "colon": ("Sanne", "", "Visser", "Bakkerij De Zon: Utrecht"),
    "apostrophe": ("Seán", "", "O'Connor", "D'Hondt & Zonen"),
    "greek": ("Γιώργος", "", "Παπαδόπουλος", None),
    "cyrillic": ("Анна", "", "Иванова", None),
    "emoji": ("Lotte", "", "Bloem 🌷", "Tulpenhuis 🌷"),
    "long": ("Maria", "", "Hoogstraten", None),  # company name drawn > 100 characters
}
#: Seeded orders pinned to one money/person case each, so every seed with 23+ orders
#: (20+ for the first ten) carries all of them; the rest occur at random.
PINNED_ORDERS: dict[int, dict[str, Any]] = {
    10: {"mixed": True, "payment": "ideal"},                       # split shipping + fee
    11: {"kind": "b2b_eu", "country": "be", "names": "apostrophe"},  # reverse charge
    12: {"kind": "export", "country": "ch", "names": "greek"},
    13: {"mixed": True, "promo": "free"},                          # free-shipping coupon
    14: {"mixed": True, "payment": "cod"},                         # Rembours 4.95
    15: {"kind": "b2b_nl", "names": "colon"},
    16: {"cheap": True},                                          # 0.33 x 3
    17: {"kind": "b2b_eu", "country": "de", "names": "cyrillic"},
    18: {"kind": "export", "country": "us", "names": "apostrophe"},
    19: {"kind": "b2b_eu", "country": "fr", "names": "emoji"},
    20: {"mixed": True, "promo": "partial", "payment": "paypal"},
    21: {"kind": "b2b_nl", "names": "long", "payment": "afterpay"},
    22: {"kind": "export", "country": "gb"},
}
HUGE_ORDER_INDEX = 45          # a 150-row order in every seed of 46+ orders
HUGE_ORDER_ROWS = 150
HUGE_ORDER_EVERY = 200         # beyond index 50, about one order in 200 has 150-240 rows
CHEAP_PRODUCT_INDEX = 4        # this catalogue product costs 0.33 (bought 3 at a time)
CHEAP_PRICE = Decimal("0.33")


def is_huge_order(seed: int, index: int) -> int:
    """Rows of seeded order ``index`` if it is a huge one, else 0 (cheap arithmetic, so
    stubs of a million orders can reserve their row ids without drawing anything)."""
    if index == HUGE_ORDER_INDEX:
        return HUGE_ORDER_ROWS
    if index < 50:
        return 0
    mixed = (index * 2654435761 + seed * 40503 + 12345) % 4294967296
    if (mixed >> 7) % HUGE_ORDER_EVERY:
        return 0
    return HUGE_ORDER_ROWS + (mixed >> 16) % 91


def _digits(rng: random.Random, count: int) -> str:
    return "".join(str(rng.randrange(10)) for _ in range(count))


def nl_vat(number: int) -> str:
    """``NL`` + 9 digits passing the 11-test + ``B01``, from 9 drawn digits."""
    digits = [int(c) for c in f"{number:09d}"[:8]]
    for bump in range(10):
        trial = digits[:7] + [(digits[7] + bump) % 10]
        check = sum(d * (9 - i) for i, d in enumerate(trial)) % 11
        if check < 10:
            return "NL" + "".join(map(str, trial)) + f"{check}B01"
    raise AssertionError("unreachable")


def be_vat(number: str) -> str:
    """``BE`` + 10 digits whose last two are 97 - (first eight mod 97)."""
    head = number[:8]
    return f"BE{head}{97 - int(head) % 97:02d}"


def de_vat(number: int) -> str:
    """``DE`` + 9 digits with the ISO 7064 MOD 11,10 check digit."""
    head = f"{number:09d}"[:8]
    product = 10
    for char in head:
        total = (int(char) + product) % 10 or 10
        product = (2 * total) % 11
    check = (11 - product) % 10
    return f"DE{head}{check}"


def fr_siren(rng: random.Random) -> str:
    """Nine digits with a Luhn check digit (a French company number, SIREN)."""
    head = str(rng.randint(1, 9)) + _digits(rng, 7)
    total = 0
    for i, char in enumerate(reversed(head)):
        d = int(char) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return head + str((10 - total % 10) % 10)


def fr_vat(siren: str) -> str:
    """``FR`` + 2-digit key + SIREN (11 digits after ``FR``)."""
    return f"FR{(12 + 3 * (int(siren) % 97)) % 97:02d}{siren}"


def vat_regime(person: dict[str, Any], reverse_charge: bool = True) -> str:
    """How the order's goods are taxed: ``domestic`` (Dutch rates; EU consumers too,
    below the OSS threshold), ``reverse_charge`` (0 %: an EU company outside NL with a
    VAT number) or ``export`` (0 %: billing country outside the EU)."""
    country = person.get("addressBillingCountry") or {}
    code = str(country.get("code") if isinstance(country, dict) else country).lower()
    if code not in EU_COUNTRIES:
        return "export"
    if (reverse_charge and code != "nl" and person.get("isCompany")
            and person.get("companyVatNumber")):
        return "reverse_charge"
    return "domestic"


def shipping_base(method: tuple[str, str, Decimal, bool], goods_incl: Decimal,
                  country: str) -> Decimal:
    """The shipping price before discounts: free for NL/BE from FREE_SHIPPING_FROM."""
    if method[3]:
        return ZERO
    if country in ("nl", "be") and goods_incl >= FREE_SHIPPING_FROM:
        return ZERO
    return method[2]


def shipment_discount(promo: str | None, base: Decimal, goods_incl: Decimal) -> Decimal:
    if not promo or not base:
        return ZERO
    if promo == "free":
        return base
    if promo == "partial":
        return min(SHIPMENT_PROMOS["partial"][1], base)
    if promo == "threshold":
        return base if goods_incl >= SHIPPING_ACTION_FROM else ZERO
    raise ValueError(f"unknown shipment promotion {promo!r}")


def payment_fee(payment_id: str, amount_incl: Decimal) -> Decimal:
    """The payment fee incl. VAT for an order of ``amount_incl`` (goods after discount
    plus shipping): iDEAL 0.29 under €50, PayPal 0.35 + 1.9 %, Achteraf betalen 1.95,
    Rembours 4.95, others nothing."""
    if payment_id == "ideal":
        return IDEAL_FEE if amount_incl < IDEAL_FEE_BELOW else ZERO
    if payment_id == "paypal":
        return cents(PAYPAL_FEE + amount_incl * PAYPAL_FEE_PERCENT / 100)
    if payment_id == "afterpay":
        return AFTERPAY_FEE
    if payment_id == "cod":
        return COD_FEE
    return ZERO


def ascii_fold(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", ascii_fold(text).lower()).strip("-")


def ean13(rng: random.Random) -> str:
    """A valid EAN-13 with the Dutch GS1 prefix 87."""
    digits = [8, 7] + [rng.randrange(10) for _ in range(10)]
    check = (10 - sum(d * (3 if i % 2 else 1) for i, d in enumerate(digits)) % 10) % 10
    return "".join(map(str, digits + [check]))


@dataclass
class Pools:
    """Small per-locale pools filled by Faker once."""

    first: dict[str, list[str]]
    last: dict[str, list[str]]
    streets: dict[str, list[str]]
    cities: dict[str, list[tuple[str, str]]]
    phones: dict[str, list[str]]
    companies: dict[str, list[str]]

    @classmethod
    def build(cls, seed: int, size: int = 40) -> "Pools":
        first, last, streets, cities, phones, companies = {}, {}, {}, {}, {}, {}
        for country, locale in LOCALES.items():
            fk = Faker(locale)
            fk.seed_instance(seed)
            first[country] = [fk.first_name() for _ in range(size)] + ACCENTED_FIRST[:2]
            last[country] = [fk.last_name() for _ in range(size)] + ACCENTED_LAST[:2]
            streets[country] = [fk.street_name() for _ in range(size)]
            cities[country] = [(fk.postcode(), fk.city()) for _ in range(size)]
            phones[country] = [fk.phone_number() for _ in range(size)]
            companies[country] = [fk.company() for _ in range(size // 2)]
        return cls(first, last, streets, cities, phones, companies)


@dataclass
class Person:
    """The person/company/address block shared by customers and orders."""

    fields: dict[str, Any]
    country: str


@dataclass
class Catalogue:
    products: dict[int, dict[str, Any]] = field(default_factory=dict)
    variants: dict[int, dict[str, Any]] = field(default_factory=dict)
    categories: dict[int, dict[str, Any]] = field(default_factory=dict)
    categories_products: dict[int, dict[str, Any]] = field(default_factory=dict)
    images: dict[int, dict[str, Any]] = field(default_factory=dict)
    brands: dict[int, dict[str, Any]] = field(default_factory=dict)
    suppliers: dict[int, dict[str, Any]] = field(default_factory=dict)
    types: dict[int, dict[str, Any]] = field(default_factory=dict)
    types_attributes: dict[int, dict[str, Any]] = field(default_factory=dict)
    attributes: dict[int, dict[str, Any]] = field(default_factory=dict)


def split_last_name(last: str) -> tuple[str, str]:
    """``"van der Berg"`` → (``"van der"``, ``"Berg"``): Lightspeed's middlename."""
    for prefix in MIDDLE_PREFIXES:
        if last.startswith(prefix):
            return prefix.strip(), last[len(prefix):]
    return "", last


class ShopGenerator:
    """Draws every seeded record; also builds records added later (control plane)."""

    def __init__(self, seed: int, anchor: datetime = DEFAULT_ANCHOR) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.anchor = anchor
        self.pools = Pools.build(seed)
        self._company_groups: list[dict[str, Any]] = []

    @contextmanager
    def using(self, rng: random.Random) -> Iterator[None]:
        """Draw from ``rng`` instead of the shop's stream for a while (seeded orders)."""
        saved, self.rng = self.rng, rng
        try:
            yield
        finally:
            self.rng = saved

    # -- people ------------------------------------------------------------------------
    def _country(self) -> str:
        return self.rng.choices(("nl", "be", "de"), weights=(70, 22, 8))[0]

    def _address(self, country: str, together: bool) -> dict[str, str]:
        rng = self.rng
        street = rng.choice(self.pools.streets[country])
        number = str(rng.randint(1, 250))
        extension = rng.choice(["", "", "", "", "A", "B", "bis", "2hg", "-3"])
        if country != "nl" and extension in ("2hg", "-3"):
            extension = ""
        zipcode, city = rng.choice(self.pools.cities[country])
        if country in ("gb", "us", "ch", "fr"):
            extension = ""
        if together:  # some shops keep the number inside the street field
            return {"street": f"{street} {number}{extension}", "number": "", "extension": "",
                    "zipcode": zipcode, "city": city}
        return {"street": street, "number": number, "extension": extension,
                "zipcode": zipcode, "city": city}

    def _company(self, country: str, long_name: bool) -> dict[str, Any]:
        rng = self.rng
        if long_name:
            words = [rng.choice(LONG_WORDS) for _ in range(16)]
            name = " ".join(words)
            while len(name) <= 100:
                name += " " + rng.choice(LONG_WORDS)
        else:
            name = rng.choice(self.pools.companies[country])
        if country == "nl":
            coc, vat = f"{rng.randint(10_000_000, 99_999_999)}", \
                nl_vat(rng.randint(100_000_000, 999_999_999))
        elif country == "be":
            vat = be_vat(f"0{rng.randint(200_000_000, 999_999_999)}")
            number = vat[2:]
            coc = f"{number[:4]}.{number[4:7]}.{number[7:]}"
        elif country == "fr":
            siren = fr_siren(rng)
            coc, vat = f"{siren[:3]} {siren[3:6]} {siren[6:]}", fr_vat(siren)
        else:
            coc, vat = f"HRB {rng.randint(10_000, 99_999)}", \
                de_vat(rng.randint(100_000_000, 999_999_999))
        return {"name": name, "coc": coc, "vat": vat}

    def person(self, index: int, *, guest: bool = False) -> Person:
        """A customer-shaped block. ``index`` pins special cases for the first ones."""
        rng = self.rng
        country = self._country()
        first = rng.choice(self.pools.first[country])
        middle, last = split_last_name(rng.choice(self.pools.last[country]))
        if index == 3 or (index > 20 and rng.random() < 0.01):
            last = last + "-" + " ".join(rng.choice(LONG_WORDS) for _ in range(14))
            last = last[:130] if len(last) > 101 else last + " " + "x" * (101 - len(last))
        if index == 6:
            first, last = ACCENTED_FIRST[index % len(ACCENTED_FIRST)], ACCENTED_LAST[0]
        if index == 8:  # an apostrophe in the name
            first, middle, last = "Anne-Marie", "van 't", "Hof"
        if index == 9:  # no Latin letters at all
            first, middle, last = SPECIAL_NAMES["greek"][:3]
        company: dict[str, Any] | None = None
        if not guest and (index in (2, 5, 7) or (index > 10 and rng.random() < 0.25)):
            if self._company_groups and (index == 7 or rng.random() < 0.35):
                company = rng.choice(self._company_groups)  # another contact, same company
                country = company["country"]
            else:
                company = {**self._company(country, long_name=index == 5), "country": country}
                self._company_groups.append(company)
        together = index == 4 or (index > 10 and rng.random() < 0.04)
        addr = self._address(country, together)
        local = slug(f"{first}.{middle}.{last}")[:40].strip("-").replace("-", ".") or "klant"
        email = f"{local}.{rng.randint(1, 9999)}@{EMAIL_DOMAINS[country]}"
        if index == 0 or (index > 10 and rng.random() < 0.03):
            email = ""
        elif index == 1 or (index > 10 and rng.random() < 0.02):
            email = rng.choice([f"{local}@", f"{local} at {EMAIL_DOMAINS[country]}",
                                f"{local}@@{EMAIL_DOMAINS[country]}"])
        phone = rng.choice(self.pools.phones[country])
        full = " ".join(p for p in (first, middle, last) if p)
        ship_addr = addr if rng.random() < 0.85 else self._address(country, together)
        fields: dict[str, Any] = {
            "gender": "", "birthDate": "", "nationalId": "",
            "email": email, "firstname": first, "middlename": middle, "lastname": last,
            "phone": phone, "mobile": "",
            "isCompany": company is not None,
            "companyName": company["name"] if company else "",
            "companyCoCNumber": company["coc"] if company else "",
            "companyVatNumber": company["vat"] if company else "",
        }
        fields.update(address_fields("Billing", addr, full, country))
        fields.update(address_fields("Shipping", ship_addr, full, country))
        fields["addressShippingCompany"] = company["name"] if company else ""
        return Person(fields, country)

    def order_person(self, country: str, *, company: bool, names: str | None = None,
                     coc: bool = True) -> dict[str, Any]:
        """A guest's block for an order: a consumer or a company (VAT number in the
        country's format) in any of :data:`COUNTRIES`, optionally with special names."""
        rng = self.rng
        first = rng.choice(self.pools.first[country])
        middle, last = split_last_name(rng.choice(self.pools.last[country]))
        firm = None
        if company:
            firm = self._company(country, long_name=names == "long")
            if not coc or (country != "nl" and rng.random() < 0.4):
                firm["coc"] = ""  # foreign companies often leave the CoC number out
        if names:
            first, middle, last, company_name = SPECIAL_NAMES[names]
            if firm is not None and company_name:
                firm["name"] = company_name
            if names == "long" and firm is None:
                last += "-" + " ".join(LONG_WORDS)  # > 100 characters
        addr = self._address(country, together=False)
        local = slug(f"{first}.{last}")[:40].strip("-").replace("-", ".") or "klant"
        full = " ".join(p for p in (first, middle, last) if p)
        fields: dict[str, Any] = {
            "gender": "", "birthDate": "", "nationalId": "",
            "email": f"{local}.{rng.randint(1, 9999)}@{EMAIL_DOMAINS[country]}",
            "firstname": first, "middlename": middle, "lastname": last,
            "phone": rng.choice(self.pools.phones[country]), "mobile": "",
            "isCompany": firm is not None,
            "companyName": firm["name"] if firm else "",
            "companyCoCNumber": firm["coc"] if firm else "",
            "companyVatNumber": firm["vat"] if firm else "",
        }
        fields.update(address_fields("Billing", addr, full, country))
        fields.update(address_fields("Shipping", addr, full, country))
        fields["addressShippingCompany"] = firm["name"] if firm else ""
        return fields

    def order_plan(self, index: int) -> dict[str, Any]:
        """What kind of order seeded order ``index`` is (pinned, else drawn)."""
        if index in PINNED_ORDERS:
            plan = dict(PINNED_ORDERS[index])
            plan.setdefault("kind", "domestic")
            return plan
        rng = self.rng
        plan: dict[str, Any] = {"kind": "domestic"}
        if index < 10:
            return plan
        draw = rng.random()
        if draw < 0.035:
            plan["kind"] = "b2b_eu"
            plan["country"] = rng.choices(("be", "de", "fr"), weights=(45, 35, 20))[0]
        elif draw < 0.085:
            plan["kind"] = "export"
            plan["country"] = rng.choices(("ch", "gb", "us"), weights=(35, 35, 30))[0]
        if rng.random() < 0.04:
            plan["names"] = rng.choice(list(SPECIAL_NAMES))
        return plan

    def customer(self, customer_id: int, index: int, created: datetime,
                 updated: datetime) -> dict[str, Any]:
        person = self.person(index)
        return {
            "id": customer_id, "createdAt": created, "updatedAt": updated,
            "isConfirmed": True, "type": "registered", "lastOnlineAt": updated,
            "lastIp": "", "remoteIp": "", "memo": "",
            **person.fields,
            "language": Ref("languages/1", 1),
            "doNotifyRegistered": True, "doNotifyConfirmed": True, "doNotifyPassword": True,
        }

    # -- catalogue ---------------------------------------------------------------------
    def catalogue(self, products: int, ids: "IdSource") -> Catalogue:
        cat = Catalogue()
        rng = self.rng
        base = self.anchor - SEED_SPAN - timedelta(days=30)
        for title in BRANDS:
            bid = ids.next("brands")
            cat.brands[bid] = {"id": bid, "createdAt": base, "updatedAt": base,
                               "title": title, "url": slug(title), "content": "",
                               "image": False}
        for title in SUPPLIERS:
            sid = ids.next("suppliers")
            cat.suppliers[sid] = {"id": sid, "createdAt": base, "updatedAt": base,
                                  "title": title, "name": title, "email": "",
                                  "phone": "", "address": "", "zipcode": "", "city": "",
                                  "country": COUNTRIES["nl"]}
        for title, default in ATTRIBUTES:
            aid = ids.next("attributes")
            cat.attributes[aid] = {"id": aid, "title": title, "defaultValue": default}
        attr_ids = list(cat.attributes)
        for title in ("Kleding", "Huishoudelijk", "Boeken"):
            tid = ids.next("types")
            cat.types[tid] = {"id": tid, "title": title}
            for order, aid in enumerate(attr_ids):
                taid = ids.next("types_attributes")
                cat.types_attributes[taid] = {"id": taid, "sortOrder": order + 1,
                                              "type": Ref(f"types/{tid}", tid),
                                              "attribute": Ref(f"attributes/{aid}", aid)}
        type_ids = list(cat.types)

        leaves: dict[str, list[int]] = {}
        for top_order, (top, middles) in enumerate(CATEGORY_TREE.items()):
            top_id = self._category(cat, ids, top, None, 1, top_order, base)
            leaves[top] = []
            for mid_order, (mid, subs) in enumerate(middles.items()):
                mid_id = self._category(cat, ids, mid, top_id, 2, mid_order, base)
                for sub_order, sub in enumerate(subs):
                    leaves[top].append(
                        self._category(cat, ids, sub, mid_id, 3, sub_order, base))

        skus: list[str] = []
        for index in range(products):
            self._product(cat, ids, index, leaves, type_ids, attr_ids, skus)
        return cat

    def _category(self, cat: Catalogue, ids: "IdSource", title: str, parent: int | None,
                  depth: int, order: int, when: datetime) -> int:
        cid = ids.next("categories")
        path = (list(cat.categories[parent]["path"]) if parent else []) + [str(cid)]
        cat.categories[cid] = {
            "id": cid, "createdAt": when, "updatedAt": when, "isVisible": True,
            "depth": depth, "path": path, "type": "category", "sortOrder": order + 1,
            "url": slug(title), "title": title, "fulltitle": title,
            "description": "", "content": "", "image": False,
            "parent": Ref(f"categories/{parent}", parent) if parent else False,
            "children": Ref(f"categories?parent={cid}"),
            "products": Ref(f"categories/products?category={cid}"),
        }
        return cid

    def _product(self, cat: Catalogue, ids: "IdSource", index: int,
                 leaves: dict[str, list[int]], type_ids: list[int], attr_ids: list[int],
                 skus: list[str]) -> None:
        rng = self.rng
        top = list(CATEGORY_TREE)[index % len(CATEGORY_TREE)]
        nouns, rate, matrix_family = PRODUCT_NOUNS[top]
        if top == "Boeken & Eten" and index % 4 == 2:
            rate = VAT_ZERO  # e.g. gift vouchers / exempt goods
        pid = ids.next("products")
        title = f"{rng.choice(ADJECTIVES)} {rng.choice(nouns)} {rng.choice(COLOURS)}"
        created = self.anchor - SEED_SPAN - timedelta(days=rng.randint(1, 25),
                                                      minutes=rng.randint(0, 1440))
        updated = created + timedelta(days=rng.randint(0, 300))
        has_matrix = matrix_family and (index == 0 or rng.random() < 0.6)
        brand_id = rng.choice(list(cat.brands)) if rng.random() < 0.6 else None
        supplier_id = rng.choice(list(cat.suppliers)) if rng.random() < 0.4 else None
        type_id = type_ids[list(CATEGORY_TREE).index(top)] if rng.random() < 0.8 else None
        product: dict[str, Any] = {
            "id": pid, "createdAt": created, "updatedAt": updated,
            "isVisible": True, "visibility": "visible", "hasMatrix": has_matrix,
            "data01": "", "data02": "", "data03": "",
            "url": slug(title) + f"-{pid}", "title": title, "fulltitle": title,
            "description": f"{title}, per stuk.",
            "content": f"<p>{title}. Met zorg gemaakt en snel geleverd.</p>",
            "set": False,
            "brand": Ref(f"brands/{brand_id}", brand_id) if brand_id else False,
            "supplier": Ref(f"suppliers/{supplier_id}", supplier_id) if supplier_id else False,
            "deliverydate": False,
            "type": Ref(f"types/{type_id}", type_id) if type_id else False,
            "image": False,
            "images": Ref(f"products/{pid}/images"),
            "variants": Ref(f"variants?product={pid}"),
            "categories": Ref(f"categories/products?product={pid}"),
            "attributes": Ref(f"products/{pid}/attributes"),
            "_attributes": [],
            "_tax_rate": rate,
        }
        if type_id:
            product["_attributes"] = [
                {"id": attr_ids[0], "value": rng.choice(ORIGINS),
                 "attribute": {"id": attr_ids[0], "title": ATTRIBUTES[0][0]}},
                {"id": attr_ids[1], "value": rng.choice(DELIVERY),
                 "attribute": {"id": attr_ids[1], "title": ATTRIBUTES[1][0]}},
            ]
            if rng.random() < 0.5:
                product["_attributes"].append(
                    {"id": attr_ids[2], "value": rng.choice(MATERIALS),
                     "attribute": {"id": attr_ids[2], "title": ATTRIBUTES[2][0]}})
        cat.products[pid] = product

        leaf = rng.choice(leaves[top])
        links = [leaf] + ([int(cat.categories[leaf]["path"][0])] if rng.random() < 0.3 else [])
        for order, cid in enumerate(links):
            lid = ids.next("categories_products")
            cat.categories_products[lid] = {"id": lid, "sortOrder": order + 1,
                                            "category": Ref(f"categories/{cid}", cid),
                                            "product": Ref(f"products/{pid}", pid)}

        image_count = 0 if index == 1 else rng.choice((0, 1, 1, 2, 3))
        for order in range(image_count):
            iid = ids.next("images")
            name = slug(title)
            color = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
            path = f"shops/{100000 + self.seed}/files/{iid}/{name}.png"
            cat.images[iid] = {
                "id": iid, "sortOrder": order + 1, "createdAt": created,
                "extension": "png", "size": len(png_bytes(color)), "title": title,
                "thumb": Cdn(f"shops/{100000 + self.seed}/files/{iid}/50x50x2/{name}.png"),
                "src": Cdn(path), "_product_id": pid,
                "_color": color,
            }
            if order == 0:
                product["image"] = {"src": Cdn(path), "thumb": cat.images[iid]["thumb"],
                                    "title": title, "extension": "png",
                                    "size": cat.images[iid]["size"],
                                    "_image_id": iid}

        base_incl = Decimal(rng.choice((4, 7, 9, 12, 15, 19, 24, 29, 34, 39, 49, 59, 79,
                                        99, 149))) + rng.choice((Decimal("0.95"),
                                                                 Decimal("0.99"),
                                                                 Decimal("0.50")))
        if index == CHEAP_PRODUCT_INDEX:
            base_incl = CHEAP_PRICE  # e.g. a postcard: 0.33 each, bought by three
        if has_matrix:
            set_id = 1000 + pid
            sizes = rng.sample(SIZES, rng.randint(2, 4))
            colours = rng.sample(COLOURS, rng.randint(1, 2))
            options = [
                {"id": set_id * 10 + 1, "name": "Maat",
                 "values": [{"id": set_id * 100 + i, "name": s, "sortOrder": i + 1}
                            for i, s in enumerate(sizes)]},
                {"id": set_id * 10 + 2, "name": "Kleur",
                 "values": [{"id": set_id * 100 + 50 + i, "name": c, "sortOrder": i + 1}
                            for i, c in enumerate(colours)]},
            ]
            product["set"] = {"id": set_id, "name": "Maat / Kleur", "options": options}
            combos = [(s, c) for s in options[0]["values"] for c in options[1]["values"]]
            combos = combos[:rng.randint(2, min(6, len(combos)))]
            for order, (size, colour) in enumerate(combos):
                chosen = [(options[0], size), (options[1], colour)]
                extra = Decimal(2) if size["name"] == "XL" else ZERO
                self._variant(cat, ids, product, order, f"{size['name']} / {colour['name']}",
                              [{"id": v["id"], "name": o["name"], "value": v["name"]}
                               for o, v in chosen], base_incl + extra, rate, index, skus)
        else:
            self._variant(cat, ids, product, 0, "Default", [], base_incl, rate, index, skus)

    def _variant(self, cat: Catalogue, ids: "IdSource", product: dict[str, Any], order: int,
                 title: str, options: list[dict[str, Any]], price_incl: Decimal,
                 rate: Decimal, index: int, skus: list[str]) -> None:
        rng = self.rng
        vid = ids.next("variants")
        sku = f"{slug(product['title'])[:3].upper()}-{product['id']}-{order + 1}"
        if index == 2 and order == 0 and skus:
            sku = skus[0]  # two variants sharing one SKU
        elif index == 3 and order == 0:
            sku = ""
        elif index > 10 and rng.random() < 0.04:
            sku = ""
        elif index > 10 and skus and rng.random() < 0.02:
            sku = rng.choice(skus)
        if sku:
            skus.append(sku)
        tracked = index % 5 != 4
        cat.variants[vid] = {
            "id": vid, "createdAt": product["createdAt"], "updatedAt": product["updatedAt"],
            "isDefault": order == 0, "sortOrder": order + 1,
            "articleCode": f"A{product['id']:05d}{order:02d}",
            "ean": ean13(rng) if rng.random() < 0.8 else "",
            "sku": sku, "hs": "",
            "tax": False,
            "priceExcl": excl_from_incl(price_incl, rate, places="unit"),
            "priceIncl": price_incl,
            "priceCost": cents(price_incl * Decimal("0.45")),
            "oldPriceExcl": ZERO, "oldPriceIncl": ZERO,
            "unitPrice": ZERO, "unitUnit": "",
            "taxType": "incl",
            "title": title, "options": options,
            "stockTracking": "enabled" if tracked else "disabled",
            "stockLevel": rng.randint(0, 80) if tracked else 0,
            "stockAlert": 2, "stockMinimum": 0, "stockSold": rng.randint(0, 40),
            "stockBuyMinimum": 1, "stockBuyMaximum": 10000,
            "weight": 0, "volume": 0, "colli": 0,
            "image": False,
            "product": Ref(f"products/{product['id']}", product["id"]),
            "_tax_rate": rate,
        }

    # -- orders ------------------------------------------------------------------------
    def order_status(self, index: int) -> str:
        if index < len(ORDER_STATUSES):
            return ORDER_STATUSES[index]
        return self.rng.choices(ORDER_STATUSES, weights=(2, 6, 10, 2, 2, 25, 40, 5, 8))[0]

    def random_lines(self, index: int, variants: list[dict[str, Any]],
                     products: dict[int, dict[str, Any]]) -> list[tuple[dict, int]]:
        rng = self.rng
        count = rng.choices(range(1, 11), weights=(30, 22, 14, 9, 7, 6, 4, 3, 3, 2))[0]
        if index == 0:
            count = 10
        lines = []
        for _ in range(count):
            variant = rng.choice(variants)
            quantity = rng.choices((1, 2, 3, 4, 5), weights=(60, 20, 10, 5, 5))[0]
            if variant["priceIncl"] < 1:
                quantity = rng.choice((3, 3, 6, 9, 12))
            lines.append((variant, quantity))
        return lines

    def huge_lines(self, rows: int, variants: list[dict[str, Any]]) -> list[tuple[dict, int]]:
        rng = self.rng
        return [(rng.choice(variants), rng.choice((1, 1, 2, 3))) for _ in range(rows)]

    @staticmethod
    def zero_rated(spec: RowSpec) -> RowSpec:
        """The row as booked at 0 % (reverse charge, export): the customer pays the
        price excl. VAT, rounded to cents per unit."""
        if spec.tax_rate == VAT_ZERO:
            return spec
        unit_excl = cents(excl_from_incl(spec.base_price_incl, spec.tax_rate, places="unit"))
        return replace(spec, tax_rate=VAT_ZERO, base_price_incl=unit_excl,
                       discount_incl=excl_from_incl(spec.discount_incl, spec.tax_rate))

    def row_spec(self, variant: dict[str, Any] | None, product: dict[str, Any] | None,
                 quantity: int, brand_title: str, *, discount_incl: Decimal = ZERO,
                 quantity_shipped: int = 0, quantity_invoiced: int = 0,
                 unknown_sku: str | None = None) -> RowSpec:
        if variant is None or product is None or unknown_sku is not None:
            rng = self.rng
            return RowSpec(None, None, f"Vervallen artikel {rng.randint(100, 999)}", "",
                           unknown_sku or "", "", "", "", VAT_HIGH,
                           Decimal(rng.randint(5, 60)) + Decimal("0.95"), ZERO, quantity,
                           discount_incl, quantity_shipped, quantity_invoiced)
        return RowSpec(product["id"], variant["id"], product["title"],
                       "" if variant["title"] == "Default" else variant["title"],
                       variant["sku"], variant["ean"], variant["articleCode"], brand_title,
                       variant["_tax_rate"], variant["priceIncl"], variant["priceCost"],
                       quantity, discount_incl, quantity_shipped, quantity_invoiced)


def address_fields(kind: str, addr: dict[str, str], name: str, country: str
                   ) -> dict[str, Any]:
    p = f"address{kind}"
    return {f"{p}Name": name, f"{p}Street": addr["street"], f"{p}Street2": "",
            f"{p}Number": addr["number"], f"{p}Extension": addr["extension"],
            f"{p}Zipcode": addr["zipcode"], f"{p}City": addr["city"], f"{p}Region": "",
            f"{p}Country": dict(COUNTRIES[country])}


def statuses_for(status: str, payment_id: str, rng: random.Random) -> tuple[str, str]:
    """(paymentStatus, shipmentStatus) that fit an order status."""
    if status == "cancelled":
        return "cancelled", "cancelled"
    if status in ("on_hold", "processing_awaiting_payment"):
        return ("partially_paid" if rng.random() < 0.1 else "not_paid"), "not_shipped"
    if status == "processing_awaiting_shipment":
        return "paid", ("partially_shipped" if rng.random() < 0.4 else "not_shipped")
    if status in ("processing_awaiting_pickup", "processing_ready_for_pickup"):
        return "paid", "not_shipped"
    if payment_id == "afterpay" and rng.random() < 0.4:
        return "not_paid", "shipped"  # pay later: shipped before the invoice is paid
    return "paid", "shipped"


def shipped_quantities(shipment_status: str, quantities: list[int]) -> list[int]:
    if shipment_status == "shipped":
        return list(quantities)
    if shipment_status == "partially_shipped":
        shipped = [q if i % 2 == 0 else 0 for i, q in enumerate(quantities)]
        if len(quantities) == 1:
            shipped = [quantities[0] // 2] if quantities[0] > 1 else [0]
        return shipped
    return [0] * len(quantities)


class IdSource:
    """Increasing ids per resource; orders skip a few ids like a live shop."""

    STARTS = {"orders": 10_280_000, "order_rows": 41_500_000, "customers": 6_100_000,
              "products": 38_000_000, "variants": 64_000_000, "categories": 9_200_000,
              "categories_products": 51_000_000, "images": 12_000_000, "brands": 2_200_000,
              "suppliers": 310_000, "types": 120_000, "types_attributes": 440_000,
              "attributes": 700_000, "movements": 90_000_000, "metafields": 3_000_000,
              "checkouts": 27_000_000, "product_attributes": 5_000_000,
              "shipments": 15_600_000, "webhooks": 1_900_000}

    def __init__(self) -> None:
        self._next = dict(self.STARTS)

    def next(self, kind: str, gap: int = 1) -> int:
        value = self._next[kind] + gap - 1
        self._next[kind] = value + 1
        return value

    def skip_to(self, kind: str, value: int) -> None:
        self._next[kind] = max(self._next[kind], value)
