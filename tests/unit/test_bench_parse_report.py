"""``make bench`` prints the parse figures of issue 20: the full parse for 1, 100, 500 and
1,000 tenants and a worker's single-DAG build at 500, each against its target."""

from __future__ import annotations

from bench.__main__ import FULL, QUICK, parse_args
from bench.parse_time import DEFAULT_TENANTS, DEFAULT_WORKER_TENANTS, worker_dag_id
from bench.report import render, render_parse


def _parse(tenants: int, seconds: float, cpu: float) -> dict:
    return {"tenants": tenants, "dags": tenants * 6 + 1, "import_errors": 0, "seconds": seconds,
            "cpu_seconds": cpu, "seconds_warm": seconds, "ms_per_dag_warm": 1.0, "load": 0.5}


def test_the_bench_measures_the_five_figures_by_default():
    args = parse_args([])
    assert args.parse_tenants == list(DEFAULT_TENANTS) == [1, 100, 500, 1000]
    assert args.worker_tenants == list(DEFAULT_WORKER_TENANTS) == [500]
    assert FULL["parse_tenants"] == "1,100,500,1000" and QUICK["worker_tenants"]
    only = parse_args(["--parse-only"])
    assert only.parse_only and only.output.name == "results-parse.json"
    assert worker_dag_id(500) == "orders__bench_parse_0250"


def test_the_report_prints_every_figure_and_its_verdict():
    results = {"runs": [], "growth": {"sizes": [], "flows": {}},
               "parse_times": [_parse(1, 0.2, 0.1), _parse(100, 1.1, 0.9),
                               _parse(500, 4.2, 4.0), _parse(1000, 9.5, 8.8)],
               "worker_builds": [{"tenants": 500, "dag_id": "orders__bench_parse_0250",
                                  "dags": 1, "seconds": 0.31, "cpu_seconds": 0.12,
                                  "seconds_warm": 0.02, "load": 0.5}]}
    text = render(results)
    assert text == render_parse(results), "a parse-only run prints only the parse figures"
    for tenants in ("1 ", "100 ", "500 ", "1,000 "):
        assert any(line.startswith(tenants) for line in text.splitlines()), tenants
    assert "orders__bench_parse_0250" in text and "0.310" in text
    assert "full parse of 500 tenants: 4.200 s wall (met), 4.000 s CPU (met); target ≤ 5 s" \
        in text
    assert ("worker build at 500 tenants: 0.310 s wall (NOT met), 0.120 s CPU (met); "
            "target ≤ 0.25 s") in text
    assert "machine was busy" not in text
