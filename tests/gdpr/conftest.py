"""GDPR harness: one small seeded shop and one tenant for the whole directory, every flow
run once through Airflow, and helpers to run tasks under a real task runner.

- ``synced``: the tenant after every flow ran under ``dag.test()`` (in process; what the
  tasks logged is captured from pytest's output capture) and the customers flow ran once
  more under the real task runner (a forked task process supervised by Airflow's
  supervisor, which writes the task log files under ``[logging] base_log_folder``).
- ``real_task_runner()``: a context manager that makes ``dag.test()`` run each task the
  way a worker does (``supervise_task``: fork, structured logs over a socket, log file),
  with the Execution API served in process instead of by an API server.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from koppel.sandbox import lightspeed, quickbooks
from koppel.sandbox.server import SandboxServer

ROOT = Path(__file__).resolve().parents[2]
DEMO_TENANT = json.loads((ROOT / "include" / "mappings" / "demo.json").read_text())
FLOW_ORDER = ("products", "customers", "orders", "refunds", "stock", "orders_reverse")
RETENTION_DAYS = 10


@contextlib.contextmanager
def real_task_runner(dag_file: str):
    """``dag.test()`` runs every task through Airflow's supervisor in a forked task
    process, as a worker would; only the Execution API is served in process. The task
    process parses ``dag_file`` (relative to the DAGs folder) to find its task."""
    import airflow.sdk.definitions.dag as dag_module

    def run_supervised(*, ti, task, run_triggerer=False):
        from uuid import UUID

        from airflow.executors.workloads import BundleInfo
        from airflow.sdk.api.datamodels._generated import TaskInstance as SDKTaskInstance
        from airflow.sdk.execution_time.supervisor import InProcessTestSupervisor, supervise_task
        from airflow.utils.log.file_task_handler import FileTaskHandler
        from airflow.utils.state import TaskInstanceState

        ti.set_state(TaskInstanceState.QUEUED)
        log_path = FileTaskHandler(base_log_folder="")._render_filename(ti, ti.try_number)
        supervise_task(
            ti=SDKTaskInstance(id=UUID(str(ti.id)), task_id=ti.task_id, dag_id=ti.dag_id,
                               run_id=ti.run_id, try_number=ti.try_number,
                               map_index=ti.map_index,
                               dag_version_id=UUID(str(ti.dag_version_id))),
            bundle_info=BundleInfo(name="dags-folder"),
            dag_rel_path=dag_file,
            token="", client=InProcessTestSupervisor._api_client(task.dag), log_path=log_path)
        ti.refresh_from_db()
        return None

    original = dag_module._run_task
    dag_module._run_task = run_supervised
    try:
        yield
    finally:
        dag_module._run_task = original


class Shop:
    def __init__(self, server: SandboxServer) -> None:
        self.server = server
        self.control = httpx.Client(base_url=f"{server.url}/_sandbox", timeout=30)
        self.control.put("/ratelimit", json={"per_second": 10_000, "limit_5min": 100_000,
                                             "limit_hour": 100_000, "limit_day": 100_000})

    def credentials(self) -> dict[str, Any]:
        return self.control.get("/credentials").json()

    def api(self) -> httpx.Client:
        creds = self.credentials()
        return httpx.Client(base_url=f"{creds['base_url'].rstrip('/')}/{creds['language']}/",
                            auth=(creds["api_key"], creds["api_secret"]), timeout=30)

    def list(self, resource: str, **params: Any) -> list[dict[str, Any]]:
        with self.api() as api:
            return api.get(f"{resource}.json", params={"limit": 250, **params}).json()[resource]


@dataclass
class GdprTenant:
    tenant: str
    shop: Shop
    mappings_dir: Path
    secrets: set[str]
    runs: dict[str, Any] = field(default_factory=dict)
    captured_output: str = ""

    def run(self, flow: str, **params: Any):
        from koppel.factory import build_dags
        from koppel.flows import registry

        registry._tenant_set.cache_clear()
        dag_id = f"{flow}__{self.tenant}"
        dags = build_dags(self.mappings_dir, only_dag_id=dag_id)
        assert dag_id in dags, f"{dag_id} was not generated"
        return dags[dag_id].test(run_conf=params or None)

    def dag_ids(self) -> list[str]:
        return [f"{flow}__{self.tenant}" for flow in FLOW_ORDER]


def retention_dag():
    """The maintenance DAG from its DAG file, with retries off (``dag.test()`` would
    wait out a retry delay in real time)."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags" / "koppel_retention.py"))
    assert not bag.import_errors, bag.import_errors
    dag = bag.dags["koppel_retention"]
    for task in dag.tasks:
        task.retries = 0
    return dag


@pytest.fixture(scope="session")
def _synced(airflow_db, tmp_path_factory, request):
    monkeypatch = pytest.MonkeyPatch()
    servers = [SandboxServer(quickbooks.create_app(seed=5)).start(),
               SandboxServer(lightspeed.create_app(seed=3, orders=8, products=4,
                                                   customers=6)).start()]
    qbo, shop = servers[0], Shop(servers[1])
    try:
        tenant = f"g{uuid.uuid4().hex[:10]}"
        realm = httpx.post(f"{qbo.url}/_sandbox/realms",
                           json={"region": "NL", "name": f"Books of {tenant}"}, timeout=30).json()
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
        doc["flows"] = {flow: {"enabled": True, "schedule": None} for flow in FLOW_ORDER}
        doc["settings"].update({"retries": 0, "retry_delay_seconds": 0,
                                "retention_days": RETENTION_DAYS,
                                "error_threshold": {"max_fraction": 1.0, "max_count": 1000}})
        directory = tmp_path_factory.mktemp("gdpr-mappings")
        (directory / f"{tenant}.json").write_text(json.dumps(doc, indent=2))
        monkeypatch.setenv("KOPPEL_MAPPINGS_DIR", str(directory))

        handle = GdprTenant(tenant, shop, directory,
                            secrets={ls["api_key"], ls["api_secret"], realm["client_secret"],
                                     realm["refresh_token"]})
        capture = request.config.pluginmanager.getplugin("capturemanager")
        if capture is not None:
            capture.read_global_capture()  # start from a clean slate
        for flow in FLOW_ORDER:
            handle.runs[flow] = handle.run(flow, full_resync=True)
        with real_task_runner("koppel_dags.py"):
            handle.runs["customers (task runner)"] = handle.run("customers", full_resync=True)
        if capture is not None:
            out, err = capture.read_global_capture()
            handle.captured_output = out + err
        # every token the QuickBooks sandbox issued during the runs
        oauth = servers[0].app.state.sandbox.oauth
        handle.secrets |= set(oauth._refresh) | set(oauth._access) | {oauth.client_secret}
        env = {k: os.environ[k] for k in (f"AIRFLOW_CONN_LS_{tenant.upper()}",
                                           f"AIRFLOW_CONN_QB_{tenant.upper()}",
                                           "KOPPEL_MAPPINGS_DIR")}
        monkeypatch.undo()  # tests outside this directory must not see this tenant
        yield handle, env
    finally:
        monkeypatch.undo()
        for server in servers:
            server.stop()


@pytest.fixture
def synced(_synced, monkeypatch):
    """The synced tenant, its connections and tenant file in the environment for this
    test only."""
    handle, env = _synced
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    from koppel.flows import registry

    registry._tenant_set.cache_clear()
    yield handle
    registry._tenant_set.cache_clear()
