"""``QuickBooksHook``: every call koppel makes to the QuickBooks Online Accounting API v3.

Transport lives in one place, :meth:`QuickBooksHook.send`: it paces (500 requests/min,
10/s, 10 concurrent and 40 batch requests/min per realm, in this process; Airflow pools
cover the cross-process part), adds a valid bearer token (refreshing before expiry and
again after a 401), detects throttling before parsing (QBO answers it in XML), retries
429/5xx/timeouts/drops with backoff, and counts calls by endpoint. The python-quickbooks
client from :meth:`QuickBooksHook.get_client` sends through it too, so QuickBooks objects
(``Customer.save(qb=hook.get_client())``) get the same pacing, refresh and typed faults.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import httpx
from quickbooks import QuickBooks

from airflow.sdk import BaseHook
from koppel.hooks.errors import (
    AuthError,
    KoppelAPIError,
    QBOError,
    QBOFault,
    QBOThrottled,
    QBOTransientError,
    StaleObject,
    fault_from_payload,
)
from koppel.hooks.pacing import CallCounter, SlidingWindowLimiter
from koppel.limits import QUICKBOOKS as PUBLISHED
from koppel.hooks.retry import RetryPolicy, parse_retry_after
from koppel.hooks.tokens import OAuthClient, TokenManager, TokenStore, mask

API_BASE = {
    "production": "https://quickbooks.api.intuit.com/v3",
    "sandbox": "https://sandbox-quickbooks.api.intuit.com/v3",
}
MIN_MINOR_VERSION = 75
BATCH_SIZE = PUBLISHED.batch_items
MAX_RESULTS = 1000
# fields QBO filters with "=" only: one query per value, under the look-up policy
# (``QuickBooksHook.query_many``: plain queries, a batch of queries above 12 unless the
# caller's writes to follow bind the batch budget)
EQUALS_ONLY_FIELDS = {"PrimaryEmailAddr"}


def plain_lookups_cheaper(lookups: int, writes: int) -> bool:
    """Whether ``lookups`` queries followed by ``writes`` batched writes take no longer
    under the realm's published limits as plain queries than as batches of queries.

    The two budgets run side by side: as plain queries the pair needs the longer of
    ``lookups / 500`` and ``write batches / 40`` minutes; as batches, ``(look-up batches
    + write batches) / 40``. With no writes this is 12 look-ups or fewer (the plain
    budget's 500 against one batch's 1/40); a chunk of 1,000 orders with ~450 look-ups
    and ~1,400 writes sends them plain. The realm's published budgets decide, not a
    process's pacing (a task's share of them, or none where a sandbox lifts them): the
    choice is which of the realm's two budgets a look-up spends."""
    per_minute, batches_per_minute = PUBLISHED.requests_per_minute, \
        PUBLISHED.batch_requests_per_minute
    write_batches = math.ceil(max(0, writes) / BATCH_SIZE)
    plain = max(lookups / per_minute, write_batches / batches_per_minute)
    batched = (math.ceil(lookups / BATCH_SIZE) + write_batches) / batches_per_minute
    return plain <= batched


def request_id(*parts: Any) -> str:
    """A deterministic QBO ``requestid`` (≤ 50 chars) from e.g. (tenant, entity, source id,
    source version): retrying the same write can never create a second object."""
    text = "\x1f".join("" if p is None else str(p) for p in parts)
    return "k" + hashlib.sha256(text.encode()).hexdigest()[:40]


_derive_request_id = request_id


def _digest(body: Any) -> str:
    """A stable hash of a request body (Decimals as their exact text)."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def quote(value: Any) -> str:
    """A QBO query literal: strings single-quoted with ``\\'`` escapes."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, Decimal)):
        return str(value)
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


@dataclass(frozen=True)
class QBOSettings:
    """One company (realm) of one Intuit app. Secrets stay out of ``repr``."""

    client_id: str
    client_secret: str = field(repr=False)
    realm_id: str
    refresh_token: str = field(repr=False)
    environment: str = "production"
    api_base_url: str | None = None
    minor_version: int = MIN_MINOR_VERSION

    @property
    def base_url(self) -> str:
        if self.api_base_url:
            return self.api_base_url.rstrip("/")
        env = self.environment.lower()
        if env in API_BASE:
            return API_BASE[env]
        raise AuthError("a custom environment needs the API base URL (connection host)")

    @classmethod
    def from_connection(cls, conn: Any) -> "QBOSettings":
        extra = conn.extra_dejson if hasattr(conn, "extra_dejson") else {}

        def pick(name: str, default: Any = None) -> Any:
            return extra.get(name) or extra.get(f"extra__quickbooks_online__{name}") or default

        host = conn.host or None
        if host and "://" not in host:
            host = "https://" + host
        if host and conn.port:
            parsed = httpx.URL(host)
            if parsed.port is None:
                host = str(parsed.copy_with(port=conn.port))
        minor = int(pick("minor_version", MIN_MINOR_VERSION) or MIN_MINOR_VERSION)
        return cls(client_id=conn.login or "", client_secret=conn.password or "",
                   realm_id=str(pick("realm_id", "") or ""),
                   refresh_token=str(pick("refresh_token", "") or ""),
                   environment=str(pick("environment", "production")),
                   api_base_url=host, minor_version=max(MIN_MINOR_VERSION, minor))


@dataclass(frozen=True)
class QBOLimits:
    """Per-process pacing of one realm. ``window`` is the minute (shrink it together with a
    sandbox time scale); ``throttle_wait`` is the pause after a 429 without Retry-After."""

    per_minute: int = PUBLISHED.requests_per_minute
    per_second: int = PUBLISHED.requests_per_second
    concurrent: int = PUBLISHED.concurrent_requests
    batches_per_minute: int = PUBLISHED.batch_requests_per_minute
    window: float = PUBLISHED.window_seconds
    throttle_wait: float = PUBLISHED.throttle_wait_seconds

    @classmethod
    def scaled(cls, time_scale: float) -> "QBOLimits":
        return cls(window=PUBLISHED.window_seconds / time_scale,
                   throttle_wait=PUBLISHED.throttle_wait_seconds / time_scale)


@dataclass(frozen=True)
class BatchOp:
    """One batch item: an entity write (``operation`` create|update|delete) or a query."""

    bid: str
    operation: str | None = None
    entity: str | None = None
    payload: Mapping[str, Any] | None = None
    query: str | None = None

    def to_item(self) -> dict[str, Any]:
        if self.query is not None:
            return {"bId": self.bid, "Query": self.query}
        if not (self.operation and self.entity and self.payload is not None):
            raise ValueError("a batch write needs operation, entity and payload")
        return {"bId": self.bid, "operation": self.operation, self.entity: dict(self.payload)}


@dataclass
class BatchResult:
    """The answer to one batch item: ``value`` (an entity or a QueryResponse) or ``fault``."""

    bid: str
    value: dict[str, Any] | None = None
    fault: QBOFault | None = None

    @property
    def ok(self) -> bool:
        return self.fault is None


class _KoppelQuickBooks(QuickBooks):
    """python-quickbooks' client with the hook as its transport and typed faults."""

    hook: "QuickBooksHook"

    def process_request(self, request_type, url, headers="", params="", data=""):
        return self.hook.send(request_type, url, headers=dict(headers or {}),
                              params=dict(params or {}), content=data)

    @staticmethod
    def handle_exceptions(results):
        raise fault_from_payload(results)


class _Limiter:
    """The realm's pacing in this process."""

    def __init__(self, limits: QBOLimits, sleep: Callable[[float], None]) -> None:
        self.minute = SlidingWindowLimiter(limits.per_minute, limits.window, sleep=sleep)
        self.second = SlidingWindowLimiter(limits.per_second, 1.0, sleep=sleep)
        self.batches = SlidingWindowLimiter(limits.batches_per_minute, limits.window,
                                            sleep=sleep)
        self.concurrent = threading.BoundedSemaphore(limits.concurrent)


class QuickBooksHook(BaseHook):
    """Hook for one QuickBooks Online company (connection type ``quickbooks_online``).

    ``QuickBooksHook("qbo_acme")`` reads the Airflow connection; pass ``settings=QBOSettings(…)``
    to build one without Airflow. Tokens are kept in ``token_store`` (koppel's state DB by
    default)."""

    conn_name_attr = "quickbooks_conn_id"
    default_conn_name = "quickbooks_default"
    conn_type = "quickbooks_online"
    hook_name = "QuickBooks Online"
    #: deterministic ``requestid`` for a write (see :func:`request_id`)
    request_id = staticmethod(request_id)

    def __init__(self, quickbooks_conn_id: str = default_conn_name, *,
                 settings: QBOSettings | None = None, token_store: TokenStore | None = None,
                 retry: RetryPolicy | None = None, limits: QBOLimits | None = None,
                 timeout: float = 120.0, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.quickbooks_conn_id = quickbooks_conn_id
        self._settings = settings
        self._token_store = token_store
        self.retry = retry or RetryPolicy(attempts=6, initial=1.0, maximum=60.0)
        self.limits = limits or QBOLimits()
        self.timeout = timeout
        self._sleep = sleep
        #: the wall clock the access token's lifetime is judged by
        self._clock = clock
        self.counter = CallCounter()
        self._limiter = _Limiter(self.limits, sleep)
        self._http: httpx.Client | None = None
        self._tokens: TokenManager | None = None
        self._client: _KoppelQuickBooks | None = None
        self._lock = threading.Lock()

    # -- construction ---------------------------------------------------------------------
    @property
    def settings(self) -> QBOSettings:
        if self._settings is None:
            self._settings = QBOSettings.from_connection(
                self.get_connection(self.quickbooks_conn_id))
            mask(self._settings.client_secret, self._settings.refresh_token)
        return self._settings

    @property
    def realm_id(self) -> str:
        return self.settings.realm_id

    @property
    def company_url(self) -> str:
        return f"{self.settings.base_url}/company/{self.settings.realm_id}"

    @property
    def tokens(self) -> TokenManager:
        with self._lock:
            if self._tokens is None:
                s = self.settings
                if not (s.client_id and s.client_secret and s.realm_id and s.refresh_token):
                    raise AuthError("the connection needs client id, client secret, realm id "
                                    "and refresh token")
                oauth = OAuthClient(s.client_id, s.client_secret, s.environment,
                                    timeout=min(self.timeout, 60.0), sleep=self._sleep)
                self._oauth = oauth
                self._tokens = TokenManager(self._token_store or TokenStore(), s.client_id,
                                            s.realm_id, s.refresh_token, oauth.refresh,
                                            clock=self._clock)
            return self._tokens

    def get_conn(self) -> httpx.Client:
        if self._http is None:
            self._http = httpx.Client(timeout=self.timeout)
        return self._http

    def get_client(self) -> QuickBooks:
        """A python-quickbooks client bound to this hook's transport."""
        if self._client is None:
            s = self.settings
            client = _KoppelQuickBooks(company_id=s.realm_id, minorversion=s.minor_version)
            client.hook = self
            client.sandbox = False
            client.api_url_v3 = s.base_url
            self._client = client
        return self._client

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def __enter__(self) -> "QuickBooksHook":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def calls(self):
        """API calls so far, ``Counter({"POST query": 3, …})`` (every attempt counts)."""
        return self.counter.snapshot()

    # -- transport ------------------------------------------------------------------------
    def _template(self, method: str, url: str) -> str:
        path = httpx.URL(url).path
        prefix = httpx.URL(self.company_url).path
        rest = path[len(prefix):].strip("/") if path.startswith(prefix) else path
        rest = re.sub(r"/\d+(?=/|$)", "/{id}", rest)
        return rest or "/"

    def send(self, method: str, url: str, *, headers: dict[str, str] | None = None,
             params: dict[str, Any] | None = None, content: Any = None,
             record_id: Any = None, retry: RetryPolicy | None = None) -> httpx.Response:
        """Send one request with pacing, a valid token and retries. Returns the final
        response (2xx, or a 4xx fault for the caller to parse); raises typed errors for
        throttling, 5xx and network failures once retries are spent, and for auth."""
        params = dict(params or {})
        params["minorversion"] = max(int(params.get("minorversion") or 0),
                                     self.settings.minor_version)
        template = self._template(method, url)
        is_batch = template == "batch"
        body = content if isinstance(content, (str, bytes)) or content is None else \
            json.dumps(content, default=_json_default)
        if body in ({}, "{}") and method == "GET":
            body = None
        path = httpx.URL(url).path

        def attempt() -> httpx.Response:
            token = self.tokens.access_token()
            response = self._send_once(method, url, headers, params, body, token, template,
                                       is_batch, path, record_id)
            if response.status_code == 401:
                token = self.tokens.access_token(rejected=token)
                response = self._send_once(method, url, headers, params, body, token,
                                           template, is_batch, path, record_id)
                if response.status_code == 401:
                    raise AuthError("access token refused twice: the app's authorisation "
                                    "was revoked or the realm is not connected",
                                    method=method, path=path, status=401, record_id=record_id)
            return response

        try:
            return (retry or self.retry).call(attempt, sleep=self._sleep)
        except AuthError as exc:
            raise _named_connection(exc, self.quickbooks_conn_id) from None

    def _send_once(self, method: str, url: str, headers: dict[str, str] | None,
                   params: dict[str, Any], body: Any, token: str, template: str,
                   is_batch: bool, path: str, record_id: Any) -> httpx.Response:
        all_headers = {"Accept": "application/json", "Content-Type": "application/json",
                       "User-Agent": "koppel", **(headers or {}),
                       "Authorization": f"Bearer {token}"}
        if is_batch:
            self._limiter.batches.acquire()
        self._limiter.minute.acquire()
        self._limiter.second.acquire()
        self.counter.add(method, template)
        with self._limiter.concurrent:
            try:
                response = self.get_conn().request(method, url, params=params, content=body,
                                                   headers=all_headers)
            except httpx.TimeoutException as exc:
                raise QBOTransientError(f"timeout ({type(exc).__name__})", method=method,
                                        path=path, record_id=record_id) from None
            except httpx.TransportError as exc:
                raise QBOTransientError(f"connection failed ({type(exc).__name__})",
                                        method=method, path=path, record_id=record_id) from None
        if _is_throttled(response):
            # Intuit documents no header on a 429, only "wait 60 seconds" (throttle_wait);
            # a Retry-After, when sent, is honoured instead; intuit_tid is for support.
            wait = parse_retry_after(response.headers.get("retry-after"))
            tid = response.headers.get("intuit_tid")
            raise QBOThrottled("throttled by QuickBooks (ThrottleExceeded"
                               + (f", intuit_tid {tid})" if tid else ")"),
                               retry_after=wait if wait is not None else
                               self.limits.throttle_wait,
                               method=method, path=path, status=429, record_id=record_id)
        if response.status_code >= 500:
            raise QBOTransientError(_fault_message(response), method=method, path=path,
                                    status=response.status_code, record_id=record_id)
        if response.status_code == 403:
            raise AuthError(_fault_message(response), method=method, path=path, status=403,
                            record_id=record_id)
        return response

    def api(self, method: str, endpoint: str, *, body: Any = None, text: str | None = None,
            params: Mapping[str, Any] | None = None, request_id: str | None = None,
            record_id: Any = None) -> dict[str, Any]:
        """Call ``{base}/company/{realm}/{endpoint}`` and return the decoded answer, or raise
        the typed fault (:mod:`koppel.hooks.errors`)."""
        query = dict(params or {})
        if request_id:
            query["requestid"] = request_id
        headers = {"Content-Type": "application/text"} if text is not None else None
        url = f"{self.company_url}/{endpoint.lstrip('/')}"
        response = self.send(method, url, headers=headers, params=query,
                             content=text if text is not None else body, record_id=record_id)
        try:
            data = json.loads(response.text, parse_float=Decimal) if response.content else {}
        except ValueError:
            raise QBOError("unreadable answer", method=method, path=httpx.URL(url).path,
                           status=response.status_code, record_id=record_id) from None
        fault = data.get("Fault") or data.get("fault") if isinstance(data, dict) else None
        if fault:
            raise fault_from_payload(fault, method=method, path=httpx.URL(url).path,
                                     status=response.status_code, record_id=record_id)
        if not response.is_success:
            raise QBOError(f"HTTP {response.status_code}", method=method,
                           path=httpx.URL(url).path, status=response.status_code,
                           record_id=record_id)
        return data

    # -- entities ---------------------------------------------------------------------------
    def read(self, entity: str, entity_id: Any) -> dict[str, Any]:
        data = self.api("GET", f"{entity.lower()}/{entity_id}", record_id=entity_id)
        return data[entity]

    def company_info(self) -> dict[str, Any]:
        data = self.api("GET", f"companyinfo/{self.realm_id}")
        return data.get("CompanyInfo", data)

    def create(self, entity: str, payload: Mapping[str, Any], *,
               request_id: str | None = None, record_id: Any = None) -> dict[str, Any]:
        """Create an entity. Pass a :func:`request_id` so a retry returns the same object."""
        data = self.api("POST", entity.lower(), body=dict(payload), request_id=request_id,
                        record_id=record_id)
        return data[entity]

    def update(self, entity: str, payload: Mapping[str, Any], *,
               request_id: str | None = None, record_id: Any = None) -> dict[str, Any]:
        """Full or sparse update (``payload`` carries ``Id``, ``SyncToken`` and ``sparse``)."""
        data = self.api("POST", entity.lower(), body=dict(payload), request_id=request_id,
                        record_id=record_id or payload.get("Id"))
        return data[entity]

    def sparse_update(self, entity: str, entity_id: Any, changes: Mapping[str, Any], *,
                      sync_token: Any = None, request_id: str | None = None,
                      attempts: int = 3) -> dict[str, Any]:
        """Sparse update with the current SyncToken; on a stale object (5010) refetch and
        retry (each retry with its own request id, derived from ``request_id``)."""
        token = sync_token
        for attempt in range(1, attempts + 1):
            if token is None:
                token = self.read(entity, entity_id)["SyncToken"]
            rid = request_id if attempt == 1 or request_id is None else \
                _derive_request_id(request_id, "stale", attempt)
            try:
                return self.update(entity, {**changes, "Id": str(entity_id),
                                            "SyncToken": str(token), "sparse": True},
                                   request_id=rid, record_id=entity_id)
            except StaleObject:
                if attempt == attempts:
                    raise
                token = None
        raise AssertionError("unreachable")  # pragma: no cover

    def delete(self, entity: str, entity_id: Any, sync_token: Any, *,
               request_id: str | None = None) -> dict[str, Any]:
        return self.api("POST", entity.lower(), body={"Id": str(entity_id),
                                                      "SyncToken": str(sync_token)},
                        params={"operation": "delete"}, request_id=request_id,
                        record_id=entity_id)

    # -- queries ----------------------------------------------------------------------------
    def query(self, sql: str) -> dict[str, Any]:
        """Run one query; returns the ``QueryResponse`` object."""
        return self.api("POST", "query", text=sql).get("QueryResponse", {})

    def query_many(self, queries: Mapping[str, str], *,
                   writes_to_follow: int = 0) -> dict[str, list[dict[str, Any]]]:
        """Named look-ups, ``name -> rows``: koppel's one policy for reading several things
        from QuickBooks at once, chosen by what they cost under the published limits
        (https://developer.intuit.com/app/developer/qbo/docs/learn/limits-and-throttles):
        500 requests and 40 batch requests per minute per realm, two budgets.

        A batch request costs 1/40 of the realm's minute and a plain request 1/500, so up
        to :attr:`plain_lookups_max` look-ups (500 // 40 = 12) go as plain queries and
        leave the batch budget to the writes, which only a batch carries 30 at a time.
        More look-ups than that (per-e-mail customer look-ups: QuickBooks filters
        ``PrimaryEmailAddr`` with ``=`` only) still go as plain queries when the caller
        is about to send ``writes_to_follow`` writes whose batches take longer than the
        look-ups do in the plain budget (:func:`plain_lookups_cheaper`): the batches then
        carry writes only. Otherwise they go as batches of up to 30 queries, which is
        then the cheaper way. Each statement may hold an ``IN (…)`` list
        (:meth:`query_in`). Rows are the answer's list whatever the entity; a fault
        raises."""
        def rows(value: Mapping[str, Any]) -> list[dict[str, Any]]:
            return list(next((v for v in value.values() if isinstance(v, list)), []))
        if len(queries) <= self.plain_lookups_max or (
                writes_to_follow and plain_lookups_cheaper(len(queries), writes_to_follow)):
            return {name: rows(self.query(sql)) for name, sql in queries.items()}
        results = self.batch([BatchOp(bid=name, query=sql) for name, sql in queries.items()])
        for result in results.values():
            if result.fault is not None:
                raise result.fault
        return {name: rows(result.value or {}) for name, result in results.items()}

    @property
    def plain_lookups_max(self) -> int:
        """Look-ups that cost less time as plain queries than as one batch request, by
        the realm's published budgets (500 // 40 = 12; a process's pacing — a task's
        share, or none where a sandbox lifts the limits — does not change the realm's)."""
        return max(1, PUBLISHED.requests_per_minute // PUBLISHED.batch_requests_per_minute)

    def query_all(self, entity: str, where: str | None = None, *, order_by: str = "Id",
                  page_size: int = MAX_RESULTS, select: str = "*") -> Iterator[dict[str, Any]]:
        """Every row of a query, paged with STARTPOSITION/MAXRESULTS."""
        start = 1
        while True:
            sql = f"SELECT {select} FROM {entity}"
            if where:
                sql += f" WHERE {where}"
            sql += f" ORDERBY {order_by} STARTPOSITION {start} MAXRESULTS {page_size}"
            rows = self.query(sql).get(entity, [])
            yield from rows
            if len(rows) < page_size:
                return
            start += page_size

    def count(self, entity: str, where: str | None = None) -> int:
        sql = f"SELECT COUNT(*) FROM {entity}" + (f" WHERE {where}" if where else "")
        return int(self.query(sql).get("totalCount", 0))

    def query_in(self, entity: str, field_name: str, values: Iterable[Any],
                 extra_where: str | None = None, *, chunk_size: int = 100,
                 max_sql_chars: int = 3000, select: str = "*") -> list[dict[str, Any]]:
        """Rows whose ``field_name`` is one of ``values``, in few calls.

        Chunks ``IN (…)`` lists so each statement stays under ``chunk_size`` values and
        ``max_sql_chars``; each chunk is paged. Fields QBO filters with ``=`` only
        (``PrimaryEmailAddr``) go as one ``=`` query each instead, under the look-up
        policy of :meth:`query_many` (plain queries, batches above 12 with no writes to
        follow)."""
        unique = list(dict.fromkeys(v for v in values if v not in (None, "")))
        if not unique:
            return []
        if field_name in EQUALS_ONLY_FIELDS:
            return self._query_equals_each(entity, field_name, unique, extra_where, select)
        rows: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(unique, chunk_size, max_sql_chars):
            where = f"{field_name} IN ({', '.join(quote(v) for v in chunk)})"
            if extra_where:
                where += f" AND {extra_where}"
            for row in self.query_all(entity, where, select=select):
                rows[str(row.get("Id"))] = row
        return list(rows.values())

    def _query_equals_each(self, entity: str, field_name: str, values: list[Any],
                              extra_where: str | None, select: str) -> list[dict[str, Any]]:
        """One ``=`` query per value (:meth:`query_many`)."""
        queries = {}
        for index, value in enumerate(values):
            where = f"{field_name} = {quote(value)}"
            if extra_where:
                where += f" AND {extra_where}"
            queries[f"q{index}"] = (f"SELECT {select} FROM {entity} WHERE {where} "
                                    f"MAXRESULTS {MAX_RESULTS}")
        rows: dict[str, dict[str, Any]] = {}
        for found in self.query_many(queries).values():
            for row in found:
                rows[str(row.get("Id"))] = row
        return list(rows.values())

    # -- batch ------------------------------------------------------------------------------
    def batch(self, operations: Sequence[BatchOp], *,
              request_id: str | None = None) -> dict[str, BatchResult]:
        """Run operations in batch requests of ≤ 30 (40 batch requests/min are paced);
        returns ``bId -> BatchResult``. A bad item faults alone; the others go through.

        With ``request_id`` each batch request carries a ``requestid`` derived from it and
        from the request's content, so a batch of writes that is retried (a dropped
        connection, a killed task that runs again with the same input) is answered from the
        first attempt, not written twice — while a retry that sends other writes (some were
        found done meanwhile) is a new request, not answered with the old one's results."""
        bids = [op.bid for op in operations]
        if len(set(bids)) != len(bids):
            raise ValueError("batch bIds must be unique")
        results: dict[str, BatchResult] = {}
        for start in range(0, len(operations), BATCH_SIZE):
            chunk = operations[start:start + BATCH_SIZE]
            body = {"BatchItemRequest": [op.to_item() for op in chunk]}
            data = self.api("POST", "batch", body=body,
                            request_id=_derive_request_id(request_id, "batch", _digest(body))
                            if request_id else None)
            by_bid = {op.bid: op for op in chunk}
            for item in data.get("BatchItemResponse", []):
                bid = str(item.get("bId"))
                op = by_bid.get(bid)
                if "Fault" in item:
                    results[bid] = BatchResult(bid, fault=fault_from_payload(
                        item["Fault"], method="POST", path="batch", record_id=bid))
                elif "QueryResponse" in item:
                    results[bid] = BatchResult(bid, value=item["QueryResponse"])
                else:
                    key = op.entity if op and op.entity in item else next(
                        (k for k in item if k not in ("bId", "time")), None)
                    results[bid] = BatchResult(bid, value=item.get(key) if key else None)
            for bid in by_bid:
                if bid not in results:
                    results[bid] = BatchResult(bid, fault=QBOFault(
                        "no answer for this batch item", method="POST", path="batch",
                        record_id=bid))
        return results

    # -- connection test --------------------------------------------------------------------
    def test_connection(self) -> tuple[bool, str]:
        """The connection's Test button (Airflow's ``POST /api/v2/connections/test``).

        Checks the client id and secret at Intuit's token endpoint and reads the company
        info, and says what it checked. It never rotates nor replaces the refresh token a
        running tenant uses (see :func:`koppel.hooks.tokens.grant_for_test`): koppel's
        current access token is used when it was seeded from this connection and is fresh;
        the refresh token is exchanged only when no tenant has used this app on this
        company yet. A one-line answer, never a secret."""
        try:
            s = self.settings
            missing = [name for name, value in (("client id", s.client_id),
                                                ("client secret", s.client_secret),
                                                ("realm id", s.realm_id),
                                                ("refresh token", s.refresh_token)) if not value]
            if missing:
                return False, "Missing " + ", ".join(missing)
            s.base_url  # noqa: B018 - a custom environment without an API base URL
            return True, self._test_connection_checks()
        except AuthError as exc:
            return False, f"Authorisation failed: {exc.message}"
        except QBOTransientError as exc:
            return False, f"Cannot reach QuickBooks: {exc.message}"
        except KoppelAPIError as exc:
            return False, f"QuickBooks answered an error: {exc}"
        except Exception as exc:  # a broken connection definition and the like
            return False, f"{type(exc).__name__}: {exc}"

    def _test_connection_checks(self) -> str:
        from koppel.hooks.tokens import check_client, grant_for_test

        s = self.settings
        quick = RetryPolicy(attempts=2, initial=0.2, maximum=1.0)
        oauth = OAuthClient(s.client_id, s.client_secret, s.environment,
                            timeout=min(self.timeout, 30.0), retry=quick, sleep=self._sleep)
        store = self._token_store or TokenStore()
        grant = grant_for_test(store, s.client_id, s.realm_id, s.refresh_token, oauth.refresh)
        if grant.source != "exchanged":
            check_client(oauth)
        checked = "client id and secret accepted by the token endpoint"
        if grant.access_token:
            info = self._test_company_info(grant.access_token, quick)
            name = info.get("CompanyName") or info.get("LegalName") or "(no name)"
            reached = f"QuickBooks company '{name}' (realm {s.realm_id}) reachable"
        else:
            reached = (f"QuickBooks company (realm {s.realm_id}) not read: koppel's access "
                       f"token for it has expired and the next run refreshes it")
        until = _utc(grant.expires_at)
        if grant.source == "stored":
            return (f"{reached} with koppel's current access token (valid until {until}); "
                    f"{checked}; refresh token not exchanged")
        if grant.source == "exchanged":
            return (f"{reached}; refresh token exchanged and the rotated one stored for the "
                    f"first run; access token valid until {until}")
        whose = ("this connection's" if grant.seed_matches else
                 "another connection's (this connection's refresh token is not the one "
                 "koppel uses for this company)")
        return (f"{reached}; {checked}; refresh token not exchanged: koppel holds the live "
                f"token for this company, from {whose} authorisation, last refreshed "
                f"{_utc(grant.refreshed_at)}, and a test never rotates it")

    def _test_company_info(self, access_token: str, retry: RetryPolicy) -> dict[str, Any]:
        """GET the company info with ``access_token`` as it is: no refresh, no 401 retry."""
        url = f"{self.company_url}/companyinfo/{self.realm_id}"
        path = httpx.URL(url).path

        def attempt() -> httpx.Response:
            try:
                response = self.get_conn().get(
                    url, params={"minorversion": self.settings.minor_version},
                    headers={"Authorization": f"Bearer {access_token}",
                             "Accept": "application/json"}, timeout=min(self.timeout, 30.0))
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                raise QBOTransientError(f"unreachable ({type(exc).__name__})", method="GET",
                                        path=path) from None
            self.counter.add("GET", self._template("GET", url))
            if response.status_code >= 500 or _is_throttled(response):
                raise QBOTransientError(_fault_message(response), method="GET", path=path,
                                        status=response.status_code)
            return response

        response = retry.call(attempt, sleep=self._sleep)
        if response.status_code in (401, 403):
            raise AuthError(f"the company refused koppel's access token "
                            f"(HTTP {response.status_code}): check the realm id",
                            method="GET", path=path, status=response.status_code)
        try:
            data = response.json() if response.content else {}
        except ValueError:
            raise QBOError("unreadable answer", method="GET", path=path,
                           status=response.status_code) from None
        fault = data.get("Fault") or data.get("fault") if isinstance(data, dict) else None
        if fault:
            raise fault_from_payload(fault, method="GET", path=path,
                                     status=response.status_code)
        if not response.is_success:
            raise QBOError(f"HTTP {response.status_code}", method="GET", path=path,
                           status=response.status_code)
        return data.get("CompanyInfo", data)


def _utc(epoch: float | None) -> str:
    """``2026-12-04 21:30 UTC`` (or ``unknown``)."""
    if not epoch:
        return "unknown"
    import datetime as _dt

    return _dt.datetime.fromtimestamp(epoch, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _is_throttled(response: httpx.Response) -> bool:
    if response.status_code == 429:
        return True
    if response.status_code in (400, 403, 503):
        text = response.text[:2000]
        return "ThrottleExceeded" in text or ">3001<" in text or '"3001"' in text
    return False


def _fault_message(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    fault = data.get("Fault") or data.get("fault") if isinstance(data, dict) else None
    if fault:
        return fault_from_payload(fault).message
    return f"HTTP {response.status_code}"


def _chunks(values: list[Any], size: int, max_chars: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    length = 0
    for value in values:
        literal = len(quote(value)) + 2
        if chunk and (len(chunk) >= size or length + literal > max_chars):
            yield chunk
            chunk, length = [], 0
        chunk.append(value)
        length += literal
    if chunk:
        yield chunk


def _named_connection(exc: AuthError, conn_id: str) -> AuthError:
    """``exc`` with the Airflow connection it concerns in its message: a tenant's operator
    must know which connection to re-authorise (never a secret: only the id)."""
    if f"connection '{conn_id}'" in exc.message:
        return exc
    named = AuthError(f"connection '{conn_id}': {exc.message}", status=exc.status,
                      method=exc.method, path=exc.path, record_id=exc.record_id)
    for key, value in vars(exc).items():
        if key not in vars(named):
            setattr(named, key, value)
    return named

