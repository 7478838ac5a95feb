"""``koppel doctor`` in the Airflow UI: a page per tenant with what to fix.

Mounted by ``plugins/koppel_plugin.py`` at ``/koppel-doctor`` (Airflow's API server):

- ``GET /`` — the tenants the caller may read (any of the tenant's flow DAGs), each a link;
- ``GET /?tenant=<id>`` — the tenant's doctor report (:mod:`koppel.doctor`): problems,
  notes and passed checks, each with the tenant-file field and the company's real names
  to choose from;
- ``GET /api/report?tenant=<id>`` — the same as JSON.

Like the dashboard (``koppel.web.app``), every route resolves the caller through
Airflow's own auth manager (``koppel.web.auth``): anonymous callers get 401 (JSON) or a
redirect to the login page (HTML); a tenant whose flows the caller may not read is 403.
The report holds setup names only (accounts, tax codes, items, payment methods, terms,
pools, currencies), never a customer or a secret. The checks ask the live APIs, so a
page takes a few seconds.

This module imports only the standard library at import time: the plugin imports it in
every Airflow component, and only the API server serves it."""

# no ``from __future__ import annotations``: FastAPI resolves the routes' annotations, and
# ``Request`` is imported inside :func:`create_app` (kept out of the plugin's import)
from dataclasses import asdict
from typing import Any, Awaitable, Callable

from koppel.web import LazyASGIApp

MOUNT_PREFIX = "/koppel-doctor"


def _tenants(mappings_dir: str | None) -> tuple[dict[str, Any], list[str]]:
    from koppel.cli import default_mappings_dir
    from koppel.tenants import load_tenants

    result = load_tenants(mappings_dir or default_mappings_dir())
    return {t.tenant: t for t in result.tenants}, [str(e) for e in result.errors]


def _flow_dags(tenant: Any) -> list[str]:
    return [f"{flow}__{tenant.tenant}" for flow in tenant.enabled_flows()]


def render_report(report: Any, base: str) -> str:
    """The report as an HTML page (``templates/doctor_report.html``, autoescaped)."""
    from koppel.web.templating import render

    return render("doctor_report.html", title=f"koppel doctor: {report.tenant}", base=base,
                  findings=report.findings, problems=len(report.problems),
                  notes=len(report.notes),
                  passed=sum(f.severity == "ok" for f in report.findings))


def render_index(tenants: list[str], base: str) -> str:
    """The list of ``tenants`` the caller may read, each a link to its report
    (``templates/doctor_index.html``, autoescaped)."""
    from koppel.web.templating import render

    return render("doctor_index.html", title="koppel doctor", base=base, tenants=tenants)


def create_app(*, mappings_dir: str | None = None,
               run_doctor: Callable[[Any], Any] | None = None,
               resolve_viewer: Callable[[Any], Awaitable[Any]] | None = None) -> Any:
    """The app. ``run_doctor(tenant) -> Report`` (default :func:`koppel.doctor.doctor`) and
    ``resolve_viewer(request)`` (default :func:`koppel.web.auth.current_viewer`) can be
    replaced in tests."""
    from fastapi import Depends, FastAPI, HTTPException, Query, Request
    from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

    from koppel.web.auth import current_viewer, login_url

    app = FastAPI(title="koppel doctor", docs_url=None, redoc_url=None, openapi_url=None)
    resolve = resolve_viewer or current_viewer

    def doctor(tenant: Any) -> Any:
        if run_doctor is not None:
            return run_doctor(tenant)
        from koppel.doctor import doctor as real

        return real(tenant)

    class _Anonymous(Exception):
        pass

    @app.exception_handler(_Anonymous)
    async def _login(request: Request, _exc: _Anonymous):
        return RedirectResponse(login_url(request), status_code=302)

    async def page_viewer(request: Request) -> Any:
        viewer = await resolve(request)
        if viewer is None:
            raise _Anonymous()
        return viewer

    async def api_viewer(request: Request) -> Any:
        viewer = await resolve(request)
        if viewer is None:
            raise HTTPException(401, "Not authenticated", headers={"WWW-Authenticate": "Bearer"})
        return viewer

    def readable(viewer: Any) -> dict[str, Any]:
        tenants, _ = _tenants(mappings_dir)
        return {tid: t for tid, t in sorted(tenants.items())
                if any(viewer.can_read(dag) for dag in _flow_dags(t))}

    def tenant_for(viewer: Any, tenant_id: str) -> Any:
        tenants, _ = _tenants(mappings_dir)
        tenant = tenants.get(tenant_id)
        if tenant is None:
            raise HTTPException(404, f"no valid tenant file for tenant {tenant_id!r}")
        if not any(viewer.can_read(dag) for dag in _flow_dags(tenant)):
            raise HTTPException(403, f"you may not read the flows of tenant {tenant_id!r}")
        return tenant

    @app.get("/", response_class=HTMLResponse)
    def page(request: Request, viewer: Any = Depends(page_viewer),
             tenant: str | None = Query(default=None, max_length=64)) -> HTMLResponse:
        base = request.scope.get("root_path", "")
        if tenant:
            return HTMLResponse(render_report(doctor(tenant_for(viewer, tenant)), base))
        return HTMLResponse(render_index(list(readable(viewer)), base))

    @app.get("/api/report")
    def report(viewer: Any = Depends(api_viewer),
               tenant: str = Query(..., min_length=1, max_length=64)) -> JSONResponse:
        result = doctor(tenant_for(viewer, tenant))
        return JSONResponse({"tenant": result.tenant, "problems": len(result.problems),
                             "notes": len(result.notes),
                             "findings": [{**asdict(f), "choices": list(f.choices)}
                                          for f in result.findings]})

    return app


lazy_app = LazyASGIApp(create_app)
