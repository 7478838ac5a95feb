"""Assemble one flow's DAG for one tenant from the step operators.

extract → enrich → exists_check → customer_upsert → load (mapped over chunks) → finalize.
A flow whose process has fewer steps skips the ones it lacks."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from airflow.sdk import DAG, Param

from koppel.flows.registry import process_class
from koppel.steps.operators import (
    CustomerUpsertOperator,
    EnrichOperator,
    ExistsCheckOperator,
    ExtractOperator,
    FinalizeOperator,
    LoadOperator,
)

OWNER = "koppel"
_CHUNK_STEPS = (("enrich", EnrichOperator), ("exists_check", ExistsCheckOperator),
                ("customer_upsert", CustomerUpsertOperator), ("load", LoadOperator))

PARAMS = {
    "since": Param(None, type=["null", "string"], format="date-time",
                   title="Since", description="Sync records changed from this moment "
                   "(overrides the data interval)."),
    "until": Param(None, type=["null", "string"], format="date-time", title="Until",
                   description="...up to this moment (defaults to now)."),
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


def build_flow_dag(tenant: Any, flow: str) -> DAG:
    process = process_class(flow)
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
        description=f"{process.description} — tenant {tenant_id}",
        schedule=getattr(flow_cfg, "schedule", None),
        start_date=start,
        catchup=False,
        max_active_runs=1,
        tags=["koppel", flow, f"tenant:{tenant_id}"],
        default_args=default_args,
        params=PARAMS,
        doc_md=_doc_md(tenant, flow, process),
        render_template_as_native_obj=True,
    )
    ls_pool, qb_pool = pool_name(tenant_id, "lightspeed"), pool_name(tenant_id, "quickbooks")
    source_pool = ls_pool if process.source_api == "lightspeed" else qb_pool
    target_pool = qb_pool if process.source_api == "lightspeed" else ls_pool
    with dag:
        extract = ExtractOperator(task_id="extract", tenant=tenant_id, flow=flow,
                                  pool=source_pool)
        upstream = extract
        for step, operator in _CHUNK_STEPS:
            if step not in process.steps:
                continue
            pool = source_pool if step == "enrich" else target_pool
            upstream = operator.partial(task_id=step, tenant=tenant_id, flow=flow,
                                        pool=pool, max_active_tis_per_dagrun=4
                                        ).expand(chunk_ref=upstream.output)
        upstream >> FinalizeOperator(task_id="finalize", tenant=tenant_id, flow=flow)
    return dag


def _failure_callbacks(tenant: Any, flow: str) -> list:
    from koppel.alerts import notifiers_for


    return notifiers_for(tenant, flow)


def _doc_md(tenant: Any, flow: str, process: Any) -> str:
    cfg = getattr(tenant.flows, flow)
    settings = tenant.settings.model_dump(mode="json") if hasattr(tenant.settings, "model_dump") \
        else dict(tenant.settings)
    return (
        f"### {flow} for tenant `{tenant.tenant}`\n\n{process.description}\n\n"
        f"Steps: {' → '.join(('extract',) + tuple(s for s in process.steps if s != 'extract'))}"
        " → finalize.\n\n"
        f"- Connections: Lightspeed `{tenant.connections.lightspeed}`, "
        f"QuickBooks `{tenant.connections.quickbooks}`\n"
        f"- Schedule: `{getattr(cfg, 'schedule', None)}`, direction "
        f"`{getattr(cfg, 'direction', None)}`\n\n"
        "Tenant settings:\n\n```json\n" + json.dumps(settings, indent=2, sort_keys=True,
                                                   default=str) + "\n```\n"
    )
