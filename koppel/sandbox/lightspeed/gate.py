"""ASGI middleware in front of the emulated API: HTTP Basic auth, rate limits and the
shop language, all answered in Lightspeed's error format, plus the rate-limit headers on
every API response. ``/_sandbox`` (control plane) and ``/_cdn`` (images) pass through."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from contextvars import ContextVar
from typing import Any

from .serialize import error_body

SHOP_LANGUAGES = ("nl", "en")
PASS_THROUGH = ("/_sandbox", "/_cdn", "/docs", "/openapi.json")

#: (method, path) of the request being served, for error bodies rendered far from it.
current_request: ContextVar[tuple[str, str]] = ContextVar("lightspeed_request",
                                                          default=("GET", "/"))


def json_response_messages(status: int, body: dict[str, Any],
                           headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    payload = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"),
           (b"content-length", str(len(payload)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return [{"type": "http.response.start", "status": status, "headers": raw},
            {"type": "http.response.body", "body": payload}]


def basic_credentials(scope: dict[str, Any]) -> tuple[str, str] | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, encoded = value.decode("latin-1").partition(" ")
            if scheme.lower() != "basic":
                return None
            try:
                user, sep, password = base64.b64decode(encoded).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return None
            return (user, password) if sep else None
    return None


class RequestContextMiddleware:
    """Outermost: remembers method and path so injected faults can name them."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            token = current_request.set((scope["method"], scope["path"]))
            try:
                await self.app(scope, receive, send)
            finally:
                current_request.reset(token)
        else:
            await self.app(scope, receive, send)


class LightspeedGate:
    """Auth → rate limit → language, then the route; adds ``X-RateLimit-*`` headers."""

    def __init__(self, app, state) -> None:
        self.app = app
        self.state = state

    async def _reply(self, send, status: int, method: str, path: str, message: str,
                     headers: dict[str, str] | None = None) -> None:
        for msg in json_response_messages(status, error_body(status, method, path, message),
                                          headers):
            await send(msg)

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(PASS_THROUGH):
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        store = self.state.store
        given = basic_credentials(scope)
        if given is None or not (hmac.compare_digest(given[0], store.api_key)
                                 and hmac.compare_digest(given[1], store.api_secret)):
            await self._reply(send, 401, method, path, "Access denied.",
                              {"WWW-Authenticate": 'Basic realm="Lightspeed eCom API"'})
            return
        decision = self.state.limiter.take(store.api_key)
        if not decision.allowed:
            await self._reply(send, 429, method, path, "Too many requests.", decision.headers)
            return
        lang = path.strip("/").split("/", 1)[0]
        if lang not in SHOP_LANGUAGES:
            await self._reply(send, 404, method, path, "Unknown or inactive language",
                              decision.headers)
            return
        extra = [(k.lower().encode(), v.encode()) for k, v in decision.headers.items()]

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": list(message.get("headers", [])) + extra}
            await send(message)

        await self.app(scope, receive, send_with_headers)
