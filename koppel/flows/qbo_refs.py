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
    #: ``Preferences.CurrencyPrefs`` (``HomeCurrency``, ``MultiCurrencyEnabled``)
    currency_prefs: dict[str, Any] = field(default_factory=dict)

    @property
    def home_currency(self) -> str | None:
        home = (self.currency_prefs.get("HomeCurrency") or {}).get("value")
        return str(home).upper() if home else None

    @property
    def multicurrency(self) -> bool:
        return bool(self.currency_prefs.get("MultiCurrencyEnabled"))

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

    def tax_rate_ids(self) -> dict[str, str]:
        """TaxCode id → the id of its one sales TaxRate (codes with none or several rates
        are left out): the rate a supplied ``TxnTaxDetail.TaxLine`` names."""
        out = {}
        for row in self.tax_codes.values():
            details = (row.get("SalesTaxRateList") or {}).get("TaxRateDetail") or []
            ids = {str((d.get("TaxRateRef") or {}).get("value")) for d in details
                   if (d.get("TaxRateRef") or {}).get("value") is not None}
            if len(ids) == 1:
                out[str(row["Id"])] = ids.pop()
        return out

    def to_json(self) -> dict[str, Any]:
        """A compact copy (ids and names) to stage between a run's tasks."""
        out: dict[str, Any] = {name: {key: {f: row[f] for f in _KEPT_FIELDS if f in row}
                                      for key, row in getattr(self, name).items()}
                               for name in (*_TABLES, "items")}
        out["currency_prefs"] = dict(self.currency_prefs)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "QboRefs":
        return cls(**{name: dict(data.get(name) or {}) for name in (*_TABLES, "items")},
                   currency_prefs=dict(data.get("currency_prefs") or {}))

    def deposit_account_id(self) -> str | None:
        for row in self.accounts.values():
            if row.get("AccountSubType") == "UndepositedFunds":
                return str(row["Id"])
        return self.account_id("Undeposited Funds")


#: the fields of reference rows koppel uses (what a staged copy keeps)
_KEPT_FIELDS = ("Id", "Name", "AccountSubType", "Active", "SalesTaxRateList")
_TABLES = {"tax_codes": "TaxCode", "payment_methods": "PaymentMethod", "terms": "Term",
           "accounts": "Account"}


def ref_queries(item_names: Iterable[str], prefix: str = "ref:") -> dict[str, str]:
    """The queries behind :class:`QboRefs`, named, so a step can send them in the same
    batch request as its own look-ups (``refs_from_rows`` reads the answers)."""
    from koppel.hooks.quickbooks import quote

    queries = {f"{prefix}{table}": f"SELECT * FROM {entity} MAXRESULTS 1000"
               for table, entity in _TABLES.items()}
    queries[f"{prefix}prefs"] = "SELECT * FROM Preferences"
    names = sorted({n for n in item_names if n})
    if names:
        queries[f"{prefix}items"] = ("SELECT * FROM Item WHERE Name IN ("
                                     + ", ".join(quote(n) for n in names) + ") MAXRESULTS 1000")
    return queries


def refs_from_rows(rows: dict[str, list[dict[str, Any]]], prefix: str = "ref:") -> QboRefs:
    """``QboRefs`` from the answers to :func:`ref_queries` (``query name -> rows``)."""
    def table(name: str) -> dict[str, dict[str, Any]]:
        return {str(r.get("Name", "")).casefold(): r for r in rows.get(prefix + name, [])}

    prefs = next(iter(rows.get(prefix + "prefs") or []), {})
    return QboRefs(**{name: table(name) for name in (*_TABLES, "items")},
                   currency_prefs=dict(prefs.get("CurrencyPrefs") or {}))


def load_refs(hook, item_names: Iterable[str]) -> QboRefs:
    """Everything in one batch request (six small queries)."""
    from koppel.flows.products_target import query_batch

    return refs_from_rows(query_batch(hook, ref_queries(item_names)))


#: the staging slot where a step leaves the reference data it read for the run's load
REFS_SLOT = "qbo_refs"


def stage_refs(run, refs: QboRefs) -> None:
    """Keep ``refs`` for this run's load (an exists-check that read them along with its
    own look-ups saves the load a request); purged with the run's other staged data."""
    run.store.stage(run.run_key, REFS_SLOT, 0, refs.to_json())


def run_refs(run, item_names: Iterable[str]) -> QboRefs:
    """The reference data staged for this run, else read now."""
    try:
        return QboRefs.from_json(run.store.staged(
            {"run_key": run.run_key, "step": REFS_SLOT, "chunk": 0}))
    except LookupError:
        return load_refs(run.quickbooks, item_names)


def ensure_named(hook, refs: QboRefs, *, items: Iterable[str | None] = (),
                 payment_methods: Iterable[str | None] = (), tenant: str,
                 income_account: str | None = None, dry_run: bool = False) -> None:
    """Create what the tenant's settings name but QuickBooks lacks — helper service items
    (shipping, discount, rounding) and payment methods (only a name in QuickBooks;
    refusing every iDEAL order for want of one would help nobody) — in one batch request
    through the :class:`~koppel.hooks.qbo_writer.QuickBooksWriter`, and add them to ``refs``.

    The request id follows from the names, so a retry never creates twice; a name another
    task created meanwhile (6240, duplicate name) is looked up by the writer and adopted —
    a helper is wanted by its name alone, so any active object by that name is it."""
    from koppel.hooks.qbo_writer import ADOPTED, DRY_RUN, QuickBooksWriter, WriteOp

    missing_items = sorted({n for n in items if n and refs.item_id(n) is None})
    missing_pms = sorted({n for n in payment_methods if n and refs.payment_method_id(n) is None})
    if not missing_items and not missing_pms:
        return
    ops: list[WriteOp] = []
    if missing_items:
        account_id = refs.account_id(income_account)
        if account_id is None:
            raise MissingReference(f"settings.products.accounts.income: QuickBooks has no "
                                   f"account named {income_account!r}")
        ops += [WriteOp(key=f"Item:{name}", operation="create", entity="Item", bid=f"i{n}",
                        payload={"Name": name, "Type": "Service",
                                 "IncomeAccountRef": {"value": account_id}},
                        name=name, matches=_any_by_name,
                        summary=f"create helper Item {name!r} (Service)")
                for n, name in enumerate(missing_items)]
    ops += [WriteOp(key=f"PaymentMethod:{name}", operation="create", entity="PaymentMethod",
                    bid=f"p{n}", payload={"Name": name, "Type": "NON_CREDIT_CARD"},
                    name=name, matches=_any_by_name,
                    summary=f"create PaymentMethod {name!r}")
            for n, name in enumerate(missing_pms)]
    writer = QuickBooksWriter(hook, tenant=tenant, dry_run=dry_run)
    outcomes = writer.write(ops, id_parts=("helpers", *missing_items, "|", *missing_pms))
    for op in ops:
        outcome = outcomes[op.key]
        table = refs.items if op.entity == "Item" else refs.payment_methods
        name = op.payload["Name"]
        if outcome.status == DRY_RUN:
            table[name.casefold()] = {"Id": "(dry run)", "Name": name}
        elif (outcome.written or outcome.status == ADOPTED) and outcome.value:
            table[name.casefold()] = outcome.value
        elif outcome.field == "name":
            raise MissingReference(f"tenant {tenant}: QuickBooks refused to create "
                                   f"{op.entity} {name!r} (duplicate name) and has no active "
                                   f"one by that name")
        elif outcome.fault is not None:
            raise outcome.fault
        else:
            raise MissingReference(f"tenant {tenant}: {op.entity} {name!r}: {outcome.reason}")


def _any_by_name(row: dict[str, Any]) -> str | None:
    """A helper item or payment method is wanted by its name: any active one is it."""
    return None if row.get("Active", True) is not False else "it is inactive"


def treatment_codes(settings, refs):
    """The tenant's tax codes per VAT treatment, resolved to QuickBooks ids (a name
    QuickBooks lacks stays unresolved; an order that needs it fails naming it)."""
    from koppel.domain.vat import TreatmentCodes

    t = settings.vat_treatments
    names = {f"tax_codes.{rate}": name for rate, name in settings.tax_codes.items()}
    names.update({"vat_treatments.intra_eu_b2b": t.intra_eu_b2b, "vat_treatments.export": t.export,
                  "vat_treatments.exempt": t.exempt})
    for country, rates in t.oss.items():
        names.update({f"vat_treatments.oss.{country}.{rate}": name for rate, name in rates.items()})
    domestic = {rate: code for rate, name in settings.tax_codes.items()
                if (code := refs.tax_code_id(name))}
    oss = {country: {rate: code for rate, name in rates.items() if (code := refs.tax_code_id(name))}
           for country, rates in t.oss.items()}
    return TreatmentCodes(
        domestic=domestic, intra_eu_b2b=refs.tax_code_id(t.intra_eu_b2b),
        export=refs.tax_code_id(t.export), exempt=refs.tax_code_id(t.exempt),
        exempt_tax_names=tuple(t.exempt_tax_names), oss=oss, shop_country=t.shop_country,
        names={k: v for k, v in names.items() if v})


def unresolved_tax_codes(settings, refs) -> str:
    """Which of the tenant's domestic tax codes QuickBooks lacks, for an error message."""
    missing = [f"{name!r} (settings.tax_codes.{rate})" for rate, name in settings.tax_codes.items()
               if not refs.tax_code_id(name)]
    if missing:
        return "QuickBooks has no tax code named " + ", ".join(missing)
    return "settings.tax_codes maps no tax code for it"
