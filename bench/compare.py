"""koppel's orders flow, the per-record baseline and the batch writer side by side, on the
same orders and sandboxes: per-order calls, QuickBooks batch requests, wall time at the
full size, the QuickBooks side's time under its limits and the whole time under the real
limits (the slower side's), with the ratios koppel ÷ each of the other
two (below 1: koppel needs less)."""

from __future__ import annotations

from typing import Any

#: the writers compared, in the order printed
WRITERS = ("koppel", "per-record baseline", "batch writer")
#: figures with a ratio (koppel ÷ the other writer)
RATIO_FIGURES = ("quickbooks_calls_per_order", "lightspeed_calls_per_order",
                 "wall_seconds_full_size", "quickbooks_limit_seconds", "real_limits_seconds")


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or not b:
        return None
    return round(a / b, 4)


def _koppel_row(size: int, flow: dict[str, Any]) -> dict[str, Any]:
    records = max(flow["records"], 1)
    batches = flow.get("quickbooks_batches") or {}
    return {
        "writer": "koppel", "orders": flow["records"], "extrapolated": flow["records"] < size,
        "quickbooks_calls_per_order": flow["api_calls_per_record"].get("quickbooks", 0.0),
        "lightspeed_calls_per_order": flow["api_calls_per_record"].get("lightspeed", 0.0),
        "quickbooks_writes": flow.get("quickbooks_writes"),
        "batch_requests": batches.get("batch_requests", flow.get("quickbooks_batch_calls")),
        "operations_per_batch": batches.get("operations_per_batch"),
        "batches_with_lookups": batches.get("batches_with_lookups"),
        "wall_seconds_full_size": round(flow["wall_seconds"] / records * size, 2),
        "quickbooks_limit_seconds": flow["real_limits"]["quickbooks_seconds"],
        "real_limits_seconds": flow["real_limits"]["seconds"],
        "real_limits_human": flow["real_limits"]["human"],
    }


def _writer_row(name: str, measured: dict[str, Any]) -> dict[str, Any]:
    batches = measured.get("quickbooks_batches") or {}
    return {
        "writer": name, "orders": measured["orders_read"],
        "extrapolated": bool(measured.get("extrapolated")),
        "quickbooks_calls_per_order": measured["calls_per_order"].get("quickbooks", 0.0),
        "lightspeed_calls_per_order": measured["calls_per_order"].get("lightspeed", 0.0),
        "quickbooks_writes": measured.get("quickbooks_writes"),
        "batch_requests": batches.get("batch_requests", measured.get("quickbooks_batch_calls")),
        "operations_per_batch": batches.get("operations_per_batch"),
        "batches_with_lookups": batches.get("batches_with_lookups"),
        "wall_seconds_full_size": measured["wall_seconds_full_size"],
        "quickbooks_limit_seconds": measured["real_limits_full_size"]["quickbooks_seconds"],
        "real_limits_seconds": measured["real_limits_full_size"]["seconds"],
        "real_limits_human": measured["real_limits_full_size"]["human"],
    }


def side_by_side(size: int, orders_flow: dict[str, Any], baseline: dict[str, Any],
                 batch_writer: dict[str, Any]) -> dict[str, Any]:
    """The three writers' figures for ``size`` orders and koppel's ratios to the others.

    A writer that booked a sample has its wall time and real-limit time extrapolated to
    ``size`` orders (``extrapolated``); the per-order figures are as measured."""
    rows = [_koppel_row(size, orders_flow), _writer_row("per-record baseline", baseline),
            _writer_row("batch writer", batch_writer)]
    koppel = rows[0]
    ratios = {other["writer"]: {figure: ratio(koppel[figure], other[figure])
                                for figure in RATIO_FIGURES}
              for other in rows[1:]}
    return {"size": size, "writers": rows, "koppel_ratio_to": ratios}
