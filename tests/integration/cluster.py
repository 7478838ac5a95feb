"""A native Airflow 3 production topology for tests: CeleryExecutor on PostgreSQL + Redis.

The same shape as ``docker-compose.yaml``, as plain processes on this machine:

- PostgreSQL (``127.0.0.1:5432``, trust auth, user ``postgres``): a fresh Airflow metadata
  database and a fresh koppel state database per cluster, dropped on :meth:`stop`;
- Redis (``127.0.0.1:6379``) as the Celery broker, on a database number of its own
  (``KOPPEL_CLUSTER_REDIS_DB``, default 13), flushed before and after;
- ``airflow api-server``, ``airflow scheduler``, ``airflow dag-processor`` and two
  ``airflow celery worker`` processes (``-H w1``, ``-H w2``), sharing one JWT secret and
  the execution API URL of the api-server;
- the sandboxes as subprocesses (``python -m koppel.sandbox ...``): one QuickBooks Online
  emulator with a company (realm) per tenant, and one Lightspeed eCom shop per tenant.

Every process starts in a session (process group) of its own, so :meth:`stop` (and the
``finally`` of :meth:`NativeCluster.running`) ends each one with all its children: no
orphans, even when a test fails half-way.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
REDIS_DB = int(os.environ.get("KOPPEL_CLUSTER_REDIS_DB", "13"))
DEMO_TENANT = json.loads((ROOT / "include" / "mappings" / "demo.json").read_text())
FLOW_NAMES = ("orders", "products", "stock", "customers")
TERMINAL_RUN_STATES = {"success", "failed"}


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate: Callable[[], Any], timeout: float, what: str,
             interval: float = 0.5) -> Any:
    """Poll ``predicate`` until it returns something truthy; TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except (httpx.HTTPError, OSError) as exc:
            last_error = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}"
                       + (f" (last error: {last_error})" if last_error else ""))


# -- processes -------------------------------------------------------------------------------
@dataclass
class Service:
    name: str
    proc: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class ProcessGroup:
    """Processes started in sessions of their own and ended group by group."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.services: dict[str, Service] = {}

    def start(self, name: str, argv: list[str], env: dict[str, str],
              cwd: Path | None = None) -> Service:
        log = self.log_dir / f"{name}.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(argv, env=env, cwd=str(cwd or ROOT), stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        service = Service(name, proc, log)
        self.services[name] = service
        return service

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Signal a service's whole process group (the service and every child)."""
        service = self.services[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(service.pid, sig)
        if sig == signal.SIGKILL:
            with contextlib.suppress(subprocess.TimeoutExpired):
                service.proc.wait(timeout=10)

    def stop_all(self, grace: float = 15.0) -> None:
        """SIGTERM every group, wait up to ``grace`` seconds, then SIGKILL what is left
        (including children that outlived their parent: the group id stays theirs)."""
        for service in self.services.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(service.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for service in self.services.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                service.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        for service in self.services.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(service.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                service.proc.wait(timeout=5)

    def leftovers(self) -> list[int]:
        """Process ids still alive in any of the groups (should be none after stop_all)."""
        alive = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError, ProcessLookupError):
                pgid = os.getpgid(int(entry.name))
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z" and any(pgid == s.pid for s in self.services.values()):
                    alive.append(int(entry.name))
        return alive


def session_of(pid: int) -> int | None:
    """The session id of a process (a service's pid: every service leads its own)."""
    try:
        return os.getsid(pid)
    except (ProcessLookupError, PermissionError):
        return None


# -- PostgreSQL and Redis -----------------------------------------------------------------------
def pg_url(database: str, driver: str = "postgresql+psycopg2") -> str:
    return f"{driver}://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"


def _pg_admin(statements: list[str]) -> None:
    import psycopg2

    conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres")
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
    finally:
        conn.close()


def create_database(name: str) -> None:
    _pg_admin([f'CREATE DATABASE "{name}"'])


def drop_database(name: str) -> None:
    _pg_admin([
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' "
        "AND pid <> pg_backend_pid()",
        f'DROP DATABASE IF EXISTS "{name}"',
    ])


def flush_redis(db: int) -> None:
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db)
    try:
        client.flushdb()
    finally:
        client.close()


# -- tenants -------------------------------------------------------------------------------------
@dataclass
class TenantSpec:
    """A tenant of the cluster: its shop size and the flows enabled in its file."""

    tenant: str
    flows: tuple[str, ...] = FLOW_NAMES
    shop_seed: int = 3
    shop_sizes: dict[str, int] = field(default_factory=lambda: {
        "orders": 12, "products": 8, "customers": 8})
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class TenantRuntime:
    spec: TenantSpec
    shop_url: str
    realm: dict[str, Any]
    ls_credentials: dict[str, Any]

    @property
    def tenant(self) -> str:
        return self.spec.tenant

    @property
    def realm_id(self) -> str:
        return str(self.realm["realm_id"])

    def connections(self) -> dict[str, str]:
        """``AIRFLOW_CONN_*`` (JSON form) for the tenant's two connections."""
        ls, qb = self.ls_credentials, self.realm
        return {
            f"AIRFLOW_CONN_LS_{self.tenant.upper()}": json.dumps({
                "conn_type": "lightspeed_ecom", "host": ls["base_url"],
                "login": ls["api_key"], "password": ls["api_secret"],
                "extra": {"language": ls["language"]}}),
            f"AIRFLOW_CONN_QB_{self.tenant.upper()}": json.dumps({
                "conn_type": "quickbooks_online", "host": qb["api_base_url"],
                "login": qb["client_id"], "password": qb["client_secret"],
                "extra": {"realm_id": qb["realm_id"], "refresh_token": qb["refresh_token"],
                          "environment": qb["discovery_url"], "minor_version": 75}}),
        }

    def tenant_file(self) -> dict[str, Any]:
        doc = json.loads(json.dumps(DEMO_TENANT))
        doc.pop("$schema", None)
        doc["tenant"] = self.tenant
        doc["connections"] = {"lightspeed": f"ls_{self.tenant}",
                              "quickbooks": f"qb_{self.tenant}"}
        for name in sorted(set(doc["flows"]) | set(self.spec.flows)):
            flow = doc["flows"].setdefault(name, {})
            flow["enabled"] = name in self.spec.flows
            flow["schedule"] = None  # triggered by the test only
        doc["settings"].update({"retries": 2, "retry_delay_seconds": 1, **self.spec.settings})
        return doc


# -- the cluster ------------------------------------------------------------------------------------
class NativeCluster:
    """Start with :meth:`running` (a context manager that always cleans up)."""

    def __init__(self, workdir: Path, tenants: list[TenantSpec], workers: int = 2,
                 worker_concurrency: int = 2) -> None:
        self.workdir = workdir
        self.specs = tenants
        self.worker_names = [f"w{i + 1}" for i in range(workers)]
        self.worker_concurrency = worker_concurrency
        suffix = uuid.uuid4().hex[:10]
        self.meta_db = f"koppel_cluster_airflow_{suffix}"
        self.state_db = f"koppel_cluster_state_{suffix}"
        self.home = workdir / "airflow-home"
        self.mappings = workdir / "mappings"
        self.logs = workdir / "logs"
        for path in (self.home, self.mappings, self.logs):
            path.mkdir(parents=True, exist_ok=True)
        self.processes = ProcessGroup(self.logs)
        self.api_port = free_port()
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.qbo_url = ""
        self.tenants: dict[str, TenantRuntime] = {}
        self.timings: dict[str, float] = {}
        self._databases: list[str] = []
        self._env: dict[str, str] = {}
        self._api: httpx.Client | None = None

    # -- lifecycle ----------------------------------------------------------------------
    @classmethod
    @contextlib.contextmanager
    def running(cls, workdir: Path, tenants: list[TenantSpec], **kw: Any) -> Iterator["NativeCluster"]:
        cluster = cls(workdir, tenants, **kw)
        try:
            cluster.start()
            yield cluster
        finally:
            cluster.stop()

    def _timed(self, name: str, started: float) -> None:
        self.timings[name] = round(time.monotonic() - started, 1)

    def start(self) -> None:
        t0 = time.monotonic()
        flush_redis(REDIS_DB)
        for name in (self.meta_db, self.state_db):
            create_database(name)
            self._databases.append(name)
        self._timed("databases", t0)

        t = time.monotonic()
        self._start_sandboxes()
        self._timed("sandboxes", t)

        self._env = self._airflow_env()
        t = time.monotonic()
        self.airflow("db", "migrate", timeout=600)
        self._timed("db migrate", t)

        t = time.monotonic()
        self.koppel("pools", "--apply")
        self._timed("koppel pools --apply", t)

        t = time.monotonic()
        self.processes.start("api-server", [str(VENV_BIN / "airflow"), "api-server", "--port",
                                            str(self.api_port), "--host", "127.0.0.1",
                                            "--workers", "1"], self._env)
        self.processes.start("scheduler", [str(VENV_BIN / "airflow"), "scheduler"], self._env)
        self.processes.start("dag-processor", [str(VENV_BIN / "airflow"), "dag-processor"],
                             self._env)
        for name in self.worker_names:
            self.start_worker(name)
        wait_for(self._healthy, 180, "the api-server, scheduler and dag processor", 1.0)
        self._timed("airflow services up", t)

        t = time.monotonic()
        expected = set(self.dag_ids())
        wait_for(lambda: expected <= set(self._parsed_dag_ids()), 180,
                 f"the DAG processor to parse {sorted(expected)}", 1.0)
        self._timed("DAGs parsed", t)
        self._timed("cluster start (total)", t0)

    def start_worker(self, name: str) -> Service:
        env = dict(self._env)
        # each worker serves its task logs on a port of its own (they share a host)
        env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(free_port())
        # ...and records its own name as the task instances' hostname (cluster_hostname.py)
        env["KOPPEL_WORKER_NAME"] = name
        env["AIRFLOW__CORE__HOSTNAME_CALLABLE"] = "cluster_hostname.hostname"
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(Path(__file__).parent), env.get("PYTHONPATH", "")) if p)
        return self.processes.start(
            f"worker-{name}", [str(VENV_BIN / "airflow"), "celery", "worker", "--concurrency",
                               str(self.worker_concurrency), "-H", name, "--without-mingle",
                               "--without-gossip"], env)

    def stop(self) -> None:
        t = time.monotonic()
        if self._api is not None:
            self._api.close()
        try:
            self.processes.stop_all()
        finally:
            for name in self._databases:
                with contextlib.suppress(Exception):
                    drop_database(name)
            with contextlib.suppress(Exception):
                flush_redis(REDIS_DB)
            self._timed("cluster stop", t)

    # -- set-up pieces ----------------------------------------------------------------------
    def _sandbox_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AIRFLOW", "KOPPEL_"))}
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _start_sandbox(self, name: str, argv: list[str]) -> str:
        port = free_port()
        self.processes.start(name, [sys.executable, "-m", "koppel.sandbox", *argv,
                                    "--port", str(port)], self._sandbox_env())
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: httpx.get(f"{url}/_sandbox/stats", timeout=5).status_code == 200,
                 60, f"the {name} sandbox")
        return url

    def _start_sandboxes(self) -> None:
        self.qbo_url = self._start_sandbox("sandbox-quickbooks", ["quickbooks", "--seed", "5"])
        for spec in self.specs:
            sizes = [f"--{k}={v}" for k, v in spec.shop_sizes.items()]
            shop = self._start_sandbox(f"sandbox-lightspeed-{spec.tenant}",
                                       ["lightspeed", "--seed", str(spec.shop_seed), *sizes])
            realm = httpx.post(f"{self.qbo_url}/_sandbox/realms",
                               json={"region": "NL", "name": f"Books of {spec.tenant}"},
                               timeout=30).json()
            creds = httpx.get(f"{shop}/_sandbox/credentials", timeout=30).json()
            runtime = TenantRuntime(spec, shop, realm, creds)
            self.tenants[spec.tenant] = runtime
            (self.mappings / f"{spec.tenant}.json").write_text(
                json.dumps(runtime.tenant_file(), indent=2))

    def _airflow_env(self) -> dict[str, str]:
        from cryptography.fernet import Fernet

        env = self._sandbox_env()
        env.update({
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
            "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple."
                                           "simple_auth_manager.SimpleAuthManager",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__API_AUTH__JWT_SECRET": uuid.uuid4().hex + uuid.uuid4().hex,
            "AIRFLOW__API__BASE_URL": self.api_url,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": pg_url(self.meta_db),
            "AIRFLOW__CELERY__BROKER_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}",
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + pg_url(self.meta_db, "postgresql"),
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.logs / "tasks"),
            # a killed worker's task is noticed after 10 s instead of 5 min
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "10",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_SEC": "2",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
            "KOPPEL_MAPPINGS_DIR": str(self.mappings),
            # koppel's own state on PostgreSQL, as in production
            "AIRFLOW_CONN_KOPPEL_STATE": pg_url(self.state_db, "postgresql"),
            # python-quickbooks refuses plain http unless told; the sandboxes are loopback
            "OAUTHLIB_INSECURE_TRANSPORT": "1",
        })
        for runtime in self.tenants.values():
            env.update(runtime.connections())
        return env

    # -- commands -------------------------------------------------------------------------------
    def _run(self, name: str, argv: list[str], timeout: float) -> str:
        log = self.logs / f"{name}.log"
        with open(log, "ab") as out:
            proc = subprocess.run(argv, env=self._env, cwd=str(ROOT), stdout=out,
                                  stderr=subprocess.STDOUT, timeout=timeout,
                                  start_new_session=True)
        output = log.read_text(errors="replace")
        if proc.returncode:
            raise RuntimeError(f"{' '.join(argv[:3])} failed ({proc.returncode}):\n"
                               + "\n".join(output.splitlines()[-30:]))
        return output

    def airflow(self, *args: str, timeout: float = 300) -> str:
        return self._run("airflow-" + "-".join(args[:2]),
                         [str(VENV_BIN / "airflow"), *args], timeout)

    def koppel(self, *args: str, timeout: float = 300) -> str:
        return self._run("koppel-" + args[0], [str(VENV_BIN / "koppel"), *args], timeout)

    # -- REST API ---------------------------------------------------------------------------------
    @property
    def api(self) -> httpx.Client:
        if self._api is None:
            self._api = httpx.Client(base_url=f"{self.api_url}/api/v2", timeout=30)
        return self._api

    def _healthy(self) -> bool:
        for service in self.processes.services.values():
            if not service.alive():
                raise RuntimeError(f"{service.name} exited ({service.proc.returncode}):\n"
                                   f"{service.tail()}")
        health = httpx.get(f"{self.api_url}/api/v2/monitor/health", timeout=5).json()
        return all((health.get(part) or {}).get("status") == "healthy"
                   for part in ("metadatabase", "scheduler", "dag_processor"))

    def dag_ids(self) -> list[str]:
        return [f"{flow}__{spec.tenant}" for spec in self.specs for flow in spec.flows]

    def _parsed_dag_ids(self) -> list[str]:
        response = self.api.get("/dags", params={"limit": 1000})
        response.raise_for_status()
        return [dag["dag_id"] for dag in response.json()["dags"]]

    def import_errors(self) -> list[dict[str, Any]]:
        return self.api.get("/importErrors").json().get("import_errors", [])

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        """Unpause ``dag_id`` and start a run now; returns the run id."""
        self.api.patch(f"/dags/{dag_id}", json={"is_paused": False}).raise_for_status()
        response = self.api.post(f"/dags/{dag_id}/dagRuns",
                                 json={"logical_date": None, "conf": conf or {}})
        response.raise_for_status()
        return response.json()["dag_run_id"]

    def run_state(self, dag_id: str, run_id: str) -> str:
        response = self.api.get(f"/dags/{dag_id}/dagRuns/{run_id}")
        response.raise_for_status()
        return response.json()["state"]

    def wait_runs(self, runs: dict[str, str], timeout: float) -> dict[str, str]:
        """Wait until every ``{dag_id: run_id}`` is finished; returns their states."""
        states: dict[str, str] = {}

        def finished() -> bool:
            self._healthy_workers()
            for dag_id, run_id in runs.items():
                if states.get(dag_id) not in TERMINAL_RUN_STATES:
                    states[dag_id] = self.run_state(dag_id, run_id)
            return all(state in TERMINAL_RUN_STATES for state in states.values())

        try:
            wait_for(finished, timeout, f"{len(runs)} DAG runs", 1.0)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; states: {states}") from None
        return states

    def _healthy_workers(self) -> None:
        for name, service in self.processes.services.items():
            if name.startswith(("scheduler", "api-server", "sandbox")) and not service.alive():
                raise RuntimeError(f"{name} died:\n{service.tail()}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        response = self.api.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances",
                                params={"limit": 1000})
        response.raise_for_status()
        return response.json()["task_instances"]

    def tries(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> list[dict[str, Any]]:
        response = self.api.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"
                                f"/{map_index}/tries")
        response.raise_for_status()
        return response.json()["task_instances"]

    def worker_of(self, pid: int | None) -> str | None:
        """Which worker (``w1``…) a task process belongs to: it runs in the worker's session."""
        if not pid:
            return None
        sid = session_of(pid)
        for name in self.worker_names:
            service = self.processes.services.get(f"worker-{name}")
            if service is not None and sid == service.pid:
                return name
        return None

    # -- sandboxes ---------------------------------------------------------------------------------
    def qbo_entities(self, tenant: str, entity: str) -> list[dict[str, Any]]:
        realm = self.tenants[tenant].realm_id
        response = httpx.get(f"{self.qbo_url}/_sandbox/realms/{realm}/entities/{entity}",
                             timeout=30)
        response.raise_for_status()
        return response.json()[entity]

    def qbo_stats(self) -> dict[str, Any]:
        return httpx.get(f"{self.qbo_url}/_sandbox/stats", timeout=30).json()

    def shop_stats(self, tenant: str) -> dict[str, Any]:
        return httpx.get(f"{self.tenants[tenant].shop_url}/_sandbox/stats", timeout=30).json()

    def shop_api(self, tenant: str) -> httpx.Client:
        creds = self.tenants[tenant].ls_credentials
        return httpx.Client(base_url=f"{creds['base_url'].rstrip('/')}/{creds['language']}/",
                            auth=(creds["api_key"], creds["api_secret"]), timeout=30)

    def shop_list(self, tenant: str, resource: str) -> list[dict[str, Any]]:
        """Every ``resource`` (``orders``, ``variants``…) of the tenant's shop."""
        out, page = [], 1
        with self.shop_api(tenant) as api:
            while True:
                batch = api.get(f"{resource}.json", params={"page": page, "limit": 250}
                                ).json()[resource]
                out.extend(batch)
                if len(batch) < 250:
                    return out
                page += 1

    def add_qbo_fault(self, rule: dict[str, Any]) -> None:
        httpx.post(f"{self.qbo_url}/_sandbox/faults", json=rule, timeout=30).raise_for_status()

    def qbo_faults_fired(self) -> int:
        """How many requests the QuickBooks sandbox's fault rules have caught so far (a
        latency rule counts a request when it starts holding it)."""
        answer = httpx.get(f"{self.qbo_url}/_sandbox/faults", timeout=30)
        answer.raise_for_status()
        return sum(int(rule["fired"]) for rule in answer.json())

    def clear_qbo_faults(self) -> None:
        httpx.delete(f"{self.qbo_url}/_sandbox/faults", timeout=30).raise_for_status()

    def activity(self, tenant: str, flow: str) -> list[dict[str, Any]]:
        """The tenant's activity log for ``flow``, oldest first, from the state database."""
        from sqlalchemy import create_engine

        from koppel.store.state import StateStore

        engine = create_engine(pg_url(self.state_db))
        try:
            rows = StateStore(engine).activity(tenant=tenant, flow=flow, limit=100_000)
        finally:
            engine.dispose()
        return sorted(rows, key=lambda row: row["id"])
