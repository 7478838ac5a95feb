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
import subprocess
import sys
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
    return env


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
                key = f"{action}: {reason[:90]}"
                reasons[key] = reasons.get(key, 0) + 1
            details = details or {}
            if action in ("created", "conflict") and details.get("vat_treatment"):
                for kind in [f"VAT {details['vat_treatment']}", *details.get("kinds", [])]:
                    kinds[kind] = kinds.get(kind, 0) + 1
    return {"counts": counts, "kinds": dict(sorted(kinds.items(), key=lambda kv: -kv[1])),
            "top_reasons": dict(sorted(reasons.items(), key=lambda kv: -kv[1]))}


def _calls_delta(before: dict[str, Any], after: dict[str, Any]) -> int:
    return int(after.get("total", 0)) - int(before.get("total", 0))


# -- main ----------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m koppel.demo")
    parser.add_argument("--standalone", action="store_true",
                        help="start the Airflow UI (airflow standalone) instead of running flows")
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
        took = migrate(env, log_dir)
        print(f"  Airflow metadata database ready on SQLite ({took:.1f}s)")
        if args.standalone:
            print("  starting `airflow standalone` (Ctrl-C to stop); login details are in "
                  f"{home / 'simple_auth_manager_passwords.json.generated'}")
            subprocess.run([sys.executable, "-m", "airflow", "standalone"], env=env)
            return 0
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
    print(f"\nSummary written to {ROOT / 'demo-summary.json'}; task logs in {log_dir}.")
    print("Next: `make airflow` for the UI (DAGs orders__demo, …, the koppel dashboard), "
          "`make test` for the suite, include/mappings/demo.json for the tenant's mapping.")
    if any(sandboxes.restored.values()) and any(
            f.get("actions", {}).get("skipped") for f in summary["flows"].values()):
        print("Skipped records were already synced by an earlier run: nothing is booked twice.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
