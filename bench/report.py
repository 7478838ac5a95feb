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
        for flow in [*run["flows"], *run.get("variant_flows", [])]:
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
        if not b or "koppel_calls_per_order" not in b:  # koppel's orders flow not run
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

    out.extend(render_batches(results["runs"]))
    out.extend(render_side_by_side(results["runs"]))
    out.extend(render_idle(results["runs"]))

    lim_rows = []
    for run in results["runs"]:
        for flow in [*run["flows"], *run.get("variant_flows", [])]:
            lim = flow["real_limits"]
            lim_rows.append([flow["flow"], run["size"], lim["lightspeed_seconds"],
                             lim["quickbooks_seconds"], lim["bound_by"], lim["human"]])
        if run.get("baseline"):
            lim = run["baseline"]["real_limits_full_size"]
            marked = " (extrapolated)" if run["baseline"].get("extrapolated", True) else ""
            lim_rows.append([f"baseline{marked}", run["size"], lim["lightspeed_seconds"],
                             lim["quickbooks_seconds"], lim["bound_by"], lim["human"]])
        if run.get("batch_writer"):
            writer = run["batch_writer"]
            lim = writer["real_limits_full_size"]
            lim_rows.append(["batch writer" + (" (extrapolated)" if writer.get("extrapolated")
                                               else ""), run["size"], lim["lightspeed_seconds"],
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


def render_batches(runs: list[dict[str, Any]]) -> list[str]:
    """How the QuickBooks batch requests of each flow's first sync were filled (read from
    the request bodies)."""
    rows = []
    for run in runs:
        for flow in run["flows"]:
            b = flow.get("quickbooks_batches") or {}
            if not b.get("batch_requests"):
                continue
            rows.append([flow["flow"], run["size"], b["batch_requests"],
                         b["operations_per_batch"], b["writes_per_write_batch"],
                         b["batches_with_lookups"], b["lookup_only_batches"],
                         b["mixed_batches"], b["write_only_batches"],
                         flow.get("quickbooks_writes")])
    if not rows:
        return []
    return ["", "QuickBooks batch requests of the first syncs (from the request bodies; "
                "max 30 operations each)",
            table(["flow", "orders", "batches", "ops/batch", "writes/write batch",
                   "with look-ups", "look-ups only", "mixed", "writes only", "QBO writes"],
                  rows)]


def render_side_by_side(runs: list[dict[str, Any]]) -> list[str]:
    """koppel, the per-record baseline and the batch writer on the same orders."""
    out: list[str] = []
    for run in runs:
        compared = run.get("side_by_side")
        if not compared:
            continue
        rows = [[w["writer"], w["orders"], w["quickbooks_calls_per_order"],
                 w["lightspeed_calls_per_order"], w["batch_requests"],
                 w["operations_per_batch"], w["batches_with_lookups"],
                 f"{_fmt(w['wall_seconds_full_size'])}{'*' if w['extrapolated'] else ''}",
                 w.get("quickbooks_limit_seconds"), w["real_limits_human"]]
                for w in compared["writers"]]
        out += ["", f"side by side, {compared['size']:,} orders (same orders and sandboxes; "
                    "* = extrapolated from the orders read)",
                table(["writer", "orders read", "QBO calls/ord", "LS calls/ord",
                       "QBO batches", "ops/batch", "with look-ups",
                       f"wall s for {compared['size']:,}", "QBO s under its limits",
                       "under real limits"], rows)]
        ratio_rows = [[f"koppel ÷ {other}", r["quickbooks_calls_per_order"],
                       r["lightspeed_calls_per_order"], r["wall_seconds_full_size"],
                       r.get("quickbooks_limit_seconds"), r["real_limits_seconds"]]
                      for other, r in compared["koppel_ratio_to"].items()]
        out.append(table(["ratio", "QBO calls", "LS calls", "wall time",
                          "QBO under its limits", "under real limits"], ratio_rows))
        out.extend(_koppel_wall(run))
    return out


def _koppel_wall(run: dict[str, Any]) -> list[str]:
    """Where koppel's wall time went: the ``airflow dags test`` process, ``dag.test()``
    inside it, and the tasks' own running time (the rest is Airflow's: starting the
    process, task start-up, scheduling passes)."""
    flow = next((f for f in run.get("flows", []) if f.get("flow") == "orders"), None)
    if not flow or flow.get("seconds_in_tasks") is None:
        return []
    return [f"koppel's {_fmt(flow['wall_seconds'])} s: {_fmt(flow.get('seconds_in_dag_test'))} s "
            f"inside dag.test(), {_fmt(flow['seconds_in_tasks'])} s running its "
            f"{len(flow.get('tasks_ran') or [])} tasks (the rest is Airflow: the process, "
            "task start-up, scheduling)"]


def render_idle(runs: list[dict[str, Any]]) -> list[str]:
    """The runs after the first syncs: nothing changed in their window; the orders
    re-sync over every order."""
    rows = []
    for run in runs:
        idle = run.get("idle") or {}
        entries = [(f["flow"], "nothing changed", f) for f in idle.get("flows", [])]
        if idle.get("orders_resync"):
            entries.append(("orders", "re-sync all", idle["orders_resync"]))
        for flow, kind, f in entries:
            rows.append([flow, run["size"], kind, f["state"], f["records"],
                         f.get("task_instances_ran"),
                         " ".join(f"{k} {v}" for k, v in (f.get("task_states") or {}).items()),
                         f["wall_seconds"], f.get("seconds_in_dag_test"),
                         f["api_calls"].get("lightspeed", 0), f["api_calls"].get("quickbooks", 0),
                         f.get("quickbooks_writes")])
    if not rows:
        return []
    out = ["", "runs after the first sync (wall s: the whole `airflow dags test` process; "
               "dags-test s: inside dag.test())",
           table(["flow", "orders", "run", "state", "records", "tasks ran", "task states",
                  "wall s", "dags-test s", "LS calls", "QBO calls", "QBO writes"], rows)]
    for run in runs:
        floor = (run.get("idle") or {}).get("airflow_floor")
        if floor:
            out.append(_floor_line(run, floor))
    return out


def _floor_line(run: dict[str, Any], floor: dict[str, Any]) -> str:
    """Airflow's own cost for as many tasks as an idle run ran, and each idle run's
    multiple of it."""
    ratios = []
    for f in run["idle"].get("flows", []):
        if f["records"] == 0 and f.get("task_instances_ran") == floor["tasks"] \
                and floor["wall_seconds"]:
            ratios.append(f"{f['flow']} {f['wall_seconds'] / floor['wall_seconds']:.2f}")
    return (f"Airflow's floor at {run['size']:,} orders: {floor['tasks']} tasks that do nothing, "
            f"run the same way: {floor['wall_seconds']:.2f} s wall, "
            f"{floor['seconds_in_dag_test']:.2f} s inside dag.test(); idle runs ÷ floor "
            f"(wall): {', '.join(ratios) or '-'}")


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

