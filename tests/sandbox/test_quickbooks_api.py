"""Entities, queries, batch, upload, CDC, faults and requestid of the QBO sandbox,
through python-quickbooks over real HTTP."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from quickbooks.batch import batch_create, batch_delete
from quickbooks.cdc import change_data_capture
from quickbooks.exceptions import (ObjectNotFoundException, QuickbooksException,
                                   UnsupportedException, ValidationException)
from quickbooks.objects.account import Account
from quickbooks.objects.attachable import Attachable
from quickbooks.objects.base import AttachableRef, EmailAddress, Ref
from quickbooks.objects.company_info import CompanyInfo
from quickbooks.objects.customer import Customer
from quickbooks.objects.detailline import SalesItemLine, SalesItemLineDetail
from quickbooks.objects.employee import Employee
from quickbooks.objects.invoice import Invoice
from quickbooks.objects.item import Item
from quickbooks.objects.paymentmethod import PaymentMethod
from quickbooks.objects.preferences import Preferences
from quickbooks.objects.salesreceipt import SalesReceipt
from quickbooks.objects.taxcode import TaxCode
from quickbooks.objects.taxrate import TaxRate
from quickbooks.objects.term import Term
from quickbooks.objects.vendor import Vendor

from quickbooks_fixtures import *  # noqa: F401,F403


def ref(value: str) -> Ref:
    r = Ref()
    r.value = value
    return r


def customer(name: str, email: str | None = None) -> Customer:
    c = Customer()
    c.DisplayName = name
    if email:
        c.PrimaryEmailAddr = EmailAddress()
        c.PrimaryEmailAddr.Address = email
    return c


def receipt(doc_number: str | None = None, item: str = "1") -> SalesReceipt:
    r = SalesReceipt()
    if doc_number:
        r.DocNumber = doc_number
    li = SalesItemLine()
    li.SalesItemLineDetail = SalesItemLineDetail()
    li.SalesItemLineDetail.ItemRef = ref(item)
    li.SalesItemLineDetail.Qty, li.SalesItemLineDetail.UnitPrice = 1, 10
    li.SalesItemLineDetail.TaxCodeRef = ref("1")
    r.Line = [li]
    return r


def code_of(excinfo) -> int:
    return int(excinfo.value.error_code)


# -- customers ------------------------------------------------------------------------------
def test_customer_create_read_update_and_sub_customer(qb):
    saved = customer("Anna Bakker", "anna@example.nl").save(qb=qb)
    assert saved.SyncToken == "0" and saved.FullyQualifiedName == "Anna Bakker"
    read = Customer.get(saved.Id, qb=qb)
    read.CompanyName = "Bakker BV"
    updated = read.save(qb=qb)
    assert updated.SyncToken == "1" and updated.CompanyName == "Bakker BV"
    job = customer("Project X")
    job.ParentRef, job.Job = ref(saved.Id), True
    job = job.save(qb=qb)
    assert job.FullyQualifiedName == "Anna Bakker:Project X" and job.Level == 1 and job.Job


def test_full_update_clears_omitted_fields_and_sparse_keeps_them(qb):
    saved = customer("Bram", "bram@example.nl").save(qb=qb)
    sparse = {"Id": saved.Id, "SyncToken": saved.SyncToken, "sparse": True, "Notes": "vip"}
    qb.update_object("Customer", json.dumps(sparse))
    kept = Customer.get(saved.Id, qb=qb)
    assert kept.Notes == "vip" and kept.PrimaryEmailAddr.Address == "bram@example.nl"
    full = {"Id": saved.Id, "SyncToken": kept.SyncToken, "DisplayName": "Bram"}
    qb.update_object("Customer", json.dumps(full))
    cleared = Customer.get(saved.Id, qb=qb)
    assert cleared.PrimaryEmailAddr is None and not cleared.Notes


def test_customers_cannot_be_deleted_only_made_inactive(sandbox, qb):
    saved = customer("Carla").save(qb=qb)
    with pytest.raises(UnsupportedException):
        qb.delete_object("Customer", json.dumps({"Id": saved.Id, "SyncToken": "0"}))
    saved.Active = False
    saved.save(qb=qb)
    assert "Carla (deleted)" not in [c.DisplayName for c in Customer.all(qb=qb)]
    inactive = Customer.where("Active = false", qb=qb)
    assert [c.DisplayName for c in inactive] == ["Carla (deleted)"]
    customer("Carla").save(qb=qb)  # the name is free again
    dump = sandbox.get(f"/_sandbox/realms/{qb.company_id}/entities/Customer").json()
    assert {"Carla", "Carla (deleted)"} <= {c["DisplayName"] for c in dump["Customer"]}


def test_vendor_employee_and_customer_names_clash_6240(qb):
    assert [v.DisplayName for v in Vendor.all(qb=qb)] == ["Jansen Groothandel"]
    assert Employee.all(qb=qb)[0].DisplayName == "Emma de Vries"
    with pytest.raises(QuickbooksException) as error:
        customer("jansen groothandel").save(qb=qb)
    assert code_of(error) == 6240
    with pytest.raises(QuickbooksException) as error:
        customer("Jan de Boer").save(qb=qb)
    assert code_of(error) == 6240


@pytest.mark.parametrize("payload, code, element", [
    ({}, 2020, "DisplayName"),
    # DisplayName: "maximum of 500 chars" (developer.intuit.com … most-commonly-used/customer)
    ({"DisplayName": "x" * 501}, 2050, "DisplayName"),
    ({"DisplayName": "Eve", "PrimaryEmailAddr": {"Address": "not-an-email"}}, 2210,
     "PrimaryEmailAddr.Address"),
    ({"DisplayName": "Sub", "ParentRef": {"value": "999"}}, 2500, "ParentRef"),
])
def test_customer_validation_faults(qb, payload, code, element):
    with pytest.raises(ValidationException) as error:
        qb.create_object("Customer", json.dumps(payload))
    assert code_of(error) == code


def test_unknown_object_is_610_and_stale_synctoken_is_5010(qb):
    with pytest.raises(ObjectNotFoundException):
        Customer.get(999, qb=qb)
    saved = customer("Dirk").save(qb=qb)
    first = Customer.get(saved.Id, qb=qb)
    second = Customer.get(saved.Id, qb=qb)
    first.Notes = "one"
    first.save(qb=qb)
    second.Notes = "two"
    with pytest.raises(QuickbooksException) as error:
        second.save(qb=qb)
    assert code_of(error) == 5010


# -- items ------------------------------------------------------------------------------------
def test_item_categories_inventory_and_names(qb):
    top = Item()
    top.Name, top.Type = "Shoes", "Category"
    top = top.save(qb=qb)
    level = top
    for name in ("Men", "Running", "Trail"):
        sub = Item()
        sub.Name, sub.Type, sub.SubItem, sub.ParentRef = name, "Category", True, ref(level.Id)
        level = sub.save(qb=qb)
    assert level.FullyQualifiedName == "Shoes:Men:Running:Trail" and level.Level == 3
    too_deep = Item()
    too_deep.Name, too_deep.Type, too_deep.SubItem = "Deeper", "Category", True
    too_deep.ParentRef = ref(level.Id)
    with pytest.raises(QuickbooksException) as error:
        too_deep.save(qb=qb)
    assert code_of(error) == 6000
    shoe = Item()
    shoe.Name, shoe.Type, shoe.Sku = "Trail shoe 42", "Inventory", "TS-42"
    shoe.SubItem, shoe.ParentRef = True, ref(level.Id)
    with pytest.raises(ValidationException) as error:
        shoe.save(qb=qb)
    assert code_of(error) == 2020
    shoe.TrackQtyOnHand, shoe.QtyOnHand, shoe.InvStartDate = True, 5, "2025-01-01"
    shoe.IncomeAccountRef, shoe.ExpenseAccountRef = ref("1"), ref("5")
    shoe.AssetAccountRef = ref("6")
    shoe = shoe.save(qb=qb)
    assert shoe.FullyQualifiedName == "Shoes:Men:Running:Trail:Trail shoe 42"
    child = Item()
    child.Name, child.Type, child.IncomeAccountRef = "Laces", "Service", ref("2")
    child.SubItem, child.ParentRef = True, ref(shoe.Id)
    with pytest.raises(QuickbooksException) as error:
        child.save(qb=qb)
    assert code_of(error) == 6000  # only categories can be parents
    duplicate = Item()
    duplicate.Name, duplicate.Type, duplicate.IncomeAccountRef = "services", "Service", ref("2")
    with pytest.raises(QuickbooksException) as error:
        duplicate.save(qb=qb)
    assert code_of(error) == 6240
    long_name = Item()
    long_name.Name, long_name.Type, long_name.IncomeAccountRef = "n" * 101, "Service", ref("2")
    with pytest.raises(ValidationException) as error:
        long_name.save(qb=qb)
    assert code_of(error) == 2050


# -- lists -----------------------------------------------------------------------------------
def test_seeded_lists_and_list_entities(qb):
    assert {"Net 14", "Net 30", "Due on receipt"} <= {t.Name for t in Term.all(qb=qb)}
    assert {"Cash", "Visa", "MasterCard", "American Express"} <= {
        p.Name for p in PaymentMethod.all(qb=qb)}
    accounts = {a.Name: a.AccountType for a in Account.all(qb=qb)}
    assert accounts["Undeposited Funds"] == "Other Current Asset"
    assert {c.Name for c in TaxCode.all(qb=qb)} >= {"21%", "9%", "0%", "Exempt"}
    assert sorted(float(r.RateValue) for r in TaxRate.all(qb=qb)) == [0, 0, 0, 0, 9, 21]
    term = Term()
    term.Name, term.DueDays = "Net 7", 7
    assert term.save(qb=qb).DueDays == 7
    method = PaymentMethod()
    method.Name, method.Type = "Bancontact", "NON_CREDIT_CARD"
    assert method.save(qb=qb).Id
    account = Account()
    account.Name, account.AccountType = "Webshop sales", "Income"
    assert account.save(qb=qb).FullyQualifiedName == "Webshop sales"
    info = CompanyInfo.get(qb.company_id, qb=qb)
    assert info.Country == "NL"
    prefs = Preferences.get(qb=qb)
    assert prefs.TaxPrefs.UsingSalesTax is True
    assert prefs.CurrencyPrefs.HomeCurrency.value == "EUR"


# -- queries ----------------------------------------------------------------------------------
def test_query_language_subset(qb):
    for name in ("O'Neil", "Olga", "Otto"):
        customer(name, f"{name[:2].lower()}x@example.nl").save(qb=qb)
    found = Customer.filter(DisplayName="O'Neil", Active=True, qb=qb)
    assert [c.DisplayName for c in found] == ["O'Neil"]
    assert [c.DisplayName for c in Customer.choose(["Olga", "Otto"], field="DisplayName",
                                                   qb=qb)] == ["Olga", "Otto"]
    like = Customer.where("DisplayName LIKE 'O%'", order_by="DisplayName DESC", qb=qb)
    assert [c.DisplayName for c in like] == ["Otto", "Olga", "O'Neil"]
    assert Customer.count("DisplayName LIKE 'O%'", qb=qb) == 3
    page = Customer.where("DisplayName LIKE 'O%'", order_by="DisplayName", start_position=2,
                          max_results=1, qb=qb)
    assert [c.DisplayName for c in page] == ["Olga"]
    assert Customer.where("PrimaryEmailAddr = 'olx@example.nl'", qb=qb)[0].DisplayName == "Olga"
    recent = (datetime.now(timezone.utc) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S")
    assert Customer.count(f"MetaData.LastUpdatedTime > '{recent}'", qb=qb) >= 3
    assert [i.Name for i in Item.all(qb=qb)][:2] == ["Services", "Shipping"]
    empty = qb.query("SELECT * FROM Customer WHERE DisplayName = 'Nobody'")
    assert "Customer" not in empty["QueryResponse"]
    answer = qb.query("select * from Customer ORDER BY Id STARTPOSITION 1 MAXRESULTS 2")
    assert answer["QueryResponse"]["maxResults"] == 2
    assert answer["QueryResponse"]["startPosition"] == 1


@pytest.mark.parametrize("text, code", [
    ("SELECT * FROM Customer WHERE DisplayName = 'a' OR DisplayName = 'b'", 4000),
    ("SELECT FROM Customer", 4000),
    ("SELECT * FROM Customer MAXRESULTS 1001", 4001),
    ("SELECT * FROM Spaceship", 4001),
])
def test_query_errors(qb, text, code):
    with pytest.raises(ValidationException) as error:
        qb.query(text)
    assert code_of(error) == code


# -- transactions -----------------------------------------------------------------------------
def test_doc_number_rules(qb):
    receipt("A-1").save(qb=qb)
    with pytest.raises(QuickbooksException) as error:
        receipt("a-1").save(qb=qb)
    assert code_of(error) == 6140
    allowed = receipt("A-1").save(qb=qb, params={"include": "allowduplicatedocnum"})
    assert allowed.DocNumber == "A-1"
    with pytest.raises(ValidationException) as error:
        receipt("X" * 22).save(qb=qb)
    assert code_of(error) == 2050
    with pytest.raises(ValidationException) as error:
        receipt(item="999").save(qb=qb)
    assert code_of(error) == 2500
    assert receipt().save(qb=qb).DocNumber == "1001"


def test_transactions_delete_and_show_in_cdc(qb):
    since = datetime.now(timezone.utc) - timedelta(seconds=5)
    kept = receipt("CDC-1").save(qb=qb)
    gone = receipt("CDC-2").save(qb=qb)
    SalesReceipt.get(gone.Id, qb=qb).delete(qb=qb)
    with pytest.raises(ObjectNotFoundException):
        SalesReceipt.get(gone.Id, qb=qb)
    new_customer = customer("Cdc Klant").save(qb=qb)
    result = change_data_capture([SalesReceipt, Customer], since, qb=qb)
    receipts = {r.Id: getattr(r, "status", "") for r in result.SalesReceipt}
    assert receipts[kept.Id] == "" and receipts[gone.Id] == "Deleted"
    assert new_customer.Id in [c.Id for c in result.Customer]


def test_batch_create_delete_and_per_item_faults(sandbox, qb):
    good = [customer(f"Batch {n}") for n in range(3)]
    bad = customer("Jan de Boer")  # clashes
    results = batch_create(good + [bad], qb=qb)
    assert len(results.successes) == 3 and len(results.faults) == 1
    assert results.faults[0].Error[0].code == "6240"
    receipts = [receipt(f"B-{n}").save(qb=qb) for n in range(2)]
    deleted = batch_delete(receipts, qb=qb)
    assert not deleted.faults
    stats = sandbox.get("/_sandbox/stats").json()
    assert stats["batch_operations"] == 6 and stats["entity:Customer"] >= 4
    too_many = {"BatchItemRequest": [{"bId": str(n), "operation": "create",
                                      "Customer": {"DisplayName": f"Many {n}"}}
                                     for n in range(31)]}
    with pytest.raises(QuickbooksException) as error:
        qb.batch_operation(json.dumps(too_many))
    assert code_of(error) == 6000
    query = qb.batch_operation(json.dumps({"BatchItemRequest": [
        {"bId": "q", "Query": "SELECT COUNT(*) FROM Customer"}]}))
    assert query["BatchItemResponse"][0]["QueryResponse"]["totalCount"] == 5


def test_upload_attachable_for_item(sandbox, qb):
    attachable = Attachable()
    link = AttachableRef()
    link.EntityRef = ref("4")
    link.EntityRef.type = "Item"
    attachable.AttachableRef.append(link)
    attachable.FileName, attachable.ContentType = "shirt.png", "image/png"
    attachable._FileBytes = b"\x89PNG\r\n\x1a\nfake-image-bytes"
    saved = attachable.save(qb=qb)
    assert saved.Id and saved.FileName == "shirt.png" and saved.Size == 24
    content = sandbox.get(f"/_sandbox/realms/{qb.company_id}/attachments/{saved.Id}")
    assert content.content == b"\x89PNG\r\n\x1a\nfake-image-bytes"
    found = Attachable.where("AttachableRef.EntityRef.value = '4'", qb=qb)
    assert [a.Id for a in found] == [saved.Id]
    note = Attachable()
    note.Note = "just a note"
    note.AttachableRef.append(link)
    assert note.save(qb=qb).Note == "just a note"


def test_upload_accepts_raw_multipart_parts(qb):
    metadata = {"AttachableRef": [{"EntityRef": {"type": "Item", "value": "4"}}],
                "FileName": "raw.txt", "ContentType": "text/plain"}
    files = {"file_metadata_01": (None, json.dumps(metadata), "application/json"),
             "file_content_01": ("raw.txt", b"plain bytes", "text/plain")}
    answer = qb.session.post(f"{qb.api_url}/company/{qb.company_id}/upload",
                             params={"minorversion": 75}, files=files)
    assert answer.status_code == 200
    attachable = answer.json()["AttachableResponse"][0]["Attachable"]
    assert attachable["FileName"] == "raw.txt" and attachable["Size"] == len(b"plain bytes")


def test_requestid_replays_the_first_response(sandbox, qb):
    first = customer("Idem").save(qb=qb, request_id="req-1")
    again = customer("Idem").save(qb=qb, request_id="req-1")
    assert again.Id == first.Id
    assert Customer.count("DisplayName = 'Idem'", qb=qb) == 1
    with pytest.raises(QuickbooksException) as error:
        customer("Jan de Boer").save(qb=qb, request_id="req-2")
    with pytest.raises(QuickbooksException) as replay:
        customer("Someone Else").save(qb=qb, request_id="req-2")
    assert code_of(error) == code_of(replay) == 6240
    assert Customer.count("DisplayName = 'Someone Else'", qb=qb) == 0
