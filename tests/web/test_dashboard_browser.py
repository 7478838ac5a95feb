"""The dashboard in a real Airflow 3 API server, driven by headless Chromium: log in through
Airflow's own login page, open koppel from the UI (plugin nav page) and directly, check the
figures against the seeded activity log, press retry, and save screenshots
(``test-artifacts/dashboard.png``; with ``KOPPEL_UPDATE_DOCS=1`` also ``docs/dashboard.png``
for the README)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from koppel.sandbox.server import free_port
from koppel.store.engine import get_engine
from koppel.store.state import StateStore

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
USER, PASSWORD = "admin", "koppel-browser-test"


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"api-server exited:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/api/v2/monitor/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"api-server not healthy in {timeout}s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def seeded_state(airflow_db, tmp_path_factory, activity_seeder):
    """A state database of its own (the suite's shared one stays untouched), seeded now."""
    path = tmp_path_factory.mktemp("dashboard-browser") / "koppel_state.db"
    url = f"sqlite:///{path}"
    seeded = activity_seeder(StateStore(get_engine(url)), dt.datetime.now(dt.timezone.utc))
    return url, seeded


@pytest.fixture(scope="module")
def api_server(seeded_state, airflow_home, tmp_path_factory):
    """``airflow api-server`` as a subprocess with SimpleAuthManager and a known password."""
    state_url, _ = seeded_state
    work = tmp_path_factory.mktemp("api-server")
    passwords = work / "passwords.json"
    passwords.write_text(json.dumps({USER: PASSWORD}))
    port = free_port()
    env = {**os.environ,
           "KOPPEL_STATE_DB_URL": state_url,
           "AIRFLOW__CORE__AUTH_MANAGER":
               "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
           "AIRFLOW__API__PORT": str(port)}
    log = work / "api-server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "airflow", "api-server", "--host",
                                 "127.0.0.1", "--port", str(port), "--workers", "1"],
                                env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc, log)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():  # `make test` installs it: missing is a failure
        pytest.fail(f"{CHROMIUM} missing (scripts/ensure-test-deps.sh installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _login(page, url: str) -> None:
    page.wait_for_url(re.compile(r".*/auth/login.*"))
    page.locator("input[name=username]").fill(USER)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("button[type=submit]").click()


def test_anonymous_is_refused_by_the_real_server(api_server):
    assert httpx.get(f"{api_server}/koppel/api/summary").status_code == 401
    page = httpx.get(f"{api_server}/koppel/", follow_redirects=False)
    assert page.status_code == 302 and "/auth/login" in page.headers["location"]


def test_dashboard_in_the_airflow_ui(api_server, browser, seeded_state, project_root):
    _, seeded = seeded_state
    context = browser.new_context(viewport={"width": 1440, "height": 1100})
    page = context.new_page()
    try:
        # Straight to the dashboard: Airflow's login page, then back to koppel.
        page.goto(f"{api_server}/koppel/")
        _login(page, api_server)
        page.wait_for_url(f"{api_server}/koppel/**")
        page.wait_for_selector("#flows")
        assert "signed in as" in page.inner_text("header")
        # the real Airflow answers the dashboard's DAG and run listings with the user's token
        assert page.locator("#airflow-error").count() == 0
        page.wait_for_selector("#flow-failures")
        for tenant, flow in {(r.tenant, r.flow) for r in seeded.runs}:
            row = page.locator(f'tr[data-tenant="{tenant}"][data-flow="{flow}"]')
            shown = {el.get_attribute("data-metric").removeprefix("total-"):
                     int(el.get_attribute("data-n"))
                     for el in row.locator('[data-metric^="total-"]').all()}
            assert shown == dict(seeded.totals(tenant, flow)), (tenant, flow)
            failures = int(row.locator('[data-metric="open-failures"]').get_attribute("data-n"))
            assert failures == len(seeded.failed.get((tenant, flow), {}))
        assert page.locator("#failures tr[data-source-id]").count() == sum(
            len(v) for v in seeded.failed.values())

        # Retry goes to Airflow's REST API with the user's token: the DAG is not deployed in
        # this bare server, so Airflow answers "not found" — not 401/403.
        page.locator('button.retry[data-tenant="acme"][data-flow="orders"]').click()
        status = page.locator('tr[data-tenant="acme"][data-flow="orders"] .retry-result')
        status.filter(has_text="Not triggered").wait_for()
        assert "orders__acme" in status.inner_text()

        # Record search: the path of order 104 (failed, then created as invoice 9004).
        page.locator('#search input[name=q]').fill("9004")
        page.locator('#search button[type=submit]').click()
        page.wait_for_selector('.record[data-source-id="104"]')
        actions = page.locator('.record[data-source-id="104"] li').evaluate_all(
            "els => els.map(e => e.dataset.action)")
        assert actions == ["failed", "created"]

        # The nav entry: the plugin page of the Airflow UI shows koppel in its iframe.
        page.goto(f"{api_server}/plugin/koppel")
        frame = page.frame_locator('iframe[title="koppel"]')
        frame.locator("#flows").wait_for(timeout=30_000)
        assert frame.locator('table.flows tr[data-tenant="bakkerij"]').count() == 2
        plugins = page.request.get(f"{api_server}/api/v2/plugins").json()["plugins"]
        (koppel,) = [p for p in plugins if p["name"] == "koppel"]
        assert koppel["external_views"][0]["url_route"] == "koppel"
        assert koppel["fastapi_apps"][0]["url_prefix"] == "/koppel"
        # Links to Airflow open in the UI itself (not inside the iframe).
        frame.locator('table.flows tr[data-tenant="acme"][data-flow="stock"] a.run-id').click()
        page.wait_for_url(re.compile(r".*/dags/stock__acme/runs/scheduled__.*"))
        page.go_back()
        frame = page.frame_locator('iframe[title="koppel"]')
        frame.locator("#flows").wait_for(timeout=30_000)
        targets = [project_root / "test-artifacts" / "dashboard.png"]
        if os.environ.get("KOPPEL_UPDATE_DOCS"):  # refresh the README's screenshot
            targets.append(project_root / "docs" / "dashboard.png")
        for target in targets:
            target.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(target), full_page=False)
            assert target.stat().st_size > 10_000
    finally:
        context.close()
