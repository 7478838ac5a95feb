"""The refunds flow's memory of credit reads (koppel.store.credit_checks) and
``credits_of_orders`` with it, against a Lightspeed sandbox (calls counted by the hook)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa

from koppel.flows.refunds_source import credits_of_orders
from koppel.store.credit_checks import CreditChecks
from koppel.store.state import StateStore

CREDITS = "GET orders/{order_id}/credit.json"


@pytest.fixture
def engine(tmp_path):
    eng = sa.create_engine(f"sqlite:///{tmp_path / 'state.db'}")
    yield eng
    eng.dispose()


def test_settled_only_at_the_same_updated_at_with_every_credit_booked(engine):
    tenant = f"t{uuid.uuid4().hex[:10]}"
    store = StateStore(engine)
    stamp = "2026-05-01T10:00:00+02:00"
    checks = CreditChecks(engine, tenant)
    assert not checks.settled(7, stamp)  # never read
    checks.remember(7, stamp, [81, 82])
    checks.remember(9, stamp, [])
    checks.remember(11, None, [90])  # no updatedAt: never remembered, always read
    assert CreditChecks(engine, f"{tenant}x").settled(9, stamp) is False  # tenants apart

    fresh = CreditChecks(engine, tenant)
    assert fresh.settled(9, "2026-05-01T08:00:00+00:00")  # no credits, same moment in UTC
    assert not fresh.settled(9, "2026-05-01T08:00:01+00:00")  # the order changed
    assert not fresh.settled(11, None)
    assert not fresh.settled(7, stamp)  # 81 and 82 not booked yet
    store.save_xref(tenant, "refund", "81", "RefundReceipt", "5")
    store.save_xref(tenant, "order", "82", "SalesReceipt", "6")  # another source type
    assert not CreditChecks(engine, tenant).settled(7, stamp)
    store.save_xref(tenant, "refund", "82", "RefundReceipt", "7")
    assert CreditChecks(engine, tenant).settled(7, stamp)

    # a new read (a new credit) replaces what was remembered
    later = "2026-05-02T10:00:00+00:00"
    fresh.remember(7, later, [81, 82, 83])
    assert not fresh.settled(7, later)
    store.save_xref(tenant, "refund", "83", "RefundReceipt", "8")
    assert CreditChecks(engine, tenant).settled(7, later)
    fresh.forget([7])
    assert not CreditChecks(engine, tenant).settled(7, later)


def test_credits_of_orders_reads_an_unchanged_booked_order_once(engine):
    from koppel.hooks.lightspeed import LightspeedHook
    from koppel.sandbox import lightspeed
    from koppel.sandbox.server import SandboxServer

    tenant = f"t{uuid.uuid4().hex[:10]}"
    store = StateStore(engine)
    with SandboxServer(lightspeed.create_app(seed=3, orders=20, products=12,
                                             customers=12)) as server:
        import httpx

        creds = httpx.get(f"{server.url}/_sandbox/credentials", timeout=30).json()
        # calls are counted per attempt: no throttling, so each call is one attempt
        httpx.put(f"{server.url}/_sandbox/ratelimit", timeout=30, json={
            "per_second": 10_000, "limit_5min": 100_000, "limit_hour": 100_000,
            "limit_day": 100_000}).raise_for_status()
        hook = LightspeedHook.from_settings(base_url=creds["base_url"], api_key=creds["api_key"],
                                            api_secret=creds["api_secret"],
                                            language=creds["language"])
        with hook:
            orders = [o.to_api() for o in hook.iter_orders()]
            before = hook.calls[CREDITS]
            first = credits_of_orders(hook, orders, CreditChecks(engine, tenant))
            assert hook.calls[CREDITS] - before == len(orders)  # one call per order
            credited = {order["id"] for order, _ in first}
            assert len(first) == 4 and len(credited) == 3  # the seeded cases

            # unchanged orders: those without credits are not read again; those whose
            # credits are not booked yet are (their credits must come again)
            before = hook.calls[CREDITS]
            again = credits_of_orders(hook, orders, CreditChecks(engine, tenant))
            assert hook.calls[CREDITS] - before == len(credited)
            assert [c["id"] for _, c in again] == [c["id"] for _, c in first]

            # the credits booked: only the orders that changed are read
            for _, credit in first:
                store.save_xref(tenant, "refund", credit["id"], "RefundReceipt", credit["id"])
            changed = dict(orders[0], updatedAt=(dt.datetime.now(dt.timezone.utc)
                                                 .replace(microsecond=0).isoformat()))
            before = hook.calls[CREDITS]
            third = credits_of_orders(hook, [changed, *orders[1:]], CreditChecks(engine, tenant))
            assert hook.calls[CREDITS] - before == 1
            assert third == [pair for pair in first if pair[0]["id"] == orders[0]["id"]]

            # without the memory (records runs, or a caller that does not pass it): as before
            before = hook.calls[CREDITS]
            assert len(credits_of_orders(hook, orders)) == 4
            assert hook.calls[CREDITS] - before == len(orders)
