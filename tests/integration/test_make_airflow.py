"""``make airflow`` (``python -m koppel.demo --standalone``) on a fresh home: it finds its
own tools without the venv on PATH, starts the API server on the port it is given,
creates every tenant's pools and the demo tenant's connections, and stops — every
Airflow component with it — on Ctrl-C (SIGINT) within a bounded time."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from standalone import free_port, processes_of, standalone_env

from koppel.cli import tenant_pools
from koppel.tenants import load_tenants

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 240  # seconds until the API server answers (migrate and provisioning included;
# about 40 s on an idle 2-CPU machine, several times that while other suites run)
STOP_TIMEOUT = 30  # seconds from SIGINT until every process of the group is gone


def test_make_airflow_starts_provisions_and_stops_on_ctrl_c(tmp_path):
    home = tmp_path / "airflow"
    port = free_port()
    log = open(tmp_path / "standalone.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "koppel.demo", "--standalone",
                             "--port", str(port)], cwd=ROOT, env=standalone_env(home),
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/api/v2/monitor/health",
                                   timeout=2).status_code
                if status == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        output = (tmp_path / "standalone.log").read_text()
        assert status == 200, f"the API server did not answer on {port}:\n{output[-4000:]}"
        assert "FileNotFoundError" not in output

        with sqlite3.connect(home / "airflow.db") as db:
            pools = {name: slots for name, slots in
                     db.execute("SELECT pool, slots FROM slot_pool WHERE pool LIKE 'koppel_%'")}
            conns = {conn_id: conn_type for conn_id, conn_type in
                     db.execute("SELECT conn_id, conn_type FROM connection")}
        tenants = [t.tenant for t in load_tenants(ROOT / "include" / "mappings").tenants]
        expected = {name: pool["slots"] for name, pool in tenant_pools(tenants).items()}
        assert pools == expected
        assert pools["koppel_demo_lightspeed"] == 3 and pools["koppel_demo_quickbooks"] == 4
        assert conns == {"lightspeed_demo": "lightspeed_ecom",
                         "quickbooks_demo": "quickbooks_online"}
        stopped_at = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=STOP_TIMEOUT)
        while processes_of(home) and time.monotonic() - stopped_at < STOP_TIMEOUT:
            time.sleep(0.2)
        took = time.monotonic() - stopped_at
        assert proc.returncode == 0
        assert processes_of(home) == [], "an Airflow component outlived Ctrl-C"
        assert took < STOP_TIMEOUT
        assert "stopping Airflow" in (tmp_path / "standalone.log").read_text()
    finally:
        for pid in processes_of(home):  # only what this test started (its own home)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if proc.poll() is None:
            proc.wait(timeout=10)
        log.close()

