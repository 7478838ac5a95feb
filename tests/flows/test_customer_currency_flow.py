"""The customer upsert against a live QuickBooks sandbox company with multicurrency on (home
currency EUR, GBP and USD enabled): a GBP shop's orders get GBP customers, a second
customer ``Name (GBP)`` when the address is only in QuickBooks as a EUR customer, the same
one again on later runs, and the EUR customer stays the EUR orders'."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import httpx
import pytest

from koppel.domain.records import MappedCustomer
from koppel.flows.customer_upsert import CustomerUpserter


@pytest.fixture
def books(qbo_server, tmp_path):
    """A fresh multicurrency company, a hook on it and a minimal run around them."""
    from koppel.hooks.quickbooks import QBOSettings, QuickBooksHook
    from koppel.hooks.retry import RetryPolicy
    from koppel.hooks.tokens import TokenStore
    from koppel.store.engine import get_engine
    from koppel.store.state import StateStore
    from koppel.tenants.model import DefaultCustomer

    url = qbo_server.url
    creds = httpx.post(f"{url}/_sandbox/realms", json={
        "region": "NL", "name": f"Multicurrency {uuid.uuid4().hex[:6]}", "multicurrency": True,
        "currencies": ["GBP", "USD"]}, timeout=30)
    creds.raise_for_status()
    creds = creds.json()
    realm_id = str(creds["realm_id"])
    state = httpx.get(f"{url}/_sandbox/realms/{realm_id}/multicurrency", timeout=30).json()
    assert state["home_currency"] == "EUR" and state["multicurrency"]
    engine = get_engine(f"sqlite:///{tmp_path / 'state.db'}")
    hook = QuickBooksHook(settings=QBOSettings(
        client_id=creds["client_id"], client_secret=creds["client_secret"], realm_id=realm_id,
        refresh_token=creds["refresh_token"], environment=creds["discovery_url"],
        api_base_url=creds["api_base_url"]), token_store=TokenStore(engine),
        retry=RetryPolicy(attempts=5, initial=0.02, maximum=0.3, jitter=0.02,
                          max_retry_after=2.0))
    tenant = SimpleNamespace(tenant=f"t{uuid.uuid4().hex[:8]}", settings=SimpleNamespace(
        default_customer=DefaultCustomer(display_name="Webshop klant")))
    run = SimpleNamespace(quickbooks=hook, store=StateStore(engine), tenant=tenant,
                          tenant_id=tenant.tenant, dry_run=False)

    def customers() -> list[dict]:
        response = httpx.get(f"{url}/_sandbox/realms/{realm_id}/entities/Customer", timeout=30)
        response.raise_for_status()
        return response.json()["Customer"]

    yield SimpleNamespace(run=run, hook=hook, customers=customers, home="EUR")
    hook.close()


def customer(source_id: str, email: str, given: str, family: str, **more) -> MappedCustomer:
    return MappedCustomer.model_validate({"source_id": source_id, "email": email,
                                          "given_name": given, "family_name": family, **more})


def gbp(books) -> CustomerUpserter:
    return CustomerUpserter(books.run, currency="GBP", home_currency=books.home)


def eur(books) -> CustomerUpserter:
    return CustomerUpserter(books.run, currency="EUR", home_currency=books.home)


def calls(books) -> int:
    """API calls of the hook so far (a snapshot)."""
    return sum(books.hook.calls.values())


def by_id(books) -> dict[str, dict]:
    return {str(c["Id"]): c for c in books.customers()}


def currency(row: dict) -> str:
    return row["CurrencyRef"]["value"]


def with_email(books, email: str) -> list[dict]:
    return [c for c in books.customers()
            if (c.get("PrimaryEmailAddr") or {}).get("Address", "").lower() == email]


def test_gbp_orders_get_gbp_customers_and_eur_orders_keep_theirs(books):
    ann = customer("1", "ann@example.com", "Ann", "Archer")
    bob = customer("2", "bob@example.com", "Bob", "Baker")

    # a GBP order of a new person: a GBP customer
    made = gbp(books).upsert({"o1": ann})["o1"]
    assert made.action == "created"
    row = by_id(books)[made.customer_id]
    assert currency(row) == "GBP" and row["DisplayName"] == "Ann Archer"

    # bob bought in EUR before (linked to his EUR customer); now he buys in GBP
    bob_eur = eur(books).upsert({"o2": bob})["o2"]
    assert bob_eur.action == "created" and currency(by_id(books)[bob_eur.customer_id]) == "EUR"
    bob_gbp = gbp(books).upsert({"o3": bob})["o3"]
    assert bob_gbp.action == "created" and bob_gbp.customer_id != bob_eur.customer_id
    row = by_id(books)[bob_gbp.customer_id]
    assert currency(row) == "GBP" and row["DisplayName"] == "Bob Baker (GBP)"
    assert by_id(books)[bob_eur.customer_id]["DisplayName"] == "Bob Baker"

    # the next GBP order: the same GBP customer (found by its GBP link), no third one
    before = dict(books.hook.calls)
    again = gbp(books).upsert({"o4": bob})["o4"]
    assert (again.action, again.customer_id) == ("existing", bob_gbp.customer_id)
    sent = {k: n - before.get(k, 0) for k, n in books.hook.calls.items() if n != before.get(k, 0)}
    # four look-ups (by the linked id; the display name among customers, vendors and
    # employees), each a plain query — cheaper than a batch under the limits — nothing created
    assert list(sent.values()) == [4] and "batch" not in next(iter(sent)), sent
    assert len(with_email(books, "bob@example.com")) == 2

    # EUR orders (however the home currency is named) keep the EUR customer
    for upserter in (eur(books), CustomerUpserter(books.run, home_currency="EUR")):
        home = upserter.upsert({"o5": bob})["o5"]
        assert (home.action, home.customer_id) == ("existing", bob_eur.customer_id)
    assert len(with_email(books, "bob@example.com")) == 2

    # the links: one per currency, the EUR one untouched
    store, tenant = books.run.store, books.run.tenant_id
    assert store.xrefs(tenant, "customer", ["2"], target_type="Customer")["2"].target_id \
        == bob_eur.customer_id
    assert store.xrefs(tenant, "customer", ["2"], target_type="Customer:GBP")["2"].target_id \
        == bob_gbp.customer_id

    # a EUR order of someone QuickBooks knows only in GBP: a EUR customer of its own
    ann_eur = eur(books).upsert({"o6": ann})["o6"]
    assert ann_eur.action == "created" and ann_eur.customer_id != made.customer_id
    row = by_id(books)[ann_eur.customer_id]
    assert currency(row) == "EUR" and row["DisplayName"] == "Ann Archer (EUR)"


def test_a_link_made_before_currencies_counted_is_not_followed_into_another_currency(books):
    """Shop customer 5 linked (say by a run that knew no currencies) to a GBP customer: a
    EUR order finds the EUR customer by e-mail instead."""
    cid = customer("5", "cy@example.com", "Cy", "Cole")
    cy_gbp = gbp(books).upsert({"o1": cid.model_copy(update={"source_id": None})})["o1"]
    cy_eur = eur(books).upsert({"o2": cid.model_copy(update={"source_id": None})})["o2"]
    assert cy_eur.customer_id != cy_gbp.customer_id
    books.run.store.save_xref(books.run.tenant_id, "customer", "5", "Customer",
                              cy_gbp.customer_id)
    found = eur(books).upsert({"o3": cid})["o3"]
    assert (found.action, found.customer_id) == ("existing", cy_eur.customer_id)
    linked = CustomerUpserter(books.run)  # the old call: no currency known, the link as ever
    assert linked.upsert({"o4": cid})["o4"].customer_id == cy_gbp.customer_id


def test_the_default_customer_is_one_per_currency(books):
    first = gbp(books).upsert({"o1": None, "o2": customer("3", "", "No", "Mail")})
    assert {o.action for o in first.values()} == {"default"}
    default_gbp = first["o1"].customer_id
    assert first["o2"].customer_id == default_gbp
    row = by_id(books)[default_gbp]
    assert row["DisplayName"] == "Webshop klant (GBP)" and currency(row) == "GBP"

    home = eur(books).upsert({"o3": None})["o3"]
    assert home.action == "default" and home.customer_id != default_gbp
    row = by_id(books)[home.customer_id]
    assert row["DisplayName"] == "Webshop klant" and currency(row) == "EUR"

    # later runs look them up, they do not make them again
    assert gbp(books).upsert({"o4": None})["o4"].customer_id == default_gbp
    assert eur(books).upsert({"o5": None})["o5"].customer_id == home.customer_id
    names = sorted(c["DisplayName"] for c in books.customers()
                   if c["DisplayName"].startswith("Webshop klant"))
    assert names == ["Webshop klant", "Webshop klant (GBP)"]


def test_companies_and_their_contacts_are_made_again_in_the_currency(books):
    carol = customer("10", "carol@acme.example", "Carol", "Clark", company_name="Acme BV")
    acme_eur = eur(books).upsert({"o1": carol})["o1"]
    assert acme_eur.action == "created"

    dave = customer("11", "dave@acme.example", "Dave", "Dunn", company_name="Acme BV")
    erin = customer("12", "erin@acme.example", "Erin", "Ellis", company_name="Acme BV")
    out = gbp(books).upsert({"o2": dave, "o3": erin})
    rows = by_id(books)
    first, second = sorted((out["o2"], out["o3"]), key=lambda o: o.action)
    assert (first.action, second.action) == ("created", "created_sub")
    company = rows[first.customer_id]
    assert company["DisplayName"] == "Acme BV (GBP)" and currency(company) == "GBP"
    contact = rows[second.customer_id]
    assert contact["ParentRef"]["value"] == first.customer_id and currency(contact) == "GBP"

    # a EUR contact still goes under the EUR company
    fay = customer("13", "fay@acme.example", "Fay", "Ford", company_name="Acme BV")
    sub = eur(books).upsert({"o4": fay})["o4"]
    assert sub.action == "created_sub"
    row = by_id(books)[sub.customer_id]
    assert row["ParentRef"]["value"] == acme_eur.customer_id and currency(row) == "EUR"


def test_updates_leave_the_currency_alone_and_calls_stay_within_budget(books):
    people = {f"o{i}": customer(str(100 + i), f"p{i}@example.com", f"P{i}", "Person")
              for i in range(5)}
    before = calls(books)
    home = CustomerUpserter(books.run).upsert(people)
    home_calls = calls(books) - before
    # five e-mail look-ups and the display names among customers, vendors and employees:
    # eight plain queries (under 500 // 40 = 12 they cost less than a batch request), then
    # one batch of five creates
    assert {o.action for o in home.values()} == {"created"} and home_calls == 9

    others = {k: v.model_copy(update={"email": "x" + v.email, "source_id": "2" + v.source_id})
              for k, v in people.items()}
    before = calls(books)
    foreign = gbp(books).upsert(others)
    assert {o.action for o in foreign.values()} == {"created"}
    assert calls(books) - before == home_calls  # eight look-ups, a create batch
    before = calls(books)
    again = gbp(books).upsert(others)  # linked now: found by id
    # linked now: one query by id, the display names among customers, vendors, employees
    assert {o.action for o in again.values()} == {"existing"} and calls(books) - before == 4

    sent = []
    real_batch = books.hook.batch

    def spy(ops, **kw):
        sent.extend(ops)
        return real_batch(ops, **kw)

    books.hook.batch = spy
    changed = {k: v.model_copy(update={"phone": "+44 20 7946 0000"}) for k, v in others.items()}
    updated = gbp(books).upsert(changed)
    assert {o.action for o in updated.values()} == {"updated"}
    updates = [op for op in sent if op.operation == "update"]
    assert len(updates) == 5 and not any("CurrencyRef" in op.payload for op in updates)
    rows = by_id(books)
    assert {currency(rows[o.customer_id]) for o in updated.values()} == {"GBP"}
