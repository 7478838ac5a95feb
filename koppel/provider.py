"""koppel as an Airflow provider: the two connection types and their forms.

Airflow finds this through the ``apache_airflow_provider`` entry point declared in
``pyproject.toml``. The forms are declared as data (``conn-fields`` and
``ui-field-behaviour``, the Airflow 3.2+ way); values of ``conn-fields`` are stored in the
connection's ``extra`` under the field name.

Keep this module free of heavy imports: Airflow imports it whenever it loads providers.
"""

from __future__ import annotations

from typing import Any

PACKAGE_NAME = "koppel"


def _string_field(label: str, description: str, *, secret: bool = False,
                  default: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": ["string", "null"]}
    if secret:
        schema["format"] = "password"
    if default is not None:
        schema["default"] = default
    return {"label": label, "description": description, "schema": schema}


LIGHTSPEED_CONNECTION: dict[str, Any] = {
    "connection-type": "lightspeed_ecom",
    "hook-class-name": "koppel.hooks.lightspeed.LightspeedHook",
    "hook-name": "Lightspeed eCom",
    "ui-field-behaviour": {
        "hidden-fields": ["schema", "port", "extra"],
        "relabeling": {
            "host": "Cluster or base URL",
            "login": "API key",
            "password": "API secret",
        },
        "placeholders": {
            "host": "eu1, us1 or https://api.webshopapp.com",
            "login": "32-character API key",
            "password": "32-character API secret",
            "language": "nl",
        },
    },
    "conn-fields": {
        "language": _string_field(
            "Shop language",
            "Two-letter language of the shop's API (the first path segment, e.g. nl, en, de).",
            default="nl",
        ),
    },
}

QUICKBOOKS_CONNECTION: dict[str, Any] = {
    "connection-type": "quickbooks_online",
    "hook-class-name": "koppel.hooks.quickbooks.QuickBooksHook",
    "hook-name": "QuickBooks Online",
    "ui-field-behaviour": {
        "hidden-fields": ["schema", "port", "extra"],
        "relabeling": {
            "host": "API base URL (custom environment only)",
            "login": "Client ID",
            "password": "Client secret",
        },
        "placeholders": {
            "host": "https://qbo.example.test/v3 (leave empty for production or sandbox)",
            "login": "OAuth 2 client id of the Intuit app",
            "password": "OAuth 2 client secret of the Intuit app",
            "realm_id": "Company id (realm), e.g. 9130357992221046",
            "environment": "production, sandbox or a discovery document URL",
            "minor_version": "75",
        },
    },
    "conn-fields": {
        "realm_id": _string_field("Realm ID", "The QuickBooks company id (realm)."),
        "refresh_token": _string_field(
            "Refresh token",
            "The refresh token from authorising the app. koppel keeps the rotated tokens in "
            "its state database; paste a new one here after re-authorising.",
            secret=True,
        ),
        "environment": _string_field(
            "Environment",
            "production, sandbox, or the URL of an OpenID discovery document "
            "(for a local emulator; then also set the API base URL).",
            default="production",
        ),
        "minor_version": {
            "label": "Minor version",
            "description": "API minor version sent on every request (75 or higher).",
            "schema": {"type": ["integer", "null"], "minimum": 75, "default": 75},
        },
    },
}


def get_provider_info() -> dict[str, Any]:
    """The provider metadata Airflow reads through the entry point."""
    return {
        "package-name": PACKAGE_NAME,
        "name": "koppel",
        "description": "Sync between a Lightspeed eCom webshop and QuickBooks Online.",
        "integrations": [
            {"integration-name": "Lightspeed eCom", "tags": ["service"],
             "external-doc-url": "https://developers.lightspeedhq.com/ecom/"},
            {"integration-name": "QuickBooks Online", "tags": ["service"],
             "external-doc-url": "https://developer.intuit.com/app/developer/qbo/docs/api/"
                                 "accounting/all-entities/account"},
        ],
        "hooks": [
            {"integration-name": "Lightspeed eCom",
             "python-modules": ["koppel.hooks.lightspeed"]},
            {"integration-name": "QuickBooks Online",
             "python-modules": ["koppel.hooks.quickbooks"]},
        ],
        "connection-types": [LIGHTSPEED_CONNECTION, QUICKBOOKS_CONNECTION],
    }
