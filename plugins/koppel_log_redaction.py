"""Registers koppel's log-redaction listener (see ``koppel/log_redaction_listener.py``):
task logs carry no e-mail addresses or phone numbers. Thin: imported by every Airflow
component."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from koppel import log_redaction_listener


class KoppelLogRedactionPlugin(AirflowPlugin):
    name = "koppel_log_redaction"
    listeners = [log_redaction_listener]
