"""The DAG factory: tenant files in, ``<flow>__<tenant>`` DAGs out.

Used by ``dags/koppel_dags.py`` (the DAGs) and ``dags/koppel_tenant_errors.py`` (broken
tenant files shown as an import error of their own, so one broken tenant never hides
the others). The DAGs are assembled from data — the flow declarations of
:mod:`koppel.flows.catalog` and the tenant files — so a parse imports no flow
implementation, hook or API client and makes no API call.

When a worker parses to run one task (Airflow's parsing context names the DAG), only
that DAG's tenant file is read and validated, and only that DAG is built: the cost of a
task start does not grow with the number of tenants. A tenant whose file does not
validate gets no DAG there either; its problems are reported by the full parse of
``dags/koppel_tenant_errors.py``."""

from __future__ import annotations

import gc
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from koppel.flows import catalog
from koppel.flows.registry import _tenant_set, mappings_dir

#: the daily reconciliation's DAGs (``reconcile__<tenant>``), for tenants that book orders
RECONCILE = "reconcile"


def build_dags(directory: Path | None = None, only_dag_id: str | None = None) -> dict[str, Any]:
    """``{dag_id: DAG}`` for every valid tenant of ``directory`` (default: the mappings
    directory), or only the DAG ``only_dag_id`` (nothing when no valid tenant file
    makes it)."""
    folder = str(directory or mappings_dir())
    if only_dag_id:
        wanted = catalog.split_dag_id(only_dag_id)
        if wanted is None:
            return {}
    with _no_cyclic_gc():
        if only_dag_id:
            tenants = _tenant_set(folder, wanted[1]).tenants
        else:
            tenants = _tenant_set(folder).tenants
        if tenants:
            from koppel.flows.dag import dag_config_defaults

            dag_config_defaults.cache_clear()  # this parse reads the configuration anew
        dags: dict[str, Any] = {}
        for tenant in tenants:
            dags.update(tenant_dags(tenant, only_dag_id))
    return dags


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Python's cyclic garbage collector paused while the DAGs are built.

    A parse makes hundreds of thousands of objects that all live on (the DAGs, their
    tasks, the validated tenants) and next to no garbage; each full collection walks
    every object made so far, so with the collector running a parse of 500 tenants
    spent a fifth of its time walking DAGs that were never garbage, and more per DAG the
    more tenants there were. Reference counting still frees everything as usual; the
    collector is switched back on afterwards (if it was on) and then collects as
    before."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def tenant_dags(tenant: Any, only_dag_id: str | None = None) -> dict[str, Any]:
    """The DAGs of one validated tenant (or only ``only_dag_id`` of them)."""
    from koppel.flows.dag import build_flow_dag, settings_json

    dags: dict[str, Any] = {}
    settings_text = None
    for declaration in catalog.implemented():
        cfg = getattr(tenant.flows, declaration.name, None)
        if cfg is None or not cfg.enabled:
            continue
        dag_id = f"{declaration.name}__{tenant.tenant}"
        if only_dag_id and dag_id != only_dag_id:
            continue
        if settings_text is None:  # the same for every DAG of the tenant
            settings_text = settings_json(tenant)
        dags[dag_id] = build_flow_dag(tenant, declaration.name, settings_text=settings_text)
    # the daily reconciliation of shop and books, for every tenant that books orders
    dag_id = f"{RECONCILE}__{tenant.tenant}"
    orders = getattr(tenant.flows, "orders", None)
    if orders is not None and orders.enabled and only_dag_id in (None, dag_id):
        from koppel.flows.reconcile_dag import build_reconcile_dag

        dags[dag_id] = build_reconcile_dag(tenant)
    return dags


def tenant_errors(directory: Path | None = None) -> list[str]:
    """Every problem of every tenant file (a full validation: what the worker's
    single-tenant parse does not report)."""
    with _no_cyclic_gc():
        return [str(e) for e in _tenant_set(str(directory or mappings_dir())).errors]
