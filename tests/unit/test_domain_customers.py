import pytest

from koppel.domain.customers import (
    CustomerPolicy,
    customer_changes,
    decide_customer,
    display_name_for,
    resolve_display_name,
)
from koppel.domain.emails import usable_email
from koppel.domain.names import truncate_at_word
from koppel.domain.records import MappedCustomer

POLICY = CustomerPolicy(default_customer_id="1")


def person(**overrides):
    data = {"source_id": 7, "email": "jan@example.com", "given_name": "Jan", "family_name": "Jansen",
            "phone": "+31 20 123 4567",
            "bill_addr": {"line1": "Kerkstraat 1", "city": "Amsterdam", "postal_code": "1011AA", "country": "NL"}}
    data.update(overrides)
    return MappedCustomer.model_validate(data)


@pytest.mark.parametrize("raw", [None, "", "   ", "jan", "jan@", "jan@example", "j an@example.com",
                                 "jan@@example.com", "a" * 95 + "@ex.com"])
def test_unusable_emails(raw):
    assert usable_email(raw) is None


def test_usable_email_is_trimmed():
    assert usable_email("  Jan.Jansen+shop@Example.co.uk ") == "Jan.Jansen+shop@Example.co.uk"


@pytest.mark.parametrize("email", [None, "broken@", ""])
def test_missing_or_invalid_email_uses_default_customer(email):
    decision = decide_customer(person(email=email), policy=POLICY)
    assert decision.action == "use_default" and decision.customer_id == "1"
    assert decide_customer(None, policy=POLICY).customer_id == "1"


def test_new_person_customer():
    decision = decide_customer(person(middle_name="van der"), policy=POLICY)
    assert decision.action == "create"
    p = decision.payload
    assert p["DisplayName"] == "Jan van der Jansen"
    assert p["GivenName"] == "Jan" and p["FamilyName"] == "Jansen" and "CompanyName" not in p
    assert p["PrimaryEmailAddr"] == {"Address": "jan@example.com"}
    assert p["BillAddr"]["Country"] == "NL"
    assert "ParentRef" not in p


def test_company_customer_keeps_the_person_as_contact():
    decision = decide_customer(person(company_name="Acme  BV"), policy=POLICY)
    p = decision.payload
    assert decision.action == "create"
    assert p["DisplayName"] == "Acme BV" and p["CompanyName"] == "Acme BV"
    assert p["GivenName"] == "Jan" and p["FamilyName"] == "Jansen"


def test_second_contact_of_existing_company_becomes_sub_customer():
    company = {"Id": "42", "DisplayName": "Acme BV", "CompanyName": "Acme BV",
               "PrimaryEmailAddr": {"Address": "jan@example.com"}}
    piet = person(email="piet@example.com", given_name="Piet", family_name="Pietersen", company_name="Acme BV")
    decision = decide_customer(piet, policy=POLICY, company_match=company, taken={"Acme BV"})
    assert decision.action == "create_sub"
    p = decision.payload
    assert p["ParentRef"] == {"value": "42"} and p["Job"] is True and p["BillWithParent"] is True
    assert p["DisplayName"] == "Acme BV - Piet Pietersen"
    assert p["CompanyName"] == "Acme BV"


def test_match_by_email_case_insensitive_lowest_id_and_report():
    matches = [
        {"Id": "17", "DisplayName": "J. Jansen", "PrimaryEmailAddr": {"Address": "JAN@example.com"}},
        {"Id": "9", "DisplayName": "Jan Jansen", "PrimaryEmailAddr": {"Address": "jan@EXAMPLE.com"}},
        {"Id": "3", "DisplayName": "Other", "PrimaryEmailAddr": {"Address": "other@example.com"}},
    ]
    decision = decide_customer(person(), policy=POLICY, email_matches=matches)
    assert decision.action == "use_existing" and decision.customer_id == "9"
    assert len(decision.warnings) == 1 and "9, 17" in decision.warnings[0] and "names differ" in decision.warnings[0]
    # the same inputs in another order give the same answer
    assert decide_customer(person(), policy=POLICY, email_matches=list(reversed(matches))).customer_id == "9"


def test_display_name_over_100_chars_cut_at_word_boundary():
    long_company = "Internationale Handelsonderneming " * 5
    name = display_name_for(person(company_name=long_company))
    assert len(name) <= 100 and long_company.startswith(name)
    assert name.endswith("Internationale") and long_company[len(name)] == " "
    assert truncate_at_word("x" * 150) == "x" * 100


def test_clash_resolution_is_deterministic():
    taken = {"jan jansen"}
    first = resolve_display_name("Jan Jansen", email="jan@example.com", taken=taken)
    again = resolve_display_name("Jan Jansen", email="JAN@example.com", taken=set(taken))
    other = resolve_display_name("Jan Jansen", email="jan2@example.com", taken=taken)
    assert first == again and first.startswith("Jan Jansen (") and len(first) == len("Jan Jansen (") + 7
    assert other != first
    taken_both = {"Jan Jansen", first}
    assert resolve_display_name("Jan Jansen", email="jan@example.com", taken=taken_both) == "Jan Jansen (2)"
    assert resolve_display_name("Jan Jansen", email="jan@example.com",
                                taken=taken_both | {"Jan Jansen (2)"}) == "Jan Jansen (3)"
    long = resolve_display_name("W" * 60 + " " + "V" * 60, email="a@b.nl", taken=lambda n: not n.endswith(")"))
    assert len(long) <= 100 and long.endswith(")")


def test_decide_customer_avoids_taken_names():
    decision = decide_customer(person(), policy=POLICY, taken={"Jan Jansen"})
    assert decision.payload["DisplayName"] != "Jan Jansen"
    assert decision.payload["DisplayName"] == decide_customer(person(), policy=POLICY, taken={"Jan Jansen"}).payload["DisplayName"]


def qbo_customer(**overrides):
    record = {
        "Id": "9", "SyncToken": "3", "DisplayName": "Jan Jansen", "GivenName": "Jan", "FamilyName": "Jansen",
        "PrimaryEmailAddr": {"Address": "JAN@example.com"}, "PrimaryPhone": {"FreeFormNumber": "+31 20 123  4567"},
        "BillAddr": {"Id": "4", "Line1": "Kerkstraat 1", "City": "Amsterdam", "PostalCode": "1011AA", "Country": "NLD"},
    }
    record.update(overrides)
    return record


def test_customer_changes_is_none_when_nothing_changed():
    assert customer_changes(qbo_customer(), person()) is None


def test_customer_changes_sparse_update():
    update = customer_changes(qbo_customer(), person(family_name="Jansen-de Vries", email="jan@example.com"))
    assert update == {"Id": "9", "SyncToken": "3", "sparse": True, "FamilyName": "Jansen-de Vries"}
    moved = customer_changes(qbo_customer(), person(bill_addr={"line1": "Dam 2", "city": "Amsterdam",
                                                               "postal_code": "1012JS", "country": "NL"}))
    assert set(moved) == {"Id", "SyncToken", "sparse", "BillAddr"}


def test_empty_shop_fields_never_blank_qbo():
    assert customer_changes(qbo_customer(), person(phone=None, bill_addr=None)) is None
