"""Makes the connections' Test button work for koppel's connection types.

Airflow 3.3's connection list posts the row it shows to ``POST /api/v2/connections/test``
with ``port: Number(connection.port)`` — ``0`` for a connection without a port, which
every koppel connection is (the port field is hidden in both forms). The API then
compares that ``0`` with the stored ``None``, finds "the host or port to test differs from
the stored connection", and answers 400 unless the request carries a real password — the
list sends the masked one — so the button turned red without a message. (Source: the
3.3 UI bundle's test button, ``port:Number(n.port)``, and ``_same_endpoint`` in
``airflow/api_fastapi/core_api/routes/public/connections.py`` of apache-airflow 3.3.2;
the endpoint came with https://github.com/apache/airflow/pull/43766 and is documented at
https://airflow.apache.org/docs/apache-airflow/stable/stable-rest-api-ref.html.)

This ASGI middleware, registered by ``plugins/koppel_plugin.py`` as a FastAPI root
middleware, drops a ``port`` of ``0``/``null``/``""`` from such a request when its
``conn_type`` is one of koppel's ("the default port"), so the stored connection's
credentials are used as for any unchanged field. Every other request passes untouched;
the module imports nothing heavy (every Airflow component loads plugins)."""

from __future__ import annotations

import json
from typing import Any, Awaitable, Callable

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: koppel's connection types (``koppel.provider``): the port field is hidden in both.
KOPPEL_CONN_TYPES = frozenset({"lightspeed_ecom", "quickbooks_online"})
TEST_PATH_SUFFIX = "/api/v2/connections/test"
MAX_BODY = 1_000_000


def normalise_test_body(body: bytes) -> bytes:
    """The request body with a default ``port`` (0, null or "") of a koppel connection
    type removed; any other body (another type, a real port, not JSON) unchanged."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return body
    if not isinstance(data, dict) or data.get("conn_type") not in KOPPEL_CONN_TYPES:
        return body
    if "port" not in data or data["port"] not in (0, None, ""):
        return body
    data.pop("port")
    return json.dumps(data).encode()


class ConnectionTestPortMiddleware:
    """Pure ASGI middleware applying :func:`normalise_test_body` to
    ``POST …/api/v2/connections/test``."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope.get("type") != "http" or scope.get("method") != "POST"
                or not str(scope.get("path", "")).rstrip("/").endswith(TEST_PATH_SUFFIX)):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # client went away
                await self.app(scope, _replay([message]), send)
                return
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if size <= MAX_BODY:
            body = normalise_test_body(body)
        headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await self.app({**scope, "headers": headers},
                       _replay([{"type": "http.request", "body": body, "more_body": False}],
                               receive), send)


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    pending = list(messages)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        if then is not None:
            return await then()
        return {"type": "http.disconnect"}

    return receive
