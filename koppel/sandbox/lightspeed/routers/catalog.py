"""The catalogue: products, variants, stock movements, categories, images, types,
attributes, brands and suppliers."""

from __future__ import annotations

from typing import Any, Callable

from fastapi import APIRouter, Body, Depends, Request, Response

from ..errors import ApiError, not_found
from .common import ListQuery, list_query, many, one, state, unwrap

router = APIRouter(prefix="/{lang}", tags=["catalogue"])

Filter = Callable[[dict[str, Any], str], bool]


def _ref_is(field: str) -> Filter:
    def check(record: dict[str, Any], value: str) -> bool:
        ref = record.get(field)
        return bool(ref) and str(ref.id) == value
    return check


def _int_param(name: str, value: str) -> str:
    if not value.isdigit():
        raise ApiError(400, f"Parameter '{name}' must be a number.")
    return value


def _readonly(path: str, table: str, list_key: str, one_key: str,
              filters: dict[str, Filter] | None = None) -> None:
    """list, count and get for a table, with ``?param=`` filters."""
    filters = filters or {}

    def select(request: Request, q: ListQuery) -> list[dict[str, Any]]:
        store = state(request).store
        active = [(check, _int_param(name, request.query_params[name]))
                  for name, check in filters.items() if name in request.query_params]
        return q.select(getattr(store, table).values(),
                        lambda r: all(check(r, value) for check, value in active))

    def list_all(lang: str, request: Request, q: ListQuery = Depends(list_query)):
        with state(request).store.lock:
            return many(list_key, q.page_of(select(request, q)), request, q.fields)

    def count(lang: str, request: Request, q: ListQuery = Depends(list_query)):
        with state(request).store.lock:
            return {"count": len(select(request, q))}

    def get_one(lang: str, record_id: int, request: Request, fields: str | None = None):
        store = state(request).store
        with store.lock:
            return one(one_key, store.get(getattr(store, table), record_id), request, fields)

    router.add_api_route(f"/{path}.json", list_all, methods=["GET"])
    router.add_api_route(f"/{path}/count.json", count, methods=["GET"])
    router.add_api_route(f"/{path}/{{record_id:int}}.json", get_one, methods=["GET"])


# ``?param=`` filters, each with its source (Falkplan/lightspeedecom-api
# ``LightspeedEComClient``, whose doc comments transcribe developers.seoshop.com/api and
# developers.lightspeedhq.com/ecom/endpoints): ``categories/products`` "filters as 'page',
# 'limit', 'category', 'product'"; ``types/attributes`` "filters as 'attribute'";
# ``categories`` "filters as 'parent'"; ``variants`` "filters as 'product'"
# (developers.lightspeedhq.com/ecom/endpoints/variant/). ``variants/movements``
# ``?variant=``/``?product=`` are **assumed** (no stored source). Products, brands,
# suppliers, types and attributes take no filter beyond paging: none is documented.
# Order matters: fixed paths (variants/movements, categories/products, types/attributes)
# before the ``{id}`` routes they would otherwise never collide with anyway (ids are ints).
_readonly("variants/movements", "movements", "variantsMovements", "variantsMovement",
          {"variant": _ref_is("variant"), "product": _ref_is("product")})
_readonly("categories/products", "categories_products", "categoriesProducts",
          "categoriesProduct", {"product": _ref_is("product"), "category": _ref_is("category")})
_readonly("types/attributes", "types_attributes", "typesAttributes", "typesAttribute",
          {"attribute": _ref_is("attribute")})
_readonly("categories", "categories", "categories", "category", {"parent": _ref_is("parent")})
_readonly("types", "types", "types", "type")
_readonly("attributes", "attributes", "attributes", "attribute")
_readonly("brands", "brands", "brands", "brand")
_readonly("suppliers", "suppliers", "suppliers", "supplier")
_readonly("products", "products", "products", "product")
_readonly("variants", "variants", "variants", "variant", {"product": _ref_is("product")})


@router.post("/products.json", status_code=201)
def create_product(lang: str, request: Request, body: Any = Body(...)):
    store = state(request).store
    with store.lock:
        return one("product", store.create_product(unwrap(body, "product")), request)


@router.put("/products/{product_id:int}.json")
def update_product(lang: str, product_id: int, request: Request, body: Any = Body(...)):
    store = state(request).store
    with store.lock:
        return one("product", store.update_product(product_id, unwrap(body, "product")),
                   request)


@router.delete("/products/{product_id:int}.json", status_code=204)
def delete_product(lang: str, product_id: int, request: Request):
    """As the official PHP client calls it (SEOshop/API-PHP-Client
    ``ApiResourceProducts::delete``); the product's variants and images go with it
    (assumed: the product is what holds them). 204 with no body is assumed."""
    state(request).store.delete_product(product_id)
    return Response(status_code=204)


@router.put("/variants/{variant_id:int}.json")
def update_variant(lang: str, variant_id: int, request: Request, body: Any = Body(...)):
    store = state(request).store
    with store.lock:
        return one("variant", store.update_variant(variant_id, unwrap(body, "variant")),
                   request)


# -- per-product sub-resources ----------------------------------------------------------
def _images(store, product_id: int) -> list[dict[str, Any]]:
    store.get(store.products, product_id)
    return [i for i in store.images.values() if i["_product_id"] == product_id]


@router.get("/products/{product_id:int}/images.json")
def list_images(lang: str, product_id: int, request: Request,
                q: ListQuery = Depends(list_query)):
    store = state(request).store
    with store.lock:
        return many("productImages", q.page_of(q.select(_images(store, product_id))),
                    request, q.fields)


@router.get("/products/{product_id:int}/images/count.json")
def count_images(lang: str, product_id: int, request: Request):
    store = state(request).store
    with store.lock:
        return {"count": len(_images(store, product_id))}


@router.get("/products/{product_id:int}/images/{image_id:int}.json")
def get_image(lang: str, product_id: int, image_id: int, request: Request):
    store = state(request).store
    with store.lock:
        for image in _images(store, product_id):
            if image["id"] == image_id:
                return one("productImage", image, request)
    raise not_found()


@router.get("/products/{product_id:int}/attributes.json")
def list_product_attributes(lang: str, product_id: int, request: Request):
    store = state(request).store
    with store.lock:
        product = store.get(store.products, product_id)
        return many("productAttributes", product["_attributes"], request)


@router.get("/products/{product_id:int}/attributes/count.json")
def count_product_attributes(lang: str, product_id: int, request: Request):
    store = state(request).store
    with store.lock:
        return {"count": len(store.get(store.products, product_id)["_attributes"])}
