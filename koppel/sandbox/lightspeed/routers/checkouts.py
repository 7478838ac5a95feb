"""``checkouts`` and their products, methods, validation and order placement."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Request, Response

from ..checkout import payment_methods, shipment_methods
from ..serialize import render
from .common import ListQuery, context, list_query, state, unwrap
from .orders import render_order

router = APIRouter(prefix="/{lang}", tags=["checkouts"])


def _render(request: Request, record: dict[str, Any]) -> dict[str, Any]:
    st = state(request)
    out = render(record, context(request))
    out["quote"] = render(st.checkouts.quote(record), context(request))
    return out


@router.get("/checkouts.json")
def list_checkouts(lang: str, request: Request, q: ListQuery = Depends(list_query)):
    st = state(request)
    with st.store.lock:
        found = q.page_of(q.select(st.store.checkouts.values()))
        return {"checkouts": [_render(request, r) for r in found]}


@router.get("/checkouts/count.json")
def count_checkouts(lang: str, request: Request, q: ListQuery = Depends(list_query)):
    st = state(request)
    with st.store.lock:
        return {"count": len(q.select(st.store.checkouts.values()))}


@router.post("/checkouts.json", status_code=201)
def create_checkout(lang: str, request: Request, body: Any = Body(...)):
    st = state(request)
    with st.store.lock:
        return {"checkout": _render(request, st.checkouts.create(unwrap(body, "checkout")))}


@router.get("/checkouts/{checkout_id:int}.json")
def get_checkout(lang: str, checkout_id: int, request: Request):
    st = state(request)
    with st.store.lock:
        return {"checkout": _render(request, st.checkouts.get(checkout_id))}


@router.put("/checkouts/{checkout_id:int}.json")
def update_checkout(lang: str, checkout_id: int, request: Request, body: Any = Body(...)):
    st = state(request)
    with st.store.lock:
        record = st.checkouts.update(checkout_id, unwrap(body, "checkout"))
        return {"checkout": _render(request, record)}


@router.delete("/checkouts/{checkout_id:int}.json", status_code=204)
def delete_checkout(lang: str, checkout_id: int, request: Request):
    st = state(request)
    with st.store.lock:
        st.checkouts.delete(checkout_id)
    return Response(status_code=204)


@router.post("/checkouts/{checkout_id:int}/products.json", status_code=201)
def add_checkout_product(lang: str, checkout_id: int, request: Request,
                         body: Any = Body(...)):
    st = state(request)
    with st.store.lock:
        line = st.checkouts.add_product(checkout_id, unwrap(body, "product"))
        return {"product": render(line, context(request))}


@router.get("/checkouts/{checkout_id:int}/products.json")
def list_checkout_products(lang: str, checkout_id: int, request: Request):
    st = state(request)
    with st.store.lock:
        record = st.checkouts.get(checkout_id)
        return {"products": render(record["products"], context(request))}


@router.get("/checkouts/{checkout_id:int}/payment_methods.json")
def checkout_payment_methods(lang: str, checkout_id: int, request: Request):
    st = state(request)
    with st.store.lock:
        quotes = st.checkouts.payment_quotes(st.checkouts.get(checkout_id))
    return {"payment_methods": payment_methods(quotes)}


@router.get("/checkouts/{checkout_id:int}/shipment_methods.json")
def checkout_shipment_methods(lang: str, checkout_id: int, request: Request):
    st = state(request)
    with st.store.lock:
        quotes = st.checkouts.shipment_quotes(st.checkouts.get(checkout_id))
    return {"shipment_methods": shipment_methods(quotes)}


@router.get("/checkouts/{checkout_id:int}/validate.json")
def validate_checkout(lang: str, checkout_id: int, request: Request):
    st = state(request)
    with st.store.lock:
        errors = st.checkouts.validate(checkout_id)
    return {"validated": not errors, "errors": errors}


@router.post("/checkouts/{checkout_id:int}/order.json", status_code=201)
def place_order(lang: str, checkout_id: int, request: Request):
    st = state(request)
    with st.store.lock:
        order = st.checkouts.place_order(checkout_id)
        return {"order": render_order(st.store, order, request)}
