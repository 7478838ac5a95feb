"""The ``reconcile__<tenant>`` DAG: every morning, yesterday's sales, VAT and refunds of
the shop against what QuickBooks holds now; on demand, any range of days (Params
``first_day``/``last_day``). See :mod:`koppel.flows.reconcile` for what it reads and keeps.

A day that does not reconcile fails the run (Airflow's own "red", the tenant's alerts
with the differences in the message); the differences stay on the dashboard's
reconciliation view and in its CSV. Light at parse time: the work is imported when the
task runs."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import Any

from airflow.sdk import DAG, BaseOperator, Param

FLOW = "reconcile"
SCHEDULE = "0 6 * * *"  # 06:00 in the tenant's time zone: the day before is complete
_DATE = r"^\d{4}-\d{2}-\d{2}$"


class ReconcileOperator(BaseOperator):
    """Reconciles the run's days for one tenant; fails when a day does not reconcile."""

    ui_color = "#e3f1df"

    def __init__(self, *, tenant: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tenant = tenant

    def execute(self, context) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from koppel.flows.base import FlowRun
        from koppel.flows.reconcile import Reconciliation, ReconcileError, day_range, summary
        from koppel.flows.registry import load_tenant

        tenant = load_tenant(self.tenant)
        params = dict(context.get("params") or {})
        try:
            first, last = day_range(params, context.get("data_interval_start"),
                                    context.get("data_interval_end"),
                                    getattr(tenant.settings, "timezone", None) or "Europe/Amsterdam")
        except ReconcileError as exc:
            raise AirflowFailException(f"reconcile {self.tenant}: {exc}") from exc
        run = FlowRun(tenant=tenant, flow=FLOW, run_id=context["run_id"], params=params)
        work = Reconciliation(run, first, last)
        report = work.report()
        work.record(report)
        days = [d.to_dict() for d in report.days]
        self.log.info("reconcile %s %s … %s: %d day(s), %d reconciled, %d difference(s); "
                      "API calls %s", self.tenant, first, last, len(days),
                      sum(d["reconciled"] for d in days), len(report.differences),
                      run.api_calls())
        if not report.reconciled:
            text = summary(report)
            self.log.warning("days that do not reconcile:\n%s", text)
            raise AirflowFailException(
                f"{len(report.unreconciled_days())} day(s) do not reconcile for tenant "
                f"{self.tenant} ({len(report.differences)} difference(s)):\n{text}")
        return {"first_day": first.isoformat(), "last_day": last.isoformat(),
                "days": len(days), "differences": 0}


def build_reconcile_dag(tenant: Any) -> DAG:
    from koppel.alerts import notifiers_for
    from koppel.flows.dag import _schedule, attach_params, pool_name

    tenant_id = tenant.tenant
    timezone = getattr(tenant.settings, "timezone", None) or "Europe/Amsterdam"
    import pendulum

    start = pendulum.datetime(2024, 1, 1, tz=timezone)
    default_args: dict[str, Any] = {
        "owner": "koppel", "retries": getattr(tenant.settings, "retries", 3),
        "retry_delay": dt.timedelta(minutes=5),
    }
    callbacks = notifiers_for(tenant, FLOW)
    if callbacks:
        default_args["on_failure_callback"] = callbacks
    with DAG(
        dag_id=f"{FLOW}__{tenant_id}",
        description=f"Daily reconciliation of shop and books — tenant {tenant_id}",
        schedule=_schedule(SCHEDULE, start),
        start_date=start,
        catchup=False,
        max_active_runs=1,
        tags=["koppel", FLOW, f"tenant:{tenant_id}"],
        default_args=default_args,
        doc_md=(f"### reconcile for tenant `{tenant_id}`\n\n{__doc__}"),
    ) as dag:
        ReconcileOperator(task_id="reconcile", tenant=tenant_id,
                          pool=pool_name(tenant_id, "lightspeed"))
    attach_params(dag, _params().for_dag())
    return dag


@lru_cache(maxsize=1)
def _params():
    """The reconciliation's Params, checked once (see ``koppel.flows.dag.CheckedParams``)."""
    from koppel.flows.dag import CheckedParams

    return CheckedParams({
        "first_day": Param(None, type=["null", "string"], pattern=_DATE, title="First day",
                           description="Reconcile from this day (YYYY-MM-DD, the "
                           "tenant's time zone); default: the run's day."),
        "last_day": Param(None, type=["null", "string"], pattern=_DATE, title="Last day",
                          description="...to this day (at most 92 days)."),
    })
