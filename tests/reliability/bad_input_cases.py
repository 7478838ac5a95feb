"""The bad-input corpus: one Lightspeed record (an order with its rows, or a customer) as
the API could serve it, broken in one way each. ``run_order``/``run_customer`` push a
record through the mapping and domain layers exactly as the flows do (map → canonical
record → QBO payload) and report either ``("ok", result)`` or ``(stage, [errors])``.

The records in ``data/`` are sandbox records with synthetic personal data."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

DATA = Path(__file__).resolve().parent / "data"
ROOT = Path(__file__).resolve().parents[2]


@lru_cache(maxsize=1)
def tenant():
    from koppel.tenants.loader import load_tenant_file

    config, errors = load_tenant_file(ROOT / "include" / "mappings" / "demo.json")
    assert not errors, errors
    return config


def order_source() -> dict[str, Any]:
    return json.loads((DATA / "order_source.json").read_text())


def customer_source() -> dict[str, Any]:
    return json.loads((DATA / "customer_source.json").read_text())


def run_order(source: dict[str, Any]) -> tuple[str, Any]:
    from koppel.domain.qbo_payloads import DocumentOptions, OrderRefs, PayloadError, build_sales_document
    from koppel.domain.records import MappedOrder, parse_record
    from koppel.mapping import Mapper

    mapped = Mapper.for_tenant(tenant(), "orders").map(source)
    if mapped.errors:
        return "map", [str(e) for e in mapped.errors]
    parsed = parse_record(MappedOrder, mapped.values)
    if parsed.errors:
        return "parse", [str(e) for e in parsed.errors]
    order = parsed.record
    refs = OrderRefs(customer_id="1", item_ids={line.sku: "5" for line in order.lines if line.sku},
                     tax_code_ids={"21": "1", "9": "2", "0": "3"}, shipping_item_id="8",
                     discount_item_id="9", payment_method_id="1", deposit_account_id="4")
    try:
        document = build_sales_document(order, refs, DocumentOptions())
    except PayloadError as exc:
        return "payload", [f"{exc.field}: {exc}"]
    return "ok", {"order": order, "document": document}


def run_customer(source: dict[str, Any]) -> tuple[str, Any]:
    from koppel.domain.customers import display_name_for
    from koppel.domain.records import MappedCustomer, parse_record
    from koppel.mapping import Mapper

    mapped = Mapper.for_tenant(tenant(), "customers").map(source)
    if mapped.errors:
        return "map", [str(e) for e in mapped.errors]
    parsed = parse_record(MappedCustomer, mapped.values)
    if parsed.errors:
        return "parse", [str(e) for e in parsed.errors]
    return "ok", {"customer": parsed.record, "display_name": display_name_for(parsed.record)}


def _set(**changes: Any) -> Callable[[dict], None]:
    def mutate(source: dict) -> None:
        source.update(copy.deepcopy(changes))
    return mutate


def _drop(*keys: str) -> Callable[[dict], None]:
    def mutate(source: dict) -> None:
        for key in keys:
            source.pop(key, None)
    return mutate


def _row(**changes: Any) -> Callable[[dict], None]:
    def mutate(source: dict) -> None:
        source["_rows"][0].update(copy.deepcopy(changes))
    return mutate


def _row_drop(*keys: str) -> Callable[[dict], None]:
    def mutate(source: dict) -> None:
        for key in keys:
            source["_rows"][0].pop(key, None)
    return mutate


def _rows(value: Any) -> Callable[[dict], None]:
    def mutate(source: dict) -> None:
        source["_rows"] = copy.deepcopy(value)
    return mutate


def _duplicate_row(source: dict) -> None:
    source["_rows"].append(copy.deepcopy(source["_rows"][0]))


LONG = "Zeer lange omschrijving " * 400          # ~9,600 characters
NOT_UTF8 = b"Caf\xe9 \xff\xfe".decode("latin-1")  # what a mis-decoded byte string looks like


@dataclass(frozen=True)
class Case:
    id: str
    flow: str                      # "orders" | "customers"
    mutate: Callable[[dict], None]

    def run(self) -> tuple[str, Any]:
        source = order_source() if self.flow == "orders" else customer_source()
        self.mutate(source)
        return run_order(source) if self.flow == "orders" else run_customer(source)


ORDER_CASES = [
    Case("order-no-rows", "orders", _rows([])),
    Case("order-rows-not-a-list", "orders", _rows({"sku": "X"})),
    Case("order-rows-missing", "orders", _drop("_rows")),
    Case("order-missing-number", "orders", _drop("number")),
    Case("order-empty-number", "orders", _set(number="")),
    Case("order-number-is-object", "orders", _set(number={"value": 1})),
    Case("order-missing-created-at", "orders", _drop("createdAt")),
    Case("order-created-at-garbage", "orders", _set(createdAt="gisteren")),
    Case("order-missing-id", "orders", _drop("id")),
    Case("order-price-as-text", "orders", _set(priceIncl="veel")),
    Case("order-price-as-string-number", "orders", _set(priceIncl="51.80")),
    Case("order-total-null", "orders", _set(priceIncl=None)),
    Case("order-negative-total", "orders", _set(priceIncl=-51.8, priceExcl=-42.8)),
    Case("order-absurd-total", "orders", _set(priceIncl=1e15, priceExcl=1e15)),
    Case("order-total-nan", "orders", _set(priceIncl=float("nan"))),
    Case("order-total-mismatch", "orders", _set(priceIncl=999.99)),
    Case("order-unknown-country", "orders", _set(addressBillingCountry={"code": "zz", "title": "Nowhere"})),
    Case("order-country-false", "orders", _set(addressBillingCountry=False)),
    Case("order-country-is-string", "orders", _set(addressBillingCountry="Nederland")),
    Case("order-currency-missing", "orders", _set(_shop={"id": 1})),
    Case("order-currency-unknown", "orders", _set(_shop={"id": 1, "currency": {"shortcode": "XXX"}})),
    Case("order-email-invalid", "orders", _set(email="not-an-email")),
    Case("order-email-truncated", "orders", _set(email="jan.jansen@")),
    Case("order-long-memo", "orders", _set(memo=LONG)),
    Case("order-not-utf8-memo", "orders", _set(memo=NOT_UTF8)),
    Case("order-control-chars-name", "orders", _set(firstname="Jan\x00\x1b[31m", lastname="Jansen\u202e")),
    Case("order-long-company", "orders", _set(isCompany=True, companyName=LONG)),
    Case("order-status-unknown", "orders", _set(status="teleported")),
    Case("order-shipping-negative", "orders", _set(shipmentPriceIncl=-6.95, shipmentPriceExcl=-5.74)),
    Case("row-missing-sku", "orders", _row(sku="")),
    Case("row-sku-false", "orders", _row(sku=False)),
    Case("row-long-sku", "orders", _row(sku="S" * 300)),
    Case("row-quantity-zero", "orders", _row(quantityOrdered=0)),
    Case("row-quantity-negative", "orders", _row(quantityOrdered=-2)),
    Case("row-quantity-absurd", "orders", _row(quantityOrdered=10**12)),
    Case("row-quantity-text", "orders", _row(quantityOrdered="twee")),
    Case("row-quantity-fraction", "orders", _row(quantityOrdered=1.5)),
    Case("row-zero-price", "orders", _row(priceIncl=0, priceExcl=0, basePriceIncl=0, basePriceExcl=0)),
    Case("row-negative-price", "orders", _row(priceIncl=-25.9, priceExcl=-21.4)),
    Case("row-price-missing", "orders", _row_drop("priceIncl", "priceExcl")),
    Case("row-price-text", "orders", _row(priceIncl="gratis")),
    Case("row-vat-unknown-rate", "orders", _row(taxRate=0.17)),
    Case("row-vat-as-percentage", "orders", _row(taxRate=21)),
    Case("row-vat-negative", "orders", _row(taxRate=-0.21)),
    Case("row-vat-missing", "orders", _row_drop("taxRate")),
    Case("row-long-title", "orders", _row(productTitle=LONG)),
    Case("row-not-utf8-title", "orders", _row(productTitle=NOT_UTF8)),
    Case("row-is-not-an-object", "orders", _rows(["KLA-1"])),
    Case("row-duplicate-sku", "orders", _duplicate_row),
]

CUSTOMER_CASES = [
    Case("customer-missing-email", "customers", _set(email="")),
    Case("customer-invalid-email", "customers", _set(email="jan at example")),
    Case("customer-email-uppercase-spaces", "customers", _set(email="  Jan.Jansen@Example.NL ")),
    Case("customer-email-is-number", "customers", _set(email=12345)),
    Case("customer-missing-names", "customers", _set(firstname="", lastname="", companyName="")),
    Case("customer-very-long-name", "customers", _set(firstname=LONG, lastname=LONG)),
    Case("customer-not-utf8-name", "customers", _set(lastname=NOT_UTF8)),
    Case("customer-colon-in-name", "customers", _set(firstname="Jan:", lastname="Jansen:BV")),
    Case("customer-unknown-country", "customers", _set(addressBillingCountry={"code": "qq"})),
    Case("customer-missing-id", "customers", _drop("id")),
    Case("customer-company-without-name", "customers", _set(isCompany=True, companyName="")),
    Case("customer-vat-garbage", "customers", _set(isCompany=True, companyName="Acme",
                                                   companyVatNumber="<script>")),
    Case("customer-phone-is-list", "customers", _set(phone=["020", "123"])),
]

CASES = ORDER_CASES + CUSTOMER_CASES
