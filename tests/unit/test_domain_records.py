from datetime import datetime, timezone
from decimal import Decimal as D

from koppel.domain.hashing import content_hash, stable_json
from koppel.domain.records import MappedItem, MappedOrder, MappedStock, parse_record


def order_data(**overrides):
    data = {
        "source_id": 1001, "number": "ORD00018", "created_at": "2024-03-31T23:30:00+00:00",
        "customer": {"email": "", "company_name": False, "bill_addr": {"country": "nl"}},
        "lines": [{"source_id": 1, "sku": "", "name": "Shirt", "quantity": 2, "amount_excl": 8.26,
                   "amount_incl": 9.99, "tax_rate": 21}],
        "total_excl": "8.26", "total_incl": "9.99",
    }
    data.update(overrides)
    return data


def test_valid_order_normalises_lightspeed_quirks():
    result = parse_record(MappedOrder, order_data())
    assert result.ok and result.errors == ()
    order = result.record
    assert order.source_id == "1001"
    assert order.created_at == datetime(2024, 3, 31, 23, 30, tzinfo=timezone.utc)
    assert order.lines[0].sku is None and order.lines[0].amount_excl == D("8.26")
    assert order.customer.email is None and order.customer.company_name is None
    assert order.customer.bill_addr.country == "NL"
    assert order.discount_excl is None and order.shipping_name is None


def test_per_field_errors():
    data = order_data(total_incl="abc", currency="EURO", bogus=1)
    data["lines"][0].update(quantity=0, tax_rate=121)
    result = parse_record(MappedOrder, data)
    assert not result.ok
    fields = {error.field for error in result.errors}
    assert fields == {"total_incl", "currency", "bogus", "lines.0.quantity", "lines.0.tax_rate"}
    assert all(error.message for error in result.errors)


def test_blank_required_money_reports_a_missing_value():
    data = order_data()
    data["lines"][0]["amount_incl"] = ""
    errors = parse_record(MappedOrder, data).errors
    assert [(e.field, e.message) for e in errors] == [("lines.0.amount_incl", "a value is required")]


def test_order_needs_lines_and_shipping_rate_when_shipping_charged():
    assert {e.field for e in parse_record(MappedOrder, order_data(lines=[])).errors} == {"lines"}
    errors = parse_record(MappedOrder, order_data(shipping_incl="4.95")).errors
    assert len(errors) == 1 and "shipping_tax_rate" in errors[0].message


def test_item_options_as_list_or_dict_and_bad_country():
    item = parse_record(MappedItem, {"source_product_id": 1, "source_variant_id": 2, "name": "Tee",
                                     "options": [{"name": "Size", "value": "M"}], "category_path": None}).record
    assert item.options == {"Size": "M"} and item.category_path == []
    bad = parse_record(MappedItem, {"source_product_id": 1, "source_variant_id": 2, "name": "Tee",
                                    "category_path": ["A", " "]})
    assert [e.field for e in bad.errors] == ["category_path"]
    stock = parse_record(MappedStock, {"source_variant_id": 5, "stock_level": "3"}).record
    assert stock.source_variant_id == "5" and stock.stock_level == D("3") and stock.track_stock is False


def test_stable_hash_ignores_key_order_and_decimal_scale():
    assert stable_json({"b": D("1.50"), "a": [1, 2]}) == stable_json({"a": [1, 2], "b": D("1.5")})
    assert content_hash({"x": D("2")}) == content_hash({"x": 2})
    assert content_hash({"x": "2"}) != content_hash({"x": 2})
