"""The demo keeps both sandboxes' state between runs: a snapshot restores every record
into a fresh app, and the restored app serves them."""

from __future__ import annotations

import httpx

from koppel.sandbox import lightspeed, quickbooks
from koppel.sandbox.persistence import restore_state, snapshot_state
from koppel.sandbox.server import SandboxServer


def _orders(url: str) -> list[tuple]:
    """The shop's orders, without the links (they name the server's own port)."""
    creds = httpx.get(f"{url}/_sandbox/credentials").json()
    with httpx.Client(base_url=f"{creds['base_url'].rstrip('/')}/{creds['language']}/",
                      auth=(creds["api_key"], creds["api_secret"])) as api:
        orders = api.get("orders.json", params={"limit": 250}).json()["orders"]
    return [(o["id"], o["number"], o["status"], o["priceIncl"], o["updatedAt"]) for o in orders]


def test_lightspeed_state_survives_a_restart():
    first = lightspeed.create_app(seed=7, orders=5, products=4, customers=3)
    with SandboxServer(first) as server:
        before = _orders(server.url)
        httpx.patch(f"{server.url}/_sandbox/orders/{before[0][0]}",
                    json={"status": "cancelled"}).raise_for_status()
        changed = _orders(server.url)
    data = snapshot_state(first)
    second = lightspeed.create_app(seed=8, orders=2, products=1, customers=1)
    restore_state(second, data)
    with SandboxServer(second) as server:
        assert _orders(server.url) == changed != before


def test_quickbooks_state_survives_a_restart():
    first = quickbooks.create_app(seed=1)
    with SandboxServer(first) as server:
        realm = httpx.post(f"{server.url}/_sandbox/realms", json={"region": "NL"}).json()
        items = httpx.get(f"{server.url}/_sandbox/realms/{realm['realm_id']}/entities/Item").json()
    second = quickbooks.create_app(seed=1)
    restore_state(second, snapshot_state(first))
    with SandboxServer(second) as server:
        again = httpx.get(f"{server.url}/_sandbox/realms/{realm['realm_id']}/entities/Item")
        assert again.status_code == 200 and again.json() == items
