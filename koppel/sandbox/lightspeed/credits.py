"""Credits (refunds) and returns of the emulated shop.

What the public record says, and what the sandbox chooses where it is silent
----------------------------------------------------------------------------
The official PHP client (SEOshop/API-PHP-Client) has ``ApiResourceOrdersCredit`` with a
single ``create($orderId, $fields)`` that posts ``{"credit": {...}}`` to
``orders/{id}/credit``, and ``ApiResourceReturns`` with ``get``/``count``/``update``/
``delete`` on ``returns`` (wrapper ``{"return": {...}}``; no create: customers open
returns in the shop front). Order rows report ``quantityRefunded`` and
``quantityReturned``. The field lists of a credit and of a return are not public; the
sandbox fixes these shapes (all money incl./excl. VAT as the rest of the API):

* ``POST orders/{id}/credit.json`` ``{"credit": {"products": [{"id": <orderProduct id>,
  "quantity": n}], "shipment": bool, "payment": bool, "restock": bool, "comment": str,
  "return": <id>}}``
  → 201 ``{"credit": {...}}``. ``products`` may be left out when ``return`` names a
  return (its rows are credited). Crediting raises the rows' ``quantityRefunded`` and
  moves the order's ``updatedAt``; the order's own totals stay as they were ordered.
* ``GET orders/{id}/credit.json`` → ``{"credits": [...]}``: the order's credits, oldest
  first. (A read route is not in the PHP client; a sync needs one, so the sandbox
  mirrors the create route.)
* A credit: ``id``, ``createdAt``, ``updatedAt``, ``number`` (``CRD00001``), ``order``
  and ``return`` references (``return`` is ``false`` without one), ``restock``,
  ``comment``, ``products`` (``{id, orderProduct, quantity, taxRate, priceExcl,
  priceIncl}``), ``shipmentPriceExcl``/``Incl``, ``paymentPriceExcl``/``Incl``,
  ``priceExcl``/``priceIncl`` (the credit's totals) and ``taxRates``.
* Amounts: a credited row refunds what the customer paid for those units — the row total
  after row discount, minus the row's share of the order discount (spread over the rows
  by their totals; exact to the cent), pro rata by quantity with cumulative rounding, so
  crediting every unit of a row in any number of credits refunds exactly its paid total.
  Shipping (what was charged, after any shipment discount) is credited whole, once, and
  so is the payment fee (``payment``); their VAT per rate is the order's
  ``shipmentTaxRates`` / ``paymentTaxRates`` (shipping split over the goods' rates is
  credited with the same split). Crediting every row, the shipping and the fee refunds
  exactly ``priceIncl``.
* ``returns``: ``id``, ``createdAt``, ``updatedAt``, ``status`` (``requested``,
  ``received``, ``credited``, ``cancelled``), ``reason``, ``comment``, ``order`` and
  ``customer`` references, ``products`` (``{orderProduct, quantity}``) and ``credit``
  (reference or ``false``). A return reaching ``received`` or ``credited`` raises its
  rows' ``quantityReturned``; crediting with ``return`` links both and marks the return
  ``credited``. Filters: the usual paging and time windows, ``order=``, ``status=``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from .errors import invalid, not_found
from .money import ZERO, cents, excl_from_incl, vat_label
from .pricing import _allocate
from .serialize import Ref

RETURN_STATUSES = ("requested", "received", "credited", "cancelled")
GOODS_BACK = ("received", "credited")
CREDIT_ID_START = 8_100_000
RETURN_ID_START = 760_000


class CreditBook:
    """Credits and returns of one shop (the store's lock guards it, like every table)."""

    def __init__(self) -> None:
        self.credits: dict[int, dict[str, Any]] = {}
        self.returns: dict[int, dict[str, Any]] = {}
        self._next_credit = CREDIT_ID_START
        self._next_return = RETURN_ID_START

    # -- reading ---------------------------------------------------------------------------
    def of_order(self, order_id: int) -> list[dict[str, Any]]:
        return [c for c in self.credits.values() if c["order"].id == order_id]

    def get_return(self, return_id: int) -> dict[str, Any]:
        record = self.returns.get(return_id)
        if record is None:
            raise not_found()
        return record

    # -- credits ---------------------------------------------------------------------------
    def credit(self, order: dict[str, Any], data: dict[str, Any], now: datetime) -> dict[str, Any]:
        """Credit rows (and shipping) of ``order``; see the module docstring."""
        rows = {row["id"]: row for row in order["_rows"]}
        linked = None
        if data.get("return") not in (None, False, ""):
            linked = self._linkable_return(order, data["return"])
        wanted = data.get("products")
        if wanted is None and linked is not None:
            wanted = [{"id": p["orderProduct"].id, "quantity": p["quantity"]}
                      for p in linked["products"]]
        quantities = _requested_quantities(wanted or [], rows)
        shipment = bool(data.get("shipment"))
        if shipment and (order.get("_shipment_credited") or not order["shipmentPriceIncl"]):
            raise invalid({"shipment": ["Shipping costs were credited already or are zero."]})
        payment = bool(data.get("payment"))
        if payment and (order.get("_payment_credited") or not order.get("paymentPriceIncl")):
            raise invalid({"payment": ["The payment fee was credited already or is zero."]})
        if not quantities and not shipment and not payment:
            raise invalid({"products": ["Nothing to credit."]})
        paid = _paid_per_row(order)
        lines = []
        for row_id, quantity in quantities.items():
            row = rows[row_id]
            before = row["quantityRefunded"]
            incl = (_cumulative(paid[row_id], before + quantity, row["quantityOrdered"])
                    - _cumulative(paid[row_id], before, row["quantityOrdered"]))
            lines.append({"id": len(lines) + 1,
                          "orderProduct": Ref(f"orders/{order['id']}/products/{row_id}", row_id),
                          "quantity": quantity, "taxRate": row["taxRate"],
                          "priceExcl": excl_from_incl(incl, row["taxRate"]), "priceIncl": incl})
        ship_incl = order["shipmentPriceIncl"] if shipment else ZERO
        ship_excl = order["shipmentPriceExcl"] if shipment else ZERO
        pay_incl = order.get("paymentPriceIncl", ZERO) if payment else ZERO
        pay_excl = order.get("paymentPriceExcl", ZERO) if payment else ZERO
        for row_id, quantity in quantities.items():
            rows[row_id]["quantityRefunded"] += quantity
        if shipment:
            order["_shipment_credited"] = True
        if payment:
            order["_payment_credited"] = True
        credit_id = self._next_credit
        self._next_credit += 1
        record = {
            "id": credit_id, "createdAt": now, "updatedAt": now,
            "number": f"CRD{credit_id - CREDIT_ID_START + 1:05d}",
            "order": Ref(f"orders/{order['id']}", order["id"]),
            "return": Ref(f"returns/{linked['id']}", linked["id"]) if linked else False,
            "restock": bool(data.get("restock")), "comment": str(data.get("comment") or ""),
            "products": lines,
            "shipmentPriceExcl": ship_excl, "shipmentPriceIncl": ship_incl,
            "paymentPriceExcl": pay_excl, "paymentPriceIncl": pay_incl,
            "priceExcl": sum((l["priceExcl"] for l in lines), ZERO) + ship_excl + pay_excl,
            "priceIncl": sum((l["priceIncl"] for l in lines), ZERO) + ship_incl + pay_incl,
            "taxRates": _tax_rates(lines, order, shipment, payment),
        }
        self.credits[credit_id] = record
        if linked is not None:
            self._set_return_status(linked, order, "credited", now)
            linked["credit"] = Ref(f"orders/{order['id']}/credit", credit_id)
        order["updatedAt"] = now
        return record

    def _linkable_return(self, order: dict[str, Any], return_id: Any) -> dict[str, Any]:
        try:
            record = self.returns.get(int(return_id))
        except (TypeError, ValueError):
            record = None
        if record is None or record["order"].id != order["id"]:
            raise invalid({"return": ["Unknown return for this order."]})
        if record["status"] in ("credited", "cancelled"):
            raise invalid({"return": [f"The return is {record['status']} already."]})
        return record

    # -- returns ---------------------------------------------------------------------------
    def open_return(self, order: dict[str, Any], data: dict[str, Any], now: datetime) -> dict[str, Any]:
        """A customer's return request (the control plane stands in for the shop front)."""
        rows = {row["id"]: row for row in order["_rows"]}
        quantities = _requested_quantities(data.get("products") or [], rows, field="returned")
        if not quantities:
            raise invalid({"products": ["At least one row is required."]})
        for row_id, quantity in quantities.items():
            row = rows[row_id]
            if row["quantityReturned"] + quantity > row["quantityOrdered"]:
                raise invalid({"products": [f"Row {row_id} has only "
                                            f"{row['quantityOrdered'] - row['quantityReturned']} "
                                            "units left to return."]})
        return_id = self._next_return
        self._next_return += 1
        record = {
            "id": return_id, "createdAt": now, "updatedAt": now, "status": "requested",
            "reason": str(data.get("reason") or ""), "comment": str(data.get("comment") or ""),
            "order": Ref(f"orders/{order['id']}", order["id"]),
            "customer": order["customer"],
            "products": [{"orderProduct": Ref(f"orders/{order['id']}/products/{row_id}", row_id),
                          "quantity": quantity} for row_id, quantity in quantities.items()],
            "credit": False,
        }
        self.returns[return_id] = record
        status = data.get("status", "requested")
        if status != "requested":
            self.update_return(order, record, {"status": status}, now)
        return record

    def update_return(self, order: dict[str, Any], record: dict[str, Any],
                      changes: dict[str, Any], now: datetime) -> dict[str, Any]:
        status = changes.get("status")
        if status is not None:
            if status not in RETURN_STATUSES:
                raise invalid({"status": [f"Invalid status '{status}'."]})
            if status == "credited" and not record["credit"]:
                raise invalid({"status": ["Credit the order with this return to mark it credited."]})
            self._set_return_status(record, order, status, now)
        if "comment" in changes:
            record["comment"] = str(changes["comment"] or "")
        record["updatedAt"] = now
        return record

    def delete_return(self, return_id: int) -> None:
        record = self.get_return(return_id)
        if record["credit"]:
            raise invalid({"return": ["A credited return cannot be deleted."]})
        del self.returns[return_id]

    @staticmethod
    def _set_return_status(record: dict[str, Any], order: dict[str, Any], status: str,
                           now: datetime) -> None:
        was_back, is_back = record["status"] in GOODS_BACK, status in GOODS_BACK
        if was_back != is_back:
            sign = 1 if is_back else -1
            rows = {row["id"]: row for row in order["_rows"]}
            for product in record["products"]:
                row = rows.get(product["orderProduct"].id)
                if row is not None:
                    row["quantityReturned"] += sign * product["quantity"]
            order["updatedAt"] = now
        record["status"] = status
        record["updatedAt"] = now


def _requested_quantities(wanted: Any, rows: dict[int, dict[str, Any]],
                          field: str = "refunded") -> dict[int, int]:
    """``[{"id": row, "quantity": n}]`` → ``{row: n}``, checked against the order."""
    if not isinstance(wanted, list):
        raise invalid({"products": ["Must be a list of {id, quantity}."]})
    out: dict[int, int] = {}
    for item in wanted:
        try:
            row_id, quantity = int(item["id"]), item.get("quantity", 1)
        except (KeyError, TypeError, ValueError):
            raise invalid({"products": ["Each product needs an order row id."]}) from None
        if row_id not in rows:
            raise invalid({"products": [f"Row {row_id} is not on this order."]})
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            raise invalid({"products": ["Quantity must be a whole number of at least 1."]})
        out[row_id] = out.get(row_id, 0) + quantity
    if field == "refunded":
        for row_id, quantity in out.items():
            row = rows[row_id]
            left = row["quantityOrdered"] - row["quantityRefunded"]
            if quantity > left:
                raise invalid({"products": [f"Row {row_id} has only {left} units left to credit."]})
    return out


def _paid_per_row(order: dict[str, Any]) -> dict[int, Decimal]:
    """What the customer paid per row: its total minus its share of the order discount."""
    rows = order["_rows"]
    shares = _allocate(order.get("discountIncl") or ZERO,
                       {row["id"]: row["priceIncl"] for row in rows}) if rows else {}
    return {row["id"]: row["priceIncl"] - shares.get(row["id"], ZERO) for row in rows}


def _cumulative(total: Decimal, units: int, of: int) -> Decimal:
    return cents(total * units / of) if of else ZERO


def _tax_rates(lines: list[dict[str, Any]], order: dict[str, Any], shipment: bool,
               payment: bool) -> list[dict[str, Any]]:
    amounts: dict[Decimal, Decimal] = {}
    for line in lines:
        rate = line["taxRate"]
        amounts[rate] = amounts.get(rate, ZERO) + line["priceIncl"] - line["priceExcl"]
    extras = (order.get("shipmentTaxRates") or []) if shipment else []
    extras = extras + ((order.get("paymentTaxRates") or []) if payment else [])
    for entry in extras:
        amounts[entry["rate"]] = amounts.get(entry["rate"], ZERO) + entry["amount"]
    return [{"name": vat_label(rate), "rate": rate, "amount": amount}
            for rate, amount in sorted(amounts.items(), reverse=True)]


SEED_PLANS = ("returned", "full", "twice")


def seed_credits(store, first_index: int = 10) -> None:
    """Pinned refund cases on seeded orders, so even a small shop has them: among the
    orders from ``first_index`` on, the first paid ones that are not cancelled get (1) a
    return of one unit, received and credited; (2) a full credit with shipping and fee;
    (3) two partial credits. Plain orders (Dutch VAT at one rate, no fee, no shipment
    discount, at most 10 rows) are taken first, others only when a small shop has too
    few. Three days after the order (never after the seed anchor)."""
    plans = list(SEED_PLANS)
    stubs = list(store.orders.headers())[first_index:]
    for plain_only in (True, False):
        for stub in stubs:
            if not plans:
                return
            if stub.get("_huge"):
                continue
            order = store.orders.get(stub["id"])
            if order.get("_credit_seeded") or (plain_only and not _plain(order)):
                continue
            _seed_one(store, order, plans)


def _plain(order: dict[str, Any]) -> bool:
    return (order.get("_regime") == "domestic" and len(order["taxRates"]) <= 1
            and not order["paymentPriceIncl"] and not order["shipmentDiscountIncl"]
            and len(order["_rows"]) <= 10)


def _seed_one(store, order: dict[str, Any], plans: list[str]) -> None:
    from datetime import timedelta

    units = sum(row["quantityOrdered"] for row in order["_rows"])
    if order["paymentStatus"] != "paid" or order["status"] == "cancelled" or not units:
        return
    if plans[0] in ("twice", "returned") and units < 2:
        return  # (a return of one unit leaves the order partly credited)
    plan = plans.pop(0)
    order["_credit_seeded"] = True
    updated = order["updatedAt"]
    when = min(store.anchor, order["createdAt"] + timedelta(days=3))
    book: CreditBook = store.credit_book
    first = order["_rows"][0]
    if plan == "returned":
        ret = book.open_return(order, {"products": [{"id": first["id"], "quantity": 1}],
                                       "reason": "Te klein", "status": "received"}, when)
        book.credit(order, {"return": ret["id"]}, when)
    elif plan == "full":
        book.credit(order, {"products": [{"id": r["id"], "quantity": r["quantityOrdered"]}
                                          for r in order["_rows"]],
                            "shipment": bool(order["shipmentPriceIncl"]),
                            "payment": bool(order["paymentPriceIncl"])}, when)
    else:
        biggest = max(order["_rows"], key=lambda r: (r["quantityOrdered"], -r["id"]))
        second = biggest if biggest["quantityOrdered"] >= 2 else next(
            r for r in order["_rows"] if r is not biggest)
        book.credit(order, {"products": [{"id": biggest["id"], "quantity": 1}]}, when)
        book.credit(order, {"products": [{"id": second["id"], "quantity": 1}]},
                    min(store.anchor, when + timedelta(hours=2)))
    order["updatedAt"] = max(updated, order["updatedAt"])
