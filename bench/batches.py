"""What went into the QuickBooks batch requests of a measured span, read from the bodies.

The QuickBooks sandbox counts batch requests by route and the operations in them
(``batch_operations``, ``batch_write_operations``), but not how the operations were spread
over the requests. :class:`BatchRecorder` wraps the sandbox app (outermost, as a proxy
in front of it would) and notes, for every ``POST …/batch``, how many items the body
carried, how many of them were look-ups (``Query`` items) and the response status; the
sandbox itself is untouched. :func:`summarize` turns a span of those notes into the
figures the report prints. Only counts are kept: no body, id or value."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class BatchNote:
    """One batch request: its items, the look-ups among them, the answer's status."""

    operations: int
    lookups: int
    status: int

    @property
    def writes(self) -> int:
        return self.operations - self.lookups


def note_from_body(body: bytes, status: int) -> BatchNote:
    """Count the items of a batch request body; an unreadable body counts as empty."""
    try:
        items = json.loads(body or b"{}").get("BatchItemRequest")
    except (ValueError, AttributeError):
        items = None
    if not isinstance(items, list):
        return BatchNote(0, 0, status)
    lookups = sum(1 for item in items if isinstance(item, dict) and "Query" in item)
    return BatchNote(len(items), lookups, status)


class BatchRecorder:
    """ASGI wrapper noting every batch request that reaches the wrapped app."""

    def __init__(self, app) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._notes: list[BatchNote] = []

    def mark(self) -> int:
        """A position to pass to :meth:`since` later."""
        with self._lock:
            return len(self._notes)

    def since(self, mark: int) -> list[BatchNote]:
        with self._lock:
            return list(self._notes[mark:])

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" \
                or not scope["path"].rstrip("/").endswith("/batch"):
            await self.app(scope, receive, send)
            return
        messages: list[dict] = []
        while True:  # read the whole body, then hand the same messages to the app
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
        pending = list(messages)

        async def replay():
            return pending.pop(0) if pending else await receive()

        status: dict[str, int] = {}

        async def noting_send(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, replay, noting_send)
        finally:
            note = note_from_body(body, status.get("code", 0))
            with self._lock:
                self._notes.append(note)


def summarize(notes: list[BatchNote]) -> dict[str, Any]:
    """Figures of the batch requests QuickBooks answered with 200 (a throttled or refused
    request carried nothing through; they are counted apart)."""
    done = [n for n in notes if n.status == 200]
    operations = sum(n.operations for n in done)
    lookups = sum(n.lookups for n in done)
    with_writes = [n for n in done if n.writes]
    return {
        "batch_requests": len(done),
        "refused_batch_requests": len(notes) - len(done),
        "operations": operations,
        "write_operations": operations - lookups,
        "lookup_operations": lookups,
        "operations_per_batch": round(operations / len(done), 2) if done else None,
        "writes_per_write_batch": round(sum(n.writes for n in with_writes) / len(with_writes), 2)
        if with_writes else None,
        "batches_with_lookups": sum(1 for n in done if n.lookups),
        "lookup_only_batches": sum(1 for n in done if n.lookups and not n.writes),
        "mixed_batches": sum(1 for n in done if n.lookups and n.writes),
        "write_only_batches": sum(1 for n in done if n.writes and not n.lookups),
        "largest_batch": max((n.operations for n in done), default=0),
    }


def quickbooks_writes(by_route: dict[str, int], batch_summary: dict[str, Any]) -> int:
    """Writes a span sent to QuickBooks: single-entity ``POST``s of the accounting API
    (not its ``query`` or ``batch`` routes, not OAuth) plus the write items of batches."""
    single = sum(n for route, n in by_route.items()
                 if route.startswith("POST /v3/company/")
                 and not route.rstrip("/").endswith(("/query", "/batch")))
    return single + int(batch_summary.get("write_operations") or 0)
