"""``koppel doctor <tenant>``: check a tenant file against its live systems.

Guided onboarding (issue 21, item 9): the connections work, every account, tax code,
item, payment method and term the file names exists in the QuickBooks company, the
tenant's Airflow pools exist, and the shop's currency and VAT rates fit the company's
currency and tax setup. Each finding names the tenant-file field, says what is wrong and
lists the company's real names to choose from.

Two halves: :func:`gather` asks the live systems (the tenant's own connections, read
only — no write, and the QuickBooks token is used the way a run uses it), and
:func:`diagnose` is pure: ``(tenant, Facts) -> [Finding]``. Findings carry setup names
only (accounts, tax codes, items, payment methods, terms, pools, currencies): never a
customer, an order or a secret.

Severities: ``problem`` (a run would fail or book wrongly; the command exits 1), ``note``
(koppel handles it, e.g. a helper item the first orders run creates) and ``ok``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Callable, Iterable, Mapping

PROBLEM, NOTE, OK = "problem", "note", "ok"
#: how many real names a finding lists before "… and N more"
MAX_CHOICES = 30


@dataclass(frozen=True)
class Finding:
    severity: str  # problem | note | ok
    area: str  # connections | accounts | tax_codes | items | payment_methods | terms | pools | currency | tax_setup
    field: str  # where in the tenant file (or the Airflow object) it is
    message: str
    choices: tuple[str, ...] = ()

    def render(self) -> str:
        label = {PROBLEM: "PROBLEM", NOTE: "note", OK: "ok"}[self.severity]
        text = f"{label:<7} {self.field}: {self.message}"
        if self.choices:
            shown = list(self.choices[:MAX_CHOICES])
            more = len(self.choices) - len(shown)
            text += "\n        choose from: " + ", ".join(shown) + (
                f" … and {more} more" if more > 0 else "")
        return text


@dataclass
class ConnectionCheck:
    ok: bool
    message: str


@dataclass
class Facts:
    """What the live systems said. ``None`` means "could not be read" (a failed
    connection): the checks that need it are reported as not done."""

    lightspeed: ConnectionCheck | None = None
    quickbooks: ConnectionCheck | None = None
    shop_currency: str | None = None
    shop_taxes: list[dict[str, Any]] | None = None  # {title, rate (fraction)}
    accounts: list[dict[str, Any]] | None = None
    tax_codes: list[dict[str, Any]] | None = None
    tax_rates: list[dict[str, Any]] | None = None
    payment_methods: list[dict[str, Any]] | None = None
    terms: list[dict[str, Any]] | None = None
    items: list[dict[str, Any]] | None = None  # the referenced ones and the service items
    home_currency: str | None = None
    multicurrency: bool = False
    company_currencies: list[str] = field(default_factory=list)
    pools: dict[str, int] | None = None  # Airflow pool name -> slots
    pools_error: str | None = None


@dataclass
class Report:
    tenant: str
    findings: list[Finding]

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == PROBLEM]

    @property
    def notes(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == NOTE]

    def render(self, *, verbose: bool = True) -> str:
        lines = [f"koppel doctor: tenant {self.tenant}"]
        for finding in self.findings:
            if verbose or finding.severity != OK:
                lines.append("  " + finding.render().replace("\n", "\n  "))
        lines.append(f"{len(self.problems)} problem(s), {len(self.notes)} note(s), "
                     f"{sum(f.severity == OK for f in self.findings)} check(s) passed")
        return "\n".join(lines)


# -- references in a tenant file ------------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    kind: str  # account | tax_code | item | item_sku | payment_method | term
    field: str
    name: str
    #: koppel creates it when QuickBooks lacks it (helper items, sales receipt payment methods)
    created_by_koppel: bool = False
    #: account types that fit (for the choices), empty: any
    account_types: tuple[str, ...] = ()


_INCOME = ("Income", "Other Income")
_EXPENSE = ("Cost of Goods Sold", "Expense")
_ASSET = ("Other Current Asset",)
_DEPOSIT = ("Bank", "Other Current Asset")


def references(tenant: Any) -> list[Reference]:
    """Every QuickBooks name the tenant file names, with the field it is in."""
    s = tenant.settings
    refs: list[Reference] = []
    accounts = s.products.accounts
    refs.append(Reference("account", "settings.products.accounts.income", accounts.income,
                          account_types=_INCOME))
    if s.products.inventory:
        if accounts.expense:
            refs.append(Reference("account", "settings.products.accounts.expense",
                                  accounts.expense, account_types=_EXPENSE))
        if accounts.asset:
            refs.append(Reference("account", "settings.products.accounts.asset", accounts.asset,
                                  account_types=_ASSET))
    for title, name in s.payments.deposit_accounts.items():
        refs.append(Reference("account", f"settings.payments.deposit_accounts.{title}", name,
                              account_types=_DEPOSIT))
    if s.payments.default_deposit_account:
        refs.append(Reference("account", "settings.payments.default_deposit_account",
                              s.payments.default_deposit_account, account_types=_DEPOSIT))
    if s.refunds.account:
        refs.append(Reference("account", "settings.refunds.account", s.refunds.account,
                              account_types=_DEPOSIT))
    for rate, name in s.tax_codes.items():
        refs.append(Reference("tax_code", f"settings.tax_codes.{rate}", name))
    t = s.vat_treatments
    for attr in ("intra_eu_b2b", "export", "exempt"):
        if getattr(t, attr):
            refs.append(Reference("tax_code", f"settings.vat_treatments.{attr}", getattr(t, attr)))
    for country, rates in t.oss.items():
        for rate, name in rates.items():
            refs.append(Reference("tax_code", f"settings.vat_treatments.oss.{country}.{rate}",
                                  name))
    if s.rounding.enabled and s.rounding.tax_code:
        refs.append(Reference("tax_code", "settings.rounding.tax_code", s.rounding.tax_code))
    for attr in ("shipping_item", "payment_fee_item", "discount_item"):
        if getattr(s, attr):
            refs.append(Reference("item", f"settings.{attr}", getattr(s, attr),
                                  created_by_koppel=True))
    if s.rounding.enabled and s.rounding.item:
        refs.append(Reference("item", "settings.rounding.item", s.rounding.item,
                              created_by_koppel=True))
    if s.fallback_item_sku and s.unknown_sku in ("fallback_item", "create_item"):
        refs.append(Reference("item_sku", "settings.fallback_item_sku", s.fallback_item_sku,
                              created_by_koppel=True))
    receipts = s.document_type == "sales_receipt"
    for title, name in s.payment_methods.items():
        refs.append(Reference("payment_method", f"settings.payment_methods.{title}", name,
                              created_by_koppel=receipts))
    if tenant.flows.orders_reverse.enabled:
        for name in s.reverse_orders.payment_methods:
            refs.append(Reference("payment_method",
                                  f"settings.reverse_orders.payment_methods.{name}", name))
    for title, name in s.payment_terms.items():
        refs.append(Reference("term", f"settings.payment_terms.{title}", name))
    if s.default_payment_term:
        refs.append(Reference("term", "settings.default_payment_term", s.default_payment_term))
    return refs


# -- the pure checks ------------------------------------------------------------------------


def _names(rows: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    return {str(r.get("Name", "")).casefold(): r for r in rows
            if r.get("Name") and r.get("Active", True) is not False}


def _sorted_names(rows: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    return tuple(sorted({str(r["Name"]) for r in rows if r.get("Name")
                         and r.get("Active", True) is not False}, key=str.casefold))


def _decimal(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def _pct(value: Decimal) -> str:
    return f"{format(value.normalize(), 'f')} %"


def tax_code_rates(tax_codes: Iterable[Mapping[str, Any]],
                   tax_rates: Iterable[Mapping[str, Any]]) -> dict[str, Decimal | None]:
    """Tax code name (casefolded) → the sales rate it charges (the sum of its sales tax
    rates, in percent), None when it has no sales rate."""
    rate_values = {str(r.get("Id")): _decimal(r.get("RateValue")) for r in tax_rates}
    out: dict[str, Decimal | None] = {}
    for code in tax_codes:
        details = (code.get("SalesTaxRateList") or {}).get("TaxRateDetail") or []
        values = [rate_values.get(str((d.get("TaxRateRef") or {}).get("value"))) for d in details]
        known = [v for v in values if v is not None]
        out[str(code.get("Name", "")).casefold()] = sum(known, Decimal(0)) if known else None
    return out


def _tax_choices(facts: Facts) -> tuple[str, ...]:
    rates = tax_code_rates(facts.tax_codes or [], facts.tax_rates or [])
    out = []
    for name in _sorted_names(facts.tax_codes or []):
        rate = rates.get(name.casefold())
        out.append(f"{name} ({_pct(rate)})" if rate is not None else name)
    return tuple(out)


def _account_choices(facts: Facts, types: tuple[str, ...]) -> tuple[str, ...]:
    rows = facts.accounts or []
    fitting = [r for r in rows if not types or r.get("AccountType") in types]
    return _sorted_names(fitting or rows)


def check_references(tenant: Any, facts: Facts) -> list[Finding]:
    """Every named account, tax code, item, payment method and term against the company."""
    findings: list[Finding] = []
    if facts.accounts is None:
        return [Finding(PROBLEM, "accounts", "settings",
                        "accounts, tax codes, items, payment methods and terms not checked: "
                        "the QuickBooks connection does not work")]
    accounts = _names(facts.accounts)
    tax_codes = _names(facts.tax_codes or [])
    methods = _names(facts.payment_methods or [])
    terms = _names(facts.terms or [])
    items = _names(facts.items or [])
    skus = {str(r.get("Sku")): r for r in facts.items or []
            if r.get("Sku") and r.get("Active", True) is not False}
    income = tenant.settings.products.accounts.income
    income_ok = income.casefold() in accounts
    service_items = _sorted_names(r for r in facts.items or [] if r.get("Type") == "Service")
    rates = tax_code_rates(facts.tax_codes or [], facts.tax_rates or [])
    for ref in references(tenant):
        if ref.kind == "account":
            found = accounts.get(ref.name.casefold())
            if found is None:
                findings.append(Finding(PROBLEM, "accounts", ref.field,
                                        f"QuickBooks has no account named {ref.name!r}",
                                        _account_choices(facts, ref.account_types)))
            elif ref.account_types and found.get("AccountType") not in ref.account_types:
                findings.append(Finding(
                    PROBLEM, "accounts", ref.field,
                    f"account {ref.name!r} is of type {found.get('AccountType')!r}; this "
                    f"setting needs one of type {' or '.join(ref.account_types)}",
                    _account_choices(facts, ref.account_types)))
            else:
                findings.append(Finding(OK, "accounts", ref.field,
                                        f"account {found['Name']!r} exists"))
        elif ref.kind == "tax_code":
            found = tax_codes.get(ref.name.casefold())
            if found is None:
                findings.append(Finding(PROBLEM, "tax_codes", ref.field,
                                        f"QuickBooks has no tax code named {ref.name!r}",
                                        _tax_choices(facts)))
            else:
                rate = rates.get(ref.name.casefold())
                shown = f" ({_pct(rate)})" if rate is not None else ""
                findings.append(Finding(OK, "tax_codes", ref.field,
                                        f"tax code {found['Name']!r}{shown} exists"))
        elif ref.kind in ("item", "item_sku"):
            found = (skus.get(ref.name) if ref.kind == "item_sku"
                     else items.get(ref.name.casefold()))
            what = f"item with SKU {ref.name!r}" if ref.kind == "item_sku" else \
                f"item named {ref.name!r}"
            if found is not None:
                findings.append(Finding(OK, "items", ref.field,
                                        f"{what} exists ({found.get('Type', 'item')})"))
            elif income_ok and ref.kind == "item_sku":
                findings.append(Finding(
                    NOTE, "items", ref.field,
                    f"QuickBooks has no {what}: the first order that needs it creates it "
                    f"(on account {income!r}); to use an existing item, set this to its SKU"))
            elif income_ok:
                findings.append(Finding(
                    NOTE, "items", ref.field,
                    f"QuickBooks has no {what}: the first run that needs it creates it "
                    f"(a Service item on account {income!r}); to use an existing item, "
                    f"name it here", service_items))
            else:
                findings.append(Finding(
                    PROBLEM, "items", ref.field,
                    f"QuickBooks has no {what}, and koppel cannot create it: the income "
                    f"account {income!r} (settings.products.accounts.income) does not exist",
                    () if ref.kind == "item_sku" else service_items))
        elif ref.kind == "payment_method":
            found = methods.get(ref.name.casefold())
            if found is not None:
                findings.append(Finding(OK, "payment_methods", ref.field,
                                        f"payment method {found['Name']!r} exists"))
            elif ref.created_by_koppel:
                findings.append(Finding(
                    NOTE, "payment_methods", ref.field,
                    f"QuickBooks has no payment method named {ref.name!r}: the first sales "
                    f"receipt paid with it creates it; to use an existing one, name it here",
                    _sorted_names(facts.payment_methods or [])))
            else:
                findings.append(Finding(PROBLEM, "payment_methods", ref.field,
                                        f"QuickBooks has no payment method named {ref.name!r}",
                                        _sorted_names(facts.payment_methods or [])))
        elif ref.kind == "term":
            found = terms.get(ref.name.casefold())
            if found is None:
                findings.append(Finding(PROBLEM, "terms", ref.field,
                                        f"QuickBooks has no term named {ref.name!r}",
                                        _sorted_names(facts.terms or [])))
            else:
                findings.append(Finding(OK, "terms", ref.field,
                                        f"term {found['Name']!r} exists"))
    return findings


def check_currency(tenant: Any, facts: Facts) -> list[Finding]:
    """The shop's currency against the company's home currency and multicurrency."""
    if facts.shop_currency is None or facts.home_currency is None:
        return [Finding(PROBLEM, "currency", "settings.multicurrency",
                        "currencies not compared: "
                        + ("the Lightspeed connection does not work"
                           if facts.shop_currency is None
                           else "the QuickBooks connection does not work"))]
    shop, home = facts.shop_currency.upper(), facts.home_currency.upper()
    s = tenant.settings
    if shop == home:
        return [Finding(OK, "currency", "settings.multicurrency",
                        f"the shop sells in {shop}, the company's home currency")]
    findings = []
    if not facts.multicurrency:
        findings.append(Finding(
            PROBLEM, "currency", "settings.multicurrency",
            f"the shop sells in {shop} but the QuickBooks company's home currency is {home} "
            f"and multicurrency is off: turn multicurrency on in QuickBooks (Account and "
            f"settings → Advanced → Currency) and add {shop}, or connect a company whose "
            f"home currency is {shop}"))
    elif shop not in {c.upper() for c in facts.company_currencies}:
        findings.append(Finding(
            PROBLEM, "currency", "settings.multicurrency",
            f"the shop sells in {shop}, which the QuickBooks company (home currency {home}) "
            f"has not added as a currency",
            tuple(sorted({home, *(c.upper() for c in facts.company_currencies)}))))
    if not s.multicurrency:
        findings.append(Finding(
            PROBLEM, "currency", "settings.multicurrency",
            f"the shop sells in {shop}, not in the company's home currency {home}: set "
            f"settings.multicurrency to true"))
    return findings


def check_tax_setup(tenant: Any, facts: Facts) -> list[Finding]:
    """Each mapped tax code charges the rate it is mapped for, the zero-rated treatments
    charge 0 %, and every VAT rate the shop charges has a tax code."""
    if facts.tax_codes is None:
        return []  # reported by check_references
    findings: list[Finding] = []
    s = tenant.settings
    rates = tax_code_rates(facts.tax_codes, facts.tax_rates or [])
    choices = _tax_choices(facts)

    def expect(field_: str, name: str, wanted: Decimal) -> None:
        if name.casefold() not in rates:
            return  # a missing code is a reference problem
        rate = rates[name.casefold()]
        if rate is None:
            findings.append(Finding(PROBLEM, "tax_setup", field_,
                                    f"tax code {name!r} has no sales tax rate; this setting "
                                    f"needs one charging {_pct(wanted)}", choices))
        elif rate != wanted:
            findings.append(Finding(PROBLEM, "tax_setup", field_,
                                    f"tax code {name!r} charges {_pct(rate)}, not "
                                    f"{_pct(wanted)}", choices))

    for rate, name in s.tax_codes.items():
        expect(f"settings.tax_codes.{rate}", name, Decimal(rate))
    t = s.vat_treatments
    for attr in ("intra_eu_b2b", "export", "exempt"):
        if getattr(t, attr):
            expect(f"settings.vat_treatments.{attr}", getattr(t, attr), Decimal(0))
    for country, by_rate in t.oss.items():
        for rate, name in by_rate.items():
            expect(f"settings.vat_treatments.oss.{country}.{rate}", name, Decimal(rate))
    if s.rounding.enabled and s.rounding.tax_code:
        expect("settings.rounding.tax_code", s.rounding.tax_code, Decimal(0))
    if facts.shop_taxes is not None:
        mapped = {Decimal(rate) for rate in s.tax_codes}
        for tax in facts.shop_taxes:
            fraction = _decimal(tax.get("rate"))
            if fraction is None:
                continue
            percent = (fraction * 100).normalize()
            if percent not in mapped:
                findings.append(Finding(
                    PROBLEM, "tax_setup", f"settings.tax_codes.{format(percent, 'f')}",
                    f"the shop charges {_pct(percent)} (tax {tax.get('title')!r}) but "
                    f"settings.tax_codes maps no tax code for it", choices))
        if not findings:
            findings.append(Finding(OK, "tax_setup", "settings.tax_codes",
                                    "every VAT rate of the shop has a tax code charging it"))
    return findings


def check_pools(tenant: Any, facts: Facts) -> list[Finding]:
    from koppel.flows.dag import pool_name
    from koppel.pools import API_LIMITS, pool_slots

    if facts.pools is None:
        return [Finding(PROBLEM, "pools", "pools",
                        f"Airflow's pools not read ({facts.pools_error or 'no metadata database'})")]
    findings = []
    for api, limits in API_LIMITS.items():
        name = pool_name(tenant.tenant, api)
        if name not in facts.pools:
            findings.append(Finding(
                PROBLEM, "pools", f"pool {name}",
                f"the pool does not exist, so the tenant's {limits.label} tasks are never "
                f"scheduled: run `koppel pools {tenant.tenant} --apply`"))
        elif facts.pools[name] < 1:
            findings.append(Finding(PROBLEM, "pools", f"pool {name}",
                                    f"the pool has {facts.pools[name]} slots: set it to "
                                    f"{pool_slots(limits)} (`koppel pools --apply`)"))
        else:
            findings.append(Finding(OK, "pools", f"pool {name}",
                                    f"exists ({facts.pools[name]} slots)"))
    return findings


def check_connections(tenant: Any, facts: Facts) -> list[Finding]:
    findings = []
    for api, check in (("lightspeed", facts.lightspeed), ("quickbooks", facts.quickbooks)):
        conn_id = getattr(tenant.connections, api)
        if check is None:
            continue
        findings.append(Finding(OK if check.ok else PROBLEM, "connections",
                                f"connections.{api} ({conn_id})", check.message))
    return findings


def diagnose(tenant: Any, facts: Facts) -> Report:
    """Every finding for ``tenant`` given what the live systems said (pure)."""
    findings = (check_connections(tenant, facts) + check_references(tenant, facts)
                + check_tax_setup(tenant, facts) + check_currency(tenant, facts)
                + check_pools(tenant, facts))
    order = {PROBLEM: 0, NOTE: 1, OK: 2}
    findings.sort(key=lambda f: order[f.severity])
    return Report(tenant.tenant, findings)


# -- asking the live systems ------------------------------------------------------------


def get_connection(conn_id: str) -> Any:
    """An Airflow connection from wherever Airflow keeps it — environment, secrets backend
    or the metadata database (the Task SDK's ``BaseHook.get_connection`` sees the metadata
    database only inside a task, and the doctor runs outside one)."""
    try:
        from airflow.models.connection import Connection
    except ImportError:  # pragma: no cover - a Task-SDK-only installation
        from airflow.sdk import BaseHook

        return BaseHook.get_connection(conn_id)
    return Connection.get_connection_from_secrets(conn_id)


def _connection_check(conn_id: str, conn_type: str, label: str,
                      make_hook: Callable[[Any], Any]) -> tuple[ConnectionCheck, Any]:
    try:
        conn = get_connection(conn_id)
    except Exception as exc:  # AirflowNotFoundException and the like
        return ConnectionCheck(False, f"the Airflow connection {conn_id!r} does not exist "
                                      f"({type(exc).__name__}): create it with type "
                                      f"{conn_type!r} ({label})"), None
    if conn.conn_type != conn_type:
        return ConnectionCheck(False, f"the Airflow connection {conn_id!r} has type "
                                      f"{conn.conn_type!r}; it needs {conn_type!r} ({label})"), None
    hook = make_hook(conn)
    ok, message = hook.test_connection()
    if not ok:
        hook.close()
    return ConnectionCheck(ok, message), hook if ok else None


def _lightspeed_hook(conn: Any) -> Any:
    from koppel.hooks.lightspeed import LightspeedHook, LightspeedSettings

    return LightspeedHook(settings=LightspeedSettings.from_connection(conn))


def _quickbooks_hook(conn: Any) -> Any:
    from koppel.hooks.quickbooks import QBOSettings, QuickBooksHook
    from koppel.hooks.tokens import mask

    settings = QBOSettings.from_connection(conn)
    mask(settings.client_secret, settings.refresh_token)
    return QuickBooksHook(settings=settings)


def airflow_pools() -> dict[str, int]:
    """Airflow's pools (name → slots) from its metadata database."""
    from airflow.models.pool import Pool
    from airflow.utils.session import create_session

    with create_session() as session:
        return {pool.pool: int(pool.slots) for pool in session.query(Pool)}


def gather(tenant: Any, *, pools: Callable[[], dict[str, int]] = airflow_pools,
           lightspeed_hook: Callable[[Any], Any] = _lightspeed_hook,
           quickbooks_hook: Callable[[Any], Any] = _quickbooks_hook) -> Facts:
    """Ask the tenant's live systems (read only) for what :func:`diagnose` checks; the
    hooks are built from the connections (``lightspeed_hook(conn)``, ``quickbooks_hook(conn)``)."""
    facts = Facts()
    facts.lightspeed, ls = _connection_check(tenant.connections.lightspeed, "lightspeed_ecom",
                                             "Lightspeed eCom", lightspeed_hook)
    if ls is not None:
        try:
            facts.shop_currency = ls.get_shop().currency_code
            taxes = ls.request("GET", "taxes.json").get("taxes") or []
            facts.shop_taxes = list(taxes.values()) if isinstance(taxes, dict) else list(taxes)
        finally:
            ls.close()
    facts.quickbooks, qb = _connection_check(tenant.connections.quickbooks,
                                             "quickbooks_online", "QuickBooks Online",
                                             quickbooks_hook)
    if qb is not None:
        try:
            _read_company(qb, tenant, facts)
        finally:
            qb.close()
    try:
        facts.pools = pools()
    except Exception as exc:  # no metadata database reachable
        facts.pools, facts.pools_error = None, f"{type(exc).__name__}: {exc}"[:300]
    return facts


def _read_company(qb: Any, tenant: Any, facts: Facts) -> None:
    facts.accounts = list(qb.query_all("Account"))
    facts.tax_codes = list(qb.query_all("TaxCode"))
    facts.tax_rates = list(qb.query_all("TaxRate"))
    facts.payment_methods = list(qb.query_all("PaymentMethod"))
    facts.terms = list(qb.query_all("Term"))
    names = [r.name for r in references(tenant) if r.kind == "item"]
    skus = [r.name for r in references(tenant) if r.kind == "item_sku"]
    items: dict[str, dict[str, Any]] = {}
    for row in qb.query_in("Item", "Name", names, select="*, Sku"):
        items[str(row["Id"])] = row
    for row in qb.query_in("Item", "Sku", skus, select="*, Sku"):
        items[str(row["Id"])] = row
    for row in qb.query_all("Item", "Type = 'Service'"):
        items.setdefault(str(row["Id"]), row)
    facts.items = list(items.values())
    prefs = next(iter(qb.query("SELECT * FROM Preferences").get("Preferences") or []), {})
    currency = prefs.get("CurrencyPrefs") or {}
    home = (currency.get("HomeCurrency") or {}).get("value")
    facts.home_currency = str(home).upper() if home else None
    facts.multicurrency = bool(currency.get("MultiCurrencyEnabled"))
    if facts.multicurrency:
        facts.company_currencies = [str(r.get("Code")) for r in qb.query_all("CompanyCurrency")
                                    if r.get("Code") and r.get("Active", True) is not False]


def doctor(tenant: Any, **gather_kwargs: Any) -> Report:
    """Gather and diagnose."""
    return diagnose(tenant, gather(tenant, **gather_kwargs))
