"""Server-rendered HTML for the dashboard page. Every value is escaped here; the page
works without JavaScript except for the retry button (a JSON POST with the CSRF header)."""

from __future__ import annotations

import csv
import io
from html import escape
from typing import Any, Sequence
from urllib.parse import quote, urlencode

from koppel.web.chart import legend, stacked_days
from koppel.web.limits import API_NAMES
from koppel.web.queries import ACTION_ORDER


def _seg(value: Any) -> str:
    return quote(str(value), safe="")


class Links:
    """Routes of the Airflow 3 UI (``dags/:dagId/runs/:runId/tasks/:taskId[/mapped/:mapIndex]``),
    opened in the top window: the dashboard itself runs in the UI's plugin iframe."""

    def __init__(self, ui_base: str) -> None:
        self.ui_base = ui_base.rstrip("/")

    def dag(self, dag_id: str) -> str:
        return f"{self.ui_base}/dags/{_seg(dag_id)}"

    def run(self, dag_id: str, run_id: str) -> str:
        return f"{self.dag(dag_id)}/runs/{_seg(run_id)}"

    def task(self, dag_id: str, run_id: str, task_id: str, map_index: Any = None) -> str:
        url = f"{self.run(dag_id, run_id)}/tasks/{_seg(task_id)}"
        if isinstance(map_index, int) and map_index >= 0:
            url += f"/mapped/{map_index}"
        return url


def _a(href: str, text: str, cls: str = "") -> str:
    cls_attr = f' class="{cls}"' if cls else ""
    return f'<a href="{escape(href)}" target="_top"{cls_attr}>{escape(text)}</a>'


def _chips(counts: dict[str, int], prefix: str) -> str:
    if not counts:
        return '<span class="muted">none</span>'
    order = [a for a in ACTION_ORDER if a in counts] + sorted(set(counts) - set(ACTION_ORDER))
    return " ".join(
        f'<span class="chip chip-{escape(a)}" data-metric="{escape(prefix)}-{escape(a)}" '
        f'data-n="{counts[a]}">{escape(a)} <b>{counts[a]}</b></span>' for a in order)


def _time(value: str | None) -> str:
    if not value:
        return '<span class="muted">—</span>'
    return f'<time datetime="{escape(value)}">{escape(value[:19].replace("T", " "))} UTC</time>'


def _state(state: str | None) -> str:
    if not state:
        return '<span class="muted">unknown</span>'
    return f'<span class="state state-{escape(state)}">{escape(state)}</span>'


def flows_section(summaries: Sequence[dict[str, Any]], daily: dict[str, list], links: Links,
                  triggerable: set[str]) -> str:
    if not summaries:
        return ('<section id="flows"><h2>Flows</h2><p class="muted">No activity logged yet. '
                'Runs of the <code>&lt;flow&gt;__&lt;tenant&gt;</code> DAGs appear here.</p></section>')
    out = ['<section id="flows"><h2>Flows</h2>']
    tenants = list(dict.fromkeys(s["tenant"] for s in summaries))
    for tenant in tenants:
        rows = [s for s in summaries if s["tenant"] == tenant]
        out.append(f'<div class="tenant" data-tenant="{escape(tenant)}">'
                   f'<h3>Tenant <code>{escape(tenant)}</code></h3>'
                   '<table class="flows"><thead><tr><th>Flow</th><th>Last run</th>'
                   '<th>Airflow state</th><th>Last run: records by action</th><th>API calls</th>'
                   '<th>All records</th><th>Open failures</th><th></th></tr></thead><tbody>')
        for s in rows:
            run = s["last_run"]
            if run:
                run_cell = (_a(links.run(s["dag_id"], run["run_id"]), run["run_id"], "run-id")
                            + f'<br><small>{_time(run["ended"])}</small>')
                counts, calls = _chips(run["counts"], "last"), str(run["api_calls"])
            else:
                latest = s.get("latest_airflow_run")
                run_cell = ('<span class="muted">no record handled yet</span>' if latest
                            else '<span class="muted">no run yet</span>')
                if s.get("is_paused"):
                    run_cell += ' <small class="muted">(DAG paused)</small>'
                counts, calls = "", ""
            retry = ""
            if s["open_failures"] and s["dag_id"] in triggerable:
                retry = (f'<button class="retry" data-tenant="{escape(tenant)}" '
                         f'data-flow="{escape(s["flow"])}">Retry {s["open_failures"]} failed</button>'
                         '<span class="retry-result" role="status"></span>')
            out.append(
                f'<tr data-tenant="{escape(tenant)}" data-flow="{escape(s["flow"])}">'
                f'<td>{_a(links.dag(s["dag_id"]), s["flow"])}</td><td>{run_cell}</td>'
                f'<td>{_state(_flow_state(s))}</td><td>{counts}</td>'
                f'<td data-metric="last-api-calls">{calls}</td>'
                f'<td><span data-metric="records" data-n="{s["records"]}">{s["records"]}</span>'
                f' <small class="muted" data-metric="events" data-n="{s.get("events", 0)}">'
                f'({s.get("events", 0)} events)</small>'
                f'<details><summary>events by action</summary>{_chips(s["totals"], "total")}'
                '</details></td>'
                f'<td data-metric="open-failures" data-n="{s["open_failures"]}">{s["open_failures"]}</td>'
                f'<td>{retry}</td></tr>')
        out.append("</tbody></table><div class=\"charts\">")
        seen_actions: set[str] = set()
        for s in rows:
            series = daily.get(f'{tenant}/{s["flow"]}', [])
            seen_actions.update(a for d in series for a in d["counts"])
            title = f"{tenant} {s['flow']} records per day"
            out.append(f'<figure data-tenant="{escape(tenant)}" data-flow="{escape(s["flow"])}">'
                       f'<figcaption>{escape(s["flow"])} — records per day</figcaption>'
                       f'{stacked_days(series, title=title)}</figure>')
        order = [a for a in ACTION_ORDER if a in seen_actions] + sorted(seen_actions - set(ACTION_ORDER))
        out.append(f"</div>{legend(order)}</div>")
    out.append("</section>")
    return "".join(out)


def _flow_state(s: dict[str, Any]) -> str | None:
    """The state of the flow's last koppel run; without one, of Airflow's latest run."""
    if s.get("airflow_state"):
        return s["airflow_state"]
    latest = s.get("latest_airflow_run")
    return latest["state"] if latest and not s.get("last_run") else None


def airflow_notice(error: str | None) -> str:
    if not error:
        return ""
    return (f'<p class="notice" id="airflow-error" role="status">{escape(error)}: run states '
            'and runs that failed as a whole cannot be shown.</p>')


def _listing(section_id: str, title: str, rows: Sequence[Any]) -> list[str]:
    """A section's opening; closed with "None." when it has no rows."""
    out = [f'<section id="{section_id}"><h2>{escape(title)}</h2>']
    if not rows:
        out.append('<p class="muted">None.</p></section>')
    return out


def flow_failures_section(runs: Sequence[dict[str, Any]], links: Links) -> str:
    """Runs Airflow marks failed that handled no record — the flow failed as a whole."""
    out = _listing("flow-failures", "Runs that failed before handling any record", runs)
    if not runs:
        return "".join(out)
    out.append('<p class="muted">A missing connection or pool, an authentication outage, an '
               'API down: the task logs say why.</p><table class="flow-failures"><thead><tr>'
               '<th>Tenant</th><th>Flow</th><th>Run</th><th>Type</th><th>Ended</th></tr>'
               '</thead><tbody>')
    for r in runs:
        out.append(
            f'<tr data-tenant="{escape(r["tenant"])}" data-flow="{escape(r["flow"])}" '
            f'data-run-id="{escape(r["run_id"])}"><td>{escape(r["tenant"])}</td>'
            f'<td>{escape(r["flow"])}</td>'
            f'<td>{_a(links.run(r["dag_id"], r["run_id"]), r["run_id"], "run-id")}</td>'
            f'<td>{escape(r.get("run_type") or "")}</td><td>{_time(r.get("end_date"))}</td></tr>')
    out.append("</tbody></table></section>")
    return "".join(out)


def reconciliation_section(checks: Sequence[dict[str, Any]], links: Links,
                           tenant: str | None, days: int) -> str:
    """The reconcile flow's verdict per day: the shop's figures, what the books hold,
    and every difference with the order and both amounts."""
    out = _listing("reconciliation", "Reconciliation: shop against books, per day", checks)
    if not checks:
        return "".join(out)
    query = urlencode({k: v for k, v in (("tenant", tenant), ("days", days)) if v})
    out.append(
        f'<p class="muted">Checked by <code>reconcile__&lt;tenant&gt;</code> every morning. '
        f'CSV: <a href="api/reconciliation.csv?{escape(query)}&amp;part=days">days</a>, '
        f'<a href="api/reconciliation.csv?{escape(query)}&amp;part=differences">differences</a>.'
        '</p><table class="reconciliation"><thead><tr><th>Tenant</th><th>Day</th>'
        '<th>Orders</th><th>Revenue incl.</th><th>VAT per rate</th><th>Refunds</th>'
        '<th>Books: sales / refunds</th><th>Verdict</th></tr></thead><tbody>')
    for c in checks:
        f = c["figures"]
        vat = ", ".join(f"{escape(rate)} %: {escape(amount)}"
                        for rate, amount in (f.get("vat") or {}).items()) or "—"
        verdict = ('<span class="state state-success">reconciled</span>' if c["reconciled"]
                   else f'<span class="state state-failed">{len(c["differences"])} '
                        'difference(s)</span>')
        out.append(
            f'<tr data-tenant="{escape(c["tenant"])}" data-day="{escape(c["day"])}" '
            f'data-reconciled="{str(c["reconciled"]).lower()}"><td>{escape(c["tenant"])}</td>'
            f'<td>{escape(c["day"])}</td><td>{escape(str(f.get("orders", "")))}</td>'
            f'<td>{escape(str(f.get("revenue_incl", "")))}</td><td>{vat}</td>'
            f'<td>{escape(str(f.get("refunds", "")))} ({escape(str(f.get("refunds_incl", "")))})</td>'
            f'<td>{escape(str(f.get("books_sales", "")))} / {escape(str(f.get("books_refunds", "")))}</td>'
            f'<td>{verdict}</td></tr>')
        for d in c["differences"]:
            search = "?" + urlencode({"q": d["source_id"]}) + "#search"
            out.append(
                f'<tr class="difference" data-tenant="{escape(c["tenant"])}" '
                f'data-source-id="{escape(d["source_id"])}"><td></td><td colspan="7">'
                f'{escape(d["kind"])} <a href="{escape(search)}">{escape(d["number"])}</a>: '
                f'{escape(d["problem"].replace("_", " "))} — shop {escape(d["shop_total"])}, '
                f'books {escape(d["books_total"] or "—")} (difference {escape(d["difference"])})'
                f'<br><small class="muted">{escape(d["detail"])}</small></td></tr>')
    out.append("</tbody></table></section>")
    return "".join(out)


def reconciliation_csv(checks: Sequence[dict[str, Any]], part: str) -> str:
    """``part="days"``: one row per tenant and day, VAT per rate in columns of their own;
    ``part="differences"``: one row per difference."""
    buffer = io.StringIO()
    if part == "differences":
        from koppel.domain.reconcile import CSV_FIELDS

        writer = csv.DictWriter(buffer, fieldnames=["tenant", *CSV_FIELDS], extrasaction="ignore")
        writer.writeheader()
        for c in checks:
            for d in c["differences"]:
                writer.writerow({"tenant": c["tenant"], **d})
        return buffer.getvalue()
    rates = sorted({r for c in checks for r in (c["figures"].get("vat") or {})},
                   key=lambda r: -float(r))
    fields = ["tenant", "day", "orders", "revenue_excl", "revenue_incl",
              *[f"vat_{r}" for r in rates], "shipping_incl", "fees_incl", "refunds",
              "refunds_incl", "refunds_vat", "books_sales", "books_refunds", "differences",
              "reconciled"]
    writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    for c in checks:
        f = c["figures"]
        writer.writerow({**f, "tenant": c["tenant"], "day": c["day"],
                         **{f"vat_{r}": (f.get("vat") or {}).get(r, "0.00") for r in rates},
                         "differences": len(c["differences"]), "reconciled": c["reconciled"]})
    return buffer.getvalue()


def usage_section(usage: dict[str, list[dict[str, Any]]]) -> str:
    out = ['<section id="usage"><h2>API calls against the limits</h2>'
           '<p class="muted">Calls koppel logged in the window ending now, and the busiest such '
           'window in the last 24 hours.</p>']
    for tenant, windows in usage.items():
        out.append(f'<h3>Tenant <code>{escape(tenant)}</code></h3><table class="usage"><thead><tr>'
                   '<th>API</th><th>Window</th><th>Now</th><th>Peak</th><th>Limit</th></tr></thead><tbody>')
        for w in windows:
            share = min(w["peak"] / w["limit"], 1.0) if w["limit"] else 0
            level = "high" if share >= 0.8 else "mid" if share >= 0.5 else "low"
            out.append(
                f'<tr data-tenant="{escape(tenant)}" data-api="{escape(w["api"])}" '
                f'data-window="{escape(w["window"])}"><td>{escape(API_NAMES.get(w["api"], w["api"]))}</td>'
                f'<td>{escape(w["window"])}</td><td data-metric="current">{w["current"]}</td>'
                f'<td data-metric="peak"><span class="meter"><span class="fill {level}" '
                f'style="width:{share * 100:.1f}%"></span></span> {w["peak"]}</td>'
                f'<td>{w["limit"]}</td></tr>')
        out.append("</tbody></table>")
    out.append("</section>")
    return "".join(out)


def failures_section(failures: Sequence[dict[str, Any]], links: Links,
                     skippable: set[str] = frozenset()) -> str:
    out = _listing("failures", "Failed records waiting for a retry", failures)
    if not failures:
        return "".join(out)
    out.append('<table class="failures"><thead><tr><th>Tenant</th><th>Flow</th><th>Record</th>'
               '<th>Reason</th><th>Attempts</th><th>Last failed</th><th>Task log</th><th></th>'
               '</tr></thead><tbody>')
    for f in failures:
        log = (_a(links.task(f["dag_id"], f["run_id"], f["task_id"], f["map_index"]),
                  f'{f["task_id"]} in {f["run_id"]}')
               if f["run_id"] and f["task_id"] else '<span class="muted">—</span>')
        search = "?" + urlencode({"q": f["source_id"]}) + "#search"
        skip = ""
        if f["dag_id"] in skippable:
            skip = (f'<button class="skip" data-tenant="{escape(f["tenant"])}" '
                    f'data-flow="{escape(f["flow"])}" data-record="{escape(f["source_id"])}">'
                    'Skip…</button><span class="skip-result" role="status"></span>')
        out.append(
            f'<tr data-tenant="{escape(f["tenant"])}" data-flow="{escape(f["flow"])}" '
            f'data-source-id="{escape(f["source_id"])}"><td>{escape(f["tenant"])}</td>'
            f'<td>{escape(f["flow"])}</td><td><a href="{escape(search)}">{escape(f["source_id"])}</a></td>'
            f'<td class="reason">{escape(f["reason"] or "")}</td><td>{f["attempts"]}</td>'
            f'<td>{_time(f["last_failed"])}</td><td>{log}</td><td>{skip}</td></tr>')
    out.append("</tbody></table></section>")
    return "".join(out)


def search_section(query: str, records: Sequence[dict[str, Any]] | None, links: Links,
                   tenant: str | None, days: int) -> str:
    hidden = (f'<input type="hidden" name="tenant" value="{escape(tenant)}">' if tenant else "")
    out = ['<section id="search"><h2>Find a record</h2>'
           '<form method="get" action="#search" class="search">'
           f'<input type="search" name="q" value="{escape(query)}" '
           'placeholder="id, order or document number, SKU, e-mail" aria-label="record">'
           f'<input type="hidden" name="days" value="{days}">{hidden}'
           '<button type="submit">Search</button></form>']
    if records is None:
        out.append("</section>")
        return "".join(out)
    if not records:
        out.append(f'<p class="muted" id="no-record">No record with id, number, SKU or e-mail '
                   f'<code>{escape(query)}</code>.</p></section>')
        return "".join(out)
    for rec in records:
        refs = ", ".join(f'{escape(x["target_type"])} <code>{escape(x["target_id"])}</code> '
                         f'({escape(x["state"])})' for x in rec["xrefs"]) or "none"
        out.append(
            f'<div class="record" data-tenant="{escape(rec["tenant"])}" '
            f'data-source-id="{escape(rec["source_id"])}"><h3>{escape(rec["source_type"])} '
            f'<code>{escape(rec["source_id"])}</code> · tenant <code>{escape(rec["tenant"])}</code></h3>'
            f'<p>Linked to: {refs}</p><ol class="path">')
        for st in rec["steps"]:
            target = (f' → {escape(st["target_type"] or "")} <code>{escape(st["target_id"])}</code>'
                      if st["target_id"] else "")
            reason = f' <span class="reason">{escape(st["reason"])}</span>' if st["reason"] else ""
            task = (_a(links.task(st["dag_id"], st["run_id"], st["task_id"], st["map_index"]),
                       st["task_id"]) if st["task_id"] else "")
            out.append(
                f'<li data-action="{escape(st["action"])}">{_time(st["at"])} · '
                f'{escape(st["flow"])} run {_a(links.run(st["dag_id"], st["run_id"]), st["run_id"])}: '
                f'read <code>{escape(rec["source_id"])}</code> → mapped ({task or "step"}) → '
                f'<span class="chip chip-{escape(st["action"])}">{escape(st["action"])}</span>'
                f'{target}{reason}</li>')
        out.append("</ol></div>")
    out.append("</section>")
    return "".join(out)


def page(*, user: str, csrf: str, base: str, body: str, tenants: Sequence[str],
         tenant: str | None, days: int) -> str:
    options = ['<option value="">all tenants</option>'] + [
        f'<option value="{escape(t)}"{" selected" if t == tenant else ""}>{escape(t)}</option>'
        for t in tenants]
    day_options = "".join(f'<option value="{d}"{" selected" if d == days else ""}>{d} days</option>'
                          for d in (7, 14, 30, 90))
    return (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f'<meta name="koppel-csrf" content="{escape(csrf)}">'
        f'<meta name="koppel-base" content="{escape(base)}">'
        "<title>koppel dashboard</title>"
        f'<link rel="stylesheet" href="{escape(base)}/static/dashboard.css"></head><body>'
        '<header><h1>koppel</h1><span class="muted">Lightspeed eCom ⇄ QuickBooks Online</span>'
        '<form method="get" class="filters">'
        f'<select name="tenant" aria-label="tenant">{"".join(options)}</select>'
        f'<select name="days" aria-label="days">{day_options}</select>'
        '<button type="submit">Show</button></form>'
        f'<span class="user">signed in as <b>{escape(user)}</b></span></header>'
        f"<main>{body}</main>"
        f'<script src="{escape(base)}/static/dashboard.js" defer></script></body></html>')
