import json
from datetime import date
from decimal import Decimal as D

import pytest

from koppel.domain.money import RoundingPolicy, line_amount_matches, predict_qbo_totals, TaxableLine
from koppel.domain.qbo_payloads import (
    AdjustmentRow,
    DocumentOptions,
    ItemAccounts,
    OrderRefs,
    OriginalDocument,
    PayloadError,
    build_refund_document,
    build_sales_document,
    category_payload,
    global_tax_calculation,
    inventory_adjustment_payload,
    item_payload,
    separate_order_discount,
)
from koppel.domain.records import MappedOrder

TAX_CODES = {"21": "T21", "9": "T9", "0": "T0"}
ROUNDING = RoundingPolicy(enabled=True, item_id="ROUND", max_amount=D("0.05"))


def order(**overrides):
    data = {
        "source_id": "1001",
        "number": "ORD00018",
        "created_at": "2024-03-31T23:30:00+00:00",
        "status": "processing_awaiting_shipment",
        "customer": {"source_id": 7, "email": "Jan@Example.com", "given_name": "Jan", "family_name": "Jansen"},
        "bill_addr": {"line1": "Kerkstraat 1", "city": "Amsterdam", "postal_code": "1011AA", "country": "nl"},
        "lines": [
            {"source_id": 1, "sku": "A", "name": "Shirt", "quantity": 2, "amount_excl": "10.00",
             "amount_incl": "12.10", "tax_rate": 21},
            {"source_id": 2, "sku": "B", "name": "Book", "quantity": 1, "amount_excl": "5.00",
             "amount_incl": "5.45", "tax_rate": 9},
            {"source_id": 3, "sku": "C", "name": "Gift card", "quantity": 1, "amount_excl": "3.00",
             "amount_incl": "3.00", "tax_rate": 0},
        ],
        "shipping_excl": "4.09", "shipping_incl": "4.95", "shipping_tax_rate": 21, "shipping_name": "PostNL",
        "total_excl": "22.09", "total_incl": "25.50",
        "memo": "Please ring twice",
    }
    data.update(overrides)
    return MappedOrder.model_validate(data)


def refs(**overrides):
    data = dict(customer_id="58", item_ids={"A": "1", "B": "2", "C": "3"}, tax_code_ids=TAX_CODES,
                shipping_item_id="SHIP", payment_method_id="PM", deposit_account_id="DEP", term_id="TERM")
    data.update(overrides)
    return OrderRefs(**data)


def options(**overrides):
    data = dict(doc_type="SalesReceipt", tax_calculation="TaxInclusive", rounding=ROUNDING)
    data.update(overrides)
    return DocumentOptions(**data)


def sales_lines(payload):
    return [l for l in payload["Line"] if l["DetailType"] == "SalesItemLineDetail"]


def assert_6070_safe(payload):
    for line in sales_lines(payload):
        detail = line["SalesItemLineDetail"]
        assert line_amount_matches(D(str(detail["Qty"])), D(str(detail["UnitPrice"])), D(str(line["Amount"])))


def replay_qbo_total(payload, rates_by_code, mode):
    """Recompute QBO's total from the payload only (what the real service sees)."""
    lines = []
    for line in payload["Line"]:
        if line["DetailType"] == "SalesItemLineDetail":
            detail = line["SalesItemLineDetail"]
            code = detail.get("TaxCodeRef", {}).get("value")
            gross = detail.get("TaxInclusiveAmt")
            lines.append(TaxableLine(net=D(str(line["Amount"])), rate=rates_by_code.get(code),
                                     gross=D(str(gross)) if gross is not None else None))
        elif line["DetailType"] == "DiscountLineDetail":
            lines.append(TaxableLine(net=D(str(line["Amount"])), rate=None, kind="discount"))
    return predict_qbo_totals(lines, mode).total_amt


RATES = {"T21": D("21"), "T9": D("9"), "T0": D("0")}


def test_mixed_vat_tax_inclusive_receipt():
    built = build_sales_document(order(), refs(), options())
    p = built.payload
    assert built.entity == "SalesReceipt"
    assert p["DocNumber"] == "ORD00018"
    assert p["TxnDate"] == "2024-03-31"
    assert p["GlobalTaxCalculation"] == "TaxInclusive"
    assert p["CustomerRef"] == {"value": "58"}
    assert p["PaymentMethodRef"] == {"value": "PM"} and p["DepositToAccountRef"] == {"value": "DEP"}
    assert "SalesTermRef" not in p
    assert p["BillEmail"] == {"Address": "Jan@Example.com"}
    assert p["BillAddr"]["Country"] == "NL"
    assert "ORD00018" in p["PrivateNote"] and "1001" in p["PrivateNote"] and "ring twice" in p["PrivateNote"]
    lines = sales_lines(p)
    assert [l["SalesItemLineDetail"]["ItemRef"]["value"] for l in lines] == ["1", "2", "3", "SHIP"]
    shirt = lines[0]
    assert shirt["Amount"] == 10 and shirt["SalesItemLineDetail"]["Qty"] == 2
    assert shirt["SalesItemLineDetail"]["UnitPrice"] == 5
    assert shirt["SalesItemLineDetail"]["TaxInclusiveAmt"] == 12.1
    assert [l["SalesItemLineDetail"]["TaxCodeRef"]["value"] for l in lines] == ["T21", "T9", "T0", "T21"]
    assert lines[3]["Description"] == "PostNL"
    assert built.rounding_difference == 0
    assert built.predicted.total_amt == D("25.50") == built.shop_total
    assert {str(t.rate): t.amount for t in built.predicted.tax_lines} == {"0": D("0.00"), "9": D("0.45"), "21": D("2.96")}
    assert_6070_safe(p)


def test_tax_excluded_invoice_has_terms_and_no_inclusive_amounts():
    built = build_sales_document(order(), refs(), options(doc_type="Invoice", tax_calculation="TaxExcluded"))
    p = built.payload
    assert built.entity == "Invoice" and p["SalesTermRef"] == {"value": "TERM"}
    assert "PaymentMethodRef" not in p and "DepositToAccountRef" not in p
    assert all("TaxInclusiveAmt" not in l["SalesItemLineDetail"] for l in sales_lines(p))
    assert built.predicted.total_amt == D("25.50")


def cent_case_order():
    # Two rows of net 8.26 at 21 %: the shop rounds VAT per row (9.99 each, total 19.98);
    # QBO taxes the summed net once on a TaxExcluded document: 16.52 * 21 % = 3.4692 -> 3.47,
    # total 19.99.
    return order(
        lines=[
            {"source_id": 1, "sku": "A", "name": "Mug", "quantity": 1, "amount_excl": "8.26", "amount_incl": "9.99", "tax_rate": 21},
            {"source_id": 2, "sku": "B", "name": "Cup", "quantity": 1, "amount_excl": "8.26", "amount_incl": "9.99", "tax_rate": 21},
        ],
        shipping_excl=None, shipping_incl=None, shipping_tax_rate=None,
        total_excl="16.52", total_incl="19.98",
    )


def test_rounding_line_added_when_per_row_rounding_differs_by_a_cent():
    built = build_sales_document(cent_case_order(), refs(), options(tax_calculation="TaxExcluded"))
    assert built.rounding_difference == D("-0.01")
    rounding = built.payload["Line"][-1]
    assert rounding["SalesItemLineDetail"]["ItemRef"]["value"] == "ROUND"
    assert rounding["Amount"] == -0.01
    assert rounding["SalesItemLineDetail"]["TaxCodeRef"]["value"] == "T0"
    assert built.predicted.total_amt == D("19.98")
    assert replay_qbo_total(built.payload, RATES, "TaxExcluded") == D("19.98")
    assert any("rounding" in note for note in built.notes)
    assert_6070_safe(built.payload)


def test_tax_inclusive_document_reproduces_gross_rows_without_rounding_line():
    built = build_sales_document(cent_case_order(), refs(), options(tax_calculation="TaxInclusive"))
    assert built.rounding_difference == 0
    assert built.predicted.total_amt == D("19.98")
    assert [l["Amount"] for l in sales_lines(built.payload)] == [8.26, 8.26]


def test_rounding_too_large_fails_the_record():
    with pytest.raises(PayloadError) as err:
        build_sales_document(order(total_incl="26.50"), refs(), options())
    assert err.value.field == "total_incl"


def test_rounding_disabled_reports_difference_without_line():
    o = order(total_incl="25.49")
    built = build_sales_document(o, refs(), options(rounding=RoundingPolicy(enabled=False)))
    assert built.rounding_difference == D("-0.01")
    assert all(l["SalesItemLineDetail"]["ItemRef"]["value"] != "ROUND" for l in sales_lines(built.payload))


def test_row_discount_folded_into_exact_unit_price():
    o = order(
        lines=[{"source_id": 1, "sku": "A", "name": "Shirt", "quantity": 3, "unit_price_excl": "10.00",
                "amount_excl": "25.00", "amount_incl": "30.25", "discount_excl": "5.00", "discount_incl": "6.05",
                "tax_rate": 21}],
        shipping_excl=None, shipping_incl=None, shipping_tax_rate=None, total_excl="25.00", total_incl="30.25",
    )
    built = build_sales_document(o, refs(), options(tax_calculation="TaxExcluded"))
    line = sales_lines(built.payload)[0]
    assert line["SalesItemLineDetail"]["Qty"] == 3
    assert line["Amount"] == 25
    assert line["SalesItemLineDetail"]["UnitPrice"] == 8.3333333
    assert "discount 6.05" in line["Description"]
    assert_6070_safe(built.payload)
    assert built.predicted.total_amt == D("30.25")


def test_separate_order_discount_split_per_rate_on_discount_item():
    # rows 12.10 + 5.45 + 3.00 + shipping 4.95 = 25.50; a 10 % coupon on the goods not in rows
    o = order(discount_excl="1.80", discount_incl="2.06", total_excl="20.29", total_incl="23.44")
    assert separate_order_discount(o) == (D("1.80"), D("2.06"))
    built = build_sales_document(o, refs(discount_item_id="DISC"), options())
    discount = [l for l in sales_lines(built.payload) if l["SalesItemLineDetail"]["ItemRef"]["value"] == "DISC"]
    assert [l["SalesItemLineDetail"]["TaxCodeRef"]["value"] for l in discount] == ["T21", "T9", "T0"]
    assert sum(D(str(l["SalesItemLineDetail"]["TaxInclusiveAmt"])) for l in discount) == D("-2.06")
    assert built.predicted.total_amt == D("23.44") and built.rounding_difference == 0
    excl = build_sales_document(o, refs(discount_item_id="DISC"), options(tax_calculation="TaxExcluded"))
    excl_discount = [l for l in sales_lines(excl.payload) if l["SalesItemLineDetail"]["ItemRef"]["value"] == "DISC"]
    assert sum(D(str(l["Amount"])) for l in excl_discount) == D("-1.80")
    assert excl.predicted.total_amt == D("23.44")
    assert_6070_safe(built.payload)


def test_order_discount_already_in_rows_is_not_booked_twice():
    o = order(discount_excl="1.00", discount_incl="1.21")
    assert separate_order_discount(o) is None
    built = build_sales_document(o, refs(discount_item_id="DISC"), options())
    assert all(l["SalesItemLineDetail"]["ItemRef"]["value"] != "DISC" for l in sales_lines(built.payload))
    assert "already contained" in " ".join(built.notes)


def test_discount_line_detail_only_for_single_rate():
    single = order(
        lines=[{"source_id": 1, "sku": "A", "name": "Shirt", "quantity": 2, "amount_excl": "10.00",
                "amount_incl": "12.10", "tax_rate": 21}],
        shipping_excl=None, shipping_incl=None, shipping_tax_rate=None,
        discount_excl="1.00", discount_incl="1.21", total_excl="9.00", total_incl="10.89",
    )
    built = build_sales_document(single, refs(), options(tax_calculation="TaxExcluded"))
    discount = [l for l in built.payload["Line"] if l["DetailType"] == "DiscountLineDetail"]
    assert len(discount) == 1 and discount[0]["Amount"] == 1
    assert built.predicted.total_amt == D("10.89")
    mixed = order(discount_excl="1.80", discount_incl="2.06", total_excl="20.29", total_incl="23.44")
    with pytest.raises(PayloadError, match="discount_item"):
        build_sales_document(mixed, refs(), options())


def test_doc_number_longer_than_21_is_an_error_not_truncated():
    with pytest.raises(PayloadError) as err:
        build_sales_document(order(number="ORD-2024-000000000001"), refs(), options(doc_number_prefix="LS"))
    assert err.value.field == "number"
    assert build_sales_document(order(number="X" * 21), refs(), options()).payload["DocNumber"] == "X" * 21


def test_txn_date_in_shop_timezone():
    built = build_sales_document(order(), refs(), options(timezone="Europe/Amsterdam"))
    assert built.payload["TxnDate"] == "2024-04-01"


def test_missing_references_name_the_field():
    with pytest.raises(PayloadError) as err:
        build_sales_document(order(), refs(item_ids={"A": "1", "B": "2"}), options())
    assert err.value.field == "lines.2.sku"
    assert build_sales_document(order(), refs(item_ids={}, fallback_item_id="UNK"), options()).payload
    with pytest.raises(PayloadError, match="tax code"):
        build_sales_document(order(), refs(tax_code_ids={"21": "T21", "0": "T0"}), options())
    with pytest.raises(PayloadError, match="shipping item"):
        build_sales_document(order(), refs(shipping_item_id=None), options())


def test_invalid_email_is_not_sent_as_bill_email():
    o = order(customer={"email": "not-an-email", "given_name": "Jan"})
    assert "BillEmail" not in build_sales_document(o, refs(), options()).payload


def test_not_applicable_uses_gross_amounts_without_tax_codes():
    built = build_sales_document(order(), refs(), options(tax_calculation="NotApplicable"))
    lines = sales_lines(built.payload)
    assert all("TaxCodeRef" not in l["SalesItemLineDetail"] for l in lines)
    assert lines[0]["Amount"] == 12.1
    assert built.predicted.total_amt == D("25.50")


def test_global_tax_calculation_from_settings():
    assert global_tax_calculation(True) == "TaxInclusive"
    assert global_tax_calculation(False) == "TaxExcluded"
    assert global_tax_calculation(True, uses_sales_tax=False) == "NotApplicable"


def test_refund_contains_only_refunded_rows_and_quantities():
    original = OriginalDocument(id="145", entity="Invoice", doc_number="ORD00018")
    built = build_refund_document(
        order(), {"1": D("1"), "3": D("0")}, refs(), options(doc_type="Invoice"), original, refund_shipping=True
    )
    assert built.entity == "CreditMemo"
    p = built.payload
    lines = sales_lines(p)
    assert [l["SalesItemLineDetail"]["ItemRef"]["value"] for l in lines] == ["1", "SHIP"]
    assert lines[0]["SalesItemLineDetail"]["Qty"] == 1 and lines[0]["Amount"] == 5
    assert lines[0]["SalesItemLineDetail"]["TaxInclusiveAmt"] == 6.05
    assert p["DocNumber"] == "ORD00018-R"
    assert "145" in p["PrivateNote"] and p["CustomerMemo"] == {"value": "Refund of ORD00018"}
    assert built.shop_total == D("11.00") == built.predicted.total_amt


def test_refund_receipt_for_sales_receipt_and_validation():
    original = OriginalDocument(id="9", entity="SalesReceipt", doc_number="ORD00018")
    built = build_refund_document(order(), {"2": D("1")}, refs(), options(), original)
    assert built.entity == "RefundReceipt" and built.payload["DepositToAccountRef"] == {"value": "DEP"}
    with pytest.raises(PayloadError):
        build_refund_document(order(), {"2": D("2")}, refs(), options(), original)
    with pytest.raises(PayloadError):
        build_refund_document(order(), {"99": D("1")}, refs(), options(), original)
    with pytest.raises(PayloadError, match="nothing refunded"):
        build_refund_document(order(), {}, refs(), options(), original)


def test_item_and_category_payloads():
    accounts = ItemAccounts(income_account_id="79", expense_account_id="80", asset_account_id="81")
    inventory = item_payload(name="Shirt - M", item_type="Inventory", accounts=accounts, sku="A-M",
                             unit_price=D("12.10"), sales_tax_included=True, quantity_on_hand=D("5"),
                             inventory_start_date=date(2024, 1, 1), category_id="CAT")
    assert inventory["TrackQtyOnHand"] is True and inventory["QtyOnHand"] == 5
    assert inventory["InvStartDate"] == "2024-01-01"
    assert inventory["AssetAccountRef"] == {"value": "81"} and inventory["ExpenseAccountRef"] == {"value": "80"}
    assert inventory["SubItem"] is True and inventory["ParentRef"] == {"value": "CAT"}
    assert inventory["UnitPrice"] == 12.1 and inventory["SalesTaxIncluded"] is True
    service = item_payload(name="Gift wrap", item_type="Service", accounts=ItemAccounts("79"))
    assert "TrackQtyOnHand" not in service and service["IncomeAccountRef"] == {"value": "79"}
    with pytest.raises(PayloadError):
        item_payload(name="X", item_type="Inventory", accounts=ItemAccounts("79"),
                     inventory_start_date=date(2024, 1, 1))
    assert category_payload("Shirts") == {"Type": "Category", "Name": "Shirts"}
    assert category_payload("Tees", "5") == {"Type": "Category", "Name": "Tees", "SubItem": True,
                                              "ParentRef": {"value": "5"}}


def test_inventory_adjustment_payload():
    payload = inventory_adjustment_payload(
        [AdjustmentRow("1", D("-2")), AdjustmentRow("2", D("0")), AdjustmentRow("3", D("1.5"))],
        adjust_account_id="A", txn_date=date(2024, 5, 1), private_note="koppel stock sync",
    )
    details = [l["ItemAdjustmentLineDetail"] for l in payload["Line"]]
    assert details == [{"ItemRef": {"value": "1"}, "QtyDiff": -2}, {"ItemRef": {"value": "3"}, "QtyDiff": 1.5}]
    assert payload["AdjustAccountRef"] == {"value": "A"} and payload["TxnDate"] == "2024-05-01"
    with pytest.raises(PayloadError):
        inventory_adjustment_payload([AdjustmentRow("1", D("0"))], adjust_account_id="A", txn_date=date(2024, 5, 1))


def test_predictions_match_the_qbo_sandbox_computation():
    """The domain's replica and the sandbox's QBO money model must agree on every shape."""
    from koppel.sandbox.quickbooks import money as sandbox_money  # koppel's own: never skipped
    rates = {code: sandbox_money.Rate(id=code, name=code, percent=pct) for code, pct in RATES.items()}
    cases = [
        (order(), {}, {}),
        (order(), {}, {"tax_calculation": "TaxExcluded"}),
        (order(), {}, {"tax_calculation": "NotApplicable"}),
        (cent_case_order(), {}, {"tax_calculation": "TaxExcluded"}),
        (cent_case_order(), {}, {}),
        (order(discount_excl="1.80", discount_incl="2.06", total_excl="20.29", total_incl="23.44"),
         {"discount_item_id": "DISC"}, {}),
        (order(discount_excl="1.80", discount_incl="2.06", total_excl="20.29", total_incl="23.44"),
         {"discount_item_id": "DISC"}, {"tax_calculation": "TaxExcluded"}),
        (order(lines=[{"source_id": 1, "sku": "A", "name": "Shirt", "quantity": 3, "amount_excl": "24.79",
                       "amount_incl": "30.00", "tax_rate": 21}],
               shipping_excl=None, shipping_incl=None, shipping_tax_rate=None,
               discount_excl="1.00", discount_incl="1.21", total_excl="23.79", total_incl="28.79"), {}, {}),
    ]
    for mapped, ref_overrides, option_overrides in cases:
        built = build_sales_document(mapped, refs(**ref_overrides), options(**option_overrides))
        doc = json.loads(json.dumps(built.payload))
        sandbox_money.compute_vat_document(doc, lambda code: [rates[code]] if code in rates else [])
        assert D(str(doc["TotalAmt"])) == built.predicted.total_amt == built.shop_total, (mapped.number, option_overrides)
        sent = [l["Amount"] for l in built.payload["Line"]]
        assert [l["Amount"] for l in doc["Line"]] == sent
