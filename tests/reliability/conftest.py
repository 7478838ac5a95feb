"""Reliability harness: flows run through Airflow (``dag.test()``, in this process) against
the sandboxes, with faults injected through their control planes, and QuickBooks' state
read back (no API calls) and reduced to a comparable "books" snapshot.

- ``qbo``: one QuickBooks sandbox for the module; every tenant gets its own company.
- ``shop``: one small Lightspeed shop (15 orders) for the module; tests that change the
  shop make their own with ``shop_factory``.
- ``make_tenant(shop, settings=...)``: a tenant file (the demo tenant's settings, unknown
  SKUs create items) in a temporary mappings directory and its ``AIRFLOW_CONN_*``
  variables; returns a :class:`Tenant` that runs DAGs and reads the books.
"""

from __future__ import annotations

import copy
import json
import os
import uuid
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from koppel.sandbox import lightspeed, quickbooks
from koppel.sandbox.server import SandboxServer

ROOT = Path(__file__).resolve().parents[2]
DEMO_TENANT = json.loads((ROOT / "include" / "mappings" / "demo.json").read_text())
CENT = Decimal("0.01")
LS_UNLIMITED = {"per_second": 100_000, "limit_5min": 1_000_000, "limit_hour": 1_000_000,
                "limit_day": 1_000_000}


class Sandbox:
    """A sandbox server and its control plane."""

    def __init__(self, server: SandboxServer) -> None:
        self.server = server
        self.url = server.url
        self.control = httpx.Client(base_url=f"{server.url}/_sandbox", timeout=60)

    def fault(self, **rule: Any) -> None:
        self.control.post("/faults", json=rule).raise_for_status()

    def clear_faults(self) -> None:
        self.control.delete("/faults").raise_for_status()

    def stats(self) -> dict[str, Any]:
        return self.control.get("/stats").json()

    def credentials(self) -> dict[str, Any]:
        return self.control.get("/credentials").json()


class Shop(Sandbox):
    def __init__(self, server: SandboxServer) -> None:
        super().__init__(server)
        self.control.put("/ratelimit", json=LS_UNLIMITED).raise_for_status()

    def orders(self) -> list[dict[str, Any]]:
        creds = self.credentials()
        out, page = [], 1
        with httpx.Client(base_url=f"{creds['base_url']}/{creds['language']}/",
                          auth=(creds["api_key"], creds["api_secret"]), timeout=60) as api:
            while True:
                batch = api.get("orders.json", params={"page": page, "limit": 250}).json()["orders"]
                out.extend(batch)
                if len(batch) < 250:
                    return out
                page += 1


@pytest.fixture(scope="module")
def qbo():
    with SandboxServer(quickbooks.create_app(seed=11)) as server:
        yield Sandbox(server)


@pytest.fixture(scope="module")
def shop_factory():
    servers: list[SandboxServer] = []

    def make(orders: int = 15, products: int = 10, customers: int = 8, seed: int = 4) -> Shop:
        server = SandboxServer(lightspeed.create_app(seed=seed, orders=orders, products=products,
                                                     customers=customers)).start()
        servers.append(server)
        return Shop(server)

    yield make
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def shop(shop_factory) -> Shop:
    return shop_factory()


@dataclass
class Tenant:
    tenant: str
    realm_id: str
    qbo: Sandbox
    shop: Shop
    mappings_dir: Path

    def run(self, flow: str = "orders", **params: Any):
        from koppel.factory import build_dags
        from koppel.flows import registry

        registry._tenant_set.cache_clear()
        os.environ["KOPPEL_MAPPINGS_DIR"] = str(self.mappings_dir)
        dag_id = f"{flow}__{self.tenant}"
        dags = build_dags(self.mappings_dir, only_dag_id=dag_id)
        assert dag_id in dags, f"{dag_id} was not generated"
        return dags[dag_id].test(run_conf=params or None)

    def entities(self, entity: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.qbo.url}/_sandbox/realms/{self.realm_id}/entities/{entity}",
                             timeout=60)
        response.raise_for_status()
        return response.json()[entity]

    def activity(self, flow: str = "orders") -> list[dict[str, Any]]:
        from koppel.store.state import StateStore

        return StateStore().activity(tenant=self.tenant, flow=flow, limit=100_000)

    def latest(self, flow: str = "orders") -> dict[str, dict[str, Any]]:
        """Each record's latest activity entry."""
        out: dict[str, dict[str, Any]] = {}
        for row in sorted(self.activity(flow), key=lambda r: r["id"]):
            out[row["source_id"]] = row
        return out

    def failed(self, flow: str = "orders") -> set[str]:
        from koppel.store.state import StateStore

        return {r["source_id"] for r in StateStore().failed(self.tenant, flow)}

    def books(self, entity: str = "SalesReceipt") -> dict[str, Any]:
        """QuickBooks' state reduced to what must match a clean run, independent of ids:
        documents by DocNumber (total to the cent, customer, lines by item SKU), customers
        and items by name."""
        items = {i["Id"]: i for i in self.entities("Item")}
        customers = {c["Id"]: c for c in self.entities("Customer")}
        documents: dict[str, list[Any]] = {}
        for doc in self.entities(entity):
            lines = []
            for line in doc.get("Line", []):
                detail = line.get("SalesItemLineDetail")
                if not detail:
                    continue
                item = items.get(str(detail.get("ItemRef", {}).get("value")), {})
                lines.append((item.get("Sku") or item.get("Name"),
                              str(Decimal(str(line.get("Amount", 0))).quantize(CENT)),
                              str(detail.get("Qty"))))
            customer = customers.get(str(doc.get("CustomerRef", {}).get("value")), {})
            documents.setdefault(doc["DocNumber"], []).append({
                "total": str(Decimal(str(doc.get("TotalAmt", 0))).quantize(CENT)),
                "customer": customer.get("DisplayName"),
                "lines": sorted(lines),
                "voided": "Voided" in str(doc.get("PrivateNote", "")) or
                          Decimal(str(doc.get("TotalAmt", 0))) == 0})
        return {"documents": documents,
                "customers": Counter(c["DisplayName"] for c in customers.values()),
                "items": Counter((i.get("Sku"), i["Name"]) for i in items.values())}


def new_tenant(qbo: Sandbox, shop: Shop, directory: Path, monkeypatch,
               settings: dict | None = None) -> Tenant:
    """A tenant file in ``directory`` and its connections as ``AIRFLOW_CONN_*``."""
    tenant = f"r{uuid.uuid4().hex[:10]}"
    realm = qbo.control.post("/realms", json={"region": "NL",
                                              "name": f"Books of {tenant}"}).json()
    ls = shop.credentials()
    monkeypatch.setenv(f"AIRFLOW_CONN_LS_{tenant.upper()}", json.dumps({
        "conn_type": "lightspeed_ecom", "host": ls["base_url"], "login": ls["api_key"],
        "password": ls["api_secret"], "extra": {"language": ls["language"]}}))
    monkeypatch.setenv(f"AIRFLOW_CONN_QB_{tenant.upper()}", json.dumps({
        "conn_type": "quickbooks_online", "host": realm["api_base_url"],
        "login": realm["client_id"], "password": realm["client_secret"],
        "extra": {"realm_id": realm["realm_id"], "refresh_token": realm["refresh_token"],
                  "environment": realm["discovery_url"], "minor_version": 75}}))
    doc = copy.deepcopy(DEMO_TENANT)
    doc.pop("$schema", None)
    doc["tenant"] = tenant
    doc["connections"] = {"lightspeed": f"ls_{tenant}", "quickbooks": f"qb_{tenant}"}
    doc.setdefault("settings", {}).update({
        "retries": 0, "retry_delay_seconds": 0, "unknown_sku": "create_item",
        "error_threshold": {"max_fraction": 1.0}})
    doc["settings"].update(settings or {})
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{tenant}.json").write_text(json.dumps(doc, indent=2))
    monkeypatch.setenv("KOPPEL_MAPPINGS_DIR", str(directory))
    return Tenant(tenant, realm["realm_id"], qbo, shop, directory)


@pytest.fixture
def make_tenant(airflow_db, qbo, tmp_path, monkeypatch):
    """``make_tenant(shop, settings={...})``"""

    def make(shop: Shop, *, settings: dict | None = None) -> Tenant:
        return new_tenant(qbo, shop, tmp_path / "mappings", monkeypatch, settings)

    return make


@pytest.fixture(scope="module")
def clean_run(airflow_db, qbo, shop, tmp_path_factory):
    """The module shop booked once without faults: the state every faulted run must
    converge to (books and each order's final action)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        tenant = new_tenant(qbo, shop, tmp_path_factory.mktemp("clean") / "mappings",
                            monkeypatch)
        assert tenant.run("orders").state == "success"
        yield {"books": tenant.books(), "latest": {
            source_id: row["action"] for source_id, row in tenant.latest().items()}}
