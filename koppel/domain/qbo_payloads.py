"""The one serializer that builds QuickBooks Online JSON (wire shape) from canonical records.

Nothing here talks to QBO: callers resolve references (customer id, item ids, tax
codes, accounts) first and pass them in. Every amount goes out as a JSON number built
from a Decimal (see :func:`money_json`), never a float computed in Python.

Order lines (the representation koppel uses, and why)
------------------------------------------------------
QBO requires ``Amount == round(Qty × UnitPrice, 2)`` (fault 6070) and books ``Amount``
as the line's net revenue. Lightspeed row amounts are line totals *after* row discount.
koppel keeps the quantity honest and the money exact: ``Qty`` = ordered quantity,
``Amount`` = the row's net total after discount, ``UnitPrice`` = ``Amount / Qty``
(exact when it terminates, else rounded to QBO's 7 decimals, which reproduces
``Amount`` — the same thing QBO itself stores for tax-inclusive lines). A row discount
is thereby folded into the unit price and named in the line description.

* ``TaxInclusive`` documents add ``SalesItemLineDetail.TaxInclusiveAmt`` = the row's
  gross; ``Amount`` is the net QBO derives from it (``round(gross / (1 + rate))``).
  ``NotApplicable`` documents carry gross amounts and no tax codes.
* Shipping is its own line on the shipping item, taxed at the shipping rate.
* An order-level discount that the rows do not already contain becomes, with a discount
  item configured, one negative line per VAT rate on that item (allocated over the
  rows' net per rate, so VAT stays right per rate); without one, a single
  ``DiscountLineDetail`` line, allowed only when the rows and shipping share one rate.
* If QBO's own rounding (see :mod:`koppel.domain.money`) would not reproduce the shop's
  total, a rounding line on the tenant's rounding item absorbs the difference, which is
  returned so the activity log records it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Iterable, Literal, Mapping
from zoneinfo import ZoneInfo

from koppel.domain.emails import usable_email
from koppel.domain.money import (
    GlobalTaxCalculation,
    MoneyError,
    QboTotals,
    RoundingPolicy,
    TaxableLine,
    ChargePart,
    allocate,
    cents,
    net_from_gross,
    predict_qbo_totals,
    rate_key,
    rounding_adjustment,
    split_charge,
    to_decimal,
    unit_price_for,
)
from koppel.domain.records import MappedAddress, MappedOrder, MappedOrderLine
from koppel.domain.verify import Expected

MAX_DOC_NUMBER = 21
MAX_PRIVATE_NOTE = 4000
MAX_DESCRIPTION = 4000
MAX_NAME = 100

DocumentType = Literal["SalesReceipt", "Invoice"]


class PayloadError(ValueError):
    """The record cannot be turned into a valid QBO payload; ``field`` names the culprit."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def money_json(value: Decimal) -> int | float:
    """A Decimal as the JSON number QBO expects (exact for cents and 7-decimal prices)."""
    value = to_decimal(value)
    if value == value.to_integral_value():
        return int(value)
    return float(value)


def ref(value: str, name: str | None = None) -> dict[str, str]:
    """A QBO reference type ``{"value": id}`` (with ``name`` when given)."""
    result = {"value": str(value)}
    if name:
        result["name"] = name
    return result


def address_payload(address: MappedAddress | None) -> dict[str, str] | None:
    """``MappedAddress`` → QBO ``PhysicalAddress`` (None when empty)."""
    if address is None or address.is_empty():
        return None
    fields = {
        "Line1": address.line1,
        "Line2": address.line2,
        "City": address.city,
        "PostalCode": address.postal_code,
        "Country": address.country,
        "CountrySubDivisionCode": address.region,
    }
    return {key: value for key, value in fields.items() if value is not None}


def global_tax_calculation(prices_include_tax: bool, uses_sales_tax: bool = True) -> GlobalTaxCalculation:
    """``settings.prices_include_tax`` → the document's ``GlobalTaxCalculation``."""
    if not uses_sales_tax:
        return "NotApplicable"
    return "TaxInclusive" if prices_include_tax else "TaxExcluded"


# --------------------------------------------------------------------------- sales documents


@dataclass(frozen=True)
class OrderRefs:
    """QBO ids resolved for one order.

    ``item_ids`` maps SKU → item id; ``fallback_item_id`` is used for rows whose SKU is
    unknown when the tenant's unknown-SKU policy says so (else such a row is an error).
    ``tax_code_ids`` maps a rate (``rate_key``: ``"21"``, ``"9"``, ``"0"``) → TaxCode id.
    """

    customer_id: str
    item_ids: Mapping[str, str]
    tax_code_ids: Mapping[str, str] = field(default_factory=dict)
    fallback_item_id: str | None = None
    shipping_item_id: str | None = None
    discount_item_id: str | None = None
    payment_fee_item_id: str | None = None
    #: TaxCode id → the id of its one TaxRate (codes with several rates are left out):
    #: what a supplied ``TxnTaxDetail.TaxLine`` names
    tax_rate_ids: Mapping[str, str] = field(default_factory=dict)
    #: row index → TaxCode id for rows whose code is not their rate's (exempt rows)
    row_tax_code_ids: Mapping[int, str] = field(default_factory=dict)
    payment_method_id: str | None = None
    term_id: str | None = None
    deposit_account_id: str | None = None


@dataclass(frozen=True)
class DocumentOptions:
    """Tenant settings that shape a sales document."""

    doc_type: DocumentType = "SalesReceipt"
    tax_calculation: GlobalTaxCalculation = "TaxInclusive"
    rounding: RoundingPolicy = field(default_factory=RoundingPolicy)
    doc_number_prefix: str = ""
    #: IANA zone for ``TxnDate`` (the shop's day); ``None`` keeps the timestamp's own offset.
    timezone: str | None = None
    #: Send ``CurrencyRef`` (multi-currency companies only).
    multicurrency: bool = False
    refund_suffix: str = "-R"
    #: supply the shop's VAT per rate in ``TxnTaxDetail`` (``settings.vat_amounts: shop``)
    #: instead of letting QuickBooks compute it
    supply_vat: bool = True


@dataclass(frozen=True)
class BuiltDocument:
    """A ready payload plus what koppel predicts QBO will make of it."""

    entity: str
    payload: dict[str, Any]
    predicted: QboTotals
    shop_total: Decimal
    rounding_difference: Decimal = Decimal("0.00")
    notes: tuple[str, ...] = ()
    #: the shop's figures the document QuickBooks returns must carry (koppel.domain.verify)
    expected: Expected | None = None


@dataclass
class _Line:
    """A line under construction: its JSON and its effect on QBO's totals."""

    json: dict[str, Any]
    taxable: TaxableLine


def doc_number(number: str, prefix: str = "", suffix: str = "") -> str:
    """``prefix + number + suffix``; longer than 21 characters is an error (never truncate:
    truncation would make two orders share a number)."""
    value = f"{prefix}{number}{suffix}"
    if len(value) > MAX_DOC_NUMBER:
        raise PayloadError(
            f"DocNumber {value!r} is {len(value)} characters; QBO allows {MAX_DOC_NUMBER}",
            field="number",
        )
    return value


def txn_date(moment: datetime, timezone: str | None = None) -> str:
    """The transaction date (``YYYY-MM-DD``) of a timestamp, in the shop's zone if given."""
    if timezone and moment.tzinfo is not None:
        moment = moment.astimezone(ZoneInfo(timezone))
    return moment.date().isoformat()


def _tax_code(refs: OrderRefs, rate: Decimal, field_name: str) -> str:
    key = rate_key(rate)
    try:
        return refs.tax_code_ids[key]
    except KeyError:
        raise PayloadError(f"no QBO tax code configured for rate {key}%", field=field_name) from None


def _item_for(refs: OrderRefs, line: MappedOrderLine, index: int) -> str:
    if line.sku and line.sku in refs.item_ids:
        return refs.item_ids[line.sku]
    if refs.fallback_item_id:
        return refs.fallback_item_id
    raise PayloadError(f"no QBO item for SKU {line.sku!r}", field=f"lines.{index}.sku")


def _sales_line(
    *,
    item_id: str,
    quantity: Decimal,
    net: Decimal,
    gross: Decimal,
    rate: Decimal | None,
    description: str | None,
    mode: GlobalTaxCalculation,
    refs: OrderRefs,
    tax_code_id: str | None = None,
    field_name: str,
) -> _Line:
    """One ``SalesItemLineDetail`` line; ``net``/``gross`` are the line totals."""
    net, gross = cents(net), cents(gross)
    if mode == "NotApplicable":
        amount = gross
    elif mode == "TaxInclusive" and rate is not None:
        # QBO derives the net from TaxInclusiveAmt per line; send exactly that net so
        # the stored line equals the payload (and UnitPrice × Qty matches it).
        amount = net_from_gross(gross, rate)
    else:
        amount = net
    try:
        unit_price = unit_price_for(amount, quantity)
    except MoneyError as exc:
        raise PayloadError(str(exc), field=field_name) from None
    detail: dict[str, Any] = {
        "ItemRef": ref(item_id),
        "Qty": money_json(quantity),
        "UnitPrice": money_json(unit_price),
    }
    taxable_rate: Decimal | None = None
    if mode != "NotApplicable":
        if rate is None:
            raise PayloadError("a tax rate is needed on every line", field=field_name)
        detail["TaxCodeRef"] = ref(tax_code_id or _tax_code(refs, rate, field_name))
        taxable_rate = rate
        if mode == "TaxInclusive":
            detail["TaxInclusiveAmt"] = money_json(gross)
    json: dict[str, Any] = {
        "DetailType": "SalesItemLineDetail",
        "Amount": money_json(amount),
        "SalesItemLineDetail": detail,
    }
    if description:
        json["Description"] = description[:MAX_DESCRIPTION]
    return _Line(json=json, taxable=TaxableLine(net=amount, rate=taxable_rate, gross=gross))


def _row_description(line: MappedOrderLine) -> str:
    text = line.description or line.name
    discount = line.discount_incl if line.discount_incl else line.discount_excl
    if discount:
        text = f"{text} (discount {cents(abs(discount))})"
    return text


def _order_lines(order: MappedOrder, refs: OrderRefs, mode: GlobalTaxCalculation) -> list[_Line]:
    lines = []
    for index, row in enumerate(order.lines):
        lines.append(
            _sales_line(
                item_id=_item_for(refs, row, index),
                quantity=row.quantity,
                net=row.amount_excl,
                gross=row.amount_incl,
                rate=row.tax_rate,
                description=_row_description(row),
                mode=mode,
                refs=refs,
                tax_code_id=refs.row_tax_code_ids.get(index),
                field_name=f"lines.{index}",
            )
        )
    return lines


def _charge_lines(
    parts: list[ChargePart],
    *,
    item_id: str | None,
    description: str,
    refs: OrderRefs,
    mode: GlobalTaxCalculation,
    field_name: str,
    missing_item: str,
) -> list[_Line]:
    """A charge (shipping, payment fee) as one line per VAT rate on its item."""
    if not parts:
        return []
    if not item_id:
        raise PayloadError(missing_item, field_name)
    several = len(parts) > 1
    return [
        _sales_line(
            item_id=item_id,
            quantity=Decimal(1),
            net=part.net,
            gross=part.gross,
            rate=part.rate,
            description=f"{description} ({rate_key(part.rate)}% VAT)" if several else description,
            mode=mode,
            refs=refs,
            field_name=field_name,
        )
        for part in parts
    ]


def shipping_parts(order: MappedOrder, share: Decimal = Decimal(1)) -> list[ChargePart]:
    """The order's shipping per VAT rate (``share`` of it, for partial refunds)."""
    excl, incl = order.shipping_excl or Decimal(0), order.shipping_incl or Decimal(0)
    taxes = [(t.rate, t.amount) for t in order.shipping_taxes]
    try:
        parts = split_charge(excl, incl, taxes, order.shipping_tax_rate)
    except MoneyError as exc:
        raise PayloadError(f"shipping: {exc}", field="shipping_taxes") from None
    return parts


def payment_fee_parts(order: MappedOrder) -> list[ChargePart]:
    """The order's payment fee per VAT rate."""
    excl, incl = order.payment_fee_excl or Decimal(0), order.payment_fee_incl or Decimal(0)
    taxes = [(t.rate, t.amount) for t in order.payment_fee_taxes]
    try:
        return split_charge(excl, incl, taxes)
    except MoneyError as exc:
        raise PayloadError(f"payment fee: {exc}", field="payment_fee_taxes") from None


def _shipping_lines(order: MappedOrder, refs: OrderRefs, mode: GlobalTaxCalculation) -> list[_Line]:
    description = order.shipping_name or "Shipping"
    discount = order.shipping_discount_incl if mode != "NotApplicable" or not order.shipping_discount_excl \
        else order.shipping_discount_excl
    if discount:
        description = f"{description} (discount {cents(abs(discount))})"
    return _charge_lines(shipping_parts(order), item_id=refs.shipping_item_id,
                         description=description, refs=refs, mode=mode,
                         field_name="shipping_excl",
                         missing_item="the order charges shipping but no shipping item is configured")


def _payment_fee_lines(order: MappedOrder, refs: OrderRefs, mode: GlobalTaxCalculation) -> list[_Line]:
    name = order.payment_fee_name or order.payment_method
    description = f"Payment fee ({name})" if name else "Payment fee"
    return _charge_lines(payment_fee_parts(order), item_id=refs.payment_fee_item_id,
                         description=description, refs=refs, mode=mode,
                         field_name="payment_fee_excl",
                         missing_item="the order charges a payment fee but no payment fee item is "
                                      "configured (settings.payment_fee_item)")


def separate_order_discount(order: MappedOrder) -> tuple[Decimal, Decimal] | None:
    """The order discount (net, gross; positive) that the rows do *not* already contain.

    Lightspeed reports an order discount and, depending on the discount rule, may or may
    not have spread it over the rows. The totals decide: if rows + shipping − discount
    is closer to the order total than rows + shipping, the discount is separate.
    """
    gross = abs(order.discount_incl or Decimal(0))
    net = abs(order.discount_excl or Decimal(0))
    if gross == 0 and net == 0:
        return None
    rows = sum((row.amount_incl for row in order.lines), Decimal(0)) + (order.shipping_incl or 0) \
        + (order.payment_fee_incl or 0)
    without = abs(order.total_incl - rows)
    with_discount = abs(order.total_incl - (rows - gross))
    if with_discount < without:
        return cents(net), cents(gross)
    return None


def _discount_parts_from_shop_vat(order: MappedOrder, net: Decimal, gross: Decimal
                                  ) -> list[ChargePart] | None:
    """The order discount per VAT rate as the shop split it, read back from the VAT the
    shop reports: per rate, the discount's VAT is what the rows, shipping and fee carry
    minus the order's VAT (``tax_lines``). None when the shop reports no VAT per rate or
    the figures do not fit (then the rows' nets weigh the split)."""
    if not order.tax_lines:
        return None
    carried: dict[str, list[Decimal]] = {}

    def add(rate: Decimal, vat: Decimal) -> None:
        entry = carried.setdefault(rate_key(rate), [to_decimal(rate), Decimal("0.00")])
        entry[1] += cents(vat)

    for row in order.lines:
        add(row.tax_rate, row.amount_incl - row.amount_excl)
    for part in shipping_parts(order) + payment_fee_parts(order):
        add(part.rate, part.tax)
    for tax in order.tax_lines:
        entry = carried.setdefault(rate_key(tax.rate), [to_decimal(tax.rate), Decimal("0.00")])
        entry[1] -= cents(tax.amount)
    taxes = [(rate, vat) for rate, vat in carried.values() if vat or rate == 0]
    if any(vat < 0 for _, vat in taxes):
        return None
    try:
        parts = split_charge(net, gross, taxes)
    except MoneyError:
        return None
    if any(p.net < 0 or p.gross < 0 for p in parts):
        return None
    return parts


def _discount_lines(
    order: MappedOrder,
    refs: OrderRefs,
    mode: GlobalTaxCalculation,
    net: Decimal,
    gross: Decimal,
    shipping_rates: frozenset[str] = frozenset(),
) -> list[_Line]:
    rates: dict[str, Decimal] = {}
    weights: dict[str, Decimal] = {}
    for row in order.lines:
        key = rate_key(row.tax_rate)
        rates[key] = row.tax_rate
        weights[key] = weights.get(key, Decimal(0)) + row.amount_excl
    keys = sorted(rates, key=lambda k: rates[k], reverse=True)
    if refs.discount_item_id:
        parts = _discount_parts_from_shop_vat(order, net, gross)
        if parts is not None:
            keys = [rate_key(p.rate) for p in parts]
            rates.update({rate_key(p.rate): p.rate for p in parts})
            net_shares, gross_shares = [p.net for p in parts], [p.gross for p in parts]
        else:
            net_shares = allocate(net, [weights[k] for k in keys])
            gross_shares = allocate(gross, [weights[k] for k in keys])
        result = []
        for key, net_share, gross_share in zip(keys, net_shares, gross_shares):
            if net_share == 0 and gross_share == 0:
                continue
            line = _sales_line(
                item_id=refs.discount_item_id,
                quantity=Decimal(1),
                net=-net_share,
                gross=-gross_share,
                rate=rates[key],
                description=f"Order discount ({key}% VAT)" if mode != "NotApplicable" else "Order discount",
                mode=mode,
                refs=refs,
                field_name="discount_excl",
            )
            result.append(line)
        return result
    if mode != "NotApplicable" and len(set(keys) | shipping_rates) > 1:
        raise PayloadError(
            "an order discount on a document with several VAT rates needs settings.discount_item "
            "(QBO would spread a DiscountLineDetail over all rates, shipping included)",
            field="discount_excl",
        )
    amount = gross if mode == "NotApplicable" else net
    rate = None if mode == "NotApplicable" else rates[keys[0]]
    json = {
        "DetailType": "DiscountLineDetail",
        "Amount": money_json(amount),
        "DiscountLineDetail": {"PercentBased": False},
        "Description": "Order discount",
    }
    return [_Line(json=json, taxable=TaxableLine(net=amount, rate=rate, kind="discount"))]


def _rounding_line(
    difference: Decimal, refs: OrderRefs, mode: GlobalTaxCalculation, policy: RoundingPolicy
) -> _Line:
    tax_code = policy.tax_code_id
    if mode != "NotApplicable" and tax_code is None:
        tax_code = refs.tax_code_ids.get("0")
        if tax_code is None:
            raise PayloadError(
                "a rounding line needs settings.rounding.tax_code or a 0% tax code", "total_incl"
            )
    return _sales_line(
        item_id=str(policy.item_id),
        quantity=Decimal(1),
        net=difference,
        gross=difference,
        rate=Decimal(0) if mode != "NotApplicable" else None,
        description="Rounding difference",
        mode=mode,
        refs=refs,
        tax_code_id=tax_code,
        field_name="total_incl",
    )


def _supplied_vat(
    lines: list[_Line], refs: OrderRefs, shop_vat: Mapping[str, Decimal]
) -> dict[str, tuple[str, Decimal]]:
    """``rate_key`` → (TaxRate id, the shop's VAT) for each rate the document supplies.

    A rate is supplied when the shop reports its VAT and every line at that percentage
    carries a tax code of one and the same single TaxRate (Intuit: a tax line's rate must
    be a rate of the codes on the lines, each rate listed once). The shop's VAT at a rate
    no line carries cannot be booked: an error that names the rate.
    """
    rate_ids: dict[str, set[str | None]] = {}
    for line in lines:
        if line.taxable.rate is None:
            continue
        code = ((line.json.get("SalesItemLineDetail") or {}).get("TaxCodeRef") or {}).get("value")
        rate_ids.setdefault(rate_key(line.taxable.rate), set()).add(refs.tax_rate_ids.get(str(code)))
    supplied = {}
    for key, amount in shop_vat.items():
        if key not in rate_ids:
            if cents(amount) != 0:
                raise PayloadError(f"the shop reports {cents(amount)} VAT at {key}% but no line "
                                   "carries that rate", field="tax_lines")
            continue
        ids = rate_ids[key]
        if len(ids) == 1 and None not in ids:
            supplied[key] = (next(iter(ids)), cents(amount))  # type: ignore[arg-type]
    return supplied


def _finish(
    *,
    entity: str,
    header: dict[str, Any],
    lines: list[_Line],
    shop_total: Decimal,
    mode: GlobalTaxCalculation,
    refs: OrderRefs,
    policy: RoundingPolicy,
    notes: list[str],
    shop_vat: Mapping[str, Decimal] | None = None,
    supply_vat: bool = True,
    currency: str | None = None,
) -> BuiltDocument:
    """Totals, the supplied VAT, the rounding line and the figures to verify.

    ``shop_vat`` (``rate_key`` → VAT) is the VAT per rate on the customer's invoice; with
    ``supply_vat`` it is sent as ``TxnTaxDetail`` so QuickBooks books exactly that VAT.
    A cent the nets still differ by (QuickBooks derives a tax-inclusive line's net per
    line) goes on the rounding line, at 0 % VAT: the VAT stays the shop's.
    """
    taxed = mode != "NotApplicable"
    supplied = _supplied_vat(lines, refs, shop_vat) if taxed and supply_vat and shop_vat else {}
    amounts = {key: amount for key, (_, amount) in supplied.items()}

    def predict() -> QboTotals:
        return predict_qbo_totals((line.taxable for line in lines), mode, amounts)

    predicted = predict()
    decision = rounding_adjustment(shop_total, predicted, policy)
    if decision.error:
        raise PayloadError(decision.error, field="total_incl")
    difference = Decimal("0.00")
    if decision.add_line:
        lines.append(_rounding_line(decision.difference, refs, mode, policy))
        predicted = predict()
        difference = decision.difference
        notes.append(f"rounding line of {difference} added")
    elif decision.difference != 0:
        difference = decision.difference
        notes.append(f"QBO total differs from the shop total by {difference} (rounding disabled)")
    payload = dict(header)
    payload["Line"] = [line.json for line in lines]
    if supplied:
        nets = {rate_key(t.rate): t.net_amount_taxable for t in predicted.tax_lines}
        payload["TxnTaxDetail"] = {
            "TotalTax": money_json(predicted.total_tax),
            "TaxLine": [
                {"Amount": money_json(amount), "DetailType": "TaxLineDetail",
                 "TaxLineDetail": {"TaxRateRef": ref(rate_id), "PercentBased": True,
                                   "TaxPercent": money_json(to_decimal(key)),
                                   "NetAmountTaxable": money_json(nets.get(key, Decimal(0)))}}
                for key, (rate_id, amount) in supplied.items()
            ],
        }
    if not taxed:
        expected_vat: dict[str, Decimal] = {}
    elif shop_vat:
        expected_vat = {key: cents(amount) for key, amount in shop_vat.items()}
    else:
        expected_vat = {}
        for tax_line in predicted.tax_lines:
            key = rate_key(tax_line.rate)
            expected_vat[key] = expected_vat.get(key, Decimal("0.00")) + tax_line.amount
    return BuiltDocument(
        entity=entity,
        payload=payload,
        predicted=predicted,
        shop_total=cents(shop_total),
        rounding_difference=difference,
        notes=tuple(notes),
        expected=Expected(total=cents(shop_total), vat=expected_vat, currency=currency),
    )


def shop_vat_per_rate(order: MappedOrder) -> dict[str, Decimal]:
    """The order's VAT per rate as the shop reports it (``tax_lines``: Lightspeed's
    ``taxRates``), summed per ``rate_key``; empty when the shop reports none."""
    vat: dict[str, Decimal] = {}
    for tax in order.tax_lines:
        key = rate_key(tax.rate)
        vat[key] = vat.get(key, Decimal("0.00")) + cents(tax.amount)
    return vat


def _trace_note(order: MappedOrder, extra: str | None = None) -> str:
    note = f"Lightspeed order {order.number} (id {order.source_id})"
    if extra:
        note = f"{note}; {extra}"
    if order.memo:
        note = f"{note}\n{order.memo}"
    return note[:MAX_PRIVATE_NOTE]


def _document_header(
    order: MappedOrder,
    refs: OrderRefs,
    options: DocumentOptions,
    *,
    number: str,
    private_note: str,
) -> dict[str, Any]:
    header: dict[str, Any] = {
        "DocNumber": number,
        "TxnDate": txn_date(order.created_at, options.timezone),
        "CustomerRef": ref(refs.customer_id),
        "GlobalTaxCalculation": options.tax_calculation,
        "PrivateNote": private_note,
    }
    customer = order.customer
    bill = address_payload(order.bill_addr or (customer.bill_addr if customer else None))
    ship = address_payload(order.ship_addr or (customer.ship_addr if customer else None))
    if bill:
        header["BillAddr"] = bill
    if ship:
        header["ShipAddr"] = ship
    email = usable_email(customer.email) if customer else None
    if email:
        header["BillEmail"] = {"Address": email}
    if options.multicurrency and order.currency:
        header["CurrencyRef"] = ref(order.currency)
    return header


def build_sales_document(order: MappedOrder, refs: OrderRefs, options: DocumentOptions) -> BuiltDocument:
    """A SalesReceipt or Invoice for ``order`` (raises :class:`PayloadError` per record)."""
    mode = options.tax_calculation
    notes: list[str] = []
    lines = _order_lines(order, refs, mode)
    shipping = _shipping_lines(order, refs, mode)
    lines.extend(shipping)
    fees = _payment_fee_lines(order, refs, mode)
    lines.extend(fees)
    discount = separate_order_discount(order)
    if discount:
        charged_rates = frozenset(rate_key(p.rate) for p in shipping_parts(order) + payment_fee_parts(order))
        lines.extend(_discount_lines(order, refs, mode, *discount, shipping_rates=charged_rates))
    elif order.discount_incl or order.discount_excl:
        notes.append("order discount already contained in the row amounts")
    header = _document_header(
        order,
        refs,
        options,
        number=doc_number(order.number, options.doc_number_prefix),
        private_note=_trace_note(order),
    )
    if options.doc_type == "SalesReceipt":
        if refs.payment_method_id:
            header["PaymentMethodRef"] = ref(refs.payment_method_id)
        if refs.deposit_account_id:
            header["DepositToAccountRef"] = ref(refs.deposit_account_id)
    elif options.doc_type == "Invoice":
        if refs.term_id:
            header["SalesTermRef"] = ref(refs.term_id)
    else:
        raise PayloadError(f"unknown document type {options.doc_type!r}", field="doc_type")
    return _finish(
        entity=options.doc_type,
        header=header,
        lines=lines,
        shop_total=order.total_incl,
        mode=mode,
        refs=refs,
        policy=options.rounding,
        notes=notes,
        shop_vat=shop_vat_per_rate(order),
        supply_vat=options.supply_vat,
        currency=order.currency if options.multicurrency else None,
    )


def payment_payload(
    *,
    invoice: Mapping[str, Any],
    amount: Decimal,
    txn_date: str,
    reference: str,
    payment_method_id: str | None = None,
    deposit_account_id: str | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """A Payment of ``amount`` applied to ``invoice`` (the Invoice as QuickBooks returned
    it: its ``Id``, ``CustomerRef`` and ``CurrencyRef`` are used)."""
    amount = cents(amount)
    if amount <= 0:
        raise PayloadError(f"a payment needs a positive amount, got {amount}", field="payment")
    payload: dict[str, Any] = {
        "CustomerRef": ref(str((invoice.get("CustomerRef") or {}).get("value"))),
        "TotalAmt": money_json(amount),
        "TxnDate": txn_date,
        "PaymentRefNum": reference[:MAX_DOC_NUMBER],
        "Line": [{"Amount": money_json(amount),
                  "LinkedTxn": [{"TxnId": str(invoice["Id"]), "TxnType": "Invoice"}]}],
    }
    if invoice.get("CurrencyRef"):
        payload["CurrencyRef"] = dict(invoice["CurrencyRef"])
        if invoice.get("ExchangeRate") is not None:
            payload["ExchangeRate"] = invoice["ExchangeRate"]
    if payment_method_id:
        payload["PaymentMethodRef"] = ref(payment_method_id)
    if deposit_account_id:
        payload["DepositToAccountRef"] = ref(deposit_account_id)
    if note:
        payload["PrivateNote"] = note[:MAX_PRIVATE_NOTE]
    return payload


# --------------------------------------------------------------------------- refunds


@dataclass(frozen=True)
class OriginalDocument:
    """The QBO document a refund belongs to."""

    id: str
    entity: DocumentType
    doc_number: str


def build_refund_document(
    order: MappedOrder,
    refunded_quantities: Mapping[str, Decimal],
    refs: OrderRefs,
    options: DocumentOptions,
    original: OriginalDocument,
    *,
    refund_shipping: bool = False,
) -> BuiltDocument:
    """A CreditMemo (original was an Invoice) or RefundReceipt (original a SalesReceipt).

    Only refunded rows and quantities: ``refunded_quantities`` maps an order row's
    ``source_id`` to the quantity refunded (Lightspeed ``quantityRefunded``). Amounts are
    the row totals pro rata (a fully refunded row refunds exactly its total), with the
    row's VAT; shipping is refunded in full when ``refund_shipping``. QBO offers no link
    from a CreditMemo/RefundReceipt to a SalesReceipt or Invoice through the API, so the
    original is named in ``PrivateNote`` and ``CustomerMemo``.
    """
    mode = options.tax_calculation
    rows = {row.source_id: (index, row) for index, row in enumerate(order.lines)}
    lines: list[_Line] = []
    shop_total = Decimal("0.00")
    for source_id, raw_quantity in sorted(refunded_quantities.items()):
        quantity = to_decimal(raw_quantity)
        if quantity == 0:
            continue
        if source_id not in rows:
            raise PayloadError(f"refunded row {source_id} is not on the order", field="lines")
        index, row = rows[source_id]
        if quantity < 0 or quantity > row.quantity:
            raise PayloadError(
                f"refunded quantity {quantity} outside 0..{row.quantity}", field=f"lines.{index}.quantity"
            )
        share = quantity / row.quantity
        net, gross = cents(row.amount_excl * share), cents(row.amount_incl * share)
        lines.append(
            _sales_line(
                item_id=_item_for(refs, row, index),
                quantity=quantity,
                net=net,
                gross=gross,
                rate=row.tax_rate,
                description=row.description or row.name,
                mode=mode,
                refs=refs,
                field_name=f"lines.{index}",
            )
        )
        shop_total += gross
    if refund_shipping:
        shipping = _shipping_lines(order, refs, mode)
        if shipping:
            lines.extend(shipping)
            shop_total += cents(order.shipping_incl or 0)
    fees = _payment_fee_lines(order, refs, mode)  # a credited payment fee, if any
    if fees:
        lines.extend(fees)
        shop_total += cents(order.payment_fee_incl or 0)
    if not lines:
        raise PayloadError("nothing refunded", field="lines")
    entity = "CreditMemo" if original.entity == "Invoice" else "RefundReceipt"
    link = f"refund of {original.entity} {original.doc_number} (QBO id {original.id})"
    header = _document_header(
        order,
        refs,
        options,
        number=doc_number(order.number, options.doc_number_prefix, options.refund_suffix),
        private_note=_trace_note(order, link),
    )
    header["CustomerMemo"] = {"value": f"Refund of {original.doc_number}"}
    if entity == "RefundReceipt":
        if refs.payment_method_id:
            header["PaymentMethodRef"] = ref(refs.payment_method_id)
        if not refs.deposit_account_id:
            raise PayloadError("a RefundReceipt needs the account the refund is paid from", "deposit_account")
        header["DepositToAccountRef"] = ref(refs.deposit_account_id)
    return _finish(
        entity=entity,
        header=header,
        lines=lines,
        shop_total=shop_total,
        mode=mode,
        refs=refs,
        policy=options.rounding,
        notes=[],
        shop_vat=shop_vat_per_rate(order),
        supply_vat=options.supply_vat,
        currency=order.currency if options.multicurrency else None,
    )


# --------------------------------------------------------------------------- customers


MAX_CUSTOMER_NOTES = 2000
MAX_TAX_IDENTIFIER = 20
MAX_PHONE = 30


def _fit(value: str | None, limit: int) -> str | None:
    from koppel.domain.names import truncate_at_word

    return truncate_at_word(value, limit) if value else value


def _name(value: str | None, limit: int = MAX_NAME) -> str | None:
    from koppel.domain.names import qbo_name

    return qbo_name(value, limit)


def customer_payload(
    *,
    display_name: str,
    company_name: str | None = None,
    given_name: str | None = None,
    middle_name: str | None = None,
    family_name: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    bill_addr: MappedAddress | None = None,
    ship_addr: MappedAddress | None = None,
    notes: str | None = None,
    parent_id: str | None = None,
    bill_with_parent: bool = True,
    currency: str | None = None,
    tax_identifier: str | None = None,
) -> dict[str, Any]:
    """A Customer create body (only fields with values). ``parent_id`` makes a sub-customer.

    ``tax_identifier`` (the customer's VAT number) goes in ``PrimaryTaxIdentifier``, the
    field Intuit has for it (minor version 4; masked when read back)."""
    payload: dict[str, Any] = {"DisplayName": _name(display_name)}
    # QBO's limits: names 100 characters without ``:``/tab/newline, notes 2000, a phone
    # number 30 (fault 2050 past them). Shops allow longer values; they are cut
    # deterministically at a word boundary (koppel.domain.names).
    simple = {
        "CompanyName": _name(company_name),
        "GivenName": _name(given_name),
        "MiddleName": _name(middle_name),
        "FamilyName": _name(family_name),
        "Notes": _fit(notes, MAX_CUSTOMER_NOTES),
    }
    payload.update({key: value for key, value in simple.items() if value})
    address = usable_email(email)
    if address:
        payload["PrimaryEmailAddr"] = {"Address": address}
    if phone:
        payload["PrimaryPhone"] = {"FreeFormNumber": _fit(phone, MAX_PHONE)}
    for key, value in (("BillAddr", address_payload(bill_addr)), ("ShipAddr", address_payload(ship_addr))):
        if value:
            payload[key] = value
    if parent_id:
        payload["ParentRef"] = ref(parent_id)
        payload["Job"] = True
        payload["BillWithParent"] = bill_with_parent
    if currency:
        payload["CurrencyRef"] = ref(currency)
    if tax_identifier:
        payload["PrimaryTaxIdentifier"] = tax_identifier[:MAX_TAX_IDENTIFIER]
    return payload


def sparse_update(entity: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """A sparse update body: ``Id``, ``SyncToken``, ``sparse: true`` and the changed fields."""
    body = {"Id": str(entity["Id"]), "SyncToken": str(entity.get("SyncToken", "0")), "sparse": True}
    body.update(changes)
    return body


# --------------------------------------------------------------------------- items


@dataclass(frozen=True)
class ItemAccounts:
    """Accounts a new item books to (``settings.product_accounts``)."""

    income_account_id: str
    expense_account_id: str | None = None
    asset_account_id: str | None = None


def category_payload(name: str, parent_id: str | None = None) -> dict[str, Any]:
    """An Item of ``Type: Category``; with a parent it is a sub-category."""
    payload: dict[str, Any] = {"Type": "Category", "Name": _name(name)}
    if parent_id:
        payload["SubItem"] = True
        payload["ParentRef"] = ref(parent_id)
    return payload


def item_payload(
    *,
    name: str,
    item_type: Literal["Inventory", "NonInventory", "Service"],
    accounts: ItemAccounts,
    sku: str | None = None,
    description: str | None = None,
    purchase_description: str | None = None,
    unit_price: Decimal | None = None,
    sales_tax_included: bool | None = None,
    purchase_cost: Decimal | None = None,
    category_id: str | None = None,
    quantity_on_hand: Decimal | None = None,
    inventory_start_date: date | None = None,
    active: bool = True,
    taxable: bool | None = None,
) -> dict[str, Any]:
    """An Item create body. Inventory items get ``TrackQtyOnHand`` and the three accounts.

    Sellable items cannot have children in QBO: ``category_id`` (a Category item) is the
    only parent they get (``SubItem`` + ``ParentRef``).
    """
    if item_type not in ("Inventory", "NonInventory", "Service"):
        raise PayloadError(f"unsupported item type {item_type!r}", field="track_stock")
    payload: dict[str, Any] = {"Name": _name(name), "Type": item_type, "Active": active}
    if sku:
        payload["Sku"] = sku
    if description:
        payload["Description"] = description[:MAX_DESCRIPTION]
    if purchase_description:
        payload["PurchaseDesc"] = purchase_description[:MAX_DESCRIPTION]
    if unit_price is not None:
        payload["UnitPrice"] = money_json(unit_price)
    if sales_tax_included is not None:
        payload["SalesTaxIncluded"] = sales_tax_included
    if purchase_cost is not None:
        payload["PurchaseCost"] = money_json(purchase_cost)
    if taxable is not None:
        payload["Taxable"] = taxable
    if category_id:
        payload["SubItem"] = True
        payload["ParentRef"] = ref(category_id)
    payload["IncomeAccountRef"] = ref(accounts.income_account_id)
    if item_type == "Inventory":
        if not accounts.asset_account_id or not accounts.expense_account_id:
            raise PayloadError("inventory items need asset and expense (COGS) accounts", "track_stock")
        payload["TrackQtyOnHand"] = True
        payload["QtyOnHand"] = money_json(quantity_on_hand if quantity_on_hand is not None else Decimal(0))
        if inventory_start_date is None:
            raise PayloadError("inventory items need a start date", field="quantity")
        payload["InvStartDate"] = inventory_start_date.isoformat()
        payload["AssetAccountRef"] = ref(accounts.asset_account_id)
        payload["ExpenseAccountRef"] = ref(accounts.expense_account_id)
    elif accounts.expense_account_id and purchase_cost is not None:
        payload["ExpenseAccountRef"] = ref(accounts.expense_account_id)
    return payload


# --------------------------------------------------------------------------- stock


@dataclass(frozen=True)
class AdjustmentRow:
    item_id: str
    qty_diff: Decimal


def inventory_adjustment_payload(
    rows: Iterable[AdjustmentRow],
    *,
    adjust_account_id: str,
    txn_date: date,
    private_note: str | None = None,
) -> dict[str, Any]:
    """An InventoryAdjustment with one ``QtyDiff`` line per item (zero diffs are dropped)."""
    lines = [
        {
            "DetailType": "ItemAdjustmentLineDetail",
            "ItemAdjustmentLineDetail": {"ItemRef": ref(row.item_id), "QtyDiff": money_json(row.qty_diff)},
        }
        for row in rows
        if to_decimal(row.qty_diff) != 0
    ]
    if not lines:
        raise PayloadError("no quantity changes to adjust", field="stock_level")
    payload: dict[str, Any] = {
        "AdjustAccountRef": ref(adjust_account_id),
        "TxnDate": txn_date.isoformat(),
        "Line": lines,
    }
    if private_note:
        payload["PrivateNote"] = private_note[:MAX_PRIVATE_NOTE]
    return payload
