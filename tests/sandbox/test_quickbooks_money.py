"""Money, tax, stock and balances in the QBO sandbox, through python-quickbooks.

Expected values are computed by hand (QBO rules in koppel.sandbox.quickbooks.money)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from quickbooks.exceptions import QuickbooksException
from quickbooks.objects.base import LinkedTxn, Ref
from quickbooks.objects.creditmemo import CreditMemo
from quickbooks.objects.detailline import (DiscountLine, DiscountLineDetail, SalesItemLine,
                                           SalesItemLineDetail)
from quickbooks.objects.invoice import Invoice
from quickbooks.objects.item import Item
from quickbooks.objects.payment import Payment, PaymentLine
from quickbooks.objects.refundreceipt import RefundReceipt
from quickbooks.objects.salesreceipt import SalesReceipt
from quickbooks.objects.tax import TxnTaxDetail

from quickbooks_fixtures import *  # noqa: F401,F403

SERVICES, SHIPPING, TSHIRT = "1", "2", "4"
VAT21, VAT9, VAT0 = "1", "2", "3"


def ref(value: str) -> Ref:
    r = Ref()
    r.value = value
    return r


def line(item: str, *, qty=None, price=None, amount=None, code=None, gross=None) -> SalesItemLine:
    result = SalesItemLine()
    detail = SalesItemLineDetail()
    detail.ItemRef = ref(item)
    if qty is not None:
        detail.Qty = qty
    if price is not None:
        detail.UnitPrice = price
    if gross is not None:
        detail.TaxInclusiveAmt = gross
    if code is not None:
        detail.TaxCodeRef = ref(code)
    if amount is not None:
        result.Amount = amount
    result.SalesItemLineDetail = detail
    return result


def d(value) -> Decimal:
    return Decimal(str(value))


def taxes(doc) -> dict[str, tuple[Decimal, Decimal]]:
    return {t.TaxLineDetail.TaxRateRef.value: (d(t.TaxLineDetail.NetAmountTaxable), d(t.Amount))
            for t in doc.TxnTaxDetail.TaxLine}


def test_tax_exclusive_mixed_rates_per_rate_rounding(qb):
    receipt = SalesReceipt()
    receipt.GlobalTaxCalculation = "TaxExcluded"
    receipt.Line = [line(SERVICES, qty=3, price=19.99, code=VAT21),
                    line(SERVICES, qty=2, price=4.15, code=VAT9),
                    line(SERVICES, qty=1, price=12.50, code=VAT0),
                    line(SHIPPING, amount=4.95, code=VAT21)]
    saved = receipt.save(qb=qb)
    assert [d(x.Amount) for x in saved.Line[:4]] == [d("59.97"), d("8.30"), d("12.50"),
                                                     d("4.95")]
    assert taxes(saved) == {VAT21: (d("64.92"), d("13.63")), VAT9: (d("8.30"), d("0.75")),
                            VAT0: (d("12.50"), d("0"))}
    assert d(saved.TxnTaxDetail.TotalTax) == d("14.38")
    assert d(saved.TotalAmt) == d("100.10")


def test_tax_inclusive_mixed_rates_keep_gross_totals(qb):
    invoice = Invoice()
    invoice.CustomerRef = ref("1")
    invoice.GlobalTaxCalculation = "TaxInclusive"
    invoice.Line = [line(SERVICES, qty=1, gross=24.95, code=VAT21),
                    line(SERVICES, qty=2, gross=10.90, code=VAT9),
                    line(SERVICES, qty=1, gross=7.50, code=VAT0),
                    line(SHIPPING, qty=1, gross=12.10, code=VAT21),
                    line(SERVICES, qty=1, gross=1.99, code=VAT21)]
    saved = invoice.save(qb=qb)
    assert [d(x.Amount) for x in saved.Line[:5]] == [d("20.62"), d("10.00"), d("7.50"),
                                                     d("10.00"), d("1.64")]
    assert d(saved.Line[1].SalesItemLineDetail.UnitPrice) == d("5")
    # per-line tax: 4.33 + 2.10 + 0.35 = 6.78 (a per-rate computation would give 6.77)
    assert taxes(saved) == {VAT21: (d("32.26"), d("6.78")), VAT9: (d("10.00"), d("0.90")),
                            VAT0: (d("7.50"), d("0"))}
    assert d(saved.TxnTaxDetail.TotalTax) == d("7.68")
    assert d(saved.TotalAmt) == d("57.44") == d(saved.Balance)


def test_percent_discount_is_applied_before_tax_per_rate(qb):
    receipt = SalesReceipt()
    discount = DiscountLine()
    discount.DiscountLineDetail = DiscountLineDetail()
    discount.DiscountLineDetail.PercentBased = True
    discount.DiscountLineDetail.DiscountPercent = 10
    receipt.Line = [line(SERVICES, qty=1, price=100, code=VAT21),
                    line(SERVICES, qty=1, price=50, code=VAT9), discount]
    saved = receipt.save(qb=qb)
    assert d(saved.Line[2].Amount) == d("15.00")
    assert taxes(saved) == {VAT21: (d("90.00"), d("18.90")), VAT9: (d("45.00"), d("4.05"))}
    assert d(saved.TotalAmt) == d("157.95")


def test_not_applicable_has_no_tax(qb):
    receipt = SalesReceipt()
    receipt.GlobalTaxCalculation = "NotApplicable"
    receipt.Line = [line(SERVICES, qty=2, price=7.25)]
    saved = receipt.save(qb=qb)
    assert d(saved.TotalAmt) == d("14.50") and d(saved.TxnTaxDetail.TotalTax) == 0


def test_us_automated_sales_tax_and_override(qb_us):
    receipt = SalesReceipt()
    receipt.Line = [line(SERVICES, qty=2, price=25, code="TAX"),
                    line(SERVICES, amount=10, code="NON")]
    saved = receipt.save(qb=qb_us)
    assert d(saved.TxnTaxDetail.TotalTax) == d("4.13")  # 50.00 × 8.25 %
    assert d(saved.TotalAmt) == d("64.13")
    override = SalesReceipt()
    override.Line = [line(SERVICES, qty=2, price=25, code="TAX"),
                     line(SERVICES, amount=10, code="NON")]
    override.TxnTaxDetail = TxnTaxDetail()
    override.TxnTaxDetail.TxnTaxCodeRef = ref("2")
    override.TxnTaxDetail.TotalTax = 4.00
    saved = override.save(qb=qb_us)
    assert d(saved.TxnTaxDetail.TotalTax) == d("4.00") and d(saved.TotalAmt) == d("64.00")


def test_amount_not_qty_times_price_is_6070(qb):
    receipt = SalesReceipt()
    receipt.Line = [line(SERVICES, qty=2, price=10, amount=25, code=VAT21)]
    with pytest.raises(QuickbooksException) as error:
        receipt.save(qb=qb)
    assert error.value.error_code == 6070


def test_vat_line_without_tax_code_uses_item_default_or_fails(qb):
    item = Item()
    item.Name, item.Type = "Consulting", "Service"
    item.IncomeAccountRef = ref("2")
    item = item.save(qb=qb)
    receipt = SalesReceipt()
    receipt.Line = [line(item.Id, qty=1, price=10)]
    with pytest.raises(QuickbooksException) as error:
        receipt.save(qb=qb)
    assert error.value.error_code == 6000
    receipt.Line = [line(SERVICES, qty=1, price=10)]  # Services defaults to 21 %
    assert d(receipt.save(qb=qb).TotalAmt) == d("12.10")


def _qty(sandbox, realm_id, item_id) -> Decimal:
    items = sandbox.get(f"/_sandbox/realms/{realm_id}/entities/Item").json()["Item"]
    return d(next(i for i in items if i["Id"] == item_id)["QtyOnHand"])


def test_inventory_quantities_follow_documents(sandbox, qb):
    realm = qb.company_id
    receipt = SalesReceipt()
    receipt.Line = [line(TSHIRT, qty=3, price=20, code=VAT21)]
    receipt = receipt.save(qb=qb)
    assert _qty(sandbox, realm, TSHIRT) == 7
    memo = CreditMemo()
    memo.CustomerRef = ref("1")
    memo.Line = [line(TSHIRT, qty=1, price=20, code=VAT21)]
    memo = memo.save(qb=qb)
    assert d(memo.RemainingCredit) == d("24.20")
    assert _qty(sandbox, realm, TSHIRT) == 8
    refund = RefundReceipt()
    refund.Line = [line(TSHIRT, qty=1, price=20, code=VAT21)]
    refund.save(qb=qb)
    assert _qty(sandbox, realm, TSHIRT) == 9
    adjustment = {"AdjustAccountRef": {"value": "11"}, "Line": [{
        "DetailType": "ItemAdjustmentLineDetail",
        "ItemAdjustmentLineDetail": {"ItemRef": {"value": TSHIRT}, "QtyDiff": -2}}]}
    qb.misc_operation("inventoryadjustment", json.dumps(adjustment))
    assert _qty(sandbox, realm, TSHIRT) == 7
    adjustment["Line"][0]["ItemAdjustmentLineDetail"] = {"ItemRef": {"value": TSHIRT},
                                                         "NewQty": 20}
    qb.misc_operation("inventoryadjustment", json.dumps(adjustment))
    assert _qty(sandbox, realm, TSHIRT) == 20
    fresh = SalesReceipt.get(receipt.Id, qb=qb)
    fresh.void(qb=qb)
    assert _qty(sandbox, realm, TSHIRT) == 23


def test_payment_reduces_invoice_balance_and_delete_restores_it(qb):
    invoice = Invoice()
    invoice.CustomerRef = ref("1")
    invoice.SalesTermRef = ref("3")
    invoice.TxnDate = "2025-03-01"
    invoice.Line = [line(SERVICES, qty=1, price=100, code=VAT21)]
    invoice = invoice.save(qb=qb)
    assert d(invoice.Balance) == d("121.00") and invoice.DueDate == "2025-03-31"
    payment = Payment()
    payment.CustomerRef = ref("1")
    payment.TotalAmt = 50
    pay_line = PaymentLine()
    pay_line.Amount = 50
    link = LinkedTxn()
    link.TxnId, link.TxnType = invoice.Id, "Invoice"
    pay_line.LinkedTxn = [link]
    payment.Line = [pay_line]
    payment = payment.save(qb=qb)
    assert d(Invoice.get(invoice.Id, qb=qb).Balance) == d("71.00")
    Payment.get(payment.Id, qb=qb).delete(qb=qb)
    assert d(Invoice.get(invoice.Id, qb=qb).Balance) == d("121.00")


def test_void_keeps_doc_number_and_zeroes_amounts(qb):
    invoice = Invoice()
    invoice.CustomerRef = ref("1")
    invoice.DocNumber = "WEB-1001"
    invoice.Line = [line(SERVICES, qty=1, price=100, code=VAT21)]
    invoice = invoice.save(qb=qb)
    invoice.void(qb=qb)
    voided = Invoice.get(invoice.Id, qb=qb)
    assert voided.DocNumber == "WEB-1001" and d(voided.TotalAmt) == 0
    assert d(voided.Balance) == 0 and voided.PrivateNote == "Voided"
    assert voided.SyncToken == "1"
    receipt = SalesReceipt()
    receipt.Line = [line(SERVICES, qty=1, price=10, code=VAT21)]
    receipt = receipt.save(qb=qb)
    receipt.void(qb=qb)
    again = SalesReceipt.get(receipt.Id, qb=qb)
    assert d(again.TotalAmt) == 0 and again.PrivateNote == "Voided"
