"""DAG-file parse time for many tenants, and the DAG build a worker does to start a task.

``N`` tenant files (the demo tenant under other ids, every flow enabled) go into a
temporary mappings directory; then

- **full parse**: the time to fill a ``DagBag`` from ``dags/`` — what Airflow's DAG
  processor does on every parse loop (Airflow's ``dagbag_import_timeout`` is 30 s);
- **worker build**: the time to fill a ``DagBag`` from ``dags/koppel_dags.py`` with
  Airflow's parsing context naming one DAG (``orders__<tenant>``), as a worker's task
  runner does before every task it starts.

Each figure is measured in a fresh process (``python -m bench.parse_time --child …``)
in which Airflow is already imported but koppel is not — as in a DAG-processor child or
a task process — so koppel's own imports count once. Wall time and the process's CPU
time are both reported (on a busy machine the CPU time is the steadier one); the full
parse is also timed a second time in the same process (imports warm, tenant files read
again).

``python -m bench.parse_time`` runs just these figures (default: full parse for 1, 100,
500 and 1,000 tenants, worker build at 500) and prints them; ``python -m bench`` includes
them."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from bench.harness import ROOT, airflow_env, tenant_document

RESULT_PREFIX = "PARSE-RESULT "
DEFAULT_TENANTS = (1, 100, 500, 1000)
DEFAULT_WORKER_TENANTS = (500,)
#: the flow of the DAG a worker build builds (every bench tenant has it enabled)
WORKER_FLOW = "orders"
#: targets (issue 20): the full parse of 500 tenants, a worker's build at 500 tenants
TARGET_PARSE_500_S = 5.0
TARGET_WORKER_500_S = 0.25


def tenant_id(i: int) -> str:
    return f"bench_parse_{i:04d}"


def write_tenants(directory: Path, count: int) -> None:
    for i in range(count):
        tenant = tenant_id(i)
        (directory / f"{tenant}.json").write_text(json.dumps(tenant_document(tenant)))


def worker_dag_id(count: int) -> str:
    """A DAG of the tenant in the middle of the directory (not the first file read)."""
    return f"{WORKER_FLOW}__{tenant_id(count // 2)}"


def _child(args: list[str], count: int, home: Path,
           extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="koppel-parse-") as tmp:
        mappings = Path(tmp)
        write_tenants(mappings, count)
        env = airflow_env(home, mappings)
        env.update(extra_env or {})
        proc = subprocess.run([sys.executable, "-m", "bench.parse_time", "--child", *args],
                              env=env, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX):])
    raise RuntimeError(f"bench.parse_time {' '.join(args)} with {count} tenants failed "
                       f"(exit {proc.returncode}): {proc.stderr[-1500:]}")


def measure(count: int, home: Path) -> dict[str, Any]:
    """Parse ``dags/`` with ``count`` tenants, in a child process."""
    return _child(["full", str(count)], count, home)


def measure_worker(count: int, home: Path) -> dict[str, Any]:
    """Build one DAG as a worker starting its task does, with ``count`` tenants."""
    from airflow.sdk.definitions.context import (_AIRFLOW_PARSING_CONTEXT_DAG_ID,
                                                 _AIRFLOW_PARSING_CONTEXT_TASK_ID)

    dag_id = worker_dag_id(count)
    return _child(["worker", str(count), dag_id], count, home,
                  {_AIRFLOW_PARSING_CONTEXT_DAG_ID: dag_id,
                   _AIRFLOW_PARSING_CONTEXT_TASK_ID: "extract"})


def measure_all(tenants: list[int], worker_tenants: list[int], home: Path,
                progress: Callable[[str], None] = lambda text: None) -> dict[str, Any]:
    """``{"parse_times": [...], "worker_builds": [...]}`` for the given tenant counts."""
    out: dict[str, Any] = {"parse_times": [], "worker_builds": []}
    for count in tenants:
        progress(f"  DAG parse: {count} tenants … ")
        out["parse_times"].append(measure(count, home))
        progress(f"{out['parse_times'][-1]['seconds']:.2f} s\n")
    for count in worker_tenants:
        progress(f"  worker DAG build: 1 DAG of {count} tenants … ")
        out["worker_builds"].append(measure_worker(count, home))
        progress(f"{out['worker_builds'][-1]['seconds']:.3f} s\n")
    return out


# -- the child processes ----------------------------------------------------------------------
def _timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def _load() -> float | None:
    """The machine's 1-minute load average: more than its CPUs means the wall times
    include waiting for a CPU."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def _child_full(count: int) -> dict[str, Any]:
    from airflow.dag_processing.dagbag import DagBag

    folder = str(ROOT / "dags")
    bag, first, cpu = _timed(lambda: DagBag(dag_folder=folder))
    from koppel.flows.registry import _tenant_set

    _tenant_set.cache_clear()
    _, warm, _ = _timed(lambda: DagBag(dag_folder=folder))
    return {"tenants": count, "dags": len(bag.dag_ids), "import_errors": len(bag.import_errors),
            "seconds": round(first, 3), "cpu_seconds": round(cpu, 3), "load": _load(),
            "seconds_warm": round(warm, 3),
            "ms_per_dag_warm": round(warm * 1000 / max(len(bag.dag_ids), 1), 3)}


def _child_worker(count: int, dag_id: str) -> dict[str, Any]:
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk import get_parsing_context

    if get_parsing_context().dag_id != dag_id:
        raise SystemExit(f"the parsing context names {get_parsing_context().dag_id!r}, "
                         f"not {dag_id!r}")
    path = str(ROOT / "dags" / "koppel_dags.py")
    # as the task runner parses (airflow.sdk.execution_time.task_runner.parse)
    bag, first, cpu = _timed(lambda: DagBag(dag_folder=path, safe_mode=False,
                                                         load_op_links=False))
    from koppel.flows.registry import _tenant_set

    _tenant_set.cache_clear()
    _, warm, _ = _timed(lambda: DagBag(dag_folder=path, safe_mode=False,
                                                         load_op_links=False))
    if bag.import_errors or dag_id not in bag.dags:
        raise SystemExit(f"the worker build did not make {dag_id}: {bag.import_errors}")
    return {"tenants": count, "dag_id": dag_id, "dags": len(bag.dag_ids),
            "seconds": round(first, 4), "cpu_seconds": round(cpu, 4), "load": _load(),
            "seconds_warm": round(warm, 4)}


def _ints(value: str) -> list[int]:
    return [int(part) for part in str(value).split(",") if part.strip()]


def main(argv: list[str] | None = None) -> int:
    from bench.report import render_parse

    parser = argparse.ArgumentParser(prog="python -m bench.parse_time",
                                     description="DAG parse and worker build times")
    parser.add_argument("--tenants", default=",".join(map(str, DEFAULT_TENANTS)),
                        help="tenant counts of the full parse (default 1,100,500,1000)")
    parser.add_argument("--worker-tenants", default=",".join(map(str, DEFAULT_WORKER_TENANTS)),
                        help="tenant counts of the worker's single-DAG build (default 500)")
    parser.add_argument("--output", type=Path, default=None,
                        help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="koppel-bench-parse-") as home:
        results = measure_all(_ints(args.tenants), _ints(args.worker_tenants), Path(home),
                              progress=lambda text: print(text, end="", flush=True))
    print()
    print(render_parse(results))
    if args.output:
        args.output.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        kind, count = sys.argv[2], int(sys.argv[3])
        result = _child_full(count) if kind == "full" else _child_worker(count, sys.argv[4])
        print(RESULT_PREFIX + json.dumps(result), flush=True)
    else:
        raise SystemExit(main())
