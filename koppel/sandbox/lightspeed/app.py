"""``create_app()``: the Lightspeed eCom (C-Series) emulator as a FastAPI app.

Layers, outermost first: request context (for error bodies) → ``ControlMiddleware``
(fault injection, statistics; ``/_sandbox`` untouched) → :class:`~.gate.LightspeedGate`
(auth, rate limits, language) → routers (one per resource family).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from ..control import ControlMiddleware, FaultRule, SandboxControl, control_router
from .checkout import Checkouts
from .clock import Clock
from .errors import ApiError
from .gate import LightspeedGate, RequestContextMiddleware, current_request
from .ratelimit import RateLimiter
from .routers import catalog as catalog_routes
from .routers import checkouts as checkout_routes
from .routers import credits as credit_routes
from .routers import customers as customer_routes
from .routers import extras as extra_routes
from .routers import orders as order_routes
from .routers import sandbox as sandbox_routes
from .routers import shop as shop_routes
from .seed import DEFAULT_ANCHOR
from .serialize import error_body
from .store import ShopSettings, ShopStore, Sizes

FAULT_MESSAGES = {"404": "Not found.", "429": "Too many requests.",
                  "500": "Internal server error.", "503": "Service temporarily unavailable.",
                  "504": "Gateway timeout."}


@dataclass
class LightspeedState:
    """Everything the routers reach through ``request.app.state.lightspeed``."""

    store: ShopStore
    limiter: RateLimiter
    control: SandboxControl
    checkouts: Checkouts
    base_url: str | None


def fault_response(kind: str, rule: FaultRule) -> Response:
    """Injected faults in Lightspeed's error envelope."""
    status = int(kind)
    method, path = current_request.get()
    headers = {"Retry-After": str(rule.retry_after)} if status == 429 else {}
    return JSONResponse(error_body(status, method, path, FAULT_MESSAGES.get(kind, "Error.")),
                        status_code=status, headers=headers)


def _error(request: Request, code: int, message: str, errors=None) -> JSONResponse:
    return JSONResponse(error_body(code, request.method, request.url.path, message, errors),
                        status_code=code)


def create_app(seed: int = 1, base_url: str | None = None, time_scale: float = 1.0,
               orders: int = 60, products: int = 40, customers: int = 40,
               anchor: datetime = DEFAULT_ANCHOR, clock: Clock | None = None,
               currency: str = "EUR", shipping_tax: str = "pro_rata") -> FastAPI:
    """A seeded shop. ``base_url`` makes links absolute (default: the request's host);
    ``anchor`` is when the seeded history ends; ``clock`` stamps new and changed
    records (default: wall clock, adjustable through ``/_sandbox/clock``);
    ``currency`` (``EUR``, ``GBP``, ``USD``) is the shop currency in ``shop.json`` (the
    amounts stay the same numbers); ``shipping_tax`` (``pro_rata`` or ``highest_rate``)
    decides the VAT on shipping and payment fees of mixed-rate orders (see
    :mod:`.pricing`)."""
    control = SandboxControl(seed)
    control.time_scale = time_scale
    store = ShopStore(seed, Sizes(orders, products, customers), anchor=anchor, clock=clock,
                      settings=ShopSettings(currency=currency, shipping_tax=shipping_tax))
    state = LightspeedState(store, RateLimiter(control), control, Checkouts(store),
                            base_url.rstrip("/") if base_url else None)

    app = FastAPI(title="Lightspeed eCom sandbox (koppel)", docs_url="/_sandbox/docs",
                  openapi_url="/_sandbox/openapi.json", redoc_url=None)
    app.state.lightspeed = state
    app.state.sandbox = state  # the name koppel.sandbox.persistence reads
    app.state.control = control

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error(request, exc.code, exc.message, exc.errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = {404: "Not found.", 405: "Method not allowed."}.get(exc.status_code,
                                                                     str(exc.detail))
        if request.url.path.startswith("/_sandbox"):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
        return _error(request, exc.status_code, message)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        if request.url.path.startswith("/_sandbox"):
            return JSONResponse({"detail": exc.errors()}, status_code=422)
        fields = {".".join(str(p) for p in e["loc"][1:]) or "body": [e["msg"]]
                  for e in exc.errors()}
        return _error(request, 400, "Bad request.", fields)

    @app.exception_handler(ValueError)
    async def value_error(request: Request, exc: ValueError) -> JSONResponse:
        return _error(request, 400, f"Bad request: {exc}")

    for module in (shop_routes, order_routes, customer_routes, catalog_routes,
                   checkout_routes, credit_routes, extra_routes):
        app.include_router(module.router)
    app.include_router(credit_routes.control_router)
    app.include_router(control_router(control))
    app.include_router(sandbox_routes.router)
    app.include_router(sandbox_routes.cdn_router)

    app.add_middleware(LightspeedGate, state=state)
    app.add_middleware(ControlMiddleware, control=control, fault_response=fault_response)
    app.add_middleware(RequestContextMiddleware)
    return app
