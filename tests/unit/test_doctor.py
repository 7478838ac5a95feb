"""``koppel.doctor``'s pure checks: a tenant file against what its live systems said
(:class:`koppel.doctor.Facts`), built here by hand in the shapes the APIs answer."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from koppel.doctor import NOTE, OK, PROBLEM, ConnectionCheck, Facts, diagnose, references

ROOT = Path(__file__).resolve().parents[2]
MAPPINGS = ROOT / "include" / "mappings"


def _tenant(tmp_path: Path, name: str = "demo", **changes):
    """The demo tenant file, with ``settings`` keys replaced (dotted paths)."""
    data = json.loads((MAPPINGS / "demo.json").read_text())
    data["tenant"] = name
    for path, value in changes.items():
        node = data
        keys = path.split(".")
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
    folder = tmp_path / "mappings"
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(data))
    from koppel.tenants import load_tenants

    result = load_tenants(folder, only=[name])
    assert not result.errors, result.errors
    return result.tenants[0]


def _rows(*names, **extra):
    return [{"Id": str(i + 1), "Name": n, "Active": True, **extra} for i, n in enumerate(names)]


def _facts(**overrides) -> Facts:
    accounts = [
        {"Id": "1", "Name": "Sales of Product Income", "AccountType": "Income"},
        {"Id": "2", "Name": "Services", "AccountType": "Income"},
        {"Id": "5", "Name": "Cost of Goods Sold", "AccountType": "Cost of Goods Sold"},
        {"Id": "6", "Name": "Inventory Asset", "AccountType": "Other Current Asset"},
        {"Id": "7", "Name": "Undeposited Funds", "AccountType": "Other Current Asset"},
        {"Id": "8", "Name": "Checking", "AccountType": "Bank"},
    ]
    rates = [{"Id": "1", "Name": "21% BTW", "RateValue": 21},
             {"Id": "2", "Name": "9% BTW", "RateValue": 9},
             {"Id": "3", "Name": "0% BTW", "RateValue": 0}]

    def code(cid, name, rate_id):
        return {"Id": cid, "Name": name, "Active": True, "SalesTaxRateList": {
            "TaxRateDetail": [{"TaxRateRef": {"value": rate_id}}]}}

    values = dict(
        lightspeed=ConnectionCheck(True, "Lightspeed shop 'Winkel' reachable"),
        quickbooks=ConnectionCheck(True, "QuickBooks company 'BV' reachable"),
        shop_currency="EUR",
        shop_taxes=[{"title": "21% BTW", "rate": 0.21}, {"title": "9% BTW", "rate": 0.09},
                    {"title": "0% BTW", "rate": 0}],
        accounts=accounts,
        tax_codes=[code("1", "21%", "1"), code("2", "9%", "2"), code("3", "0%", "3"),
                   code("5", "0% ICP", "3"), code("6", "0% Export", "3")],
        tax_rates=rates,
        payment_methods=_rows("Cash", "iDEAL", "PayPal", "Visa"),
        terms=_rows("Due on receipt", "Net 14", "Net 30"),
        items=[{"Id": "1", "Name": "Services", "Type": "Service"},
               {"Id": "2", "Name": "Shipping", "Type": "Service"},
               {"Id": "3", "Name": "Verzendkosten", "Type": "Service"}],
        home_currency="EUR", multicurrency=False,
        pools={"koppel_demo_lightspeed": 3, "koppel_demo_quickbooks": 4},
    )
    values.update(overrides)
    return Facts(**values)


def _by_severity(report, severity):
    return {f.field: f for f in report.findings if f.severity == severity}


def test_references_name_every_field_of_the_demo(tmp_path):
    refs = {(r.kind, r.field, r.name, r.created_by_koppel) for r in references(_tenant(tmp_path))}
    assert refs == {
        ("account", "settings.products.accounts.income", "Sales of Product Income", False),
        ("account", "settings.products.accounts.expense", "Cost of Goods Sold", False),
        ("account", "settings.products.accounts.asset", "Inventory Asset", False),
        ("tax_code", "settings.tax_codes.21", "21%", False),
        ("tax_code", "settings.tax_codes.9", "9%", False),
        ("tax_code", "settings.tax_codes.0", "0%", False),
        ("tax_code", "settings.vat_treatments.intra_eu_b2b", "0% ICP", False),
        ("tax_code", "settings.vat_treatments.export", "0% Export", False),
        ("tax_code", "settings.rounding.tax_code", "0%", False),
        ("item", "settings.shipping_item", "Verzendkosten", True),
        ("item", "settings.payment_fee_item", "Betaalkosten", True),
        ("item", "settings.discount_item", "Korting", True),
        ("item", "settings.rounding.item", "Afronding", True),
        ("item_sku", "settings.fallback_item_sku", "ONBEKEND", True),
        ("payment_method", "settings.payment_methods.iDEAL", "iDEAL", True),
        ("payment_method", "settings.payment_methods.PayPal", "PayPal", True),
        ("payment_method", "settings.payment_methods.Bancontact", "Bancontact", True),
        ("payment_method", "settings.payment_methods.Creditcard", "Visa", True),
        ("payment_method", "settings.payment_methods.Achteraf betalen", "Achteraf betalen", True),
        ("term", "settings.payment_terms.Achteraf betalen", "Net 14", False),
    }


def test_clean_demo_has_no_problems_and_notes_what_koppel_creates(tmp_path):
    report = diagnose(_tenant(tmp_path), _facts())
    assert report.problems == []
    assert sorted(_by_severity(report, NOTE)) == [
        "settings.discount_item", "settings.fallback_item_sku", "settings.payment_fee_item",
        "settings.payment_methods.Achteraf betalen", "settings.payment_methods.Bancontact",
        "settings.rounding.item"]
    note = _by_severity(report, NOTE)["settings.discount_item"]
    assert note.message == ("QuickBooks has no item named 'Korting': the first run that needs "
                            "it creates it (a Service item on account 'Sales of Product "
                            "Income'); to use an existing item, name it here")
    assert note.choices == ("Services", "Shipping", "Verzendkosten")
    ok = _by_severity(report, OK)
    assert ok["settings.tax_codes.21"].message == "tax code '21%' (21 %) exists"
    assert ok["pool koppel_demo_quickbooks"].message == "exists (4 slots)"
    assert ok["settings.multicurrency"].message == "the shop sells in EUR, the company's home currency"
    assert report.render().splitlines()[-1] == \
        f"0 problem(s), 6 note(s), {len(ok)} check(s) passed"


def test_broken_tenant_names_every_problem_with_the_real_names(tmp_path):
    tenant = _tenant(tmp_path, "broken", **{
        "settings.tax_codes": {"21": "22%", "9": "21%", "0": "0%"},
        "settings.products.accounts.income": "Omzet webshop",
        "settings.payment_terms": {"Achteraf betalen": "Net 21"},
        "settings.payments": {"deposit_accounts": {"iDEAL": "Mollie"}},
    })
    facts = _facts(lightspeed=ConnectionCheck(False, "Access denied: check the API key and "
                                                     "secret (HTTP 401)"),
                   shop_currency=None, shop_taxes=None, pools={})
    report = diagnose(tenant, facts)
    problems = {f.field: f for f in report.problems}
    assert sorted(problems) == [
        "connections.lightspeed (lightspeed_demo)",
        "pool koppel_broken_lightspeed", "pool koppel_broken_quickbooks",
        "settings.discount_item", "settings.fallback_item_sku",
        "settings.multicurrency", "settings.payment_fee_item",
        "settings.payment_terms.Achteraf betalen", "settings.payments.deposit_accounts.iDEAL",
        "settings.products.accounts.income", "settings.rounding.item",
        "settings.tax_codes.21", "settings.tax_codes.9",
    ]
    tax_choices = ("0% (0 %)", "0% Export (0 %)", "0% ICP (0 %)", "21% (21 %)", "9% (9 %)")
    assert problems["settings.tax_codes.21"].message == "QuickBooks has no tax code named '22%'"
    assert problems["settings.tax_codes.21"].choices == tax_choices
    assert problems["settings.tax_codes.9"].message == "tax code '21%' charges 21 %, not 9 %"
    assert problems["settings.tax_codes.9"].choices == tax_choices
    assert problems["settings.products.accounts.income"].message == \
        "QuickBooks has no account named 'Omzet webshop'"
    assert problems["settings.products.accounts.income"].choices == \
        ("Sales of Product Income", "Services")
    assert problems["settings.payments.deposit_accounts.iDEAL"].choices == \
        ("Checking", "Inventory Asset", "Undeposited Funds")
    assert problems["settings.payment_fee_item"].message == (
        "QuickBooks has no item named 'Betaalkosten', and koppel cannot create it: the income "
        "account 'Omzet webshop' (settings.products.accounts.income) does not exist")
    assert problems["settings.payment_fee_item"].choices == ("Services", "Shipping", "Verzendkosten")
    assert problems["settings.payment_terms.Achteraf betalen"].choices == \
        ("Due on receipt", "Net 14", "Net 30")
    assert problems["pool koppel_broken_quickbooks"].message == (
        "the pool does not exist, so the tenant's QuickBooks Online tasks are never "
        "scheduled: run `koppel pools broken --apply`")
    assert problems["settings.multicurrency"].message == \
        "currencies not compared: the Lightspeed connection does not work"
    assert problems["connections.lightspeed (lightspeed_demo)"].message == \
        "Access denied: check the API key and secret (HTTP 401)"
    # the existing shipping item is fine
    assert _by_severity(report, OK)["settings.shipping_item"].message == \
        "item named 'Verzendkosten' exists (Service)"
    text = report.render(verbose=False)
    assert "  PROBLEM settings.tax_codes.21: QuickBooks has no tax code named '22%'\n" \
           "          choose from: 0% (0 %), 0% Export (0 %), 0% ICP (0 %), 21% (21 %), 9% (9 %)" \
           in text
    assert " ok " not in text


@pytest.mark.parametrize("multicurrency, currencies, settings_mc, expected", [
    (False, [], False, [
        "the shop sells in USD but the QuickBooks company's home currency is EUR and "
        "multicurrency is off: turn multicurrency on in QuickBooks (Account and settings → "
        "Advanced → Currency) and add USD, or connect a company whose home currency is USD",
        "the shop sells in USD, not in the company's home currency EUR: set "
        "settings.multicurrency to true"]),
    (True, ["GBP"], True, [
        "the shop sells in USD, which the QuickBooks company (home currency EUR) has not "
        "added as a currency"]),
    (True, ["USD"], True, []),
])
def test_currency_mismatch(tmp_path, multicurrency, currencies, settings_mc, expected):
    tenant = _tenant(tmp_path, **{"settings.multicurrency": settings_mc})
    report = diagnose(tenant, _facts(shop_currency="USD", multicurrency=multicurrency,
                                     company_currencies=currencies))
    assert [f.message for f in report.problems] == expected


def test_shop_rate_without_a_tax_code_and_a_non_zero_treatment(tmp_path):
    tenant = _tenant(tmp_path, **{"settings.vat_treatments": {"export": "9%"}})
    facts = _facts(shop_taxes=[{"title": "21% BTW", "rate": 0.21},
                               {"title": "6% BTW", "rate": 0.06}])
    problems = {f.field: f.message for f in diagnose(tenant, facts).problems}
    assert problems == {
        "settings.tax_codes.6": "the shop charges 6 % (tax '6% BTW') but settings.tax_codes "
                                "maps no tax code for it",
        "settings.vat_treatments.export": "tax code '9%' charges 9 %, not 0 %",
    }


def test_wrong_account_type_and_failed_quickbooks(tmp_path):
    tenant = _tenant(tmp_path, **{"settings.products.accounts.income": "Checking"})
    problems = {f.field: f for f in diagnose(tenant, _facts()).problems}
    assert problems["settings.products.accounts.income"].message == (
        "account 'Checking' is of type 'Bank'; this setting needs one of type Income or "
        "Other Income")
    failed = _facts(quickbooks=ConnectionCheck(False, "Authorisation failed: x"), accounts=None,
                    tax_codes=None, home_currency=None)
    messages = [f.message for f in diagnose(_tenant(tmp_path), failed).problems]
    assert messages == [
        "Authorisation failed: x",
        "accounts, tax codes, items, payment methods and terms not checked: the QuickBooks "
        "connection does not work",
        "currencies not compared: the QuickBooks connection does not work"]


def test_no_secret_or_personal_field_in_findings(tmp_path):
    report = diagnose(_tenant(tmp_path), _facts())
    text = report.render()
    for word in ("refresh_token", "password", "@", "client_secret"):
        assert word not in text


# -- the dashboard view ----------------------------------------------------------------------


class _Viewer:
    def __init__(self, readable):
        self.readable = set(readable)

    def can_read(self, dag_id):
        return dag_id in self.readable


def _view_client(tmp_path, viewer, facts):
    from fastapi.testclient import TestClient

    from koppel.web.doctor_view import create_app

    _tenant(tmp_path, "demo")
    _tenant(tmp_path, "other", connections={"lightspeed": "lightspeed_other",
                                            "quickbooks": "quickbooks_other"})
    calls = []

    def run(tenant):
        calls.append(tenant.tenant)
        return diagnose(tenant, facts)

    async def resolve(_request):
        return viewer

    app = create_app(mappings_dir=str(tmp_path / "mappings"), run_doctor=run,
                     resolve_viewer=resolve)
    return TestClient(app), calls


def test_view_shows_the_report_of_a_readable_tenant_only(tmp_path):
    client, calls = _view_client(tmp_path, _Viewer({"orders__demo"}),
                                 _facts(pools={}, shop_currency="USD"))
    index = client.get("/")
    assert index.status_code == 200
    assert "?tenant=demo" in index.text and "?tenant=other" not in index.text
    page = client.get("/", params={"tenant": "demo"})
    assert page.status_code == 200
    assert "<code>pool koppel_demo_quickbooks</code>" in page.text
    assert "4 problem(s), 6 note(s)" in page.text
    data = client.get("/api/report", params={"tenant": "demo"}).json()
    assert (data["tenant"], data["problems"], data["notes"]) == ("demo", 4, 6)
    assert {f["field"] for f in data["findings"] if f["severity"] == "problem"} == {
        "pool koppel_demo_lightspeed", "pool koppel_demo_quickbooks", "settings.multicurrency"}
    assert client.get("/api/report", params={"tenant": "other"}).status_code == 403
    assert client.get("/api/report", params={"tenant": "nobody"}).status_code == 404
    assert calls == ["demo", "demo"]


def test_view_refuses_anonymous_callers(tmp_path):
    client, calls = _view_client(tmp_path, None, _facts())
    assert client.get("/api/report", params={"tenant": "demo"}).status_code == 401
    assert calls == []
