from decimal import Decimal as D

import pytest

from koppel.domain.money import (
    MoneyError,
    RoundingPolicy,
    TaxableLine,
    allocate,
    cents,
    gross_from_net,
    line_amount_matches,
    net_from_gross,
    predict_qbo_totals,
    rate_key,
    rounding_adjustment,
    tax_in_gross,
    to_decimal,
    unit_price_for,
)


def test_cents_rounds_half_up_both_signs():
    assert cents("2.345") == D("2.35")
    assert cents("-2.345") == D("-2.35")
    assert cents("2.344") == D("2.34")
    assert cents(0.1 + 0.2) == D("0.30")


def test_to_decimal_rejects_non_numbers():
    for bad in ("abc", True, None, float("nan"), "Infinity"):
        with pytest.raises(MoneyError):
            to_decimal(bad)
    assert to_decimal(8.26) == D("8.26")


@pytest.mark.parametrize("rate,expected", [(21, "21"), ("21.00", "21"), (D("9.5"), "9.5"), (0, "0")])
def test_rate_key_normalises(rate, expected):
    assert rate_key(rate) == expected


def test_vat_conversions():
    assert net_from_gross(D("12.10"), D("21")) == D("10.00")
    assert net_from_gross(D("9.99"), D("21")) == D("8.26")
    assert gross_from_net(D("8.26"), D("21")) == D("9.99")
    assert tax_in_gross(D("5.45"), D("9")) == D("0.45")
    assert net_from_gross(D("3.00"), D("0")) == D("3.00")


def test_unit_price_exact_when_it_terminates():
    assert unit_price_for(D("24.78"), D("3")) == D("8.26")
    assert unit_price_for(D("10.00"), D("4")) == D("2.5")


def test_unit_price_seven_decimals_reproduces_amount():
    price = unit_price_for(D("409.09"), D("450"))
    assert price == D("0.9090889")
    assert line_amount_matches(D("450"), price, D("409.09"))
    price = unit_price_for(D("10.00"), D("3"))
    assert price == D("3.3333333")
    assert line_amount_matches(D("3"), price, D("10.00"))


def test_unit_price_rejects_zero_quantity():
    with pytest.raises(MoneyError):
        unit_price_for(D("1"), D("0"))


def test_allocate_is_exact_and_deterministic():
    shares = allocate(D("1.00"), [D("1"), D("1"), D("1")])
    assert shares == [D("0.34"), D("0.33"), D("0.33")]
    assert sum(allocate(D("-2.42"), [D("10"), D("5"), D("3")])) == D("-2.42")
    assert allocate(D("1.00"), [D("0"), D("0")]) == [D("1.00"), D("0.00")]


def test_predict_tax_excluded_rounds_once_per_rate():
    lines = [
        TaxableLine(net=D("0.05"), rate=D("21")),
        TaxableLine(net=D("0.05"), rate=D("21")),
        TaxableLine(net=D("5.00"), rate=D("9")),
    ]
    totals = predict_qbo_totals(lines, "TaxExcluded")
    # per line 0.0105 -> 0.01 twice (0.02); per document 0.10*21% = 0.021 -> 0.02
    by_rate = {rate_key(t.rate): t for t in totals.tax_lines}
    assert by_rate["21"].net_amount_taxable == D("0.10")
    assert by_rate["21"].amount == D("0.02")
    assert by_rate["9"].amount == D("0.45")
    assert totals.total_amt == D("5.57")


def test_predict_reproduces_intuit_tax_inclusive_sample():
    totals = predict_qbo_totals([TaxableLine(net=D("409.09"), rate=D("10"), gross=D("450"))], "TaxInclusive")
    assert totals.total_tax == D("40.91")
    assert totals.total_amt == D("450.00")


def test_predict_not_applicable_has_no_tax():
    totals = predict_qbo_totals([TaxableLine(net=D("12.10"), rate=None)], "NotApplicable")
    assert totals.tax_lines == ()
    assert totals.total_amt == D("12.10")


def test_predict_needs_rates_when_tax_applies():
    with pytest.raises(MoneyError):
        predict_qbo_totals([TaxableLine(net=D("1"), rate=None)], "TaxExcluded")


def test_rounding_decisions():
    totals = predict_qbo_totals([TaxableLine(net=D("16.52"), rate=D("21"))], "TaxInclusive")
    assert totals.total_amt == D("19.99")
    policy = RoundingPolicy(enabled=True, item_id="99", max_amount=D("0.05"))
    decision = rounding_adjustment(D("19.98"), totals, policy)
    assert decision.add_line and decision.difference == D("-0.01") and decision.error is None
    assert not rounding_adjustment(D("19.99"), totals, policy).add_line
    too_big = rounding_adjustment(D("19.00"), totals, policy)
    assert too_big.error and not too_big.add_line
    disabled = rounding_adjustment(D("19.98"), totals, RoundingPolicy(enabled=False))
    assert disabled.difference == D("-0.01") and not disabled.add_line and disabled.error is None
    no_item = rounding_adjustment(D("19.98"), totals, RoundingPolicy(enabled=True, item_id=None))
    assert no_item.error


def test_tax_inclusive_derives_net_per_line_and_totals_the_gross():
    lines = [TaxableLine(net=D("0"), rate=D("21"), gross=D("9.99")) for _ in range(2)]
    totals = predict_qbo_totals(lines, "TaxInclusive")
    assert totals.net_total == D("16.52")
    assert totals.total_tax == D("3.46")
    assert totals.total_amt == D("19.98")


def test_discount_line_applies_before_tax():
    lines = [TaxableLine(net=D("100.00"), rate=D("21")), TaxableLine(net=D("10.00"), rate=None, kind="discount")]
    excluded = predict_qbo_totals(lines, "TaxExcluded")
    assert excluded.tax_lines[0].net_amount_taxable == D("90.00")
    assert excluded.total_amt == D("108.90")
    inclusive = predict_qbo_totals(
        [TaxableLine(net=D("0"), rate=D("21"), gross=D("121.00")), TaxableLine(net=D("10.00"), rate=None, kind="discount")],
        "TaxInclusive",
    )
    assert inclusive.total_amt == D("108.90")
