"""The datamapper: default mapping, overrides, per-field errors, create/update split."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from koppel.mapping import Mapper, MappingError, merge_raw_mappings, split_create_update, validate_rules
from koppel.mapping.defaults import PACKAGED_DEFAULT_MAPPING
from koppel.mapping.paths import check_path, get_path, is_empty
from koppel.mapping.rules import MappingSet
from koppel.mapping.targets import FLOW_TARGETS

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = json.loads(PACKAGED_DEFAULT_MAPPING.read_text(encoding="utf-8"))
TABLES = {"payment_methods": {"iDEAL": "iDEAL (Mollie)"}, "tax_codes": {"21": "21% BTW"}, "countries": {}}


def enriched_order() -> dict:
    """An order as the extract + enrich steps hand it to the mapper (Lightspeed JSON)."""
    country = {"id": 150, "code": "nl", "code3": "nld", "title": "Netherlands"}
    return {
        "id": 10280006,
        "createdAt": "2024-07-22T17:05:35+00:00",
        "updatedAt": "2024-07-30T05:05:35+00:00",
        "number": "ORD00004",
        "status": "completed_shipped",
        "paymentStatus": "paid",
        "shipmentStatus": "shipped",
        "paymentTitle": "iDEAL",
        "priceExcl": 45.41,
        "priceIncl": 54.95,
        "discountExcl": 0,
        "discountIncl": 0,
        "shipmentTitle": "PostNL",
        "shipmentPriceExcl": 4.13,
        "shipmentPriceIncl": 5.0,
        "shipmentTaxRates": [{"name": "21% BTW", "rate": 0.21, "amount": 0.87}],
        "email": " Evi.Ariens@Example.NL ",
        "firstname": "Evi",
        "middlename": "",
        "lastname": "Ariens",
        "phone": "",
        "mobile": "06 12345678",
        "companyName": "",
        "companyVatNumber": "nl 8524.23.566 b01",
        "companyCoCNumber": false_value(),
        "addressBillingStreet": "Samsteeg",
        "addressBillingStreet2": "",
        "addressBillingNumber": "250",
        "addressBillingExtension": "b",
        "addressBillingZipcode": "2983 rx",
        "addressBillingCity": "Lottum",
        "addressBillingRegion": "",
        "addressBillingCountry": country,
        "addressShippingStreet": "Kerkweg 7-2",
        "addressShippingStreet2": "",
        "addressShippingNumber": "",
        "addressShippingExtension": "",
        "addressShippingZipcode": "1234AB",
        "addressShippingCity": "Utrecht",
        "addressShippingRegion": "",
        "addressShippingCountry": {"id": 21, "code": "be", "code3": "bel", "title": "Belgium"},
        "comment": "<p>Graag <b>inpakken</b></p>",
        "customer": {"resource": {"id": 6100003, "url": "customers/6100003", "link": "https://x/nl/customers/6100003.json"}},
        "_shop": {"id": 1, "currency": {"shortcode": "eur"}},
        "_rows": [
            {
                "id": 41500030,
                "productTitle": "Klassieke Jurk",
                "variantTitle": "S / Wit",
                "brandTitle": "Koppel Mode",
                "articleCode": "A3800001201",
                "sku": "",
                "taxRate": 0.21,
                "quantityOrdered": 1,
                "basePriceExcl": 41.281,
                "basePriceIncl": 49.95,
                "priceExcl": 41.28,
                "priceIncl": 49.95,
                "discountExcl": 0.0,
                "discountIncl": 0.0,
            }
        ],
    }


def false_value():
    return False


@pytest.fixture()
def order_mapper() -> Mapper:
    return Mapper("orders", MappingSet.model_validate(DEFAULT).rules("orders"), tables=TABLES)


# ---------------------------------------------------------------- shipped default


def test_the_default_mapping_is_shipped_once():
    assert PACKAGED_DEFAULT_MAPPING.is_file()
    assert not (ROOT / "include/mappings/_default.json").exists()


def test_default_mapping_validates_and_covers_every_flow():
    mappings = MappingSet.model_validate(DEFAULT)
    for flow in FLOW_TARGETS:
        assert mappings.rules(flow), flow
    assert "_rows" in " ".join(DEFAULT["$comment"]) and "_shop" in " ".join(DEFAULT["$comment"])


# ---------------------------------------------------------------- orders


def test_default_mapping_maps_an_enriched_order(order_mapper):
    result = order_mapper.map(enriched_order())
    assert result.errors == []
    values = result.values
    assert values["source_id"] == "10280006" and values["number"] == "ORD00004"
    assert values["created_at"] == datetime(2024, 7, 22, 17, 5, 35, tzinfo=timezone.utc)
    assert values["currency"] == "EUR"
    assert values["payment_method"] == "iDEAL (Mollie)"
    assert values["customer"]["email"] == "evi.ariens@example.nl"
    assert values["customer"]["source_id"] == "6100003"
    assert values["customer"]["phone"] == "06 12345678"
    assert values["customer"]["vat_number"] == "NL852423566B01"
    assert values["customer"]["coc_number"] is None
    assert values["customer"]["middle_name"] is None
    assert values["bill_addr"] == {
        "line1": "Samsteeg 250b", "line2": None, "city": "Lottum", "postal_code": "2983 RX", "country": "NL", "region": None,
    }
    assert values["ship_addr"]["line1"] == "Kerkweg 7-2"
    assert values["ship_addr"]["country"] == "BE"
    assert values["shipping_tax_rate"] == Decimal("21")
    assert values["total_incl"] == Decimal("54.95")
    assert values["memo"] == "Graag inpakken"
    [line] = values["lines"]
    assert line["sku"] == "A3800001201"  # Lightspeed's sku is often "": articleCode is the fallback
    assert line["name"] == "Klassieke Jurk - S / Wit"
    assert line["tax_rate"] == Decimal("21")
    assert line["unit_price_excl"] == Decimal("41.281")
    assert line["quantity"] == Decimal("1")


def test_bad_value_is_a_per_field_error_not_a_crash(order_mapper):
    order = enriched_order()
    order["_rows"][0]["taxRate"] = "hoog"
    order["createdAt"] = "gisteren"
    result = order_mapper.map(order)
    assert MappingError("10280006", "lines[0].tax_rate", "to_percent: not a number: 'hoog'") in result.errors
    assert any(error.field == "created_at" and "not a date" in error.message for error in result.errors)
    assert result.values["lines"][0]["tax_rate"] is None
    assert result.values["lines"][0]["sku"] == "A3800001201"  # the rest of the record is still mapped
    assert not result.ok


def test_missing_rows_give_empty_lines_and_non_list_is_an_error(order_mapper):
    order = enriched_order()
    order["_rows"] = False
    assert order_mapper.map(order).values["lines"] == []
    order["_rows"] = {"id": 1}
    result = order_mapper.map(order)
    assert result.errors == [MappingError("10280006", "lines", "'_rows' is not a list")]


def test_root_paths_from_inside_rows():
    mapper = Mapper("orders", {"lines": {"each": "_rows", "fields": {"description": "$.number", "sku": "sku"}}})
    values = mapper.map({"id": 1, "number": "ORD1", "_rows": [{"sku": "X"}, {"sku": "Y"}]}).values
    assert values["lines"] == [{"description": "ORD1", "sku": "X"}, {"description": "ORD1", "sku": "Y"}]


def test_lookup_error_reports_record_and_field():
    mapper = Mapper("orders", {"payment_method": {"path": "paymentTitle", "transforms": [{"fn": "lookup", "table": "payment_methods"}]}}, tables=TABLES)
    result = mapper.map({"id": 9, "paymentTitle": "Bitcoin"})
    assert result.errors == [MappingError("9", "payment_method", "lookup: no entry for 'Bitcoin' in settings.payment_methods")]


def test_const_and_paths_rules():
    mapper = Mapper("stock", {"sku": {"paths": ["sku", "articleCode"]}, "track_stock": {"const": True}, "stock_level": {"const": "12,5"}})
    assert mapper.map({"id": 1, "sku": False, "articleCode": "A1"}).values == {"sku": "A1", "track_stock": True, "stock_level": Decimal("12.5")}


def test_values_are_coerced_to_target_kinds():
    mapper = Mapper("products", {"source_product_id": "pid", "category_path": "cats", "name": "title"})
    ok = mapper.map({"id": 1, "pid": 38, "cats": ["Kleding", "", "Jurken"], "title": "Jurk"})
    assert ok.values == {"source_product_id": "38", "category_path": ["Kleding", "Jurken"], "name": "Jurk"}
    bad = mapper.map({"id": 1, "pid": 38, "cats": "Kleding", "title": {"nl": "Jurk"}})
    assert {error.field for error in bad.errors} == {"category_path", "name"}


# ---------------------------------------------------------------- other flows


def test_products_customers_and_stock_defaults():
    variant = {
        "id": 64000017, "sku": "KLA-1", "articleCode": "A1", "ean": "8 712345 678906", "priceExcl": 41.28, "priceIncl": 49.95,
        "priceCost": 22.48, "stockLevel": 7, "stockTracking": "enabled", "title": "S / Wit",
        "options": [{"id": 1, "name": "Maat", "value": "S"}],
        "_product": {"id": 38000012, "title": "Klassieke Jurk", "description": "Mooi", "content": "<p>Lang <i>verhaal</i></p>"},
        "_shop": {"currency": {"shortcode": "EUR"}}, "_categories": ["Kleding", "Jurken"], "_attributes": {"Made In": "NL"},
        "_images": [{"src": "https://cdn/x.png"}], "_tax_rate": 0.21,
    }
    mappings = MappingSet.model_validate(DEFAULT)
    item = Mapper("products", mappings.rules("products")).map(variant)
    assert item.errors == []
    assert item.values["source_product_id"] == "38000012" and item.values["source_variant_id"] == "64000017"
    assert item.values["name"] == "Klassieke Jurk" and item.values["long_description"] == "Lang verhaal"
    assert item.values["ean"] == "8712345678906" and item.values["tax_rate"] == Decimal("21")
    assert item.values["image_urls"] == ["https://cdn/x.png"] and item.values["track_stock"] is True
    assert item.values["category_path"] == ["Kleding", "Jurken"] and item.values["attributes"] == {"Made In": "NL"}
    stock = Mapper("stock", mappings.rules("stock")).map({**variant, "stockTracking": "disabled"})
    assert stock.values == {"source_variant_id": "64000017", "sku": "KLA-1", "stock_level": Decimal("7"), "track_stock": False}
    customer = Mapper("customers", mappings.rules("customers")).map({**enriched_order(), "id": 5, "memo": ""})
    assert customer.errors == [] and customer.values["email"] == "evi.ariens@example.nl"
    assert customer.values["bill_addr"]["line1"] == "Samsteeg 250b" and customer.values["notes"] is None


# ---------------------------------------------------------------- create vs update


def test_fields_for_update_and_split_create_update():
    rules = {
        "name": {"path": "title", "on": "create_only"},
        "price_incl": "priceIncl",
        "sku": {"path": "sku", "on": "always"},
    }
    mapper = Mapper("products", rules)
    split = mapper.fields_for_update()
    assert split.create_only == {"name"} and split.always == {"price_incl", "sku"}
    values = mapper.map({"id": 1, "title": "Jurk", "priceIncl": "49,95", "sku": "J1"}).values
    create, update = split_create_update(values, mapper)
    assert create == {"name": "Jurk", "price_incl": Decimal("49.95"), "sku": "J1"}
    assert update == {"price_incl": Decimal("49.95"), "sku": "J1"}
    assert split_create_update(values, rules, flow="products") == (create, update)


def test_split_create_update_nested_and_row_fields():
    rules = {
        "customer.email": {"path": "email", "on": "create_only"},
        "customer.phone": "phone",
        "lines": {"each": "_rows", "fields": {"sku": "sku", "name": {"path": "title", "on": "create_only"}}},
    }
    mapper = Mapper("orders", rules)
    values = mapper.map({"id": 1, "email": "a@b.nl", "phone": "06", "_rows": [{"sku": "X", "title": "T"}]}).values
    create, update = split_create_update(values, mapper)
    assert create["customer"] == {"email": "a@b.nl", "phone": "06"} and create["lines"] == [{"sku": "X", "name": "T"}]
    assert update["customer"] == {"phone": "06"} and update["lines"] == [{"sku": "X"}]
    assert values["customer"]["email"] == "a@b.nl"  # the mapped values are not mutated
    assert "lines[].name" in mapper.fields_for_update().create_only


# ---------------------------------------------------------------- merging


def test_tenant_overrides_default_per_field():
    override = {
        "orders": {
            "memo": {"const": "webshop"},
            "customer.phone": None,
            "lines": {"fields": {"sku": "articleCode", "description": None}},
        }
    }
    merged = merge_raw_mappings(DEFAULT, override)
    assert merged["orders"]["memo"] == {"const": "webshop"}
    assert "customer.phone" not in merged["orders"]
    assert merged["orders"]["customer.email"] == DEFAULT["orders"]["customer.email"]
    assert merged["orders"]["lines"]["each"] == "_rows"
    assert merged["orders"]["lines"]["fields"]["sku"] == "articleCode"
    assert "description" not in merged["orders"]["lines"]["fields"]
    assert merged["orders"]["lines"]["fields"]["tax_rate"] == DEFAULT["orders"]["lines"]["fields"]["tax_rate"]
    assert merged["products"] == DEFAULT["products"]
    assert DEFAULT["orders"]["customer.phone"]  # the default itself is untouched
    MappingSet.model_validate(merged)


# ---------------------------------------------------------------- rule validation and paths


def test_validate_rules_rejects_unknown_targets_and_sources():
    with pytest.raises(ValidationError, match="customer.emial"):
        validate_rules("orders", {"customer.emial": "email"})
    with pytest.raises(ValidationError, match="exactly one of 'path', 'paths' or 'const'"):
        validate_rules("stock", {"sku": {"path": "sku", "const": "X"}})
    with pytest.raises(KeyError):
        validate_rules("invoices", {})


@pytest.mark.parametrize("path", ["email", "addressBillingCountry.code", "_rows.0.sku", "_images.*.src", "$._shop.id"])
def test_good_paths(path):
    assert check_path(path) == path


@pytest.mark.parametrize("path", ["", "a..b", "a b", "__import__('os')", "a.b()", "x" * 201, "$"])
def test_bad_paths(path):
    with pytest.raises(ValueError):
        check_path(path)


def test_get_path_and_is_empty():
    record = {"a": {"b": [1, {"c": 2}]}, "l": [{"s": "x"}, {"s": "y"}]}
    assert get_path(record, "a.b.1.c") == 2
    assert get_path(record, "a.b.-1.c") == 2
    assert get_path(record, "a.b.5") is None
    assert get_path(record, "l.*.s") == ["x", "y"]
    assert get_path(record, "a.missing.deeper") is None
    assert get_path({"x": 1}, "$.y", root={"y": 2}) == 2
    assert all(is_empty(value) for value in (None, False, "", "  ", [], {}))
    assert not any(is_empty(value) for value in (0, "0", [0], True))


def test_forward_targets_are_the_record_models_fields():
    """A mapping field is declared once, on the canonical record model: the targets a
    mapping may fill are derived from it, with the kinds the mapper coerces to."""
    from pydantic import Field, create_model

    from koppel.domain.records import MappedCustomer, MappedItem, MappedOrder, MappedStock
    from koppel.mapping.targets import model_tree

    for flow, model in (("orders", MappedOrder), ("products", MappedItem),
                        ("customers", MappedCustomer), ("stock", MappedStock)):
        assert set(FLOW_TARGETS[flow]) == set(model.model_fields), flow
    order = FLOW_TARGETS["orders"]
    assert order["lines"][0]["quantity"] == "decimal" and order["created_at"] == "datetime"
    assert order["customer"]["bill_addr"]["postal_code"] == "str"
    assert order["tax_lines"] == [{"rate": "decimal", "amount": "decimal"}]
    assert FLOW_TARGETS["products"]["options"] == "any"  # declared on the model
    grown = create_model("Grown", __base__=MappedStock, bin_location=(str | None, Field(None)))
    assert model_tree(grown)["bin_location"] == "str"
