"""Canonical records: what the datamapper produces and the domain consumes.

Field names are the contract in ``docs/architecture.md``. Money and quantities are
:class:`~decimal.Decimal` (floats are converted through ``repr``, so ``8.26`` stays
``8.26``); rates are percentages (``Decimal("21")``); countries ISO-3166 alpha-2 upper
case. Optional fields default to ``None``.

Use :func:`parse_record` to turn a mapped dict into a record or a list of per-field
errors that a flow can log against the one record that failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from koppel.domain.money import MoneyError, to_decimal


class _Record(BaseModel):
    """Base: unknown keys are an error (a mapping typo must not vanish silently)."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    @field_validator("*", mode="before")
    @classmethod
    def _blank_to_none(cls, value: Any, info: ValidationInfo) -> Any:
        """Lightspeed sends ``""`` and ``false`` for absent values; both mean None
        (``false`` stays ``False`` for the boolean fields)."""
        if isinstance(value, str) and value.strip() == "":
            return None
        if value is False and cls.model_fields[info.field_name].annotation is not bool:
            return None
        return value


def _decimal_or_none(value: Any) -> Any:
    if value is None or value is False or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return to_decimal(value)
    except MoneyError as exc:
        raise ValueError(str(exc)) from None


def _id_text(value: Any) -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ValueError("an id cannot be a boolean")
    if isinstance(value, int):
        return str(value)
    return value


class MappedAddress(_Record):
    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    postal_code: str | None = None
    country: str | None = None
    region: str | None = None

    @field_validator("country", mode="before")
    @classmethod
    def _country(cls, value: Any) -> Any:
        if value is None or value is False:
            return None
        if not isinstance(value, str) or len(value.strip()) != 2 or not value.strip().isalpha():
            raise ValueError("country must be an ISO-3166 alpha-2 code")
        return value.strip().upper()

    def is_empty(self) -> bool:
        return all(getattr(self, name) is None for name in type(self).model_fields)


class MappedCustomer(_Record):
    source_id: str | None = None
    email: str | None = None
    company_name: str | None = None
    given_name: str | None = None
    middle_name: str | None = None
    family_name: str | None = None
    phone: str | None = None
    vat_number: str | None = None
    coc_number: str | None = None
    bill_addr: MappedAddress | None = None
    ship_addr: MappedAddress | None = None
    notes: str | None = None

    @field_validator("source_id", mode="before")
    @classmethod
    def _ids_as_text(cls, value: Any) -> Any:
        return _id_text(value)


class MappedOrderLine(_Record):
    source_id: str
    sku: str | None = None
    name: str
    description: str | None = None
    quantity: Decimal
    unit_price_excl: Decimal | None = None
    unit_price_incl: Decimal | None = None
    amount_excl: Decimal
    amount_incl: Decimal
    discount_excl: Decimal | None = None
    discount_incl: Decimal | None = None
    tax_rate: Decimal
    #: the name of the row's tax in the shop ("BTW 0%", "Vrijgesteld"): tells exempt 0 %
    tax_name: str | None = None
    #: the Lightspeed variant the row was ordered as (names the cause of an unknown SKU)
    variant_id: str | None = None

    @field_validator("source_id", "variant_id", mode="before")
    @classmethod
    def _ids_as_text(cls, value: Any) -> Any:
        return _id_text(value)

    @field_validator(
        "quantity",
        "unit_price_excl",
        "unit_price_incl",
        "amount_excl",
        "amount_incl",
        "discount_excl",
        "discount_incl",
        "tax_rate",
        mode="before",
    )
    @classmethod
    def _as_decimal(cls, value: Any) -> Any:
        return _decimal_or_none(value)

    @field_validator("quantity")
    @classmethod
    def _positive_quantity(cls, value: Decimal) -> Decimal:
        if value <= 0:
            raise ValueError("quantity must be greater than 0")
        return value

    @field_validator("tax_rate")
    @classmethod
    def _rate_range(cls, value: Decimal) -> Decimal:
        if not Decimal(0) <= value < Decimal(100):
            raise ValueError("tax_rate is a percentage between 0 and 100")
        return value


class MappedTax(_Record):
    """VAT at one rate as the shop reports it (``taxRates``, ``shipmentTaxRates``,
    ``paymentTaxRates`` entries): ``rate`` a percentage, ``amount`` the VAT in money."""

    rate: Decimal
    amount: Decimal

    @field_validator("rate", "amount", mode="before")
    @classmethod
    def _as_decimal(cls, value: Any) -> Any:
        return _decimal_or_none(value)

    @field_validator("rate")
    @classmethod
    def _rate_range(cls, value: Decimal) -> Decimal:
        if not Decimal(0) <= value < Decimal(100):
            raise ValueError("rate is a percentage between 0 and 100")
        return value


def _taxes_or_empty(value: Any) -> Any:
    return [] if value is None or value is False else value


class MappedOrder(_Record):
    source_id: str
    number: str
    created_at: datetime
    updated_at: datetime | None = None
    status: str | None = None
    payment_status: str | None = None
    shipment_status: str | None = None
    payment_method: str | None = None
    currency: str | None = None
    customer: MappedCustomer | None = None
    bill_addr: MappedAddress | None = None
    ship_addr: MappedAddress | None = None
    lines: list[MappedOrderLine] = Field(min_length=1)
    shipping_excl: Decimal | None = None
    shipping_incl: Decimal | None = None
    shipping_tax_rate: Decimal | None = None
    shipping_name: str | None = None
    #: VAT of the shipping charge per rate (several when the shop splits it pro rata over
    #: the goods' rates); when empty, ``shipping_tax_rate`` carries the one rate
    shipping_taxes: list[MappedTax] = Field(default_factory=list)
    #: shipment discount (positive); ``shipping_excl``/``shipping_incl`` are after it
    shipping_discount_excl: Decimal | None = None
    shipping_discount_incl: Decimal | None = None
    #: payment fee (iDEAL, achteraf betalen, rembours …) and its VAT per rate
    payment_fee_excl: Decimal | None = None
    payment_fee_incl: Decimal | None = None
    payment_fee_taxes: list[MappedTax] = Field(default_factory=list)
    payment_fee_name: str | None = None
    discount_excl: Decimal | None = None
    discount_incl: Decimal | None = None
    total_excl: Decimal
    total_incl: Decimal
    #: the order's VAT per rate: what the customer's invoice shows
    tax_lines: list[MappedTax] = Field(default_factory=list)
    is_company: bool = False
    memo: str | None = None

    @field_validator("shipping_taxes", "payment_fee_taxes", "tax_lines", mode="before")
    @classmethod
    def _taxes(cls, value: Any) -> Any:
        return _taxes_or_empty(value)

    @field_validator("source_id", "number", mode="before")
    @classmethod
    def _ids_as_text(cls, value: Any) -> Any:
        return _id_text(value)

    @field_validator(
        "shipping_excl",
        "shipping_incl",
        "shipping_tax_rate",
        "shipping_discount_excl",
        "shipping_discount_incl",
        "payment_fee_excl",
        "payment_fee_incl",
        "discount_excl",
        "discount_incl",
        "total_excl",
        "total_incl",
        mode="before",
    )
    @classmethod
    def _as_decimal(cls, value: Any) -> Any:
        return _decimal_or_none(value)

    @field_validator("currency", mode="before")
    @classmethod
    def _currency(cls, value: Any) -> Any:
        if value is None or value is False:
            return None
        if not isinstance(value, str) or len(value.strip()) != 3 or not value.strip().isalpha():
            raise ValueError("currency must be an ISO-4217 code")
        return value.strip().upper()

    @field_validator("shipping_tax_rate")
    @classmethod
    def _rate_range(cls, value: Decimal | None) -> Decimal | None:
        if value is not None and not Decimal(0) <= value < Decimal(100):
            raise ValueError("shipping_tax_rate is a percentage between 0 and 100")
        return value

    @model_validator(mode="after")
    def _shipping_rate_needed(self) -> "MappedOrder":
        charged = (self.shipping_excl or 0) != 0 or (self.shipping_incl or 0) != 0
        if charged and self.shipping_tax_rate is None and not self.shipping_taxes:
            raise ValueError("shipping_tax_rate (or shipping_taxes) is required when "
                             "shipping is charged")
        fee = (self.payment_fee_excl or 0) != 0 or (self.payment_fee_incl or 0) != 0
        if fee and not self.payment_fee_taxes and self.payment_fee_excl != self.payment_fee_incl:
            raise ValueError("payment_fee_taxes are required when a payment fee carries VAT")
        return self


class MappedItem(_Record):
    source_product_id: str
    source_variant_id: str
    sku: str | None = None
    name: str
    description: str | None = None
    long_description: str | None = None
    price_excl: Decimal | None = None
    price_incl: Decimal | None = None
    tax_rate: Decimal | None = None
    purchase_cost: Decimal | None = None
    quantity: Decimal | None = None
    track_stock: bool = False
    ean: str | None = None
    currency: str | None = None
    category_path: list[str] = Field(default_factory=list)
    # lists of {name, value} or a dict (see _pairs): the mapping passes either through
    options: dict[str, str] = Field(default_factory=dict,
                                    json_schema_extra={"mapping_kind": "any"})
    attributes: dict[str, str] = Field(default_factory=dict)
    image_urls: list[str] = Field(default_factory=list)
    active: bool = True

    @field_validator("source_product_id", "source_variant_id", "ean", mode="before")
    @classmethod
    def _ids_as_text(cls, value: Any) -> Any:
        return _id_text(value)

    @field_validator("price_excl", "price_incl", "tax_rate", "purchase_cost", "quantity", mode="before")
    @classmethod
    def _as_decimal(cls, value: Any) -> Any:
        return _decimal_or_none(value)

    @field_validator("category_path", "image_urls", mode="before")
    @classmethod
    def _list_or_empty(cls, value: Any) -> Any:
        return [] if value is None or value is False else value

    @field_validator("options", "attributes", mode="before")
    @classmethod
    def _pairs(cls, value: Any) -> Any:
        """Accept ``{"Size": "M"}`` or ``[{"name": "Size", "value": "M"}, ...]`` (order kept)."""
        if value is None or value is False:
            return {}
        if isinstance(value, list):
            pairs: dict[str, str] = {}
            for entry in value:
                if not isinstance(entry, dict) or "name" not in entry or "value" not in entry:
                    raise ValueError("list entries need 'name' and 'value'")
                pairs[str(entry["name"])] = str(entry["value"])
            return pairs
        return value

    @field_validator("category_path")
    @classmethod
    def _no_blank_categories(cls, value: list[str]) -> list[str]:
        cleaned = [part.strip() for part in value]
        if any(not part for part in cleaned):
            raise ValueError("category_path entries cannot be blank")
        return cleaned


class MappedStock(_Record):
    source_variant_id: str
    sku: str | None = None
    stock_level: Decimal
    track_stock: bool = False

    @field_validator("source_variant_id", mode="before")
    @classmethod
    def _ids_as_text(cls, value: Any) -> Any:
        return _id_text(value)

    @field_validator("stock_level", mode="before")
    @classmethod
    def _as_decimal(cls, value: Any) -> Any:
        return _decimal_or_none(value)


# --------------------------------------------------------------------------- parsing

RecordT = TypeVar("RecordT", bound=BaseModel)


@dataclass(frozen=True)
class FieldError:
    """One problem with one field of one record (``field`` is a dotted path)."""

    field: str
    message: str


@dataclass(frozen=True)
class ParseResult(Generic[RecordT]):
    record: RecordT | None
    errors: tuple[FieldError, ...]

    @property
    def ok(self) -> bool:
        return self.record is not None


def field_errors(error: ValidationError) -> tuple[FieldError, ...]:
    """Flatten a pydantic error into ``FieldError`` s with dotted paths (``lines.0.quantity``)."""
    result = []
    for item in error.errors(include_url=False, include_input=True):
        path = ".".join(str(part) for part in item["loc"]) or "__record__"
        if item.get("input", ...) is None and item["type"].endswith("_type"):
            message = "a value is required"
        else:
            message = item["msg"].removeprefix("Value error, ")
        result.append(FieldError(field=path, message=message))
    return tuple(result)


def parse_record(model: type[RecordT], data: dict[str, Any]) -> ParseResult[RecordT]:
    """Validate ``data`` as ``model``; never raises for bad data, returns the errors instead."""
    try:
        return ParseResult(record=model.model_validate(data), errors=())
    except ValidationError as exc:
        return ParseResult(record=None, errors=field_errors(exc))
