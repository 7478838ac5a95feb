"""Customers and currencies: QuickBooks fixes a customer's currency at creation and books
a document only in its customer's currency, so an order's customer is matched and made
in the order's currency (the pure decisions, the upserter's names and links)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from koppel.domain.customers import (
    CustomerPolicy,
    currency_display_name,
    customer_changes,
    customer_currency,
    decide_customer,
    email_suffix,
)
from koppel.domain.records import MappedCustomer
from koppel.flows.customer_upsert import (
    CustomerOutcome,
    CustomerUpserter,
    _candidate_names,
    _Group,
)

GBP = CustomerPolicy(default_customer_id="1", currency="GBP", home_currency="EUR")
HOME = CustomerPolicy(default_customer_id="1", home_currency="EUR")
UNKNOWN = CustomerPolicy(default_customer_id="1")  # no currencies known: as before


def person(**overrides) -> MappedCustomer:
    data = {"source_id": 7, "email": "jan@example.com", "given_name": "Jan",
            "family_name": "Jansen", "phone": "+31 20 123 4567"}
    data.update(overrides)
    return MappedCustomer.model_validate(data)


def row(id_: int, currency: str | None, email: str = "jan@example.com", **fields):
    record = {"Id": str(id_), "SyncToken": "0", "DisplayName": f"Customer {id_}",
              "PrimaryEmailAddr": {"Address": email}, "GivenName": "Jan", "FamilyName": "Jansen",
              "PrimaryPhone": {"FreeFormNumber": "+31 20 123 4567"}, **fields}
    if currency:
        record["CurrencyRef"] = {"value": currency, "name": currency}
    return record


# -- the policy ----------------------------------------------------------------------------
def test_policy_wants_the_order_currency():
    assert GBP.wanted_currency == "GBP" and GBP.foreign
    assert HOME.wanted_currency == "EUR" and not HOME.foreign
    assert UNKNOWN.wanted_currency is None and not UNKNOWN.foreign
    lower = CustomerPolicy(default_customer_id="1", currency="gbp", home_currency="eur")
    assert lower.wanted_currency == "GBP" and lower.foreign
    same = CustomerPolicy(default_customer_id="1", currency="EUR", home_currency="EUR")
    assert same.wanted_currency == "EUR" and not same.foreign


def test_policy_accepts_customers_of_its_currency_only():
    assert GBP.accepts(row(1, "GBP")) and GBP.accepts(row(1, "gbp"))
    assert not GBP.accepts(row(1, "EUR"))
    assert not GBP.accepts(row(1, None))  # no CurrencyRef: the home currency
    assert HOME.accepts(row(1, "EUR")) and HOME.accepts(row(1, None))
    assert not HOME.accepts(row(1, "GBP"))
    assert all(UNKNOWN.accepts(row(1, c)) for c in ("EUR", "GBP", None))
    assert customer_currency(row(1, None), "eur") == "EUR"
    assert customer_currency(row(1, "usd"), "EUR") == "USD"
    assert customer_currency(row(1, None)) is None


# -- decisions in a foreign currency ---------------------------------------------------------
def test_a_new_person_in_a_foreign_currency_is_created_in_it():
    decision = decide_customer(person(), policy=GBP)
    assert decision.action == "create"
    assert decision.payload["DisplayName"] == "Jan Jansen"
    assert decision.payload["CurrencyRef"] == {"value": "GBP"}


def test_same_email_only_in_another_currency_makes_a_second_customer_named_by_currency():
    decision = decide_customer(person(), policy=GBP, email_matches=[row(3, "EUR")],
                               taken={"Jan Jansen"})
    assert decision.action == "create"
    assert decision.payload["DisplayName"] == "Jan Jansen (GBP)"
    assert decision.payload["CurrencyRef"] == {"value": "GBP"}
    assert "only in other currencies" in decision.reason
    # deterministic, and the usual clash handling applies to the currency name
    again = decide_customer(person(), policy=GBP, email_matches=[row(3, "EUR")],
                            taken={"Jan Jansen", "jan jansen (gbp)"})
    assert again.payload["DisplayName"] == f"Jan Jansen (GBP) ({email_suffix('jan@example.com')})"
    assert decide_customer(person(), policy=GBP, email_matches=[row(3, "EUR")],
                           taken={"Jan Jansen", "jan jansen (gbp)"}).payload == again.payload


def test_the_customer_in_the_order_currency_wins_over_a_lower_id_in_another():
    decision = decide_customer(person(), policy=GBP,
                               email_matches=[row(3, "EUR"), row(9, "GBP"), row(4, "USD")])
    assert decision.action == "use_existing" and decision.customer_id == "9"
    assert decision.warnings == ()  # one customer in this currency: no ambiguity
    two = decide_customer(person(), policy=GBP,
                          email_matches=[row(3, "EUR"), row(12, "GBP"), row(9, "GBP")])
    assert two.customer_id == "9" and "2 QBO customers" in two.warnings[0]


def test_a_company_in_another_currency_is_not_a_parent():
    acme_eur = row(5, "EUR", email="info@acme.example", CompanyName="Acme BV",
                   DisplayName="Acme BV")
    decision = decide_customer(person(company_name="Acme BV"), policy=GBP,
                               company_match=acme_eur, taken={"Acme BV"})
    assert decision.action == "create"
    assert "ParentRef" not in decision.payload
    assert decision.payload["DisplayName"] == "Acme BV (GBP)"
    assert decision.payload["CompanyName"] == "Acme BV"
    assert decision.payload["CurrencyRef"] == {"value": "GBP"}
    assert "company is in QuickBooks only in other currencies" in decision.reason


def test_a_contact_of_a_company_in_the_currency_is_its_sub_customer_in_that_currency():
    acme_gbp = row(6, "GBP", email="info@acme.example", CompanyName="Acme BV",
                   DisplayName="Acme BV (GBP)")
    decision = decide_customer(person(company_name="Acme BV"), policy=GBP, company_match=acme_gbp)
    assert decision.action == "create_sub"
    assert decision.payload["ParentRef"] == {"value": "6"}
    assert decision.payload["CurrencyRef"] == {"value": "GBP"}
    assert decision.payload["DisplayName"] == "Acme BV - Jan Jansen"
    # the contact is in QuickBooks in EUR already (under the EUR company): named by currency
    elsewhere = decide_customer(person(company_name="Acme BV"), policy=GBP,
                                email_matches=[row(3, "EUR")], company_match=acme_gbp)
    assert elsewhere.action == "create_sub"
    assert elsewhere.payload["DisplayName"] == "Acme BV - Jan Jansen (GBP)"


def test_updates_never_send_the_currency():
    existing = row(9, "GBP", PrimaryPhone={"FreeFormNumber": "+31 20 000 0000"})
    decision = decide_customer(person(), policy=GBP, email_matches=[existing])
    assert decision.action == "use_existing" and decision.update is not None
    assert "CurrencyRef" not in decision.update
    assert decision.update["PrimaryPhone"] == {"FreeFormNumber": "+31 20 123 4567"}
    assert customer_changes(row(9, "GBP"), person(), policy=GBP) is None


# -- decisions in the home currency ----------------------------------------------------------
def test_a_home_currency_order_never_lands_on_a_foreign_customer():
    decision = decide_customer(person(), policy=HOME, email_matches=[row(3, "GBP"), row(9, "EUR")])
    assert decision.action == "use_existing" and decision.customer_id == "9"
    only_gbp = decide_customer(person(), policy=HOME, email_matches=[row(3, "GBP")],
                               taken={"Jan Jansen"})
    assert only_gbp.action == "create"
    assert only_gbp.payload["DisplayName"] == "Jan Jansen (EUR)"
    assert "CurrencyRef" not in only_gbp.payload  # QuickBooks' default: the home currency
    assert decide_customer(person(), policy=HOME, email_matches=[row(3, None)]).customer_id == "3"


def test_without_known_currencies_matching_is_as_before():
    decision = decide_customer(person(), policy=UNKNOWN,
                               email_matches=[row(3, "GBP"), row(9, "EUR")])
    assert decision.action == "use_existing" and decision.customer_id == "3"
    created = decide_customer(person(), policy=UNKNOWN)
    assert created.payload["DisplayName"] == "Jan Jansen" and "CurrencyRef" not in created.payload


def test_currency_names_fit_quickbooks_limit():
    long = "Zeer " * 30 + "Lange Naam"
    name = currency_display_name(long, "gbp")
    assert name.endswith(" (GBP)") and len(name) <= 100
    assert currency_display_name("Jan Jansen", "usd") == "Jan Jansen (USD)"


# -- the upserter: currencies, names and links ---------------------------------------------
@pytest.fixture
def run(tmp_path):
    from koppel.store.engine import get_engine
    from koppel.store.state import StateStore
    from koppel.tenants.model import DefaultCustomer

    tenant = SimpleNamespace(tenant="t-currency",
                             settings=SimpleNamespace(default_customer=DefaultCustomer(
                                 display_name="Webshop klant", email="shop@example.com")))
    return SimpleNamespace(quickbooks=SimpleNamespace(realm_id="r1"), tenant=tenant,
                           tenant_id=tenant.tenant, dry_run=False,
                           store=StateStore(get_engine(f"sqlite:///{tmp_path / 'state.db'}")))


def test_the_upserter_keeps_its_old_call_and_knows_foreign_currencies(run):
    plain = CustomerUpserter(run)
    assert plain.currency is None and plain.home_currency is None
    assert plain.link_type == "Customer" and plain.default_name() == "Webshop klant"
    assert "CurrencyRef" not in plain._default_payload()
    assert plain.policy() == CustomerPolicy(default_customer_id="")

    home = CustomerUpserter(run, currency="eur", home_currency="EUR")
    assert home.currency is None and home.home_currency == "EUR"
    assert home.link_type == "Customer" and home.default_name() == "Webshop klant"
    assert home.policy().wanted_currency == "EUR" and not home.policy().foreign

    gbp = CustomerUpserter(run, currency="gbp", home_currency="EUR")
    assert gbp.currency == "GBP" and gbp.link_type == "Customer:GBP"
    assert gbp.default_name() == "Webshop klant (GBP)"
    assert gbp._default_payload() == {
        "DisplayName": "Webshop klant (GBP)", "CurrencyRef": {"value": "GBP"},
        "PrimaryEmailAddr": {"Address": "shop@example.com"},
        "Notes": "koppel: default customer for orders without usable customer data"}
    assert gbp.policy().foreign and gbp.policy().wanted_currency == "GBP"


def test_foreign_lookups_also_ask_for_the_currency_names():
    groups = [_Group("jan@example.com", "jan@example.com", person()),
              _Group("piet@acme.example", "piet@acme.example",
                     person(email="piet@acme.example", given_name="Piet", company_name="Acme"))]
    home = _candidate_names(groups)
    foreign = _candidate_names(groups, "GBP")
    assert home == _candidate_names(groups, None)  # home: the same look-up as ever
    assert foreign - home == {"Jan Jansen (GBP)", "Acme (GBP)", "Acme - Piet Jansen (GBP)"}


def test_links_are_kept_per_currency(run):
    """An earlier run linked shop customer 7 to its EUR customer 58: a GBP upsert neither
    follows nor overwrites that link, and keeps its own."""
    store = run.store
    store.save_xref(run.tenant_id, "customer", "7", "Customer", "58", content_hash="h")
    groups = [_Group("jan@example.com", "jan@example.com", person(source_id="7"))]

    gbp = CustomerUpserter(run, currency="GBP", home_currency="EUR")
    assert gbp._known_ids(groups) == {}
    gbp._remember(groups, {"jan@example.com": CustomerOutcome("61", "created")})
    assert gbp._known_ids(groups) == {"jan@example.com": "61"}

    for upserter in (CustomerUpserter(run), CustomerUpserter(run, home_currency="EUR"),
                     CustomerUpserter(run, currency="EUR", home_currency="EUR")):
        assert upserter._known_ids(groups) == {"jan@example.com": "58"}
    links = store.xrefs(run.tenant_id, "customer", ["7"], target_type="Customer")
    assert links["7"].target_id == "58" and links["7"].content_hash == "h"  # untouched
    usd = CustomerUpserter(run, currency="USD", home_currency="EUR")
    assert usd._known_ids(groups) == {}
    # a data subject's erasure removes every currency's link (by source type and id)
    store.erase_sources(run.tenant_id, {"customer": ["7"]})
    assert gbp._known_ids(groups) == {} and CustomerUpserter(run)._known_ids(groups) == {}


def test_a_dry_run_keeps_the_currency_of_what_it_would_create(run):
    run.dry_run = True
    gbp = CustomerUpserter(run, currency="GBP", home_currency="EUR")
    decision = decide_customer(person(), policy=gbp.policy())
    made = gbp._create({"k": decision})
    assert made["k"]["CurrencyRef"] == {"value": "GBP"} and gbp.policy().accepts(made["k"])
