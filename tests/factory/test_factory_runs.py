"""Runs of a generated DAG through Airflow (``dag.test()``) against the sandboxes: the
manual-run Params (order numbers, dry run) and a backfill over three daily intervals."""

from __future__ import annotations

import json

import datetime as dt
import os
import subprocess
import sys
from decimal import Decimal

import httpx
import pytest

from koppel.sandbox.quickbooks.entities import ENTITIES

pytestmark = pytest.mark.e2e

UTC = dt.timezone.utc


def _bookable(order) -> bool:
    return order["paymentStatus"] == "paid" and order["status"] != "cancelled"


def _snapshot(tenant) -> dict[str, list]:
    """Every object of every entity in the tenant's QuickBooks company, and its deletions."""
    out = {}
    for entity in ENTITIES:
        response = httpx.get(f"{tenant.qbo_url}/_sandbox/realms/{tenant.realm_id}/entities/"
                             f"{entity}", timeout=30)
        response.raise_for_status()
        out[entity] = response.json()
    return out


def _writes(stats) -> dict[str, int]:
    """Single-entity write requests (create, update, void, delete). Batches are left
    out: koppel batches its reads too; a write in a batch shows in the snapshot."""
    return {route: n for route, n in stats["by_route"].items()
            if route.split(" ")[0] in ("POST", "PUT", "PATCH", "DELETE")
            and " /v3/" in route and not route.endswith(("/query", "/batch"))}


def _run_ids(tenant, flow="orders") -> dict[str, set[str]]:
    runs: dict[str, set[str]] = {}
    for row in tenant.activity(flow):
        runs.setdefault(row["run_id"], set()).add(row["source_id"])
    return runs


# -- Params -------------------------------------------------------------------------------

def test_order_number_params_book_exactly_those_orders(shop_factory, make_tenant):
    shop = shop_factory(orders=12)
    tenant = make_tenant(shop, settings={"unknown_sku": "create_item"})
    orders = shop.orders()
    bookable = [o for o in orders if _bookable(o)]
    assert len(bookable) >= 3, "the seeded shop has too few paid orders"
    chosen = [bookable[0], bookable[-1]]
    numbers = [o["number"] for o in chosen]

    run = tenant.run("orders", records=numbers)
    assert run.state == "success"
    assert run.conf == {"records": numbers}
    rows = tenant.activity("orders", run.run_id)
    assert {r["source_id"] for r in rows} == {str(o["id"]) for o in chosen}
    assert {r["action"] for r in rows} == {"created"}, [r["reason"] for r in rows]
    receipts = tenant.entities("SalesReceipt")
    assert sorted(d["DocNumber"] for d in receipts) == sorted(numbers)
    for order in chosen:
        (doc,) = [d for d in receipts if d["DocNumber"] == order["number"]]
        assert Decimal(str(doc["TotalAmt"])) == Decimal(str(order["priceIncl"])).quantize(
            Decimal("0.01"))

    # the next run of the same DAG does not inherit those Params: a full resync reads
    # every order and books the other bookable ones (the chosen ones are already booked)
    again = tenant.run("orders", full_resync=True)
    assert again.state == "success"
    rows = {r["source_id"]: r for r in tenant.activity("orders", again.run_id)}
    assert set(rows) == {str(o["id"]) for o in orders}
    for order in chosen:
        assert rows[str(order["id"])]["action"] == "skipped"
    created = {i for i, r in rows.items() if r["action"] == "created"}
    assert created == {str(o["id"]) for o in bookable} - {str(o["id"]) for o in chosen}
    numbers_booked = [d["DocNumber"] for d in tenant.entities("SalesReceipt")]
    assert sorted(numbers_booked) == sorted(o["number"] for o in bookable)


def test_invalid_params_are_refused_before_anything_runs(shop, make_tenant):
    tenant = make_tenant(shop)
    calls = shop.stats()["total"]
    with pytest.raises(Exception, match="since"):
        tenant.run("orders", since="last tuesday")
    with pytest.raises(Exception, match="dry_run"):
        tenant.run("orders", dry_run="yes")
    assert shop.stats()["total"] == calls
    assert tenant.activity("orders") == []


# -- dry run --------------------------------------------------------------------------------

def test_a_dry_run_books_nothing_and_logs_what_it_would_send(shop_factory, make_tenant):
    shop = shop_factory(orders=10)
    # unknown SKUs would create items and new buyers customers: nothing of it may happen
    tenant = make_tenant(shop, settings={"unknown_sku": "create_item"})
    orders = {str(o["id"]): o for o in shop.orders()}
    bookable = {i for i, o in orders.items() if _bookable(o)}
    assert bookable
    before, writes_before = _snapshot(tenant), _writes(tenant.qbo_stats())

    run = tenant.run("orders", dry_run=True)
    assert run.state == "success"
    assert _writes(tenant.qbo_stats()) == writes_before, "a dry run sent a write"
    assert _snapshot(tenant) == before, "a dry run changed the QuickBooks company"
    rows = {r["source_id"]: r for r in tenant.activity("orders", run.run_id)}
    assert set(rows) == set(orders)
    assert "created" not in {r["action"] for r in rows.values()}
    for order_id in bookable:
        order, row = orders[order_id], rows[order_id]
        total = Decimal(str(order["priceIncl"])).quantize(Decimal("0.01"))
        assert row["action"] == "skipped"
        assert row["reason"] == (f"dry run: would create SalesReceipt {order['number']} "
                                 f"(total {total})"), row["reason"]
        assert row["target_id"] in (None, "")

    # each record's would-be request is kept as its preview (the dashboard shows it)
    from koppel.store.state import StateStore

    store = StateStore()
    for order_id in bookable:
        preview = store.preview_of(tenant.tenant, "orders", order_id)
        assert preview is not None and preview["run_id"] == run.run_id, order_id
        assert (preview["target_type"], preview["operation"]) == ("SalesReceipt", "create")
        assert preview["payload"]["DocNumber"] == orders[order_id]["number"]
        assert preview["payload"]["Line"], preview
        # never in the activity log
        assert "payload" not in json.dumps(rows[order_id]["details"] or {})
    assert all(store.preview_of(tenant.tenant, "orders", i) is None
               for i in set(orders) - bookable)

    # the dry run left nothing behind that keeps the real run from booking every order
    real = tenant.run("orders", full_resync=True)
    assert real.state == "success"
    created = {r["source_id"] for r in tenant.activity("orders", real.run_id)
               if r["action"] == "created"}
    assert created == bookable
    assert len(tenant.entities("SalesReceipt")) == len(bookable)
    assert _snapshot(tenant) != before  # the snapshot does see writes


# -- backfill -------------------------------------------------------------------------------

DAYS = [dt.datetime(2025, 8, d, tzinfo=UTC) for d in (1, 2, 3)]


def _serialize_dag_folder() -> None:
    """Write the DAG folder's DAGs to the metadata database, as the dag processor (and
    ``dag.test()``) do: ``airflow backfill create`` reads the serialized DAG."""
    from airflow import settings
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db

    manager = DagBundlesManager()
    with settings.Session() as session:
        manager.sync_bundles_to_db(session=session)
        session.commit()
    for bundle in manager.get_all_dag_bundles():
        if not bundle.is_initialized:
            bundle.initialize()
        bag = BundleDagBag(dag_folder=bundle.path, bundle_path=bundle.path,
                           bundle_name=bundle.name)
        sync_bag_to_db(bag, bundle.name, bundle.version)


def _backfill_runs(dag_id: str) -> list:
    from airflow import settings
    from airflow.models.dagrun import DagRun
    from airflow.utils.types import DagRunType
    from sqlalchemy import select

    with settings.Session() as session:
        return list(session.scalars(select(DagRun).where(
            DagRun.dag_id == dag_id, DagRun.run_type == DagRunType.BACKFILL_JOB)
            .order_by(DagRun.logical_date)))


def _run_backfill_run(dag, logical_date, monkeypatch):
    """Run the backfill's queued DagRun at ``logical_date`` with ``dag.test()``'s
    in-process loop, standing in for the scheduler: ``dag.test()`` would otherwise make
    a manual run of its own, and a manual run is not a backfill run."""
    import airflow.models.dagrun as dagrun_module
    from airflow.utils.state import DagRunState
    from sqlalchemy import select

    def the_backfill_run(*, dag, logical_date, session, **_):
        run = session.scalar(select(dagrun_module.DagRun).where(
            dagrun_module.DagRun.dag_id == dag.dag_id,
            dagrun_module.DagRun.logical_date == logical_date))
        assert run is not None and run.run_type == "backfill", run
        run.set_state(DagRunState.RUNNING)
        session.commit()
        run.dag = dag
        return run

    with monkeypatch.context() as patch:
        patch.setattr(dagrun_module, "get_or_create_dagrun", the_backfill_run)
        return dag.test(logical_date=logical_date)


def test_a_backfill_over_three_daily_intervals_syncs_each_interval_its_own_orders(
        shop_factory, make_tenant, monkeypatch):
    """``airflow backfill create`` makes the runs of three consecutive daily intervals;
    each run syncs exactly the orders changed in its own interval.

    The CLI only records the backfill's runs (queued) in the metadata database: the
    scheduler would run them, with an API server for the tasks' Execution API, and
    neither runs here. So each queued backfill run is run by ``dag.test()``'s in-process
    loop (see :func:`_run_backfill_run`): the runs, their data intervals and their run
    type are Airflow's own."""
    from koppel.factory import build_dags
    from koppel.flows import registry

    shop = shop_factory(orders=6)  # seeded history ends 2025-06-30
    tenant = make_tenant(shop, settings={"unknown_sku": "create_item"}, flows={
        "orders": {"schedule": "@daily", "start_date": "2025-07-01T00:00:00+00:00"}})
    dag_id = f"orders__{tenant.tenant}"

    def order_at(moment: dt.datetime) -> dict:
        return {"created_at": moment.isoformat(), "status": "completed_shipped",
                "payment_status": "paid", "lines": [{
                    "sku": "BF-1", "title": "Backfill line", "price_incl": "12.10",
                    "tax_rate": "0.21", "quantity": 1}]}

    h = dt.timedelta(hours=1)
    moments = {  # [start, end): a change at midnight belongs to the day it starts
        "before": [DAYS[0] - dt.timedelta(seconds=1), DAYS[0] - 2 * h],
        DAYS[0]: [DAYS[0], DAYS[0] + 13 * h, DAYS[1] - dt.timedelta(seconds=1)],
        DAYS[1]: [DAYS[1], DAYS[1] + 9 * h],
        DAYS[2]: [DAYS[2] + 23 * h],
        "after": [DAYS[2] + 24 * h, DAYS[2] + 25 * h],
    }
    expected: dict = {}
    for key, stamps in moments.items():
        created = shop.control.post("/orders", json={"orders": [order_at(m) for m in stamps]})
        created.raise_for_status()
        expected[key] = {str(o["id"]) for o in created.json()["orders"]}
    # an old (seeded) order changed on the second day belongs to that day too
    old = min(shop.orders(), key=lambda o: o["id"])
    shop.control.patch(f"/orders/{old['id']}", json={
        "memo": "changed", "updated_at": (DAYS[1] + 15 * h).isoformat()}).raise_for_status()
    expected[DAYS[1]].add(str(old["id"]))
    orders = {str(o["id"]): o for o in shop.orders()}

    registry._tenant_set.cache_clear()
    _serialize_dag_folder()
    out = subprocess.run(
        [sys.executable, "-m", "airflow", "backfill", "create", "--dag-id", dag_id,
         "--from-date", "2025-08-01", "--to-date", "2025-08-03"],
        capture_output=True, text=True, env=os.environ.copy(), timeout=300)
    assert out.returncode == 0, (out.stdout[-2000:], out.stderr[-3000:])
    queued = _backfill_runs(dag_id)
    assert [(r.data_interval_start, r.data_interval_end) for r in queued] == [
        (day, day + dt.timedelta(days=1)) for day in DAYS]

    dag = build_dags(tenant.mappings_dir, only_dag_id=dag_id)[dag_id]
    for day, queued_run in zip(DAYS, queued):
        run = _run_backfill_run(dag, queued_run.logical_date, monkeypatch)
        assert run.state == "success", day
        assert run.run_id == queued_run.run_id and run.run_type == "backfill"
        read = {r["source_id"]: r for r in tenant.activity("orders", run.run_id)}
        assert set(read) == expected[day], (day, sorted(read), sorted(expected[day]))
        created = {i for i, r in read.items() if r["action"] == "created"}
        assert created == {i for i in expected[day] if _bookable(orders[i])}, (day, read)

    # nothing outside the range was read or booked
    outside = expected["before"] | expected["after"]
    assert not set().union(*_run_ids(tenant).values()) & outside
    booked = {d["DocNumber"] for d in tenant.entities("SalesReceipt")}
    assert booked == {orders[i]["number"] for day in DAYS for i in expected[day]
                      if _bookable(orders[i])}
