"""Task logs in the Airflow UI for the runs ``make demo`` makes.

``make demo`` runs each flow with ``airflow dags test``, which runs the tasks in its own
process: their log lines go to that process's output (kept in
``.airflow/demo-logs/<dag_id>.log``), never to the task log files the UI reads, so the
runs showed empty logs under ``make airflow``. This module files each task's share of
that output where Airflow's file task handler looks for it — the path Airflow renders for
the task instance and its try from the run's log template — once the run has ended.
``airflow dags test`` starts every task with the line
``[DAG TEST] starting task_id=<task> map_index=<n>``; everything up to the next such line
is that task's log (koppel's log redaction has already run on it in the task).

    python -m koppel.demo_logs <dag_id>=<output file> [...]
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Iterable

START = re.compile(r"\[DAG TEST\] starting task_id=(?P<task>\S+) map_index=(?P<map>-?\d+)")


def split_by_task(lines: Iterable[str]) -> dict[tuple[str, int], list[str]]:
    """``{(task_id, map_index): lines}`` of an ``airflow dags test`` output; lines before
    the first task (parsing the DAG file) belong to no task."""
    segments: dict[tuple[str, int], list[str]] = {}
    current: list[str] | None = None
    for line in lines:
        match = START.search(line)
        if match:
            current = segments.setdefault((match["task"], int(match["map"])), [])
        if current is not None:
            current.append(line if line.endswith("\n") else line + "\n")
    return segments


def publish(dag_id: str, output: Path) -> list[Path]:
    """Write the task logs of ``dag_id``'s latest ``dags test`` run from ``output``; returns
    the files written (a task log Airflow already has is left alone)."""
    from sqlalchemy import select

    from airflow.configuration import conf
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.log.file_task_handler import FileTaskHandler
    from airflow.utils.session import create_session
    from airflow.utils.types import DagRunTriggeredByType

    with open(output, encoding="utf-8", errors="replace") as handle:
        segments = split_by_task(handle)
    if not segments:
        return []
    base = Path(conf.get("logging", "base_log_folder"))
    handler = FileTaskHandler(base_log_folder=str(base))
    written: list[Path] = []
    with create_session() as session:
        run = session.scalars(
            select(DagRun).where(DagRun.dag_id == dag_id,
                                 DagRun.triggered_by == DagRunTriggeredByType.TEST)
            .order_by(DagRun.id.desc()).limit(1)).first()
        if run is None:
            return []
        tis = session.scalars(select(TaskInstance).where(TaskInstance.dag_id == dag_id,
                                                         TaskInstance.run_id == run.run_id))
        for ti in tis:
            lines = segments.get((ti.task_id, ti.map_index))
            if not lines:
                continue
            # the path the UI reads for this try (FileTaskHandler renders the run's template)
            path = base / handler._render_filename(ti, max(ti.try_number, 1), session=session)
            if path.exists() and path.stat().st_size:
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(lines), encoding="utf-8")
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or any("=" not in a for a in args):
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    for arg in args:
        dag_id, _, output = arg.partition("=")
        files = publish(dag_id, Path(output))
        print(f"{dag_id}: {len(files)} task log(s) filed for the Airflow UI")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
