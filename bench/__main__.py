"""``python -m bench``: koppel's benchmarks, printed and written to ``bench/results.json``.

For every size (default 1,000, 5,000 and 20,000 orders; a catalogue of 2,000 variants):
a freshly seeded shop, a new QuickBooks company and a new tenant; then every registered
flow runs through Airflow (products, stock, customers, orders — catalogue first, so the
orders find their items), each in a subprocess of its own. Per flow and size: records,
wall time, records per second, API calls per record per side, 429s received, peak
memory of the worker process, and the time the same calls take under the real limits.
The per-record python-quickbooks baseline runs on a sample of each size's orders in a
company of its own, and a straightforward batch writer (look-ups per order, creates 30
to a batch request — the Singer-target shape, ``bench/batch_writer.py``) on up to 1,000
of them (all at 1,000; extrapolated beyond) in another; the three are printed side by
side with ratios. After the first syncs, each flow runs again over a window in which
nothing changed (the shape of a scheduled run with nothing to do: task instances that
ran, wall time), Airflow's floor for as many tasks runs the same way (tasks that do
nothing), and the orders flow re-syncs every order (its QuickBooks writes must be 0).
Then the DAG-file parse for 1, 100, 500 and 1,000 tenants and the single-DAG build a
worker does before a task at 500 tenants
(``bench/parse_time.py``; ``--parse-only`` runs just those). ``--quick`` is a small smoke
run (the test suite runs it).
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import math
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from bench import limits
from bench.batches import quickbooks_writes, summarize
from bench.compare import side_by_side
from bench.harness import ROOT, BenchEnv, Sandboxes
from bench.parse_time import measure_all as measure_parse_times
from bench.report import render

FLOW_ORDER = ("products", "stock", "customers", "orders")
DEFAULT_OUTPUT = ROOT / "bench" / "results.json"
PARSE_ONLY_OUTPUT = ROOT / "bench" / "results-parse.json"
#: The batch writer books up to 1,000 orders per size (all of them at 1,000, where the
#: wall-time ratio is judged) and is extrapolated beyond: its look-ups, one query per
#: customer and per SKU, scan the sandbox's growing books, so booking all 20,000 took it
#: over 30 minutes of a full run on 2 cores without adding a figure.
FULL = {"sizes": "1000,5000,20000", "catalogue": 2000, "baseline_orders": 300,
        "batch_writer_orders": 1000, "parse_tenants": "1,100,500,1000",
        "worker_tenants": "500"}
QUICK = {"sizes": "10", "catalogue": 30, "baseline_orders": 10, "batch_writer_orders": 0,
         "parse_tenants": "1,5", "worker_tenants": "5"}


def _ints(value: str) -> list[int]:
    return [int(part) for part in str(value).split(",") if part.strip()]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default=None,
                        help="comma-separated order counts (default 1000,5000,20000)")
    parser.add_argument("--catalogue", type=int, default=None,
                        help="variants in the shop (default 2000)")
    parser.add_argument("--baseline-orders", type=int, default=None,
                        help="orders per size the per-record baseline books (default 300)")
    parser.add_argument("--batch-writer-orders", type=int, default=None,
                        help="orders per size the batch writer books, extrapolated "
                             "beyond (default 1000; 0: all of them, as koppel does)")
    parser.add_argument("--no-idle", action="store_true",
                        help="skip the runs with nothing to do and the orders re-sync")
    parser.add_argument("--parse-tenants", default=None,
                        help="tenant counts for the DAG parse time (default 1,100,500,1000)")
    parser.add_argument("--worker-tenants", default=None,
                        help="tenant counts for a worker's single-DAG build (default 500)")
    parser.add_argument("--parse-only", action="store_true",
                        help="only the DAG parse and worker build times (no sandboxes, "
                             "no flow runs)")
    parser.add_argument("--flows", default=None, help="only these flows (comma-separated)")
    parser.add_argument("--quick", action="store_true",
                        help="a small smoke run (explicit options still win)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT,
                        help="default bench/results.json (bench/results-parse.json with "
                             "--parse-only)")
    parser.add_argument("--home", type=Path, default=None,
                        help="Airflow home to use (default: a temporary one, removed after)")
    args = parser.parse_args(argv)
    if args.parse_only and args.output == DEFAULT_OUTPUT:
        args.output = PARSE_ONLY_OUTPUT  # a partial run keeps the full results
    defaults = QUICK if args.quick else FULL
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.sizes = _ints(args.sizes)
    args.parse_tenants = _ints(args.parse_tenants)
    args.worker_tenants = _ints(args.worker_tenants)
    return args


def flows_to_run(only: str | None) -> list[str]:
    from koppel.flows.registry import implemented_flows

    available = implemented_flows()
    wanted = [f.strip() for f in only.split(",")] if only else list(FLOW_ORDER)
    ordered = [f for f in FLOW_ORDER if f in wanted and f in available]
    return ordered + [f for f in available if f in wanted and f not in ordered]


def products_for(sandboxes: Sandboxes, variants: int) -> int:
    """How many products give about ``variants`` variants in the seeded catalogue."""
    probe = max(10, min(200, variants))
    sandboxes.seed_shop(orders=0, products=probe, customers=1)
    per_product = sandboxes.variant_count() / probe
    return max(1, math.ceil(variants / max(per_product, 1e-9)))


def _with_projection(flow_json: dict[str, Any]) -> dict[str, Any]:
    routes = flow_json["calls_by_route"].get("quickbooks", {})
    flow_json["quickbooks_batch_calls"] = limits.batch_calls(routes)
    flow_json["real_limits"] = limits.project(
        flow_json["api_calls"].get("lightspeed", 0), flow_json["api_calls"].get("quickbooks", 0),
        flow_json["quickbooks_batch_calls"]).to_json()
    return flow_json


def measure_writer(sandboxes: Sandboxes, name: str, book, size: int,
                   sample: int) -> dict[str, Any]:
    """Run ``book(realm, limit)`` (a :class:`bench.baseline.BaselineResult`) in a new
    company and measure it like a flow: calls per side, batch requests, wall time, and
    the figures extrapolated to ``size`` orders where a sample was booked."""
    realm = sandboxes.new_realm(name)
    before = sandboxes.stats()
    mark = sandboxes.batch_recorder.mark()
    result = book(realm, min(size, sample) if sample > 0 else size)
    after = sandboxes.stats()
    batch_summary = summarize(sandboxes.batch_recorder.since(mark))
    read = max(result.orders_read, 1)
    calls = {side: after[side]["total"] - before[side]["total"] for side in before}
    routes = {r: n - before["quickbooks"]["by_route"].get(r, 0)
              for r, n in after["quickbooks"]["by_route"].items()
              if n - before["quickbooks"]["by_route"].get(r, 0)}
    batches = limits.batch_calls(routes)
    per_order = {side: round(n / read, 4) for side, n in calls.items()}
    seconds_per_order = round(result.wall_seconds / read, 5)
    return {**result.to_json(), "api_calls": calls, "calls_per_order": per_order,
            "quickbooks_calls_by_route": routes, "quickbooks_batch_calls": batches,
            "quickbooks_batches": batch_summary,
            "quickbooks_writes": quickbooks_writes(routes, batch_summary),
            "throttled_429": {s: after[s]["throttled"] - before[s]["throttled"] for s in before},
            "seconds_per_order": seconds_per_order,
            "wall_seconds_full_size": round(seconds_per_order * size, 2),
            "extrapolated": result.orders_read < size,
            "real_limits_full_size": limits.project(
                round(per_order["lightspeed"] * size), round(per_order["quickbooks"] * size),
                round(batches / read * size)).to_json()}


def run_baseline(sandboxes: Sandboxes, size: int, sample: int, orders_flow: dict | None,
                 tax_codes: dict[str, str]) -> dict[str, Any]:
    from bench.baseline import run_baseline as baseline

    out = measure_writer(sandboxes, f"Baseline {size}",
                         lambda realm, limit: baseline(sandboxes.ls_credentials(), realm,
                                                       tax_codes, limit=limit),
                         size, sample)
    per_order = out["calls_per_order"]
    if orders_flow and orders_flow["records"]:
        koppel = orders_flow["api_calls_per_record"]
        koppel_seconds = orders_flow["wall_seconds"] / orders_flow["records"]
        out["koppel_calls_per_order"] = koppel
        out["koppel_seconds_per_order"] = round(koppel_seconds, 5)
        out["ratio"] = {
            "quickbooks_calls": _ratio(koppel.get("quickbooks", 0), per_order["quickbooks"]),
            "lightspeed_calls": _ratio(koppel.get("lightspeed", 0), per_order["lightspeed"]),
            "wall_time": _ratio(koppel_seconds, out["seconds_per_order"])}
    return out


def run_batch_writer(sandboxes: Sandboxes, size: int, sample: int,
                     tax_codes: dict[str, str]) -> dict[str, Any]:
    from bench.batch_writer import run_batch_writer as writer

    return measure_writer(sandboxes, f"Batch writer {size}",
                          lambda realm, limit: writer(sandboxes.ls_credentials(), realm,
                                                      tax_codes, limit=limit),
                          size, sample)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).replace(microsecond=0).isoformat()


def run_idle(env: BenchEnv, sandboxes: Sandboxes, tenant: str, flows: list[str],
             since: dt.datetime) -> dict[str, Any]:
    """Each flow again over a window that starts after the first syncs ended (nothing
    changed in it: a scheduled run with nothing to do), then the orders flow over every
    order again (a re-sync: everything is booked already)."""
    idle = []
    for flow in flows:
        print(f"           idle: {flow} …", end=" ", flush=True)
        result = env.run_flow(sandboxes, tenant, flow, conf={
            "since": _iso(since), "until": _iso(dt.datetime.now(dt.timezone.utc))})
        row = _with_projection(result.to_json())
        idle.append(row)
        print(f"{result.state}, {row['task_instances_ran']} tasks ran, "
              f"{result.wall_seconds:.1f} s", flush=True)
    out: dict[str, Any] = {"since": _iso(since), "flows": idle}
    empty = [row for row in idle if row["records"] == 0 and row.get("task_instances_ran")]
    if empty:
        # what Airflow itself costs for an idle run's tasks (the fewest an idle run ran)
        fewest = min(row["task_instances_ran"] for row in empty)
        print(f"           Airflow's floor: {fewest} tasks that do nothing …", end=" ",
              flush=True)
        out["airflow_floor"] = env.run_floor(fewest)
        print(f"{out['airflow_floor']['state']}, {out['airflow_floor']['wall_seconds']:.1f} s",
              flush=True)
    if "orders" in flows:
        print("           re-sync: orders …", end=" ", flush=True)
        result = env.run_flow(sandboxes, tenant, "orders", conf={"full_resync": True})
        out["orders_resync"] = _with_projection(result.to_json())
        print(f"{result.state}, {out['orders_resync']['quickbooks_writes']} QuickBooks "
              f"writes, {result.wall_seconds:.1f} s", flush=True)
    return out


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 4) if b else None


def growth(runs: list[dict[str, Any]]) -> dict[str, Any]:
    curves: dict[str, dict[str, list[float]]] = {}
    for run in runs:
        for flow in run["flows"]:
            c = curves.setdefault(flow["flow"], {"api_calls_total": [], "qbo_calls_per_record": [],
                                                 "ls_calls_per_record": [], "peak_rss_mb": [],
                                                 "wall_seconds": []})
            c["api_calls_total"].append(sum(flow["api_calls"].values()))
            c["qbo_calls_per_record"].append(flow["api_calls_per_record"].get("quickbooks", 0.0))
            c["ls_calls_per_record"].append(flow["api_calls_per_record"].get("lightspeed", 0.0))
            c["peak_rss_mb"].append(flow["peak_rss_mb"])
            c["wall_seconds"].append(flow["wall_seconds"])
    return {"sizes": [r["size"] for r in runs], "flows": curves}


def run_flows(args: argparse.Namespace, env: BenchEnv, flows: list[str],
              results: dict[str, Any]) -> None:
    """Every size: a seeded shop, a new company and tenant, each flow and the baseline."""
    env.migrate()
    tax_codes = json.loads((ROOT / "include" / "mappings" / "demo.json")
                           .read_text())["settings"]["tax_codes"]
    with Sandboxes() as sandboxes:
        sandboxes.lift_limits()
        products = products_for(sandboxes, args.catalogue)
        for size in args.sizes:
            sandboxes.seed_shop(orders=size, products=products,
                                customers=max(10, size // 4))
            variants = sandboxes.variant_count()
            tenant = f"bench_{size}_{uuid.uuid4().hex[:6]}"
            env.add_tenant(tenant, sandboxes, settings={"unknown_sku": "create_item"})
            run: dict[str, Any] = {"size": size, "variants": variants, "flows": []}
            for flow in flows:
                print(f"  {size:>6} orders: {flow} …", end=" ", flush=True)
                result = env.run_flow(sandboxes, tenant, flow, conf={"full_resync": True})
                run["flows"].append(_with_projection(result.to_json()))
                print(f"{result.state}, {result.records} records, "
                      f"{result.wall_seconds:.1f} s", flush=True)
            if "products" in flows and size == args.sizes[0]:
                run["variant_flows"] = [run_products_main_image(env, sandboxes, size)]
            synced = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1)
            orders_flow = next((f for f in run["flows"] if f["flow"] == "orders"), None)
            print(f"  {size:>6} orders: baseline …", end=" ", flush=True)
            run["baseline"] = run_baseline(sandboxes, size, args.baseline_orders,
                                           orders_flow, tax_codes)
            print(f"{run['baseline']['orders_read']} orders, "
                  f"{run['baseline']['wall_seconds']:.1f} s", flush=True)
            print(f"  {size:>6} orders: batch writer …", end=" ", flush=True)
            run["batch_writer"] = run_batch_writer(sandboxes, size, args.batch_writer_orders,
                                                   tax_codes)
            print(f"{run['batch_writer']['orders_read']} orders, "
                  f"{run['batch_writer']['wall_seconds']:.1f} s", flush=True)
            if orders_flow:
                run["side_by_side"] = side_by_side(size, orders_flow, run["baseline"],
                                                   run["batch_writer"])
            if not args.no_idle:
                # whole seconds (Lightspeed's resolution): the window must not be empty
                time.sleep(max(0.0, (synced + dt.timedelta(seconds=1.1)
                                     - dt.datetime.now(dt.timezone.utc)).total_seconds()))
                run["idle"] = run_idle(env, sandboxes, tenant, flows, synced)
            results["runs"].append(run)


def run_products_main_image(env: BenchEnv, sandboxes: Sandboxes, size: int) -> dict[str, Any]:
    """The same catalogue's first sync by a tenant with ``settings.products.images =
    "main"`` (its own company): the items get each product's main picture, which the
    products page already carries, and no ``products/{id}/images.json`` call is made —
    the Lightspeed cost of a first sync without the gallery images."""
    tenant = f"bench_{size}_main_{uuid.uuid4().hex[:6]}"
    products = copy.deepcopy(json.loads((ROOT / "include" / "mappings" / "demo.json")
                                        .read_text())["settings"].get("products") or {})
    products["images"] = "main"
    env.add_tenant(tenant, sandboxes, settings={"unknown_sku": "create_item",
                                                "products": products})
    print(f"  {size:>6} orders: products, main image only …", end=" ", flush=True)
    result = env.run_flow(sandboxes, tenant, "products", conf={"full_resync": True})
    print(f"{result.state}, {result.records} records, {result.wall_seconds:.1f} s", flush=True)
    return {**_with_projection(result.to_json()), "flow": "products[images=main]"}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    flows = flows_to_run(args.flows)
    env = BenchEnv(home=args.home)
    started = time.monotonic()
    results: dict[str, Any] = {"generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                               "quick": args.quick, "sizes": args.sizes, "flows": flows,
                               "catalogue_variants": args.catalogue, "runs": []}
    try:
        if args.parse_only:
            print(f"koppel bench: DAG parse times only; Airflow home {env.home}", flush=True)
        else:
            print(f"koppel bench: sizes {args.sizes}, flows {flows}; Airflow home {env.home}",
                  flush=True)
            run_flows(args, env, flows, results)
        results.update(measure_parse_times(
            args.parse_tenants, args.worker_tenants, env.home,
            progress=lambda text: print(text, end="", flush=True)))
        results["growth"] = growth(results["runs"])
        results["total_seconds"] = round(time.monotonic() - started, 1)
    finally:
        env.cleanup()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print()
    print(render(results))
    print(f"\nwritten to {args.output}")
    failed = [f"{f['flow']}@{r['size']}" for r in results["runs"] for f in r["flows"]
              if f["state"] != "success"]
    if failed:
        print(f"runs that did not succeed: {', '.join(failed)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
