"""Printing the benchmark results: per-flow tables, the baseline ratios, the projection
under the real limits, the parse times and the cost curves (text sparklines)."""

from __future__ import annotations

import os
from typing import Any, Iterable

SPARKS = "▁▂▃▄▅▆▇█"


def sparkline(values: Iterable[float]) -> str:
    values = [float(v) for v in values]
    if not values:
        return ""
    low, high = min(values), max(values)
    if high == low:
        return SPARKS[len(SPARKS) // 2] * len(values)
    return "".join(SPARKS[round((v - low) / (high - low) * (len(SPARKS) - 1))] for v in values)


def table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "" if value is None else str(value)


def render(results: dict[str, Any]) -> str:
    out: list[str] = []
    if results.get("runs"):
        out.append("koppel benchmarks — sandboxes with their rate limits lifted; calls counted "
                   "by the sandboxes")
    rows = []
    for run in results["runs"]:
        for flow in run["flows"]:
            calls = flow["api_calls_per_record"]
            rows.append([flow["flow"], run["size"], flow["records"], flow["state"],
                         flow["wall_seconds"], flow["records_per_second"],
                         calls.get("lightspeed", 0.0), calls.get("quickbooks", 0.0),
                         sum(flow["throttled_429"].values()), flow["peak_rss_mb"],
                         flow["real_limits"]["human"]])
    if rows:
        out.append("")
        out.append(table(["flow", "orders", "records", "state", "wall s", "rec/s",
                          "LS calls/rec", "QBO calls/rec", "429s", "peak MiB",
                          "under real limits"], rows))

    base_rows = []
    for run in results["runs"]:
        b = run.get("baseline")
        if not b:
            continue
        base_rows.append([run["size"], b["orders_read"], b["calls_per_order"]["quickbooks"],
                          b["koppel_calls_per_order"]["quickbooks"],
                          b["ratio"]["quickbooks_calls"], b["calls_per_order"]["lightspeed"],
                          b["koppel_calls_per_order"]["lightspeed"],
                          b["seconds_per_order"], b["koppel_seconds_per_order"],
                          b["ratio"]["wall_time"]])
    if base_rows:
        out.append("")
        out.append("baseline: per-record python-quickbooks sync (ratio = koppel ÷ baseline)")
        out.append(table(["orders", "sampled", "base QBO/ord", "koppel QBO/ord", "ratio",
                          "base LS/ord", "koppel LS/ord", "base s/ord", "koppel s/ord",
                          "time ratio"], base_rows))

    lim_rows = []
    for run in results["runs"]:
        for flow in run["flows"]:
            lim = flow["real_limits"]
            lim_rows.append([flow["flow"], run["size"], lim["lightspeed_seconds"],
                             lim["quickbooks_seconds"], lim["bound_by"], lim["human"]])
        if run.get("baseline"):
            lim = run["baseline"]["real_limits_full_size"]
            lim_rows.append(["baseline (extrapolated)", run["size"], lim["lightspeed_seconds"],
                             lim["quickbooks_seconds"], lim["bound_by"], lim["human"]])
    if lim_rows:
        out.append("")
        out.append("first sync under the real APIs' limits (Lightspeed 300/5 min, 3,000/h, "
                   "12,000/day; QBO 500/min, 40 batches/min)")
        out.append(table(["flow", "orders", "LS s", "QBO s", "bound by", "total"], lim_rows))

    if results.get("parse_times") or results.get("worker_builds"):
        if out:
            out.append("")
        out.append(render_parse(results))

    growth = results.get("growth") or {}
    if growth.get("sizes"):
        out.append("")
        out.append("cost growth across sizes " + ", ".join(str(s) for s in growth.get("sizes", [])))
        for flow, curves in sorted(growth.get("flows", {}).items()):
            for metric, values in curves.items():
                shown = " ".join(_fmt(v) for v in values)
                out.append(f"  {flow:<10} {metric:<22} {sparkline(values)}  {shown}")
    return "\n".join(out)


def render_parse(results: dict[str, Any]) -> str:
    """The full parse per tenant count and a worker's single-DAG build, with the targets."""
    from bench.parse_time import TARGET_PARSE_500_S, TARGET_WORKER_500_S

    out: list[str] = []
    parses = results.get("parse_times") or []
    if parses:
        out.append("DAG-file parse time (DagBag of dags/, a fresh process; Airflow's import "
                   "timeout is 30 s)")
        out.append(table(["tenants", "DAGs", "errors", "cold s", "cold CPU s", "warm s",
                          "ms/DAG warm", "load"],
                         [[p["tenants"], p["dags"], p["import_errors"], p["seconds"],
                           p.get("cpu_seconds"), p["seconds_warm"], p["ms_per_dag_warm"],
                           p.get("load")]
                          for p in parses]))
    builds = results.get("worker_builds") or []
    if builds:
        if out:
            out.append("")
        out.append("worker's DAG build before a task (koppel_dags.py with the parsing context "
                   "naming one DAG, a fresh process)")
        out.append(table(["tenants", "DAG", "DAGs built", "cold s", "cold CPU s", "warm s",
                          "load"],
                         [[b["tenants"], b["dag_id"], b["dags"], _ms(b["seconds"]),
                           _ms(b.get("cpu_seconds")), _ms(b["seconds_warm"]), b.get("load")]
                          for b in builds]))
    verdicts = [_verdict(f"full parse of {p['tenants']} tenants", p, TARGET_PARSE_500_S)
                for p in parses if p["tenants"] == 500]
    verdicts += [_verdict(f"worker build at {b['tenants']} tenants", b, TARGET_WORKER_500_S)
                 for b in builds if b["tenants"] == 500]
    if verdicts:
        out.append("")
        out.extend(verdicts)
        cpus = os.cpu_count() or 1
        busy = [r.get("load") for r in (*parses, *builds) if (r.get("load") or 0) > cpus]
        if busy:
            out.append(f"(the machine was busy — load up to {max(busy):.1f} on {cpus} CPU(s): "
                       "wall times include waiting for a CPU; the CPU times do not)")
    return "\n".join(out)


def _verdict(what: str, figure: dict[str, Any], target: float) -> str:
    def met(value: float | None) -> str:
        return "n/a" if value is None else ("met" if value <= target else "NOT met")

    cpu = figure.get("cpu_seconds")
    return (f"{what}: {figure['seconds']:.3f} s wall ({met(figure['seconds'])}), "
            + (f"{cpu:.3f} s CPU ({met(cpu)}); " if cpu is not None else "")
            + f"target ≤ {target:g} s")


def _ms(seconds: float | None) -> str:
    """A short duration with three decimals (``table`` would round it to two)."""
    return "" if seconds is None else f"{seconds:.3f}"

