"""The README's operator path on ``make airflow``, walked in headless Chromium (issue 21).

``python -m koppel.demo --standalone`` (what ``make airflow`` runs) starts on a fresh home;
then, as an operator does it in the UI:

1. log in with the generated password of Airflow's simple auth manager;
2. open ``orders__demo`` and trigger it from the trigger form with a Param set (Full
   resync on; the form unpauses the DAG, so the scheduler's own run of the last interval
   runs too) — the runs are followed through Airflow's REST API until they succeed;
3. open the koppel dashboard: the flow's last run and its state, the two orders that
   failed in the "Failed records waiting for a retry" section, with their reason;
4. skip one of them with a reason through its button, fix the cause in QuickBooks, retry
   the other through the flow's retry button — the activity log then holds the skip with
   its reason and the retried order booked, and QuickBooks holds its sales receipt;
5. press the Test button of both connections (Admin → Connections) and read the success
   message.

The two failures are what a real company produces: a QuickBooks user gave a second item
(the sample company's "Services") the SKU of an existing one (the "T-shirt", TS-001), so
the shop's orders for that SKU cannot be booked — koppel refuses to guess between two
items. The fix is the one a bookkeeper makes in QuickBooks: give "Services" its own SKU.
Both are done through QuickBooks' own API on the sandbox, with a token of its own from
the sandbox's control plane (``/_sandbox/credentials``)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import httpx
import pytest
from standalone import free_port, processes_of, standalone_env

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 300  # seconds until the API server answers (migrate and provisioning included)
RUN_TIMEOUT = 420  # seconds for the runs of orders__demo to finish (2 CPUs shared with others)
STOP_TIMEOUT = 30  # seconds from SIGINT until every process of the home is gone
UI_TIMEOUT = 60_000  # milliseconds for a page element (the API server is slow under load)
DAG_ID = "orders__demo"
TENANT, FLOW = "demo", "orders"
DUPLICATE_SKU = "TS-001"  # the sandbox company's "T-shirt" item
FIXED_SKU = "SRV-001"
SKIP_REASON = "customer cancelled by phone; booked by hand"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
ARTIFACTS = ROOT / "test-artifacts"


def _log_tail(log: Path, chars: int = 4000) -> str:
    """The end of the demo's output for an assertion message, without the generated
    password that the simple auth manager prints."""
    text = log.read_text(errors="replace") if log.exists() else ""
    return "\n".join(line for line in text[-chars:].splitlines()
                     if "password" not in line.lower())


def _wait_for(check: Callable[[], Any], timeout: float, what: str,
              interval: float = 2.0) -> Any:
    """``check()``'s first truthy answer within ``timeout`` seconds (HTTP errors of a busy
    server count as "not yet")."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            answer = check()
            if answer:
                return answer
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


class AirflowREST:
    """Airflow's REST API with a token of the logged-in user (simple auth manager)."""

    def __init__(self, url: str, user: str, password: str) -> None:
        self.url = url
        answer = httpx.post(f"{url}/auth/token", json={"username": user, "password": password},
                            timeout=60)
        assert answer.status_code in (200, 201), f"no API token: HTTP {answer.status_code}"
        self.headers = {"Authorization": f"Bearer {answer.json()['access_token']}"}

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.url}/api/v2/dags/{dag_id}/dagRuns",
                           params={"limit": 100}, headers=self.headers, timeout=60)
        answer.raise_for_status()
        return answer.json()["dag_runs"]

    def wait_run(self, dag_id: str, run_id: str, timeout: float = RUN_TIMEOUT) -> dict:
        """The run once it has finished; fails at once when it failed."""
        def finished():
            run = next((r for r in self.runs(dag_id) if r["dag_run_id"] == run_id), None)
            return run if run is not None and run["state"] in ("success", "failed") else None

        run = _wait_for(finished, timeout, f"run {run_id} of {dag_id} to finish")
        assert run["state"] == "success", f"run {run_id} of {dag_id} ended {run['state']}"
        return run

    def wait_idle(self, dag_id: str, timeout: float = RUN_TIMEOUT,
                  scheduled_within: float = 0) -> list[dict[str, Any]]:
        """Every run of ``dag_id`` once none is queued or running. ``scheduled_within``:
        first give the scheduler that long to create the run of the last interval of a
        DAG just unpaused (it may do so only after the manual run has finished)."""
        # (no interval may have ended since the start date: then there is none to wait for)
        deadline = time.monotonic() + scheduled_within
        while time.monotonic() < deadline \
                and not any(r["run_type"] == "scheduled" for r in self.runs(dag_id)):
            time.sleep(2)

        def idle():
            runs = self.runs(dag_id)
            return runs if all(r["state"] in ("success", "failed") for r in runs) else None

        return _wait_for(idle, timeout, f"every run of {dag_id} to finish")


class QuickBooksAPI:
    """The QuickBooks Online API of the sandbox, as a QuickBooks user's app reaches it:
    its own refresh token from the control plane, exchanged at Intuit's token endpoint."""

    def __init__(self, sandbox_url: str) -> None:
        creds = httpx.get(f"{sandbox_url}/_sandbox/credentials", timeout=30).json()
        token = httpx.post(f"{sandbox_url}/oauth2/v1/tokens/bearer",
                           data={"grant_type": "refresh_token",
                                 "refresh_token": creds["refresh_token"]},
                           auth=(creds["client_id"], creds["client_secret"]), timeout=30)
        assert token.status_code == 200, f"QuickBooks sandbox token: HTTP {token.status_code}"
        self.base = f"{creds['api_base_url']}/company/{creds['realm_id']}"
        self.headers = {"Authorization": f"Bearer {token.json()['access_token']}",
                        "Accept": "application/json"}

    def query(self, entity: str, where: str) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.base}/query", headers=self.headers, timeout=30,
                           params={"query": f"select * from {entity} where {where}",
                                   "minorversion": 75})
        assert answer.status_code == 200, f"query {entity} where {where}: {answer.text[:500]}"
        return answer.json()["QueryResponse"].get(entity, [])

    def get(self, entity: str, obj_id: str) -> dict[str, Any]:
        answer = httpx.get(f"{self.base}/{entity.lower()}/{obj_id}", headers=self.headers,
                           params={"minorversion": 75}, timeout=30)
        assert answer.status_code == 200, f"{entity} {obj_id}: {answer.text[:500]}"
        return answer.json()[entity]

    def set_item_sku(self, name: str, sku: str) -> dict[str, Any]:
        """What a bookkeeper does on the item's page: a sparse update of its SKU."""
        (item,) = self.query("Item", f"Name = '{name}'")
        answer = httpx.post(f"{self.base}/item", headers=self.headers, timeout=30,
                            params={"minorversion": 75},
                            json={"Id": item["Id"], "SyncToken": item["SyncToken"],
                                  "sparse": True, "Sku": sku})
        assert answer.status_code == 200, f"item {name!r} SKU {sku}: {answer.text[:500]}"
        return answer.json()["Item"]


@dataclass
class Stack:
    url: str
    user: str
    password: str
    lightspeed: str  # sandbox base URLs, as the demo printed them
    quickbooks: str
    rest: AirflowREST


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Stack:
    work = tmp_path_factory.mktemp("operator-path")
    home = work / "airflow"
    port = free_port()
    log_path = work / "make-airflow.log"
    log = open(log_path, "w")
    proc = subprocess.Popen([sys.executable, "-m", "koppel.demo", "--standalone",
                             "--port", str(port)], cwd=ROOT, env=standalone_env(home),
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        def healthy():
            if proc.poll() is not None:
                raise AssertionError(f"make airflow exited with {proc.returncode}:\n"
                                     f"{_log_tail(log_path)}")
            return httpx.get(f"{url}/api/v2/monitor/health", timeout=5).status_code == 200

        try:
            _wait_for(healthy, START_TIMEOUT, f"the API server on port {port}", interval=1)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{_log_tail(log_path)}") from None
        output = log_path.read_text()
        sandboxes = dict(re.findall(r"(lightspeed|quickbooks) sandbox on (http://\S+)", output))
        assert set(sandboxes) == {"lightspeed", "quickbooks"}, _log_tail(log_path)
        passwords = home / "simple_auth_manager_passwords.json.generated"
        _wait_for(passwords.exists, 60, f"{passwords}", interval=0.5)
        ((user, password),) = json.loads(passwords.read_text()).items()
        # the DAG processor has parsed the tenant's DAGs before anyone opens them
        rest = AirflowREST(url, user, password)
        _wait_for(lambda: httpx.get(f"{url}/api/v2/dags/{DAG_ID}", headers=rest.headers,
                                    timeout=30).status_code == 200,
                  120, f"{DAG_ID} to be parsed")
        yield Stack(url=url, user=user, password=password,
                    lightspeed=sandboxes["lightspeed"], quickbooks=sandboxes["quickbooks"],
                    rest=rest)
    finally:
        stopped_at = time.monotonic()
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # Ctrl-C, as an operator stops make airflow
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        while processes_of(home) and time.monotonic() - stopped_at < STOP_TIMEOUT:
            time.sleep(0.2)
        for pid in processes_of(home):  # only what this module started (its own home)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        log.close()


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


@pytest.fixture
def page(browser, stack, request):
    """A logged-in page: Airflow's own login form with the generated password. The page as
    the test left it is saved in ``test-artifacts/operator-path-<test>.png``."""
    context = browser.new_context(viewport={"width": 1440, "height": 1100})
    context.set_default_timeout(UI_TIMEOUT)
    page = context.new_page()
    try:
        page.goto(f"{stack.url}/dags/{DAG_ID}")
        page.wait_for_url(re.compile(r".*/auth/login.*"))
        page.locator("input[name=username]").fill(stack.user)
        page.locator("input[name=password]").fill(stack.password)
        page.locator("button[type=submit]").click()
        page.wait_for_url(re.compile(rf".*/dags/{DAG_ID}.*"))
        yield page
        ARTIFACTS.mkdir(exist_ok=True)
        name = re.sub(r"[^\w.-]+", "-", request.node.name)
        page.screenshot(path=str(ARTIFACTS / f"operator-path-{name}.png"), full_page=True)
    finally:
        context.close()



# -- the path ------------------------------------------------------------------------------
def _stage_two_unbookable_orders(stack: Stack) -> tuple[str, str]:
    """A QuickBooks user gives "Services" the T-shirt's SKU; the shop then takes two paid
    orders for that SKU. Returns their Lightspeed ids."""
    qbo = QuickBooksAPI(stack.quickbooks)
    qbo.set_item_sku("Services", DUPLICATE_SKU)
    assert len(qbo.query("Item", f"Sku = '{DUPLICATE_SKU}'")) == 2
    line = {"sku": DUPLICATE_SKU, "title": "T-shirt", "price_incl": "24.20",
            "tax_rate": "0.21", "quantity": 1}
    answer = httpx.post(f"{stack.lightspeed}/_sandbox/orders", timeout=30, json={"orders": [
        {"lines": [line], "status": "processing_awaiting_shipment", "payment_method": "ideal",
         "payment_status": "paid"} for _ in range(2)]})
    assert answer.status_code == 201, answer.text[:500]
    first, second = (str(order["id"]) for order in answer.json()["orders"])
    return first, second


def _trigger_from_the_form(page, stack: Stack) -> dict[str, Any]:
    """The DAG page's Trigger dialog with Full resync switched on; the run Airflow made."""
    page.get_by_role("button", name="Trigger Dag").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Run Parameters").wait_for()
    unpause = dialog.get_by_text(f"Unpause {DAG_ID} on trigger")
    assert unpause.is_visible(), "a fresh home's DAG is paused: the form offers to unpause it"
    dialog.locator("label:has(input[name=element_full_resync])").click()
    assert dialog.locator("input[name=element_full_resync]").is_checked()
    assert not dialog.locator("input[name=element_dry_run]").is_checked()
    with page.expect_response(lambda r: r.url.endswith(f"/api/v2/dags/{DAG_ID}/dagRuns")
                              and r.request.method == "POST") as posted:
        dialog.get_by_role("button", name="Trigger", exact=True).click()
    assert posted.value.status == 200, posted.value.text()[:500]
    run = posted.value.json()
    assert run["run_type"] == "manual" and run["triggering_user_name"] == stack.user
    assert run["conf"]["full_resync"] is True and run["conf"]["dry_run"] is False
    return run


def _record_path(page, stack: Stack, source_id: str) -> dict[str, Any]:
    """The record's path from the dashboard's search API (koppel's activity log), with the
    browser's Airflow session."""
    answer = page.request.get(f"{stack.url}/koppel/api/records",
                              params={"q": source_id, "tenant": TENANT})
    assert answer.status == 200, answer.text()[:500]
    (record,) = [r for r in answer.json()["records"]
                 if r["source_id"] == source_id and FLOW in r["flows"]]
    return record


def test_trigger_dashboard_skip_and_retry_in_the_ui(stack, page):
    skipped_id, retried_id = _stage_two_unbookable_orders(stack)

    # -- trigger orders__demo with a Param from the form; every run succeeds --------------
    run = _trigger_from_the_form(page, stack)
    finished = stack.rest.wait_run(DAG_ID, run["dag_run_id"])
    assert finished["conf"]["full_resync"] is True and finished["triggered_by"] == "ui"
    runs = stack.rest.wait_idle(DAG_ID, scheduled_within=60)
    assert {r["state"] for r in runs} == {"success"}, [(r["dag_run_id"], r["state"]) for r in runs]
    latest = max(runs, key=lambda r: r["end_date"])

    # -- the dashboard shows the flow's last run and the two failed orders -----------------
    page.goto(f"{stack.url}/koppel/")
    page.wait_for_selector("#flows")
    assert page.locator("#airflow-error").count() == 0
    row = page.locator(f'table.flows tr[data-tenant="{TENANT}"][data-flow="{FLOW}"]')
    assert row.locator("a.run-id").inner_text().strip() == latest["dag_run_id"]
    assert "success" in row.inner_text()
    failures = page.locator("#failures")
    for source_id in (skipped_id, retried_id):
        failure = failures.locator(f'tr[data-tenant="{TENANT}"][data-flow="{FLOW}"]'
                                   f'[data-source-id="{source_id}"]')
        reason = failure.locator(".reason").inner_text()
        assert f"SKU '{DUPLICATE_SKU}' matches 2 QuickBooks items" in reason, reason
        # the triggered run read it (full resync) and logged the failure
        steps = _record_path(page, stack, source_id)["steps"]
        assert any(s["run_id"] == run["dag_run_id"] and s["action"] == "failed"
                   for s in steps), steps

    # -- skip one with a reason (the page asks for it) -------------------------------------
    page.once("dialog", lambda dialog: dialog.accept(SKIP_REASON))
    failures.locator(f'tr[data-source-id="{skipped_id}"] button.skip').click()
    failures.locator(f'tr[data-source-id="{skipped_id}"] .skip-result').filter(
        has_text=f"Skipped: {SKIP_REASON}").wait_for()

    # -- fix the cause in QuickBooks, then retry the other through the flow's button -------
    QuickBooksAPI(stack.quickbooks).set_item_sku("Services", FIXED_SKU)
    page.reload()
    page.wait_for_selector("#failures")
    assert failures.locator(f'tr[data-source-id="{skipped_id}"]').count() == 0
    assert failures.locator(f'tr[data-source-id="{retried_id}"]').count() == 1
    retry = page.locator(f'button.retry[data-tenant="{TENANT}"][data-flow="{FLOW}"]')
    assert retry.inner_text().strip() == "Retry 1 failed"
    retry.click()
    result = page.locator(f'table.flows tr[data-tenant="{TENANT}"][data-flow="{FLOW}"] '
                          ".retry-result")
    result.filter(has_text=re.compile(r"^Run \S+ \w+ for 1 record\(s\)")).wait_for()
    retry_run_id = re.match(r"^Run (\S+) ", result.inner_text()).group(1)
    retried_run = stack.rest.wait_run(DAG_ID, retry_run_id)
    assert retried_run["conf"]["records"] == [retried_id]

    # -- the activity log: one skipped with its reason, the other booked -------------------
    # (a run that read the skipped order again — the retry run's, or a scheduler's run
    # under way while it was skipped — ends it skipped with the same reason, unbooked)
    skipped = _record_path(page, stack, skipped_id)
    after_skip = skipped["steps"][[s["action"] for s in skipped["steps"]].index("skipped"):]
    assert {(s["action"], s["reason"]) for s in after_skip} \
        == {("skipped", f"skipped by {stack.user}: {SKIP_REASON}")}, skipped["steps"]
    assert skipped["xrefs"] == []
    booked = _record_path(page, stack, retried_id)
    created = [s for s in booked["steps"] if s["action"] == "created"]
    # booked once: by the retry run (or, when a quarter of an hour ended after the fix, by
    # the scheduler's run of that interval, which re-reads failed records; the retry run
    # then finds it booked)
    scheduled = {r["dag_run_id"] for r in stack.rest.runs(DAG_ID) if r["run_type"] == "scheduled"}
    assert len(created) == 1 and created[0]["run_id"] in {retry_run_id} | scheduled, \
        booked["steps"]
    assert created[0]["target_type"] == "SalesReceipt" and created[0]["target_id"]
    assert [x["target_id"] for x in booked["xrefs"] if x["target_type"] == "SalesReceipt"] \
        == [created[0]["target_id"]]
    open_failures = page.request.get(f"{stack.url}/koppel/api/failures",
                                     params={"tenant": TENANT, "flow": FLOW}).json()["failures"]
    assert {f["source_id"] for f in open_failures} & {skipped_id, retried_id} == set()
    # …and QuickBooks holds the receipt, its row on the T-shirt item
    qbo = QuickBooksAPI(stack.quickbooks)
    (tshirt,) = qbo.query("Item", f"Sku = '{DUPLICATE_SKU}'")
    receipt = qbo.get("SalesReceipt", created[0]["target_id"])
    items = [line["SalesItemLineDetail"]["ItemRef"]["value"] for line in receipt["Line"]
             if line.get("DetailType") == "SalesItemLineDetail"]
    assert tshirt["Id"] in items, receipt["Line"]

    # the page after the retry: neither order waits any more
    page.reload()
    page.wait_for_selector("#failures")
    for source_id in (skipped_id, retried_id):
        assert failures.locator(f'tr[data-source-id="{source_id}"]').count() == 0


@pytest.mark.parametrize("conn_id, says", [
    ("lightspeed_demo", re.compile(r"^Lightspeed shop '.+' .*reachable at http://127\.0\.0\.1:\d+;"
                                   r" API key and secret accepted")),
    ("quickbooks_demo", re.compile(r"^QuickBooks company '.+' \(realm \d+\) reachable")),
], ids=["lightspeed_ecom", "quickbooks_online"])
def test_connection_test_button_succeeds(stack, page, conn_id, says):
    page.goto(f"{stack.url}/connections")
    row = page.locator("tr", has_text=conn_id)
    row.wait_for()
    with page.expect_response(lambda r: r.url.endswith("/api/v2/connections/test")) as tested:
        row.get_by_role("button", name="Test Connection").click()
    answer = tested.value.json()
    assert tested.value.status == 200 and answer["status"] is True, answer
    assert says.search(answer["message"]), answer["message"]
    toast = page.locator('[data-scope="toast"][data-part="root"]').filter(
        has_text="Test Connection Successful")
    toast.filter(has_text=answer["message"][:60]).wait_for()
