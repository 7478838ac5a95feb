"""Erasure on request: a manual run of koppel_retention with ``tenant`` and
``customer_id`` removes every trace of that Lightspeed customer (and their orders) from
koppel's stores and leaves everyone else's untouched."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from conftest import retention_dag

pytestmark = pytest.mark.e2e


def _rows(table, tenant):
    from koppel.store.engine import get_engine

    with get_engine().connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(table).where(table.c.tenant == tenant))]


def _customer_of(order):
    ref = order.get("customer") or {}
    return str((ref.get("resource") or {}).get("id") or "") or None


def test_erasure_removes_every_trace_of_one_subject_only(synced):
    from koppel.store.schema import activity, failed_record, staged_payload, xref
    from koppel.store.state import StateStore

    store, tenant = StateStore(), synced.tenant
    orders_by_customer: dict[str, set[str]] = {}
    for order in synced.shop.list("orders"):
        if _customer_of(order):
            orders_by_customer.setdefault(_customer_of(order), set()).add(str(order["id"]))
    before = _rows(activity, tenant)
    touched = {(r["source_type"], r["source_id"]) for r in before}
    # the subject: a customer the customers flow synced and with an order the orders flow saw
    emails = {str(c["id"]): c["email"] for c in synced.shop.list("customers")}
    subject = next(c for c, orders in sorted(orders_by_customer.items())
                   if ("customer", c) in touched and any(("order", o) in touched for o in orders)
                   and emails.get(c, "").count("@") == 1)
    other = next(c for c in sorted(orders_by_customer) if c != subject and ("customer", c) in touched)
    subject_sources = {("customer", subject)} | {("order", o) for o in orders_by_customer[subject]}
    email = emails[subject]

    # traces the flows leave only on bad days: a pending retry, a chunk staged by a run
    # that died, another record's reason naming the subject
    first_order = sorted(orders_by_customer[subject])[0]
    store.mark_failed(tenant, "customers", subject, "QBO refused")
    store.mark_failed(tenant, "orders", first_order, "QBO refused")
    store.mark_failed(tenant, "customers", other, "QBO refused")
    store.stage("gdpr-dead-run", "extract", 0,
                [{"source_id": first_order, "source_type": "order", "data": {"email": email}}])
    store.stage("gdpr-dead-run", "extract", 1,
                [{"source_id": "999999", "source_type": "order", "data": {"note": "x"}}])
    store.stage("gdpr-dead-run", "enrich", 0,
                [{"source_id": "888888", "source_type": "order", "data": {"email": email.upper()}}])
    from koppel.store.state import ActivityEntry

    store.record_activity(tenant=tenant, flow="customers", run_id="gdpr-test", direction="x",
                          entries=[ActivityEntry("customer", other, "skipped",
                                                 reason=f"same e-mail address as shop customer {subject}")])

    subject_xrefs = [r for r in _rows(xref, tenant) if (r["source_type"], r["source_id"]) in subject_sources]
    subject_rows = [r for r in _rows(activity, tenant) if (r["source_type"], r["source_id"]) in subject_sources]
    others_before = [r for r in _rows(activity, tenant) if (r["source_type"], r["source_id"]) not in subject_sources]
    assert subject_rows and subject_xrefs and others_before

    run = retention_dag().test(run_conf={"tenant": tenant, "customer_id": subject})
    assert run.state == "success"

    after = _rows(activity, tenant)
    left = [r for r in after if (r["source_type"], r["source_id"]) in subject_sources]
    assert left == []
    assert [r for r in _rows(xref, tenant) if (r["source_type"], r["source_id"]) in subject_sources] == []
    failed = {(r["flow"], r["source_id"]) for r in _rows(failed_record, tenant)}
    assert ("customers", subject) not in failed and ("orders", first_order) not in failed
    assert ("customers", other) in failed
    with store.engine.connect() as conn:
        staged = {(r.step, r.chunk) for r in conn.execute(
            select(staged_payload).where(staged_payload.c.run_key == "gdpr-dead-run"))}
    assert staged == {("extract", 1)}  # the subject's chunk and the one with their e-mail went

    # nobody else lost anything; the one reason naming the subject no longer does
    others_after = {r["id"]: r for r in after}
    subject_ids = {source_id for _, source_id in subject_sources}
    for row in others_before:
        assert row["id"] in others_after, row
        named = [i for i in subject_ids if row["reason"] and i in row["reason"]]
        if named:  # another record's reason naming the subject or one of their orders
            assert not any(i in others_after[row["id"]]["reason"] for i in named)
            assert "<erased>" in others_after[row["id"]]["reason"]
        else:
            assert others_after[row["id"]] == row
    # the erasure is on record, without the subject's id
    (audit,) = [r for r in after if r["flow"] == "erasure" and r["run_id"] == run.run_id]
    assert audit["action"] == "erased"
    assert audit["details"]["deleted"]["activity"] == len(subject_rows)
    assert subject not in json.dumps(audit, default=str).replace(run.run_id, "")
    print(f"\nerased customer with {len(orders_by_customer[subject])} order(s): "
          f"{audit['details']}; {len(others_before)} other rows untouched")

