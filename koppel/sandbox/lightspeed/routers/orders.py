"""``orders``, ``orders/{id}/products`` (order rows), ``orders/{id}/metafields``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Request, Response

from ..errors import not_found
from ..serialize import Ref, pick_fields, reference, render
from .common import ListQuery, context, list_query, many, one, state, unwrap

router = APIRouter(prefix="/{lang}", tags=["orders"])


def _select_orders(store, q: ListQuery, number: str | None,
                   customer: int | None) -> list[dict[str, Any]]:
    """Filters that stubs can answer run first; the rest build the remaining orders.

    ``customer`` (with ``page``/``limit``) is the filter Lightspeed documents for the order
    list (Falkplan/lightspeedecom-api ``LightspeedEComClient.getOrders``: "filters as
    'customer', 'page' or 'limit'", citing developers.seoshop.com/api/resources/order).
    ``number`` is **assumed** (no stored source names it; koppel's orders flow looks orders
    up by number). There is no ``status`` filter: none of the stored Lightspeed sources
    documents one, so ``?status=`` is an unknown parameter and, like any other, ignored."""
    headers = q.select(store.orders.headers(),
                       (lambda r: r["number"] == number) if number else None)
    if customer is None:
        return headers
    return [o for o in store.orders.full(headers)
            if o["customer"] and o["customer"].id == customer]


@router.get("/orders.json")
def list_orders(lang: str, request: Request, q: ListQuery = Depends(list_query),
                number: str | None = None, customer: int | None = None):
    store = state(request).store
    with store.lock:
        page = q.page_of(_select_orders(store, q, number, customer))
        return many("orders", store.orders.full(page), request, q.fields)


@router.get("/orders/count.json")
def count_orders(lang: str, request: Request, q: ListQuery = Depends(list_query),
                 number: str | None = None, customer: int | None = None):
    store = state(request).store
    with store.lock:
        return {"count": len(_select_orders(store, q, number, customer))}


def render_order(store, order: dict[str, Any], request: Request) -> dict[str, Any]:
    """A single order embeds its customer and its rows (lists do not)."""
    ctx = context(request)
    out = render(order, ctx)
    out["products"] = reference(Ref(f"orders/{order['id']}/products"), ctx,
                                embedded=[render(r, ctx) for r in order["_rows"]])
    if order["customer"]:
        customer = store.customers.get(order["customer"].id)
        if customer is not None:
            out["customer"] = reference(order["customer"], ctx, embedded=render(customer, ctx))
    return out


@router.get("/orders/{order_id:int}.json")
def get_order(lang: str, order_id: int, request: Request, fields: str | None = None):
    store = state(request).store
    with store.lock:
        order = store.get(store.orders, order_id)
        return {"order": pick_fields(render_order(store, order, request), fields)}


@router.put("/orders/{order_id:int}.json")
def update_order(lang: str, order_id: int, request: Request, body: Any = Body(...)):
    store = state(request).store
    with store.lock:
        order = store.change_order(order_id, unwrap(body, "order"), api=True)
        return {"order": render_order(store, order, request)}


# -- order rows ------------------------------------------------------------------------
def _rows(store, order_id: int) -> list[dict[str, Any]]:
    return store.get(store.orders, order_id)["_rows"]


@router.get("/orders/{order_id:int}/products.json")
def list_order_rows(lang: str, order_id: int, request: Request,
                    q: ListQuery = Depends(list_query)):
    store = state(request).store
    with store.lock:
        return many("orderProducts", q.page_of(q.select(_rows(store, order_id))), request,
                    q.fields)


@router.get("/orders/{order_id:int}/products/count.json")
def count_order_rows(lang: str, order_id: int, request: Request):
    store = state(request).store
    with store.lock:
        return {"count": len(_rows(store, order_id))}


@router.get("/orders/{order_id:int}/products/{row_id:int}.json")
def get_order_row(lang: str, order_id: int, row_id: int, request: Request):
    store = state(request).store
    with store.lock:
        for row in _rows(store, order_id):
            if row["id"] == row_id:
                return one("orderProduct", row, request)
    raise not_found()


# -- metafields ------------------------------------------------------------------------
def _metafields(store, order_id: int) -> list[dict[str, Any]]:
    store.get(store.orders, order_id)
    return [m for m in store.metafields.values() if m["_order_id"] == order_id]


@router.get("/orders/{order_id:int}/metafields.json")
def list_metafields(lang: str, order_id: int, request: Request,
                    q: ListQuery = Depends(list_query)):
    """No ``?key=`` filter: no stored source documents one (SEOshop/API-PHP-Client
    ``ApiResourceOrdersMetafields::get($orderId, $metafieldId, $params)`` takes free-form
    ``$params`` and names none); koppel finds its key by reading the list."""
    store = state(request).store
    with store.lock:
        found = q.select(_metafields(store, order_id))
        return many("orderMetafields", q.page_of(found), request, q.fields)


@router.get("/orders/{order_id:int}/metafields/count.json")
def count_metafields(lang: str, order_id: int, request: Request):
    store = state(request).store
    with store.lock:
        return {"count": len(_metafields(store, order_id))}


@router.post("/orders/{order_id:int}/metafields.json", status_code=201)
def create_metafield(lang: str, order_id: int, request: Request, body: Any = Body(...)):
    store = state(request).store
    with store.lock:
        record = store.create_metafield(order_id, unwrap(body, "orderMetafield"))
        return one("orderMetafield", record, request)


@router.get("/orders/{order_id:int}/metafields/{metafield_id:int}.json")
def get_metafield(lang: str, order_id: int, metafield_id: int, request: Request):
    store = state(request).store
    with store.lock:
        return one("orderMetafield", store.order_metafield(order_id, metafield_id), request)


@router.put("/orders/{order_id:int}/metafields/{metafield_id:int}.json")
def update_metafield(lang: str, order_id: int, metafield_id: int, request: Request,
                     body: Any = Body(...)):
    store = state(request).store
    with store.lock:
        record = store.update_metafield(order_id, metafield_id,
                                        unwrap(body, "orderMetafield"))
        return one("orderMetafield", record, request)


@router.delete("/orders/{order_id:int}/metafields/{metafield_id:int}.json",
               status_code=204)
def delete_metafield(lang: str, order_id: int, metafield_id: int, request: Request):
    store = state(request).store
    store.delete_metafield(order_id, metafield_id)
    return Response(status_code=204)
