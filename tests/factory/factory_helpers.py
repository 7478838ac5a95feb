"""Helpers shared by the DAG-factory tests (tenant files and the DAG folder)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
DEMO_TENANT = json.loads((ROOT / "include" / "mappings" / "demo.json").read_text())


def tenant_doc(tenant_id: str) -> dict:
    """The demo tenant's file as tenant ``tenant_id``."""
    doc = copy.deepcopy(DEMO_TENANT)
    doc.pop("$schema", None)
    doc["tenant"] = tenant_id
    doc["connections"] = {"lightspeed": f"ls_{tenant_id}", "quickbooks": f"qb_{tenant_id}"}
    return doc


def write_tenant(directory: Path, doc: dict) -> Path:
    path = directory / f"{doc['tenant']}.json"
    path.write_text(json.dumps(doc, indent=2))
    return path
