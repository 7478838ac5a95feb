"""Registers koppel's pool listener (see ``koppel/pool_listener.py``): when the scheduler
starts a run of a koppel DAG, a missing tenant pool is created (or the run fails naming
it) instead of the run's tasks waiting forever. Thin: imported by every Airflow
component."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from koppel import pool_listener


class KoppelPoolsPlugin(AirflowPlugin):
    name = "koppel_pools"
    listeners = [pool_listener]
