"""The QBO query language subset: ``SELECT * | *, f | COUNT(*) FROM E [WHERE c AND …]
[ORDERBY|ORDER BY f [ASC|DESC]] [STARTPOSITION n] [MAXRESULTS n]``.

Conditions are ``field op value`` with ``=, <, >, <=, >=, !=, IN (…), LIKE '…%'``, joined by
``AND`` only (``OR`` is a parse error, 4000). Strings are single-quoted with ``\\'``
escapes; ``true``/``false`` in any case; string comparisons ignore case, as QBO's do.
Fields may be nested (``MetaData.LastUpdatedTime``); a reference (``CustomerRef``) compares
its ``value`` and ``PrimaryEmailAddr`` its ``Address``. Without a condition on ``Active``
inactive list objects are hidden.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from koppel.sandbox.quickbooks import faults
from koppel.sandbox.quickbooks.store import parse_time

MAX_RESULTS = 1000
DEFAULT_RESULTS = 100

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<string>'(?:\\.|''|[^'\\])*')
  | (?P<number>-?\d+(?:\.\d+)?(?![\w.]))
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[(),*])
  | (?P<word>[A-Za-z_][\w.]*)
""", re.VERBOSE)


@dataclass
class Condition:
    field: str
    op: str
    value: Any  # str | Decimal | bool | list


@dataclass
class Query:
    entity: str
    count: bool = False
    conditions: list[Condition] = field(default_factory=list)
    order_by: list[tuple[str, bool]] = field(default_factory=list)  # (field, descending)
    start_position: int = 1
    max_results: int = DEFAULT_RESULTS


def tokenize(text: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise faults.query_parse(f'Encountered "{text[pos]}" at line 1, column {pos + 1}.')
        kind = match.lastgroup
        if kind != "ws":
            tokens.append((kind, match.group()))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.pos = 0

    def peek(self, offset: int = 0) -> tuple[str, str] | None:
        index = self.pos + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def keyword(self, *words: str) -> bool:
        token = self.peek()
        if token and token[0] == "word" and token[1].upper() in words:
            self.pos += 1
            return True
        return False

    def expect_keyword(self, word: str) -> None:
        if not self.keyword(word):
            self.fail(f'Was expecting "{word}"')

    def expect(self, kind: str, value: str | None = None) -> str:
        token = self.peek()
        if token is None or token[0] != kind or (value is not None and token[1] != value):
            self.fail(f'Was expecting "{value or kind}"')
        self.pos += 1
        return token[1]

    def fail(self, expectation: str) -> None:
        token = self.peek()
        found = token[1] if token else "<EOF>"
        raise faults.query_parse(f'Encountered "{found}" at token {self.pos + 1}. {expectation}')

    def parse(self) -> Query:
        self.expect_keyword("SELECT")
        count = False
        if self.keyword("COUNT"):
            self.expect("punct", "(")
            self.expect("punct", "*")
            self.expect("punct", ")")
            count = True
        else:
            self.expect("punct", "*")
            while self.peek() == ("punct", ","):
                self.pos += 1
                self.expect("word")
        self.expect_keyword("FROM")
        query = Query(entity=self.expect("word"), count=count)
        if self.keyword("WHERE"):
            query.conditions.append(self.condition())
            while True:
                if self.keyword("AND"):
                    query.conditions.append(self.condition())
                elif self.keyword("OR"):
                    raise faults.query_parse("OR is not supported; use AND or IN")
                else:
                    break
        while self.peek() is not None:
            if self.keyword("ORDERBY") or (self.keyword("ORDER") and self._by()):
                query.order_by = self.order_fields()
            elif self.keyword("STARTPOSITION"):
                query.start_position = max(1, int(self.expect("number")))
            elif self.keyword("MAXRESULTS"):
                query.max_results = int(self.expect("number"))
                if query.max_results > MAX_RESULTS:
                    raise faults.query_invalid(
                        f"value {query.max_results} is too large. Max allowed value is "
                        f"{MAX_RESULTS}")
            else:
                self.fail('Was expecting one of "AND", "ORDERBY", "STARTPOSITION", '
                          '"MAXRESULTS"')
        return query

    def _by(self) -> bool:
        self.expect_keyword("BY")
        return True

    def order_fields(self) -> list[tuple[str, bool]]:
        fields = []
        while True:
            name = self.expect("word")
            descending = False
            if self.keyword("DESC"):
                descending = True
            else:
                self.keyword("ASC")
            fields.append((name, descending))
            if self.peek() == ("punct", ","):
                self.pos += 1
                continue
            return fields

    def condition(self) -> Condition:
        name = self.expect("word")
        if self.keyword("IN"):
            self.expect("punct", "(")
            values = [self.value()]
            while self.peek() == ("punct", ","):
                self.pos += 1
                values.append(self.value())
            self.expect("punct", ")")
            return Condition(name, "IN", values)
        if self.keyword("LIKE"):
            return Condition(name, "LIKE", self.value())
        token = self.peek()
        if token is None or token[0] != "op":
            self.fail('Was expecting one of "=", "<", ">", "<=", ">=", "IN", "LIKE"')
        self.pos += 1
        op = "!=" if token[1] == "<>" else token[1]
        return Condition(name, op, self.value())

    def value(self) -> Any:
        token = self.peek()
        if token is None:
            self.fail("Was expecting a value")
        self.pos += 1
        kind, text = token
        if kind == "string":
            return re.sub(r"\\(.)", r"\1", text[1:-1]).replace("''", "'")
        if kind == "number":
            return Decimal(text)
        if kind == "word" and text.lower() in ("true", "false"):
            return text.lower() == "true"
        self.pos -= 1
        self.fail("Was expecting a value")


def parse(text: str) -> Query:
    return _Parser(text.strip().rstrip(";")).parse()


# -- evaluation ---------------------------------------------------------------------------
def field_value(obj: dict, path: str) -> Any:
    """Nested, case-insensitive lookup; refs compare by value, e-mails by address."""
    current: Any = obj
    parts = path.split(".")
    for index, part in enumerate(parts):
        if isinstance(current, list):  # e.g. AttachableRef.EntityRef.value
            rest = ".".join(parts[index:])
            return [field_value(entry, rest) for entry in current if isinstance(entry, dict)]
        if not isinstance(current, dict):
            return None
        key = next((k for k in current if k.lower() == part.lower()), None)
        if key is None:
            return None
        current = current[key]
    if isinstance(current, dict):
        for inner in ("value", "Address", "FreeFormNumber"):
            if inner in current:
                return current[inner]
    return current


def _comparable(actual: Any, wanted: Any) -> tuple[Any, Any] | None:
    if isinstance(wanted, bool):
        if isinstance(actual, str):
            actual = actual.lower() == "true"
        return (bool(actual), wanted) if actual is not None else (False, wanted)
    if actual is None:
        return None
    if isinstance(wanted, Decimal) or (isinstance(actual, (int, float))
                                       and not isinstance(actual, bool)):
        try:
            return Decimal(str(actual)), Decimal(str(wanted))
        except InvalidOperation:
            pass
    actual_text, wanted_text = str(actual), str(wanted)
    if re.match(r"\d{4}-\d{2}-\d{2}T", actual_text) or re.match(r"\d{4}-\d{2}-\d{2}T",
                                                                 wanted_text):
        left, right = parse_time(actual_text), parse_time(wanted_text)
        if left and right:
            return left, right
    return actual_text.lower(), wanted_text.lower()


def _like(actual: Any, pattern: str) -> bool:
    if actual is None:
        return False
    regex = "^" + ".*".join(re.escape(part) for part in str(pattern).split("%")) + "$"
    return re.match(regex, str(actual), re.IGNORECASE | re.DOTALL) is not None


def matches(obj: dict, condition: Condition) -> bool:
    actual = field_value(obj, condition.field)
    if isinstance(actual, list):
        return any(_matches_value(value, condition) for value in actual)
    return _matches_value(actual, condition)


def _matches_value(actual: Any, condition: Condition) -> bool:
    if condition.op == "LIKE":
        return _like(actual, condition.value)
    if condition.op == "IN":
        return any(_matches_value(actual, Condition(condition.field, "=", v))
                   for v in condition.value)
    pair = _comparable(actual, condition.value)
    if pair is None:
        return condition.op == "!="
    left, right = pair
    try:
        return {"=": left == right, "!=": left != right, "<": left < right,
                ">": left > right, "<=": left <= right, ">=": left >= right}[condition.op]
    except TypeError:
        return False


def _sort_key(value: Any) -> tuple:
    if value is None:
        return (0, "")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (1, Decimal(str(value)), "")
    text = str(value)
    if text.isdigit():
        return (1, Decimal(text), "")
    return (2, Decimal(0), text.lower())


def run(query: Query, rows: list[dict], has_active: bool) -> list[dict] | int:
    """Filter, order and page ``rows``; an int for ``COUNT(*)``."""
    filters_active = any(c.field.lower() == "active" for c in query.conditions)
    selected = [row for row in rows
                if (filters_active or not has_active or row.get("Active", True))
                and all(matches(row, c) for c in query.conditions)]
    if query.count:
        return len(selected)
    for name, descending in reversed(query.order_by):
        selected.sort(key=lambda row, n=name: _sort_key(field_value(row, n)),
                      reverse=descending)
    start = query.start_position - 1
    return selected[start:start + query.max_results]
