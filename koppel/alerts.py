"""Alerts on task failure, per tenant: e-mail over SMTP and a JSON webhook (Slack's
incoming-webhook format), as an Airflow notifier.

The message names tenant, flow, run and task, links to the task log and lists the first
record errors of the run from the activity log (ids and reasons only: no personal data).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from airflow.sdk import BaseNotifier

log = logging.getLogger(__name__)


class KoppelFailureNotifier(BaseNotifier):
    """Sends one alert per failed task to the tenant's e-mail recipients and webhook."""

    template_fields = ()

    def __init__(self, *, tenant: str, flow: str, email_to: list[str] | None = None,
                 smtp_conn_id: str = "smtp_default", email_from: str | None = None,
                 webhook_conn_id: str | None = None) -> None:
        super().__init__()
        self.tenant = tenant
        self.flow = flow
        self.email_to = list(email_to or [])
        self.smtp_conn_id = smtp_conn_id
        self.email_from = email_from
        self.webhook_conn_id = webhook_conn_id

    def message(self, context: dict[str, Any]) -> dict[str, Any]:
        ti = context.get("ti") or context.get("task_instance")
        run_id = context.get("run_id") or getattr(context.get("dag_run"), "run_id", "")
        exception = context.get("exception")
        errors = first_record_errors(self.tenant, self.flow, run_id)
        title = f"koppel: {self.flow} failed for tenant {self.tenant}"
        lines = [
            title,
            f"tenant: {self.tenant}",
            f"flow: {self.flow}",
            f"run: {run_id}",
            f"task: {getattr(ti, 'task_id', '?')} (try {getattr(ti, 'try_number', '?')})",
            f"log: {_log_url(ti)}",
        ]
        if exception is not None:
            lines.append(f"error: {type(exception).__name__}: {str(exception)[:500]}")
        if errors:
            lines.append("first record errors:")
            lines.extend(f"  {e}" for e in errors)
        return {"title": title, "text": "\n".join(lines), "errors": errors}

    def conflict_message(self, context: dict[str, Any], lines: list[str],
                         total: int) -> dict[str, Any]:
        """Documents booked with other figures than the shop's (ids, amounts, no
        personal data)."""
        run_id = context.get("run_id") or getattr(context.get("dag_run"), "run_id", "")
        title = (f"koppel: {total} document(s) in QuickBooks differ from the shop "
                 f"({self.flow}, tenant {self.tenant})")
        text = [title, f"tenant: {self.tenant}", f"flow: {self.flow}", f"run: {run_id}",
                "differences (booked vs shop):", *(f"  {line}" for line in lines)]
        if total > len(lines):
            text.append(f"  … and {total - len(lines)} more on the koppel dashboard")
        return {"title": title, "text": "\n".join(text), "errors": lines}

    def notify_conflicts(self, context: dict[str, Any], lines: list[str], total: int) -> None:
        self._send(self.conflict_message(context, lines, total))

    def notify(self, context: dict[str, Any]) -> None:
        self._send(self.message(context))

    def _send(self, msg: dict[str, Any]) -> None:
        failed = []
        if self.email_to:
            try:
                self._send_email(msg)
            except Exception:  # one channel down must not silence the other
                log.exception("koppel alert e-mail for %s/%s failed", self.tenant, self.flow)
                failed.append("e-mail")
        if self.webhook_conn_id:
            try:
                self._post_webhook(msg)
            except Exception:
                log.exception("koppel alert webhook for %s/%s failed", self.tenant, self.flow)
                failed.append("webhook")
        if failed:
            raise RuntimeError(f"koppel alert for {self.tenant}/{self.flow}: "
                               f"{' and '.join(failed)} not delivered")
        log.info("koppel alert sent for %s/%s", self.tenant, self.flow)

    def _send_email(self, msg: dict[str, Any]) -> None:
        from airflow.providers.smtp.hooks.smtp import SmtpHook

        with SmtpHook(smtp_conn_id=self.smtp_conn_id) as smtp:
            smtp.send_email_smtp(to=self.email_to, subject=msg["title"],
                                 html_content="<pre>" + _html_escape(msg["text"]) + "</pre>",
                                 from_email=self.email_from)

    def _post_webhook(self, msg: dict[str, Any]) -> None:
        from airflow.providers.http.hooks.http import HttpHook

        HttpHook(method="POST", http_conn_id=self.webhook_conn_id).run(
            endpoint=None, data=json.dumps({"text": msg["text"]}),
            headers={"Content-Type": "application/json"})


def _log_url(ti: Any) -> str:
    try:
        return ti.log_url
    except Exception:  # a task instance without a log url (e.g. in unit tests)
        return "(no log url)"


def _html_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def first_record_errors(tenant: str, flow: str, run_id: str, limit: int = 5) -> list[str]:
    from koppel.store.state import StateStore

    try:
        # the activity log answers newest first: read the run's failures, keep the first
        rows = StateStore().activity(tenant=tenant, flow=flow, run_id=run_id, action="failed",
                                     limit=100_000)
    except Exception as exc:  # the alert must go out even if the state DB is unreachable
        return [f"(activity log unavailable: {type(exc).__name__})"]
    rows = sorted(rows, key=lambda r: r["id"])[:limit]
    return [f"{r['source_type']} {r['source_id']}: {r['reason']}" for r in rows]


def notifiers_for(tenant: Any, flow: str) -> list[KoppelFailureNotifier]:
    alerts = tenant.settings.alerts
    email_to = list(getattr(alerts, "emails", None) or [])
    webhook = getattr(tenant.connections, "alerts_webhook", None)
    if not email_to and not webhook:
        return []
    return [KoppelFailureNotifier(
        tenant=tenant.tenant, flow=flow, email_to=email_to,
        smtp_conn_id=getattr(alerts, "smtp_conn_id", None) or "smtp_default",
        email_from=getattr(alerts, "email_from", None), webhook_conn_id=webhook)]
