"""The invalid tenant corpus: every file is rejected with a precise path and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from koppel.tenants import load_tenant_file, load_tenants

CORPUS = Path(__file__).with_name("invalid_tenants")

#: file stem → (JSON path, fragment of the reason)
EXPECTED: dict[str, tuple[str, str]] = {
    "bad_alert_email": ("$.settings.alerts.emails[0]", "must be an e-mail address (got 'boekhouding-at-example.nl')"),
    "bad_booked_status": ("$.settings.booked.payment_status[1]", "must be one of not_paid, partially_paid, paid, cancelled (got 'payed')"),
    "bad_connection_id": ("$.connections.lightspeed", "must be an Airflow connection id"),
    "bad_country_code": ("$.settings.countries.Holland", "ISO 3166 alpha-2"),
    "bad_cron": ("$.flows.orders.schedule", "neither a cron expression"),
    "bad_direction": ("$.flows.stock.direction", "must be one of lightspeed_to_quickbooks, quickbooks_to_lightspeed (got 'both_ways')"),
    "bad_document_type": ("$.settings.document_type", "must be one of sales_receipt, invoice (got 'credit_memo')"),
    "bad_on_policy": ("$.mappings.products.sku.on", "must be one of always, create_only (got 'sometimes')"),
    "bad_path": ("$.mappings.stock.sku.path", "invalid path 'sku; rm -rf /'"),
    "bad_retention": ("$.settings.retention_days", "greater than or equal to 1 (got 0)"),
    "bad_start_date": ("$.flows.orders.start_date", "must be a valid datetime"),
    "bad_tax_rate_key": ("$.settings.tax_codes.hoog", "VAT rates such as '21'"),
    "bad_timezone": ("$.settings.timezone", "unknown time zone 'Mars/Olympus'"),
    "bad_transform_argument": ("$.mappings.products.name.transforms[0].length", "must be a valid integer"),
    "bad_update_policy_field": ("$.settings.products.update_policy.Colour", "unknown key (allowed: Active, Description, Name"),
    "dangerous_regex": ("$.mappings.customers.notes.transforms[0]", "nested quantifiers"),
    "duplicate_key": ("$", "duplicate key 'retention_days'"),
    "fallback_without_sku": ("$.settings", "fallback_item_sku is required when unknown_sku is 'fallback_item'"),
    "formula_attribute": ("$.settings.stock.formula", "Attribute is not allowed"),
    "formula_import": ("$.settings.stock.formula", "only calls of min, max, floor are allowed"),
    "formula_lambda": ("$.settings.stock.formula", "only calls of min, max, floor are allowed"),
    "formula_missing": ("$.settings.stock", "stock.formula is required"),
    "formula_unknown_name": ("$.settings.stock.formula", "unknown name 'incoming'"),
    "inventory_without_accounts": ("$.settings.products", "inventory items need accounts.expense and accounts.asset"),
    "lookup_unknown_table": ("$.mappings.orders.payment_method.transforms[0].table", "must be one of payment_methods, payment_terms, countries, tax_codes"),
    "missing_quickbooks_conn": ("$.connections.quickbooks", "required field is missing"),
    "negative_max_records": ("$.flows.orders.max_records", "greater than or equal to 1"),
    "not_an_object": ("$", "must be a JSON object (got list)"),
    "orders_reverse_direction": ("$.flows.orders", "only lightspeed_to_quickbooks is supported"),
    "rule_without_source": ("$.mappings.customers.email", "exactly one of 'path', 'paths' or 'const'"),
    "syntax_error": ("$", "invalid JSON at line 3 column 37: Expecting ',' delimiter"),
    "tenant_name_mismatch": ("$.tenant", "must match the file name 'tenant_name_mismatch' (got 'someone_else')"),
    "unknown_line_field": ("$.mappings.orders.lines.fields.vat", "unknown key (allowed: amount_excl"),
    "unknown_preset": ("$.flows.products.schedule", "unknown preset '@fortnightly'"),
    "unknown_sku_policy": ("$.settings.unknown_sku", "must be one of fail, fallback_item, create_item (got 'skip')"),
    "unknown_target_field": ("$.mappings.orders['customer.emial']", "did you mean 'customer.email'"),
    "unknown_top_level_key": ("$.setings", "did you mean 'settings'"),
    "unknown_transform": ("$.mappings.orders['customer.email'].transforms[0]", "unknown transform 'frobnicate'"),
}


def test_corpus_is_large_and_fully_described():
    stems = {path.stem for path in CORPUS.glob("*.json")}
    assert len(stems) >= 20
    assert stems == set(EXPECTED)


@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_invalid_file_is_rejected_precisely(stem):
    path, fragment = EXPECTED[stem]
    tenant, problems = load_tenant_file(CORPUS / f"{stem}.json")
    assert tenant is None
    assert problems, stem
    described = [(problem.path, problem.message) for problem in problems]
    assert any(p == path and fragment in message for p, message in described), described
    for problem in problems:
        assert problem.file.endswith(f"{stem}.json")
        assert str(problem).startswith(f"{problem.file}: {problem.path}: ")


def test_whole_corpus_loads_without_exceptions_and_reports_every_file():
    result = load_tenants(CORPUS)
    assert result.tenants == []
    assert {Path(problem.file).stem for problem in result.errors} == set(EXPECTED)
