"""The one QuickBooks writer (``koppel.hooks.qbo_writer``) against a fake hook: batches of
at most 30 writes, no request on a dry run, deterministic request ids, duplicate
DocNumber recovery (adopt only what matches), per-item faults as per-key errors, and
every answer verified against the shop's figures."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from koppel.domain.verify import Expected
from koppel.hooks.errors import (
    DuplicateDocNumber,
    DuplicateName,
    ObjectNotFound,
    QBOAuthFault,
    ValidationFault,
)
from koppel.hooks.qbo_writer import (
    ADOPTED,
    CONFLICT,
    DRY_RUN,
    FAILED,
    GONE,
    REFUSED,
    WRITTEN,
    QuickBooksWriter,
    WriteOp,
)
from koppel.hooks.quickbooks import BatchResult, request_id

D = Decimal


class FakeHook:
    """Writes answered from memory. ``faults``: bId → fault to answer instead;
    ``documents``: (entity, DocNumber) → row a DocNumber look-up finds; ``current``:
    (entity, Id) → row an Id look-up finds; ``booked``: fields merged into every answer
    (what QuickBooks' own arithmetic made of the document); ``names``: entity → rows a
    name query (``query``, or a batch of queries) answers from."""

    request_id = staticmethod(request_id)

    def __init__(self, *, faults=None, documents=None, current=None, booked=None,
                 void_fault=None, names=None) -> None:
        self.faults = faults or {}
        self.names = names or {}
        self.queries: list[str] = []
        self.query_batches: list[list[str]] = []
        self.documents = documents or {}
        self.current = current or {}
        self.booked = booked or {}
        self.void_fault = void_fault
        self.batches: list[tuple[list, str | None]] = []
        self.lookups: list[tuple[str, str, list]] = []
        self.calls: list[tuple[str, dict, dict, str | None, str | None]] = []
        self.next_id = 100

    def batch(self, ops, request_id=None):
        ops = list(ops)
        if all(op.query is not None for op in ops):  # a batch of look-ups
            assert request_id is None
            self.query_batches.append([op.query for op in ops])
            return {op.bid: BatchResult(op.bid, value=self._rows(op.query)) for op in ops}
        assert all(op.query is None for op in ops), "a look-up in a write batch"
        assert len(ops) <= 30
        self.batches.append((ops, request_id))
        out = {}
        for op in ops:
            if op.bid in self.faults:
                out[op.bid] = BatchResult(op.bid, fault=self.faults[op.bid])
                continue
            self.next_id += 1
            out[op.bid] = BatchResult(op.bid, value={"Id": str(self.next_id), **op.payload,
                                                     **self.booked})
        return out

    def query(self, sql):
        """``SELECT * FROM <entity> WHERE <field> IN ('a', 'b') …`` over ``names``."""
        self.queries.append(sql)
        return self._rows(sql)

    def query_many(self, queries, **_kw):
        """Named look-ups as ``QuickBooksHook.query_many`` makes them: one plain query, or
        a batch of queries."""
        if len(queries) == 1:
            (name, sql), = queries.items()
            return {name: next(iter(self.query(sql).values()), [])}
        self.query_batches.append(list(queries.values()))
        return {name: next(iter(self._rows(sql).values()), []) for name, sql in queries.items()}

    def _rows(self, sql):
        import re

        entity, field_name, listed = re.match(
            r"SELECT \* FROM (\w+) WHERE (\w+) IN \((.*)\) MAXRESULTS 1000$", sql).groups()
        wanted = {v.replace("\\'", "'") for v in re.findall(r"'((?:[^'\\]|\\.)*)'", listed)}
        rows = [r for r in self.names.get(entity, []) if r.get(field_name) in wanted]
        return {entity: rows} if rows else {}

    def query_in(self, entity, field_name, values, **_kw):
        values = list(values)
        self.lookups.append((entity, field_name, values))
        table = self.documents if field_name == "DocNumber" else self.current
        return [table[(entity, str(v))] for v in values if (entity, str(v)) in table]

    def api(self, method, endpoint, *, body=None, params=None, request_id=None,
            record_id=None):
        self.calls.append((endpoint, dict(body or {}), dict(params or {}), request_id,
                           record_id))
        if self.void_fault is not None:
            raise self.void_fault
        return {endpoint.capitalize() if endpoint != "salesreceipt" else "SalesReceipt":
                {**body, "TotalAmt": 0}}


def _doc(key: str, number: str, total: str = "12.10", **kw) -> WriteOp:
    return WriteOp(key=key, operation="create", entity="SalesReceipt",
                   payload={"DocNumber": number, "Line": []}, request_key=(key, "h" + key),
                   expected=Expected(total=D(total), vat={"21": D("2.10")}),
                   doc_number=number, **kw)


def _answer(total: str = "12.10", vat: str = "2.10") -> dict:
    return {"TotalAmt": total, "TxnTaxDetail": {"TaxLine": [
        {"Amount": vat, "TaxLineDetail": {"TaxPercent": 21}}]}}


def test_batches_are_filled_to_30_and_every_key_gets_its_outcome():
    hook = FakeHook(booked=_answer())
    ops = [_doc(str(n), f"D{n}") for n in range(65)]
    outcomes = QuickBooksWriter(hook, tenant="acme").write(ops, scope="SalesReceipt",
                                                          bid_prefix="d")
    assert [len(batch) for batch, _rid in hook.batches] == [30, 30, 5]
    assert [op.bid for op in hook.batches[2][0]] == ["d60", "d61", "d62", "d63", "d64"]
    assert list(outcomes) == [str(n) for n in range(65)]
    assert {o.status for o in outcomes.values()} == {WRITTEN}
    assert len({o.target_id for o in outcomes.values()}) == 65
    assert hook.lookups == []  # nothing looked up for plain creates


def test_a_dry_run_sends_nothing_and_says_what_it_would_do():
    hook = FakeHook()
    ops = [_doc("1", "D1", summary="create SalesReceipt D1 (total 12.10)"),
           _doc("2", "D2")]
    outcomes = QuickBooksWriter(hook, tenant="acme", dry_run=True).write(ops)
    assert hook.batches == [] and hook.lookups == [] and hook.calls == []
    assert outcomes["1"].status == DRY_RUN
    assert outcomes["1"].reason == "dry run: would create SalesReceipt D1 (total 12.10)"
    assert outcomes["2"].reason == "dry run: would create SalesReceipt"
    # an update or void reads no current version either
    update = WriteOp(key="3", operation="void", entity="Invoice", target_id="77",
                     request_key=("77",))
    assert QuickBooksWriter(hook, tenant="acme", dry_run=True).write([update])["3"].reason \
        == "dry run: would void Invoice 77"
    assert hook.lookups == [] and hook.calls == []


def test_request_ids_are_deterministic_and_follow_the_content():
    def rid(ops, **kw):
        hook = FakeHook(booked=_answer())
        QuickBooksWriter(hook, tenant="acme").write(ops, scope="SalesReceipt", **kw)
        return [r for _ops, r in hook.batches]

    ops = [_doc("1", "D1"), _doc("2", "D2")]
    first = rid(ops, bid_prefix="d")
    assert first == rid(list(ops), bid_prefix="d")  # a retried task: the same request id
    # the base id is the one the flows always used: tenant, scope, operation, each key
    assert first == [request_id("acme", "SalesReceipt", "create", "1:h1", "2:h2")]
    assert rid([_doc("1", "D1")], bid_prefix="d") != first  # other writes: another id
    assert rid(ops, bid_prefix="d") != rid(ops[::-1], bid_prefix="d")
    other = FakeHook(booked=_answer())
    QuickBooksWriter(other, tenant="other").write(ops, scope="SalesReceipt", bid_prefix="d")
    assert other.batches[0][1] != first[0]


def test_an_update_goes_against_the_current_version_whose_token_is_in_the_id():
    current = {("Invoice", "7"): {"Id": "7", "SyncToken": "3"}}
    hook = FakeHook(current=current)
    op = WriteOp(key="o1", operation="update", entity="Invoice", target_id="7",
                 payload={"Line": [], "sparse": False}, request_key=("o1", "h"))
    gone = WriteOp(key="o2", operation="update", entity="Invoice", target_id="8",
                   payload={"Line": []}, request_key=("o2", "h"))
    outcomes = QuickBooksWriter(hook, tenant="acme").write([op, gone], bid_prefix="u")
    assert hook.lookups == [("Invoice", "Id", ["7", "8"])]
    (sent,), rid = hook.batches[0]
    assert sent.bid == "u0" and sent.payload["SyncToken"] == "3" and sent.payload["Id"] == "7"
    assert rid == request_id("acme", "Invoice", "update", "o1:h:3")
    assert outcomes["o1"].status == WRITTEN
    assert outcomes["o2"].status == GONE and "Invoice 8" in outcomes["o2"].reason


def test_a_void_is_one_request_with_its_own_deterministic_id():
    current = {("SalesReceipt", "5"): {"Id": "5", "SyncToken": "2"},
               ("Invoice", "6"): {"Id": "6", "SyncToken": "0"}}
    hook = FakeHook(current=current)
    ops = [WriteOp(key="a", operation="void", entity="SalesReceipt", target_id="5",
                   request_key=("5",)),
           WriteOp(key="b", operation="void", entity="Invoice", target_id="6",
                   request_key=("6",))]
    outcomes = QuickBooksWriter(hook, tenant="acme").write(ops)
    assert hook.batches == []
    (ep1, body1, params1, rid1, rec1), (ep2, _b2, params2, rid2, _r2) = hook.calls
    assert (ep1, params1, rec1) == ("salesreceipt", {"operation": "update", "include": "void"}, "a")
    assert body1 == {"Id": "5", "SyncToken": "2", "sparse": True}
    assert rid1 == request_id("acme", "SalesReceipt", "void", "5", "2")
    assert (ep2, params2) == ("invoice", {"operation": "void"})
    assert rid2 == request_id("acme", "Invoice", "void", "6", "0")
    assert {o.status for o in outcomes.values()} == {WRITTEN}


def test_a_refused_void_is_that_keys_error_and_auth_raises():
    current = {("Invoice", "6"): {"Id": "6", "SyncToken": "0"}}
    op = WriteOp(key="b", operation="void", entity="Invoice", target_id="6")
    fault = ValidationFault("This invoice has payments applied", code=6000)
    outcome = QuickBooksWriter(FakeHook(current=current, void_fault=fault),
                               tenant="acme").write([op])["b"]
    assert outcome.status == FAILED and outcome.code == 6000
    assert "QBO fault 6000" in outcome.reason and "payments applied" in outcome.reason
    with pytest.raises(QBOAuthFault):
        QuickBooksWriter(FakeHook(current=current, void_fault=QBOAuthFault("no", code=100)),
                         tenant="acme").write([op])


def test_a_duplicate_number_adopts_the_document_that_matches():
    existing = {"Id": "55", "DocNumber": "D1", "TotalAmt": "12.10"}
    hook = FakeHook(faults={"d0": DuplicateDocNumber("Duplicate Document Number Error",
                                                     code=6140)},
                    documents={("SalesReceipt", "D1"): existing}, booked=_answer())
    ops = [_doc("1", "D1", matches=lambda row: None), _doc("2", "D2")]
    outcomes = QuickBooksWriter(hook, tenant="acme").write(ops, bid_prefix="d")
    assert hook.lookups == [("SalesReceipt", "DocNumber", ["D1"])]
    assert outcomes["1"].status == ADOPTED and outcomes["1"].target_id == "55"
    assert outcomes["1"].reason == "already in QuickBooks (DocNumber exists)"
    assert outcomes["2"].status == WRITTEN


def test_a_duplicate_number_on_another_document_is_refused_naming_both():
    existing = {"Id": "55", "DocNumber": "D1", "TotalAmt": "99.00"}
    fault = ValidationFault("Duplicate Document Number Error", code=6210)  # Intuit's list
    hook = FakeHook(faults={"d0": fault}, documents={("SalesReceipt", "D1"): existing})

    def matches(row):
        return None if row["TotalAmt"] == "12.10" else f"total {row['TotalAmt']} (shop 12.10)"

    outcome = QuickBooksWriter(hook, tenant="acme").write(
        [_doc("1", "D1", matches=matches)], bid_prefix="d")["1"]
    assert outcome.status == REFUSED and outcome.target_id == "55"
    assert outcome.reason == ("SalesReceipt 55 in QuickBooks has DocNumber D1 but total 99.00 "
                              "(shop 12.10); not adopted")
    # the number not found after all: the fault stands, on the number
    lost = FakeHook(faults={"d0": DuplicateDocNumber("Duplicate", code=6140)})
    outcome = QuickBooksWriter(lost, tenant="acme").write([_doc("1", "D1")],
                                                          bid_prefix="d")["1"]
    assert outcome.status == FAILED and outcome.field == "number" and outcome.code == 6140


def test_each_item_fault_is_its_keys_error_with_code_message_and_element():
    fault = ValidationFault("Invalid Reference Id", code=2500, detail="Item 9 not found",
                            element="ItemRef", method="POST", path="batch", record_id="d1")
    hook = FakeHook(faults={"d1": fault, "d2": ObjectNotFound("Object Not Found", code=610),
                            "d3": DuplicateDocNumber("Duplicate", code=6140)},
                    booked=_answer())
    unnumbered = replace(_doc("4", "D4"), doc_number=None)  # no number: nothing to recover
    outcomes = QuickBooksWriter(hook, tenant="acme").write(
        [_doc("1", "D1"), _doc("2", "D2"), _doc("3", "D3"), unnumbered], bid_prefix="d")
    assert outcomes["1"].status == WRITTEN
    bad = outcomes["2"]
    assert bad.status == FAILED and bad.code == 2500 and bad.element == "ItemRef"
    assert "QBO fault 2500" in bad.reason and "Invalid Reference Id" in bad.reason
    assert "(element ItemRef)" in bad.reason and bad.field is None
    assert outcomes["3"].status == FAILED and outcomes["3"].code == 610
    assert outcomes["4"].status == FAILED and outcomes["4"].code == 6140
    assert hook.lookups == []  # no duplicate number to recover: nothing looked up


def test_every_answer_is_verified_and_a_difference_is_a_conflict_with_both_figures():
    hook = FakeHook(booked=_answer(total="12.11", vat="2.11"))
    outcome = QuickBooksWriter(hook, tenant="acme").write([_doc("1", "D1")],
                                                          bid_prefix="d")["1"]
    assert outcome.status == CONFLICT and outcome.written
    assert outcome.problems == ("total 12.11 (shop 12.10)", "VAT 21% 2.11 (shop 2.10)")
    assert outcome.verification.figures() == {
        "booked": {"total": "12.11", "vat": {"21": "2.11"}},
        "shop": {"total": "12.10", "vat": {"21": "2.10"}}}
    assert "12.11" in outcome.reason and "12.10" in outcome.reason
    assert outcome.booked.total == D("12.11")
    same = QuickBooksWriter(FakeHook(booked=_answer()), tenant="acme").write(
        [_doc("1", "D1")], bid_prefix="d")["1"]
    assert same.status == WRITTEN and same.problems == ()


def test_calls_that_cannot_be_sent_are_refused():
    writer = QuickBooksWriter(FakeHook(), tenant="acme")
    with pytest.raises(ValueError, match="unique"):
        writer.write([_doc("1", "D1"), _doc("1", "D2")])
    with pytest.raises(ValueError, match="one operation"):
        writer.write([_doc("1", "D1"), WriteOp(key="2", operation="void", entity="Invoice",
                                               target_id="3")])
    with pytest.raises(ValueError, match="target_id"):
        writer.write([WriteOp(key="2", operation="update", entity="Invoice")])
    with pytest.raises(ValueError, match="scope"):
        writer.write([_doc("1", "D1"), WriteOp(key="2", operation="create",
                                               entity="CreditMemo", payload={})])
    assert writer.write([]) == {}


def test_the_writer_sits_below_the_flows():
    import ast
    import inspect

    import koppel.hooks.qbo_writer as module

    tree = ast.parse(inspect.getsource(module))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for alias in node.names}
    assert not {name for name in imported if name and name.startswith("koppel.flows")}


def test_orders_items_go_through_the_writer_and_a_refused_item_fails_its_order():
    """The orders flow's missing items (``unknown_sku: create_item``): one batch with the
    request id the flow always used; an item QuickBooks refuses fails only the order that
    needs it, naming the SKU and the fault (not a later "no QBO item")."""
    import contextlib
    from types import SimpleNamespace

    from koppel.domain.records import MappedOrder
    from koppel.flows.base import Record, StepResult, jsonable
    from koppel.flows.orders import OrdersProcess
    from koppel.tenants.model import Settings

    def order(source_id: str, sku: str) -> MappedOrder:
        return MappedOrder.model_validate({
            "source_id": source_id, "number": f"ORD{source_id}",
            "created_at": "2024-03-31T23:30:00+00:00", "status": "processing_awaiting_shipment",
            "lines": [{"source_id": 1, "sku": sku, "name": "Shirt", "quantity": 1,
                       "amount_excl": "10.00", "amount_incl": "12.10", "tax_rate": 21}],
            "total_excl": "10.00", "total_incl": "12.10"})

    fault = ValidationFault("String length is either shorter or longer than supported",
                            code=2050, element="Sku")
    hook = FakeHook(faults={"i1": fault})
    run = SimpleNamespace(tenant=SimpleNamespace(settings=Settings(unknown_sku="create_item")),
                          tenant_id="acme", dry_run=False, quickbooks=hook,
                          store=SimpleNamespace(lock=lambda name: contextlib.nullcontext()))
    records = [Record(sid, {}, state={"order": jsonable(order(sid, sku)), "create_items": [0],
                                      "item_ids": {}}) for sid, sku in (("1", "A"), ("2", "B"))]
    result = StepResult()
    refs = SimpleNamespace(account_id=lambda name: "79")
    refused = OrdersProcess(run)._create_missing_items(records, refs, result)
    (batch, rid), = hook.batches
    assert [(op.bid, op.payload["Sku"]) for op in batch] == [("i0", "A"), ("i1", "B")]
    assert rid == request_id("acme", "Item", "create", "A", "B")
    assert refused == {"2"} and records[0].state["item_ids"] == {"A": "101"}
    (ended,) = result.ended
    assert ended.source_id == "2" and ended.action == "failed"
    assert "SKU 'B'" in ended.reason and "QBO fault 2050" in ended.reason
    assert ended.reason.startswith("lines[0].sku: ")


# -- duplicate names (6240) ------------------------------------------------------------------

def _customer(key: str, name: str, email: str, **kw) -> WriteOp:
    def matches(row):
        have = (row.get("PrimaryEmailAddr") or {}).get("Address")
        return None if have == email else "its e-mail address differs"

    return WriteOp(key=key, operation="create", entity="Customer",
                   payload={"DisplayName": name, "PrimaryEmailAddr": {"Address": email}},
                   name=name, matches=matches, **kw)


def test_a_duplicate_name_adopts_the_object_the_caller_accepts():
    ours = {"Id": "31", "DisplayName": "Jan O'Brien", "PrimaryEmailAddr": {"Address": "j@x.nl"}}
    hook = FakeHook(faults={"c0": DuplicateName("Duplicate Name Exists Error", code=6240)},
                    names={"Customer": [ours]})
    outcomes = QuickBooksWriter(hook, tenant="acme").write(
        [_customer("a", "Jan O'Brien", "j@x.nl"), _customer("b", "Piet", "p@x.nl")],
        bid_prefix="c")
    # the name looked up once, by DisplayName, its quote escaped as the hook escapes it
    assert hook.queries == ["SELECT * FROM Customer WHERE DisplayName IN ('Jan O\\'Brien') "
                            "MAXRESULTS 1000"]
    assert outcomes["a"].status == ADOPTED and outcomes["a"].target_id == "31"
    assert outcomes["a"].reason == "already in QuickBooks (DisplayName exists)"
    assert outcomes["b"].status == WRITTEN


def test_a_duplicate_name_on_another_object_is_refused_naming_both():
    theirs = {"Id": "32", "DisplayName": "Jan", "PrimaryEmailAddr": {"Address": "x@y.nl"}}
    hook = FakeHook(faults={"c0": DuplicateName("Duplicate Name Exists Error", code=6240)},
                    names={"Customer": [theirs]})
    outcome = QuickBooksWriter(hook, tenant="acme").write(
        [_customer("a", "Jan", "j@x.nl")], bid_prefix="c")["a"]
    assert outcome.status == REFUSED and outcome.target_id == "32" and outcome.code == 6240
    assert outcome.field == "name"
    assert outcome.reason == ("Customer 32 in QuickBooks has DisplayName 'Jan' but its e-mail "
                              "address differs; not adopted")


def test_a_duplicate_name_nobody_can_vouch_for_or_find_stands():
    fault = DuplicateName("Duplicate Name Exists Error", code=6240)
    # held by an object a query does not find (a vendor, an inactive customer): it stands
    hook = FakeHook(faults={"c0": fault})
    outcome = QuickBooksWriter(hook, tenant="acme").write(
        [_customer("a", "Jan", "j@x.nl")], bid_prefix="c")["a"]
    assert outcome.status == FAILED and outcome.field == "name" and outcome.code == 6240
    assert len(hook.queries) == 1
    # no ``matches``: nothing to adopt by, so nothing is looked up either
    hook = FakeHook(faults={"c0": fault}, names={"Item": [{"Id": "5", "Name": "Jan"}]})
    op = WriteOp(key="a", operation="create", entity="Item", payload={"Name": "Jan"},
                 name="Jan")
    outcome = QuickBooksWriter(hook, tenant="acme").write([op], bid_prefix="c")["a"]
    assert outcome.status == FAILED and outcome.field == "name" and hook.queries == []
    # a create without ``name`` is not recovered at all: the fault is the key's error
    plain = WriteOp(key="a", operation="create", entity="Item", payload={"Name": "Jan"},
                    matches=lambda row: None)
    outcome = QuickBooksWriter(FakeHook(faults={"c0": fault}), tenant="acme").write(
        [plain], bid_prefix="c")["a"]
    assert outcome.status == FAILED and outcome.field is None


def test_names_of_several_entities_are_looked_up_in_one_batch_of_queries():
    fault = DuplicateName("Duplicate Name Exists Error", code=6240)
    hook = FakeHook(faults={"i0": fault, "p0": fault},
                    names={"Item": [{"Id": "8", "Name": "Verzending", "Type": "Service"}],
                           "PaymentMethod": [{"Id": "9", "Name": "iDEAL"}]})
    accept = lambda row: None  # noqa: E731
    ops = [WriteOp(key="item", operation="create", entity="Item", bid="i0",
                   payload={"Name": "Verzending"}, name="Verzending", matches=accept),
           WriteOp(key="pm", operation="create", entity="PaymentMethod", bid="p0",
                   payload={"Name": "iDEAL"}, name="iDEAL", matches=accept)]
    outcomes = QuickBooksWriter(hook, tenant="acme").write(ops, id_parts=("helpers", "x"))
    assert {k: (o.status, o.target_id) for k, o in outcomes.items()} == {
        "item": (ADOPTED, "8"), "pm": (ADOPTED, "9")}
    assert hook.queries == []  # not a query each: one batch request of both
    ((item_sql, pm_sql),) = hook.query_batches
    assert item_sql.startswith("SELECT * FROM Item WHERE Name IN ('Verzending')")
    assert pm_sql.startswith("SELECT * FROM PaymentMethod WHERE Name IN ('iDEAL')")
    assert hook.batches[0][1] == request_id("acme", "helpers", "x")


def test_creates_and_updates_share_a_batch_with_the_callers_ids():
    """Products send creates and updates in one batch, their items named ``c<n>``/``u<n>``,
    under the request id they always used (``request_id(tenant, run_key, "items")``)."""
    hook = FakeHook()
    ops = [WriteOp(key="v1", operation="create", entity="Item", bid="c0",
                   payload={"Name": "Shirt", "Sku": "A"}),
           WriteOp(key="v2", operation="update", entity="Item", bid="u1", target_id="7",
                   payload={"Id": "7", "SyncToken": "2", "sparse": True, "Name": "Hat"})]
    outcomes = QuickBooksWriter(hook, tenant="acme").write(ops, id_parts=("run-1", "items"))
    ((sent, rid),) = hook.batches
    assert [(op.bid, op.operation) for op in sent] == [("c0", "create"), ("u1", "update")]
    assert rid == request_id("acme", "run-1", "items")
    assert hook.lookups == []  # the update carries its SyncToken: no version read
    assert {o.status for o in outcomes.values()} == {WRITTEN}
    with pytest.raises(ValueError, match="batch item ids"):
        QuickBooksWriter(hook, tenant="acme").write([replace(ops[1], bid="c0"), ops[0]])


# -- attachments ---------------------------------------------------------------------------

class UploadHook:
    """``send`` of ``POST /upload`` answered with ``answer`` (or raising ``error``)."""

    request_id = staticmethod(request_id)
    company_url = "https://qbo.test/v3/company/1"

    def __init__(self, answer=None, error=None):
        self.answer = answer if answer is not None else {
            "AttachableResponse": [{"Attachable": {"Id": "900", "FileName": "a-1.png"}}]}
        self.error = error
        self.sent: list[tuple[str, dict, bytes, dict]] = []

    def send(self, method, url, *, params=None, content=None, headers=None, record_id=None):
        import json
        from types import SimpleNamespace

        self.sent.append((url, dict(params or {}), content, dict(headers or {})))
        if self.error is not None:
            raise self.error
        text = json.dumps(self.answer)
        return SimpleNamespace(text=text, content=text.encode(), status_code=200)


def test_an_attachment_is_one_upload_under_the_callers_request_id():
    hook = UploadHook()
    writer = QuickBooksWriter(hook, tenant="acme")
    outcome = writer.attach("v1:img", entity="Item", entity_id="7", file_name="a-1.png",
                            content=b"\x89PNG", id_parts=("image", "v1", "7", "d1"))
    assert outcome.status == WRITTEN and outcome.target_id == "900"
    ((url, params, body, headers),) = hook.sent
    assert url == "https://qbo.test/v3/company/1/upload"
    assert params == {"requestid": request_id("acme", "image", "v1", "7", "d1")}
    assert b'"EntityRef": {"type": "Item", "value": "7"}' in body
    assert b"image/png" in body and headers["Content-Type"].startswith("multipart/form-data")
    # the same upload again: the same request (QuickBooks answers it from the first)
    writer.attach("v1:img", entity="Item", entity_id="7", file_name="a-1.png",
                  content=b"\x89PNG", id_parts=("image", "v1", "7", "d1"))
    assert hook.sent[1][1] == params and hook.sent[1][2] == body


def test_an_attachment_fault_is_its_keys_error_a_dry_run_sends_nothing_and_auth_raises():
    refused = UploadHook(answer={"AttachableResponse": [{"Fault": {"Error": [
        {"Message": "File too large", "code": "6000"}], "type": "ValidationFault"}}]})
    outcome = QuickBooksWriter(refused, tenant="acme").attach(
        "k", entity="Item", entity_id="7", file_name="a.jpg", content=b"x",
        id_parts=("image", "v1", "7", "d"))
    assert outcome.status == FAILED and "File too large" in outcome.fault.message
    quiet = UploadHook()
    outcome = QuickBooksWriter(quiet, tenant="acme", dry_run=True).attach(
        "k", entity="Item", entity_id="7", file_name="a.jpg", content=b"x",
        id_parts=("image", "v1", "7", "d"))
    assert outcome.status == DRY_RUN and quiet.sent == []
    assert outcome.reason == "dry run: would attach a.jpg to Item 7"
    with pytest.raises(QBOAuthFault):
        QuickBooksWriter(UploadHook(error=QBOAuthFault("no", code=100)), tenant="acme").attach(
            "k", entity="Item", entity_id="7", file_name="a.jpg", content=b"x",
            id_parts=("image",))
