"""Contract tests: every endpoint the QuickBooks Online sandbox emulates, driven with the
request from Intuit's own documentation and checked against the documented response
shape (envelope, field names, JSON types) and, for errors, the documented ``Fault`` body.

Each test's docstring names its source. Requests are Intuit's samples as published; where
a sample refers to ids of Intuit's sample company, the test uses the ids the sandbox's US
realm gives the same records (it holds Intuit's sample company "Craig's Design and
Landscaping Services", with ids shifted by the base seed: see docs/sandbox-fidelity.md).
Every such change is marked ``# adapted:``.

Plain HTTP (httpx) on purpose: a client library would hide the envelopes under test.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from quickbooks_fixtures import qbo_server, sandbox  # noqa: F401

NUMBER = (int, float)

# Ids of Intuit's sample-company records in the sandbox's US realm (see module docstring).
AMYS_BIRD_SANCTUARY = "3"
COOL_CARS = "5"
SERVICES_ITEM = "1"
CONCRETE_ITEM = "7"
PEST_CONTROL_ITEM = "14"
REFUNDS_ITEM = "16"
INCOME_ACCOUNT, COGS_ACCOUNT, INVENTORY_ACCOUNT, CHECKING_ACCOUNT = "1", "5", "6", "8"


# -- helpers ----------------------------------------------------------------------------------
class Api:
    """A bearer-token client on one realm, with the token from Intuit's token endpoint."""

    def __init__(self, http: httpx.Client, creds: dict[str, str]) -> None:
        self.http, self.creds, self.realm = http, creds, creds["realm_id"]
        answer = self.token("refresh_token", creds["refresh_token"])
        assert answer.status_code == 200, answer.text
        self.tokens = answer.json()
        self.headers = {"Authorization": f"Bearer {self.tokens['access_token']}",
                        "Accept": "application/json"}

    @property
    def basic(self) -> str:
        raw = f"{self.creds['client_id']}:{self.creds['client_secret']}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    def token(self, grant_type: str, refresh_token: str) -> httpx.Response:
        return self.http.post("/oauth2/v1/tokens/bearer",
                              content=f"grant_type={grant_type}&refresh_token={refresh_token}",
                              headers={"Authorization": self.basic, "Accept": "application/json",
                                       "Content-Type": "application/x-www-form-urlencoded"})

    def url(self, path: str) -> str:
        return f"/v3/company/{self.realm}/{path}"

    def get(self, path: str, **params: str) -> httpx.Response:
        return self.http.get(self.url(path), headers=self.headers,
                             params={"minorversion": "75", **params})

    def post(self, path: str, body: dict, **params: str) -> httpx.Response:
        return self.http.post(self.url(path), headers=self.headers, json=body,
                              params={"minorversion": "75", **params})

    def query(self, text: str) -> httpx.Response:
        return self.http.post(self.url("query"), content=text, params={"minorversion": "75"},
                              headers={**self.headers, "Content-Type": "application/text"})


@pytest.fixture()
def us(sandbox) -> Api:  # noqa: F811
    """The US realm (Intuit's sample company), as an app holding a fresh access token."""
    realm = next(r for r in sandbox.get("/_sandbox/realms").json() if r["region"] == "US")
    creds = sandbox.get("/_sandbox/credentials", params={"realm": realm["realm_id"]}).json()
    return Api(sandbox, creds)


def ok(response: httpx.Response, entity: str) -> dict:
    """The documented success envelope ``{"<Entity>": {...}, "time": "..."}``."""
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {entity, "time"}, body.keys()
    assert_time(body["time"])
    return body[entity]


def assert_time(value: object) -> None:
    assert isinstance(value, str)
    datetime.fromisoformat(value)  # an ISO 8601 date-time with offset


def assert_types(obj: dict, shape: dict[str, type | tuple[type, ...]]) -> None:
    """Every field of ``shape`` is present with that JSON type (a bool is no number)."""
    for field, kind in shape.items():
        assert field in obj, f"{field} missing from {sorted(obj)}"
        value = obj[field]
        if kind in (NUMBER, int, float):
            assert isinstance(value, NUMBER) and not isinstance(value, bool), (field, value)
        else:
            assert isinstance(value, kind), (field, value)


def assert_ref(ref: object, value: str, name: str | None = None) -> None:
    """A ``ReferenceType``: ``{"value": "<id>", "name": "<display name>"}``."""
    assert isinstance(ref, dict) and ref["value"] == value, ref
    if name is not None:
        assert ref["name"] == name, ref


ENTITY_COMMON = {"Id": str, "SyncToken": str, "domain": str, "sparse": bool, "MetaData": dict}


def assert_entity(obj: dict, sync_token: str = "0") -> None:
    """The fields every entity answer carries (all Intuit samples): ``Id`` and
    ``SyncToken`` as strings, ``domain`` "QBO", ``sparse`` false and ``MetaData``."""
    assert_types(obj, ENTITY_COMMON)
    assert obj["domain"] == "QBO" and obj["sparse"] is False
    assert obj["SyncToken"] == sync_token
    assert_time(obj["MetaData"]["CreateTime"])
    assert_time(obj["MetaData"]["LastUpdatedTime"])


def assert_fault(response: httpx.Response, status: int, code: str, fault_type: str,
                 element: str | None = None) -> dict:
    """Intuit's error envelope (error-codes page): ``{"Fault": {"Error": [{"Message",
    "Detail", "code", "element"?}], "type"}, "time"}`` — ``element`` only "if
    applicable"."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"Fault", "time"}, body
    assert_time(body["time"])
    fault = body["Fault"]
    assert set(fault) == {"Error", "type"} and fault["type"] == fault_type, fault
    assert isinstance(fault["Error"], list) and len(fault["Error"]) == 1
    error = fault["Error"][0]
    assert {"Message", "Detail", "code"} <= set(error) <= {"Message", "Detail", "code",
                                                           "element"}, error
    assert_types(error, {"Message": str, "Detail": str, "code": str})
    assert error["code"] == code, error
    if element is not None:
        assert error["element"] == element, error
    return error


def sales_line(amount: float, item: str, name: str, **detail) -> dict:
    return {"DetailType": "SalesItemLineDetail", "Amount": amount,
            "SalesItemLineDetail": {"ItemRef": {"name": name, "value": item}, **detail}}


# -- OAuth 2.0 ------------------------------------------------------------------------------
def test_oauth_discovery_document_names_the_endpoints(sandbox):  # noqa: F811
    """Discovery document (``GET /.well-known/openid_configuration``; Intuit's sample
    answers ``issuer``, ``authorization_endpoint``, ``token_endpoint`` …/oauth2/v1/tokens/bearer,
    ``userinfo_endpoint``, ``revocation_endpoint`` …/oauth2/v1/tokens/revoke, ``jwks_uri``):
    https://developer.intuit.com/app/developer/qbo/docs/develop/authentication-and-authorization/oauth-openid-discovery-doc"""
    doc = sandbox.get("/.well-known/openid_configuration").json()
    base = str(sandbox.base_url).rstrip("/")
    assert doc["token_endpoint"] == f"{base}/oauth2/v1/tokens/bearer"
    assert doc["revocation_endpoint"] == f"{base}/oauth2/v1/tokens/revoke"
    assert_types(doc, {"issuer": str, "authorization_endpoint": str, "userinfo_endpoint": str,
                       "jwks_uri": str, "scopes_supported": list})
    assert "com.intuit.quickbooks.accounting" in doc["scopes_supported"]


def test_oauth_refresh_answers_the_documented_token_response(us):
    """Refresh an access token:
    https://developer.intuit.com/app/developer/qbo/docs/develop/authentication-and-authorization/oauth-2.0
    (``POST /oauth2/v1/tokens/bearer``, ``grant_type=refresh_token`` with Basic client auth;
    answer ``access_token``, ``refresh_token``, ``token_type: bearer``, ``expires_in:
    3600``, ``x_refresh_token_expires_in``)."""
    tokens = us.tokens
    assert_types(tokens, {"access_token": str, "refresh_token": str, "token_type": str,
                          "expires_in": int, "x_refresh_token_expires_in": int})
    assert tokens["token_type"] == "bearer" and tokens["expires_in"] == 3600
    assert tokens["x_refresh_token_expires_in"] == 8726400  # the value of Intuit's sample
    again = us.token("refresh_token", tokens["refresh_token"])
    assert again.status_code == 200 and again.json()["token_type"] == "bearer"


def test_oauth_bad_refresh_token_is_invalid_grant(us):
    """OAuth 2.0 page, "invalid_grant" (RFC 6749 §5.2 error body, HTTP 400):
    https://developer.intuit.com/app/developer/qbo/docs/develop/authentication-and-authorization/oauth-2.0"""
    answer = us.token("refresh_token", "AB11-not-a-refresh-token")
    assert answer.status_code == 400 and answer.json() == {"error": "invalid_grant"}


def test_oauth_revoke_then_the_refresh_token_is_dead(us):
    """Revoke a token: ``POST /oauth2/v1/tokens/revoke`` with ``{"token": "<refresh token>"}``
    and Basic client auth, HTTP 200 on success:
    https://developer.intuit.com/app/developer/qbo/docs/develop/authentication-and-authorization/oauth-2.0"""
    refresh = us.tokens["refresh_token"]
    answer = us.http.post("/oauth2/v1/tokens/revoke", json={"token": refresh},
                          headers={"Authorization": us.basic, "Accept": "application/json"})
    assert answer.status_code == 200
    assert us.token("refresh_token", refresh).json() == {"error": "invalid_grant"}


# -- authentication and authorisation faults ------------------------------------------------
def test_an_unknown_access_token_is_401_authentication_failed(us):
    """HTTP 401, "AuthenticationFailed", error 3200, fault type AUTHENTICATION (keys in
    lower case, as the live API answers them):
    https://developer.intuit.com/app/developer/qbo/docs/develop/troubleshooting/error-codes"""
    answer = us.http.get(us.url("companyinfo/" + us.realm), params={"minorversion": "75"},
                         headers={"Authorization": "Bearer expired", "Accept": "application/json"})
    assert answer.status_code == 401
    fault = answer.json()["fault"]
    assert fault["type"] == "AUTHENTICATION"
    assert fault["error"] == [{"message": "message=AuthenticationFailed; errorCode=003200; "
                                          "statusCode=401", "code": "3200"}]


def test_a_token_for_another_company_is_403(us, sandbox):  # noqa: F811
    """HTTP 403 "ApplicationAuthorizationFailed" (error 3100) for a realm the app is not
    connected to:
    https://developer.intuit.com/app/developer/qbo/docs/develop/troubleshooting/error-codes"""
    nl = next(r for r in sandbox.get("/_sandbox/realms").json() if r["region"] == "NL")
    answer = us.http.get(f"/v3/company/{nl['realm_id']}/companyinfo/{nl['realm_id']}",
                         headers=us.headers, params={"minorversion": "75"})
    error = assert_fault(answer, 403, "3100", "AUTHENTICATION")
    assert error["Message"] == ("message=ApplicationAuthorizationFailed; errorCode=003100; "
                                "statusCode=403")


@pytest.mark.parametrize("kind, status", [("500", 500), ("503", 503)])
def test_server_errors_answer_a_system_fault(us, sandbox, kind, status):  # noqa: F811
    """HTTP 500/503 ("A server error occurred… Resubmit the request once"; "The service is
    temporarily unavailable"):
    https://developer.intuit.com/app/developer/qbo/docs/develop/troubleshooting/error-codes.
    The body (``SystemFault``, code 10000) is assumed: the page lists fault types, not a 5xx
    body."""
    sandbox.post("/_sandbox/faults", json={"path": "/companyinfo/", "kind": kind,
                                           "times": 1}).raise_for_status()
    error = assert_fault(us.get("companyinfo/" + us.realm), status, "10000", "SystemFault")
    assert error["Message"] == "An application error has occurred while processing your request"
    assert us.get("companyinfo/" + us.realm).status_code == 200  # once, then served


# -- minorversion and requestid -------------------------------------------------------------
def test_minorversion_below_75_is_served_as_75(us, sandbox):  # noqa: F811
    """Minor versions 1–74 are ignored and answered as 75 since 2025-08-01:
    https://blogs.intuit.com/2025/01/21/changes-to-our-accounting-api-that-may-impact-your-application
    (and
    https://developer.intuit.com/app/developer/qbo/docs/learn/explore-the-quickbooks-online-api/minor-versions).
    A value that is no number at all is refused with 2170 (assumed)."""
    info = ok(us.get("companyinfo/" + us.realm, minorversion="65"), "CompanyInfo")
    assert info["CompanyName"] == "Koppel Demo Inc."
    assert_fault(us.get("companyinfo/" + us.realm, minorversion="latest"), 400, "2170",
                 "ValidationFault", "minorversion")
    assert sandbox.get("/_sandbox/stats").json()["minorversion_below_75"] == 1


def test_requestid_replays_the_original_answer(us):
    """RequestID: "If the service receives another request with the same RequestID … the
    service sends the same response as it did for the original request" (Intuit's example
    creates an invoice with ``?requestid=4957``):
    https://blogs.intuit.com/blog/2015/04/06/15346/"""
    body = {"Line": [sales_line(100.0, SERVICES_ITEM, "Services")],
            "CustomerRef": {"value": AMYS_BIRD_SANCTUARY}}  # adapted: customer id
    first = ok(us.post("invoice", body, requestid="4957"), "Invoice")
    second = ok(us.post("invoice", body, requestid="4957"), "Invoice")
    assert second == first
    count = us.query(f"select count(*) from Invoice where Id = '{first['Id']}'").json()
    assert count["QueryResponse"] == {"totalCount": 1}
    third = ok(us.post("invoice", body, requestid="4958"), "Invoice")
    assert third["Id"] != first["Id"]


# -- Customer -------------------------------------------------------------------------------
KING_GROCERIES = {
    "FullyQualifiedName": "King Groceries", "PrimaryEmailAddr": {"Address": "jdrew@myemail.com"},
    "DisplayName": "King's Groceries", "Suffix": "Jr", "Title": "Mr", "MiddleName": "B",
    "Notes": "Here are other details.", "FamilyName": "King",
    "PrimaryPhone": {"FreeFormNumber": "(555) 555-5555"}, "CompanyName": "King Groceries",
    "BillAddr": {"CountrySubDivisionCode": "CA", "City": "Mountain View", "PostalCode": "94042",
                 "Line1": "123 Main Street", "Country": "USA"},
    "GivenName": "James"}


def test_customer_create_read_and_sparse_update(us):
    """Customer "Create a customer" sample (King's Groceries) and its response, read, and
    "Sparse update a customer":
    https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/customer"""
    customer = ok(us.post("customer", KING_GROCERIES), "Customer")
    assert_entity(customer)
    assert_types(customer, {"DisplayName": str, "FullyQualifiedName": str, "Active": bool,
                            "Taxable": bool, "Job": bool, "BillWithParent": bool,
                            "Balance": NUMBER, "BalanceWithJobs": NUMBER, "CurrencyRef": dict,
                            "PreferredDeliveryMethod": str, "PrimaryEmailAddr": dict,
                            "PrimaryPhone": dict, "BillAddr": dict})
    # FullyQualifiedName is read-only: QBO derives it from DisplayName
    assert customer["FullyQualifiedName"] == customer["DisplayName"] == "King's Groceries"
    assert (customer["Active"], customer["Job"], customer["BillWithParent"]) == (True, False,
                                                                                 False)
    assert customer["Balance"] == 0 and customer["BalanceWithJobs"] == 0
    assert customer["PreferredDeliveryMethod"] == "Print"
    assert_ref(customer["CurrencyRef"], "USD", "United States Dollar")
    assert customer["BillAddr"]["City"] == "Mountain View"

    read = ok(us.get(f"customer/{customer['Id']}"), "Customer")
    assert read == customer

    sparse = {"SyncToken": "0", "Id": customer["Id"], "sparse": True,
              "DisplayName": "King's Groceries Inc"}
    updated = ok(us.post("customer", sparse), "Customer")
    assert_entity(updated, sync_token="1")
    assert updated["DisplayName"] == "King's Groceries Inc"
    assert updated["CompanyName"] == "King Groceries"  # sparse keeps what was not sent


def test_a_stale_sync_token_is_5010(us):
    """Updates carry the latest ``SyncToken``; an older one is "Stale Object Error" 5010
    (error-codes page,
    https://developer.intuit.com/app/developer/qbo/docs/develop/troubleshooting/error-codes;
    Customer update:
    https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/customer)."""
    customer = ok(us.post("customer", {"DisplayName": "Stale Test"}), "Customer")
    ok(us.post("customer", {"SyncToken": "0", "Id": customer["Id"], "sparse": True,
                            "Notes": "one"}), "Customer")
    error = assert_fault(us.post("customer", {"SyncToken": "0", "Id": customer["Id"],
                                              "sparse": True, "Notes": "two"}),
                         400, "5010", "ValidationFault")
    assert error["Message"] == "Stale Object Error"


def test_a_duplicate_display_name_is_6240(us):
    """DisplayName "must be unique across all Customer, Employee, and Vendor objects"
    (https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/customer);
    the fault is "Duplicate Name Exists Error" 6240
    (https://developer.intuit.com/app/developer/qbo/docs/develop/troubleshooting/error-codes)."""
    error = assert_fault(us.post("customer", {"DisplayName": "Amy's Bird Sanctuary"}),
                         400, "6240", "ValidationFault")
    assert error["Message"] == "Duplicate Name Exists Error"


def test_an_unknown_id_is_610_object_not_found(us):
    """Reading an id that does not exist: "Object Not Found" 610, HTTP 400:
    https://developer.intuit.com/app/developer/qbo/docs/develop/troubleshooting/error-codes"""
    error = assert_fault(us.get("customer/987654"), 400, "610", "ValidationFault")
    assert error["Message"] == "Object Not Found"


# -- Item -----------------------------------------------------------------------------------
def test_item_create_inventory_sample(us):
    """Item "Create an item" sample (inventory item "Garden Supplies") and response:
    https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/item"""
    body = {"TrackQtyOnHand": True, "Name": "Garden Supplies", "QtyOnHand": 10,
            # adapted: account ids of the sandbox company
            "IncomeAccountRef": {"name": "Sales of Product Income", "value": INCOME_ACCOUNT},
            "AssetAccountRef": {"name": "Inventory Asset", "value": INVENTORY_ACCOUNT},
            "InvStartDate": "2015-01-01", "Type": "Inventory",
            "ExpenseAccountRef": {"name": "Cost of Goods Sold", "value": COGS_ACCOUNT}}
    item = ok(us.post("item", body), "Item")
    assert_entity(item)
    assert_types(item, {"Name": str, "FullyQualifiedName": str, "Type": str, "Active": bool,
                        "TrackQtyOnHand": bool, "QtyOnHand": NUMBER, "InvStartDate": str,
                        "IncomeAccountRef": dict, "ExpenseAccountRef": dict,
                        "AssetAccountRef": dict})
    assert (item["Name"], item["FullyQualifiedName"], item["Type"]) == (
        "Garden Supplies", "Garden Supplies", "Inventory")
    assert item["QtyOnHand"] == 10 and item["InvStartDate"] == "2015-01-01"
    assert_ref(item["AssetAccountRef"], INVENTORY_ACCOUNT)
    assert ok(us.get(f"item/{item['Id']}"), "Item") == item


# -- Invoice --------------------------------------------------------------------------------
def create_invoice(us: Api) -> dict:
    """Invoice "Create an invoice" sample: one ``SalesItemLineDetail`` line of 100.00 on
    item 1 "Services" for customer 1."""
    body = {"Line": [sales_line(100.0, SERVICES_ITEM, "Services")],
            "CustomerRef": {"value": AMYS_BIRD_SANCTUARY}}  # adapted: customer id
    return ok(us.post("invoice", body), "Invoice")


def test_invoice_create_sample(us):
    """Invoice "Create an invoice" sample and response:
    https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/invoice"""
    invoice = create_invoice(us)
    assert_entity(invoice)
    assert_types(invoice, {"Line": list, "CustomerRef": dict, "TxnDate": str, "DueDate": str,
                           "DocNumber": str, "TotalAmt": NUMBER, "Balance": NUMBER,
                           "CurrencyRef": dict, "TxnTaxDetail": dict, "PrintStatus": str,
                           "EmailStatus": str})
    assert_ref(invoice["CustomerRef"], AMYS_BIRD_SANCTUARY, "Amy's Bird Sanctuary")
    assert invoice["TotalAmt"] == 100.0 and invoice["Balance"] == 100.0
    assert (invoice["PrintStatus"], invoice["EmailStatus"]) == ("NotSet", "NotSet")
    assert_ref(invoice["CurrencyRef"], "USD", "United States Dollar")
    assert len(invoice["Line"]) == 2
    line = invoice["Line"][0]
    assert_types(line, {"Id": str, "LineNum": int, "Amount": NUMBER, "DetailType": str,
                        "SalesItemLineDetail": dict})
    # the sample response ends with the sub-total line (no Id, no LineNum)
    assert invoice["Line"][1] == {"Amount": 100.0, "DetailType": "SubTotalLineDetail",
                                  "SubTotalLineDetail": {}}
    assert (line["Id"], line["LineNum"], line["Amount"]) == ("1", 1, 100.0)
    assert_ref(line["SalesItemLineDetail"]["ItemRef"], SERVICES_ITEM, "Services")
    assert_types(invoice["TxnTaxDetail"], {"TotalTax": NUMBER})
    datetime.strptime(invoice["TxnDate"], "%Y-%m-%d")


def test_invoice_read_with_invoice_link(us):
    """Invoice read with ``include=invoiceLink`` (minor version 36+): ``InvoiceLink`` is a
    string, given "for invoices with online payment enabled and having a valid customer
    email address"
    (https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/invoice);
    Amy's Bird Sanctuary has an e-mail."""
    invoice = create_invoice(us)
    read = ok(us.get(f"invoice/{invoice['Id']}", include="invoiceLink"), "Invoice")
    assert isinstance(read["InvoiceLink"], str) and read["InvoiceLink"].startswith("http")
    plain = ok(us.get(f"invoice/{invoice['Id']}"), "Invoice")
    assert "InvoiceLink" not in plain and plain == invoice


def test_invoice_sparse_update(us):
    """Invoice "Sparse update an invoice" (``sparse: true``, ``SyncToken``, ``Id`` and the
    changed field):
    https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/invoice"""
    invoice = create_invoice(us)
    body = {"SyncToken": invoice["SyncToken"], "Id": invoice["Id"], "sparse": True,
            "DueDate": "2030-01-31"}
    updated = ok(us.post("invoice", body), "Invoice")
    assert_entity(updated, sync_token="1")
    assert updated["DueDate"] == "2030-01-31" and updated["TotalAmt"] == 100.0


def test_invoice_void(us):
    """Invoice "Void an invoice": ``POST /invoice?operation=void`` with ``Id`` and
    ``SyncToken``; the answer is the invoice with zero amounts, ``Balance`` 0 and
    ``PrivateNote`` "Voided":
    https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/invoice"""
    invoice = create_invoice(us)
    voided = ok(us.post("invoice", {"SyncToken": "0", "Id": invoice["Id"]},
                        operation="void"), "Invoice")
    assert_entity(voided, sync_token="1")
    assert (voided["TotalAmt"], voided["Balance"], voided["PrivateNote"]) == (0, 0, "Voided")
    assert [line["Amount"] for line in voided["Line"]] == [0, 0]


def test_invoice_delete(us):
    """Invoice "Delete an invoice": ``POST /invoice?operation=delete`` with ``Id`` and
    ``SyncToken``; the answer is ``{"Invoice": {"status": "Deleted", "domain": "QBO", "Id":
    …}, "time": …}``:
    https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/invoice"""
    invoice = create_invoice(us)
    deleted = ok(us.post("invoice", {"SyncToken": "0", "Id": invoice["Id"]},
                         operation="delete"), "Invoice")
    assert deleted == {"status": "Deleted", "domain": "QBO", "Id": invoice["Id"]}
    assert_fault(us.get(f"invoice/{invoice['Id']}"), 400, "610", "ValidationFault")


# -- SalesReceipt, Payment, CreditMemo, RefundReceipt --------------------------------------
def test_sales_receipt_create_sample_and_void(us):
    """SalesReceipt "Create a salesreceipt" sample (1 × "Pest Control" at 35.00, tax code
    NON) and "Void a salesreceipt" (``operation=update&include=void``, ``sparse: true``):
    https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/salesreceipt"""
    body = {"Line": [{"Description": "Pest Control Services", "DetailType": "SalesItemLineDetail",
                      "SalesItemLineDetail": {"TaxCodeRef": {"value": "NON"}, "Qty": 1,
                                              "UnitPrice": 35,
                                              # adapted: item id
                                              "ItemRef": {"name": "Pest Control",
                                                          "value": PEST_CONTROL_ITEM}},
                      "LineNum": 1, "Amount": 35.0, "Id": "1"}]}
    receipt = ok(us.post("salesreceipt", body), "SalesReceipt")
    assert_entity(receipt)
    assert_types(receipt, {"Line": list, "TotalAmt": NUMBER, "Balance": NUMBER, "TxnDate": str,
                           "DocNumber": str, "DepositToAccountRef": dict, "TxnTaxDetail": dict})
    assert receipt["TotalAmt"] == 35.0 and receipt["Balance"] == 0
    assert [line["DetailType"] for line in receipt["Line"]] == ["SalesItemLineDetail",
                                                                "SubTotalLineDetail"]
    assert receipt["Line"][1]["Amount"] == 35.0
    detail = receipt["Line"][0]["SalesItemLineDetail"]
    assert (detail["Qty"], detail["UnitPrice"]) == (1, 35)
    assert_ref(detail["TaxCodeRef"], "NON")
    voided = ok(us.post("salesreceipt", {"SyncToken": "0", "Id": receipt["Id"], "sparse": True},
                        operation="update", include="void"), "SalesReceipt")
    assert_entity(voided, sync_token="1")
    assert (voided["TotalAmt"], voided["PrivateNote"]) == (0, "Voided")


def test_payment_create_samples(us):
    """Payment "Create a payment" samples: an unapplied payment (``TotalAmt`` 25.00 and a
    ``CustomerRef``) and one applied to an invoice through ``Line[].LinkedTxn`` (``TxnType:
    Invoice``), which lowers the invoice's ``Balance``:
    https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/payment"""
    unapplied = ok(us.post("payment", {"TotalAmt": 25.0,
                                       "CustomerRef": {"value": AMYS_BIRD_SANCTUARY}}),
                   "Payment")  # adapted: customer id
    assert_entity(unapplied)
    assert_types(unapplied, {"TotalAmt": NUMBER, "UnappliedAmt": NUMBER, "CustomerRef": dict,
                             "TxnDate": str, "CurrencyRef": dict, "DepositToAccountRef": dict})
    assert (unapplied["TotalAmt"], unapplied["UnappliedAmt"]) == (25.0, 25.0)

    invoice = create_invoice(us)
    body = {"TotalAmt": 55.0, "CustomerRef": {"value": AMYS_BIRD_SANCTUARY},
            "Line": [{"Amount": 55.0,
                      "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}]}
    applied = ok(us.post("payment", body), "Payment")  # adapted: customer and invoice ids
    assert applied["UnappliedAmt"] == 0
    assert applied["Line"][0]["LinkedTxn"] == [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]
    assert ok(us.get(f"invoice/{invoice['Id']}"), "Invoice")["Balance"] == 45.0


def test_credit_memo_create_sample(us):
    """CreditMemo "Create a credit memo" sample (50.00 of "Concrete" for Cool Cars) and
    response (``RemainingCredit``, ``Balance``):
    https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/creditmemo"""
    body = {"Line": [sales_line(50, CONCRETE_ITEM, "Concrete")],
            "CustomerRef": {"name": "CoolCars", "value": COOL_CARS}}  # adapted: ids
    memo = ok(us.post("creditmemo", body), "CreditMemo")
    assert_entity(memo)
    assert_types(memo, {"TotalAmt": NUMBER, "Balance": NUMBER, "RemainingCredit": NUMBER,
                        "Line": list, "DocNumber": str, "TxnDate": str})
    assert (memo["TotalAmt"], memo["Balance"], memo["RemainingCredit"]) == (50.0, 50.0, 50.0)
    assert_ref(memo["CustomerRef"], COOL_CARS, "Cool Cars")


def test_refund_receipt_create_sample(us):
    """RefundReceipt "Create a refund receipt" sample (420.00 on item "Refunds to customers",
    ``DepositToAccountRef`` Checking, no customer):
    https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/refundreceipt"""
    body = {"Line": [sales_line(420.0, REFUNDS_ITEM, "Refunds to customers")],
            "DepositToAccountRef": {"name": "Checking", "value": CHECKING_ACCOUNT}}  # adapted
    refund = ok(us.post("refundreceipt", body), "RefundReceipt")
    assert_entity(refund)
    assert_types(refund, {"TotalAmt": NUMBER, "Balance": NUMBER, "DepositToAccountRef": dict,
                          "Line": list, "DocNumber": str, "TxnDate": str})
    assert (refund["TotalAmt"], refund["Balance"]) == (420.0, 0)
    assert_ref(refund["DepositToAccountRef"], CHECKING_ACCOUNT)


# -- lists ----------------------------------------------------------------------------------
def test_account_create_sample(us):
    """Account "Create an account" sample (``Name`` and ``AccountType`` "Accounts Receivable")
    and response (``Classification`` "Asset", ``AccountSubType`` "AccountsReceivable",
    balances 0):
    https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/account"""
    account = ok(us.post("account", {"Name": "MyJobs_test",
                                     "AccountType": "Accounts Receivable"}), "Account")
    assert_entity(account)
    assert_types(account, {"Name": str, "FullyQualifiedName": str, "AccountType": str,
                           "AccountSubType": str, "Classification": str, "Active": bool,
                           "SubAccount": bool, "CurrentBalance": NUMBER,
                           "CurrentBalanceWithSubAccounts": NUMBER, "CurrencyRef": dict})
    assert (account["AccountType"], account["AccountSubType"], account["Classification"]) == (
        "Accounts Receivable", "AccountsReceivable", "Asset")
    assert account["CurrentBalance"] == 0 and account["CurrentBalanceWithSubAccounts"] == 0
    assert_fault(us.post("account", {"Name": "Nonsense", "AccountType": "Piggy Bank"}),
                 400, "2170", "ValidationFault", "AccountType")


@pytest.mark.parametrize("entity, body, expected", [
    ("term", {"Name": "Net 45", "DueDays": 45},
     {"Name": "Net 45", "DueDays": 45, "Type": "STANDARD", "Active": True}),
    ("paymentmethod", {"Name": "Business Check"},
     {"Name": "Business Check", "Type": "NON_CREDIT_CARD", "Active": True}),
    ("class", {"Name": "France"},
     {"Name": "France", "FullyQualifiedName": "France", "SubClass": False, "Active": True}),
])
def test_simple_list_create_samples(us, entity, body, expected):
    """Term, PaymentMethod and Class "Create" samples and responses:
    https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/term,
    https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/paymentmethod,
    https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/class
    (the Term sample's "Net 30" exists in the sandbox company, so the term is "Net 45")."""
    name = {"term": "Term", "paymentmethod": "PaymentMethod", "class": "Class"}[entity]
    obj = ok(us.post(entity, body), name)
    assert_entity(obj)
    assert {k: obj[k] for k in expected} == expected
    assert ok(us.get(f"{entity}/{obj['Id']}"), name) == obj


def test_tax_code_and_tax_rate_read(us):
    """TaxCode and TaxRate are read-only lists ("Read a TaxCode", "Read a TaxRate"):
    https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/taxcode,
    https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/taxrate"""
    code = ok(us.get("taxcode/2"), "TaxCode")
    assert_entity(code)
    assert_types(code, {"Name": str, "Description": str, "Active": bool, "Taxable": bool,
                        "TaxGroup": bool, "SalesTaxRateList": dict,
                        "PurchaseTaxRateList": dict})
    detail = code["SalesTaxRateList"]["TaxRateDetail"][0]
    assert_types(detail, {"TaxRateRef": dict, "TaxTypeApplicable": str, "TaxOrder": int})
    rate = ok(us.get(f"taxrate/{detail['TaxRateRef']['value']}"), "TaxRate")
    assert_entity(rate)
    assert_types(rate, {"Name": str, "RateValue": NUMBER, "Active": bool,
                        "SpecialTaxType": str, "DisplayType": str})
    assert rate["Name"] == detail["TaxRateRef"]["name"]


def test_company_info_read_and_query(us):
    """CompanyInfo "Read company info" (``GET /companyinfo/<realmId>``) and "Query company
    info" (``select * from CompanyInfo``):
    https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/companyinfo"""
    info = ok(us.get("companyinfo/" + us.realm), "CompanyInfo")
    assert_entity(info)
    assert_types(info, {"CompanyName": str, "LegalName": str, "Country": str,
                        "CompanyAddr": dict, "LegalAddr": dict,
                        "CustomerCommunicationAddr": dict, "PrimaryPhone": dict,
                        "Email": dict, "WebAddr": dict, "SupportedLanguages": str,
                        "FiscalYearStartMonth": str, "CompanyStartDate": str,
                        "NameValue": list})
    assert (info["CompanyName"], info["Country"]) == ("Koppel Demo Inc.", "US")
    assert_types(info["Email"], {"Address": str})
    assert_types(info["NameValue"][0], {"Name": str, "Value": str})
    queried = us.query("select * from CompanyInfo").json()["QueryResponse"]
    assert [(row["Id"], row["CompanyName"]) for row in queried["CompanyInfo"]] == [
        (info["Id"], "Koppel Demo Inc.")]
    assert (queried["startPosition"], queried["maxResults"]) == (1, 1)


def test_preferences_read(us):
    """Preferences "Read preferences" (``GET /preferences``):
    https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/preferences"""
    prefs = ok(us.get("preferences"), "Preferences")
    assert_entity(prefs)
    assert_types(prefs, {"SalesFormsPrefs": dict, "CurrencyPrefs": dict, "TaxPrefs": dict,
                         "ProductAndServicesPrefs": dict, "AccountingInfoPrefs": dict})
    assert prefs["CurrencyPrefs"] == {"MultiCurrencyEnabled": False,
                                      "HomeCurrency": {"value": "USD"}}
    assert_types(prefs["SalesFormsPrefs"], {"CustomTxnNumbers": bool, "AllowDiscount": bool})


def test_company_currency_and_exchange_rate(us, sandbox):  # noqa: F811
    """CompanyCurrency "Create a companycurrency" (``{"Code": …}``; ``Name`` filled in)
    https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/companycurrency;
    ExchangeRate "Get an exchange rate" (``GET
    /exchangerate?sourcecurrencycode=EUR&asofdate=…``)
    https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/exchangerate.
    Multicurrency is switched on through the control plane (QBO: only in its UI)."""
    sandbox.put(f"/_sandbox/realms/{us.realm}/multicurrency",
                json={"enabled": True, "currencies": ["EUR"]}).raise_for_status()
    currency = ok(us.post("companycurrency", {"Code": "GBP"}), "CompanyCurrency")
    assert_entity(currency)
    assert (currency["Code"], currency["Name"], currency["Active"]) == (
        "GBP", "British Pound Sterling", True)
    day = (datetime.now(timezone.utc) - timedelta(days=1)).date().isoformat()
    sandbox.put(f"/_sandbox/realms/{us.realm}/exchange-rates",
                json={"source": "EUR", "rate": 1.1, "as_of": day}).raise_for_status()
    rate = ok(us.get("exchangerate", sourcecurrencycode="EUR", asofdate=day), "ExchangeRate")
    assert_types(rate, {"SourceCurrencyCode": str, "TargetCurrencyCode": str, "Rate": NUMBER,
                        "AsOfDate": str, "SyncToken": str, "domain": str, "sparse": bool,
                        "MetaData": dict})
    assert (rate["SourceCurrencyCode"], rate["TargetCurrencyCode"], rate["Rate"],
            rate["AsOfDate"]) == ("EUR", "USD", 1.1, day)


# -- Attachable, upload and download --------------------------------------------------------
def test_attachable_note_sample(us):
    """"Attach images and notes", "Attaching a note to an object": the request
    ``{"AttachableRef": [{"EntityRef": {"type": "Invoice", "value": "95"}}], "Note": …}``
    and its response (``IncludeOnSend`` false added):
    https://developer.intuit.com/app/developer/qbo/docs/workflows/attach-images-and-notes"""
    invoice = create_invoice(us)
    body = {"AttachableRef": [{"EntityRef": {"type": "Invoice", "value": invoice["Id"]}}],
            "Note": "This is a note added to the invoice."}  # adapted: invoice id
    note = ok(us.post("attachable", body), "Attachable")
    assert_entity(note)
    assert note["Note"] == "This is a note added to the invoice."
    assert note["AttachableRef"] == [{"EntityRef": {"type": "Invoice", "value": invoice["Id"]},
                                      "IncludeOnSend": False}]


def test_upload_and_download(us):
    """"Attach images and notes", "Uploading and attaching a file": ``POST /upload``
    multipart with ``file_metadata_01`` (the Attachable) and ``file_content_01`` (the file);
    the answer is ``{"AttachableResponse": [{"Attachable": {… "FileName", "FileAccessUri",
    "TempDownloadUri", "Size", "ContentType"}}], "time"}``; ``GET /download/<id>`` answers
    the temporary download URL as text/plain:
    https://developer.intuit.com/app/developer/qbo/docs/workflows/attach-images-and-notes"""
    invoice = create_invoice(us)
    content = b"\xff\xd8\xff\xe0 receipt"
    meta = {"AttachableRef": [{"EntityRef": {"type": "Invoice", "value": invoice["Id"]}}],
            "FileName": "receipt_nov15.jpg", "ContentType": "image/jpg"}  # adapted: id
    boundary = "37a1965f87babd849241a530ad71e169"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file_metadata_01\"\r\n"
            "Content-Type: application/json; charset=UTF-8\r\n"
            "Content-Transfer-Encoding: 8bit\r\n\r\n" + json.dumps(meta) +
            f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file_content_01\"; "
            "filename=\"receipt_nov15.jpg\"\r\nContent-Type: image/jpg\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode(content).decode() +
            f"\r\n--{boundary}--\r\n")
    answer = us.http.post(us.url("upload"), content=body, params={"minorversion": "75"},
                          headers={**us.headers,
                                   "Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert answer.status_code == 200, answer.text
    envelope = answer.json()
    assert set(envelope) == {"AttachableResponse", "time"}
    attachable = envelope["AttachableResponse"][0]["Attachable"]
    assert_entity(attachable)
    assert_types(attachable, {"FileName": str, "FileAccessUri": str, "TempDownloadUri": str,
                              "Size": NUMBER, "ContentType": str, "AttachableRef": list})
    assert (attachable["FileName"], attachable["ContentType"], attachable["Size"]) == (
        "receipt_nov15.jpg", "image/jpg", len(content))
    assert attachable["FileAccessUri"] == f"/v3/company/{us.realm}/download/{attachable['Id']}"
    download = us.http.get(attachable["FileAccessUri"], headers=us.headers,
                           params={"minorversion": "75"})
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/plain")
    assert download.text == attachable["TempDownloadUri"]
    assert us.http.get(download.text).content == content
    assert_fault(us.get("download/987654"), 400, "610", "ValidationFault")


# -- query ----------------------------------------------------------------------------------
def test_query_select_and_count(us):
    """Query operations: ``SELECT * | count(*) FROM <Entity> [WHERE …] [STARTPOSITION n]
    [MAXRESULTS n]``; the answer ``{"QueryResponse": {"<Entity>": [...], "startPosition",
    "maxResults"}, "time"}``, ``count(*)`` gives ``totalCount``; entities with no match give
    an empty ``QueryResponse``:
    https://developer.intuit.com/app/developer/qbo/docs/learn/explore-the-quickbooks-online-api/data-queries"""
    answer = us.query("select * from Customer where DisplayName = 'Amy''s Bird Sanctuary'")
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"QueryResponse", "time"}
    result = body["QueryResponse"]
    assert set(result) == {"Customer", "startPosition", "maxResults"}
    assert (result["startPosition"], result["maxResults"]) == (1, 1)
    assert result["Customer"][0]["Id"] == AMYS_BIRD_SANCTUARY
    page = us.http.get(us.url("query"), headers=us.headers, params={
        "minorversion": "75", "query": "select * from Item STARTPOSITION 3 MAXRESULTS 2"})
    assert {k: v for k, v in page.json()["QueryResponse"].items() if k != "Item"} == {
        "startPosition": 3, "maxResults": 2}
    count = us.query("select count(*) from Customer").json()["QueryResponse"]
    assert set(count) == {"totalCount"} and isinstance(count["totalCount"], int)
    assert count["totalCount"] == 31
    assert us.query("select * from Customer where DisplayName = 'Nobody'").json()[
        "QueryResponse"] == {}


def test_query_errors_are_4000_and_4001(us):
    """Query faults (error-codes page): a statement that does not parse is 4000 "Error
    parsing query"; an unknown entity is 4001 "Invalid query":
    https://developer.intuit.com/app/developer/qbo/docs/develop/troubleshooting/error-codes"""
    error = assert_fault(us.query("selec * frm Customer"), 400, "4000", "ValidationFault")
    assert error["Message"] == "Error parsing query"
    error = assert_fault(us.query("select * from Piggybank"), 400, "4001", "ValidationFault")
    assert error["Message"] == "Invalid query"


# -- batch ----------------------------------------------------------------------------------
def test_batch_sample(us):
    """Batch: Intuit's sample batch (create a customer "Mrs Ann Rosa", then query
    ``select * from SalesReceipt where TotalAmt > '300.00'``); the answer has one
    ``BatchItemResponse`` per ``bId`` with the entity, a ``QueryResponse`` or a
    ``Fault``; at most 30 items:
    https://developer.intuit.com/hub/blog/2017/07/27/batch-operations-important and
    https://blogs.intuit.com/2023/07/19/building-smarter-with-intuit-batch-without-a-scratch"""
    body = {"BatchItemRequest": [
        {"bId": "bid1", "Customer": {"DisplayName": "Mrs Ann Rosa"}, "operation": "create"},
        {"bId": "bid2", "Query": "select * from SalesReceipt where TotalAmt > '300.00'"},
        {"bId": "bid3", "operation": "delete", "Invoice": {"SyncToken": "0", "Id": "129"}}]}
    answer = us.post("batch", body)
    assert answer.status_code == 200
    envelope = answer.json()
    assert set(envelope) == {"BatchItemResponse", "time"}
    items = {item["bId"]: item for item in envelope["BatchItemResponse"]}
    assert list(items) == ["bid1", "bid2", "bid3"]
    assert set(items["bid1"]) == {"bId", "Customer"}
    assert_entity(items["bid1"]["Customer"])
    assert items["bid1"]["Customer"]["DisplayName"] == "Mrs Ann Rosa"
    query = items["bid2"]["QueryResponse"]
    assert all(receipt["TotalAmt"] > 300 for receipt in query["SalesReceipt"])
    assert query["startPosition"] == 1 and query["maxResults"] == len(query["SalesReceipt"])
    fault = items["bid3"]["Fault"]  # Intuit's sample deletes invoice 129, unknown here
    assert fault["type"] == "ValidationFault" and fault["Error"][0]["code"] == "610"
    too_many = {"BatchItemRequest": [{"bId": f"b{i}", "Query": "select * from Term"}
                                     for i in range(31)]}
    assert_fault(us.post("batch", too_many), 400, "6000", "ValidationFault", "BatchItemRequest")


# -- change data capture --------------------------------------------------------------------
def test_change_data_capture(us):
    """Change data capture: ``GET /cdc?entities=<list>&changedSince=<dateTime>`` (≤ 30 days
    back); ``{"CDCResponse": [{"QueryResponse": [{"<Entity>": [...], "startPosition",
    "maxResults"}, …]}], "time"}``; deleted entities carry ``status`` "Deleted":
    https://developer.intuit.com/app/developer/qbo/docs/learn/explore-the-quickbooks-online-api/change-data-capture"""
    # "changed since" is strictly after: a customer made in the same millisecond as the
    # client's clock read would not count, so ask from a millisecond earlier
    since = (datetime.now(timezone.utc) - timedelta(milliseconds=1)).isoformat(
        timespec="milliseconds")
    customer = ok(us.post("customer", {"DisplayName": "CDC Customer"}), "Customer")
    invoice = create_invoice(us)
    ok(us.post("invoice", {"SyncToken": "0", "Id": invoice["Id"]}, operation="delete"),
       "Invoice")
    answer = us.get("cdc", entities="Customer,Invoice", changedSince=since)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"CDCResponse", "time"}
    responses = body["CDCResponse"][0]["QueryResponse"]
    customers, invoices = responses
    assert [c["Id"] for c in customers["Customer"]] == [customer["Id"]]
    assert (customers["startPosition"], customers["maxResults"]) == (1, 1)
    deleted = invoices["Invoice"][0]
    assert (deleted["Id"], deleted["status"]) == (invoice["Id"], "Deleted")
    too_old = (datetime.now(timezone.utc) - timedelta(days=31)).date().isoformat()
    assert_fault(us.get("cdc", entities="Customer", changedSince=too_old), 400, "6000",
                 "ValidationFault", "changedSince")
