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
from typing import Any, Iterable, Mapping

from koppel.flows.base import RecordError

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
        rows.append({"variant_id": matches[0]["id"], "quantity": int(line["quantity"])})
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


@dataclass
class Methods:
    """Shipment and payment method ids for the checkouts of one chunk: the tenant's
    choice, else the first the shop offers (read once per chunk)."""

    shipment: str | None = None
    payment: str | None = None
    payment_map: dict[str, str] = field(default_factory=dict)
    _offered: dict[str, str] = field(default_factory=dict)

    def payment_for(self, qbo_method: str) -> str | None:
        return self.payment_map.get(qbo_method) or self.payment or self._offered.get("payment")

    def shipment_id(self) -> str | None:
        return self.shipment or self._offered.get("shipment")

    def complete(self, hook, checkout_id: int) -> None:
        """Read the methods the shop offers for a checkout (only when the tenant did not
        name them): two calls, once per chunk."""
        from koppel.hooks.lightspeed import _first_method

        if not self.payment and "payment" not in self._offered:
            self._offered["payment"] = str(_first_method(
                hook.checkout_payment_methods(checkout_id))["id"])
        if not self.shipment and "shipment" not in self._offered:
            self._offered["shipment"] = str(_first_method(
                hook.checkout_shipment_methods(checkout_id))["id"])


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


def place_order(run, record, payload: dict[str, Any], rows: list[dict[str, int]],
                methods: Methods, payment_name: str) -> int:
    """Checkout → rows → methods → order; returns the Lightspeed order id. The pending
    checkout and the order are cross-referenced as soon as each exists."""
    from koppel.hooks.lightspeed import _placed_order_id
    from koppel.hooks.errors import LightspeedError

    hook, store, tenant = run.lightspeed, run.store, run.tenant_id
    chosen = {"shipment_method": methods.shipment_id(),
              "payment_method": methods.payment_for(payment_name)}
    body = {**payload, **{k: {"id": v} for k, v in chosen.items() if v}}
    for attempt in (1, 2):
        checkout_id = int(hook.create_checkout(body).id)
        store.save_xref(tenant, record.source_type, _doc_id(record), CHECKOUT, str(checkout_id),
                        record.state["hash"], state="pending")
        if _add_rows(hook, checkout_id, rows):
            break
        # a row is in the checkout twice (its answer was lost and the hook sent it
        # again): this cart is discarded, never placed
        hook.request("DELETE", "checkouts/{checkout_id}.json", record_id=checkout_id,
                     checkout_id=checkout_id)
        if attempt == 2:
            raise RecordError("the checkout's rows differ from the document's after a lost "
                              "answer from Lightspeed (twice); the document is retried next "
                              "run", field="Line")
    if not all(chosen.values()):
        methods.complete(hook, checkout_id)
        hook.update_checkout(checkout_id, {
            "shipment_method": {"id": methods.shipment_id()},
            "payment_method": {"id": methods.payment_for(payment_name)}})
    placed = hook.place_checkout_order(checkout_id)
    order_id = _placed_order_id(placed)
    if order_id is None:
        raise LightspeedError("checkout answer names no order", method="POST",
                              path=f"checkouts/{checkout_id}/order.json", record_id=checkout_id)
    store.save_xref(tenant, record.source_type, _doc_id(record), ORDER, str(order_id),
                    record.state["hash"], state="placed")
    store.save_xref(tenant, record.source_type, _doc_id(record), CHECKOUT, str(checkout_id),
                    record.state["hash"], state="ordered")
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
                        str(order_id), record.state["hash"], state=payment_status)
