"""The QuickBooks Online sandbox app: Accounting API v3 under ``/v3/company/{realmId}``,
Intuit OAuth 2, and the ``/_sandbox`` control plane.

Multicurrency on the control plane (QBO turns it on in its UI only, never through the API):
``POST /_sandbox/realms`` takes ``{"multicurrency": true, "currencies": ["USD", "GBP"]}``;
``GET|PUT /_sandbox/realms/{id}/multicurrency`` (``{"enabled": true, "currencies": [...]}``;
turning it off is 409, as in QBO); ``GET|PUT /_sandbox/realms/{id}/exchange-rates``
(``{"source": "USD", "rate": 0.9, "as_of": "2025-06-01"}``: home units per unit of
``source`` from that day on). ``InvoiceLink`` (``include=invoiceLink``) points at
``/_sandbox/realms/{id}/invoice-link/{invoice id}``."""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
from datetime import timedelta
from typing import Any, Callable, Literal

from fastapi import APIRouter, FastAPI, HTTPException, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, JSONResponse, Response

from koppel.sandbox.control import ControlMiddleware, SandboxControl, control_router
from koppel.limits import QUICKBOOKS
from koppel.sandbox.quickbooks import currencies, entities, faults, operations, query, seed
from koppel.sandbox.quickbooks.oauth import DISCOVERY_PATH, OAuthServer, oauth_router
from koppel.sandbox.quickbooks.store import Realm, Store, parse_time, utcnow

MIN_MINOR_VERSION = 75
MAX_BATCH_ITEMS = QUICKBOOKS.batch_items
CDC_MAX_DAYS = QUICKBOOKS.cdc_max_days
SPECIAL_QUERY_ENTITIES = {"companyinfo": "CompanyInfo", "preferences": "Preferences",
                          "exchangerate": "ExchangeRate"}


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

    def add_realm(self, region: str, name: str, multicurrency: bool = False,
                  currency_codes: tuple[str, ...] = ()) -> Realm:
        realm = Realm(id=self.store.new_realm_id(), region=region, name=name)
        realm = self.store.add(seed.seed_realm(realm))
        if multicurrency:
            enable_multicurrency(realm, currency_codes)
        return realm

    def public_base(self, request: Request) -> str:
        return self.base_url or str(request.base_url).rstrip("/")

    def credentials(self, realm: Realm, request: Request) -> dict[str, str]:
        base = self.public_base(request)
        return {"client_id": self.oauth.client_id, "client_secret": self.oauth.client_secret,
                "realm_id": realm.id, "region": realm.region,
                "refresh_token": self.oauth.issue_refresh_token(realm.id),
                "discovery_url": base + DISCOVERY_PATH, "api_base_url": base + "/v3"}


def enable_multicurrency(realm: Realm, currency_codes: tuple[str, ...] | list[str] = ()) -> None:
    """Turn multicurrency on (for good, as in QBO) and add company currencies."""
    with realm.lock:
        realm.multicurrency = True
        for code in currency_codes:
            if code.upper() != realm.home_currency:
                operations.add_company_currency(realm, code)


def currency_state(realm: Realm) -> dict[str, Any]:
    return {"realm_id": realm.id, "home_currency": realm.home_currency,
            "multicurrency": realm.multicurrency,
            "currencies": [{"Id": c["Id"], "Code": c["Code"], "Active": c.get("Active", True)}
                           for c in realm.all("CompanyCurrency")]}


def invoice_link(base: str, realm: Realm, invoice: dict) -> str | None:
    """``InvoiceLink`` (``include=invoiceLink``): Intuit generates it "only for invoices with
    online payment enabled and having a valid customer email address". The sandbox treats
    online payment as enabled; the e-mail is ``BillEmail`` or the customer's."""
    email = (invoice.get("BillEmail") or {}).get("Address")
    if not email:
        customer = realm.get("Customer", (invoice.get("CustomerRef") or {}).get("value"))
        email = ((customer or {}).get("PrimaryEmailAddr") or {}).get("Address")
    if not email or not entities.EMAIL.match(str(email).split(",")[0].strip()):
        return None
    return f"{base}/_sandbox/realms/{realm.id}/invoice-link/{invoice['Id']}"


def _with_links(base: str | None, realm: Realm, invoice: dict) -> dict:
    link = invoice_link(base, realm, invoice) if base else None
    return {**invoice, "InvoiceLink": link} if link else invoice


def _wants_link(params: dict[str, str]) -> bool:
    return "invoicelink" in params.get("include", "").lower()


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
    entity = entities.URL_NAMES.get(name.lower()) or entities.UNMODELLED_NAMES.get(name.lower())
    if entity is None:
        raise faults.query_invalid(f"Invalid entity name {name}")
    return entity


def run_query(realm: Realm, text: str, link_base: str | None = None) -> dict[str, Any]:
    """``link_base``: add ``InvoiceLink`` to Invoice rows (``include=invoiceLink``)."""
    parsed = query.parse(text)
    entity = _query_entity(parsed.entity)
    if entity == "CompanyInfo":
        rows = [seed.company_info(realm)]
    elif entity == "Preferences":
        rows = [seed.preferences(realm)]
    elif entity == "ExchangeRate":
        as_of = next((str(c.value) for c in parsed.conditions
                      if c.field.lower() == "asofdate" and c.op == "="), None)
        rows = operations.exchange_rate_rows(realm, as_of)
    elif entity in entities.UNMODELLED:
        rows = []  # none held (and no empty table added to the realm)
    else:
        rows = realm.all(entity)
    result = query.run(parsed, rows, entity in entities.HAS_ACTIVE)
    if isinstance(result, int):
        return {"totalCount": result}
    if not result:
        return {}
    if entity == "Invoice" and link_base:
        result = [_with_links(link_base, realm, row) for row in result]
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
    writes = sum(1 for item in items if isinstance(item, dict) and "Query" not in item)
    stats.count("batch_write_operations", writes)
    # batch requests by what they carry (statistics of the control plane, not QuickBooks')
    stats.count("batch_requests_with_writes" if writes else "batch_requests_reads_only", 1)
    if writes and writes < len(items):
        stats.count("batch_requests_mixed", 1)
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
        if name.lower() in entities.UNMODELLED_NAMES:
            responses.append({})  # none held, so none changed
            continue
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
        base = state.public_base(request) if _wants_link(_params(request)) else None
        return await _call(state, request, realm_id,
                           lambda realm: {"QueryResponse": run_query(realm, text, base)})

    @router.get("/exchangerate")
    async def exchange_rate(realm_id: str, request: Request) -> Response:
        params = _params(request)
        return await _call(state, request, realm_id, lambda realm: operations.exchange_rate(
            realm, params.get("sourcecurrencycode"), params.get("asofdate")))

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

    @router.get("/download/{attachable_id}")
    async def download(realm_id: str, attachable_id: str, request: Request) -> Response:
        """The temporary download URL of an uploaded file, as ``text/plain`` (Intuit,
        "Attach images and notes": ``GET /download/{attachableId}``)."""
        guarded = _guard(state, request, realm_id)
        if isinstance(guarded, Response):
            return guarded
        realm = guarded
        base = state.public_base(request)
        try:
            uri = await run_in_threadpool(
                operations.download_uri, realm, attachable_id,
                f"{base}/_sandbox/realms/{realm.id}/attachments")
        except faults.QBOFault as fault:
            return faults.fault_response(fault)
        finally:
            realm.limits.release()
        return Response(uri, media_type="text/plain")

    @router.get("/cdc")
    async def cdc(realm_id: str, request: Request) -> Response:
        return await _call(state, request, realm_id,
                           lambda realm: run_cdc(realm, _params(request)))

    @router.get("/{entity_name}/{obj_id}")
    async def read(realm_id: str, entity_name: str, obj_id: str, request: Request) -> Response:
        base = state.public_base(request) if _wants_link(_params(request)) else None

        def work(realm: Realm) -> dict:
            entity = operations.resolve_entity(entity_name)
            stats.count(f"entity:{entity}")
            obj = operations.read(realm, entity, obj_id)
            if entity == "Invoice" and base:
                obj = _with_links(base, realm, obj)
            return {entity: obj}
        return await _call(state, request, realm_id, work)

    @router.post("/{entity_name}")
    async def write(realm_id: str, entity_name: str, request: Request) -> Response:
        raw = await request.body()
        params = _params(request)
        base = state.public_base(request) if _wants_link(params) else None

        def work(realm: Realm) -> dict:
            special = entity_name.lower() == "exchangerate"
            entity = "ExchangeRate" if special else operations.resolve_entity(entity_name)
            stats.count(f"entity:{entity}")
            try:
                payload = json.loads(raw or b"{}")
            except ValueError as exc:
                raise faults.business("The request body is not valid JSON.") from exc
            if isinstance(payload, dict) and entity in payload and len(payload) == 1:
                payload = payload[entity]
            if not isinstance(payload, dict):
                raise faults.business("The request body must be a JSON object.")
            if special:
                return operations.set_exchange_rate(realm, payload)
            obj = operations.write(realm, entity, params.get("operation"),
                                   params.get("include", ""), payload, params)
            if entity == "Invoice" and base and obj.get("Id") and "status" not in obj:
                obj = _with_links(base, realm, obj)
            return {entity: obj}
        return await _call(state, request, realm_id, work, idempotent=True)

    return router


class NewRealm(BaseModel):
    region: Literal["NL", "US"] = "NL"
    name: str = Field("Sandbox Company", min_length=1, max_length=100)
    #: create the company with multicurrency on (QBO: only in the UI, never through the API)
    multicurrency: bool = False
    #: company currencies to add (ISO codes; needs ``multicurrency``)
    currencies: list[str] = Field(default_factory=list)


class MulticurrencyBody(BaseModel):
    enabled: bool = True
    currencies: list[str] = Field(default_factory=list)


class ExchangeRateBody(BaseModel):
    source: str = Field(min_length=3, max_length=3)
    rate: float = Field(gt=0)
    as_of: str | None = None  # yyyy-mm-dd, today when absent


def _check_codes(codes: list[str]) -> tuple[str, ...]:
    unknown = [c for c in codes if not currencies.known(c)]
    if unknown:
        raise HTTPException(422, f"unknown currency codes: {', '.join(unknown)}")
    return tuple(c.upper() for c in codes)


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
                 "default": str(r.id == state.store.default_realm_id).lower(),
                 "home_currency": r.home_currency,
                 "multicurrency": str(r.multicurrency).lower()}
                for r in state.store.realms.values()]

    @router.post("/realms", status_code=201)
    def add_realm(body: NewRealm, request: Request) -> dict[str, str]:
        codes = _check_codes(body.currencies)
        if codes and not body.multicurrency:
            raise HTTPException(422, "currencies need multicurrency: true")
        realm = state.add_realm(body.region, body.name, body.multicurrency, codes)
        return state.credentials(realm, request)

    @router.get("/realms/{realm_id}/multicurrency")
    def multicurrency_state(realm_id: str) -> dict[str, Any]:
        realm = realm_or_404(realm_id)
        with realm.lock:
            return currency_state(realm)

    @router.put("/realms/{realm_id}/multicurrency")
    def multicurrency(realm_id: str, body: MulticurrencyBody) -> dict[str, Any]:
        """Turn multicurrency on (and add company currencies); QBO can't turn it off."""
        realm = realm_or_404(realm_id)
        codes = _check_codes(body.currencies)
        if not body.enabled:
            if realm.multicurrency:
                raise HTTPException(409, "multicurrency can't be turned off once it is on")
            if codes:
                raise HTTPException(422, "currencies need enabled: true")
            return currency_state(realm)
        enable_multicurrency(realm, codes)
        with realm.lock:
            return currency_state(realm)

    @router.get("/realms/{realm_id}/exchange-rates")
    def exchange_rates(realm_id: str) -> dict[str, Any]:
        realm = realm_or_404(realm_id)
        with realm.lock:
            return {"home_currency": realm.home_currency,
                    "rates": [{"source": code, "as_of": day, "rate": float(entry["Rate"])}
                              for code, days in sorted(realm.exchange_rates.items())
                              for day, entry in sorted(days.items())]}

    @router.put("/realms/{realm_id}/exchange-rates")
    def set_exchange_rate(realm_id: str, body: ExchangeRateBody) -> dict[str, Any]:
        """Set the rate (home units per unit of ``source``) from ``as_of`` on."""
        realm = realm_or_404(realm_id)
        if not realm.multicurrency:
            raise HTTPException(409, "turn multicurrency on first")
        payload = {"SourceCurrencyCode": body.source, "Rate": body.rate,
                   "AsOfDate": body.as_of or utcnow().date().isoformat()}
        try:
            return operations.set_exchange_rate(realm, payload)
        except faults.QBOFault as fault:
            raise HTTPException(422, fault.detail) from fault

    @router.get("/realms/{realm_id}/invoice-link/{invoice_id}")
    def invoice_page(realm_id: str, invoice_id: str) -> HTMLResponse:
        """Where ``InvoiceLink`` points: a stand-in for Intuit's pay-online page."""
        realm = realm_or_404(realm_id)
        with realm.lock:
            invoice = realm.get("Invoice", invoice_id)
        if invoice is None:
            raise _NotFound(invoice_id)
        currency = (invoice.get("CurrencyRef") or {}).get("value", realm.home_currency)
        return HTMLResponse(
            f"<!doctype html><title>Invoice {invoice.get('DocNumber', '')}</title>"
            f"<h1>{realm.name}: invoice {invoice.get('DocNumber', '')}</h1>"
            f"<p>Balance due: {invoice.get('Balance', 0)} {currency}</p>")

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
    from koppel.sandbox.quickbooks import control_routes  # fault controls, see its docstring
    control_routes.mount(app, state)
    return app
