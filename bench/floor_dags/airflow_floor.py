"""The DAG folder of Airflow's floor (``python -m bench.runner --floor N``): one DAG of
``BENCH_FLOOR_TASKS`` Python tasks that do nothing. ``dag.test()`` runs the DAGs its
bundle holds, so the floor has a folder of its own; koppel's DAGs stay in ``dags/``."""

import os

from bench.runner import floor_dag

dag = floor_dag(int(os.environ.get("BENCH_FLOOR_TASKS", "3")))
