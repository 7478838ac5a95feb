"""Paging and incremental windows as small named objects (in the style of dlt's
paginators): an extractor says *how* it pages, the hook runs the loop once.

- :class:`PageNumberPaginator` — ``page=1,2,…`` and ``limit`` (≤ 250 on Lightspeed).
- :class:`SinceIdPaginator` — ``since_id`` = the highest id seen (ascending ids); stable
  while records are added or updated during the scan, and not subject to the deep-paging
  cap of live shops.
- :class:`UpdatedWindow` — an ``updated_at`` window ``[start, end)``; the server query is
  widened by ``overlap`` on both sides (the shop may read the filter as shop-local time and
  its edge inclusivity is unverified), then records are kept only when their own
  ``updatedAt`` lies in ``[start, end)``, so consecutive windows neither lose nor repeat
  a record version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

from koppel.limits import LIGHTSPEED

MAX_LIMIT = LIGHTSPEED.page_limit
FILTER_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


class Paginator(Protocol):
    """Gives the query parameters of each page; ``None`` when there is no next page."""

    def first(self) -> dict[str, Any]: ...

    def next(self, records: list[dict[str, Any]]) -> dict[str, Any] | None: ...


@dataclass
class PageNumberPaginator:
    limit: int = MAX_LIMIT
    start_page: int = 1
    max_pages: int | None = None
    page: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_LIMIT}")

    def first(self) -> dict[str, Any]:
        self.page = self.start_page
        return {"page": self.page, "limit": self.limit}

    def next(self, records: list[dict[str, Any]]) -> dict[str, Any] | None:
        if len(records) < self.limit:
            return None
        if self.max_pages is not None and self.page - self.start_page + 1 >= self.max_pages:
            return None
        self.page += 1
        return {"page": self.page, "limit": self.limit}


@dataclass
class SinceIdPaginator:
    limit: int = MAX_LIMIT
    since_id: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_LIMIT}")

    def first(self) -> dict[str, Any]:
        return {"since_id": self.since_id, "limit": self.limit}

    def next(self, records: list[dict[str, Any]]) -> dict[str, Any] | None:
        if not records:
            return None
        highest = max(int(r["id"]) for r in records)
        if len(records) < self.limit or highest <= self.since_id:
            return None
        self.since_id = highest
        return {"since_id": self.since_id, "limit": self.limit}


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def parse_timestamp(value: Any) -> datetime | None:
    """Lightspeed's ``"2019-08-21T17:15:00+00:00"`` (or the filter format) as aware UTC."""
    if isinstance(value, datetime):
        return _utc(value)
    if not isinstance(value, str) or not value:
        return None
    try:
        return _utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None


@dataclass(frozen=True)
class UpdatedWindow:
    """Records whose ``updatedAt`` lies in ``[start, end)`` (UTC)."""

    start: datetime
    end: datetime
    overlap: timedelta = timedelta(hours=3)
    field: str = "updatedAt"
    filter_prefix: str = "updated_at"

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", _utc(self.start))
        object.__setattr__(self, "end", _utc(self.end))
        if self.end <= self.start:
            raise ValueError("window end must be after its start")

    def params(self) -> dict[str, str]:
        """The widened server-side filter."""
        return {
            f"{self.filter_prefix}_min": (self.start - self.overlap).strftime(FILTER_TIME_FORMAT),
            f"{self.filter_prefix}_max": (self.end + self.overlap).strftime(FILTER_TIME_FORMAT),
        }

    def contains(self, record: dict[str, Any]) -> bool:
        stamp = parse_timestamp(record.get(self.field))
        return stamp is not None and self.start <= stamp < self.end

    def split(self, step: timedelta) -> list["UpdatedWindow"]:
        """Consecutive sub-windows of at most ``step`` (for long backfills)."""
        out, cursor = [], self.start
        while cursor < self.end:
            upper = min(self.end, cursor + step)
            out.append(UpdatedWindow(cursor, upper, self.overlap, self.field, self.filter_prefix))
            cursor = upper
        return out
