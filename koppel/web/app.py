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
- ``GET /api/reconciliation?tenant=&first_day=&last_day=`` — the reconcile flow's verdict
  per day (figures and differences); ``GET /api/reconciliation.csv?…&part=days|differences``
  the same as CSV for the accountant (``;``-free, comma-separated, one row per day or per
  difference).
- ``POST /api/retry`` ``{"tenant", "flow", "records"?}`` — triggers ``<flow>__<tenant>``
  with ``{"records": [...]}`` through Airflow's REST API with the caller's token.
- ``POST /api/preview`` ``{"tenant", "flow", "record"}`` — a dry run of that one record
  (``{"records": [record], "dry_run": true}``, triggered like a retry); ``GET
  /api/preview?tenant=&flow=&record=`` — what it would send (target, operation, request
  body) once that dry run has reached its load step. It shows the document's contents,
  so it needs Airflow's permission to run the flow.
- ``POST /api/skip`` ``{"tenant", "flow", "records", "reason"}`` — takes failed records
  off the retry list: each gets a ``skipped`` row in the activity log with the reason and
  who skipped it. A later run that reads it unchanged ends it ``skipped`` with that reason
  (``koppel.steps.kernel.keep_manual_skips``); once the shop changes it, it is synced as
  any record.

Both POSTs need the ``X-Koppel-CSRF`` header from the page, a same-origin request and
Airflow's permission to trigger the flow's DAG.

Flows are koppel's DAGs as Airflow lists them for the caller (tag ``koppel``), so a new
tenant shows before its first run, and Airflow's own run list gives each flow's state and
the runs that failed as a whole — before any record was handled (a missing connection,
an authentication outage) — which the activity log cannot show.

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


class PreviewRequest(BaseModel):
    tenant: str = Field(min_length=1, max_length=64)
    flow: str = Field(min_length=1, max_length=32)
    record: str = Field(min_length=1, max_length=64)


class SkipRequest(BaseModel):
    tenant: str = Field(min_length=1, max_length=64)
    flow: str = Field(min_length=1, max_length=32)
    records: list[str] = Field(min_length=1, max_length=MAX_RETRY_RECORDS)
    reason: str = Field(min_length=3, max_length=500,
                        description="Why the records are skipped; kept in the activity log.")


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

    def visible_keys(viewer: Viewer, tenant: str | None,
                     dags: Any = ()) -> list[tuple[str, str]]:
        known = set(queries.known_flows(get_engine()))
        known.update(k for k in map(queries.split_dag_id, dags) if k is not None)
        keys = queries.visible(sorted(known, key=queries.flow_sort_key), tenant)
        return [k for k in keys if viewer.can_read(queries.dag_id(*k))]

    async def summary_data(request: Request, viewer: Viewer, tenant: str | None,
                           days: int) -> dict[str, Any]:
        engine, now = get_engine(), clock()
        api = airflow_api(request, viewer)
        view = await api.runs_view(now - dt.timedelta(days=days))
        keys = visible_keys(viewer, tenant, view.dags)
        summaries = [s.to_dict() for s in queries.flow_summaries(engine, keys)]
        by_run = {(r["dag_id"], r["run_id"]): r for r in view.runs}
        missing = [(s["dag_id"], s["last_run"]["run_id"]) for s in summaries
                   if s["last_run"] and (s["dag_id"], s["last_run"]["run_id"]) not in by_run]
        # a koppel run older than the window: its state asked for one by one
        states = await api.run_states(missing) if missing else {}
        latest = view.latest()
        logged = queries.runs_with_activity(engine, [
            (r["dag_id"], r["run_id"]) for r in view.runs if r["state"] == "failed"])
        daily = queries.daily_counts(engine, keys, days=days, today=now.date())
        flow_failures = []
        for s in summaries:
            last = s["last_run"]
            if last:
                known = by_run.get((s["dag_id"], last["run_id"]))
                s["airflow_state"] = known["state"] if known else states.get(
                    (s["dag_id"], last["run_id"]))
            else:
                s["airflow_state"] = None
            s["latest_airflow_run"] = latest.get(s["dag_id"])
            s["is_paused"] = (view.dags.get(s["dag_id"]) or {}).get("is_paused")
            s["daily"] = daily.get((s["tenant"], s["flow"]), [])
            s["can_retry"] = bool(s["open_failures"]) and viewer.can_trigger(s["dag_id"])
            s["can_skip"] = s["can_retry"]
            flow_failures.extend(
                {**r, "tenant": s["tenant"], "flow": s["flow"]} for r in view.runs
                if r["dag_id"] == s["dag_id"] and r["state"] == "failed"
                and (r["dag_id"], r["run_id"]) not in logged)
        tenants = sorted({t for t, _ in keys})
        return {
            "user": viewer.name, "generated_at": now.isoformat(), "days": days,
            "tenants": tenants, "flows": summaries,
            "airflow_error": view.error,
            "flow_failures": flow_failures,
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
        skippable = {s["dag_id"] for s in data["flows"] if s["can_skip"]}
        daily = {f'{s["tenant"]}/{s["flow"]}': s["daily"] for s in data["flows"]}
        records = (queries.record_paths(get_engine(), q, data["tenants"]) if q.strip() else None)
        first = clock().date() - dt.timedelta(days=days - 1)
        checks = queries.reconciliation(get_engine(), reconcile_tenants(viewer, tenant),
                                        first, clock().date())
        all_tenants = sorted({t for t, _ in visible_keys(viewer, None)})
        html = render.dashboard_page(
            user=viewer.name, csrf=viewer.csrf_token, base=request.scope.get("root_path", ""),
            links=links, tenants=all_tenants, tenant=tenant, days=days,
            airflow_error=data["airflow_error"], checks=checks, flows=data["flows"],
            daily=daily, triggerable=triggerable, flow_failures=data["flow_failures"],
            failures=data["failures"], skippable=skippable, usage=data["api_usage"],
            query=q, records=records)
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

    def writable_flow(request: Request, viewer: Viewer, tenant: str, flow: str, *,
                      check_trigger: bool = True) -> str:
        """The flow's DAG id when the caller may act on it: a same-site request with the
        page's CSRF token, a flow they can see and, for what koppel writes itself,
        Airflow's permission to run it (a retry is checked by Airflow when it triggers)."""
        if not csrf_ok(request, viewer):
            raise HTTPException(status_code=403, detail="Cross-site request refused")
        dag = queries.dag_id(tenant, flow)
        if (tenant, flow) not in visible_keys(viewer, tenant):
            raise HTTPException(status_code=404, detail=f"No flow {dag}")
        if check_trigger and not viewer.can_trigger(dag):
            raise HTTPException(status_code=403, detail=f"Not allowed to run {dag}")
        return dag

    def reconcile_range(first_day: str | None, last_day: str | None,
                        days: int) -> tuple[dt.date, dt.date]:
        today = clock().date()
        try:
            last = dt.date.fromisoformat(last_day) if last_day else today
            first = dt.date.fromisoformat(first_day) if first_day else last - dt.timedelta(days=days - 1)
        except ValueError as exc:
            raise HTTPException(status_code=400, detail=f"dates are YYYY-MM-DD: {exc}") from exc
        if first > last or (last - first).days > 366:
            raise HTTPException(status_code=400, detail="first_day must be on or before "
                                "last_day, at most 366 days apart")
        return first, last

    def reconcile_tenants(viewer: Viewer, tenant: str | None) -> list[str]:
        return sorted({t for t, f in visible_keys(viewer, tenant) if f == "reconcile"})

    @app.get("/api/reconciliation")
    def reconciliation(viewer: Viewer = Depends(api_viewer), tenant: str | None = None,
                       first_day: str | None = None, last_day: str | None = None,
                       days: int = Query(DEFAULT_DAYS, ge=1, le=366)) -> dict[str, Any]:
        first, last = reconcile_range(first_day, last_day, days)
        rows = queries.reconciliation(get_engine(), reconcile_tenants(viewer, tenant or None),
                                      first, last)
        return {"first_day": first.isoformat(), "last_day": last.isoformat(), "days": rows}

    @app.get("/api/reconciliation.csv")
    def reconciliation_csv(viewer: Viewer = Depends(api_viewer), tenant: str | None = None,
                           first_day: str | None = None, last_day: str | None = None,
                           days: int = Query(DEFAULT_DAYS, ge=1, le=366),
                           part: str = Query("days", pattern="^(days|differences)$")) -> Response:
        first, last = reconcile_range(first_day, last_day, days)
        rows = queries.reconciliation(get_engine(), reconcile_tenants(viewer, tenant or None),
                                      first, last)
        body = render.reconciliation_csv(rows, part)
        name = f"koppel-reconciliation-{tenant or 'all'}-{first}-{last}-{part}.csv"
        return Response(body, media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"',
                                 "Cache-Control": "no-store"})

    @app.post("/api/skip")
    def skip(body: SkipRequest, request: Request,
             viewer: Viewer = Depends(api_viewer)) -> dict[str, Any]:
        dag = writable_flow(request, viewer, body.tenant, body.flow)
        from koppel.store.state import StateStore

        open_ids = set(queries.failed_source_ids(get_engine(), body.tenant, body.flow))
        wanted = [r for r in dict.fromkeys(body.records) if r in open_ids]
        if not wanted:
            raise HTTPException(status_code=400, detail="No failed records to skip")
        skipped = queries.skip_failed(StateStore(get_engine()), body.tenant, body.flow,
                                      wanted, reason=body.reason, user=viewer.name,
                                      at=clock())
        return {"dag_id": dag, "records": skipped, "reason": body.reason}

    @app.post("/api/retry")
    async def retry(body: RetryRequest, request: Request,
                    viewer: Viewer = Depends(api_viewer)) -> JSONResponse:
        dag = writable_flow(request, viewer, body.tenant, body.flow, check_trigger=False)
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

    @app.post("/api/preview")
    async def request_preview(body: PreviewRequest, request: Request,
                              viewer: Viewer = Depends(api_viewer)) -> JSONResponse:
        dag = writable_flow(request, viewer, body.tenant, body.flow)
        conf = {"records": [body.record], "dry_run": True}
        result = await airflow_api(request, viewer).trigger(dag, conf)
        payload = {**result.to_dict(), "dag_id": dag, "record": body.record}
        if result.ok:
            return JSONResponse(payload)
        status = {401: 403, 403: 403, 404: 404, 409: 409}.get(result.status_code, 502)
        return JSONResponse(payload, status_code=status)

    @app.get("/api/preview")
    def preview(viewer: Viewer = Depends(api_viewer), tenant: str = Query(..., min_length=1),
                flow: str = Query(..., min_length=1),
                record: str = Query(..., min_length=1)) -> dict[str, Any]:
        dag = queries.dag_id(tenant, flow)
        if (tenant, flow) not in visible_keys(viewer, tenant):
            raise HTTPException(status_code=404, detail=f"No flow {dag}")
        if not viewer.can_trigger(dag):  # the request body holds the document's contents
            raise HTTPException(status_code=403, detail=f"Not allowed to run {dag}")
        from koppel.store.state import StateStore

        found = StateStore(get_engine()).preview_of(tenant, flow, record)
        if found is None:
            raise HTTPException(status_code=404,
                                detail=f"No preview of {record} yet: request one (a dry run)")
        return {"tenant": tenant, "flow": flow, "record": record, "run_id": found["run_id"],
                "target_type": found["target_type"], "operation": found["operation"],
                "created_at": found["created_at"].isoformat() if found["created_at"] else None,
                "payload": found["payload"]}

    return app


app = create_app()
