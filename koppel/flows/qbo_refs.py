"""QuickBooks reference data the flows book against: tax codes, payment methods, terms,
accounts and the tenant's helper items (shipping, discount, rounding, fallback), read in
one batch request and resolved by name. Helper items the company lacks are created once
(deterministic request ids: a retry never makes a second one)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable


def item_lock_name(tenant: str, hook: Any) -> str:
    """The cross-process lock every flow holds while it creates QuickBooks items, so two
    flows (orders under ``create_item``, products) never create one SKU twice."""
    return f"items:{tenant}:{getattr(hook, 'realm_id', '') or ''}"


class MissingReference(LookupError):
    """A name in the tenant file that QuickBooks does not know (a systemic problem)."""


@dataclass
class QboRefs:
    tax_codes: dict[str, dict[str, Any]] = field(default_factory=dict)   # name → row
    payment_methods: dict[str, dict[str, Any]] = field(default_factory=dict)
    terms: dict[str, dict[str, Any]] = field(default_factory=dict)
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    items: dict[str, dict[str, Any]] = field(default_factory=dict)  # name → row

    @staticmethod
    def _find(table: dict[str, dict[str, Any]], name: str | None) -> dict[str, Any] | None:
        if not name:
            return None
        return table.get(name.casefold())

    def tax_code_id(self, name: str | None) -> str | None:
        row = self._find(self.tax_codes, name)
        return str(row["Id"]) if row else None

    def payment_method_id(self, name: str | None) -> str | None:
        row = self._find(self.payment_methods, name)
        return str(row["Id"]) if row else None

    def term_id(self, name: str | None) -> str | None:
        row = self._find(self.terms, name)
        return str(row["Id"]) if row else None

    def account_id(self, name: str | None) -> str | None:
        row = self._find(self.accounts, name)
        return str(row["Id"]) if row else None

    def item_id(self, name: str | None) -> str | None:
        row = self._find(self.items, name)
        return str(row["Id"]) if row else None

    def deposit_account_id(self) -> str | None:
        for row in self.accounts.values():
            if row.get("AccountSubType") == "UndepositedFunds":
                return str(row["Id"])
        return self.account_id("Undeposited Funds")


def load_refs(hook, item_names: Iterable[str]) -> QboRefs:
    """Everything in one batch request (five small queries)."""
    from koppel.hooks.quickbooks import BatchOp, quote

    names = sorted({n for n in item_names if n})
    ops = [BatchOp(bid="tax", query="SELECT * FROM TaxCode MAXRESULTS 1000"),
           BatchOp(bid="pm", query="SELECT * FROM PaymentMethod MAXRESULTS 1000"),
           BatchOp(bid="term", query="SELECT * FROM Term MAXRESULTS 1000"),
           BatchOp(bid="acct", query="SELECT * FROM Account MAXRESULTS 1000")]
    if names:
        ops.append(BatchOp(bid="items", query="SELECT * FROM Item WHERE Name IN ("
                           + ", ".join(quote(n) for n in names) + ") MAXRESULTS 1000"))
    results = hook.batch(ops)
    for result in results.values():
        if result.fault is not None:
            raise result.fault

    def table(bid: str, entity: str, key: str = "Name") -> dict[str, dict[str, Any]]:
        rows = (results[bid].value or {}).get(entity, []) if bid in results else []
        return {str(r.get(key, "")).casefold(): r for r in rows}

    return QboRefs(tax_codes=table("tax", "TaxCode"), payment_methods=table("pm", "PaymentMethod"),
                   terms=table("term", "Term"), accounts=table("acct", "Account"),
                   items=table("items", "Item"))


def ensure_service_items(hook, refs: QboRefs, names: Iterable[str], *, tenant: str,
                         income_account: str, dry_run: bool = False) -> None:
    """Create the helper items (shipping, rounding, …) QuickBooks does not have yet."""
    missing = sorted({n for n in names if n and refs.item_id(n) is None})
    if not missing:
        return
    account_id = refs.account_id(income_account)
    if account_id is None:
        raise MissingReference(f"settings.products.accounts.income: QuickBooks has no account "
                              f"named {income_account!r}")
    for name in missing:
        if dry_run:
            refs.items[name.casefold()] = {"Id": "(dry run)", "Name": name}
            continue
        created = hook.create("Item", {"Name": name, "Type": "Service",
                                       "IncomeAccountRef": {"value": account_id}},
                              request_id=hook.request_id(tenant, "Item", "helper", name))
        refs.items[name.casefold()] = created


def ensure_payment_methods(hook, refs: QboRefs, names: Iterable[str], *, tenant: str,
                           dry_run: bool = False) -> None:
    """Payment methods the tenant maps to but the company lacks are created once (a
    payment method is only a name in QuickBooks; refusing every iDEAL order for want of
    one would help nobody)."""
    for name in sorted({n for n in names if n and refs.payment_method_id(n) is None}):
        if dry_run:
            refs.payment_methods[name.casefold()] = {"Id": "(dry run)", "Name": name}
            continue
        created = hook.create("PaymentMethod", {"Name": name, "Type": "NON_CREDIT_CARD"},
                              request_id=hook.request_id(tenant, "PaymentMethod", name))
        refs.payment_methods[name.casefold()] = created
