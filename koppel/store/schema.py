"""Tables of koppel's state database. Plain SQLAlchemy Core: the same code on SQLite
(default, under ``AIRFLOW_HOME``) and PostgreSQL (production).

Nothing here holds personal data: ids, hashes, amounts, statuses and scrubbed reasons.
Staged payloads (which may hold personal data in flight) live only for the run that
staged them and are purged when it ends."""

from __future__ import annotations

import threading

from sqlalchemy import (
    JSON,
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

_created: set[str] = set()
_lock = threading.Lock()


def ensure_schema(engine: Engine) -> None:
    """Create koppel's tables once per process and database (idempotent)."""
    key = str(engine.url)
    with _lock:
        if key in _created:
            return
        metadata.create_all(engine, checkfirst=True)
        _created.add(key)
