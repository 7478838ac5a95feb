"""Lightspeed's part of the control plane (``/_sandbox``; never limited or counted)
and the CDN that serves product images.

Credential faults: ``POST /_sandbox/credentials/revoke`` deletes the shop's API key now,
as a merchant deleting (or regenerating) the key in the back office does: every request
signed with the old key and secret answers 401 "Access denied." from then on, and the
answer carries the new pair (what the merchant would hand over again). Lightspeed eCom
keys have no expiry and no access tokens (HTTP Basic with key and secret on every
request), so there is nothing to "expire early"; a reset restores the seeded pair."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from ..errors import ApiError
from ..images import png_bytes
from ..serialize import render
from ..store import Sizes
from .common import context, state

router = APIRouter(prefix="/_sandbox", tags=["sandbox control"])
cdn_router = APIRouter(tags=["cdn"])


class ResetBody(BaseModel):
    seed: int = 1
    orders: int = Field(60, ge=0, le=1_000_000)
    products: int = Field(40, ge=1, le=100_000)
    customers: int = Field(40, ge=1, le=1_000_000)
    currency: Literal["EUR", "GBP", "USD"] | None = Field(
        None, description="shop currency (left out: unchanged)")
    shipping_tax: Literal["pro_rata", "highest_rate"] | None = Field(
        None, description="VAT on shipping/fees of mixed-rate orders (left out: unchanged)")


class SettingsBody(BaseModel):
    currency: Literal["EUR", "GBP", "USD"] | None = None
    shipping_tax: Literal["pro_rata", "highest_rate"] | None = None


class RateLimitBody(BaseModel):
    retry_after: Literal["seconds", "http-date"] | None = None
    limit_5min: int | None = Field(None, ge=1)
    limit_hour: int | None = Field(None, ge=1)
    limit_day: int | None = Field(None, ge=1)
    per_second: int | None = Field(None, ge=1)
    enabled: bool | None = None
    clear: bool = Field(False, description="forget the requests counted so far")


class ClockBody(BaseModel):
    now: datetime | None = Field(None, description="freeze the clock at this instant")
    advance_seconds: float | None = None
    release: bool = Field(False, description="back to the wall clock")


class AddBody(BaseModel):
    count: int | None = Field(None, ge=1, le=100_000)
    orders: list[dict[str, Any]] | None = None
    customers: list[dict[str, Any]] | None = None
    products: list[dict[str, Any]] | None = None


def _ctx_render(request: Request, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ctx = context(request)
    return [render(r, ctx) for r in records]


@router.get("/credentials")
def credentials(request: Request) -> dict[str, str]:
    st = state(request)
    return {"api_key": st.store.api_key, "api_secret": st.store.api_secret,
            "language": "nl", "base_url": st.base_url or str(request.base_url).rstrip("/")}


@router.post("/credentials/revoke")
def revoke_credentials(request: Request) -> dict[str, str]:
    st = state(request)
    with st.store.lock:
        st.store.api_key, st.store.api_secret = secrets.token_hex(16), secrets.token_hex(16)
    return credentials(request)


@router.post("/reset")
def reset(request: Request, body: ResetBody | None = None) -> dict[str, Any]:
    st = state(request)
    body = body or ResetBody()
    st.store.reset(body.seed, Sizes(body.orders, body.products, body.customers),
                   currency=body.currency, shipping_tax=body.shipping_tax)
    st.limiter.clear()
    settings = st.store.settings
    return {"status": "reset", **body.model_dump(), "currency": settings.currency,
            "shipping_tax": settings.shipping_tax}


@router.get("/settings")
def get_settings(request: Request) -> dict[str, Any]:
    settings = state(request).store.settings
    return {"currency": settings.currency, "shipping_tax": settings.shipping_tax,
            "reverse_charge": settings.reverse_charge}


@router.put("/settings")
def put_settings(request: Request, body: SettingsBody) -> dict[str, Any]:
    """Shop settings; orders placed afterwards follow them (seeded ones keep theirs)."""
    store = state(request).store
    settings = store.change_settings(currency=body.currency, shipping_tax=body.shipping_tax)
    return {"currency": settings.currency, "shipping_tax": settings.shipping_tax,
            "reverse_charge": settings.reverse_charge}


@router.get("/ratelimit")
def get_ratelimit(request: Request) -> dict[str, Any]:
    return state(request).limiter.settings()


@router.put("/ratelimit")
def put_ratelimit(request: Request, body: RateLimitBody) -> dict[str, Any]:
    limiter = state(request).limiter
    limits = None
    if any(v is not None for v in (body.limit_5min, body.limit_hour, body.limit_day)):
        current = limiter.limits
        limits = (body.limit_5min or current[0], body.limit_hour or current[1],
                  body.limit_day or current[2])
    limiter.configure(limits=limits, per_second=body.per_second,
                      retry_after=body.retry_after, enabled=body.enabled)
    if body.clear:
        limiter.clear()
    return limiter.settings()


@router.get("/clock")
def get_clock(request: Request) -> dict[str, Any]:
    return state(request).store.clock.state()


@router.put("/clock")
def put_clock(request: Request, body: ClockBody) -> dict[str, Any]:
    clock = state(request).store.clock
    if body.release:
        clock.release()
    if body.now is not None:
        if body.now.tzinfo is None:
            raise ApiError(400, "'now' needs a timezone")
        clock.freeze(body.now)
    if body.advance_seconds:
        clock.advance(body.advance_seconds)
    return clock.state()


@router.post("/orders", status_code=201)
def add_orders(request: Request, body: AddBody) -> dict[str, Any]:
    """``{"count": n}`` random new orders, or ``{"orders": [explicit data]}`` (see
    :meth:`ShopStore.create_order`: optional ``shipping_incl``,
    ``shipment_discount_incl``, ``payment_fee_incl``, ``is_company``, ``company_name``,
    ``vat_number``, ``coc_number``, ``country``, ``vat_regime``)."""
    store = state(request).store
    with store.lock:
        if body.orders:
            created = [store.create_order(data) for data in body.orders]
        else:
            created = store.add_orders(body.count or 1)
        return {"orders": _ctx_render(request, created)}


@router.patch("/orders/{order_id}")
def change_order(order_id: int, request: Request, body: dict[str, Any]) -> dict[str, Any]:
    """Any order field, ``status``, ``lines`` (replace rows), ``shipping_incl`` /
    ``shipment_discount_incl`` / ``payment_fee_incl`` (``null``: the shop's rule again;
    the order is repriced) or ``updated_at``; bumps ``updatedAt`` to now unless
    ``updated_at`` is given."""
    store = state(request).store
    with store.lock:
        return {"order": _ctx_render(request, [store.change_order(order_id, body)])[0]}


@router.delete("/orders/{order_id}", status_code=204)
def delete_order(order_id: int, request: Request) -> Response:
    """An order deleted in the shop's back office: the order and its rows, shipment,
    metafields, credits and returns answer 404 from now on (Lightspeed's API has no
    order DELETE that the official client knows of; a merchant deletes orders in the
    back office)."""
    state(request).store.delete_order(order_id)
    return Response(status_code=204)


@router.post("/customers", status_code=201)
def add_customers(request: Request, body: AddBody) -> dict[str, Any]:
    store = state(request).store
    with store.lock:
        if body.customers:
            created = [store.create_customer(data) for data in body.customers]
        else:
            created = store.add_customers(body.count or 1)
        return {"customers": _ctx_render(request, created)}


@router.patch("/customers/{customer_id}")
def change_customer(customer_id: int, request: Request,
                    body: dict[str, Any]) -> dict[str, Any]:
    store = state(request).store
    with store.lock:
        record = store.update_customer(customer_id, body)
        return {"customer": _ctx_render(request, [record])[0]}


@router.delete("/customers/{customer_id}", status_code=204)
def delete_customer(customer_id: int, request: Request) -> Response:
    """Same as the API's ``DELETE customers/{id}.json``, outside limits and counts."""
    state(request).store.delete_customer(customer_id)
    return Response(status_code=204)


@router.post("/products", status_code=201)
def add_products(request: Request, body: AddBody) -> dict[str, Any]:
    store = state(request).store
    with store.lock:
        if body.products:
            created = [store.create_product(data) for data in body.products]
        else:
            created = store.add_products(body.count or 1)
        return {"products": _ctx_render(request, created)}


@router.patch("/products/{product_id}")
def change_product(product_id: int, request: Request, body: dict[str, Any]) -> dict[str, Any]:
    store = state(request).store
    with store.lock:
        return {"product": _ctx_render(request, [store.update_product(product_id, body)])[0]}


@router.delete("/products/{product_id}", status_code=204)
def delete_product(product_id: int, request: Request) -> Response:
    """Same as the API's ``DELETE products/{id}.json``, outside limits and counts."""
    state(request).store.delete_product(product_id)
    return Response(status_code=204)


@router.patch("/variants/{variant_id}")
def change_variant(variant_id: int, request: Request, body: dict[str, Any]) -> dict[str, Any]:
    """Stock changes here are recorded as movements with channel ``backoffice``."""
    store = state(request).store
    with store.lock:
        record = store.update_variant(variant_id, body, channel="backoffice")
        return {"variant": _ctx_render(request, [record])[0]}


@cdn_router.get("/_cdn/shops/{shop_id}/files/{image_id:int}/{rest:path}")
def cdn_file(shop_id: int, image_id: int, rest: str, request: Request) -> Response:
    store = state(request).store
    with store.lock:
        image = store.images.get(image_id)
        if image is None or not rest.endswith(".png"):
            return Response(status_code=404)
        color = image["_color"]
    return Response(png_bytes(color), media_type="image/png",
                    headers={"Cache-Control": "public, max-age=31536000"})
