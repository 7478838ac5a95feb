"""The customers flow: Lightspeed customers changed in the window, created or updated in
QuickBooks with the orders flow's rules.

The QuickBooks side is :class:`koppel.flows.customer_upsert.CustomerUpserter` — the one
customer upsert both flows share: customers are found by e-mail; a company becomes a
company customer with its contact person, further contacts of a known company become
sub-customers; a person becomes a person customer; display-name clashes are resolved
deterministically.

What this flow adds:

* The window: ``since``/``until`` params, else the data interval, else from a day before
  the flow's last activity (a first manual run reads every customer); ``full_resync``
  reads every customer; ``records`` limits the run to Lightspeed customer ids or e-mail
  addresses. Last run's failures are always retried.
* Customers without a usable e-mail address are skipped: they cannot be found again,
  so creating them would duplicate them on every change (orders of such customers are
  booked on the tenant's default customer by the orders flow).
* A content hash per customer (the cross-reference ``customer`` → ``Customer``): a customer
  whose mapped data did not change since it was last synced is skipped without a call.
* Several shop customers with one e-mail address are one QuickBooks customer: the lowest
  Lightspeed id is reported as created/updated, the others as skipped (merged).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from koppel.flows.base import (
    Process,
    Record,
    RecordError,
    RecordState,
    StepResult,
    is_systemic,
    jsonable,
    run_window,
)


class CustomerState(RecordState):
    """What a shop customer carries between the customers flow's steps."""

    gone: str | None = None  # why it cannot be read: deleted in Lightspeed (extract)
    customer: dict           # the mapped customer (enrich)
    content_hash: str

log = logging.getLogger(__name__)

#: upsert outcome → (activity action, reason). Fixed texts: the upsert's own reasons may
#: quote a company name, which can be a person's name (no personal data in the log).
_OUTCOMES = {
    "created": ("created", "new QuickBooks customer"),
    "created_sub": ("created", "new contact (sub-customer) of its company's customer"),
    "updated": ("updated", "customer data changed"),
    "existing": ("skipped", "already in QuickBooks, unchanged"),
    "default": ("skipped", "no usable e-mail address"),
}


class CustomersProcess(Process):
    """Lightspeed customers → QuickBooks customers (found by e-mail)."""

    flow = "customers"
    source_type = "customer"
    target_type = "Customer"
    #: fewer, fuller chunks: a chunk's load fills QuickBooks batches of 30 (kernel
    #: ``chunk_length``); 300 records stay small in memory (issue "Scale and cost")
    chunk_size = 300
    chunk_align = 30

    # ------------------------------------------------------------------ extract
    def extract(self) -> list[Record]:
        from koppel.hooks.errors import LightspeedNotFound
        from koppel.hooks.paging import UpdatedWindow

        hook = self.run.lightspeed
        customers: dict[str, dict[str, Any]] = {}
        wanted = [str(r).strip() for r in self.run.params.get("records") or [] if str(r).strip()]
        if wanted:
            for key in wanted:
                if "@" in key:
                    for customer in hook.iter_customers(email=key):
                        customers[str(customer.id)] = customer.to_api()
                elif key.isdigit() and key not in customers:
                    try:
                        customers[key] = hook.get_customer(int(key)).to_api()
                    except LightspeedNotFound:
                        log.warning("customers %s: customer %s from 'records' does not exist",
                                    self.run.tenant_id, key)
        else:
            window = run_window(self.run)
            span = UpdatedWindow(*window) if window else None
            for customer in hook.iter_customers(span):
                customers[str(customer.id)] = customer.to_api()
        gone: list[str] = []
        for failed in self.run.store.failed(self.run.tenant_id, self.flow):
            source_id = str(failed["source_id"])
            if source_id in customers or not source_id.isdigit():
                continue
            try:
                customers[source_id] = hook.get_customer(int(source_id)).to_api()
            except LightspeedNotFound:
                log.warning("customers %s: customer %s from the retry list no longer exists",
                            self.run.tenant_id, source_id)
                gone.append(source_id)
        shop = self._shop() if customers else None
        cap = self.run.tenant.flows.customers.max_records
        ids = sorted(customers, key=int)
        ids = ids[:cap] if cap else ids
        # a customer deleted in the shop leaves the retry list (reported in enrich)
        return [Record(i, jsonable({**customers[i], **({"_shop": shop} if shop else {})}),
                       "customer") for i in ids] + [
            Record(i, {}, "customer", state={"gone": f"customer {i} was deleted in Lightspeed "
                                                     "(retired: not retried)"})
            for i in sorted(gone, key=int)]

    def _currencies(self) -> tuple[str | None, str | None]:
        """(shop currency, QuickBooks home currency) when they can differ: the company's
        currency preferences (one query), and only with multicurrency on the shop's
        currency (one call). A GBP shop's customers are then made in GBP, as the orders
        flow books them (QuickBooks fixes a customer's currency at creation)."""
        rows = self.run.quickbooks.query("SELECT * FROM Preferences").get("Preferences") or []
        prefs = (rows[0] if rows else {}).get("CurrencyPrefs") or {}
        home = str((prefs.get("HomeCurrency") or {}).get("value") or "").upper() or None
        if not prefs.get("MultiCurrencyEnabled") or home is None:
            return None, home
        currency = self.run.lightspeed.get_shop().currency_code
        return (currency if currency and currency != home else None), home

    def _shop(self) -> dict[str, Any] | None:
        """``_shop`` for the mapping, fetched only when the tenant's rules read it."""
        rules = json.dumps(self.run.tenant.rules("customers"), default=str)
        if "_shop" not in rules:
            return None
        return jsonable(self.run.lightspeed.get_shop().to_api())

    # ------------------------------------------------------------------ enrich
    def enrich(self, records: list[Record]) -> StepResult:
        from koppel.domain.emails import usable_email
        from koppel.domain.hashing import content_hash
        from koppel.domain.records import MappedCustomer, parse_record
        from koppel.mapping import Mapper

        mapper = Mapper.for_tenant(self.run.tenant, "customers")
        result = StepResult()
        xrefs = self.run.store.xrefs(self.run.tenant_id, "customer",
                                     [r.source_id for r in records], target_type="Customer")
        resync = bool(self.run.params.get("full_resync"))
        for record in records:
            if CustomerState(record).gone:
                result.end(record, "skipped", reason=CustomerState(record).gone,
                           details={"deleted_in_lightspeed": True})
                continue
            mapped = mapper.map(record.data)
            if mapped.errors:
                result.fail(record, RecordError(
                    "; ".join(f"{e.field}: {e.message}" for e in mapped.errors)))
                continue
            parsed = parse_record(MappedCustomer, {**mapped.values, "source_id": record.source_id})
            if parsed.errors:
                result.fail(record, RecordError(
                    "; ".join(f"{e.field}: {e.message}" for e in parsed.errors)))
                continue
            customer = parsed.record
            if usable_email(customer.email) is None:
                why = "no e-mail address" if not customer.email else "e-mail address not usable"
                result.end(record, "skipped", target_type="Customer",
                           reason=f"{why}: QuickBooks customers are found by e-mail")
                continue
            digest = content_hash(jsonable(customer))
            xref = xrefs.get(record.source_id)
            if xref is not None and xref.content_hash == digest and not resync:
                result.end(record, "skipped", target_type="Customer", target_id=xref.target_id,
                           reason="unchanged since the last sync", content_hash=digest)
                continue
            record.state = {}
            state = CustomerState(record)
            state.customer, state.content_hash = jsonable(customer), digest
            record.data = {}  # the raw shop record is not needed past this step
            result.passed.append(record)
        return result

    # ------------------------------------------------------------------ load
    def load(self, records: list[Record]) -> StepResult:
        from koppel.domain.records import MappedCustomer
        from koppel.flows.customer_upsert import CustomerUpserter

        result = StepResult()
        if not records:
            return result
        currency, home = self._currencies()
        outcomes = CustomerUpserter(self.run, currency=currency, home_currency=home).upsert(
            {r.source_id: MappedCustomer.model_validate(CustomerState(r).customer) for r in records})
        first_of: dict[str, str] = {}
        for record in sorted(records, key=lambda r: int(r.source_id)):
            outcome = outcomes[record.source_id]
            if isinstance(outcome, Exception):
                if is_systemic(outcome):
                    raise outcome
                result.fail(record, RecordError(_failure_reason(outcome)))
                continue
            self._end(record, outcome, first_of, result)
        return result

    def _end(self, record: Record, outcome: Any, first_of: dict[str, str],
             result: StepResult) -> None:
        digest = CustomerState(record).content_hash
        target = outcome.customer_id
        details = {"upsert": outcome.action}
        email = CustomerState(record).customer.get("email")
        if email:  # the dashboard's search key; erased with the customer's activity rows
            from koppel.domain.emails import email_hash
            details["email_hash"] = email_hash(email)
        if outcome.warnings:  # their text may carry names: only the count is logged
            details["warning_count"] = len(outcome.warnings)
        if self.run.dry_run:
            verb = {"created": "create", "created_sub": "create (as a contact of its company)",
                    "updated": "update"}.get(outcome.action)
            reason = f"dry run: would {verb} Customer" if verb else \
                "dry run: already in QuickBooks, unchanged"
            if outcome.action in ("updated", "existing"):
                reason += f" {target}"
            result.end(record, "skipped", target_type="Customer",
                       target_id=None if outcome.action.startswith("created") else target,
                       reason=reason, details=details)
            return
        first = first_of.setdefault(target, record.source_id)
        if first != record.source_id:
            action = "skipped"
            reason = (f"same e-mail address as shop customer {first}: one QuickBooks "
                      "customer for both")
        else:
            action, reason = _OUTCOMES.get(outcome.action, ("skipped", outcome.action))
        result.end(record, action, target_type="Customer", target_id=target,
                   reason=reason, content_hash=digest, details=details)
        self.run.store.save_xref(self.run.tenant_id, "customer", record.source_id, "Customer",
                                 target, content_hash=digest)


def _failure_reason(error: Exception) -> str:
    """Why the upsert failed, without the fault's free text (it may quote a name)."""
    code = getattr(error, "code", None)
    if code is None:
        return f"customer upsert failed: {error}"
    element = getattr(error, "element", "") or ""
    return f"QuickBooks refused the customer (fault {code}" + \
        (f", element {element})" if element else ")")
