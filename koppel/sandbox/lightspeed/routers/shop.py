"""``shop``, ``account/ratelimit``."""

from __future__ import annotations

from fastapi import APIRouter, Request

from .common import one, state

router = APIRouter(prefix="/{lang}", tags=["shop"])


@router.get("/shop.json")
def get_shop(lang: str, request: Request):
    st = state(request)
    with st.store.lock:
        return one("shop", st.store.shop, request)


@router.get("/account/ratelimit.json")
def get_ratelimit(lang: str, request: Request):
    st = state(request)
    return {"ratelimit": st.limiter.status(st.store.api_key)}
