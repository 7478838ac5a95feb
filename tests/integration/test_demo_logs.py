"""Runs made by ``make demo`` (``airflow dags test``) show their task logs in the UI:
koppel.demo_logs files each task's share of the run's output where Airflow's own log
reader — the one behind the UI's log view — finds it, mapped tasks included."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

DAG_ID = "demo_logs_probe"
PROBE = textwrap.dedent(f'''
    import datetime as dt
    import logging

    from airflow.sdk import DAG, task

    with DAG("{DAG_ID}", schedule=None, start_date=dt.datetime(2026, 1, 1)):
        @task
        def first():
            logging.getLogger("probe").warning("probe first says hello")
            return [1, 2]

        @task
        def each(x):
            logging.getLogger("probe").warning("probe each says hello %s", x)

        each.expand(x=first())
''')


def test_dags_test_output_is_filed_where_the_ui_reads_task_logs(airflow_db, tmp_path):
    from sqlalchemy import select

    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.log.log_reader import TaskLogReader
    from airflow.utils.session import create_session
    from koppel.demo_logs import publish, split_by_task

    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "probe.py").write_text(PROBE)
    output = tmp_path / f"{DAG_ID}.log"
    env = {**os.environ, "AIRFLOW__CORE__DAGS_FOLDER": str(dags)}
    with open(output, "w") as out:
        proc = subprocess.run([sys.executable, "-m", "airflow", "dags", "test", DAG_ID],
                              env=env, stdout=out, stderr=subprocess.STDOUT, timeout=600)
    text = output.read_text()
    assert proc.returncode == 0, text[-3000:]
    assert set(split_by_task(text.splitlines())) == {("first", -1), ("each", 0), ("each", 1)}

    written = publish(DAG_ID, output)
    assert len(written) == 3
    assert publish(DAG_ID, output) == []  # a log Airflow already has is left alone

    reader = TaskLogReader()
    with create_session() as session:
        tis = {(ti.task_id, ti.map_index): ti for ti in session.scalars(
            select(TaskInstance).where(TaskInstance.dag_id == DAG_ID))}
        assert set(tis) == {("first", -1), ("each", 0), ("each", 1)}
        shown = {}
        for key, ti in tis.items():
            chunks, _ = reader.read_log_chunks(ti, ti.try_number, {})
            shown[key] = "\n".join(str(getattr(line, "event", line)) for line in chunks)
    assert "probe first says hello" in shown[("first", -1)]
    assert "probe each says hello 1" in shown[("each", 0)]
    assert "probe each says hello 2" in shown[("each", 1)]
    assert "probe each" not in shown[("first", -1)]
