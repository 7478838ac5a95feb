"""koppel's dashboard, mounted in Airflow's API server by ``plugins/koppel_plugin.py``.

This package's ``__init__`` stays import-cheap: Airflow's DAG processor, scheduler and
every worker load plugins, but only the API server ever serves the dashboard. The plugin
mounts :data:`lazy_app`, which imports :mod:`koppel.web.app` (FastAPI, SQLAlchemy,
Airflow's auth manager) on its first request."""

from __future__ import annotations

import threading
from typing import Any, Awaitable, Callable

Scope = dict[str, Any]
ASGIApp = Callable[[Scope, Callable, Callable], Awaitable[None]]


class LazyASGIApp:
    """An ASGI app that builds the real one from ``factory`` on first use."""

    def __init__(self, factory: Callable[[], ASGIApp]) -> None:
        self._factory = factory
        self._app: ASGIApp | None = None
        self._lock = threading.Lock()

    @property
    def app(self) -> ASGIApp:
        if self._app is None:
            with self._lock:
                if self._app is None:
                    self._app = self._factory()
        return self._app

    async def __call__(self, scope: Scope, receive: Callable, send: Callable) -> None:
        await self.app(scope, receive, send)


def _dashboard_app() -> ASGIApp:
    from koppel.web.app import app

    return app


lazy_app = LazyASGIApp(_dashboard_app)
