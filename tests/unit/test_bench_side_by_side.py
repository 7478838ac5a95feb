"""The pure parts of issue 20's bench figures: batch requests read from their bodies, the
writes a span sent, the task instances a run executed, koppel / per-record baseline /
batch writer side by side, and the printed tables."""

from __future__ import annotations

import asyncio
import json

import pytest

from bench.batches import BatchNote, BatchRecorder, note_from_body, quickbooks_writes, summarize
from bench.compare import side_by_side
from bench.report import render, render_batches, render_idle, render_side_by_side
from bench.runner import states_count, tasks_ran


def _body(queries: int, writes: int) -> bytes:
    items = [{"bId": f"q{i}", "Query": "select * from Item"} for i in range(queries)]
    items += [{"bId": f"w{i}", "operation": "create", "SalesReceipt": {"DocNumber": str(i)}}
              for i in range(writes)]
    return json.dumps({"BatchItemRequest": items}).encode()


def test_a_batch_body_is_counted_by_lookups_and_writes():
    note = note_from_body(_body(3, 27), 200)
    assert (note.operations, note.lookups, note.writes, note.status) == (30, 3, 27, 200)
    assert note_from_body(b"not json", 400) == BatchNote(0, 0, 400)
    assert note_from_body(b'{"BatchItemRequest": "x"}', 400) == BatchNote(0, 0, 400)


def test_the_summary_tells_lookup_batches_from_write_batches():
    notes = [BatchNote(30, 0, 200), BatchNote(28, 0, 200), BatchNote(5, 5, 200),
             BatchNote(10, 2, 200), BatchNote(30, 0, 429)]
    s = summarize(notes)
    assert s["batch_requests"] == 4 and s["refused_batch_requests"] == 1
    assert s["operations"] == 73 and s["lookup_operations"] == 7 and s["write_operations"] == 66
    assert s["operations_per_batch"] == 18.25
    assert s["writes_per_write_batch"] == 22.0  # (30 + 28 + 8) / 3 batches that wrote
    assert (s["batches_with_lookups"], s["lookup_only_batches"], s["mixed_batches"],
            s["write_only_batches"]) == (2, 1, 1, 2)
    assert s["largest_batch"] == 30
    empty = summarize([])
    assert empty["batch_requests"] == 0 and empty["operations_per_batch"] is None


def test_writes_are_single_posts_and_batch_write_items_not_queries_or_tokens():
    routes = {"POST /v3/company/{realm_id}/salesreceipt": 4,
              "POST /v3/company/{realm_id}/query": 9, "POST /v3/company/{realm_id}/batch": 2,
              "GET /v3/company/{realm_id}/query": 3, "POST /oauth2/v1/tokens/bearer": 1,
              "POST /v3/company/{realm_id}/upload": 2}
    assert quickbooks_writes(routes, {"write_operations": 40}) == 46
    assert quickbooks_writes({}, {}) == 0


def test_the_recorder_counts_a_batch_and_passes_its_body_on_unchanged():
    seen = {}

    async def app(scope, receive, send):
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        seen[scope["path"]] = body
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    recorder = BatchRecorder(app)
    body = _body(1, 4)

    async def call(path: str, method: str = "POST"):
        chunks = [{"type": "http.request", "body": body[:10], "more_body": True},
                  {"type": "http.request", "body": body[10:], "more_body": False}]

        async def receive():
            return chunks.pop(0)

        async def send(message):
            pass

        await recorder({"type": "http", "method": method, "path": path}, receive, send)

    mark = recorder.mark()
    asyncio.run(call("/v3/company/1/batch"))
    asyncio.run(call("/v3/company/1/query"))
    assert seen["/v3/company/1/batch"] == body and seen["/v3/company/1/query"] == body
    assert recorder.since(mark) == [BatchNote(5, 1, 200)]  # the query is not a batch


def test_tasks_that_ran_leave_out_skipped_ones_and_name_map_indexes():
    tis = [{"task_id": "extract", "map_index": -1, "state": "success"},
           {"task_id": "load", "map_index": 0, "state": "success"},
           {"task_id": "load", "map_index": 1, "state": "failed"},
           {"task_id": "finalize", "map_index": -1, "state": "skipped"},
           {"task_id": "enrich", "map_index": -1, "state": "upstream_failed"}]
    assert tasks_ran(tis) == ["extract", "load[0]", "load[1]"]
    assert states_count(tis) == {"failed": 1, "skipped": 1, "success": 2,
                                 "upstream_failed": 1}


def _limits(seconds: float, quickbooks: float = 0.0) -> dict:
    return {"lightspeed_seconds": seconds, "quickbooks_seconds": quickbooks,
            "seconds": max(seconds, quickbooks), "bound_by": "lightspeed",
            "human": f"{seconds:.0f} s"}


def _orders_flow() -> dict:
    return {"flow": "orders", "state": "success", "records": 1000, "wall_seconds": 60.0,
            "records_per_second": 16.7, "api_calls": {"lightspeed": 1010, "quickbooks": 40},
            "api_calls_per_record": {"lightspeed": 1.01, "quickbooks": 0.04},
            "throttled_429": {}, "peak_rss_mb": 200.0, "real_limits": _limits(900.0, 60.0),
            "quickbooks_batch_calls": 38, "quickbooks_writes": 1000,
            "quickbooks_batches": summarize([BatchNote(30, 0, 200)] * 33
                                            + [BatchNote(10, 0, 200), BatchNote(4, 4, 200)])}


def _writer(read: int, qbo: float, seconds: float, extrapolated: bool, limit: float,
            batches: list[BatchNote], quickbooks_limit: float = 0.0) -> dict:
    return {"orders_read": read, "calls_per_order": {"lightspeed": 1.01, "quickbooks": qbo},
            "quickbooks_batches": summarize(batches), "quickbooks_writes": 900,
            "wall_seconds_full_size": seconds, "extrapolated": extrapolated,
            "real_limits_full_size": _limits(limit, quickbooks_limit)}


def test_koppel_is_set_against_both_writers_with_ratios():
    compared = side_by_side(1000, _orders_flow(),
                            _writer(300, 8.0, 90.0, True, 960.0, [], 960.0),
                            _writer(1000, 4.0, 120.0, False, 900.0, [BatchNote(30, 0, 200)] * 30,
                                    480.0))
    koppel, baseline, batch = compared["writers"]
    assert [w["writer"] for w in compared["writers"]] == ["koppel", "per-record baseline",
                                                          "batch writer"]
    assert koppel["operations_per_batch"] == 28.69  # 1,004 operations in 35 requests
    assert koppel["batches_with_lookups"] == 1 and koppel["wall_seconds_full_size"] == 60.0
    assert baseline["extrapolated"] and not batch["extrapolated"]
    assert baseline["batch_requests"] == 0 and batch["operations_per_batch"] == 30.0
    to_base = compared["koppel_ratio_to"]["per-record baseline"]
    to_batch = compared["koppel_ratio_to"]["batch writer"]
    assert to_base["quickbooks_calls_per_order"] == 0.005
    assert to_batch["quickbooks_calls_per_order"] == 0.01
    assert to_batch["wall_seconds_full_size"] == 0.5
    assert to_base["real_limits_seconds"] == pytest.approx(0.9375)
    assert to_batch["real_limits_seconds"] == 1.0
    assert to_base["quickbooks_limit_seconds"] == 0.0625
    assert to_batch["quickbooks_limit_seconds"] == 0.125


def test_a_ratio_to_nothing_is_left_empty():
    compared = side_by_side(10, {**_orders_flow(), "real_limits": _limits(0.0)},
                            _writer(10, 8.0, 0.5, False, 0.0, []),
                            _writer(10, 0.0, 0.2, False, 0.0, []))
    assert compared["koppel_ratio_to"]["batch writer"]["quickbooks_calls_per_order"] is None
    assert compared["koppel_ratio_to"]["batch writer"]["real_limits_seconds"] is None


def test_the_report_prints_the_side_by_side_batches_and_idle_runs():
    flow = _orders_flow()
    idle_flow = {**flow, "records": 0, "wall_seconds": 14.2, "seconds_in_dag_test": 6.1,
                 "api_calls": {"lightspeed": 1, "quickbooks": 0}, "quickbooks_writes": 0,
                 "task_states": {"skipped": 5, "success": 3}, "task_instances_ran": 3}
    run = {"size": 1000, "flows": [flow],
           "side_by_side": side_by_side(1000, flow, _writer(300, 8.0, 90.0, True, 960.0, []),
                                        _writer(1000, 4.0, 120.0, False, 900.0,
                                                [BatchNote(30, 0, 200)])),
           "idle": {"since": "2026-12-06T00:00:00+00:00", "flows": [idle_flow],
                    "orders_resync": {**idle_flow, "records": 1000,
                                      "task_instances_ran": 6}}}
    batches = "\n".join(render_batches([run]))
    (row,) = [line.split() for line in batches.splitlines() if line.startswith("orders")]
    # flow, orders, batches, ops/batch, writes/write batch, with look-ups, look-ups only,
    # mixed, writes only, QBO writes
    assert row == ["orders", "1,000", "35", "28.69", "29.41", "1", "1", "0", "34", "1,000"]
    side = "\n".join(render_side_by_side([run]))
    assert "side by side, 1,000 orders" in side
    assert "90.00*" in side, "a sampled writer's wall time is marked extrapolated"
    assert "koppel ÷ batch writer" in side and "koppel ÷ per-record baseline" in side
    text = "\n".join(render_idle([run]))
    lines = [line for line in text.splitlines() if line.startswith("orders")]
    assert len(lines) == 2
    assert "nothing changed" in lines[0] and "skipped 5 success 3" in lines[0]
    assert " 3 " in lines[0] and "14.20" in lines[0]
    assert "re-sync all" in lines[1]
    run["idle"]["airflow_floor"] = {"tasks": 3, "state": "success", "wall_seconds": 7.1,
                                    "seconds_in_dag_test": 4.05, "seconds_in_tasks": 2.0,
                                    "task_instances_ran": 3}
    text = "\n".join(render_idle([run]))
    (floor,) = [line for line in text.splitlines() if line.startswith("Airflow's floor")]
    assert floor == ("Airflow's floor at 1,000 orders: 3 tasks that do nothing, run the same "
                     "way: 7.10 s wall, 4.05 s inside dag.test(); idle runs ÷ floor (wall): "
                     "orders 2.00")
    run["batch_writer"] = _writer(1000, 4.0, 120.0, False, 900.0, [], 480.0)
    full = render({"runs": [run]})
    # the batch writer has its row under the real limits too (booked in full: not marked)
    (limit_row,) = [line.split() for line in full.splitlines()
                    if line.startswith("batch writer ") and "lightspeed" in line]
    assert limit_row == ["batch", "writer", "1,000", "900.00", "480.00", "lightspeed", "900",
                         "s"]
    assert batches in full and side in full and text in full
    assert render_idle([{"size": 10, "flows": []}]) == []


def test_image_downloads_from_the_cdn_are_not_api_calls():
    """The shop's image files come from its CDN, outside the API's rate limits: the bench
    counts them apart (``files``) and projects the time under the limits without them."""
    from bench.harness import stats_delta

    before = {"total": 10, "throttled": 0, "by_route": {"GET /{lang}/products.json": 10}}
    after = {"total": 25, "throttled": 1, "by_route": {
        "GET /{lang}/products.json": 14,
        "GET /{lang}/products/{product_id:int}/images.json": 3,
        "GET /_cdn/shops/{shop_id}/files/{image_id:int}/{rest:path}": 8}}
    delta = stats_delta(before, after)
    assert (delta["total"], delta["files"], delta["throttled"]) == (7, 8, 1)
    assert delta["by_route"]["GET /_cdn/shops/{shop_id}/files/{image_id:int}/{rest:path}"] == 8


def test_the_report_of_a_run_without_the_orders_flow_leaves_koppels_columns_out():
    """``python -m bench --flows products`` still runs the per-record baseline: its report
    has no koppel figures to set it against, and prints what it has."""
    baseline = {**_writer(300, 8.0, 90.0, True, 960.0, []), "seconds_per_order": 0.3}
    text = render({"runs": [{"size": 10, "flows": [], "baseline": baseline,
                             "batch_writer": _writer(10, 4.0, 1.0, False, 9.0, [])}]})
    assert "baseline: per-record python-quickbooks sync" not in text
    assert "batch writer" in text


def test_koppels_wall_time_is_split_into_airflow_and_its_tasks():
    """The side-by-side says how much of koppel's wall time its tasks ran: the rest is
    Airflow's (the ``airflow dags test`` process, task start-up, scheduling passes)."""
    from bench.runner import seconds_in_tasks

    tis = [{"task_id": "extract", "map_index": -1, "state": "success", "seconds": 1.25},
           {"task_id": "load", "map_index": 0, "state": "failed", "seconds": 2.5},
           {"task_id": "check_error_threshold", "map_index": -1, "state": "skipped",
            "seconds": None},
           {"task_id": "finalize", "map_index": -1, "state": "success", "seconds": 0.125}]
    assert seconds_in_tasks(tis) == 3.875
    flow = {**_orders_flow(), "seconds_in_dag_test": 41.5, "seconds_in_tasks": 30.25,
            "tasks_ran": ["extract", "load[0]", "finalize"]}
    run = {"size": 1000, "flows": [flow],
           "side_by_side": side_by_side(1000, flow, _writer(300, 8.0, 90.0, True, 960.0, []),
                                        _writer(1000, 4.0, 120.0, False, 900.0, []))}
    side = render_side_by_side([run])
    assert side[-1] == ("koppel's 60.00 s: 41.50 s inside dag.test(), 30.25 s running its 3 "
                        "tasks (the rest is Airflow: the process, task start-up, scheduling)")
    del flow["seconds_in_tasks"]  # results of an older bench: no line
    assert not render_side_by_side([run])[-1].startswith("koppel's")
