"""The stock flow's memory of the shop's open orders (tables in ``schema.py``).

Lightspeed has no reserved-stock field and no status filter on ``orders.json``: the
reservations are the outstanding quantities of the rows of every open order, and an
order's rows cost one call each. :class:`ReservationBook` keeps, per tenant, what the
stock flow read — per open order its ``updatedAt``, status and shipment status, and per
row the variant id, SKU and quantities ordered and shipped (no personal data) — so a
repeat run reads the rows of the orders changed since its last scan only.

Everything is per tenant; one stock run of a tenant at a time writes it (the flow never
overlaps itself). Each write (an order, or a batch of orders) is one transaction, so a
task killed halfway leaves every order either as it was or as read, and the scan mark
(:meth:`save_scan`) moves only when a whole scan finished.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Iterable, Mapping

from sqlalchemy import Engine, delete, insert, select, update

from koppel.store.schema import (
    ensure_schema,
    reservation_order,
    reservation_row,
    reservation_scan,
)


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands timezone-aware columns back naive: they are UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass(frozen=True)
class KnownOrder:
    """An open order as the stock flow last read it."""

    order_id: str
    updated_at: dt.datetime | None
    status: str | None
    shipment_status: str | None
    is_open: bool
    #: why its rows could not be read (``None`` when they were)
    unreadable: str | None


@dataclass(frozen=True)
class ScanMark:
    """Where the last finished scan of a tenant's orders ended."""

    scanned_at: dt.datetime
    order_count: int
    max_order_id: int
    full_scan_at: dt.datetime


@dataclass(frozen=True)
class ReservedRow:
    """One row of an open order that names a catalogue variant."""

    row_id: str
    variant_id: str
    sku: str | None
    quantity_ordered: float
    quantity_shipped: float


class ReservationBook:
    """One tenant's reservations in koppel's state database."""

    def __init__(self, engine: Engine, tenant: str) -> None:
        self.engine = engine
        self.tenant = tenant
        ensure_schema(engine)

    # -- the scan mark ------------------------------------------------------------------
    def scan_mark(self) -> ScanMark | None:
        """The last finished scan, or ``None`` before the first (or after :meth:`reset`)."""
        stmt = select(reservation_scan).where(reservation_scan.c.tenant == self.tenant)
        with self.engine.connect() as conn:
            row = conn.execute(stmt).first()
        if row is None:
            return None
        return ScanMark(_utc(row.scanned_at), int(row.order_count), int(row.max_order_id),
                        _utc(row.full_scan_at))

    def save_scan(self, *, scanned_at: dt.datetime, order_count: int, max_order_id: int,
                  full: bool) -> None:
        """Mark a finished scan (``full``: every order was listed)."""
        scanned_at = _utc(scanned_at)
        values = {"scanned_at": scanned_at, "order_count": int(order_count),
                  "max_order_id": int(max_order_id)}
        with self.engine.begin() as conn:
            if full:
                values["full_scan_at"] = scanned_at
            done = conn.execute(update(reservation_scan)
                                .where(reservation_scan.c.tenant == self.tenant)
                                .values(**values)).rowcount
            if not done:
                conn.execute(insert(reservation_scan).values(
                    **{"tenant": self.tenant, "full_scan_at": scanned_at, **values}))

    # -- orders -------------------------------------------------------------------------
    def orders(self) -> dict[str, KnownOrder]:
        """Every order the book holds, by order id."""
        stmt = select(reservation_order).where(reservation_order.c.tenant == self.tenant)
        with self.engine.connect() as conn:
            return {r.order_id: KnownOrder(r.order_id, _utc(r.order_updated_at), r.status,
                                           r.shipment_status, bool(r.is_open), r.unreadable)
                    for r in conn.execute(stmt)}

    def put_order(self, order_id: Any, *, updated_at: dt.datetime | None, status: str | None,
                  shipment_status: str | None, rows: Iterable[Mapping[str, Any]],
                  is_open: bool = True) -> None:
        """An order read: its header and its rows replace what the book held (one
        transaction). ``rows``: ``row_id``, ``variant_id``, ``sku``, ``quantity_ordered``,
        ``quantity_shipped``."""
        self.put_orders([{"order_id": order_id, "updated_at": updated_at, "status": status,
                          "shipment_status": shipment_status, "rows": list(rows),
                          "is_open": is_open}])

    def put_unreadable(self, order_id: Any, *, updated_at: dt.datetime | None,
                       status: str | None, shipment_status: str | None, reason: str) -> None:
        """An open order whose rows could not be read: it reserves nothing and is read
        again by the next run (its earlier rows, if any, are dropped)."""
        self.put_orders([{"order_id": order_id, "updated_at": updated_at, "status": status,
                          "shipment_status": shipment_status, "unreadable": reason}])

    def put_orders(self, entries: Iterable[Mapping[str, Any]]) -> None:
        """Several orders at once, in one transaction (a first scan writes thousands):
        each entry as :meth:`put_order`'s arguments, or with ``unreadable`` (the reason)
        instead of ``rows``."""
        now = _now()
        headers: dict[str, dict[str, Any]] = {}
        rows: dict[str, list[dict[str, Any]]] = {}
        for entry in entries:
            order_id = str(entry["order_id"])
            reason = entry.get("unreadable")
            headers[order_id] = {
                "tenant": self.tenant, "order_id": order_id,
                "order_updated_at": _utc(entry.get("updated_at")),
                "status": entry.get("status"), "shipment_status": entry.get("shipment_status"),
                "is_open": True if reason else bool(entry.get("is_open", True)),
                "unreadable": str(reason)[:2000] if reason else None, "read_at": now}
            rows[order_id] = [] if reason else [
                {"tenant": self.tenant, "order_id": order_id, "row_id": str(r["row_id"]),
                 "variant_id": str(r["variant_id"]),
                 "sku": (str(r["sku"])[:200] if r.get("sku") not in (None, "") else None),
                 "quantity_ordered": Decimal(str(r.get("quantity_ordered") or 0)),
                 "quantity_shipped": Decimal(str(r.get("quantity_shipped") or 0))}
                for r in entry.get("rows") or []]
        if not headers:
            return
        ids = sorted(headers)
        with self.engine.begin() as conn:
            for start in range(0, len(ids), 500):
                self._delete(conn, ids[start:start + 500])
            conn.execute(insert(reservation_order), [headers[i] for i in ids])
            values = [row for i in ids for row in rows[i]]
            if values:
                conn.execute(insert(reservation_row), values)

    def forget(self, order_ids: Iterable[Any]) -> int:
        """Drop orders (closed, or gone from the shop) and their rows; returns how many
        orders the book held of them."""
        ids = sorted({str(i) for i in order_ids})
        dropped = 0
        with self.engine.begin() as conn:
            for start in range(0, len(ids), 500):
                dropped += self._delete(conn, ids[start:start + 500])
        return dropped

    def reset(self) -> None:
        """Forget everything of the tenant (a full resync starts from nothing)."""
        with self.engine.begin() as conn:
            for table in (reservation_row, reservation_order, reservation_scan):
                conn.execute(delete(table).where(table.c.tenant == self.tenant))

    def _delete(self, conn, ids: list[str]) -> int:
        conn.execute(delete(reservation_row).where(reservation_row.c.tenant == self.tenant,
                                                   reservation_row.c.order_id.in_(ids)))
        return conn.execute(delete(reservation_order).where(
            reservation_order.c.tenant == self.tenant,
            reservation_order.c.order_id.in_(ids))).rowcount

    # -- rows ---------------------------------------------------------------------------
    def rows(self) -> list[dict[str, Any]]:
        """The rows of the open orders, one dict per row with the order's status and
        shipment status (the columns of :data:`koppel.domain.stock.ORDER_ROW_COLUMNS`,
        plus ``sku``)."""
        o, r = reservation_order, reservation_row
        stmt = (select(r.c.order_id, o.c.status, o.c.shipment_status, r.c.variant_id, r.c.sku,
                       r.c.quantity_ordered, r.c.quantity_shipped)
                .join(o, (o.c.tenant == r.c.tenant) & (o.c.order_id == r.c.order_id))
                .where(r.c.tenant == self.tenant, o.c.is_open.is_(True))
                .order_by(r.c.order_id, r.c.row_id))
        with self.engine.connect() as conn:
            return [{"order_id": row.order_id, "status": row.status,
                     "shipment_status": row.shipment_status, "variant_id": row.variant_id,
                     "sku": row.sku, "quantity_ordered": float(row.quantity_ordered or 0),
                     "quantity_shipped": float(row.quantity_shipped or 0)}
                    for row in conn.execute(stmt)]

    def rows_of(self, order_id: Any) -> list[ReservedRow]:
        stmt = (select(reservation_row).where(reservation_row.c.tenant == self.tenant,
                                              reservation_row.c.order_id == str(order_id))
                .order_by(reservation_row.c.row_id))
        with self.engine.connect() as conn:
            return [ReservedRow(r.row_id, r.variant_id, r.sku, float(r.quantity_ordered or 0),
                                float(r.quantity_shipped or 0)) for r in conn.execute(stmt)]
