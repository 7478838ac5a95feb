"""Every mapping transform: good inputs, bad inputs, bad arguments."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
from pydantic import TypeAdapter, ValidationError

from koppel.mapping.transforms import (
    TRANSFORMS,
    TransformContext,
    TransformError,
    TransformStep,
    join_street,
    parse_decimal,
    run_chain,
    split_street_line,
)

STEPS = TypeAdapter(list[TransformStep])
RECORD = {
    "firstname": "Jan",
    "middlename": "",
    "lastname": "de Vries",
    "mobile": "06 12345678",
    "phone": False,
    "addressBillingNumber": "12",
    "addressBillingExtension": "a",
    "empty_number": "",
    "_rows": [{"sku": "A"}, {"sku": "B"}],
}
TABLES = {
    "payment_methods": {"iDEAL": "iDEAL", "Achteraf betalen": "Achteraf"},
    "tax_codes": {"21": "21% BTW", "9": "9% BTW", "0": "0% BTW"},
    "countries": {"Holland": "NL"},
}


def run(step, value, record=None, tables=TABLES):
    steps = STEPS.validate_python([step])
    return run_chain(steps, value, TransformContext(record if record is not None else RECORD, None, tables))


def bad_args(step):
    with pytest.raises(ValidationError) as info:
        STEPS.validate_python([step])
    return str(info.value)


# ---------------------------------------------------------------- registry and arguments


def test_registry_has_all_documented_transforms():
    expected = {
        "concat", "split_street", "trim", "upper", "lower", "title", "truncate", "round", "to_decimal",
        "to_int", "parse_date", "format_date", "to_date", "default", "coalesce", "lookup", "country",
        "email", "replace", "regex_replace", "strip_html", "multiply", "divide", "to_percent", "to_bool",
        "first", "join",
    }
    assert expected <= set(TRANSFORMS)


def test_unknown_transform_is_rejected_with_known_names():
    message = bad_args("eval")
    assert "unknown transform 'eval'" in message and "truncate" in message


def test_unknown_argument_is_rejected():
    assert "extra" in bad_args({"fn": "trim", "strip_chars": "x"}).lower()


def test_string_shorthand_equals_object_form():
    assert STEPS.validate_python(["trim"]) == STEPS.validate_python([{"fn": "trim"}])


# ---------------------------------------------------------------- text


def test_trim_and_collapse():
    assert run("trim", "  Jan  ") == "Jan"
    assert run({"fn": "trim", "collapse": True}, " Jan \t de   Vries ") == "Jan de Vries"
    assert run("trim", "   ") is None


def test_trim_rejects_non_text():
    with pytest.raises(TransformError, match="trim: expected text"):
        run("trim", {"a": 1})


@pytest.mark.parametrize("fn,value,expected", [("upper", "nl", "NL"), ("lower", "JAN@X.NL", "jan@x.nl"), ("title", "jan de VRIES", "Jan De Vries")])
def test_case_transforms(fn, value, expected):
    assert run(fn, value) == expected


def test_case_transforms_pass_lightspeed_empties_as_none():
    assert run("upper", False) is None
    assert run("lower", "") is None


def test_truncate():
    assert run({"fn": "truncate", "length": 5}, "abcdefgh") == "abcde"
    assert run({"fn": "truncate", "length": 6, "suffix": "…"}, "abcdefgh") == "abcde…"
    assert run({"fn": "truncate", "length": 10}, "short") == "short"


def test_truncate_bad_arguments():
    assert "greater than or equal to 1" in bad_args({"fn": "truncate", "length": 0})
    assert "suffix must be shorter" in bad_args({"fn": "truncate", "length": 1, "suffix": "..."})
    assert "length" in bad_args({"fn": "truncate"})


def test_replace():
    assert run({"fn": "replace", "old": "-", "new": " "}, "a-b-c") == "a b c"
    assert "at least 1" in bad_args({"fn": "replace", "old": ""})


def test_regex_replace():
    assert run({"fn": "regex_replace", "pattern": r"\s+", "replacement": ""}, "NL 8 5 B01") == "NL85B01"
    assert run({"fn": "regex_replace", "pattern": r"^(\d{4})\s*([a-z]{2})$", "replacement": r"\1 \2", "ignore_case": True}, "1234ab") == "1234 ab"


@pytest.mark.parametrize(
    "pattern,fragment",
    [
        ("(a+)+$", "nested quantifiers"),
        (r"(\w*)*", "nested quantifiers"),
        (r"(a)\1", "back-references"),
        ("(unclosed", "invalid regular expression"),
        ("x" * 201, "at most 200"),
    ],
)
def test_regex_replace_rejects_dangerous_or_broken_patterns(pattern, fragment):
    assert fragment in bad_args({"fn": "regex_replace", "pattern": pattern})


def test_regex_replace_rejects_unknown_group_reference_and_huge_input():
    assert "group 2" in bad_args({"fn": "regex_replace", "pattern": "(a)", "replacement": r"\2"})
    with pytest.raises(TransformError, match="longer than"):
        run({"fn": "regex_replace", "pattern": "a", "replacement": "b"}, "a" * 10_001)


def test_strip_html():
    html = "<p>Mooie <b>jurk</b> &amp; tas</p><ul><li>katoen</li><li>wasbaar</li></ul><script>alert(1)</script><br>Maat&nbsp;M"
    assert run("strip_html", html) == "Mooie jurk & tas\n\n- katoen\n\n- wasbaar\n\nMaat M"
    assert run("strip_html", "<p></p>") is None


def test_email():
    assert run("email", "  Jan@Example.NL ") == "jan@example.nl"
    for bad in ("jan@", "jan@@x.nl", "jan example.nl", "jan@x", "a@b..nl"):
        assert run("email", bad) is None
    with pytest.raises(TransformError, match="not a valid e-mail"):
        run({"fn": "email", "invalid": "error"}, "nope")


# ---------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    "value,expected",
    [("12,50", "12.50"), ("1.234,56", "1234.56"), ("1,234.56", "1234.56"), ("€ 7", "7"), (12.5, "12.5"), (3, "3"), ("-0,5", "-0.5"), ("1.234.567", "1234567")],
)
def test_to_decimal(value, expected):
    assert run("to_decimal", value) == Decimal(expected)


def test_to_decimal_locale_and_errors():
    assert run({"fn": "to_decimal", "locale": "nl"}, "1.234") == Decimal("1234")
    assert run({"fn": "to_decimal", "locale": "en"}, "1,234") == Decimal("1234")
    for bad in ("abc", "12,5,0.1x", True, [1]):
        with pytest.raises(TransformError):
            run("to_decimal", bad)
    assert "must be one of" in bad_args({"fn": "to_decimal", "locale": "de"}) or "Input should be" in bad_args({"fn": "to_decimal", "locale": "de"})


def test_to_int():
    assert run("to_int", "42") == 42
    assert run("to_int", 7.0) == 7
    with pytest.raises(TransformError, match="whole number"):
        run("to_int", "4,5")


def test_round_half_up():
    assert run("round", "2.345") == Decimal("2.35")
    assert run({"fn": "round", "dp": 0}, "2.5") == Decimal("3")
    assert run({"fn": "round", "dp": 1}, Decimal("-1.25")) == Decimal("-1.3")
    assert "less than or equal to 8" in bad_args({"fn": "round", "dp": 9})


def test_multiply_and_divide():
    assert run({"fn": "multiply", "factor": "0.001"}, "1500") == Decimal("1.500")
    assert run({"fn": "divide", "divisor": 100}, "2150") == Decimal("21.5")
    assert "divisor must not be zero" in bad_args({"fn": "divide", "divisor": 0})
    assert "not a number" in bad_args({"fn": "multiply", "factor": "veel"})
    with pytest.raises(TransformError):
        run({"fn": "multiply", "factor": 2}, "twee")


def test_to_percent():
    assert run({"fn": "to_percent", "from": "fraction"}, 0.21) == Decimal("21")
    assert run({"fn": "to_percent", "from": "fraction"}, "0.09") == Decimal("9")
    assert run({"fn": "to_percent", "from": "percent"}, "21.00") == Decimal("21")
    assert run("to_percent", 0.055) == Decimal("5.5")
    assert run("to_percent", 21) == Decimal("21")
    assert str(run("to_percent", "0.210")) == "21"


def test_to_bool():
    assert run("to_bool", "enabled") is True
    assert run("to_bool", "disabled") is False
    assert run("to_bool", False) is False
    assert run("to_bool", "") is False
    assert run({"fn": "to_bool", "true_values": ["J"]}, "j") is True


# ---------------------------------------------------------------- dates


def test_parse_date_formats():
    assert run("parse_date", "2019-08-21T17:15:00+00:00") == datetime(2019, 8, 21, 17, 15, tzinfo=timezone.utc)
    assert run("parse_date", "2019-08-21 17:15:00") == datetime(2019, 8, 21, 17, 15)
    assert run("parse_date", "2019-08-21") == datetime(2019, 8, 21)
    assert run({"fn": "parse_date", "format": "%d-%m-%Y"}, "21-08-2019") == datetime(2019, 8, 21)


def test_parse_date_errors():
    with pytest.raises(TransformError, match="not a date"):
        run("parse_date", "gisteren")
    with pytest.raises(TransformError, match="does not match"):
        run({"fn": "parse_date", "format": "lightspeed"}, "2019-08-21")
    assert "unsupported directive" in bad_args({"fn": "parse_date", "format": "%Q-%d"})


def test_format_date_and_to_date_with_zone():
    late_utc = "2024-03-31T23:30:00+00:00"
    assert run({"fn": "format_date", "format": "date"}, late_utc) == "2024-03-31"
    assert run({"fn": "format_date", "format": "lightspeed", "tz": "Europe/Amsterdam"}, late_utc) == "2024-04-01 01:30:00"
    assert run({"fn": "to_date", "tz": "Europe/Amsterdam"}, late_utc) == date(2024, 4, 1)
    assert run("to_date", late_utc) == date(2024, 3, 31)
    assert "unknown time zone" in bad_args({"fn": "to_date", "tz": "Europe/Atlantis"})


# ---------------------------------------------------------------- choosing values


def test_default_treats_lightspeed_empties_as_empty():
    for empty in (None, False, "", "  "):
        assert run({"fn": "default", "value": "EUR"}, empty) == "EUR"
    assert run({"fn": "default", "value": "EUR"}, "USD") == "USD"


def test_coalesce():
    assert run({"fn": "coalesce", "paths": ["phone", "mobile"]}, "") == "06 12345678"
    assert run({"fn": "coalesce", "paths": ["phone"], "values": ["onbekend"]}, None) == "onbekend"
    assert run({"fn": "coalesce", "paths": ["phone"]}, "given") == "given"
    assert "needs 'paths' or 'values'" in bad_args({"fn": "coalesce"})
    assert "invalid path" in bad_args({"fn": "coalesce", "paths": ["a b"]})


def test_concat_skips_empties():
    assert run({"fn": "concat", "paths": ["middlename", "lastname"]}, "Jan") == "Jan de Vries"
    assert run({"fn": "concat", "paths": ["phone", "middlename"], "separator": "/"}, None) is None
    assert run({"fn": "concat", "paths": ["firstname", "lastname"], "include_value": False}, "ignored") == "Jan de Vries"
    assert "at least 1" in bad_args({"fn": "concat", "paths": []})


def test_first_and_join():
    assert run("first", ["", False, "b", "c"]) == "b"
    assert run({"fn": "join", "separator": " > "}, ["Kleding", "", "Jurken"]) == "Kleding > Jurken"


def test_lookup_named_table_and_numeric_keys():
    assert run({"fn": "lookup", "table": "payment_methods"}, "ideal") == "iDEAL"
    assert run({"fn": "lookup", "table": "tax_codes"}, Decimal("21.00")) == "21% BTW"
    assert run({"fn": "lookup", "table": "tax_codes"}, "9.0") == "9% BTW"
    assert run({"fn": "lookup", "table": "tax_codes"}, 0) == "0% BTW"


def test_lookup_missing_modes():
    with pytest.raises(TransformError, match="no entry for 'Bitcoin' in settings.payment_methods"):
        run({"fn": "lookup", "table": "payment_methods"}, "Bitcoin")
    assert run({"fn": "lookup", "table": "payment_methods", "missing": "keep"}, "Bitcoin") == "Bitcoin"
    assert run({"fn": "lookup", "table": "payment_methods", "missing": "default", "default": "Overig"}, "Bitcoin") == "Overig"
    assert run({"fn": "lookup", "values": {"a": 1}, "default": 0}, "") == 0


def test_lookup_inline_values_and_arguments():
    assert run({"fn": "lookup", "values": {"M": "Medium"}}, "m") == "Medium"
    assert "exactly one of 'table' or 'values'" in bad_args({"fn": "lookup"})
    assert "exactly one of 'table' or 'values'" in bad_args({"fn": "lookup", "table": "tax_codes", "values": {}})
    assert "payment_methods" in bad_args({"fn": "lookup", "table": "secrets"})


@pytest.mark.parametrize(
    "value,expected",
    [
        ({"id": 150, "code": "nl", "code3": "nld", "title": "Netherlands"}, "NL"),
        ("Nederland", "NL"),
        ("België", "BE"),
        ("DEU", "DE"),
        ("uk", "GB"),
        ("Holland", "NL"),
        ("fr", "FR"),
    ],
)
def test_country(value, expected):
    assert run("country", value) == expected


def test_country_unknown_and_custom_table():
    with pytest.raises(TransformError, match="unknown country"):
        run("country", "Atlantis")
    assert run("country", "Bonaire", tables={"countries": {"Bonaire": "bq"}}) == "BQ"


# ---------------------------------------------------------------- streets


@pytest.mark.parametrize(
    "line,expected",
    [
        ("Hoofdstraat 12a", ("Hoofdstraat", "12", "a")),
        ("Hoofdstraat 12 A", ("Hoofdstraat", "12", "A")),
        ("Kerkweg 7-2", ("Kerkweg", "7", "2")),
        ("Laan 1940-1945 3", ("Laan 1940-1945", "3", "")),
        ("2e Constantijn Huygensstraat 5", ("2e Constantijn Huygensstraat", "5", "")),
        ("Postbus", ("Postbus", "", "")),
    ],
)
def test_split_street_line(line, expected):
    assert split_street_line(line) == expected


def test_join_street():
    assert join_street("Hoofdstraat", "12", "a") == "Hoofdstraat 12a"
    assert join_street("Kerkweg", "7", "2") == "Kerkweg 7-2"
    assert join_street("Kerkweg", "7", "bis") == "Kerkweg 7 bis"
    assert join_street("Kerkweg", "7", "a", separator=" ") == "Kerkweg 7 a"


def test_split_street_with_separate_number_fields():
    step = {"fn": "split_street", "number": "addressBillingNumber", "extension": "addressBillingExtension"}
    assert run(step, "Hoofdstraat") == "Hoofdstraat 12a"
    assert run({**step, "part": "number"}, "Hoofdstraat") == "12"
    assert run({**step, "part": "extension"}, "Hoofdstraat") == "a"


def test_split_street_parses_when_number_is_empty():
    step = {"fn": "split_street", "number": "empty_number", "part": "street"}
    assert run(step, "Hoofdstraat 12a") == "Hoofdstraat"
    assert run({**step, "part": "number"}, "Hoofdstraat 12a") == "12"
    assert run({**step, "part": "line"}, False) is None
    assert "must be one of" in bad_args({"fn": "split_street", "part": "zip"}) or "Input should be" in bad_args({"fn": "split_street", "part": "zip"})


def test_chain_error_names_the_failing_step():
    with pytest.raises(TransformError, match="^to_decimal: not a number"):
        run_chain(STEPS.validate_python(["trim", "to_decimal"]), "twaalf", TransformContext({}))


def test_parse_decimal_keeps_float_digits():
    assert parse_decimal(8.26) == Decimal("8.26")
