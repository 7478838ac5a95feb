"""Assemble one flow's DAG for one tenant from the step operators.

wait_for_other_runs → extract → enrich → exists_check → customer_upsert → load (mapped
over chunks) → finalize. A flow runs the steps its declaration in
:mod:`koppel.flows.catalog` lists; the others are left out.

Cheap on purpose, as it runs for every tenant and flow on every parse: nothing here
imports a flow's implementation, a hook or an API client, and the manual-run Params are
built and checked once per flow kind (each DAG gets its own light copy)."""

from __future__ import annotations

import copy
import datetime as dt
import json
from functools import lru_cache
from typing import Any

from airflow.sdk import DAG, BaseSensorOperator, Param
from airflow.sdk.definitions.param import ParamsDict

from koppel.flows import catalog
from koppel.steps.operators import (
    CustomerUpsertOperator,
    EnrichOperator,
    ErrorThresholdOperator,
    ExistsCheckOperator,
    ExtractOperator,
    FinalizeOperator,
    LoadOperator,
)

OWNER = "koppel"
#: the operator of each chunk step, in the order the steps run
STEP_OPERATORS = {"enrich": EnrichOperator, "exists_check": ExistsCheckOperator,
                  "customer_upsert": CustomerUpsertOperator, "load": LoadOperator}

# ISO 8601 date or date-time. jsonschema checks "format" only with optional libraries
# that are not installed, so the pattern is what refuses "yesterday" at trigger time.
_ISO_MOMENT = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$"

#: the manual-run Params of every sync flow (the trigger form), as declared
PARAMS = {
    "since": Param(None, type=["null", "string"], format="date-time", pattern=_ISO_MOMENT,
                   title="Since", description="Sync records changed from this moment "
                   "(overrides the data interval)."),
    "until": Param(None, type=["null", "string"], format="date-time", pattern=_ISO_MOMENT,
                   title="Until", description="...up to this moment (defaults to now)."),
    "dry_run": Param(False, type="boolean", title="Dry run",
                     description="Build every payload, send nothing, log what would be sent."),
    "full_resync": Param(False, type="boolean", title="Full resync",
                         description="Ignore the window: read every record."),
    "records": Param([], type="array", items={"type": "string"}, title="Records",
                     description="Only these order numbers / SKUs / ids (re)sync."),
}


def pool_name(tenant_id: str, api: str) -> str:
    """Pools per tenant and API keep concurrent tasks under each API's limits."""
    return f"koppel_{tenant_id}_{api}"


#: Param values a DAG can share with the declaration (nothing in them can change)
_IMMUTABLE = (str, int, float, bool, type(None))


class CheckedParams:
    """The Params of one kind of DAG (every sync flow's, the reconciliation's), declared
    once: their defaults are checked against their schemas once per process — Airflow
    checks a DAG's Params again for every DAG it builds (a jsonschema meta-schema check
    per Param, most of a DAG's build time) — and :meth:`for_dag` hands each DAG light
    copies of its own."""

    def __init__(self, declared: dict[str, Param]) -> None:
        self._declared = declared
        self._checked: tuple[tuple[str, Param], ...] | None = None

    def checked(self) -> tuple[tuple[str, Param], ...]:
        if self._checked is None:
            params = ParamsDict(self._declared)
            params.validate()  # ParamValidationError naming the Param whose default is wrong
            self._checked = tuple((name, params.get_param(name)) for name in params)
        return self._checked

    def for_dag(self) -> ParamsDict:
        """A DAG's own Params: each DAG owns its Param objects (``Param.resolve`` keeps
        the value a run resolved, so shared objects would carry one run's value into
        other DAGs and runs), while the schemas — never changed once declared — are
        shared, not copied."""
        own = {}
        for name, param in self.checked():
            mine = copy.copy(param)  # Param.__copy__: a new Param on the same schema
            value = param.value
            if not isinstance(value, _IMMUTABLE):
                value = copy.deepcopy(value)  # a list default is not shared either
            mine.value = value
            own[name] = mine
        return ParamsDict(own)


#: the sync flows' Params
SYNC_PARAMS = CheckedParams(PARAMS)


def attach_params(dag: DAG, params: ParamsDict) -> None:
    """Give ``dag`` its Params once its tasks exist.

    Passed to ``DAG(params=...)`` they would be schema-checked again for every DAG and
    deep-copied into every task (Airflow's operators copy the DAG's Params when they are
    made); the defaults were checked once per kind (:class:`CheckedParams`), and the
    tasks need no copy of their own: a task reads the run's Params from its DAG's
    (``airflow.sdk.definitions.param.process_params``), which is what Airflow serializes
    for the trigger form. Set as Airflow's own converter of ``DAG.params`` sets it."""
    object.__setattr__(dag, "params", params)


def build_flow_dag(tenant: Any, flow: str, *, settings_text: str | None = None) -> DAG:
    """The ``<flow>__<tenant>`` DAG. ``settings_text``: the tenant's settings as
    :func:`settings_json` renders them, when the caller builds several DAGs of one tenant
    (rendered here otherwise)."""
    declaration = catalog.flow(flow)
    if not declaration.implemented:
        raise LookupError(f"flow {flow!r} is not implemented: no DAG for tenant "
                          f"{tenant.tenant!r}")
    flow_cfg = getattr(tenant.flows, flow)
    settings = tenant.settings
    tenant_id = tenant.tenant
    retries = getattr(settings, "retries", 3)
    default_args = {
        "owner": OWNER,
        "retries": retries,
        "retry_delay": dt.timedelta(seconds=getattr(settings, "retry_delay_seconds", 60)),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": dt.timedelta(minutes=30),
    }
    callbacks = _failure_callbacks(tenant, flow)
    if callbacks:
        default_args["on_failure_callback"] = callbacks
    start = getattr(flow_cfg, "start_date", None) or dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    dag = DAG(
        dag_id=f"{flow}__{tenant_id}",
        description=f"{declaration.description} — tenant {tenant_id}",
        schedule=_schedule(getattr(flow_cfg, "schedule", None), start),
        start_date=start,
        catchup=False,
        max_active_runs=1,
        tags=["koppel", flow, f"tenant:{tenant_id}"],
        default_args=default_args,
        doc_md=_doc_md(tenant, declaration, settings_text),
        render_template_as_native_obj=True,
        **dag_config_defaults(),
    )
    ls_pool, qb_pool = pool_name(tenant_id, "lightspeed"), pool_name(tenant_id, "quickbooks")
    # the tenant's direction decides which API a flow reads (stock can run either way)
    direction = str(getattr(flow_cfg, "direction", "") or "")
    source_api = direction.split("_to_")[0] if "_to_" in direction else declaration.source_api
    source_pool = ls_pool if source_api == "lightspeed" else qb_pool
    target_pool = qb_pool if source_api == "lightspeed" else ls_pool
    with dag:
        # a backfill's runs are limited by the backfill's own max_active_runs, apart from
        # the DAG's: this first task keeps every kind of run from overlapping another
        guard = OneRunAtATime(task_id=GUARD_TASK_ID)
        extract = ExtractOperator(task_id="extract", tenant=tenant_id, flow=flow,
                                  implementation=declaration.implementation,
                                  pool=source_pool, doc_md=_task_doc(declaration, "extract"))
        guard >> extract
        upstream, steps = extract, []
        for step in declaration.chunk_steps:
            pool = source_pool if step == "enrich" else target_pool
            upstream = STEP_OPERATORS[step].partial(
                task_id=step, tenant=tenant_id, flow=flow,
                implementation=declaration.implementation, pool=pool,
                max_active_tis_per_dagrun=4, doc_md=_task_doc(declaration, step),
            ).expand(chunk_ref=upstream.output)
            steps.append(upstream)
        # the run's state is Airflow's own. The error threshold follows every step
        # (``none_failed_min_one_success``): a failed step fails the run by itself
        # (upstream_failed); records that all ended before the load (whose map is then
        # empty, so skipped) are still counted; a run that read nothing skips every step
        # and the check with them, without starting a worker. finalize is the run's
        # teardown: it runs whatever happened and is left out of the run's state
        # (airflow/models/dagrun.py, DagRun._tis_for_dagrun_state).
        check = ErrorThresholdOperator(task_id=ErrorThresholdOperator.step, tenant=tenant_id,
                                       flow=flow, trigger_rule="none_failed_min_one_success")
        steps >> check
        check >> FinalizeOperator(task_id="finalize", tenant=tenant_id, flow=flow).as_teardown()
    attach_params(dag, SYNC_PARAMS.for_dag())
    return dag


def _task_doc(declaration: catalog.FlowDeclaration, step: str) -> str:
    """What a step's task runs, for the reader of the DAG in the UI."""
    what = "the run's records from the source, staged in chunks" if step == "extract" \
        else "one chunk of the records (a mapped task per chunk)"
    return f"Runs `{declaration.method(step)}` on {what}."


GUARD_TASK_ID = "wait_for_other_runs"
#: task states of a guard that has not let its run through yet
_GUARD_WAITING = ("scheduled", "queued", "running", "up_for_reschedule", "up_for_retry",
                  "restarting", "deferred")
_FINISHED = ("success", "failed", "skipped", "upstream_failed", "removed")


class OneRunAtATime(BaseSensorOperator):
    """Lets its run start only when no other run of the same DAG (flow and tenant) is
    past this task and still running, whatever made the runs: schedule, trigger or
    backfill.

    ``max_active_runs=1`` holds for scheduled and manual runs only: Airflow counts a
    backfill's runs against the backfill's own ``max_active_runs``, "applied independently
    of the Dag max_active_runs setting"
    (https://airflow.apache.org/docs/apache-airflow/3.3.2/core-concepts/backfill.html),
    so without this task a backfill run and a scheduled run of one flow could sync the
    same records at once. Runs waiting here at the same time go one by one, in run id
    order; the task waits in ``reschedule`` mode, holding no worker slot, and in no
    tenant pool, so it is never what keeps a run from starting."""

    ui_color = "#fdf3d8"

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("mode", "reschedule")
        kwargs.setdefault("poke_interval", 20)
        kwargs.setdefault("timeout", dt.timedelta(hours=12).total_seconds())
        super().__init__(**kwargs)

    def poke(self, context) -> bool:
        blockers = other_active_runs(context["ti"], context["run_id"], self.task_id)
        if blockers:
            self.log.info("%s: waiting for run(s) %s of the same flow to finish "
                          "(a flow never overlaps itself)", context["run_id"],
                          ", ".join(blockers))
            return False
        return True


def other_active_runs(ti: Any, run_id: str, guard_task_id: str = GUARD_TASK_ID) -> list[str]:
    """The runs of ``ti``'s DAG that keep ``run_id`` waiting: past their guard and not
    finished, or waiting at it with a smaller run id (so two waiting runs never wait for
    each other)."""
    dag_id = ti.dag_id
    states = ti.get_task_states(dag_id=dag_id, task_ids=[guard_task_id, "finalize"])
    blockers = []
    for other, tasks in sorted(states.items()):
        if other == run_id:
            continue
        guard = str(getattr(tasks.get(guard_task_id), "value", tasks.get(guard_task_id)))
        final = str(getattr(tasks.get("finalize"), "value", tasks.get("finalize")))
        if final in _FINISHED:
            continue
        if guard == "success" or (guard in _GUARD_WAITING and other < run_id):
            state = ti.get_dagrun_state(dag_id=dag_id, run_id=other)
            if str(getattr(state, "value", state)) in ("queued", "running"):
                blockers.append(other)
    return blockers


def _schedule(schedule: Any, start: dt.datetime) -> Any:
    """A cron schedule (or preset) as data intervals from one tick to the next.

    Airflow 3 turns a plain cron string into a CronTriggerTimetable, whose runs have an
    empty data interval (start == end): the flows would then ignore it and read from
    their last activity instead, so a backfill would not sync its own intervals.

    One timetable per schedule and time zone, shared by the DAGs that have them (a
    timetable holds only its expression and time zone and is never changed once made;
    making one parses the cron expression, for every DAG otherwise)."""
    if not isinstance(schedule, str) or schedule in ("@once", "@continuous"):
        return schedule
    timezone = _timezone(start)
    # time zones that compare equal can differ in name (pendulum's fixed offsets): the
    # name is part of the key, so a DAG gets a timetable of exactly its own time zone
    return _timetable(schedule, type(timezone), getattr(timezone, "name", None), timezone)


#: (id of a tzinfo, UTC offset at the start) → (that tzinfo, the start's pendulum time zone)
_TIMEZONES: dict[tuple[int, Any], tuple[Any, Any]] = {}


def _timezone(start: dt.datetime) -> Any:
    """The pendulum time zone of ``start`` (UTC for a naive date), once per ``tzinfo``
    object: pendulum derives it from the ``tzinfo`` and, for one it does not know by
    name, from the offset at ``start`` — together the cache key (the object itself, not
    its equality: ``datetime.timezone`` objects of one offset are equal whatever their
    names, and pendulum tells UTC from other names)."""
    tzinfo = start.tzinfo
    key = (id(tzinfo), start.utcoffset())
    cached = _TIMEZONES.get(key)
    if cached is not None and cached[0] is tzinfo:
        return cached[1]
    import pendulum

    timezone = pendulum.instance(start, tz=tzinfo or "UTC").timezone
    if len(_TIMEZONES) < 256:
        _TIMEZONES[key] = (tzinfo, timezone)  # holds the tzinfo: its id stays its own
    return timezone


@lru_cache(maxsize=256)
def _timetable(schedule: str, kind: type, name: str | None, timezone: Any) -> Any:
    from airflow.sdk.definitions.timetables.interval import CronDataIntervalTimetable

    return CronDataIntervalTimetable(schedule, timezone)


@lru_cache(maxsize=1)
def dag_config_defaults() -> dict[str, Any]:
    """The DAG arguments whose defaults Airflow reads from its configuration, read once
    per parse instead of once per DAG (three configuration look-ups per DAG otherwise,
    the same values every time). :func:`koppel.factory.build_dags` clears this at the
    start of every parse, so a parse always uses the configuration of its moment."""
    from airflow.sdk.configuration import conf

    return {
        "max_active_tasks": conf.getint("core", "max_active_tasks_per_dag"),
        "max_consecutive_failed_dag_runs": conf.getint(
            "core", "max_consecutive_failed_dag_runs_per_dag"),
        "disable_bundle_versioning": conf.getboolean("dag_processor",
                                                     "disable_bundle_versioning"),
    }


def _failure_callbacks(tenant: Any, flow: str) -> list:
    from koppel.alerts import notifiers_for

    return notifiers_for(tenant, flow)


def settings_json(tenant: Any) -> str:
    """The tenant's settings as the DAGs' docs show them (the same for all its DAGs)."""
    settings = tenant.settings.model_dump(mode="json") if hasattr(tenant.settings, "model_dump") \
        else dict(tenant.settings)
    return json.dumps(settings, indent=2, sort_keys=True, default=str)


def _doc_md(tenant: Any, declaration: catalog.FlowDeclaration,
            settings_text: str | None = None) -> str:
    cfg = getattr(tenant.flows, declaration.name)
    return (
        f"### {declaration.name} for tenant `{tenant.tenant}`\n\n{declaration.description}\n\n"
        f"Steps: {' → '.join(declaration.steps)} → finalize; each runs the method of the "
        f"same name of `{declaration.implementation_name}`.\n\n"
        f"- Connections: Lightspeed `{tenant.connections.lightspeed}`, "
        f"QuickBooks `{tenant.connections.quickbooks}`\n"
        f"- Schedule: `{getattr(cfg, 'schedule', None)}`, direction "
        f"`{getattr(cfg, 'direction', None)}`\n\n"
        "Tenant settings:\n\n```json\n" + (settings_text if settings_text is not None
                                           else settings_json(tenant)) + "\n```\n"
    )
