"""The APIs' published limits live in one module (koppel.limits): the hooks pace to them,
the pools are sized from them and the sandboxes enforce them — the same numbers."""

from __future__ import annotations

from koppel.limits import LIGHTSPEED, QUICKBOOKS


def test_quickbooks_limits_are_read_from_one_place():
    from koppel.hooks.quickbooks import BATCH_SIZE, QBOLimits
    from koppel.pools import API_LIMITS
    from koppel.sandbox.quickbooks import app, limits

    paced = QBOLimits()
    assert (paced.per_minute, paced.per_second, paced.concurrent, paced.batches_per_minute) \
        == (500, 10, 10, 40) == (QUICKBOOKS.requests_per_minute, QUICKBOOKS.requests_per_second,
                                 QUICKBOOKS.concurrent_requests,
                                 QUICKBOOKS.batch_requests_per_minute)
    assert (limits.REQUESTS_PER_MINUTE, limits.CONCURRENT_REQUESTS, limits.BATCHES_PER_MINUTE) \
        == (500, 10, 40)
    assert BATCH_SIZE == app.MAX_BATCH_ITEMS == QUICKBOOKS.batch_items == 30
    assert (API_LIMITS["quickbooks"].per_second, API_LIMITS["quickbooks"].concurrent) == (10, 10)
    scaled = QBOLimits.scaled(10)
    assert (scaled.window, scaled.throttle_wait) == (6.0, 6.0)


def test_lightspeed_limits_are_read_from_one_place():
    from koppel.hooks import paging
    from koppel.pools import API_LIMITS
    from koppel.sandbox.lightspeed import ratelimit, store
    from koppel.sandbox.lightspeed.routers import common

    assert LIGHTSPEED.windows == ((300, 300.0), (3_000, 3_600.0), (12_000, 86_400.0))
    assert ratelimit.DEFAULT_LIMITS == (300, 3000, 12000)
    assert ratelimit.WINDOW_SECONDS == (300.0, 3600.0, 86400.0)
    assert ratelimit.DEFAULT_PER_SECOND == API_LIMITS["lightspeed"].per_second == 20
    assert paging.MAX_LIMIT == common.MAX_LIMIT == 250
    assert store.MAX_WEBHOOKS == LIGHTSPEED.webhooks_per_shop == 10
