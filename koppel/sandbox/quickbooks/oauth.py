"""Intuit OAuth 2 as the sandbox runs it: discovery document, token endpoint
(``refresh_token`` grant, HTTP Basic client auth), revocation, and access-token checks.

Rotation: every refresh issues a new refresh token. The refresh token just replaced
stays usable for ``refresh_grace_seconds`` (default 5, scaled by the time scale): reused
in that grace it answers the **same** new refresh token again (with a fresh access
token) and does not rotate further — so two workers racing on one token end up with the
same successor. After the grace it is refused with 400 ``{"error": "invalid_grant"}``.
Intuit documents only "always use the latest refresh token"; the grace models the short
reuse window providers allow for retries. Access tokens are bound to one client and
realm and live ``access_token_seconds`` (default 3600, scaled).

Faults the control plane stages (:mod:`koppel.sandbox.quickbooks.control_routes`):
:meth:`OAuthServer.revoke_realm` revokes every refresh token of a realm and drops its
access tokens (the user disconnected the app, or Intuit revoked the grant: the refresh
is then refused with 400 ``{"error": "invalid_grant"}``, as seen in
https://github.com/intuit/oauth-jsclient/issues/128, and API calls answer 401
``AuthenticationFailed``);
:meth:`OAuthServer.expire_access_tokens` makes every access token already issued expire
now (a client holding one gets 401 and must refresh).
"""

from __future__ import annotations

import base64
import json
import random
import secrets
import threading
from dataclasses import dataclass
from typing import Callable
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse

from koppel.sandbox.control import SandboxControl, monotonic

DISCOVERY_PATH = "/.well-known/openid_configuration"
TOKEN_PATH = "/oauth2/v1/tokens/bearer"
REVOKE_PATH = "/oauth2/v1/tokens/revoke"
REFRESH_TOKEN_LIFETIME = 8726400  # 101 days, what Intuit reports


@dataclass
class RefreshGrant:
    client_id: str
    realm_id: str
    successor: str | None = None
    rotated_at: float = 0.0
    revoked: bool = False


@dataclass
class AccessGrant:
    client_id: str
    realm_id: str
    expires_at: float
    refresh_token: str


class OAuthServer:
    """Clients, refresh tokens and access tokens; thread-safe."""

    def __init__(self, control: SandboxControl, seed: int) -> None:
        self.control = control
        self._lock = threading.Lock()
        rng = random.Random(f"qbo-oauth-{seed}")
        self.client_id = "AB" + "".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP"
                                                   "QRSTUVWXYZ0123456789") for _ in range(48))
        self.client_secret = "".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRS"
                                                "TUVWXYZ0123456789") for _ in range(40))
        self.access_token_seconds = 3600.0
        self.refresh_grace_seconds = 5.0
        self._refresh: dict[str, RefreshGrant] = {}
        self._access: dict[str, AccessGrant] = {}

    # -- issuing ------------------------------------------------------------------------
    def issue_refresh_token(self, realm_id: str) -> str:
        token = "RT1-" + secrets.token_urlsafe(36)
        with self._lock:
            self._refresh[token] = RefreshGrant(self.client_id, realm_id)
        return token

    def _access_token(self, grant: RefreshGrant, refresh_token: str) -> tuple[str, float]:
        lifetime = self.control.window(self.access_token_seconds)
        token = "eyJ" + secrets.token_urlsafe(48)
        self._access[token] = AccessGrant(grant.client_id, grant.realm_id,
                                          monotonic() + lifetime, refresh_token)
        return token, lifetime

    def refresh(self, refresh_token: str) -> dict | None:
        """The token response, or None for an unknown/stale/revoked refresh token."""
        now = monotonic()
        with self._lock:
            grant = self._refresh.get(refresh_token)
            if grant is None or grant.revoked:
                return None
            if grant.successor is not None:
                grace = self.control.window(self.refresh_grace_seconds)
                if now - grant.rotated_at > grace:
                    return None
                new_refresh = grant.successor
            else:
                new_refresh = "RT1-" + secrets.token_urlsafe(36)
                self._refresh[new_refresh] = RefreshGrant(grant.client_id, grant.realm_id)
                grant.successor, grant.rotated_at = new_refresh, now
            access, lifetime = self._access_token(self._refresh[new_refresh], new_refresh)
            return {"access_token": access, "refresh_token": new_refresh,
                    "token_type": "bearer", "expires_in": max(1, int(round(lifetime))),
                    "x_refresh_token_expires_in": REFRESH_TOKEN_LIFETIME}

    def revoke(self, token: str) -> bool:
        with self._lock:
            grant = self._refresh.get(token)
            if grant is not None:
                chain = token
                while chain is not None:
                    self._refresh[chain].revoked = True
                    chain = self._refresh[chain].successor
                for access, info in list(self._access.items()):
                    if info.realm_id == grant.realm_id and info.refresh_token in self._refresh \
                            and self._refresh[info.refresh_token].revoked:
                        del self._access[access]
                return True
            return self._access.pop(token, None) is not None

    def revoke_realm(self, realm_id: str) -> int:
        """Revoke every refresh token issued for ``realm_id`` and drop its access tokens;
        returns how many refresh tokens were live."""
        with self._lock:
            live = 0
            for grant in self._refresh.values():
                if grant.realm_id == realm_id and not grant.revoked:
                    grant.revoked = True
                    live += 1
            for access, info in list(self._access.items()):
                if info.realm_id == realm_id:
                    del self._access[access]
            return live

    def expire_access_tokens(self, realm_id: str | None = None) -> int:
        """Expire every access token issued (for ``realm_id`` only when given) now;
        refresh tokens stay valid. Returns how many were still live."""
        now = monotonic()
        with self._lock:
            expired = 0
            for grant in self._access.values():
                if realm_id is not None and grant.realm_id != realm_id:
                    continue
                if grant.expires_at > now:
                    expired += 1
                grant.expires_at = now
            return expired

    def check_access(self, authorization: str | None) -> AccessGrant | None:
        """The grant behind a ``Bearer`` header, None when missing, unknown or expired."""
        if not authorization or not authorization.lower().startswith("bearer "):
            return None
        token = authorization.split(" ", 1)[1].strip()
        with self._lock:
            grant = self._access.get(token)
            if grant is None or monotonic() >= grant.expires_at:
                return None
            return grant

    def client_ok(self, authorization: str | None, form: dict[str, str] | None = None) -> bool:
        """HTTP Basic (``client_secret_basic``) or, without an Authorization header, the
        ``client_id``/``client_secret`` form fields (``client_secret_post``): the discovery
        document lists both, as Intuit's does."""
        if not authorization and form and "client_secret" in form:
            client_id, secret = form.get("client_id", ""), form["client_secret"]
        elif not authorization or not authorization.lower().startswith("basic "):
            return False
        else:
            try:
                decoded = base64.b64decode(authorization.split(" ", 1)[1]).decode()
            except (ValueError, UnicodeDecodeError):
                return False
            client_id, _, secret = decoded.partition(":")
        return secrets.compare_digest(client_id, self.client_id) and \
            secrets.compare_digest(secret, self.client_secret)


def discovery_document(base: str) -> dict[str, object]:
    return {
        "issuer": f"{base}/op/v1",
        "authorization_endpoint": f"{base}/connect/oauth2",
        "token_endpoint": f"{base}{TOKEN_PATH}",
        "userinfo_endpoint": f"{base}/v1/openid_connect/userinfo",
        "revocation_endpoint": f"{base}{REVOKE_PATH}",
        "jwks_uri": f"{base}/op/v1/jwks",
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "email", "profile", "address", "phone",
                             "com.intuit.quickbooks.accounting"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "claims_supported": ["aud", "exp", "iat", "iss", "realmid", "sub"],
    }


def oauth_router(current: Callable[[], OAuthServer],
                 public_base: Callable[[Request], str]) -> APIRouter:
    """Discovery, token and revocation endpoints (outside ``/v3``); ``current()`` is the
    live :class:`OAuthServer` (a sandbox reset replaces it)."""
    router = APIRouter(tags=["Intuit OAuth 2"])

    @router.get(DISCOVERY_PATH)
    def discovery(request: Request) -> dict[str, object]:
        return discovery_document(public_base(request))

    @router.get("/op/v1/jwks")
    def jwks() -> dict[str, list]:
        return {"keys": []}

    @router.post(TOKEN_PATH)
    async def token(request: Request) -> JSONResponse:
        oauth = current()
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if not oauth.client_ok(request.headers.get("authorization"), form):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        if form.get("grant_type") != "refresh_token":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        answer = oauth.refresh(form.get("refresh_token", ""))
        if answer is None:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        return JSONResponse(answer, headers={"Cache-Control": "no-store"})

    @router.post(REVOKE_PATH)
    async def revoke(request: Request) -> JSONResponse:
        oauth = current()
        if not oauth.client_ok(request.headers.get("authorization")):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        raw = (await request.body()).decode()
        token = ""
        if raw.strip().startswith("{"):
            token = str(json.loads(raw).get("token", ""))
        else:
            token = (parse_qs(raw).get("token") or [""])[0]
        if not token:
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        oauth.revoke(token)
        return JSONResponse({}, status_code=200)

    return router
