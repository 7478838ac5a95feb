"""Fault matrix per flow (products, customers, stock, refunds), as ``test_fault_matrix``
is for orders: a clean run of the flow is the reference; with a fault injected a fresh tenant on
the same shop runs the flow (it may fail or leave records failed), the faults are
cleared, and at most two ``full_resync`` re-runs converge to exactly the clean run's
QuickBooks state for that flow — nothing duplicated, nothing missing:

- products: items by SKU (name, type, prices, category), categories, attachments;
- customers: customers by e-mail address (display name), every display name once;
- stock: ``QtyOnHand`` per item SKU (the items come from a clean products run of the
  same tenant: stock only adjusts items that exist);
- refunds: refund receipts by DocNumber (total to the cent, customer, lines), on the
  module's 15-order shop (its seeded credits) after a clean orders run of the same tenant.

Every fault for every flow (5xx, 429 storms, latency spikes, dropped connections,
token expiry and refresh-token rotation); stale SyncTokens and killed loads are in
``test_fault_matrix_more``.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

import pytest

from reliability_helpers import assert_no_duplicates, killed_after_qbo_write
from test_fault_matrix import FAULTS, short_throttle_pause  # noqa: F401  (autouse fixture)

pytestmark = [pytest.mark.e2e, pytest.mark.faults]

#: every fault for every flow (the orders flow is ``test_fault_matrix``)
CASES = [(flow, fault) for flow in ("products", "customers", "stock", "refunds")
         for fault in sorted(FAULTS)]


def _money(value: Any) -> str | None:
    return None if value is None else str(Decimal(str(value)).quantize(Decimal("0.01")))


def products_state(tenant) -> dict[str, Any]:
    """Items by SKU (a list, so a doubled SKU shows), categories and attachments."""
    entities = tenant.entities("Item")
    by_id = {i["Id"]: i for i in entities}
    items: dict[str, list[tuple]] = {}
    for item in entities:
        if item.get("Type") == "Category":
            continue
        parent = by_id.get(str((item.get("ParentRef") or {}).get("value")), {})
        items.setdefault(item.get("Sku") or f"name:{item['Name']}", []).append((
            item["Name"], item.get("Type"), _money(item.get("UnitPrice")),
            _money(item.get("PurchaseCost")), parent.get("FullyQualifiedName")))
    for rows in items.values():
        rows.sort()
    categories = Counter(i["FullyQualifiedName"] for i in entities if i.get("Type") == "Category")
    attachments = Counter()
    for attachable in tenant.entities("Attachable"):
        for ref in attachable.get("AttachableRef", []):
            item = by_id.get(str(ref["EntityRef"]["value"]), {})
            attachments[(item.get("Sku") or item.get("Name"), attachable.get("FileName"))] += 1
    return {"items": items, "categories": categories, "attachments": attachments}


def customers_state(tenant) -> dict[str, Any]:
    """Customers by e-mail address (a list, so a doubled address shows) and every
    display name with its count."""
    by_email: dict[str, list[str]] = {}
    names: Counter = Counter()
    for customer in tenant.entities("Customer"):
        names[customer["DisplayName"]] += 1
        email = ((customer.get("PrimaryEmailAddr") or {}).get("Address") or "").casefold()
        by_email.setdefault(email or f"no e-mail: {customer['DisplayName']}", []).append(
            customer["DisplayName"])
    for rows in by_email.values():
        rows.sort()
    return {"by_email": by_email, "names": names}


def stock_state(tenant) -> dict[str, Any]:
    """``QtyOnHand`` of every quantity-tracking item, by SKU."""
    quantities: dict[str, list[str]] = {}
    for item in tenant.entities("Item"):
        if item.get("Type") != "Category" and item.get("TrackQtyOnHand"):
            quantities.setdefault(item.get("Sku") or item["Name"], []).append(
                str(Decimal(str(item.get("QtyOnHand") or 0)).normalize()))
    return {"quantities": quantities}


def refunds_state(tenant) -> dict[str, Any]:
    """Refund receipts by DocNumber (a list, so a doubled refund shows)."""
    return {"refunds": tenant.books("RefundReceipt")["documents"]}


STATE = {"products": products_state, "customers": customers_state, "stock": stock_state,
         "refunds": refunds_state}
#: what a flow needs booked in the same tenant before it runs
PREPARE = {"stock": "products", "refunds": "orders"}


def assert_no_doubles(flow: str, state: dict[str, Any]) -> None:
    keyed = state[{"products": "items", "customers": "by_email", "stock": "quantities",
                   "refunds": "refunds"}[flow]]
    doubled = {k: v for k, v in keyed.items() if len(v) > 1}
    assert not doubled, f"{flow}: doubled in QuickBooks: {doubled}"
    if flow == "customers":
        assert max(state["names"].values(), default=1) == 1, state["names"].most_common(3)
    if flow == "products":
        assert max(state["categories"].values(), default=1) == 1, state["categories"]
        assert max(state["attachments"].values(), default=1) == 1, state["attachments"]


def _prepare(tenant, flow: str) -> None:
    """What the flow needs in QuickBooks before it runs: stock adjusts existing items,
    refunds book against booked orders."""
    if flow in PREPARE:
        assert tenant.run(PREPARE[flow]).state == "success"


@pytest.fixture(scope="module")
def flow_shop(shop_factory):
    # orders reserve stock (available minus reserved), so a few of them
    return shop_factory(orders=4, products=6, customers=8, seed=5)


@pytest.fixture(scope="module")
def clean_flows(request, airflow_db, qbo, flow_shop, shop, tmp_path_factory):
    """The shop synced once without faults, flow by flow: each flow's QuickBooks state
    and the records it left failed (none expected, but a faulted run may not leave more)."""
    # the reliability conftest's helper (conftest modules share one import name)
    new_tenant = next(p.new_tenant for p in request.config.pluginmanager.get_plugins()
                      if "reliability" in str(getattr(p, "__file__", ""))
                      and hasattr(p, "new_tenant"))
    out: dict[str, dict[str, Any]] = {}
    with pytest.MonkeyPatch.context() as monkeypatch:
        for flow in STATE:
            tenant = new_tenant(qbo, shop if flow == "refunds" else flow_shop, tmp_path_factory.mktemp(f"clean-{flow}") /
                                "mappings", monkeypatch)
            _prepare(tenant, flow)
            assert tenant.run(flow).state == "success"
            out[flow] = {"state": STATE[flow](tenant), "failed": tenant.failed(flow),
                         "latest": {i: r["action"] for i, r in tenant.latest(flow).items()}}
    return out


@pytest.fixture
def flow_shop_of(flow, flow_shop, request):
    """The shop the parametrized flow runs on."""
    return request.getfixturevalue("shop") if flow == "refunds" else flow_shop


@pytest.fixture
def restore_faults(flow_shop_of, qbo):
    tokens = qbo.control.put("/tokens", json={}).json()
    yield
    flow_shop_of.clear_faults()
    qbo.clear_faults()
    qbo.control.put("/tokens", json=tokens).raise_for_status()


def test_clean_runs_write_something(clean_flows):
    """The reference is worth comparing to: every flow wrote records and failed none."""
    products = clean_flows["products"]["state"]
    assert [s for s in products["items"] if not s.startswith("name:")], "no item by SKU"
    assert products["categories"] and products["attachments"]
    assert any("@" in e for e in clean_flows["customers"]["state"]["by_email"])
    assert "updated" in clean_flows["stock"]["latest"].values(), "stock adjusted nothing"
    assert clean_flows["refunds"]["state"]["refunds"], "no refund booked"
    for flow, clean in clean_flows.items():
        assert not clean["failed"], (flow, clean["failed"])
        assert_no_doubles(flow, clean["state"])


@pytest.mark.parametrize(("flow", "fault"), CASES, ids=[f"{f}-{x}" for f, x in CASES])
def test_faulted_flow_converges_to_the_clean_state(flow, fault, flow_shop_of, qbo, make_tenant,
                                                   clean_flows, restore_faults):
    clean = clean_flows[flow]
    tenant = make_tenant(flow_shop_of)
    _prepare(tenant, flow)
    FAULTS[fault](flow_shop_of, qbo)
    tenant.run(flow)  # may fail or leave records failed: that is the point
    flow_shop_of.clear_faults()
    qbo.clear_faults()
    assert_no_doubles(flow, STATE[flow](tenant))
    assert_converges(tenant, flow, clean)
    assert_no_duplicates(tenant.books())


def assert_converges(tenant, flow: str, clean: dict[str, Any]) -> None:
    """At most two ``full_resync`` re-runs bring ``flow`` to exactly the clean run's
    QuickBooks state and records: nothing twice, nothing missing, no failure left over."""
    for _ in range(2):
        tenant.run(flow, full_resync=True)
        if not tenant.failed(flow):
            break
    state = STATE[flow](tenant)
    assert_no_doubles(flow, state)
    assert state == clean["state"]
    assert tenant.failed(flow) == clean["failed"]
    assert set(tenant.latest(flow)) == set(clean["latest"]), f"a {flow} record went missing"


KILLS = {"stock": lambda: killed_after_qbo_write("InventoryAdjustment"),
         "refunds": lambda: killed_after_qbo_write("RefundReceipt", batch_size=1)}


@pytest.mark.parametrize("flow", sorted(KILLS))
def test_killed_load_converges_without_writing_twice(flow, flow_shop_of, qbo, make_tenant,
                                                      clean_flows):
    """The load's process dies right after QuickBooks wrote (stock: the chunk's inventory
    adjustment; refunds: the first refund of the chunk) and before koppel recorded it:
    re-runs adopt what is there — no quantity adjusted twice, no refund booked twice."""
    clean = clean_flows[flow]
    tenant = make_tenant(flow_shop_of)
    _prepare(tenant, flow)
    with KILLS[flow]() as written:
        run = tenant.run(flow)
    assert run.state == "failed" and written, "the load never reached the crash point"
    assert_no_doubles(flow, STATE[flow](tenant))
    assert_converges(tenant, flow, clean)
    assert_no_duplicates(tenant.books())
