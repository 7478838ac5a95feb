"""The dashboard page: the view data each section needs, rendered by the Jinja2
templates in ``koppel/web/templates/`` (``dashboard.html`` and its ``_*.html`` parts)
with autoescaping on (``koppel.web.templating``), so every value is escaped by Jinja2.
The page works without JavaScript except for the retry and skip buttons (JSON POSTs
with the CSRF header). The reconciliation CSV is built here too."""

from __future__ import annotations

import csv
import io
from typing import Any, Sequence
from urllib.parse import quote

from koppel.web.chart import legend, ordered_actions, stacked_days
from koppel.web.limits import API_NAMES
from koppel.web.templating import render

DAY_CHOICES = (7, 14, 30, 90)


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


def chips(counts: dict[str, int]) -> list[tuple[str, int]]:
    """``(action, n)`` of ``counts`` in display order."""
    return [(a, counts[a]) for a in ordered_actions(counts)]


def _flow_state(s: dict[str, Any]) -> str | None:
    """The state of the flow's last koppel run; without one, of Airflow's latest run."""
    if s.get("airflow_state"):
        return s["airflow_state"]
    latest = s.get("latest_airflow_run")
    return latest["state"] if latest and not s.get("last_run") else None


def flow_groups(summaries: Sequence[dict[str, Any]], daily: dict[str, list],
                triggerable: set[str]) -> list[dict[str, Any]]:
    """The flows section's data: per tenant (in the summaries' order) a row per flow and
    the legend of the actions its charts draw."""
    groups = []
    for tenant in dict.fromkeys(s["tenant"] for s in summaries):
        rows, seen = [], set()
        for s in (s for s in summaries if s["tenant"] == tenant):
            series = daily.get(f'{tenant}/{s["flow"]}', [])
            seen.update(a for d in series for a in d["counts"])
            last = s["last_run"]
            rows.append({
                "summary": s,
                "state": _flow_state(s),
                "no_run": None if last else (
                    "no record handled yet" if s.get("latest_airflow_run") else "no run yet"),
                "paused": bool(s.get("is_paused")),
                "last_chips": chips(last["counts"]) if last else None,
                "total_chips": chips(s["totals"]),
                "events": s.get("events", 0),
                "retry": bool(s["open_failures"]) and s["dag_id"] in triggerable,
                "chart": stacked_days(series, title=f"{tenant} {s['flow']} records per day"),
            })
        groups.append({"tenant": tenant, "rows": rows, "legend": legend(ordered_actions(seen))})
    return groups


def usage_tables(usage: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per tenant, each API window with its display name and how full its busiest window
    was (``level`` low/mid/high from 50 % and 80 %, ``share`` in percent)."""
    tables = []
    for tenant, windows in usage.items():
        rows = []
        for w in windows:
            share = min(w["peak"] / w["limit"], 1.0) if w["limit"] else 0
            rows.append({**w, "api_name": API_NAMES.get(w["api"], w["api"]),
                         "level": "high" if share >= 0.8 else "mid" if share >= 0.5 else "low",
                         "share": f"{share * 100:.1f}"})
        tables.append({"tenant": tenant, "windows": rows})
    return tables


def dashboard_page(*, user: str, csrf: str, base: str, links: Links,
                   tenants: Sequence[str], tenant: str | None, days: int,
                   airflow_error: str | None, checks: Sequence[dict[str, Any]],
                   flows: Sequence[dict[str, Any]], daily: dict[str, list],
                   triggerable: set[str], flow_failures: Sequence[dict[str, Any]],
                   failures: Sequence[dict[str, Any]], skippable: set[str],
                   usage: dict[str, list[dict[str, Any]]], query: str,
                   records: Sequence[dict[str, Any]] | None) -> str:
    """The whole page: the filters, then the sections (``#reconciliation``, ``#flows``,
    ``#flow-failures``, ``#failures``, ``#usage``, ``#search``)."""
    return render(
        "dashboard.html", user=user, csrf=csrf, base=base, links=links,
        tenants=list(tenants), tenant=tenant, days=days, day_choices=DAY_CHOICES,
        airflow_error=airflow_error, checks=list(checks),
        flow_groups=flow_groups(flows, daily, triggerable),
        flow_failures=list(flow_failures), failures=list(failures), skippable=skippable,
        usage=usage_tables(usage), query=query,
        records=None if records is None else list(records))


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
