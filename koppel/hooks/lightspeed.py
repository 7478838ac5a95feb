"""``LightspeedHook``: every call koppel makes to the Lightspeed eCom (C-Series) REST API.

One :class:`httpx.Client` per hook, HTTP Basic with the API key and secret, URLs
``{base}/{language}/{resource}.json``. Every request goes through :meth:`LightspeedHook.request`,
which paces from the ``X-RateLimit-*`` headers (and 20 requests/second), retries 429, 5xx,
timeouts, dropped connections and the transient 404s of order endpoints with backoff
(honouring ``Retry-After``), maps errors to :mod:`koppel.hooks.errors` and counts calls by
endpoint template (:attr:`LightspeedHook.calls`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, Iterable, Iterator, Mapping, TypeVar
from urllib.parse import urlparse

import httpx

from airflow.sdk import BaseHook
from koppel.hooks.errors import (
    KoppelAPIError,
    LightspeedAuthError,
    LightspeedError,
    LightspeedNotFound,
    LightspeedRateLimited,
    LightspeedTransientError,
    LightspeedValidationError,
    RateLimitExhausted,
)
from koppel.hooks.lightspeed_models import (
    Attribute,
    Category,
    CategoryProduct,
    Customer,
    LSModel,
    Order,
    OrderRow,
    Product,
    ProductAttribute,
    ProductImage,
    ProductType,
    Shop,
    Variant,
)
from koppel.hooks.pacing import CallCounter, HeaderPacer, SlidingWindowLimiter, reset_fallback
from koppel.limits import LIGHTSPEED
from koppel.hooks.paging import PageNumberPaginator, Paginator, SinceIdPaginator, UpdatedWindow
from koppel.hooks.retry import RetryPolicy, parse_retry_after

M = TypeVar("M", bound=LSModel)

CLUSTERS = {
    "eu1": "https://api.webshopapp.com",
    "us1": "https://api.shoplightspeed.com",
}


def resolve_base_url(host: str | None) -> str:
    """``eu1``/``us1`` or a URL (scheme optional) → base URL without trailing slash."""
    value = (host or "eu1").strip()
    if value.lower() in CLUSTERS:
        return CLUSTERS[value.lower()]
    if "://" not in value:
        value = "https://" + value
    return value.rstrip("/")


@dataclass(frozen=True)
class LightspeedSettings:
    """What the hook needs to talk to one shop. Secrets are kept out of ``repr``."""

    base_url: str
    api_key: str = field(repr=False)
    api_secret: str = field(repr=False)
    language: str = "nl"

    @classmethod
    def from_connection(cls, conn: Any) -> "LightspeedSettings":
        extra = conn.extra_dejson if hasattr(conn, "extra_dejson") else {}
        language = (extra.get("language") or extra.get("extra__lightspeed_ecom__language")
                    or conn.schema or "nl")
        host = conn.host
        if host and conn.port and "://" in host:
            parsed = urlparse(host)
            if not parsed.port:
                host = f"{parsed.scheme}://{parsed.hostname}:{conn.port}{parsed.path}"
        return cls(base_url=resolve_base_url(host), api_key=conn.login or "",
                   api_secret=conn.password or "", language=str(language).strip().lower())


@dataclass(frozen=True)
class Resource:
    """A list endpoint: path template, list key, count path and the model of its records."""

    path: str
    key: str
    model: type[LSModel]

    @property
    def count_path(self) -> str:
        return self.path.removesuffix(".json") + "/count.json"


RESOURCES: dict[str, Resource] = {
    "orders": Resource("orders.json", "orders", Order),
    "order_rows": Resource("orders/{order_id}/products.json", "orderProducts", OrderRow),
    "customers": Resource("customers.json", "customers", Customer),
    "products": Resource("products.json", "products", Product),
    "variants": Resource("variants.json", "variants", Variant),
    "categories": Resource("categories.json", "categories", Category),
    "categories_products": Resource("categories/products.json", "categoriesProducts",
                                    CategoryProduct),
    "product_images": Resource("products/{product_id}/images.json", "productImages",
                               ProductImage),
    "product_attributes": Resource("products/{product_id}/attributes.json",
                                   "productAttributes", ProductAttribute),
    "types": Resource("types.json", "types", ProductType),
    "attributes": Resource("attributes.json", "attributes", Attribute),
    "types_attributes": Resource("types/attributes.json", "typesAttributes", LSModel),
    "variants_movements": Resource("variants/movements.json", "variantsMovements", LSModel),
    "order_metafields": Resource("orders/{order_id}/metafields.json", "orderMetafields",
                                 LSModel),
}

_ORDER_TEMPLATE_PREFIX = "orders"


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _error_parts(response: httpx.Response) -> tuple[str, dict[str, Any]]:
    """The API's own message (and per-field errors) from an error answer."""
    try:
        body = response.json()
    except ValueError:
        return (response.reason_phrase or f"HTTP {response.status_code}"), {}
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or response.reason_phrase), error.get("errors") or {}
    if isinstance(error, str):
        return error, {}
    return response.reason_phrase or f"HTTP {response.status_code}", {}


class LightspeedHook(BaseHook):
    """Hook for a Lightspeed eCom shop (connection type ``lightspeed_ecom``).

    ``LightspeedHook("my_shop")`` reads the Airflow connection; ``LightspeedHook.from_settings(
    base_url=…, api_key=…, api_secret=…, language=…)`` builds one without Airflow.

    :param max_pause: longest a single pacing wait may last; beyond it the hook raises
        :class:`~koppel.hooks.errors.RateLimitExhausted` so the task can be retried later.
    :param transient_404_retries: how often a 404 on an order endpoint is retried before it
        counts as "not found".
    """

    conn_name_attr = "lightspeed_conn_id"
    default_conn_name = "lightspeed_default"
    conn_type = "lightspeed_ecom"
    hook_name = "Lightspeed eCom"

    def __init__(self, lightspeed_conn_id: str = default_conn_name, *,
                 settings: LightspeedSettings | None = None,
                 retry: RetryPolicy | None = None, timeout: float = 30.0,
                 max_pause: float = 600.0, per_second: int = LIGHTSPEED.requests_per_second,
                 transient_404_retries: int = 2, low_water: float = 0.2,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__()
        self.lightspeed_conn_id = lightspeed_conn_id
        self._settings = settings
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self.max_pause = max_pause
        self.transient_404_retries = transient_404_retries
        self._sleep = sleep
        self.pacer = HeaderPacer(low_water=low_water)
        self.per_second = SlidingWindowLimiter(per_second, 1.0, sleep=sleep)
        self.counter = CallCounter()
        self._client: httpx.Client | None = None

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def from_settings(cls, *, base_url: str, api_key: str, api_secret: str,
                      language: str = "nl", **kwargs: Any) -> "LightspeedHook":
        settings = LightspeedSettings(resolve_base_url(base_url), api_key, api_secret,
                                      language.lower())
        return cls(settings=settings, **kwargs)

    @property
    def settings(self) -> LightspeedSettings:
        if self._settings is None:
            conn = self.get_connection(self.lightspeed_conn_id)
            self._settings = LightspeedSettings.from_connection(conn)
            self._mask(self._settings)
        return self._settings

    @staticmethod
    def _mask(settings: LightspeedSettings) -> None:
        try:
            from airflow.sdk.log import mask_secret
        except ImportError:  # pragma: no cover - older SDKs
            return
        for secret in (settings.api_key, settings.api_secret):
            if secret:
                mask_secret(secret)

    def get_conn(self) -> httpx.Client:
        """The shop's HTTP client (base URL includes the language)."""
        if self._client is None:
            s = self.settings
            self._client = httpx.Client(
                base_url=f"{s.base_url}/{s.language}/",
                auth=httpx.BasicAuth(s.api_key, s.api_secret),
                timeout=self.timeout,
                headers={"Accept": "application/json", "User-Agent": "koppel"},
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> "LightspeedHook":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def calls(self):
        """API calls so far, ``Counter({"GET orders.json": 3, …})`` (every attempt counts)."""
        return self.counter.snapshot()

    # -- transport ------------------------------------------------------------------------
    def request(self, method: str, template: str, *, params: Mapping[str, Any] | None = None,
                body: Any = None, record_id: Any = None, retry: RetryPolicy | None = None,
                raw: bool = False, **path_params: Any) -> Any:
        """Send one API call (with pacing and retries); returns the decoded JSON body
        (floats as Decimal), or the :class:`httpx.Response` when ``raw``."""
        path = template.format(**path_params)
        not_found_seen = {"n": 0}

        def attempt() -> Any:
            self._pace(method, path)
            self.counter.add(method, template)
            try:
                content = None if body is None else json.dumps(body, default=_json_default)
                response = self.get_conn().request(
                    method, path, params=dict(params or {}), content=content,
                    headers={"Content-Type": "application/json"} if content else None)
            except httpx.TimeoutException as exc:
                raise LightspeedTransientError(f"timeout ({type(exc).__name__})",
                                               method=method, path=path,
                                               record_id=record_id) from None
            except httpx.TransportError as exc:
                raise LightspeedTransientError(f"connection failed ({type(exc).__name__})",
                                               method=method, path=path,
                                               record_id=record_id) from None
            self.pacer.observe(response.headers)
            if response.is_success:
                if raw:
                    return response
                if not response.content:
                    return {}
                try:
                    return json.loads(response.text, parse_float=Decimal)
                except ValueError:
                    raise LightspeedTransientError("unreadable JSON answer", method=method,
                                                   path=path, status=response.status_code,
                                                   record_id=record_id) from None
            transient_404 = (response.status_code == 404
                             and template.startswith(_ORDER_TEMPLATE_PREFIX)
                             and not_found_seen["n"] < self.transient_404_retries)
            if transient_404:
                not_found_seen["n"] += 1
            raise self._error(response, method, path, record_id, transient_404)

        return (retry or self.retry).call(attempt, sleep=self._sleep)

    def _pace(self, method: str, path: str) -> None:
        wait = self.pacer.delay()
        if wait > self.max_pause:
            raise RateLimitExhausted(
                f"Lightspeed rate limit spent; resets in {wait:.0f} s (max pause "
                f"{self.max_pause:.0f} s)", resets_in=wait, method=method, path=path)
        if wait > 0:
            self.log.debug("pacing Lightspeed calls: waiting %.2f s", wait)
            self._sleep(wait)
        self.per_second.acquire()
        self.pacer.spend()

    def _error(self, response: httpx.Response, method: str, path: str, record_id: Any,
               transient_404: bool) -> KoppelAPIError:
        status = response.status_code
        message, errors = _error_parts(response)
        kw = dict(method=method, path=path, status=status, record_id=record_id, errors=errors)
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            if retry_after is None:
                retry_after = reset_fallback(response.headers)
            if retry_after is not None:
                self.pacer.hold_until(retry_after)
            return LightspeedRateLimited(message, retry_after=retry_after, **kw)
        if status >= 500 or transient_404:
            return LightspeedTransientError(message, **kw)
        if status in (401, 403):
            return LightspeedAuthError(message, **kw)
        if status == 404:
            return LightspeedNotFound(message, **kw)
        if status in (400, 409, 422):
            return LightspeedValidationError(message, **kw)
        return LightspeedError(message, **kw)

    # -- reading --------------------------------------------------------------------------
    def iter_pages(self, resource: str | Resource, *, paginator: Paginator | None = None,
                   params: Mapping[str, Any] | None = None,
                   **path_params: Any) -> Iterator[list[dict[str, Any]]]:
        """Raw pages of a list endpoint, as lists of API records."""
        spec = RESOURCES[resource] if isinstance(resource, str) else resource
        paginator = paginator or PageNumberPaginator()
        page_params: dict[str, Any] | None = paginator.first()
        while page_params is not None:
            query = {**(params or {}), **page_params}
            data = self.request("GET", spec.path, params=query, **path_params)
            records = (data.get(spec.key) or []) if isinstance(data, dict) else []
            if not isinstance(records, list):  # a shop answers ``false`` for "none"
                records = []
            yield records
            page_params = paginator.next(records)

    def iter_records(self, resource: str | Resource, *, paginator: Paginator | None = None,
                     params: Mapping[str, Any] | None = None,
                     window: UpdatedWindow | None = None, **path_params: Any) -> Iterator[Any]:
        """Stream typed records of a list endpoint, each id at most once.

        With ``window`` the scan pages by ``since_id`` (stable while records change), sends
        the widened ``updated_at`` filter and keeps only records inside the window."""
        spec = RESOURCES[resource] if isinstance(resource, str) else resource
        query = dict(params or {})
        if window is not None:
            query.update(window.params())
            paginator = paginator or SinceIdPaginator()
        seen: set[int] = set()
        for page in self.iter_pages(spec, paginator=paginator, params=query, **path_params):
            for record in page:
                rid = int(record["id"])
                if rid in seen or (window is not None and not window.contains(record)):
                    continue
                seen.add(rid)
                yield spec.model.from_api(record)

    def iter_orders(self, window: UpdatedWindow | None = None, *, since_id: int | None = None,
                    **filters: Any) -> Iterator[Order]:
        """Orders (without rows: list answers do not embed them)."""
        paginator = SinceIdPaginator(since_id=since_id) if since_id is not None else None
        return self.iter_records("orders", window=window, paginator=paginator, params=filters)

    def iter_order_rows(self, order_id: int) -> Iterator[OrderRow]:
        return self.iter_records("order_rows", order_id=order_id)

    def iter_customers(self, window: UpdatedWindow | None = None, *,
                       since_id: int | None = None, **filters: Any) -> Iterator[Customer]:
        paginator = SinceIdPaginator(since_id=since_id) if since_id is not None else None
        return self.iter_records("customers", window=window, paginator=paginator,
                                 params=filters)

    def iter_products(self, window: UpdatedWindow | None = None, *,
                      since_id: int | None = None, **filters: Any) -> Iterator[Product]:
        paginator = SinceIdPaginator(since_id=since_id) if since_id is not None else None
        return self.iter_records("products", window=window, paginator=paginator,
                                 params=filters)

    def iter_variants(self, window: UpdatedWindow | None = None, *,
                      since_id: int | None = None, **filters: Any) -> Iterator[Variant]:
        paginator = SinceIdPaginator(since_id=since_id) if since_id is not None else None
        return self.iter_records("variants", window=window, paginator=paginator,
                                 params=filters)

    def iter_categories(self, **filters: Any) -> Iterator[Category]:
        return self.iter_records("categories", params=filters)

    def iter_category_products(self, **filters: Any) -> Iterator[CategoryProduct]:
        return self.iter_records("categories_products", params=filters)

    def iter_product_images(self, product_id: int) -> Iterator[ProductImage]:
        return self.iter_records("product_images", product_id=product_id)

    def iter_product_attributes(self, product_id: int) -> Iterator[ProductAttribute]:
        return self.iter_records("product_attributes", product_id=product_id)

    def iter_types(self) -> Iterator[ProductType]:
        return self.iter_records("types")

    def iter_attributes(self) -> Iterator[Attribute]:
        return self.iter_records("attributes")

    def iter_type_attributes(self) -> Iterator[LSModel]:
        return self.iter_records("types_attributes")

    def count(self, resource: str, **filters: Any) -> int:
        """``{resource}/count.json`` with the same filters as the list."""
        spec = RESOURCES[resource]
        data = self.request("GET", spec.count_path, params=filters)
        return int(data.get("count", 0))

    def _get_one(self, template: str, key: str, model: type[M], record_id: Any,
                 **path_params: Any) -> M:
        data = self.request("GET", template, record_id=record_id, **path_params)
        record = data.get(key) if isinstance(data, dict) else None
        if not isinstance(record, dict):
            raise LightspeedError(f"answer has no '{key}' object", method="GET",
                                  path=template.format(**path_params), record_id=record_id)
        return model.from_api(record)

    def get_shop(self) -> Shop:
        return self._get_one("shop.json", "shop", Shop, None)

    def get_order(self, order_id: int, *, with_rows: bool = True) -> Order:
        """One order. Its rows are embedded by the API; if a shop did not embed them they
        are fetched and put in ``products.resource.embedded`` so ``order.rows`` works."""
        order = self._get_one("orders/{order_id}.json", "order", Order, order_id,
                              order_id=order_id)
        if with_rows and order.rows is None:
            rows = [row.to_api() for row in self.iter_order_rows(order_id)]
            ref = order.products if isinstance(order.products, dict) else {}
            resource = dict(ref.get("resource") or {"id": order_id,
                                                    "url": f"orders/{order_id}/products"})
            resource["embedded"] = rows
            order.products = {"resource": resource}
            if order._raw is not None:
                order._raw = {**order._raw, "products": order.products}
        return order

    def get_order_rows(self, order_id: int) -> list[OrderRow]:
        return list(self.iter_order_rows(order_id))

    def get_customer(self, customer_id: int) -> Customer:
        return self._get_one("customers/{customer_id}.json", "customer", Customer,
                             customer_id, customer_id=customer_id)

    def get_product(self, product_id: int) -> Product:
        return self._get_one("products/{product_id}.json", "product", Product, product_id,
                             product_id=product_id)

    def get_variant(self, variant_id: int) -> Variant:
        return self._get_one("variants/{variant_id}.json", "variant", Variant, variant_id,
                             variant_id=variant_id)

    def download_image(self, url: str, *, record_id: Any = None) -> bytes:
        """Bytes of an image ``src`` (a CDN URL, fetched without the API credentials)."""
        def attempt() -> bytes:
            self.counter.add("GET", "image")
            try:
                response = httpx.get(url, timeout=self.timeout, follow_redirects=True)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                raise LightspeedTransientError(f"image download failed ({type(exc).__name__})",
                                               method="GET", path=urlparse(url).path,
                                               record_id=record_id) from None
            if response.status_code >= 500 or response.status_code == 429:
                raise LightspeedTransientError("image download failed", method="GET",
                                               path=urlparse(url).path,
                                               status=response.status_code,
                                               record_id=record_id)
            if not response.is_success:
                raise LightspeedNotFound("image not available", method="GET",
                                         path=urlparse(url).path,
                                         status=response.status_code, record_id=record_id)
            return response.content

        return self.retry.call(attempt, sleep=self._sleep)

    # -- writing --------------------------------------------------------------------------
    def _write(self, method: str, template: str, key: str, fields: Mapping[str, Any],
               model: type[M] = LSModel, record_id: Any = None, **path_params: Any) -> M:
        data = self.request(method, template, body={key: dict(fields)}, record_id=record_id,
                            **path_params)
        record = data.get(key) if isinstance(data, dict) else None
        if not isinstance(record, dict):
            raise LightspeedError(f"answer has no '{key}' object", method=method,
                                  path=template.format(**path_params), record_id=record_id)
        return model.from_api(record)

    def create_customer(self, fields: Mapping[str, Any]) -> Customer:
        return self._write("POST", "customers.json", "customer", fields, Customer,
                           record_id=fields.get("email"))

    def update_customer(self, customer_id: int, fields: Mapping[str, Any]) -> Customer:
        return self._write("PUT", "customers/{customer_id}.json", "customer", fields, Customer,
                           record_id=customer_id, customer_id=customer_id)

    def update_variant_stock(self, variant_id: int, stock_level: int, *,
                             stock_tracking: str | None = "enabled") -> Variant:
        fields: dict[str, Any] = {"stockLevel": int(stock_level)}
        if stock_tracking is not None:
            fields["stockTracking"] = stock_tracking
        return self._write("PUT", "variants/{variant_id}.json", "variant", fields, Variant,
                           record_id=variant_id, variant_id=variant_id)

    def update_order_status(self, order_id: int, *, status: str | None = None,
                            payment_status: str | None = None,
                            shipment_status: str | None = None) -> Order:
        fields = {k: v for k, v in (("status", status), ("paymentStatus", payment_status),
                                    ("shipmentStatus", shipment_status)) if v is not None}
        if not fields:
            raise ValueError("give at least one of status, payment_status, shipment_status")
        return self._write("PUT", "orders/{order_id}.json", "order", fields, Order,
                           record_id=order_id, order_id=order_id)

    # order metafields
    def iter_order_metafields(self, order_id: int) -> Iterator[LSModel]:
        return self.iter_records("order_metafields", order_id=order_id)

    def create_order_metafield(self, order_id: int, key: str, value: str) -> LSModel:
        return self._write("POST", "orders/{order_id}/metafields.json", "orderMetafield",
                           {"key": key, "value": value}, record_id=order_id, order_id=order_id)

    def update_order_metafield(self, order_id: int, metafield_id: int, value: str) -> LSModel:
        return self._write("PUT", "orders/{order_id}/metafields/{metafield_id}.json",
                           "orderMetafield", {"value": value}, record_id=order_id,
                           order_id=order_id, metafield_id=metafield_id)

    def set_order_metafield(self, order_id: int, key: str, value: str) -> LSModel:
        """Create or update the metafield ``key`` on an order (e.g. the QBO document id)."""
        for field_ in self.iter_order_metafields(order_id):
            if field_.model_extra and field_.model_extra.get("key") == key:
                if field_.model_extra.get("value") == value:
                    return field_
                return self.update_order_metafield(order_id, field_.id, value)
        return self.create_order_metafield(order_id, key, value)

    # checkouts: the only way to create an order
    def create_checkout(self, fields: Mapping[str, Any]) -> LSModel:
        return self._write("POST", "checkouts.json", "checkout", fields)

    def update_checkout(self, checkout_id: int, fields: Mapping[str, Any]) -> LSModel:
        return self._write("PUT", "checkouts/{checkout_id}.json", "checkout", fields,
                           record_id=checkout_id, checkout_id=checkout_id)

    def add_checkout_product(self, checkout_id: int, variant_id: int, quantity: int,
                             **extra: Any) -> Any:
        body = {"product": {"variant_id": int(variant_id), "quantity": int(quantity), **extra}}
        return self.request("POST", "checkouts/{checkout_id}/products.json", body=body,
                            record_id=checkout_id, checkout_id=checkout_id)

    def checkout_payment_methods(self, checkout_id: int) -> Any:
        return self.request("GET", "checkouts/{checkout_id}/payment_methods.json",
                            record_id=checkout_id, checkout_id=checkout_id)

    def checkout_shipment_methods(self, checkout_id: int) -> Any:
        return self.request("GET", "checkouts/{checkout_id}/shipment_methods.json",
                            record_id=checkout_id, checkout_id=checkout_id)

    def validate_checkout(self, checkout_id: int) -> dict[str, Any]:
        return self.request("GET", "checkouts/{checkout_id}/validate.json",
                            record_id=checkout_id, checkout_id=checkout_id)

    def place_checkout_order(self, checkout_id: int, **fields: Any) -> Any:
        return self.request("POST", "checkouts/{checkout_id}/order.json", body=fields or {},
                            record_id=checkout_id, checkout_id=checkout_id)

    def create_order_via_checkout(
            self, checkout: Mapping[str, Any], lines: Iterable[tuple[int, int]], *,
            choose_payment: Callable[[Any], Mapping[str, Any]] | None = None,
            choose_shipment: Callable[[Any], Mapping[str, Any]] | None = None,
            order_fields: Mapping[str, Any] | None = None) -> Order:
        """Create an order the way the API allows: checkout → rows → payment and shipment
        method → validate → order. ``lines`` are ``(variant_id, quantity)``;
        ``choose_payment``/``choose_shipment`` pick the checkout fields from the methods
        the shop offers (default: the first offered)."""
        created = self.create_checkout(checkout)
        checkout_id = created.id
        for variant_id, quantity in lines:
            self.add_checkout_product(checkout_id, variant_id, quantity)
        choice: dict[str, Any] = {}
        payments = self.checkout_payment_methods(checkout_id)
        shipments = self.checkout_shipment_methods(checkout_id)
        choice["payment_method"] = (choose_payment or _first_method)(payments)
        choice["shipment_method"] = (choose_shipment or _first_method)(shipments)
        self.update_checkout(checkout_id, choice)
        verdict = self.validate_checkout(checkout_id)
        if isinstance(verdict, dict) and verdict.get("validated") is False:
            raise LightspeedValidationError("checkout did not validate", method="GET",
                                            path=f"checkouts/{checkout_id}/validate.json",
                                            record_id=checkout_id,
                                            errors={"errors": verdict.get("errors")})
        placed = self.place_checkout_order(checkout_id, **dict(order_fields or {}))
        order_id = _placed_order_id(placed)
        if order_id is None:
            raise LightspeedError("checkout answer names no order", method="POST",
                                  path=f"checkouts/{checkout_id}/order.json",
                                  record_id=checkout_id)
        return self.get_order(order_id)

    # -- connection test ------------------------------------------------------------------
    def test_connection(self) -> tuple[bool, str]:
        """The connection's Test button: GET shop.json once and say what was checked (shop,
        language, currency, base URL); a one-line reason on failure, never a secret. A
        port of 0 or none (what Airflow's UI sends for the hidden field) means the
        default."""
        try:
            settings = self.settings
            if not settings.api_key or not settings.api_secret:
                return False, "API key and API secret are required"
            shop = self._get_one_quick()
        except LightspeedAuthError as exc:
            return False, f"Access denied: check the API key and secret ({exc.message})"
        except LightspeedNotFound as exc:
            return False, (f"Not found: unknown or inactive shop language "
                           f"'{self.settings.language}' or wrong base URL ({exc.message})")
        except LightspeedTransientError as exc:
            return False, f"Cannot reach {self.settings.base_url}: {exc.message}"
        except KoppelAPIError as exc:
            return False, f"Lightspeed answered an error: {exc.message}"
        except Exception as exc:  # connection lookup and the like
            return False, f"{type(exc).__name__}: {exc}"
        currency = shop.currency_code or "unknown currency"
        return True, (f"Lightspeed shop '{shop.title or shop.id}' (id {shop.id}, language "
                      f"{settings.language}, {currency}) reachable at {settings.base_url}; "
                      f"API key and secret accepted (GET shop.json)")

    def _get_one_quick(self) -> Shop:
        data = self.request("GET", "shop.json", retry=RetryPolicy(attempts=2, initial=0.2,
                                                                    maximum=1.0))
        return Shop.from_api(data["shop"])


def _first_method(methods: Any) -> Mapping[str, Any]:
    """The first method of a ``payment_methods``/``shipment_methods`` answer."""
    candidates: Any = methods
    if isinstance(methods, dict):
        for value in methods.values():
            if isinstance(value, (list, dict)):
                candidates = value
                break
    if isinstance(candidates, dict):
        candidates = list(candidates.values())
    if not candidates:
        raise LightspeedValidationError("the checkout offers no method to choose")
    first = candidates[0]
    return first if isinstance(first, dict) else {"id": first}


def _placed_order_id(answer: Any) -> int | None:
    if not isinstance(answer, dict):
        return None
    for key in ("order_id", "orderId", "id"):
        if answer.get(key) not in (None, False, ""):
            return int(answer[key])
    order = answer.get("order")
    if isinstance(order, dict) and order.get("id"):
        return int(order["id"])
    return None
