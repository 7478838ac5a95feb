"""Read-only views of koppel's state database for the dashboard.

Everything here is plain SQLAlchemy Core over the activity log (``koppel_activity``),
the failed-record list (``koppel_failed_record``) and the cross-references
(``koppel_xref``); every function takes the tenants the caller may see, so the
authorization decision stays in one place (``auth.py``)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from sqlalchemy import Engine, func, or_, select, tuple_, union

from koppel.store.schema import activity, failed_record, xref
from koppel.store.state import DASHBOARD_RUN_PREFIX
from koppel.web.limits import API_LIMITS, step_api

ACTION_ORDER = ("created", "updated", "skipped", "failed", "waiting", "conflict", "voided",
                "refunded", "deleted", "erased", "reconciled")
FLOW_ORDER = ("orders", "products", "stock", "customers", "refunds", "orders_reverse",
              "reconcile")
_CHUNK = 500


def dag_id(tenant: str, flow: str) -> str:
    """The Airflow DAG of one tenant's flow (see ``koppel/flows/dag.py``)."""
    return f"{flow}__{tenant}"


def as_utc(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands back naive datetimes; koppel always writes UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value


def flow_sort_key(key: tuple[str, str]) -> tuple[str, int, str]:
    tenant, flow = key
    rank = FLOW_ORDER.index(flow) if flow in FLOW_ORDER else len(FLOW_ORDER)
    return tenant, rank, flow


def split_dag_id(dag: str) -> tuple[str, str] | None:
    """``(tenant, flow)`` of a koppel DAG id ``<flow>__<tenant>``; None for another DAG."""
    flow, sep, tenant = dag.partition("__")
    return (tenant, flow) if sep and flow and tenant else None


def runs_with_activity(engine: Engine, runs: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
    """The (dag id, run id) pairs among ``runs`` that logged at least one record."""
    wanted = {(t, f, r) for d, r in runs if (k := split_dag_id(d)) for t, f in [k]}
    found: set[tuple[str, str]] = set()
    keys = sorted(wanted)
    with engine.connect() as conn:
        for start in range(0, len(keys), _CHUNK):
            for t, f, r in conn.execute(
                    select(activity.c.tenant, activity.c.flow, activity.c.run_id)
                    .where(tuple_(activity.c.tenant, activity.c.flow, activity.c.run_id)
                           .in_(keys[start:start + _CHUNK])).distinct()):
                found.add((dag_id(t, f), r))
    return found


def skip_failed(store: Any, tenant: str, flow: str, source_ids: Sequence[str], *,
                reason: str, user: str, at: dt.datetime) -> list[str]:
    """Take failed records off the retry list by hand: one ``skipped`` activity row each
    (reason and user kept, so the record's path shows who skipped it and why), in a run
    of its own, then resolved. The source type is the one the record failed with."""
    from koppel.store.state import ActivityEntry

    with store.engine.connect() as conn:
        types = dict(conn.execute(
            select(activity.c.source_id, activity.c.source_type)
            .where(activity.c.tenant == tenant, activity.c.flow == flow,
                   activity.c.source_id.in_(list(source_ids)))
            .order_by(activity.c.id)).all())
        direction = conn.execute(
            select(activity.c.direction).where(activity.c.tenant == tenant,
                                               activity.c.flow == flow)
            .order_by(activity.c.id.desc()).limit(1)).scalar()
    entries = [ActivityEntry(source_type=types.get(sid, flow.rstrip("s")), source_id=sid,
                             action="skipped", reason=f"skipped by {user}: {reason}",
                             details={"skipped_by": user, "manual": True})
               for sid in source_ids]
    store.record_activity(tenant=tenant, flow=flow,
                          run_id=f"{DASHBOARD_RUN_PREFIX}{at.isoformat(timespec='seconds')}",
                          direction=direction or "lightspeed_to_quickbooks", entries=entries,
                          task_id=None)
    store.mark_resolved(tenant, flow, list(source_ids))
    return list(source_ids)


def known_flows(engine: Engine) -> list[tuple[str, str]]:
    """Every (tenant, flow) with activity or open failures, in display order."""
    stmt = union(select(activity.c.tenant, activity.c.flow).distinct(),
                 select(failed_record.c.tenant, failed_record.c.flow).distinct())
    with engine.connect() as conn:
        keys = {(t, f) for t, f in conn.execute(stmt)}
    return sorted(keys, key=flow_sort_key)


@dataclass
class FlowSummary:
    tenant: str
    flow: str
    last_run_id: str | None = None
    last_run_started: dt.datetime | None = None
    last_run_ended: dt.datetime | None = None
    last_run_counts: dict[str, int] = field(default_factory=dict)
    last_run_api_calls: int = 0
    totals: dict[str, int] = field(default_factory=dict)
    distinct_records: int = 0
    open_failures: int = 0

    @property
    def dag_id(self) -> str:
        return dag_id(self.tenant, self.flow)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant, "flow": self.flow, "dag_id": self.dag_id,
            "last_run": None if self.last_run_id is None else {
                "run_id": self.last_run_id,
                "started": _iso(self.last_run_started), "ended": _iso(self.last_run_ended),
                "counts": dict(self.last_run_counts), "records": sum(self.last_run_counts.values()),
                "api_calls": self.last_run_api_calls,
            },
            # every record once (a record booked, then updated, then skipped is one record);
            # ``totals`` counts what happened to them, ``events`` their sum
            "totals": dict(self.totals), "records": self.distinct_records,
            "events": sum(self.totals.values()), "open_failures": self.open_failures,
        }


def _iso(value: dt.datetime | None) -> str | None:
    value = as_utc(value)
    return None if value is None else value.isoformat()


def _in_tenants(column, tenants: Sequence[str]):
    return column.in_(list(tenants))


def flow_summaries(engine: Engine, keys: Sequence[tuple[str, str]]) -> list[FlowSummary]:
    """Last run (by the newest activity row) and all-time action counts per flow."""
    summaries = {k: FlowSummary(*k) for k in keys}
    if not summaries:
        return []
    tenants = sorted({t for t, _ in keys})
    with engine.connect() as conn:
        for tenant, flow, action, n in conn.execute(
                select(activity.c.tenant, activity.c.flow, activity.c.action, func.count())
                .where(_in_tenants(activity.c.tenant, tenants))
                .group_by(activity.c.tenant, activity.c.flow, activity.c.action)):
            if (tenant, flow) in summaries:
                summaries[(tenant, flow)].totals[action] = n
        distinct = (select(activity.c.tenant, activity.c.flow, activity.c.source_type,
                           activity.c.source_id)
                    .where(_in_tenants(activity.c.tenant, tenants)).distinct().subquery())
        for tenant, flow, n in conn.execute(
                select(distinct.c.tenant, distinct.c.flow, func.count())
                .group_by(distinct.c.tenant, distinct.c.flow)):
            if (tenant, flow) in summaries:
                summaries[(tenant, flow)].distinct_records = n

        newest = (select(func.max(activity.c.id))
                  .where(_in_tenants(activity.c.tenant, tenants),
                         ~activity.c.run_id.startswith(DASHBOARD_RUN_PREFIX))
                  .group_by(activity.c.tenant, activity.c.flow))
        last_runs = {(t, f): r for t, f, r in conn.execute(
            select(activity.c.tenant, activity.c.flow, activity.c.run_id)
            .where(activity.c.id.in_(newest)))}
        if last_runs:
            run_keys = [(t, f, r) for (t, f), r in last_runs.items() if (t, f) in summaries]
            for start in range(0, len(run_keys), _CHUNK):
                chunk = run_keys[start:start + _CHUNK]
                stmt = (select(activity.c.tenant, activity.c.flow, activity.c.action,
                               func.count(), func.min(activity.c.created_at),
                               func.max(activity.c.created_at),
                               func.coalesce(func.sum(activity.c.api_calls), 0))
                        .where(tuple_(activity.c.tenant, activity.c.flow,
                                      activity.c.run_id).in_(chunk))
                        .group_by(activity.c.tenant, activity.c.flow, activity.c.action))
                for tenant, flow, action, n, first, last, calls in conn.execute(stmt):
                    summary = summaries[(tenant, flow)]
                    summary.last_run_id = last_runs[(tenant, flow)]
                    summary.last_run_counts[action] = n
                    summary.last_run_api_calls += int(calls)
                    first, last = as_utc(first), as_utc(last)
                    if summary.last_run_started is None or first < summary.last_run_started:
                        summary.last_run_started = first
                    if summary.last_run_ended is None or last > summary.last_run_ended:
                        summary.last_run_ended = last

        for tenant, flow, n in conn.execute(
                select(failed_record.c.tenant, failed_record.c.flow, func.count())
                .where(_in_tenants(failed_record.c.tenant, tenants))
                .group_by(failed_record.c.tenant, failed_record.c.flow)):
            if (tenant, flow) in summaries:
                summaries[(tenant, flow)].open_failures = n
    return [summaries[k] for k in sorted(summaries, key=flow_sort_key)]


def daily_counts(engine: Engine, keys: Sequence[tuple[str, str]], *, days: int,
                 today: dt.date) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Per flow, one entry per UTC day (oldest first, zero days included):
    ``{"day": "2026-01-31", "counts": {action: n}}``."""
    first_day = today - dt.timedelta(days=days - 1)
    since = dt.datetime.combine(first_day, dt.time(), tzinfo=dt.timezone.utc)
    tenants = sorted({t for t, _ in keys})
    wanted = set(keys)
    series: dict[tuple[str, str], dict[str, dict[str, int]]] = {
        k: {(first_day + dt.timedelta(days=i)).isoformat(): {} for i in range(days)}
        for k in keys}
    if not tenants:
        return {}
    day = func.date(activity.c.created_at)
    stmt = (select(activity.c.tenant, activity.c.flow, day, activity.c.action, func.count())
            .where(_in_tenants(activity.c.tenant, tenants), activity.c.created_at >= since)
            .group_by(activity.c.tenant, activity.c.flow, day, activity.c.action))
    with engine.connect() as conn:
        for tenant, flow, when, action, n in conn.execute(stmt):
            key = (tenant, flow)
            when = when.isoformat() if isinstance(when, dt.date) else str(when)[:10]
            if key in wanted and when in series[key]:
                series[key][when][action] = n
    return {k: [{"day": d, "counts": c} for d, c in series[k].items()] for k in keys}


def open_failures(engine: Engine, keys: Sequence[tuple[str, str]],
                  limit: int = 500) -> list[dict[str, Any]]:
    """Records waiting to be retried, newest failure first, each with the run and task of
    its latest ``failed`` activity row (for the link to the task log)."""
    if not keys:
        return []
    tenants = sorted({t for t, _ in keys})
    wanted = set(keys)
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(
            select(failed_record).where(_in_tenants(failed_record.c.tenant, tenants))
            .order_by(failed_record.c.last_failed_at.desc(), failed_record.c.id.desc()))
            if (r.tenant, r.flow) in wanted][:limit]
        latest: dict[tuple[str, str, str], dict[str, Any]] = {}
        ids = [(r["tenant"], r["flow"], r["source_id"]) for r in rows]
        for start in range(0, len(ids), _CHUNK):
            newest = (select(func.max(activity.c.id))
                      .where(activity.c.action == "failed",
                             tuple_(activity.c.tenant, activity.c.flow,
                                    activity.c.source_id).in_(ids[start:start + _CHUNK]))
                      .group_by(activity.c.tenant, activity.c.flow, activity.c.source_id))
            for r in conn.execute(select(activity).where(activity.c.id.in_(newest))):
                latest[(r.tenant, r.flow, r.source_id)] = dict(r._mapping)
    failures = []
    for r in rows:
        act = latest.get((r["tenant"], r["flow"], r["source_id"]), {})
        details = act.get("details") or {}
        failures.append({
            "tenant": r["tenant"], "flow": r["flow"], "dag_id": dag_id(r["tenant"], r["flow"]),
            "source_id": r["source_id"], "source_type": act.get("source_type"),
            "reason": r["reason"], "attempts": r["attempts"],
            "first_failed": _iso(r["first_failed_at"]), "last_failed": _iso(r["last_failed_at"]),
            "run_id": act.get("run_id"), "task_id": act.get("task_id"),
            "map_index": details.get("map_index") if isinstance(details, dict) else None,
        })
    return failures


def failed_source_ids(engine: Engine, tenant: str, flow: str) -> list[str]:
    stmt = (select(failed_record.c.source_id)
            .where(failed_record.c.tenant == tenant, failed_record.c.flow == flow)
            .order_by(failed_record.c.source_id))
    with engine.connect() as conn:
        return [sid for (sid,) in conn.execute(stmt)]


def _split_calls(row) -> dict[str, int]:
    details = row.details if isinstance(row.details, dict) else {}
    split = details.get("api_calls")
    if isinstance(split, dict):
        return {api: int(n) for api, n in split.items() if api in ("lightspeed", "quickbooks")
                and isinstance(n, (int, float)) and n > 0}
    return {step_api(row.task_id, row.direction): int(row.api_calls or 0)}


def _peak(events: list[tuple[dt.datetime, int]], seconds: int) -> int:
    """The most calls inside any window of ``seconds`` (events sorted by time)."""
    best = total = lo = 0
    for when, n in events:
        total += n
        while events[lo][0] <= when - dt.timedelta(seconds=seconds):
            total -= events[lo][1]
            lo += 1
        best = max(best, total)
    return best


def api_usage(engine: Engine, tenants: Sequence[str], *, now: dt.datetime,
              lookback: dt.timedelta = dt.timedelta(days=1)) -> dict[str, list[dict[str, Any]]]:
    """Per tenant, per API window: calls logged in the window ending now, and the peak of
    any such window over ``lookback``, against the API's limit.

    Calls are logged when a step finishes a chunk, so these are the calls koppel made as
    the activity log saw them; the APIs' own counters are authoritative."""
    usage: dict[str, list[dict[str, Any]]] = {}
    if not tenants:
        return usage
    since = now - lookback
    stmt = (select(activity.c.tenant, activity.c.created_at, activity.c.api_calls,
                   activity.c.task_id, activity.c.direction, activity.c.details)
            .where(_in_tenants(activity.c.tenant, tenants), activity.c.created_at > since,
                   activity.c.api_calls > 0)
            .order_by(activity.c.created_at, activity.c.id))
    events: dict[tuple[str, str], list[tuple[dt.datetime, int]]] = defaultdict(list)
    with engine.connect() as conn:
        for row in conn.execute(stmt):
            when = as_utc(row.created_at)
            for api, n in _split_calls(row).items():
                events[(row.tenant, api)].append((when, n))
    for tenant in tenants:
        windows = []
        for limit in API_LIMITS:
            series = events.get((tenant, limit.api), [])
            start = now - dt.timedelta(seconds=limit.seconds)
            current = sum(n for when, n in series if when > start)
            windows.append({"api": limit.api, "window": limit.label, "seconds": limit.seconds,
                            "limit": limit.calls, "current": current,
                            "peak": max(_peak(series, limit.seconds), current)})
        usage[tenant] = windows
    return usage


# Business keys the flows write into an activity row's ``details`` and the search finds:
# the QuickBooks document number (orders, refunds), the order number, the SKU (products,
# stock) and the e-mail hash (customers; never the address itself).
SEARCH_KEYS = ("doc_number", "order_number", "sku", "email_hash")


def search_terms(query: str) -> list[str]:
    """What a search for ``query`` matches: the text itself and, for an e-mail address,
    its hash as koppel stores it (the address never reaches the state database)."""
    query = query.strip()
    if "@" in query:
        from koppel.domain.emails import email_hash
        return [query, email_hash(query)]
    return [query]


def record_paths(engine: Engine, query: str, tenants: Sequence[str],
                 limit: int = 50) -> list[dict[str, Any]]:
    """Every record whose source or target id is ``query``, or whose activity names it as
    its QuickBooks document number, order number, SKU or e-mail (:data:`SEARCH_KEYS`):
    the record, its current cross-references, and every activity row it has (oldest
    first) — its path through the runs (read → mapped → action → target id)."""
    query = query.strip()
    if not query or not tenants:
        return []
    terms = search_terms(query)
    with engine.connect() as conn:
        keys: set[tuple[str, str, str]] = set()
        by_details = [activity.c.details[key].as_string().in_(terms) for key in SEARCH_KEYS]
        for r in conn.execute(
                select(activity.c.tenant, activity.c.source_type, activity.c.source_id)
                .where(_in_tenants(activity.c.tenant, tenants),
                       or_(activity.c.source_id == query, activity.c.target_id == query,
                           *by_details))
                .distinct()):
            keys.add(tuple(r))
        for r in conn.execute(
                select(xref.c.tenant, xref.c.source_type, xref.c.source_id)
                .where(_in_tenants(xref.c.tenant, tenants),
                       or_(xref.c.source_id == query, xref.c.target_id == query))):
            keys.add(tuple(r))
        ordered = sorted(keys)[:limit]
        if not ordered:
            return []
        rows = [dict(r._mapping) for r in conn.execute(
            select(activity).where(tuple_(activity.c.tenant, activity.c.source_type,
                                          activity.c.source_id).in_(ordered))
            .order_by(activity.c.created_at, activity.c.id))]
        refs = [dict(r._mapping) for r in conn.execute(
            select(xref).where(tuple_(xref.c.tenant, xref.c.source_type,
                                      xref.c.source_id).in_(ordered))
            .order_by(xref.c.target_type))]
    records = []
    for tenant, source_type, source_id in ordered:
        steps = [_path_step(r) for r in rows
                 if (r["tenant"], r["source_type"], r["source_id"]) == (tenant, source_type, source_id)]
        records.append({
            "tenant": tenant, "source_type": source_type, "source_id": source_id,
            "flows": sorted({s["flow"] for s in steps}),
            "xrefs": [{"target_type": x["target_type"], "target_id": x["target_id"],
                       "state": x["state"], "updated": _iso(x["updated_at"])}
                      for x in refs if (x["tenant"], x["source_type"], x["source_id"])
                      == (tenant, source_type, source_id)],
            "steps": steps,
        })
    return records


def _path_step(row: dict[str, Any]) -> dict[str, Any]:
    details = row.get("details") if isinstance(row.get("details"), dict) else {}
    return {
        "at": _iso(row["created_at"]), "flow": row["flow"], "dag_id": dag_id(row["tenant"], row["flow"]),
        "run_id": row["run_id"], "task_id": row["task_id"], "direction": row["direction"],
        "action": row["action"], "target_type": row["target_type"], "target_id": row["target_id"],
        "reason": row["reason"], "amount": None if row["amount"] is None else str(row["amount"]),
        "api_calls": row["api_calls"], "map_index": details.get("map_index"),
        "details": {k: v for k, v in details.items() if k != "map_index"},
    }


def reconciliation(engine: Engine, tenants: Sequence[str], first_day: dt.date,
                   last_day: dt.date) -> list[dict[str, Any]]:
    """Per tenant and day in ``[first_day, last_day]``, the newest verdict of the
    ``reconcile`` flow: the day's figures and differences (newest day first)."""
    if not tenants:
        return []
    days = [(first_day + dt.timedelta(days=i)).isoformat()
            for i in range((last_day - first_day).days + 1)]
    newest = (select(func.max(activity.c.id))
              .where(activity.c.flow == "reconcile", activity.c.source_type == "day",
                     _in_tenants(activity.c.tenant, tenants), activity.c.source_id.in_(days))
              .group_by(activity.c.tenant, activity.c.source_id))
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(
            select(activity).where(activity.c.id.in_(newest))
            .order_by(activity.c.tenant, activity.c.source_id.desc()))]
    out = []
    for row in rows:
        details = row["details"] if isinstance(row["details"], dict) else {}
        out.append({"tenant": row["tenant"], "day": row["source_id"],
                    "reconciled": row["action"] == "reconciled", "run_id": row["run_id"],
                    "checked_at": _iso(row["created_at"]),
                    "figures": details.get("figures") or {},
                    "differences": details.get("differences") or []})
    return out


def visible(keys: Iterable[tuple[str, str]], tenant: str | None) -> list[tuple[str, str]]:
    """Keys narrowed to one tenant when the page asks for one."""
    return [k for k in keys if tenant is None or k[0] == tenant]


__all__ = ["ACTION_ORDER", "SEARCH_KEYS", "search_terms", "FlowSummary", "api_usage", "as_utc", "daily_counts", "dag_id",
           "failed_source_ids", "flow_sort_key", "flow_summaries", "known_flows", "open_failures",
           "reconciliation", "record_paths", "runs_with_activity", "skip_failed", "split_dag_id",
           "visible"]
