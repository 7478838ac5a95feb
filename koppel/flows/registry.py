"""Which flows exist, and how a task finds its tenant and its flow's process.

Light on purpose: the DAG factory imports this at parse time."""

from __future__ import annotations

import importlib
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

# Every flow koppel knows. ``None`` marks a flow that is not implemented yet: the demo
# lists it as such and the DAG factory makes no DAG for it.
FLOWS: dict[str, str | None] = {
    "orders": "koppel.flows.orders:OrdersProcess",
    "products": "koppel.flows.products:ProductsProcess",
    "stock": "koppel.flows.stock:StockProcess",
    "customers": "koppel.flows.customers:CustomersProcess",
    "orders_reverse": "koppel.flows.orders_reverse:ReverseOrdersProcess",
    "refunds": "koppel.flows.refunds:RefundsProcess",
}


def implemented_flows() -> list[str]:
    return [name for name, target in FLOWS.items() if target]


def process_class(flow: str):
    target = FLOWS.get(flow)
    if not target:
        raise KeyError(f"flow {flow!r} is not implemented")
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def mappings_dir() -> Path:
    """``KOPPEL_MAPPINGS_DIR``, else the project's ``include/mappings`` (next to ``dags/``)."""
    env = os.environ.get("KOPPEL_MAPPINGS_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "include" / "mappings"


@lru_cache(maxsize=8)
def _tenant_set(directory: str):
    from koppel.tenants.loader import load_tenants

    return load_tenants(Path(directory))


def load_tenant(tenant_id: str):
    """The validated config of one tenant, as a task sees it at run time."""
    tenant_set = _tenant_set(str(mappings_dir()))
    for tenant in tenant_set.tenants:
        if tenant.tenant == tenant_id:
            return tenant
    problems = [str(e) for e in tenant_set.errors]
    raise LookupError(f"tenant {tenant_id!r} has no valid file in {mappings_dir()}"
                      + (f"; problems: {'; '.join(problems)}" if problems else ""))


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
