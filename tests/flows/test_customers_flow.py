"""The customers flow end to end through Airflow against the sandboxes.

The seeded shop has a customer without an e-mail address, one with a malformed address,
companies (one with two contacts) and persons; the test gives two persons with different
names the same e-mail address.
"""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.e2e

SINCE_EVER = "2000-01-01T00:00:00+00:00"


def _customers(shop) -> dict[str, dict]:
    with shop.api() as api:
        rows = api.get("customers.json", params={"limit": 250}).json()["customers"]
    return {str(c["id"]): c for c in rows}


def _email(customer: dict) -> str:
    return ((customer.get("PrimaryEmailAddr") or {}).get("Address") or "").casefold()


@pytest.fixture
def customers_shop(shop_factory):
    shop = shop_factory(orders=0, products=1, customers=10)
    people = [c for c in _customers(shop).values()
              if c["email"] and "@" in c["email"] and not c["companyName"]]
    first, second = sorted(people, key=lambda c: c["id"])[:2]
    assert (first["firstname"], first["lastname"]) != (second["firstname"], second["lastname"])
    shop.control.patch(f"/customers/{second['id']}",
                       json={"email": first["email"].upper()}).raise_for_status()
    return shop, str(first["id"]), str(second["id"])


def test_customers_are_created_once_by_email_and_resynced_only_when_changed(
        customers_shop, make_tenant):
    shop, first_id, twin_id = customers_shop
    tenant = make_tenant(shop)
    shop_customers = _customers(shop)

    run = tenant.run("customers", full_resync=True)
    assert run.state == "success"
    activity = {r["source_id"]: r for r in tenant.activity("customers", run.run_id)}
    assert set(activity) == set(shop_customers)
    qbo = [c for c in tenant.entities("Customer") if _email(c)]
    by_email: dict[str, list[dict]] = {}
    for customer in qbo:
        by_email.setdefault(_email(customer), []).append(customer)

    # without a (usable) e-mail address: skipped, nothing created for them
    for source_id, customer in shop_customers.items():
        email = customer["email"]
        if not email or email.count("@") != 1 or " " in email or email.endswith("@"):
            assert activity[source_id]["action"] == "skipped", activity[source_id]
            assert "e-mail" in activity[source_id]["reason"]
    assert any(not c["email"] for c in shop_customers.values())

    # everyone else has exactly one QuickBooks customer, found again by e-mail
    synced = {sid: row for sid, row in activity.items() if row["target_id"]}
    for source_id, row in synced.items():
        email = shop_customers[source_id]["email"].casefold()
        assert [c["Id"] for c in by_email[email]] == [row["target_id"]], source_id
    created = [r for r in activity.values() if r["action"] == "created"]
    assert created
    # the dashboard finds a customer by e-mail through its hash; the address is never stored
    from koppel.domain.emails import email_hash
    for source_id, row in synced.items():
        email = shop_customers[source_id]["email"]
        assert row["details"]["email_hash"] == email_hash(email), source_id
        assert email.casefold() not in json.dumps(row, default=str).casefold(), source_id

    # two shop customers with one e-mail address and different names: one QBO customer
    assert activity[first_id]["action"] == "created"
    assert activity[twin_id]["action"] == "skipped"
    assert activity[twin_id]["target_id"] == activity[first_id]["target_id"]
    assert f"shop customer {first_id}" in activity[twin_id]["reason"]

    # a company's further contacts are sub-customers of its company customer
    companies: dict[str, list[str]] = {}
    for source_id, customer in shop_customers.items():
        if customer["companyName"] and source_id in synced:
            companies.setdefault(customer["companyName"], []).append(source_id)
    qbo_by_id = {c["Id"]: c for c in tenant.entities("Customer")}
    for name, members in companies.items():
        targets = [qbo_by_id[activity[m]["target_id"]] for m in members]
        companies_in_qbo = [t for t in targets if not t.get("ParentRef")]
        assert len(companies_in_qbo) == 1, name  # one company customer per company
        assert companies_in_qbo[0]["CompanyName"] == name
        for contact in targets:
            if contact is not companies_in_qbo[0]:
                assert contact["ParentRef"]["value"] == companies_in_qbo[0]["Id"], name
                assert contact["Job"] is True

    # display names are unique (QBO would refuse a clash; koppel resolves it up front)
    names = [c["DisplayName"] for c in tenant.entities("Customer")]
    assert len(names) == len(set(names))

    # a second run over the same customers writes nothing
    before = {c["Id"]: c["SyncToken"] for c in tenant.entities("Customer")}
    again = tenant.run("customers", since=SINCE_EVER)
    assert again.state == "success"
    rows = tenant.activity("customers", again.run_id)
    assert {r["action"] for r in rows} == {"skipped"}
    assert {c["Id"]: c["SyncToken"] for c in tenant.entities("Customer")} == before

    # a changed customer is updated, the rest stays untouched
    changed = next(sid for sid, row in synced.items()
                   if row["action"] == "created" and not shop_customers[sid]["companyName"]
                   and sid != first_id)
    shop.control.patch(f"/customers/{changed}", json={"lastname": "Veranderd"}).raise_for_status()
    third = tenant.run("customers", since=SINCE_EVER)
    assert third.state == "success"
    rows = {r["source_id"]: r for r in tenant.activity("customers", third.run_id)}
    assert rows[changed]["action"] == "updated"
    assert [sid for sid, r in rows.items() if r["action"] != "skipped"] == [changed]
    target = rows[changed]["target_id"]
    after = {c["Id"]: c for c in tenant.entities("Customer")}
    assert after[target]["FamilyName"] == "Veranderd"
    assert {i: c["SyncToken"] for i, c in after.items() if i != target} == \
        {i: t for i, t in before.items() if i != target}


def test_dry_run_sends_nothing(customers_shop, make_tenant):
    shop, _first, _twin = customers_shop
    tenant = make_tenant(shop)
    before = {c["Id"] for c in tenant.entities("Customer")}
    run = tenant.run("customers", full_resync=True, dry_run=True)
    assert run.state == "success"
    rows = tenant.activity("customers", run.run_id)
    assert rows and {r["action"] for r in rows} == {"skipped"}
    assert any(r["reason"].startswith("dry run: would create Customer") for r in rows)
    assert {c["Id"] for c in tenant.entities("Customer")} == before
