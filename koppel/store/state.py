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
from koppel.store.schema import (
    activity,
    ensure_schema,
    failed_record,
    preview,
    staged_payload,
    xref,
)

#: "waiting": the record depends on another record not synced yet (a refund of an order
#: the orders flow has not booked): retried every run like "failed", but not an error
#: "reconciled": a day whose sales, VAT and refunds match the books (flow "reconcile";
#: a day that does not is a "conflict")
#: the run id prefix of the activity rows the dashboard writes (a skip by hand): part of
#: a record's path, never a flow's "last run"
DASHBOARD_RUN_PREFIX = "dashboard__"

ACTIONS = ("created", "updated", "skipped", "voided", "failed", "waiting", "conflict",
           "refunded", "deleted", "erased", "reconciled")


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
    #: a dry run's would-be request (``{"target_type", "operation", "payload"}``): kept as
    #: the record's preview (:meth:`StateStore.save_previews`), never in the activity log
    preview: dict[str, Any] | None = field(default=None, repr=False, compare=False)

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

    def manual_skips(self, tenant: str, flow: str, source_type: str,
                     source_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Records skipped by hand on the dashboard: source id → its latest such row
        (``created_at``, ``reason``)."""
        ids = sorted({str(i) for i in source_ids})
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), 500):
            stmt = (select(activity.c.source_id, activity.c.created_at, activity.c.reason)
                    .where(activity.c.tenant == tenant, activity.c.source_type == source_type,
                           activity.c.source_id.in_(ids[start:start + 500]),
                           activity.c.flow == flow, activity.c.action == "skipped",
                           activity.c.run_id.startswith(DASHBOARD_RUN_PREFIX))
                    .order_by(activity.c.id))
            with self.engine.connect() as conn:
                for source_id, created_at, reason in conn.execute(stmt):
                    if created_at is not None and created_at.tzinfo is None:  # SQLite
                        created_at = created_at.replace(tzinfo=dt.timezone.utc)
                    found[source_id] = {"created_at": created_at, "reason": reason}
        return found

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

    def mark_in_flight(self, tenant: str, flow: str, source_ids: Iterable[str],
                       reason: str) -> None:
        """Put records on the retry list *before* a write (attempts 0; records already on
        it keep their row): a process that dies mid-write leaves them there, so the next
        run reads them again and logs what it finds, instead of losing their trace.
        The step's outcome replaces or resolves the row."""
        ids = sorted({str(i) for i in source_ids})
        if not ids:
            return
        now = utcnow()
        with self.engine.begin() as conn:
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                known = {row[0] for row in conn.execute(
                    select(failed_record.c.source_id).where(
                        failed_record.c.tenant == tenant, failed_record.c.flow == flow,
                        failed_record.c.source_id.in_(chunk)))}
                rows = [{"tenant": tenant, "flow": flow, "source_id": i, "reason": reason,
                         "attempts": 0, "first_failed_at": now, "last_failed_at": now}
                        for i in chunk if i not in known]
                if rows:
                    conn.execute(insert(failed_record), rows)

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

    # -- previews (a dry run's would-be requests, per record) ---------------------------
    def save_previews(self, tenant: str, flow: str, run_id: str,
                      entries: Sequence["ActivityEntry"]) -> int:
        """Keep each entry's ``preview`` as its record's latest (one row per record)."""
        rows = [e for e in entries if e.preview is not None]
        if not rows:
            return 0
        now = dt.datetime.now(dt.timezone.utc)
        with self.engine.begin() as conn:
            conn.execute(delete(preview).where(
                preview.c.tenant == tenant, preview.c.flow == flow,
                preview.c.source_id.in_([e.source_id for e in rows])))
            conn.execute(insert(preview), [{
                "tenant": tenant, "flow": flow, "source_type": e.source_type,
                "source_id": e.source_id, "run_id": run_id,
                "target_type": e.preview.get("target_type"),
                "operation": e.preview.get("operation"),
                "payload": e.preview.get("payload"), "created_at": now} for e in rows])
        return len(rows)

    def preview_of(self, tenant: str, flow: str, source_id: str) -> dict[str, Any] | None:
        """The latest dry run's would-be request for a record, or ``None``."""
        with self.engine.connect() as conn:
            row = conn.execute(select(preview).where(
                preview.c.tenant == tenant, preview.c.flow == flow,
                preview.c.source_id == str(source_id))).first()
        if row is None:
            return None
        found = dict(row._mapping)
        found.pop("id", None)
        return found

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
            previews = conn.execute(delete(preview).where(
                preview.c.tenant == tenant, preview.c.created_at < cutoff)).rowcount
        return {"activity": acts, "staged": staged, "previews": previews}

    # -- erasure of one data subject (GDPR art. 17) ---------------------------------------
    # Which source types of one subject belong to which flow (``koppel_failed_record``
    # has no source type, only the flow).
    SUBJECT_FLOWS = {"customer": "customers", "order": "orders", "refund": "refunds",
                     "qbo:document": "orders_reverse"}

    def erase_sources(self, tenant: str, sources: dict[str, Iterable[str]], *,
                      emails: Iterable[str] = ()) -> dict[str, int]:
        """Delete every trace of the given sources — ``{source_type: ids}`` — of one
        tenant: activity rows, cross-references, failed records, staged payloads holding
        one of them (or one of ``emails``), and mentions of their ids in the reasons of
        other records' activity rows (e.g. "same e-mail address as shop customer 12").
        Returns counts per store."""
        pairs = {(str(t), str(i)) for t, ids in sources.items() for i in ids}
        counts = {"activity": 0, "xref": 0, "failed": 0, "staged": 0, "previews": 0,
                  "reasons_redacted": 0}
        if not pairs:
            return counts
        by_type: dict[str, list[str]] = {}
        for source_type, source_id in sorted(pairs):
            by_type.setdefault(source_type, []).append(source_id)
        with self.engine.begin() as conn:
            for source_type, ids in by_type.items():
                for start in range(0, len(ids), 500):
                    chunk = ids[start:start + 500]
                    counts["activity"] += conn.execute(delete(activity).where(
                        activity.c.tenant == tenant, activity.c.source_type == source_type,
                        activity.c.source_id.in_(chunk))).rowcount
                    counts["xref"] += conn.execute(delete(xref).where(
                        xref.c.tenant == tenant, xref.c.source_type == source_type,
                        xref.c.source_id.in_(chunk))).rowcount
                    counts["previews"] += conn.execute(delete(preview).where(
                        preview.c.tenant == tenant, preview.c.source_type == source_type,
                        preview.c.source_id.in_(chunk))).rowcount
                    flow = self.SUBJECT_FLOWS.get(source_type)
                    if flow:
                        counts["failed"] += conn.execute(delete(failed_record).where(
                            failed_record.c.tenant == tenant, failed_record.c.flow == flow,
                            failed_record.c.source_id.in_(chunk))).rowcount
            counts["reasons_redacted"] = self._redact_reasons(conn, tenant,
                                                              {i for _, i in pairs})
            counts["staged"] = self._erase_staged(conn, pairs, emails)
        return counts

    @staticmethod
    def _redact_reasons(conn, tenant: str, ids: set[str]) -> int:
        import re

        redacted = 0
        for source_id in sorted(ids):
            pattern = re.compile(rf"(?<![\w-]){re.escape(source_id)}(?![\w-])")
            rows = conn.execute(select(activity.c.id, activity.c.reason).where(
                activity.c.tenant == tenant,
                activity.c.reason.contains(source_id, autoescape=True))).all()
            for row_id, reason in rows:
                cleaned = pattern.sub("<erased>", reason or "")
                if cleaned != reason:
                    conn.execute(update(activity).where(activity.c.id == row_id)
                                 .values(reason=cleaned))
                    redacted += 1
        return redacted

    @staticmethod
    def _erase_staged(conn, pairs: set[tuple[str, str]], emails: Iterable[str]) -> int:
        """Staged chunks live only while their run does; one still holding a record of
        the subject (a run that died before its finalize) goes as a whole."""
        import json

        ids = {i for _, i in pairs}
        needles = {e.casefold() for e in emails if e}
        doomed = []
        for row_id, payload in conn.execute(select(staged_payload.c.id,
                                                   staged_payload.c.payload)):
            records = payload if isinstance(payload, list) else [payload]
            hit = any(isinstance(r, dict) and str(r.get("source_id")) in ids
                      and (r.get("source_type") is None
                           or (str(r.get("source_type")), str(r.get("source_id"))) in pairs)
                      for r in records)
            if not hit and needles:
                text = json.dumps(payload, default=str, ensure_ascii=False).casefold()
                hit = any(n in text for n in needles)
            if hit:
                doomed.append(row_id)
        for start in range(0, len(doomed), 500):
            conn.execute(delete(staged_payload).where(
                staged_payload.c.id.in_(doomed[start:start + 500])))
        return len(doomed)

    def sources_by_target(self, tenant: str, target_type: str,
                          target_ids: Iterable[str]) -> list[tuple[str, str]]:
        """Every (source type, source id) cross-referenced to one of ``target_ids``
        (unlike :meth:`xrefs_by_target`, all of them, not one per target)."""
        ids = sorted({str(i) for i in target_ids})
        found: list[tuple[str, str]] = []
        for start in range(0, len(ids), 500):
            stmt = select(xref.c.source_type, xref.c.source_id).where(
                xref.c.tenant == tenant, xref.c.target_type == target_type,
                xref.c.target_id.in_(ids[start:start + 500]))
            with self.engine.connect() as conn:
                found.extend((t, i) for t, i in conn.execute(stmt))
        return sorted(set(found))
