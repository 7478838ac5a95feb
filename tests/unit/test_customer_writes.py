"""The customer upsert's writes through the one writer: creates and updates keep the
request ids they always had (``request_id(tenant, "Customer", "create"|"update",
<digest>)``, items ``n<i>``/``u<i>``); a display name QuickBooks already has (6240) is
adopted only when that customer has the group's e-mail in the upsert's currency, else
the name stands as taken; an update refused as stale is sent once more against the
current version."""

from __future__ import annotations

import hashlib
import json
import re
from types import SimpleNamespace

from koppel.domain.customers import CustomerDecision, CustomerPolicy
from koppel.domain.records import MappedCustomer
from koppel.flows.customer_upsert import CustomerOutcome, CustomerUpserter, _Group
from koppel.hooks.errors import DuplicateName, StaleObject
from koppel.hooks.quickbooks import BatchResult, request_id
from koppel.tenants.model import Settings


class FakeHook:
    """Customers by display name (``customers``); creates of a name in ``taken`` answer
    6240; updates of an id in ``stale`` answer 5010 once; ``current``: Id → row."""

    request_id = staticmethod(request_id)

    def __init__(self, customers=(), taken=(), stale=(), current=None):
        self.customers = list(customers)
        self.taken = set(taken)
        self.stale = set(stale)
        self.current = current or {}
        self.writes: list[tuple[list, str | None]] = []
        self.queries: list[str] = []
        self.next_id = 300

    def query(self, sql):
        self.queries.append(sql)
        names = {v.replace("\\'", "'") for v in re.findall(r"'((?:[^'\\]|\\.)*)'", sql)}
        rows = [r for r in self.customers if r["DisplayName"] in names]
        return {"Customer": rows} if rows else {}

    def query_many(self, queries, **_kw):
        return {name: next(iter(self.query(sql).values()), []) for name, sql in queries.items()}

    def query_in(self, entity, field_name, values, **_kw):
        self.queries.append(f"{entity}.{field_name} IN {sorted(values)}")
        return [self.current[v] for v in values if v in self.current]

    def batch(self, ops, request_id=None):
        ops = list(ops)
        self.writes.append((ops, request_id))
        out = {}
        for op in ops:
            if op.operation == "create" and op.payload["DisplayName"] in self.taken:
                out[op.bid] = BatchResult(op.bid, fault=DuplicateName(
                    "Duplicate Name Exists Error", code=6240))
            elif op.operation == "update" and op.payload["Id"] in self.stale:
                self.stale.discard(op.payload["Id"])
                out[op.bid] = BatchResult(op.bid, fault=StaleObject("Stale Object Error",
                                                                    code=5010))
            else:
                self.next_id += 1
                out[op.bid] = BatchResult(op.bid, value={"Id": op.payload.get(
                    "Id", str(self.next_id)), **op.payload})
        return out


def _upserter(hook, currency=None):
    run = SimpleNamespace(quickbooks=hook, tenant_id="acme", dry_run=False,
                          tenant=SimpleNamespace(settings=Settings()))
    return CustomerUpserter(run, currency=currency, home_currency="EUR")


def _group(email: str) -> _Group:
    customer = MappedCustomer.model_validate({"source_id": 7, "email": email,
                                              "given_name": "Jan", "family_name": "Jansen"})
    return _Group(email.casefold(), email, customer)


def _create(name: str, email: str) -> CustomerDecision:
    return CustomerDecision("create", payload={"DisplayName": name,
                                               "PrimaryEmailAddr": {"Address": email}},
                            reason="new customer")


def test_creates_keep_their_request_id_and_a_name_clash_adopts_only_the_same_customer():
    ours = {"Id": "41", "DisplayName": "Jan Jansen", "PrimaryEmailAddr": {"Address": "JAN@x.nl"}}
    theirs = {"Id": "42", "DisplayName": "Piet", "PrimaryEmailAddr": {"Address": "other@x.nl"}}
    hook = FakeHook(customers=[ours, theirs], taken={"Jan Jansen", "Piet"})
    upserter = _upserter(hook)
    creates = {"jan@x.nl": _create("Jan Jansen", "jan@x.nl"),
               "piet@x.nl": _create("Piet", "piet@x.nl"),
               "kees@x.nl": _create("Kees", "kees@x.nl")}
    groups = {k: _group(k) for k in creates}
    out = upserter._create(creates, groups)
    ((sent, rid),) = hook.writes
    keys = sorted(creates)
    digest = hashlib.sha256(json.dumps([creates[k].payload for k in keys], sort_keys=True,
                                       default=str).encode()).hexdigest()
    assert rid == request_id("acme", "Customer", "create", digest)
    assert [op.bid for op in sent] == ["n0", "n1", "n2"]
    assert len(hook.queries) == 1 and "DisplayName IN" in hook.queries[0]
    assert out["jan@x.nl"]["Id"] == "41" and upserter._adopted == {"jan@x.nl"}
    assert getattr(out["piet@x.nl"], "code", None) == 6240  # another's: the name is taken
    assert out["kees@x.nl"]["DisplayName"] == "Kees"


def test_a_name_clash_in_another_currency_is_not_adopted():
    eur = {"Id": "41", "DisplayName": "Jan Jansen (GBP)",
           "PrimaryEmailAddr": {"Address": "jan@x.nl"}, "CurrencyRef": {"value": "EUR"}}
    hook = FakeHook(customers=[eur], taken={"Jan Jansen (GBP)"})
    upserter = _upserter(hook, currency="GBP")
    out = upserter._create({"jan@x.nl": _create("Jan Jansen (GBP)", "jan@x.nl")},
                           {"jan@x.nl": _group("jan@x.nl")})
    assert getattr(out["jan@x.nl"], "code", None) == 6240 and upserter._adopted == set()


def test_a_stale_update_is_sent_again_against_the_current_version():
    existing = {"Id": "9", "SyncToken": "0", "DisplayName": "Jan Jansen", "GivenName": "Jan",
                "FamilyName": "Old", "PrimaryEmailAddr": {"Address": "jan@x.nl"}}
    hook = FakeHook(stale={"9"}, current={"9": {**existing, "SyncToken": "4"}})
    upserter = _upserter(hook)
    group = _group("jan@x.nl")
    outcomes = {group.key: CustomerOutcome("9", "existing")}
    policy = CustomerPolicy(default_customer_id="", home_currency="EUR")
    upserter._apply_updates([group], {group.key: [existing]}, policy, outcomes)
    assert outcomes[group.key].action == "updated"
    (first, first_rid), (again, _rid) = hook.writes
    assert first[0].bid == "u0" and first[0].payload["SyncToken"] == "0"
    assert first_rid.startswith("k") and first_rid != _rid
    assert again[0].payload["SyncToken"] == "4" and again[0].payload["FamilyName"] == "Jansen"
    assert hook.queries == ["Customer.Id IN ['9']"]  # one version read for all stale ones
