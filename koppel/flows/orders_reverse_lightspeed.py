"""The Lightspeed side of the reverse orders flow: SKUs to variants, customers by e-mail,
and orders placed through checkouts, exactly once.

Exactly once without idempotency keys (Lightspeed has none): the checkout is recorded as
a cross-reference (``target_type "checkout"``, state ``pending``) before its order is
placed, and the order's cross-reference is saved the moment Lightspeed answers. A run
that dies in between finds the pending checkout next time and asks Lightspeed whether it
became an order (:func:`resume_checkout`), so a document never yields two orders.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Iterable, Mapping

from koppel.flows.base import RecordError, RecordState


class ReverseOrderState(RecordState):
    """What a QuickBooks document carries between the reverse flow's steps."""

    order: dict                   # the order to place, mapped from the document (enrich)
    hash: str                     # its content hash
    action: str | None = None     # create, adopt, pay or cancel (exists-check)
    order_id: int | None = None   # the Lightspeed order, once placed or found
    adopt_rows: bool = False      # a placed order whose rows are still to be checked
    rows: list | None = None      # checkout rows: variant ids per document line
    customer_action: str = "existing"  # created, existing or new (customer upsert)
    customer_id: int | None = None

log = logging.getLogger(__name__)

CHECKOUT = "checkout"
ORDER = "order"


def _doc_id(record) -> str:
    """Cross-references carry the bare QuickBooks document id (the forward flow's contract)."""
    return str(record.data["doc"]["Id"])


def variants_by_sku(hook) -> dict[str, list[dict[str, Any]]]:
    """Every variant of the shop by SKU (``variants.json`` lists them in bulk, 250 a page)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for variant in hook.iter_variants():
        sku = (variant.sku or "").strip()
        if sku:
            found.setdefault(sku, []).append({"id": int(variant.id), "sku": sku})
    return found


def resolve_lines(lines: list[dict[str, Any]], by_sku: Mapping[str, list[dict[str, Any]]], *,
                  policy: str, fallback_sku: str | None) -> list[dict[str, int]]:
    """``[{variant_id, quantity}]`` for the checkout. Unknown SKUs follow the tenant's
    policy: ``fallback_item`` books the row on the fallback SKU's variant; ``fail`` and
    ``create_item`` (koppel does not create Lightspeed products from a document) fail the
    record; a SKU on several variants is reported, never guessed."""
    fallback = by_sku.get(fallback_sku or "", []) if policy == "fallback_item" else []
    rows = []
    for line in lines:
        field_name = f"Line[{line['index']}].ItemRef"
        matches = by_sku.get(line["sku"], []) if line["sku"] else []
        if len(matches) > 1:
            ids = ", ".join(str(m["id"]) for m in matches)
            raise RecordError(f"SKU {line['sku']!r} matches {len(matches)} Lightspeed variants "
                              f"(ids {ids})", field=field_name)
        if not matches and len(fallback) == 1:
            matches = fallback
        if not matches:
            what = f"unknown SKU {line['sku']!r}" if line["sku"] else \
                f"QuickBooks item {line['item_id']} has no SKU"
            raise RecordError(f"{what}: no Lightspeed variant (unknown-SKU policy: {policy})",
                              field=field_name)
        rows.append({"variant_id": matches[0]["id"], "sku": matches[0]["sku"],
                     "quantity": int(line["quantity"])})
    return rows


def find_customers(hook, emails: Iterable[str]) -> dict[str, int]:
    """Lightspeed customer id per e-mail (case-insensitive), one filtered call each."""
    found: dict[str, int] = {}
    for email in sorted({e.strip().casefold() for e in emails if e}):
        for customer in hook.iter_customers(email=email):
            if str(customer.email or "").strip().casefold() == email:
                found.setdefault(email, int(customer.id))
                break
    return found


class OrderMismatch(Exception):
    """Lightspeed would charge (``placed=False``: the checkout's quote) or charged
    (``placed=True``: the placed order) other money than the QuickBooks document."""

    def __init__(self, problems: list[str], document, lightspeed, *, placed: bool,
                 order_id: int | None = None) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems
        self.document = document
        self.lightspeed = lightspeed
        self.placed = placed
        self.order_id = order_id


def method_list(answer: Any) -> list[dict[str, Any]]:
    """The methods of a ``payment_methods``/``shipment_methods`` answer (a bare array,
    or wrapped in an object)."""
    candidates: Any = answer
    if isinstance(answer, dict):
        candidates = next((v for v in answer.values() if isinstance(v, (list, dict))), [])
    if isinstance(candidates, dict):
        candidates = list(candidates.values())
    return [c if isinstance(c, dict) else {"id": c} for c in candidates or []]


def method_price(method: Mapping[str, Any], basis: str) -> Decimal | None:
    """What a method adds to this checkout, in the document's tax basis (``price_incl``
    / ``price_excl``; ``None`` when the shop does not say)."""
    from koppel.domain.money import cents

    value = method.get(f"price_{basis}", method.get(f"price{basis.capitalize()}"))
    return None if value is None else cents(value)


@dataclass
class Methods:
    """Shipment and payment method for a document's checkout. A method the tenant names
    is used as it is (the order is then checked like any other); otherwise the first
    method the shop offers *for this checkout* whose price is the document's shipping
    (resp. payment fee) — the checkout's ``shipment_methods.json`` and
    ``payment_methods.json`` list each method with what it adds."""

    shipment: str | None = None
    payment: str | None = None
    payment_map: dict[str, str] = field(default_factory=dict)

    def named_payment(self, qbo_method: str) -> str | None:
        return self.payment_map.get(qbo_method) or self.payment

    def choose(self, hook, checkout_id: int, *, named: str | None, kind: str,
               amount: Decimal, basis: str) -> str:
        """The method id; raises :class:`RecordError` when no method adds ``amount``."""
        if named:
            return named
        read = hook.checkout_shipment_methods if kind == "shipment" \
            else hook.checkout_payment_methods
        offered = method_list(read(checkout_id))
        for method in offered:
            if method_price(method, basis) == amount:
                return str(method["id"])
        prices = ", ".join(f"{m.get('id')} {method_price(m, basis)}" for m in offered)
        what = "shipping" if kind == "shipment" else "payment fee"
        raise OrderMismatch([f"{what}: no {kind} method of the shop adds {amount} "
                             f"(offered: {prices or 'none'})"], None, None, placed=False)


def checkout_figures(checkout: Mapping[str, Any], basis: str):
    """What Lightspeed would charge for a checkout (``GET checkouts/{id}.json``: its
    ``products`` and ``quote``), or ``None`` when the answer carries no quote to check
    (the placed order is then the only check)."""
    from koppel.domain.money import cents
    from koppel.domain.verify import OrderFigures, lightspeed_vat

    quote = checkout.get("quote")
    if not isinstance(quote, Mapping) or quote.get("price_incl") is None:
        return None
    rows = []
    for line in checkout.get("products") or []:
        unit = line.get(f"price_{basis}")
        if unit is None:
            return None
        quantity = int(line.get("quantity") or 0)
        rows.append((str(line.get("sku") or ""), quantity, cents(Decimal(str(unit)) * quantity)))
    discount = quote.get(f"discount_price_{basis}") or 0
    return OrderFigures(
        basis=basis, rows=tuple(rows), shipping=cents(quote.get(f"shipment_price_{basis}") or 0),
        fees=cents(quote.get(f"payment_price_{basis}") or 0), discount=abs(cents(discount)),
        total=cents(quote["price_incl"]), vat=lightspeed_vat(quote.get("tax_rates")))


def placed_figures(hook, order_id: int, basis: str):
    """What the placed order charges: the order and its rows as Lightspeed returns them."""
    from koppel.domain.verify import lightspeed_order_figures

    order = hook.get_order(int(order_id), with_rows=True)
    raw = order._raw if getattr(order, "_raw", None) is not None else order.to_api()
    rows = [row.to_api() for row in order.rows or []]
    return lightspeed_order_figures(raw, rows, basis)


def verify_placed(hook, order_id: int, expected) -> None:
    """Raises :class:`OrderMismatch` (``placed=True``) when the order Lightspeed placed
    charges other money than the document."""
    from koppel.domain.verify import order_differences

    got = placed_figures(hook, order_id, expected.basis)
    problems = order_differences(expected, got)
    if problems:
        raise OrderMismatch(problems, expected, got, placed=True, order_id=int(order_id))


def resume_checkout(hook, checkout_id: int) -> int | None:
    """The order a pending checkout became, or ``None`` (a stale checkout is deleted so
    the shop keeps no abandoned carts of koppel's)."""
    from koppel.hooks.errors import LightspeedNotFound

    try:
        checkout = hook.request("GET", "checkouts/{checkout_id}.json", record_id=checkout_id,
                                checkout_id=checkout_id)["checkout"]
    except LightspeedNotFound:
        return None
    order_id = checkout.get("order_id") or checkout.get("orderId")
    if order_id not in (None, False, "", 0):
        return int(order_id)
    try:
        hook.request("DELETE", "checkouts/{checkout_id}.json", record_id=checkout_id,
                     checkout_id=checkout_id)
    except LightspeedNotFound:
        pass
    return None


def _add_rows(hook, checkout_id: int, rows: list[dict[str, int]]) -> bool:
    """Add the rows; whether the checkout holds exactly them. Lightspeed has no idempotency
    keys, so a row whose answer was lost and that the hook sent again may be there twice:
    only then (more calls than rows) is the checkout read back and compared."""
    from collections import Counter

    key = "POST checkouts/{checkout_id}/products.json"
    before = hook.calls[key]
    for row in rows:
        hook.add_checkout_product(checkout_id, row["variant_id"], row["quantity"])
    if hook.calls[key] - before <= len(rows):
        return True
    listed = hook.request("GET", "checkouts/{checkout_id}/products.json", record_id=checkout_id,
                          checkout_id=checkout_id)
    have: Counter[int] = Counter()
    for line in (listed or {}).get("products") or []:
        have[int(line["variant_id"])] += int(line["quantity"])
    want: Counter[int] = Counter()
    for row in rows:
        want[int(row["variant_id"])] += int(row["quantity"])
    return have == want


def _delete_checkout(hook, checkout_id: int) -> None:
    from koppel.hooks.errors import LightspeedNotFound

    try:
        hook.request("DELETE", "checkouts/{checkout_id}.json", record_id=checkout_id,
                     checkout_id=checkout_id)
    except LightspeedNotFound:
        pass


def place_order(run, record, payload: dict[str, Any], rows: list[dict[str, Any]],
                methods: Methods, payment_name: str, expected) -> int:
    """Checkout → rows → the methods that charge the document's shipping and fees → the
    quote checked against the document → order; returns the Lightspeed order id. The
    pending checkout and the order are cross-referenced as soon as each exists. A quote
    that differs from the document (``expected``: its
    :class:`~koppel.domain.verify.OrderFigures`) deletes the checkout and raises
    :class:`OrderMismatch`: no order is placed."""
    from koppel.domain.verify import order_differences
    from koppel.hooks.errors import LightspeedError
    from koppel.hooks.lightspeed import _placed_order_id

    hook, store, tenant = run.lightspeed, run.store, run.tenant_id
    named = {"shipment_method": methods.shipment,
             "payment_method": methods.named_payment(payment_name)}
    body = {**payload, **{k: {"id": v} for k, v in named.items() if v}}
    for attempt in (1, 2):
        checkout_id = int(hook.create_checkout(body).id)
        store.save_xref(tenant, record.source_type, _doc_id(record), CHECKOUT, str(checkout_id),
                        ReverseOrderState(record).hash, state="pending")
        if _add_rows(hook, checkout_id, rows):
            break
        # a row is in the checkout twice (its answer was lost and the hook sent it
        # again): this cart is discarded, never placed
        _delete_checkout(hook, checkout_id)
        if attempt == 2:
            raise RecordError("the checkout's rows differ from the document's after a lost "
                              "answer from Lightspeed (twice); the document is retried next "
                              "run", field="Line")
    try:
        if not named["shipment_method"]:
            chosen = methods.choose(hook, checkout_id, named=None, kind="shipment",
                                    amount=expected.shipping, basis=expected.basis)
            hook.update_checkout(checkout_id, {"shipment_method": {"id": chosen}})
        if not named["payment_method"]:
            chosen = methods.choose(hook, checkout_id, named=None, kind="payment",
                                    amount=expected.fees, basis=expected.basis)
            hook.update_checkout(checkout_id, {"payment_method": {"id": chosen}})
        checkout = hook.request("GET", "checkouts/{checkout_id}.json", record_id=checkout_id,
                                checkout_id=checkout_id)
        quoted = checkout_figures((checkout or {}).get("checkout") or {}, expected.basis)
        problems = order_differences(expected, quoted) if quoted is not None else []
        if problems:
            raise OrderMismatch(problems, expected, quoted, placed=False)
    except OrderMismatch as exc:
        _delete_checkout(hook, checkout_id)
        store.save_xref(tenant, record.source_type, _doc_id(record), CHECKOUT, str(checkout_id),
                        ReverseOrderState(record).hash, state="deleted")
        if exc.document is None:
            exc.document = expected
        raise
    placed = hook.place_checkout_order(checkout_id)
    order_id = _placed_order_id(placed)
    if order_id is None:
        raise LightspeedError("checkout answer names no order", method="POST",
                              path=f"checkouts/{checkout_id}/order.json", record_id=checkout_id)
    store.save_xref(tenant, record.source_type, _doc_id(record), ORDER, str(order_id),
                    ReverseOrderState(record).hash, state="placed")
    store.save_xref(tenant, record.source_type, _doc_id(record), CHECKOUT, str(checkout_id),
                    ReverseOrderState(record).hash, state="ordered")
    return order_id


def finish_order(run, record, order_id: int, *, metafield_key: str, metafield_value: str,
                 payment_status: str, fresh: bool) -> None:
    """The cross-reference on the order (a metafield) and the payment status that follows
    the QuickBooks document; records the order's state in the cross-reference."""
    hook = run.lightspeed
    if fresh:
        hook.create_order_metafield(order_id, metafield_key, metafield_value)
    else:
        hook.set_order_metafield(order_id, metafield_key, metafield_value)
    if payment_status in ("paid", "partially_paid"):
        hook.update_order_status(order_id, payment_status=payment_status)
    run.store.save_xref(run.tenant_id, record.source_type, _doc_id(record), ORDER,
                        str(order_id), ReverseOrderState(record).hash, state=payment_status)
