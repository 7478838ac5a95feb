"""End-to-end harness: flows run through Airflow (``dag.test()``) against the sandboxes.

- ``qbo_server``: one QuickBooks sandbox for the session; every tenant gets a company
  (realm) of its own, so tests never see each other's books.
- ``shop``: a Lightspeed sandbox per test (it starts in milliseconds), seeded small.
- ``make_tenant(...)``: writes a tenant file (the demo tenant's settings, the test's
  overrides) into a temporary mappings directory, registers its connections as
  ``AIRFLOW_CONN_*`` variables and returns a :class:`TenantHandle` that runs the
  tenant's DAGs and reads QuickBooks' state back through the sandbox control plane.
"""

from __future__ import annotations

import copy
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from koppel.sandbox import lightspeed, quickbooks
from koppel.sandbox.server import SandboxServer

ROOT = Path(__file__).resolve().parents[2]
DEMO_TENANT = json.loads((ROOT / "include" / "mappings" / "demo.json").read_text())


@pytest.fixture(scope="session")
def qbo_server():
    with SandboxServer(quickbooks.create_app(seed=5)) as server:
        yield server


class Shop:
    """A Lightspeed sandbox for one test, with its control plane at hand."""

    def __init__(self, server: SandboxServer) -> None:
        self.server = server
        self.url = server.url
        self.control = httpx.Client(base_url=f"{server.url}/_sandbox", timeout=30)
        # Flows are paced by the real limits in the hook tests; here the per-second limit
        # is lifted so end-to-end tests stay quick.
        self.control.put("/ratelimit", json={"per_second": 10_000, "limit_5min": 100_000,
                                             "limit_hour": 100_000, "limit_day": 100_000})

    def credentials(self) -> dict[str, Any]:
        return self.control.get("/credentials").json()

    def api(self) -> httpx.Client:
        creds = self.credentials()
        return httpx.Client(base_url=f"{creds['base_url'].rstrip('/')}/{creds['language']}/",
                            auth=(creds["api_key"], creds["api_secret"]), timeout=30)

    def orders(self) -> list[dict[str, Any]]:
        out, page = [], 1
        with self.api() as api:
            while True:
                batch = api.get("orders.json", params={"page": page, "limit": 250}).json()["orders"]
                out.extend(batch)
                if len(batch) < 250:
                    return out
                page += 1

    def order(self, order_id: int) -> dict[str, Any]:
        with self.api() as api:
            return api.get(f"orders/{order_id}.json").json()["order"]

    def stats(self) -> dict[str, Any]:
        return self.control.get("/stats").json()


@pytest.fixture
def shop_factory():
    servers: list[SandboxServer] = []

    def make(**sizes: int) -> Shop:
        sizes = {"orders": 20, "products": 12, "customers": 12, **sizes}
        server = SandboxServer(lightspeed.create_app(seed=sizes.pop("seed", 3), **sizes)).start()
        servers.append(server)
        return Shop(server)

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def shop(shop_factory) -> Shop:
    return shop_factory()


@dataclass
class TenantHandle:
    tenant: str
    realm_id: str
    qbo_url: str
    shop: Shop
    mappings_dir: Path

    def entities(self, entity: str) -> list[dict[str, Any]]:
        """Every object of ``entity`` in the tenant's QuickBooks company (incl. inactive
        and voided), read through the control plane: it costs no API calls."""
        response = httpx.get(f"{self.qbo_url}/_sandbox/realms/{self.realm_id}/entities/{entity}",
                             timeout=30)
        response.raise_for_status()
        return response.json()[entity]

    def qbo_hook(self):
        """A QuickBooksHook on the tenant's own connection (for tests that change the
        company as a script of the operator's would). It shares koppel's token row with the
        tenant: a hook seeded with another refresh token of the same app and company is a
        second authorisation, and koppel then rightly prefers the connection's token — the
        tenant's next refresh would be refused once the rotation's grace is over."""
        from koppel.hooks.quickbooks import QuickBooksHook

        return QuickBooksHook(f"qb_{self.tenant}")

    def qbo_stats(self) -> dict[str, Any]:
        return httpx.get(f"{self.qbo_url}/_sandbox/stats", timeout=30).json()

    def run(self, flow: str, **params: Any):
        """Run ``<flow>__<tenant>`` through Airflow; returns the finished DagRun."""
        from koppel.factory import build_dags
        from koppel.flows import registry

        registry._tenant_set.cache_clear()
        os.environ["KOPPEL_MAPPINGS_DIR"] = str(self.mappings_dir)
        dag_id = f"{flow}__{self.tenant}"
        dags = build_dags(self.mappings_dir, only_dag_id=dag_id)
        assert dag_id in dags, f"{dag_id} was not generated (flows: {sorted(dags)})"
        return dags[dag_id].test(run_conf=params or None)

    def activity(self, flow: str, run_id: str | None = None) -> list[dict[str, Any]]:
        from koppel.store.state import StateStore

        return StateStore().activity(tenant=self.tenant, flow=flow, run_id=run_id, limit=100_000)


@pytest.fixture
def make_tenant(airflow_db, qbo_server, tmp_path, monkeypatch):
    """``make_tenant(shop, settings={...}, flows={...}, mappings={...})``"""

    def make(shop: Shop, *, settings: dict | None = None, flows: dict | None = None,
             mappings: dict | None = None, region: str = "NL") -> TenantHandle:
        tenant = f"t{uuid.uuid4().hex[:10]}"
        realm = httpx.post(f"{qbo_server.url}/_sandbox/realms",
                           json={"region": region, "name": f"Books of {tenant}"},
                           timeout=30).json()
        ls = shop.credentials()
        monkeypatch.setenv(f"AIRFLOW_CONN_LS_{tenant.upper()}", json.dumps({
            "conn_type": "lightspeed_ecom", "host": ls["base_url"], "login": ls["api_key"],
            "password": ls["api_secret"], "extra": {"language": ls["language"]}}))
        monkeypatch.setenv(f"AIRFLOW_CONN_QB_{tenant.upper()}", json.dumps({
            "conn_type": "quickbooks_online", "host": realm["api_base_url"],
            "login": realm["client_id"],
            "password": realm["client_secret"],
            "extra": {"realm_id": realm["realm_id"], "refresh_token": realm["refresh_token"],
                      "environment": realm["discovery_url"], "minor_version": 75}}))
        doc = copy.deepcopy(DEMO_TENANT)
        doc.pop("$schema", None)
        doc["tenant"] = tenant
        doc["connections"] = {"lightspeed": f"ls_{tenant}", "quickbooks": f"qb_{tenant}"}
        doc.setdefault("settings", {}).update({"retries": 0, "retry_delay_seconds": 0})
        doc["settings"].update(settings or {})
        for name, cfg in (flows or {}).items():
            doc.setdefault("flows", {}).setdefault(name, {}).update(cfg)
        if mappings:
            for flow, rules in mappings.items():
                doc.setdefault("mappings", {}).setdefault(flow, {}).update(rules)
        directory = tmp_path / "mappings"
        directory.mkdir(exist_ok=True)
        (directory / f"{tenant}.json").write_text(json.dumps(doc, indent=2))
        monkeypatch.setenv("KOPPEL_MAPPINGS_DIR", str(directory))
        return TenantHandle(tenant, realm["realm_id"], qbo_server.url, shop, directory)

    return make
