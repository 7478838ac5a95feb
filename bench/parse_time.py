"""DAG-file parse time for many tenants: ``N`` tenant files (the demo tenant under other
ids, every flow enabled) in a temporary mappings directory, then the time to fill a
``DagBag`` from ``dags/`` — what Airflow's DAG processor does on every parse loop.

Each count is measured in a fresh process (``python -m bench.parse_time N``), so imports
are included once, as they are for a real DAG processor child; the time of the second
parse in that process (imports warm) is reported too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.harness import ROOT, airflow_env, tenant_document

RESULT_PREFIX = "PARSE-RESULT "


def write_tenants(directory: Path, count: int) -> None:
    for i in range(count):
        tenant = f"bench_parse_{i:04d}"
        (directory / f"{tenant}.json").write_text(json.dumps(tenant_document(tenant)))


def measure(count: int, home: Path) -> dict[str, Any]:
    """Parse ``dags/`` with ``count`` tenants, in a child process."""
    with tempfile.TemporaryDirectory(prefix="koppel-parse-") as tmp:
        mappings = Path(tmp)
        write_tenants(mappings, count)
        env = airflow_env(home, mappings)
        proc = subprocess.run([sys.executable, "-m", "bench.parse_time", str(count)], env=env,
                              cwd=ROOT, capture_output=True, text=True, timeout=1800)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX):])
    raise RuntimeError(f"parsing {count} tenants failed: {proc.stderr[-1500:]}")


def _child(count: int) -> dict[str, Any]:
    from airflow.dag_processing.dagbag import DagBag

    from koppel.flows.registry import _tenant_set

    started = time.monotonic()
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    first = time.monotonic() - started
    _tenant_set.cache_clear()
    started = time.monotonic()
    DagBag(dag_folder=str(ROOT / "dags"))
    warm = time.monotonic() - started
    return {"tenants": count, "dags": len(bag.dag_ids), "import_errors": len(bag.import_errors),
            "seconds": round(first, 3), "seconds_warm": round(warm, 3),
            "ms_per_dag_warm": round(warm * 1000 / max(len(bag.dag_ids), 1), 3)}


if __name__ == "__main__":
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    print(RESULT_PREFIX + json.dumps(_child(int(sys.argv[1]))), flush=True)
