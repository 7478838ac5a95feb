"""``python -m bench --quick`` end to end: every figure the benchmark promises is in
``results.json`` (behaviour, not timing)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e

FLOW_FIELDS = {"flow", "state", "records", "actions", "wall_seconds", "records_per_second",
               "api_calls", "api_calls_per_record", "throttled_429", "peak_rss_mb",
               "calls_by_route", "quickbooks_batch_calls", "real_limits", "task_states",
               "tasks_ran", "task_instances_ran", "seconds_in_dag_test", "seconds_in_tasks",
               "quickbooks_batches", "quickbooks_writes"}
LIMIT_FIELDS = {"lightspeed_seconds", "quickbooks_seconds", "seconds", "bound_by", "human"}
BASELINE_FIELDS = {"orders_read", "booked", "skipped", "failed", "wall_seconds", "api_calls",
                   "calls_per_order", "throttled_429", "seconds_per_order",
                   "real_limits_full_size", "koppel_calls_per_order",
                   "koppel_seconds_per_order", "ratio"}
WRITER_FIELDS = {"orders_read", "booked", "skipped", "failed", "wall_seconds", "api_calls",
                 "calls_per_order", "quickbooks_batches", "quickbooks_writes",
                 "wall_seconds_full_size", "extrapolated", "real_limits_full_size"}


def test_quick_bench_writes_every_figure(project_root, tmp_path):
    output = tmp_path / "results.json"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRFLOW", "KOPPEL_"))}  # the bench makes its own home
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--flows", "orders", "--parse-tenants",
         "1,3", "--output", str(output), "--home", str(tmp_path / "home")],
        cwd=project_root, env=env, capture_output=True, text=True, timeout=480)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(output.read_text())
    assert results["quick"] is True and results["flows"] == ["orders"]
    (run,) = results["runs"]
    assert run["size"] == 10 and run["variants"] > 0
    (flow,) = run["flows"]
    assert FLOW_FIELDS <= set(flow)
    assert flow["state"] == "success"
    assert flow["records"] == 10, "every seeded order is accounted for in the activity log"
    assert flow["api_calls"]["lightspeed"] > 0 and flow["api_calls"]["quickbooks"] > 0
    assert set(flow["api_calls_per_record"]) == {"lightspeed", "quickbooks"}
    assert flow["peak_rss_mb"] > 0
    assert LIMIT_FIELDS <= set(flow["real_limits"])
    baseline = run["baseline"]
    assert BASELINE_FIELDS <= set(baseline)
    assert baseline["orders_read"] == 10 and baseline["failed"] == 0
    # the per-record way needs more QuickBooks calls per order than koppel
    assert baseline["calls_per_order"]["quickbooks"] > flow["api_calls_per_record"]["quickbooks"]
    assert baseline["quickbooks_batches"]["batch_requests"] == 0, "the baseline never batches"
    # the batch writer books the same orders, its sales receipts 30 to a batch request
    writer = run["batch_writer"]
    assert WRITER_FIELDS <= set(writer)
    assert writer["orders_read"] == 10 and writer["failed"] == 0 and not writer["extrapolated"]
    assert writer["booked"] == baseline["booked"] > 0
    assert writer["quickbooks_batches"]["batch_requests"] == 1
    assert writer["quickbooks_batches"]["write_operations"] == writer["booked"]
    assert writer["quickbooks_batches"]["batches_with_lookups"] == 0
    # koppel's batch requests as read from their bodies agree with the sandbox's count
    assert flow["quickbooks_batches"]["batch_requests"] == flow["quickbooks_batch_calls"]
    assert flow["quickbooks_writes"] >= writer["booked"], "every paid order was written"
    assert flow["task_instances_ran"] == len(flow["tasks_ran"]) == sum(
        n for state, n in flow["task_states"].items() if state == "success")
    assert 0 < flow["seconds_in_tasks"] < flow["seconds_in_dag_test"] < flow["wall_seconds"]
    compared = run["side_by_side"]
    assert [w["writer"] for w in compared["writers"]] == ["koppel", "per-record baseline",
                                                          "batch writer"]
    assert set(compared["koppel_ratio_to"]) == {"per-record baseline", "batch writer"}
    assert compared["koppel_ratio_to"]["batch writer"]["quickbooks_calls_per_order"] < 1
    # after the first sync: a run with nothing to do, and a re-sync of every order
    (idle,) = run["idle"]["flows"]
    assert idle["state"] == "success" and idle["records"] == 0
    assert idle["quickbooks_writes"] == 0 and idle["api_calls"]["quickbooks"] == 0
    assert 1 <= idle["task_instances_ran"] <= 3, idle["task_states"]
    # Airflow's own floor for as many tasks, run the same way: every no-op task ran
    floor = run["idle"]["airflow_floor"]
    assert floor["state"] == "success"
    assert floor["tasks"] == floor["task_instances_ran"] == idle["task_instances_ran"]
    assert 0 < floor["seconds_in_dag_test"] < floor["wall_seconds"]
    resync = run["idle"]["orders_resync"]
    assert resync["state"] == "success" and resync["records"] == 10
    assert resync["quickbooks_writes"] == 0
    assert [p["tenants"] for p in results["parse_times"]] == [1, 3]
    assert all(p["import_errors"] == 0 and p["dags"] >= p["tenants"]
               for p in results["parse_times"])
    assert results["growth"]["sizes"] == [10]
    assert set(results["growth"]["flows"]["orders"]) >= {"api_calls_total", "peak_rss_mb"}
    assert "first sync under the real APIs' limits" in proc.stdout
    assert "side by side, 10 orders" in proc.stdout and "koppel ÷ batch writer" in proc.stdout
    assert "runs after the first sync" in proc.stdout
