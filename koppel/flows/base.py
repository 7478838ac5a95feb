"""What every flow shares: the run context and the record envelope passed between steps.

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

STEPS = ("extract", "enrich", "exists_check", "customer_upsert", "load")


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
    """A flow's steps. Subclasses implement the ones their flow has."""

    flow: ClassVar[str]
    source_type: ClassVar[str] = "order"
    source_api: ClassVar[str] = "lightspeed"
    target_type: ClassVar[str | None] = None
    chunk_size: ClassVar[int] = 100
    steps: ClassVar[tuple[str, ...]] = STEPS
    description: ClassVar[str] = ""

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


def run_window(run: FlowRun, default_lookback_days: int = 1):
    """The window of records this run reads (see :func:`_window`), logged."""
    window = _window(run, default_lookback_days)
    logging.getLogger(__name__).info(
        "%skoppel %s/%s reads %s", dry_run_prefix(run), run.tenant_id, run.flow,
        "every record (no window)" if window is None else
        f"records changed from {window[0].isoformat()} to {window[1].isoformat()}")
    return window


def _window(run: FlowRun, default_lookback_days: int = 1):
    """The ``(start, end)`` of records to read, or ``None`` for every record.

    Params ``since``/``until`` win; then the run's data interval (scheduled runs and
    backfills only: Airflow gives a manual run the last complete interval too, which is
    not what a user who presses "trigger" means); a manual run without either reads from
    a day before this flow's last activity (so re-runs overlap, never gap), and a first
    run — scheduled or manual: no earlier success and no activity of this flow for this
    tenant — reads everything, or from the flow's ``start_date`` when the tenant file
    sets one."""
    import datetime as _dt

    params = run.params
    now = _dt.datetime.now(_dt.timezone.utc)
    if params.get("full_resync"):
        return None
    if params.get("since") or params.get("until"):
        start = _parse_time(params.get("since")) or _dt.datetime(2000, 1, 1, tzinfo=_dt.timezone.utc)
        return start, _parse_time(params.get("until")) or now
    if run.run_type == "scheduled" and run.prev_success_end is None \
            and not run.store.activity(tenant=run.tenant_id, flow=run.flow, limit=1):
        # the tenant's first scheduled run: everything up to now, not just its interval
        flow_start = getattr(getattr(run.tenant.flows, run.flow, None), "start_date", None)
        if flow_start is None:
            return None
        if flow_start.tzinfo is None:
            flow_start = flow_start.replace(tzinfo=_dt.timezone.utc)
        return flow_start, run.data_interval_end or now
    if str(run.run_type or "") in INTERVAL_RUN_TYPES and run.data_interval_start is not None \
            and run.data_interval_end is not None and run.data_interval_end > run.data_interval_start:
        start = run.data_interval_start
        # no catchup: after downtime or failed runs the scheduler runs only the latest
        # interval, so a scheduled run also covers the gap since the last success
        if run.run_type == "scheduled" and run.prev_success_end is not None \
                and run.prev_success_end < start:
            start = run.prev_success_end
        return start, run.data_interval_end
    last = run.store.activity(tenant=run.tenant_id, flow=run.flow, limit=1)
    if not last:
        return None
    stamp = last[0]["created_at"]
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=_dt.timezone.utc)
    return stamp - _dt.timedelta(days=default_lookback_days), now


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
