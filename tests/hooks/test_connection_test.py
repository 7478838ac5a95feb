"""The connections' Test button (issue 21, item 3), for both connection types.

* the hooks' ``test_connection``: what it checks and says, and that it never rotates nor
  replaces the refresh token a running tenant uses — a test of a second connection to the
  same company included (Intuit rotates refresh tokens and wants the latest one used:
  https://developer.intuit.com/app/developer/qbo/docs/develop/authentication-and-authorization/faq);
* Airflow 3's REST API ``POST /api/v2/connections/test`` with the payload the 3.3 UI's
  connection list sends (``port: Number(connection.port)``, i.e. 0 for a port-less
  connection, and the masked password), through koppel's plugin, in a real API app.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import update

from conftest import QUICK_RETRY, control, qbo_settings  # noqa: I001 - the folder's helpers

ROOT = Path(__file__).resolve().parents[2]


def _company_name(qb) -> str:
    realms = control(qb["url"], "GET", "/realms")
    return next(r["name"] for r in realms if r["realm_id"] == str(qb["realm_id"]))


def _hook(creds, store, **overrides):
    from koppel.hooks.quickbooks import QuickBooksHook

    return QuickBooksHook(settings=qbo_settings(creds, **overrides), token_store=store,
                          retry=QUICK_RETRY)


def _row(store, creds):
    return store.read(creds["client_id"], str(creds["realm_id"]))


def _token_calls(qb) -> int:
    stats = control(qb["url"], "GET", "/stats")
    return stats["by_route"].get("POST /oauth2/v1/tokens/bearer", 0)


def _expire_access(store, creds) -> None:
    from koppel.hooks.tokens import oauth_tokens

    with store.engine.begin() as conn:
        conn.execute(update(oauth_tokens).where(
            oauth_tokens.c.client_id == creds["client_id"],
            oauth_tokens.c.realm_id == str(creds["realm_id"])).values(access_expires_at=1.0))


def _utc(epoch: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


# -- QuickBooks ---------------------------------------------------------------------------


def test_first_test_exchanges_the_token_and_stores_the_rotated_one(qb, state_db):
    hook = _hook(qb, state_db)
    ok, message = hook.test_connection()
    row = _row(state_db, qb)
    assert ok, message
    assert message == (f"QuickBooks company '{_company_name(qb)}' (realm {qb['realm_id']}) "
                       f"reachable; refresh token exchanged and the rotated one stored for "
                       f"the first run; access token valid until {_utc(row.access_expires_at)}")
    assert row.refresh_token and row.refresh_token != qb["refresh_token"]
    # the tenant's first run continues from the stored rotated token
    live = _hook(qb, state_db)
    assert live.count("Account") > 0
    assert live.tokens.refreshes == 0
    assert qb["refresh_token"] not in message and row.access_token not in message


def test_live_connection_with_a_fresh_token_is_read_not_refreshed(qb, state_db):
    live = _hook(qb, state_db)
    live.count("Account")
    before = _row(state_db, qb)
    calls_before = _token_calls(qb)
    ok, message = _hook(qb, state_db).test_connection()
    assert ok, message
    assert message == (f"QuickBooks company '{_company_name(qb)}' (realm {qb['realm_id']}) "
                       f"reachable with koppel's current access token (valid until "
                       f"{_utc(before.access_expires_at)}); client id and secret accepted by "
                       f"the token endpoint; refresh token not exchanged")
    assert _row(state_db, qb) == before
    # one token endpoint call: the client check with an empty refresh token
    assert _token_calls(qb) == calls_before + 1


def test_expired_live_token_is_left_for_the_next_run(qb, state_db):
    live = _hook(qb, state_db)
    live.count("Account")
    _expire_access(state_db, qb)
    before = _row(state_db, qb)
    ok, message = _hook(qb, state_db).test_connection()
    assert ok, message
    assert message == (f"QuickBooks company (realm {qb['realm_id']}) not read: koppel's "
                       f"access token for it has expired and the next run refreshes it; "
                       f"client id and secret accepted by the token endpoint; refresh token "
                       f"not exchanged: koppel holds the live token for this company, from "
                       f"this connection's authorisation, last refreshed "
                       f"{_utc(before.updated_at)}, and a test never rotates it")
    assert _row(state_db, qb) == before
    nxt = _hook(qb, state_db)
    assert nxt.count("Account") > 0 and nxt.tokens.refreshes == 1


def test_second_connection_to_the_same_company_leaves_the_live_tenant_working(qb, state_db):
    """The issue's bug: testing a second connection re-seeded koppel's row, and the live
    tenant's next refresh (from its own, long rotated seed) failed with invalid_grant."""
    # rotated tokens stay reusable 5 s / scale: make the old seed stale at once
    control(qb["url"], "PUT", "/time-scale", json={"scale": 1000.0})
    live = _hook(qb, state_db)
    assert live.count("Account") > 0
    second = control(qb["url"], "GET", "/credentials")  # another authorisation, same company
    assert second["refresh_token"] != qb["refresh_token"]
    time.sleep(0.05)
    live_row = _row(state_db, qb)

    ok, message = _hook(second, state_db).test_connection()

    assert ok, message
    assert "from another connection's (this connection's refresh token is not the one koppel " \
           "uses for this company) authorisation" in message
    assert "client id and secret accepted by the token endpoint" in message
    assert _row(state_db, qb) == live_row
    # the live tenant's next run, after its access token expired, refreshes from the store
    _expire_access(state_db, qb)
    nxt = _hook(qb, state_db)
    assert nxt.count("Account") > 0
    assert nxt.tokens.refreshes == 1
    assert _row(state_db, qb).seed_token_hash == live_row.seed_token_hash


def test_wrong_client_secret_is_named_without_touching_the_live_token(qb, state_db):
    live = _hook(qb, state_db)
    live.count("Account")
    before = _row(state_db, qb)
    ok, message = _hook(qb, state_db, client_secret="wrong-secret").test_connection()
    assert not ok
    assert message == ("Authorisation failed: client id or secret refused by the token "
                       "endpoint (invalid_client)")
    assert _row(state_db, qb) == before
    # and with no live token yet: the exchange itself is refused, nothing stored
    from koppel.hooks.tokens import TokenStore
    from koppel.store.engine import get_engine

    empty = TokenStore(get_engine(f"sqlite:///{Path(str(state_db.engine.url.database)).parent / 'other.db'}"))
    ok, message = _hook(qb, empty, client_secret="wrong-secret").test_connection()
    assert not ok
    assert message == ("Authorisation failed: token refresh refused (invalid_client): check "
                       "the client id and secret")
    assert _row(empty, qb) is None or _row(empty, qb).refresh_token is None


def test_missing_fields_are_named(qb, state_db):
    ok, message = _hook(qb, state_db, refresh_token="", realm_id="").test_connection()
    assert (ok, message) == (False, "Missing realm id, refresh token")


def test_quickbooks_port_zero_means_the_default(qb, state_db):
    from koppel.hooks.quickbooks import QBOSettings

    conn = SimpleNamespace(host=qb["api_base_url"], port=0, login=qb["client_id"],
                           password=qb["client_secret"],
                           extra_dejson={"realm_id": str(qb["realm_id"]),
                                         "refresh_token": qb["refresh_token"],
                                         "environment": qb["discovery_url"]})
    settings = QBOSettings.from_connection(conn)
    assert settings.base_url == qb["api_base_url"]
    from koppel.hooks.quickbooks import QuickBooksHook

    ok, message = QuickBooksHook(settings=settings, token_store=state_db,
                                 retry=QUICK_RETRY).test_connection()
    assert ok, message


# -- Lightspeed ---------------------------------------------------------------------------


def test_lightspeed_test_says_what_it_checked(ls, ls_hook):
    shop = ls_hook.request("GET", "shop.json")["shop"]
    ok, message = ls_hook.test_connection()
    assert ok, message
    assert message == (f"Lightspeed shop '{shop['title']}' (id {shop['id']}, language "
                       f"{ls['language']}, {shop['currency']['shortcode'].upper()}) reachable "
                       f"at {ls_hook.settings.base_url}; API key and secret accepted "
                       f"(GET shop.json)")
    assert ls["api_key"] not in message and ls["api_secret"] not in message


def test_lightspeed_port_zero_and_wrong_secret(ls):
    from koppel.hooks.lightspeed import LightspeedHook, LightspeedSettings

    conn = SimpleNamespace(host=ls["url"], port=0, login=ls["api_key"],
                           password=ls["api_secret"], schema=None,
                           extra_dejson={"language": ls["language"]})
    settings = LightspeedSettings.from_connection(conn)
    assert settings.base_url == LightspeedSettings.from_connection(
        SimpleNamespace(**{**vars(conn), "port": None})).base_url
    ok, message = LightspeedHook(settings=settings, retry=QUICK_RETRY).test_connection()
    assert ok, message
    bad = LightspeedSettings(settings.base_url, ls["api_key"], "0" * 32, settings.language)
    ok, message = LightspeedHook(settings=bad, retry=QUICK_RETRY).test_connection()
    assert not ok
    assert message.startswith("Access denied: check the API key and secret")


# -- the Airflow REST API, as the UI calls it ---------------------------------------------


def test_port_zero_is_dropped_for_koppel_types_only():
    from koppel.web.connection_test import normalise_test_body

    body = {"conn_type": "quickbooks_online", "connection_id": "q", "port": 0, "host": ""}
    assert json.loads(normalise_test_body(json.dumps(body).encode())) == \
        {"conn_type": "quickbooks_online", "connection_id": "q", "host": ""}
    for port in (None, ""):
        assert "port" not in json.loads(normalise_test_body(
            json.dumps({**body, "conn_type": "lightspeed_ecom", "port": port}).encode()))
    for other in ({**body, "port": 8443}, {**body, "conn_type": "http"}):
        raw = json.dumps(other).encode()
        assert normalise_test_body(raw) == raw
    assert normalise_test_body(b"not json") == b"not json"


API_SCRIPT = r'''
import json, os, sys
from fastapi.testclient import TestClient
from airflow.api_fastapi.app import create_app
from airflow.models import Connection
from airflow.utils.session import create_session

spec = json.loads(os.environ["KOPPEL_TEST_SPEC"])
with create_session() as session:
    for conn in spec["connections"]:
        session.add(Connection(**conn))
client = TestClient(create_app(apps="core"))
out = {}
for conn_id in spec["test"]:
    row = client.get(f"/api/v2/connections/{conn_id}")
    row.raise_for_status()
    n = row.json()
    # the 3.3 UI's connection list (its Test button): port Number(n.port), password as listed
    body = {"conn_type": n["conn_type"], "connection_id": n["connection_id"],
            "description": n.get("description") or "",
            "extra": n.get("extra") or "{}", "host": n.get("host") or "",
            "login": n.get("login") or "", "password": n.get("password") or "",
            "port": int(n["port"] or 0), "schema": n.get("schema") or ""}
    answer = client.post("/api/v2/connections/test", json=body)
    out[conn_id] = {"status_code": answer.status_code, "body": answer.json(),
                    "sent_port": body["port"], "sent_password": body["password"]}
with create_session() as session:
    for conn in spec["connections"]:
        session.query(Connection).filter(Connection.conn_id == conn["conn_id"]).delete()
# the plugin also mounts the doctor view, behind Airflow's login (the simple auth
# manager's all-admins mode hands this client an admin token)
view = client.get("/koppel-doctor/api/report", params={"tenant": "demo"})
out["doctor_view"] = {"status_code": view.status_code, "body": view.json()}
print("RESULT " + json.dumps(out))
'''


@pytest.fixture(scope="module")
def api_env(airflow_db):
    """The suite's migrated Airflow home, with koppel's plugin, connection testing on and
    every request an admin (Airflow's simple auth manager)."""
    env = {**os.environ, "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
           "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
           "PYTHONPATH": str(ROOT)}
    for key in [k for k in env if k.startswith("AIRFLOW_CONN_")]:
        env.pop(key)
    return env


def _api_test(api_env, connections, test):
    env = {**api_env,
           "KOPPEL_TEST_SPEC": json.dumps({"connections": connections, "test": test})}
    proc = subprocess.run([sys.executable, "-c", API_SCRIPT], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def test_rest_api_test_button_for_both_types(api_env, qb, ls):
    from koppel.hooks.tokens import TokenStore
    from koppel.store.engine import get_engine

    # the live tenant has run: koppel's row is seeded from quickbooks_live's token
    store = TokenStore(get_engine(api_env["KOPPEL_STATE_DB_URL"]))
    store.forget(qb["client_id"], str(qb["realm_id"]))
    live = _hook(qb, store)
    assert live.count("Account") > 0
    live_row = _row(store, qb)
    second = control(qb["url"], "GET", "/credentials")
    qb_extra = {"realm_id": str(qb["realm_id"]), "environment": qb["discovery_url"],
                "minor_version": 75}
    connections = [
        {"conn_id": "lightspeed_shop", "conn_type": "lightspeed_ecom", "host": ls["url"],
         "login": ls["api_key"], "password": ls["api_secret"],
         "extra": json.dumps({"language": ls["language"]})},
        {"conn_id": "quickbooks_live", "conn_type": "quickbooks_online",
         "host": qb["api_base_url"], "login": qb["client_id"],
         "password": qb["client_secret"],
         "extra": json.dumps({**qb_extra, "refresh_token": qb["refresh_token"]})},
        {"conn_id": "quickbooks_second", "conn_type": "quickbooks_online",
         "host": qb["api_base_url"], "login": second["client_id"],
         "password": second["client_secret"],
         "extra": json.dumps({**qb_extra, "refresh_token": second["refresh_token"]})},
        # not koppel's: Airflow's own behaviour for port 0 is left alone
        {"conn_id": "plain_http", "conn_type": "http", "host": ls["url"],
         "login": "someone", "password": "something"},
    ]
    suffix = uuid.uuid4().hex[:8]
    for conn in connections:
        conn["conn_id"] += f"_{suffix}"
    answers = _api_test(api_env, connections, [conn["conn_id"] for conn in connections])
    view = answers.pop("doctor_view")
    assert view["status_code"] == 200, view
    # the demo's connections are not defined in this Airflow: the doctor says so
    assert view["body"]["tenant"] == "demo"
    assert {f["field"] for f in view["body"]["findings"] if f["severity"] == "problem"} >= {
        "connections.lightspeed (lightspeed_demo)", "connections.quickbooks (quickbooks_demo)"}
    result = {key.rsplit("_", 1)[0]: value for key, value in answers.items()}
    for conn_id in ("lightspeed_shop", "quickbooks_live", "quickbooks_second"):
        assert result[conn_id]["sent_port"] == 0
        assert result[conn_id]["sent_password"] == "***"
        assert result[conn_id]["status_code"] == 200, result[conn_id]
        assert result[conn_id]["body"]["status"] is True, result[conn_id]
    assert result["lightspeed_shop"]["body"]["message"].startswith("Lightspeed shop '")
    assert result["quickbooks_live"]["body"]["message"].startswith(
        f"QuickBooks company '{_company_name(qb)}' (realm {qb['realm_id']}) reachable with "
        f"koppel's current access token")
    assert "another connection's" in result["quickbooks_second"]["body"]["message"]
    assert result["plain_http"]["status_code"] == 400
    assert "host or port to test differs" in result["plain_http"]["body"]["detail"]
    # nothing replaced the live tenant's token; its next run refreshes from it
    assert _row(store, qb) == live_row
    _expire_access(store, qb)
    nxt = _hook(qb, store)
    assert nxt.count("Account") > 0 and nxt.tokens.refreshes == 1
