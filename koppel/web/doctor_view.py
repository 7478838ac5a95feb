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
import html
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
    """The report as an HTML page (every value escaped)."""
    rows = []
    for finding in report.findings:
        choices = ""
        if finding.choices:
            choices = ("<div class='choices'>choose from: "
                       + ", ".join(f"<code>{html.escape(c)}</code>" for c in finding.choices)
                       + "</div>")
        rows.append(f"<tr class='{html.escape(finding.severity)}'>"
                    f"<td>{html.escape(finding.severity)}</td>"
                    f"<td><code>{html.escape(finding.field)}</code></td>"
                    f"<td>{html.escape(finding.message)}{choices}</td></tr>")
    summary = (f"{len(report.problems)} problem(s), {len(report.notes)} note(s), "
               f"{sum(f.severity == 'ok' for f in report.findings)} check(s) passed")
    return _page(f"koppel doctor: {report.tenant}",
                 f"<p><a href='{html.escape(base)}/'>all tenants</a></p>"
                 f"<p class='summary'>{html.escape(summary)}</p>"
                 "<table><thead><tr><th>severity</th><th>field</th><th>finding</th></tr>"
                 f"</thead><tbody>{''.join(rows)}</tbody></table>")


def _page(title: str, body: str) -> str:
    return ("<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title><style>"
            "body{font-family:system-ui,sans-serif;margin:1.5rem}"
            "table{border-collapse:collapse}td,th{padding:.3rem .6rem;text-align:left;"
            "vertical-align:top;border-bottom:1px solid #ddd}"
            "tr.problem td:first-child{color:#b00020;font-weight:bold}"
            "tr.note td:first-child{color:#8a6d00}tr.ok td:first-child{color:#1b7f3b}"
            ".choices{color:#555;margin-top:.2rem}</style></head>"
            f"<body><h1>{html.escape(title)}</h1>{body}</body></html>")


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
        links = "".join(f"<li><a href='{html.escape(base)}/?tenant={html.escape(tid)}'>"
                        f"{html.escape(tid)}</a></li>" for tid in readable(viewer))
        return HTMLResponse(_page("koppel doctor",
                                  "<p>Check a tenant against its live systems: connections, "
                                  "the names its file uses in QuickBooks, tax and currency "
                                  "setup, pools.</p>"
                                  f"<ul>{links or '<li>no tenant you may read</li>'}</ul>"))

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
