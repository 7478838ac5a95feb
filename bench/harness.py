"""The benchmark environment: a throw-away Airflow home, both sandboxes, one tenant per
scenario, and flow runs through Airflow in a subprocess each.

The sandboxes run in this process (uvicorn threads) so their request statistics are at
hand; their rate limits are lifted for throughput (Lightspeed: ``PUT /_sandbox/ratelimit``;
QuickBooks: a time scale that shrinks its per-minute windows, with access tokens made
long-lived again through ``PUT /_sandbox/tokens``). Calls and 429s are still counted and
reported. Nothing secret is printed: credentials only travel in the child's environment.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.batches import BatchRecorder, quickbooks_writes, summarize
from bench.runner import RESULT_PREFIX

ROOT = Path(__file__).resolve().parents[1]
DEMO_TENANT = ROOT / "include" / "mappings" / "demo.json"
# QuickBooks' minute windows shrink by this much for throughput runs (500 calls and 40
# batches per 60 ms); token lifetimes are stretched by the same factor to stay real.
QBO_TIME_SCALE = 1000.0
LS_UNLIMITED = {"per_second": 1_000_000, "limit_5min": 10_000_000, "limit_hour": 10_000_000,
                "limit_day": 10_000_000, "clear": True}


#: the DAG folder of Airflow's floor (:meth:`BenchEnv.run_floor`)
FLOOR_DAGS = Path(__file__).resolve().parent / "floor_dags"


def airflow_env(home: Path, mappings: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "KOPPEL_MAPPINGS_DIR": str(mappings),
        "KOPPEL_STATE_DB_URL": f"sqlite:///{home / 'koppel_state.db'}",
        "OAUTHLIB_INSECURE_TRANSPORT": "1",  # the sandboxes serve plain http on loopback
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH"))
                                      if p),
    })
    return env


@dataclass
class FlowRunResult:
    """What one flow run cost."""

    flow: str
    state: str
    wall_seconds: float
    records: int
    actions: dict[str, int]
    calls: dict[str, int]             # per side: lightspeed, quickbooks
    throttled: dict[str, int]         # 429s received per side
    peak_rss_mb: float
    calls_by_route: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds_in_dag_test: float | None = None
    #: the executed task instances' own running time, summed (:func:`bench.runner.seconds_in_tasks`)
    seconds_in_tasks: float | None = None
    task_states: dict[str, int] = field(default_factory=dict)
    tasks_ran: list[str] = field(default_factory=list)
    batches: dict[str, Any] = field(default_factory=dict)   # :func:`bench.batches.summarize`

    def to_json(self) -> dict[str, Any]:
        records = max(self.records, 1)
        return {
            "flow": self.flow, "state": self.state, "records": self.records,
            "actions": self.actions, "wall_seconds": round(self.wall_seconds, 3),
            "records_per_second": round(self.records / self.wall_seconds, 2)
            if self.wall_seconds else None,
            "api_calls": self.calls,
            "api_calls_per_record": {k: round(v / records, 4) for k, v in self.calls.items()},
            "throttled_429": self.throttled, "peak_rss_mb": self.peak_rss_mb,
            "calls_by_route": self.calls_by_route,
            "seconds_in_dag_test": self.seconds_in_dag_test,
            "seconds_in_tasks": self.seconds_in_tasks,
            "task_states": self.task_states, "tasks_ran": self.tasks_ran,
            "task_instances_ran": len(self.tasks_ran),
            "quickbooks_batches": self.batches,
            "quickbooks_writes": quickbooks_writes(self.calls_by_route.get("quickbooks", {}),
                                                   self.batches),
        }


class Sandboxes:
    """Both emulators on loopback ports, in this process."""

    def __init__(self, seed: int = 7) -> None:
        from koppel.sandbox import lightspeed, quickbooks
        from koppel.sandbox.server import SandboxServer

        self.ls_app = lightspeed.create_app(seed=seed, orders=0, products=1, customers=1)
        self.qbo_app = quickbooks.create_app(seed=seed)
        self.batch_recorder = BatchRecorder(self.qbo_app)
        self.ls = SandboxServer(self.ls_app)
        self.qbo = SandboxServer(self.batch_recorder)

    def __enter__(self) -> "Sandboxes":
        self.ls.start()
        self.qbo.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.ls.stop()
        self.qbo.stop()

    # -- control plane --------------------------------------------------------------------
    def _control(self, side: str, method: str, path: str, **kw: Any) -> Any:
        base = self.ls.url if side == "lightspeed" else self.qbo.url
        response = httpx.request(method, f"{base}/_sandbox{path}", timeout=600, **kw)
        response.raise_for_status()
        return response.json()

    def seed_shop(self, *, orders: int, products: int, customers: int, seed: int = 7) -> None:
        self._control("lightspeed", "POST", "/reset", json={
            "seed": seed, "orders": orders, "products": products, "customers": customers})

    def lift_limits(self) -> None:
        self._control("lightspeed", "PUT", "/ratelimit", json=LS_UNLIMITED)
        self._control("quickbooks", "PUT", "/time-scale", json={"scale": QBO_TIME_SCALE})
        self._control("quickbooks", "PUT", "/tokens",
                      json={"access_token_seconds": 3600 * QBO_TIME_SCALE})

    def stats(self) -> dict[str, dict[str, Any]]:
        return {"lightspeed": self._control("lightspeed", "GET", "/stats"),
                "quickbooks": self._control("quickbooks", "GET", "/stats")}

    def new_realm(self, name: str) -> dict[str, Any]:
        return self._control("quickbooks", "POST", "/realms", json={"region": "NL",
                                                                     "name": name})

    def ls_credentials(self) -> dict[str, Any]:
        return self._control("lightspeed", "GET", "/credentials")

    def variant_count(self) -> int:
        creds = self.ls_credentials()
        response = httpx.get(f"{creds['base_url']}/{creds['language']}/variants/count.json",
                             auth=(creds["api_key"], creds["api_secret"]), timeout=60)
        response.raise_for_status()
        return int(response.json()["count"])


#: routes that are not API calls: the shop's image files come from its CDN, which no
#: API rate limit counts (Lightspeed's limits are on the API, ``api.webshopapp.com``)
NOT_API = ("GET /_cdn",)


def stats_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """A side's calls between two stats snapshots: ``total`` API calls (image downloads
    from the CDN apart, as ``files``), throttled answers, calls by route."""
    routes = {route: n - before["by_route"].get(route, 0)
              for route, n in after["by_route"].items()
              if n - before["by_route"].get(route, 0)}
    files = sum(n for route, n in routes.items() if route.startswith(NOT_API))
    return {"total": after["total"] - before["total"] - files, "files": files,
            "throttled": after["throttled"] - before["throttled"], "by_route": routes}


def connection_env(conn_ids: dict[str, str], ls: dict[str, Any],
                   realm: dict[str, Any]) -> dict[str, str]:
    """``AIRFLOW_CONN_*`` variables (JSON form) for a tenant's two connections."""
    return {
        f"AIRFLOW_CONN_{conn_ids['lightspeed'].upper()}": json.dumps({
            "conn_type": "lightspeed_ecom", "host": ls["base_url"], "login": ls["api_key"],
            "password": ls["api_secret"], "extra": {"language": ls["language"]}}),
        f"AIRFLOW_CONN_{conn_ids['quickbooks'].upper()}": json.dumps({
            "conn_type": "quickbooks_online", "host": realm["api_base_url"],
            "login": realm["client_id"], "password": realm["client_secret"],
            "extra": {"realm_id": realm["realm_id"], "refresh_token": realm["refresh_token"],
                      "environment": realm["discovery_url"], "minor_version": 75}}),
    }


def tenant_document(tenant: str, settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """The demo tenant's file under another id, with its own connection ids."""
    doc = copy.deepcopy(json.loads(DEMO_TENANT.read_text()))
    doc.pop("$schema", None)
    doc["tenant"] = tenant
    doc["connections"] = {"lightspeed": f"ls_{tenant}", "quickbooks": f"qb_{tenant}"}
    doc.setdefault("settings", {}).update({"retries": 0, "retry_delay_seconds": 0,
                                           "error_threshold": {"max_fraction": 1.0}})
    doc["settings"].update(settings or {})
    return doc


class BenchEnv:
    """An Airflow home with a migrated metadata DB and a mappings directory."""

    def __init__(self, home: Path | None = None, keep: bool = False) -> None:
        self._own = home is None
        self.home = home or Path(tempfile.mkdtemp(prefix="koppel-bench-"))
        self.keep = keep
        self.mappings = self.home / "mappings"
        self.mappings.mkdir(parents=True, exist_ok=True)
        self.env = airflow_env(self.home, self.mappings)
        self.log_dir = self.home / "bench-logs"
        self.log_dir.mkdir(exist_ok=True)

    def migrate(self) -> float:
        started = time.monotonic()
        with open(self.log_dir / "db-migrate.log", "w") as out:
            subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=self.env,
                           stdout=out, stderr=subprocess.STDOUT, check=True, timeout=900)
        return time.monotonic() - started

    def cleanup(self) -> None:
        if self._own and not self.keep:
            shutil.rmtree(self.home, ignore_errors=True)

    def add_tenant(self, tenant: str, sandboxes: Sandboxes,
                   settings: dict[str, Any] | None = None) -> dict[str, Any]:
        doc = tenant_document(tenant, settings)
        realm = sandboxes.new_realm(f"Bench {tenant}")
        self.env.update(connection_env(doc["connections"], sandboxes.ls_credentials(), realm))
        (self.mappings / f"{tenant}.json").write_text(json.dumps(doc, indent=2))
        return realm

    def state_store(self):
        from koppel.store.engine import get_engine
        from koppel.store.state import StateStore

        return StateStore(get_engine(self.env["KOPPEL_STATE_DB_URL"]))

    def _run_runner(self, name: str, args: list[str],
                    env: dict[str, str] | None = None) -> tuple[dict[str, Any], float]:
        """``python -m bench.runner ARGS`` in a process of its own, logged to
        ``bench-logs/NAME-<ms>.log``: its result line and its wall time."""
        started = time.monotonic()
        log_file = self.log_dir / f"{name}-{int(time.time() * 1000)}.log"
        with open(log_file, "w") as out:
            proc = subprocess.run([sys.executable, "-m", "bench.runner", *args],
                                  env=env or self.env, cwd=ROOT, stdout=subprocess.PIPE,
                                  stderr=out, text=True, timeout=6 * 3600)
            out.write(proc.stdout)  # dag.test() logs its tasks to stdout
        wall = time.monotonic() - started
        result = _parse_result(proc.stdout)
        if result is None:
            tail = log_file.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{name} did not report a result (exit {proc.returncode}); "
                               f"log {log_file}: …{tail}")
        return result, wall

    def run_flow(self, sandboxes: Sandboxes, tenant: str, flow: str,
                 conf: dict[str, Any] | None = None, unpaced: bool = True) -> FlowRunResult:
        dag_id = f"{flow}__{tenant}"
        before = sandboxes.stats()
        batch_mark = sandboxes.batch_recorder.mark()
        result, wall = self._run_runner(
            dag_id, [dag_id, "--conf", json.dumps(conf or {})] + (["--unpaced"] if unpaced else []))
        after = sandboxes.stats()
        batches = summarize(sandboxes.batch_recorder.since(batch_mark))
        actions = self.state_store().action_counts(tenant=tenant, flow=flow,
                                                   run_id=result["run_id"])
        deltas = {side: stats_delta(before[side], after[side]) for side in before}
        return FlowRunResult(
            flow=flow, state=result["state"].rsplit(".", 1)[-1], wall_seconds=wall,
            records=sum(actions.values()), actions=actions,
            calls={side: d["total"] for side, d in deltas.items()},
            throttled={side: d["throttled"] for side, d in deltas.items()},
            peak_rss_mb=result["peak_rss_mb"],
            calls_by_route={side: d["by_route"] for side, d in deltas.items()},
            seconds_in_dag_test=result.get("seconds_in_dag_test"),
            seconds_in_tasks=result.get("seconds_in_tasks"),
            task_states=result.get("task_states") or {}, tasks_ran=result.get("tasks_ran") or [],
            batches=batches)

    def run_floor(self, tasks: int) -> dict[str, Any]:
        """Airflow's floor for ``tasks`` tasks (``bench.runner --floor``): the same kind
        of process and ``dag.test()`` as a flow run, with tasks that do nothing."""
        result, wall = self._run_runner(
            f"airflow-floor-{tasks}", ["--floor", str(tasks)],
            env={**self.env, "AIRFLOW__CORE__DAGS_FOLDER": str(FLOOR_DAGS),
                 "BENCH_FLOOR_TASKS": str(tasks)})
        return {"tasks": tasks, "state": result["state"].rsplit(".", 1)[-1],
                "wall_seconds": round(wall, 3),
                "seconds_in_dag_test": result.get("seconds_in_dag_test"),
                "seconds_in_tasks": result.get("seconds_in_tasks"),
                "task_instances_ran": len(result.get("tasks_ran") or [])}


def _parse_result(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX):])
    return None
