"""Tenant files: the model, the loader and the validator behind ``koppel validate``.

Importing this package is light: the names below are imported when first used
(``from koppel.tenants import load_tenants`` works as always). The DAG factory imports
:mod:`koppel.tenants.lookup` (standard library only) at DAG-parse time, and the tenant
model and loader (pydantic) only once it reads tenant files — inside the part of the
parse that runs with the cyclic garbage collector paused (``koppel.factory``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import lazy_loader

# name → first use imports its module (scientific-python's lazy_loader, SPEC 1)
__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs={
    "errors": ["TenantError"],
    "loader": ["TenantSet", "load_default_mapping", "load_tenant_file", "load_tenants",
               "tenant_files"],
    # the stock formula's names come with the model, which imports them from domain
    "model": ["FLOW_NAMES", "FlowConfig", "FormulaError", "Settings", "StockFormula",
              "TenantConfig", "tenant_json_schema", "tenant_json_schema_text"],
})

if TYPE_CHECKING:  # pragma: no cover - for type checkers and editors
    from koppel.domain.formula import FormulaError, StockFormula
    from koppel.tenants.errors import TenantError
    from koppel.tenants.loader import TenantSet, load_default_mapping, load_tenant_file, load_tenants, tenant_files
    from koppel.tenants.model import FLOW_NAMES, FlowConfig, Settings, TenantConfig, tenant_json_schema, tenant_json_schema_text
