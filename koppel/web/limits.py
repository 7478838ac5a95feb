"""The published rate limits the dashboard measures koppel's API calls against.

Lightspeed eCom counts per shop (one per tenant) in three windows (``X-RateLimit-Limit:
300/3000/12000`` for 5 minutes, an hour and a day); QuickBooks Online allows 500 requests
a minute per realm (one realm per tenant)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    api: str
    label: str
    seconds: int
    calls: int


API_LIMITS: tuple[Limit, ...] = (
    Limit("lightspeed", "5 min", 300, 300),
    Limit("lightspeed", "hour", 3600, 3000),
    Limit("lightspeed", "day", 86400, 12000),
    Limit("quickbooks", "minute", 60, 500),
)

API_NAMES = {"lightspeed": "Lightspeed eCom", "quickbooks": "QuickBooks Online"}

# Which API a step talks to, when an activity row does not split its calls per API
# (``details["api_calls"] = {"lightspeed": n, "quickbooks": m}``). Enrich reads the
# source; the exists check, customer upsert and load work against the target.
SOURCE_STEPS = frozenset({"extract", "enrich"})


def step_api(task_id: str | None, direction: str) -> str:
    """The API an activity row's calls are attributed to when they are not split."""
    source, target = ("quickbooks", "lightspeed") if direction == "quickbooks_to_lightspeed" \
        else ("lightspeed", "quickbooks")
    step = (task_id or "").rsplit(".", 1)[-1]
    return source if step in SOURCE_STEPS else target
