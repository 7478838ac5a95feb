"""The kernel the steps own and every flow builds on: the run context, the record
envelope passed between steps, step results, the flow protocol (:class:`Process`), the
one read policy and the run's error threshold. Flows depend on it, never the reverse
(docs/architecture.md, "Layers"); ``koppel.flows.base`` re-exports it for the flows.

A flow is a :class:`Process` with one method per step (extract, enrich, exists-check,
customer upsert, load). The operators in ``koppel.steps`` run those methods for one
chunk of records each, stage the results in the state database (only references go
through XCom) and write the activity log for every record that ends in that step.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

from koppel.privacy import pii_values, scrub
from koppel.store.state import ActivityEntry, StateStore

log = logging.getLogger(__name__)


class RecordError(Exception):
    """A problem with one record: recorded with its reason, retried next run, never
    fatal for the run. The message must name the field and carry no personal data."""

    def __init__(self, message: str, *, field: str | None = None, action: str = "failed"):
        super().__init__(message)
        self.field = field
        self.action = action

    def __str__(self) -> str:
        base = super().__str__()
        return f"{self.field}: {base}" if self.field else base


class SystemicError(Exception):
    """Auth failures, an API that is down: the task fails (and alerts), Airflow retries."""


@dataclass
class Record:
    """One source record travelling through the steps of a run (staged as JSON)."""

    source_id: str
    data: dict[str, Any]
    source_type: str = "order"
    state: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"source_id": self.source_id, "source_type": self.source_type,
                "data": self.data, "state": self.state}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> "Record":
        return cls(source_id=str(raw["source_id"]), data=raw["data"],
                   source_type=raw.get("source_type", "order"), state=raw.get("state", {}))


_MISSING = object()


class RecordState:
    """A flow's typed view of ``record.state``, the JSON a record carries between steps.

    A subclass declares the keys its flow keeps, as annotated class attributes (a value
    is the default for a key not set yet)::

        class RefundState(RecordState):
            entity: str
            original_paid: bool = False

        RefundState(record).entity = "RefundReceipt"

    Attribute access reads and writes ``record.state`` itself (which stays a plain dict,
    staged between tasks as JSON). A key the class does not declare cannot be read or
    written through it, so a misspelt key is an ``AttributeError`` naming the flow's
    keys, never a silent new key; reading a key no step has set yet names the key."""

    __slots__ = ("_state",)
    _fields: ClassVar[dict[str, Any]] = {}

    def __init__(self, record: "Record | dict[str, Any]") -> None:
        object.__setattr__(self, "_state", record if isinstance(record, dict) else record.state)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fields = dict(getattr(cls, "_fields", {}))
        for name in cls.__dict__.get("__annotations__", {}):
            if name.startswith("_"):
                continue
            fields[name] = cls.__dict__.get(name, _MISSING)
            setattr(cls, name, cls._field(name))
        cls._fields = fields

    @classmethod
    def _field(cls, name: str) -> property:
        def get(self: "RecordState") -> Any:
            if name in self._state:
                return self._state[name]
            default = type(self)._fields[name]
            if default is _MISSING:
                raise AttributeError(f"{type(self).__name__}.{name} is not set yet (no step "
                                     f"before this one stored it)")
            return default

        def set_(self: "RecordState", value: Any) -> None:
            self._state[name] = value

        return property(get, set_)

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in type(self)._fields:
            raise AttributeError(f"{type(self).__name__} has no key {name!r} (its keys: "
                                 f"{', '.join(type(self)._fields)})")
        super().__setattr__(name, value)

    def take(self, name: str) -> Any:
        """``name``'s value (or its default), removed from the state: a key that only
        carries something from one step to the next."""
        value = getattr(self, name)
        self._state.pop(name, None)
        return value

    def has(self, name: str) -> bool:
        """Whether a step has stored ``name``."""
        if name not in type(self)._fields:
            raise AttributeError(f"{type(self).__name__} has no key {name!r}")
        return name in self._state


@dataclass
class StepResult:
    """What a step did with its chunk: records to pass on and records that ended here."""

    passed: list[Record] = field(default_factory=list)
    ended: list[ActivityEntry] = field(default_factory=list)

    def end(self, record: Record, action: str, **kw: Any) -> None:
        """``record`` ends in this step; its reason is scrubbed of personal data."""
        if kw.get("reason"):
            kw["reason"] = scrub(str(kw["reason"]), pii_values(record.data))
        self.ended.append(ActivityEntry(record.source_type, record.source_id, action, **kw))

    def fail(self, record: Record, error: Exception) -> None:
        self.end(record, getattr(error, "action", "failed"), reason=str(error))


@dataclass
class FlowRun:
    """Everything a step needs about the run: tenant, window, params, hooks, store."""

    tenant: Any  # koppel.tenants.model.TenantConfig
    flow: str
    run_id: str
    params: dict[str, Any]
    data_interval_start: Any = None
    data_interval_end: Any = None
    store: StateStore = field(default_factory=StateStore)
    #: Airflow's run type ("scheduled", "backfill", "manual", "asset_triggered", …)
    run_type: str | None = None
    #: where the DAG's last successful run's data interval ended (scheduled runs)
    prev_success_end: Any = None

    def __post_init__(self) -> None:
        # a run limited to ``records`` reads those records only: last runs' failures stay
        # on the retry list for the next run that is not limited
        wanted = requested_records(self.params)
        if wanted and not isinstance(self.store, RecordsScopedStore):
            self.store = RecordsScopedStore(self.store.engine, wanted)

    @property
    def tenant_id(self) -> str:
        return self.tenant.tenant

    @property
    def run_key(self) -> str:
        return f"{self.tenant_id}/{self.flow}/{self.run_id}"

    @property
    def dry_run(self) -> bool:
        return bool(self.params.get("dry_run"))

    @property
    def direction(self) -> str:
        flow_cfg = getattr(self.tenant.flows, self.flow, None)
        return getattr(flow_cfg, "direction", None) or "lightspeed_to_quickbooks"

    @cached_property
    def lightspeed(self):
        from koppel.hooks.lightspeed import LightspeedHook

        from koppel.pools import task_share

        # this task's share of the shop's per-second limit: a full pool stays under it
        return LightspeedHook(self.tenant.connections.lightspeed,
                              per_second=task_share("lightspeed", 20))

    @cached_property
    def quickbooks(self):
        from koppel.hooks.quickbooks import QuickBooksHook

        from koppel.hooks.quickbooks import QBOLimits
        from koppel.pools import task_share

        # this task's share of the realm's limits: a full pool stays under them
        full = QBOLimits()
        return QuickBooksHook(self.tenant.connections.quickbooks, limits=QBOLimits(
            per_second=task_share("quickbooks", full.per_second),
            per_minute=task_share("quickbooks", full.per_minute),
            batches_per_minute=task_share("quickbooks", full.batches_per_minute)))

    def api_calls(self) -> dict[str, int]:
        """Calls this process made so far, per API (only hooks already opened count)."""
        counts = {}
        for name in ("lightspeed", "quickbooks"):
            hook = self.__dict__.get(name)
            counts[name] = _total_calls(hook) if hook is not None else 0
        return counts


def requested_records(params: dict[str, Any]) -> frozenset[str]:
    """The ``records`` Param as a set of ids / numbers / SKUs (blank entries dropped)."""
    return frozenset(str(r).strip() for r in (params.get("records") or []) if str(r).strip())


def source_updated_at(data: dict[str, Any]) -> Any:
    """When the source last changed the record, if it says: Lightspeed's ``updatedAt``,
    QuickBooks' ``MetaData.LastUpdatedTime``; ``None`` when it does not say."""
    import datetime as _dt

    raw = data.get("updatedAt") or (data.get("MetaData") or {}).get("LastUpdatedTime")
    if not raw:
        return None
    try:
        value = _dt.datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=_dt.timezone.utc)


def keep_manual_skips(run: "FlowRun", records: list[Record]) -> tuple[list[Record], list[ActivityEntry]]:
    """Records skipped by hand on the dashboard stay skipped until the source changes
    them: a later run whose window (or look-back overlap) reads such a record unchanged
    ends it ``skipped`` with the skip's own reason, and never books it. A record the
    source changed after the skip is handled as any other; a run limited to ``records``
    (a user asking for exactly these) handles them too. Checked before every chunk step,
    so a skip made while a run is under way holds from that run's next step.

    Returns the records to go on with and the entries of those that stay skipped."""
    if not records or requested_records(run.params):
        return records, []
    by_type: dict[str, list[Record]] = {}
    for record in records:
        by_type.setdefault(record.source_type, []).append(record)
    held: dict[int, ActivityEntry] = {}
    for source_type, group in by_type.items():
        skips = run.store.manual_skips(run.tenant_id, run.flow, source_type,
                                       [r.source_id for r in group])
        for record in group:
            skip = skips.get(record.source_id)
            if skip is None:
                continue
            changed = source_updated_at(record.data)
            if changed is not None and skip["created_at"] is not None \
                    and changed > skip["created_at"]:
                continue  # the shop changed it since: read again as any record
            carried = dict(record.state.get("api_calls") or {})  # what reading it cost
            held[id(record)] = ActivityEntry(
                source_type=record.source_type, source_id=record.source_id, action="skipped",
                reason=skip["reason"], api_calls=sum(carried.values()),
                details={"manual_skip_at": skip["created_at"].isoformat()
                         if skip["created_at"] is not None else None,
                         "unchanged_since_skip": True,
                         **({"api_calls": carried} if carried else {})})
    if not held:
        return records, []
    return [r for r in records if id(r) not in held], list(held.values())


class RecordsScopedStore(StateStore):
    """The state store as a run limited to ``records`` sees it: its retry list
    (:meth:`failed`) holds only the requested records, so the run reads nothing else.
    Everything else (activity, cross-references, staging) is the shared store."""

    def __init__(self, engine: Any, records: frozenset[str]) -> None:
        super().__init__(engine)
        self.records = frozenset(records)

    def failed(self, tenant: str, flow: str) -> list[dict[str, Any]]:
        return [row for row in super().failed(tenant, flow)
                if str(row["source_id"]) in self.records]

    def all_failed(self, tenant: str, flow: str) -> list[dict[str, Any]]:
        """The whole retry list, as an unlimited run sees it."""
        return super().failed(tenant, flow)


def dry_run_prefix(run: "FlowRun") -> str:
    """``"DRY RUN (nothing written): "`` for a dry run's log lines, else ``""``."""
    return "DRY RUN (nothing written): " if run.dry_run else ""


def _total_calls(hook: Any) -> int:
    calls = getattr(hook, "calls", None)
    if calls is None:
        return 0
    if isinstance(calls, (Counter, dict)):
        return int(sum(calls.values()))
    return int(calls)


class Process(ABC):
    """A flow's steps. Subclasses implement the ones their flow has; which steps a flow
    runs, the API it reads and how it describes itself are its row in
    ``koppel/flows/catalog.py`` (said once, there)."""

    flow: ClassVar[str]
    source_type: ClassVar[str] = "order"
    target_type: ClassVar[str | None] = None
    #: the most records a chunk holds (bounded memory; one mapped task per chunk)
    chunk_size: ClassVar[int] = 100
    #: chunk sizes are rounded up to a multiple of this: 30 for flows whose load writes
    #: one QuickBooks batch operation per record, so the batches of a chunk are full
    chunk_align: ClassVar[int] = 1

    def __init__(self, run: FlowRun) -> None:
        self.run = run

    @abstractmethod
    def extract(self) -> list[Record]:
        """The records to sync in this run (window, Params, and last run's failures)."""

    def enrich(self, records: list[Record]) -> StepResult:
        return StepResult(passed=records)

    def exists_check(self, records: list[Record]) -> StepResult:
        return StepResult(passed=records)

    def customer_upsert(self, records: list[Record]) -> StepResult:
        return StepResult(passed=records)

    @abstractmethod
    def load(self, records: list[Record]) -> StepResult:
        """Write the chunk to the target; every record ends here."""


def jsonable(value: Any) -> Any:
    """Make ``value`` safe to stage as JSON: Decimals as strings, datetimes as ISO-8601."""
    import datetime as _dt
    from decimal import Decimal

    from pydantic import BaseModel

    if isinstance(value, BaseModel):
        return jsonable(value.model_dump())
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    return value


#: the run types whose data interval is the window of records to read
INTERVAL_RUN_TYPES = ("scheduled", "backfill")


@dataclass(frozen=True)
class ReadWindow:
    """The records a run reads: changed in ``[start, end]``, or every record when
    ``start`` is ``None``; ``reason`` says which rule of :func:`read_window` chose it."""

    start: Any
    end: Any
    reason: str

    @property
    def everything(self) -> bool:
        return self.start is None

    def as_tuple(self):
        return None if self.start is None else (self.start, self.end)


def read_window(params: dict[str, Any], *, run_type: str | None, interval_start: Any,
                interval_end: Any, prev_success_end: Any, last_activity: Any,
                start_date: Any = None, lookback: Any = None, now: Any = None) -> ReadWindow:
    """koppel's one read policy: which records a run reads (every flow; README "Which
    records a run reads").

    1. ``full_resync`` reads every record; ``since``/``until`` give the window.
    2. A tenant's first scheduled run (no earlier success, no activity of the flow) reads
       every record, or from the flow's ``start_date`` when the tenant file sets one.
    3. Scheduled runs and backfills read their data interval; a scheduled run after
       missed or failed runs (no catchup) reaches back to the last success's end.
    4. Any other run (manual, triggered from the dashboard, asset) reads from
       ``lookback`` (default one day) before the flow's last activity until now, so
       re-runs overlap and never gap (Airflow gives a manual run the last *complete*
       interval, which is not what a user who presses "trigger" means); without any
       activity it is a first run and reads every record.

    Records on the retry list are read besides the window by each flow; a ``records``
    run reads only those records (:class:`RecordsScopedStore`)."""
    import datetime as _dt

    now = now or _dt.datetime.now(_dt.timezone.utc)
    lookback = lookback if lookback is not None else _dt.timedelta(days=1)
    if params.get("full_resync"):
        return ReadWindow(None, None, "full resync")
    if params.get("since") or params.get("until"):
        start = _parse_time(params.get("since")) or _dt.datetime(2000, 1, 1, tzinfo=_dt.timezone.utc)
        return ReadWindow(start, _parse_time(params.get("until")) or now, "since/until params")
    interval_start, interval_end = _parse_time(interval_start), _parse_time(interval_end)
    prev_success_end, last_activity = _parse_time(prev_success_end), _parse_time(last_activity)
    if run_type == "scheduled" and prev_success_end is None and last_activity is None:
        start = _parse_time(start_date)
        if start is None:
            return ReadWindow(None, None, "first run")
        return ReadWindow(start, interval_end or now, "first run, from the flow's start_date")
    if str(run_type or "") in INTERVAL_RUN_TYPES and interval_start is not None \
            and interval_end is not None and interval_end > interval_start:
        if run_type == "scheduled" and prev_success_end is not None \
                and prev_success_end < interval_start:
            return ReadWindow(prev_success_end, interval_end,
                              "data interval, from the last success (runs were missed)")
        return ReadWindow(interval_start, interval_end, "data interval")
    if last_activity is None:
        return ReadWindow(None, None, "first run")
    return ReadWindow(last_activity - lookback, now, "since the last activity")


def chunk_length(total: int | None, maximum: int, align: int = 1) -> int:
    """Records per chunk for a run that read ``total`` records (``None``: a stream, not
    known ahead): as few chunks as ``maximum`` allows, equally full, each a multiple of
    ``align`` (a QuickBooks batch) where ``maximum`` allows — 1,000 orders with a maximum
    of 300 are four chunks of 270, 270, 270 and 190, not ten of 100."""
    maximum = max(1, int(maximum))
    if not total or total <= maximum:
        return maximum if total is None else max(1, total)
    chunks = -(-total // maximum)
    size = -(-total // chunks)
    aligned = -(-size // align) * align if align > 1 else size
    return aligned if aligned <= maximum else size


def run_read_window(run: FlowRun, lookback: Any = None) -> ReadWindow:
    """:func:`read_window` for ``run``, logged."""
    last = run.store.activity(tenant=run.tenant_id, flow=run.flow, limit=1)
    flow_cfg = getattr(run.tenant.flows, run.flow, None)
    window = read_window(run.params, run_type=run.run_type,
                         interval_start=run.data_interval_start,
                         interval_end=run.data_interval_end,
                         prev_success_end=run.prev_success_end,
                         last_activity=last[0]["created_at"] if last else None,
                         start_date=getattr(flow_cfg, "start_date", None), lookback=lookback)
    logging.getLogger(__name__).info(
        "%skoppel %s/%s reads %s (%s)", dry_run_prefix(run), run.tenant_id, run.flow,
        "every record (no window)" if window.everything else
        f"records changed from {window.start.isoformat()} to {window.end.isoformat()}",
        window.reason)
    return window


def run_window(run: FlowRun, default_lookback_days: int = 1):
    """The ``(start, end)`` of records ``run`` reads, or ``None`` for every record
    (:func:`read_window`)."""
    import datetime as _dt

    return run_read_window(run, _dt.timedelta(days=default_lookback_days)).as_tuple()


def _parse_time(value: Any):
    import datetime as _dt

    if not value:
        return None
    if isinstance(value, _dt.datetime):
        moment = value
    else:
        moment = _dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=_dt.timezone.utc)


def is_systemic(exc: BaseException) -> bool:
    """Errors that are not one record's fault — auth, an API that is down, throttling past
    every retry, the network — fail the task so Airflow retries it and alerts."""
    import httpx

    from koppel.hooks.errors import AuthError, LightspeedAuthError, RateLimitExhausted, TransientError

    return isinstance(exc, (AuthError, LightspeedAuthError, RateLimitExhausted, TransientError,
                            SystemicError, httpx.TransportError))


def error_threshold_exceeded(tenant: Any, failures: int, records: int) -> str | None:
    """Why the run should fail because of record-level errors, or None.

    Record errors never fail a run on their own; only more than the tenant's threshold
    (a count, and/or a fraction of the run's records) does."""
    threshold = getattr(tenant.settings, "error_threshold", None)
    if threshold is None or failures == 0:
        return None
    max_count = getattr(threshold, "max_count", None)
    max_fraction = getattr(threshold, "max_fraction", None)
    if max_count is not None and failures > max_count:
        return f"{failures} new record failure(s) (threshold {max_count})"
    if max_fraction is not None and records and failures / records > max_fraction:
        return (f"{failures} new record failure(s) of {records} records "
                f"(threshold {max_fraction:.0%})")
    return None
