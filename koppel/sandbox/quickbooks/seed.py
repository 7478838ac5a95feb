"""Seed data of a new company.

Every realm gets: a chart of accounts (ids 1–12: Sales of Product Income, Services,
Shipping Income, Discounts given, Cost of Goods Sold, Inventory Asset, Undeposited Funds,
Checking, Accounts Receivable (A/R), VAT/Sales Tax Payable, Inventory Shrinkage,
Opening Balance Equity); terms "Due on receipt" (0 days), "Net 14", "Net 30", "Net 60";
payment methods Cash, Check, Visa, MasterCard, American Express, Discover, PayPal (+ iDEAL
for NL); one vendor and one employee; two customers; items "Services" (Service),
"Shipping" (Service, on Shipping Income), category "Clothing" with the inventory item
"T-shirt" (10 on hand).
A US realm then gets Intuit's sample company (customers, items, invoices, payments…) from
:mod:`koppel.sandbox.quickbooks.sample_company`, after these objects.

Tax, NL (VAT) realm: rates 1 "21% BTW" 21, 2 "9% BTW" 9, 3 "0% BTW" 0, 4 "Vrijgesteld"
0; codes 1 "21%" → rate 1, 2 "9%" → rate 2, 3 "0%" → rate 3, 4 "Exempt" → rate 4.
Items carry ``SalesTaxCodeRef`` 1 (21 %).
Tax, US realm (automated sales tax): line codes ``TAX``/``NON``; rates 1 "California
State" 6 and 2 "Alameda County District" 2.25; code 2 "California" (8.25 %) is the default
automated code; code 3 "Out of state" → rate 3 (0 %).
"""

from __future__ import annotations

from typing import Any

from koppel.sandbox.quickbooks.store import Realm, stamp, utcnow

ACCOUNTS = [
    ("1", "Sales of Product Income", "Income", "SalesOfProductIncome"),
    ("2", "Services", "Income", "ServiceFeeIncome"),
    ("3", "Shipping Income", "Income", "OtherPrimaryIncome"),
    ("4", "Discounts given", "Income", "DiscountsRefundsGiven"),
    ("5", "Cost of Goods Sold", "Cost of Goods Sold", "SuppliesMaterialsCogs"),
    ("6", "Inventory Asset", "Other Current Asset", "Inventory"),
    ("7", "Undeposited Funds", "Other Current Asset", "UndepositedFunds"),
    ("8", "Checking", "Bank", "Checking"),
    ("9", "Accounts Receivable (A/R)", "Accounts Receivable", "AccountsReceivable"),
    ("10", "Tax Payable", "Other Current Liability", "SalesTaxPayable"),
    ("11", "Inventory Shrinkage", "Cost of Goods Sold", "OtherCostsOfServiceCos"),
    ("12", "Opening Balance Equity", "Equity", "OpeningBalanceEquity"),
]
INCOME, SERVICES, SHIPPING_INCOME, DISCOUNTS, COGS, INVENTORY_ASSET = "1", "2", "3", "4", "5", "6"
UNDEPOSITED_FUNDS, CHECKING, RECEIVABLE = "7", "8", "9"
SHRINKAGE = "11"

TERMS = [("Due on receipt", 0), ("Net 14", 14), ("Net 30", 30), ("Net 60", 60)]
PAYMENT_METHODS = [("Cash", "NON_CREDIT_CARD"), ("Check", "NON_CREDIT_CARD"),
                   ("Visa", "CREDIT_CARD"), ("MasterCard", "CREDIT_CARD"),
                   ("American Express", "CREDIT_CARD"), ("Discover", "CREDIT_CARD"),
                   ("PayPal", "NON_CREDIT_CARD")]

# A Dutch VAT company's sales tax codes: one per rate, plus the zero-rated treatments the
# BTW-aangifte keeps apart (3a export outside the EU, 3b intra-EU supplies to businesses).
# The names are the sandbox's choice (assumed, docs/sandbox-fidelity.md): a company names
# its own codes and a tenant maps them in settings.tax_codes / settings.vat_treatments.
NL_RATES = [("1", "21% BTW", 21), ("2", "9% BTW", 9), ("3", "0% BTW", 0), ("4", "Vrijgesteld", 0),
            ("5", "0% ICP (verlegd)", 0), ("6", "0% Export buiten EU", 0)]
NL_CODES = [("1", "21%", "BTW hoog tarief", "1"), ("2", "9%", "BTW laag tarief", "2"),
            ("3", "0%", "BTW nultarief", "3"), ("4", "Exempt", "Vrijgesteld van BTW", "4"),
            ("5", "0% ICP", "Intracommunautaire levering, BTW verlegd", "5"),
            ("6", "0% Export", "Uitvoer buiten de EU", "6")]
US_RATES = [("1", "California State", 6), ("2", "Alameda County District", 2.25),
            ("3", "Out of state", 0)]
US_CODES = [("2", "California", "California combined sales tax", ["1", "2"]),
            ("3", "Out of state", "No sales tax", ["3"])]
US_DEFAULT_CODE = "2"
NL_DEFAULT_CODE = "1"


def _ref(value: str, name: str | None = None) -> dict[str, str]:
    return {"value": value, "name": name} if name else {"value": value}


def _rate_list(rate_ids: list[str], rates: dict[str, str]) -> dict[str, Any]:
    return {"TaxRateDetail": [{"TaxRateRef": _ref(r, rates[r]), "TaxTypeApplicable":
                               "TaxOnAmount", "TaxOrder": 0} for r in rate_ids]}


def seed_realm(realm: Realm) -> Realm:
    """Fill a fresh realm with its region's seed data (deterministic)."""
    for acc_id, name, acc_type, sub_type in ACCOUNTS:
        classification = {"Income": "Revenue", "Cost of Goods Sold": "Expense",
                          "Other Current Liability": "Liability", "Equity": "Equity"}
        realm.insert("Account", {
            "Name": name, "FullyQualifiedName": name, "AccountType": acc_type,
            "AccountSubType": sub_type, "Classification": classification.get(acc_type, "Asset"),
            "Active": True, "SubAccount": False, "CurrentBalance": 0,
            "CurrentBalanceWithSubAccounts": 0, "CurrencyRef": _currency(realm)}, acc_id)
    if realm.vat:
        _seed_tax(realm, NL_RATES, [(c, n, d, [r]) for c, n, d, r in NL_CODES])
        realm.default_sales_tax_code = NL_DEFAULT_CODE
    else:
        _seed_tax(realm, US_RATES, US_CODES)
        for code in ("TAX", "NON"):
            realm.insert("TaxCode", {"Name": code, "Description": f"{code} sales tax code",
                                     "Active": True, "Taxable": code == "TAX",
                                     "TaxGroup": False}, code)
        realm.default_sales_tax_code = US_DEFAULT_CODE
    for name, days in TERMS:
        realm.insert("Term", {"Name": name, "Active": True, "Type": "STANDARD", "DueDays": days,
                              "DiscountPercent": 0, "DiscountDays": 0})
    methods = PAYMENT_METHODS + ([("iDEAL", "NON_CREDIT_CARD")] if realm.vat else [])
    for name, kind in methods:
        realm.insert("PaymentMethod", {"Name": name, "Type": kind, "Active": True})
    if realm.vat:
        vendor, employee = ("Jansen Groothandel", "Jansen"), ("Emma", "de Vries")
        customers = [("Jan", "de Boer", "jan.deboer@example.nl"),
                     ("Sanne", "Smit", "sanne.smit@example.nl")]
    else:
        vendor, employee = ("Acme Supplies", "Acme"), ("John", "Smith")
        customers = [("Amy", "Lauterbach", "amy@example.com"),
                     ("Bill", "Lucchini", "bill@example.com")]
    realm.insert("Vendor", {"DisplayName": vendor[0], "CompanyName": vendor[0],
                            "FamilyName": vendor[1], "Active": True, "Balance": 0})
    realm.insert("Employee", {"DisplayName": f"{employee[0]} {employee[1]}",
                              "GivenName": employee[0], "FamilyName": employee[1],
                              "Active": True})
    for given, family, email in customers:
        display = f"{given} {family}"
        realm.insert("Customer", {
            "DisplayName": display, "FullyQualifiedName": display, "GivenName": given,
            "FamilyName": family, "PrimaryEmailAddr": {"Address": email}, "Active": True,
            "Job": False, "BillWithParent": False, "Balance": 0, "BalanceWithJobs": 0,
            "Taxable": True, "CurrencyRef": _currency(realm),
            "PreferredDeliveryMethod": "Print"})
    tax = {"SalesTaxCodeRef": _ref(NL_DEFAULT_CODE)} if realm.vat else {"Taxable": True}
    realm.insert("Item", {"Name": "Services", "FullyQualifiedName": "Services",
                          "Type": "Service", "Active": True, "UnitPrice": 0,
                          "IncomeAccountRef": _ref(SERVICES, "Services"), "SubItem": False,
                          "Level": 0, "TrackQtyOnHand": False, **tax})
    realm.insert("Item", {"Name": "Shipping", "FullyQualifiedName": "Shipping",
                          "Type": "Service", "Active": True, "UnitPrice": 0,
                          "IncomeAccountRef": _ref(SHIPPING_INCOME, "Shipping Income"),
                          "SubItem": False, "Level": 0, "TrackQtyOnHand": False, **tax})
    category = realm.insert("Item", {"Name": "Clothing", "FullyQualifiedName": "Clothing",
                                     "Type": "Category", "Active": True, "SubItem": False,
                                     "Level": 0})
    realm.insert("Item", {
        "Name": "T-shirt", "FullyQualifiedName": "Clothing:T-shirt", "Type": "Inventory",
        "Sku": "TS-001", "Active": True, "UnitPrice": 20, "PurchaseCost": 8,
        "SubItem": True, "ParentRef": _ref(category["Id"], "Clothing"), "Level": 1,
        "TrackQtyOnHand": True, "QtyOnHand": 10, "InvStartDate": stamp(realm.created)[:10],
        "IncomeAccountRef": _ref(INCOME, "Sales of Product Income"),
        "ExpenseAccountRef": _ref(COGS, "Cost of Goods Sold"),
        "AssetAccountRef": _ref(INVENTORY_ASSET, "Inventory Asset"), **tax})
    if not realm.vat:
        from koppel.sandbox.quickbooks.sample_company import seed_sample_company
        seed_sample_company(realm)
    return realm


def _seed_tax(realm: Realm, rates: list, codes: list) -> None:
    names = {}
    for rate_id, name, pct in rates:
        names[rate_id] = name
        realm.insert("TaxRate", {"Name": name, "Description": name, "RateValue": pct,
                                 "Active": True, "SpecialTaxType": "NONE",
                                 "DisplayType": "ReadOnly"}, rate_id)
    for code_id, name, description, rate_ids in codes:
        realm.insert("TaxCode", {
            "Name": name, "Description": description, "Active": True, "Hidden": False,
            "Taxable": True, "TaxGroup": len(rate_ids) > 1,
            "SalesTaxRateList": _rate_list(rate_ids, names),
            "PurchaseTaxRateList": {"TaxRateDetail": []}}, code_id)


def _currency(realm: Realm) -> dict[str, str]:
    return _ref(realm.settings["currency"], realm.settings["currency_name"])


def company_info(realm: Realm) -> dict[str, Any]:
    country = realm.settings["country"]
    address = {"Line1": "Hoofdstraat 1" if realm.vat else "123 Main Street",
               "City": "Amsterdam" if realm.vat else "Oakland", "Country": country,
               "PostalCode": "1011 AA" if realm.vat else "94612"}
    if not realm.vat:
        address["CountrySubDivisionCode"] = "CA"
    # CompanyInfo sample (Intuit): CompanyAddr, LegalAddr and CustomerCommunicationAddr,
    # PrimaryPhone, Email and WebAddr; the values are the sandbox's (assumed)
    return {"Id": "1", "SyncToken": "0", "domain": "QBO", "sparse": False,
            "CompanyName": realm.name, "LegalName": realm.name, "Country": country,
            "CompanyAddr": {**address, "Id": "1"}, "LegalAddr": {**address, "Id": "1"},
            "CustomerCommunicationAddr": {**address, "Id": "1"},
            "PrimaryPhone": {"FreeFormNumber": "020 123 4567" if realm.vat
                             else "(510) 555-0100"},
            "Email": {"Address": "noreply@koppel-sandbox.example"}, "WebAddr": {},
            "SupportedLanguages": "en", "DefaultTimeZone": "Europe/Amsterdam" if realm.vat
            else "America/Los_Angeles", "FiscalYearStartMonth": "January",
            "CompanyStartDate": stamp(realm.created)[:10],
            "MetaData": {"CreateTime": stamp(realm.created),
                         "LastUpdatedTime": stamp(realm.created)},
            "NameValue": [{"Name": "OfferingSku", "Value": "QuickBooks Online Plus"},
                          {"Name": "NeoEnabled", "Value": "true"}]}


def preferences(realm: Realm) -> dict[str, Any]:
    currency = realm.settings["currency"]
    tax_prefs: dict[str, Any] = {"UsingSalesTax": True}
    if realm.vat:
        tax_prefs.update({"TaxGroupCodeRef": _ref(NL_DEFAULT_CODE), "PartnerTaxEnabled": False})
    else:
        tax_prefs.update({"PartnerTaxEnabled": True, "AutomatedSalesTax": True})
    return {"Id": "1", "SyncToken": "0", "domain": "QBO", "sparse": False,
            "TaxPrefs": tax_prefs,
            "SalesFormsPrefs": {"CustomTxnNumbers": False, "AllowDiscount": True,
                                "AllowShipping": False, "AllowDeposit": False,
                                "ETransactionEnabledStatus": "NotApplicable",
                                "DefaultTerms": _ref("3"), "UsingPriceLevels": False,
                                "AllowServiceDate": False, "AllowEstimates": True},
            "CurrencyPrefs": {"MultiCurrencyEnabled": realm.multicurrency,
                              "HomeCurrency": _ref(currency)},
            "ProductAndServicesPrefs": {"ForSales": True, "ForPurchase": True,
                                        "QuantityWithPriceAndRate": True,
                                        "QuantityOnHand": True},
            "AccountingInfoPrefs": {"TrackDepartments": False, "ClassTrackingPerTxn": False,
                                    "CustomerTerminology": "Customers"},
            "MetaData": {"CreateTime": stamp(realm.created),
                         "LastUpdatedTime": stamp(utcnow())}}
