"""Intuit OAuth 2 in the QBO sandbox, driven through intuit-oauth and python-quickbooks."""

from __future__ import annotations

import time

import httpx
import pytest
from intuitlib.client import AuthClient
from intuitlib.exceptions import AuthClientError
from quickbooks.exceptions import AuthorizationException
from quickbooks.objects.customer import Customer

from quickbooks_fixtures import *  # noqa: F401,F403
from quickbooks_fixtures import connect


def _auth(sandbox, creds=None) -> tuple[AuthClient, dict]:
    creds = creds or sandbox.get("/_sandbox/credentials").json()
    return AuthClient(creds["client_id"], creds["client_secret"], "http://localhost/cb",
                      environment=creds["discovery_url"]), creds


def test_discovery_document_feeds_unmodified_auth_client(sandbox):
    auth, creds = _auth(sandbox)
    assert auth.token_endpoint.startswith(sandbox.base_url.__str__().rstrip("/"))
    assert auth.token_endpoint.endswith("/oauth2/v1/tokens/bearer")
    assert auth.revoke_endpoint.endswith("/oauth2/v1/tokens/revoke")
    assert creds["api_base_url"].endswith("/v3")


def test_refresh_rotates_and_old_token_is_refused_after_grace(sandbox):
    auth, creds = _auth(sandbox)
    first = creds["refresh_token"]
    auth.refresh(refresh_token=first)
    second = auth.refresh_token
    assert second != first and auth.access_token and auth.expires_in == 3600
    assert auth.x_refresh_token_expires_in > 0
    # reused within the grace: the same successor comes back
    again, _ = _auth(sandbox, creds)
    again.refresh(refresh_token=first)
    assert again.refresh_token == second
    sandbox.put("/_sandbox/tokens", json={"refresh_grace_seconds": 0})
    late, _ = _auth(sandbox, creds)
    with pytest.raises(AuthClientError) as error:
        late.refresh(refresh_token=first)
    assert error.value.status_code == 400 and b"invalid_grant" in error.value.content
    auth.refresh(refresh_token=second)  # the latest one keeps working
    assert auth.refresh_token not in (first, second)


def test_bad_client_credentials_are_invalid_client(sandbox):
    creds = {**sandbox.get("/_sandbox/credentials").json(), "client_secret": "wrong"}
    auth, _ = _auth(sandbox, creds)
    with pytest.raises(AuthClientError) as error:
        auth.refresh(refresh_token=creds["refresh_token"])
    assert error.value.status_code == 401 and b"invalid_client" in error.value.content


def test_expired_access_token_gets_lowercase_401_body(sandbox):
    sandbox.put("/_sandbox/tokens", json={"access_token_seconds": 0.001})
    qb = connect(sandbox)
    time.sleep(0.01)
    with pytest.raises(AuthorizationException):
        Customer.all(qb=qb)
    creds = sandbox.get("/_sandbox/credentials").json()
    answer = httpx.get(f"{creds['api_base_url']}/company/{creds['realm_id']}/customer/1",
                       params={"minorversion": 75}, headers={"Authorization": "Bearer nope"})
    assert answer.status_code == 401
    assert answer.json() == {"fault": {"error": [{
        "message": "message=AuthenticationFailed; errorCode=003200; statusCode=401",
        "code": "3200"}], "type": "AUTHENTICATION"}}


def test_access_token_is_bound_to_its_realm(sandbox, qb):
    us = next(r for r in sandbox.get("/_sandbox/realms").json() if r["region"] == "US")
    answer = qb.session.get(f"{qb.api_url}/company/{us['realm_id']}/customer/1",
                            params={"minorversion": 75})
    assert answer.status_code == 403
    assert answer.json()["Fault"]["Error"][0]["code"] == "3100"


def test_revocation_invalidates_refresh_token(sandbox):
    auth, creds = _auth(sandbox)
    auth.refresh(refresh_token=creds["refresh_token"])
    assert auth.revoke(token=auth.refresh_token)
    with pytest.raises(AuthClientError):
        auth.refresh(refresh_token=auth.refresh_token)


def test_new_realm_gets_its_own_credentials(sandbox):
    creds = sandbox.post("/_sandbox/realms", json={"region": "US", "name": "Shop LLC"}).json()
    qb = connect(sandbox, creds["realm_id"])
    assert qb.company_id == creds["realm_id"]
    names = [c.DisplayName for c in Customer.all(qb=qb)]
    assert "Amy Lauterbach" in names


def test_koppels_oauth_client_refreshes_through_intuit_oauth(sandbox):
    """koppel's ``OAuthClient`` exchanges tokens with intuit-oauth's ``AuthClient`` (made
    from the sandbox's discovery document, once): a refresh rotates, the old token is
    refused later with an error that says what to do and carries no response body."""
    from koppel.hooks.errors import AuthError
    from koppel.hooks.tokens import OAuthClient, check_client

    creds = sandbox.get("/_sandbox/credentials").json()
    oauth = OAuthClient(creds["client_id"], creds["client_secret"], creds["discovery_url"])
    assert isinstance(oauth.auth_client, AuthClient)
    assert oauth.token_endpoint.endswith("/oauth2/v1/tokens/bearer")
    grant = oauth.refresh(creds["refresh_token"])
    assert grant.refresh_token != creds["refresh_token"] and grant.expires_in == 3600
    assert oauth.auth_client.refresh_token is None  # the client keeps no token after use
    check_client(oauth)  # an empty refresh token proves the client and rotates nothing
    assert oauth.refresh(grant.refresh_token).refresh_token != grant.refresh_token
    assert oauth.calls == 3
    wrong = OAuthClient(creds["client_id"], "not-the-secret", creds["discovery_url"])
    with pytest.raises(AuthError, match="invalid_client") as refused:
        check_client(wrong)
    assert "not-the-secret" not in str(refused.value)
    with pytest.raises(AuthError, match=r"refresh token rejected \(invalid_grant\)") as bad:
        oauth.refresh("never-issued")
    assert "never-issued" not in str(bad.value) and bad.value.status == 400
