"""The one customer upsert, shared by the orders and customers flows.

For a chunk of mapped customers: find each in QuickBooks by e-mail, create it or update
it when its data changed, and answer the QBO customer id per record. The rules (company
versus person, sub-customers for further contacts, the default customer, deterministic
display names) are :mod:`koppel.domain.customers`; this module does the I/O in few
calls — the look-ups (plain queries, a batch of them above 12), one batch of
creates, one of updates, per 30
customers — under a per-tenant lock, so parallel tasks never create one customer twice.

Currencies: QuickBooks fixes a customer's currency at creation and books a document only
in its customer's currency. An upserter works for one currency — ``CustomerUpserter(run,
currency="GBP", home_currency="EUR")`` for a GBP shop on a EUR company — and only ever
answers customers in it: found by e-mail, by an earlier run's link or as a company parent
only when their ``CurrencyRef`` is that currency, created with it, the default customer
``<default name> (GBP)``. Links (cross-references) of foreign-currency customers are kept
per currency (target type ``Customer:GBP``); home-currency links stay ``Customer``.
``CustomerUpserter(run)`` (currency and home currency unknown) matches as before.
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
    currency_code,
    currency_display_name,
    decide_customer,
    display_name_for,
    email_suffix,
)
from koppel.domain.emails import email_key, usable_email
from koppel.domain.names import with_suffix
from koppel.domain.records import MappedCustomer

log = logging.getLogger(__name__)

MAX_ROUNDS = 4  # create attempts per customer when display names clash (6240)
_DEFAULT = "\x00default"  # the tenant's default customer among the upsert's outcomes


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
    """The customers of one currency. ``currency``: the orders' currency; ``home_currency``:
    the company's. A ``currency`` other than the home currency is *foreign*: customers are
    matched and created in it. Otherwise (``None`` or the home currency) new customers get
    QuickBooks' default, the home currency, and — when ``home_currency`` is known —
    customers in other currencies are never matched."""

    def __init__(self, run, currency: str | None = None,
                 home_currency: str | None = None) -> None:
        self.run = run
        self.hook = run.quickbooks
        self._default_id: str | None = None
        #: creates answered by adopting the customer QuickBooks had under that name
        self._adopted: set[str] = set()
        #: writes this upsert's look-ups come before (its records' documents and
        #: customers): the hook sends the look-ups plain when the writes' batches bind
        self._writes_to_follow = 0
        self.home_currency = currency_code(home_currency)
        wanted = currency_code(currency)
        #: the foreign currency of this upsert (None: the home currency)
        self.currency = wanted if wanted != self.home_currency else None

    # -- public ----------------------------------------------------------------------------
    def upsert(self, customers: Mapping[str, MappedCustomer | None]
               ) -> dict[str, CustomerOutcome | Exception]:
        """``record key → CustomerOutcome`` (or the exception that failed that record)."""
        results: dict[str, CustomerOutcome | Exception] = {}
        groups: dict[str, _Group] = {}
        defaults: dict[str, str] = {}  # record key → why it goes to the default customer
        for record_key, customer in customers.items():
            email = usable_email(customer.email) if customer is not None else None
            if customer is None or email is None:
                defaults[record_key] = "order has no customer" if customer is None else (
                    "no e-mail address" if not customer.email else "e-mail address not usable")
                continue
            key = email_key(email)
            group = groups.setdefault(key, _Group(key, email, customer))
            group.records.append(record_key)
        if not groups and not defaults:
            return results
        # each record's document (or customer) and, at most, one new customer per e-mail
        self._writes_to_follow = len(customers) + len(groups)
        with self.run.store.lock(f"customers:{self.run.tenant_id}:{self.hook_realm}"):
            outcomes = self._upsert_groups(sorted(groups.values(), key=lambda g: g.key),
                                           need_default=bool(defaults))
        for group in groups.values():
            for record_key in group.records:
                results[record_key] = outcomes[group.key]
        for record_key, reason in defaults.items():
            default = outcomes[_DEFAULT]
            results[record_key] = default if isinstance(default, Exception) else \
                CustomerOutcome(default.customer_id, "default", reason)
        self._remember(groups.values(), outcomes)
        return results

    @property
    def hook_realm(self) -> str:
        return str(getattr(self.hook, "realm_id", "") or "")

    def policy(self) -> CustomerPolicy:
        """The rules for customers with a usable e-mail: they never fall back to the
        default customer, so it is neither looked up nor created for them."""
        return CustomerPolicy(default_customer_id=self._default_id or "",
                              currency=self.currency, home_currency=self.home_currency)

    @property
    def link_type(self) -> str:
        """The cross-reference target type of this currency's links: ``Customer`` (the
        home currency, as ever) or ``Customer:<CUR>`` (one link per foreign currency, so
        a GBP order never follows the link to a shop customer's EUR customer)."""
        return f"Customer:{self.currency}" if self.currency else "Customer"

    def default_name(self) -> str:
        """The default customer's display name: ``<name> (<CUR>)`` in a foreign currency."""
        name = self.run.tenant.settings.default_customer.display_name
        return currency_display_name(name, self.currency) if self.currency else name

    def _default_payload(self) -> dict[str, Any]:
        settings = self.run.tenant.settings.default_customer
        payload: dict[str, Any] = {"DisplayName": self.default_name(),
                                   "Notes": "koppel: default customer for orders "
                                            "without usable customer data"}
        if settings.email:
            payload["PrimaryEmailAddr"] = {"Address": settings.email}
        if self.currency:
            payload["CurrencyRef"] = {"value": self.currency}
        return payload

    def _known_ids(self, groups: list[_Group]) -> dict[str, str]:
        """``group key → QBO customer id`` for shop customers an earlier run linked (in
        this upsert's currency)."""
        ids = {g.key: g.customer.source_id for g in groups if g.customer.source_id}
        if not ids:
            return {}
        xrefs = self.run.store.xrefs(self.run.tenant_id, "customer", sorted(set(ids.values())),
                                     target_type=self.link_type)
        return {key: xrefs[sid].target_id for key, sid in ids.items() if sid in xrefs}

    def _remember(self, groups: Iterable[_Group], outcomes) -> None:
        """Link shop customers to their QBO customer (the cross-reference the next look-up
        reads by id); a link the customers flow keeps (with its content hash) stays."""
        if self.run.dry_run:
            return
        ids = {g.customer.source_id: g.key for g in groups if g.customer.source_id}
        if not ids:
            return
        known = self.run.store.xrefs(self.run.tenant_id, "customer", sorted(ids),
                                     target_type=self.link_type)
        for source_id, key in sorted(ids.items()):
            outcome = outcomes.get(key)
            if isinstance(outcome, CustomerOutcome) and source_id not in known:
                self.run.store.save_xref(self.run.tenant_id, "customer", source_id,
                                         self.link_type, outcome.customer_id)

    # -- the work --------------------------------------------------------------------------
    def _upsert_groups(self, groups: list[_Group], need_default: bool = False
                       ) -> dict[str, CustomerOutcome | Exception]:
        want_default = need_default and self._default_id is None
        by_email, companies, taken, default_row = self._lookup(groups, want_default)
        outcomes: dict[str, CustomerOutcome | Exception] = {}
        default_create: dict[str, CustomerDecision] = {}
        if default_row is not None:
            self._default_id = str(default_row["Id"])
        elif want_default:  # created with the first batch of new customers
            default_create[_DEFAULT] = CustomerDecision(
                "create", payload=self._default_payload(), reason="the default customer")
        if need_default and self._default_id is not None:
            outcomes[_DEFAULT] = CustomerOutcome(self._default_id, "default")
        policy = self.policy()
        # Phase 1: everyone whose company (if any) is known, plus the first contact of
        # each new company. Phase 2: the further contacts of companies created in phase 1.
        # (Known, matched: in this upsert's currency.)
        first_of_company: dict[str, str] = {}
        phase1, phase2 = [], []
        for group in groups:
            company = _company_key(group.customer)
            if company and not _in_currency(companies.get(company), policy) \
                    and not _matched(by_email.get(group.key, ()), policy):
                if company in first_of_company:
                    phase2.append(group)
                    continue
                first_of_company[company] = group.key
            phase1.append(group)
        for phase in (phase1, phase2):
            pending = {g.key: g for g in phase}
            for _round in range(MAX_ROUNDS):
                if not pending and not default_create:
                    break
                decisions = {k: decide_customer(
                    g.customer, policy=policy, email_matches=by_email.get(k, ()),
                    company_match=_company_parent(companies, g, by_email, policy), taken=taken)
                    for k, g in pending.items()}
                creates = {k: d for k, d in decisions.items() if d.payload is not None}
                for k, d in decisions.items():
                    if d.payload is None:
                        outcomes[k] = CustomerOutcome(str(d.customer_id), "existing", d.reason,
                                                      d.warnings)
                created = self._create({**creates, **default_create}, pending)
                if default_create:
                    default_create = {}
                    outcomes[_DEFAULT] = self._took_default(created.pop(_DEFAULT))
                retry = {}
                for k, result in created.items():
                    if isinstance(result, dict):
                        action = "created_sub" if creates[k].action == "create_sub" else "created"
                        if k in self._adopted:  # made meanwhile under this name: this one
                            outcomes[k] = CustomerOutcome(
                                str(result["Id"]), "existing",
                                "already in QuickBooks under this display name and e-mail")
                        else:
                            outcomes[k] = CustomerOutcome(str(result["Id"]), action,
                                                          creates[k].reason)
                        company = _company_key(pending[k].customer)
                        if company and action == "created" \
                                and not _in_currency(companies.get(company), policy):
                            if creates[k].payload.get("CurrencyRef"):
                                result = {"CurrencyRef": creates[k].payload["CurrencyRef"],
                                          **result}
                            companies[company] = result
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

    def _took_default(self, result: Any) -> CustomerOutcome | Exception:
        if isinstance(result, dict):
            self._default_id = str(result["Id"])
            return CustomerOutcome(self._default_id, "default")
        return result  # e.g. 6240: a vendor or employee has the default customer's name

    def _lookup(self, groups: list[_Group], want_default: bool = False):
        """The look-ups of a chunk (the hook's :meth:`query_many` policy: plain queries, or
        batches of queries when there are many and no writes of the chunk bind the batch
        budget): customers by id (shop customers an earlier run linked) or else by
        e-mail, companies by name, the display names the new customers would take
        (Customer, Vendor, Employee share names) and, when needed, the default customer."""
        from koppel.hooks.quickbooks import quote

        known = self._known_ids(groups)
        ops: dict[str, str] = {}
        for i, group in enumerate(groups):
            if group.key not in known:
                ops[f"e{i}"] = (f"SELECT * FROM Customer WHERE PrimaryEmailAddr = "
                                f"{quote(group.email)}")
        for i, chunk in enumerate(_chunks(sorted(set(known.values()), key=int), 50)):
            ops[f"i{i}"] = ("SELECT * FROM Customer WHERE Id IN ("
                            + ", ".join(quote(v) for v in chunk) + ") MAXRESULTS 1000")
        company_names = sorted({c for g in groups if (c := _company_name(g.customer))})
        candidates = sorted(_candidate_names(groups, self.currency))
        for i, chunk in enumerate(_chunks(company_names, 50)):
            ops[f"c{i}"] = ("SELECT * FROM Customer WHERE CompanyName IN ("
                            + ", ".join(quote(n) for n in chunk) + ") MAXRESULTS 1000")
        for entity in ("Customer", "Vendor", "Employee"):
            for i, chunk in enumerate(_chunks(candidates, 50)):
                ops[f"n{entity[0]}{i}"] = (f"SELECT * FROM {entity} WHERE DisplayName IN ("
                                           + ", ".join(quote(n) for n in chunk)
                                           + ") MAXRESULTS 1000")
        if want_default:
            ops["default"] = ("SELECT * FROM Customer WHERE DisplayName = "
                              f"{quote(self.default_name())}")
        results = self.hook.query_many(ops, writes_to_follow=self._writes_to_follow)

        def rows(bid: str) -> list[dict[str, Any]]:
            return results.get(bid, [])

        policy = self.policy()
        by_id = {str(r["Id"]): r for bid in results if bid.startswith("i") for r in rows(bid)}
        by_email: dict[str, list[dict[str, Any]]] = {}
        relink: list[tuple[int, _Group]] = []
        for i, group in enumerate(groups):
            if group.key not in known:
                by_email[group.key] = rows(f"e{i}")
                continue
            row = by_id.get(known[group.key])
            address = ((row or {}).get("PrimaryEmailAddr") or {}).get("Address") or ""
            if row is not None and email_key(address) == group.key and policy.accepts(row):
                by_email[group.key] = [row]
            else:  # gone, inactive, its e-mail changed in QuickBooks (or, linked before the
                # currencies were known, in another currency): ask by e-mail
                relink.append((i, group))
        if relink:
            again = self.hook.query_many({
                f"e{i}": f"SELECT * FROM Customer WHERE PrimaryEmailAddr = {quote(g.email)}"
                for i, g in relink}, writes_to_follow=self._writes_to_follow)
            for i, group in relink:
                by_email[group.key] = again[f"e{i}"]
        # per company: the one in this currency (lowest id), else — only to tell that the
        # company is in QuickBooks in other currencies — the lowest id of another currency
        companies: dict[str, dict[str, Any]] = {}
        for bid in sorted(results):
            if bid.startswith("c"):
                for row in rows(bid):
                    if row.get("Job") or row.get("ParentRef"):
                        continue  # a contact (sub-customer), not the company itself
                    key = (row.get("CompanyName") or "").casefold()
                    if key and (key not in companies or _company_rank(row, policy)
                                < _company_rank(companies[key], policy)):
                        companies[key] = row
        taken: set[str] = set()
        for bid, found_rows in results.items():
            if bid.startswith("n"):
                taken.update(r.get("DisplayName", "") for r in found_rows)
        found = [r for r in rows("default") if policy.accepts(r)]
        default_row = min(found, key=lambda r: int(r["Id"])) if found else None
        if want_default and default_row is None and self.run.dry_run:
            default_row = {"Id": "(dry run)"}  # a dry run sends nothing
        return by_email, companies, taken, default_row

    def _create(self, creates: dict[str, CustomerDecision],
                groups: Mapping[str, "_Group"] | None = None) -> dict[str, Any]:
        """One batch of creates through the writer: ``key → created or adopted row``, or
        the fault. A display name QuickBooks already has (6240) is looked up: a customer
        by that name is adopted only when it is this one (same e-mail, this currency —
        made meanwhile, e.g. by a lost answer's first attempt), else the fault stands and
        the next name is tried."""
        from koppel.hooks.qbo_writer import ADOPTED, QuickBooksWriter, WriteOp

        self._adopted = set()
        if not creates:
            return {}
        keys = sorted(creates)
        if self.run.dry_run:
            return {k: {"Id": "(dry run)", "DisplayName": creates[k].payload["DisplayName"],
                        **({"CurrencyRef": creates[k].payload["CurrencyRef"]}
                           if "CurrencyRef" in creates[k].payload else {})}
                    for k in keys}
        groups = groups or {}
        ops = [WriteOp(key=k, operation="create", entity="Customer", bid=f"n{i}",
                       payload=creates[k].payload, name=creates[k].payload["DisplayName"],
                       matches=self._same_customer(groups.get(k)))
               for i, k in enumerate(keys)]
        digest = hashlib.sha256(json.dumps([creates[k].payload for k in keys], sort_keys=True,
                                           default=str).encode()).hexdigest()
        outcomes = QuickBooksWriter(self.hook, tenant=self.run.tenant_id).write(
            ops, id_parts=("Customer", "create", digest))
        out: dict[str, Any] = {}
        for k in keys:
            outcome = outcomes[k]
            if outcome.written or outcome.status == ADOPTED:
                out[k] = outcome.value or {}
                if outcome.status == ADOPTED:
                    self._adopted.add(k)
            else:
                out[k] = outcome.fault or RuntimeError(
                    f"tenant {self.run.tenant_id}: customer {creates[k].payload['DisplayName']!r}: "
                    f"{outcome.reason}")
        return out

    def _same_customer(self, group: _Group | None):
        """``matches`` for a create that clashed on its display name: the customer found
        by that name is this one only with this group's e-mail address and in this
        upsert's currency (the default customer: in this currency)."""
        policy = self.policy()

        def matches(row: dict[str, Any]) -> str | None:
            if not policy.accepts(row):
                have = (row.get("CurrencyRef") or {}).get("value") or "the home currency"
                return f"it is in {have}"
            if group is None:
                return None  # the default customer: its name in this currency is it
            address = ((row.get("PrimaryEmailAddr") or {}).get("Address") or "")
            if not address or email_key(address) != group.key:
                return "its e-mail address differs"
            return None
        return matches

    def _apply_updates(self, groups, by_email, policy, outcomes) -> None:
        """Existing customers whose shop data changed get one sparse update each (batched
        through the writer); one whose version moved meanwhile (5010, stale) is sent again
        against its current version (one look-up and one batch for all of them)."""
        from koppel.hooks.errors import StaleObject
        from koppel.hooks.qbo_writer import QuickBooksWriter, WriteOp

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
        writer = QuickBooksWriter(self.hook, tenant=self.run.tenant_id)
        digest = hashlib.sha256(json.dumps([updates[k] for k in keys], sort_keys=True,
                                           default=str).encode()).hexdigest()
        results = writer.write(
            [WriteOp(key=k, operation="update", entity="Customer", payload=updates[k],
                     target_id=str(updates[k]["Id"]), bid=f"u{i}")
             for i, k in enumerate(keys)], id_parts=("Customer", "update", digest))
        stale = []
        for key in keys:
            result = results[key]
            if result.written:
                outcomes[key] = _as_updated(outcomes[key])
            elif isinstance(result.fault, StaleObject):
                changes = {k: v for k, v in updates[key].items() if k not in ("Id", "SyncToken")}
                stale.append(WriteOp(key=key, operation="update", entity="Customer",
                                     payload=changes, target_id=str(updates[key]["Id"]),
                                     request_key=(key, digest)))
            else:
                outcomes[key] = _update_error(self.run.tenant_id, updates[key]["Id"], result)
        if stale:  # against the current version: the writer reads it (one query)
            again = writer.write(stale, bid_prefix="s")
            for op in stale:
                result = again[op.key]
                outcomes[op.key] = _as_updated(outcomes[op.key]) if result.written else \
                    _update_error(self.run.tenant_id, op.target, result)


def _update_error(tenant: str, customer_id: Any, result: Any) -> Exception:
    """The error of a customer update the writer could not send (the fault itself, or
    the customer gone from QuickBooks). Names the QuickBooks id, never the e-mail."""
    if result.fault is not None:
        return result.fault
    return RuntimeError(f"tenant {tenant}: update of Customer {customer_id}: {result.reason}")


def _as_updated(outcome: CustomerOutcome, dry_run: bool = False) -> CustomerOutcome:
    reason = "customer data changed" + (" (dry run: not sent)" if dry_run else "")
    return CustomerOutcome(outcome.customer_id, "updated", reason, outcome.warnings)


def _company_name(customer: MappedCustomer) -> str | None:
    name = " ".join((customer.company_name or "").split())
    return name or None


def _company_key(customer: MappedCustomer) -> str | None:
    name = _company_name(customer)
    return name.casefold() if name else None


def _in_currency(row: Mapping[str, Any] | None, policy: CustomerPolicy) -> bool:
    return row is not None and policy.accepts(row)


def _matched(rows: Iterable[Mapping[str, Any]], policy: CustomerPolicy) -> bool:
    """Whether any of ``rows`` (a group's e-mail matches) is in the policy's currency."""
    return any(policy.accepts(row) for row in rows)


def _company_rank(row: Mapping[str, Any], policy: CustomerPolicy) -> tuple[bool, int]:
    return (not policy.accepts(row), int(row["Id"]))


def _company_parent(companies, group: _Group, by_email,
                    policy: CustomerPolicy | None = None) -> dict | None:
    """The QBO company customer a new contact belongs under (never itself). It may be
    in another currency: the decision then makes the company anew in this one."""
    policy = policy or CustomerPolicy(default_customer_id="")
    key = _company_key(group.customer)
    if not key or _matched(by_email.get(group.key, ()), policy):
        return None
    parent = companies.get(key)
    if parent is None:
        return None
    parent_email = ((parent.get("PrimaryEmailAddr") or {}).get("Address") or "")
    if parent_email and email_key(parent_email) == group.key:
        return None
    return parent


def _candidate_names(groups: Iterable[_Group], currency: str | None = None) -> set[str]:
    """Display names new customers would try first: their base name and its e-mail tag —
    in a foreign ``currency`` also ``<base> (<CUR>)``, the name of a customer's second
    customer in that currency."""
    names: set[str] = set()
    for group in groups:
        for contact in (False, True):
            base = display_name_for(group.customer, contact_of_company=contact)
            if base:
                names.add(base)
                names.add(with_suffix(base, email_suffix(group.email), 100))
                if currency:
                    names.add(currency_display_name(base, currency))
    return names


def _chunks(values: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]
