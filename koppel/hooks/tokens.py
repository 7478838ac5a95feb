"""OAuth 2 tokens of QuickBooks Online, kept in koppel's state database.

Intuit rotates the refresh token on every refresh: the new one must be stored at once or
the next refresh fails with ``invalid_grant`` — the classic failure of QBO integrations.
Airflow tasks cannot write a Connection, so the connection holds the *seed* refresh token
(the one the user pasted) and this module holds the current one, one row per client id and
realm in ``koppel_oauth_token``.

Refreshing is serialised across processes by a row lock on that table (SQLite:
``BEGIN IMMEDIATE``; PostgreSQL: ``SELECT … FOR UPDATE``). After taking the lock the row
is read again: when another process refreshed meanwhile, its access token is used instead
of refreshing a second time. When the connection's refresh token differs from the seed
the row was started from (the user re-authorised), the connection's token wins.

Tokens never reach a log or an exception message; the tokens a process holds are
registered with Airflow's secrets masker.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator
from urllib.parse import urlencode, urlsplit

import requests
from intuitlib.client import AuthClient
from intuitlib.config import DISCOVERY_URL
from intuitlib.exceptions import AuthClientError
from intuitlib.utils import get_auth_header
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Float,
    MetaData,
    String,
    Table,
    Text,
    select,
    update,
)
from sqlalchemy.exc import OperationalError, ProgrammingError

from koppel.hooks.errors import AuthError, KoppelAPIError, QBOTransientError
from koppel.hooks.retry import RetryPolicy

TOKEN_TABLE = "koppel_oauth_token"

metadata = MetaData()
oauth_tokens = Table(
    TOKEN_TABLE,
    metadata,
    Column("client_id", String(255), primary_key=True),
    Column("realm_id", String(64), primary_key=True),
    Column("refresh_token", Text, nullable=True),
    Column("seed_token_hash", String(64), nullable=True),
    Column("access_token", Text, nullable=True),
    Column("access_expires_at", Float, nullable=True),  # epoch seconds
    Column("updated_at", Float, nullable=True),
)

#: intuit-oauth's discovery documents (``intuitlib.config.DISCOVERY_URL``), by environment
INTUIT_DISCOVERY = dict(DISCOVERY_URL)


def token_hash(token: str | None) -> str | None:
    """SHA-256 of a token, to recognise it without storing it twice."""
    if not token:
        return None
    return hashlib.sha256(token.encode()).hexdigest()


def mask(*secrets: str | None) -> None:
    """Register secrets with Airflow's masker so they never appear in task logs."""
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - older SDKs
        return
    for secret in secrets:
        if secret:
            mask_secret(secret)


@dataclass(frozen=True)
class TokenGrant:
    """A token endpoint answer."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_in: float


@dataclass(frozen=True)
class TokenRow:
    refresh_token: str | None = field(repr=False)
    seed_token_hash: str | None
    access_token: str | None = field(repr=False)
    access_expires_at: float | None
    updated_at: float | None


# -- the token endpoint -----------------------------------------------------------------


class _AuthClient(AuthClient):
    """intuit-oauth's ``AuthClient`` (a ``requests.Session``) with a timeout on every
    request: requests has none by default, and a token endpoint that never answers must
    not hold a task forever."""

    def __init__(self, *args: Any, timeout: float, **kw: Any) -> None:
        self._koppel_timeout = timeout  # set before AuthClient fetches the discovery document
        super().__init__(*args, **kw)

    def request(self, method: str, url: str, *args: Any, **kw: Any):  # type: ignore[override]
        kw.setdefault("timeout", self._koppel_timeout)
        return super().request(method, url, *args, **kw)


class OAuthClient:
    """Refreshes tokens at Intuit's (or an emulator's) token endpoint through intuit-oauth.

    ``environment`` is ``production``, ``sandbox`` or a discovery document URL, exactly as
    intuit-oauth's ``AuthClient`` takes it. The ``AuthClient`` (which fetches the discovery
    document when it is made) is made lazily, on the first refresh, and kept; its
    ``refresh`` does the exchange (HTTP Basic client authentication). koppel adds what the
    library leaves to its caller: a timeout, retries of network errors, 5xx and 429
    (:class:`QBOTransientError`), errors that say what to do (``invalid_grant``: re-authorise)
    and carry no response body, a call count, and the secrets masker for every token."""

    def __init__(self, client_id: str, client_secret: str, environment: str = "production",
                 *, timeout: float = 30.0, retry: RetryPolicy | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.client_id = client_id
        self._client_secret = client_secret
        self.environment = environment
        self.discovery_url = INTUIT_DISCOVERY.get(environment.lower(), environment)
        self.timeout = timeout
        self.retry = retry or RetryPolicy(attempts=4, initial=0.5, maximum=5.0)
        self._sleep = sleep
        self._client: _AuthClient | None = None
        self._lock = threading.Lock()
        self.calls = 0

    @property
    def auth_client(self) -> AuthClient:
        """intuit-oauth's client, made (and the discovery document read) on first use."""
        if self._client is None:
            def make() -> _AuthClient:
                try:
                    return _AuthClient(self.client_id, self._client_secret, "",
                                       self.environment, timeout=self.timeout)
                except requests.RequestException as exc:
                    raise QBOTransientError(
                        f"discovery document unreachable ({type(exc).__name__})",
                        method="GET", path=self.discovery_url) from None
                except AuthClientError as exc:
                    if exc.status_code >= 500 or exc.status_code == 429:
                        raise QBOTransientError("discovery document unavailable", method="GET",
                                                path=self.discovery_url,
                                                status=exc.status_code) from None
                    raise AuthError("discovery document not found", method="GET",
                                    path=self.discovery_url, status=exc.status_code) from None
                except (KeyError, ValueError):
                    raise AuthError("discovery document unreadable (no token endpoint)",
                                    method="GET", path=self.discovery_url) from None

            with self._lock:
                if self._client is None:
                    self._client = self.retry.call(make, sleep=self._sleep)
        return self._client

    @property
    def token_endpoint(self) -> str:
        return str(self.auth_client.token_endpoint)

    def _path(self) -> str:
        return urlsplit(self.token_endpoint).path

    def post_refresh(self, refresh_token: str) -> requests.Response:
        """One refresh request to the token endpoint, as intuit-oauth's ``refresh`` sends it
        (its headers, HTTP Basic client authentication), answered as it is: for checks
        that must see a refusal (:func:`check_client`). Network errors, 5xx and 429 raise
        :class:`QBOTransientError`."""
        client = self.auth_client
        path = self._path()
        self.calls += 1
        try:
            response = client.post(
                client.token_endpoint, data=urlencode({"grant_type": "refresh_token",
                                                       "refresh_token": refresh_token}),
                headers={"Content-Type": "application/x-www-form-urlencoded",
                         "Accept": "application/json",
                         "Authorization": get_auth_header(self.client_id, self._client_secret)})
        except requests.RequestException as exc:
            raise QBOTransientError(f"token endpoint unreachable ({type(exc).__name__})",
                                    method="POST", path=path) from None
        if response.status_code >= 500 or response.status_code == 429:
            raise QBOTransientError("token endpoint unavailable", method="POST", path=path,
                                    status=response.status_code)
        return response

    def refresh(self, refresh_token: str) -> TokenGrant:
        """Exchange a refresh token with ``AuthClient.refresh``; the answer's refresh token
        replaces it."""
        client = self.auth_client
        path = self._path()

        def attempt() -> TokenGrant:
            self.calls += 1
            with self._lock:  # AuthClient keeps the answer on itself
                try:
                    client.refresh(refresh_token=refresh_token)
                except requests.RequestException as exc:
                    raise QBOTransientError(
                        f"token endpoint unreachable ({type(exc).__name__})",
                        method="POST", path=path) from None
                except AuthClientError as exc:
                    raise _refused(exc.status_code, exc.content, path) from None
                grant = TokenGrant(access_token=str(client.access_token),
                                   refresh_token=str(client.refresh_token or refresh_token),
                                   expires_in=float(client.expires_in or 3600))
                client.access_token = client.refresh_token = None
            mask(grant.access_token, grant.refresh_token)
            return grant

        return self.retry.call(attempt, sleep=self._sleep)


def _refused(status: int, content: bytes | None, path: str) -> KoppelAPIError:
    """The error for a token endpoint's refusal (never its body: it may echo input)."""
    if status >= 500 or status == 429:
        return QBOTransientError("token endpoint unavailable", method="POST", path=path,
                                 status=status)
    try:
        reason = str(json.loads(content or b"{}").get("error", "refused"))
    except (ValueError, AttributeError):
        reason = "refused"
    if reason == "invalid_grant":
        return AuthError("refresh token rejected (invalid_grant): re-authorise the app and "
                         "paste the new refresh token into the connection",
                         method="POST", path=path, status=status)
    return AuthError(f"token refresh refused ({reason}): check the client id and secret",
                     method="POST", path=path, status=status)


# -- the store --------------------------------------------------------------------------


class TokenStore:
    """The ``koppel_oauth_token`` table on koppel's state database (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine | None = None) -> None:
        if engine is None:
            from koppel.store.engine import get_engine

            engine = get_engine()
        self.engine = engine
        self._ready = False

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def ensure_table(self) -> None:
        if self._ready:
            return
        for _ in range(3):
            try:
                metadata.create_all(self.engine, tables=[oauth_tokens], checkfirst=True)
                break
            except (OperationalError, ProgrammingError):
                # another process created it between the check and the CREATE
                time.sleep(0.05)
        self._ready = True

    def read(self, client_id: str, realm_id: str) -> TokenRow | None:
        self.ensure_table()
        with self.engine.connect() as conn:
            return _row(conn, client_id, realm_id, lock=False)

    @contextmanager
    def locked(self, client_id: str, realm_id: str) -> Iterator["LockedRow"]:
        """Hold the row's lock (creating the row if needed) for a read-modify-write."""
        self.ensure_table()
        if self.is_sqlite:
            with self.engine.connect() as base:
                conn = base.execution_options(isolation_level="AUTOCOMMIT")
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                try:
                    _ensure_row(conn, client_id, realm_id, sqlite=True)
                    yield LockedRow(conn, client_id, realm_id,
                                    _row(conn, client_id, realm_id, lock=False))
                except BaseException:
                    conn.exec_driver_sql("ROLLBACK")
                    raise
                else:
                    conn.exec_driver_sql("COMMIT")
        else:
            with self.engine.begin() as conn:
                _ensure_row(conn, client_id, realm_id, sqlite=False)
                yield LockedRow(conn, client_id, realm_id,
                                _row(conn, client_id, realm_id, lock=True))

    def forget(self, client_id: str, realm_id: str) -> None:
        """Drop the stored tokens (e.g. after a revocation)."""
        self.ensure_table()
        with self.engine.begin() as conn:
            conn.execute(oauth_tokens.delete().where(
                oauth_tokens.c.client_id == client_id, oauth_tokens.c.realm_id == realm_id))


@dataclass
class LockedRow:
    conn: Connection
    client_id: str
    realm_id: str
    row: TokenRow | None

    def save(self, grant: TokenGrant, seed_hash: str | None, now: float) -> None:
        self.conn.execute(
            update(oauth_tokens)
            .where(oauth_tokens.c.client_id == self.client_id,
                   oauth_tokens.c.realm_id == self.realm_id)
            .values(refresh_token=grant.refresh_token, seed_token_hash=seed_hash,
                    access_token=grant.access_token,
                    access_expires_at=now + grant.expires_in, updated_at=now))


def _ensure_row(conn: Connection, client_id: str, realm_id: str, *, sqlite: bool) -> None:
    if sqlite:
        from sqlalchemy.dialects.sqlite import insert
    else:
        from sqlalchemy.dialects.postgresql import insert
    conn.execute(insert(oauth_tokens).values(client_id=client_id, realm_id=realm_id)
                 .on_conflict_do_nothing())


def _row(conn: Connection, client_id: str, realm_id: str, *, lock: bool) -> TokenRow | None:
    query = select(oauth_tokens.c.refresh_token, oauth_tokens.c.seed_token_hash,
                   oauth_tokens.c.access_token, oauth_tokens.c.access_expires_at,
                   oauth_tokens.c.updated_at).where(
        oauth_tokens.c.client_id == client_id, oauth_tokens.c.realm_id == realm_id)
    if lock:
        query = query.with_for_update()
    found = conn.execute(query).first()
    return TokenRow(*found) if found is not None else None


# -- the manager ------------------------------------------------------------------------


class TokenManager:
    """Hands out a valid access token for one client and realm, refreshing when needed.

    :param seed_refresh_token: the refresh token in the Airflow connection.
    :param refresher: ``refresh_token -> TokenGrant`` (normally :meth:`OAuthClient.refresh`).
    :param margin: refresh this long before expiry (capped at a tenth of the lifetime)."""

    def __init__(self, store: TokenStore, client_id: str, realm_id: str,
                 seed_refresh_token: str, refresher: Callable[[str], TokenGrant], *,
                 margin: float = 120.0, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.client_id = client_id
        self.realm_id = str(realm_id)
        self._seed = seed_refresh_token
        self._seed_hash = token_hash(seed_refresh_token)
        self._refresher = refresher
        self.margin = margin
        self._clock = clock
        self._access: str | None = None
        self._expires_at = 0.0
        self._issued_at = 0.0
        self.refreshes = 0
        mask(seed_refresh_token)

    def _fresh(self, token: str | None, expires_at: float | None, issued_at: float | None,
               rejected: str | None) -> bool:
        if not token or token == rejected or expires_at is None:
            return False
        lifetime = max(0.0, expires_at - (issued_at or expires_at))
        margin = min(self.margin, lifetime / 10) if lifetime else self.margin
        return self._clock() < expires_at - margin

    def access_token(self, rejected: str | None = None) -> str:
        """A valid access token. ``rejected`` is one the API just refused (a 401): it is
        never handed out again."""
        if self._fresh(self._access, self._expires_at, self._issued_at, rejected):
            return self._access  # type: ignore[return-value]
        row = self.store.read(self.client_id, self.realm_id)
        if row and self._usable(row, rejected):
            return self._adopt(row)
        with self.store.locked(self.client_id, self.realm_id) as locked:
            row = locked.row
            if row and self._usable(row, rejected):
                return self._adopt(row)
            current = self._current_refresh_token(row)
            grant = self._refresher(current)
            now = self._clock()
            locked.save(grant, self._seed_hash, now)
            self.refreshes += 1
        self._access, self._expires_at, self._issued_at = (grant.access_token,
                                                           now + grant.expires_in, now)
        return grant.access_token

    def _usable(self, row: TokenRow, rejected: str | None) -> bool:
        return (row.seed_token_hash == self._seed_hash
                and self._fresh(row.access_token, row.access_expires_at, row.updated_at,
                                rejected))

    def _adopt(self, row: TokenRow) -> str:
        mask(row.access_token)
        self._access = row.access_token
        self._expires_at = row.access_expires_at or 0.0
        self._issued_at = row.updated_at or 0.0
        return row.access_token  # type: ignore[return-value]

    def _current_refresh_token(self, row: TokenRow | None) -> str:
        """The stored rotated token, unless the connection holds a newer authorisation."""
        if row and row.refresh_token and row.seed_token_hash == self._seed_hash:
            mask(row.refresh_token)
            return row.refresh_token
        return self._seed

    def describe(self) -> dict[str, Any]:
        """Token state without the tokens (for logs and the dashboard)."""
        row = self.store.read(self.client_id, self.realm_id)
        return {"client_id": self.client_id, "realm_id": self.realm_id,
                "stored": row is not None and bool(row.refresh_token),
                "access_expires_at": row.access_expires_at if row else None,
                "refreshes_here": self.refreshes}


# -- connection tests -------------------------------------------------------------------


@dataclass(frozen=True)
class TestGrant:
    """What a connection test may use: an access token (or none) and how it was obtained.

    ``source`` is ``stored`` (koppel's current access token for this connection, read, not
    refreshed), ``exchanged`` (no tenant had used this company yet: the connection's refresh
    token was exchanged and the rotated one stored as the first row), or ``held`` (koppel
    holds the live token for this company and it may not be touched; ``access_token`` is
    then koppel's current one when still fresh — it belongs to the same app and company —
    else None)."""

    __test__ = False  # not a pytest test class

    source: str
    access_token: str | None = field(repr=False, default=None)
    expires_at: float | None = None
    seed_matches: bool = True
    refreshed_at: float | None = None


def check_client(oauth: "OAuthClient") -> None:
    """Check the client id and secret at the token endpoint without a refresh token.

    RFC 6749 §5.2 (https://www.rfc-editor.org/rfc/rfc6749#section-5.2): the token endpoint
    authenticates the client first and answers ``invalid_client`` (401 with HTTP Basic)
    when that fails; only then does it look at the grant (``invalid_grant`` /
    ``invalid_request`` for an empty one). So a refresh request with an empty refresh
    token proves the credentials and exchanges — rotates — nothing. Raises
    :class:`AuthError` when the client is refused, :class:`QBOTransientError` when the
    endpoint cannot be reached."""
    path = urlsplit(oauth.token_endpoint).path

    def attempt() -> None:
        response = oauth.post_refresh("")
        try:
            error = str(response.json().get("error", ""))
        except (ValueError, AttributeError):
            error = ""
        if response.status_code == 401 or error == "invalid_client":
            raise AuthError("client id or secret refused by the token endpoint "
                            "(invalid_client)", method="POST", path=path,
                            status=response.status_code)
        if response.ok:  # an empty refresh token can never be exchanged
            raise AuthError("the token endpoint accepted an empty refresh token",
                            method="POST", path=path, status=response.status_code)

    oauth.retry.call(attempt, sleep=oauth._sleep)


def grant_for_test(store: TokenStore, client_id: str, realm_id: str, seed_refresh_token: str,
                   refresher: Callable[[str], TokenGrant], *, margin: float = 120.0,
                   clock: Callable[[], float] = time.time) -> TestGrant:
    """An access token for a connection test that never rotates nor replaces the refresh
    token a running tenant uses.

    Intuit rotates refresh tokens and wants the latest one used ("always use the latest
    refresh token", https://developer.intuit.com/app/developer/qbo/docs/develop/
    authentication-and-authorization/faq): exchanging a token a tenant depends on, or
    re-seeding koppel's row from another connection to the same company, makes the
    tenant's next refresh fail with ``invalid_grant``. So:

    * koppel's row was seeded from this connection's token and its access token is fresh:
      that access token is used as it is (read, nothing written);
    * the row exists otherwise (expired, or seeded from another connection to the same
      company): nothing is exchanged (``held``; koppel's access token when still fresh);
    * there is no row (no tenant has used this app on this company yet): the refresh
      token is exchanged under the row lock and the rotated one stored, exactly as a
      first run would — unless a tenant created the row meanwhile (then ``held``)."""
    realm_id = str(realm_id)
    seed_hash = token_hash(seed_refresh_token)
    manager = TokenManager(store, client_id, realm_id, seed_refresh_token, refresher,
                           margin=margin, clock=clock)
    row = store.read(client_id, realm_id)
    if row is not None and row.refresh_token:
        matches = row.seed_token_hash == seed_hash
        fresh = manager._fresh(row.access_token, row.access_expires_at, row.updated_at, None)
        if fresh:
            mask(row.access_token)
        return TestGrant("stored" if matches and fresh else "held",
                         row.access_token if fresh else None,
                         row.access_expires_at if fresh else None, matches, row.updated_at)
    with store.locked(client_id, realm_id) as locked:
        current = locked.row
        if current is not None and current.refresh_token:
            return TestGrant("held", None, None, current.seed_token_hash == seed_hash,
                             current.updated_at)
        grant = refresher(seed_refresh_token)
        now = clock()
        locked.save(grant, seed_hash, now)
    return TestGrant("exchanged", grant.access_token, now + grant.expires_in, True, now)
