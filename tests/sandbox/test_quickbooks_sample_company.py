"""A US realm looks like Intuit's sample company (Craig's Design and Landscaping Services),
built by the sandbox's own create path, so totals and balances obey its rules."""

from __future__ import annotations

from decimal import Decimal

from quickbooks.objects.attachable import Attachable
from quickbooks.objects.base import Ref
from quickbooks.objects.creditmemo import CreditMemo
from quickbooks.objects.customer import Customer
from quickbooks.objects.detailline import SalesItemLine, SalesItemLineDetail
from quickbooks.objects.invoice import Invoice
from quickbooks.objects.item import Item
from quickbooks.objects.payment import Payment
from quickbooks.objects.refundreceipt import RefundReceipt
from quickbooks.objects.salesreceipt import SalesReceipt

from koppel.sandbox.quickbooks import sample_company
from koppel.sandbox.quickbooks.seed import seed_realm
from koppel.sandbox.quickbooks.store import Realm
from quickbooks_fixtures import *  # noqa: F401,F403

SAMPLE_CUSTOMERS = [
    "Amy's Bird Sanctuary", "Bill's Windsurf Shop", "Cool Cars", "Diego Rodriguez",
    "Dukes Basketball Camp", "Dylan Sollfrank", "Freeman Sporting Goods",
    "0969 Ocean View Road", "55 Twin Lane", "Geeta Kalapatapu", "Jeff's Jalopies",
    "John Melton", "Kate Whelan", "Kookies by Kathy", "Mark Cho", "Paulsen Medical Supplies",
    "Pye's Cakes", "Rago Travel Agency", "Red Rock Diner", "Rondonuwu Fruit and Vegi",
    "Shara Barnett", "Barnett Design", "Sonnenschein Family Store", "Sushi by Katsuyuki",
    "Travis Waldron", "Video Games by Dan", "Wedding Planning by Whitney",
    "Weiskopf Consulting"]
SAMPLE_ITEMS = [
    "Design", "Gardening", "Hours", "Installation", "Lighting", "Maintenance & Repair",
    "Pest Control", "Pump", "Refunds & Allowances", "Rock Fountain", "Rocks", "Services",
    "Sod", "Sprinkler Heads", "Sprinkler Pipes", "Trimming", "Concrete", "Soil"]


def d(value) -> Decimal:
    return Decimal(str(value))


def us_realm() -> Realm:
    return seed_realm(Realm(id="77", region="US", name="Sample"))


def by_name(realm: Realm, entity: str, key: str = "DisplayName") -> dict[str, dict]:
    return {obj[key]: obj for obj in realm.all(entity)}


def test_us_realm_has_the_sample_customers_and_items_and_keeps_its_base_seed():
    realm = us_realm()
    customers = by_name(realm, "Customer")
    assert set(SAMPLE_CUSTOMERS) <= set(customers)
    assert {"Amy Lauterbach", "Bill Lucchini"} <= set(customers)  # base seed kept
    assert [c["DisplayName"] for c in realm.all("Customer")][:2] == ["Amy Lauterbach",
                                                                     "Bill Lucchini"]
    for child in ("0969 Ocean View Road", "55 Twin Lane"):
        assert customers[child]["ParentRef"]["value"] == customers["Freeman Sporting Goods"]["Id"]
        assert customers[child]["FullyQualifiedName"] == f"Freeman Sporting Goods:{child}"
        assert customers[child]["Job"] is True
    assert customers["Barnett Design"]["ParentRef"]["name"] == "Shara Barnett"
    assert customers["Amy's Bird Sanctuary"]["PrimaryEmailAddr"]["Address"] == "Birds@Intuit.com"
    assert customers["Bill's Windsurf Shop"]["Taxable"] is False
    items = by_name(realm, "Item", "Name")
    assert set(SAMPLE_ITEMS) <= set(items)
    assert {"Shipping", "T-shirt", "Clothing"} <= set(items)
    assert [i["Name"] for i in realm.all("Item")][:2] == ["Services", "Shipping"]
    assert items["Rock Fountain"]["Type"] == "Inventory"
    assert items["Rock Fountain"]["FullyQualifiedName"] == "Landscaping:Rock Fountain"
    assert items["Landscaping"]["Type"] == "Category"
    assert d(items["Pump"]["UnitPrice"]) == 15
    # stock follows the sample documents: 25 pumps, one invoiced
    assert d(items["Pump"]["QtyOnHand"]) == 24
    assert by_name(seed_realm(Realm(id="78", region="NL", name="NL")),
                   "Customer").keys() == {"Jan de Boer", "Sanne Smit"}  # NL unchanged


def test_sample_documents_have_consistent_totals_and_balances():
    realm = us_realm()
    invoices = realm.all("Invoice")
    assert len(invoices) == len(sample_company.INVOICES)
    assert [i["DocNumber"] for i in invoices][:1] == ["1001"]
    first = invoices[0]
    assert first["CustomerRef"]["name"] == "Amy's Bird Sanctuary"
    assert d(first["TotalAmt"]) == 100 and d(first["Balance"]) == 0
    intuit_1037 = next(i for i in invoices
                       if i["CustomerRef"]["name"] == "Sonnenschein Family Store")
    assert d(intuit_1037["TotalAmt"]) == d("362.07")  # Intuit's sample invoice
    assert d(intuit_1037["TxnTaxDetail"]["TotalTax"]) == d("26.82")
    applied: dict[str, Decimal] = {}
    for payment in realm.all("Payment"):
        total = sum((d(line["Amount"]) for line in payment["Line"]), Decimal(0))
        assert d(payment["UnappliedAmt"]) == d(payment["TotalAmt"]) - total
        for line in payment["Line"]:
            for link in line["LinkedTxn"]:
                applied[link["TxnId"]] = applied.get(link["TxnId"], Decimal(0)) + d(
                    line["Amount"])
    assert len(applied) == len(sample_company.PAYMENTS)
    for invoice in invoices:
        lines = [line for line in invoice["Line"] if line["DetailType"] == "SalesItemLineDetail"]
        net = sum((d(line["Amount"]) for line in lines), Decimal(0))
        assert d(invoice["TotalAmt"]) == net + d(invoice["TxnTaxDetail"]["TotalTax"])
        assert d(invoice["Balance"]) == d(invoice["TotalAmt"]) - applied.get(invoice["Id"], 0)
        assert ("LinkedTxn" in invoice) == (invoice["Id"] in applied)
    assert any(d(i["Balance"]) == 0 for i in invoices)
    assert any(0 < d(i["Balance"]) < d(i["TotalAmt"]) for i in invoices)
    for entity, rows in (("SalesReceipt", sample_company.SALES_RECEIPTS),
                         ("CreditMemo", sample_company.CREDIT_MEMOS),
                         ("RefundReceipt", sample_company.REFUND_RECEIPTS)):
        docs = realm.all(entity)
        assert len(docs) == len(rows) and all(d(doc["TotalAmt"]) > 0 for doc in docs)
    memo = realm.all("CreditMemo")[0]
    assert d(memo["Balance"]) == d(memo["RemainingCredit"]) == d(memo["TotalAmt"])
    attachables = realm.all("Attachable")
    assert len(attachables) == 3
    for attachable in attachables:
        target = attachable["AttachableRef"][0]["EntityRef"]
        assert target["type"] == "Invoice" and realm.get("Invoice", target["value"])
    files = [a for a in attachables if a.get("FileName")]
    assert files and all(realm.attachments[a["Id"]] and a["Size"] ==
                         len(realm.attachments[a["Id"]]) for a in files)


def test_sample_line_without_tax_code_is_not_taxed():
    realm = us_realm()
    diner = next(i for i in realm.all("Invoice") if i["CustomerRef"]["name"] == "Red Rock Diner")
    services = [line for line in diner["Line"] if line.get("SalesItemLineDetail", {})
                .get("ItemRef", {}).get("name") == "Services"]
    assert services[0]["SalesItemLineDetail"]["TaxCodeRef"] == {"value": "NON"}
    assert d(diner["TxnTaxDetail"]["TotalTax"]) == 0


def test_sample_company_through_python_quickbooks(sandbox, qb_us):
    names = [c.DisplayName for c in Customer.all(qb=qb_us, max_results=1000)]
    assert set(SAMPLE_CUSTOMERS) <= set(names)
    amy = Customer.filter(DisplayName="Amy's Bird Sanctuary", qb=qb_us)
    assert len(amy) == 1 and amy[0].PrimaryEmailAddr.Address == "Birds@Intuit.com"
    answer = qb_us.query("select * from Customer where DisplayName = 'Amy''s Bird Sanctuary'")
    assert [c["DisplayName"] for c in answer["QueryResponse"]["Customer"]] == [
        "Amy's Bird Sanctuary"]
    assert Item.filter(Name="Rock Fountain", qb=qb_us)[0].Type == "Inventory"
    big = Invoice.where("TotalAmt > '100.00'", qb=qb_us)
    assert big and all(d(i.TotalAmt) > 100 for i in big)
    assert "Amy's Bird Sanctuary" not in {i.CustomerRef.name for i in big}  # its is 100.00
    amy_invoices = Invoice.filter(CustomerRef=amy[0].Id, qb=qb_us)
    assert [i.DocNumber for i in amy_invoices] == ["1001"] and d(amy_invoices[0].Balance) == 0
    assert Invoice.where("Balance > '0'", qb=qb_us)
    assert len(Payment.all(qb=qb_us)) == len(sample_company.PAYMENTS)
    assert len(SalesReceipt.all(qb=qb_us)) == len(sample_company.SALES_RECEIPTS)
    assert len(CreditMemo.all(qb=qb_us)) == len(sample_company.CREDIT_MEMOS)
    assert len(RefundReceipt.all(qb=qb_us)) == len(sample_company.REFUND_RECEIPTS)
    assert len(Attachable.all(qb=qb_us)) == 3
    # a realm created later gets the sample company as well
    creds = sandbox.post("/_sandbox/realms", json={"region": "US", "name": "Other LLC"}).json()
    other = connect(sandbox, creds["realm_id"])  # noqa: F405
    assert Customer.filter(DisplayName="Cool Cars", qb=other)


def test_us_invoice_line_without_tax_code_gets_no_tax(qb_us):
    pump = Item.filter(Name="Pump", qb=qb_us)[0]
    assert pump.Taxable is True
    customer = Customer.filter(DisplayName="Cool Cars", qb=qb_us)[0]
    invoice = Invoice()
    invoice.CustomerRef = customer.to_ref()
    line = SalesItemLine()
    line.Amount = 30
    line.SalesItemLineDetail = SalesItemLineDetail()
    line.SalesItemLineDetail.ItemRef = pump.to_ref()
    line.SalesItemLineDetail.Qty = 2
    line.SalesItemLineDetail.UnitPrice = 15
    invoice.Line = [line]
    saved = invoice.save(qb=qb_us)
    assert saved.Line[0].SalesItemLineDetail.TaxCodeRef.value == "NON"
    assert d(saved.TxnTaxDetail.TotalTax) == 0 and d(saved.TotalAmt) == 30
    taxed = Invoice()
    taxed.CustomerRef = customer.to_ref()
    line.SalesItemLineDetail.TaxCodeRef = Ref()
    line.SalesItemLineDetail.TaxCodeRef.value = "TAX"
    taxed.Line = [line]
    saved = taxed.save(qb=qb_us)
    assert d(saved.TxnTaxDetail.TotalTax) == d("2.48")  # 30.00 × 8.25 %
