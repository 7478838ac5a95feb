"""Security checks: no secrets or personal data in any log, TLS verification towards real
hosts, tenant files that cannot execute code."""

from __future__ import annotations

import copy
import json
import logging
import os
import ssl
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMO = json.loads((ROOT / "include" / "mappings" / "demo.json").read_text())


def _ssl_context(client):
    return client._transport._pool._ssl_context  # httpx → httpcore connection pool


def test_lightspeed_hook_verifies_tls_for_real_hosts():
    from koppel.hooks.lightspeed import LightspeedHook

    hook = LightspeedHook.from_settings(base_url="eu1", api_key="k", api_secret="s")
    client = hook.get_conn()
    try:
        assert str(client.base_url).startswith("https://")
        context = _ssl_context(client)
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    finally:
        hook.close()


def test_quickbooks_hook_verifies_tls_for_real_hosts():
    from koppel.hooks.quickbooks import QBOSettings, QuickBooksHook

    hook = QuickBooksHook(settings=QBOSettings(client_id="c", client_secret="s", realm_id="1",
                                               refresh_token="r", environment="production"))
    assert hook.settings.base_url.startswith("https://")
    context = _ssl_context(hook.get_conn())
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


@pytest.mark.parametrize("formula", [
    "__import__('os').system('touch /tmp/koppel-pwned')",
    "stock_level.__class__",
    "open('/etc/passwd')",
    "[x for x in ()]",
    "lambda: 1",
    "stock_level if 1 else 0",
    "eval('1')",
])
def test_stock_formula_injection_is_rejected(formula):
    from koppel.domain.formula import FormulaError, StockFormula

    with pytest.raises(FormulaError):
        StockFormula.parse(formula)


@pytest.mark.parametrize("rule", [
    {"path": "email", "transforms": ["__import__"]},
    {"path": "email", "transforms": [{"fn": "eval", "value": "1+1"}]},
    {"path": "email", "transforms": [{"fn": "exec"}]},
    {"path": "email", "transforms": ["os.system"]},
    {"path": "email", "transforms": [{"fn": "trim", "code": "__import__('os')"}]},
])
def test_transform_injection_in_a_tenant_file_is_a_load_error(rule, tmp_path):
    from koppel.tenants.loader import load_tenant_file

    doc = copy.deepcopy(DEMO)
    doc.pop("$schema", None)
    doc["tenant"] = "injected"
    doc.setdefault("mappings", {}).setdefault("customers", {})["email"] = rule
    path = tmp_path / "injected.json"
    path.write_text(json.dumps(doc))
    config, errors = load_tenant_file(path)
    assert config is None and errors, "a tenant file naming an unknown transform must not load"
    assert any("email" in str(e) for e in errors), [str(e) for e in errors]


@pytest.mark.e2e
def test_no_secret_or_personal_data_in_any_log(shop_factory, make_tenant, airflow_home,
                                               caplog, capfd):
    """Run the orders flow with DEBUG logging and scan everything it wrote — Python logs,
    stdout/stderr and the Airflow task logs — for the shop's e-mails and names, the API
    key and secret, the OAuth client secret and the tokens."""
    shop = shop_factory(orders=8, seed=31)
    tenant = make_tenant(shop)
    caplog.set_level(logging.DEBUG)
    tenant.run("orders")
    orders = shop.orders()
    ls = shop.credentials()
    secrets = {"lightspeed api key": ls["api_key"], "lightspeed api secret": ls["api_secret"]}
    qb_conn = json.loads(os.environ[f"AIRFLOW_CONN_QB_{tenant.tenant.upper()}"])
    secrets["qbo client secret"] = qb_conn["password"]
    secrets["qbo first refresh token"] = qb_conn["extra"]["refresh_token"]
    from sqlalchemy import text

    from koppel.store.engine import get_engine

    with get_engine().connect() as conn:  # tokens koppel holds now (rotated during the run)
        for row in conn.execute(text("SELECT access_token, refresh_token FROM koppel_oauth_token")).mappings():
            for key in ("access_token", "refresh_token"):
                if row.get(key):
                    secrets[f"stored {key}"] = str(row[key])
    personal = {}
    for order in orders:
        for key in ("email", "firstname", "lastname", "phone"):
            value = str(order.get(key) or "").strip()
            if len(value) >= 4:  # short fragments would match unrelated text
                personal[f"order {key}"] = value
    out, err = capfd.readouterr()
    texts = {"python logs": caplog.text, "stdout": out, "stderr": err}
    # dag.test() runs the tasks in this process: their logs are in the captured output;
    # any task log files Airflow wrote for this tenant are scanned as well
    for path in (airflow_home / "logs").rglob("*"):
        if path.is_file() and tenant.tenant in str(path):
            texts[str(path)] = path.read_text(errors="replace")
    everything = "\n".join(texts.values())
    assert f"koppel {tenant.tenant}/orders run summary" in everything, "task logs not captured"
    assert f"koppel {tenant.tenant}/orders load" in everything
    leaks = [(what, where) for where, body in texts.items()
             for what, value in {**secrets, **personal}.items() if value and value in body]
    assert not leaks, leaks


def test_a_tenant_run_never_touches_another_tenants_shop_or_books(shop_factory, make_tenant):
    """Two tenants side by side: a run of one reaches only its own shop and company. A
    third tenant file that names the first one's connections is refused with both files
    named, so no DAG of it can ever run with another tenant's credentials."""
    from koppel.factory import build_dags
    from koppel.tenants import load_tenants

    shop_a, shop_b = shop_factory(orders=4, seed=41), shop_factory(orders=4, seed=42)
    tenant_a, tenant_b = make_tenant(shop_a), make_tenant(shop_b)
    entities = ("Customer", "Item", "SalesReceipt", "Invoice")
    b_books = {e: tenant_b.entities(e) for e in entities}
    b_calls = shop_b.stats()["total"]
    assert tenant_a.run("orders").state == "success"
    assert tenant_a.entities("SalesReceipt"), "tenant a booked nothing"
    assert {e: tenant_b.entities(e) for e in entities} == b_books
    assert shop_b.stats()["total"] == b_calls, "tenant a's run called tenant b's shop"

    directory = tenant_a.mappings_dir
    own = json.loads((directory / f"{tenant_a.tenant}.json").read_text())
    (directory / "intruder.json").write_text(json.dumps({**own, "tenant": "intruder"}))
    result = load_tenants(directory)
    assert "intruder" not in result.ids()
    problems = [str(e) for e in result.errors if "intruder.json" in e.file]
    assert problems and all(f"also used by tenant(s) {tenant_a.tenant}" in p for p in problems)
    assert not [d for d in build_dags(directory) if d.endswith("__intruder")]
