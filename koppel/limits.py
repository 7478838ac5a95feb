"""The APIs' published limits: the one place koppel (hooks, pools, bench) and the
sandboxes that emulate the services read them from.

Sources (docs/vendor-facts.md, topic 6; ../shared/reference):

QuickBooks Online — https://developer.intuit.com/app/developer/qbo/docs/learn/limits-and-throttles:
500 requests/minute per realm; 10 requests/second per realm and app; batch requests of at
most 30 operations, 40 batch requests/minute per realm and app; "wait 60 seconds" after a
429. At most 10 concurrent requests per realm and app
(https://developer.intuit.com/hub/blog/2016/08/08/idg-concurrent-api-use-changes-coming-soon).
Change data capture reaches back at most 30 days
(https://developer.intuit.com/app/developer/qbo/docs/learn/explore-the-quickbooks-online-api/change-data-capture).

Lightspeed eCom — per API key 300 requests / 5 minutes, 3,000 / hour, 12,000 / day, 20
requests / second per shop, reported in ``X-RateLimit-Limit: 300/3000/12000`` (the
reference notes; the windows' field names: Falkplan/lightspeedecom-api
``AccountRatelimit``); list pages of at most 250 (Falkplan/lightspeedecom-api
``MAX_LIMIT``); at most 10 webhooks per shop (reference notes; assumed, see
docs/sandbox-fidelity.md).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class QuickBooksLimits:
    requests_per_minute: int = 500
    requests_per_second: int = 10
    concurrent_requests: int = 10
    batch_requests_per_minute: int = 40
    batch_items: int = 30
    window_seconds: float = 60.0
    throttle_wait_seconds: float = 60.0
    cdc_max_days: int = 30


@dataclass(frozen=True)
class LightspeedLimits:
    #: (requests, seconds) per API key: 5 minutes, hour, day
    windows: tuple[tuple[int, float], ...] = ((300, 300.0), (3_000, 3_600.0), (12_000, 86_400.0))
    requests_per_second: int = 20
    page_limit: int = 250
    webhooks_per_shop: int = 10


QUICKBOOKS = QuickBooksLimits()
LIGHTSPEED = LightspeedLimits()
