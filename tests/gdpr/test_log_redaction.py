"""Task logs carry no e-mail addresses or phone numbers, under ``dag.test()`` and under
the real task runner (forked task process, logs sent to the supervisor, written to the
task log file): koppel's redaction is installed by the koppel_log_redaction plugin's
listener when a task starts, and by importing koppel."""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

import pytest

from conftest import real_task_runner

HERE = Path(__file__).resolve().parent
DAG_FILE = HERE / "dags" / "koppel_gdpr_leaky.py"


@pytest.fixture
def leaky_dags_folder(monkeypatch):
    """The leaky DAG's folder as the DAGs folder (the dags-folder bundle) for this test:
    ``dag.test()`` serialises the DAG from there and the task process parses it there."""
    from airflow import settings

    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(DAG_FILE.parent))
    monkeypatch.setattr(settings, "DAGS_FOLDER", str(DAG_FILE.parent))  # read at import
    return DAG_FILE.parent


def _leaky_dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAG_FILE))
    assert not bag.import_errors, bag.import_errors
    return bag.dags["koppel_gdpr_leaky"]


def _leaks() -> dict[str, str]:
    spec = importlib.util.spec_from_file_location("_leaky", DAG_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.LEAKS


def test_the_koppel_logger_scrubs_in_place_before_any_handler():
    import koppel  # noqa: F401  (installs the redaction)

    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    root = logging.getLogger()
    handler = Keep()
    root.addHandler(handler)
    try:
        logging.getLogger("koppel.x.y").warning("ask %s, %s", "a.b@example.com", "06-12345678")
    finally:
        root.removeHandler(handler)
    assert records == ["ask <email>, <phone>"]


def test_dag_test_task_logs_are_redacted(airflow_db, leaky_dags_folder, capfd):
    leaks = _leaks()
    run = _leaky_dag().test()
    assert run.state == "failed"  # the task raised, its traceback was logged
    out, err = capfd.readouterr()
    text = out + err
    assert "Task failed with exception" in text and "<email>" in text, text[-3000:]
    assert [v for v in leaks.values() if v in text] == []


def test_task_runner_log_files_are_redacted(airflow_db, leaky_dags_folder):
    leaks = _leaks()
    with real_task_runner(DAG_FILE.name):
        run = _leaky_dag().test()
    assert run.state == "failed"
    folder = Path(os.environ["AIRFLOW__LOGGING__BASE_LOG_FOLDER"]) / "dag_id=koppel_gdpr_leaky"
    (log_file,) = [p for p in folder.rglob("*.log") if run.run_id in str(p)]
    text = log_file.read_text()
    print(f"\n{log_file}: {len(text.splitlines())} lines")
    assert "Task failed with exception" in text and "error_detail" in text
    assert text.count("<email>") >= 4 and "<phone>" in text
    assert [v for v in leaks.values() if v in text] == []
