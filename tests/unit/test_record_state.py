"""A flow's typed view of a record's state (koppel.steps.kernel.RecordState): declared
keys only, defaults, the underlying JSON dict shared and staged as it is."""

from __future__ import annotations

import json

import pytest

from koppel.steps.kernel import Record, RecordState


class Example(RecordState):
    entity: str
    paid: bool = False
    lines: list | None = None


def test_reads_and_writes_the_records_own_state():
    record = Record("1", {})
    state = Example(record)
    assert state.paid is False and state.lines is None  # defaults
    state.entity, state.paid = "RefundReceipt", True
    assert record.state == {"entity": "RefundReceipt", "paid": True}
    # staged as JSON between tasks and read back: the same view
    again = Record.from_json(json.loads(json.dumps(record.to_json())))
    assert (Example(again).entity, Example(again).paid) == ("RefundReceipt", True)
    assert Example(again).has("entity") and not Example(again).has("lines")


def test_a_misspelt_or_unset_key_is_named():
    record = Record("1", {})
    with pytest.raises(AttributeError, match="Example has no key 'entitty' .*entity, paid, lines"):
        Example(record).entitty = "x"
    assert record.state == {}
    with pytest.raises(AttributeError, match="Example.entity is not set yet"):
        Example(record).entity  # noqa: B018


def test_the_flows_declare_their_state():
    from koppel.flows.customers import CustomerState
    from koppel.flows.orders import OrderState
    from koppel.flows.orders_reverse_lightspeed import ReverseOrderState
    from koppel.flows.products import ItemState
    from koppel.flows.refunds import RefundState
    from koppel.flows.stock import StockState

    assert {"order", "doc_number", "hash", "item_ids", "customer"} <= set(OrderState._fields)
    assert {"entity", "original_type", "original_id", "doc_number"} <= set(RefundState._fields)
    assert {"order", "hash", "action", "order_id"} <= set(ReverseOrderState._fields)
    assert set(CustomerState._fields) == {"gone", "customer", "content_hash"}
    assert {"item", "hash", "mode", "existing", "name", "ended"} <= set(ItemState._fields)
    assert {"item", "change", "error", "skip"} <= set(StockState._fields)


def test_take_reads_and_removes_a_one_step_key():
    record = Record("1", {})
    Example(record).lines = [1, 2]
    assert Example(record).take("lines") == [1, 2]
    assert record.state == {} and Example(record).take("lines") is None
