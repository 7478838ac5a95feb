"""The tenant file model (``include/mappings/<tenant>.json``).

These pydantic models are the single source of the tenant file format: the loader
validates with them and ``include/mappings/tenant.schema.json`` is generated from them
(:func:`tenant_json_schema`; ``python -m koppel.tenants.model > include/mappings/tenant.schema.json``).

Shape::

    {
      "tenant": "acme",
      "connections": {"lightspeed": "lightspeed_acme", "quickbooks": "quickbooks_acme"},
      "flows": {"orders": {"enabled": true, "schedule": "*/15 * * * *"}, ...},
      "settings": {...},
      "mappings": {"orders": {"customer.email": {...}}, ...}
    }

Only pydantic, json and the standard library are imported: the DAG factory loads tenant
files at DAG-parse time.
"""

from __future__ import annotations

import copy
import json
import re
from functools import lru_cache
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, Optional, Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator
from typing_extensions import Annotated

from koppel.mapping.rules import MappingSet, rules_dict
from koppel.domain.formula import FormulaError, StockFormula

Direction = Literal["lightspeed_to_quickbooks", "quickbooks_to_lightspeed"]
SCHEDULE_PRESETS = ("@once", "@continuous", "@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly", "@annually")
_CRON_FIELD = re.compile(r"^(\*|[0-9A-Za-z?LW#]+(-[0-9A-Za-z]+)?)(/[0-9]+)?(,(\*|[0-9A-Za-z?LW#]+(-[0-9A-Za-z]+)?)(/[0-9]+)?)*$")
_CONN_ID = r"^[A-Za-z0-9_.\-]{1,250}$"
_EMAIL = r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$"
_TENANT_ID = r"^[a-z0-9_]{1,50}$"
LightspeedPaymentStatus = Literal["not_paid", "partially_paid", "paid", "cancelled"]
LightspeedOrderStatus = Literal[
    "on_hold",
    "processing_awaiting_payment",
    "processing_awaiting_shipment",
    "processing_awaiting_pickup",
    "processing_ready_for_pickup",
    "completed",
    "completed_shipped",
    "completed_picked_up",
    "cancelled",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _matching(pattern: str, what: str):
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.match(value):
            raise ValueError(f"must be {what} (got {value!r})")
        return value

    return AfterValidator(check)


ConnId = Annotated[
    str,
    Field(json_schema_extra={"pattern": _CONN_ID}, description="An Airflow connection id."),
    _matching(_CONN_ID, "an Airflow connection id: letters, digits, '_', '.', '-'"),
]
QboName = Annotated[str, Field(min_length=1, max_length=100, description="A name as it is in QuickBooks Online.")]
Email = Annotated[str, Field(max_length=254, json_schema_extra={"pattern": _EMAIL}), _matching(_EMAIL, "an e-mail address")]


def _check_schedule(value: Any) -> Any:
    if value is None or not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("@"):
        if text not in SCHEDULE_PRESETS:
            raise ValueError(f"unknown preset {text!r} (known: {', '.join(SCHEDULE_PRESETS)})")
        return text
    fields = text.split()
    if len(fields) not in (5, 6) or not all(_CRON_FIELD.match(part) for part in fields):
        raise ValueError(f"{value!r} is neither a cron expression (5 fields) nor a preset such as @hourly")
    return text


Schedule = Annotated[Optional[str], BeforeValidator(_check_schedule)]


def _check_timezone(value: Any) -> Any:
    if isinstance(value, str):
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/Amsterdam)") from None
    return value


TimeZoneName = Annotated[str, BeforeValidator(_check_timezone)]


# ---------------------------------------------------------------- connections and flows


class Connections(_Model):
    """Airflow connection ids the tenant's flows use."""

    lightspeed: ConnId = Field(description="Connection of type lightspeed_ecom.")
    quickbooks: ConnId = Field(description="Connection of type quickbooks_online.")
    alerts_webhook: Optional[ConnId] = Field(default=None, description="HTTP connection alerts are posted to.")
    state: Optional[ConnId] = Field(default=None, description="State database connection (default koppel_state).")


class FlowConfig(_Model):
    """One flow of a tenant: on/off, schedule and direction."""

    enabled: bool = True
    schedule: Schedule = Field(default="@hourly", description="Cron expression, preset (@hourly) or null (manual only).")
    direction: Direction = "lightspeed_to_quickbooks"
    start_date: Optional[datetime] = Field(default=None, description="First data interval (ISO date or date-time).")
    max_records: Optional[int] = Field(default=None, ge=1, le=1_000_000, description="Cap per run (none: all).")


class Flows(_Model):
    orders: FlowConfig = Field(default_factory=FlowConfig)
    products: FlowConfig = Field(default_factory=FlowConfig)
    stock: FlowConfig = Field(default_factory=FlowConfig)
    customers: FlowConfig = Field(default_factory=lambda: FlowConfig(enabled=False))
    orders_reverse: FlowConfig = Field(
        default_factory=lambda: FlowConfig(enabled=False, direction="quickbooks_to_lightspeed"),
        description="QuickBooks sales receipts and invoices become Lightspeed orders.")
    refunds: FlowConfig = Field(
        default_factory=lambda: FlowConfig(enabled=False),
        description="Lightspeed credits (refunds, returns) of booked orders become refund receipts or credit memos.")

    @field_validator("orders", "products", "customers", "refunds")
    @classmethod
    def _one_way(cls, flow: FlowConfig) -> FlowConfig:
        if flow.direction != "lightspeed_to_quickbooks":
            raise ValueError("only lightspeed_to_quickbooks is supported for this flow (stock "
                             "runs either way; orders_reverse books QuickBooks → Lightspeed)")
        return flow

    @field_validator("orders_reverse", mode="before")
    @classmethod
    def _reverse_way(cls, flow: Any) -> Any:
        if isinstance(flow, dict):
            flow = {"direction": "quickbooks_to_lightspeed", **flow}
            if flow["direction"] != "quickbooks_to_lightspeed":
                raise ValueError("orders_reverse only runs quickbooks_to_lightspeed")
        return flow


#: the flows a tenant file can configure: the fields of :class:`Flows` (their settings
#: live there); ``tests/unit/test_flow_catalog.py`` holds them equal to the flow catalog
FLOW_NAMES: tuple[str, ...] = tuple(Flows.model_fields)


# ---------------------------------------------------------------- settings


class BookedStatuses(_Model):
    """Which Lightspeed orders are booked in QuickBooks (default: paid, not cancelled)."""

    payment_status: list[LightspeedPaymentStatus] = Field(default_factory=lambda: ["paid"], min_length=1)
    exclude_status: list[LightspeedOrderStatus] = Field(default_factory=lambda: ["cancelled"])


class DefaultCustomer(_Model):
    """The QBO customer for orders without usable customer data."""

    display_name: QboName = "Webshop klant"
    email: Optional[Email] = None
    book_all_orders: bool = Field(default=False, description="Book every order on this customer (one debtor for the webshop, 'wanbetalingsdebiteur'); no customers are made per buyer.")


class Rounding(_Model):
    """A rounding line absorbs cent differences between the shop total and QBO's."""

    enabled: bool = True
    item: Optional[QboName] = Field(default="Afronding", description="QBO item for the rounding line.")
    max_amount: Decimal = Field(default=Decimal("0.05"), ge=0, le=10)
    tax_code: Optional[QboName] = Field(default=None, description="Tax code for the rounding line (VAT companies).")

    @model_validator(mode="after")
    def _item_when_enabled(self) -> "Rounding":
        if self.enabled and not self.item:
            raise ValueError("rounding.item is required when rounding is enabled")
        return self


class ErrorThreshold(_Model):
    """When a run fails instead of logging record errors and carrying on."""

    max_fraction: Optional[float] = Field(default=0.1, ge=0, le=1, description="Fail when more than this share of records failed.")
    max_count: Optional[int] = Field(default=None, ge=0, description="Fail when more than this many records failed.")


class ProductAccounts(_Model):
    """QBO account names new items book to."""

    income: QboName = "Sales of Product Income"
    expense: Optional[QboName] = "Cost of Goods Sold"
    asset: Optional[QboName] = "Inventory Asset"


UpdateMode = Literal["create_only", "always"]


class ItemUpdatePolicy(_Model):
    """Per QBO Item field: written on create only, or on every update."""

    Name: UpdateMode = "create_only"
    Sku: UpdateMode = "create_only"
    Description: UpdateMode = "always"
    PurchaseDesc: UpdateMode = "always"
    UnitPrice: UpdateMode = "always"
    SalesTaxIncluded: UpdateMode = "always"
    PurchaseCost: UpdateMode = "always"
    Active: UpdateMode = "always"
    ParentRef: UpdateMode = "create_only"


class ProductSettings(_Model):
    """Products → QBO items."""

    inventory: bool = Field(default=False, description="The QBO plan tracks inventory: stock-tracked variants become Inventory items.")
    untracked_type: Literal["NonInventory", "Service"] = "NonInventory"
    accounts: ProductAccounts = Field(default_factory=ProductAccounts)
    ean_target: Literal["description", "purchase_description", "none"] = Field(
        default="description", description="Where the EAN goes (QBO items have no EAN field)."
    )
    attributes_target: Literal["description", "purchase_description", "none"] = Field(
        default="none", description="Where the product's features/attributes (kenmerken, 'Made in: NL' lines) go; updated per update_policy of that field (create_only/always)."
    )
    images: Literal["all", "main", "none"] = Field(
        default="all", description="Which of a product's Lightspeed images its QuickBooks items carry (as attachments): 'all' (every image; one Lightspeed call per product that has a picture, the only way Lightspeed lists them), 'main' (the main image only, which the product read already carries: no extra call), 'none'."
    )
    update_policy: ItemUpdatePolicy = Field(default_factory=ItemUpdatePolicy)
    sync_categories: bool = Field(default=True, description="Create the Lightspeed category path as QBO categories.")

    @model_validator(mode="after")
    def _inventory_accounts(self) -> "ProductSettings":
        if self.inventory and not (self.accounts.expense and self.accounts.asset):
            raise ValueError("inventory items need accounts.expense and accounts.asset")
        return self


class StockSettings(_Model):
    """How the stock level sent to the other side is computed."""

    calculation: Literal["available_minus_reserved", "stock_level", "formula"] = "available_minus_reserved"
    formula: Optional[str] = Field(
        default=None,
        max_length=300,
        description="With calculation 'formula': numbers, + - * /, min(), max(), floor() over "
        "stock_level, reserved, buffer, stock_minimum, stock_alert, stock_sold, qty_on_hand.",
    )
    buffer: int = Field(default=0, ge=0, description="Units held back from sale.")
    target_manages_stock: bool = Field(default=False, description="QuickBooks is the stock master (stock flows QBO → Lightspeed).")

    @field_validator("formula")
    @classmethod
    def _safe_formula(cls, text: Optional[str]) -> Optional[str]:
        if text is not None:
            try:
                StockFormula.parse(text)
            except FormulaError as exc:
                raise ValueError(f"invalid formula: {exc}") from None
        return text

    @model_validator(mode="after")
    def _formula_when_needed(self) -> "StockSettings":
        if self.calculation == "formula" and not self.formula:
            raise ValueError("stock.formula is required when calculation is 'formula'")
        if self.calculation != "formula" and self.formula:
            raise ValueError("stock.formula is only used with calculation 'formula'")
        return self

    def compiled_formula(self) -> Optional[StockFormula]:
        """The parsed formula (``None`` unless ``calculation`` is ``formula``)."""
        return StockFormula.parse(self.formula) if self.calculation == "formula" and self.formula else None


QboDocumentType = Literal["sales_receipt", "invoice"]


class ReverseOrderSettings(_Model):
    """QuickBooks documents → Lightspeed orders (flow ``orders_reverse``)."""

    document_types: list[QboDocumentType] = Field(
        default_factory=lambda: ["sales_receipt", "invoice"], min_length=1,
        description="Which QuickBooks documents become Lightspeed orders.")
    shipment_method: Optional[str] = Field(
        default=None, max_length=100,
        description="Lightspeed shipment method id for the checkout (default: the first offered).")
    payment_method: Optional[str] = Field(
        default=None, max_length=100,
        description="Lightspeed payment method id for the checkout (default: the first offered).")
    payment_methods: dict[str, str] = Field(
        default_factory=dict,
        description="QuickBooks PaymentMethod name → Lightspeed payment method id.")
    metafield_key: str = Field(
        default="koppel_qbo", min_length=1, max_length=50,
        description="Order metafield that carries the QuickBooks document reference.")
    notify_customer: bool = Field(
        default=False,
        description="Let Lightspeed e-mail the customer about orders koppel places (off: no e-mails).")


class RefundSettings(_Model):
    """Lightspeed credits → QuickBooks refund documents (flow ``refunds``)."""

    document: Literal["auto", "refund_receipt", "credit_memo"] = Field(
        default="auto",
        description="auto: a refund receipt for a booked sales receipt, a credit memo for a booked invoice.")
    account: Optional[QboName] = Field(
        default=None,
        description="Account a refund receipt is paid from (default: Undeposited Funds).")


class Alerts(_Model):
    """Who hears about failed runs and record errors (webhook: connections.alerts_webhook)."""

    emails: list[Email] = Field(default_factory=list, max_length=20)
    on_record_errors: bool = Field(default=True, description="Also alert when a run finished with record errors.")


def _rate_key(value: str) -> str:
    try:
        number = Decimal(str(value).strip().rstrip("%"))
    except Exception:
        raise ValueError(f"tax_codes keys are VAT rates such as '21' (got {value!r})") from None
    if not Decimal(0) <= number < Decimal(100):
        raise ValueError(f"VAT rate {value!r} must be between 0 and 100")
    number = number.quantize(Decimal(1)) if number == number.to_integral_value() else number.normalize()
    return str(number)


RateKey = Annotated[str, BeforeValidator(_rate_key)]


def _iso2(value: Any) -> Any:
    if isinstance(value, str) and re.fullmatch(r"[A-Za-z]{2}", value.strip()):
        return value.strip().upper()
    raise ValueError(f"must be an ISO 3166 alpha-2 code such as 'NL' (got {value!r})")


CountryCode = Annotated[str, BeforeValidator(_iso2)]


class PaymentSettings(_Model):
    """Where payments are booked. With ``document_type: invoice`` a paid order's invoice
    gets a Payment applied (also when the order is paid later); sales receipts are paid
    documents themselves. ``deposit_accounts`` picks the account per Lightspeed payment
    title (a bank or payment-provider clearing account); unmapped: Undeposited Funds."""

    apply_to_invoices: bool = Field(default=True, description="Invoice mode: apply a Payment to the invoice of every paid order (books unpaid orders as open invoices when booked.payment_status allows them).")
    deposit_accounts: dict[str, QboName] = Field(default_factory=dict, description="Lightspeed payment title → QBO account the money is deposited to (receipts and payments).")
    default_deposit_account: Optional[QboName] = Field(default=None, description="Deposit account for unmapped payment methods (null: Undeposited Funds).")


class VatTreatments(_Model):
    """QuickBooks tax codes per VAT treatment (decision table: docs/accounting.md). Rates
    of domestic sales are in ``tax_codes``; these name the codes a 0 % (or foreign) line
    books on when the order is an export, an intra-EU supply to a business or an OSS sale."""

    shop_country: CountryCode = Field(default="NL", description="The country the shop is established in (its VAT return).")
    intra_eu_b2b: Optional[QboName] = Field(default="0% ICP", description="Tax code for intra-EU supplies to businesses with a VAT number (reverse charge, BTW-aangifte 3b, ICP-opgave).")
    export: Optional[QboName] = Field(default="0% Export", description="Tax code for 0 % lines delivered outside the EU (BTW-aangifte 3a).")
    exempt: Optional[QboName] = Field(default=None, description="Tax code for exempt rows (0 % rows whose shop tax is named in exempt_tax_names).")
    exempt_tax_names: list[str] = Field(default_factory=list, max_length=20, description="Names (parts, any case) of the shop's taxes that mean exempt, e.g. 'vrijgesteld'.")
    oss: dict[CountryCode, dict[RateKey, QboName]] = Field(default_factory=dict, description="One-Stop-Shop: country → its VAT rate → tax code, for B2C distance sales taxed in the customer's country.")


class Settings(_Model):
    """Tenant settings (all optional; defaults suit a Dutch webshop on a VAT company)."""

    document_type: Literal["sales_receipt", "invoice"] = "sales_receipt"
    doc_number_prefix: str = Field(default="", max_length=10, description="Prefix for QBO DocNumber.")
    booked: BookedStatuses = Field(default_factory=BookedStatuses)
    conflict_policy: Literal["update", "report"] = Field(
        default="report", description="A booked order changed in the shop: update the QBO document or report it."
    )
    default_customer: DefaultCustomer = Field(default_factory=DefaultCustomer)
    unknown_sku: Literal["fail", "fallback_item", "create_item"] = "fail"
    fallback_item_sku: Optional[str] = Field(default=None, min_length=1, max_length=100)
    shipping_item: QboName = Field(default="Verzendkosten", description="QBO item for shipping lines (one line per VAT rate; created when missing).")
    payment_fee_item: QboName = Field(default="Betaalkosten", description="QBO item for payment fees (iDEAL, achteraf betalen, rembours …; one line per VAT rate; created when missing).")
    discount_item: Optional[QboName] = Field(default="Korting", description="QBO item for order discounts (one line per VAT rate; created when missing). null: a DiscountLineDetail, only for single-rate orders.")
    payment_methods: dict[str, QboName] = Field(default_factory=dict, description="Lightspeed payment title → QBO PaymentMethod name.")
    payment_terms: dict[str, QboName] = Field(default_factory=dict, description="Lightspeed payment title → QBO Term name (invoices).")
    default_payment_term: Optional[QboName] = None
    tax_codes: dict[RateKey, QboName] = Field(default_factory=dict, description="VAT rate ('21', '9', '0') → QBO TaxCode name.")
    countries: dict[str, CountryCode] = Field(default_factory=dict, description="Extra country names → ISO 3166 alpha-2.")
    vat_treatments: VatTreatments = Field(default_factory=VatTreatments)
    payments: PaymentSettings = Field(default_factory=PaymentSettings)
    prices_include_tax: bool = True
    vat_amounts: Literal["shop", "quickbooks"] = Field(
        default="shop", description="'shop': the VAT per rate on the customer's invoice is supplied to QuickBooks (TxnTaxDetail) and booked as is; 'quickbooks': QuickBooks computes the VAT. Either way the booked VAT is checked against the shop's.")
    multicurrency: bool = False
    rounding: Rounding = Field(default_factory=Rounding)
    error_threshold: ErrorThreshold = Field(default_factory=ErrorThreshold)
    products: ProductSettings = Field(default_factory=ProductSettings)
    stock: StockSettings = Field(default_factory=StockSettings)
    reverse_orders: ReverseOrderSettings = Field(default_factory=ReverseOrderSettings)
    refunds: RefundSettings = Field(default_factory=RefundSettings)
    retention_days: int = Field(default=30, ge=1, le=3650)
    alerts: Alerts = Field(default_factory=Alerts)
    timezone: TimeZoneName = "Europe/Amsterdam"
    retries: int = Field(default=3, ge=0, le=20, description="Airflow task retries (systemic errors: API down, auth).")
    retry_delay_seconds: int = Field(default=60, ge=0, le=3600, description="First retry delay; doubles per retry.")

    @model_validator(mode="after")
    def _fallback_sku(self) -> "Settings":
        if self.unknown_sku == "fallback_item" and not self.fallback_item_sku:
            raise ValueError("fallback_item_sku is required when unknown_sku is 'fallback_item'")
        if self.stock.target_manages_stock and not self.products.inventory:
            raise ValueError("stock.target_manages_stock needs products.inventory (QBO tracks quantity only for inventory items)")
        return self

    def tables(self) -> dict[str, dict[str, str]]:
        """The lookup tables mapping transforms may name."""
        return {
            "payment_methods": dict(self.payment_methods),
            "payment_terms": dict(self.payment_terms),
            "tax_codes": dict(self.tax_codes),
            "countries": dict(self.countries),
        }


# ---------------------------------------------------------------- the tenant


class TenantConfig(_Model):
    """One tenant file, with ``mappings`` already merged over the shipped default."""

    schema_: Optional[str] = Field(default=None, alias="$schema", description="Path of tenant.schema.json (editor support).")
    comment: Optional[Union[str, list[str]]] = Field(default=None, alias="$comment")
    tenant: Annotated[
        str,
        Field(json_schema_extra={"pattern": _TENANT_ID}, description="Tenant id (= the file name): lower case letters, digits, _."),
        _matching(_TENANT_ID, "lower case letters, digits and '_' (at most 50)"),
    ]
    connections: Connections
    flows: Flows = Field(default_factory=Flows)
    settings: Settings = Field(default_factory=Settings)
    mappings: MappingSet = Field(default_factory=MappingSet, description="Per flow: target field → rule (overrides the default mapping, koppel/mapping/default_mapping.json).")

    @model_validator(mode="after")
    def _directions(self) -> "TenantConfig":
        if self.flows.stock.direction == "quickbooks_to_lightspeed" and not self.settings.stock.target_manages_stock:
            raise ValueError("flows.stock.direction quickbooks_to_lightspeed needs settings.stock.target_manages_stock")
        return self

    def flow(self, name: str) -> FlowConfig:
        return getattr(self.flows, name)

    def enabled_flows(self) -> list[str]:
        """Names of the enabled flows, in a stable order."""
        return [name for name in FLOW_NAMES if self.flow(name).enabled]

    def rules(self, flow: str) -> dict[str, Any]:
        """The effective mapping rules of ``flow`` (``{target: rule}``)."""
        return rules_dict(getattr(self.mappings, flow))

    def tables(self) -> dict[str, dict[str, str]]:
        return self.settings.tables()


@lru_cache(maxsize=1)
def _schema() -> dict[str, Any]:
    return TenantConfig.model_json_schema(by_alias=True)


def tenant_json_schema() -> dict[str, Any]:
    """The JSON Schema of tenant files (shipped as ``include/mappings/tenant.schema.json``)."""
    schema = copy.deepcopy(_schema())
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://koppel.dev/schemas/tenant.schema.json",
        "title": "koppel tenant",
        **{key: value for key, value in schema.items() if key != "title"},
    }


def tenant_json_schema_text() -> str:
    """:func:`tenant_json_schema` as the exact text of the shipped file."""
    return json.dumps(tenant_json_schema(), indent=2, ensure_ascii=False, sort_keys=False) + "\n"


if __name__ == "__main__":  # pragma: no cover - regenerates the shipped schema
    print(tenant_json_schema_text(), end="")
