"""Stock maths over the whole catalogue, vectorised with pandas.

Lightspeed has no reserved-stock field: reservations are computed from open orders as
``quantityOrdered − quantityShipped`` per variant over orders whose ``shipmentStatus``
is not ``shipped`` and ``status`` not ``cancelled`` (negative remainders clipped at 0).

The quantity koppel writes to the target is one of (``settings.stock.calculation``):

* ``available_minus_reserved`` (default): ``stock_level − reserved``
* ``stock_level``: the shop's stock level as is
* ``formula``: an arithmetic expression over named columns (``stock_level``,
  ``reserved``, ``buffer`` and any extra numeric column given), e.g.
  ``max(stock_level - reserved - buffer, 0)``. It is parsed with :mod:`ast` and
  evaluated by a small whitelist interpreter over pandas Series: numbers, column names,
  ``+ - * /``, unary minus, parentheses and the functions ``min``/``max``/``floor`` (the
  same whitelist as the tenant validator, ``koppel.domain.formula``). Anything else
  (attributes, subscripts, other calls, ``__import__``…) is rejected before evaluation.

Only items that track stock on the target are compared, and only rows whose quantity
changes are returned: ready for QBO ``InventoryAdjustment`` lines (``QtyDiff``) and, in
the reverse direction, Lightspeed ``PUT variants/{id}.json`` ``stockLevel`` updates.
"""

from __future__ import annotations

import ast
import operator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, Iterable, Literal, Mapping

import numpy as np
import pandas as pd

from koppel.domain.qbo_payloads import AdjustmentRow
from koppel.domain.records import MappedStock
from koppel.domain.formula import QUANTITIES, FormulaError, StockFormula

CalculationKind = Literal["available_minus_reserved", "stock_level", "formula"]
CALCULATIONS: tuple[str, ...] = ("available_minus_reserved", "stock_level", "formula")
#: Quantities are rounded to this many decimals to keep float noise out of diffs.
QUANTITY_DECIMALS = 4

ORDER_ROW_COLUMNS = (
    "order_id",
    "status",
    "shipment_status",
    "variant_id",
    "quantity_ordered",
    "quantity_shipped",
)


_NON_NUMERIC = frozenset({"source_variant_id", "sku", "track_stock", "target"})


# --------------------------------------------------------------------------- reservations


def reservations(order_rows: pd.DataFrame) -> pd.Series:
    """Reserved quantity per variant id (a float Series named ``reserved``).

    ``order_rows`` has one row per order row with :data:`ORDER_ROW_COLUMNS`. Rows of
    shipped or cancelled orders do not reserve; a row shipped beyond its ordered quantity
    reserves 0, never a negative amount.
    """
    missing = [c for c in ORDER_ROW_COLUMNS if c not in order_rows.columns]
    if missing:
        raise ValueError(f"order rows lack columns: {', '.join(missing)}")
    if order_rows.empty:
        return pd.Series(dtype="float64", name="reserved").rename_axis("variant_id")
    status = order_rows["status"].fillna("").astype(str).str.lower()
    shipment = order_rows["shipment_status"].fillna("").astype(str).str.lower()
    open_rows = order_rows[(shipment != "shipped") & (status != "cancelled")]
    ordered = pd.to_numeric(open_rows["quantity_ordered"], errors="coerce").fillna(0)
    shipped = pd.to_numeric(open_rows["quantity_shipped"], errors="coerce").fillna(0)
    outstanding = (ordered - shipped).clip(lower=0)
    result = outstanding.groupby(open_rows["variant_id"].astype(str)).sum()
    return result.astype("float64").rename("reserved").rename_axis("variant_id")


# --------------------------------------------------------------------------- formulas

_BINARY: Mapping[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}
_UNARY: Mapping[type, Callable[[Any], Any]] = {ast.USub: operator.neg, ast.UAdd: operator.pos}
_FUNCTIONS: Mapping[str, Callable[..., Any]] = {"min": np.minimum, "max": np.maximum}
_UNARY_FUNCTIONS: Mapping[str, Callable[[Any], Any]] = {"floor": np.floor}
#: Names a formula may use: the tenant file's whitelist (koppel.domain.formula)
FORMULA_NAMES = frozenset(QUANTITIES)


def parse_formula(text: str, names: Iterable[str]) -> ast.Expression:
    """Parse and check ``text`` with the same parser and whitelist the tenant file is
    validated with; every name it uses must also be in ``names`` (the data at hand)."""
    formula = StockFormula.parse(text, extra_names=set(names) - FORMULA_NAMES)
    missing = sorted(formula.names - set(names))
    if missing:
        raise FormulaError(f"the formula needs data that is not available: {', '.join(missing)}")
    return formula.tree


def _evaluate(node: ast.AST, columns: Mapping[str, pd.Series]) -> Any:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, columns)
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)](_evaluate(node.left, columns), _evaluate(node.right, columns))
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_evaluate(node.operand, columns))
    if isinstance(node, ast.Constant):
        return float(node.value)
    if isinstance(node, ast.Name):
        return columns[node.id]
    if isinstance(node, ast.Call):
        name = node.func.id  # type: ignore[union-attr]
        if name in _UNARY_FUNCTIONS:
            return _UNARY_FUNCTIONS[name](_evaluate(node.args[0], columns))
        function = _FUNCTIONS[name]
        values = [_evaluate(argument, columns) for argument in node.args]
        result = values[0]
        for value in values[1:]:
            result = function(result, value)
        return result
    raise FormulaError(f"{type(node).__name__} is not allowed in a stock formula")


def evaluate_formula(text: str, frame: pd.DataFrame) -> pd.Series:
    """Evaluate a validated formula over the numeric columns of ``frame`` (one value per row)."""
    numeric = {
        name: pd.to_numeric(frame[name], errors="coerce").astype("float64")
        for name in frame.columns
        if name not in _NON_NUMERIC
    }
    tree = parse_formula(text, numeric.keys())
    try:
        with np.errstate(divide="ignore", invalid="ignore"):
            result = _evaluate(tree, numeric)
    except ZeroDivisionError:
        raise FormulaError("division by zero") from None
    if not isinstance(result, pd.Series):
        result = pd.Series(float(result), index=frame.index)
    return result.replace([np.inf, -np.inf], np.nan)


# --------------------------------------------------------------------------- targets


@dataclass(frozen=True)
class StockCalculation:
    """``settings.stock``: which quantity to write and whether to floor it at zero."""

    kind: CalculationKind = "available_minus_reserved"
    formula: str | None = None
    buffer: Decimal = Decimal(0)
    floor_at_zero: bool = True
    extra: Mapping[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        """Raise :class:`FormulaError` / ``ValueError`` for an unusable configuration."""
        if self.kind not in CALCULATIONS:
            raise ValueError(f"unknown stock calculation {self.kind!r}")
        if self.kind == "formula":
            parse_formula(self.formula or "", FORMULA_NAMES | set(self.extra))


def stock_frame(records: Iterable[MappedStock]) -> pd.DataFrame:
    """Canonical stock records → a frame (``source_variant_id`` as string, floats for levels)."""
    rows = [
        {
            "source_variant_id": record.source_variant_id,
            "sku": record.sku,
            "stock_level": float(record.stock_level),
            "track_stock": bool(record.track_stock),
        }
        for record in records
    ]
    frame = pd.DataFrame(rows, columns=["source_variant_id", "sku", "stock_level", "track_stock"])
    return frame.astype({"source_variant_id": "string", "stock_level": "float64", "track_stock": "bool"})


def target_quantities(
    stock: pd.DataFrame,
    reserved: pd.Series,
    calculation: StockCalculation,
    qty_on_hand: pd.Series | None = None,
) -> pd.DataFrame:
    """``stock`` plus ``reserved`` and ``target`` columns, computed for every variant at once.

    Extra numeric columns of ``stock`` (``stock_minimum``, ``stock_alert``,
    ``stock_sold``…) and ``qty_on_hand`` (QBO's quantity per variant id, when given) are
    available to a formula.
    """
    calculation.validate()
    frame = stock.copy()
    frame["source_variant_id"] = frame["source_variant_id"].astype(str)
    frame["reserved"] = frame["source_variant_id"].map(reserved.astype("float64")).fillna(0.0)
    if qty_on_hand is not None:
        frame["qty_on_hand"] = frame["source_variant_id"].map(qty_on_hand.astype("float64"))
    frame["buffer"] = float(calculation.buffer)
    for name, value in calculation.extra.items():
        frame[name] = value
    if calculation.kind == "stock_level":
        target = frame["stock_level"].astype("float64")
    elif calculation.kind == "available_minus_reserved":
        target = frame["stock_level"].astype("float64") - frame["reserved"]
    else:
        target = evaluate_formula(str(calculation.formula), frame)
    if calculation.floor_at_zero:
        target = target.clip(lower=0)
    frame["target"] = target.round(QUANTITY_DECIMALS)
    return frame


def qbo_stock_changes(targets: pd.DataFrame, qbo_items: pd.DataFrame) -> pd.DataFrame:
    """Rows whose QBO ``QtyOnHand`` must change.

    ``qbo_items`` columns: ``source_variant_id``, ``item_id``, ``qty_on_hand``,
    ``track_qty_on_hand``. Only variants that exist in QBO and track quantity there, and
    whose target is known, are compared. Result columns: ``source_variant_id``, ``sku``,
    ``item_id``, ``current``, ``target``, ``qty_diff``, sorted by variant id.
    """
    items = qbo_items.copy()
    items["source_variant_id"] = items["source_variant_id"].astype(str)
    items = items[items["track_qty_on_hand"].fillna(False).astype(bool)]
    merged = targets.merge(items, on="source_variant_id", how="inner")
    merged = merged[merged["target"].notna()]
    current = pd.to_numeric(merged["qty_on_hand"], errors="coerce").fillna(0.0).round(QUANTITY_DECIMALS)
    merged = merged.assign(current=current, qty_diff=(merged["target"] - current).round(QUANTITY_DECIMALS))
    changed = merged[merged["qty_diff"] != 0]
    columns = ["source_variant_id", "sku", "item_id", "current", "target", "qty_diff"]
    return changed[columns].sort_values("source_variant_id", kind="stable").reset_index(drop=True)


def lightspeed_stock_updates(shop_stock: pd.DataFrame, qbo_items: pd.DataFrame) -> pd.DataFrame:
    """Reverse direction: Lightspeed variants whose ``stockLevel`` must become QBO's ``QtyOnHand``.

    Only variants that track stock in the shop and whose QBO item tracks quantity.
    Result columns: ``source_variant_id``, ``current``, ``stock_level``.
    """
    shop = shop_stock.copy()
    shop["source_variant_id"] = shop["source_variant_id"].astype(str)
    shop = shop[shop["track_stock"].astype(bool)]
    items = qbo_items.copy()
    items["source_variant_id"] = items["source_variant_id"].astype(str)
    items = items[items["track_qty_on_hand"].fillna(False).astype(bool)]
    merged = shop.merge(items, on="source_variant_id", how="inner")
    wanted = pd.to_numeric(merged["qty_on_hand"], errors="coerce").round(QUANTITY_DECIMALS)
    current = merged["stock_level"].astype("float64").round(QUANTITY_DECIMALS)
    merged = merged.assign(current=current, stock_level=wanted)
    changed = merged[merged["stock_level"].notna() & (merged["stock_level"] != merged["current"])]
    return (
        changed[["source_variant_id", "current", "stock_level"]]
        .sort_values("source_variant_id", kind="stable")
        .reset_index(drop=True)
    )


def _quantity(value: float) -> Decimal:
    number = Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-QUANTITY_DECIMALS))
    return number.normalize() if number != number.to_integral_value() else number.quantize(Decimal(1))


def adjustment_rows(changes: pd.DataFrame) -> list[AdjustmentRow]:
    """:func:`qbo_stock_changes` output → ``InventoryAdjustment`` line inputs (Decimal diffs)."""
    return [
        AdjustmentRow(item_id=str(item_id), qty_diff=_quantity(diff))
        for item_id, diff in zip(changes["item_id"], changes["qty_diff"])
    ]
