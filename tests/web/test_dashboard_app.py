"""The dashboard app through FastAPI's TestClient: Airflow's own JWTs (minted by the
configured auth manager) against anonymous callers, the figures against the seeded
activity log, record search, and the retry POST against a fake Airflow REST API served
over real HTTP."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from html import unescape

import pytest
from fastapi.testclient import TestClient

from koppel.web.app import create_app
from koppel.web.auth import CSRF_HEADER, csrf_token


@pytest.fixture()
def client(state_store, seeded, fake_airflow, now):
    app = create_app(engine=state_store.engine, airflow_api_url=fake_airflow.url,
                     clock=lambda: now)
    with TestClient(app, base_url="http://airflow.test") as c:
        yield c


def _auth(token):
    return {"Authorization": f"Bearer {token}"}


# -- authentication -------------------------------------------------------------------------

def test_anonymous_requests_are_refused(client):
    assert client.get("/api/summary").status_code == 401
    assert client.get("/api/records", params={"q": "101"}).status_code == 401
    assert client.post("/api/retry", json={"tenant": "acme", "flow": "orders"}).status_code == 401
    page = client.get("/", follow_redirects=False)
    assert page.status_code == 302
    assert page.headers["location"].startswith("/auth/login")
    assert "next=" in page.headers["location"]


def test_forged_or_garbage_tokens_are_refused(client, tokens):
    header, payload, _sig = tokens["admin"].split(".")
    forged = f"{header}.{payload}.{'A' * 43}"
    for token in (forged, "not-a-jwt"):
        assert client.get("/api/summary", headers=_auth(token)).status_code == 401
        client.cookies.set("_token", token)
        assert client.get("/", follow_redirects=False).status_code == 302
        client.cookies.clear()


def test_logged_in_user_sees_the_page_with_cookie_or_bearer(client, tokens):
    client.cookies.set("_token", tokens["admin"])
    page = client.get("/")
    assert page.status_code == 200
    assert "signed in as <b>admin1</b>" in page.text
    client.cookies.clear()
    assert client.get("/api/summary", headers=_auth(tokens["viewer"])).json()["user"] == "viewer1"


# -- figures against the activity log -------------------------------------------------------

def test_summary_counts_equal_the_activity_log(client, tokens, seeded, now):
    data = client.get("/api/summary", headers=_auth(tokens["admin"])).json()
    flows = {(f["tenant"], f["flow"]): f for f in data["flows"]}
    # every flow with activity, and every koppel DAG Airflow lists (a new tenant too)
    assert set(flows) == {(r.tenant, r.flow) for r in seeded.runs} | {
        ("nieuw", "orders"), ("nieuw", "customers")}
    assert data["tenants"] == ["acme", "bakkerij", "nieuw"]
    for (tenant, flow), f in flows.items():
        if tenant == "nieuw":
            continue
        assert f["dag_id"] == f"{flow}__{tenant}"
        assert f["totals"] == dict(seeded.totals(tenant, flow))
        last = seeded.last_run(tenant, flow)
        assert f["last_run"]["run_id"] == last.run_id
        assert f["last_run"]["counts"] == dict(Counter(e.action for _, e in last.entries))
        assert f["last_run"]["api_calls"] == sum(e.api_calls for _, e in last.entries)
        assert f["open_failures"] == len(seeded.failed.get((tenant, flow), {}))
        # records are counted once each; events are what happened to them
        assert f["records"] == len({e.source_id for r in seeded.runs
                                    if (r.tenant, r.flow) == (tenant, flow) for _, e in r.entries})
        assert f["events"] == sum(seeded.totals(tenant, flow).values())
        days = {d["day"]: d["counts"] for d in f["daily"]}
        assert len(days) == 14 and max(days) == now.date().isoformat()
        for day, counts in seeded.daily(tenant, flow).items():
            assert days[day] == dict(counts)
        assert sum(sum(c.values()) for c in days.values()) == sum(f["totals"].values())


def test_last_run_state_comes_from_airflow_with_the_users_token(client, tokens):
    data = client.get("/api/summary", headers=_auth(tokens["admin"])).json()
    states = {(f["tenant"], f["flow"]): f["airflow_state"] for f in data["flows"]}
    assert states[("acme", "orders")] == "failed"  # manual__ run known to the fake Airflow
    assert states[("bakkerij", "products")] is None  # unknown run: no state, no error
    # Another user's token is refused by (fake) Airflow: the page still renders, stateless.
    data = client.get("/api/summary", headers=_auth(tokens["viewer"])).json()
    assert all(f["airflow_state"] is None for f in data["flows"])


def test_failures_list_reasons_and_task_log_links(client, tokens, seeded):
    data = client.get("/api/failures", headers=_auth(tokens["admin"])).json()["failures"]
    got = {(f["tenant"], f["flow"], f["source_id"]): f for f in data}
    expected = {(t, fl, sid): reason for (t, fl), ids in seeded.failed.items()
                for sid, reason in ids.items()}
    assert {k: f["reason"] for k, f in got.items()} == expected
    order = got[("acme", "orders", "110")]
    assert (order["run_id"], order["task_id"], order["map_index"]) == (
        "manual__2026-03-10T11:10:00+00:00", "enrich", 1)
    client.cookies.set("_token", tokens["admin"])
    html = client.get("/").text
    assert ('href="/dags/orders__acme/runs/manual__2026-03-10T11%3A10%3A00%2B00%3A00'
            '/tasks/enrich/mapped/1"') in html
    assert "variant 555 not found in Lightspeed" in html
    assert 'href="/dags/products__bakkerij/runs/scheduled__2026-03-06T12%3A00%3A00%2B00%3A00/tasks/load"' in html


def test_page_shows_the_same_counts(client, tokens, seeded):
    client.cookies.set("_token", tokens["admin"])
    html = client.get("/").text
    for run in {(r.tenant, r.flow) for r in seeded.runs}:
        tenant, flow = run
        row = re.search(rf'<tr data-tenant="{tenant}" data-flow="{flow}">(.*?)</tr>', html, re.S)
        assert row, run
        cells = row.group(1)
        shown = {m[0]: int(m[1]) for m in re.findall(r'data-metric="total-(\w+)" data-n="(\d+)"', cells)}
        assert shown == dict(seeded.totals(tenant, flow))
        last = {m[0]: int(m[1]) for m in re.findall(r'data-metric="last-(\w+)" data-n="(\d+)"', cells)}
        assert sum(last.values()) == len(seeded.last_run(tenant, flow).entries)
    # The chart draws every seeded record once: one bar segment per (day, action).
    bars = re.findall(r'<figure data-tenant="acme" data-flow="orders">(.*?)</figure>', html, re.S)[0]
    drawn = sum(int(n) for n in re.findall(r'data-n="(\d+)"', bars))
    assert drawn == sum(seeded.totals("acme", "orders").values())


def test_tenant_filter_narrows_the_page(client, tokens):
    data = client.get("/api/summary", params={"tenant": "bakkerij"},
                      headers=_auth(tokens["admin"])).json()
    assert {f["tenant"] for f in data["flows"]} == {"bakkerij"}
    assert list(data["api_usage"]) == ["bakkerij"]


def test_api_usage_against_the_limits(client, tokens, seeded, now):
    data = client.get("/api/summary", headers=_auth(tokens["admin"])).json()["api_usage"]
    acme = {(w["api"], w["window"]): w for w in data["acme"]}
    assert {k: w["limit"] for k, w in acme.items()} == {
        ("lightspeed", "5 min"): 300, ("lightspeed", "hour"): 3000,
        ("lightspeed", "day"): 12000, ("quickbooks", "minute"): 500}
    for (api, _), w in acme.items():
        since = now - dt.timedelta(seconds=w["seconds"])
        assert w["current"] == seeded.calls("acme", api, since)
    # The manual run 50 minutes ago: enrich's calls count against Lightspeed, the rest QBO.
    assert acme[("lightspeed", "hour")]["current"] == 3
    assert acme[("lightspeed", "day")]["current"] == 3 + 2  # + stock's load (reverse flow)
    assert acme[("quickbooks", "minute")]["current"] == 0
    assert acme[("quickbooks", "minute")]["peak"] == 2 + 2 + 3 + 0  # one chunk, one instant
    bakkerij = {(w["api"], w["window"]): w for w in data["bakkerij"]}
    assert bakkerij[("quickbooks", "minute")]["current"] == 0  # two minutes ago
    assert bakkerij[("quickbooks", "minute")]["peak"] == 2


# -- record search --------------------------------------------------------------------------

def test_record_search_by_source_id_shows_its_path(client, tokens):
    data = client.get("/api/records", params={"q": "104"}, headers=_auth(tokens["admin"])).json()
    (rec,) = data["records"]
    assert (rec["tenant"], rec["source_type"], rec["source_id"]) == ("acme", "order", "104")
    assert [s["action"] for s in rec["steps"]] == ["failed", "created"]
    assert rec["steps"][0]["reason"].startswith("QBO 6000")
    assert rec["steps"][1]["target_id"] == "9004"
    assert rec["steps"][0]["at"] < rec["steps"][1]["at"]


def test_record_search_by_target_id_finds_the_source(client, tokens):
    data = client.get("/api/records", params={"q": "7006"}, headers=_auth(tokens["admin"])).json()
    (rec,) = data["records"]
    assert rec["source_id"] == "106"
    assert rec["xrefs"] == [{"target_type": "RefundReceipt", "target_id": "7006",
                             "state": "active", "updated": rec["xrefs"][0]["updated"]}]
    assert [s["action"] for s in rec["steps"]] == ["refunded"]
    client.cookies.set("_token", tokens["admin"])
    html = client.get("/", params={"q": "7006"}).text
    section = html[html.index('id="search"'):]
    assert 'data-source-id="106"' in section and "refunded" in section
    assert "No record" in client.get("/", params={"q": "nope"}).text


# -- retry ----------------------------------------------------------------------------------

def test_retry_triggers_the_flow_dag_with_the_failed_records(client, tokens, fake_airflow):
    headers = {**_auth(tokens["admin"]), CSRF_HEADER: csrf_token(tokens["admin"]),
               "Origin": "http://airflow.test"}
    response = client.post("/api/retry", json={"tenant": "acme", "flow": "orders"},
                           headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["dag_run_id"] == "manual__1" and body["is_paused"] is True
    assert fake_airflow.triggered == [{"dag_id": "orders__acme",
                                       "body": {"logical_date": None,
                                                "conf": {"records": ["110"]}}}]
    # Only open failures are retried.
    response = client.post("/api/retry", json={"tenant": "acme", "flow": "orders",
                                               "records": ["101"]}, headers=headers)
    assert response.status_code == 400
    assert len(fake_airflow.triggered) == 1


def test_retry_is_csrf_safe(client, tokens, fake_airflow):
    token = tokens["admin"]
    client.cookies.set("_token", token)
    body = {"tenant": "bakkerij", "flow": "products"}
    assert client.post("/api/retry", json=body).status_code == 403  # no CSRF header
    assert client.post("/api/retry", json=body,
                       headers={CSRF_HEADER: csrf_token(token),
                                "Origin": "https://evil.example"}).status_code == 403
    assert client.post("/api/retry", json=body,
                       headers={CSRF_HEADER: csrf_token("other")}).status_code == 403
    assert fake_airflow.triggered == []
    page = client.get("/").text
    meta = re.search(r'<meta name="koppel-csrf" content="([0-9a-f]+)">', page).group(1)
    response = client.post("/api/retry", json=body,
                           headers={CSRF_HEADER: unescape(meta), "Origin": "http://airflow.test"})
    assert response.status_code == 200
    assert fake_airflow.triggered[0]["body"]["conf"] == {"records": ["503"]}


def test_airflow_refusing_the_user_is_passed_on(client, tokens, fake_airflow):
    token = tokens["viewer"]  # the fake Airflow accepts only the admin's token
    response = client.post("/api/retry", json={"tenant": "acme", "flow": "orders"},
                           headers={**_auth(token), CSRF_HEADER: csrf_token(token)})
    assert response.status_code == 403
    assert response.json()["detail"] == "Forbidden"
    assert fake_airflow.triggered == []


def test_viewer_gets_no_retry_button(client, tokens):
    client.cookies.set("_token", tokens["viewer"])
    assert 'class="retry"' not in client.get("/").text
    client.cookies.set("_token", tokens["admin"])
    assert 'class="retry" data-tenant="acme" data-flow="orders"' in client.get("/").text


def test_static_assets_are_served(client):
    assert "X-Koppel-CSRF" in client.get("/static/dashboard.js").text
    assert client.get("/static/dashboard.css").headers["content-type"].startswith("text/css")
    assert client.get("/static/secrets.txt").status_code == 404


# -- what only Airflow knows: new tenants, runs that failed as a whole ----------------------

def test_new_tenants_and_runs_that_failed_as_a_whole(client, tokens, fake_airflow, now):
    data = client.get("/api/summary", headers=_auth(tokens["admin"])).json()
    flows = {(f["tenant"], f["flow"]): f for f in data["flows"]}
    new = flows[("nieuw", "orders")]
    assert new["last_run"] is None and new["records"] == 0
    assert new["latest_airflow_run"]["run_id"] == "scheduled__2026-03-10T11:45:00+00:00"
    assert flows[("nieuw", "customers")]["is_paused"] is True
    # the acme run failed too, but it handled records: it is a record failure, not this
    assert [(r["dag_id"], r["run_id"]) for r in data["flow_failures"]] == [
        ("orders__nieuw", "scheduled__2026-03-10T11:45:00+00:00")]
    assert data["airflow_error"] is None
    # one listing of the window for every DAG, not a request per run
    (listed,) = fake_airflow.listed
    assert sorted(listed["dag_ids"]) == sorted(fake_airflow.dags)
    assert listed["run_after_gte"] == (now - dt.timedelta(days=14)).isoformat()
    client.cookies.set("_token", tokens["admin"])
    html = client.get("/").text
    section = html[html.index('id="flow-failures"'):html.index('id="failures"')]
    assert 'data-run-id="scheduled__2026-03-10T11:45:00+00:00"' in section
    assert "orders__acme" not in section
    row = re.search(r'<tr data-tenant="nieuw" data-flow="orders">(.*?)</tr>', html, re.S).group(1)
    assert "no record handled yet" in row and 'state-failed' in row
    row = re.search(r'<tr data-tenant="nieuw" data-flow="customers">(.*?)</tr>', html, re.S).group(1)
    assert "no run yet" in row and "DAG paused" in row


def test_airflow_refusing_the_lists_is_said_on_the_page(client, tokens):
    client.cookies.set("_token", tokens["viewer"])  # the fake Airflow refuses this token
    html = client.get("/").text
    assert 'id="airflow-error"' in html and "Airflow refused the DAG list: Forbidden" in html
    data = client.get("/api/summary", headers=_auth(tokens["viewer"])).json()
    assert data["airflow_error"] == "Airflow refused the DAG list: Forbidden"
    assert data["flow_failures"] == []
    assert "nieuw" not in data["tenants"]  # only what the activity log knows


# -- search by business keys -----------------------------------------------------------------

def test_search_by_document_number_sku_and_email(client, tokens, state_store):
    from koppel.domain.emails import email_hash
    from koppel.store.state import ActivityEntry

    state_store.record_activity(
        tenant="acme", flow="orders", run_id="scheduled__x", direction="lightspeed_to_quickbooks",
        task_id="load", entries=[ActivityEntry("order", "120", "created", "Invoice", "9120",
                                               details={"doc_number": "WEB-1042"})])
    state_store.record_activity(
        tenant="bakkerij", flow="products", run_id="scheduled__x",
        direction="lightspeed_to_quickbooks", task_id="load",
        entries=[ActivityEntry("product", "504", "created", "Item", "44",
                               details={"sku": "BROOD-WIT-800"})])
    state_store.record_activity(
        tenant="bakkerij", flow="customers", run_id="scheduled__x",
        direction="lightspeed_to_quickbooks", task_id="customer_upsert",
        entries=[ActivityEntry("customer", "7003", "created", "Customer", "60",
                               details={"email_hash": email_hash("Jan@Example.nl")})])
    found = {}
    for q in ("WEB-1042", "BROOD-WIT-800", "  jan@example.NL ", "WEB-104", "BROOD"):
        data = client.get("/api/records", params={"q": q}, headers=_auth(tokens["admin"])).json()
        found[q.strip()] = [(r["tenant"], r["source_id"]) for r in data["records"]]
    assert found == {"WEB-1042": [("acme", "120")], "BROOD-WIT-800": [("bakkerij", "504")],
                     "jan@example.NL": [("bakkerij", "7003")],
                     "WEB-104": [], "BROOD": []}  # whole keys only
    # the tenant filter applies to business keys too
    data = client.get("/api/records", params={"q": "WEB-1042", "tenant": "bakkerij"},
                      headers=_auth(tokens["admin"])).json()
    assert data["records"] == []


# -- skip ------------------------------------------------------------------------------------

def test_skip_takes_a_failed_record_off_the_retry_list_with_its_reason(client, tokens, seeded,
                                                                       fake_airflow):
    token = tokens["admin"]
    headers = {**_auth(token), CSRF_HEADER: csrf_token(token), "Origin": "http://airflow.test"}
    body = {"tenant": "acme", "flow": "orders", "records": ["110"],
            "reason": "order cancelled by phone"}
    before = client.get("/api/summary", headers=_auth(token)).json()
    assert client.post("/api/skip", json=body, headers=_auth(token)).status_code == 403  # CSRF
    assert client.post("/api/skip", json={**body, "reason": ""}, headers=headers).status_code == 422
    response = client.post("/api/skip", json=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"dag_id": "orders__acme", "records": ["110"],
                               "reason": "order cancelled by phone"}
    failures = client.get("/api/failures", headers=_auth(token)).json()["failures"]
    assert ("acme", "orders", "110") not in {(f["tenant"], f["flow"], f["source_id"])
                                             for f in failures}
    (rec,) = client.get("/api/records", params={"q": "110"}, headers=_auth(token)).json()["records"]
    assert [(s["action"], s["reason"]) for s in rec["steps"]][-1] == (
        "skipped", "skipped by admin1: order cancelled by phone")
    assert rec["steps"][-1]["details"] == {"skipped_by": "admin1", "manual": True}
    # a skip is part of the record's path, not the flow's last run
    after = client.get("/api/summary", headers=_auth(token)).json()
    last = {(f["tenant"], f["flow"]): f["last_run"] for f in after["flows"]}
    assert last[("acme", "orders")]["run_id"] == \
        {(f["tenant"], f["flow"]): f["last_run"] for f in before["flows"]}[("acme", "orders")]["run_id"]
    # only open failures; nothing was triggered
    again = client.post("/api/skip", json=body, headers=headers)
    assert again.status_code == 400 and again.json()["detail"] == "No failed records to skip"
    assert fake_airflow.triggered == []


def test_viewer_cannot_skip(client, tokens):
    token = tokens["viewer"]
    headers = {**_auth(token), CSRF_HEADER: csrf_token(token), "Origin": "http://airflow.test"}
    response = client.post("/api/skip", json={"tenant": "acme", "flow": "orders",
                                              "records": ["110"], "reason": "not mine"},
                           headers=headers)
    assert response.status_code == 403
    assert response.json()["detail"] == "Not allowed to run orders__acme"
    client.cookies.set("_token", token)
    assert 'class="skip"' not in client.get("/").text
    client.cookies.set("_token", tokens["admin"])
    assert 'class="skip" data-tenant="acme" data-flow="orders" data-record="110"' in \
        client.get("/").text


# -- preview ---------------------------------------------------------------------------------

def test_preview_is_a_dry_run_of_one_record_and_shows_what_it_would_send(
        client, tokens, fake_airflow, state_store):
    from koppel.store.state import ActivityEntry

    token = tokens["admin"]
    headers = {**_auth(token), CSRF_HEADER: csrf_token(token), "Origin": "http://airflow.test"}
    body = {"tenant": "acme", "flow": "orders", "record": "110"}
    assert client.post("/api/preview", json=body, headers=_auth(token)).status_code == 403  # CSRF
    response = client.post("/api/preview", json=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["dag_run_id"] == "manual__1"
    assert fake_airflow.triggered == [{"dag_id": "orders__acme", "body": {
        "logical_date": None, "conf": {"records": ["110"], "dry_run": True}}}]
    params = {"tenant": "acme", "flow": "orders", "record": "110"}
    missing = client.get("/api/preview", params=params, headers=_auth(token))
    assert missing.status_code == 404 and "No preview of 110 yet" in missing.json()["detail"]

    # the dry run's load step keeps what it would have sent
    would = {"DocNumber": "1042", "Line": [{"Amount": 10.0}], "CustomerRef": {"value": "7"}}
    entry = ActivityEntry("order", "110", "skipped", reason="dry run: would create SalesReceipt",
                          preview={"target_type": "SalesReceipt", "operation": "create",
                                   "payload": would})
    assert state_store.save_previews("acme", "orders", "manual__1", [entry]) == 1
    got = client.get("/api/preview", params=params, headers=_auth(token)).json()
    assert (got["run_id"], got["target_type"], got["operation"], got["payload"]) == (
        "manual__1", "SalesReceipt", "create", would)

    # the request body holds the document's contents: only for who may run the flow
    viewer = client.get("/api/preview", params=params, headers=_auth(tokens["viewer"]))
    assert viewer.status_code == 403
    client.cookies.set("_token", token)
    assert 'class="preview" data-tenant="acme" data-flow="orders" data-record="110"' in \
        client.get("/").text


# -- reconciliation --------------------------------------------------------------------------

def _seed_reconciliation(store, now):
    from sqlalchemy import update

    from koppel.store.schema import activity
    from koppel.store.state import ActivityEntry

    def figures(day, orders, incl, vat, refunds="0.00", differences=0):
        return {"day": day, "orders": orders, "refunds": 1 if refunds != "0.00" else 0,
                "revenue_excl": "0.00", "revenue_incl": incl, "vat": vat,
                "shipping_incl": "0.00", "fees_incl": "0.00", "refunds_incl": refunds,
                "refunds_vat": "0.00", "books_sales": incl, "books_refunds": refunds,
                "differences": differences, "reconciled": differences == 0}

    difference = {"day": "2026-03-08", "kind": "order", "source_id": "104", "number": "ORD104",
                  "problem": "deleted_in_quickbooks", "shop_total": "60.50", "books_total": "",
                  "difference": "60.50", "entity": "SalesReceipt", "doc_id": "9004",
                  "detail": "SalesReceipt 9004 booked by koppel is no longer in QuickBooks"}
    store.record_activity(tenant="acme", flow="reconcile", run_id="scheduled__r1",
                          direction="lightspeed_to_quickbooks", task_id="reconcile", entries=[
        ActivityEntry("day", "2026-03-08", "conflict", reason="1 difference(s)",
                      details={"figures": figures("2026-03-08", 3, "181.50", {"21": "31.50"}, "12.10", 1),
                               "differences": [difference]}),
        ActivityEntry("day", "2026-03-09", "reconciled",
                      details={"figures": figures("2026-03-09", 1, "109.00", {"9": "9.00"}),
                               "differences": []}),
    ])
    with store.engine.begin() as conn:
        conn.execute(update(activity).where(activity.c.flow == "reconcile")
                     .values(created_at=now - dt.timedelta(hours=5)))


def test_reconciliation_view_and_csv(client, tokens, state_store, now):
    _seed_reconciliation(state_store, now)
    token = tokens["admin"]
    data = client.get("/api/reconciliation", headers=_auth(token)).json()
    assert [(d["tenant"], d["day"], d["reconciled"], len(d["differences"])) for d in data["days"]] == [
        ("acme", "2026-03-09", True, 0), ("acme", "2026-03-08", False, 1)]
    assert data["first_day"] == "2026-02-25" and data["last_day"] == "2026-03-10"
    days = client.get("/api/reconciliation.csv", headers=_auth(token)).text.splitlines()
    assert days[0] == ("tenant,day,orders,revenue_excl,revenue_incl,vat_21,vat_9,shipping_incl,"
                       "fees_incl,refunds,refunds_incl,refunds_vat,books_sales,books_refunds,"
                       "differences,reconciled")
    assert days[1:] == ["acme,2026-03-09,1,0.00,109.00,0.00,9.00,0.00,0.00,0,0.00,0.00,109.00,0.00,0,True",
                        "acme,2026-03-08,3,0.00,181.50,31.50,0.00,0.00,0.00,1,12.10,0.00,181.50,12.10,1,False"]
    diffs = client.get("/api/reconciliation.csv", params={"part": "differences"},
                       headers=_auth(token))
    assert diffs.headers["content-disposition"] == (
        'attachment; filename="koppel-reconciliation-all-2026-02-25-2026-03-10-differences.csv"')
    assert diffs.text.splitlines() == [
        "tenant,day,kind,source_id,number,problem,shop_total,books_total,difference,entity,doc_id,detail",
        "acme,2026-03-08,order,104,ORD104,deleted_in_quickbooks,60.50,,60.50,SalesReceipt,9004,"
        "SalesReceipt 9004 booked by koppel is no longer in QuickBooks"]
    client.cookies.set("_token", token)
    html = client.get("/").text
    section = html[html.index('id="reconciliation"'):html.index('id="flows"')]
    assert 'data-day="2026-03-08" data-reconciled="false"' in section
    assert "deleted in quickbooks — shop 60.50, books — (difference 60.50)" in section
    assert 'data-day="2026-03-09" data-reconciled="true"' in section
    # another tenant's days are not shown to someone who filters them out; bad ranges refused
    assert client.get("/api/reconciliation", params={"tenant": "bakkerij"},
                      headers=_auth(token)).json()["days"] == []
    assert client.get("/api/reconciliation", params={"first_day": "2026-03-09",
                                                     "last_day": "2026-03-01"},
                      headers=_auth(token)).status_code == 400
    client.cookies.clear()
    assert client.get("/api/reconciliation.csv").status_code == 401
