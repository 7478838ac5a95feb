"""Local emulator of the QuickBooks Online Accounting API v3 and Intuit OAuth 2.

``create_app(seed=1, base_url=None, time_scale=1.0)`` builds the FastAPI app; run it with
``python -m koppel.sandbox quickbooks --port N`` or ``SandboxServer(create_app())``.
Money rules: :mod:`koppel.sandbox.quickbooks.money`; seed data:
:mod:`koppel.sandbox.quickbooks.seed`; fault codes: :mod:`koppel.sandbox.quickbooks.faults`;
name rules: :mod:`koppel.sandbox.quickbooks.entities`; multicurrency (company currencies,
exchange rates): :mod:`koppel.sandbox.quickbooks.currencies`.
"""

from koppel.sandbox.quickbooks.app import create_app

__all__ = ["create_app"]
