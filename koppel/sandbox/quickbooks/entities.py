"""Validation and normalisation of each QBO entity, as QBO does them.

``prepare(realm, entity, obj, old, params)`` turns a cleaned request object into the
object to store, filling derived fields (FullyQualifiedName, Level, money, DueDate…) or
raising a :class:`~koppel.sandbox.quickbooks.faults.QBOFault`. Side effects on other
objects (stock, invoice balances) live in :mod:`koppel.sandbox.quickbooks.operations`.

Choices where QBO is undocumented or ambiguous:
- Item ``Type`` defaults to ``NonInventory``; Service/NonInventory/Inventory items need an
  ``IncomeAccountRef`` (2020). Item names are unique by FullyQualifiedName (so two
  variants named "M" under different categories are fine), case-insensitive (6240).
- A list object made inactive gets " (deleted)" appended to its name, as QBO does, which
  frees the name; reactivating removes the suffix.
- Sales document lines need an ``ItemRef`` (2020) — QBO would silently use a default item.
- US (automated sales tax): a line is taxed only with ``TaxCodeRef`` ``TAX``; a line
  without one is stored as ``NON`` whatever the item's ``Taxable`` (Intuit's "Manage sales
  tax for US locales" page and US samples mark lines TAX/NON; the omitted case assumed).
- ``DocNumber`` longer than 21 characters is 2050 (string too long); a duplicate within the
  same transaction type is 6140 unless ``include=allowduplicatedocnum``. Without
  ``DocNumber`` the document is numbered from 1001 (``CustomTxnNumbers`` is off).

Names (Customer, Vendor and Employee pages, "Business Rules" and field maxima:
https://developer.intuit.com/app/developer/qbo/docs/api/accounting/most-commonly-used/customer,
…/all-entities/vendor, …/all-entities/employee):
- ``DisplayName``, ``Title``, ``GivenName``, ``MiddleName``, ``FamilyName``, ``Suffix`` and
  ``PrintOnCheckName`` must not contain a colon, tab or newline (6000, code assumed).
- Maxima (2050): DisplayName 500, Title 16, GivenName/MiddleName/FamilyName 100, Suffix 16,
  CompanyName 100, PrintOnCheckName 110, Notes 2000 (Customer page; Vendor and Employee
  assumed the same).
- Item ``Name``: ≤ 100 (Item page); a colon, tab or newline is refused as well (assumed:
  the Item page does not list it, but ``FullyQualifiedName`` joins levels with colons).

Currencies (multicurrency; sources in :mod:`koppel.sandbox.quickbooks.currencies`):
- Customer ``CurrencyRef``: the home currency when absent; a foreign one needs
  multicurrency and is added to the company currencies when missing (Customer page: "If
  specified currency is not currently in the company's currency list, it is added");
  fixed once created ("Once set, it cannot be changed").
- Sales documents and payments: ``CurrencyRef`` absent means the home currency (assumed;
  Intuit: "This must be defined if multicurrency is enabled"); a foreign one needs
  multicurrency and an active CompanyCurrency; it must equal the customer's currency.
  ``ExchangeRate`` is 1 in the home currency, else the one sent or the rate table's for
  ``TxnDate``; with multicurrency on, ``HomeTotalAmt = round(TotalAmt × ExchangeRate, 2)``
  ("Applicable if multicurrency is enabled for the company").
"""

from __future__ import annotations

import re
from copy import deepcopy
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Callable

from koppel.sandbox.quickbooks import currencies, faults, money, seed
from koppel.sandbox.quickbooks.store import Realm, utcnow

PEOPLE = ("Customer", "Vendor", "Employee")
SALES_DOCS = ("SalesReceipt", "Invoice", "CreditMemo", "RefundReceipt")
TRANSACTIONS = SALES_DOCS + ("Payment", "InventoryAdjustment")
LISTS = PEOPLE + ("Item", "Account", "Term", "PaymentMethod", "TaxCode", "TaxRate", "Class",
                  "CustomerType", "CompanyCurrency")
ENTITIES = LISTS + TRANSACTIONS + ("Attachable",)
URL_NAMES = {name.lower(): name for name in ENTITIES}
#: Entities of QBO's Accounting API that the sandbox holds none of and cannot create: a
#: query or CDC request for them answers empty, as QBO does for a company that never used
#: them (readers such as the tap-quickbooks Singer tap ask for all of them in one batch and
#: one CDC call). Names from Intuit's API reference
#: (https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/account,
#: the "All entities" list).
UNMODELLED = ("Bill", "BillPayment", "Budget", "Deposit", "Department", "Estimate",
              "JournalEntry", "Purchase", "PurchaseOrder", "TaxAgency", "TimeActivity",
              "Transfer", "VendorCredit")
UNMODELLED_NAMES = {name.lower(): name for name in UNMODELLED}
CREATABLE = set(ENTITIES) - {"TaxCode", "TaxRate", "CustomerType"}
DELETABLE = set(TRANSACTIONS) | {"Attachable"}
VOIDABLE = {"Invoice", "SalesReceipt", "Payment"}
HAS_ACTIVE = set(LISTS)
ITEM_TYPES = ("Inventory", "NonInventory", "Service", "Category")
MAX_CATEGORY_LEVELS = 4
MAX_CUSTOMER_LEVELS = 5
SHIPPING_ITEM_ID = "SHIPPING_ITEM_ID"
DELETED_SUFFIX = " (deleted)"
EMAIL = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$")
#: Customer/Vendor/Employee: "must not contain colon (:), tab (\\t), or newline (\\n)"
INVALID_NAME_CHARACTERS = (":", "\t", "\n")
PERSON_NAME_FIELDS = ("DisplayName", "Title", "GivenName", "MiddleName", "FamilyName",
                      "Suffix", "PrintOnCheckName")
PERSON_MAX_LENGTHS = (("Title", 16), ("GivenName", 100), ("MiddleName", 100),
                      ("FamilyName", 100), ("Suffix", 16), ("CompanyName", 100),
                      ("PrintOnCheckName", 110), ("Notes", 2000))
MAX_DISPLAY_NAME = 500
MAX_ITEM_NAME = 100

COMMON_READ_ONLY = {"Id", "SyncToken", "MetaData", "domain", "sparse", "time", "status"}
READ_ONLY = {
    "Customer": {"FullyQualifiedName", "Level", "Balance", "BalanceWithJobs"},
    "Vendor": {"Balance"},
    "Item": {"FullyQualifiedName", "Level"},
    "Account": {"FullyQualifiedName", "CurrentBalance", "CurrentBalanceWithSubAccounts"},
    **{doc: {"TotalAmt", "Balance", "HomeTotalAmt", "HomeBalance", "RemainingCredit",
             "TxnTaxDetail"} for doc in SALES_DOCS},
    "Invoice": {"TotalAmt", "Balance", "HomeTotalAmt", "HomeBalance", "RemainingCredit",
                "TxnTaxDetail", "InvoiceLink"},
    "CompanyCurrency": {"Name"},
    "Class": {"FullyQualifiedName"},
    "Payment": {"UnappliedAmt"},
    "Attachable": {"TempDownloadUri", "FileAccessUri", "Size"},
}


def clean(value: Any) -> Any:
    """Drop None and "" recursively: python-quickbooks sends "" for every unset string."""
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items() if v is not None and v != ""}
    if isinstance(value, list):
        return [clean(v) for v in value if v is not None and v != ""]
    return value


def strip_read_only(entity: str, obj: dict) -> dict:
    return {k: v for k, v in obj.items()
            if k not in COMMON_READ_ONLY and k not in READ_ONLY.get(entity, set())}


# -- small checks ---------------------------------------------------------------------------
def _max_len(obj: dict, element: str, limit: int) -> None:
    value = obj.get(element)
    if isinstance(value, str) and len(value) > limit:
        raise faults.too_long(element, limit, len(value))


def _max_name_len(obj: dict, element: str, limit: int) -> None:
    """A name's maximum, not counting the " (deleted)" QBO appends to inactive names."""
    value = obj.get(element)
    if isinstance(value, str):
        base = value[: -len(DELETED_SUFFIX)] if value.endswith(DELETED_SUFFIX) else value
        if len(base) > limit:
            raise faults.too_long(element, limit, len(base))


def _email(obj: dict, element: str) -> None:
    address = (obj.get(element) or {}).get("Address")
    if address is None:
        return
    for part in str(address).split(","):
        if not EMAIL.match(part.strip()):
            raise faults.invalid_email(f"{element}.Address")


def _ref_value(ref: Any) -> str | None:
    if isinstance(ref, dict):
        value = ref.get("value")
        return None if value in (None, "") else str(value)
    return None


def _existing(realm: Realm, entity: str, ref: Any, element: str,
              active: bool = True) -> dict | None:
    """The referenced object, or 2500; None when the reference is absent."""
    value = _ref_value(ref)
    if value is None:
        return None
    target = realm.get(entity, value)
    if target is None or (active and target.get("Active") is False):
        raise faults.invalid_reference(element, entity, value)
    return target


def _today() -> str:
    return utcnow().date().isoformat()


def _active_name(name: str, active: bool) -> str:
    base = name[: -len(DELETED_SUFFIX)] if name.endswith(DELETED_SUFFIX) else name
    return base if active else base + DELETED_SUFFIX


def _currency(realm: Realm, obj: dict) -> None:
    obj.setdefault("CurrencyRef", {"value": realm.settings["currency"],
                                   "name": realm.settings["currency_name"]})


def _no_invalid_characters(obj: dict, element: str) -> None:
    value = obj.get(element)
    if not isinstance(value, str):
        return
    for char in INVALID_NAME_CHARACTERS:
        if char in value:
            raise faults.invalid_characters(element, char)


# -- currencies ----------------------------------------------------------------------------
def company_currency(realm: Realm, code: str) -> dict | None:
    """The CompanyCurrency with ``code`` (active or not), if the company has it."""
    for obj in realm.table("CompanyCurrency").values():
        if str(obj.get("Code", "")).upper() == code.upper():
            return obj
    return None


def _usable_currency(realm: Realm, element: str, code: str, may_add: bool = False) -> None:
    """Refuse an unknown code, a foreign code without multicurrency and (unless ``may_add``)
    a foreign code that is not an active company currency."""
    if not currencies.known(code):
        raise faults.unknown_currency(element, code)
    if code == realm.home_currency:
        return
    if not realm.multicurrency:
        raise faults.multicurrency_off(element, code, realm.home_currency)
    existing = company_currency(realm, code)
    if existing is not None and existing.get("Active") is False:
        raise faults.currency_not_active(element, code)
    if existing is None and not may_add:
        raise faults.currency_not_active(element, code)


def _customer_currency(realm: Realm, obj: dict, old: dict | None) -> None:
    sent = currencies.code_of(obj.get("CurrencyRef"))
    if old is not None:
        current = currencies.code_of(old.get("CurrencyRef")) or realm.home_currency
        if sent is not None and sent != current:
            raise faults.business("You can't change the currency of a customer.", "CurrencyRef")
        obj["CurrencyRef"] = currencies.ref(current)
        return
    code = sent or realm.home_currency
    _usable_currency(realm, "CurrencyRef", code, may_add=True)  # added by operations
    obj["CurrencyRef"] = currencies.ref(code)


def rate_on(realm: Realm, code: str, day: str | None) -> tuple[Decimal, dict | None]:
    """(home units per unit of ``code`` on ``day`` (today when None), the stored rate it
    comes from: the latest set on or before ``day``; None for the sandbox default)."""
    wanted = (currencies.as_date(day) or utcnow().date()).isoformat()
    if code == realm.home_currency:
        return Decimal(1), None
    set_rates = realm.exchange_rates.get(code, {})
    earlier = [d for d in set_rates if d <= wanted]
    if earlier:
        stored = set_rates[max(earlier)]
        return Decimal(str(stored["Rate"])), stored
    return currencies.default_rate(code, realm.home_currency), None


def _document_currency(realm: Realm, obj: dict, customer: dict | None) -> None:
    """CurrencyRef and ExchangeRate of a sales document or payment (TxnDate already set)."""
    code = currencies.code_of(obj.get("CurrencyRef")) or realm.home_currency
    _usable_currency(realm, "CurrencyRef", code)
    if customer is not None:
        customer_code = currencies.code_of(customer.get("CurrencyRef")) or realm.home_currency
        if customer_code != code:
            raise faults.currency_mismatch(code, customer_code)
    obj["CurrencyRef"] = currencies.ref(code)
    if code == realm.home_currency:
        obj["ExchangeRate"] = 1
        return
    sent = money.dec(obj.get("ExchangeRate"))
    if sent is not None and sent < 0:
        raise faults.business("ExchangeRate must be a positive number.", "ExchangeRate")
    rate = sent if sent else rate_on(realm, code, obj.get("TxnDate"))[0]
    obj["ExchangeRate"] = money.num(rate)


def _home_amounts(realm: Realm, obj: dict) -> None:
    """``HomeTotalAmt`` (multicurrency companies only)."""
    if not realm.multicurrency:
        obj.pop("HomeTotalAmt", None)
        return
    rate = money.dec(obj.get("ExchangeRate")) or Decimal(1)
    obj["HomeTotalAmt"] = money.num(money.q2((money.dec(obj.get("TotalAmt")) or money.ZERO)
                                             * rate))


# -- names ----------------------------------------------------------------------------------
def _name_clash(realm: Realm, entities: tuple[str, ...], field: str, name: str,
                self_key: tuple[str, str] | None) -> bool:
    wanted = name.strip().lower()
    for entity in entities:
        for obj in realm.table(entity).values():
            if (entity, obj["Id"]) == self_key:
                continue
            if str(obj.get(field, "")).strip().lower() == wanted:
                return True
    return False


def _prepare_person(realm: Realm, entity: str, obj: dict, old: dict | None) -> None:
    _max_name_len(obj, "DisplayName", MAX_DISPLAY_NAME)
    for element, limit in PERSON_MAX_LENGTHS:
        _max_len(obj, element, limit)
    for element in PERSON_NAME_FIELDS:
        _no_invalid_characters(obj, element)
    if not obj.get("DisplayName"):
        parts = [obj.get(k) for k in ("Title", "GivenName", "MiddleName", "FamilyName",
                                      "Suffix") if obj.get(k)]
        derived = " ".join(parts) or obj.get("CompanyName")
        if not derived:
            raise faults.required("DisplayName")
        obj["DisplayName"] = derived
    obj["Active"] = obj.get("Active", True) is not False
    obj["DisplayName"] = _active_name(obj["DisplayName"], obj["Active"])
    _max_name_len(obj, "DisplayName", MAX_DISPLAY_NAME)
    _email(obj, "PrimaryEmailAddr")
    phone = (obj.get("PrimaryPhone") or {}).get("FreeFormNumber")
    if phone and len(phone) > 30:
        raise faults.too_long("PrimaryPhone.FreeFormNumber", 30, len(phone))
    self_key = (entity, old["Id"]) if old else None
    if _name_clash(realm, PEOPLE, "DisplayName", obj["DisplayName"], self_key):
        raise faults.duplicate_name("customer, vendor or employee")
    obj["Balance"] = (old or {}).get("Balance", 0)
    if entity != "Customer":
        return
    obj["BalanceWithJobs"] = (old or {}).get("BalanceWithJobs", 0)
    _customer_currency(realm, obj, old)
    obj.setdefault("Taxable", True)
    # Customer sample response: "PreferredDeliveryMethod": "Print" when none was sent
    obj.setdefault("PreferredDeliveryMethod", "Print")
    parent = _existing(realm, "Customer", obj.get("ParentRef"), "ParentRef")
    if parent is not None:
        if old and parent["Id"] == old["Id"]:
            raise faults.business("A customer can't be its own parent.", "ParentRef")
        level = int(parent.get("Level", 0)) + 1
        if level > MAX_CUSTOMER_LEVELS - 1:
            raise faults.business(f"Sub-customers can be nested {MAX_CUSTOMER_LEVELS} deep.",
                                  "ParentRef")
        obj["ParentRef"] = {"value": parent["Id"], "name": parent["DisplayName"]}
        obj["Job"] = obj.get("Job", True) is not False
        obj["BillWithParent"] = bool(obj.get("BillWithParent", False))
        obj["Level"] = level
        obj["FullyQualifiedName"] = f"{parent['FullyQualifiedName']}:{obj['DisplayName']}"
    else:
        obj.pop("ParentRef", None)
        obj["Job"] = False
        obj["BillWithParent"] = False
        obj["Level"] = 0
        obj["FullyQualifiedName"] = obj["DisplayName"]


def _prepare_item(realm: Realm, obj: dict, old: dict | None) -> None:
    if not obj.get("Name"):
        raise faults.required("Name")
    _max_name_len(obj, "Name", MAX_ITEM_NAME)
    _no_invalid_characters(obj, "Name")
    for element, limit in (("Sku", 100), ("Description", 4000), ("PurchaseDesc", 1000)):
        _max_len(obj, element, limit)
    item_type = obj.get("Type") or (old or {}).get("Type") or "NonInventory"
    if item_type not in ITEM_TYPES:
        raise faults.invalid_enum("Type", item_type)
    if old and old.get("Type") == "Inventory" and item_type != "Inventory":
        raise faults.business("You can't change the type of an inventory item.", "Type")
    obj["Type"] = item_type
    obj["Active"] = obj.get("Active", True) is not False
    obj["Name"] = _active_name(obj["Name"], obj["Active"])
    parent = _existing(realm, "Item", obj.get("ParentRef"), "ParentRef")
    if obj.get("SubItem") and parent is None:
        raise faults.required("ParentRef")
    if parent is not None:
        if parent.get("Type") != "Category" or (old and parent["Id"] == old["Id"]):
            raise faults.business("Only a category can be the parent of an item.",
                                  "ParentRef")
        level = int(parent.get("Level", 0)) + 1
        if item_type == "Category" and level >= MAX_CATEGORY_LEVELS:
            raise faults.business(f"Categories can be nested {MAX_CATEGORY_LEVELS} levels "
                                  "deep.", "ParentRef")
        obj.update(SubItem=True, Level=level,
                   ParentRef={"value": parent["Id"], "name": parent["Name"]},
                   FullyQualifiedName=f"{parent['FullyQualifiedName']}:{obj['Name']}")
    else:
        obj.update(SubItem=False, Level=0, FullyQualifiedName=obj["Name"])
        obj.pop("ParentRef", None)
    self_key = ("Item", old["Id"]) if old else None
    if _name_clash(realm, ("Item",), "FullyQualifiedName", obj["FullyQualifiedName"], self_key):
        raise faults.duplicate_name("product or service")
    if item_type == "Category":
        for key in ("IncomeAccountRef", "ExpenseAccountRef", "AssetAccountRef", "QtyOnHand",
                    "InvStartDate", "UnitPrice", "PurchaseCost", "SalesTaxCodeRef"):
            obj.pop(key, None)
        obj["TrackQtyOnHand"] = False
        return
    if item_type == "Inventory":
        if obj.get("TrackQtyOnHand") is not True:
            raise faults.required("TrackQtyOnHand")
        for element in ("QtyOnHand", "InvStartDate", "IncomeAccountRef", "ExpenseAccountRef",
                        "AssetAccountRef"):
            if element not in obj:
                raise faults.required(element)
        for element in ("ExpenseAccountRef", "AssetAccountRef"):
            _existing(realm, "Account", obj[element], element)
    else:
        obj["TrackQtyOnHand"] = False
        obj.pop("QtyOnHand", None)
    if "IncomeAccountRef" not in obj:
        raise faults.required("IncomeAccountRef")
    _existing(realm, "Account", obj["IncomeAccountRef"], "IncomeAccountRef")
    _existing(realm, "Account", obj.get("ExpenseAccountRef"), "ExpenseAccountRef")
    if realm.vat:
        _existing(realm, "TaxCode", obj.get("SalesTaxCodeRef"), "SalesTaxCodeRef")
    obj.setdefault("UnitPrice", 0)


def _prepare_named(realm: Realm, entity: str, obj: dict, old: dict | None, limit: int,
                   kind: str) -> None:
    if not obj.get("Name"):
        raise faults.required("Name")
    _max_len(obj, "Name", limit)
    obj["Active"] = obj.get("Active", True) is not False
    self_key = (entity, old["Id"]) if old else None
    if _name_clash(realm, (entity,), "Name", obj["Name"], self_key):
        raise faults.duplicate_name(kind)


#: Account ``Classification`` follows from ``AccountType`` (Account reference: "determined
#: by AccountType"); https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/account
ACCOUNT_CLASSIFICATION = {
    "Bank": "Asset", "Other Current Asset": "Asset", "Fixed Asset": "Asset",
    "Other Asset": "Asset", "Accounts Receivable": "Asset", "Equity": "Equity",
    "Expense": "Expense", "Other Expense": "Expense", "Cost of Goods Sold": "Expense",
    "Accounts Payable": "Liability", "Credit Card": "Liability",
    "Long Term Liability": "Liability", "Other Current Liability": "Liability",
    "Income": "Revenue", "Other Income": "Revenue"}
#: ``AccountSubType`` when none is sent: Intuit's Account sample (AccountType "Accounts
#: Receivable" answers "AccountsReceivable"); the other defaults are assumed.
ACCOUNT_DEFAULT_SUBTYPE = {
    "Bank": "Checking", "Other Current Asset": "OtherCurrentAssets",
    "Fixed Asset": "OtherFixedAssets", "Other Asset": "OtherLongTermAssets",
    "Accounts Receivable": "AccountsReceivable", "Equity": "OpeningBalanceEquity",
    "Expense": "OtherMiscellaneousServiceCost", "Other Expense": "OtherMiscellaneousExpense",
    "Cost of Goods Sold": "SuppliesMaterialsCogs", "Accounts Payable": "AccountsPayable",
    "Credit Card": "CreditCard", "Long Term Liability": "OtherLongTermLiabilities",
    "Other Current Liability": "OtherCurrentLiabilities", "Income": "SalesOfProductIncome",
    "Other Income": "OtherMiscellaneousIncome"}


def _prepare_account(realm: Realm, obj: dict, old: dict | None) -> None:
    _prepare_named(realm, "Account", obj, old, 100, "account")
    if not obj.get("AccountType"):
        raise faults.required("AccountType")
    classification = ACCOUNT_CLASSIFICATION.get(obj["AccountType"])
    if classification is None:
        raise faults.invalid_enum("AccountType", obj["AccountType"])
    obj["Classification"] = classification
    obj.setdefault("AccountSubType", ACCOUNT_DEFAULT_SUBTYPE[obj["AccountType"]])
    obj["FullyQualifiedName"] = obj["Name"]
    obj.setdefault("SubAccount", False)
    obj["CurrentBalance"] = (old or {}).get("CurrentBalance", 0)
    obj["CurrentBalanceWithSubAccounts"] = (old or {}).get("CurrentBalanceWithSubAccounts", 0)
    _currency(realm, obj)


def _prepare_term(realm: Realm, obj: dict, old: dict | None) -> None:
    _prepare_named(realm, "Term", obj, old, 31, "term")
    obj.setdefault("Type", "STANDARD")
    if obj["Type"] not in ("STANDARD", "DATE_DRIVEN"):
        raise faults.invalid_enum("Type", obj["Type"])
    obj.setdefault("DueDays", 0)


def _prepare_payment_method(realm: Realm, obj: dict, old: dict | None) -> None:
    _prepare_named(realm, "PaymentMethod", obj, old, 31, "payment method")
    obj.setdefault("Type", "NON_CREDIT_CARD")
    if obj["Type"] not in ("CREDIT_CARD", "NON_CREDIT_CARD"):
        raise faults.invalid_enum("Type", obj["Type"])


def _prepare_class(realm: Realm, obj: dict, old: dict | None) -> None:
    _prepare_named(realm, "Class", obj, old, 100, "class")
    _no_invalid_characters(obj, "Name")
    parent = _existing(realm, "Class", obj.get("ParentRef"), "ParentRef")
    if parent is not None:
        obj.update(SubClass=True, ParentRef={"value": parent["Id"], "name": parent["Name"]},
                   FullyQualifiedName=f"{parent['FullyQualifiedName']}:{obj['Name']}")
    else:
        obj.update(SubClass=False, FullyQualifiedName=obj["Name"])
        obj.pop("ParentRef", None)


def _prepare_company_currency(realm: Realm, obj: dict, old: dict | None) -> None:
    """``{"Code": "GBP"}`` → a company currency (multicurrency companies only)."""
    if not realm.multicurrency:
        raise faults.business("Multicurrency is not enabled for this company; company "
                              "currencies can't be added.", "Code")
    code = currencies.code_of(obj.get("Code")) or currencies.code_of((old or {}).get("Code"))
    if code is None:
        raise faults.required("Code")
    _max_len(obj, "Code", 100)
    if old is not None and code != old["Code"]:
        raise faults.business("The code of a company currency can't be changed.", "Code")
    if not currencies.known(code):
        raise faults.unknown_currency("Code", code)
    if code == realm.home_currency:
        raise faults.business(f"{code} is the home currency of this company.", "Code")
    other = company_currency(realm, code)
    if other is not None and (old is None or other["Id"] != old["Id"]):
        raise faults.duplicate_name("currency")
    obj["Code"] = code
    obj["Name"] = currencies.name(code)
    obj["Active"] = obj.get("Active", True) is not False


# -- transactions -------------------------------------------------------------------------
def _doc_number(realm: Realm, entity: str, obj: dict, old: dict | None,
                params: dict[str, str]) -> None:
    number = obj.get("DocNumber")
    if number is None:
        return
    number = str(number)
    if len(number) > 21:
        raise faults.too_long("DocNumber", 21, len(number))
    if "allowduplicatedocnum" in params.get("include", "").lower():
        return
    for other in realm.table(entity).values():
        if old and other["Id"] == old["Id"]:
            continue
        if str(other.get("DocNumber", "")).lower() == number.lower():
            raise faults.duplicate_doc_number(number, entity, other["Id"])


def _txn_basics(realm: Realm, entity: str, obj: dict, old: dict | None,
                params: dict[str, str], customer_required: bool) -> None:
    if customer_required and "CustomerRef" not in obj:
        raise faults.required("CustomerRef")
    customer = _existing(realm, "Customer", obj.get("CustomerRef"), "CustomerRef")
    if customer is not None:
        obj["CustomerRef"] = {"value": customer["Id"], "name": customer["DisplayName"]}
    _doc_number(realm, entity, obj, old, params)
    obj.setdefault("TxnDate", _today())
    _max_len(obj, "PrivateNote", 4000)
    _existing(realm, "PaymentMethod", obj.get("PaymentMethodRef"), "PaymentMethodRef")
    _email(obj, "BillEmail")
    _document_currency(realm, obj, customer)


def _rates_for(realm: Realm) -> Callable[[str], list[money.Rate]]:
    def rates_for_code(code_id: str) -> list[money.Rate]:
        code = realm.get("TaxCode", code_id)
        if code is None:
            return []
        rates = []
        for detail in (code.get("SalesTaxRateList") or {}).get("TaxRateDetail", []):
            rate = realm.get("TaxRate", detail["TaxRateRef"]["value"])
            if rate is not None:
                rates.append(money.Rate(rate["Id"], rate["Name"],
                                        Decimal(str(rate["RateValue"]))))
        return rates
    return rates_for_code


def _prepare_sales_lines(realm: Realm, obj: dict) -> None:
    lines = obj.get("Line") or []
    if not any(line.get("DetailType") == "SalesItemLineDetail" for line in lines):
        raise faults.required("Line")
    uses_tax = realm.vat and obj.get("GlobalTaxCalculation") != "NotApplicable"
    for number, line in enumerate(lines, 1):
        line["Id"] = str(number)
        line["LineNum"] = number
        if not line.get("LinkedTxn"):
            line.pop("LinkedTxn", None)
        kind = line.get("DetailType")
        if kind == "SalesItemLineDetail":
            detail = line.setdefault("SalesItemLineDetail", {})
            item_id = _ref_value(detail.get("ItemRef"))
            if item_id is None:
                raise faults.required("Line.SalesItemLineDetail.ItemRef")
            item = None
            if item_id != SHIPPING_ITEM_ID:
                item = _existing(realm, "Item", detail["ItemRef"], "ItemRef")
                if item["Type"] == "Category":
                    raise faults.invalid_reference("ItemRef", "Item", item_id)
                detail["ItemRef"] = {"value": item["Id"], "name": item["Name"]}
                line.setdefault("Description", item.get("Description"))
                if line["Description"] is None:
                    line.pop("Description")
            code = _ref_value(detail.get("TaxCodeRef"))
            if realm.vat:
                if code is None and item is not None:
                    code = _ref_value(item.get("SalesTaxCodeRef"))
                if code is None and uses_tax:
                    raise faults.business("Make sure all your transactions have a VAT rate "
                                          "before you save.", "TaxCodeRef")
                if code is not None:
                    target = realm.get("TaxCode", code)
                    if target is None or code in ("TAX", "NON"):
                        raise faults.invalid_reference("TaxCodeRef", "TaxCode", code)
                    detail["TaxCodeRef"] = {"value": code}
            else:
                if code is None:  # US: only a line with TaxCodeRef TAX is taxed
                    code = "NON"
                if code.upper() not in ("TAX", "NON"):
                    raise faults.invalid_reference("TaxCodeRef", "TaxCode", code)
                detail["TaxCodeRef"] = {"value": code.upper()}
        elif kind == "DiscountLineDetail":
            detail = line.setdefault("DiscountLineDetail", {})
            detail.setdefault("DiscountAccountRef", {"value": seed.DISCOUNTS,
                                                     "name": "Discounts given"})
            detail["PercentBased"] = bool(detail.get("PercentBased", False))
        elif kind not in ("SubTotalLineDetail", "DescriptionOnly"):
            raise faults.invalid_enum("Line.DetailType", kind)
    if not any(line.get("DetailType") == "SubTotalLineDetail" for line in lines):
        # QBO answers every sales form with a trailing sub-total line (no Id, no LineNum;
        # its Amount, the sum of the item lines, is set by money._subtotals): Intuit's
        # Invoice/SalesReceipt samples,
        # https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/invoice
        lines.append({"Amount": 0, "DetailType": "SubTotalLineDetail",
                      "SubTotalLineDetail": {}})


def _prepare_sales_doc(realm: Realm, entity: str, obj: dict, old: dict | None,
                       params: dict[str, str], sent_tax: dict | None) -> None:
    _txn_basics(realm, entity, obj, old, params,
                customer_required=entity in ("Invoice", "CreditMemo"))
    _prepare_sales_lines(realm, obj)
    rates = _rates_for(realm)
    if realm.vat:
        money.compute_vat_document(obj, rates, sent_tax)
    else:
        code = _ref_value((sent_tax or {}).get("TxnTaxCodeRef"))
        if code is not None and realm.get("TaxCode", code) is None:
            raise faults.invalid_reference("TxnTaxDetail.TxnTaxCodeRef", "TaxCode", code)
        money.compute_us_document(obj, rates, realm.default_sales_tax_code, sent_tax)
    _home_amounts(realm, obj)
    if entity in ("SalesReceipt", "RefundReceipt"):
        default = seed.UNDEPOSITED_FUNDS if entity == "SalesReceipt" else seed.CHECKING
        obj.setdefault("DepositToAccountRef", {"value": default})
        _existing(realm, "Account", obj["DepositToAccountRef"], "DepositToAccountRef")
        obj["Balance"] = 0
    if entity == "Invoice":
        term = _existing(realm, "Term", obj.get("SalesTermRef"), "SalesTermRef")
        if term is not None and "DueDate" not in obj:
            txn_date = date.fromisoformat(str(obj["TxnDate"])[:10])
            obj["DueDate"] = (txn_date + timedelta(days=int(term.get("DueDays", 0)))).isoformat()
        obj.setdefault("DueDate", obj["TxnDate"])
        obj["Balance"] = obj["TotalAmt"]  # payments are subtracted by operations
    if entity == "CreditMemo":
        obj["Balance"] = obj["RemainingCredit"] = obj["TotalAmt"]
    obj.setdefault("PrintStatus", "NotSet")
    obj.setdefault("EmailStatus", "NotSet")
    if "DocNumber" not in obj:  # numbered last, so a refused document uses no number
        obj["DocNumber"] = (old or {}).get("DocNumber") or realm.next_doc_number(entity)


def _prepare_payment(realm: Realm, obj: dict, old: dict | None, params: dict[str, str],
                     open_balance: Callable[[str, dict | None], Decimal]) -> None:
    if "CustomerRef" not in obj:
        raise faults.required("CustomerRef")
    if "TotalAmt" not in obj:
        raise faults.required("TotalAmt")
    _txn_basics(realm, "Payment", obj, old, params, customer_required=True)
    total = money.q2(money.dec(obj["TotalAmt"]) or money.ZERO)
    applied = money.ZERO
    for number, line in enumerate(obj.get("Line") or [], 1):
        amount = money.q2(money.dec(line.get("Amount")) or money.ZERO)
        for link in line.get("LinkedTxn") or []:
            if link.get("TxnType") != "Invoice":
                raise faults.invalid_enum("Line.LinkedTxn.TxnType", link.get("TxnType"))
            invoice = realm.get("Invoice", link.get("TxnId"))
            if invoice is None:
                raise faults.invalid_reference("Line.LinkedTxn.TxnId", "Invoice",
                                               link.get("TxnId"))
            if invoice["CustomerRef"]["value"] != obj["CustomerRef"]["value"]:
                raise faults.business("The invoice belongs to another customer.",
                                      "Line.LinkedTxn")
            if amount > open_balance(invoice["Id"], old):
                raise faults.business("The payment amount applied exceeds the open balance "
                                      "of the invoice.", "Line.Amount")
        line["Amount"] = money.num(amount)
        applied += amount
    if applied > total:
        raise faults.business("The amount applied exceeds the payment total.", "TotalAmt")
    obj["TotalAmt"] = money.num(total)
    obj["UnappliedAmt"] = money.num(total - applied)
    obj.setdefault("DepositToAccountRef", {"value": seed.UNDEPOSITED_FUNDS})
    _existing(realm, "Account", obj["DepositToAccountRef"], "DepositToAccountRef")


def _prepare_inventory_adjustment(realm: Realm, obj: dict, old: dict | None,
                                  params: dict[str, str],
                                  on_hand: Callable[[str, dict | None], Decimal]) -> None:
    if "AdjustAccountRef" not in obj:
        raise faults.required("AdjustAccountRef")
    _existing(realm, "Account", obj["AdjustAccountRef"], "AdjustAccountRef")
    lines = obj.get("Line") or []
    if not lines:
        raise faults.required("Line")
    obj.setdefault("TxnDate", _today())
    if "DocNumber" in obj:
        _doc_number(realm, "InventoryAdjustment", obj, old, params)
    for number, line in enumerate(lines, 1):
        line["Id"], line["LineNum"] = str(number), number
        line["DetailType"] = "ItemAdjustmentLineDetail"
        detail = line.get("ItemAdjustmentLineDetail") or {}
        line["ItemAdjustmentLineDetail"] = detail
        if "ItemRef" not in detail:
            raise faults.required("Line.ItemAdjustmentLineDetail.ItemRef")
        item = _existing(realm, "Item", detail["ItemRef"], "ItemRef")
        if item.get("Type") != "Inventory":
            raise faults.invalid_reference("ItemRef", "Item", item["Id"])
        detail["ItemRef"] = {"value": item["Id"], "name": item["Name"]}
        if "NewQty" in detail:
            new_qty = money.dec(detail["NewQty"]) or money.ZERO
            detail["QtyDiff"] = money.num(new_qty - on_hand(item["Id"], old))
        elif "QtyDiff" not in detail:
            raise faults.required("Line.ItemAdjustmentLineDetail.QtyDiff")


def _prepare_attachable(realm: Realm, obj: dict, old: dict | None) -> None:
    _max_len(obj, "Note", 2000)
    _max_len(obj, "FileName", 1000)
    if not obj.get("Note") and not obj.get("FileName"):
        raise faults.required("Note")
    for ref in obj.get("AttachableRef") or []:
        entity_ref = ref.get("EntityRef") or {}
        entity = URL_NAMES.get(str(entity_ref.get("type", "")).lower())
        if entity is None or realm.get(entity, entity_ref.get("value")) is None:
            raise faults.invalid_reference("AttachableRef.EntityRef", str(entity_ref.get(
                "type")), entity_ref.get("value"))
        entity_ref["type"] = entity
        ref.setdefault("IncludeOnSend", False)


def prepare(realm: Realm, entity: str, obj: dict, old: dict | None, params: dict[str, str],
            sent_tax: dict | None = None,
            on_hand: Callable[[str, dict | None], Decimal] | None = None,
            open_balance: Callable[[str, dict | None], Decimal] | None = None) -> dict:
    """Validate and complete ``obj`` (already cleaned, read-only fields removed)."""
    obj = deepcopy(obj)
    if entity in PEOPLE:
        _prepare_person(realm, entity, obj, old)
    elif entity == "Item":
        _prepare_item(realm, obj, old)
    elif entity == "Account":
        _prepare_account(realm, obj, old)
    elif entity == "Term":
        _prepare_term(realm, obj, old)
    elif entity == "PaymentMethod":
        _prepare_payment_method(realm, obj, old)
    elif entity == "Class":
        _prepare_class(realm, obj, old)
    elif entity == "CompanyCurrency":
        _prepare_company_currency(realm, obj, old)
    elif entity in SALES_DOCS:
        _prepare_sales_doc(realm, entity, obj, old, params, sent_tax)
    elif entity == "Payment":
        _prepare_payment(realm, obj, old, params, open_balance)
    elif entity == "InventoryAdjustment":
        _prepare_inventory_adjustment(realm, obj, old, params, on_hand)
    elif entity == "Attachable":
        _prepare_attachable(realm, obj, old)
    return obj
