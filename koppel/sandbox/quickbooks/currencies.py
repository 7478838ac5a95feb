"""Currencies, company currencies and exchange rates of the QBO sandbox (multicurrency).

Sources (Intuit):
- Manage multiple currencies:
  https://developer.intuit.com/app/developer/qbo/docs/workflows/manage-multiple-currencies
  — multicurrency is off by default, is turned on in the QuickBooks UI only (not through
  the API) and can never be turned off; exchange rates are "the number of home currency
  units it takes to equal one foreign currency unit".
- CompanyCurrency: https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/companycurrency
  — ``{Id, Code, Name, Active, SyncToken, MetaData}``, created with ``{"Code": "GBP"}``,
  deleted by ``Active: false``; the home currency is not one of them.
- ExchangeRate: https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/exchangerate
  — ``GET /exchangerate?sourcecurrencycode=X[&asofdate=yyyy-mm-dd]`` (today when absent);
  ``POST /exchangerate`` with ``SourceCurrencyCode``, ``Rate``, ``AsOfDate`` (mandatory),
  ``TargetCurrencyCode`` defaulting to the home currency; a rate for the home currency as
  source is a validation error; source = target forces the rate to 1.

Sandbox choices (assumed, not Intuit's):
- The currency list is the subset below; any other code (``XYZ``) is unknown. Names follow
  Intuit's examples where they show one (``British Pound Sterling``, ``Dutch Guilder``).
- Default rates are deterministic, not market rates: ``EUR_VALUE`` is what one unit is
  worth in euro; a rate is ``EUR_VALUE[source] / EUR_VALUE[home]`` rounded to 6 decimals.
- A rate set for a date applies from that date on, until a later one is set (the rate for
  a day is the latest set on or before it, else the default).
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

RATE_PLACES = Decimal("0.000001")

#: code → (Intuit display name, value of one unit in EUR: the sandbox's fixed rate table)
CURRENCIES: dict[str, tuple[str, str]] = {
    "EUR": ("Euro", "1"),
    "USD": ("United States Dollar", "0.92"),
    "GBP": ("British Pound Sterling", "1.17"),
    "CAD": ("Canadian Dollar", "0.68"),
    "AUD": ("Australian Dollar", "0.61"),
    "NZD": ("New Zealand Dollar", "0.56"),
    "JPY": ("Japanese Yen", "0.0062"),
    "CHF": ("Swiss Franc", "1.05"),
    "SEK": ("Swedish Krona", "0.088"),
    "NOK": ("Norwegian Krone", "0.086"),
    "DKK": ("Danish Krone", "0.134"),
    "PLN": ("Polish Zloty", "0.23"),
    "CZK": ("Czech Koruna", "0.04"),
    "HUF": ("Hungarian Forint", "0.0025"),
    "RON": ("Romanian Leu", "0.2"),
    "BGN": ("Bulgarian Lev", "0.51"),
    "TRY": ("Turkish Lira", "0.028"),
    "CNY": ("Chinese Yuan Renminbi", "0.127"),
    "HKD": ("Hong Kong Dollar", "0.118"),
    "SGD": ("Singapore Dollar", "0.68"),
    "INR": ("Indian Rupee", "0.011"),
    "ZAR": ("South African Rand", "0.05"),
    "MXN": ("Mexican Peso", "0.05"),
    "BRL": ("Brazilian Real", "0.17"),
    "ANG": ("Dutch Guilder", "0.51"),
    "AED": ("UAE Dirham", "0.25"),
    "ILS": ("Israeli New Shekel", "0.25"),
    "KRW": ("South Korean Won", "0.00068"),
    "THB": ("Thai Baht", "0.026"),
    "ISK": ("Icelandic Krona", "0.0067"),
}


def known(code: str | None) -> bool:
    return bool(code) and str(code).upper() in CURRENCIES


def name(code: str) -> str:
    return CURRENCIES[code.upper()][0]


def ref(code: str) -> dict[str, str]:
    """A ``CurrencyRef`` as QBO writes it: the ISO code and the currency's name."""
    return {"value": code.upper(), "name": name(code)}


def code_of(value: Any) -> str | None:
    """The ISO code in a ``CurrencyRef`` (``{"value": "USD"}``) or a bare string."""
    if isinstance(value, dict):
        value = value.get("value")
    if value in (None, ""):
        return None
    return str(value).strip().upper()


def default_rate(source: str, home: str) -> Decimal:
    """Home units per unit of ``source`` from the fixed table."""
    if source.upper() == home.upper():
        return Decimal(1)
    value = Decimal(CURRENCIES[source.upper()][1]) / Decimal(CURRENCIES[home.upper()][1])
    return value.quantize(RATE_PLACES, rounding=ROUND_HALF_UP)


def as_date(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)[:10])
    except (TypeError, ValueError):
        return None
