"""koppel's own state database: the activity log, cross-references, change hashes and
OAuth tokens. Never Airflow's metadata database (tasks may not touch it).

Resolved, in this order, from:
1. the Airflow connection ``koppel_state`` (any SQLAlchemy-capable type: ``sqlite``,
   ``postgres``), e.g. ``AIRFLOW_CONN_KOPPEL_STATE='postgresql://user@host:5432/koppel'``;
2. ``KOPPEL_STATE_DB_URL`` (a SQLAlchemy URL);
3. SQLite at ``$AIRFLOW_HOME/koppel_state.db``.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from sqlalchemy import Engine, create_engine, event

STATE_CONN_ID = "koppel_state"
_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def _url_from_connection(conn_id: str) -> str | None:
    """The SQLAlchemy URL of Airflow connection ``conn_id``, as its provider's hook builds
    it (``PostgresHook.sqlalchemy_url``, ``SqliteHook.get_uri``); ``None`` when there is no
    such connection or no Airflow context."""
    try:
        from airflow.sdk import BaseHook

        conn = BaseHook.get_connection(conn_id)
    except Exception:  # no such connection, or no Airflow context: use the fallbacks
        return None
    hook = conn.get_hook()
    try:
        return hook.sqlalchemy_url.render_as_string(hide_password=False)
    except (AttributeError, NotImplementedError):  # the hook builds a URI string instead
        return hook.get_uri()


def state_db_url(conn_id: str = STATE_CONN_ID) -> str:
    url = _url_from_connection(conn_id) or os.environ.get("KOPPEL_STATE_DB_URL")
    if url:
        return url
    home = Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow"))
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home / 'koppel_state.db'}"


def get_engine(url: str | None = None) -> Engine:
    """One pooled engine per URL and process. SQLite gets WAL and a busy timeout so
    parallel task processes can share it."""
    url = url or state_db_url()
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            if url.startswith("sqlite"):
                engine = create_engine(url, connect_args={"timeout": 30})

                @event.listens_for(engine, "connect")
                def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - trivial
                    cur = dbapi_conn.cursor()
                    cur.execute("PRAGMA journal_mode=WAL")
                    cur.execute("PRAGMA busy_timeout=30000")
                    cur.close()
            else:
                engine = create_engine(url, pool_pre_ping=True)
            _engines[url] = engine
        return engine
