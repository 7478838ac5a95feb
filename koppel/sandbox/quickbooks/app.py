"""The QuickBooks Online sandbox app: Accounting API v3 under ``/v3/company/{realmId}``,
Intuit OAuth 2, and the ``/_sandbox`` control plane."""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
from datetime import timedelta
from typing import Any, Callable, Literal

from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from koppel.sandbox.control import ControlMiddleware, SandboxControl, control_router
from koppel.sandbox.quickbooks import entities, faults, operations, query, seed
from koppel.sandbox.quickbooks.oauth import DISCOVERY_PATH, OAuthServer, oauth_router
from koppel.sandbox.quickbooks.store import Realm, Store, parse_time, utcnow

MIN_MINOR_VERSION = 75
MAX_BATCH_ITEMS = 30
CDC_MAX_DAYS = 30
SPECIAL_QUERY_ENTITIES = {"companyinfo": "CompanyInfo", "preferences": "Preferences"}


class SandboxState:
    """Everything one QBO sandbox serves; ``reset`` rebuilds it from a seed."""

    def __init__(self, seed_value: int, base_url: str | None, control: SandboxControl) -> None:
        self.control = control
        self.base_url = base_url.rstrip("/") if base_url else None
        self.throttle_format = "xml"
        self._lock = threading.Lock()
        self.reset(seed_value)

    def reset(self, seed_value: int) -> None:
        with self._lock:
            self.seed = seed_value
            self.store = Store()
            self.oauth = OAuthServer(self.control, seed_value)
            self.add_realm("NL", "Koppel Demo B.V.")
            self.add_realm("US", "Koppel Demo Inc.")

    def add_realm(self, region: str, name: str) -> Realm:
        realm = Realm(id=self.store.new_realm_id(), region=region, name=name)
        return self.store.add(seed.seed_realm(realm))

    def public_base(self, request: Request) -> str:
        return self.base_url or str(request.base_url).rstrip("/")

    def credentials(self, realm: Realm, request: Request) -> dict[str, str]:
        base = self.public_base(request)
        return {"client_id": self.oauth.client_id, "client_secret": self.oauth.client_secret,
                "realm_id": realm.id, "region": realm.region,
                "refresh_token": self.oauth.issue_refresh_token(realm.id),
                "discovery_url": base + DISCOVERY_PATH, "api_base_url": base + "/v3"}


def _json(body: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status)


def _with_time(body: dict) -> dict:
    return {**body, "time": faults.now_stamp()}


# -- the guarded API call -----------------------------------------------------------------
def _guard(state: SandboxState, request: Request, realm_id: str,
           batch: bool = False) -> Realm | Response:
    grant = state.oauth.check_access(request.headers.get("authorization"))
    if grant is None:
        return faults.auth_failed_response()
    realm = state.store.get(realm_id)
    if realm is None or grant.realm_id != realm.id:
        return faults.realm_forbidden_response()
    minor = request.query_params.get("minorversion")
    if minor is None:
        state.control.stats.count("minorversion_missing")
    elif not minor.isdigit():
        return faults.fault_response(faults.QBOFault(
            2170, "Invalid Enumeration", f"Invalid minorversion : {minor}", "minorversion"))
    elif int(minor) < MIN_MINOR_VERSION:
        state.control.stats.count("minorversion_below_75")
    if not realm.limits.acquire(state.control, batch=batch):
        return faults.throttle_response(state.throttle_format)
    return realm


async def _call(state: SandboxState, request: Request, realm_id: str,
                work: Callable[[Realm], dict], *, batch: bool = False,
                idempotent: bool = False) -> Response:
    """Auth, throttles, ``requestid`` replay and fault rendering around ``work``."""
    guarded = _guard(state, request, realm_id, batch)
    if isinstance(guarded, Response):
        return guarded
    realm = guarded
    request_id = request.query_params.get("requestid") if idempotent else None

    def run() -> tuple[int, dict]:
        with realm.lock:
            if request_id:
                cached = realm.remembered(request_id)
                if cached is not None:
                    state.control.stats.count("requestid_replays")
                    return cached
            try:
                status, body = 200, _with_time(work(realm))
            except faults.QBOFault as fault:
                status, body = fault.status, fault.body()
            if request_id:
                realm.remember(request_id, status, body)
            return status, body

    try:
        status, body = await run_in_threadpool(run)
    finally:
        realm.limits.release()
    return _json(body, status)


def _params(request: Request) -> dict[str, str]:
    return {k.lower(): v for k, v in request.query_params.items()}


# -- query, batch, upload, cdc ------------------------------------------------------------
def _query_entity(name: str) -> str:
    special = SPECIAL_QUERY_ENTITIES.get(name.lower())
    if special:
        return special
    entity = entities.URL_NAMES.get(name.lower())
    if entity is None:
        raise faults.query_invalid(f"Invalid entity name {name}")
    return entity


def run_query(realm: Realm, text: str) -> dict[str, Any]:
    parsed = query.parse(text)
    entity = _query_entity(parsed.entity)
    if entity == "CompanyInfo":
        rows = [seed.company_info(realm)]
    elif entity == "Preferences":
        rows = [seed.preferences(realm)]
    else:
        rows = realm.all(entity)
    result = query.run(parsed, rows, entity in entities.HAS_ACTIVE)
    if isinstance(result, int):
        return {"totalCount": result}
    if not result:
        return {}
    return {entity: result, "startPosition": parsed.start_position, "maxResults": len(result)}


def _batch_item(realm: Realm, item: dict, stats) -> dict[str, Any]:
    answer: dict[str, Any] = {"bId": item.get("bId")}
    try:
        if "Query" in item:
            answer["QueryResponse"] = run_query(realm, str(item["Query"]))
            return answer
        names = [key for key in item if key in entities.URL_NAMES.values()]
        if len(names) != 1:
            raise faults.required("BatchItemRequest entity")
        entity = names[0]
        stats.count(f"entity:{entity}")
        operation = str(item.get("operation", "create")).lower()
        payload = item[entity]
        if operation == "create":
            payload = {k: v for k, v in payload.items() if k != "Id"}
            answer[entity] = operations.create(realm, entity, payload, {})
        elif operation == "update":
            answer[entity] = operations.update(realm, entity, payload, {})
        elif operation == "delete":
            answer[entity] = operations.delete(realm, entity, payload)
        elif operation == "void":
            answer[entity] = operations.void(realm, entity, payload)
        else:
            raise faults.invalid_enum("operation", operation)
    except faults.QBOFault as fault:
        answer["Fault"] = fault.fault()
    return answer


def run_batch(realm: Realm, body: dict, stats) -> dict[str, Any]:
    items = body.get("BatchItemRequest")
    if not isinstance(items, list) or not items:
        raise faults.required("BatchItemRequest")
    if len(items) > MAX_BATCH_ITEMS:
        raise faults.business(f"The batch request contains {len(items)} items; at most "
                              f"{MAX_BATCH_ITEMS} are allowed.", "BatchItemRequest")
    stats.count("batch_operations", len(items))
    # writes inside batches, so a client can tell a read-only batch from one that wrote
    stats.count("batch_write_operations",
                sum(1 for item in items if isinstance(item, dict) and "Query" not in item))
    return {"BatchItemResponse": [_batch_item(realm, item, stats) for item in items]}


def parse_multipart(body: bytes, content_type: str) -> dict[str, tuple[dict[str, str], bytes]]:
    """A lenient multipart/form-data reader (python-quickbooks sends bare ``\\n`` line
    ends): ``{name: (headers, content)}`` with base64 parts decoded."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not match:
        raise faults.required("multipart boundary")
    delimiter = b"--" + match.group(1).encode()
    parts: dict[str, tuple[dict[str, str], bytes]] = {}
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk[2:] if chunk.startswith(b"\r\n") else chunk.lstrip(b"\n")
        head, sep, content = chunk.partition(b"\r\n\r\n")
        if not sep:
            head, sep, content = chunk.partition(b"\n\n")
        headers = {}
        for line in head.decode("latin-1").splitlines():
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        name_match = re.search(r'name="([^"]+)"', headers.get("content-disposition", ""))
        if not name_match:
            continue
        if content.endswith(b"\r\n"):
            content = content[:-2]
        elif content.endswith(b"\n"):
            content = content[:-1]
        if headers.get("content-transfer-encoding", "").lower() == "base64":
            try:
                content = base64.b64decode(b"".join(content.split()), validate=True)
            except (binascii.Error, ValueError) as exc:
                raise faults.business(f"file content is not valid base64: {exc}") from exc
        parts[name_match.group(1)] = (headers, content)
    return parts


def run_upload(realm: Realm, parts: dict, download_base: str) -> dict[str, Any]:
    responses = []
    for name in sorted(p for p in parts if p.startswith("file_content_")):
        suffix = name[len("file_content_"):]
        headers, content = parts[name]
        metadata: dict = {}
        if f"file_metadata_{suffix}" in parts:
            try:
                metadata = json.loads(parts[f"file_metadata_{suffix}"][1].decode() or "{}")
            except ValueError as exc:
                raise faults.business(f"file_metadata_{suffix} is not JSON") from exc
        content_type = headers.get("content-type", "application/octet-stream")
        filename = re.search(r'filename="([^"]+)"', headers.get("content-disposition", ""))
        if filename and not metadata.get("FileName"):
            metadata["FileName"] = filename.group(1)
        try:
            attachable = operations.attach_upload(realm, metadata, content, content_type,
                                                  download_base)
            responses.append({"Attachable": attachable})
        except faults.QBOFault as fault:
            responses.append({"Fault": fault.fault()})
    if not responses:
        raise faults.required("file_content_01")
    return {"AttachableResponse": responses}


def run_cdc(realm: Realm, params: dict[str, str]) -> dict[str, Any]:
    names = [n.strip() for n in params.get("entities", "").split(",") if n.strip()]
    if not names:
        raise faults.required("entities")
    since_text = params.get("changedsince")
    if not since_text:
        raise faults.required("changedSince")
    since = parse_time(since_text)
    if since is None:
        raise faults.QBOFault(2170, "Invalid Enumeration", f"Invalid changedSince: {since_text}",
                              "changedSince")
    if since < utcnow() - timedelta(days=CDC_MAX_DAYS):
        raise faults.business(f"changedSince must be within the last {CDC_MAX_DAYS} days.",
                              "changedSince")
    responses = []
    for name in names:
        entity = entities.URL_NAMES.get(name.lower())
        if entity is None:
            raise faults.invalid_reference("entities", "Entity", name)
        rows = operations.changed_since(realm, entity, since)
        responses.append({entity: rows, "startPosition": 1, "maxResults": len(rows)}
                         if rows else {})
    return {"CDCResponse": [{"QueryResponse": responses}]}


# -- routers --------------------------------------------------------------------------------
def api_router(state: SandboxState) -> APIRouter:
    router = APIRouter(prefix="/v3/company/{realm_id}", tags=["Accounting API v3"])
    stats = state.control.stats

    @router.get("/companyinfo/{company_id}")
    async def company_info(realm_id: str, company_id: str, request: Request) -> Response:
        def work(realm: Realm) -> dict:
            if company_id != realm.id:
                raise faults.not_found("CompanyInfo", company_id)
            return {"CompanyInfo": seed.company_info(realm)}
        return await _call(state, request, realm_id, work)

    @router.get("/preferences")
    async def preferences(realm_id: str, request: Request) -> Response:
        return await _call(state, request, realm_id,
                           lambda realm: {"Preferences": seed.preferences(realm)})

    @router.api_route("/query", methods=["GET", "POST"])
    async def run_query_route(realm_id: str, request: Request) -> Response:
        text = request.query_params.get("query") or (await request.body()).decode()
        return await _call(state, request, realm_id,
                           lambda realm: {"QueryResponse": run_query(realm, text)})

    @router.post("/batch")
    async def batch(realm_id: str, request: Request) -> Response:
        raw = await request.body()

        def work(realm: Realm) -> dict:
            try:
                body = json.loads(raw or b"{}")
            except ValueError as exc:
                raise faults.business("The request body is not valid JSON.") from exc
            return run_batch(realm, body, stats)
        return await _call(state, request, realm_id, work, batch=True, idempotent=True)

    @router.post("/upload")
    async def upload(realm_id: str, request: Request) -> Response:
        raw = await request.body()
        content_type = request.headers.get("content-type", "")
        base = state.public_base(request)
        stats.count("entity:Attachable")
        return await _call(state, request, realm_id, lambda realm: run_upload(
            realm, parse_multipart(raw, content_type),
            f"{base}/_sandbox/realms/{realm.id}/attachments"), idempotent=True)

    @router.get("/cdc")
    async def cdc(realm_id: str, request: Request) -> Response:
        return await _call(state, request, realm_id,
                           lambda realm: run_cdc(realm, _params(request)))

    @router.get("/{entity_name}/{obj_id}")
    async def read(realm_id: str, entity_name: str, obj_id: str, request: Request) -> Response:
        def work(realm: Realm) -> dict:
            entity = operations.resolve_entity(entity_name)
            stats.count(f"entity:{entity}")
            return {entity: operations.read(realm, entity, obj_id)}
        return await _call(state, request, realm_id, work)

    @router.post("/{entity_name}")
    async def write(realm_id: str, entity_name: str, request: Request) -> Response:
        raw = await request.body()
        params = _params(request)

        def work(realm: Realm) -> dict:
            entity = operations.resolve_entity(entity_name)
            stats.count(f"entity:{entity}")
            try:
                payload = json.loads(raw or b"{}")
            except ValueError as exc:
                raise faults.business("The request body is not valid JSON.") from exc
            if isinstance(payload, dict) and entity in payload and len(payload) == 1:
                payload = payload[entity]
            if not isinstance(payload, dict):
                raise faults.business("The request body must be a JSON object.")
            return {entity: operations.write(realm, entity, params.get("operation"),
                                             params.get("include", ""), payload, params)}
        return await _call(state, request, realm_id, work, idempotent=True)

    return router


class NewRealm(BaseModel):
    region: Literal["NL", "US"] = "NL"
    name: str = Field("Sandbox Company", min_length=1, max_length=100)


class TokenSettings(BaseModel):
    access_token_seconds: float | None = Field(None, gt=0)
    refresh_grace_seconds: float | None = Field(None, ge=0)


class ResetBody(BaseModel):
    seed: int | None = None


class ThrottleFormat(BaseModel):
    format: Literal["xml", "json"]


def sandbox_router(state: SandboxState) -> APIRouter:
    """QBO-specific control routes (never throttled, faulted or counted)."""
    router = APIRouter(prefix="/_sandbox", tags=["sandbox control"])

    def realm_or_404(realm_id: str | None) -> Realm:
        realm = state.store.get(realm_id or state.store.default_realm_id)
        if realm is None:
            raise _NotFound(realm_id)
        return realm

    @router.get("/credentials")
    def credentials(request: Request, realm: str | None = None) -> dict[str, str]:
        return state.credentials(realm_or_404(realm), request)

    @router.get("/realms")
    def realms() -> list[dict[str, str]]:
        return [{"realm_id": r.id, "region": r.region, "name": r.name,
                 "default": str(r.id == state.store.default_realm_id).lower()}
                for r in state.store.realms.values()]

    @router.post("/realms", status_code=201)
    def add_realm(body: NewRealm, request: Request) -> dict[str, str]:
        return state.credentials(state.add_realm(body.region, body.name), request)

    @router.put("/tokens")
    def tokens(body: TokenSettings) -> dict[str, float]:
        if body.access_token_seconds is not None:
            state.oauth.access_token_seconds = body.access_token_seconds
        if body.refresh_grace_seconds is not None:
            state.oauth.refresh_grace_seconds = body.refresh_grace_seconds
        return {"access_token_seconds": state.oauth.access_token_seconds,
                "refresh_grace_seconds": state.oauth.refresh_grace_seconds}

    @router.post("/reset")
    def reset(body: ResetBody | None = None) -> dict[str, Any]:
        access, grace = state.oauth.access_token_seconds, state.oauth.refresh_grace_seconds
        state.reset(body.seed if body and body.seed is not None else state.seed)
        state.oauth.access_token_seconds, state.oauth.refresh_grace_seconds = access, grace
        return {"status": "reset", "seed": state.seed,
                "default_realm": state.store.default_realm_id}

    @router.put("/throttle-format")
    def throttle_format(body: ThrottleFormat) -> dict[str, str]:
        state.throttle_format = body.format
        return {"format": state.throttle_format}

    @router.get("/realms/{realm_id}/entities/{entity_name}")
    def entity_dump(realm_id: str, entity_name: str) -> dict[str, Any]:
        realm = realm_or_404(realm_id)
        entity = entities.URL_NAMES.get(entity_name.lower())
        if entity is None:
            raise _NotFound(entity_name)
        with realm.lock:
            return {entity: realm.all(entity),
                    "deleted": [t.id for t in realm.tombstones if t.entity == entity]}

    @router.get("/realms/{realm_id}/attachments/{attachable_id}")
    def attachment(realm_id: str, attachable_id: str) -> Response:
        realm = realm_or_404(realm_id)
        with realm.lock:
            obj, content = realm.get("Attachable", attachable_id), \
                realm.attachments.get(attachable_id)
        if obj is None or content is None:
            raise _NotFound(attachable_id)
        return Response(content, media_type=obj.get("ContentType", "application/octet-stream"))

    return router


class _NotFound(Exception):
    def __init__(self, what: Any) -> None:
        super().__init__(f"not found: {what}")


def create_app(seed: int = 1, base_url: str | None = None, time_scale: float = 1.0) -> FastAPI:
    """The QBO sandbox. ``base_url`` is the public URL (for the discovery document and
    credentials); None derives it from each request."""
    control = SandboxControl(seed=seed)
    control.time_scale = time_scale
    state = SandboxState(seed, base_url, control)
    app = FastAPI(title="koppel QuickBooks Online sandbox",
                  description="Accounting API v3 + Intuit OAuth 2 emulator")
    app.state.sandbox = state
    app.state.control = control

    @app.exception_handler(faults.QBOFault)
    async def qbo_fault(_: Request, fault: faults.QBOFault) -> JSONResponse:
        return faults.fault_response(fault)

    @app.exception_handler(_NotFound)
    async def sandbox_not_found(_: Request, exc: _NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    app.include_router(control_router(control))
    app.include_router(sandbox_router(state))
    app.include_router(oauth_router(lambda: state.oauth, state.public_base))
    app.include_router(api_router(state))

    def render(kind: str, rule) -> Response:
        if kind == "429":
            return faults.throttle_response(state.throttle_format)
        return faults.server_error_response(int(kind))

    app.add_middleware(ControlMiddleware, control=control, fault_response=render)
    return app
