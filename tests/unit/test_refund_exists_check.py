"""The refunds exists-check (``RefundsProcess._read_originals``): a refund document found
in QuickBooks under the credit's DocNumber is adopted only when it is that credit's
refund (``refund_mismatch``: its total), as the writer adopts; another document under
that number is a ``conflict`` naming both totals, never linked."""

from __future__ import annotations

from types import SimpleNamespace

from koppel.domain.records import MappedOrder
from koppel.flows.base import Record, StepResult, jsonable
from koppel.flows.refunds import RefundsProcess
from koppel.hooks.quickbooks import BatchResult
from koppel.tenants.model import Settings


class FakeHook:
    """Answers the exists-check's look-ups (plain queries, or a batch): the booked original by Id and
    ``refunds`` (DocNumber → row) by DocNumber; reference queries find nothing."""

    def __init__(self, refunds: dict[str, dict]) -> None:
        self.refunds = refunds
        self.batches: list[list] = []
        self.queries: list[str] = []

    # look-ups go through the hook's one policy (plain queries, a batch above 12)
    from koppel.hooks.quickbooks import QuickBooksHook as _Real
    query_many = _Real.query_many
    plain_lookups_max = _Real.plain_lookups_max
    limits = _Real().limits

    def query(self, sql):
        self.queries.append(sql)
        return self._answer(sql)

    def batch(self, ops, request_id=None):
        ops = list(ops)
        assert all(op.query for op in ops) and request_id is None
        self.batches.append(ops)
        return {op.bid: BatchResult(op.bid, value=self._answer(op.query)) for op in ops}

    def _answer(self, sql: str) -> dict:
        if "FROM SalesReceipt" in sql:
            return {"SalesReceipt": [{"Id": "501", "DocNumber": "ORD1001", "Line": [],
                                      "CustomerRef": {"value": "9"}}]}
        if "FROM RefundReceipt" in sql:
            found = [row for number, row in self.refunds.items() if f"'{number}'" in sql]
            return {"RefundReceipt": found} if found else {}
        return {}


class FakeStore:
    def __init__(self) -> None:
        self.xrefs: list[tuple] = []
        self.staged: list[tuple] = []

    def save_xref(self, *args, **kwargs):
        self.xrefs.append(args)

    def stage(self, *args):
        self.staged.append(args)


def _run(hook):
    return SimpleNamespace(tenant=SimpleNamespace(settings=Settings()), tenant_id="acme",
                           run_key="run-1", dry_run=False, quickbooks=hook, store=FakeStore())


def _record() -> Record:
    order = MappedOrder.model_validate({
        "source_id": "1001", "number": "ORD1001", "created_at": "2025-06-01T10:00:00+00:00",
        "status": "processing_awaiting_shipment",
        "lines": [{"source_id": 1, "sku": "A", "name": "Shirt", "quantity": 1,
                   "amount_excl": "10.00", "amount_incl": "12.10", "tax_rate": 21}],
        "total_excl": "10.00", "total_incl": "12.10"})
    credit = {"order_id": "1001", "number": "C1", "sequence": 1, "total_incl": "12.10"}
    return Record("1001:C1", {"credit": credit}, source_type="refund",
                  state={"order": jsonable(order), "original_type": "SalesReceipt",
                         "original_id": "501", "original_paid": True})


def _check(refunds: dict[str, dict]):
    hook = FakeHook(refunds)
    process = RefundsProcess(_run(hook))
    result = StepResult()
    process._read_originals([_record()], result)
    # the booked original by Id, refunds under the number and the six reference lists
    # (items, payment methods, terms, accounts, …): eight plain queries — fewer than the 12
    # that cost as much as one batch request under the limits — and no batch
    assert hook.batches == [] and len(hook.queries) == 8
    assert hook.queries[:2] == ["SELECT * FROM SalesReceipt WHERE Id IN ('501') MAXRESULTS 1000",
                                "SELECT * FROM RefundReceipt WHERE DocNumber IN ('ORD1001-R1') "
                                "MAXRESULTS 1000"]
    return process, result


def test_a_refund_with_the_credits_total_is_adopted():
    process, result = _check({"ORD1001-R1": {"Id": "77", "DocNumber": "ORD1001-R1",
                                             "TotalAmt": 12.10}})
    (ended,) = result.ended
    assert ended.action == "skipped" and ended.target_id == "77"
    assert ended.reason == "already in QuickBooks (RefundReceipt ORD1001-R1)"
    assert [x[:5] for x in process.run.store.xrefs] == [
        ("acme", "refund", "1001:C1", "RefundReceipt", "77")]
    assert result.passed == []


def test_another_document_under_the_number_is_a_conflict_with_both_totals():
    process, result = _check({"ORD1001-R1": {"Id": "78", "DocNumber": "ORD1001-R1",
                                             "TotalAmt": 99.00}})
    (ended,) = result.ended
    assert ended.action == "conflict" and ended.target_id == "78"
    assert ended.reason == ("RefundReceipt 78 in QuickBooks has DocNumber ORD1001-R1 but "
                            "total 99.00 (credit 12.10); not adopted")
    assert ended.details["booked_total"] == "99.00"
    assert ended.details["credit_total"] == "12.10"
    assert ended.details["verification"] is True and ended.details["order_id"] == "1001"
    assert process.run.store.xrefs == []  # never linked to a document that is not its own
    assert result.passed == []


def test_no_refund_under_the_number_passes_on_to_the_load():
    process, result = _check({})
    assert result.ended == [] and [r.source_id for r in result.passed] == ["1001:C1"]
    assert process.run.store.xrefs == []
