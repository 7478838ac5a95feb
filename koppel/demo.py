"""``make demo``: both sandboxes, Airflow on SQLite, every flow of the demo tenant, and a
readable summary (also written to ``demo-summary.json``).

The sandboxes run in this process (threads) and keep their state in
``$AIRFLOW_HOME/sandboxes/`` between demo runs, so a second ``make demo`` continues
where the first stopped and shows what it skipped. Flows run through Airflow itself
(``airflow dags test``), with the demo tenant's connections given as ``AIRFLOW_CONN_*``
environment variables (JSON form). ``--standalone`` starts ``airflow standalone`` on the
same home instead, with the sandboxes running, for clicking around.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
TENANT = "demo"
LS_CONN, QB_CONN = "lightspeed_demo", "quickbooks_demo"
DEFAULT_PORTS = {"lightspeed": 8801, "quickbooks": 8802}


def airflow_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
        "KOPPEL_MAPPINGS_DIR": str(ROOT / "include" / "mappings"),
        "OAUTHLIB_INSECURE_TRANSPORT": "1",  # the sandboxes serve plain http on loopback
    })
    # `airflow standalone` starts its components as `airflow scheduler`, `airflow
    # api-server`, …: the venv's bin directory must be on PATH even when the venv is not
    # activated (make runs .venv/bin/python directly)
    bin_dir = str(Path(sys.executable).parent)
    path = env.get("PATH", "")
    if bin_dir not in path.split(os.pathsep):
        env["PATH"] = bin_dir + (os.pathsep + path if path else "")
    return env


#: what ``airflow_env`` sets, also written into the home's ``airflow.cfg``, so a second
#: shell with only ``AIRFLOW_HOME`` set (``airflow dags list``, ``airflow dags trigger``)
#: sees the same DAGs and plugins as ``make demo`` and ``make airflow``
PINNED_CONFIG = {
    "core": {"dags_folder": str(ROOT / "dags"), "plugins_folder": str(ROOT / "plugins"),
             "load_examples": "False", "test_connection": "Enabled"},
}


def pin_config(home: Path) -> None:
    """Set :data:`PINNED_CONFIG` in ``home/airflow.cfg`` (Airflow writes the file with its
    defaults on first use), line by line: the file's comments stay as they are."""
    import re

    cfg = home / "airflow.cfg"
    if not cfg.exists():
        return
    lines = cfg.read_text().splitlines()
    for section, values in PINNED_CONFIG.items():
        try:
            head = lines.index(f"[{section}]")
        except ValueError:
            lines += ["", f"[{section}]"]
            head = len(lines) - 1
        end = next((i for i in range(head + 1, len(lines)) if lines[i].startswith("[")),
                   len(lines))
        for key, value in values.items():
            pattern = re.compile(rf"^{re.escape(key)}\s*=")
            at = next((i for i in range(head + 1, end) if pattern.match(lines[i])), None)
            if at is None:
                lines.insert(head + 1, f"{key} = {value}")
                end += 1
            else:
                lines[at] = f"{key} = {value}"
    cfg.write_text("\n".join(lines) + "\n")


# -- sandboxes -----------------------------------------------------------------------------
class DemoSandboxes:
    """Both emulators on local ports, their state kept in ``home/sandboxes`` between runs."""

    def __init__(self, home: Path) -> None:
        self.dir = home / "sandboxes"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.servers: dict[str, Any] = {}
        self.apps: dict[str, Any] = {}
        self.restored: dict[str, bool] = {}

    def start(self) -> None:
        from koppel.sandbox import lightspeed, quickbooks
        from koppel.sandbox.persistence import restore_state
        from koppel.sandbox.server import SandboxServer, free_port

        for name, module in (("lightspeed", lightspeed), ("quickbooks", quickbooks)):
            port = _port_or_free(DEFAULT_PORTS[name], free_port)
            base_url = f"http://127.0.0.1:{port}"
            app = module.create_app(seed=1, base_url=base_url)
            snapshot = self.dir / f"{name}.pickle"
            self.restored[name] = False
            if snapshot.exists():
                try:
                    restore_state(app, snapshot.read_bytes())
                    self.restored[name] = True
                except Exception as exc:  # an older snapshot format: start afresh
                    print(f"  (could not restore the {name} sandbox state: {exc}; reseeded)")
            self.apps[name] = app
            self.servers[name] = SandboxServer(app, port=port).start()

    def save(self) -> None:
        from koppel.sandbox.persistence import snapshot_state

        for name, app in self.apps.items():
            tmp = self.dir / f"{name}.pickle.tmp"
            tmp.write_bytes(snapshot_state(app))
            tmp.replace(self.dir / f"{name}.pickle")

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()

    def url(self, name: str) -> str:
        return self.servers[name].url

    def stats(self, name: str) -> dict[str, Any]:
        return httpx.get(f"{self.url(name)}/_sandbox/stats", timeout=10).json()

    def connections(self) -> dict[str, str]:
        """``AIRFLOW_CONN_*`` variables (JSON form) for the demo tenant's connections."""
        ls = httpx.get(f"{self.url('lightspeed')}/_sandbox/credentials", timeout=10).json()
        qb = httpx.get(f"{self.url('quickbooks')}/_sandbox/credentials", timeout=10).json()
        return {
            f"AIRFLOW_CONN_{LS_CONN.upper()}": json.dumps({
                "conn_type": "lightspeed_ecom", "host": ls["base_url"],
                "login": ls["api_key"], "password": ls["api_secret"],
                "extra": {"language": ls["language"]}}),
            f"AIRFLOW_CONN_{QB_CONN.upper()}": json.dumps({
                "conn_type": "quickbooks_online", "host": qb["api_base_url"],
                "login": qb["client_id"],
                "password": qb["client_secret"],
                "extra": {"realm_id": qb["realm_id"], "refresh_token": qb["refresh_token"],
                          "environment": qb["discovery_url"], "minor_version": 75}}),
        }


def _port_or_free(port: int, free_port) -> int:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
            return port
        except OSError:
            return free_port()


# -- Airflow -------------------------------------------------------------------------------
def migrate(env: dict[str, str], log_dir: Path) -> float:
    started = time.monotonic()
    with open(log_dir / "db-migrate.log", "w") as out:
        subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env,
                       stdout=out, stderr=subprocess.STDOUT, check=True)
    return time.monotonic() - started


def run_flow(dag_id: str, env: dict[str, str], log_dir: Path) -> tuple[int, float, Path]:
    log_file = log_dir / f"{dag_id}.log"
    started = time.monotonic()
    with open(log_file, "w") as out:
        proc = subprocess.run([sys.executable, "-m", "airflow", "dags", "test", dag_id],
                              env=env, stdout=out, stderr=subprocess.STDOUT)
    return proc.returncode, time.monotonic() - started, log_file


def file_task_logs(env: dict[str, str], log_dir: Path, dag_ids: list[str]) -> None:
    """Each task's share of the ``dags test`` output where the Airflow UI reads task logs
    (:mod:`koppel.demo_logs`), for every flow run at once (one Airflow start-up)."""
    if not dag_ids:
        return
    with open(log_dir / "task-logs.log", "w") as out:
        proc = subprocess.run([sys.executable, "-m", "koppel.demo_logs",
                               *(f"{d}={log_dir / f'{d}.log'}" for d in dag_ids)],
                              env=env, stdout=out, stderr=subprocess.STDOUT)
    if proc.returncode:
        print(f"  (task logs not filed for the UI: see {log_dir / 'task-logs.log'})")


def flow_activity(env: dict[str, str], flow: str, since: dt.datetime) -> dict[str, Any]:
    """What the run did, read back from koppel's activity log."""
    os.environ["AIRFLOW_HOME"] = env["AIRFLOW_HOME"]
    from sqlalchemy import select

    from koppel.store.engine import get_engine
    from koppel.store.schema import activity, ensure_schema

    engine = get_engine()
    ensure_schema(engine)
    stmt = select(activity.c.action, activity.c.reason, activity.c.details).where(
        activity.c.tenant == TENANT, activity.c.flow == flow, activity.c.created_at >= since)
    counts: dict[str, int] = {}
    reasons: dict[str, int] = {}
    kinds: dict[str, int] = {}
    with engine.connect() as conn:
        for action, reason, details in conn.execute(stmt):
            counts[action] = counts.get(action, 0) + 1
            if action in ("failed", "waiting", "conflict", "skipped") and reason:
                key = f"{action}: {reason}"  # whole: the reason is the record's fix
                reasons[key] = reasons.get(key, 0) + 1
            details = details or {}
            if action in ("created", "conflict") and details.get("vat_treatment"):
                for kind in [f"VAT {details['vat_treatment']}", *details.get("kinds", [])]:
                    kinds[kind] = kinds.get(kind, 0) + 1
    return {"counts": counts, "kinds": dict(sorted(kinds.items(), key=lambda kv: -kv[1])),
            "top_reasons": dict(sorted(reasons.items(), key=lambda kv: -kv[1]))}


def _calls_delta(before: dict[str, Any], after: dict[str, Any]) -> int:
    return int(after.get("total", 0)) - int(before.get("total", 0))


# -- make airflow --------------------------------------------------------------------------
DEFAULT_API_PORT = 8080
#: seconds `airflow standalone` gets to stop its components after SIGTERM before they are
#: killed (its own shutdown waits for the scheduler, triggerer, DAG processor and API server)
STOP_GRACE_SECONDS = 20


def provision(env: dict[str, str], home: Path, log_dir: Path, migrate: bool = False) -> None:
    """What a triggered run needs in the metadata database: every tenant's pools (a task
    in a pool that does not exist is never scheduled) and the demo tenant's connections
    (visible under Admin → Connections, pointing at this start's sandbox ports).

    One Airflow process does both (:func:`_provision_db`), so start-up pays for one
    import of Airflow rather than one per command."""
    from koppel.cli import tenant_pools
    from koppel.tenants import load_tenants

    tenants = load_tenants(Path(env["KOPPEL_MAPPINGS_DIR"]))
    for problem in tenants.errors:
        print(f"  tenant file problem (no pools for it): {problem}")
    pools = tenant_pools([t.tenant for t in tenants.tenants])
    conns = {conn_id: json.loads(env[f"AIRFLOW_CONN_{conn_id.upper()}"])
             for conn_id in (LS_CONN, QB_CONN)}
    with tempfile.TemporaryDirectory(dir=home) as tmp:
        spec = Path(tmp) / "provision.json"
        fd = os.open(spec, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds secrets
        with os.fdopen(fd, "w") as handle:
            json.dump({"pools": pools, "connections": conns, "migrate": migrate}, handle)
        with open(log_dir / "provision.log", "w") as out:
            subprocess.run([sys.executable, "-c",
                            "import sys; from koppel.demo import _provision_db; "
                            "_provision_db(sys.argv[1])", str(spec)],
                           env=env, stdout=out, stderr=subprocess.STDOUT, check=True)
    print(f"  {len(pools)} pools of {len(tenants.tenants)} tenant(s) and the demo tenant's "
          "connections created (Admin → Pools, Admin → Connections)")


def _provision_db(spec_path: str) -> None:
    """Create or update the pools and connections of ``spec_path`` in Airflow's metadata
    database (runs in a process of its own, with the demo's ``AIRFLOW_HOME``)."""
    from airflow.models.connection import Connection
    from airflow.models.pool import Pool
    from airflow.utils.session import create_session

    spec = json.loads(Path(spec_path).read_text())
    if spec.get("migrate"):
        from airflow.utils.db import upgradedb

        upgradedb()  # what `airflow db migrate` does; a no-op on an up-to-date database
    with create_session() as session:
        for name, pool in spec["pools"].items():
            Pool.create_or_update_pool(name, slots=int(pool["slots"]),
                                       description=str(pool["description"]),
                                       include_deferred=bool(pool["include_deferred"]),
                                       session=session)
        for conn_id, raw in spec["connections"].items():
            wanted = Connection(conn_id=conn_id, conn_type=raw["conn_type"],
                                host=raw.get("host"), login=raw.get("login"),
                                password=raw.get("password"),
                                extra=json.dumps(raw.get("extra") or {}))
            existing = session.query(Connection).filter(Connection.conn_id == conn_id).one_or_none()
            if existing is not None:
                session.delete(existing)
                session.flush()
            session.add(wanted)
    print(f"pools: {', '.join(spec['pools'])}; connections: {', '.join(spec['connections'])}")


def standalone(env: dict[str, str], home: Path, log_dir: Path, port: int | None) -> int:
    """``airflow standalone`` on the demo's home until Ctrl-C (SIGINT) or SIGTERM.

    Standalone runs in a process group of its own; on Ctrl-C it is sent SIGTERM (what it
    handles: it stops each component) and, after :data:`STOP_GRACE_SECONDS`, its whole
    group is killed, so no component outlives ``make airflow``."""
    env = dict(env)
    if port is not None:
        env["AIRFLOW__API__PORT"] = str(port)
        env["AIRFLOW__API__BASE_URL"] = f"http://localhost:{port}"
    port = int(env.get("AIRFLOW__API__PORT") or DEFAULT_API_PORT)
    started = time.monotonic()
    provision(env, home, log_dir, migrate=True)
    pin_config(home)
    print(f"  Airflow metadata database ready on SQLite ({time.monotonic() - started:.1f}s)")
    print(f"  starting `airflow standalone` on http://localhost:{port} (Ctrl-C to stop); "
          f"login details are in {home / 'simple_auth_manager_passwords.json.generated'}",
          flush=True)
    proc = subprocess.Popen([sys.executable, "-m", "airflow", "standalone"], env=env,
                            start_new_session=True)
    stopping = {"signal": None}

    def on_signal(signum, _frame) -> None:
        stopping["signal"] = signum

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while proc.poll() is None and stopping["signal"] is None:
            time.sleep(0.2)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if proc.poll() is None:
            print("\n  stopping Airflow …", flush=True)
            stop_process_group(proc, STOP_GRACE_SECONDS)
    return 0 if stopping["signal"] is not None else (proc.returncode or 0)


def stop_process_group(proc: subprocess.Popen, grace: float) -> None:
    """SIGTERM to ``proc``, then SIGKILL to its process group once ``grace`` has passed
    (or at once when ``proc`` has exited but members of its group are left)."""
    try:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


# -- main ----------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m koppel.demo")
    parser.add_argument("--standalone", action="store_true",
                        help="start the Airflow UI (airflow standalone) instead of running flows")
    parser.add_argument("--port", type=int, default=None,
                        help="the Airflow API server / UI port with --standalone "
                             f"(default: [api] port, else {DEFAULT_API_PORT})")
    args = parser.parse_args(argv)

    from koppel.flows.registry import FLOWS, implemented_flows

    home = Path(os.environ.get("AIRFLOW_HOME", ROOT / ".airflow"))
    home.mkdir(parents=True, exist_ok=True)
    log_dir = home / "demo-logs"
    log_dir.mkdir(exist_ok=True)
    env = airflow_env(home)

    print(f"koppel demo — AIRFLOW_HOME={home}")
    sandboxes = DemoSandboxes(home)
    sandboxes.start()
    for name in ("lightspeed", "quickbooks"):
        state = "state restored from the previous demo run" if sandboxes.restored[name] \
            else "freshly seeded"
        print(f"  {name} sandbox on {sandboxes.url(name)} ({state})")
    env.update(sandboxes.connections())
    try:
        if args.standalone:
            return standalone(env, home, log_dir, args.port)
        took = migrate(env, log_dir)
        pin_config(home)
        print(f"  Airflow metadata database ready on SQLite ({took:.1f}s)")
        from koppel.flows.registry import load_tenant

        os.environ["KOPPEL_MAPPINGS_DIR"] = env["KOPPEL_MAPPINGS_DIR"]
        enabled = set(load_tenant(TENANT).enabled_flows())
        return _run_all(env, home, log_dir, sandboxes, demo_order(FLOWS),
                        [f for f in implemented_flows() if f in enabled])
    finally:
        sandboxes.save()
        sandboxes.stop()


#: the order a first sync wants: items and customers before the orders that use them,
#: refunds after their orders, stock once the items exist
RUN_ORDER = ("products", "customers", "orders", "refunds", "stock", "orders_reverse")


def demo_order(flows) -> list[str]:
    known = [f for f in RUN_ORDER if f in flows]
    return known + [f for f in flows if f not in known]


def _run_all(env, home, log_dir, sandboxes, flows, implemented) -> int:
    summary: dict[str, Any] = {"tenant": TENANT, "airflow_home": str(home),
                               "started_at": dt.datetime.now(dt.timezone.utc).isoformat(),
                               "flows": {}}
    failed = False
    print("\nflow           status            read  created updated skipped  failed  "
          "calls LS/QB")
    for flow in flows:
        if flow not in implemented:
            summary["flows"][flow] = {"status": "not enabled for the demo tenant"}
            print(f"{flow:<14} not enabled for the demo tenant (include/mappings/demo.json)")
            continue
        dag_id = f"{flow}__{TENANT}"
        since = dt.datetime.now(dt.timezone.utc)
        ls_before, qb_before = sandboxes.stats("lightspeed"), sandboxes.stats("quickbooks")
        rc, seconds, log_file = run_flow(dag_id, env, log_dir)
        ls_calls = _calls_delta(ls_before, sandboxes.stats("lightspeed"))
        qb_calls = _calls_delta(qb_before, sandboxes.stats("quickbooks"))
        result = flow_activity(env, flow, since)
        counts = result["counts"]
        status = "ok" if rc == 0 else f"FAILED (exit {rc})"
        failed |= rc != 0
        read = sum(counts.values())
        summary["flows"][flow] = {
            "status": status, "dag_id": dag_id, "seconds": round(seconds, 1),
            "records": read, "actions": counts, "top_reasons": result["top_reasons"],
            "kinds": result["kinds"],
            "api_calls": {"lightspeed": ls_calls, "quickbooks": qb_calls},
            "api_calls_per_record": {
                "lightspeed": round(ls_calls / read, 3) if read else None,
                "quickbooks": round(qb_calls / read, 3) if read else None},
            "log": str(log_file),
        }
        written = counts.get("created", 0) + counts.get("updated", 0)
        if flow == "orders" and written:
            summary["flows"][flow]["quickbooks_calls_per_booked_order"] = round(
                qb_calls / written, 3)
        other = ", ".join(f"{n} {a}" for a, n in sorted(counts.items())
                          if a not in ("created", "updated", "skipped", "failed"))
        print(f"{flow:<14} {status:<16} {read:>5} {counts.get('created', 0):>8} "
              f"{counts.get('updated', 0):>7} {counts.get('skipped', 0):>7} "
              f"{counts.get('failed', 0):>7}  {ls_calls:>5}/{qb_calls}"
              + (f"   also: {other}" if other else ""))
        for reason, n in result["top_reasons"].items():
            print(f"                 {n:>4} × {reason}")
        if result["kinds"]:
            print("                 booked: " + ", ".join(f"{n} {k}" for k, n in result["kinds"].items()))
        if flow == "orders" and read:
            per_booked = summary["flows"][flow].get("quickbooks_calls_per_booked_order")
            print(f"                 calls per order: Lightspeed {ls_calls / read:.2f} per "
                  f"order read (target ≤ 1.05), QuickBooks "
                  + (f"{per_booked:.2f} per order booked (target ≤ 0.25)"
                     if per_booked is not None else "— (nothing booked)"))
    summary["finished_at"] = dt.datetime.now(dt.timezone.utc).isoformat()
    (ROOT / "demo-summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    file_task_logs(env, log_dir, [f["dag_id"] for f in summary["flows"].values()
                                  if f.get("dag_id")])
    print(f"\nSummary written to {ROOT / 'demo-summary.json'}; task logs in {log_dir} "
          "and in the Airflow UI (`make airflow`).")
    print("Next: `make airflow` for the UI (DAGs orders__demo, …, the koppel dashboard), "
          "`make test` for the suite, include/mappings/demo.json for the tenant's mapping.")
    if any(sandboxes.restored.values()) and any(
            f.get("actions", {}).get("skipped") for f in summary["flows"].values()):
        print("Skipped records were already synced by an earlier run: nothing is booked twice.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
