"""The one customer upsert, shared by the orders and customers flows.

For a chunk of mapped customers: find each in QuickBooks by e-mail, create it or update
it when its data changed, and answer the QBO customer id per record. The rules (company
versus person, sub-customers for further contacts, the default customer, deterministic
display names) are :mod:`koppel.domain.customers`; this module does the I/O in few
calls — one batch of look-up queries, one batch of creates, one of updates, per 30
customers — under a per-tenant lock, so parallel tasks never create one customer twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from koppel.domain.customers import (
    CustomerDecision,
    CustomerPolicy,
    decide_customer,
    display_name_for,
    email_suffix,
)
from koppel.domain.emails import email_key, usable_email
from koppel.domain.names import with_suffix
from koppel.domain.records import MappedCustomer

log = logging.getLogger(__name__)

MAX_ROUNDS = 4  # create attempts per customer when display names clash (6240)


@dataclass(frozen=True)
class CustomerOutcome:
    """The QBO customer a record belongs to, and what koppel did to get it."""

    customer_id: str
    action: str  # default | existing | updated | created | created_sub
    reason: str = ""
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"customer_id": self.customer_id, "action": self.action, "reason": self.reason,
                "warnings": list(self.warnings)}


@dataclass
class _Group:
    """All records of one e-mail address in this chunk."""

    key: str
    email: str
    customer: MappedCustomer
    records: list[str] = field(default_factory=list)


class CustomerUpserter:
    def __init__(self, run) -> None:
        self.run = run
        self.hook = run.quickbooks
        self._default_id: str | None = None

    # -- public ----------------------------------------------------------------------------
    def upsert(self, customers: Mapping[str, MappedCustomer | None]
               ) -> dict[str, CustomerOutcome | Exception]:
        """``record key → CustomerOutcome`` (or the exception that failed that record)."""
        results: dict[str, CustomerOutcome | Exception] = {}
        groups: dict[str, _Group] = {}
        for record_key, customer in customers.items():
            email = usable_email(customer.email) if customer is not None else None
            if customer is None or email is None:
                reason = "order has no customer" if customer is None else (
                    "no e-mail address" if not customer.email else "e-mail address not usable")
                results[record_key] = CustomerOutcome(self.default_customer_id(), "default",
                                                      reason)
                continue
            key = email_key(email)
            group = groups.setdefault(key, _Group(key, email, customer))
            group.records.append(record_key)
        if not groups:
            return results
        with self.run.store.lock(f"customers:{self.run.tenant_id}:{self.hook_realm}"):
            outcomes = self._upsert_groups(sorted(groups.values(), key=lambda g: g.key))
        for group in groups.values():
            for record_key in group.records:
                results[record_key] = outcomes[group.key]
        return results

    @property
    def hook_realm(self) -> str:
        return str(getattr(self.hook, "realm_id", "") or "")

    def policy(self) -> CustomerPolicy:
        """The rules for customers with a usable e-mail: they never fall back to the
        default customer, so it is neither looked up nor created for them."""
        return CustomerPolicy(default_customer_id=self._default_id or "")

    def default_customer_id(self) -> str:
        """The tenant's default customer (for orders without usable customer data),
        created once if QuickBooks does not have it yet."""
        if self._default_id is None:
            settings = self.run.tenant.settings.default_customer
            name = settings.display_name
            rows = self.hook.query_in("Customer", "DisplayName", [name])
            if rows:
                self._default_id = str(min(rows, key=lambda r: int(r["Id"]))["Id"])
            elif self.run.dry_run:
                self._default_id = "(dry run)"  # a dry run sends nothing
            else:
                payload: dict[str, Any] = {"DisplayName": name,
                                           "Notes": "koppel: default customer for orders "
                                                    "without usable customer data"}
                if settings.email:
                    payload["PrimaryEmailAddr"] = {"Address": settings.email}
                created = self.hook.create("Customer", payload, request_id=self.hook.request_id(
                    self.run.tenant_id, "default-customer", name))
                self._default_id = str(created["Id"])
        return self._default_id

    # -- the work --------------------------------------------------------------------------
    def _upsert_groups(self, groups: list[_Group]) -> dict[str, CustomerOutcome | Exception]:
        by_email, companies, taken = self._lookup(groups)
        outcomes: dict[str, CustomerOutcome | Exception] = {}
        policy = self.policy()
        # Phase 1: everyone whose company (if any) is known, plus the first contact of
        # each new company. Phase 2: the further contacts of companies created in phase 1.
        first_of_company: dict[str, str] = {}
        phase1, phase2 = [], []
        for group in groups:
            company = _company_key(group.customer)
            if company and company not in companies and not by_email.get(group.key):
                if company in first_of_company:
                    phase2.append(group)
                    continue
                first_of_company[company] = group.key
            phase1.append(group)
        for phase in (phase1, phase2):
            pending = {g.key: g for g in phase}
            for _round in range(MAX_ROUNDS):
                if not pending:
                    break
                decisions = {k: decide_customer(
                    g.customer, policy=policy, email_matches=by_email.get(k, ()),
                    company_match=_company_parent(companies, g, by_email), taken=taken)
                    for k, g in pending.items()}
                creates = {k: d for k, d in decisions.items() if d.payload is not None}
                for k, d in decisions.items():
                    if d.payload is None:
                        outcomes[k] = CustomerOutcome(str(d.customer_id), "existing", d.reason,
                                                      d.warnings)
                created = self._create(creates)
                retry = {}
                for k, result in created.items():
                    if isinstance(result, dict):
                        action = "created_sub" if creates[k].action == "create_sub" else "created"
                        outcomes[k] = CustomerOutcome(str(result["Id"]), action, creates[k].reason)
                        company = _company_key(pending[k].customer)
                        if company and action == "created":
                            companies.setdefault(company, result)
                        taken.add(result.get("DisplayName", ""))
                    elif getattr(result, "code", None) == 6240:
                        taken.add(creates[k].payload["DisplayName"])
                        retry[k] = pending[k]
                    else:
                        outcomes[k] = result
                pending = retry
            for k, g in pending.items():
                outcomes[k] = RuntimeError("no free display name after several attempts")
        self._apply_updates(groups, by_email, policy, outcomes)
        return outcomes

    def _lookup(self, groups: list[_Group]):
        """One batch of queries: customers by e-mail, companies by name, and the display
        names the new customers would take (Customer, Vendor, Employee share names)."""
        from koppel.hooks.quickbooks import BatchOp, quote

        ops: list[BatchOp] = []
        for i, group in enumerate(groups):
            ops.append(BatchOp(bid=f"e{i}", query=(
                f"SELECT * FROM Customer WHERE PrimaryEmailAddr = {quote(group.email)}")))
        company_names = sorted({c for g in groups if (c := _company_name(g.customer))})
        candidates = sorted(_candidate_names(groups))
        for i, chunk in enumerate(_chunks(company_names, 50)):
            ops.append(BatchOp(bid=f"c{i}", query="SELECT * FROM Customer WHERE CompanyName IN ("
                               + ", ".join(quote(n) for n in chunk) + ") MAXRESULTS 1000"))
        for entity in ("Customer", "Vendor", "Employee"):
            for i, chunk in enumerate(_chunks(candidates, 50)):
                ops.append(BatchOp(bid=f"n{entity[0]}{i}", query=(
                    f"SELECT * FROM {entity} WHERE DisplayName IN ("
                    + ", ".join(quote(n) for n in chunk) + ") MAXRESULTS 1000")))
        results = self.hook.batch(ops)
        for result in results.values():
            if result.fault is not None:
                raise result.fault
        by_email = {g.key: (results[f"e{i}"].value or {}).get("Customer", [])
                    for i, g in enumerate(groups)}
        companies: dict[str, dict[str, Any]] = {}
        for bid, result in sorted(results.items()):
            if bid.startswith("c"):
                for row in (result.value or {}).get("Customer", []):
                    if row.get("Job") or row.get("ParentRef"):
                        continue  # a contact (sub-customer), not the company itself
                    key = (row.get("CompanyName") or "").casefold()
                    if key and (key not in companies or int(row["Id"]) < int(companies[key]["Id"])):
                        companies[key] = row
        taken: set[str] = set()
        for bid, result in results.items():
            if bid.startswith("n"):
                value = result.value or {}
                for entity in ("Customer", "Vendor", "Employee"):
                    taken.update(r.get("DisplayName", "") for r in value.get(entity, []))
        return by_email, companies, taken

    def _create(self, creates: dict[str, CustomerDecision]) -> dict[str, Any]:
        from koppel.hooks.quickbooks import BatchOp

        if not creates:
            return {}
        keys = sorted(creates)
        ops = [BatchOp(bid=f"n{i}", operation="create", entity="Customer",
                       payload=creates[k].payload) for i, k in enumerate(keys)]
        if self.run.dry_run:
            return {k: {"Id": "(dry run)", "DisplayName": creates[k].payload["DisplayName"]}
                    for k in keys}
        digest = hashlib.sha256(json.dumps([creates[k].payload for k in keys], sort_keys=True,
                                           default=str).encode()).hexdigest()
        results = self.hook.batch(ops, request_id=self.hook.request_id(
            self.run.tenant_id, "Customer", "create", digest))
        return {k: (results[f"n{i}"].value if results[f"n{i}"].ok else results[f"n{i}"].fault)
                for i, k in enumerate(keys)}

    def _apply_updates(self, groups, by_email, policy, outcomes) -> None:
        """Existing customers whose shop data changed get one sparse update each (batched)."""
        from koppel.hooks.errors import StaleObject
        from koppel.hooks.quickbooks import BatchOp

        updates = {}
        for group in groups:
            outcome = outcomes.get(group.key)
            if not isinstance(outcome, CustomerOutcome) or outcome.action != "existing":
                continue
            decision = decide_customer(group.customer, policy=policy,
                                       email_matches=by_email.get(group.key, ()))
            if decision.update:
                updates[group.key] = decision.update
        if not updates or self.run.dry_run:
            for key in updates:
                outcomes[key] = _as_updated(outcomes[key], dry_run=True)
            return
        keys = sorted(updates)
        ops = [BatchOp(bid=f"u{i}", operation="update", entity="Customer", payload=updates[k])
               for i, k in enumerate(keys)]
        digest = hashlib.sha256(json.dumps([updates[k] for k in keys], sort_keys=True,
                                           default=str).encode()).hexdigest()
        results = self.hook.batch(ops, request_id=self.hook.request_id(
            self.run.tenant_id, "Customer", "update", digest))
        for i, key in enumerate(keys):
            result = results[f"u{i}"]
            if result.ok:
                outcomes[key] = _as_updated(outcomes[key])
            elif isinstance(result.fault, StaleObject):
                changes = {k: v for k, v in updates[key].items()
                           if k not in ("Id", "SyncToken", "sparse")}
                try:
                    self.hook.sparse_update("Customer", updates[key]["Id"], changes)
                    outcomes[key] = _as_updated(outcomes[key])
                except Exception as exc:  # the record fails alone
                    outcomes[key] = exc
            else:
                outcomes[key] = result.fault


def _as_updated(outcome: CustomerOutcome, dry_run: bool = False) -> CustomerOutcome:
    reason = "customer data changed" + (" (dry run: not sent)" if dry_run else "")
    return CustomerOutcome(outcome.customer_id, "updated", reason, outcome.warnings)


def _company_name(customer: MappedCustomer) -> str | None:
    name = " ".join((customer.company_name or "").split())
    return name or None


def _company_key(customer: MappedCustomer) -> str | None:
    name = _company_name(customer)
    return name.casefold() if name else None


def _company_parent(companies, group: _Group, by_email) -> dict | None:
    """The QBO company customer a new contact belongs under (never itself)."""
    key = _company_key(group.customer)
    if not key or by_email.get(group.key):
        return None
    parent = companies.get(key)
    if parent is None:
        return None
    parent_email = ((parent.get("PrimaryEmailAddr") or {}).get("Address") or "")
    if parent_email and email_key(parent_email) == group.key:
        return None
    return parent


def _candidate_names(groups: Iterable[_Group]) -> set[str]:
    """Display names new customers would try first: their base name and its e-mail tag."""
    names: set[str] = set()
    for group in groups:
        for contact in (False, True):
            base = display_name_for(group.customer, contact_of_company=contact)
            if base:
                names.add(base)
                names.add(with_suffix(base, email_suffix(group.email), 100))
    return names


def _chunks(values: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]
