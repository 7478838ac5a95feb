"""``shipments`` (and ``orders/{id}/shipments``), ``taxes`` and ``webhooks``.

Shapes follow the official PHP client (SEOshop/API-PHP-Client: ``ApiResourceShipments``
get/count/update, ``ApiResourceTaxes`` and ``ApiResourceWebhooks`` with full CRUD) and
the field lists of public clients; what they leave open is the sandbox's choice:

* a (partially) shipped order has one shipment (``status: "shipped"``, a PostNL-like
  ``trackingCode``, ``order``/``customer`` references, ``products`` →
  ``shipments/{id}/products.json`` with key ``shipmentProducts``); ``?order=`` filters;
* ``taxes``: the shop's VAT rates ``{id, isDefault, rate, title}`` (read only here);
* ``webhooks``: ``{id, createdAt, updatedAt, isActive, itemGroup, itemAction, language,
  format, address}``; at most 10 per shop (the 11th answers 422). Webhooks are stored,
  never delivered (Lightspeed documents no payload or signature).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Request, Response

from ..errors import not_found
from .common import ListQuery, list_query, many, one, state, unwrap

router = APIRouter(prefix="/{lang}", tags=["shipments, taxes, webhooks"])


# -- shipments -------------------------------------------------------------------------
def _shipments(store, q: ListQuery, order: int | None) -> list[dict[str, Any]]:
    if order is not None and order not in store.orders:
        return []
    return q.select(store.shipments(order))


@router.get("/shipments.json")
def list_shipments(lang: str, request: Request, q: ListQuery = Depends(list_query),
                   order: int | None = None):
    store = state(request).store
    with store.lock:
        return many("shipments", q.page_of(_shipments(store, q, order)), request, q.fields)


@router.get("/shipments/count.json")
def count_shipments(lang: str, request: Request, q: ListQuery = Depends(list_query),
                    order: int | None = None):
    store = state(request).store
    with store.lock:
        return {"count": len(_shipments(store, q, order))}


@router.get("/shipments/{shipment_id:int}.json")
def get_shipment(lang: str, shipment_id: int, request: Request, fields: str | None = None):
    store = state(request).store
    with store.lock:
        return one("shipment", store.shipment(shipment_id), request, fields)


@router.get("/shipments/{shipment_id:int}/products.json")
def list_shipment_products(lang: str, shipment_id: int, request: Request):
    store = state(request).store
    with store.lock:
        shipment = store.shipment(shipment_id)
        return many("shipmentProducts", store.shipment_products(shipment), request)


@router.get("/orders/{order_id:int}/shipments.json")
def list_order_shipments(lang: str, order_id: int, request: Request,
                         q: ListQuery = Depends(list_query)):
    store = state(request).store
    with store.lock:
        return many("shipments", q.page_of(q.select(store.shipments(order_id))), request,
                    q.fields)


# -- taxes -----------------------------------------------------------------------------
@router.get("/taxes.json")
def list_taxes(lang: str, request: Request, q: ListQuery = Depends(list_query)):
    store = state(request).store
    with store.lock:
        return many("taxes", q.page_of(q.select(store.taxes.values())), request, q.fields)


@router.get("/taxes/count.json")
def count_taxes(lang: str, request: Request, q: ListQuery = Depends(list_query)):
    store = state(request).store
    with store.lock:
        return {"count": len(q.select(store.taxes.values()))}


@router.get("/taxes/{tax_id:int}.json")
def get_tax(lang: str, tax_id: int, request: Request):
    store = state(request).store
    with store.lock:
        record = store.taxes.get(tax_id)
        if record is None:
            raise not_found()
        return one("tax", record, request)


# -- webhooks --------------------------------------------------------------------------
@router.get("/webhooks.json")
def list_webhooks(lang: str, request: Request, q: ListQuery = Depends(list_query)):
    store = state(request).store
    with store.lock:
        return many("webhooks", q.page_of(q.select(store.webhooks.values())), request,
                    q.fields)


@router.get("/webhooks/count.json")
def count_webhooks(lang: str, request: Request, q: ListQuery = Depends(list_query)):
    store = state(request).store
    with store.lock:
        return {"count": len(q.select(store.webhooks.values()))}


@router.post("/webhooks.json", status_code=201)
def create_webhook(lang: str, request: Request, body: Any = Body(...)):
    store = state(request).store
    return one("webhook", store.create_webhook(unwrap(body, "webhook"), lang), request)


@router.get("/webhooks/{webhook_id:int}.json")
def get_webhook(lang: str, webhook_id: int, request: Request):
    store = state(request).store
    with store.lock:
        return one("webhook", store.get(store.webhooks, webhook_id), request)


@router.put("/webhooks/{webhook_id:int}.json")
def update_webhook(lang: str, webhook_id: int, request: Request, body: Any = Body(...)):
    store = state(request).store
    return one("webhook", store.update_webhook(webhook_id, unwrap(body, "webhook")), request)


@router.delete("/webhooks/{webhook_id:int}.json", status_code=204)
def delete_webhook(lang: str, webhook_id: int, request: Request):
    state(request).store.delete_webhook(webhook_id)
    return Response(status_code=204)
