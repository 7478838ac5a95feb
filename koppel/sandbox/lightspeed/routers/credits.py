"""``orders/{id}/credit`` (credits, i.e. refunds) and ``returns``; shapes and choices are
documented in :mod:`koppel.sandbox.lightspeed.credits`. The control plane opens returns
(customers do that in the shop front, which the API cannot)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Request, Response

from ..serialize import pick_fields, render
from .common import ListQuery, context, list_query, many, one, state, unwrap

router = APIRouter(prefix="/{lang}", tags=["credits and returns"])
control_router = APIRouter(prefix="/_sandbox", tags=["sandbox control"])


def _restock(store, order: dict[str, Any], credit: dict[str, Any]) -> None:
    """A credit with ``restock`` puts the credited units back on stock (tracked variants)."""
    rows = {row["id"]: row for row in order["_rows"]}
    for line in credit["products"]:
        row = rows[line["orderProduct"].id]
        variant = store.variants.get(row["variant"].id) if row["variant"] else None
        if variant is not None and variant["stockTracking"] != "disabled":
            store.update_variant(variant["id"], {"stockLevel": variant["stockLevel"]
                                                 + line["quantity"]}, channel="credit")


def credit_order(store, order_id: int, data: dict[str, Any]) -> dict[str, Any]:
    with store.lock:
        order = store.get(store.orders, order_id)
        credit = store.credit_book.credit(order, data, store.clock.now())
        if credit["restock"]:
            _restock(store, order, credit)
        return credit


# -- credits ----------------------------------------------------------------------------
@router.post("/orders/{order_id:int}/credit.json", status_code=201)
def create_credit(lang: str, order_id: int, request: Request, body: Any = Body(...)):
    store = state(request).store
    return one("credit", credit_order(store, order_id, unwrap(body, "credit")), request)


@router.get("/orders/{order_id:int}/credit.json")
def list_credits(lang: str, order_id: int, request: Request):
    store = state(request).store
    with store.lock:
        store.get(store.orders, order_id)
        return many("credits", store.credit_book.of_order(order_id), request)


# -- returns ----------------------------------------------------------------------------
def _documented_return_fields(record: dict[str, Any]) -> dict[str, Any]:
    """The return fields public clients read from live shops (hotgluexyz/tap-lightspeed
    ``ReturnsStream``: ``orderId``, ``customerId``, ``numProducts``, ``returnReason``,
    ``customerComment``, ``orderProducts [{id, quantity}]``), derived from the sandbox's
    own return. Which value each carries is **assumed**: ``numProducts`` counts units,
    ``returnReason``/``customerComment`` repeat ``reason``/``comment``."""
    customer = record.get("customer")
    lines = [{"id": line["orderProduct"].id, "quantity": int(line["quantity"])}
             for line in record["products"]]
    return {"orderId": record["order"].id,
            "customerId": customer.id if customer else False,
            "numProducts": sum(line["quantity"] for line in lines),
            "returnReason": record.get("reason", ""),
            "customerComment": record.get("comment", ""),
            "orderProducts": lines}


def _render_return(record: dict[str, Any], request: Request,
                   fields: str | None = None) -> dict[str, Any]:
    return pick_fields({**render(record, context(request)),
                        **_documented_return_fields(record)}, fields)


def _select_returns(store, q: ListQuery, order: int | None, status: str | None):
    def wanted(record: dict[str, Any]) -> bool:
        return ((order is None or record["order"].id == order)
                and (status is None or record["status"] == status))

    return q.select(store.credit_book.returns.values(), wanted)


@router.get("/returns.json")
def list_returns(lang: str, request: Request, q: ListQuery = Depends(list_query),
                 order: int | None = None, status: str | None = None):
    store = state(request).store
    with store.lock:
        return {"returns": [_render_return(r, request, q.fields)
                            for r in q.page_of(_select_returns(store, q, order, status))]}


@router.get("/returns/count.json")
def count_returns(lang: str, request: Request, q: ListQuery = Depends(list_query),
                  order: int | None = None, status: str | None = None):
    store = state(request).store
    with store.lock:
        return {"count": len(_select_returns(store, q, order, status))}


@router.get("/returns/{return_id:int}.json")
def get_return(lang: str, return_id: int, request: Request, fields: str | None = None):
    store = state(request).store
    with store.lock:
        return {"return": _render_return(store.credit_book.get_return(return_id), request,
                                         fields)}


@router.put("/returns/{return_id:int}.json")
def update_return(lang: str, return_id: int, request: Request, body: Any = Body(...)):
    store = state(request).store
    with store.lock:
        record = store.credit_book.get_return(return_id)
        order = store.get(store.orders, record["order"].id)
        store.credit_book.update_return(order, record, unwrap(body, "return"), store.clock.now())
        return {"return": _render_return(record, request)}


@router.delete("/returns/{return_id:int}.json", status_code=204)
def delete_return(lang: str, return_id: int, request: Request):
    store = state(request).store
    with store.lock:
        store.credit_book.delete_return(return_id)
    return Response(status_code=204)


# -- control plane ----------------------------------------------------------------------
@control_router.post("/orders/{order_id}/returns", status_code=201)
def open_return(order_id: int, request: Request, body: dict[str, Any]) -> dict[str, Any]:
    """A customer's return: ``{"products": [{"id": row, "quantity": n}], "reason",
    "comment", "status": "requested"|"received"}``."""
    store = state(request).store
    with store.lock:
        order = store.get(store.orders, order_id)
        record = store.credit_book.open_return(order, body, store.clock.now())
        return {"return": _render_return(record, request)}
