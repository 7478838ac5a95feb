"""Reading refunds from Lightspeed: which orders to look at, their credits, and one
canonical, JSON-safe shape per credit.

A refund is a Lightspeed **credit** (``orders/{id}/credit``): it names the order rows and
quantities refunded (the rows' ``quantityRefunded`` is their running sum), the refunded
shipping and the amounts, incl. and excl. VAT. A **return** (``returns``) is goods coming
back; it becomes money only through the credit that settles it (``credit.return``), so a
return on its own is read only to find the orders to look at. Credits are identified by
their own id, which is stable.

What the API offers for finding credits (see also docs/vendor-facts.md):

* no list of credits across orders: the official client (SEOshop/API-PHP-Client
  ``ApiResourceOrdersCredit``) has only ``create`` on ``orders/{id}/credit``; the read of
  an order's credits mirrors that path, one call per order;
* no order field that marks a credited order (Falkplan/lightspeedecom-api ``Order.java``:
  ``paymentStatus`` is ``not_paid|partially_paid|paid|cancelled``, no refunded state;
  credit notes are ``isCreditNote`` invoices, a resource koppel does not read) and no
  ``status``/``paymentStatus`` list filter (docs/sandbox-fidelity.md);
* ``updated_at_min/max`` windows on ``orders.json`` (a credit moves its order's
  ``updatedAt``) and on ``returns.json`` (``orderId`` names the order): so a run reads
  the credits of the orders changed in its window only, and the returns changed in it
  with one listing.

So the credits call per order changed in the window is the floor. On top of it, a caller
that passes the tenant's memory of earlier reads (:func:`credits_of_orders` with
``checks``) saves the call for an order seen again at the same ``updatedAt`` that had no
credit or whose credits are all booked: overlapping windows (manual runs read from a day
before the last activity), ``since``/``until`` re-syncs and full resyncs.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any, Iterable

from koppel.hooks.lightspeed import Resource
from koppel.hooks.lightspeed_models import LSModel

CREDITS = "orders/{order_id}/credit.json"
RETURNS = Resource("returns.json", "returns", LSModel)

if TYPE_CHECKING:
    from koppel.store.credit_checks import CreditChecks


def _ref_id(value: Any) -> int | None:
    """``{"resource": {"id": 5, …}}`` → 5; ``false``/missing → None."""
    if isinstance(value, dict):
        resource = value.get("resource")
        if isinstance(resource, dict) and resource.get("id") not in (None, False):
            return int(resource["id"])
    return None


def _money(value: Any) -> str:
    return str(Decimal(str(value or 0)).quantize(Decimal("0.01")))


def order_ids_with_returns(hook, window) -> set[int]:
    """Orders whose returns changed in ``window`` (all returns without a window).

    A return names its order in ``orderId`` (the field third-party clients read,
    docs/sandbox-fidelity.md); the ``order`` reference is read when ``orderId`` is absent."""
    ids = set()
    for record in hook.iter_records(RETURNS, window=window):
        data = record.to_api()
        order_id = data.get("orderId")
        order_id = int(order_id) if isinstance(order_id, int | str) and str(order_id).isdigit() \
            else _ref_id(data.get("order"))
        if order_id is not None:
            ids.add(order_id)
    return ids


def read_credits(hook, order_id: int) -> list[dict[str, Any]]:
    """The order's credits, oldest first."""
    data = hook.request("GET", CREDITS, order_id=order_id, record_id=order_id)
    credits = data.get("credits") if isinstance(data, dict) else None
    if not isinstance(credits, list):  # a shop answers ``false`` for "none"
        return []
    return sorted(credits, key=lambda c: int(c["id"]))


def canonical_credit(credit: dict[str, Any], sequence: int) -> dict[str, Any]:
    """The parts of a credit a refund document is built from (money as strings).

    ``sequence`` is the credit's place among its order's credits (1 for the first): it
    numbers the refund documents of one order (``ORD00012-R1``, ``-R2``, …)."""
    rows: dict[str, dict[str, Any]] = {}
    for line in credit.get("products") or []:
        row_id = _ref_id(line.get("orderProduct"))
        if row_id is None:
            row_id = int(line["id"])
        entry = rows.setdefault(str(row_id), {"quantity": 0, "amount_incl": "0.00",
                                              "amount_excl": "0.00"})
        entry["quantity"] += int(line.get("quantity") or 0)
        entry["amount_incl"] = _money(Decimal(entry["amount_incl"]) + Decimal(str(line.get("priceIncl") or 0)))
        entry["amount_excl"] = _money(Decimal(entry["amount_excl"]) + Decimal(str(line.get("priceExcl") or 0)))
    return {
        "id": str(credit["id"]),
        "number": str(credit.get("number") or credit["id"]),
        "sequence": sequence,
        "created_at": credit.get("createdAt"),
        "order_id": str(_ref_id(credit.get("order")) or ""),
        "return_id": _ref_id(credit.get("return")),
        "rows": rows,
        "shipping_incl": _money(credit.get("shipmentPriceIncl")),
        "shipping_excl": _money(credit.get("shipmentPriceExcl")),
        "payment_incl": _money(credit.get("paymentPriceIncl")),
        # the credit's VAT per rate (what the credit note shows), rates as percentages
        "tax_rates": [{"rate": str(Decimal(str(t.get("rate") or 0)) * 100),
                       "amount": _money(t.get("amount"))}
                      for t in credit.get("taxRates") or [] if isinstance(t, dict)],
        "payment_excl": _money(credit.get("paymentPriceExcl")),
        "total_incl": _money(credit.get("priceIncl")),
        "total_excl": _money(credit.get("priceExcl")),
    }


def credits_of_orders(hook, orders: Iterable[dict[str, Any]],
                      checks: "CreditChecks | None" = None) -> list[tuple[dict, dict]]:
    """``(order header, canonical credit)`` for every credit of ``orders``: one call per
    order (Lightspeed lists no credits across orders, and no order field or list filter
    tells which orders have one: see the module docstring).

    With ``checks`` (:class:`koppel.store.credit_checks.CreditChecks`, the tenant's
    memory of earlier reads) an order listed again at the ``updatedAt`` its credits were
    read at, all of them booked since, is passed over without a call — a credit moves
    its order's ``updatedAt``, so it has no new one — and every read is remembered."""
    out = []
    for order in orders:
        order_id = int(order["id"])
        if checks is not None and checks.settled(order_id, order.get("updatedAt")):
            continue
        credits = read_credits(hook, order_id)
        if checks is not None:
            checks.remember(order_id, order.get("updatedAt"), [c["id"] for c in credits])
        for sequence, credit in enumerate(credits, 1):
            out.append((order, canonical_credit(credit, sequence)))
    return out
