"""The stock flow's reservations table (koppel.store.reservations) on SQLite and
PostgreSQL, and the flow's refresh of it against a scripted shop (no Airflow)."""

from __future__ import annotations

import datetime as dt
import uuid
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from koppel.store.reservations import ReservationBook

UTC = dt.timezone.utc


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    if request.param == "sqlite":
        eng = sa.create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    else:
        from tests.unit.test_state_store import _postgres_url

        eng = sa.create_engine(_postgres_url())
    yield eng
    eng.dispose()


def _tenant() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


def test_orders_rows_and_scan_mark_round_trip(engine):
    book = ReservationBook(engine, _tenant())
    other = ReservationBook(engine, _tenant())
    assert book.scan_mark() is None and book.orders() == {} and book.rows() == []
    stamp = dt.datetime(2026, 5, 1, 12, 0, 5, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    book.put_order(101, updated_at=stamp, status="processing", shipment_status="not_shipped",
                   rows=[{"row_id": 7, "variant_id": 55, "sku": "A-1", "quantity_ordered": 3,
                          "quantity_shipped": 1},
                         {"row_id": 8, "variant_id": 56, "sku": "", "quantity_ordered": 2,
                          "quantity_shipped": 0}])
    other.put_order(101, updated_at=stamp, status="new", shipment_status=None,
                    rows=[{"row_id": 1, "variant_id": 99, "quantity_ordered": 9}])
    held = book.orders()["101"]
    assert held.updated_at == stamp.astimezone(UTC)  # stored and read back as UTC
    assert (held.status, held.shipment_status, held.is_open, held.unreadable) == (
        "processing", "not_shipped", True, None)
    assert book.rows() == [
        {"order_id": "101", "status": "processing", "shipment_status": "not_shipped",
         "variant_id": "55", "sku": "A-1", "quantity_ordered": 3.0, "quantity_shipped": 1.0},
        {"order_id": "101", "status": "processing", "shipment_status": "not_shipped",
         "variant_id": "56", "sku": None, "quantity_ordered": 2.0, "quantity_shipped": 0.0}]
    assert [r["variant_id"] for r in other.rows()] == ["99"]  # tenants apart

    # read again: the rows are replaced, not added to
    book.put_order(101, updated_at=stamp, status="processing", shipment_status="partially_shipped",
                   rows=[{"row_id": 7, "variant_id": 55, "sku": "A-1", "quantity_ordered": 3,
                          "quantity_shipped": 3}])
    assert [(r["variant_id"], r["quantity_shipped"]) for r in book.rows()] == [("55", 3.0)]
    assert [r.row_id for r in book.rows_of(101)] == ["7"]

    book.put_unreadable(101, updated_at=stamp, status="processing", shipment_status=None,
                        reason="order 101 was deleted in Lightspeed")
    assert book.rows() == [] and book.orders()["101"].unreadable.startswith("order 101")

    scanned = dt.datetime(2026, 5, 2, 8, 0, tzinfo=UTC)
    book.save_scan(scanned_at=scanned, order_count=40, max_order_id=190, full=True)
    later = scanned + dt.timedelta(hours=1)
    book.save_scan(scanned_at=later, order_count=41, max_order_id=192, full=False)
    mark = book.scan_mark()
    assert (mark.scanned_at, mark.order_count, mark.max_order_id, mark.full_scan_at) == (
        later, 41, 192, scanned)

    assert book.forget(["101", "999"]) == 1
    assert book.orders() == {}
    book.reset()
    assert book.scan_mark() is None
    assert [r["variant_id"] for r in other.rows()] == ["99"]


# ---------------------------------------------------------------- the flow's refresh


class Shop:
    """A scripted Lightspeed: orders (id → header), rows per order, calls counted."""

    def __init__(self) -> None:
        self.orders: dict[int, dict] = {}
        self.rows: dict[int, list[dict]] = {}
        self.gone_rows: set[int] = set()
        self.calls: list[str] = []

    def add(self, oid, status, updated, lines, shipment="not_shipped"):
        self.orders[oid] = {"id": oid, "status": status, "shipmentStatus": shipment,
                            "updatedAt": updated.isoformat()}
        self.rows[oid] = [{"id": oid * 10 + i, "variant": {"resource": {"id": vid}},
                           "quantityOrdered": q, "quantityShipped": s, "sku": f"S{vid}"}
                          for i, (vid, q, s) in enumerate(lines)]

    # the LightspeedHook surface the stock flow uses
    def iter_orders(self, window=None, **filters):
        from koppel.hooks.lightspeed_models import Order

        self.calls.append("orders" if window is None else "window")
        for oid in sorted(self.orders):
            record = self.orders[oid]
            if window is None or window.contains(record):
                yield Order.from_api(record)

    def count(self, resource, **filters):
        self.calls.append("count")
        return len(self.orders)

    def get_order_rows(self, oid):
        from koppel.hooks.errors import LightspeedNotFound
        from koppel.hooks.lightspeed_models import OrderRow

        self.calls.append(f"rows {oid}")
        if oid in self.gone_rows or oid not in self.orders:
            raise LightspeedNotFound("Not found.", method="GET", status=404,
                                     path=f"orders/{oid}/products.json")
        return [OrderRow.from_api(r) for r in self.rows[oid]]


def _process(engine, tenant, shop, **params):
    from koppel.flows.stock import StockProcess

    run = SimpleNamespace(lightspeed=shop, tenant_id=tenant, params=params,
                          store=SimpleNamespace(engine=engine))
    return StockProcess(run)


def _fresh_reservations(shop) -> dict[str, float]:
    """What a read of every open order gives (the flow before the table)."""
    import pandas as pd

    from koppel.domain.stock import ORDER_ROW_COLUMNS, reservations
    from koppel.flows.stock import OPEN_ORDER_STATUSES

    rows = []
    for oid, order in shop.orders.items():
        if order["status"] not in OPEN_ORDER_STATUSES or oid in shop.gone_rows \
                or order["shipmentStatus"] in ("shipped", "cancelled"):
            continue
        for row in shop.rows[oid]:
            rows.append({"order_id": oid, "status": order["status"],
                         "shipment_status": order["shipmentStatus"],
                         "variant_id": str(row["variant"]["resource"]["id"]),
                         "quantity_ordered": row["quantityOrdered"],
                         "quantity_shipped": row["quantityShipped"]})
    frame = pd.DataFrame(rows, columns=list(ORDER_ROW_COLUMNS))
    return {str(k): float(v) for k, v in reservations(frame).items()}


def test_the_refresh_reads_changed_orders_only_and_matches_a_full_read(engine):
    tenant, shop = _tenant(), Shop()
    old = dt.datetime.now(UTC) - dt.timedelta(days=30)
    shop.add(11, "processing_awaiting_payment", old, [(1, 2, 0)])
    shop.add(13, "processing_partially_shipped", old, [(1, 3, 3), (2, 4, 1)],
             shipment="partially_shipped")
    shop.add(15, "completed_shipped", old, [(2, 5, 5)], shipment="shipped")
    shop.add(17, "new", old, [(3, 1, 0)])

    first = _process(engine, tenant, shop)
    reserved, unreadable = first._reservations()
    assert reserved == _fresh_reservations(shop) == {"1": 2.0, "2": 3.0, "3": 1.0}
    assert unreadable == {}
    assert shop.calls == ["orders", "rows 11", "rows 13", "rows 17"]

    # nothing changed: a count and a window, no rows
    shop.calls.clear()
    assert _process(engine, tenant, shop)._reservations() == (reserved, {})
    assert shop.calls == ["count", "window"]

    # 11 is cancelled, 17 gets a row more, 19 is new, 13's rows vanish (404)
    now = dt.datetime.now(UTC)
    shop.add(11, "cancelled", now, [(1, 2, 0)], shipment="cancelled")
    shop.add(17, "new", now, [(3, 1, 0), (4, 6, 2)])
    shop.add(19, "on_hold", now, [(4, 1, 0)])
    shop.add(13, "processing_partially_shipped", now, [(1, 3, 3), (2, 4, 1)],
             shipment="partially_shipped")
    shop.gone_rows.add(13)
    shop.calls.clear()
    reserved, unreadable = _process(engine, tenant, shop)._reservations()
    assert reserved == _fresh_reservations(shop) == {"3": 1.0, "4": 5.0}
    assert set(unreadable) == {13} and "was deleted in Lightspeed" in unreadable[13]
    assert shop.calls == ["count", "window", "rows 13", "rows 17", "rows 19"]

    # 13 is read again every run until it can be; the overlap re-lists the changed
    # orders, whose rows are not read again at the same updatedAt
    shop.gone_rows.clear()
    shop.calls.clear()
    reserved, unreadable = _process(engine, tenant, shop)._reservations()
    assert reserved == _fresh_reservations(shop) and unreadable == {}
    assert shop.calls == ["count", "window", "rows 13"]

    # a deleted order (17): the count is short, every order is listed once
    del shop.orders[17]
    shop.calls.clear()
    reserved, _ = _process(engine, tenant, shop)._reservations()
    assert reserved == _fresh_reservations(shop) == {"1": 0.0, "2": 3.0, "4": 1.0}
    assert shop.calls == ["count", "window", "orders"]
    shop.calls.clear()
    _process(engine, tenant, shop)._reservations()
    assert shop.calls == ["count", "window"]

    # a full resync reads every open order again
    shop.calls.clear()
    reserved, _ = _process(engine, tenant, shop, full_resync=True)._reservations()
    assert reserved == _fresh_reservations(shop)
    assert shop.calls == ["orders", "rows 13", "rows 19"]
