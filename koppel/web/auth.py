"""Who is asking: Airflow's own login, applied to the dashboard.

Airflow does not protect a plugin's FastAPI app, so every dashboard route resolves the
caller here, exactly as Airflow's API does (``airflow.api_fastapi.core_api.security``):
an explicit ``Authorization: Bearer`` token wins, otherwise the ``_token`` cookie the UI
login sets. The token is validated by the configured auth manager (signature, expiry,
revocation) and every tenant's flows are filtered through its DAG permissions.

The dashboard only renders what the user may read; actions (the retry) go to Airflow's
REST API with the user's own token, so Airflow authorizes them again."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request

TOKEN_COOKIE = "_token"  # airflow.api_fastapi.auth.managers.base_auth_manager.COOKIE_NAME_JWT_TOKEN
CSRF_HEADER = "X-Koppel-CSRF"


def auth_manager():
    """The API server's auth manager; initialised on first use when the app runs alone."""
    from airflow.api_fastapi.app import create_auth_manager, get_auth_manager

    try:
        return get_auth_manager()
    except RuntimeError:
        manager = create_auth_manager()
        manager.init()
        return manager


@dataclass(frozen=True)
class Viewer:
    """A logged-in Airflow user and the token they presented."""

    user: Any
    token: str

    @property
    def name(self) -> str:
        return self.user.get_name()

    def can_read(self, dag_id: str) -> bool:
        return _authorized(self.user, "GET", dag_id, run=False)

    def can_trigger(self, dag_id: str) -> bool:
        return _authorized(self.user, "POST", dag_id, run=True)

    @property
    def csrf_token(self) -> str:
        return csrf_token(self.token)


def _authorized(user: Any, method: str, dag_id: str, *, run: bool) -> bool:
    from airflow.api_fastapi.auth.managers.models.resource_details import (
        DagAccessEntity,
        DagDetails,
    )

    return auth_manager().is_authorized_dag(
        method=method, user=user, details=DagDetails(id=dag_id),
        access_entity=DagAccessEntity.RUN if run else None)


def request_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return request.cookies.get(TOKEN_COOKIE) or None


async def current_viewer(request: Request) -> Viewer | None:
    """The caller, or ``None`` for anonymous callers and invalid, expired or revoked
    tokens."""
    from jwt import InvalidTokenError

    token = request_token(request)
    if not token:
        return None
    try:
        user = await auth_manager().get_user_from_token(token)
    except InvalidTokenError:  # includes ExpiredSignatureError
        return None
    return Viewer(user=user, token=token)


def login_url(request: Request) -> str:
    """Airflow's login page, coming back here afterwards."""
    return auth_manager().get_url_login(next_url=str(request.url))


def csrf_token(token: str) -> str:
    """A per-session anti-CSRF value: derived from the (HttpOnly) session token, so a
    page on another origin can neither read nor compute it, and every API server worker
    derives the same value without shared state."""
    return hmac.new(token.encode(), b"koppel-dashboard-csrf", hashlib.sha256).hexdigest()


def same_origin(request: Request) -> bool:
    """True unless the browser says the request came from another origin."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin:
        return True  # not a browser form post; the CSRF header still has to match
    parts = urlsplit(origin)
    host = request.headers.get("host", "")
    return parts.scheme in ("http", "https") and parts.netloc == host


def csrf_ok(request: Request, viewer: Viewer) -> bool:
    sent = request.headers.get(CSRF_HEADER, "")
    return same_origin(request) and hmac.compare_digest(sent, viewer.csrf_token)
