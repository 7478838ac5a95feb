"""Tables of koppel's state database. Plain SQLAlchemy Core: the same code on SQLite
(default, under ``AIRFLOW_HOME``) and PostgreSQL (production).

Nothing here holds personal data: ids, hashes, amounts, statuses and scrubbed reasons.
Staged payloads (which may hold personal data in flight) live only for the run that
staged them and are purged when it ends."""

from __future__ import annotations

import threading

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Engine,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

activity = Table(
    "koppel_activity",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(64), nullable=False),
    Column("flow", String(32), nullable=False),
    Column("run_id", String(250), nullable=False),
    Column("task_id", String(250)),
    Column("direction", String(40), nullable=False),
    Column("source_type", String(40), nullable=False),
    Column("source_id", String(64), nullable=False),
    Column("target_type", String(40)),
    Column("target_id", String(64)),
    Column("action", String(20), nullable=False),
    Column("reason", Text),
    Column("content_hash", String(64)),
    Column("amount", Numeric(14, 2)),
    Column("api_calls", Integer, nullable=False, default=0),
    Column("details", JSON),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
Index("ix_activity_tenant_flow_time", activity.c.tenant, activity.c.flow,
      activity.c.created_at)
Index("ix_activity_source", activity.c.tenant, activity.c.source_type, activity.c.source_id)
Index("ix_activity_target", activity.c.tenant, activity.c.target_type, activity.c.target_id)
Index("ix_activity_run", activity.c.run_id)

xref = Table(
    "koppel_xref",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(64), nullable=False),
    Column("source_type", String(40), nullable=False),
    Column("source_id", String(64), nullable=False),
    Column("target_type", String(40), nullable=False),
    Column("target_id", String(64), nullable=False),
    Column("content_hash", String(64)),
    Column("state", String(20), nullable=False, default="active"),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("tenant", "source_type", "source_id", "target_type",
                     name="uq_xref_source"),
)
Index("ix_xref_target", xref.c.tenant, xref.c.target_type, xref.c.target_id)

failed_record = Table(
    "koppel_failed_record",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(64), nullable=False),
    Column("flow", String(32), nullable=False),
    Column("source_id", String(64), nullable=False),
    Column("reason", Text),
    Column("attempts", Integer, nullable=False, default=1),
    Column("first_failed_at", DateTime(timezone=True), nullable=False),
    Column("last_failed_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("tenant", "flow", "source_id", name="uq_failed_record"),
)

staged_payload = Table(
    "koppel_staged_payload",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_key", String(400), nullable=False),
    Column("step", String(40), nullable=False),
    Column("chunk", Integer, nullable=False),
    Column("payload", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("run_key", "step", "chunk", name="uq_staged_chunk"),
)

# -- the stock flow's reservations: what koppel knows of the shop's open orders ------------
# One row per open order (``reservation_order``) and one per order row that names a
# catalogue variant (``reservation_row``): ids, statuses, SKUs and quantities only, never
# a person. Filled by the stock flow from the rows it reads, refreshed for the orders
# changed since its last scan (``reservation_scan``), so a repeat run does not read the
# rows of every open order again. See koppel/store/reservations.py.
reservation_order = Table(
    "koppel_reservation_order",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(64), nullable=False),
    Column("order_id", String(64), nullable=False),
    Column("order_updated_at", DateTime(timezone=True)),
    Column("status", String(64)),
    Column("shipment_status", String(64)),
    Column("is_open", Boolean, nullable=False, default=True),
    # why the order's rows could not be read (the order is read again every run)
    Column("unreadable", Text),
    Column("read_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("tenant", "order_id", name="uq_reservation_order"),
)

reservation_row = Table(
    "koppel_reservation_row",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(64), nullable=False),
    Column("order_id", String(64), nullable=False),
    Column("row_id", String(64), nullable=False),
    Column("variant_id", String(64), nullable=False),
    Column("sku", String(200)),
    Column("quantity_ordered", Numeric(14, 4), nullable=False, default=0),
    Column("quantity_shipped", Numeric(14, 4), nullable=False, default=0),
    UniqueConstraint("tenant", "order_id", "row_id", name="uq_reservation_row"),
)
Index("ix_reservation_row_order", reservation_row.c.tenant, reservation_row.c.order_id)

reservation_scan = Table(
    "koppel_reservation_scan",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(64), nullable=False),
    # the listing of orders changed since this moment is the next run's window
    Column("scanned_at", DateTime(timezone=True), nullable=False),
    # the shop's order count and highest order id at that scan: a lower count than
    # "count then + orders new since" means orders were deleted (a full listing finds them)
    Column("order_count", Integer, nullable=False),
    Column("max_order_id", Integer, nullable=False),
    Column("full_scan_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("tenant", name="uq_reservation_scan"),
)

# -- the refunds flow's memory of the credits it read per order ---------------------------
# One row per order whose credits koppel read: the order's ``updatedAt`` then and the ids
# of its credits (ids only). An order listed again at the same ``updatedAt`` whose
# credits are all booked needs no new credits call (koppel/store/credit_checks.py).
credit_check = Table(
    "koppel_credit_check",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(64), nullable=False),
    Column("order_id", String(64), nullable=False),
    Column("order_updated_at", DateTime(timezone=True), nullable=False),
    Column("credit_ids", JSON, nullable=False),
    Column("checked_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("tenant", "order_id", name="uq_credit_check"),
)

# -- previews: what a dry run of a record would have sent ---------------------------------
# One row per tenant, flow and record: the request body the load step would have sent to
# the target API in the latest dry run that reached it (the dashboard's "Preview"). It
# holds what the document holds (names, addresses), so it is erased with the record's
# other traces (GDPR) and purged with the activity log (retention).
preview = Table(
    "koppel_preview",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant", String(64), nullable=False),
    Column("flow", String(32), nullable=False),
    Column("source_type", String(32), nullable=False),
    Column("source_id", String(64), nullable=False),
    Column("run_id", String(250), nullable=False),
    Column("target_type", String(64)),
    Column("operation", String(32)),
    Column("payload", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("tenant", "flow", "source_id", name="uq_preview"),
)

_created: set[str] = set()
_lock = threading.Lock()


def ensure_schema(engine: Engine) -> None:
    """Create koppel's tables once per process and database (idempotent). This is the
    store's migration: ``create_all`` with ``checkfirst`` adds tables a newer koppel
    defines (e.g. the reservation tables) to an existing database and leaves the others
    as they are."""
    key = str(engine.url)
    with _lock:
        if key in _created:
            return
        metadata.create_all(engine, checkfirst=True)
        _created.add(key)
