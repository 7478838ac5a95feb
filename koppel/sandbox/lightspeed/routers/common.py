"""What every resource router shares: the app state, list queries, envelopes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterable

from fastapi import Query, Request

from koppel.limits import LIGHTSPEED

from ..errors import ApiError
from ..serialize import RenderContext, pick_fields, render

MAX_LIMIT = LIGHTSPEED.page_limit
DEFAULT_LIMIT = 50
TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d")


def state(request: Request):
    """The sandbox's :class:`~koppel.sandbox.lightspeed.app.LightspeedState`."""
    return request.app.state.lightspeed


def context(request: Request) -> RenderContext:
    st = state(request)
    base = st.base_url or str(request.base_url).rstrip("/")
    return RenderContext(base, request.path_params.get("lang", "nl"))


def parse_filter_time(name: str, value: str) -> datetime:
    """``YYYY-MM-DD HH:MM:SS`` (UTC) as Lightspeed documents it; ISO 8601 also read."""
    for fmt in TIME_FORMATS:
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=timezone.utc)
        except ValueError:
            pass
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, f"Invalid date for parameter '{name}', use YYYY-MM-DD HH:MM:SS."
                       ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@dataclass
class ListQuery:
    """``page``/``limit`` (limit clamped to 250), ``since_id`` and the time windows."""

    page: int
    limit: int
    since_id: int | None
    created_min: datetime | None
    created_max: datetime | None
    updated_min: datetime | None
    updated_max: datetime | None
    fields: str | None

    def matches(self, record: dict[str, Any]) -> bool:
        if self.since_id is not None and record["id"] <= self.since_id:
            return False
        for key, low, high in (("createdAt", self.created_min, self.created_max),
                               ("updatedAt", self.updated_min, self.updated_max)):
            if (low or high) and key in record:
                moment = record[key]
                if (low and moment < low) or (high and moment > high):
                    return False
        return True

    def select(self, records: Iterable[dict[str, Any]],
               predicate: Callable[[dict[str, Any]], bool] | None = None
               ) -> list[dict[str, Any]]:
        return [r for r in records if self.matches(r) and (predicate is None or predicate(r))]

    def page_of(self, records: list[Any]) -> list[Any]:
        start = (self.page - 1) * self.limit
        return records[start:start + self.limit]


def list_query(
    page: int = Query(1),
    limit: int = Query(DEFAULT_LIMIT),
    since_id: int | None = Query(None),
    created_at_min: str | None = Query(None),
    created_at_max: str | None = Query(None),
    updated_at_min: str | None = Query(None),
    updated_at_max: str | None = Query(None),
    fields: str | None = Query(None),
) -> ListQuery:
    """Lightspeed clamps ``limit`` to 1..250 rather than failing (sandbox choice)."""
    times = {name: parse_filter_time(name, value) if value else None
             for name, value in (("created_at_min", created_at_min),
                                 ("created_at_max", created_at_max),
                                 ("updated_at_min", updated_at_min),
                                 ("updated_at_max", updated_at_max))}
    return ListQuery(max(1, page), min(MAX_LIMIT, max(1, limit)), since_id,
                     times["created_at_min"], times["created_at_max"],
                     times["updated_at_min"], times["updated_at_max"], fields)


def one(key: str, record: dict[str, Any], request: Request,
        fields: str | None = None) -> dict[str, Any]:
    return {key: pick_fields(render(record, context(request)), fields)}


def many(key: str, records: Iterable[dict[str, Any]], request: Request,
         fields: str | None = None) -> dict[str, Any]:
    ctx = context(request)
    return {key: [pick_fields(render(r, ctx), fields) for r in records]}


def unwrap(body: Any, key: str) -> dict[str, Any]:
    """Writes send ``{"variant": {...}}``; a bare object is read too."""
    if not isinstance(body, dict):
        raise ApiError(400, "Request body must be a JSON object.")
    inner = body.get(key, body)
    if not isinstance(inner, dict):
        raise ApiError(400, f"'{key}' must be an object.")
    return inner
