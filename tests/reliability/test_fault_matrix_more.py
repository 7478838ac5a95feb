"""The fault matrix's remaining cells (``test_fault_matrix`` covers orders,
``test_fault_matrix_flows`` products, customers, stock and refunds under sandbox faults):

- **orders_reverse** (QuickBooks documents → Lightspeed orders through checkouts): a clean
  run on a shop of its own is the reference — one Lightspeed order per QuickBooks
  document (rows, shop total to the cent, payment status, the document as metafield),
  koppel's logged amount equal to the document's total, each customer once. With each
  fault a fresh tenant on a fresh, identical shop runs the flow — with the hooks' retries
  cut to one attempt, so the faults make the run fail part-way instead of being absorbed
  (the shop's faults start with the load, where they hit between an order's writes) —
  the faults are cleared, and at most two ``full_resync`` re-runs converge to exactly
  the reference: no order twice, none missing. The load is also killed mid-way (after
  Lightspeed placed an order koppel never recorded; between a checkout and its order),
  and the answer to one Lightspeed write is lost after Lightspeed processed it (the
  sandbox's ``drop_after``/``5xx_after`` faults on placing the order: placed, answer
  lost). The documents are at the shop's prices, so every clean order carries its
  document's money to the cent (rows, VAT per rate, total).
- **stale SyncToken** for the products flow (an item update) and the customers flow (a
  customer update): another QuickBooks user edits the object between koppel's read and
  its write. Neither edit is lost, and none silently.
- **a killed load task** for products and customers: the process dies after QuickBooks
  wrote part of a chunk's batch; re-runs converge with no item or customer twice.
"""

from __future__ import annotations

import re
from collections import Counter
from contextlib import contextmanager, nullcontext
from decimal import Decimal
from typing import Any, Callable, Iterator

import httpx
import pytest

from reliability_helpers import (
    WorkerKilled,
    answer_lost,
    assert_no_duplicates,
    capped_retries,
    concurrent_edit,
    dead_process,
    enable_flow,
    killed_after_qbo_write,
)
from test_fault_matrix import FAULTS, short_throttle_pause  # noqa: F401  (autouse fixture)
from test_fault_matrix_flows import (
    assert_converges,
    assert_no_doubles,
    customers_state,
    products_state,
)

pytestmark = [pytest.mark.e2e, pytest.mark.faults]

CENT = Decimal("0.01")
QBO_API = r"^/v3/company/"
LS_API = r"^/nl/"


# ======================================================================================
# orders_reverse
# ======================================================================================

#: the QuickBooks documents every reverse tenant starts from: (entity, DocNumber,
#: customer, [(item index, qty)], paid amount of an invoice)
DOCUMENTS = [
    ("SalesReceipt", "RV-101", "company", [(0, 2), (1, 1)], None),
    ("SalesReceipt", "RV-102", "person", [(2, 1)], None),
    ("Invoice", "RV-103", "person", [(1, 3)], None),
    ("Invoice", "RV-104", "company", [(0, 1), (2, 2)], "10.00"),
    ("Invoice", "RV-105", "person", [(0, 1)], "all"),
    ("SalesReceipt", "RV-106", "company", [(2, 1)], None),
]
CUSTOMERS = {
    "company": {"DisplayName": "Voorbeeld Handel BV", "CompanyName": "Voorbeeld Handel BV",
                "GivenName": "Test", "FamilyName": "Inkoop",
                "PrimaryEmailAddr": {"Address": "inkoop@voorbeeld.example"}},
    "person": {"DisplayName": "Test Persoon", "GivenName": "Test", "FamilyName": "Persoon",
               "PrimaryEmailAddr": {"Address": "persoon@voorbeeld.example"}},
}
ADDRESS = {"Line1": "Teststraat 1", "City": "Utrecht", "PostalCode": "3511 AA",
           "Country": "NLD"}
_TRACE = re.compile(r"^QuickBooks (?P<entity>\w+) (?P<number>\S+) \(id (?P<id>\d+)\)")


def _api(shop) -> httpx.Client:
    creds = shop.credentials()
    return httpx.Client(base_url=f"{creds['base_url']}/{creds['language']}/",
                        auth=(creds["api_key"], creds["api_secret"]), timeout=60)


@pytest.fixture
def reverse_shop(shop_factory):
    """A shop of its own per test (faults and orders stay in it), always the same."""
    return shop_factory(orders=0, products=6, customers=3, seed=10)


def _reverse_tenant(make_tenant, shop):
    """A tenant with ``orders_reverse`` on and its QuickBooks company holding
    :data:`DOCUMENTS` (items carrying the shop's SKUs, two customers)."""
    from koppel.hooks.quickbooks import QuickBooksHook

    tenant = make_tenant(shop, settings={"unknown_sku": "fail"})
    enable_flow(tenant, "orders_reverse")
    with _api(shop) as api:
        variants = api.get("variants.json", params={"limit": 250}).json()["variants"]
    skus = Counter(v["sku"] for v in variants if v.get("sku"))
    unique = [v for v in variants if v.get("sku") and skus[v["sku"]] == 1][:3]
    assert len(unique) == 3, "the seeded shop lacks three variants with a SKU of their own"
    hook = QuickBooksHook(f"qb_{tenant.tenant}")
    items = [hook.create("Item", {"Name": f"Item {v['sku']}", "Sku": v["sku"],
                                  "Type": "NonInventory", "UnitPrice": str(v["priceIncl"]),
                                  "IncomeAccountRef": {"value": "1"}}) for v in unique]
    customers = {key: hook.create("Customer", body) for key, body in CUSTOMERS.items()}
    for entity, number, who, lines, paid in DOCUMENTS:
        # TaxInclusive lines at the shop's price: the gross in TaxInclusiveAmt, the VAT
        # code of the variant's rate (sandbox codes: 1 = 21 %, 2 = 9 %, 3 = 0 %)
        doc = hook.create(entity, {
            "DocNumber": number, "CustomerRef": {"value": customers[who]["Id"]},
            "GlobalTaxCalculation": "TaxInclusive", "BillAddr": ADDRESS,
            "Line": [{"DetailType": "SalesItemLineDetail",
                      "SalesItemLineDetail": {
                          "ItemRef": {"value": items[i]["Id"]}, "Qty": qty,
                          "TaxInclusiveAmt": str(Decimal(str(unique[i]["priceIncl"])) * qty),
                          "TaxCodeRef": {"value": _TAX_CODES[_rate(unique[i])]}}}
                     for i, qty in lines]})
        if paid:
            amount = doc["TotalAmt"] if paid == "all" else paid
            hook.create("Payment", {"CustomerRef": {"value": customers[who]["Id"]},
                                    "TotalAmt": amount, "Line": [{"Amount": amount, "LinkedTxn": [
                                        {"TxnId": doc["Id"], "TxnType": entity}]}]})
    hook.close()
    return tenant


_TAX_CODES = {Decimal(21): "1", Decimal(9): "2", Decimal(0): "3"}


def _rate(variant) -> Decimal:
    """A variant's VAT rate in percent, from its prices incl. and excl. VAT."""
    return ((Decimal(str(variant["priceIncl"])) / Decimal(str(variant["priceExcl"])) - 1)
            * 100).quantize(Decimal(1))


def reverse_state(tenant, shop) -> dict[str, Any]:
    """The shop's orders by the QuickBooks DocNumber they came from (a list, so a doubled
    order shows): status, payment status, total to the cent, customer, rows by SKU and the
    metafields; the shop's customers by e-mail; and koppel's last word per document."""
    orders: dict[str, list[dict[str, Any]]] = {}
    with _api(shop) as api:
        for order in shop.orders():
            trace = _TRACE.match(order.get("comment") or "")
            assert trace, f"order {order['id']} was not made by koppel"
            rows = api.get(f"orders/{order['id']}/products.json").json()["orderProducts"]
            metafields = api.get(f"orders/{order['id']}/metafields.json").json()["orderMetafields"]
            orders.setdefault(trace["number"], []).append({
                "entity": trace["entity"], "status": order["status"],
                "payment_status": order["paymentStatus"],
                "total": str(Decimal(str(order["priceIncl"])).quantize(CENT)),
                "vat": sorted((str(t["rate"]), str(Decimal(str(t["amount"])).quantize(CENT)))
                              for t in order["taxRates"]),
                "email": order["email"], "company": order.get("companyName") or "",
                "rows": sorted((r["sku"], int(r["quantityOrdered"]),
                                str(Decimal(str(r["priceIncl"])).quantize(CENT))) for r in rows),
                "metafields": sorted(m["value"] for m in metafields)})
        customers = Counter(str(c["email"]).casefold() for c in
                            api.get("customers.json", params={"limit": 250}).json()["customers"])
    documents = {f"{e}:{d['Id']}": d for e in ("SalesReceipt", "Invoice")
                 for d in tenant.entities(e)}
    docs = {k: d["DocNumber"] for k, d in documents.items()}
    totals = {d["DocNumber"]: d["TotalAmt"] for d in documents.values()}
    orders_off = sorted(n for n, made in orders.items() for o in made
                        if Decimal(o["total"]) != Decimal(str(totals[n])))
    activity = sorted(tenant.activity("orders_reverse"), key=lambda r: r["id"])
    latest = {docs[r["source_id"]]: r for r in activity}
    created = {docs[r["source_id"]]: r for r in activity if r["action"] == "created"}
    return {"orders": orders,
            "customers": {e: customers[e] for e in sorted(
                c["PrimaryEmailAddr"]["Address"].casefold() for c in CUSTOMERS.values())},
            # koppel logs the QuickBooks total of each order it created (an order created
            # by a run that died is logged "skipped: already created" by the next one)
            "amounts_off": sorted(n for n, r in created.items() if Decimal(str(r["amount"]))
                                  != Decimal(str(totals[n]))),
            # and the shop charged each document's total (the flow checks it)
            "orders_off": orders_off,
            "done": sorted(n for n, r in latest.items()
                           if r["action"] in ("created", "updated", "skipped")),
            "failed": sorted(docs[k] for k in tenant.failed("orders_reverse"))}


def assert_one_order_per_document(state: dict[str, Any]) -> None:
    """Nothing twice (so far): no document with two orders, no order with two
    metafields, no customer twice."""
    doubled = {n: len(o) for n, o in state["orders"].items() if len(o) > 1}
    assert not doubled, f"QuickBooks documents that became several orders: {doubled}"
    for number, (order,) in state["orders"].items():
        assert len(order["metafields"]) <= 1, (number, order["metafields"])
    assert all(n <= 1 for n in state["customers"].values()), state["customers"]


@pytest.fixture(scope="module")
def reverse_clean(request, shop_factory, airflow_db, qbo, tmp_path_factory):
    """The reference: a fresh tenant and shop, one clean run."""
    new_tenant = next(p.new_tenant for p in request.config.pluginmanager.get_plugins()
                      if "reliability" in str(getattr(p, "__file__", ""))
                      and hasattr(p, "new_tenant"))
    shop = shop_factory(orders=0, products=6, customers=3, seed=10)
    with pytest.MonkeyPatch.context() as monkeypatch:
        def make(shop, settings=None):
            return new_tenant(qbo, shop, tmp_path_factory.mktemp("reverse-clean") / "mappings",
                              monkeypatch, settings)

        tenant = _reverse_tenant(make, shop)
        assert tenant.run("orders_reverse").state == "success"
        return {"state": reverse_state(tenant, shop),
                "actions": Counter(r["action"] for r in tenant.latest("orders_reverse").values())}


def test_reverse_clean_run_is_a_reference(reverse_clean):
    """What the faulted runs must reach is worth reaching: every document became one
    order with its payment status, total and metafield; each customer exists once."""
    state = reverse_clean["state"]
    assert reverse_clean["actions"] == {"created": len(DOCUMENTS)}
    assert sorted(state["orders"]) == sorted(n for _, n, *_ in DOCUMENTS)
    assert_one_order_per_document(state)
    paid = {n: o[0]["payment_status"] for n, o in state["orders"].items()}
    assert paid == {"RV-101": "paid", "RV-102": "paid", "RV-103": "not_paid",
                    "RV-104": "partially_paid", "RV-105": "paid", "RV-106": "paid"}
    assert state["amounts_off"] == [], "koppel's amount is not the document's total"
    assert state["orders_off"] == [], "an order's total is not its document's"
    assert state["done"] == sorted(state["orders"]) and not state["failed"]
    assert set(state["customers"].values()) == {1}


def _faults_fired(*sandboxes) -> int:
    return sum(sum(s.stats()["faults"].values()) for s in sandboxes)


def _converge_reverse(tenant, shop, clean, runs: int = 2) -> dict[str, Any]:
    """At most ``runs`` ``full_resync`` re-runs, then exactly the clean run's state."""
    for _ in range(runs):
        tenant.run("orders_reverse", full_resync=True)
        if not tenant.failed("orders_reverse"):
            break
    state = reverse_state(tenant, shop)
    assert_one_order_per_document(state)
    assert state == clean["state"]
    return state


@contextmanager
def _from_the_load_on(install: Callable[[], None]) -> Iterator[None]:
    """``install`` the shop's faults when the load starts: the reverse flow reads
    QuickBooks and looks customers up in the shop first, and a fault there only ends the
    run before anything is written; in the load it hits between the writes of an order."""
    from koppel.flows.orders_reverse import ReverseOrdersProcess

    real = ReverseOrdersProcess.load
    installed: list[bool] = []

    def load(self, records):
        if not installed:
            installed.append(True)
            install()
        return real(self, records)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ReverseOrdersProcess, "load", load)
        yield


#: case → (QuickBooks faults from the start, shop faults from the load on, retry attempts
#: of the faulted run: 1 lets every fault escape the hooks, None keeps their retries)
REVERSE_CASES: dict[str, tuple[Any, dict | None, int | None]] = {
    "5xx-10pct": (dict(kind="500", probability=0.1), dict(kind="503", probability=0.1), 1),
    "dropped-connections": (dict(kind="drop", probability=0.2, times=3),
                            dict(kind="drop", probability=0.2, times=3), 1),
    "token-expiry-and-rotation": ("tokens", None, 1),
    "ls-429-storm": (None, dict(sequence=["ok"] * 9 + ["429", "429", "ok", "429", "429"],
                                retry_after=1), 1),
    "ls-429-storm-absorbed": (None, dict(sequence=["ok"] * 9 + ["429", "429", "ok", "429",
                                                                "429"], retry_after=1), None),
}


@pytest.fixture
def restore_qbo(qbo):
    tokens = qbo.control.put("/tokens", json={}).json()
    yield tokens
    qbo.clear_faults()
    qbo.control.put("/tokens", json=tokens).raise_for_status()


@pytest.mark.parametrize("case", list(REVERSE_CASES))
def test_reverse_faults_converge_to_the_clean_orders(case, reverse_shop, qbo, make_tenant,
                                                    reverse_clean, restore_qbo):
    """Faults that escape the hooks fail the run after it wrote part of the orders (a
    placed order without its payment status, a checkout without its order, …); the
    re-runs then converge to the clean run's orders — none twice, none missing. Token
    expiry and rotation, and a 429 storm the hooks may retry, are routine: those runs
    succeed outright with the clean run's orders."""
    qbo_rule, shop_rule, attempts = REVERSE_CASES[case]
    tenant = _reverse_tenant(make_tenant, reverse_shop)
    fired_before = _faults_fired(reverse_shop, qbo)
    if qbo_rule == "tokens":
        FAULTS["token-expiry-and-rotation"](reverse_shop, qbo)
    elif qbo_rule:
        qbo.fault(path=QBO_API, **qbo_rule)
    with _from_the_load_on(lambda: shop_rule and reverse_shop.fault(**{"path": LS_API,
                                                                        **shop_rule})), \
            (capped_retries(attempts) if attempts else nullcontext()):
        run = tenant.run("orders_reverse")
    reverse_shop.clear_faults()
    qbo.clear_faults()
    qbo.control.put("/tokens", json=restore_qbo).raise_for_status()
    after = reverse_state(tenant, reverse_shop)
    assert_one_order_per_document(after)
    if attempts is None or qbo_rule == "tokens":
        assert run.state == "success", f"{case} failed the run"
        assert after == reverse_clean["state"]
    else:
        assert _faults_fired(reverse_shop, qbo) > fired_before, "no fault was injected"
        assert run.state == "failed", "a fault escaped the hooks, yet the run succeeded"
        assert after != reverse_clean["state"], "the faulted run left nothing to recover"
    _converge_reverse(tenant, reverse_shop, reverse_clean)


@pytest.mark.parametrize("moment", ["order-placed-not-recorded", "checkout-not-placed"])
def test_reverse_killed_load_yields_each_order_once(moment, reverse_shop, make_tenant,
                                                    reverse_clean):
    """The load's process dies at the second document: right after Lightspeed placed its
    order (koppel holds only the pending checkout), or between its checkout and the order.
    Nothing of the chunk was recorded but its in-flight mark (the load puts its chunk on the
    retry list before writing). The re-run adopts the placed order (or drops the
    abandoned checkout and starts over) and creates the rest: one order per document."""
    from koppel.hooks.lightspeed import LightspeedHook

    tenant = _reverse_tenant(make_tenant, reverse_shop)
    real = LightspeedHook.place_checkout_order
    placed: list[int] = []

    def dying(self, checkout_id, **fields):
        if len(placed) == 1:
            placed.append(checkout_id)
            if moment == "order-placed-not-recorded":
                real(self, checkout_id, **fields)
            raise WorkerKilled("worker killed")
        placed.append(checkout_id)
        return real(self, checkout_id, **fields)

    with dead_process(), pytest.MonkeyPatch.context() as patch:
        patch.setattr(LightspeedHook, "place_checkout_order", dying)
        run = tenant.run("orders_reverse")
    assert run.state == "failed" and len(placed) == 2, "the load never reached the crash point"
    after = reverse_state(tenant, reverse_shop)
    in_shop = sum(len(o) for o in after["orders"].values())
    assert in_shop == (2 if moment == "order-placed-not-recorded" else 1)
    assert after["done"] == [], "a dead process recorded something"
    from koppel.store.state import StateStore

    left = StateStore().failed(tenant.tenant, "orders_reverse")
    assert left and all(r["reason"].startswith("in flight") and r["attempts"] == 0
                        for r in left), "only the dead load's chunk is left, marked in flight"
    _converge_reverse(tenant, reverse_shop, reverse_clean)


#: Lightspeed writes whose answer is lost after Lightspeed processed them (the hook sees a
#: dropped connection and retries; Lightspeed has no idempotency keys). For checkout rows
#: koppel reads the checkout back when a row was sent more than once, and discards a cart
#: that holds a row twice instead of placing it.
LOST_ANSWER_ROUTES = [
    pytest.param(r"^checkouts/\d+/products\.json$", id="checkout-row"),
    pytest.param(r"^checkouts/\d+/order\.json$", id="place-order"),
    pytest.param(r"^orders/\d+/metafields\.json$", id="order-metafield"),
    pytest.param(r"^customers\.json$", id="customer"),
]


@pytest.mark.parametrize("route", LOST_ANSWER_ROUTES)
def test_reverse_lost_answer_to_a_write_yields_each_order_once(route, reverse_shop, make_tenant,
                                                               reverse_clean):
    """The connection drops after Lightspeed processed the first write to ``route`` (a
    real dropped connection can come after the server did the work, unlike the sandbox's
    ``drop``, which refuses the request): whatever the hook and the flow make of it, the
    re-runs converge to one order per document with the clean run's rows and totals, and
    each customer once."""
    tenant = _reverse_tenant(make_tenant, reverse_shop)
    with answer_lost("POST", route) as lost:
        tenant.run("orders_reverse")  # may leave a document failed
    assert lost, f"no POST to {route} was made"
    assert_one_order_per_document(reverse_state(tenant, reverse_shop))
    _converge_reverse(tenant, reverse_shop, reverse_clean)


# ======================================================================================
# products and customers: stale SyncToken, killed load
# ======================================================================================

STATE = {"products": products_state, "customers": customers_state}
SOURCE_TYPE = {"products": "variant", "customers": "customer"}  # (products also log categories)
#: what the other QuickBooks user changes meanwhile: fields koppel does not sync, so a
#: lost edit shows (koppel sends sparse updates of the fields it syncs only)
BOOKKEEPER_EDIT = {"Item": {"PurchaseDesc": "edited by the bookkeeper"},
                   "Customer": {"WebAddr": {"URI": "https://bookkeeper.example/edited"}}}


def _new_shop(shop_factory):
    return shop_factory(orders=0, products=5, customers=6, seed=8)


@pytest.fixture(scope="module")
def catalogue_shop(shop_factory):
    """Products and customers for the killed-load tests (never changed)."""
    return _new_shop(shop_factory)


@pytest.fixture(scope="module")
def catalogue_clean(request, airflow_db, qbo, catalogue_shop, tmp_path_factory):
    """Products and customers of :func:`catalogue_shop` synced once without faults."""
    new_tenant = next(p.new_tenant for p in request.config.pluginmanager.get_plugins()
                      if "reliability" in str(getattr(p, "__file__", ""))
                      and hasattr(p, "new_tenant"))
    out = {}
    with pytest.MonkeyPatch.context() as monkeypatch:
        for flow in STATE:
            tenant = new_tenant(qbo, catalogue_shop,
                                tmp_path_factory.mktemp(f"clean-{flow}") / "mappings",
                                monkeypatch)
            assert tenant.run(flow).state == "success"
            out[flow] = {"state": STATE[flow](tenant), "failed": tenant.failed(flow),
                         "latest": set(tenant.latest(flow))}
    return out


def _entity(tenant, entity: str, object_id: str) -> dict[str, Any]:
    return next(o for o in tenant.entities(entity) if str(o["Id"]) == str(object_id))


@pytest.mark.parametrize("flow", ["products", "customers"])
def test_stale_sync_token_loses_no_edit(flow, shop_factory, make_tenant):
    """A record changes in the shop; while koppel updates its QuickBooks object, another
    QuickBooks user edits that object (between koppel's read and its write, so koppel's
    SyncToken is stale). koppel's update is either re-sent with the new SyncToken in the
    same run or fails with the stale-object fault, stays on the failed list and is sent
    by the next run — never reported done without being written. In the end QuickBooks
    holds both edits, and nothing twice."""
    shop = _new_shop(shop_factory)
    tenant = make_tenant(shop)
    assert tenant.run(flow).state == "success"
    entity = {"products": "Item", "customers": "Customer"}[flow]
    latest = tenant.latest(flow)
    created = sorted((i for i, r in latest.items() if r["action"] == "created"
                      and r["source_type"] == SOURCE_TYPE[flow]), key=int)
    assert created, f"the first {flow} run created nothing"
    source_id = created[0]
    target_id = latest[source_id]["target_id"]
    if flow == "products":
        shop.control.patch(f"/variants/{source_id}",
                           json={"priceIncl": "123.45"}).raise_for_status()

        def koppel_wrote(obj):
            return Decimal(str(obj["UnitPrice"])) == Decimal("123.45")
    else:
        shop.control.patch(f"/customers/{source_id}",
                           json={"phone": "+31 30 000 0000"}).raise_for_status()

        def koppel_wrote(obj):
            return (obj.get("PrimaryPhone") or {}).get("FreeFormNumber") == "+31 30 000 0000"
    edit = BOOKKEEPER_EDIT[entity]

    def bookkeeper_kept(obj):
        return all(obj.get(k) == v for k, v in edit.items())

    with concurrent_edit(entity, edit) as edited:
        tenant.run(flow)
    assert edited == [target_id], f"the concurrent edit did not hit {entity} {target_id}"
    row = tenant.latest(flow)[source_id]
    obj = _entity(tenant, entity, target_id)
    assert bookkeeper_kept(obj), "koppel's write undid the bookkeeper's edit"
    if row["action"] == "failed":
        assert "5010" in row["reason"] or "stale" in row["reason"].lower(), row["reason"]
        assert source_id in tenant.failed(flow), "the stale update is not retried"
        assert not koppel_wrote(obj)
        tenant.run(flow)  # an ordinary run: the failed list brings it back
        row = tenant.latest(flow)[source_id]
        obj = _entity(tenant, entity, target_id)
    assert row["action"] == "updated", (row["action"], row["reason"])
    assert koppel_wrote(obj), f"{entity} {target_id} never got the shop's change"
    assert bookkeeper_kept(obj), "koppel's write undid the bookkeeper's edit"
    assert not tenant.failed(flow)
    assert_no_doubles(flow, STATE[flow](tenant))
    assert_no_duplicates(tenant.books())


@pytest.mark.parametrize("flow", ["products", "customers"])
def test_killed_load_rerun_writes_each_once(flow, catalogue_shop, make_tenant,
                                            catalogue_clean):
    """The load's process dies right after QuickBooks wrote the first part of the chunk's
    batch (batches of three here): QuickBooks holds those items/customers, koppel recorded
    none of them. The re-runs find them (by SKU, by e-mail) instead of creating them again
    and converge to the clean run's state."""
    entity = {"products": "Item", "customers": "Customer"}[flow]
    clean = catalogue_clean[flow]
    tenant = make_tenant(catalogue_shop)
    with killed_after_qbo_write(entity, batch_size=3,
                                skip=lambda payload: payload.get("Type") == "Category"
                                ) as written:
        run = tenant.run(flow)
    assert run.state == "failed" and written, "the load never reached the crash point"
    assert written[0] > 0, "QuickBooks wrote nothing before the process died"
    assert not [i for i, r in tenant.latest(flow).items() if r["source_type"] == SOURCE_TYPE[flow]
                and r["action"] in ("created", "updated")], "a dead process recorded its writes"
    state = STATE[flow](tenant)
    assert_no_doubles(flow, state)
    assert state != clean["state"], "the killed run wrote everything: nothing to recover"
    assert_converges(tenant, flow, clean)



#: Faults that let Lightspeed place the order and then lose or replace its answer (the
#: sandbox's *after* kinds on ``POST checkouts/{id}/order.json``), with the hooks' own
#: retries on: the retry finds the checkout already ordered, the document fails, and the
#: next run adopts the placed order from its pending checkout — never a second order.
PLACED_ANSWER_LOST = ["drop_after", "500_after", "503_after", "504_after"]


@pytest.mark.parametrize("kind", PLACED_ANSWER_LOST)
def test_reverse_order_placed_but_answer_lost_is_adopted(kind, reverse_shop, make_tenant,
                                                         reverse_clean):
    tenant = _reverse_tenant(make_tenant, reverse_shop)
    with _from_the_load_on(lambda: reverse_shop.fault(
            path=r"^/nl/checkouts/\d+/order\.json$", method="POST", kind=kind, times=1)):
        tenant.run("orders_reverse")
    reverse_shop.clear_faults()
    assert reverse_shop.stats()["faults"].get(kind) == 1, "the fault never fired"
    after = reverse_state(tenant, reverse_shop)
    assert_one_order_per_document(after)
    assert sum(len(o) for o in after["orders"].values()) == len(DOCUMENTS), \
        "every document's order is in the shop (the lost one placed all the same)"
    assert len(after["failed"]) == 1, "the document whose answer was lost waits for adoption"
    state = _converge_reverse(tenant, reverse_shop, reverse_clean, runs=1)
    assert state["failed"] == []
