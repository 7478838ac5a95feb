"""Rules the QBO sandbox enforces as QuickBooks Online does, each with Intuit's source.

Names (invalid characters, maxima), multicurrency (company currencies, exchange rates,
customer and document currencies, home amounts), the start-up queries clients make and
``include=invoiceLink``; through plain HTTP, inside batches and with python-quickbooks.
Where Intuit documents a rule but not its error code, the code is the sandbox's choice
(marked "code assumed")."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import pytest
from quickbooks.exceptions import QuickbooksException, ValidationException
from quickbooks.objects.company_info import CompanyInfo
from quickbooks.objects.companycurrency import CompanyCurrency
from quickbooks.objects.customer import Customer
from quickbooks.objects.customertype import CustomerType
from quickbooks.objects.exchangerate import ExchangeRate
from quickbooks.objects.invoice import Invoice
from quickbooks.objects.item import Item
from quickbooks.objects.preferences import Preferences
from quickbooks.objects.trackingclass import Class

from koppel.sandbox import quickbooks
from koppel.sandbox.persistence import restore_state, snapshot_state
from koppel.sandbox.server import SandboxServer
from quickbooks_fixtures import *  # noqa: F401,F403
from quickbooks_fixtures import connect

DOCS = "https://developer.intuit.com/app/developer/qbo/docs"
CUSTOMER_URL = f"{DOCS}/api/accounting/most-commonly-used/customer"
VENDOR_URL = f"{DOCS}/api/accounting/all-entities/vendor"
EMPLOYEE_URL = f"{DOCS}/api/accounting/all-entities/employee"
ITEM_URL = f"{DOCS}/api/accounting/most-commonly-used/item"
INVOICE_URL = f"{DOCS}/api/accounting/all-entities/invoice"
COMPANYCURRENCY_URL = f"{DOCS}/api/accounting/all-entities/companycurrency"
EXCHANGERATE_URL = f"{DOCS}/api/accounting/all-entities/exchangerate"
PREFERENCES_URL = f"{DOCS}/api/accounting/ecommerce/preferences"
MULTICURRENCY_URL = f"{DOCS}/workflows/manage-multiple-currencies"
CUSTOMERTYPE_URL = f"{DOCS}/api/accounting/all-entities/customertype"

SERVICES = "1"  # seeded service item
EUR_PER_USD = Decimal("0.92")  # the sandbox's fixed USD rate for a EUR company


# -- plain HTTP helpers ------------------------------------------------------------------
def api(sandbox: httpx.Client, realm: str | None = None) -> httpx.Client:
    """An HTTP client on ``/v3/company/{realm}`` with a fresh access token."""
    creds = sandbox.get("/_sandbox/credentials", params={"realm": realm} if realm else None).json()
    discovery = sandbox.get(creds["discovery_url"]).json()
    token = sandbox.post(discovery["token_endpoint"],
                         auth=(creds["client_id"], creds["client_secret"]),
                         data={"grant_type": "refresh_token",
                               "refresh_token": creds["refresh_token"]}).json()
    return httpx.Client(base_url=f"{creds['api_base_url']}/company/{creds['realm_id']}/",
                        params={"minorversion": 75}, timeout=30,
                        headers={"Authorization": f"Bearer {token['access_token']}",
                                 "Accept": "application/json"})


def error(response: httpx.Response) -> dict:
    """The first Error of a 400 ``Fault`` answer, checking the envelope."""
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["Fault"]["type"] == "ValidationFault"
    first = body["Fault"]["Error"][0]
    assert {"Message", "Detail", "code"} <= set(first)
    return first


def query(client: httpx.Client, text: str, **params) -> dict:
    answer = client.post("query", content=text, params=params,
                         headers={"Content-Type": "application/text"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert "time" in body
    return body["QueryResponse"]


def batch(client: httpx.Client, *items: dict) -> list[dict]:
    answer = client.post("batch", json={"BatchItemRequest": [
        {"bId": str(n), **item} for n, item in enumerate(items)]})
    assert answer.status_code == 200, answer.text
    return answer.json()["BatchItemResponse"]


def receipt(currency: str | None = None, customer: str | None = None, **extra) -> dict:
    body = {"Line": [{"DetailType": "SalesItemLineDetail", "Amount": 100,
                      "SalesItemLineDetail": {"ItemRef": {"value": SERVICES}, "Qty": 1,
                                              "UnitPrice": 100,
                                              "TaxCodeRef": {"value": "1"}}}], **extra}
    if currency:
        body["CurrencyRef"] = {"value": currency}
    if customer:
        body["CustomerRef"] = {"value": customer}
    return body


def mc_realm(sandbox: httpx.Client, *codes: str) -> str:
    """A new NL company with multicurrency on and ``codes`` as company currencies."""
    created = sandbox.post("/_sandbox/realms", json={"region": "NL", "name": "MC B.V.",
                                                     "multicurrency": True,
                                                     "currencies": list(codes)})
    assert created.status_code == 201, created.text
    return created.json()["realm_id"]


# == 1. names ============================================================================
# Customer/Vendor/Employee "Business Rules": "The DisplayName, Title, GivenName,
# MiddleName, FamilyName, Suffix, and PrintOnCheckName attributes must not contain colon
# (:), tab (\t), or newline (\n) characters." — CUSTOMER_URL, VENDOR_URL, EMPLOYEE_URL.
# Intuit does not document the error code: 6000 is assumed.
@pytest.mark.parametrize("element", ["DisplayName", "Title", "GivenName", "MiddleName",
                                     "FamilyName", "Suffix", "PrintOnCheckName"])
@pytest.mark.parametrize("char", [":", "\t", "\n"])
def test_customer_name_fields_refuse_colon_tab_newline(sandbox, element, char):
    # source: CUSTOMER_URL (Business Rules); code assumed
    body = {"DisplayName": "Naam Klant", element: f"Ab{char}cd"}
    with api(sandbox) as client:
        first = error(client.post("customer", json=body))
    assert first["code"] == "6000" and first["element"] == element
    assert "colon" in first["Detail"]


@pytest.mark.parametrize("entity, url", [("vendor", VENDOR_URL), ("employee", EMPLOYEE_URL)])
def test_vendor_and_employee_names_refuse_a_colon(sandbox, entity, url):
    # source: VENDOR_URL / EMPLOYEE_URL (Business Rules); code assumed
    with api(sandbox) as client:
        first = error(client.post(entity, json={"DisplayName": "Groot:handel",
                                                "GivenName": "A", "FamilyName": "B"}))
        assert first["code"] == "6000" and first["element"] == "DisplayName"
        ok = client.post(entity, json={"DisplayName": "Groothandel B", "GivenName": "A",
                                       "FamilyName": "B"})
        assert ok.status_code == 200, url


def test_item_name_refuses_colon_tab_newline(sandbox):
    # Item Name: ITEM_URL ("Name of the item", max 100). The character rule for items is
    # assumed (FullyQualifiedName joins levels with colons, as for customers).
    with api(sandbox) as client:
        for name in ("Shirt: red", "Shirt\tred", "Shirt\nred"):
            first = error(client.post("item", json={"Name": name, "Type": "Service",
                                                    "IncomeAccountRef": {"value": "2"}}))
            assert first["code"] == "6000" and first["element"] == "Name"


def test_derived_names_may_still_show_colons(sandbox):
    # FullyQualifiedName "Customer:Job:Sub-job" is system generated (CUSTOMER_URL)
    with api(sandbox) as client:
        parent = client.post("customer", json={"DisplayName": "Ouder BV"}).json()["Customer"]
        job = client.post("customer", json={"DisplayName": "Project", "Job": True,
                                            "ParentRef": {"value": parent["Id"]}}).json()
    assert job["Customer"]["FullyQualifiedName"] == "Ouder BV:Project"


# Maxima (2050 "String length is either shorter or longer than supported by
# specification"): Customer page — DisplayName "maximum of 500 chars", Title 16, GivenName,
# MiddleName, FamilyName 100, Suffix 16, CompanyName 100, PrintOnCheckName 110 (CUSTOMER_URL);
# Item Name 100 (ITEM_URL). Detail shape as QBO answers it (quickbooks-ruby's recorded
# fixture: "Min:0 Max:100 supported. Supplied length:103", element "Name").
@pytest.mark.parametrize("entity, element, limit", [
    ("customer", "DisplayName", 500), ("customer", "Title", 16),
    ("customer", "GivenName", 100), ("customer", "MiddleName", 100),
    ("customer", "FamilyName", 100), ("customer", "Suffix", 16),
    ("customer", "CompanyName", 100), ("customer", "PrintOnCheckName", 110),
    ("vendor", "DisplayName", 500), ("item", "Name", 100),
])
def test_name_maxima_2050(sandbox, entity, element, limit):
    # source: CUSTOMER_URL / ITEM_URL (Max length per field)
    base = ({"Type": "Service", "IncomeAccountRef": {"value": "2"}} if entity == "item"
            else {"DisplayName": "Lengte"})
    with api(sandbox) as client:
        at_limit = client.post(entity, json={**base, element: "x" * limit})
        assert at_limit.status_code == 200, at_limit.text
        over = {**base, element: "y" * (limit + 1)}
        first = error(client.post(entity, json=over))
    assert first["code"] == "2050" and first["element"] == element
    assert first["Message"] == ("String length is either shorter or longer than supported "
                                "by specification")
    assert f"Max:{limit} supported. Supplied length:{limit + 1}" in first["Detail"]


def test_name_rules_inside_a_batch(sandbox):
    # sources: CUSTOMER_URL, ITEM_URL; 6240 "Duplicate Name Exists Error" kept
    with api(sandbox) as client:
        answers = batch(
            client,
            {"operation": "create", "Customer": {"DisplayName": "Goede Klant"}},
            {"operation": "create", "Customer": {"DisplayName": "Slechte:Klant"}},
            {"operation": "create", "Customer": {"DisplayName": "K", "GivenName": "g" * 101}},
            {"operation": "create", "Item": {"Name": "Tab\there", "Type": "Service",
                                             "IncomeAccountRef": {"value": "2"}}},
            {"operation": "create", "Customer": {"DisplayName": "goede klant"}},
        )
    assert answers[0]["Customer"]["DisplayName"] == "Goede Klant"
    codes = [a["Fault"]["Error"][0]["code"] for a in answers[1:]]
    assert codes == ["6000", "2050", "6000", "6240"]
    assert answers[1]["Fault"]["type"] == "ValidationFault"
    assert answers[1]["Fault"]["Error"][0]["element"] == "DisplayName"


def test_name_rules_through_python_quickbooks(qb):
    # source: CUSTOMER_URL; python-quickbooks raises plain QuickbooksException for 6000
    colon = Customer()
    colon.DisplayName = "Jansen: Webshop"
    with pytest.raises(QuickbooksException) as raised:
        colon.save(qb=qb)
    assert int(raised.value.error_code) == 6000
    assert not isinstance(raised.value, ValidationException)
    with pytest.raises(ValidationException) as raised:  # 2000–4999
        qb.create_object("Item", json.dumps({"Name": "n" * 101, "Type": "Service",
                                             "IncomeAccountRef": {"value": "2"}}))
    assert int(raised.value.error_code) == 2050
    tab = Item()
    tab.Name, tab.Type = "Rood\tshirt", "Service"
    with pytest.raises(QuickbooksException) as raised:
        tab.save(qb=qb)
    assert int(raised.value.error_code) == 6000


# == 2. currency =========================================================================
def test_nl_company_defaults_home_eur_multicurrency_off(sandbox, qb):
    # Preferences.CurrencyPrefs {HomeCurrency, MultiCurrencyEnabled} (PREFERENCES_URL);
    # "By default, multicurrency is disabled" (MULTICURRENCY_URL)
    prefs = Preferences.get(qb=qb)
    assert prefs.CurrencyPrefs.MultiCurrencyEnabled is False
    assert prefs.CurrencyPrefs.HomeCurrency.value == "EUR"
    with api(sandbox) as client:
        assert query(client, "select * from CompanyCurrency") == {}
        # "Applicable only for those companies that enable multicurrency" (COMPANYCURRENCY_URL)
        first = error(client.post("companycurrency", json={"Code": "USD"}))
        assert first["code"] == "6000"  # code assumed
        # exchange rates likewise (EXCHANGERATE_URL); code assumed
        first = error(client.get("exchangerate", params={"sourcecurrencycode": "USD"}))
        assert first["code"] == "6000"


def test_customer_currency_without_multicurrency(sandbox):
    # Customer.CurrencyRef: "If not specified, currency for this customer is the home
    # currency of the company" (CUSTOMER_URL); a foreign one needs multicurrency
    # (MULTICURRENCY_URL); unknown code "XYZ": 2500 assumed, foreign: 6000 assumed
    with api(sandbox) as client:
        plain = client.post("customer", json={"DisplayName": "Thuis"}).json()["Customer"]
        assert plain["CurrencyRef"] == {"value": "EUR", "name": "Euro"}
        euro = client.post("customer", json={"DisplayName": "Euro Klant",
                                             "CurrencyRef": {"value": "EUR"}})
        assert euro.status_code == 200
        first = error(client.post("customer", json={"DisplayName": "Dollar Klant",
                                                    "CurrencyRef": {"value": "USD"}}))
        assert first["code"] == "6000" and first["element"] == "CurrencyRef"
        first = error(client.post("customer", json={"DisplayName": "XYZ Klant",
                                                    "CurrencyRef": {"value": "XYZ"}}))
        assert first["code"] == "2500" and first["element"] == "CurrencyRef"


@pytest.mark.parametrize("entity", ["salesreceipt", "invoice", "creditmemo", "refundreceipt"])
def test_foreign_sales_documents_need_multicurrency(sandbox, entity):
    # MULTICURRENCY_URL: multicurrency "must be enabled in order to track transactions with
    # currencies other than the company's home currency"; code 6000 assumed
    with api(sandbox) as client:
        first = error(client.post(entity, json=receipt("USD", customer="1")))
        assert first["code"] == "6000" and first["element"] == "CurrencyRef"
        assert error(client.post(entity, json=receipt("XYZ", customer="1")))["code"] == "2500"
        home = client.post(entity, json=receipt("EUR", customer="1")).json()
    doc = next(iter(v for k, v in home.items() if k != "time"))
    assert doc["ExchangeRate"] == 1 and doc["CurrencyRef"]["value"] == "EUR"
    assert "HomeTotalAmt" not in doc  # "Applicable if multicurrency is enabled" (INVOICE_URL)


def test_foreign_payment_needs_multicurrency(sandbox):
    # MULTICURRENCY_URL; code assumed
    with api(sandbox) as client:
        first = error(client.post("payment", json={"CustomerRef": {"value": "1"},
                                                   "TotalAmt": 10,
                                                   "CurrencyRef": {"value": "GBP"}}))
    assert first["code"] == "6000"


def test_control_plane_creates_multicurrency_realms(sandbox):
    # control plane (no Intuit counterpart: "Multicurrency is enabled from the QuickBooks
    # Online UI, only", MULTICURRENCY_URL); company currencies per COMPANYCURRENCY_URL
    realm = mc_realm(sandbox, "USD", "gbp", "EUR")  # the home currency is skipped
    listed = {r["realm_id"]: r for r in sandbox.get("/_sandbox/realms").json()}
    assert listed[realm]["multicurrency"] == "true" and listed[realm]["home_currency"] == "EUR"
    default = next(r for r in listed.values() if r["default"] == "true")
    assert default["multicurrency"] == "false"
    with api(sandbox, realm) as client:
        prefs = client.get("preferences").json()["Preferences"]
        assert prefs["CurrencyPrefs"] == {"MultiCurrencyEnabled": True,
                                          "HomeCurrency": {"value": "EUR"}}
        rows = query(client, "select * from companycurrency")["CompanyCurrency"]
    assert [(r["Code"], r["Name"], r["Active"]) for r in rows] == [
        ("USD", "United States Dollar", True), ("GBP", "British Pound Sterling", True)]
    assert set(rows[0]) >= {"Id", "Code", "Name", "Active", "SyncToken", "MetaData"}
    bad = sandbox.post("/_sandbox/realms", json={"currencies": ["USD"]})
    assert bad.status_code == 422
    bad = sandbox.post("/_sandbox/realms", json={"multicurrency": True, "currencies": ["XYZ"]})
    assert bad.status_code == 422


def test_control_plane_turns_multicurrency_on_never_off(sandbox, qb):
    # "cannot be disabled once it's been enabled" (MULTICURRENCY_URL)
    realm = qb.company_id
    on = sandbox.put(f"/_sandbox/realms/{realm}/multicurrency",
                     json={"enabled": True, "currencies": ["USD"]})
    assert on.status_code == 200 and on.json()["multicurrency"] is True
    assert [c["Code"] for c in on.json()["currencies"]] == ["USD"]
    assert Preferences.get(qb=qb).CurrencyPrefs.MultiCurrencyEnabled is True
    off = sandbox.put(f"/_sandbox/realms/{realm}/multicurrency", json={"enabled": False})
    assert off.status_code == 409


def test_company_currency_create_read_deactivate(sandbox):
    # POST /companycurrency {"Code"} → {Id, Code, Name, Active, SyncToken, MetaData};
    # delete is Active=false (COMPANYCURRENCY_URL). Duplicate (6240), home currency and
    # unknown code (2500) answers are assumed.
    realm = mc_realm(sandbox)
    with api(sandbox, realm) as client:
        created = client.post("companycurrency", json={"Code": "CHF"}).json()["CompanyCurrency"]
        assert (created["Code"], created["Name"], created["Active"], created["SyncToken"]) \
            == ("CHF", "Swiss Franc", True, "0")
        read = client.get(f"companycurrency/{created['Id']}").json()["CompanyCurrency"]
        assert read["Code"] == "CHF"
        assert error(client.post("companycurrency", json={"Code": "chf"}))["code"] == "6240"
        assert error(client.post("companycurrency", json={"Code": "EUR"}))["code"] == "6000"
        assert error(client.post("companycurrency", json={"Code": "XYZ"}))["code"] == "2500"
        assert error(client.post("companycurrency", json={}))["code"] == "2020"
        customer = client.post("customer", json={"DisplayName": "Zwitser",
                                                 "CurrencyRef": {"value": "CHF"}}).json()
        inactive = client.post("companycurrency", json={**read, "Active": False})
        assert inactive.json()["CompanyCurrency"]["SyncToken"] == "1"
        assert query(client, "select * from CompanyCurrency") == {}
        assert len(query(client, "select * from CompanyCurrency where Active = false")
                   ["CompanyCurrency"]) == 1
        # "not availble for use with financial transactions" once inactive
        first = error(client.post("invoice", json=receipt(
            "CHF", customer=customer["Customer"]["Id"])))
        assert first["code"] == "6000"
        unsupported = client.post("companycurrency", params={"operation": "delete"},
                                  json={"Id": read["Id"], "SyncToken": "1"})
        assert unsupported.status_code == 400


def test_customer_currency_is_added_and_fixed(sandbox):
    # CUSTOMER_URL CurrencyRef: "Once set, it cannot be changed. If specified currency is
    # not currently in the company's currency list, it is added." Change refused: 6000
    # (code assumed).
    realm = mc_realm(sandbox, "USD")
    with api(sandbox, realm) as client:
        cust = client.post("customer", json={"DisplayName": "Yankee Inc",
                                             "CurrencyRef": {"value": "usd"}}).json()["Customer"]
        assert cust["CurrencyRef"] == {"value": "USD", "name": "United States Dollar"}
        gbp = client.post("customer", json={"DisplayName": "Brit Ltd",
                                            "CurrencyRef": {"value": "GBP"}}).json()["Customer"]
        codes = [c["Code"] for c in query(client, "select * from CompanyCurrency")
                 ["CompanyCurrency"]]
        assert codes == ["USD", "GBP"]
        change = {"Id": cust["Id"], "SyncToken": cust["SyncToken"], "sparse": True,
                  "CurrencyRef": {"value": "EUR"}}
        first = error(client.post("customer", json=change))
        assert first["code"] == "6000" and first["element"] == "CurrencyRef"
        full = {"Id": gbp["Id"], "SyncToken": gbp["SyncToken"], "DisplayName": "Brit Ltd",
                "Notes": "full update without CurrencyRef"}
        kept = client.post("customer", json=full).json()["Customer"]
        assert kept["CurrencyRef"]["value"] == "GBP"
        assert error(client.post("customer", json={"DisplayName": "Q",
                                                    "CurrencyRef": {"value": "XYZ"}}))["code"] \
            == "2500"


def test_foreign_invoice_exchange_rate_and_home_total(sandbox):
    # INVOICE_URL: ExchangeRate = home units per foreign unit (MULTICURRENCY_URL),
    # HomeTotalAmt "Total amount of the transaction in the home currency"; the rate is the
    # one sent, else the sandbox table's for TxnDate (table values assumed)
    realm = mc_realm(sandbox, "USD")
    with api(sandbox, realm) as client:
        usd = client.post("customer", json={"DisplayName": "Yankee",
                                            "CurrencyRef": {"value": "USD"}}).json()["Customer"]
        table = client.post("invoice", json=receipt("USD", customer=usd["Id"],
                                                    TxnDate="2025-03-01")).json()["Invoice"]
        assert table["CurrencyRef"] == {"value": "USD", "name": "United States Dollar"}
        assert Decimal(str(table["ExchangeRate"])) == EUR_PER_USD
        total = Decimal(str(table["TotalAmt"]))
        assert total == Decimal("121")  # 100 + 21 % VAT, in USD
        assert Decimal(str(table["HomeTotalAmt"])) == (total * EUR_PER_USD).quantize(
            Decimal("0.01"))
        assert Decimal(str(table["HomeBalance"])) == Decimal(str(table["HomeTotalAmt"]))
        sent = client.post("invoice", json=receipt("USD", customer=usd["Id"],
                                                   ExchangeRate=0.8765)).json()["Invoice"]
        assert sent["ExchangeRate"] == 0.8765 and sent["HomeTotalAmt"] == 106.06  # 121 × 0.8765
        # a rate set for a day applies from that day on
        put = sandbox.put(f"/_sandbox/realms/{realm}/exchange-rates",
                          json={"source": "USD", "rate": 0.9, "as_of": "2025-06-01"})
        assert put.status_code == 200 and put.json()["ExchangeRate"]["Rate"] == 0.9
        before = client.post("invoice", json=receipt("USD", customer=usd["Id"],
                                                     TxnDate="2025-05-31")).json()["Invoice"]
        after = client.post("invoice", json=receipt("USD", customer=usd["Id"],
                                                    TxnDate="2025-07-01")).json()["Invoice"]
        assert Decimal(str(before["ExchangeRate"])) == EUR_PER_USD
        assert after["ExchangeRate"] == 0.9 and after["HomeTotalAmt"] == 108.9
        # home-currency documents in a multicurrency company: rate 1, HomeTotalAmt = TotalAmt
        home = client.post("salesreceipt", json=receipt("EUR", customer="1",
                                                        ExchangeRate=3)).json()["SalesReceipt"]
        assert home["ExchangeRate"] == 1 and home["HomeTotalAmt"] == home["TotalAmt"]
        voided = client.post("invoice", params={"operation": "void"},
                             json={"Id": table["Id"], "SyncToken": table["SyncToken"]})
        assert voided.json()["Invoice"]["HomeTotalAmt"] == 0


def test_document_currency_must_equal_customer_currency(sandbox):
    # A customer's transactions are in its currency (CUSTOMER_URL CurrencyRef: "the currency
    # in which all amounts associated with this customer are expressed"); absent CurrencyRef
    # means the home currency (assumed; Intuit: "This must be defined if multicurrency is
    # enabled", INVOICE_URL). Code 6000 assumed.
    realm = mc_realm(sandbox, "USD", "GBP")
    with api(sandbox, realm) as client:
        usd = client.post("customer", json={"DisplayName": "Yankee",
                                            "CurrencyRef": {"value": "USD"}}).json()["Customer"]
        for body in (receipt("GBP", customer=usd["Id"]), receipt(None, customer=usd["Id"]),
                     receipt("USD", customer="1")):
            first = error(client.post("salesreceipt", json=body))
            assert first["code"] == "6000" and first["element"] == "CurrencyRef"
        # a currency that is not a company currency is refused on documents
        first = error(client.post("salesreceipt", json=receipt("JPY")))
        assert first["code"] == "6000"
        invoice = client.post("invoice", json=receipt("USD", customer=usd["Id"])).json()
        invoice = invoice["Invoice"]
        payment = {"CustomerRef": {"value": usd["Id"]}, "TotalAmt": 121,
                   "CurrencyRef": {"value": "USD"},
                   "Line": [{"Amount": 121, "LinkedTxn": [{"TxnId": invoice["Id"],
                                                           "TxnType": "Invoice"}]}]}
        first = error(client.post("payment", json={**payment, "CurrencyRef": {"value": "EUR"}}))
        assert first["code"] == "6000"
        paid = client.post("payment", json=payment).json()["Payment"]
        assert Decimal(str(paid["ExchangeRate"])) == EUR_PER_USD
        after = client.get(f"invoice/{invoice['Id']}").json()["Invoice"]
        assert after["Balance"] == 0 and after["HomeBalance"] == 0


def test_currency_rules_inside_a_batch(sandbox):
    # sources: MULTICURRENCY_URL, COMPANYCURRENCY_URL; codes assumed
    with api(sandbox) as client:
        answers = batch(
            client,
            {"operation": "create", "Invoice": receipt("USD", customer="1")},
            {"operation": "create", "CompanyCurrency": {"Code": "USD"}},
            {"operation": "create", "Customer": {"DisplayName": "Dollar",
                                                 "CurrencyRef": {"value": "USD"}}},
            {"operation": "create", "SalesReceipt": receipt("EUR")},
        )
    assert [a.get("Fault", {}).get("Error", [{}])[0].get("code") for a in answers] == [
        "6000", "6000", "6000", None]
    realm = mc_realm(sandbox)
    with api(sandbox, realm) as client:
        answers = batch(
            client,
            {"operation": "create", "CompanyCurrency": {"Code": "USD"}},
            {"operation": "create", "Customer": {"DisplayName": "Dollar",
                                                 "CurrencyRef": {"value": "USD"}}},
            {"operation": "create", "Invoice": receipt("XYZ", customer="1")},
            {"Query": "select * from CompanyCurrency"},
        )
    assert answers[0]["CompanyCurrency"]["Code"] == "USD"
    assert answers[1]["Customer"]["CurrencyRef"]["value"] == "USD"
    assert answers[2]["Fault"]["Error"][0]["code"] == "2500"
    assert [c["Code"] for c in answers[3]["QueryResponse"]["CompanyCurrency"]] == ["USD"]


def test_exchange_rate_endpoint(sandbox):
    # GET /exchangerate?sourcecurrencycode=<code>[&asofdate=<yyyy-mm-dd>], POST /exchangerate
    # with SourceCurrencyCode, Rate, AsOfDate; home currency as source is a validation error
    # (EXCHANGERATE_URL); "If neither list has the requested entry, an empty response is
    # returned" (MULTICURRENCY_URL). Default rate values are the sandbox's (assumed).
    realm = mc_realm(sandbox, "USD")
    with api(sandbox, realm) as client:
        got = client.get("exchangerate", params={"sourcecurrencycode": "USD",
                                                 "asofdate": "2025-01-15"}).json()
        rate = got["ExchangeRate"]
        assert (rate["SourceCurrencyCode"], rate["TargetCurrencyCode"], rate["AsOfDate"]) == \
            ("USD", "EUR", "2025-01-15")
        assert Decimal(str(rate["Rate"])) == EUR_PER_USD and "time" in got
        assert set(client.get("exchangerate",
                              params={"sourcecurrencycode": "XYZ"}).json()) == {"time"}
        assert error(client.get("exchangerate"))["code"] == "2020"
        posted = client.post("exchangerate", json={"SourceCurrencyCode": "USD", "Rate": 0.95,
                                                   "AsOfDate": "2025-01-15"}).json()
        assert posted["ExchangeRate"]["Rate"] == 0.95
        assert posted["ExchangeRate"]["SyncToken"] == "0"
        again = client.post("exchangerate", json={"SourceCurrencyCode": "USD", "Rate": 0.96,
                                                  "AsOfDate": "2025-01-15", "SyncToken": "0"})
        assert again.json()["ExchangeRate"]["SyncToken"] == "1"
        stale = client.post("exchangerate", json={"SourceCurrencyCode": "USD", "Rate": 0.97,
                                                  "AsOfDate": "2025-01-15", "SyncToken": "0"})
        assert error(stale)["code"] == "5010"
        later = client.get("exchangerate", params={"sourcecurrencycode": "usd",
                                                   "asofdate": "2025-02-01"}).json()
        assert later["ExchangeRate"]["Rate"] == 0.96
        assert error(client.post("exchangerate", json={
            "SourceCurrencyCode": "EUR", "Rate": 2, "AsOfDate": "2025-01-15"}))["code"] == "6000"
        assert error(client.post("exchangerate", json={
            "SourceCurrencyCode": "USD", "Rate": 2}))["code"] == "2020"
        rows = query(client, "select * from exchangerate where sourcecurrencycode in "
                             "('USD', 'INR') and asofdate = '2025-01-20'")["ExchangeRate"]
        assert [(r["SourceCurrencyCode"], r["Rate"], r["AsOfDate"]) for r in rows] == [
            ("USD", 0.96, "2025-01-20")]
    listed = sandbox.get(f"/_sandbox/realms/{realm}/exchange-rates").json()
    assert listed["rates"] == [{"source": "USD", "as_of": "2025-01-15", "rate": 0.96}]
    assert sandbox.put(f"/_sandbox/realms/{realm}/exchange-rates",
                       json={"source": "EUR", "rate": 2}).status_code == 422


def test_multicurrency_through_python_quickbooks(sandbox):
    # CompanyCurrency / ExchangeRate objects of python-quickbooks (COMPANYCURRENCY_URL,
    # EXCHANGERATE_URL)
    realm = mc_realm(sandbox, "USD")
    qb = connect(sandbox, realm)
    assert [c.Code for c in CompanyCurrency.all(qb=qb)] == ["USD"]
    added = CompanyCurrency()
    added.Code = "GBP"
    assert added.save(qb=qb).Name == "British Pound Sterling"
    rates = ExchangeRate.where("SourceCurrencyCode = 'GBP'", qb=qb)
    assert [r.SourceCurrencyCode for r in rates] == ["GBP"]
    rate = ExchangeRate()
    rate.SourceCurrencyCode, rate.Rate, rate.AsOfDate = "GBP", 1.2, "2025-01-01"
    saved_rate = rate.save(qb=qb)
    assert (saved_rate.Rate, saved_rate.TargetCurrencyCode) == (1.2, "EUR")
    customer = Customer()
    customer.DisplayName = "Brit"
    customer.CurrencyRef = added.to_ref()  # python-quickbooks puts the Code in value
    saved = customer.save(qb=qb)
    assert saved.CurrencyRef.value == "GBP"
    saved.CurrencyRef.value = "USD"
    with pytest.raises(QuickbooksException) as raised:
        saved.save(qb=qb)
    assert int(raised.value.error_code) == 6000


def test_multicurrency_survives_a_snapshot():
    # sandbox persistence (no Intuit counterpart): multicurrency and set rates are kept
    first = quickbooks.create_app(seed=1)
    with SandboxServer(first) as server:
        with httpx.Client(base_url=server.url) as control:
            realm = mc_realm(control, "USD")
            control.put(f"/_sandbox/realms/{realm}/exchange-rates",
                        json={"source": "USD", "rate": 0.5, "as_of": "2025-01-01"})
    second = quickbooks.create_app(seed=1)
    restore_state(second, snapshot_state(first))
    with SandboxServer(second) as server:
        with httpx.Client(base_url=server.url) as control:
            state = control.get(f"/_sandbox/realms/{realm}/multicurrency").json()
            rates = control.get(f"/_sandbox/realms/{realm}/exchange-rates").json()
    assert state["multicurrency"] is True and [c["Code"] for c in state["currencies"]] == ["USD"]
    assert rates["rates"] == [{"source": "USD", "as_of": "2025-01-01", "rate": 0.5}]


# == 3. start-up queries and include=invoiceLink =========================================
@pytest.mark.parametrize("entity", ["Class", "CompanyCurrency", "CustomerType"])
def test_startup_queries_answer_empty_lists(sandbox, entity):
    # a query without rows answers {"QueryResponse": {}, "time": …} (python-quickbooks
    # reads a missing entity key as no rows); CUSTOMERTYPE_URL, COMPANYCURRENCY_URL
    with api(sandbox) as client:
        assert query(client, f"select * from {entity}") == {}
        assert query(client, f"select count(*) from {entity}") == {"totalCount": 0}


def test_startup_queries_preferences_companyinfo_and_currency(sandbox):
    # PREFERENCES_URL; CompanyInfo; "Currency" is not a QBO entity (only CompanyCurrency
    # is documented): answered like any unknown entity (4001, assumed)
    with api(sandbox) as client:
        prefs = query(client, "select * from Preferences")["Preferences"][0]
        assert prefs["CurrencyPrefs"]["HomeCurrency"]["value"] == "EUR"
        info = query(client, "select * from CompanyInfo")["CompanyInfo"][0]
        assert info["Country"] == "NL"
        first = error(client.post("query", content="select * from Currency",
                                  headers={"Content-Type": "application/text"}))
        assert first["code"] == "4001"


def test_startup_queries_through_python_quickbooks(qb):
    # Class, CustomerType (CUSTOMERTYPE_URL), CompanyCurrency (COMPANYCURRENCY_URL),
    # Preferences (PREFERENCES_URL) and CompanyInfo as python-quickbooks reads them
    assert Class.all(qb=qb) == []
    assert CustomerType.all(qb=qb) == []
    assert CompanyCurrency.all(qb=qb) == []
    assert Preferences.get(qb=qb).CurrencyPrefs.HomeCurrency.value == "EUR"
    assert CompanyInfo.get(qb.company_id, qb=qb).Country == "NL"
    made = Class()
    made.Name = "Webshop"
    assert made.save(qb=qb).FullyQualifiedName == "Webshop"
    assert [c.Name for c in Class.all(qb=qb)] == ["Webshop"]


def test_invoice_link_on_read_write_and_query(sandbox, qb):
    # InvoiceLink: "Sharable link for the invoice sent to external customers. The link is
    # generated only for invoices with online payment enabled and having a valid customer
    # email address. Include query param include=invoiceLink" (INVOICE_URL, minor version
    # 36). The sandbox treats online payment as enabled.
    with api(sandbox) as client:
        created = client.post("invoice", params={"include": "invoiceLink"}, json=receipt(
            customer="1", BillEmail={"Address": "jan@example.nl"})).json()["Invoice"]
        link = created["InvoiceLink"]
        assert link.startswith("http") and created["Id"] in link
        plain = client.get(f"invoice/{created['Id']}").json()["Invoice"]
        assert "InvoiceLink" not in plain
        read = client.get(f"invoice/{created['Id']}",
                          params={"include": "invoiceLink"}).json()["Invoice"]
        assert read["InvoiceLink"] == link
        page = sandbox.get(link)
        assert page.status_code == 200 and created["DocNumber"] in page.text
        rows = query(client, f"select * from Invoice where Id = '{created['Id']}'",
                     include="invoiceLink")["Invoice"]
        assert rows[0]["InvoiceLink"] == link
        # no e-mail on the invoice nor the customer: no link
        nobody = client.post("customer", json={"DisplayName": "Geen Mail"}).json()["Customer"]
        bare = client.post("invoice", json=receipt(customer=nobody["Id"])).json()["Invoice"]
        bare = client.get(f"invoice/{bare['Id']}", params={"include": "invoiceLink"}).json()
        assert "InvoiceLink" not in bare["Invoice"]
        # sent back on an update it is ignored (read only)
        update = {**read, "PrivateNote": "seen"}
        assert client.post("invoice", json=update).status_code == 200
    via_client = Invoice.get(created["Id"], qb=qb, params={"include": "invoiceLink"})
    assert via_client.InvoiceLink == link
