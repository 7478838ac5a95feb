"""QuickBooks sandbox fault controls: staging what real users and Intuit do to a
company while koppel syncs it. Mounted by :func:`mount` under ``/_sandbox`` (never
throttled, faulted or counted), next to the generic ``/_sandbox/faults`` rules of
:mod:`koppel.sandbox.control` (``drop_after``, ``500_after``, ``503_after``, ``504_after``
lose the answer of a request that was processed).

OAuth (:class:`koppel.sandbox.quickbooks.oauth.OAuthServer`)::

    POST /_sandbox/oauth/revoke                 {"realm": "<id>"} | {"refresh_token": "RT1-…"}
    POST /_sandbox/oauth/expire-access-tokens   {"realm": "<id>"} | {}   (every realm)

``revoke`` with a realm revokes every refresh token issued for it (the user disconnected
the app); with a refresh token it revokes that token and its successors (as Intuit's
revocation endpoint does). Access tokens of what was revoked stop working at once.
``expire-access-tokens`` expires access tokens already issued, now; a client refreshes.

A concurrent edit and changes made by hand in QuickBooks::

    POST   /_sandbox/realms/{realm}/entities/{Entity}/{id}/touch   {"changes": {...}}
    DELETE /_sandbox/realms/{realm}/entities/{Entity}/{id}          ?void=true to void

``touch`` is another user saving the object: ``changes`` (optional, top-level fields other
than ``Id``, ``SyncToken``, ``MetaData``) are applied, ``SyncToken`` goes up by one and
``LastUpdatedTime`` is now, so the next update that sends the old ``SyncToken`` answers
5010 "Stale Object Error". With ``{"when": "before_next_write"}`` the edit is armed and
lands just before the next API request that writes *this object* (a ``POST`` to its entity
or a batch with an update/delete/void item carrying its ``Id``) is processed: the client
has read the object already and sends a stale ``SyncToken`` — the race of a real
concurrent edit, staged deterministically. The answer is then ``{"armed": n}`` (edits
waiting in that realm). ``{"changes": {"Active": false}}`` makes a name list entity
(Item, Customer) inactive, as QuickBooks does instead of deleting it. ``DELETE`` deletes a
transaction (or voids it with ``?void=true``) as a user would in the UI, with the same
rules and side effects as the API's ``operation=delete|void``.

Throttle headers (:func:`koppel.sandbox.quickbooks.faults.throttle_headers`)::

    PUT /_sandbox/throttle-headers   {"retry_after": "none" | "window" | <seconds>}

Every API answer carries ``intuit_tid``. Intuit documents no ``Retry-After`` on a 429
("wait 60 seconds before retrying the request":
https://developer.intuit.com/app/developer/qbo/docs/learn/limits-and-throttles), so
``"none"`` is the default; ``"window"`` (assumed: one user reports the header,
https://github.com/intuit/QuickBooks-V3-PHP-SDK/issues/184) sends the seconds until the
realm's minute window frees a slot (an injected 429 sends its rule's ``retry_after``); a
number sends that many seconds on every 429.
"""

from __future__ import annotations

import json
import re
import threading
from copy import deepcopy
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, FastAPI, HTTPException
from pydantic import BaseModel, Field, model_validator

from koppel.sandbox.control import CONTROL_PREFIX, FAULT_SCOPE_KEY
from koppel.sandbox.quickbooks import entities, faults, operations

if TYPE_CHECKING:  # pragma: no cover - typing only
    from koppel.sandbox.quickbooks.app import SandboxState

READ_ONLY_FIELDS = frozenset({"Id", "SyncToken", "MetaData", "domain", "sparse"})
_REALM_IN_PATH = re.compile(r"^/v3/company/([^/]+)/")


class RevokeBody(BaseModel):
    realm: str | None = None
    refresh_token: str | None = None

    @model_validator(mode="after")
    def _one(self) -> "RevokeBody":
        if (self.realm is None) == (self.refresh_token is None):
            raise ValueError("give exactly one of 'realm' or 'refresh_token'")
        return self


class ExpireBody(BaseModel):
    realm: str | None = Field(None, description="only this realm's tokens; all when absent")


class TouchBody(BaseModel):
    changes: dict[str, Any] = Field(default_factory=dict)
    when: Literal["now", "before_next_write"] = Field(
        "now", description="now, or just before the realm's next API write is processed")

    @model_validator(mode="after")
    def _writable(self) -> "TouchBody":
        bad = sorted(READ_ONLY_FIELDS & set(self.changes))
        if bad:
            raise ValueError(f"changes may not set {', '.join(bad)}")
        return self


class ThrottleHeaders(BaseModel):
    retry_after: Literal["none", "window"] | int = Field(
        "none", description="'none' (documented), 'window' or fixed seconds")

    @model_validator(mode="after")
    def _non_negative(self) -> "ThrottleHeaders":
        if isinstance(self.retry_after, int) and self.retry_after < 0:
            raise ValueError("retry_after seconds must be >= 0")
        return self


class ThrottleHeaderMiddleware:
    """Outermost layer: fires armed concurrent edits before a realm's API write;
    ``intuit_tid`` on every API answer; on a 429 the ``Retry-After`` the
    :class:`ThrottleHeaders` setting asks for (or none)."""

    def __init__(self, app, state: "SandboxState", settings: ThrottleHeaders,
                 armed: "ArmedEdits") -> None:
        self.app = app
        self.state = state
        self.settings = settings
        self.armed = armed

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        match = _REALM_IN_PATH.match(scope["path"]) if scope["method"] == "POST" else None
        if match and self.armed.pending(match.group(1)):
            body, receive = await _buffered(receive)
            self.armed.fire(self.state, match.group(1), scope["path"], body)

        async def decorate(message):
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() != b"retry-after"]
                if not any(k.lower() == faults.INTUIT_TID_HEADER.encode() for k, _ in headers):
                    headers.append((faults.INTUIT_TID_HEADER.encode(),
                                    faults.intuit_tid().encode()))
                if message["status"] == 429:
                    wait = self._retry_after(scope)
                    if wait is not None:
                        headers.append((b"retry-after", str(wait).encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, decorate)

    def _retry_after(self, scope) -> int | None:
        setting = self.settings.retry_after
        if setting == "none":
            return None
        if isinstance(setting, int):
            return setting
        injected = scope.get(FAULT_SCOPE_KEY)
        if injected is not None:
            return injected.retry_after
        match = _REALM_IN_PATH.match(scope["path"])
        realm = self.state.store.get(match.group(1)) if match else None
        if realm is None:
            return 60
        batch = scope["path"].rstrip("/").endswith("/batch")
        seconds = realm.limits.retry_in(self.state.control, batch=batch)
        return max(1, int(-(-seconds // 1)))


class ArmedEdits:
    """Concurrent edits waiting for a realm's next API write (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._edits: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}

    def arm(self, realm_id: str, entity: str, obj_id: str, changes: dict[str, Any]) -> int:
        with self._lock:
            self._edits.setdefault(realm_id, []).append((entity, obj_id, changes))
            return len(self._edits[realm_id])

    def pending(self, realm_id: str) -> bool:
        with self._lock:
            return bool(self._edits.get(realm_id))

    def fire(self, state: "SandboxState", realm_id: str, path: str, body: bytes) -> None:
        """Apply the edits armed on objects this request (``path``, ``body``) writes."""
        targets = _written_objects(path, body)
        with self._lock:
            waiting = self._edits.get(realm_id, [])
            due = [e for e in waiting if (e[0], e[1]) in targets]
            self._edits[realm_id] = [e for e in waiting if e not in due]
        realm = state.store.get(realm_id) if due else None
        if realm is None:
            return
        with realm.lock:
            for entity, obj_id, changes in due:
                if realm.get(entity, obj_id) is not None:
                    concurrent_edit(realm, entity, obj_id, changes)


def _written_objects(path: str, body: bytes) -> set[tuple[str, str]]:
    """(entity, id) of every existing object a v3 ``POST`` updates, deletes or voids."""
    try:
        payload = json.loads(body or b"{}")
    except ValueError:
        return set()
    if not isinstance(payload, dict):
        return set()
    tail = path.rstrip("/").rsplit("/", 1)[-1].lower()
    if tail == "batch":
        found = set()
        for item in payload.get("BatchItemRequest") or []:
            if not isinstance(item, dict) or item.get("operation") == "create":
                continue
            for key, value in item.items():
                if key in entities.URL_NAMES.values() and isinstance(value, dict) \
                        and value.get("Id") not in (None, ""):
                    found.add((key, str(value["Id"])))
        return found
    entity = entities.URL_NAMES.get(tail)
    if entity is None:
        return set()
    obj = payload.get(entity, payload)
    if isinstance(obj, dict) and obj.get("Id") not in (None, ""):
        return {(entity, str(obj["Id"]))}
    return set()


async def _buffered(receive):
    """Read the whole request body; a ``receive`` that replays it to the app."""
    chunks, more = [], True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = b"".join(chunks)
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


def concurrent_edit(realm, entity: str, obj_id: str, changes: dict[str, Any]) -> dict:
    """Another user saves ``entity`` ``obj_id``: ``changes`` applied, SyncToken + 1."""
    with realm.lock:
        edited = deepcopy(realm.get(entity, obj_id))
        edited.update(deepcopy(changes))
        return deepcopy(realm.replace(entity, edited))


def control_routes(state: "SandboxState", throttle: ThrottleHeaders,
                   armed: ArmedEdits) -> APIRouter:
    router = APIRouter(prefix=CONTROL_PREFIX, tags=["sandbox control: QuickBooks faults"])

    def realm_or_404(realm_id: str):
        realm = state.store.get(realm_id)
        if realm is None:
            raise HTTPException(404, f"no realm {realm_id}")
        return realm

    def entity_or_404(name: str) -> str:
        entity = entities.URL_NAMES.get(name.lower())
        if entity is None:
            raise HTTPException(404, f"no entity {name}")
        return entity

    @router.post("/oauth/revoke")
    def revoke(body: RevokeBody) -> dict[str, Any]:
        if body.realm is not None:
            realm_or_404(body.realm)
            return {"realm": body.realm, "revoked": state.oauth.revoke_realm(body.realm)}
        if not state.oauth.revoke(body.refresh_token or ""):
            raise HTTPException(404, "unknown token")
        return {"revoked": 1}

    @router.post("/oauth/expire-access-tokens")
    def expire(body: ExpireBody | None = None) -> dict[str, Any]:
        realm = body.realm if body else None
        if realm is not None:
            realm_or_404(realm)
        return {"realm": realm, "expired": state.oauth.expire_access_tokens(realm)}

    @router.post("/realms/{realm_id}/entities/{entity_name}/{obj_id}/touch")
    def touch(realm_id: str, entity_name: str, obj_id: str,
              body: TouchBody | None = None) -> dict[str, Any]:
        realm = realm_or_404(realm_id)
        entity = entity_or_404(entity_name)
        body = body or TouchBody()
        with realm.lock:
            if realm.get(entity, obj_id) is None:
                raise HTTPException(404, f"no {entity} {obj_id} in realm {realm_id}")
            if body.when == "before_next_write":
                return {"armed": armed.arm(realm.id, entity, str(obj_id), body.changes)}
            return {entity: concurrent_edit(realm, entity, obj_id, body.changes)}

    @router.delete("/realms/{realm_id}/entities/{entity_name}/{obj_id}")
    def delete_by_hand(realm_id: str, entity_name: str, obj_id: str,
                       void: bool = False) -> dict[str, Any]:
        realm = realm_or_404(realm_id)
        entity = entity_or_404(entity_name)
        with realm.lock:
            current = realm.get(entity, obj_id)
            if current is None:
                raise HTTPException(404, f"no {entity} {obj_id} in realm {realm_id}")
            payload = {"Id": current["Id"], "SyncToken": current["SyncToken"]}
            try:
                if void:
                    return {entity: operations.void(realm, entity, payload)}
                return operations.delete(realm, entity, payload)
            except faults.QBOFault as fault:
                raise HTTPException(409, fault.body()["Fault"]) from None

    @router.get("/throttle-headers")
    def get_throttle_headers() -> dict[str, Any]:
        return throttle.model_dump()

    @router.put("/throttle-headers")
    def put_throttle_headers(body: ThrottleHeaders) -> dict[str, Any]:
        throttle.retry_after = body.retry_after
        return throttle.model_dump()

    return router


def mount(app: FastAPI, state: "SandboxState") -> None:
    """Add the fault-control routes and the throttle-header layer to the QBO app (call
    after ``ControlMiddleware`` was added, so the header layer is outermost)."""
    throttle, armed = ThrottleHeaders(), ArmedEdits()
    app.include_router(control_routes(state, throttle, armed))
    app.add_middleware(ThrottleHeaderMiddleware, state=state, settings=throttle, armed=armed)
