"""The stock flow's QuickBooks writes go through the one writer (``koppel.hooks.qbo_writer``)
against a fake hook: one adjustment per chunk under ``request_id(tenant,
"InventoryAdjustment", run_id, <chunk key>)``, the same requests (ids, bodies, date) when
the load task is retried — on another day too —, the fallbacks (sparse ``QtyOnHand``
updates for a company without adjustments, one adjustment per item when the chunk's is
refused) under ids of their own, each refused item a ``QtyOnHand`` error of its record,
and a dry run that sends nothing."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from koppel.flows.base import Record
from koppel.flows.stock import StockProcess
from koppel.hooks.errors import QBOFault, QBOTransientError, ValidationFault
from koppel.hooks.quickbooks import BatchResult, request_id

TENANT = "acme"
RUN_ID = "scheduled__2026-12-01T10:00:00+00:00"
ACCOUNT = "88"


class FakeHook:
    """Batch writes answered from memory; ``fault_for(op)`` → a fault to answer instead.
    Look-ups fail the test: the stock load reads nothing (the exists-check read the
    items' SyncTokens and the adjustment account)."""

    request_id = staticmethod(request_id)

    def __init__(self, fault_for=lambda op: None) -> None:
        self.fault_for = fault_for
        self.batches: list[tuple[list, str | None]] = []
        self.next_id = 500

    def batch(self, ops, request_id=None):
        ops = list(ops)
        assert all(op.query is None for op in ops), "a look-up in a write batch"
        self.batches.append((ops, request_id))
        out = {}
        for op in ops:
            fault = self.fault_for(op)
            if fault is not None:
                out[op.bid] = BatchResult(op.bid, fault=fault)
                continue
            self.next_id += 1
            out[op.bid] = BatchResult(op.bid, value={"Id": str(self.next_id), **op.payload})
        return out

    def query_in(self, *args, **kwargs):  # pragma: no cover - must not be called
        raise AssertionError("the stock load looked something up")

    def create(self, *args, **kwargs):  # pragma: no cover - must not be called
        raise AssertionError("a write outside the writer")

    api = update = sparse_update = create


def _process(hook: FakeHook, *, dry_run: bool = False) -> StockProcess:
    settings = SimpleNamespace(timezone="Europe/Amsterdam",
                               products=SimpleNamespace(accounts=SimpleNamespace(expense=None)))
    run = SimpleNamespace(quickbooks=hook, tenant_id=TENANT, run_id=RUN_ID, dry_run=dry_run,
                          direction="lightspeed_to_quickbooks",
                          tenant=SimpleNamespace(settings=settings))
    process = StockProcess(run)
    process._account_id = ACCOUNT  # the exists-check's batch read it
    return process


def _record(vid: str, item_id: str, current: float, target: float,
            txn_date: str = "2026-12-01") -> Record:
    return Record(source_id=vid, source_type="variant", data={"sku": f"SKU-{vid}"}, state={
        "item": {"id": item_id, "sync_token": "3", "qty_on_hand": current},
        "change": {"current": current, "target": target, "qty_diff": target - current,
                   "reserved": 0.0, "txn_date": txn_date}})


def _records() -> list[Record]:
    return [_record("1", "11", 5, 8), _record("2", "12", 4, 1), _record("3", "13", 0, 2.5)]


def _unsupported(op):
    if op.entity == "InventoryAdjustment":
        return QBOFault("Unsupported Operation", code=500, detail="not on this plan")
    return None


def test_one_adjustment_per_chunk_under_the_chunk_request_id():
    hook = FakeHook()
    process = _process(hook)
    records = _records()
    result = process.load(records)
    (ops, rid), = hook.batches
    key = process._chunk_key(records)
    assert rid == request_id(TENANT, "InventoryAdjustment", RUN_ID, key)
    (op,) = ops
    assert (op.bid, op.operation, op.entity) == ("a", "create", "InventoryAdjustment")
    assert op.payload["TxnDate"] == "2026-12-01"
    assert op.payload["AdjustAccountRef"]["value"] == ACCOUNT
    diffs = {line["ItemAdjustmentLineDetail"]["ItemRef"]["value"]:
             float(line["ItemAdjustmentLineDetail"]["QtyDiff"]) for line in op.payload["Line"]}
    assert diffs == {"11": 3.0, "12": -3.0, "13": 2.5}
    assert [(e.source_id, e.action, e.target_id, e.reason) for e in result.ended] == [
        ("1", "updated", "11", "QtyOnHand 5 → 8"), ("2", "updated", "12", "QtyOnHand 4 → 1"),
        ("3", "updated", "13", "QtyOnHand 0 → 2.5")]
    assert {e.details["adjustment_id"] for e in result.ended} == {"501"}
    assert result.ended[0].details == {"from": 5, "to": 8, "qty_diff": 3, "reserved": 0.0,
                                       "method": "InventoryAdjustment", "adjustment_id": "501"}


def test_a_retried_load_sends_the_same_request_even_on_another_day(monkeypatch):
    """The load task retried (same staged records) sends the same body under the same id,
    so QuickBooks answers it from the first attempt; the adjustment's date is the one the
    exists-check fixed, not the retry's day. Other quantities are another request."""
    from koppel.flows import stock

    hook = FakeHook()
    _process(hook).load(_records())
    monkeypatch.setattr(stock.StockProcess, "_today",
                        lambda self: __import__("datetime").date(2026, 12, 2))
    _process(hook).load(_records())
    (first, first_id), (again, again_id) = hook.batches
    assert again_id == first_id
    assert [o.payload for o in again] == [o.payload for o in first]
    assert [o.bid for o in again] == [o.bid for o in first]
    changed = _records()
    changed[0].state["change"].update(target=9.0, qty_diff=4.0)
    _process(hook).load(changed)
    assert hook.batches[-1][1] != first_id


def test_a_company_without_adjustments_gets_sparse_updates_against_the_read_version():
    hook = FakeHook(fault_for=lambda op: _unsupported(op) or (
        ValidationFault("Invalid Number", code=2050, detail="QtyOnHand too large",
                        element="QtyOnHand") if op.payload.get("Id") == "12" else None))
    process = _process(hook)
    records = _records()
    result = process.load(records)
    assert len(hook.batches) == 2  # the refused adjustment, then one batch of updates
    ops, rid = hook.batches[1]
    key = process._chunk_key(records)
    assert rid == request_id(TENANT, "Item:QtyOnHand", RUN_ID, key)
    assert [(o.bid, o.operation, o.entity) for o in ops] == [
        ("q0", "update", "Item"), ("q1", "update", "Item"), ("q2", "update", "Item")]
    assert ops[0].payload == {"Id": "11", "SyncToken": "3", "sparse": True, "QtyOnHand": 8}
    outcome = {e.source_id: e for e in result.ended}
    assert outcome["1"].action == "updated" and outcome["1"].details["method"] == "QtyOnHand"
    assert outcome["2"].action == "failed"
    assert outcome["2"].reason.startswith("QtyOnHand: QuickBooks fault 2050")
    assert outcome["3"].action == "updated"


def test_a_refused_chunk_adjustment_goes_again_one_per_item_and_only_the_faulty_fails():
    def fault_for(op):
        lines = op.payload.get("Line") or []
        items = {line["ItemAdjustmentLineDetail"]["ItemRef"]["value"] for line in lines}
        if "12" in items:
            return ValidationFault("Invalid Reference Id", code=2500,
                                   detail="Invalid Reference Id : Item 12", element="ItemRef")
        return None

    hook = FakeHook(fault_for=fault_for)
    process = _process(hook)
    records = _records()
    result = process.load(records)
    assert len(hook.batches) == 2
    ops, rid = hook.batches[1]
    assert rid == request_id(TENANT, "InventoryAdjustment:each", RUN_ID,
                             process._chunk_key(records))
    assert [o.bid for o in ops] == ["a0", "a1", "a2"]
    outcome = {e.source_id: e for e in result.ended}
    assert (outcome["1"].action, outcome["3"].action) == ("updated", "updated")
    assert outcome["1"].details["adjustment_id"] != outcome["3"].details["adjustment_id"]
    assert outcome["2"].action == "failed"
    assert outcome["2"].reason == ("QtyOnHand: QuickBooks fault 2500: "
                                   "Invalid Reference Id : Item 12")


def test_a_single_refused_record_fails_without_another_request():
    hook = FakeHook(fault_for=lambda op: ValidationFault(
        "Invalid Reference Id", code=2500, detail="Item 11 is inactive"))
    result = _process(hook).load([_record("1", "11", 5, 8)])
    assert len(hook.batches) == 1
    (entry,) = result.ended
    assert (entry.action, entry.reason) == ("failed",
                                            "QtyOnHand: QuickBooks fault 2500: Item 11 is inactive")


def test_quickbooks_down_fails_the_task_not_the_records():
    def down(op):
        raise QBOTransientError("HTTP 503", method="POST", path="batch", status=503)

    hook = FakeHook(fault_for=down)
    with pytest.raises(QBOTransientError):
        _process(hook).load(_records())


def test_a_dry_run_sends_nothing_and_says_what_it_would_do():
    hook = FakeHook()
    result = _process(hook, dry_run=True).load(_records())
    assert hook.batches == []
    assert [(e.action, e.reason) for e in result.ended][0] == (
        "skipped", "dry run: would adjust QtyOnHand of Item 11 from 5 to 8")
