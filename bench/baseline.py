"""The baseline: the straightforward per-record sync a user would write with
python-quickbooks, to put koppel's call counts and wall time in perspective.

For each paid order of the shop (read page by page, its rows one call per order, as the
Lightspeed API makes you do), against QuickBooks:

1. query the sales receipt by DocNumber — skip the order when it is there;
2. query the customer by display name; update it when found, else create it;
3. query each row's SKU; create a NonInventory item for a SKU that is missing;
4. create the sales receipt.

Reference data (the income account, tax codes) is read once up front, as any script
would. Money is kept simple (prices excluding tax, tax codes by rate): the baseline
measures cost, not bookkeeping fidelity. Nothing personal is printed.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Iterator

import httpx


@dataclass
class BaselineResult:
    orders_read: int = 0
    booked: int = 0
    skipped: int = 0
    failed: int = 0
    wall_seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"orders_read": self.orders_read, "booked": self.booked,
                "skipped": self.skipped, "failed": self.failed,
                "wall_seconds": round(self.wall_seconds, 3),
                "first_errors": self.errors[:5]}


def qbo_client(realm: dict[str, Any]):
    """A python-quickbooks client for one sandbox realm (its API base URL instead of
    Intuit's)."""
    os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")  # plain http on loopback
    from intuitlib.client import AuthClient
    from quickbooks import QuickBooks

    auth = AuthClient(client_id=realm["client_id"], client_secret=realm["client_secret"],
                      redirect_uri="http://localhost/callback",
                      environment=realm["discovery_url"])
    auth.refresh(refresh_token=realm["refresh_token"])
    client = QuickBooks(auth_client=auth, refresh_token=auth.refresh_token,
                        company_id=realm["realm_id"], minorversion=75)
    client.api_url_v3 = realm["api_base_url"].rstrip("/")
    return client


def paid_orders(ls: dict[str, Any], limit: int | None, result: "BaselineResult",
                book: Any) -> Iterator[Any]:
    """``book(order, rows)``'s outcome for each paid, not cancelled order of the shop (the
    first ``limit`` read), counting what was read and skipped in ``result``; an order
    ``book`` raises on is counted failed and reported, and the next one goes on."""
    for order, rows in shop_orders(ls, limit):
        result.orders_read += 1
        if order.get("paymentStatus") != "paid" or order.get("status") == "cancelled":
            result.skipped += 1
            continue
        try:
            outcome = book(order, rows)
        except Exception as exc:  # a script reports failures, it does not stop
            result.failed += 1
            result.errors.append(f"order {order['id']}: {describe(exc)}")
            continue
        yield outcome


def shop_orders(ls: dict[str, Any], limit: int | None) -> Iterator[tuple[dict, list[dict]]]:
    """Orders with their rows, the way the API serves them."""
    with httpx.Client(base_url=f"{ls['base_url'].rstrip('/')}/{ls['language']}/",
                      auth=(ls["api_key"], ls["api_secret"]), timeout=60) as api:
        page, seen = 1, 0
        while True:
            batch = api.get("orders.json", params={"page": page, "limit": 250}).json()["orders"]
            for order in batch:
                if limit is not None and seen >= limit:
                    return
                seen += 1
                rows = api.get(f"orders/{order['id']}/products.json").json()["orderProducts"]
                yield order, rows
            if len(batch) < 250:
                return
            page += 1


def describe(exc: Exception) -> str:
    """An exception's type and QuickBooks error code (never its message: that can quote
    the data, e.g. an e-mail address)."""
    code = getattr(exc, "error_code", None)
    return f"{type(exc).__name__}{f' {code}' if code not in (None, '') else ''}"


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


class PerRecordSync:
    """The per-order sync with python-quickbooks objects."""

    def __init__(self, client, tax_code_names: dict[str, str]) -> None:
        from quickbooks.objects.account import Account
        from quickbooks.objects.taxcode import TaxCode

        self.qb = client
        accounts = Account.query("SELECT * FROM Account WHERE AccountType = 'Income'",
                                 qb=client)
        if not accounts:
            raise RuntimeError("the QuickBooks company has no income account")
        self.income_account = accounts[0].Id
        codes = {c.Name: c.Id for c in TaxCode.all(qb=client)}
        self.tax_codes = {rate: codes.get(name) for rate, name in tax_code_names.items()}

    def sync(self, order: dict[str, Any], rows: list[dict[str, Any]]) -> str:
        from quickbooks.objects.salesreceipt import SalesReceipt

        number = str(order["number"])
        existing = SalesReceipt.query(
            f"SELECT * FROM SalesReceipt WHERE DocNumber = '{_quote(number)}'", qb=self.qb)
        if existing:
            return "skipped"
        customer = self._upsert_customer(order)
        receipt = SalesReceipt()
        receipt.DocNumber = number
        receipt.CustomerRef = customer.to_ref()
        receipt.GlobalTaxCalculation = "TaxExcluded"
        receipt.Line = [self._line(row) for row in rows]
        receipt.save(qb=self.qb)
        return "booked"

    @staticmethod
    def customer_name(order: dict[str, Any]) -> str:
        """The display name the order's customer goes by in QuickBooks."""
        return (order.get("companyName") or " ".join(
            p for p in (order.get("firstname"), order.get("lastname")) if p)
            or f"Shop customer {order['id']}")[:100].replace(":", "-")

    def _upsert_customer(self, order: dict[str, Any]):
        from quickbooks.objects.customer import Customer

        name = self.customer_name(order)
        found = Customer.query(
            f"SELECT * FROM Customer WHERE DisplayName = '{_quote(name)}'", qb=self.qb)
        customer = fill_customer(found[0] if found else Customer(), name, order)
        customer.save(qb=self.qb)
        return customer

    def _line(self, row: dict[str, Any]):
        from quickbooks.objects.base import Ref
        from quickbooks.objects.detailline import SalesItemLine, SalesItemLineDetail

        item = self._item(row)
        quantity = Decimal(str(row.get("quantityOrdered") or 1))
        amount = Decimal(str(row.get("priceExcl") or 0)).quantize(Decimal("0.01"))
        line = SalesItemLine()
        line.Amount = float(amount)  # the row total after discount
        line.Description = (row.get("productTitle") or "")[:4000]
        detail = SalesItemLineDetail()
        detail.ItemRef = item.to_ref()
        detail.Qty = float(quantity)
        detail.UnitPrice = float(amount / quantity) if quantity else 0.0
        rate = str(int(round(float(row.get("taxRate") or 0) * 100)))
        code = self.tax_codes.get(rate) or self.tax_codes.get("0")
        if code:
            detail.TaxCodeRef = Ref()
            detail.TaxCodeRef.value = code
        line.SalesItemLineDetail = detail
        return line

    def _item(self, row: dict[str, Any]):
        from quickbooks.objects.base import Ref
        from quickbooks.objects.item import Item

        sku = str(row.get("sku") or f"ROW-{row['id']}")
        found = Item.query(f"SELECT * FROM Item WHERE Sku = '{_quote(sku)}'", qb=self.qb)
        if found:
            return found[0]
        item = Item()
        item.Name = f"{(row.get('productTitle') or 'Item')[:60]} ({sku})".replace(":", "-")[:100]
        item.Sku = sku
        item.Type = "NonInventory"
        item.IncomeAccountRef = Ref()
        item.IncomeAccountRef.value = self.income_account
        item.save(qb=self.qb)
        return item


def run_baseline(ls_credentials: dict[str, Any], realm: dict[str, Any],
                 tax_code_names: dict[str, str], limit: int | None = None) -> BaselineResult:
    """Books the shop's paid orders (the first ``limit`` read) the per-record way."""
    result = BaselineResult()
    started = time.monotonic()
    sync = PerRecordSync(qbo_client(realm), tax_code_names)
    for outcome in paid_orders(ls_credentials, limit, result, sync.sync):
        if outcome == "booked":
            result.booked += 1
        else:
            result.skipped += 1
    result.wall_seconds = time.monotonic() - started
    return result


def fill_customer(customer: Any, name: str, order: dict[str, Any]) -> Any:
    """A python-quickbooks ``Customer`` with the order's buyer (display name, given and
    family name, e-mail), as a straightforward script fills it."""
    from quickbooks.objects.base import EmailAddress

    customer.DisplayName = name
    customer.GivenName = (order.get("firstname") or "")[:100] or None
    customer.FamilyName = (order.get("lastname") or "")[:100] or None
    if order.get("email"):
        customer.PrimaryEmailAddr = EmailAddress()
        customer.PrimaryEmailAddr.Address = order["email"]
    return customer

