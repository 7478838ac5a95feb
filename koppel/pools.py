"""Airflow pools per tenant and API, sized from the APIs' published limits, and the
request rate each task of a pool may use so that a full pool stays under the limit.

The pools cap how many of a tenant's tasks talk to one API at once; the hooks pace each
task to its share of the per-second (and per-minute) limits. Together they hold however
fast the API answers: the pool-size maths alone assumes a round trip, the shares do not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from koppel.limits import LIGHTSPEED, QUICKBOOKS


@dataclass(frozen=True)
class ApiLimits:
    """One API's limits for one tenant, and the typical duration of one request.

    koppel's hooks are synchronous: a task has at most one request in flight and makes
    about ``1 / round_trip`` requests per second (the hook also paces every task to its
    share of the per-second limit, :func:`task_share`). ``slots`` tasks together make about ``slots / round_trip`` requests
    per second and hold at most ``slots`` requests in flight."""

    label: str
    per_second: int  # requests per second allowed per tenant (shop or realm)
    concurrent: int | None  # requests in flight allowed per tenant, when capped
    round_trip: float  # seconds one request typically takes
    basis: str  # the limits in words, for the pool description


#: Lightspeed eCom: 20 requests/second per shop; the 300/5 min, 3,000/hour and 12,000/day
#: windows per API key are budgets every task sees in the shop's X-RateLimit-* headers and
#: the hook paces against, so they do not depend on the number of tasks.
#: QuickBooks Online: 10 requests/second and 10 concurrent requests per realm and app
#: (500/minute and 40 batch requests/minute, paced by the hook).
#: (The published numbers are in :mod:`koppel.limits`; the round trips are koppel's.)
API_LIMITS: dict[str, ApiLimits] = {
    "lightspeed": ApiLimits(
        "Lightspeed eCom", per_second=LIGHTSPEED.requests_per_second, concurrent=None,
        round_trip=0.15,
        basis=f"{LIGHTSPEED.requests_per_second} requests/s per shop, ~0.15 s a request"),
    "quickbooks": ApiLimits(
        "QuickBooks Online", per_second=QUICKBOOKS.requests_per_second,
        concurrent=QUICKBOOKS.concurrent_requests, round_trip=0.4,
        basis=f"{QUICKBOOKS.requests_per_second} requests/s and "
              f"{QUICKBOOKS.concurrent_requests} in flight per realm, ~0.4 s a request"),
}


def pool_slots(limits: ApiLimits) -> int:
    """Tasks one tenant may run against one API at the same time.

    ``slots = min(floor(per_second × round_trip), concurrent)``, at least 1: as many
    sequential tasks as fill the per-second limit, never more than the requests the API
    lets be in flight. Lightspeed: ``floor(20 × 0.15) = 3``. QuickBooks:
    ``min(floor(10 × 0.4), 10) = 4`` — 4 of the realm's 10 concurrent requests, the rest
    left to retries, token refreshes and other apps on the same company."""
    slots = math.floor(limits.per_second * limits.round_trip + 1e-9)
    if limits.concurrent is not None:
        slots = min(slots, limits.concurrent)
    return max(1, slots)


def task_share(api: str, limit: int) -> int:
    """One task's share of a per-tenant ``limit`` of ``api`` (requests per second, per
    minute, …) when a full pool runs at once: ``limit // slots``, at least 1."""
    return max(1, limit // pool_slots(API_LIMITS[api]))
