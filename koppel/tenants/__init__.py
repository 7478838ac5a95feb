"""Tenant files: the model, the loader and the validator behind ``koppel validate``.

Importing this package is light (pydantic and the standard library): the DAG factory
loads tenant files at DAG-parse time.
"""

from koppel.tenants.errors import TenantError
from koppel.domain.formula import FormulaError, StockFormula
from koppel.tenants.loader import TenantSet, load_default_mapping, load_tenant_file, load_tenants, tenant_files
from koppel.tenants.model import FLOW_NAMES, FlowConfig, Settings, TenantConfig, tenant_json_schema, tenant_json_schema_text

__all__ = [
    "FLOW_NAMES",
    "FlowConfig",
    "FormulaError",
    "Settings",
    "StockFormula",
    "TenantConfig",
    "TenantError",
    "TenantSet",
    "load_default_mapping",
    "load_tenant_file",
    "load_tenants",
    "tenant_files",
    "tenant_json_schema",
    "tenant_json_schema_text",
]
