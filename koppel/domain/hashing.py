"""Stable content hashes for change detection.

The same data always gives the same hash, across processes and Python versions: keys
are sorted, Decimals are written in a normalised plain form (``8.260`` and ``8.26`` hash
alike), datetimes as ISO-8601, sets sorted, and the JSON is compact UTF-8.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel


def _canonical(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return _canonical(value.model_dump())
    if isinstance(value, dict):
        return {str(key): _canonical(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(item) for item in value]
    if isinstance(value, (set, frozenset)):
        return sorted((_canonical(item) for item in value), key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float, Decimal)):
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        if number == number.to_integral_value():
            return {"$n": str(number.quantize(Decimal(1)))}
        return {"$n": format(number.normalize(), "f")}
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise TypeError(f"cannot hash a {type(value).__name__}")


def stable_json(value: Any) -> str:
    """Deterministic JSON text of ``value`` (the input of :func:`content_hash`)."""
    return json.dumps(_canonical(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(value: Any) -> str:
    """sha256 hex digest of :func:`stable_json`."""
    return hashlib.sha256(stable_json(value).encode("utf-8")).hexdigest()
