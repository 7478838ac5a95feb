"""Fixtures for the hook tests: both sandboxes on real ports, hooks with quick retries,
an isolated AIRFLOW_HOME and state database per test session."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import httpx
import pytest

from koppel.sandbox.server import SandboxServer

_HOME = Path(tempfile.mkdtemp(prefix="koppel-hooks-"))
os.environ.setdefault("AIRFLOW_HOME", str(_HOME))
os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")

from koppel.hooks.retry import RetryPolicy  # noqa: E402

QUICK_RETRY = RetryPolicy(attempts=8, initial=0.02, maximum=0.3, jitter=0.02,
                          max_retry_after=2.0)


def control(url: str, method: str, path: str, **kw):
    response = httpx.request(method, f"{url}/_sandbox{path}", timeout=10, **kw)
    response.raise_for_status()
    return response.json()


@pytest.fixture(scope="session")
def ls_server():
    from koppel.sandbox.lightspeed import create_app

    with SandboxServer(create_app(seed=1)) as server:
        yield server


@pytest.fixture
def ls(ls_server):
    """A clean Lightspeed sandbox: reseeded small, no faults, fresh stats and limits."""
    url = ls_server.url
    control(url, "POST", "/reset", json={"seed": 1, "orders": 60, "products": 8,
                                          "customers": 12})
    control(url, "DELETE", "/faults")
    control(url, "PUT", "/time-scale", json={"scale": 1.0})
    control(url, "POST", "/stats/reset")
    creds = control(url, "GET", "/credentials")
    return {"url": url, **creds}


@pytest.fixture
def ls_hook(ls):
    from koppel.hooks.lightspeed import LightspeedHook

    hook = LightspeedHook.from_settings(base_url=ls["url"], api_key=ls["api_key"],
                                        api_secret=ls["api_secret"],
                                        language=ls["language"], retry=QUICK_RETRY,
                                        max_pause=30)
    yield hook
    hook.close()


@pytest.fixture(scope="session")
def qb_server():
    from koppel.sandbox.quickbooks import create_app

    with SandboxServer(create_app(seed=1)) as server:
        yield server


@pytest.fixture
def state_db(tmp_path):
    """A fresh SQLite state database for the token store."""
    from koppel.hooks.tokens import TokenStore
    from koppel.store.engine import get_engine

    url = f"sqlite:///{tmp_path / 'state.db'}"
    return TokenStore(get_engine(url))


@pytest.fixture
def qb(qb_server):
    url = qb_server.url
    control(url, "POST", "/reset", json={"seed": 1})
    control(url, "DELETE", "/faults")
    control(url, "PUT", "/time-scale", json={"scale": 1.0})
    control(url, "POST", "/stats/reset")
    creds = control(url, "GET", "/credentials")
    return {"url": url, **creds}


def qbo_settings(creds, **overrides):
    from koppel.hooks.quickbooks import QBOSettings

    values = dict(client_id=creds["client_id"], client_secret=creds["client_secret"],
                  realm_id=str(creds["realm_id"]), refresh_token=creds["refresh_token"],
                  environment=creds["discovery_url"], api_base_url=creds["api_base_url"])
    values.update(overrides)
    return QBOSettings(**values)


@pytest.fixture
def qb_hook(qb, state_db):
    from koppel.hooks.quickbooks import QuickBooksHook

    hook = QuickBooksHook(settings=qbo_settings(qb), token_store=state_db, retry=QUICK_RETRY)
    yield hook
    hook.close()
