"""Safe stock formulas (``settings.stock.formula``).

A formula is an arithmetic expression over named quantities, e.g.
``max(0, stock_level - reserved - buffer)`` or ``floor(stock_level * 0.9)``. It is parsed
with :mod:`ast` and every node is checked against a whitelist: numbers, the names in
:data:`QUANTITIES`, ``+ - * /``, unary minus/plus, parentheses and calls of ``min``,
``max`` and ``floor`` — nothing else (no attribute access, subscripts, lambdas, other
calls or names). It is evaluated by walking that tree, never with ``eval``.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Callable, Iterable, Mapping

#: Names a formula may use, with what they mean.
QUANTITIES: dict[str, str] = {
    "stock_level": "the variant's stock level in the webshop (stockLevel)",
    "reserved": "units on open, unshipped orders (ordered minus shipped)",
    "buffer": "settings.stock.buffer: units held back from sale",
    "stock_minimum": "the variant's stockMinimum",
    "stock_alert": "the variant's stockAlert",
    "stock_sold": "the variant's stockSold",
    "qty_on_hand": "the item's QtyOnHand in QuickBooks",
}

_FUNCTIONS: dict[str, Callable[..., Decimal]] = {
    "min": lambda *args: min(args),
    "max": lambda *args: max(args),
    "floor": lambda value: Decimal(math.floor(value)),
}
_BINARY = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
MAX_FORMULA_LENGTH = 300
MAX_NODES = 100


class FormulaError(ValueError):
    """A formula is not allowed (at load time) or cannot be computed (at run time)."""


@dataclass(frozen=True)
class StockFormula:
    """A parsed, checked formula; :meth:`evaluate` computes it for given quantities."""

    text: str
    tree: ast.Expression
    names: frozenset[str]

    @classmethod
    def parse(cls, text: str, extra_names: Iterable[str] = ()) -> "StockFormula":
        """Parse and check ``text``; raises :class:`FormulaError` naming what is not allowed.
        ``extra_names``: quantities a caller provides besides :data:`QUANTITIES`."""
        if not isinstance(text, str) or not text.strip():
            raise FormulaError("the formula is empty")
        if len(text) > MAX_FORMULA_LENGTH:
            raise FormulaError(f"the formula is longer than {MAX_FORMULA_LENGTH} characters")
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as exc:
            raise FormulaError(f"syntax error at column {exc.offset}: {exc.msg}") from None
        nodes = list(ast.walk(tree))
        if len(nodes) > MAX_NODES:
            raise FormulaError(f"the formula has more than {MAX_NODES} parts")
        names: set[str] = set()
        _check(tree.body, names, frozenset(QUANTITIES) | frozenset(extra_names))
        return cls(text=text, tree=tree, names=frozenset(names))

    def evaluate(self, quantities: Mapping[str, object]) -> Decimal:
        """The formula's value; every name it uses must be in ``quantities``."""
        missing = sorted(self.names - set(quantities))
        if missing:
            raise FormulaError(f"no value for {', '.join(missing)}")
        values = {name: _number(quantities[name], name) for name in self.names}
        try:
            return _evaluate(self.tree.body, values)
        except (ArithmeticError, InvalidOperation) as exc:
            raise FormulaError(f"cannot compute {self.text!r}: {exc.__class__.__name__}") from None


def _check(node: ast.AST, names: set[str], allowed: frozenset[str]) -> None:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise FormulaError(f"only numbers are allowed as constants (got {node.value!r})")
    elif isinstance(node, ast.Name):
        if node.id not in allowed:
            if node.id in _FUNCTIONS:
                raise FormulaError(f"{node.id} must be called, e.g. {node.id}(a, b)")
            raise FormulaError(f"unknown name {node.id!r} (allowed: "
                               f"{', '.join([*QUANTITIES, *sorted(allowed - set(QUANTITIES))])})")
        names.add(node.id)
    elif isinstance(node, ast.BinOp):
        if type(node.op) not in _BINARY:
            raise FormulaError("only + - * / are allowed")
        _check(node.left, names, allowed)
        _check(node.right, names, allowed)
    elif isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, (ast.USub, ast.UAdd)):
            raise FormulaError("only unary - and + are allowed")
        _check(node.operand, names, allowed)
    elif isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS:
            raise FormulaError(f"only calls of {', '.join(_FUNCTIONS)} are allowed")
        if node.keywords:
            raise FormulaError(f"{node.func.id}() takes no keyword arguments")
        expected = (1, 1) if node.func.id == "floor" else (2, 10)
        if not expected[0] <= len(node.args) <= expected[1]:
            raise FormulaError(f"{node.func.id}() takes {'one argument' if expected[0] == 1 else 'two or more arguments'}")
        for argument in node.args:
            if isinstance(argument, ast.Starred):
                raise FormulaError("* arguments are not allowed")
            _check(argument, names, allowed)
    else:
        raise FormulaError(f"{type(node).__name__} is not allowed in a formula")


def _number(value: object, name: str) -> Decimal:
    if isinstance(value, bool):
        raise FormulaError(f"{name} must be a number")
    try:
        return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)  # type: ignore[arg-type]
    except (InvalidOperation, TypeError, ValueError):
        raise FormulaError(f"{name} must be a number (got {value!r})") from None


def _evaluate(node: ast.AST, values: Mapping[str, Decimal]) -> Decimal:
    if isinstance(node, ast.Constant):
        return _number(node.value, "constant")
    if isinstance(node, ast.Name):
        return values[node.id]
    if isinstance(node, ast.UnaryOp):
        operand = _evaluate(node.operand, values)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp):
        left, right = _evaluate(node.left, values), _evaluate(node.right, values)
        op = _BINARY[type(node.op)]
        if op == "+":
            return left + right
        if op == "-":
            return left - right
        if op == "*":
            return left * right
        if right == 0:
            raise FormulaError("division by zero")
        return left / right
    if isinstance(node, ast.Call):
        return _FUNCTIONS[node.func.id](*(_evaluate(arg, values) for arg in node.args))  # type: ignore[union-attr]
    raise FormulaError(f"{type(node).__name__} is not allowed in a formula")  # pragma: no cover
