"""Dot paths into enriched source records.

A path names a value inside a source record: ``email``, ``addressBillingCountry.code``,
``_rows.0.sku`` (a list index) or ``_product.images.*.src`` (``*`` maps over a list and
yields a list). A path starting with ``$.`` is read from the root record instead of the
current one: inside an ``each`` rule (order rows) ``$._shop.currency.shortcode`` reaches
the order's shop while ``sku`` reads the row.

Paths are checked when a tenant file is loaded (:func:`check_path`) and never evaluated
as code.
"""

from __future__ import annotations

import re
from typing import Any

_SEGMENT = r"(?:[A-Za-z0-9_\-]+|\*)"
PATH_PATTERN = rf"^(?:\$\.)?{_SEGMENT}(?:\.{_SEGMENT})*$"
_PATH_RE = re.compile(PATH_PATTERN)
MAX_PATH_LENGTH = 200

#: Returned by :func:`get_path` when a segment does not exist.
MISSING = None


def check_path(path: str) -> str:
    """Return ``path`` when it is well formed, else raise ``ValueError``."""
    if not isinstance(path, str) or not path:
        raise ValueError("a path must be a non-empty string")
    if len(path) > MAX_PATH_LENGTH:
        raise ValueError(f"path is longer than {MAX_PATH_LENGTH} characters")
    if not _PATH_RE.match(path):
        raise ValueError(
            f"invalid path {path!r}: use dot-separated keys, list indexes or '*' "
            "(e.g. 'addressBillingCountry.code', '_rows.0.sku', 'images.*.src'), "
            "optionally starting with '$.' for the root record"
        )
    return path


def get_path(record: Any, path: str, root: Any = None) -> Any:
    """Read ``path`` from ``record``; a missing key or index gives ``None``.

    ``root`` is the record ``$.`` paths start from (defaults to ``record``).
    """
    if path.startswith("$."):
        record = record if root is None else root
        path = path[2:]
    return _walk(record, path.split("."))


def _walk(current: Any, segments: list[str]) -> Any:
    for position, segment in enumerate(segments):
        if current is None:
            return MISSING
        if segment == "*":
            if not isinstance(current, (list, tuple)):
                return MISSING
            rest = segments[position + 1 :]
            return [_walk(item, rest) for item in current]
        if isinstance(current, dict):
            current = current.get(segment)
        elif isinstance(current, (list, tuple)) and segment.lstrip("-").isdigit():
            index = int(segment)
            current = current[index] if -len(current) <= index < len(current) else MISSING
        else:
            return MISSING
    return current


def is_empty(value: Any) -> bool:
    """Lightspeed's notion of "no value": ``None``, ``False``, ``""`` (or blanks), ``[]``, ``{}``."""
    if value is None or value is False:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (list, tuple, dict)):
        return len(value) == 0
    return False
