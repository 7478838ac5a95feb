"""One flow run through Airflow in its own process: ``python -m bench.runner DAG_ID``.

The parent (:mod:`bench.harness`) sets the environment (Airflow home, ``AIRFLOW_CONN_*``,
``KOPPEL_MAPPINGS_DIR``, the state database). This process builds the one DAG, runs it
with ``dag.test()`` (tasks run in this process) and prints one JSON line prefixed with
``BENCH-RESULT`` : the run's state and id, its task instances by state (read from
Airflow's metadata database after the run; "ran" counts those that executed, not the
skipped ones) and this process's peak resident memory.

``--floor N`` runs Airflow's own floor instead: a DAG of N Python tasks that do nothing,
in the same way (this process, ``dag.test()``), so a koppel run's time can be read
against what Airflow itself costs for as many tasks.

``--unpaced`` lifts koppel's *client-side* pacing (the hooks' per-second/minute
limiters), because the sandboxes' limits are lifted for throughput runs as well; every
call is still counted by the sandboxes and the projection under the real limits is
computed from those counts (:mod:`bench.limits`).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

RESULT_PREFIX = "BENCH-RESULT "
UNLIMITED = 1_000_000
#: task-instance states of a task that executed (skipped, upstream_failed, removed and
#: never-scheduled ones did not)
RAN_STATES = frozenset({"success", "failed", "up_for_retry", "up_for_reschedule"})


def tasks_ran(task_instances: list[dict]) -> list[str]:
    """The task instances that executed, as ``task_id`` or ``task_id[map_index]``."""
    return [ti["task_id"] + (f"[{ti['map_index']}]" if ti["map_index"] >= 0 else "")
            for ti in task_instances if ti["state"] in RAN_STATES]


def seconds_in_tasks(task_instances: list[dict]) -> float:
    """The time the task instances that executed spent running (start to end, summed):
    koppel's own work in a run, apart from the process start and Airflow's scheduling."""
    return round(sum(ti.get("seconds") or 0.0 for ti in task_instances
                     if ti["state"] in RAN_STATES), 3)


def states_count(task_instances: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for ti in task_instances:
        counts[ti["state"]] = counts.get(ti["state"], 0) + 1
    return dict(sorted(counts.items()))


def task_instances(dag_id: str, run_id: str | None) -> list[dict]:
    """The run's task instances from Airflow's metadata database (every map index)."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    if not run_id:
        return []
    with create_session() as session:
        rows = session.execute(
            select(TaskInstance.task_id, TaskInstance.map_index, TaskInstance.state,
                   TaskInstance.start_date, TaskInstance.end_date)
            .where(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)
            .order_by(TaskInstance.start_date, TaskInstance.task_id, TaskInstance.map_index)
        ).all()
    return [{"task_id": task_id, "map_index": map_index,
             "state": str(getattr(state, "value", state) or "none"),
             "seconds": (end - start).total_seconds() if start and end else None}
            for task_id, map_index, state, start, end in rows]


def lift_client_pacing() -> None:
    """Make every hook built in this process skip its client-side rate limiters."""
    from koppel.hooks import lightspeed, quickbooks

    qbo_init = quickbooks.QuickBooksHook.__init__
    ls_init = lightspeed.LightspeedHook.__init__

    def qbo(self, *args, **kwargs):
        # 10 concurrent requests stays: the sandbox enforces it like the real API.
        kwargs["limits"] = (quickbooks.QBOLimits(
            per_minute=UNLIMITED, per_second=UNLIMITED, concurrent=10,
            batches_per_minute=UNLIMITED, window=60.0, throttle_wait=1.0))
        qbo_init(self, *args, **kwargs)

    def ls(self, *args, **kwargs):
        kwargs["per_second"] = UNLIMITED
        ls_init(self, *args, **kwargs)

    quickbooks.QuickBooksHook.__init__ = qbo
    lightspeed.LightspeedHook.__init__ = ls


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (Linux reports KiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / 1024 / (1024 if sys.platform == "darwin" else 1), 1)


#: the DAG of Airflow's own floor (:func:`floor_dag`)
FLOOR_DAG_ID = "bench_airflow_floor"


def floor_dag(tasks: int):
    """Airflow's floor for a run of ``tasks`` tasks: a chain of Python tasks that do
    nothing, run exactly as a koppel DAG is (this process, ``dag.test()``). What a koppel
    run costs beyond it is koppel's; what it costs up to it no DAG can avoid."""
    from airflow.sdk import DAG, chain, task

    @task
    def nothing() -> None:
        return None

    with DAG(FLOOR_DAG_ID, schedule=None, catchup=False) as dag:
        chain(*[nothing.override(task_id=f"task_{i + 1}")() for i in range(tasks)])
    return dag


def run(dag_id: str | None, conf: dict | None, floor_tasks: int = 0) -> dict:
    if floor_tasks:
        dag = floor_dag(floor_tasks)
    else:
        from koppel.factory import build_dags

        dag = build_dags(only_dag_id=dag_id).get(dag_id)
        if dag is None:
            raise SystemExit(f"DAG {dag_id} was not generated")
    dag_id = dag.dag_id
    started = time.monotonic()
    dag_run = dag.test(run_conf=conf or None)
    seconds = round(time.monotonic() - started, 3)
    run_id = getattr(dag_run, "run_id", None)
    tis = task_instances(dag_id, run_id)
    return {"dag_id": dag_id, "state": str(getattr(dag_run, "state", "unknown")),
            "run_id": run_id, "seconds_in_dag_test": seconds,
            "task_states": states_count(tis), "tasks_ran": tasks_ran(tis),
            "seconds_in_tasks": seconds_in_tasks(tis), "peak_rss_mb": peak_rss_mb()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.runner")
    parser.add_argument("dag_id", nargs="?", help="the DAG to run (not with --floor)")
    parser.add_argument("--conf", default="{}", help="the run's params as JSON")
    parser.add_argument("--unpaced", action="store_true")
    parser.add_argument("--floor", type=int, default=0, metavar="TASKS",
                        help="run Airflow's floor instead: TASKS no-op tasks in a chain")
    args = parser.parse_args(argv)
    if not args.floor and not args.dag_id:
        parser.error("a DAG id, or --floor TASKS")
    if args.unpaced:
        lift_client_pacing()
    result = run(args.dag_id, json.loads(args.conf), floor_tasks=args.floor)
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0 if result["state"].endswith("success") else 1


if __name__ == "__main__":
    raise SystemExit(main())
