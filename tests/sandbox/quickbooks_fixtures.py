"""Fixtures for the QBO sandbox tests: a real HTTP server and python-quickbooks clients
whose only change is the base URL. Import the fixtures into a test module with
``from quickbooks_fixtures import *``."""

from __future__ import annotations

import os

import httpx
import pytest
from intuitlib.client import AuthClient
from quickbooks import QuickBooks

from koppel.sandbox.quickbooks import create_app
from koppel.sandbox.server import SandboxServer

__all__ = ["qbo_server", "sandbox", "qb", "qb_us", "connect", "control"]


@pytest.fixture(scope="module")
def qbo_server():
    os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
    with SandboxServer(create_app(seed=1)) as server:
        yield server


def control(server: SandboxServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=30)


@pytest.fixture()
def sandbox(qbo_server):
    """A control-plane client on a freshly reset sandbox."""
    with control(qbo_server) as client:
        client.post("/_sandbox/reset", json={"seed": 1}).raise_for_status()
        client.put("/_sandbox/tokens", json={"access_token_seconds": 3600,
                                             "refresh_grace_seconds": 5}).raise_for_status()
        client.put("/_sandbox/throttle-format", json={"format": "xml"}).raise_for_status()
        client.put("/_sandbox/time-scale", json={"scale": 1}).raise_for_status()
        client.delete("/_sandbox/faults").raise_for_status()
        client.post("/_sandbox/stats/reset").raise_for_status()
        yield client


def connect(sandbox: httpx.Client, realm: str | None = None) -> QuickBooks:
    """A python-quickbooks client for ``realm`` (default realm when None)."""
    creds = sandbox.get("/_sandbox/credentials", params={"realm": realm} if realm else
                        None).json()
    auth = AuthClient(creds["client_id"], creds["client_secret"],
                      "http://localhost/callback", environment=creds["discovery_url"])
    client = QuickBooks(auth_client=auth, refresh_token=creds["refresh_token"],
                        company_id=creds["realm_id"], minorversion=75)
    client.api_url_v3 = creds["api_base_url"]
    client.sandbox_api_url_v3 = creds["api_base_url"]
    return client


@pytest.fixture()
def qb(sandbox) -> QuickBooks:
    return connect(sandbox)


@pytest.fixture()
def qb_us(sandbox) -> QuickBooks:
    us = next(r for r in sandbox.get("/_sandbox/realms").json() if r["region"] == "US")
    return connect(sandbox, us["realm_id"])
