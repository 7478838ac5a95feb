"""The koppel dashboard: a FastAPI app mounted in Airflow's API server under ``/koppel``
by ``plugins/koppel_plugin.py`` (and shown in the UI's navigation as an iframe).

Airflow does not protect plugin apps, so every route except the two static assets
resolves the caller through Airflow's own auth manager (``auth.py``): anonymous callers
get 401 (JSON) or a redirect to Airflow's login page (HTML).

Routes (relative to the mount point):

- ``GET /`` — the page: flows per tenant (last run, Airflow run state, counts, a chart
  per day), API calls against the limits, failed records, record search (``?q=``).
- ``GET /api/summary?tenant=&days=`` — the same data as JSON.
- ``GET /api/records?q=&tenant=`` — the path of every record whose source or target id is q.
- ``GET /api/failures?tenant=&flow=`` — records waiting for a retry.
- ``POST /api/retry`` ``{"tenant", "flow", "records"?}`` — triggers ``<flow>__<tenant>``
  with ``{"records": [...]}`` through Airflow's REST API with the caller's token.
  Needs the ``X-Koppel-CSRF`` header from the page and a same-origin request.

The Airflow REST API is reached at ``airflow_api_url`` (argument), else
``KOPPEL_AIRFLOW_API_URL``, else the origin the request came in on (the API server
itself)."""

from __future__ import annotations

import datetime as dt
import os
from importlib import resources
from typing import Any, Callable

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from pydantic import BaseModel, Field
from sqlalchemy import Engine

from koppel.web import queries, render
from koppel.web.airflow_api import AirflowAPI
from koppel.web.auth import Viewer, csrf_ok, current_viewer, login_url

MOUNT_PREFIX = "/koppel"
DEFAULT_DAYS = 14
MAX_RETRY_RECORDS = 1000
_ASSETS = {"dashboard.css": "text/css; charset=utf-8",
           "dashboard.js": "text/javascript; charset=utf-8"}


class RetryRequest(BaseModel):
    tenant: str = Field(min_length=1, max_length=64)
    flow: str = Field(min_length=1, max_length=32)
    records: list[str] | None = Field(
        default=None, description="Failed records to retry; all of the flow's when absent.")


class NotLoggedIn(Exception):
    """Raised by the page dependency; answered with a redirect to Airflow's login."""


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def create_app(*, engine: Engine | None = None, airflow_api_url: str | None = None,
               clock: Callable[[], dt.datetime] = _utcnow,
               mount_prefix: str = MOUNT_PREFIX) -> FastAPI:
    """Build the dashboard. ``engine`` defaults to koppel's state database
    (``koppel.store.engine``), resolved on first use, not at import."""
    app = FastAPI(title="koppel dashboard", docs_url=None, redoc_url=None, openapi_url=None)
    state: dict[str, Any] = {"engine": engine}

    def get_engine() -> Engine:
        if state["engine"] is None:
            from koppel.store.engine import get_engine as state_engine
            state["engine"] = state_engine()
        from koppel.store.schema import ensure_schema
        ensure_schema(state["engine"])
        return state["engine"]

    def airflow_api(request: Request, viewer: Viewer) -> AirflowAPI:
        base = airflow_api_url or os.environ.get("KOPPEL_AIRFLOW_API_URL")
        if not base:
            base = f"{request.url.scheme}://{request.url.netloc}{_ui_base(request)}"
        return AirflowAPI(base, viewer.token)

    def _ui_base(request: Request) -> str:
        root = request.scope.get("root_path", "")
        return root[: -len(mount_prefix)] if mount_prefix and root.endswith(mount_prefix) else root

    async def api_viewer(request: Request) -> Viewer:
        viewer = await current_viewer(request)
        if viewer is None:
            raise HTTPException(status_code=401, detail="Not authenticated",
                                headers={"WWW-Authenticate": "Bearer"})
        return viewer

    async def page_viewer(request: Request) -> Viewer:
        viewer = await current_viewer(request)
        if viewer is None:
            raise NotLoggedIn()
        return viewer

    @app.exception_handler(NotLoggedIn)
    async def _to_login(request: Request, _exc: NotLoggedIn) -> Response:
        return RedirectResponse(login_url(request), status_code=302)

    def visible_keys(viewer: Viewer, tenant: str | None) -> list[tuple[str, str]]:
        keys = queries.visible(queries.known_flows(get_engine()), tenant)
        return [k for k in keys if viewer.can_read(queries.dag_id(*k))]

    async def summary_data(request: Request, viewer: Viewer, tenant: str | None,
                           days: int) -> dict[str, Any]:
        engine, now = get_engine(), clock()
        keys = visible_keys(viewer, tenant)
        summaries = [s.to_dict() for s in queries.flow_summaries(engine, keys)]
        runs = [(s["dag_id"], s["last_run"]["run_id"]) for s in summaries if s["last_run"]]
        states = await airflow_api(request, viewer).run_states(runs)
        daily = queries.daily_counts(engine, keys, days=days, today=now.date())
        for s in summaries:
            s["airflow_state"] = (states.get((s["dag_id"], s["last_run"]["run_id"]))
                                  if s["last_run"] else None)
            s["daily"] = daily.get((s["tenant"], s["flow"]), [])
            s["can_retry"] = bool(s["open_failures"]) and viewer.can_trigger(s["dag_id"])
        tenants = sorted({t for t, _ in keys})
        return {
            "user": viewer.name, "generated_at": now.isoformat(), "days": days,
            "tenants": tenants, "flows": summaries,
            "api_usage": queries.api_usage(engine, tenants, now=now),
            "failures": queries.open_failures(engine, keys),
        }

    @app.get("/static/{name}", include_in_schema=False)
    def asset(name: str) -> Response:
        if name not in _ASSETS:
            raise HTTPException(status_code=404)
        body = resources.files("koppel.web").joinpath(name).read_text(encoding="utf-8")
        return Response(body, media_type=_ASSETS[name],
                        headers={"Cache-Control": "public, max-age=300"})

    @app.get("/", response_class=HTMLResponse)
    async def dashboard(request: Request, viewer: Viewer = Depends(page_viewer),
                        tenant: str | None = None, q: str = "",
                        days: int = Query(DEFAULT_DAYS, ge=1, le=366)) -> HTMLResponse:
        tenant = tenant or None
        data = await summary_data(request, viewer, tenant, days)
        links = render.Links(_ui_base(request))
        triggerable = {s["dag_id"] for s in data["flows"] if s["can_retry"]}
        daily = {f'{s["tenant"]}/{s["flow"]}': s["daily"] for s in data["flows"]}
        records = (queries.record_paths(get_engine(), q, data["tenants"]) if q.strip() else None)
        body = "".join((
            render.flows_section(data["flows"], daily, links, triggerable),
            render.failures_section(data["failures"], links),
            render.usage_section(data["api_usage"]),
            render.search_section(q, records, links, tenant, days),
        ))
        all_tenants = sorted({t for t, _ in visible_keys(viewer, None)})
        html = render.page(user=viewer.name, csrf=viewer.csrf_token,
                           base=request.scope.get("root_path", ""), body=body,
                           tenants=all_tenants, tenant=tenant, days=days)
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    @app.get("/api/summary")
    async def summary(request: Request, viewer: Viewer = Depends(api_viewer),
                      tenant: str | None = None,
                      days: int = Query(DEFAULT_DAYS, ge=1, le=366)) -> dict[str, Any]:
        return await summary_data(request, viewer, tenant or None, days)

    @app.get("/api/records")
    def records(viewer: Viewer = Depends(api_viewer), q: str = Query(..., min_length=1),
                tenant: str | None = None) -> dict[str, Any]:
        tenants = sorted({t for t, _ in visible_keys(viewer, tenant or None)})
        return {"query": q, "records": queries.record_paths(get_engine(), q, tenants)}

    @app.get("/api/failures")
    def failures(viewer: Viewer = Depends(api_viewer), tenant: str | None = None,
                 flow: str | None = None) -> dict[str, Any]:
        keys = [k for k in visible_keys(viewer, tenant or None) if flow in (None, "", k[1])]
        return {"failures": queries.open_failures(get_engine(), keys)}

    @app.post("/api/retry")
    async def retry(body: RetryRequest, request: Request,
                    viewer: Viewer = Depends(api_viewer)) -> JSONResponse:
        if not csrf_ok(request, viewer):
            raise HTTPException(status_code=403, detail="Cross-site request refused")
        dag = queries.dag_id(body.tenant, body.flow)
        if (body.tenant, body.flow) not in visible_keys(viewer, body.tenant):
            raise HTTPException(status_code=404, detail=f"No flow {dag}")
        failed = queries.failed_source_ids(get_engine(), body.tenant, body.flow)
        open_ids = set(failed)
        wanted = failed if body.records is None else [r for r in dict.fromkeys(body.records)
                                                      if r in open_ids]
        if not wanted:
            raise HTTPException(status_code=400, detail="No failed records to retry")
        if len(wanted) > MAX_RETRY_RECORDS:
            raise HTTPException(status_code=400,
                                detail=f"At most {MAX_RETRY_RECORDS} records per retry")
        result = await airflow_api(request, viewer).trigger(dag, {"records": wanted})
        if result.ok:
            return JSONResponse({**result.to_dict(), "dag_id": dag, "records": wanted})
        status = {401: 403, 403: 403, 404: 404, 409: 409}.get(result.status_code, 502)
        return JSONResponse({**result.to_dict(), "dag_id": dag, "records": wanted},
                            status_code=status)

    return app


app = create_app()
