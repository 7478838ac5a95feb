"""The DAG factory: tenant files in, ``<flow>__<tenant>`` DAGs out.

Used by ``dags/koppel_dags.py`` (the DAGs) and ``dags/koppel_tenant_errors.py`` (broken
tenant files shown as an import error of their own, so one broken tenant never hides
the others). No API calls or heavy imports at parse time; when a worker parses to run a
single task, only that DAG is built."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from koppel.flows.registry import _tenant_set, implemented_flows, mappings_dir


def build_dags(directory: Path | None = None, only_dag_id: str | None = None) -> dict[str, Any]:
    from koppel.flows.dag import build_flow_dag

    tenant_set = _tenant_set(str(directory or mappings_dir()))
    dags: dict[str, Any] = {}
    for tenant in tenant_set.tenants:
        for flow in implemented_flows():
            cfg = getattr(tenant.flows, flow, None)
            if cfg is None or not cfg.enabled:
                continue
            dag_id = f"{flow}__{tenant.tenant}"
            if only_dag_id and dag_id != only_dag_id:
                continue
            dags[dag_id] = build_flow_dag(tenant, flow)
        # the daily reconciliation of shop and books, for every tenant that books orders
        dag_id = f"reconcile__{tenant.tenant}"
        orders = getattr(tenant.flows, "orders", None)
        if orders is not None and orders.enabled and only_dag_id in (None, dag_id):
            from koppel.flows.reconcile_dag import build_reconcile_dag

            dags[dag_id] = build_reconcile_dag(tenant)
    return dags


def tenant_errors(directory: Path | None = None) -> list[str]:
    return [str(e) for e in _tenant_set(str(directory or mappings_dir())).errors]
