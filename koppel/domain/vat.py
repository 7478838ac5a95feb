"""VAT treatment of an order: which QuickBooks tax code each line books on.

A 0 % line is not one thing (docs/accounting.md): the Dutch VAT return (BTW-aangifte)
puts domestic 0 % sales in box 1e, exports outside the EU in 3a, intra-EU supplies to
businesses (reverse charge, listed per customer VAT number in the ICP-opgave) in 3b, and
B2C distance sales taxed in the customer's country go through the One-Stop-Shop (OSS).
Each must land on its own tax code. The decision is made per order from Lightspeed's
data, in this order:

====================  ==============================================  ==================
treatment             when                                            lines booked on
====================  ==============================================  ==================
``export``            delivery country outside the EU                 0 % lines: the
                                                                      export code; taxed
                                                                      lines: their rate
``intra_eu_b2b``      delivery country in the EU, not the shop's;     every line: the ICP
                      a company with a well-formed VAT number of      code
                      that country; every line at 0 %
``oss``               delivery country in the EU, not the shop's;     taxed lines: the
                      a rate the tenant maps for that country         OSS code of
                      (``settings.vat_treatments.oss``)               (country, rate)
``domestic``          everything else (the shop's country; EU B2C     the rate's code;
                      under the OSS threshold is taxed like home)     0 % rows whose tax
                                                                      is named as exempt:
                                                                      the exempt code
====================  ==============================================  ==================

The delivery country is the shipping address's, else the billing address's. A VAT
number is checked for form only (country prefix — ``EL`` for Greece — and 2 to 12
letters/digits): VIES is not reachable from here, so the accountant's ICP check stays
theirs; an order that looks like B2B but lacks a valid number is booked as ``domestic``
and says why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal, Mapping

from koppel.domain.money import rate_key
from koppel.domain.records import MappedOrder

#: EU member states (ISO 3166 alpha-2), 2026
EU_COUNTRIES = frozenset(
    "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split()
)
#: VAT-number prefixes that differ from the ISO code
VAT_PREFIX = {"GR": "EL"}
_VAT_BODY = re.compile(r"^[0-9A-Z+*]{2,12}$")

Treatment = Literal["domestic", "intra_eu_b2b", "export", "oss"]


class TreatmentError(ValueError):
    """An order's treatment needs a tax code the tenant has not mapped or QuickBooks lacks."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class TreatmentCodes:
    """Resolved QuickBooks TaxCode ids per treatment (``None``: not mapped/not found;
    ``names`` keeps the tenant's names for errors)."""

    domestic: Mapping[str, str]  # rate_key → code id
    intra_eu_b2b: str | None = None
    export: str | None = None
    exempt: str | None = None
    exempt_tax_names: tuple[str, ...] = ()
    oss: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # country → rate → id
    shop_country: str = "NL"
    names: Mapping[str, str] = field(default_factory=dict)  # setting path → tenant's name


@dataclass(frozen=True)
class Decision:
    """The treatment of one order and the tax code id per rate (and per row, for rows
    that differ from their rate's code: exempt rows)."""

    treatment: Treatment
    codes: dict[str, str]
    row_codes: dict[int, str]
    reason: str


def normalise_vat_number(value: str | None) -> str | None:
    if not value:
        return None
    return re.sub(r"[\s.\-]", "", value).upper() or None


def vat_number_ok(value: str | None, country: str | None) -> bool:
    """Whether ``value`` has the form of a VAT number of ``country`` (prefix + body)."""
    number = normalise_vat_number(value)
    if not number or not country:
        return False
    prefix = VAT_PREFIX.get(country, country)
    return number.startswith(prefix) and bool(_VAT_BODY.match(number[len(prefix):]))


def delivery_country(order: MappedOrder) -> str | None:
    customer = order.customer
    for address in (order.ship_addr, customer.ship_addr if customer else None,
                    order.bill_addr, customer.bill_addr if customer else None):
        if address is not None and address.country:
            return address.country
    return None


def _rates(order: MappedOrder) -> set[str]:
    keys = {rate_key(line.tax_rate) for line in order.lines}
    keys |= {rate_key(t.rate) for t in order.shipping_taxes}
    keys |= {rate_key(t.rate) for t in order.payment_fee_taxes}
    if order.shipping_tax_rate is not None and (order.shipping_incl or 0):
        keys.add(rate_key(order.shipping_tax_rate))
    return keys


def _need(code: str | None, setting: str, codes: TreatmentCodes, what: str) -> str:
    if code:
        return code
    name = codes.names.get(setting)
    if name:
        raise TreatmentError(f"{what} needs QuickBooks tax code {name!r} "
                             f"(settings.{setting}), which QuickBooks does not have", setting)
    raise TreatmentError(f"{what} needs a tax code: set settings.{setting}", setting)


def decide(order: MappedOrder, codes: TreatmentCodes) -> Decision:
    """The treatment of ``order`` and its tax codes (see the module's table)."""
    country = delivery_country(order)
    rates = _rates(order)
    customer = order.customer
    domestic = dict(codes.domestic)

    def domestic_decision(reason: str) -> Decision:
        row_codes = {}
        names = tuple(n.casefold() for n in codes.exempt_tax_names)
        for index, line in enumerate(order.lines):
            if line.tax_rate == 0 and line.tax_name and names \
                    and any(n in line.tax_name.casefold() for n in names):
                row_codes[index] = _need(codes.exempt, "vat_treatments.exempt", codes,
                                         f"row {index + 1}, exempt ({line.tax_name})")
        return Decision("domestic", domestic, row_codes, reason)

    if country is None or country == codes.shop_country:
        return domestic_decision("delivered in the shop's country" if country else
                                 "no delivery country")
    if country not in EU_COUNTRIES:
        if "0" in rates:
            domestic["0"] = _need(codes.export, "vat_treatments.export", codes,
                                  f"an export to {country}")
        return Decision("export", domestic, {}, f"delivered outside the EU ({country})")
    company = bool(order.is_company or (customer and customer.company_name))
    vat = customer.vat_number if customer else None
    if company and rates == {"0"}:
        if vat_number_ok(vat, country):
            code = _need(codes.intra_eu_b2b, "vat_treatments.intra_eu_b2b", codes,
                         f"an intra-EU supply to a business in {country}")
            return Decision("intra_eu_b2b", {"0": code}, {},
                            f"business in {country} with VAT number, VAT reverse charged")
        reason = (f"0 % to a business in {country} without a valid {country} VAT number: "
                  "booked as domestic 0 %")
        return domestic_decision(reason)
    oss = codes.oss.get(country) or {}
    foreign = {key for key in rates if key != "0" and (key in oss or key not in domestic)}
    if foreign:
        mapped = {}
        for key in sorted(foreign):
            mapped[key] = _need(oss.get(key), f"vat_treatments.oss.{country}.{key}", codes,
                                f"an OSS sale to {country} at {key}%")
        return Decision("oss", {**domestic, **mapped}, {},
                        f"B2C distance sale to {country} taxed at its rates (OSS)")
    return domestic_decision(f"EU sale to {country} taxed at the shop's rates")

