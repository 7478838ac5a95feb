"""How long a measured number of API calls takes under the real services' published limits.

Lightspeed eCom: 300 calls per 5 minutes, 3,000 per hour, 12,000 per day (per shop).
QuickBooks Online: 500 requests per minute and 40 batch requests per minute (per realm).

For a sliding window of ``limit`` calls per ``window`` seconds, ``n`` calls need at least
``(ceil(n / limit) - 1) * window`` seconds (a full burst at the start of each window);
with several windows the slowest one binds. That is a lower bound: latency comes on
top, and the two sides are assumed to overlap (a run waits for the slower side)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from koppel.limits import LIGHTSPEED, QUICKBOOKS  # noqa: E402  (the one list of API limits)

LIGHTSPEED_WINDOWS = LIGHTSPEED.windows
QBO_REQUESTS = (QUICKBOOKS.requests_per_minute, QUICKBOOKS.window_seconds)
QBO_BATCHES = (QUICKBOOKS.batch_requests_per_minute, QUICKBOOKS.window_seconds)


@dataclass(frozen=True)
class Projection:
    lightspeed_seconds: float
    quickbooks_seconds: float

    @property
    def seconds(self) -> float:
        return max(self.lightspeed_seconds, self.quickbooks_seconds)

    @property
    def bound_by(self) -> str:
        return "lightspeed" if self.lightspeed_seconds >= self.quickbooks_seconds else "quickbooks"

    def to_json(self) -> dict:
        return {"lightspeed_seconds": round(self.lightspeed_seconds, 1),
                "quickbooks_seconds": round(self.quickbooks_seconds, 1),
                "seconds": round(self.seconds, 1), "bound_by": self.bound_by,
                "human": human_duration(self.seconds)}


def window_seconds(calls: int, limit: int, window: float) -> float:
    if calls <= 0:
        return 0.0
    return (math.ceil(calls / limit) - 1) * window


def lightspeed_seconds(calls: int) -> float:
    return max(window_seconds(calls, limit, window) for limit, window in LIGHTSPEED_WINDOWS)


def quickbooks_seconds(calls: int, batch_calls: int) -> float:
    return max(window_seconds(calls, *QBO_REQUESTS), window_seconds(batch_calls, *QBO_BATCHES))


def project(lightspeed_calls: int, quickbooks_calls: int, quickbooks_batches: int) -> Projection:
    return Projection(lightspeed_seconds(lightspeed_calls),
                      quickbooks_seconds(quickbooks_calls, quickbooks_batches))


def batch_calls(by_route: dict[str, int]) -> int:
    """QuickBooks batch requests among a run's calls (``POST /v3/company/{realm}/batch``)."""
    return sum(n for route, n in by_route.items() if route.rstrip("/").endswith("/batch"))


def human_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3_600:
        return f"{seconds / 60:.1f} min"
    if seconds < 86_400:
        return f"{seconds / 3_600:.1f} h"
    return f"{seconds / 86_400:.1f} days"
