"""Every DAG file imports without error, quickly, and every DAG is well described."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[1] / "dags"


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    started = time.perf_counter()
    bag = DagBag(dag_folder=str(DAGS))
    elapsed = time.perf_counter() - started
    print(f"\nDAG folder parse: {len(bag.dags)} DAGs from {DAGS} in {elapsed * 1000:.0f} ms")
    return bag


def test_dag_files_import_without_errors(dagbag):
    assert dagbag.import_errors == {}, dagbag.import_errors


def test_every_dag_is_described(dagbag):
    assert dagbag.dags, "the DAG folder produced no DAGs"
    for dag_id, dag in dagbag.dags.items():
        assert dag.owner and dag.owner != "airflow", f"{dag_id}: set an owner"
        assert dag.tags, f"{dag_id}: no tags"
        assert dag.description, f"{dag_id}: no description"
        for task in dag.tasks:
            assert task.retries >= 1, f"{dag_id}.{task.task_id}: no retries"
