"""Airflow listener that (re)installs koppel's log redaction in the task process right
before a task executes (``on_task_instance_running`` runs after Airflow configured the
task's logging, both under a real task runner and under ``dag.test()``).

Why at run time: a worker process (LocalExecutor, Celery) forks the task process from a
parent that may already have imported koppel, so koppel's import-time install does not
run again in the child, while the child's logging set-up replaces structlog's processor
chain. Registered by ``plugins/koppel_log_redaction.py``."""

from __future__ import annotations

try:  # Airflow 3: the listener hook marker
    from airflow.listeners import hookimpl
except ImportError:  # pragma: no cover - task-SDK-only installation
    from airflow.sdk._shared.listeners import hookimpl


@hookimpl
def on_task_instance_running(previous_state, task_instance):
    from koppel.privacy import install_log_redaction

    install_log_redaction()
