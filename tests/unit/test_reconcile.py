"""The reconciliation verdict (``koppel.domain.reconcile``) and the days a run covers
(``koppel.flows.reconcile.day_range``), on hand-made figures."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest

from koppel.domain.reconcile import BookDoc, Link, ShopSale, reconcile
from koppel.flows.reconcile import MAX_DAYS, ReconcileError, day_range

DAY = dt.date(2025, 3, 3)


def sale(source_id, total, vat, *, kind="order", day=DAY, booked=True, number=None, **kw):
    return ShopSale(kind=kind, source_id=source_id, number=number or f"ORD{source_id}",
                    day=day, currency="EUR", total_excl=D(total) - sum(map(D, vat.values()), D(0)),
                    total_incl=D(total), vat={k: D(v) for k, v in vat.items()}, booked=booked,
                    why_not_booked=None if booked else "status cancelled is not booked", **kw)


def doc(entity, doc_id, total, vat, number=None, note=""):
    return BookDoc(entity, doc_id, {
        "Id": doc_id, "DocNumber": number, "TotalAmt": float(total), "PrivateNote": note,
        "CurrencyRef": {"value": "EUR"},
        "TxnTaxDetail": {"TaxLine": [{"Amount": float(a), "TaxLineDetail": {"TaxPercent": float(r)}}
                                     for r, a in vat.items()]}})


def test_each_kind_of_difference_with_both_amounts():
    sales = [
        sale("1", "121.00", {"21": "21.00"}),                     # booked, matches
        sale("2", "109.00", {"9": "9.00"}),                       # booked, then edited
        sale("3", "60.50", {"21": "10.50"}),                      # booked, then deleted
        sale("4", "12.10", {"21": "2.10"}),                       # never booked
        sale("5", "30.00", {"21": "5.21"}, booked=False),         # cancelled, voided: fine
        sale("6", "30.00", {"21": "5.21"}, booked=False),         # cancelled, still booked
        sale("7", "50.00", {"21": "8.68"}, number="ORD7"),        # no link, found by number
        sale("8", "20.00", {"21": "3.47"}, kind="refund"),        # refund booked
        sale("9", "99.00", {"21": "17.18"}),                      # booked, voided by hand
    ]
    links = [Link("order", "1", "SalesReceipt", "101"), Link("order", "2", "SalesReceipt", "102"),
             Link("order", "3", "SalesReceipt", "103"), Link("order", "5", "SalesReceipt", "105"),
             Link("order", "6", "Invoice", "106"), Link("refund", "8", "RefundReceipt", "108"),
             Link("order", "9", "SalesReceipt", "109")]
    docs = [doc("SalesReceipt", "101", "121.00", {"21": "21.00"}),
            doc("SalesReceipt", "102", "119.90", {"9": "9.90"}),
            doc("SalesReceipt", "105", "0", {}, note="Voided"),
            doc("Invoice", "106", "30.00", {"21": "5.21"}),
            doc("SalesReceipt", "107", "50.00", {"21": "8.68"}, number="ORD7"),
            doc("RefundReceipt", "108", "20.00", {"21": "3.47"}),
            doc("SalesReceipt", "109", "0", {}, note="Voided")]
    report = reconcile(sales, links, docs, first_day=DAY, last_day=DAY)
    got = [(d.source_id, d.problem, d.shop_total, d.books_total, d.amount, d.doc_id)
           for d in report.differences]
    assert got == [
        ("2", "differs", D("109.00"), D("119.90"), D("-10.90"), "102"),
        ("3", "deleted_in_quickbooks", D("60.50"), None, D("60.50"), "103"),
        ("4", "not_booked", D("12.10"), None, D("12.10"), None),
        ("6", "should_be_void", D("0.00"), D("30.00"), D("-30.00"), "106"),
        ("9", "differs", D("99.00"), D("0.00"), D("99.00"), "109"),
    ]
    assert report.differences[0].detail == "total 119.90 (shop 109.00); VAT 9% 9.90 (shop 9.00)"
    (figures,) = report.days
    assert (figures.orders, figures.revenue_incl, figures.vat, figures.refunds,
            figures.refunds_incl, figures.differences, figures.reconciled) == (
        6, D("451.60"), {"21": D("59.46"), "9": D("9.00")}, 1, D("20.00"), 5, False)
    assert figures.books_sales == D("121.00") + D("119.90") + D("30.00") + D("50.00")
    assert figures.books_refunds == D("20.00")


def test_quiet_days_reconcile_and_sales_outside_the_range_are_left_out():
    later = DAY + dt.timedelta(days=5)
    report = reconcile([sale("1", "10.00", {}, day=later)], [], [],
                       first_day=DAY, last_day=DAY + dt.timedelta(days=2))
    assert [d.day for d in report.days] == [DAY, DAY + dt.timedelta(days=1), DAY + dt.timedelta(days=2)]
    assert report.reconciled and all(d.orders == 0 for d in report.days)


def test_two_documents_with_one_number_are_not_guessed_between():
    docs = [doc("SalesReceipt", "1", "10.00", {}, number="ORD1"),
            doc("Invoice", "2", "10.00", {}, number="ORD1")]
    report = reconcile([sale("1", "10.00", {})], [], docs, first_day=DAY, last_day=DAY)
    assert [d.problem for d in report.differences] == ["not_booked"]


AMS = dt.timezone(dt.timedelta(hours=1))


@pytest.mark.parametrize("params, start, end, expected", [
    ({"first_day": "2025-01-01", "last_day": "2025-01-31"}, None, None,
     (dt.date(2025, 1, 1), dt.date(2025, 1, 31))),
    ({"first_day": "2025-01-05"}, None, None, (dt.date(2025, 1, 5), dt.date(2025, 1, 5))),
    # the daily 06:00 run: its interval began at 06:00 the day before
    ({}, dt.datetime(2025, 1, 4, 6, tzinfo=AMS), dt.datetime(2025, 1, 5, 6, tzinfo=AMS),
     (dt.date(2025, 1, 4), dt.date(2025, 1, 4))),
    ({}, dt.datetime(2025, 1, 4, tzinfo=AMS), dt.datetime(2025, 1, 5, tzinfo=AMS),
     (dt.date(2025, 1, 4), dt.date(2025, 1, 4))),
    ({}, None, None, (dt.date(2025, 2, 9), dt.date(2025, 2, 9))),  # manual: yesterday
])
def test_day_range(params, start, end, expected):
    assert day_range(params, start, end, "Europe/Amsterdam", today=dt.date(2025, 2, 10)) == expected


@pytest.mark.parametrize("params, message", [
    ({"first_day": "2025-02-01", "last_day": "2025-01-01"}, "is before first_day"),
    ({"first_day": "2025-01-01", "last_day": "2025-12-31"}, f"at most {MAX_DAYS} days"),
    ({"first_day": "yesterday"}, "must be dates"),
])
def test_day_range_refuses(params, message):
    with pytest.raises(ReconcileError, match=message):
        day_range(params, None, None, "Europe/Amsterdam")
