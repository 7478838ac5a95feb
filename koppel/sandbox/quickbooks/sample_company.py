"""Intuit's US sample company ("Sandbox Company_US_1", Craig's Design and Landscaping
Services), added to every new US realm after the base seed.

Client test suites written against Intuit's developer sandbox look for its customers
("Amy's Bird Sanctuary", "Freeman Sporting Goods:55 Twin Lane"…), items ("Rock Fountain",
"Pump", "Sprinkler Heads"…) and a few open invoices; this module gives a US realm the same.

Everything is created through :func:`koppel.sandbox.quickbooks.operations.create`, the path
the API uses, so every total, tax line, invoice balance, payment link and stock quantity
follows the sandbox's own rules. The base seed's objects stay first (customers 1–2, items
1–4), so **ids differ from Intuit's** (there Amy's Bird Sanctuary is customer 1, Rock
Fountain item 5); names are Intuit's. See docs/sandbox-fidelity.md for sources and what is
assumed.

Sources (public copies of Intuit's sample data):
- customer and item lists in sandbox order (ids 1–29 and 1–18), a public client's
  ``STOCK_CUSTOMERS``/``STOCK_ITEMS`` allow-list of the sample company;
- Intuit's Invoice API sample (DocNumber 1037, Sonnenschein Family Store: Rock Fountain
  1 × 275, Pump 1 × 12.75, Concrete 5 × 9.50, all ``TAX``, tax 26.82, total 362.07);
- Intuit's Invoice sample 1001 for Amy's Bird Sanctuary ("Weekly Gardening Service",
  100.00) and the Invoice sample with a ``NON`` Services line of 100.00;
- the sample customers' contact data (Amy's Bird Sanctuary: Birds@Intuit.com, 4581 Finch
  St., Bayshore CA 94326; Bill's Windsurf Shop: Bill Lucchini, Surf@Intuit.com, 12 Ocean
  Dr., Half Moon Bay CA 94213, not taxable; Cool Cars: Cool_Cars@intuit.com; Sonnenschein
  Family Store: Russ Sonnenschein, Familiystore@intuit.com, 5647 Cypress Hill Ave.,
  Middlefield CA 94303);
- item prices Pump 15, Rock Fountain 275, Sprinkler Heads 2, Sprinkler Pipes 4 (a public
  client's request built on the sample items) and purchase costs Rock Fountain 125,
  Sprinkler Heads 0.75 (Intuit's Purchase sample from Hicks Hardware).
Other amounts, dates, quantities on hand and the remaining documents are assumed.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from koppel.sandbox.quickbooks.store import Realm

COMPANY_NAME = "Craig's Design and Landscaping Services"

#: (DisplayName, GivenName, FamilyName, CompanyName, email, address, taxable, parent)
CUSTOMERS: list[tuple[str, str | None, str | None, str | None, str | None,
                      tuple[str, str, str] | None, bool, str | None]] = [
    ("Amy's Bird Sanctuary", "Amy", "Lauterbach", "Amy's Bird Sanctuary", "Birds@Intuit.com",
     ("4581 Finch St.", "Bayshore", "94326"), True, None),
    ("Bill's Windsurf Shop", "Bill", "Lucchini", "Bill's Windsurf Shop", "Surf@Intuit.com",
     ("12 Ocean Dr.", "Half Moon Bay", "94213"), False, None),
    ("Cool Cars", "Grace", "Pariente", "Cool Cars", "Cool_Cars@intuit.com",
     ("65 Ocean Dr.", "Half Moon Bay", "94213"), True, None),
    ("Diego Rodriguez", "Diego", "Rodriguez", None, None, None, True, None),
    ("Dukes Basketball Camp", "Peter", "Dukes", "Dukes Basketball Camp", None, None, True,
     None),
    ("Dylan Sollfrank", "Dylan", "Sollfrank", None, None, None, True, None),
    ("Freeman Sporting Goods", "Kirby", "Freeman", "Freeman Sporting Goods", None, None, True,
     None),
    ("0969 Ocean View Road", "Sasha", "Tillou", "Freeman Sporting Goods", None, None, True,
     "Freeman Sporting Goods"),
    ("55 Twin Lane", "Amelia", None, "Freeman Sporting Goods", None, None, True,
     "Freeman Sporting Goods"),
    ("Geeta Kalapatapu", "Geeta", "Kalapatapu", None, None, None, True, None),
    ("Gevelber Photography", "Lisa", "Gevelber", "Gevelber Photography", None, None, True,
     None),
    ("Jeff's Jalopies", "Jeff", "Chin", "Jeff's Jalopies", None, None, True, None),
    ("John Melton", "John", "Melton", None, None, None, True, None),
    ("Kate Whelan", "Kate", "Whelan", None, None, None, True, None),
    ("Pye's Cakes", "Karen", "Pye", "Pye's Cakes", None, None, True, None),
    ("Kookies by Kathy", "Kathy", "Kuplis", "Kookies by Kathy", None, None, True, None),
    ("Mark Cho", "Mark", "Cho", None, None, None, True, None),
    ("Paulsen Medical Supplies", "Kathy", "Paulsen", "Paulsen Medical Supplies", None, None,
     True, None),
    ("Rago Travel Agency", "Evelyn", "Cook", "Rago Travel Agency", None, None, True, None),
    ("Red Rock Diner", "Stephanie", "Martini", "Red Rock Diner", None, None, True, None),
    ("Rondonuwu Fruit and Vegi", "Bruce", "Rondonuwu", "Rondonuwu Fruit and Vegi", None, None,
     True, None),
    ("Shara Barnett", "Shara", "Barnett", "Barnett Design", None, None, True, None),
    ("Barnett Design", "Shara", "Barnett", "Barnett Design", None, None, True,
     "Shara Barnett"),
    ("Sonnenschein Family Store", "Russ", "Sonnenschein", "Sonnenschein Family Store",
     "Familiystore@intuit.com", ("5647 Cypress Hill Ave.", "Middlefield", "94303"), True,
     None),
    ("Sushi by Katsuyuki", "Katsuyuki", "Yanagawa", "Sushi by Katsuyuki", None, None, True,
     None),
    ("Travis Waldron", "Travis", "Waldron", None, None, None, True, None),
    ("Video Games by Dan", "Dan", "Miller", "Video Games by Dan", None, None, True, None),
    ("Wedding Planning by Whitney", "Whitney", "Jones", "Wedding Planning by Whitney", None,
     None, True, None),
    ("Weiskopf Consulting", "Nicola", "Weiskopf", "Weiskopf Consulting", None, None, True,
     None),
]

#: Category of the sample's stocked fountain and sprinkler goods (assumed name).
CATEGORY = "Landscaping"
#: (Name, Type, UnitPrice, PurchaseCost, QtyOnHand, taxable, description); Inventory items
#: go in CATEGORY. "Services" is the base seed's item (Intuit's item 1 as well).
ITEMS: list[tuple[str, str, float, float | None, int | None, bool, str]] = [
    ("Hours", "Service", 0, None, None, False, "Hours"),
    ("Concrete", "Service", 0, None, None, True, "Concrete for fountain installation"),
    ("Design", "Service", 75, None, None, False, "Custom Design"),
    ("Rock Fountain", "Inventory", 275, 125, 2, True, "Rock Fountain"),
    ("Gardening", "Service", 0, None, None, False, "Weekly Gardening Service"),
    ("Installation", "Service", 50, None, None, False, "Installation of landscape design"),
    ("Lighting", "Service", 0, None, None, True, "Garden Lighting"),
    ("Maintenance & Repair", "Service", 0, None, None, False, "Maintenance & Repair"),
    ("Pest Control", "Service", 35, None, None, False, "Pest Control Services"),
    ("Pump", "Inventory", 15, 10, 25, True, "Fountain Pump"),
    ("Refunds & Allowances", "NonInventory", 0, None, None, False,
     "Income due to refunds or allowances"),
    ("Rocks", "Service", 0, None, None, True, "Garden Rocks"),
    ("Sod", "Service", 0, None, None, True, "Sod"),
    ("Soil", "Service", 0, None, None, True, "2 cubic ft. bag"),
    ("Sprinkler Heads", "Inventory", 2, 0.75, 25, True, "Sprinkler Heads"),
    ("Sprinkler Pipes", "Inventory", 4, 2.5, 31, True, "Sprinkler Pipes"),
    ("Trimming", "Service", 35, None, None, False, "Tree and Shrub Trimming"),
]


def _line(items: dict[str, dict], name: str, qty: float, price: float,
          taxable: bool | None = None, description: str | None = None) -> dict[str, Any]:
    """A sales line; ``taxable`` None sends no TaxCodeRef (the line is then not taxed)."""
    item = items[name]
    detail: dict[str, Any] = {"ItemRef": {"value": item["Id"], "name": item["Name"]},
                              "Qty": qty, "UnitPrice": price}
    if taxable is not None:
        detail["TaxCodeRef"] = {"value": "TAX" if taxable else "NON"}
    line = {"DetailType": "SalesItemLineDetail", "Amount": round(qty * price, 2),
            "SalesItemLineDetail": detail}
    if description:
        line["Description"] = description
    return line


#: Invoices: (customer, days before the realm's creation, term, lines, supplied tax or None).
#: Lines: (item, qty, unit price, TAX?, description). The first is Intuit's invoice 1001,
#: the fourth Intuit's invoice 1037 (its 8 % tax, 26.82, supplied as an override).
INVOICES: list[tuple[str, int, str, list[tuple], str | None]] = [
    ("Amy's Bird Sanctuary", 60, "Net 30",
     [("Gardening", 1, 100, False, "Weekly Gardening Service")], None),
    ("Bill's Windsurf Shop", 45, "Net 30",
     [("Design", 2, 75, False, "Custom Design")], None),
    ("Cool Cars", 40, "Net 30",
     [("Installation", 10, 50, False, "Installation of landscape design"),
      ("Sprinkler Heads", 20, 2, True, "Sprinkler Heads"),
      ("Sprinkler Pipes", 10, 4, True, "Sprinkler Pipes")], None),
    ("Sonnenschein Family Store", 30, "Net 30",
     [("Rock Fountain", 1, 275, True, "Rock Fountain"),
      ("Pump", 1, 12.75, True, "Fountain Pump"),
      ("Concrete", 5, 9.5, True, "Concrete for fountain installation")], "26.82"),
    ("0969 Ocean View Road", 25, "Net 30",
     [("Hours", 3, 50, False, "Hours"), ("Pest Control", 1, 35, False, None),
      ("Trimming", 4, 35, False, None)], None),
    ("55 Twin Lane", 20, "Net 14",
     [("Maintenance & Repair", 1, 50, False, None)], None),
    ("Travis Waldron", 15, "Net 30",
     [("Gardening", 1, 75, False, None), ("Soil", 3, 2, False, "2 cubic ft. bag")], None),
    ("Jeff's Jalopies", 10, "Net 30",
     [("Lighting", 2, 37.5, True, "Garden Lighting"), ("Rocks", 1, 25, True, None)], None),
    ("Red Rock Diner", 5, "Due on receipt",
     [("Pest Control", 2, 35, False, None), ("Services", 1, 80, None, "Cleanup")], None),
]
#: Payments: (customer, invoice indexes into INVOICES with the amount applied, total).
PAYMENTS: list[tuple[str, list[tuple[int, float]], float]] = [
    ("Amy's Bird Sanctuary", [(0, 100)], 100),             # invoice paid in full
    ("Cool Cars", [(2, 300)], 300),                         # part payment
    ("Sonnenschein Family Store", [(3, 200)], 200),         # part payment
    ("Travis Waldron", [(6, 81)], 81),                      # paid in full
    ("0969 Ocean View Road", [(4, 100)], 150),              # 50.00 left unapplied
]
SALES_RECEIPTS: list[tuple[str, int, list[tuple]]] = [
    ("Dylan Sollfrank", 35, [("Rock Fountain", 1, 275, True, "Rock Fountain"),
                             ("Installation", 2, 50, False, None)]),
    ("Kate Whelan", 22, [("Gardening", 1, 225, False, "Weekly Gardening Service")]),
    ("Pye's Cakes", 12, [("Sod", 10, 3.5, True, None), ("Trimming", 1, 35, False, None)]),
]
CREDIT_MEMOS: list[tuple[str, int, list[tuple]]] = [
    ("Amy's Bird Sanctuary", 8, [("Services", 1, 100, False, "Credit for overbilling")]),
    ("Freeman Sporting Goods", 6, [("Refunds & Allowances", 1, 30, False,
                                    "Allowance for late installation")]),
]
REFUND_RECEIPTS: list[tuple[str, int, list[tuple]]] = [
    ("Pye's Cakes", 4, [("Sod", 2, 3.5, True, "Returned sod")]),
]


def seed_sample_company(realm: Realm) -> None:
    """Add Intuit's US sample company to a freshly seeded US realm."""
    from koppel.sandbox.quickbooks import operations  # operations → entities → seed

    def create(entity: str, obj: dict) -> dict:
        return operations.create(realm, entity, obj, {})

    customers: dict[str, dict] = {}
    for display, given, family, company, email, address, taxable, parent in CUSTOMERS:
        obj: dict[str, Any] = {"DisplayName": display, "Taxable": taxable,
                               "PreferredDeliveryMethod": "Print"}
        for key, value in (("GivenName", given), ("FamilyName", family),
                           ("CompanyName", company)):
            if value:
                obj[key] = value
        if email:
            obj["PrimaryEmailAddr"] = {"Address": email}
        if address:
            obj["BillAddr"] = {"Line1": address[0], "City": address[1],
                               "CountrySubDivisionCode": "CA", "PostalCode": address[2]}
            obj["ShipAddr"] = dict(obj["BillAddr"])
        if parent:
            obj.update(ParentRef={"value": customers[parent]["Id"]}, Job=True,
                       BillWithParent=True)
        customers[display] = create("Customer", obj)

    items = {item["Name"]: item for item in realm.all("Item")}
    category = create("Item", {"Name": CATEGORY, "Type": "Category"})
    start = (realm.created - timedelta(days=90)).date().isoformat()
    for name, kind, price, cost, on_hand, taxable, description in ITEMS:
        obj = {"Name": name, "Type": kind, "UnitPrice": price, "Description": description,
               "Taxable": taxable, "IncomeAccountRef": {"value": "1" if kind != "Service"
                                                        else "2"}}
        if cost is not None:
            obj.update(PurchaseCost=cost, ExpenseAccountRef={"value": "5"})
        if kind == "Inventory":
            obj.update(TrackQtyOnHand=True, QtyOnHand=on_hand, InvStartDate=start,
                       AssetAccountRef={"value": "6"}, SubItem=True,
                       ParentRef={"value": category["Id"]})
        items[name] = create("Item", obj)

    terms = {t["Name"]: t["Id"] for t in realm.all("Term")}

    def day(days_before: int) -> str:
        return (realm.created - timedelta(days=days_before)).date().isoformat()

    def lines(specs: list[tuple]) -> list[dict]:
        return [_line(items, *spec) for spec in specs]

    def ref(name: str) -> dict[str, str]:
        return {"value": customers[name]["Id"]}

    invoices = []
    for name, days, term, specs, tax in INVOICES:
        obj = {"CustomerRef": ref(name), "TxnDate": day(days), "Line": lines(specs),
               "SalesTermRef": {"value": terms[term]}}
        if email := customers[name].get("PrimaryEmailAddr"):
            obj["BillEmail"] = dict(email)
        if tax is not None:
            obj["TxnTaxDetail"] = {"TxnTaxCodeRef": {"value": realm.default_sales_tax_code},
                                   "TotalTax": tax}
        invoices.append(create("Invoice", obj))
    methods = {m["Name"]: m["Id"] for m in realm.all("PaymentMethod")}
    for number, (name, applied, total) in enumerate(PAYMENTS):
        create("Payment", {
            "CustomerRef": ref(name), "TotalAmt": total,
            "TxnDate": day(max(1, INVOICES[applied[0][0]][1] - 10)),
            "PaymentMethodRef": {"value": methods["Check" if number % 2 else "Visa"]},
            "Line": [{"Amount": amount, "LinkedTxn": [{"TxnId": invoices[i]["Id"],
                                                       "TxnType": "Invoice"}]}
                     for i, amount in applied]})
    for entity, docs in (("SalesReceipt", SALES_RECEIPTS), ("CreditMemo", CREDIT_MEMOS),
                         ("RefundReceipt", REFUND_RECEIPTS)):
        for name, days, specs in docs:
            obj = {"CustomerRef": ref(name), "TxnDate": day(days), "Line": lines(specs)}
            if entity == "RefundReceipt":
                obj["PaymentMethodRef"] = {"value": methods["Check"]}
            create(entity, obj)

    for invoice, file_name, note in (
            (invoices[3], "fountain-quote.pdf", "Signed quote for the rock fountain"),
            (invoices[2], "sprinkler-plan.png", "Sprinkler layout")):
        content = f"{note} ({invoice['CustomerRef']['name']})".encode()
        obj = create("Attachable", {
            "FileName": file_name, "Note": note,
            "ContentType": "application/pdf" if file_name.endswith(".pdf") else "image/png",
            "AttachableRef": [{"EntityRef": {"type": "Invoice", "value": invoice["Id"]}}]})
        stored = realm.get("Attachable", obj["Id"])
        stored["Size"] = len(content)
        realm.attachments[obj["Id"]] = content
    create("Attachable", {"Note": "Customer asked for a weekly schedule",
                          "AttachableRef": [{"EntityRef": {"type": "Invoice",
                                                           "value": invoices[0]["Id"]}}]})
