"""Reference data and helper objects in QuickBooks: one batch for what is missing, and a
name another task created meanwhile (6240) read back instead of failing the run."""

from __future__ import annotations

import pytest

from koppel.flows.qbo_refs import MissingReference, QboRefs, ensure_named, refs_from_rows
from koppel.hooks.errors import DuplicateName
from koppel.hooks.quickbooks import BatchResult, request_id


class FakeHook:
    """Answers creates from ``existing`` (names taken → 6240) and queries by name."""

    def __init__(self, existing: dict[str, dict[str, str]] | None = None) -> None:
        self.existing = existing or {}  # name → row of objects created "by someone else"
        self.requests: list[tuple[str, list, str | None]] = []
        self.next_id = 100

    request_id = staticmethod(request_id)

    # look-ups go through the hook's one policy (one query plain, several batched)
    from koppel.hooks.quickbooks import QuickBooksHook as _Real
    query_many = _Real.query_many
    plain_lookups_max = _Real.plain_lookups_max
    limits = _Real().limits

    def batch(self, ops, request_id=None):
        self.requests.append(("batch", list(ops), request_id))
        out = {}
        for op in ops:
            if op.query:
                names = [n.strip(" '") for n in op.query.split("IN (")[1].split(")")[0].split(",")]
                entity = op.query.split("FROM ")[1].split(" ")[0]
                rows = [self.existing[n] for n in names if n in self.existing]
                out[op.bid] = BatchResult(op.bid, value={entity: rows} if rows else {})
            elif op.payload["Name"] in self.existing:
                out[op.bid] = BatchResult(op.bid, fault=DuplicateName("taken", code=6240))
            else:
                self.next_id += 1
                out[op.bid] = BatchResult(op.bid, value={"Id": str(self.next_id), **op.payload})
        return out

    def query(self, sql):
        from koppel.hooks.quickbooks import BatchOp

        (result,) = self.batch([BatchOp(bid="q", query=sql)]).values()
        self.requests[-1] = ("query", [sql], None)
        return result.value or {}


def _refs():
    return refs_from_rows({"ref:accounts": [{"Id": "1", "Name": "Sales"}],
                           "ref:payment_methods": [{"Id": "3", "Name": "Visa"}]})


def test_missing_items_and_payment_methods_are_created_in_one_request():
    hook, refs = FakeHook(), _refs()
    ensure_named(hook, refs, items=["Verzending", "Korting", None],
                 payment_methods=["iDEAL", "visa"], tenant="acme", income_account="Sales")
    assert len(hook.requests) == 1
    kind, ops, rid = hook.requests[0]
    assert kind == "batch" and rid
    assert sorted(op.payload["Name"] for op in ops) == ["Korting", "Verzending", "iDEAL"]
    assert refs.item_id("verzending") and refs.item_id("Korting")
    assert refs.payment_method_id("iDEAL") and refs.payment_method_id("Visa") == "3"
    # nothing missing: no request at all; the same names give the same request id
    ensure_named(hook, refs, items=["Verzending"], payment_methods=["iDEAL"], tenant="acme",
                 income_account="Sales")
    assert len(hook.requests) == 1
    again = FakeHook()
    ensure_named(again, _refs(), items=["Korting", "Verzending"], payment_methods=["iDEAL"],
                 tenant="acme", income_account="Sales")
    assert again.requests[0][2] == rid


def test_a_name_created_meanwhile_is_read_back():
    hook = FakeHook(existing={"Verzending": {"Id": "42", "Name": "Verzending"}})
    refs = _refs()
    ensure_named(hook, refs, items=["Verzending"], tenant="acme", income_account="Sales")
    assert refs.item_id("Verzending") == "42"
    assert [kind for kind, _ops, _rid in hook.requests] == ["batch", "query"]


def test_missing_income_account_is_named():
    with pytest.raises(MissingReference, match="settings.products.accounts.income"):
        ensure_named(FakeHook(), QboRefs(), items=["Verzending"], tenant="acme",
                     income_account="Omzet")


def test_staged_copy_keeps_ids_and_names_only():
    refs = refs_from_rows({"ref:accounts": [{"Id": "7", "Name": "Undeposited Funds",
                                             "AccountSubType": "UndepositedFunds",
                                             "CurrentBalance": 1234.5}]})
    copy = QboRefs.from_json(refs.to_json())
    assert copy.deposit_account_id() == "7"
    assert "CurrentBalance" not in copy.accounts["undeposited funds"]
