"""A faithful local emulator of the Lightspeed eCom (C-Series) REST API.

``create_app(seed=1, base_url=None, time_scale=1.0, orders=60, products=40,
customers=40, currency="EUR", shipping_tax="pro_rata")`` returns the FastAPI app; serve it with
:class:`koppel.sandbox.server.SandboxServer` or ``python -m koppel.sandbox lightspeed``.
"""

from .app import LightspeedState, create_app

__all__ = ["create_app", "LightspeedState"]
