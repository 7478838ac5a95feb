"""``[core] hostname_callable`` for the native cluster's workers.

Both Celery workers of the test cluster run on one machine, so the host name Airflow
records on a task instance would not tell them apart. Each worker gets
``KOPPEL_WORKER_NAME`` (``w1``, ``w2``) and this callable, so a task instance's
``hostname`` names the worker that ran it (as it names the machine in production)."""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    return os.environ.get("KOPPEL_WORKER_NAME") or socket.getfqdn()
