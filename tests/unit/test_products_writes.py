"""The products flow's writes through the one writer: category items keep the request id
they always had (``request_id(tenant, run_key, "categories")``, items ``c<n>``/``u<n>``),
and a name QuickBooks already has (6240) is adopted only when it is the same category
(same parent) or, for an item, carries the variant's SKU — else the record fails naming
both objects."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from koppel.flows.base import RecordError
from koppel.flows.products import ProductsProcess
from koppel.flows.products_target import CategoryNode, CategoryPlan, sync_categories
from koppel.hooks.errors import DuplicateName, ObjectNotFound
from koppel.hooks.qbo_writer import ADOPTED, FAILED, REFUSED, WRITTEN, WriteOutcome
from koppel.hooks.quickbooks import BatchResult, request_id


class FakeHook:
    """Items by name (``items``; a create of a name in ``taken`` answers 6240)."""

    request_id = staticmethod(request_id)

    def __init__(self, items=(), taken=()):
        self.items = list(items)
        self.taken = set(taken)
        self.writes: list[tuple[list, str | None]] = []
        self.queries: list[str] = []
        self.next_id = 200

    def query(self, sql):
        self.queries.append(sql)
        names = {v.replace("\\'", "'") for v in re.findall(r"'((?:[^'\\]|\\.)*)'", sql)}
        rows = [r for r in self.items if r["Name"] in names
                and ("Type = 'Category'" not in sql or r.get("Type") == "Category")]
        return {"Item": rows} if rows else {}

    def query_many(self, queries, **_kw):
        return {name: next(iter(self.query(sql).values()), []) for name, sql in queries.items()}

    def batch(self, ops, request_id=None):
        ops = list(ops)
        if all(op.query for op in ops):
            return {op.bid: BatchResult(op.bid, value=self.query(op.query)) for op in ops}
        self.writes.append((ops, request_id))
        out = {}
        for op in ops:
            if op.payload.get("Name") in self.taken:
                out[op.bid] = BatchResult(op.bid, fault=DuplicateName(
                    "Duplicate Name Exists Error", code=6240))
            else:
                self.next_id += 1
                out[op.bid] = BatchResult(op.bid, value={"Id": str(self.next_id), **op.payload})
        return out


class FakeStore:
    def __init__(self):
        self.saved = []

    def xrefs(self, *_args, **_kw):
        return {}

    def save_xref(self, *args, **_kw):
        self.saved.append(args)


def _plan(*names: str) -> CategoryPlan:
    nodes, parent = [], None
    for level, name in enumerate(names):
        key = f"k{level}{name}"
        nodes.append(CategoryNode(key=key, name=name, parent=parent, level=level))
        parent = key
    return CategoryPlan(tuple(nodes), False, len(nodes))


def test_categories_are_written_under_the_request_id_they_always_had():
    hook = FakeHook()
    outcome = sync_categories(hook, FakeStore(), "acme", "run-1", [_plan("Shirts", "Summer")],
                              dry_run=False)
    assert [(op.bid, op.payload["Name"]) for ops, _ in hook.writes for op in ops] == [
        ("c0", "Shirts"), ("c0", "Summer")]  # level by level, a parent first
    assert {rid for _ops, rid in hook.writes} == {request_id("acme", "run-1", "categories")}
    assert [e["action"] for e in outcome.entries] == ["created", "created"]
    assert outcome.errors == {}


def test_a_category_name_clash_adopts_only_the_same_category():
    # "Shirts" at the top level was made meanwhile (a parallel chunk): adopted
    made = {"Id": "41", "Name": "Shirts", "Type": "Category"}
    # "Hats" is taken by a category under another parent: not this one
    elsewhere = {"Id": "42", "Name": "Hats", "Type": "Category", "ParentRef": {"value": "9"}}
    hook = FakeHook(taken={"Shirts", "Hats"})  # the level's look-up does not see them yet
    store = FakeStore()
    seen = [made, elsewhere]
    original = hook.batch

    def batch(ops, request_id=None):
        answers = original(ops, request_id)
        hook.items = seen  # created meanwhile, between the look-up and the write
        return answers

    hook.batch = batch
    outcome = sync_categories(hook, store, "acme", "run-1", [_plan("Shirts"), _plan("Hats")],
                              dry_run=False)
    adopted = next(e for e in outcome.entries if e["details"]["name"] == "Shirts")
    assert adopted["action"] == "skipped" and adopted["target_id"] == "41"
    assert adopted["reason"] == "created meanwhile by a parallel task: linked"
    assert outcome.ids["k0Shirts"] == "41"
    error = outcome.errors["k0Hats"]
    assert error.startswith("category 'Hats': Duplicate Name Exists Error")
    assert "Item 42 in QuickBooks has Name 'Hats'" in error
    assert "under category 9, not the top level" in error
    assert [x[4] for x in store.saved] == ["41"]  # only the adopted one is linked


def _process():
    store = FakeStore()
    run = SimpleNamespace(store=store, tenant_id="acme")
    process = ProductsProcess.__new__(ProductsProcess)
    process.run = run
    return process


def _record(mode="create"):
    return SimpleNamespace(source_id="v1", state={
        "mode": mode, "name": "Shirt", "item": {"sku": "A-1"},
        "existing": {"Id": "7"}, "xref_hash": "h"})


def test_an_item_name_clash_is_adopted_only_with_the_variants_sku():
    process = _process()
    record = _record()
    row = {"Id": "55", "Name": "Shirt", "Sku": "A-1"}
    adopted = WriteOutcome("v1", ADOPTED, "create", "Item", value=row,
                           reason="already in QuickBooks (Name exists)")
    assert process._written(record, adopted) == row and record.state["adopted"] is True
    fault = DuplicateName("Duplicate Name Exists Error", code=6240)
    refused = WriteOutcome("v1", REFUSED, "create", "Item", value={"Id": "56"}, fault=fault,
                           field="name", reason="Item 56 in QuickBooks has Name 'Shirt' but "
                                                "SKU B-2 (variant's SKU A-1); not adopted")
    with pytest.raises(RecordError) as caught:
        process._written(_record(), refused)
    assert str(caught.value).startswith("Name: QuickBooks refused the name 'Shirt' "
                                        "(taken meanwhile)")
    assert "Item 56" in str(caught.value) and "SKU B-2 (variant's SKU A-1)" in str(caught.value)
    failed = WriteOutcome("v1", FAILED, "create", "Item", fault=fault, field="name",
                          reason=str(fault))
    with pytest.raises(RecordError, match="taken meanwhile"):
        process._written(_record(), failed)
    written = WriteOutcome("v1", WRITTEN, "create", "Item", value={"Id": "57"})
    assert process._written(_record(), written) == {"Id": "57"}


def test_an_update_of_an_item_deleted_meanwhile_retires_it():
    process = _process()
    gone = WriteOutcome("v1", FAILED, "update", "Item",
                        fault=ObjectNotFound("Object Not Found", code=610))
    with pytest.raises(RecordError, match="deleted or made inactive"):
        process._written(_record("update"), gone)
    (saved,) = process.run.store.saved
    assert saved[:5] == ("acme", "variant", "v1", "Item", "7")
