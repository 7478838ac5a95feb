"""The orders flow end to end: Lightspeed orders booked in QuickBooks through Airflow,
then QuickBooks' state checked through the sandbox."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest

pytestmark = pytest.mark.e2e

CENT = Decimal("0.01")


def _bookable(order) -> bool:
    return order["paymentStatus"] == "paid" and order["status"] != "cancelled"


def _docs_by_number(tenant, entity="SalesReceipt"):
    docs: dict[str, list[dict]] = {}
    for doc in tenant.entities(entity):
        docs.setdefault(doc["DocNumber"], []).append(doc)
    return docs


def _latest(tenant, flow="orders"):
    """Each record's latest activity entry."""
    latest = {}
    for row in sorted(tenant.activity(flow), key=lambda r: r["id"]):
        latest[row["source_id"]] = row
    return latest


def test_orders_lifecycle_books_once_voids_reports_and_converges(shop, make_tenant):
    tenant = make_tenant(shop, settings={"unknown_sku": "create_item"})
    qbo_before = _api_calls(tenant.qbo_stats())
    ls_before = shop.stats()["total"]

    # -- first run: every bookable order booked once, to the cent -------------------------
    assert tenant.run("orders").state == "success"
    qbo_calls = _api_calls(tenant.qbo_stats()) - qbo_before
    ls_calls = shop.stats()["total"] - ls_before
    orders = {str(o["id"]): o for o in shop.orders()}
    docs = _docs_by_number(tenant)
    latest = _latest(tenant)
    assert set(latest) == set(orders), "every order read gets an activity entry"
    booked = [i for i, e in latest.items() if e["action"] == "created"]
    assert booked
    for order_id, order in orders.items():
        entry = latest[order_id]
        if not _bookable(order):
            assert entry["action"] == "skipped", (order["number"], entry["reason"])
            assert order["number"] not in docs
            continue
        if entry["action"] == "failed":
            continue
        assert entry["action"] == "created", entry
        (doc,) = docs[order["number"]]
        assert doc["Id"] == entry["target_id"]
        assert Decimal(str(doc["TotalAmt"])) == Decimal(str(order["priceIncl"])).quantize(CENT)
        assert doc["PaymentMethodRef"]["value"]
        assert doc["CustomerRef"]["value"]
        assert order["number"] in doc.get("PrivateNote", "") or order_id in doc.get("PrivateNote", "")
    failures = [e for e in latest.values() if e["action"] == "failed"]
    assert not failures, [e["reason"] for e in failures]
    # customers: one QBO customer per e-mail, never two
    emails = Counter((c.get("PrimaryEmailAddr") or {}).get("Address", "").casefold()
                     for c in tenant.entities("Customer") if c.get("PrimaryEmailAddr"))
    assert all(n == 1 for n in emails.values()), emails.most_common(3)
    # API calls are counted and logged per record
    logged = sum(e["api_calls"] for e in tenant.activity("orders"))
    assert logged == qbo_calls + ls_calls
    print(f"\nfirst run: {len(booked)} booked of {len(orders)}; QBO calls {qbo_calls} "
          f"({qbo_calls / len(booked):.2f}/booked order), Lightspeed calls {ls_calls} "
          f"({ls_calls / len(orders):.2f}/order)")

    # -- changes in the shop: one booked order cancelled, one changed, new orders ---------
    cancelled_id, changed_id = booked[0], booked[1]
    shop.control.patch(f"/orders/{cancelled_id}", json={"status": "cancelled"})
    shop.control.patch(f"/orders/{changed_id}", json={"memo": "x", "lines": [
        {"sku": "NEW-SKU-1", "title": "Changed line", "price_incl": "12.10", "tax_rate": "0.21",
         "quantity": 1}]})
    added = shop.control.post("/orders", json={"orders": [
        {"lines": [{"sku": "ADDED-1", "title": "Added", "price_incl": "24.20",
                    "tax_rate": "0.21", "quantity": 2}], "status": "completed_shipped",
         "payment_status": "paid"}]}).json()["orders"]
    assert tenant.run("orders").state == "success"
    latest = _latest(tenant)
    assert latest[cancelled_id]["action"] == "voided"
    assert latest[changed_id]["action"] == "conflict"  # the demo tenant reports, never rewrites
    new_id = str(added[0]["id"])
    assert latest[new_id]["action"] == "created"
    voided = [d for d in tenant.entities("SalesReceipt") if d["Id"] == latest[cancelled_id]["target_id"]]
    assert Decimal(str(voided[0]["TotalAmt"])) == 0

    # -- a third run changes nothing in QuickBooks ------------------------------------------
    before = {e: len(tenant.entities(e)) for e in ("SalesReceipt", "Customer", "Item")}
    writes_before = _writes(tenant)
    assert tenant.run("orders", full_resync=True).state == "success"
    after = {e: len(tenant.entities(e)) for e in ("SalesReceipt", "Customer", "Item")}
    assert after == before
    assert _writes(tenant) == writes_before
    latest = _latest(tenant)
    assert latest[booked[2]]["action"] == "skipped"
    assert "already booked" in latest[booked[2]]["reason"]
    numbers = Counter(d["DocNumber"] for d in tenant.entities("SalesReceipt"))
    assert max(numbers.values()) == 1, "a document was booked twice"

    # -- a scheduled run whose window holds nothing: extract skips every later step ------
    ls_before, qbo_before = shop.stats()["total"], _api_calls(tenant.qbo_stats())
    idle = tenant.run("orders", since="2031-01-01T00:00:00+00:00",
                      until="2031-01-01T01:00:00+00:00")
    assert idle.state == "success"
    tis = {ti.task_id: ti for ti in idle.get_task_instances()}
    ran = sorted(t for t, ti in tis.items() if ti.state == "success")
    assert ran == ["extract", "finalize", "wait_for_other_runs"], {
        t: ti.state for t, ti in tis.items()}
    skipped = {t for t, ti in tis.items() if ti.state == "skipped"}
    assert skipped == {"enrich", "exists_check", "customer_upsert", "load",
                       "check_error_threshold"}
    # skipped by extract itself, at one moment while it ran (Airflow's
    # DownstreamTasksSkipped), not one scheduling pass per task after it
    (moment,) = {tis[t].end_date for t in skipped} | {tis[t].start_date for t in skipped}
    assert tis["extract"].start_date <= moment <= tis["extract"].end_date
    assert _api_calls(tenant.qbo_stats()) == qbo_before, "an idle run reads nothing in QuickBooks"
    assert shop.stats()["total"] - ls_before <= 1, "one Lightspeed page: the empty window"


def test_demo_shop_books_within_the_call_budget(shop_factory, make_tenant):
    """On the demo's data (its seed and sizes, flows in the demo's order) a first sync
    books every order within QuickBooks' budget — counted by the sandboxes, not by koppel:
    write batches as full as the chunk allows, look-ups as plain queries (500 a minute)
    beside them — the write batches (40 a minute) bind, so a batch of look-ups would only
    add to the run's time under the limits —, never a look-up in a write batch; under the
    published limits the run takes no longer than its write batches; 1.05 Lightspeed
    calls per order read."""
    shop = shop_factory(seed=1, orders=60, products=40, customers=40)
    tenant = make_tenant(shop)
    assert tenant.run("products").state == "success"
    assert tenant.run("customers").state == "success"
    qbo_before, ls_before = tenant.qbo_stats(), shop.stats()["total"]
    assert tenant.run("orders").state == "success"
    qbo_after = tenant.qbo_stats()
    qbo_calls = _api_calls(qbo_after) - _api_calls(qbo_before)
    ls_calls = shop.stats()["total"] - ls_before

    def delta(key: str) -> int:
        return qbo_after.get(key, 0) - qbo_before.get(key, 0)

    def routes(word: str) -> int:
        return sum(n - qbo_before["by_route"].get(route, 0)
                   for route, n in qbo_after["by_route"].items()
                   if " /v3/" in route and route.rstrip("/").split("/")[-1] == word)

    batches, queries = routes("batch"), routes("query")
    latest = _latest(tenant)
    booked = [e for e in latest.values() if e["action"] == "created"]
    assert len(booked) >= 30 and len(latest) == 60
    writes, reads = delta("batch_write_operations"), (delta("batch_operations")
                                                      - delta("batch_write_operations"))
    write_batches, read_batches = (delta("batch_requests_with_writes"),
                                   delta("batch_requests_reads_only"))
    assert delta("batch_requests_mixed") == 0  # look-ups never ride in a write batch
    assert write_batches + read_batches == batches
    # writes fill their batches, each kind in its own order (the documents refer to the
    # others): the new customers, the helper items (shipping, fees), the items of SKUs the
    # products flow could not create, the documents — one partial batch per kind at most.
    # The look-ups (guests' e-mail addresses, which QuickBooks filters with "=" only, the
    # chunk's documents and items) go as plain queries: they fit in the plain budget in
    # less time than the write batches take in theirs, so no batch carries a look-up
    assert write_batches <= -(-writes // 30) + 3, (write_batches, writes)
    assert read_batches == 0 and reads == 0, (reads, read_batches)
    plain = qbo_calls - batches
    assert 13 <= plain <= len(latest), plain  # more than 12: batched under the old policy
    minutes = max(batches / 40, plain / 500)  # the published limits, two budgets
    assert minutes == write_batches / 40, (minutes, write_batches, plain)
    assert ls_calls <= 1.05 * len(latest), (ls_calls, len(latest))
    print(f"\ndemo data: {len(booked)} booked; QuickBooks {qbo_calls / len(booked):.2f} calls "
          f"per booked order ({write_batches} batches of {writes} writes, {read_batches} of "
          f"{reads} look-ups, {queries} queries), {minutes * 60:.1f} s under the limits; Lightspeed "
          f"{ls_calls / len(latest):.2f} per order")


def test_orders_find_linked_customers_by_id_and_follow_an_email_changed_in_quickbooks(
        shop_factory, make_tenant):
    """Shop customers the customers flow linked are looked up by id (no e-mail query);
    a linked QuickBooks customer whose e-mail was changed in QuickBooks is no longer that
    shop customer: the order's customer is looked up by e-mail again."""
    from koppel.hooks.quickbooks import QuickBooksHook
    from koppel.store.state import StateStore

    shop = shop_factory(orders=16, products=6, customers=8)
    tenant = make_tenant(shop, settings={"unknown_sku": "create_item"})
    assert tenant.run("customers").state == "success"
    orders = [o for o in shop.orders() if _bookable(o)
              and ((o.get("customer") or {}).get("resource") or {}).get("id")]
    shop_ids = {str(o["id"]): str(o["customer"]["resource"]["id"]) for o in orders}
    links = StateStore().xrefs(tenant.tenant, "customer", sorted(set(shop_ids.values())))
    linked = {oid: links[cid].target_id for oid, cid in shop_ids.items() if cid in links}
    assert len(set(linked.values())) >= 2, "the seed needs orders of linked customers"
    moved_order = min(linked)
    moved_customer = linked[moved_order]
    hook = QuickBooksHook(f"qb_{tenant.tenant}")
    hook.sparse_update("Customer", moved_customer,
                       {"PrimaryEmailAddr": {"Address": "someone.else@example.org"}})

    assert tenant.run("orders").state == "success"
    latest = _latest(tenant)
    docs = {d["Id"]: d for d in tenant.entities("SalesReceipt")}
    customers = {c["Id"]: c for c in tenant.entities("Customer")}
    for order_id, customer_id in linked.items():
        entry = latest[order_id]
        assert entry["action"] == "created", entry
        booked_to = docs[entry["target_id"]]["CustomerRef"]["value"]
        if customer_id == moved_customer:
            order = next(o for o in orders if str(o["id"]) == order_id)
            assert booked_to != moved_customer
            assert _email_of(customers[booked_to]) == order["email"].casefold()
        else:
            assert booked_to == customer_id, (order_id, booked_to, customer_id)
    emails = Counter(_email_of(c) for c in customers.values() if _email_of(c))
    assert max(emails.values()) == 1, emails.most_common(2)


def test_a_large_window_streams_into_chunks_and_every_call_is_logged(shop, make_tenant,
                                                                     monkeypatch):
    """The extract stages the window chunk by chunk as the API pages it (chunk size 6 for
    20 orders: 4 mapped chunks); every order is booked or skipped once and the activity
    log's calls add up to what both sandboxes counted."""
    from koppel.flows.orders import OrdersProcess

    monkeypatch.setattr(OrdersProcess, "chunk_size", 6)
    tenant = make_tenant(shop, settings={"unknown_sku": "create_item"})
    qbo_before, ls_before = _api_calls(tenant.qbo_stats()), shop.stats()["total"]
    assert tenant.run("orders").state == "success"
    calls = _api_calls(tenant.qbo_stats()) - qbo_before + shop.stats()["total"] - ls_before
    activity = tenant.activity("orders")
    assert sorted(e["source_id"] for e in activity) == sorted(str(o["id"]) for o in shop.orders())
    assert len({(e["details"] or {}).get("map_index") for e in activity}) == 4
    assert sum(e["api_calls"] for e in activity) == calls
    numbers = Counter(d["DocNumber"] for d in tenant.entities("SalesReceipt"))
    assert numbers and max(numbers.values()) == 1


def _email_of(customer) -> str:
    return ((customer.get("PrimaryEmailAddr") or {}).get("Address") or "").casefold()


def _api_calls(stats) -> int:
    """Accounting API requests (OAuth discovery and token calls are Intuit's, not QBO's)."""
    return sum(n for route, n in stats["by_route"].items() if " /v3/" in route)


def _writes(tenant) -> int:
    """Write requests QuickBooks served: POSTs other than queries and batches, plus the
    write operations inside batches (a batch of queries only is a read)."""
    stats = tenant.qbo_stats()
    return sum(n for route, n in stats["by_route"].items()
               if route.startswith("POST") and "query" not in route and "batch" not in route
               ) + stats.get("batch_write_operations", 0)


def test_customers_company_contacts_guests_and_unknown_skus(shop, make_tenant):
    """A company with two contacts gives a company customer and a sub-customer; a guest
    without e-mail goes to the default customer; two orders of one new customer make one
    customer; an unknown SKU under the 'fail' policy fails only its order."""
    variant = shop.api().get("variants.json", params={"limit": 5}).json()["variants"]
    sku_variant = next(v for v in variant if v.get("sku"))
    line = {"variant_id": sku_variant["id"], "quantity": 1}
    company = "Bakkerij De Gouden Krakeling B.V."
    people = [("anna@krakeling.nl", "Anna", "Bakker"), ("piet@krakeling.nl", "Piet", "Visser")]
    new = []
    for email, first, last in people:
        customer = shop.control.post("/customers", json={"customers": [{
            "email": email, "firstname": first, "lastname": last, "isCompany": True,
            "companyName": company}]}).json()["customers"][0]
        new.append(customer)
    orders = [{"customer_id": new[0]["id"], "lines": [line], "status": "completed_shipped",
               "payment_status": "paid"},
              {"customer_id": new[0]["id"], "lines": [line], "status": "completed_shipped",
               "payment_status": "paid"},
              {"customer_id": new[1]["id"], "lines": [line], "status": "completed_shipped",
               "payment_status": "paid"},
              {"person": {"email": "", "firstname": "Gast", "lastname": "Zonder"},
               "lines": [line], "status": "completed_shipped", "payment_status": "paid"},
              {"customer_id": new[1]["id"], "lines": [
                  {"sku": "NOT-IN-QBO-999", "title": "Ghost", "price_incl": "5.00",
                   "tax_rate": "0.21", "quantity": 1}],
               "status": "completed_shipped", "payment_status": "paid"}]
    created = shop.control.post("/orders", json={"orders": orders}).json()["orders"]
    ids = [str(o["id"]) for o in created]
    numbers = [o["number"] for o in created]
    tenant = make_tenant(shop, settings={"unknown_sku": "fail", "error_threshold": {
        "max_fraction": 1.0}})
    # the shop's SKUs must exist in QuickBooks: create the one item the orders use
    tenant.run("orders", records=[])  # nothing to do yet besides setup: a no-op run
    from koppel.hooks.quickbooks import QuickBooksHook

    hook = QuickBooksHook(f"qb_{tenant.tenant}")
    hook.create("Item", {"Name": "Test item", "Sku": sku_variant["sku"], "Type": "NonInventory",
                         "IncomeAccountRef": {"value": "1"}})
    assert tenant.run("orders", records=numbers).state == "success"
    latest = _latest(tenant)
    assert [latest[i]["action"] for i in ids] == ["created"] * 4 + ["failed"]
    assert "NOT-IN-QBO-999" in latest[ids[4]]["reason"] and "lines[0].sku" in latest[ids[4]]["reason"]
    customers = {c["Id"]: c for c in tenant.entities("Customer")}
    receipts = {d["DocNumber"]: d for d in tenant.entities("SalesReceipt")}
    anna = customers[receipts[numbers[0]]["CustomerRef"]["value"]]
    assert receipts[numbers[1]]["CustomerRef"]["value"] == anna["Id"], "one customer for two orders"
    assert anna["CompanyName"] == company and anna.get("GivenName") == "Anna"
    piet = customers[receipts[numbers[2]]["CustomerRef"]["value"]]
    assert piet.get("Job") is True and piet["ParentRef"]["value"] == anna["Id"]
    guest = customers[receipts[numbers[3]]["CustomerRef"]["value"]]
    assert guest["DisplayName"] == "Webshop klant"
    # the failed order is retried on the next run and still fails with the same reason
    assert tenant.run("orders", records=[]).state == "success"
    failed = {r["source_id"] for r in tenant.activity("orders") if r["action"] == "failed"}
    assert ids[4] in failed
