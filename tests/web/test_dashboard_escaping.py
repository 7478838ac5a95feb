"""Every HTML page of koppel's Airflow UI plugin escapes what it shows: tenant names,
failure reasons, SKUs, search queries, reconciliation differences, Airflow's own error
text and the doctor's findings carry ``<script>``, both quotes and ``&`` here, and each
page must show them as text (parsed back, they equal the data) without a single element
or attribute they could have injected. The JSON endpoints hand the same data back as it
is, unescaped."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from koppel.store.schema import activity
from koppel.store.state import ActivityEntry
from koppel.web.app import create_app

ROOT = Path(__file__).resolve().parents[2]

TENANT = "evil<script>alert(\"tenant\")</script>&'co"
SKU = "SKU-\"1\"<script>alert('sku')</script>&x"
REASON = "QBO 6000: <script>alert(\"reason\")</script> & 'quoted' \"twice\""
QUERY = "<script>alert(\"q\")</script>&'q'"
NUMBER = "ORD\"<b>7</b>&'"
DETAIL = "SalesReceipt <img src=x onerror=alert(1)> & \"gone\""
REFUSAL = "<script>alert('airflow')</script> & \"denied\""
FIELD = "settings.products.accounts.income"
ACCOUNT = "Omzet <script>alert(\"account\")</script> & 'webshop'"
PAYLOADS = (TENANT, SKU, REASON, QUERY, NUMBER, DETAIL, REFUSAL, ACCOUNT)


class Page(HTMLParser):
    """A page parsed back: its elements (tag, attributes) and its text, entities decoded,
    as a browser reads them."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.html = html
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.texts: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag

    def handle_data(self, data):
        self.texts.append(data)

    @property
    def text(self) -> str:
        return "".join(self.texts)

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        """Elements ``tag`` with these attributes (``data_tenant`` is ``data-tenant``,
        ``class_`` is ``class``; ``None`` is an attribute without a value)."""
        wanted = {k.rstrip("_").replace("_", "-"): v for k, v in attrs.items()}
        return [a for t, a in self.elements
                if t == tag and all(k in a and a[k] == v for k, v in wanted.items())]


def assert_escaped(html: str, *, scripts: int) -> Page:
    """No payload reached the page raw, and the only ``<script`` elements are the
    page's own; returns the page parsed back."""
    for payload in PAYLOADS:
        assert payload not in html
    assert "<img" not in html and "<b>7</b>" not in html
    page = Page(html)
    assert html.count("<script") == scripts
    assert len([1 for tag, _ in page.elements if tag == "script"]) == scripts
    return page


@pytest.fixture()
def hostile(state_store, now):
    """A tenant whose name, records, reasons and reconciliation carry markup."""
    store = state_store
    store.record_activity(
        tenant=TENANT, flow="stock", run_id="scheduled__2026-03-10T10:00:00+00:00",
        direction="quickbooks_to_lightspeed", task_id="load",
        entries=[ActivityEntry("item", SKU, "failed", reason=REASON, api_calls=2)])
    store.mark_failed(TENANT, "stock", SKU, REASON)
    store.record_activity(
        tenant=TENANT, flow="products", run_id="scheduled__2026-03-10T10:00:00+00:00",
        direction="lightspeed_to_quickbooks", task_id="load",
        entries=[ActivityEntry("product", "601", "created", "Item", "61",
                               details={"sku": SKU}, api_calls=1)])
    difference = {"day": "2026-03-09", "kind": "order", "source_id": SKU, "number": NUMBER,
                  "problem": "deleted_in_quickbooks", "shop_total": "60.50",
                  "books_total": "", "difference": "60.50", "entity": "SalesReceipt",
                  "doc_id": "9004", "detail": DETAIL}
    store.record_activity(
        tenant=TENANT, flow="reconcile", run_id="scheduled__r1",
        direction="lightspeed_to_quickbooks", task_id="reconcile",
        entries=[ActivityEntry("day", "2026-03-09", "conflict", reason="1 difference(s)",
                               details={"figures": {"orders": 1, "revenue_incl": "60.50",
                                                    "vat": {"21": "10.50"}},
                                        "differences": [difference]})])
    with store.engine.begin() as conn:
        conn.execute(update(activity).where(activity.c.tenant == TENANT)
                     .values(created_at=now - dt.timedelta(hours=1)))
    return store


@pytest.fixture()
def client(hostile, fake_airflow, now):
    # Airflow lists the tenant's DAGs, one run of which failed before handling a record
    fake_airflow.dags |= {f"stock__{TENANT}", f"products__{TENANT}", f"orders__{TENANT}"}
    fake_airflow.runs.append({
        "dag_id": f"orders__{TENANT}", "dag_run_id": "scheduled__2026-03-10T11:30:00+00:00",
        "state": "failed", "run_type": "scheduled", "run_after": "2026-03-10T11:30:00+00:00",
        "start_date": "2026-03-10T11:30:00+00:00", "end_date": "2026-03-10T11:31:00+00:00"})
    fake_airflow.refusal = REFUSAL  # what Airflow answers the viewer's token
    app = create_app(engine=hostile.engine, airflow_api_url=fake_airflow.url,
                     clock=lambda: now)
    with TestClient(app, base_url="http://airflow.test") as c:
        yield c


def _auth(token):
    return {"Authorization": f"Bearer {token}"}


def test_dashboard_escapes_every_section(client, tokens):
    client.cookies.set("_token", tokens["admin"])
    page = assert_escaped(client.get("/").text, scripts=1)
    # the tenant's rows, charts, failures and usage, attributes intact
    assert page.find("div", class_="tenant", data_tenant=TENANT)
    assert page.find("tr", data_tenant=TENANT, data_flow="stock")
    assert page.find("figure", data_tenant=TENANT, data_flow="stock")
    assert page.find("button", class_="retry", data_tenant=TENANT, data_flow="stock")
    assert len(page.find("tr", data_tenant=TENANT, data_flow="stock", data_source_id=SKU)) == 1
    assert page.find("a", href="?" + urlencode({"q": SKU}) + "#search")
    assert page.find("button", class_="skip", data_tenant=TENANT, data_record=SKU)
    assert page.find("tr", data_tenant=TENANT, data_api="quickbooks", data_window="minute")
    assert page.find("option", value=TENANT)
    assert REASON in page.text and f"Tenant {TENANT}" in page.text
    # Airflow UI links carry the tenant percent-encoded in the path
    dag = "/dags/stock__evil%3Cscript%3Ealert%28%22tenant%22%29%3C%2Fscript%3E%26%27co"
    assert page.find("a", href=dag, target="_top")
    # a run that failed as a whole, and the reconciliation's difference
    assert page.find("tr", data_tenant=TENANT, data_flow="orders",
                     data_run_id="scheduled__2026-03-10T11:30:00+00:00")
    assert page.find("tr", data_tenant=TENANT, data_day="2026-03-09", data_reconciled="false")
    assert page.find("tr", class_="difference", data_tenant=TENANT, data_source_id=SKU)
    assert f"order {NUMBER}: deleted in quickbooks" in page.text and DETAIL in page.text


def test_search_results_and_query_are_escaped(client, tokens):
    client.cookies.set("_token", tokens["admin"])
    page = assert_escaped(client.get("/", params={"q": SKU}).text, scripts=1)
    assert page.find("input", type="search", name="q", value=SKU)
    records = page.find("div", class_="record", data_tenant=TENANT)
    assert {r["data-source-id"] for r in records} == {SKU, "601"}  # by id and by SKU
    assert page.find("li", data_action="failed")
    assert REASON in page.text and f"read {SKU} → mapped" in page.text

    page = assert_escaped(client.get("/", params={"q": QUERY}).text, scripts=1)
    assert page.find("input", type="search", name="q", value=QUERY)
    assert page.find("p", id="no-record")
    assert f"No record with id, number, SKU or e-mail {QUERY}." in page.text


def test_tenant_filter_and_csv_links_are_escaped(client, tokens):
    client.cookies.set("_token", tokens["admin"])
    page = assert_escaped(client.get("/", params={"tenant": TENANT, "days": 7}).text,
                          scripts=1)
    assert page.find("option", value=TENANT, selected=None)
    assert page.find("input", type="hidden", name="tenant", value=TENANT)
    query = urlencode({"tenant": TENANT, "days": 7})
    assert page.find("a", href=f"api/reconciliation.csv?{query}&part=days")
    assert page.find("a", href=f"api/reconciliation.csv?{query}&part=differences")


def test_airflow_error_text_is_escaped(client, tokens):
    client.cookies.set("_token", tokens["viewer"])  # the fake Airflow refuses this token
    page = assert_escaped(client.get("/").text, scripts=1)
    assert page.find("p", id="airflow-error")
    assert f"Airflow refused the DAG list: {REFUSAL}: run states" in page.text


def test_json_endpoints_return_the_data_unescaped(client, tokens):
    headers = _auth(tokens["admin"])
    failures = client.get("/api/failures", params={"tenant": TENANT}, headers=headers).json()
    assert [(f["tenant"], f["source_id"], f["reason"]) for f in failures["failures"]] == [
        (TENANT, SKU, REASON)]
    summary = client.get("/api/summary", headers=headers).json()
    assert TENANT in summary["tenants"]
    assert {f["flow"] for f in summary["flows"] if f["tenant"] == TENANT} >= {"stock", "products"}
    records = client.get("/api/records", params={"q": SKU}, headers=headers).json()
    assert records["query"] == SKU
    assert sorted(r["source_id"] for r in records["records"]) == sorted([SKU, "601"])
    assert client.get("/api/records", params={"q": QUERY}, headers=headers).json() == {
        "query": QUERY, "records": []}
    days = client.get("/api/reconciliation", params={"tenant": TENANT},
                      headers=headers).json()["days"]
    assert [(d["number"], d["detail"]) for day in days for d in day["differences"]] == [
        (NUMBER, DETAIL)]
    refused = client.get("/api/summary", headers=_auth(tokens["viewer"])).json()
    assert refused["airflow_error"] == f"Airflow refused the DAG list: {REFUSAL}"
    # the CSV is data for a spreadsheet, not HTML: as it is too
    answer = client.get("/api/reconciliation.csv",
                        params={"tenant": TENANT, "part": "differences"}, headers=headers)
    assert answer.headers["content-type"].startswith("text/csv")
    assert [(r["tenant"], r["number"], r["detail"])
            for r in csv.DictReader(io.StringIO(answer.text))] == [(TENANT, NUMBER, DETAIL)]


# -- the doctor view -----------------------------------------------------------------------

class _Admin:
    def can_read(self, dag_id):
        return True


@pytest.fixture()
def doctor_client(tmp_path):
    from koppel.doctor import NOTE, OK, PROBLEM, Finding, Report
    from koppel.web.doctor_view import create_app as doctor_app

    mappings = tmp_path / "mappings"
    mappings.mkdir()
    shutil.copy(ROOT / "include" / "mappings" / "demo.json", mappings / "demo.json")
    data = json.loads((mappings / "demo.json").read_text())
    assert data["tenant"] == "demo"

    def run(tenant):
        # names as QuickBooks could hold them: the company's accounts are free text
        return Report(tenant=tenant.tenant, findings=[
            Finding(PROBLEM, "accounts", FIELD, f"QuickBooks has no account named {ACCOUNT!r}",
                    choices=(ACCOUNT, "Sales & <Services>")),
            Finding(NOTE, "items", f"{FIELD} <{SKU}>", REASON),
            Finding(OK, "connections", "connections.lightspeed", "reachable")])

    async def resolve(_request):
        return _Admin()

    app = doctor_app(mappings_dir=str(mappings), run_doctor=run, resolve_viewer=resolve)
    return TestClient(app)


def test_doctor_pages_escape_findings(doctor_client):
    index = assert_escaped(doctor_client.get("/").text, scripts=0)
    assert index.find("a", href="/?tenant=demo")

    page = assert_escaped(doctor_client.get("/", params={"tenant": "demo"}).text, scripts=0)
    assert page.find("tr", class_="problem") and page.find("tr", class_="note")
    assert f"QuickBooks has no account named {ACCOUNT!r}" in page.text
    assert f"choose from: {ACCOUNT}, Sales & <Services>" in page.text
    assert f"{FIELD} <{SKU}>" in page.text and REASON in page.text
    assert "1 problem(s), 1 note(s), 1 check(s) passed" in page.text
    assert "<Services>" not in page.html

    report = doctor_client.get("/api/report", params={"tenant": "demo"}).json()
    assert [(f["field"], f["message"], f["choices"]) for f in report["findings"]][:2] == [
        (FIELD, f"QuickBooks has no account named {ACCOUNT!r}", [ACCOUNT, "Sales & <Services>"]),
        (f"{FIELD} <{SKU}>", REASON, [])]
