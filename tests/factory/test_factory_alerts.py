"""Failure alerts of a tenant's flow, delivered for real: an SMTP server (aiosmtpd) and a
webhook receiver (http.server) on loopback get the alert that Airflow's failure callback
sends when a task of the flow fails."""

from __future__ import annotations

import email
import email.policy
import html
import json
from decimal import Decimal
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

pytestmark = pytest.mark.e2e

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
RECIPIENT = "ops@webshop-koppel.example"


class _Inbox:
    """aiosmtpd handler: keeps every message it is handed."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((list(envelope.rcpt_tos), message))
        return "250 OK"


@pytest.fixture
def smtp_server():
    from aiosmtpd.controller import Controller

    with socket.socket() as probe:  # aiosmtpd checks its own port: give it a free one
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    inbox.port = port
    yield inbox
    controller.stop()


@pytest.fixture
def webhook_server():
    posts: list[dict] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            posts.append({"path": self.path, "content_type": self.headers.get("Content-Type"),
                          "body": body})
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):  # keep the test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.posts = posts
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def alerting_tenant(make_tenant, shop_factory, smtp_server, webhook_server, monkeypatch):
    """``alerting_tenant(settings=...)``: a tenant whose alerts go to the two local
    servers (e-mail through the ``smtp_default`` connection, the webhook through the
    tenant's ``connections.alerts_webhook``)."""

    def make(settings: dict | None = None, **sizes):
        shop = shop_factory(**sizes)
        tenant = make_tenant(shop, settings={"alerts": {"emails": [RECIPIENT]},
                                             **(settings or {})})
        path = tenant.mappings_dir / f"{tenant.tenant}.json"
        doc = json.loads(path.read_text())
        doc["connections"]["alerts_webhook"] = f"alerts_{tenant.tenant}"
        path.write_text(json.dumps(doc, indent=2))
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps({
            "conn_type": "smtp", "host": "127.0.0.1", "port": smtp_server.port,
            "extra": {"disable_ssl": True, "disable_tls": True, "timeout": 10,
                      "retry_limit": 0, "from_email": "koppel@alerts.example"}}))
        monkeypatch.setenv(f"AIRFLOW_CONN_ALERTS_{tenant.tenant.upper()}", json.dumps({
            "conn_type": "http",
            "host": f"http://127.0.0.1:{webhook_server.server_port}/hooks/koppel"}))
        return tenant

    return make


def _wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()


def _secrets(tenant, *extra: str) -> list[str]:
    """Every credential the tenant's connections hold."""
    import os

    values = list(extra)
    for conn in ("LS", "QB"):
        raw = json.loads(os.environ[f"AIRFLOW_CONN_{conn}_{tenant.tenant.upper()}"])
        values += [raw.get("login"), raw.get("password")]
        values += [v for k, v in (raw.get("extra") or {}).items()
                   if k in ("refresh_token", "client_secret", "access_token")]
    return [v for v in values if v]


def _delivered(smtp_server, webhook_server):
    assert _wait_for(lambda: smtp_server.messages and webhook_server.posts), \
        (smtp_server.messages, webhook_server.posts)
    assert len(smtp_server.messages) == 1, [m["Subject"] for _, m in smtp_server.messages]
    assert len(webhook_server.posts) == 1, webhook_server.posts
    recipients, message = smtp_server.messages[0]
    post = webhook_server.posts[0]
    assert post["path"] == "/hooks/koppel"
    assert post["content_type"] == "application/json"
    text = json.loads(post["body"])["text"]
    body = message.get_body(("html", "plain")).get_content()
    assert html.unescape(re.sub(r"</?pre>", "", body)).strip() == text.strip()
    return recipients, message, text


def test_refused_credentials_alert_by_email_and_webhook(alerting_tenant, smtp_server,
                                                        webhook_server, monkeypatch):
    import os

    tenant = alerting_tenant(orders=6)
    # QuickBooks refuses the app's credentials: the first task that talks to it fails
    qb_var = f"AIRFLOW_CONN_QB_{tenant.tenant.upper()}"
    qb = json.loads(os.environ[qb_var])
    real_secret, qb["password"] = qb["password"], "not-the-client-secret"
    monkeypatch.setenv(qb_var, json.dumps(qb))

    run = tenant.run("orders")
    assert run.state == "failed"
    recipients, message, text = _delivered(smtp_server, webhook_server)

    assert recipients == [RECIPIENT]
    assert message["Subject"] == f"koppel: orders failed for tenant {tenant.tenant}"
    lines = text.splitlines()
    assert f"tenant: {tenant.tenant}" in lines
    assert "flow: orders" in lines
    assert f"run: {run.run_id}" in lines
    assert any(line.startswith("task: exists_check") for line in lines), text
    error = next(line for line in lines if line.startswith("error: "))
    assert "AuthError" in error, error
    # no e-mail address (the recipients', the shop's customers') and no credential
    assert not EMAIL.search(text), text
    for secret in _secrets(tenant, real_secret, "not-the-client-secret"):
        assert secret not in text, "a credential is in the alert"
        assert secret not in message.as_string()


def test_record_errors_over_the_threshold_alert_with_the_first_errors(
        alerting_tenant, smtp_server, webhook_server):
    """Record errors past the tenant's threshold fail the run's check_error_threshold task:
    the alert lists the run's first five record errors (ids and reasons), never a
    customer's data."""
    tenant = alerting_tenant(settings={"unknown_sku": "fail",
                                       "error_threshold": {"max_count": 0,
                                                           "max_fraction": None}},
                             orders=3)
    bad = tenant.shop.control.post("/orders", json={"orders": [{
        "person": {"email": f"klant{n}@example.nl", "firstname": "Jan", "lastname": "Klant"},
        "lines": [{"sku": f"NOT-IN-QBO-{n}", "title": "Ghost", "price_incl": "5.00",
                   "tax_rate": "0.21", "quantity": 1}],
        "status": "completed_shipped", "payment_status": "paid"} for n in range(7)]}).json()

    run = tenant.run("orders")
    assert run.state == "failed"
    recipients, message, text = _delivered(smtp_server, webhook_server)
    assert recipients == [RECIPIENT]
    lines = text.splitlines()
    assert f"tenant: {tenant.tenant}" in lines and "flow: orders" in lines
    assert f"run: {run.run_id}" in lines
    assert any(line.startswith("task: check_error_threshold") for line in lines), text
    failures = sorted((r for r in tenant.activity("orders", run.run_id)
                       if r["action"] == "failed"), key=lambda r: r["id"])
    assert {str(o["id"]) for o in bad["orders"]} <= {r["source_id"] for r in failures}
    assert len(failures) > 5
    first = lines.index("first record errors:")
    listed = [line.strip() for line in lines[first + 1:]]
    assert listed == [f"order {r['source_id']}: {r['reason']}" for r in failures[:5]]
    assert all("unknown SKU" in line for line in listed)
    assert not EMAIL.search(text), text
    assert "Klant" not in text
    for secret in _secrets(tenant):
        assert secret not in text

    # the next run retries them and they fail again: already reported, so no new alert
    smtp_server.messages.clear()
    webhook_server.posts.clear()
    again = tenant.run("orders")
    assert again.state == "success"
    retried = {r["source_id"] for r in tenant.activity("orders", again.run_id)
               if r["action"] == "failed"}
    assert {str(o["id"]) for o in bad["orders"]} <= retried
    assert not smtp_server.messages and not webhook_server.posts


def test_the_webhook_still_gets_the_alert_when_the_mail_server_is_down(
        alerting_tenant, webhook_server, monkeypatch):
    import os

    tenant = alerting_tenant(orders=2)
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    smtp = json.loads(os.environ["AIRFLOW_CONN_SMTP_DEFAULT"])
    smtp["port"] = closed
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps(smtp))
    qb_var = f"AIRFLOW_CONN_QB_{tenant.tenant.upper()}"
    qb = json.loads(os.environ[qb_var])
    qb["password"] = "not-the-client-secret"
    monkeypatch.setenv(qb_var, json.dumps(qb))

    run = tenant.run("orders")
    assert run.state == "failed"
    assert _wait_for(lambda: webhook_server.posts)
    assert len(webhook_server.posts) == 1
    text = json.loads(webhook_server.posts[0]["body"])["text"]
    assert f"run: {run.run_id}" in text.splitlines()


def test_a_document_booked_with_other_figures_than_the_shops_is_a_conflict_and_alerted(
        alerting_tenant, smtp_server, webhook_server):
    """``vat_amounts: quickbooks`` on a tax-exclusive tenant: QuickBooks rounds VAT per rate
    (round(4.55 × 9 %) = 0.41) where the customer's invoice says 5 × 0.08 = 0.40. The
    document QuickBooks returns is checked against the shop's figures: a conflict naming
    both, counted by the error threshold, and an alert — the run itself succeeds."""
    tenant = alerting_tenant(settings={"unknown_sku": "create_item", "prices_include_tax": False,
                                       "vat_amounts": "quickbooks",
                                       "error_threshold": {"max_count": 5, "max_fraction": None}},
                             orders=0)
    made = tenant.shop.control.post("/orders", json={"orders": [{
        "person": {"email": "drop@example.nl", "firstname": "Jan", "lastname": "Drop"},
        "lines": [{"sku": f"DROP-{n}", "title": "Drop", "price_incl": "0.33",
                   "tax_rate": "0.09", "quantity": 3} for n in range(5)],
        "shipping_incl": "0", "payment_fee_incl": "0", "status": "completed_shipped",
        "payment_status": "paid"}]}).json()["orders"][0]
    assert [(Decimal(str(t["rate"])), Decimal(str(t["amount"]))) for t in made["taxRates"]] \
        == [(Decimal("0.09"), Decimal("0.40"))]

    run = tenant.run("orders")
    assert run.state == "success"
    (entry,) = [r for r in tenant.activity("orders", run.run_id) if r["source_id"] == str(made["id"])]
    assert entry["action"] == "conflict"
    assert entry["reason"] == (f"created SalesReceipt {entry['target_id']} differs from the "
                               "shop: VAT 9% 0.41 (shop 0.40)")
    # QuickBooks would book 5.0 + 0.41: a rounding line (0 % VAT) keeps the total
    assert entry["details"]["booked"] == {"total": "4.95", "vat": {"9": "0.41", "0": "0.00"}}
    assert entry["details"]["shop"] == {"total": "4.95", "vat": {"9": "0.40"}}
    (doc,) = [d for d in tenant.entities("SalesReceipt") if d["Id"] == entry["target_id"]]
    assert doc["TotalAmt"] == 4.95
    recipients, message, text = _delivered(smtp_server, webhook_server)
    assert "1 document(s) in QuickBooks differ from the shop" in text
    assert f"order {made['id']}: created SalesReceipt {entry['target_id']} differs from the " \
           "shop: VAT 9% 0.41 (shop 0.40)" in text
    assert not EMAIL.search(text) and "Drop" not in text

    # reported once: the next run finds it booked and neither books nor alerts again
    smtp_server.messages.clear()
    webhook_server.posts.clear()
    assert tenant.run("orders").state == "success"
    assert len(tenant.entities("SalesReceipt")) == 1
    assert not smtp_server.messages and not webhook_server.posts
