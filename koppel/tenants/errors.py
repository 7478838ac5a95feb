"""Tenant file problems, each naming the file, the JSON path and the reason.

    include/mappings/acme.json: $.settings.unknown_sku: must be one of fail, fallback_item, create_item (got 'skip')
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any, Iterable

from pydantic import ValidationError


@dataclass(frozen=True)
class TenantError:
    """One problem in one tenant file."""

    file: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.path}: {self.message}"


def json_path_parts(loc: Iterable[Any], data: Any, missing: bool = False) -> list[str | int]:
    """The JSON path (``$.flows.orders.schedule``, ``$.mappings.orders.lines.fields.sku``)
    of a pydantic error location.

    Pydantic locations also hold union and tag names that are not keys of the input; the
    path is built by walking the input data and keeping only the parts that exist in it
    (plus the last part of a ``missing`` error, which by definition does not)."""
    parts = list(loc)
    kept: list[str | int] = []
    current = data
    for index, part in enumerate(parts):
        is_last = index == len(parts) - 1
        if isinstance(current, dict) and isinstance(part, str) and part in current:
            current = current[part]
            kept.append(part)
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            current = current[part]
            kept.append(part)
        elif is_last and missing and isinstance(part, str):
            kept.append(part)
    return kept


def format_path(parts: Iterable[str | int]) -> str:
    """``["mappings", "orders", "customer.email"]`` → ``$.mappings.orders['customer.email']``."""
    return "$" + "".join(f"[{part}]" if isinstance(part, int) else _key(part) for part in parts)


def json_path(loc: Iterable[Any], data: Any, missing: bool = False) -> str:
    """:func:`json_path_parts` formatted as a JSON path string."""
    return format_path(json_path_parts(loc, data, missing))


def known_keys(schema: dict[str, Any] | None, parts: list[str | int]) -> list[str]:
    """The property names the JSON ``schema`` allows at the object ``parts`` points to."""
    if not schema:
        return []
    definitions = schema.get("$defs", {})

    def resolve(node: dict[str, Any]) -> list[dict[str, Any]]:
        if "$ref" in node:
            return resolve(definitions.get(node["$ref"].rsplit("/", 1)[-1], {}))
        branches = node.get("anyOf") or node.get("oneOf") or node.get("allOf")
        if branches:
            return [resolved for branch in branches for resolved in resolve(branch)]
        return [node]

    nodes = resolve(schema)
    for part in parts:
        following: list[dict[str, Any]] = []
        for node in nodes:
            if isinstance(part, int) and "items" in node:
                following.extend(resolve(node["items"]))
            elif isinstance(part, str) and part in node.get("properties", {}):
                following.extend(resolve(node["properties"][part]))
            elif isinstance(part, str) and isinstance(node.get("additionalProperties"), dict):
                following.extend(resolve(node["additionalProperties"]))
        nodes = following
    return sorted({key for node in nodes for key in node.get("properties", {})})


def _key(part: str) -> str:
    return f".{part}" if re.fullmatch(r"[A-Za-z_$][A-Za-z0-9_$]*", part) else f"[{part!r}]"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def describe(error: dict[str, Any]) -> str:
    """A short reason for one pydantic error dict."""
    kind = error["type"]
    given = error.get("input")
    scalar = isinstance(given, (str, int, float, bool)) or given is None
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown key (not allowed here)"
    if kind == "literal_error":
        expected = re.findall(r"'([^']*)'", error.get("ctx", {}).get("expected", ""))
        return f"must be one of {', '.join(expected)} (got {_shown(given)})"
    if kind in ("value_error", "assertion_error"):
        return error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    message = error["msg"]
    if message.startswith("Input should be"):
        message = "must be" + message[len("Input should be") :]
    if kind == "unknown_transform" or not scalar:
        return message
    return f"{message} (got {_shown(given)})"


def from_validation_error(file: str, exc: ValidationError, data: Any, schema: dict[str, Any] | None = None) -> list[TenantError]:
    """:class:`TenantError` s for every error of ``exc`` (duplicates dropped).

    With the JSON ``schema`` of the document, an unknown key also names the close
    matches among the keys allowed there ("did you mean ...")."""
    problems: list[TenantError] = []
    seen: set[tuple[str, str]] = set()
    for error in exc.errors(include_url=False):
        parts = json_path_parts(error["loc"], data, missing=error["type"] == "missing")
        path = format_path(parts)
        message = describe(error)
        if error["type"] == "extra_forbidden" and parts and isinstance(parts[-1], str):
            allowed = known_keys(schema, parts[:-1])
            close = difflib.get_close_matches(parts[-1], allowed, n=1, cutoff=0.6)
            if close:
                message = f"unknown key; did you mean {' or '.join(repr(key) for key in close)}?"
            elif allowed and len(allowed) <= 30:
                message = f"unknown key (allowed: {', '.join(key for key in allowed if not key.startswith('$'))})"
        if (path, message) not in seen:
            seen.add((path, message))
            problems.append(TenantError(file, path, message))
    return problems
