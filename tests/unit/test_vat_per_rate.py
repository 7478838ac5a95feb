"""Every euro of an order has its place, and the VAT per rate QuickBooks books is the VAT on
the customer's invoice: payloads built by koppel, computed by the QuickBooks sandbox's tax
arithmetic (``koppel.sandbox.quickbooks.money``, which follows what Intuit documents), and
checked with koppel's own verification (``koppel.domain.verify``)."""

from __future__ import annotations

import copy
from decimal import Decimal as D

import pytest

from koppel.domain.money import RoundingPolicy, split_charge
from koppel.domain.qbo_payloads import DocumentOptions, OrderRefs, PayloadError, build_sales_document
from koppel.domain.records import MappedOrder
from koppel.domain.verify import booked_figures, differences
from koppel.sandbox.quickbooks import money as qbo_money

#: the NL sandbox company's tax codes: code id → (rate id, name, percent)
CODES = {"1": ("1", "21% BTW", D(21)), "2": ("2", "9% BTW", D(9)), "3": ("3", "0% BTW", D(0))}
TAX_CODES = {"21": "1", "9": "2", "0": "3"}


def rates_for_code(code: str):
    rate_id, name, percent = CODES[code]
    return [qbo_money.Rate(rate_id, name, percent)]


def refs(**overrides) -> OrderRefs:
    data = dict(customer_id="58", item_ids={"A": "1", "B": "2", "C": "3"}, tax_code_ids=TAX_CODES,
                tax_rate_ids={code: rate for code, (rate, _, _) in CODES.items()},
                shipping_item_id="SHIP", payment_fee_item_id="FEE", discount_item_id="DISC",
                payment_method_id="PM", deposit_account_id="DEP")
    data.update(overrides)
    return OrderRefs(**data)


def options(mode: str, **overrides) -> DocumentOptions:
    data = dict(doc_type="SalesReceipt", tax_calculation=mode,
                rounding=RoundingPolicy(enabled=True, item_id="ROUND", max_amount=D("0.05"),
                                        tax_code_id="3"))
    data.update(overrides)
    return DocumentOptions(**data)


def mixed_order(**overrides) -> MappedOrder:
    """An ordinary Dutch order as Lightspeed reports it: 21 % and 9 % rows (3 × 0.33),
    shipping 4.95 split pro rata over both rates, an iDEAL fee of 0.29 split the same way.

    Rows (incl → excl per row, Lightspeed rounds per row): 12.10 → 10.00 (21 %),
    3 × 0.33 = 0.99 → 0.91 (9 %), 5.45 → 5.00 (9 %). Goods 18.54 incl: 21 % share 12.10,
    9 % share 6.44. Shipping 4.95: 21 % 3.23 (excl 2.67, VAT 0.56), 9 % 1.72 (excl 1.58,
    VAT 0.14). Fee 0.29: 21 % 0.19 (0.16 + 0.03), 9 % 0.10 (0.09 + 0.01).
    VAT 21 %: 2.10 + 0.56 + 0.03 = 2.69; 9 %: 0.08 + 0.45 + 0.14 + 0.01 = 0.68.
    """
    data = {
        "source_id": "1001", "number": "ORD01001", "created_at": "2026-11-30T10:00:00+00:00",
        "customer": {"email": "jan@example.nl", "given_name": "Jan", "family_name": "Jansen"},
        "lines": [
            {"source_id": 1, "sku": "A", "name": "Shirt", "quantity": 1, "amount_excl": "10.00",
             "amount_incl": "12.10", "tax_rate": 21},
            {"source_id": 2, "sku": "B", "name": "Drop", "quantity": 3, "amount_excl": "0.91",
             "amount_incl": "0.99", "tax_rate": 9},
            {"source_id": 3, "sku": "C", "name": "Book", "quantity": 1, "amount_excl": "5.00",
             "amount_incl": "5.45", "tax_rate": 9},
        ],
        "shipping_excl": "4.25", "shipping_incl": "4.95", "shipping_name": "PostNL",
        "shipping_taxes": [{"rate": 21, "amount": "0.56"}, {"rate": 9, "amount": "0.14"}],
        "payment_fee_excl": "0.25", "payment_fee_incl": "0.29", "payment_fee_name": "iDEAL",
        "payment_fee_taxes": [{"rate": 21, "amount": "0.03"}, {"rate": 9, "amount": "0.01"}],
        "total_excl": "20.41", "total_incl": "23.78",
        "tax_lines": [{"rate": 21, "amount": "2.69"}, {"rate": 9, "amount": "0.68"}],
    }
    data.update(overrides)
    return MappedOrder.model_validate(data)


def book(payload: dict) -> dict:
    """What the QuickBooks sandbox stores for ``payload`` (the request as sent)."""
    doc = copy.deepcopy(payload)
    sent = doc.pop("TxnTaxDetail", None)
    qbo_money.compute_vat_document(doc, rates_for_code, sent)
    return doc


def test_split_charge_keeps_the_shops_vat_per_rate_and_its_totals():
    parts = split_charge("4.25", "4.95", [("21", "0.56"), ("9", "0.14")])
    # each share keeps its VAT; nets are VAT / rate (0.56 / 21 % = 2.67, 0.14 / 9 % = 1.56)
    # and the largest takes the rest (4.25 − 4.23 = 0.02)
    assert [(p.rate, p.net, p.gross) for p in parts] == [
        (D(21), D("2.69"), D("3.25")), (D(9), D("1.56"), D("1.70"))]
    assert sum(p.net for p in parts) == D("4.25") and sum(p.gross for p in parts) == D("4.95")
    # a 0 % share takes the rounding rest of the nets
    parts = split_charge("3.50", "3.95", [("21", "0.45"), ("0", "0")])
    assert [(p.rate, p.net, p.gross) for p in parts] == [
        (D(21), D("2.14"), D("2.59")), (D(0), D("1.36"), D("1.36"))]
    with pytest.raises(ValueError, match="does not add up"):
        split_charge("4.25", "4.95", [("21", "0.56"), ("9", "0.15")])


@pytest.mark.parametrize("mode", ["TaxInclusive", "TaxExcluded"])
def test_every_euro_has_its_line_and_vat_per_rate_is_the_shops(mode):
    order = mixed_order()
    built = build_sales_document(order, refs(), options(mode))
    lines = [l for l in built.payload["Line"] if l["DetailType"] == "SalesItemLineDetail"]
    items = [l["SalesItemLineDetail"]["ItemRef"]["value"] for l in lines]
    assert items == ["1", "2", "3", "SHIP", "SHIP", "FEE", "FEE"]
    descriptions = [l.get("Description") for l in lines[3:]]
    assert descriptions == ["PostNL (21% VAT)", "PostNL (9% VAT)",
                            "Payment fee (iDEAL) (21% VAT)", "Payment fee (iDEAL) (9% VAT)"]
    codes = [l["SalesItemLineDetail"]["TaxCodeRef"]["value"] for l in lines]
    assert codes == ["1", "2", "2", "1", "2", "1", "2"]
    # the shop's VAT per rate is supplied (Intuit: "you may supply it")
    supplied = built.payload["TxnTaxDetail"]
    assert [(t["TaxLineDetail"]["TaxRateRef"]["value"], t["Amount"]) for t in supplied["TaxLine"]] \
        == [("1", 2.69), ("2", 0.68)]
    assert all(t["DetailType"] == "TaxLineDetail" for t in supplied["TaxLine"])
    stored = book(built.payload)
    booked = booked_figures(stored)
    assert booked.total == D("23.78")
    assert booked.vat == {"21": D("2.69"), "9": D("0.68")}
    assert differences(built.expected, stored) == []
    assert not any(l["SalesItemLineDetail"]["ItemRef"]["value"] == "ROUND"
                   for l in stored["Line"] if l["DetailType"] == "SalesItemLineDetail")


def small_rows_order() -> MappedOrder:
    """Five rows of 3 × 0.33 at 9 %: Lightspeed's VAT per row is 0.99 − 0.91 = 0.08, so
    the invoice says 5 × 0.08 = 0.40; QuickBooks' own per-rate arithmetic says
    round(4.55 × 9 %) = 0.41."""
    rows = [{"source_id": i, "sku": "B", "name": "Drop", "quantity": 3, "amount_excl": "0.91",
             "amount_incl": "0.99", "tax_rate": 9} for i in range(1, 6)]
    return mixed_order(lines=rows, shipping_excl=None, shipping_incl=None, shipping_taxes=[],
                       payment_fee_excl=None, payment_fee_incl=None, payment_fee_taxes=[],
                       total_excl="4.55", total_incl="4.95",
                       tax_lines=[{"rate": 9, "amount": "0.40"}])


@pytest.mark.parametrize("mode", ["TaxInclusive", "TaxExcluded"])
def test_supplied_vat_books_the_invoice_vat_where_quickbooks_would_round_per_rate(mode):
    built = build_sales_document(small_rows_order(), refs(), options(mode))
    stored = book(built.payload)
    assert booked_figures(stored).vat == {"9": D("0.40")}
    assert booked_figures(stored).total == D("4.95")
    assert built.rounding_difference == 0 and differences(built.expected, stored) == []
    tax_line = stored["TxnTaxDetail"]["TaxLine"][0]
    if mode == "TaxExcluded":  # QuickBooks would have said 0.41
        assert tax_line["TaxLineDetail"]["OverrideDeltaAmount"] == -0.01


def test_without_supplied_vat_the_difference_is_named_not_booked_silently():
    """``vat_amounts: quickbooks``: QuickBooks books 0.41 VAT where the invoice says 0.40 —
    a rounding line keeps the total, and the verification names the VAT difference."""
    built = build_sales_document(small_rows_order(), refs(), options("TaxExcluded", supply_vat=False))
    assert "TxnTaxDetail" not in built.payload
    stored = book(built.payload)
    assert differences(built.expected, stored) == ["VAT 9% 0.41 (shop 0.40)"]
    assert booked_figures(stored).total == D("4.95")
    assert built.rounding_difference == D("-0.01")


def test_vat_the_lines_cannot_carry_is_an_error_that_names_the_rate():
    order = mixed_order(tax_lines=[{"rate": 21, "amount": "2.69"}, {"rate": 9, "amount": "0.68"},
                                   {"rate": 6, "amount": "0.10"}])
    with pytest.raises(PayloadError, match="0.10 VAT at 6% but no line carries that rate"):
        build_sales_document(order, refs(), options("TaxInclusive"))


def test_a_payment_fee_without_an_item_names_the_setting():
    with pytest.raises(PayloadError, match="settings.payment_fee_item"):
        build_sales_document(mixed_order(), refs(payment_fee_item_id=None), options("TaxInclusive"))


def test_the_sandbox_rejects_a_supplied_rate_no_line_uses():
    built = build_sales_document(mixed_order(), refs(), options("TaxInclusive"))
    payload = copy.deepcopy(built.payload)
    payload["TxnTaxDetail"]["TaxLine"].append(
        {"Amount": 0, "DetailType": "TaxLineDetail",
         "TaxLineDetail": {"TaxRateRef": {"value": "3"}, "PercentBased": True, "TaxPercent": 0}})
    with pytest.raises(Exception, match="not a rate of the tax codes"):
        book(payload)
    payload["TxnTaxDetail"]["TaxLine"][-1] = dict(payload["TxnTaxDetail"]["TaxLine"][0])
    with pytest.raises(Exception, match="more than once"):
        book(payload)
