"""How the sandbox computes sales-document money, the way QBO does it.

All arithmetic is ``Decimal``; every stored amount is rounded half-up to cents. Read this
before building payloads for the sandbox (or for QBO).

Lines
  ``SalesItemLineDetail`` lines: ``Amount`` is always the line amount **excluding** tax,
  also on ``TaxInclusive`` documents. When both ``Qty`` and ``UnitPrice`` are given,
  ``Amount`` must equal ``round(Qty × UnitPrice, 2)`` or the request fails with 6070; an
  absent or zero ``Amount`` is filled in. With only ``Amount`` (and maybe ``Qty``) the
  missing ``UnitPrice``/``Qty`` is derived (``Qty`` 1). Zero ``Qty``/``UnitPrice``/
  ``TaxInclusiveAmt`` count as absent (python-quickbooks sends 0 for unset numbers).
  A shipping charge is an ordinary item line (the seeded "Shipping" service item, or
  ``ItemRef`` ``SHIPPING_ITEM_ID``) with its own ``TaxCodeRef``.

``GlobalTaxCalculation`` (VAT companies; US companies ignore it)
  ``TaxExcluded`` (python-quickbooks' default): tax is computed **per tax rate** on the sum
  of the net amounts that carry that rate: ``round(NetAmountTaxable × TaxPercent / 100)``.
  ``TaxInclusive``: send the gross line total as ``SalesItemLineDetail.TaxInclusiveAmt``.
  QBO derives the net ``Amount = round(TaxInclusiveAmt / (1 + rate/100))`` **per line**
  and ``UnitPrice = Amount / Qty`` (7 decimals); the line's tax is ``TaxInclusiveAmt −
  Amount``, and the tax per rate is the sum of its lines' taxes, so ``TotalAmt`` equals
  the sum of the gross line totals exactly. A ``TaxInclusive`` line sent without
  ``TaxInclusiveAmt`` is taken as net (QBO adds the tax on top; ``TaxInclusiveAmt`` is
  then computed as ``round(Amount × (1 + rate/100))``).
  ``NotApplicable``: no tax at all, no tax codes needed.
  Every item line of a VAT document needs a ``TaxCodeRef`` unless the item has a
  ``SalesTaxCodeRef`` (else 6000).

Discounts (``DiscountLineDetail``)
  ``PercentBased: true`` + ``DiscountPercent``: ``Amount = round(net subtotal × pct / 100)``;
  otherwise ``Amount`` is the discount in the same (net) terms as the line amounts. The
  discount is applied **before tax**: it is spread over the tax rates in proportion to
  their net amounts (the last rate takes the rounding remainder) and reduces each rate's
  ``NetAmountTaxable``; on ``TaxInclusive`` documents the rate's tax is reduced by
  ``round(share × pct / 100)``. US companies apply the discount before tax only when
  ``ApplyTaxAfterDiscount`` is true.

``SubTotalLineDetail`` lines get ``Amount`` = the sum of the item lines above them.

Tax supplied by the client (VAT companies)
  Intuit's reference for ``TxnTaxDetail`` on Invoice, SalesReceipt, CreditMemo and
  RefundReceipt: "This can be calculated by QuickBooks business logic or you may supply
  it when adding a transaction"; a ``TaxLine``'s ``TaxRateRef`` "must also be one of the
  rates in the referenced tax code's rate list ... Any given rate may only be listed
  once"; ``TaxLineDetail.OverrideDeltaAmount`` "holds the difference between the actual
  tax and overridden amount supplied by the user" (docs/vendor-facts.md, topic 1). So a
  request's ``TxnTaxDetail.TaxLine[]`` (``DetailType: "TaxLineDetail"``, else 2020)
  replaces the computed tax of its rate: the rate must be one the document's lines use
  (else 6000), listed once (else 6000); the stored line keeps the supplied ``Amount``
  and gets ``OverrideDeltaAmount`` = supplied − computed. Rates without a supplied line
  keep the computed tax. ``TotalTax`` = the sum of the tax lines and ``TotalAmt`` = net
  total after discount + ``TotalTax``, also on ``TaxInclusive`` documents (assumed:
  Intuit does not say how an override combines with tax-inclusive lines; see
  docs/sandbox-fidelity.md). An update without ``TxnTaxDetail`` recomputes the tax
  (Intuit: "when updating Amount, remove the TxnTaxDetail element").

US companies (automated sales tax)
  Line ``TaxCodeRef`` is ``TAX`` or ``NON``. The rate is that of the tax code in
  ``TxnTaxDetail.TxnTaxCodeRef`` or else the company's default automated-tax code; tax =
  ``round(sum of TAX lines × rate / 100)``. Sending ``TxnTaxDetail.TxnTaxCodeRef`` **and**
  ``TotalTax`` overrides the computed tax with ``TotalTax``.

Result: ``TxnTaxDetail = {TotalTax, TaxLine: [{Amount, DetailType: "TaxLineDetail",
TaxLineDetail: {TaxRateRef, PercentBased: true, TaxPercent, NetAmountTaxable}}]}`` (one
TaxLine per rate, 0 % rates included) and ``TotalAmt = net total after discount +
TotalTax``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Callable

from koppel.sandbox.quickbooks import faults

CENT = Decimal("0.01")
PRICE = Decimal("0.0000001")
ZERO = Decimal("0")
HUNDRED = Decimal("100")


@dataclass(frozen=True)
class Rate:
    """One tax rate as a tax code applies it to sales."""

    id: str
    name: str
    percent: Decimal


def q2(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def dec(value: Any) -> Decimal | None:
    """A number from JSON as Decimal; None for absent, "" or non-numbers."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def nonzero(value: Any) -> Decimal | None:
    number = dec(value)
    return None if number is None or number == 0 else number


def num(value: Decimal) -> float | int:
    """Decimal → JSON number (QBO answers plain numbers)."""
    return float(value)


@dataclass
class _Group:
    rate: Rate
    net: Decimal = ZERO
    inclusive_tax: Decimal = ZERO


RatesForCode = Callable[[str], list[Rate]]


def _item_line(line: dict, number: int, pct: Decimal, inclusive: bool) -> Decimal:
    """Fill Amount/Qty/UnitPrice(/TaxInclusiveAmt) of one item line; returns the net amount."""
    detail = line.setdefault("SalesItemLineDetail", {})
    qty, unit = nonzero(detail.get("Qty")), nonzero(detail.get("UnitPrice"))
    amount, gross = nonzero(line.get("Amount")), nonzero(detail.get("TaxInclusiveAmt"))
    if inclusive and gross is not None:
        amount = q2(gross / (1 + pct / HUNDRED))
        qty = qty if qty is not None else Decimal(1)
        unit = (amount / qty).quantize(PRICE, rounding=ROUND_HALF_UP)
    else:
        if qty is not None and unit is not None:
            expected = q2(qty * unit)
            if amount is not None and amount != expected:
                raise faults.amount_mismatch(number)
            amount = expected
        elif amount is not None:
            if qty is not None:
                unit = (amount / qty).quantize(PRICE, rounding=ROUND_HALF_UP)
            elif unit is not None:
                qty = (amount / unit).quantize(PRICE, rounding=ROUND_HALF_UP)
            else:
                qty, unit = Decimal(1), amount
        else:
            amount = ZERO
        amount = q2(amount)
        if inclusive:
            gross = q2(amount * (1 + pct / HUNDRED))
    line["Amount"] = num(amount)
    if qty is not None:
        detail["Qty"] = num(qty)
    if unit is not None:
        detail["UnitPrice"] = num(unit)
    if inclusive:
        detail["TaxInclusiveAmt"] = num(gross)
    else:
        detail.pop("TaxInclusiveAmt", None)
    return amount


def _allocate(total: Decimal, weights: list[Decimal]) -> list[Decimal]:
    """Split ``total`` over ``weights`` proportionally in cents; the last takes the rest."""
    base = sum(weights, ZERO)
    if not weights:
        return []
    if base == 0:
        return [ZERO] * (len(weights) - 1) + [total]
    shares = [q2(total * w / base) for w in weights[:-1]]
    return shares + [total - sum(shares, ZERO)]


def _discount(lines: list[dict], subtotal: Decimal) -> Decimal:
    total = ZERO
    for line in lines:
        detail = line.get("DiscountLineDetail") or {}
        pct = dec(detail.get("DiscountPercent"))
        if detail.get("PercentBased") and pct is not None:
            amount = q2(subtotal * pct / HUNDRED)
        else:
            amount = q2(dec(line.get("Amount")) or ZERO)
        line["Amount"] = num(amount)
        total += amount
    return total


def _subtotals(doc_lines: list[dict]) -> None:
    running = ZERO
    for line in doc_lines:
        if line.get("DetailType") == "SalesItemLineDetail":
            running += dec(line.get("Amount")) or ZERO
        elif line.get("DetailType") == "SubTotalLineDetail":
            line["Amount"] = num(running)
            line.setdefault("SubTotalLineDetail", {})


def _tax_line(rate: Rate, amount: Decimal, net: Decimal,
              delta: Decimal | None = None) -> dict[str, Any]:
    detail: dict[str, Any] = {"TaxRateRef": {"value": rate.id, "name": rate.name},
                              "PercentBased": True, "TaxPercent": num(rate.percent),
                              "NetAmountTaxable": num(net)}
    if delta is not None:
        detail["OverrideDeltaAmount"] = num(delta)
    return {"Amount": num(amount), "DetailType": "TaxLineDetail", "TaxLineDetail": detail}


def _supplied_tax(sent_tax: dict | None, used: dict[str, "_Group"]) -> dict[str, Decimal]:
    """The client's tax per rate id from ``TxnTaxDetail.TaxLine`` (see the module doc)."""
    supplied: dict[str, Decimal] = {}
    for number, line in enumerate((sent_tax or {}).get("TaxLine") or [], 1):
        if not isinstance(line, dict):
            continue
        if line.get("DetailType") != "TaxLineDetail":
            raise faults.required(f"TxnTaxDetail.TaxLine[{number}].DetailType")
        rate_id = str(((line.get("TaxLineDetail") or {}).get("TaxRateRef") or {}).get("value", ""))
        if rate_id not in used:
            raise faults.business(
                f"TaxRateRef {rate_id or '(none)'} of tax line {number} is not a rate of the "
                "tax codes on the transaction's lines", "TxnTaxDetail.TaxLine.TaxRateRef")
        if rate_id in supplied:
            raise faults.business(f"TaxRateRef {rate_id} is listed more than once",
                                  "TxnTaxDetail.TaxLine.TaxRateRef")
        amount = dec(line.get("Amount"))
        if amount is None:
            raise faults.required(f"TxnTaxDetail.TaxLine[{number}].Amount")
        supplied[rate_id] = q2(amount)
    return supplied


def compute_vat_document(doc: dict, rates_for_code: RatesForCode,
                         sent_tax: dict | None = None) -> None:
    """Fill a VAT company's sales document: lines, ``TxnTaxDetail``, ``TotalAmt``."""
    mode = doc.get("GlobalTaxCalculation") or "TaxExcluded"
    if mode not in ("TaxExcluded", "TaxInclusive", "NotApplicable"):
        raise faults.invalid_enum("GlobalTaxCalculation", mode)
    doc["GlobalTaxCalculation"] = mode
    inclusive = mode == "TaxInclusive"
    groups: dict[str, _Group] = {}
    net_total = ZERO
    discounts = []
    for number, line in enumerate(doc.get("Line", []), 1):
        kind = line.get("DetailType")
        if kind == "SalesItemLineDetail":
            detail = line.setdefault("SalesItemLineDetail", {})
            rates: list[Rate] = []
            if mode != "NotApplicable":
                rates = rates_for_code(str((detail.get("TaxCodeRef") or {}).get("value", "")))
            pct = sum((r.percent for r in rates), ZERO)
            net = _item_line(line, number, pct, inclusive)
            net_total += net
            line_tax = (dec(detail.get("TaxInclusiveAmt")) or ZERO) - net if inclusive else ZERO
            # a code with several rates splits the line's inclusive tax by rate
            tax_shares = _allocate(line_tax, [r.percent for r in rates]) if rates else []
            for rate, tax_share in zip(rates, tax_shares):
                group = groups.setdefault(rate.id, _Group(rate))
                group.net += net
                group.inclusive_tax += tax_share
        elif kind == "DiscountLineDetail":
            discounts.append(line)
    discount = _discount(discounts, net_total)
    _subtotals(doc.get("Line", []))
    ordered = list(groups.values())
    supplied = _supplied_tax(sent_tax, groups) if mode != "NotApplicable" else {}
    shares = _allocate(discount, [g.net for g in ordered]) if discount else [ZERO] * len(ordered)
    tax_lines, total_tax = [], ZERO
    for group, share in zip(ordered, shares):
        net = group.net - share
        if inclusive:
            amount = group.inclusive_tax - q2(share * group.rate.percent / HUNDRED)
        else:
            amount = q2(net * group.rate.percent / HUNDRED)
        delta = None
        if group.rate.id in supplied:
            delta, amount = supplied[group.rate.id] - amount, supplied[group.rate.id]
        total_tax += amount
        tax_lines.append(_tax_line(group.rate, amount, net, delta))
    detail: dict[str, Any] = {"TotalTax": num(total_tax)}
    if tax_lines:
        detail["TaxLine"] = tax_lines
    doc["TxnTaxDetail"] = detail
    doc["TotalAmt"] = num(net_total - discount + total_tax)


def compute_us_document(doc: dict, rates_for_code: RatesForCode, default_code: str,
                        sent_tax_detail: dict | None) -> None:
    """Fill a US (automated sales tax) document: lines TAX/NON, one tax code per document."""
    doc.pop("GlobalTaxCalculation", None)
    taxable, net_total = ZERO, ZERO
    discounts = []
    for number, line in enumerate(doc.get("Line", []), 1):
        kind = line.get("DetailType")
        if kind == "SalesItemLineDetail":
            detail = line.setdefault("SalesItemLineDetail", {})
            net = _item_line(line, number, ZERO, False)
            net_total += net
            if str((detail.get("TaxCodeRef") or {}).get("value", "NON")).upper() == "TAX":
                taxable += net
        elif kind == "DiscountLineDetail":
            discounts.append(line)
    discount = _discount(discounts, net_total)
    _subtotals(doc.get("Line", []))
    if doc.get("ApplyTaxAfterDiscount") and discount and net_total:
        taxable -= _allocate(discount, [taxable, net_total - taxable])[0]
    sent = sent_tax_detail or {}
    code = str((sent.get("TxnTaxCodeRef") or {}).get("value") or default_code)
    rates = rates_for_code(code)
    override = dec(sent.get("TotalTax")) if sent.get("TxnTaxCodeRef") else None
    computed = [(rate, q2(taxable * rate.percent / HUNDRED)) for rate in rates]
    total_tax = override if override is not None else sum((a for _, a in computed), ZERO)
    if override is not None and computed:
        amounts = _allocate(override, [r.percent for r, _ in computed])
        computed = [(rate, amount) for (rate, _), amount in zip(computed, amounts)]
    doc["TxnTaxDetail"] = {
        "TxnTaxCodeRef": {"value": code}, "TotalTax": num(q2(total_tax)),
        "TaxLine": [_tax_line(rate, amount, taxable) for rate, amount in computed]}
    doc["TotalAmt"] = num(net_total - discount + q2(total_tax))
