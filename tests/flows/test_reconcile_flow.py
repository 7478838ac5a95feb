"""Reconciliation end to end: the orders and refunds flows book the seeded shop, someone
edits one booked document by hand in QuickBooks and deletes another, and
``reconcile__<tenant>`` — through Airflow, against both sandboxes — names exactly those
two, with the shop's and the books' amounts, and reconciles every other day to the cent.

The expected figures are computed here from the shop's own API answers (orders, credits),
not through koppel's code."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

pytestmark = pytest.mark.e2e

TZ = ZoneInfo("Europe/Amsterdam")
FIRST, LAST = dt.date(2025, 1, 1), dt.date(2025, 3, 31)  # a quarter of the seeded year


def _day(stamp: str) -> dt.date:
    return dt.datetime.fromisoformat(stamp).astimezone(TZ).date()


def _cents(value) -> Decimal:
    return Decimal(str(value or 0)).quantize(Decimal("0.01"))


def _credits(shop, order_ids):
    out = []
    with shop.api() as api:
        for order_id in order_ids:
            body = api.get(f"orders/{order_id}/credit.json").json()
            credits = body.get("credits") if isinstance(body, dict) else None
            out.extend(credits or [])
    return out


def _run_reconcile(handle, **params):
    return handle.run("reconcile", **params)


def test_reconciliation_names_exactly_the_hand_edited_and_deleted_documents(shop, make_tenant):
    handle = make_tenant(shop, flows={"refunds": {"enabled": True}})
    assert handle.run("orders", full_resync=True).state == "success"
    assert handle.run("refunds", full_resync=True).state == "success"

    orders = [o for o in shop.orders() if FIRST <= _day(o["createdAt"]) <= LAST]
    booked = [o for o in orders if o["paymentStatus"] == "paid" and o["status"] != "cancelled"]
    assert len(booked) >= 3, "the seed must book several orders in the quarter"
    receipts = {d["DocNumber"]: d for d in handle.entities("SalesReceipt")}

    def item_lines(doc):
        return [ln for ln in doc["Line"] if ln.get("DetailType") == "SalesItemLineDetail"]

    edited_order = next(o for o in booked if len(item_lines(receipts[o["number"]])) >= 2)
    deleted_order = next(o for o in booked if o is not edited_order)

    # by hand in QuickBooks: someone removes a line from one receipt (QuickBooks recomputes
    # its total and tax) and deletes another receipt
    hook = handle.qbo_hook()
    edited = hook.read("SalesReceipt", receipts[edited_order["number"]]["Id"])
    removed = item_lines(edited)[-1]
    edited["Line"] = [ln for ln in edited["Line"] if ln is not removed]
    edited.pop("TxnTaxDetail", None)
    edited = hook.update("SalesReceipt", edited)
    assert _cents(edited["TotalAmt"]) < _cents(edited_order["priceIncl"])
    gone = receipts[deleted_order["number"]]
    hook.delete("SalesReceipt", gone["Id"], gone["SyncToken"])

    run = _run_reconcile(handle, first_day=FIRST.isoformat(), last_day=LAST.isoformat())
    assert run.state == "failed"  # a day that does not reconcile fails the run (and alerts)

    rows = {r["source_id"]: r for r in handle.activity("reconcile")}
    assert len(rows) == (LAST - FIRST).days + 1
    differences = [d for r in rows.values() for d in r["details"]["differences"]]
    assert sorted((d["number"], d["problem"], d["shop_total"], d["books_total"])
                  for d in differences) == sorted([
        (edited_order["number"], "differs", str(_cents(edited_order["priceIncl"])),
         str(_cents(edited["TotalAmt"]))),
        (deleted_order["number"], "deleted_in_quickbooks", str(_cents(deleted_order["priceIncl"])),
         ""),
    ])
    bad_days = {_day(edited_order["createdAt"]).isoformat(), _day(deleted_order["createdAt"]).isoformat()}
    assert {day for day, r in rows.items() if r["action"] == "conflict"} == bad_days
    assert all(r["action"] == "reconciled" for day, r in rows.items() if day not in bad_days)

    # the shop's figures per day, to the cent: revenue, VAT per rate, shipping, fees, refunds
    expected: dict[str, dict] = defaultdict(lambda: {
        "orders": 0, "revenue_incl": Decimal("0.00"), "revenue_excl": Decimal("0.00"),
        "vat": defaultdict(lambda: Decimal("0.00")), "shipping_incl": Decimal("0.00"),
        "fees_incl": Decimal("0.00"), "refunds": 0, "refunds_incl": Decimal("0.00")})
    for order in booked:
        day = expected[_day(order["createdAt"]).isoformat()]
        day["orders"] += 1
        day["revenue_incl"] += _cents(order["priceIncl"])
        day["revenue_excl"] += _cents(order["priceExcl"])
        day["shipping_incl"] += _cents(order.get("shipmentPriceIncl"))
        day["fees_incl"] += _cents(order.get("paymentPriceIncl"))
        for tax in order.get("taxRates") or []:
            day["vat"][str((Decimal(str(tax["rate"])) * 100).normalize())] += _cents(tax["amount"])
    credits = [c for c in _credits(shop, [o["id"] for o in shop.orders()])
               if FIRST <= _day(c["createdAt"]) <= LAST]
    assert credits, "the seed must refund something in the quarter"
    for credit in credits:
        day = expected[_day(credit["createdAt"]).isoformat()]
        day["refunds"] += 1
        day["refunds_incl"] += _cents(credit["priceIncl"])
    for day, want in expected.items():
        got = rows[day]["details"]["figures"]
        assert (got["orders"], got["revenue_incl"], got["revenue_excl"], got["shipping_incl"],
                got["fees_incl"], got["refunds"], got["refunds_incl"]) == (
            want["orders"], str(want["revenue_incl"]), str(want["revenue_excl"]),
            str(want["shipping_incl"]), str(want["fees_incl"]), want["refunds"],
            str(want["refunds_incl"])), day
        assert got["vat"] == {k: str(v) for k, v in sorted(want["vat"].items())}, day
        assert got["books_refunds"] == got["refunds_incl"], day  # every refund booked as made
    quiet = [r for day, r in rows.items() if day not in expected]
    assert all(r["details"]["figures"]["orders"] == 0 for r in quiet)

    # a day with sales and nothing touched reconciles: the run succeeds
    good = sorted(set(expected) - bad_days)
    assert good, "the quarter must hold a day with sales that nobody edited"
    assert _run_reconcile(handle, first_day=good[0], last_day=good[0]).state == "success"
