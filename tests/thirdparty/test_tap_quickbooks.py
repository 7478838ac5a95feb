"""tap-quickbooks, the Singer tap for QuickBooks Online by singer-io/Stitch (PyPI 2.5.0,
AGPL-3.0, so installed from PyPI into ``.venv/thirdparty``, not vendored), run unmodified
against the QBO sandbox in discover and sync mode, as its README describes
(``tap-quickbooks --config config.json --discover``, then ``--catalog``).

Only its endpoints are pointed at the sandbox (see ``run_tap_quickbooks.py``: the tap has
no endpoint setting, so its three URL constants are set). The realm is the US sample
company (Intuit's "Craig's Design and Landscaping Services", see
``koppel/sandbox/quickbooks/sample_company.py``).

What is checked: the tap exits 0; discovery lists the tap's 31 streams; a sync of every
stream but ``profit_loss_report`` (the sandbox serves no Reports API) emits exactly the
rows the sandbox holds per entity (read back from its control plane), including one
deleted invoice through change data capture; and the sandbox answered every request 200
(no 404, no fault). Sources: the tap's README and ``tap_quickbooks/{client,sync,streams}.py``
(PyPI sdist 2.5.0); Intuit's batch and CDC references
(https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/batch,
https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/changedatacapture).

Token: the tap refreshes its token itself (``requests_oauthlib`` with the client id and
secret in the form body, ``client_secret_post``, which Intuit's discovery document
advertises next to HTTP Basic and the sandbox's token endpoint accepts); the sync runs in
the tap's documented ``--dev`` mode with an access token obtained at the sandbox's token
endpoint, as Intuit's OAuth 2.0 Playground hands one out, and the refresh path is
``test_tap_refreshes_its_token``."""

from __future__ import annotations

import json
import os
import subprocess
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from quickbooks_fixtures import qbo_server, sandbox  # noqa: F401  (fixtures)

pytestmark = pytest.mark.thirdparty

LAUNCHER = Path(__file__).with_name("run_tap_quickbooks.py")
TIMEOUT = 120

#: Every stream tap-quickbooks 2.5.0 discovers (tap_quickbooks/streams.py).
TAP_STREAMS = {
    "accounts": "Account", "bill_payments": "BillPayment", "bills": "Bill",
    "budgets": "Budget", "classes": "Class", "credit_memos": "CreditMemo",
    "customers": "Customer", "customer_types": "CustomerType", "departments": "Department",
    "deposits": "Deposit", "employees": "Employee", "estimates": "Estimate",
    "invoices": "Invoice", "items": "Item", "journal_entries": "JournalEntry",
    "payment_methods": "PaymentMethod", "payments": "Payment",
    "purchase_orders": "PurchaseOrder", "purchases": "Purchase",
    "refund_receipts": "RefundReceipt", "sales_receipts": "SalesReceipt",
    "tax_agencies": "TaxAgency", "tax_codes": "TaxCode", "tax_rates": "TaxRate",
    "terms": "Term", "time_activities": "TimeActivity", "transfers": "Transfer",
    "vendor_credits": "VendorCredit", "vendors": "Vendor",
}
STANDARD_STREAMS = {"profit_loss_report", "deleted_objects"}
#: Entities the sandbox holds none of (koppel.sandbox.quickbooks.entities.UNMODELLED):
#: queried and answered empty, so their streams must finish with no rows.
UNMODELLED = {"BillPayment", "Bill", "Budget", "Department", "Deposit", "Estimate",
              "JournalEntry", "PurchaseOrder", "Purchase", "TaxAgency", "TimeActivity",
              "Transfer", "VendorCredit"}
NOT_SERVED = {"profit_loss_report"}  # GET /reports/ProfitAndLoss: no Reports API


def _us_realm(sandbox: httpx.Client) -> dict:
    us = next(r for r in sandbox.get("/_sandbox/realms").json() if r["region"] == "US")
    return sandbox.get("/_sandbox/credentials", params={"realm": us["realm_id"]}).json()


def _access_token(sandbox: httpx.Client, creds: dict) -> dict:
    """A token pair from the sandbox's token endpoint (HTTP Basic client auth)."""
    answer = sandbox.post("/oauth2/v1/tokens/bearer",
                          data={"grant_type": "refresh_token",
                                "refresh_token": creds["refresh_token"]},
                          auth=(creds["client_id"], creds["client_secret"]))
    answer.raise_for_status()
    return answer.json()


def _config(tmp_path: Path, creds: dict, **extra) -> Path:
    # Intuit's CDC answers changedSince only within the last 30 days; the tap uses
    # start_date as changedSince, so a start date 29 days back reads everything the
    # sandbox seeded (all of it written at reset).
    start = (datetime.now(timezone.utc) - timedelta(days=29)).strftime("%Y-%m-%dT%H:%M:%SZ")
    config = {"start_date": start, "user_agent": "koppel third-party test",
              "realm_id": creds["realm_id"], "client_id": creds["client_id"],
              "client_secret": creds["client_secret"], "refresh_token": creds["refresh_token"],
              "sandbox": "true", **extra}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return path


def _run_tap(python: Path, server_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TAP_QUICKBOOKS_API_BASE": server_url,
           "TAP_QUICKBOOKS_TOKEN_URL": f"{server_url}/oauth2/v1/tokens/bearer",
           # requests-oauthlib refuses plain http; the sandbox serves http on loopback.
           "OAUTHLIB_INSECURE_TRANSPORT": "1"}
    return subprocess.run([str(python), str(LAUNCHER), *args], capture_output=True, text=True,
                          env=env, timeout=TIMEOUT)


def _held(sandbox: httpx.Client, realm_id: str, entity: str) -> list[dict]:
    answer = sandbox.get(f"/_sandbox/realms/{realm_id}/entities/{entity.lower()}")
    answer.raise_for_status()
    return answer.json()[entity]


def _delete_invoice(sandbox: httpx.Client, server_url: str, creds: dict, token: str) -> str:
    """Delete one sample invoice through the API (``operation=delete``), so change data
    capture has a deletion to report."""
    invoice = next(i for i in _held(sandbox, creds["realm_id"], "Invoice")
                   if not i.get("LinkedTxn"))
    answer = httpx.post(f"{server_url}/v3/company/{creds['realm_id']}/invoice",
                        params={"operation": "delete", "minorversion": 75},
                        json={"Id": invoice["Id"], "SyncToken": invoice["SyncToken"]},
                        headers={"Authorization": f"Bearer {token}",
                                 "Accept": "application/json"}, timeout=30)
    answer.raise_for_status()
    assert answer.json()["Invoice"]["status"] == "Deleted"
    return invoice["Id"]


def test_tap_discovers_and_syncs_every_stream_the_sandbox_serves(
        thirdparty_python, qbo_server, sandbox, tmp_path):
    creds = _us_realm(sandbox)
    tokens = _access_token(sandbox, creds)
    deleted_id = _delete_invoice(sandbox, qbo_server.url, creds, tokens["access_token"])
    config = _config(tmp_path, creds, access_token=tokens["access_token"],
                     refresh_token=tokens["refresh_token"])
    sandbox.post("/_sandbox/stats/reset").raise_for_status()

    discover = _run_tap(thirdparty_python, qbo_server.url, "--config", str(config), "--dev",
                        "--discover")
    assert discover.returncode == 0, discover.stderr[-3000:]
    catalog = json.loads(discover.stdout)
    assert {s["tap_stream_id"] for s in catalog["streams"]} == \
        set(TAP_STREAMS) | STANDARD_STREAMS

    for stream in catalog["streams"]:
        for entry in stream["metadata"]:
            if entry["breadcrumb"] == []:
                entry["metadata"]["selected"] = stream["tap_stream_id"] not in NOT_SERVED
    catalog_path = tmp_path / "catalog.json"
    catalog_path.write_text(json.dumps(catalog))

    sync = _run_tap(thirdparty_python, qbo_server.url, "--config", str(config), "--dev",
                    "--catalog", str(catalog_path))
    assert sync.returncode == 0, sync.stderr[-3000:]
    messages = [json.loads(line) for line in sync.stdout.splitlines() if line.strip()]
    records = [m for m in messages if m["type"] == "RECORD"]
    counts = Counter(m["stream"] for m in records)

    expected = {}
    for stream, entity in TAP_STREAMS.items():
        expected[stream] = 0 if entity in UNMODELLED else \
            len(_held(sandbox, creds["realm_id"], entity))
    assert {s: counts.get(s, 0) for s in TAP_STREAMS} == expected
    # The sample company is not empty: the comparison above is not vacuous.
    assert expected["invoices"] > 0 and expected["customers"] > 0 and expected["items"] > 0
    assert deleted_id not in {r["record"]["Id"] for r in records if r["stream"] == "invoices"}
    deleted = [r["record"] for r in records if r["stream"] == "deleted_objects"]
    # The tap yields only CDC rows with status "Deleted" (its schema then drops "status").
    assert [(d["Id"], d["Type"]) for d in deleted] == [(deleted_id, "Invoice")]
    schemas = {m["stream"] for m in messages if m["type"] == "SCHEMA"}
    assert schemas == (set(TAP_STREAMS) | STANDARD_STREAMS) - NOT_SERVED

    stats = sandbox.get("/_sandbox/stats").json()
    assert stats["by_status"] == {"200": stats["total"]}, stats
    assert stats["faults"] == {}
    assert stats["by_route"] == {
        "GET /v3/company/{realm_id}/companyinfo/{company_id}": 1,  # discovery's auth check
        "POST /v3/company/{realm_id}/batch": 2,  # one batch of 29 queries, one to see the end
        "GET /v3/company/{realm_id}/cdc": 1,  # deleted_objects: one CDC call, 24 entities
    }


def test_tap_refreshes_its_token(thirdparty_python, qbo_server, sandbox, tmp_path):
    """Without ``--dev`` the tap starts from a refresh token, refreshes at
    ``TOKEN_REFRESH_URL`` and writes the rotated refresh token back to its config file."""
    creds = _us_realm(sandbox)
    config = _config(tmp_path, creds)
    discover = _run_tap(thirdparty_python, qbo_server.url, "--config", str(config),
                        "--discover")
    assert discover.returncode == 0, discover.stderr[-3000:]
    written = json.loads(config.read_text())
    assert written["refresh_token"] != creds["refresh_token"]
    assert written["access_token"]
