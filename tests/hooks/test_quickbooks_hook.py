"""QuickBooksHook against the QuickBooks sandbox over real HTTP."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import QUICK_RETRY, control, qbo_settings  # noqa: I001
from koppel.hooks import errors
from koppel.hooks.quickbooks import BatchOp, QBOLimits, QuickBooksHook, request_id
from koppel.hooks.tokens import TokenStore


def _customers(qb, realm):
    return control(qb["url"], "GET", f"/realms/{realm}/entities/customer")["Customer"]


def test_company_info_and_call_counts(qb, qb_hook):
    info = qb_hook.company_info()
    assert info.get("CompanyName")
    assert qb_hook.calls["GET companyinfo/{id}"] == 1
    stats = control(qb["url"], "GET", "/stats")
    api_calls = {k: v for k, v in stats["by_route"].items() if "companyinfo" in k}
    assert list(api_calls.values()) == [1]
    assert sum(v for k, v in stats["by_route"].items() if "token" in k) == 1


def test_python_quickbooks_objects_use_the_hook_transport(qb_hook):
    from quickbooks.objects.customer import Customer

    client = qb_hook.get_client()
    found = Customer.filter(Active=True, max_results=5, qb=client)
    assert 0 < len(found) <= 5
    assert qb_hook.calls["POST query"] == 1


def test_retried_create_with_the_same_requestid_makes_one_object(qb, qb_hook):
    rid = request_id("acme", "Customer", 1001, "v1")
    payload = {"DisplayName": "Idempotent Ltd", "PrimaryEmailAddr": {"Address": "i@example.test"}}
    first = qb_hook.create("Customer", payload, request_id=rid)
    again = qb_hook.create("Customer", payload, request_id=rid)
    assert first["Id"] == again["Id"]
    named = [c for c in _customers(qb, qb["realm_id"]) if c["DisplayName"] == "Idempotent Ltd"]
    assert len(named) == 1
    with pytest.raises(errors.DuplicateName) as caught:
        qb_hook.create("Customer", payload, request_id=request_id("acme", "Customer", 1001, "v2"))
    assert caught.value.code == 6240


def test_stale_sync_token_is_refetched(qb_hook):
    customer = qb_hook.query("SELECT * FROM Customer MAXRESULTS 1")["Customer"][0]
    qb_hook.sparse_update("Customer", customer["Id"], {"Notes": "first"},
                          sync_token=customer["SyncToken"])
    updated = qb_hook.sparse_update("Customer", customer["Id"], {"Notes": "second"},
                                    sync_token=customer["SyncToken"])  # stale now
    assert updated["Notes"] == "second"


def test_batch_with_good_and_bad_items(qb_hook):
    existing = qb_hook.query("SELECT * FROM Customer MAXRESULTS 1")["Customer"][0]
    ops = [BatchOp(f"c{i}", "create", "Customer", {"DisplayName": f"Batch Customer {i}"})
           for i in range(32)]
    ops.append(BatchOp("dup", "create", "Customer", {"DisplayName": existing["DisplayName"]}))
    ops.append(BatchOp("q", query="SELECT * FROM Customer WHERE DisplayName = 'Batch Customer 3'"))
    results = qb_hook.batch(ops)
    assert all(results[f"c{i}"].ok and results[f"c{i}"].value["Id"] for i in range(32))
    assert isinstance(results["dup"].fault, errors.DuplicateName)
    assert results["q"].value["Customer"][0]["DisplayName"] == "Batch Customer 3"
    assert qb_hook.calls["POST batch"] == 2  # 34 items in requests of at most 30


def test_query_in_chunks_and_email_lookup(qb_hook):
    customers = list(qb_hook.query_all("Customer", page_size=7))
    assert len(customers) == qb_hook.count("Customer")
    names = [c["DisplayName"] for c in customers] + ["Nobody Here", "O'Neil & Sons"]
    found = qb_hook.query_in("Customer", "DisplayName", names, chunk_size=4)
    assert {c["Id"] for c in found} == {c["Id"] for c in customers}
    assert qb_hook.calls["POST query"] >= len(names) // 4
    emails = [c["PrimaryEmailAddr"]["Address"] for c in customers if c.get("PrimaryEmailAddr")]
    assert emails, "the seeded company has customers with an e-mail address"
    unknown = [f"nobody{i}@example.nl" for i in range(13)]
    queries = qb_hook.calls["POST query"]
    # one "=" query per address: five are five plain queries (cheaper than a batch request
    # under the limits up to 500 // 40 = 12 of them) ...
    five = (emails + unknown)[:5]
    by_email = qb_hook.query_in("Customer", "PrimaryEmailAddr", five)
    assert {c["PrimaryEmailAddr"]["Address"].lower() for c in by_email} == \
        {e.lower() for e in emails[:5]}
    assert qb_hook.calls["POST query"] == queries + 5 and qb_hook.calls.get("POST batch", 0) == 0
    # ... thirteen are one batch request
    thirteen = (emails + unknown)[:13]
    by_email = qb_hook.query_in("Customer", "PrimaryEmailAddr", thirteen)
    assert {c["PrimaryEmailAddr"]["Address"].lower() for c in by_email} == \
        {e.lower() for e in emails[:13]}
    assert qb_hook.calls["POST query"] == queries + 5 and qb_hook.calls["POST batch"] == 1


def test_throttling_in_xml_and_5xx_are_retried(qb, state_db):
    hook = QuickBooksHook(settings=qbo_settings(qb), token_store=state_db, retry=QUICK_RETRY,
                          limits=QBOLimits.scaled(200))
    control(qb["url"], "PUT", "/throttle-format", json={"format": "xml"})
    try:
        control(qb["url"], "POST", "/faults", json={
            "path": "/query$", "sequence": ["429", "500", "drop", "503", "429", "ok"]})
        rows = hook.query("SELECT * FROM Customer MAXRESULTS 3")["Customer"]
        assert 0 < len(rows) <= 3
        assert hook.calls["POST query"] == 6
    finally:
        control(qb["url"], "PUT", "/throttle-format", json={"format": "json"})


def test_access_token_expiry_and_401_mid_run(qb, state_db):
    # the hook judges a token's lifetime by its own clock: moved here, not waited for
    now = [time.time()]
    qb_hook = QuickBooksHook(settings=qbo_settings(qb), token_store=state_db,
                             retry=QUICK_RETRY, clock=lambda: now[0])
    control(qb["url"], "PUT", "/tokens", json={"access_token_seconds": 60.0})
    try:
        qb_hook.company_info()
        refreshes = qb_hook.tokens.refreshes
        qb_hook.company_info()  # within its lifetime: the same token
        assert qb_hook.tokens.refreshes == refreshes
        now[0] += 61  # a token past its lifetime is not sent
        qb_hook.company_info()  # refreshed before use: expired
        assert qb_hook.tokens.refreshes == refreshes + 1
    finally:
        control(qb["url"], "PUT", "/tokens", json={"access_token_seconds": 3600})
    # QuickBooks ends the access token early (the hook believes it valid): answered 401,
    # refreshed once, the request sent again
    unauthorised = control(qb["url"], "GET", "/stats")["by_status"].get("401", 0)
    expired = control(qb["url"], "POST", "/oauth/expire-access-tokens",
                      json={"realm": qb_hook.realm_id})
    assert expired["expired"] >= 1
    qb_hook.company_info()
    assert qb_hook.tokens.refreshes == refreshes + 2
    assert control(qb["url"], "GET", "/stats")["by_status"].get("401", 0) == unauthorised + 1
    qb_hook.close()


WORKER = textwrap.dedent("""
    import json, os, sys, time
    from koppel.hooks.quickbooks import QuickBooksHook, QBOSettings
    from koppel.hooks.retry import RetryPolicy
    from koppel.hooks.tokens import TokenStore
    from koppel.store.engine import get_engine
    creds = json.loads(os.environ["QB_CREDS"])
    hook = QuickBooksHook(settings=QBOSettings(**creds),
                          token_store=TokenStore(get_engine(os.environ["STATE_URL"])),
                          retry=RetryPolicy(attempts=4, initial=0.05, maximum=0.2))
    ok = 0
    deadline = time.monotonic() + float(os.environ["RUN_SECONDS"])
    while time.monotonic() < deadline:
        hook.company_info()
        ok += 1
        time.sleep(0.05)
    print(json.dumps({"ok": ok, "refreshes": hook.tokens.refreshes}))
""")


def test_two_processes_share_rotating_refresh_tokens(qb, tmp_path):
    control(qb["url"], "PUT", "/tokens", json={"access_token_seconds": 0.6,
                                               "refresh_grace_seconds": 0.01})
    try:
        settings = qbo_settings(qb)
        creds = {k: getattr(settings, k) for k in ("client_id", "client_secret", "realm_id",
                                                   "refresh_token", "environment",
                                                   "api_base_url")}
        env = {**os.environ, "QB_CREDS": json.dumps(creds), "RUN_SECONDS": "3",
               "STATE_URL": f"sqlite:///{tmp_path / 'shared.db'}",
               "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        procs = [subprocess.Popen([sys.executable, "-c", WORKER], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
        outputs = [p.communicate(timeout=90) for p in procs]
    finally:
        control(qb["url"], "PUT", "/tokens", json={"access_token_seconds": 3600,
                                                   "refresh_grace_seconds": 5})
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err[-2000:]
        assert settings.refresh_token not in out + err
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert all(r["ok"] > 5 for r in results)
    assert sum(r["refreshes"] for r in results) >= 3  # tokens rotated several times


def test_connection_token_wins_after_reauthorisation(qb, state_db):
    first = QuickBooksHook(settings=qbo_settings(qb), token_store=state_db, retry=QUICK_RETRY)
    first.company_info()
    new_realm = control(qb["url"], "POST", "/realms", json={"region": "NL", "name": "Other"})
    # the user re-authorised: same client and realm id, a new seed token
    reauth = qbo_settings(qb, refresh_token=new_realm["refresh_token"],
                          realm_id=new_realm["realm_id"])
    second = QuickBooksHook(settings=reauth, token_store=state_db, retry=QUICK_RETRY)
    assert second.company_info()
    assert second.tokens.refreshes == 1


def test_connection_test_from_env_json(qb, monkeypatch, caplog, capsys, tmp_path):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("KOPPEL_STATE_DB_URL", f"sqlite:///{tmp_path / 'env-state.db'}")
    good = dict(conn_type="quickbooks_online", host=qb["api_base_url"], login=qb["client_id"],
                password=qb["client_secret"],
                extra={"realm_id": qb["realm_id"], "refresh_token": qb["refresh_token"],
                       "environment": qb["discovery_url"], "minor_version": 75})
    cases = {
        "qb_good": good,
        "qb_bad_secret": {**good, "password": "wrong-secret-0123456789"},
        "qb_bad_token": {**good, "extra": {**good["extra"], "refresh_token": "RT1-stale-0000"}},
        "qb_down": {**good, "host": "http://127.0.0.1:9/v3",
                    "extra": {**good["extra"], "environment": "http://127.0.0.1:9/disc"}},
    }
    for conn_id, fields in cases.items():
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))

    # the client secret is only used to refresh: test it before a valid token is stored
    ok, message = QuickBooksHook("qb_bad_secret").test_connection()
    assert not ok and "Authorisation failed" in message
    ok, message = QuickBooksHook("qb_bad_token").test_connection()
    assert not ok and "invalid_grant" in message
    ok, message = QuickBooksHook("qb_good").test_connection()
    assert ok, message
    # once koppel holds the live token for this company, a test never exchanges another
    # connection's refresh token: it says whose token koppel uses instead
    ok, message = QuickBooksHook("qb_bad_token").test_connection()
    assert ok and "another connection's" in message, message
    ok, message = QuickBooksHook("qb_down").test_connection()
    assert not ok and "Cannot reach" in message

    hook = QuickBooksHook("qb_good")
    hook.company_info()
    stored = TokenStore().read(qb["client_id"], str(qb["realm_id"]))
    captured = capsys.readouterr()
    text = caplog.text + captured.out + captured.err + message
    for secret in (qb["client_secret"], qb["refresh_token"], stored.refresh_token,
                   stored.access_token):
        assert secret and secret not in text


def test_revoked_authorisation_names_the_connection(qb, state_db):
    """The user disconnected the app in QuickBooks (control plane: revoke every refresh
    token of the realm, access tokens die with them): the error names the connection to
    re-authorise, and no token."""
    settings = qbo_settings(qb)
    hook = QuickBooksHook("qb_shop_acme", settings=settings, token_store=state_db,
                          retry=QUICK_RETRY)
    assert hook.company_info()
    control(qb["url"], "POST", "/oauth/revoke", json={"realm": str(settings.realm_id)})
    with pytest.raises(errors.AuthError) as caught:
        hook.company_info()
    text = str(caught.value)
    assert "connection 'qb_shop_acme'" in text, text
    assert settings.refresh_token not in text and settings.client_secret not in text


def test_lookups_before_many_writes_go_plain_and_leave_the_batches_to_the_writes(qb_hook):
    """Thirteen look-ups alone are one batch request; before 1,400 writes (47 batches,
    over a minute of the batch budget) they cost nothing extra as plain queries."""
    queries = {f"e{i}": "SELECT * FROM Customer WHERE PrimaryEmailAddr = "
               f"'nobody{i}@example.nl'" for i in range(13)}
    plain, batches = qb_hook.calls.get("POST query", 0), qb_hook.calls.get("POST batch", 0)
    assert qb_hook.query_many(queries, writes_to_follow=1400) == {k: [] for k in queries}
    assert qb_hook.calls["POST query"] == plain + 13
    assert qb_hook.calls.get("POST batch", 0) == batches
    qb_hook.query_many(queries, writes_to_follow=0)
    assert qb_hook.calls["POST batch"] == batches + 1


def test_the_lookup_policy_follows_the_realms_budgets_not_a_processs_pacing(qb_hook):
    """A task's share of the limits, or none at all (a sandbox with its limits lifted),
    paces the process; which budget a look-up spends is the realm's question."""
    from koppel.hooks.quickbooks import QBOLimits, QuickBooksHook

    unpaced = QuickBooksHook.__new__(QuickBooksHook)
    unpaced.limits = QBOLimits(per_minute=10**9, batches_per_minute=10**9)
    shared = QuickBooksHook.__new__(QuickBooksHook)
    shared.limits = QBOLimits(per_minute=100, batches_per_minute=8)
    assert unpaced.plain_lookups_max == shared.plain_lookups_max == qb_hook.plain_lookups_max == 12


@pytest.mark.parametrize(("lookups", "writes", "plain"), [
    (12, 0, True), (13, 0, False),          # alone: 12 plain requests < 1/40 of a minute
    (13, 30, True),                         # 2 batches vs 1 batch beside 13/500 min
    (450, 1400, True),                      # a 1,000-order chunk: writes bind
    (450, 300, False),                      # 10 write batches: the look-ups would bind
    (857, 1200, True), (900, 1200, False),  # 1.71 vs 1.73 min; 1.80 vs 1.75 min
])
def test_plain_lookups_cheaper_compares_both_budgets(lookups, writes, plain):
    from koppel.hooks.quickbooks import plain_lookups_cheaper

    assert plain_lookups_cheaper(lookups, writes) is plain
