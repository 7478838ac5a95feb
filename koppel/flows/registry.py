"""Which flows exist, and how a task finds its tenant and its flow's process.

Light on purpose: the DAG factory imports this at parse time. The flows themselves are
declared in :mod:`koppel.flows.catalog`; ``FLOWS`` here is that table as
``{name: "module:Class"}`` for callers that only need names and import paths."""

from __future__ import annotations

from koppel.flows import catalog

# Every flow koppel knows, from the declaration table. ``None`` marks a flow that is not
# implemented yet: the demo lists it as such and the DAG factory makes no DAG for it.
FLOWS: dict[str, str | None] = {d.name: d.implementation for d in catalog.FLOWS}


def implemented_flows() -> list[str]:
    return [declaration.name for declaration in catalog.implemented()]


def process_class(flow: str):
    """The class that implements ``flow`` (imports it: call at run time, never at parse)."""
    declaration = catalog.flow(flow) if flow in FLOWS else None
    if declaration is None or not declaration.implemented:
        raise KeyError(f"flow {flow!r} is not implemented")
    return declaration.load()


# Tenant look-up lives below the flows (koppel.tenants.lookup); re-exported for callers
# that find it here.
from koppel.tenants.lookup import (  # noqa: E402,F401
    _raw_connections,
    _sharing_connections,
    _tenant_set,
    load_tenant,
    mappings_dir,
)
