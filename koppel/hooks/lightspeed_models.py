"""Typed views of the Lightspeed eCom records the flows use.

Each model names the fields koppel reads (snake_case attributes, the API's camelCase as
aliases) and keeps every other field (``extra="allow"``). Types are lenient where live
shops are: a missing object is ``false``, an empty value ``""``. :meth:`LSModel.to_api`
gives back the record in the API's own shape (what the datamapper's rules address).
Money arrives as :class:`~decimal.Decimal` (the hook parses JSON floats as Decimal).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar, get_args

M = TypeVar("M", bound="LSModel")

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator


class LSModel(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=False)

    id: int
    _raw: dict[str, Any] | None = PrivateAttr(default=None)

    @classmethod
    def from_api(cls: type[M], data: dict[str, Any]) -> M:
        """Validate an API record and remember it unchanged for :meth:`to_api`."""
        model = cls.model_validate(data)
        model._raw = data
        return model

    def to_api(self) -> dict[str, Any]:
        """The record as the API sent it (camelCase keys, extras included)."""
        if self._raw is not None:
            return self._raw
        return self.model_dump(by_alias=True, mode="python")

    @field_validator("*", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any, info) -> Any:
        # ``""`` and ``false`` mean "absent" for typed optional fields; extras are untouched.
        if info.field_name != "id" and (value == "" or value is False):
            field = cls.model_fields.get(info.field_name)
            if field is not None and not _accepts_bool(field.annotation):
                return None
        return value


def _accepts_bool(annotation: Any) -> bool:
    return annotation is bool or bool in get_args(annotation)


def ref_id(reference: Any) -> int | None:
    """The id of a ``{"resource": {"id": …}}`` reference (or ``None`` for ``false``)."""
    if isinstance(reference, dict):
        inner = reference.get("resource", reference)
        if isinstance(inner, dict) and inner.get("id") not in (None, False, ""):
            return int(inner["id"])
    return None


def embedded(reference: Any) -> Any:
    """The ``embedded`` payload of a reference, if the API embedded it."""
    if isinstance(reference, dict):
        inner = reference.get("resource", reference)
        if isinstance(inner, dict):
            return inner.get("embedded")
    return None


class Stamped(LSModel):
    created_at: datetime | None = Field(None, alias="createdAt")
    updated_at: datetime | None = Field(None, alias="updatedAt")


class Person(Stamped):
    email: str | None = None
    firstname: str | None = None
    middlename: str | None = None
    lastname: str | None = None
    phone: str | None = None
    mobile: str | None = None
    is_company: bool | None = Field(None, alias="isCompany")
    company_name: str | None = Field(None, alias="companyName")
    company_coc_number: str | None = Field(None, alias="companyCoCNumber")
    company_vat_number: str | None = Field(None, alias="companyVatNumber")


class OrderRow(LSModel):
    product_title: str | None = Field(None, alias="productTitle")
    variant_title: str | None = Field(None, alias="variantTitle")
    article_code: str | None = Field(None, alias="articleCode")
    ean: str | None = None
    sku: str | None = None
    tax_rate: Decimal | None = Field(None, alias="taxRate")
    quantity_ordered: int | None = Field(None, alias="quantityOrdered")
    quantity_shipped: int | None = Field(None, alias="quantityShipped")
    quantity_refunded: int | None = Field(None, alias="quantityRefunded")
    base_price_excl: Decimal | None = Field(None, alias="basePriceExcl")
    base_price_incl: Decimal | None = Field(None, alias="basePriceIncl")
    price_excl: Decimal | None = Field(None, alias="priceExcl")
    price_incl: Decimal | None = Field(None, alias="priceIncl")
    discount_excl: Decimal | None = Field(None, alias="discountExcl")
    discount_incl: Decimal | None = Field(None, alias="discountIncl")
    product: Any = None
    variant: Any = None

    @property
    def product_id(self) -> int | None:
        return ref_id(self.product)

    @property
    def variant_id(self) -> int | None:
        return ref_id(self.variant)


class Order(Person):
    number: str | None = None
    status: str | None = None
    payment_status: str | None = Field(None, alias="paymentStatus")
    shipment_status: str | None = Field(None, alias="shipmentStatus")
    payment_title: str | None = Field(None, alias="paymentTitle")
    shipment_title: str | None = Field(None, alias="shipmentTitle")
    price_excl: Decimal | None = Field(None, alias="priceExcl")
    price_incl: Decimal | None = Field(None, alias="priceIncl")
    shipment_price_excl: Decimal | None = Field(None, alias="shipmentPriceExcl")
    shipment_price_incl: Decimal | None = Field(None, alias="shipmentPriceIncl")
    customer: Any = None
    products: Any = None

    @field_validator("number", mode="before")
    @classmethod
    def _number_is_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @property
    def customer_id(self) -> int | None:
        return ref_id(self.customer)

    @property
    def rows(self) -> list[OrderRow] | None:
        """Order rows when the API embedded them (single-order GET), else ``None``."""
        rows = embedded(self.products)
        if rows is None:
            return None
        return [OrderRow.from_api(r) for r in rows]


class Customer(Person):
    memo: str | None = None


class Variant(Stamped):
    is_default: bool | None = Field(None, alias="isDefault")
    article_code: str | None = Field(None, alias="articleCode")
    ean: str | None = None
    sku: str | None = None
    title: str | None = None
    price_excl: Decimal | None = Field(None, alias="priceExcl")
    price_incl: Decimal | None = Field(None, alias="priceIncl")
    price_cost: Decimal | None = Field(None, alias="priceCost")
    stock_tracking: str | None = Field(None, alias="stockTracking")
    stock_level: int | None = Field(None, alias="stockLevel")
    product: Any = None

    @property
    def product_id(self) -> int | None:
        return ref_id(self.product)


class Product(Stamped):
    title: str | None = None
    fulltitle: str | None = None
    description: str | None = None
    content: str | None = None
    visibility: str | None = None
    has_matrix: bool | None = Field(None, alias="hasMatrix")


class Category(Stamped):
    title: str | None = None
    fulltitle: str | None = None
    depth: int | None = None
    parent: Any = None

    @property
    def parent_id(self) -> int | None:
        return ref_id(self.parent)


class CategoryProduct(LSModel):
    sort_order: int | None = Field(None, alias="sortOrder")
    category: Any = None
    product: Any = None

    @property
    def category_id(self) -> int | None:
        return ref_id(self.category)

    @property
    def product_id(self) -> int | None:
        return ref_id(self.product)


class ProductImage(LSModel):
    sort_order: int | None = Field(None, alias="sortOrder")
    title: str | None = None
    extension: str | None = None
    src: str | None = None
    thumb: str | None = None


class ProductAttribute(LSModel):
    value: str | None = None
    attribute: Any = None


class Attribute(LSModel):
    title: str | None = None
    default_value: str | None = Field(None, alias="defaultValue")


class ProductType(LSModel):
    title: str | None = None


class Shop(LSModel):
    title: str | None = None
    currency: Any = None

    @property
    def currency_code(self) -> str | None:
        if isinstance(self.currency, dict):
            code = self.currency.get("shortcode")
            return str(code).upper() if code else None
        return None
