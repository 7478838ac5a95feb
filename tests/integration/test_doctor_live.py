"""``koppel doctor <tenant>`` end to end: the real command, the tenant's connections (the
demo's in Airflow's metadata database, as ``make demo`` and the UI keep them, the others
as ``AIRFLOW_CONN_*``), both sandboxes and Airflow's metadata database (pools).

The demo tenant passes against the sandboxes (exit 0). A deliberately broken tenant
file — a tax code QuickBooks lacks and one mapped to the wrong rate, a missing income
account (so the helper items cannot be created either), a missing fallback item, no
pools, a shop selling in USD against a EUR company — and one with bad connections (a
wrong API secret, a connection of the wrong type) name every problem, with the
company's real names to choose from (exit 1)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from koppel.sandbox.server import SandboxServer

ROOT = Path(__file__).resolve().parents[2]
MAPPINGS = ROOT / "include" / "mappings"

SCRIPT = r'''
import io, json, sys
from airflow.models.pool import Pool
from airflow.utils.session import create_session
from airflow.models.connection import Connection
from koppel.cli import main, tenant_pools

db_connections = json.loads(sys.argv[2])  # like `make demo`: in the metadata database
with create_session() as session:
    for conn_id, raw in db_connections.items():
        session.query(Connection).filter(Connection.conn_id == conn_id).delete()
        session.add(Connection(conn_id=conn_id, conn_type=raw["conn_type"],
                               host=raw.get("host"), login=raw.get("login"),
                               password=raw.get("password"),
                               extra=json.dumps(raw.get("extra") or {})))
    for name, pool in tenant_pools(["demo"]).items():
        Pool.create_or_update_pool(name, slots=int(pool["slots"]),
                                   description=str(pool["description"]),
                                   include_deferred=False, session=session)
    for name in ("koppel_broken_lightspeed", "koppel_broken_quickbooks"):
        session.query(Pool).filter(Pool.pool == name).delete()
results = {}
for tenant, directory in json.loads(sys.argv[1]):
    out = io.StringIO()
    sys.stdout, real = out, sys.stdout
    try:
        code = main(["doctor", tenant, "--dir", directory])
    finally:
        sys.stdout = real
    results[tenant] = {"code": code, "output": out.getvalue()}
with create_session() as session:
    for conn_id in db_connections:
        session.query(Connection).filter(Connection.conn_id == conn_id).delete()
print("RESULT " + json.dumps(results))
'''


def _credentials(url: str) -> dict:
    return httpx.get(f"{url}/_sandbox/credentials", timeout=10).json()


def _ls_conn(creds: dict, **overrides) -> str:
    return json.dumps({"conn_type": "lightspeed_ecom", "host": creds["base_url"],
                       "login": creds["api_key"], "password": creds["api_secret"],
                       "extra": {"language": creds["language"]}, **overrides})


@pytest.fixture(scope="module")
def sandboxes():
    from koppel.sandbox import lightspeed, quickbooks

    with SandboxServer(lightspeed.create_app(seed=1, orders=4, products=3, customers=2)) as ls, \
            SandboxServer(lightspeed.create_app(seed=2, orders=2, products=2, customers=1,
                                                currency="USD")) as ls_usd, \
            SandboxServer(quickbooks.create_app(seed=1)) as qb:
        yield {"ls": _credentials(ls.url), "ls_usd": _credentials(ls_usd.url),
               "qb": _credentials(qb.url)}


def _tenant_file(folder: Path, name: str, connections: dict, settings: dict) -> None:
    data = json.loads((MAPPINGS / "demo.json").read_text())
    data["tenant"] = name
    data["connections"] = connections
    data["settings"].update(settings)
    (folder / f"{name}.json").write_text(json.dumps(data))


@pytest.fixture(scope="module")
def doctor_runs(sandboxes, airflow_db, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("doctor")
    folder = tmp / "mappings"
    folder.mkdir()
    _tenant_file(folder, "broken",
                 {"lightspeed": "lightspeed_usd", "quickbooks": "quickbooks_demo"},
                 {"tax_codes": {"21": "22%", "9": "21%", "0": "0%"},
                  "products": {"inventory": True, "accounts": {
                      "income": "Omzet webshop", "expense": "Cost of Goods Sold",
                      "asset": "Inventory Asset"}}})
    _tenant_file(folder, "broken_conn",
                 {"lightspeed": "lightspeed_bad", "quickbooks": "quickbooks_wrong_type"}, {})
    ls, qb = sandboxes["ls"], sandboxes["qb"]
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("AIRFLOW_CONN_")}
    env.update({
        "KOPPEL_STATE_DB_URL": f"sqlite:///{tmp / 'state.db'}",
        "PYTHONPATH": str(ROOT),
        "AIRFLOW_CONN_LIGHTSPEED_USD": _ls_conn(sandboxes["ls_usd"]),
        "AIRFLOW_CONN_LIGHTSPEED_BAD": _ls_conn(ls, password="0" * 32),
        "AIRFLOW_CONN_QUICKBOOKS_WRONG_TYPE": json.dumps({"conn_type": "http",
                                                          "host": qb["api_base_url"]}),
    })
    db_connections = {
        "lightspeed_demo": json.loads(_ls_conn(ls)),
        "quickbooks_demo": {
            "conn_type": "quickbooks_online", "host": qb["api_base_url"],
            "login": qb["client_id"], "password": qb["client_secret"],
            "extra": {"realm_id": qb["realm_id"], "refresh_token": qb["refresh_token"],
                      "environment": qb["discovery_url"], "minor_version": 75}},
    }
    runs = [["demo", str(MAPPINGS)], ["broken", str(folder)], ["broken_conn", str(folder)]]
    proc = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(runs),
                           json.dumps(db_connections)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT "):]), sandboxes


def _problems(output: str) -> dict[str, str]:
    """``field -> message (+ choices line)`` of each PROBLEM in the printed report."""
    out: dict[str, str] = {}
    current = None
    for line in output.splitlines():
        if line.startswith("  PROBLEM "):
            field, _, message = line[len("  PROBLEM "):].partition(": ")
            if field in out:  # a second finding on the same field: asserted separately
                current = None
                continue
            out[field] = message
            current = field
        elif current and line.startswith("          choose from: "):
            out[current] += " | " + line.strip()
        else:
            current = None
    return out


def _report_lines(output: str) -> list[str]:
    """The report without Airflow's own log lines (its logger writes to stdout too)."""
    return [line for line in output.splitlines() if not re.match(r"\d{4}-\d\d-\d\dT", line)]


def test_demo_passes(doctor_runs):
    results, _ = doctor_runs
    demo = results["demo"]
    assert demo["code"] == 0, demo["output"]
    assert "  PROBLEM " not in demo["output"]
    lines = _report_lines(demo["output"])
    assert lines[0] == "koppel doctor: tenant demo"
    assert lines[-1].startswith("0 problem(s), 7 note(s), ")
    assert "  ok      pool koppel_demo_quickbooks: exists (4 slots)" in lines
    assert "  ok      settings.multicurrency: the shop sells in EUR, the company's home " \
           "currency" in lines


def test_broken_tenant_names_every_problem(doctor_runs):
    results, sandboxes = doctor_runs
    broken = results["broken"]
    assert broken["code"] == 1
    problems = _problems(broken["output"])
    tax_choices = ("choose from: 0% (0 %), 0% Export (0 %), 0% ICP (0 %), 21% (21 %), "
                   "9% (9 %), Exempt (0 %)")
    items = "choose from: Services, Shipping"
    cannot = ", and koppel cannot create it: the income account 'Omzet webshop' " \
             "(settings.products.accounts.income) does not exist"
    assert problems == {
        "settings.tax_codes.21": f"QuickBooks has no tax code named '22%' | {tax_choices}",
        "settings.tax_codes.9": f"tax code '21%' charges 21 %, not 9 % | {tax_choices}",
        "settings.products.accounts.income":
            "QuickBooks has no account named 'Omzet webshop' | choose from: Discounts given, "
            "Sales of Product "
            "Income, Services, Shipping Income",
        "settings.shipping_item": f"QuickBooks has no item named 'Verzendkosten'{cannot} | {items}",
        "settings.payment_fee_item": f"QuickBooks has no item named 'Betaalkosten'{cannot} | {items}",
        "settings.discount_item": f"QuickBooks has no item named 'Korting'{cannot} | {items}",
        "settings.rounding.item": f"QuickBooks has no item named 'Afronding'{cannot} | {items}",
        "settings.fallback_item_sku": f"QuickBooks has no item with SKU 'ONBEKEND'{cannot}",
        "settings.multicurrency": (
            "the shop sells in USD but the QuickBooks company's home currency is EUR and "
            "multicurrency is off: turn multicurrency on in QuickBooks (Account and settings "
            "→ Advanced → Currency) and add USD, or connect a company whose home currency is "
            "USD"),
        "pool koppel_broken_lightspeed": "the pool does not exist, so the tenant's Lightspeed "
                                         "eCom tasks are never scheduled: run `koppel pools "
                                         "broken --apply`",
        "pool koppel_broken_quickbooks": "the pool does not exist, so the tenant's QuickBooks "
                                         "Online tasks are never scheduled: run `koppel pools "
                                         "broken --apply`",
    }
    # the second currency finding (the tenant setting) shares the field: both are printed
    assert "  PROBLEM settings.multicurrency: the shop sells in USD, not in the company's " \
           "home currency EUR: set settings.multicurrency to true" in broken["output"]
    assert _report_lines(broken["output"])[-1].startswith("12 problem(s), ")
    for secret in (sandboxes["qb"]["client_secret"], sandboxes["qb"]["refresh_token"],
                   sandboxes["ls_usd"]["api_secret"]):
        assert secret not in broken["output"]


def test_bad_connections_are_named(doctor_runs):
    results, sandboxes = doctor_runs
    broken = results["broken_conn"]
    assert broken["code"] == 1
    problems = _problems(broken["output"])
    assert problems["connections.lightspeed (lightspeed_bad)"].startswith(
        "Access denied: check the API key and secret")
    assert problems["connections.quickbooks (quickbooks_wrong_type)"] == (
        "the Airflow connection 'quickbooks_wrong_type' has type 'http'; it needs "
        "'quickbooks_online' (QuickBooks Online)")
    assert problems["settings"] == ("accounts, tax codes, items, payment methods and terms "
                                    "not checked: the QuickBooks connection does not work")
    assert "0" * 32 not in broken["output"]
