"""Fixtures for the Lightspeed sandbox tests: one real HTTP server per module, reset
before each test. Import into a test module with ``from lightspeed_fixtures import *``."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from koppel.sandbox.lightspeed import create_app
from koppel.sandbox.server import SandboxServer

__all__ = ["ls_server", "ls", "api", "control", "dec", "GENEROUS"]

#: Limits high enough that functional tests never hit them (rate-limit tests lower them).
GENEROUS = {"limit_5min": 100_000, "limit_hour": 100_000, "limit_day": 100_000,
            "per_second": 100_000, "retry_after": "seconds", "enabled": True, "clear": True}


def dec(value) -> Decimal:
    """A JSON number as the Decimal it stands for (2 or 4 dp)."""
    return Decimal(str(value))


@pytest.fixture(scope="module")
def ls_server():
    with SandboxServer(create_app(seed=1)) as server:
        yield server


@pytest.fixture()
def control(ls_server):
    """A control-plane client on a freshly reset sandbox (seed 1, default sizes)."""
    with httpx.Client(base_url=ls_server.url, timeout=30) as client:
        client.post("/_sandbox/reset", json={"seed": 1}).raise_for_status()
        client.put("/_sandbox/ratelimit", json=GENEROUS).raise_for_status()
        client.put("/_sandbox/time-scale", json={"scale": 1}).raise_for_status()
        client.put("/_sandbox/clock", json={"release": True}).raise_for_status()
        client.delete("/_sandbox/faults").raise_for_status()
        client.post("/_sandbox/stats/reset").raise_for_status()
        yield client


@pytest.fixture()
def ls(control):
    """The credentials of the reset sandbox."""
    return control.get("/_sandbox/credentials").json()


@pytest.fixture()
def api(ls_server, ls):
    """An authenticated API client rooted at ``{base}/nl/``."""
    with httpx.Client(base_url=f"{ls_server.url}/nl/", auth=(ls["api_key"], ls["api_secret"]),
                      timeout=30) as client:
        yield client
