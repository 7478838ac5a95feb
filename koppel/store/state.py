"""The flows' memory between runs: activity log, cross-references, failed records and
staged payloads, all in koppel's state database (see ``engine.py``).

One :class:`StateStore` per task; it is cheap (engines are pooled per process)."""

from __future__ import annotations

import datetime as dt
import hashlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Iterable, Iterator, Sequence

from sqlalchemy import Engine, and_, delete, func, insert, select, text, update
from sqlalchemy.dialects import postgresql, sqlite

from koppel.store.engine import get_engine
from koppel.store.schema import activity, ensure_schema, failed_record, staged_payload, xref

ACTIONS = ("created", "updated", "skipped", "voided", "failed", "conflict", "refunded",
           "deleted", "erased")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass
class ActivityEntry:
    """One record's fate in one run. Ids, hashes, amounts and statuses only."""

    source_type: str
    source_id: str
    action: str
    target_type: str | None = None
    target_id: str | None = None
    reason: str | None = None
    content_hash: str | None = None
    amount: Decimal | None = None
    api_calls: int = 0
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown activity action {self.action!r}")
        self.source_id = str(self.source_id)
        if self.target_id is not None:
            self.target_id = str(self.target_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source_type": self.source_type, "source_id": self.source_id,
            "action": self.action, "target_type": self.target_type,
            "target_id": self.target_id, "reason": self.reason,
            "content_hash": self.content_hash,
            "amount": None if self.amount is None else str(self.amount),
            "api_calls": self.api_calls, "details": self.details,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ActivityEntry":
        data = dict(data)
        if data.get("amount") is not None:
            data["amount"] = Decimal(str(data["amount"]))
        return cls(**data)


@dataclass(frozen=True)
class XRef:
    source_id: str
    target_type: str
    target_id: str
    content_hash: str | None
    state: str


def _upsert(engine: Engine, table, values: dict, keys: Sequence[str], update_cols: Sequence[str]):
    dialect = engine.dialect.name
    if dialect == "postgresql":
        stmt = postgresql.insert(table).values(**values)
    elif dialect == "sqlite":
        stmt = sqlite.insert(table).values(**values)
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        raise RuntimeError(f"unsupported state database dialect {dialect}")
    return stmt.on_conflict_do_update(
        index_elements=list(keys),
        set_={col: stmt.excluded[col] for col in update_cols},
    )


class StateStore:
    def __init__(self, engine: Engine | None = None) -> None:
        self.engine = engine or get_engine()
        ensure_schema(self.engine)

    # -- activity log ---------------------------------------------------------------------
    def record_activity(self, *, tenant: str, flow: str, run_id: str, direction: str,
                        entries: Iterable[ActivityEntry], task_id: str | None = None) -> int:
        now = utcnow()
        rows = [{
            "tenant": tenant, "flow": flow, "run_id": run_id, "task_id": task_id,
            "direction": direction, "source_type": e.source_type, "source_id": e.source_id,
            "target_type": e.target_type, "target_id": e.target_id, "action": e.action,
            "reason": e.reason, "content_hash": e.content_hash, "amount": e.amount,
            "api_calls": e.api_calls, "details": e.details or None, "created_at": now,
        } for e in entries]
        if rows:
            with self.engine.begin() as conn:
                conn.execute(insert(activity), rows)
        return len(rows)

    def activity(self, *, tenant: str | None = None, flow: str | None = None,
                 run_id: str | None = None, source_id: str | None = None,
                 target_id: str | None = None, action: str | None = None,
                 limit: int = 1000) -> list[dict[str, Any]]:
        conds = []
        for col, value in ((activity.c.tenant, tenant), (activity.c.flow, flow),
                           (activity.c.run_id, run_id), (activity.c.source_id, source_id),
                           (activity.c.target_id, target_id), (activity.c.action, action)):
            if value is not None:
                conds.append(col == value)
        stmt = select(activity).where(and_(*conds)).order_by(activity.c.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(stmt)]

    def action_counts(self, *, tenant: str, flow: str, run_id: str | None = None) -> dict[str, int]:
        stmt = (select(activity.c.action, func.count()).where(
            activity.c.tenant == tenant, activity.c.flow == flow)
            .group_by(activity.c.action))
        if run_id is not None:
            stmt = stmt.where(activity.c.run_id == run_id)
        with self.engine.connect() as conn:
            return {a: n for a, n in conn.execute(stmt)}

    # -- cross-references -----------------------------------------------------------------
    def xrefs(self, tenant: str, source_type: str, source_ids: Iterable[str],
              target_type: str | None = None) -> dict[str, XRef]:
        ids = sorted({str(i) for i in source_ids})
        found: dict[str, XRef] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            stmt = select(xref).where(xref.c.tenant == tenant, xref.c.source_type == source_type,
                                      xref.c.source_id.in_(chunk))
            if target_type is not None:
                stmt = stmt.where(xref.c.target_type == target_type)
            with self.engine.connect() as conn:
                for r in conn.execute(stmt):
                    found[r.source_id] = XRef(r.source_id, r.target_type, r.target_id,
                                              r.content_hash, r.state)
        return found

    def xrefs_by_target(self, tenant: str, target_type: str,
                        target_ids: Iterable[str]) -> dict[str, tuple[str, str]]:
        """target id → (source type, source id): how the reverse direction avoids loops."""
        ids = sorted({str(i) for i in target_ids})
        found: dict[str, tuple[str, str]] = {}
        for start in range(0, len(ids), 500):
            stmt = select(xref).where(xref.c.tenant == tenant, xref.c.target_type == target_type,
                                      xref.c.target_id.in_(ids[start:start + 500]))
            with self.engine.connect() as conn:
                for r in conn.execute(stmt):
                    found[r.target_id] = (r.source_type, r.source_id)
        return found

    def save_xref(self, tenant: str, source_type: str, source_id: str, target_type: str,
                  target_id: str, content_hash: str | None = None, state: str = "active") -> None:
        values = {"tenant": tenant, "source_type": source_type, "source_id": str(source_id),
                  "target_type": target_type, "target_id": str(target_id),
                  "content_hash": content_hash, "state": state, "updated_at": utcnow()}
        stmt = _upsert(self.engine, xref, values,
                       ("tenant", "source_type", "source_id", "target_type"),
                       ("target_id", "content_hash", "state", "updated_at"))
        with self.engine.begin() as conn:
            conn.execute(stmt)

    # -- failed records (retried on the next run) -----------------------------------------
    def mark_failed(self, tenant: str, flow: str, source_id: str, reason: str) -> None:
        now = utcnow()
        with self.engine.begin() as conn:
            updated = conn.execute(
                update(failed_record)
                .where(failed_record.c.tenant == tenant, failed_record.c.flow == flow,
                       failed_record.c.source_id == str(source_id))
                .values(reason=reason, attempts=failed_record.c.attempts + 1,
                        last_failed_at=now)).rowcount
            if not updated:
                conn.execute(insert(failed_record).values(
                    tenant=tenant, flow=flow, source_id=str(source_id), reason=reason,
                    attempts=1, first_failed_at=now, last_failed_at=now))

    def mark_resolved(self, tenant: str, flow: str, source_ids: Iterable[str]) -> None:
        ids = [str(i) for i in source_ids]
        if not ids:
            return
        with self.engine.begin() as conn:
            for start in range(0, len(ids), 500):
                conn.execute(delete(failed_record).where(
                    failed_record.c.tenant == tenant, failed_record.c.flow == flow,
                    failed_record.c.source_id.in_(ids[start:start + 500])))

    def failed(self, tenant: str, flow: str) -> list[dict[str, Any]]:
        stmt = (select(failed_record).where(failed_record.c.tenant == tenant,
                                            failed_record.c.flow == flow)
                .order_by(failed_record.c.source_id))
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(stmt)]

    # -- staged payloads (data in flight between the tasks of one run) --------------------
    def stage(self, run_key: str, step: str, chunk: int, payload: Any) -> dict[str, Any]:
        values = {"run_key": run_key, "step": step, "chunk": chunk, "payload": payload,
                  "created_at": utcnow()}
        stmt = _upsert(self.engine, staged_payload, values, ("run_key", "step", "chunk"),
                       ("payload", "created_at"))
        with self.engine.begin() as conn:
            conn.execute(stmt)
        return {"run_key": run_key, "step": step, "chunk": chunk}

    def staged(self, ref: dict[str, Any]) -> Any:
        stmt = select(staged_payload.c.payload).where(
            staged_payload.c.run_key == ref["run_key"], staged_payload.c.step == ref["step"],
            staged_payload.c.chunk == ref["chunk"])
        with self.engine.connect() as conn:
            row = conn.execute(stmt).first()
        if row is None:
            raise LookupError(f"no staged payload for {ref}")
        return row[0]

    def staged_chunks(self, run_key: str, step: str) -> Iterator[Any]:
        stmt = (select(staged_payload.c.payload)
                .where(staged_payload.c.run_key == run_key, staged_payload.c.step == step)
                .order_by(staged_payload.c.chunk))
        with self.engine.connect() as conn:
            for (payload,) in conn.execute(stmt):
                yield payload

    def purge_run(self, run_key: str) -> int:
        with self.engine.begin() as conn:
            return conn.execute(delete(staged_payload).where(
                staged_payload.c.run_key == run_key)).rowcount

    # -- cross-process locks ----------------------------------------------------------------
    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """Hold a lock across processes and workers (e.g. one tenant's customer upsert, so
        two tasks never create the same new customer twice). PostgreSQL: a transaction
        advisory lock; SQLite (one machine): an ``flock`` on a file beside the database,
        so the database itself stays writable for the lock holder and everyone else."""
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        if self.engine.dialect.name == "postgresql":
            with self.engine.begin() as conn:
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
                yield
        else:
            import fcntl
            from pathlib import Path

            db_path = Path(self.engine.url.database or "koppel_state.db").resolve()
            lock_path = db_path.with_name(f"{db_path.name}.{key & 0xFFFFFFFF:08x}.lock")
            with open(lock_path, "a+") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)

    # -- retention and erasure ------------------------------------------------------------
    def purge_older_than(self, tenant: str, cutoff: dt.datetime) -> dict[str, int]:
        with self.engine.begin() as conn:
            acts = conn.execute(delete(activity).where(
                activity.c.tenant == tenant, activity.c.created_at < cutoff)).rowcount
            staged = conn.execute(delete(staged_payload).where(
                staged_payload.c.created_at < cutoff)).rowcount
        return {"activity": acts, "staged": staged}
