"""Money and VAT arithmetic, and a replica of how QuickBooks Online totals a document.

Everything is :class:`~decimal.Decimal`; floats never take part in a calculation.
Amounts are rounded to cents half-up (the commercial rounding Lightspeed and QBO use).

How QBO totals a sales document (the model this module replicates)
--------------------------------------------------------------------
Evidence: Intuit's sample companies (AU invoice 1019, ``GlobalTaxCalculation:
TaxInclusive``: line ``TaxInclusiveAmt`` 450.00, ``Amount`` 409.09, ``Qty`` 450,
``UnitPrice`` 0.9090889; ``TxnTaxDetail.TaxLine`` ``NetAmountTaxable`` 409.09,
``TaxPercent`` 10, ``Amount`` 40.91; ``TotalAmt`` 450.00), Intuit's non-US sales tax
guide ("QuickBooks Online automatically calculates tax ... based on the TaxCode assigned
to each line"), and the project's QBO sandbox (``koppel/sandbox/quickbooks/money.py``),
which this replica matches rule for rule.

* A line's ``Amount`` is always **net** (excluding tax), in cents, and must equal
  ``round(Qty × UnitPrice, 2)`` (fault 6070). ``UnitPrice`` may carry 7 decimals
  (the sample's 0.9090889 × 450 = 409.090005 → 409.09).
* ``TaxExcluded``: tax is computed **per tax rate** on the sum of the net amounts that
  carry it, rounded once: ``round(NetAmountTaxable × TaxPercent / 100)``. A webshop
  that rounds VAT per row can therefore differ by a cent.
* ``TaxInclusive``: the gross line total goes in ``SalesItemLineDetail.TaxInclusiveAmt``;
  QBO derives each line's net ``Amount = round(gross / (1 + rate/100))`` **per line**
  and its tax ``gross − net``; a rate's tax is the sum of its lines' taxes, so the total
  is the sum of the gross amounts.
* ``DiscountLineDetail`` (net amount) is applied before tax, spread over the rates in
  proportion to their net; on ``TaxInclusive`` documents it lowers a rate's tax by
  ``round(share × rate / 100)``. (koppel only emits one when a single rate is involved.)
* ``TotalAmt`` = net total − discount + total tax. ``NotApplicable``: no tax at all.
* Tax the request supplies per rate (``TxnTaxDetail.TaxLine``) replaces QBO's own for
  that rate (Intuit: "you may supply it when adding a transaction"): koppel supplies the
  shop's VAT per rate, so the books carry the VAT of the customer's invoice.

koppel predicts ``TotalAmt`` with :func:`predict_qbo_totals` before sending a document
and, when it differs from the shop's total, adds a rounding line (see
:func:`rounding_adjustment`) so the books match what the customer paid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Iterable, Literal

CENT = Decimal("0.01")
HUNDRED = Decimal("100")
#: QBO accepts up to 7 decimals on ``UnitPrice``.
UNIT_PRICE_PLACES = 7
UNIT_PRICE_QUANTUM = Decimal(1).scaleb(-UNIT_PRICE_PLACES)

GlobalTaxCalculation = Literal["TaxExcluded", "TaxInclusive", "NotApplicable"]
GLOBAL_TAX_CALCULATIONS: tuple[str, ...] = ("TaxExcluded", "TaxInclusive", "NotApplicable")


class MoneyError(ValueError):
    """A value cannot be used as money, or a calculation cannot be made exact."""


def to_decimal(value: object) -> Decimal:
    """Convert ``value`` to a finite Decimal; floats go through ``repr`` (no binary noise)."""
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, bool):
        raise MoneyError(f"not a number: {value!r}")
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, float):
        result = Decimal(repr(value))
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation as exc:
            raise MoneyError(f"not a number: {value!r}") from exc
    else:
        raise MoneyError(f"not a number: {value!r}")
    if not result.is_finite():
        raise MoneyError(f"not a finite number: {value!r}")
    return result


def cents(value: object) -> Decimal:
    """Round to cents, half-up (``2.345`` → ``2.35``, ``-2.345`` → ``-2.35``)."""
    return to_decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)



def rate_key(rate: object) -> str:
    """Canonical text of a VAT percentage: ``Decimal("21.00")`` → ``"21"``, ``9.5`` → ``"9.5"``.

    Used as the key of tax-code maps so that ``21``, ``"21.0"`` and ``Decimal("21")``
    resolve to the same tax code.
    """
    number = to_decimal(rate)
    if number == number.to_integral_value():
        return str(number.quantize(Decimal(1)))
    return format(number.normalize(), "f")


def tax_on_net(net: Decimal, rate: Decimal) -> Decimal:
    """VAT on a net amount, rounded to cents."""
    return cents(to_decimal(net) * to_decimal(rate) / HUNDRED)


def net_from_gross(gross: Decimal, rate: Decimal) -> Decimal:
    """Net amount contained in a gross amount at ``rate`` percent, rounded to cents."""
    return cents(to_decimal(gross) * HUNDRED / (HUNDRED + to_decimal(rate)))


def gross_from_net(net: Decimal, rate: Decimal) -> Decimal:
    """Gross amount for a net amount at ``rate`` percent (net + rounded VAT)."""
    net = cents(net)
    return net + tax_on_net(net, rate)


def tax_in_gross(gross: Decimal, rate: Decimal) -> Decimal:
    """VAT contained in a gross amount (gross − net)."""
    gross = cents(gross)
    return gross - net_from_gross(gross, rate)


def unit_price_for(amount: Decimal, quantity: Decimal) -> Decimal:
    """The ``UnitPrice`` QBO needs so that ``round(Qty × UnitPrice, 2) == Amount``.

    Exact when ``amount / quantity`` terminates within 7 decimals; otherwise rounded to 7
    decimals, which still reproduces ``amount`` after QBO's rounding to cents. Raises
    :class:`MoneyError` if no 7-decimal price can (very large quantities).
    """
    amount = to_decimal(amount)
    quantity = to_decimal(quantity)
    if quantity <= 0:
        raise MoneyError(f"quantity must be positive, got {quantity}")
    price = (amount / quantity).quantize(UNIT_PRICE_QUANTUM, rounding=ROUND_HALF_UP)
    price = price.normalize() if price != 0 else Decimal(0)
    if not line_amount_matches(quantity, price, amount):
        raise MoneyError(
            f"no unit price with {UNIT_PRICE_PLACES} decimals gives {amount} for quantity {quantity}"
        )
    return price


def line_amount_matches(quantity: Decimal, unit_price: Decimal, amount: Decimal) -> bool:
    """QBO's 6070 rule: ``Amount`` equals ``Qty × UnitPrice`` rounded to cents."""
    return cents(to_decimal(quantity) * to_decimal(unit_price)) == to_decimal(amount)


def allocate(total: Decimal, weights: Iterable[Decimal]) -> list[Decimal]:
    """Split ``total`` (cents) over ``weights`` proportionally, exact to the cent.

    Largest-remainder method; ties go to the earlier weight, so the result is
    deterministic. All weights zero → everything on the first share.
    """
    weights = [to_decimal(w) for w in weights]
    if not weights:
        raise MoneyError("nothing to allocate over")
    total_cents = int(cents(total) / CENT)
    weight_sum = sum(weights, Decimal(0))
    if weight_sum == 0:
        shares = [0] * len(weights)
        shares[0] = total_cents
        return [Decimal(s) * CENT for s in shares]
    sign = 1 if total_cents >= 0 else -1
    magnitude = abs(total_cents)
    raw = [Decimal(magnitude) * w / weight_sum for w in weights]
    floors = [int(r) for r in raw]
    remainder = magnitude - sum(floors)
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - floors[i]), i))
    for index in order[:remainder]:
        floors[index] += 1
    return [Decimal(sign * s) * CENT for s in floors]


@dataclass(frozen=True)
class ChargePart:
    """The share of a charge (shipping, a payment fee) at one VAT rate: net and gross."""

    rate: Decimal
    net: Decimal
    gross: Decimal

    @property
    def tax(self) -> Decimal:
        return self.gross - self.net


def _consistent(net: Decimal, vat: Decimal, rate: Decimal) -> bool:
    """Whether a share of ``net`` + ``vat`` is one a tax-inclusive line reproduces:
    round(gross / (1 + rate)) == net (QuickBooks derives the net that way)."""
    return net_from_gross(net + vat, rate) == net


def _inclusive_net(vat: Decimal, rate: Decimal) -> Decimal:
    """The net of a share whose VAT at ``rate`` is ``vat``: ``vat / rate`` in cents, moved
    by a cent or two where that makes the share consistent (see :func:`_consistent`),
    as the shop's own share (excl = round(incl / (1 + rate))) is."""
    base = cents(vat * HUNDRED / rate)
    for step in (0, 1, -1, 2, -2, 3, -3):
        candidate = base + CENT * step
        if candidate >= 0 and _consistent(candidate, vat, rate):
            return candidate
    return base


def split_charge(
    excl: object,
    incl: object,
    taxes: Iterable[tuple[object, object]],
    single_rate: object | None = None,
) -> list[ChargePart]:
    """A charge split over its VAT rates as the shop reports them.

    Lightspeed gives a charge's total excl./incl. VAT and its VAT per rate
    (``shipmentTaxRates``/``paymentTaxRates``: ``{rate, amount}``), not the net per
    rate. Each share keeps the shop's VAT exactly; its net is ``VAT / rate`` in cents,
    and the rounding rest of the nets goes to the 0 % share when there is one, else to
    the largest share, so the nets add up to ``excl`` and the grosses to ``incl``.
    ``single_rate`` is used when the shop reports no rates. Raises :class:`MoneyError`
    when the reported VAT does not add up to ``incl - excl``.
    """
    excl, incl = cents(excl), cents(incl)
    if excl == 0 and incl == 0:
        return []
    merged: dict[str, list[Decimal]] = {}
    for rate, amount in taxes:
        rate = to_decimal(rate)
        entry = merged.setdefault(rate_key(rate), [rate, Decimal("0.00")])
        entry[1] += cents(amount)
    if len(merged) <= 1:
        rate = next(iter(merged.values()))[0] if merged else single_rate
        if rate is None:
            if excl != incl:
                raise MoneyError(f"a charge of {incl} incl. / {excl} excl. VAT has no VAT rate")
            rate = Decimal(0)
        return [ChargePart(rate=to_decimal(rate), net=excl, gross=incl)]
    reported = sum((amount for _, amount in merged.values()), Decimal("0.00"))
    if reported != incl - excl:
        raise MoneyError(f"the VAT per rate ({reported}) does not add up to incl. − excl. "
                         f"({incl} − {excl})")
    nets = {key: (_inclusive_net(amount, rate) if rate else Decimal("0.00"))
            for key, (rate, amount) in merged.items()}
    rest = excl - sum(nets.values(), Decimal("0.00"))
    zero = [key for key, (rate, _) in merged.items() if rate == 0]
    if zero:
        taker = zero[0]
    else:  # a share that stays consistent with the rest added, else the largest
        fits = [key for key, (rate, amount) in merged.items()
                if _consistent(nets[key] + rest, amount, rate)]
        taker = max(fits or nets, key=lambda k: (nets[k], merged[k][0]))
    nets[taker] += rest
    return [ChargePart(rate=rate, net=nets[key], gross=nets[key] + amount)
            for key, (rate, amount) in sorted(merged.items(), key=lambda kv: -kv[1][0])]


# --------------------------------------------------------------------------- QBO replica


@dataclass(frozen=True)
class TaxableLine:
    """One line as QBO sees it for totalling.

    ``kind="item"``: a sales line with its net ``Amount`` and, on ``TaxInclusive``
    documents, its ``gross`` (``TaxInclusiveAmt``). ``kind="discount"``: a
    ``DiscountLineDetail`` whose positive ``net`` is subtracted. ``rate`` is ``None``
    without a tax code (``NotApplicable`` documents).
    """

    net: Decimal
    rate: Decimal | None
    gross: Decimal | None = None
    kind: Literal["item", "discount"] = "item"


@dataclass(frozen=True)
class TaxLineTotal:
    """One ``TxnTaxDetail.TaxLine``: the rate, its taxable net and its tax."""

    rate: Decimal
    net_amount_taxable: Decimal
    amount: Decimal


@dataclass(frozen=True)
class QboTotals:
    """What QBO will compute for a document."""

    net_total: Decimal
    discount: Decimal = Decimal("0.00")
    tax_lines: tuple[TaxLineTotal, ...] = field(default_factory=tuple)

    @property
    def total_tax(self) -> Decimal:
        return sum((t.amount for t in self.tax_lines), Decimal("0.00"))

    @property
    def total_amt(self) -> Decimal:
        return self.net_total - self.discount + self.total_tax


def qbo_line_net(line: TaxableLine, mode: GlobalTaxCalculation) -> Decimal:
    """The net ``Amount`` QBO stores for an item line (derived from gross when inclusive)."""
    if mode == "TaxInclusive" and line.gross is not None and line.gross != 0 and line.rate is not None:
        return net_from_gross(line.gross, line.rate)
    return cents(line.net)


def _allocate_last_takes_rest(total: Decimal, weights: list[Decimal]) -> list[Decimal]:
    """QBO's split of a discount over rates: proportional in cents, the last takes the rest."""
    base = sum(weights, Decimal(0))
    if base == 0:
        return [Decimal("0.00")] * (len(weights) - 1) + [total]
    shares = [cents(total * w / base) for w in weights[:-1]]
    return shares + [total - sum(shares, Decimal(0))]


def predict_qbo_totals(lines: Iterable[TaxableLine], mode: GlobalTaxCalculation,
                       supplied: dict[str, Decimal] | None = None) -> QboTotals:
    """Replicate QBO's ``TotalAmt`` / ``TxnTaxDetail`` for ``lines`` (see the module doc);
    ``supplied`` (``rate_key`` → tax) is the tax the request supplies per rate, which QBO
    keeps instead of its own (Intuit: "you may supply it when adding a transaction")."""
    if mode not in GLOBAL_TAX_CALCULATIONS:
        raise MoneyError(f"unknown GlobalTaxCalculation {mode!r}")
    lines = list(lines)
    items = [line for line in lines if line.kind == "item"]
    discount = sum((cents(line.net) for line in lines if line.kind == "discount"), Decimal("0.00"))
    nets = [qbo_line_net(line, mode) for line in items]
    net_total = sum(nets, Decimal("0.00"))
    if mode == "NotApplicable":
        return QboTotals(net_total=net_total, discount=discount)
    groups: dict[str, list[Decimal]] = {}  # rate key -> [rate, net, inclusive tax]
    for line, net in zip(items, nets):
        if line.rate is None:
            raise MoneyError("every line needs a tax rate when tax applies")
        group = groups.setdefault(
            rate_key(line.rate), [to_decimal(line.rate), Decimal("0.00"), Decimal("0.00")]
        )
        group[1] += net
        if mode == "TaxInclusive":
            gross = cents(line.gross) if line.gross is not None else gross_from_net(net, line.rate)
            group[2] += gross - net
    ordered = list(groups.values())
    shares = (
        _allocate_last_takes_rest(discount, [g[1] for g in ordered]) if discount and ordered
        else [Decimal("0.00")] * len(ordered)
    )
    tax_lines = []
    for (rate, net, inclusive_tax), share in zip(ordered, shares):
        taxable = net - share
        if mode == "TaxInclusive":
            amount = inclusive_tax - tax_on_net(share, rate)
        else:
            amount = tax_on_net(taxable, rate)
        if supplied and rate_key(rate) in supplied:
            amount = cents(supplied[rate_key(rate)])
        tax_lines.append(TaxLineTotal(rate=rate, net_amount_taxable=taxable, amount=amount))
    return QboTotals(net_total=net_total, discount=discount, tax_lines=tuple(tax_lines))


@dataclass(frozen=True)
class RoundingPolicy:
    """Tenant setting ``settings.rounding``: may koppel add a rounding line, on which item.

    ``max_amount`` bounds the absolute difference a rounding line may absorb; a larger
    difference means the mapping is wrong and the order fails instead of being papered
    over. ``tax_code_id`` is the (zero-rate / exempt) tax code for the rounding line on
    VAT companies.
    """

    enabled: bool = True
    item_id: str | None = None
    max_amount: Decimal = Decimal("0.05")
    tax_code_id: str | None = None


@dataclass(frozen=True)
class RoundingDecision:
    """Outcome of comparing QBO's predicted total with the shop total.

    ``difference`` = shop total − predicted QBO total. ``add_line`` says whether a
    rounding line of exactly ``difference`` must be added; ``error`` is set when the
    difference cannot be accepted (too large, or rounding disabled / not configured).
    """

    difference: Decimal
    add_line: bool
    error: str | None = None


def rounding_adjustment(
    shop_total: Decimal, predicted: QboTotals, policy: RoundingPolicy
) -> RoundingDecision:
    """Decide whether a rounding line is needed to make QBO's total equal the shop's."""
    difference = cents(shop_total) - predicted.total_amt
    if difference == 0:
        return RoundingDecision(difference=difference, add_line=False)
    if abs(difference) > to_decimal(policy.max_amount):
        return RoundingDecision(
            difference=difference,
            add_line=False,
            error=(
                f"QBO total {predicted.total_amt} differs from shop total {cents(shop_total)} "
                f"by {difference}, more than the rounding limit {policy.max_amount}"
            ),
        )
    if not policy.enabled:
        return RoundingDecision(difference=difference, add_line=False)
    if not policy.item_id:
        return RoundingDecision(
            difference=difference,
            add_line=False,
            error="a rounding line is needed but settings.rounding has no item",
        )
    return RoundingDecision(difference=difference, add_line=True)
