"""Tenant files: model, loader, schema, formula safety, `koppel validate`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from koppel.cli import main
from koppel.mapping import Mapper
from koppel.tenants import (
    FormulaError,
    StockFormula,
    TenantConfig,
    load_default_mapping,
    load_tenants,
    tenant_json_schema,
    tenant_json_schema_text,
)

ROOT = Path(__file__).resolve().parents[2]
MAPPINGS = ROOT / "include" / "mappings"
MINIMAL = {"tenant": "acme", "connections": {"lightspeed": "lightspeed_acme", "quickbooks": "quickbooks_acme"}}


def write(folder: Path, name: str, data) -> Path:
    path = folder / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


# ---------------------------------------------------------------- shipped files


def test_shipped_schema_is_up_to_date():
    assert (MAPPINGS / "tenant.schema.json").read_text(encoding="utf-8") == tenant_json_schema_text(), (
        "regenerate with: koppel schema -o include/mappings/tenant.schema.json"
    )


def test_schema_validates_demo_and_rejects_a_bad_file():
    import jsonschema  # a pinned dependency (requirements.txt): never skipped
    schema = tenant_json_schema()
    demo = json.loads((MAPPINGS / "demo.json").read_text(encoding="utf-8"))
    jsonschema.validate(demo, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**demo, "settings": {"unknown_sku": "skip"}}, schema)


def test_demo_tenant_and_default_validate():
    result = load_tenants(MAPPINGS)
    assert result.errors == []
    demo = result.get("demo")
    assert demo is not None
    assert demo.connections.lightspeed == "lightspeed_demo" and demo.connections.quickbooks == "quickbooks_demo"
    assert demo.enabled_flows() == ["orders", "products", "stock", "customers", "refunds"]
    assert set(demo.settings.payment_methods) >= {"iDEAL", "PayPal", "Bancontact", "Creditcard", "Achteraf betalen"}
    assert demo.settings.tax_codes == {"21": "21%", "9": "9%", "0": "0%"}
    # the demo's override is merged over the default: its own rule plus the default's others
    assert demo.rules("products")["long_description"].on == "create_only"
    assert demo.rules("products")["sku"].paths == ["sku", "articleCode"]
    mapper = Mapper.for_tenant(demo, "orders")
    assert mapper.map({"id": 1, "paymentTitle": "Creditcard"}).values["payment_method"] == "Visa"


def test_default_comes_from_directory_or_package(tmp_path):
    packaged, problems = load_default_mapping(tmp_path)
    assert problems == [] and "orders" in packaged
    write(tmp_path, "_default.json", {"orders": {"memo": {"const": "eigen default"}}})
    own, problems = load_default_mapping(tmp_path)
    assert problems == [] and own == {"orders": {"memo": {"const": "eigen default"}}}


def test_broken_default_is_reported_and_packaged_default_used(tmp_path):
    write(tmp_path, "_default.json", {"orders": {"memo": {"path": "comment", "transforms": ["nope"]}}})
    write(tmp_path, "acme.json", MINIMAL)
    result = load_tenants(tmp_path)
    assert [str(error) for error in result.errors] == [
        f"{tmp_path}/_default.json: $.orders.memo.transforms[0]: unknown transform 'nope' (known: coalesce, concat, country, default, divide, email, first, format_date, join, lookup, lower, multiply, parse_date, regex_replace, replace, round, split_street, strip_html, title, to_bool, to_date, to_decimal, to_int, to_percent, trim, truncate, upper)"
    ]
    assert result.ids() == ["acme"] and "memo" in result.get("acme").rules("orders")


# ---------------------------------------------------------------- model defaults and rules


def test_minimal_tenant_gets_documented_defaults(tmp_path):
    write(tmp_path, "acme.json", MINIMAL)
    tenant = load_tenants(tmp_path).get("acme")
    settings = tenant.settings
    assert settings.booked.payment_status == ["paid"] and settings.booked.exclude_status == ["cancelled"]
    assert settings.retention_days == 30 and settings.stock.calculation == "available_minus_reserved"
    assert settings.document_type == "sales_receipt" and settings.unknown_sku == "fail"
    assert settings.rounding.max_amount == Decimal("0.05")
    assert tenant.flows.orders.schedule == "@hourly" and tenant.flows.customers.enabled is False
    assert tenant.rules("orders") and tenant.rules("stock")


def test_tax_code_keys_are_normalised_and_schedules_accepted():
    tenant = TenantConfig.model_validate(
        {**MINIMAL, "settings": {"tax_codes": {"21.0": "Hoog", "9%": "Laag"}}, "flows": {"orders": {"schedule": "*/15 6-22 * * 1-5"}, "stock": {"schedule": None}}}
    )
    assert tenant.settings.tax_codes == {"21": "Hoog", "9": "Laag"}
    assert tenant.flows.orders.schedule == "*/15 6-22 * * 1-5" and tenant.flows.stock.schedule is None


def test_one_broken_file_does_not_hide_the_others(tmp_path):
    write(tmp_path, "acme.json", MINIMAL)
    write(tmp_path, "broken.json", '{"tenant": "broken",')
    write(tmp_path, "zeta.json", {"tenant": "zeta", "connections": {
        "lightspeed": "lightspeed_zeta", "quickbooks": "quickbooks_zeta"}})
    write(tmp_path, "tenant.schema.json", {"not": "a tenant"})
    write(tmp_path, ".hidden.json", "garbage")
    result = load_tenants(tmp_path)
    assert result.ids() == ["acme", "zeta"]
    assert [(Path(error.file).name, error.path) for error in result.errors] == [("broken.json", "$")]
    assert "line 1 column" in result.errors[0].message
    assert load_tenants(tmp_path, only=["zeta"]).ids() == ["zeta"]


def test_tenants_sharing_a_shop_connection_are_rejected(tmp_path):
    write(tmp_path, "acme.json", MINIMAL)
    write(tmp_path, "bolt.json", {"tenant": "bolt", "connections": {
        "lightspeed": "lightspeed_acme", "quickbooks": "quickbooks_bolt"}})
    write(tmp_path, "cleo.json", {"tenant": "cleo", "connections": {
        "lightspeed": "lightspeed_cleo", "quickbooks": "quickbooks_cleo"}})
    result = load_tenants(tmp_path)
    assert result.ids() == ["cleo"]
    messages = sorted(str(e) for e in result.errors)
    assert len(messages) == 2
    assert messages[0].endswith("acme.json: $.connections.lightspeed: connection 'lightspeed_acme' "
                                "is also used by tenant(s) bolt: one shop is synced by one tenant")
    assert "bolt.json: $.connections.lightspeed:" in messages[1] and "tenant(s) acme" in messages[1]


def test_two_shops_share_one_company_only_with_distinct_prefixes(tmp_path):
    def tenant(tid, prefix):
        return {"tenant": tid, "connections": {"lightspeed": f"lightspeed_{tid}",
                                                "quickbooks": "quickbooks_group"},
                "settings": {"doc_number_prefix": prefix}}

    write(tmp_path, "nl.json", tenant("nl", "NL-"))
    write(tmp_path, "be.json", tenant("be", "BE-"))
    assert load_tenants(tmp_path).ids() == ["be", "nl"]
    write(tmp_path, "be.json", tenant("be", "NL-"))
    result = load_tenants(tmp_path)
    assert result.ids() == []
    assert {e.path for e in result.errors} == {"$.connections.quickbooks"}
    assert all("distinct settings.doc_number_prefix" in e.message for e in result.errors)


def test_missing_directory_is_a_problem_not_an_exception(tmp_path):
    result = load_tenants(tmp_path / "nope")
    assert result.ids() == [] and result.errors[0].message == "no such directory"


# ---------------------------------------------------------------- stock formula safety


@pytest.mark.parametrize(
    "formula,values,expected",
    [
        ("stock_level - reserved", {"stock_level": 10, "reserved": 3}, Decimal(7)),
        ("max(0, stock_level - reserved - buffer)", {"stock_level": 2, "reserved": 3, "buffer": 1}, Decimal(0)),
        ("floor(stock_level * 0.9)", {"stock_level": 15}, Decimal(13)),
        ("min(stock_level, 100) / 2", {"stock_level": 7}, Decimal("3.5")),
        ("-buffer + +stock_level", {"stock_level": 4, "buffer": 1}, Decimal(3)),
    ],
)
def test_formula_evaluates(formula, values, expected):
    assert StockFormula.parse(formula).evaluate(values) == expected


@pytest.mark.parametrize(
    "formula,fragment",
    [
        ("__import__('os').system('id')", "only calls of min, max, floor"),
        ("stock_level.__class__", "Attribute is not allowed"),
        ("(lambda: 1)()", "only calls of"),
        ("lambda: 1", "Lambda is not allowed"),
        ("open('/etc/passwd')", "only calls of"),
        ("stock_level ** 2", "only + - * /"),
        ("[stock_level][0]", "not allowed"),
        ("'abc'", "only numbers"),
        ("stock_level if reserved else 0", "IfExp is not allowed"),
        ("max(stock_level)", "two or more"),
        ("floor(x=stock_level)", "keyword"),
        ("incoming", "unknown name 'incoming'"),
        ("max", "must be called"),
        ("stock_level -", "syntax error"),
        ("", "empty"),
    ],
)
def test_formula_rejects_unsafe_or_invalid(formula, fragment):
    with pytest.raises(FormulaError, match=None) as info:
        StockFormula.parse(formula)
    assert fragment in str(info.value)


def test_formula_runtime_problems():
    formula = StockFormula.parse("stock_level / reserved")
    with pytest.raises(FormulaError, match="division by zero"):
        formula.evaluate({"stock_level": 1, "reserved": 0})
    with pytest.raises(FormulaError, match="no value for reserved"):
        formula.evaluate({"stock_level": 1})


def test_formula_setting_is_checked_at_load_time():
    tenant = TenantConfig.model_validate({**MINIMAL, "settings": {"stock": {"calculation": "formula", "formula": "max(0, stock_level - reserved - buffer)", "buffer": 2}}})
    assert tenant.settings.stock.compiled_formula().evaluate({"stock_level": 10, "reserved": 1, "buffer": 2}) == Decimal(7)
    with pytest.raises(ValueError, match="Attribute is not allowed"):
        TenantConfig.model_validate({**MINIMAL, "settings": {"stock": {"calculation": "formula", "formula": "().__class__"}}})


# ---------------------------------------------------------------- koppel validate


def test_cli_validate_ok(capsys):
    assert main(["validate", "--dir", str(MAPPINGS)]) == 0
    out = capsys.readouterr().out
    assert "ok: " in out and "demo" in out and "0 with problems" in out


def test_cli_validate_reports_file_path_and_reason(tmp_path, capsys):
    write(tmp_path, "acme.json", {**MINIMAL, "settings": {"unknown_sku": "skip"}})
    write(tmp_path, "good.json", {**MINIMAL, "tenant": "good"})
    assert main(["validate", "--dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"{tmp_path}/acme.json: $.settings.unknown_sku: must be one of fail, fallback_item, create_item (got 'skip')" in out
    assert "ok: " in out and "good" in out
    assert main(["validate", "good", "--dir", str(tmp_path), "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    assert main(["validate", "ghost", "--dir", str(tmp_path)]) == 1
    assert "ghost.json: $: no such tenant file" in capsys.readouterr().out


def test_cli_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2


def test_cli_schema_writes_the_shipped_schema(tmp_path):
    target = tmp_path / "schema.json"
    assert main(["schema", "-o", str(target)]) == 0
    assert target.read_text(encoding="utf-8") == (MAPPINGS / "tenant.schema.json").read_text(encoding="utf-8")


def test_console_script_runs_as_a_process(tmp_path):
    shutil.copy(MAPPINGS / "demo.json", tmp_path / "demo.json")
    write(tmp_path, "bad.json", '{"tenant": "bad", "connections": {}}')
    completed = subprocess.run(
        [sys.executable, "-m", "koppel.cli", "validate", "--dir", str(tmp_path)], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert completed.returncode == 1
    assert f"{tmp_path}/bad.json: $.connections.lightspeed: required field is missing" in completed.stdout


# ---------------------------------------------------------------- import weight


def test_importing_tenants_stays_light():
    code = (
        "import sys, koppel.tenants, koppel.mapping\n"
        "koppel.tenants.load_tenants(sys.argv[1])\n"
        "heavy = [m for m in ('pandas', 'airflow', 'requests', 'httpx', 'sqlalchemy', 'numpy') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    completed = subprocess.run([sys.executable, "-c", code, str(MAPPINGS)], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == ""
