"""``customers``: list, count, get, create, update (422 per-field errors), delete.

``DELETE customers/{id}.json`` as the official PHP client calls it
(SEOshop/API-PHP-Client ``ApiResourceCustomers::delete`` → ``ApiClient::delete``, which
accepts any 2xx and an empty body); the 204 with no body is assumed."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Request, Response

from .common import ListQuery, list_query, many, one, state, unwrap

router = APIRouter(prefix="/{lang}", tags=["customers"])


def _select(store, q: ListQuery, email: str | None) -> list[dict[str, Any]]:
    wanted = email.lower() if email else None
    return q.select(store.customers.values(),
                    (lambda c: c["email"].lower() == wanted) if wanted else None)


@router.get("/customers.json")
def list_customers(lang: str, request: Request, q: ListQuery = Depends(list_query),
                   email: str | None = None):
    store = state(request).store
    with store.lock:
        return many("customers", q.page_of(_select(store, q, email)), request, q.fields)


@router.get("/customers/count.json")
def count_customers(lang: str, request: Request, q: ListQuery = Depends(list_query),
                    email: str | None = None):
    store = state(request).store
    with store.lock:
        return {"count": len(_select(store, q, email))}


@router.get("/customers/{customer_id:int}.json")
def get_customer(lang: str, customer_id: int, request: Request, fields: str | None = None):
    store = state(request).store
    with store.lock:
        return one("customer", store.get(store.customers, customer_id), request, fields)


@router.post("/customers.json", status_code=201)
def create_customer(lang: str, request: Request, body: Any = Body(...)):
    store = state(request).store
    with store.lock:
        return one("customer", store.create_customer(unwrap(body, "customer")), request)


@router.put("/customers/{customer_id:int}.json")
def update_customer(lang: str, customer_id: int, request: Request, body: Any = Body(...)):
    store = state(request).store
    with store.lock:
        record = store.update_customer(customer_id, unwrap(body, "customer"))
        return one("customer", record, request)


@router.delete("/customers/{customer_id:int}.json", status_code=204)
def delete_customer(lang: str, customer_id: int, request: Request):
    state(request).store.delete_customer(customer_id)
    return Response(status_code=204)
