from decimal import Decimal as D

import pandas as pd
import pytest

from koppel.domain.qbo_payloads import AdjustmentRow
from koppel.domain.records import MappedStock
from koppel.domain.stock import (
    FormulaError,
    StockCalculation,
    adjustment_rows,
    evaluate_formula,
    lightspeed_stock_updates,
    parse_formula,
    qbo_stock_changes,
    reservations,
    stock_frame,
    target_quantities,
)

ORDER_ROWS = pd.DataFrame(
    [
        # open, nothing shipped: reserves 3 of v1 and 1 of v2
        (1, "processing_awaiting_shipment", "not_shipped", "v1", 3, 0),
        (1, "processing_awaiting_shipment", "not_shipped", "v2", 1, 0),
        # partly shipped: reserves 5 - 2 = 3 of v1
        (2, "processing_awaiting_shipment", "partially_shipped", "v1", 5, 2),
        # over-shipped row never reserves negative
        (2, "processing_awaiting_shipment", "partially_shipped", "v3", 1, 4),
        # shipped: no reservation
        (3, "completed_shipped", "shipped", "v1", 10, 10),
        (4, "completed_shipped", "SHIPPED", "v2", 7, 0),
        # cancelled: no reservation
        (5, "cancelled", "not_shipped", "v1", 8, 0),
        # on hold counts
        (6, "on_hold", None, "v4", 2, None),
    ],
    columns=["order_id", "status", "shipment_status", "variant_id", "quantity_ordered", "quantity_shipped"],
)


def catalogue():
    return stock_frame(
        [
            MappedStock(source_variant_id="v1", sku="A", stock_level=D("10"), track_stock=True),
            MappedStock(source_variant_id="v2", sku="B", stock_level=D("0"), track_stock=True),
            MappedStock(source_variant_id="v3", sku="C", stock_level=D("4"), track_stock=True),
            MappedStock(source_variant_id="v4", sku="D", stock_level=D("1"), track_stock=False),
            MappedStock(source_variant_id="v5", sku="E", stock_level=D("7"), track_stock=True),
        ]
    )


def test_reservations_from_known_orders():
    reserved = reservations(ORDER_ROWS)
    assert reserved.to_dict() == {"v1": 6.0, "v2": 1.0, "v3": 0.0, "v4": 2.0}


def test_reservations_empty_and_missing_columns():
    assert reservations(ORDER_ROWS.iloc[0:0]).empty
    with pytest.raises(ValueError, match="quantity_shipped"):
        reservations(ORDER_ROWS.drop(columns=["quantity_shipped"]))


def test_available_minus_reserved_with_floor():
    frame = target_quantities(catalogue(), reservations(ORDER_ROWS), StockCalculation())
    assert frame.set_index("source_variant_id")["target"].to_dict() == {
        "v1": 4.0, "v2": 0.0, "v3": 4.0, "v4": 0.0, "v5": 7.0}
    no_floor = target_quantities(catalogue(), reservations(ORDER_ROWS), StockCalculation(floor_at_zero=False))
    assert no_floor.set_index("source_variant_id")["target"]["v2"] == -1.0


def test_stock_level_and_formula_calculations():
    reserved = reservations(ORDER_ROWS)
    plain = target_quantities(catalogue(), reserved, StockCalculation(kind="stock_level"))
    assert plain.set_index("source_variant_id")["target"]["v1"] == 10.0
    calc = StockCalculation(kind="formula", formula="max(stock_level - reserved - buffer, 0) * 1", buffer=D("2"))
    formula = target_quantities(catalogue(), reserved, calc).set_index("source_variant_id")["target"]
    assert formula.to_dict() == {"v1": 2.0, "v2": 0.0, "v3": 2.0, "v4": 0.0, "v5": 5.0}
    calc = StockCalculation(kind="formula", formula="min(stock_level, safety) / 2", extra={"safety": 6})
    assert target_quantities(catalogue(), reserved, calc).set_index("source_variant_id")["target"]["v1"] == 3.0


def test_formula_floor_and_target_side_quantities():
    reserved = reservations(ORDER_ROWS)
    stock = catalogue().assign(stock_minimum=[1, 0, 0, 0, 2])
    calc = StockCalculation(kind="formula", formula="floor((stock_level - stock_minimum) * 0.5)")
    result = target_quantities(stock, reserved, calc).set_index("source_variant_id")["target"]
    assert result["v1"] == 4.0 and result["v5"] == 2.0
    on_hand = pd.Series({"v1": 3.0, "v5": 9.0})
    calc = StockCalculation(kind="formula", formula="min(stock_level, qty_on_hand)", floor_at_zero=False)
    result = target_quantities(catalogue(), reserved, calc, qty_on_hand=on_hand).set_index("source_variant_id")["target"]
    assert result["v1"] == 3.0 and result["v5"] == 7.0 and pd.isna(result["v2"])
    with pytest.raises(FormulaError, match="stock_alert"):
        target_quantities(catalogue(), reserved, StockCalculation(kind="formula", formula="stock_level - stock_alert"))


@pytest.mark.parametrize(
    "formula",
    [
        "__import__('os').system('true')",
        "stock_level.__class__",
        "stock_level[0]",
        "abs(stock_level)",
        "open('x')",
        "max(stock_level)",
        "floor(stock_level, 2)",
        "round(stock_level)",
        "max(stock_level, key=reserved)",
        "lambda: 1",
        "stock_level if reserved else 0",
        "stock_level ** 9999",
        "unknown_column + 1",
        "'text'",
        "[stock_level]",
        "",
        "stock_level +",
        "1" + "+1" * 300,
    ],
)
def test_formula_safety(formula):
    with pytest.raises(FormulaError):
        parse_formula(formula, {"stock_level", "reserved", "buffer"})
    with pytest.raises(FormulaError):
        StockCalculation(kind="formula", formula=formula).validate()


def test_formula_division_by_zero_constant_rejected_and_by_column_gives_nan():
    frame = pd.DataFrame({"stock_level": [4.0, 2.0], "reserved": [0.0, 1.0]})
    with pytest.raises(FormulaError):
        evaluate_formula("stock_level + 1 / 0", frame)
    result = evaluate_formula("stock_level / reserved", frame)
    assert pd.isna(result[0]) and result[1] == 2.0


def qbo_items():
    return pd.DataFrame(
        [
            ("v1", "31", 10, True),   # target 4 -> -6
            ("v2", "32", 0, True),    # target 0 -> unchanged
            ("v3", "33", 3, True),    # target 4 -> +1
            ("v4", "34", 5, False),   # QBO does not track -> skipped
            ("v9", "39", 1, True),    # not in the shop -> skipped
        ],
        columns=["source_variant_id", "item_id", "qty_on_hand", "track_qty_on_hand"],
    )


def test_diff_only_changed_tracked_rows_and_adjustment_rows():
    targets = target_quantities(catalogue(), reservations(ORDER_ROWS), StockCalculation())
    changes = qbo_stock_changes(targets, qbo_items())
    assert changes[["source_variant_id", "item_id", "current", "target", "qty_diff"]].values.tolist() == [
        ["v1", "31", 10.0, 4.0, -6.0],
        ["v3", "33", 3.0, 4.0, 1.0],
    ]
    assert adjustment_rows(changes) == [AdjustmentRow("31", D("-6")), AdjustmentRow("33", D("1"))]


def test_lightspeed_reverse_direction_updates():
    updates = lightspeed_stock_updates(catalogue(), qbo_items())
    assert updates.values.tolist() == [["v3", 4.0, 3.0]]
    assert updates.set_index("source_variant_id")["stock_level"].to_dict() == {"v3": 3.0}
