"""What both sandboxes share: fault injection, request statistics, time scale.

Each emulated API (``koppel.sandbox.lightspeed``, ``koppel.sandbox.quickbooks``) owns a
:class:`SandboxControl` and mounts :func:`control_router` under ``/_sandbox`` and
:class:`ControlMiddleware` around its app. The control plane is outside the emulated
surface: it is never rate limited, never faulted and never counted.

Faults (``POST /_sandbox/faults``)::

    {"path": "^/nl/orders", "method": "GET", "kind": "500", "probability": 0.1}
    {"path": "/query$", "sequence": ["429", "429", "ok", "503"]}
    {"path": ".", "kind": "latency", "latency_ms": 300, "times": 5}

``kind`` is one of ``429``, ``500``, ``503``, ``504``, ``404``, ``latency``, ``drop``
(these fire *before* the request reaches the app: nothing is processed), or one of the
*after* kinds, which let the app process the request first (a write is stored) and then
lose its answer:

* ``drop_after`` — the app handled the request, then the connection is dropped (the
  response head is sent, the body is cut off): "write done, answer lost";
* ``500_after``, ``503_after``, ``504_after`` — the app handled the request, then its
  answer is replaced by that status in the emulated API's own error format (a gateway
  timing out after the write reached the service).

A rule with ``sequence`` serves one entry per matching request (``ok`` lets it through)
and is spent when the sequence is; ``times`` caps how often a probabilistic rule fires.
``GET /_sandbox/stats`` counts each fired fault under its kind in ``faults`` and the
app's own status of an *after* fault under ``by_status`` (the client never saw it)::

    {"path": "/purchase$", "method": "POST", "kind": "drop_after", "times": 1}
    {"path": "^/nl/variants/", "method": "PUT", "sequence": ["504_after", "ok"]}
"""

from __future__ import annotations

import asyncio
import random
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field, model_validator
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match

CONTROL_PREFIX = "/_sandbox"
#: Where :class:`ControlMiddleware` leaves the :class:`FaultRule` of an injected fault in
#: the ASGI scope, for outer layers (e.g. the QBO throttle headers).
FAULT_SCOPE_KEY = "koppel.sandbox.fault"
FaultKind = Literal["429", "500", "503", "504", "404", "latency", "drop",
                    "drop_after", "500_after", "503_after", "504_after", "ok"]
#: Kinds that let the app process the request, then lose or replace its answer.
AFTER_KINDS = frozenset({"drop_after", "500_after", "503_after", "504_after"})


class FaultRule(BaseModel):
    """One fault-injection rule, as posted to ``/_sandbox/faults``."""

    path: str = Field(".", description="regular expression searched in the request path")
    method: str | None = Field(None, description="HTTP method, any when absent")
    kind: FaultKind | None = None
    probability: float = Field(1.0, ge=0.0, le=1.0)
    sequence: list[FaultKind] | None = None
    latency_ms: int = Field(250, ge=0, le=120_000)
    times: int | None = Field(None, ge=1, description="fire at most this often")
    retry_after: int = Field(1, ge=0, description="Retry-After seconds on injected 429s")

    @model_validator(mode="after")
    def _kind_or_sequence(self) -> "FaultRule":
        if (self.kind is None) == (self.sequence is None):
            raise ValueError("give exactly one of 'kind' or 'sequence'")
        re.compile(self.path)
        return self


@dataclass
class _ActiveRule:
    id: int
    rule: FaultRule
    pattern: re.Pattern[str]
    fired: int = 0
    position: int = 0

    def next_kind(self, rng: random.Random) -> FaultKind | None:
        rule = self.rule
        if rule.sequence is not None:
            if self.position >= len(rule.sequence):
                return None
            kind = rule.sequence[self.position]
            self.position += 1
            return None if kind == "ok" else kind
        if rule.times is not None and self.fired >= rule.times:
            return None
        if rng.random() >= rule.probability:
            return None
        self.fired += 1
        return rule.kind

    @property
    def spent(self) -> bool:
        if self.rule.sequence is not None:
            return self.position >= len(self.rule.sequence)
        return self.rule.times is not None and self.fired >= self.rule.times


class RequestStats:
    """Thread-safe request counters: per method and route template, 429s and faults."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.by_route: Counter[str] = Counter()
            self.by_status: Counter[str] = Counter()
            self.faults: Counter[str] = Counter()
            self.extra: Counter[str] = Counter()
            self.throttled = 0
            self.total = 0

    def record(self, route: str, status: int, fault: str | None = None) -> None:
        with self._lock:
            self.total += 1
            self.by_route[route] += 1
            self.by_status[str(status)] += 1
            if status == 429:
                self.throttled += 1
            if fault:
                self.faults[fault] += 1

    def count(self, key: str, n: int = 1) -> None:
        """Count something API-specific (e.g. ``batch_operations``)."""
        with self._lock:
            self.extra[key] += n

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "total": self.total,
                "by_route": dict(sorted(self.by_route.items())),
                "by_status": dict(sorted(self.by_status.items())),
                "throttled": self.throttled,
                "faults": dict(self.faults),
                **{k: v for k, v in sorted(self.extra.items())},
            }


class SandboxControl:
    """Fault rules, statistics and the time scale of one sandbox."""

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._rules: list[_ActiveRule] = []
        self._next_id = 1
        self.rng = random.Random(seed)
        self.stats = RequestStats()
        self.time_scale = 1.0

    # -- time ---------------------------------------------------------------------------
    def window(self, seconds: float) -> float:
        """A rate-limit window or lifetime shrunk by the time scale."""
        return seconds / self.time_scale

    # -- faults -------------------------------------------------------------------------
    def add_fault(self, rule: FaultRule) -> int:
        with self._lock:
            rule_id = self._next_id
            self._next_id += 1
            self._rules.append(_ActiveRule(rule_id, rule, re.compile(rule.path)))
            return rule_id

    def clear_faults(self) -> None:
        with self._lock:
            self._rules.clear()

    def faults(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {"id": r.id, **r.rule.model_dump(exclude_none=True), "fired": r.fired,
                 "position": r.position, "spent": r.spent}
                for r in self._rules
            ]

    def pick_fault(self, method: str, path: str) -> tuple[FaultKind, FaultRule] | None:
        with self._lock:
            for active in self._rules:
                rule = active.rule
                if rule.method and rule.method.upper() != method.upper():
                    continue
                if not active.pattern.search(path) or active.spent:
                    continue
                kind = active.next_kind(self.rng)
                if kind is not None:
                    return kind, rule
            return None


def route_template(request: Request) -> str:
    """``GET /{lang}/orders/{order_id}.json`` rather than the concrete path."""
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match == Match.FULL:
            return f"{request.method} {getattr(route, 'path', request.url.path)}"
    return f"{request.method} (unmatched)"


FaultResponder = Callable[[str, FaultRule], Response]


def default_fault_response(kind: str, rule: FaultRule) -> Response:
    status = int(kind)
    headers = {"Retry-After": str(rule.retry_after)} if status == 429 else {}
    return JSONResponse({"error": {"code": status, "message": f"injected fault {kind}"}},
                        status_code=status, headers=headers)


class DroppedConnection(Exception):
    """Raised after the response head is sent: the client sees the peer hang up."""


class ControlMiddleware:
    """ASGI middleware: injects faults and counts every request outside ``/_sandbox``.

    ``fault_response(kind, rule)`` renders an injected 429/5xx/404 in the emulated API's
    own error format. A ``drop`` sends a response head promising a body, then aborts the
    connection, so a real HTTP client gets a protocol error (incomplete response). The
    ``*_after`` kinds run the app first (see the module docstring)."""

    def __init__(self, app, control: SandboxControl,
                 fault_response: FaultResponder = default_fault_response) -> None:
        self.app = app
        self.control = control
        self.fault_response = fault_response

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        route = route_template(request)
        picked = self.control.pick_fault(scope["method"], scope["path"])
        if picked is not None:
            kind, rule = picked
            if kind != "latency":
                scope[FAULT_SCOPE_KEY] = rule
            if kind == "latency":
                await asyncio.sleep(rule.latency_ms / 1000)
                self.control.stats.count("faults_latency")
            elif kind == "drop":
                self.control.stats.record(route, 0, fault="drop")
                await _drop(send)
            elif kind in AFTER_KINDS:
                await self._after(kind, rule, route, scope, receive, send)
                return
            else:
                response = self.fault_response(kind, rule)
                self.control.stats.record(route, response.status_code, fault=kind)
                await response(scope, receive, send)
                return

        status_holder: dict[str, int] = {}

        async def counting_send(message):
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
            await send(message)

        await self.app(scope, receive, counting_send)
        self.control.stats.record(route, status_holder.get("status", 0))

    async def _after(self, kind: str, rule: FaultRule, route: str, scope, receive,
                     send) -> None:
        """Let the app process the request to the end (its writes are stored), swallow
        its answer, then drop the connection or answer ``kind``'s status instead."""
        status_holder: dict[str, int] = {}

        async def swallow(message):
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]

        await self.app(scope, receive, swallow)
        self.control.stats.record(route, status_holder.get("status", 0), fault=kind)
        if kind == "drop_after":
            await _drop(send)
        response = self.fault_response(kind.removesuffix("_after"), rule)
        await response(scope, receive, send)


async def _drop(send) -> None:
    """Send a response head promising a body, a fragment of it, then hang up."""
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", b"1000")]})
    await send({"type": "http.response.body", "body": b'{"trunc', "more_body": True})
    raise DroppedConnection("injected dropped connection")


class TimeScale(BaseModel):
    scale: float = Field(..., gt=0, le=100_000,
                         description="windows and lifetimes are divided by this")


def control_router(control: SandboxControl) -> APIRouter:
    """``/_sandbox/faults``, ``/_sandbox/stats`` and ``/_sandbox/time-scale``."""
    router = APIRouter(prefix=CONTROL_PREFIX, tags=["sandbox control"])

    @router.get("/faults")
    def list_faults() -> list[dict[str, Any]]:
        return control.faults()

    @router.post("/faults", status_code=201)
    def add_fault(rule: FaultRule) -> dict[str, int]:
        return {"id": control.add_fault(rule)}

    @router.delete("/faults")
    def clear_faults() -> dict[str, str]:
        control.clear_faults()
        return {"status": "cleared"}

    @router.get("/stats")
    def stats() -> dict[str, Any]:
        return control.stats.snapshot()

    @router.post("/stats/reset")
    def reset_stats() -> dict[str, str]:
        control.stats.reset()
        return {"status": "reset"}

    @router.get("/time-scale")
    def get_time_scale() -> dict[str, float]:
        return {"scale": control.time_scale}

    @router.put("/time-scale")
    def set_time_scale(body: TimeScale) -> dict[str, float]:
        control.time_scale = body.scale
        return {"scale": control.time_scale}

    return router


@dataclass
class SlidingWindow:
    """Counts events in a sliding window of ``seconds`` (scaled by the caller)."""

    limit: int
    seconds: float
    events: list[float] = field(default_factory=list)

    def _trim(self, now: float, seconds: float) -> None:
        cutoff = now - seconds
        drop = 0
        for drop, stamp in enumerate(self.events):  # noqa: B007 - events are sorted
            if stamp > cutoff:
                break
        else:
            drop = len(self.events)
        if drop:
            del self.events[:drop]

    def remaining(self, now: float, seconds: float) -> int:
        self._trim(now, seconds)
        return max(0, self.limit - len(self.events))

    def reset_in(self, now: float, seconds: float) -> float:
        """Seconds until the oldest counted event leaves the window."""
        self._trim(now, seconds)
        if not self.events:
            return seconds
        return max(0.0, self.events[0] + seconds - now)

    def try_take(self, now: float, seconds: float) -> bool:
        if self.remaining(now, seconds) <= 0:
            return False
        self.events.append(now)
        return True


def monotonic() -> float:
    return time.monotonic()
