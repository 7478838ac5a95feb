"""Retention and erasure (GDPR) for koppel's own stores, as Airflow operators.

Used by ``dags/koppel_retention.py`` (which only assembles them). Heavy imports happen
inside ``execute``: this module is imported at DAG-parse time.

**Retention** — every tenant has ``settings.retention_days`` (default 30). Older than
that are removed:

- activity-log rows of the tenant, and staged payloads (``StateStore.purge_older_than``);
- task log files of the tenant's DAGs (``<flow>__<tenant>``) under Airflow's
  ``[logging] base_log_folder`` (file modification time; the default log file layout
  ``dag_id=<dag_id>/…`` is assumed). This DAG's own logs keep ``DEFAULT_RETENTION_DAYS``;
  other DAGs' logs are not koppel's and are left alone. Remote task logs (S3, GCS, …)
  are not handled: give their bucket a lifecycle rule with the same age;
- XCom rows of the tenant's DAGs, through Airflow's supported maintenance command
  ``airflow db clean --tables xcom --dag-ids … --clean-before-timestamp … --skip-archive``
  (no archive table: an archive would keep what retention is meant to remove). See
  :class:`PurgeXComsOperator` for why a subprocess and which database it reaches.

Cross-references (``koppel_xref``) are the sync's memory — without them an order would
be booked twice — and are kept for as long as the tenant syncs; failed records are
pending retries and stay until resolved.

**Erasure** (art. 17) — a manual run with the params ``tenant`` and ``customer_id`` (a
Lightspeed customer id) removes every trace of that data subject from koppel's stores.
"Every trace" means: the subject's records as koppel knows them — the customer, their
orders (``orders.json?customer=<id>``, plus ``order_ids`` given by hand for guest
orders or a customer already deleted in Lightspeed), the credits (refunds) of those
orders, and the QuickBooks documents the reverse flow turned into those orders (found
through the cross-references) — and for each of them: activity rows, cross-references,
failed records, staged payloads (also any staged chunk holding the subject's e-mail
address), and mentions of their ids in other records' activity reasons. Koppel's logs
and XComs hold no personal data by design (ids and counts only; see koppel.privacy and
tests/gdpr), and age out with retention. One activity row (action ``erased``, flow
``erasure``) records that the request was carried out, with counts only — no id of the
subject.

Not koppel's to delete: the customer and orders in Lightspeed and the customers and
documents in QuickBooks Online belong to the shop's own administration (and bookkeeping
records fall under statutory retention). The shop erases or anonymises those itself; if
the customer stays in Lightspeed, a later sync will bring them back into koppel's
stores. The run's conf (the customer id) stays in Airflow's ``dag_run`` table until
Airflow's own ``db clean`` removes old runs.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterable

from airflow.sdk import BaseOperator

log = logging.getLogger(__name__)

DEFAULT_RETENTION_DAYS = 30
RETENTION_DAG_ID = "koppel_retention"
# An Airflow connection (any SQLAlchemy-capable type) to Airflow's metadata database, for
# ``airflow db clean``: Airflow 3 points a task's environment at a dummy database URL.
METADATA_DB_CONN_ID = "airflow_metadata_db"
_BLOCKED_DB_URL = "airflow-db-not-allowed"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


# -- which tenants, DAGs and retention periods --------------------------------------------
def retention_by_tenant(directory: Path | None = None) -> dict[str, int]:
    """tenant id → retention days, from the valid tenant files (read at run time)."""
    from koppel.flows.registry import mappings_dir
    from koppel.tenants.loader import load_tenants

    tenant_set = load_tenants(directory or mappings_dir())
    return {t.tenant: int(getattr(t.settings, "retention_days", DEFAULT_RETENTION_DAYS))
            for t in tenant_set.tenants}


def tenant_dag_ids(tenant_id: str) -> list[str]:
    """Every DAG id koppel makes (or made) for a tenant: ``<flow>__<tenant>``, and the
    daily reconciliation ``reconcile__<tenant>``."""
    from koppel.tenants.model import FLOW_NAMES

    return [f"{flow}__{tenant_id}" for flow in (*FLOW_NAMES, "reconcile")]


def retention_by_dag(retention: dict[str, int]) -> dict[str, int]:
    """DAG id → retention days: the tenants' DAGs, and this maintenance DAG itself."""
    days = {dag_id: n for tenant, n in retention.items() for dag_id in tenant_dag_ids(tenant)}
    days[RETENTION_DAG_ID] = DEFAULT_RETENTION_DAYS
    return days


# -- the purges ----------------------------------------------------------------------------
def purge_state(retention: dict[str, int], now: dt.datetime, store: Any = None) -> dict[str, Any]:
    from koppel.store.state import StateStore

    store = store or StateStore()
    out: dict[str, Any] = {}
    for tenant, days in sorted(retention.items()):
        out[tenant] = store.purge_older_than(tenant, now - dt.timedelta(days=days))
    return out


def purge_task_logs(base_folder: Path, days_by_dag: dict[str, int],
                    now: dt.datetime) -> dict[str, int]:
    """Delete task log files older than their DAG's retention; drop emptied folders."""
    counts = {"files_deleted": 0, "files_kept": 0}
    if not base_folder.is_dir():
        return counts
    for dag_dir in sorted(base_folder.glob("dag_id=*")):
        days = days_by_dag.get(dag_dir.name[len("dag_id="):])
        if days is None or not dag_dir.is_dir():
            continue  # not a koppel DAG
        cutoff = (now - dt.timedelta(days=days)).timestamp()
        for path in sorted(dag_dir.rglob("*")):
            if not path.is_file():
                continue
            if path.stat().st_mtime < cutoff:
                path.unlink()
                counts["files_deleted"] += 1
            else:
                counts["files_kept"] += 1
        for folder in sorted((p for p in dag_dir.rglob("*") if p.is_dir()),
                             key=lambda p: len(p.parts), reverse=True):
            if not any(folder.iterdir()):
                folder.rmdir()
        if not any(dag_dir.iterdir()):
            dag_dir.rmdir()
    return counts


def xcom_clean_commands(days_by_dag: dict[str, int], now: dt.datetime) -> list[list[str]]:
    """One ``airflow db clean`` per distinct retention period."""
    groups: dict[int, list[str]] = {}
    for dag_id, days in sorted(days_by_dag.items()):
        groups.setdefault(days, []).append(dag_id)
    return [[sys.executable, "-m", "airflow", "db", "clean", "--tables", "xcom",
             "--clean-before-timestamp", (now - dt.timedelta(days=days)).isoformat(),
             "--dag-ids", ",".join(dag_ids), "--skip-archive", "--yes",
             "--error-on-cleanup-failure"]
            for days, dag_ids in sorted(groups.items())]


def metadata_db_env(conn_id: str = METADATA_DB_CONN_ID) -> dict[str, str]:
    """The environment for ``airflow db clean``: the metadata database comes from the
    connection ``conn_id`` if there is one, else from Airflow's own configuration —
    unless this is a task process whose database URL Airflow blocked."""
    from koppel.store.engine import _url_from_connection

    env = dict(os.environ)
    url = _url_from_connection(conn_id)
    if url:
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = url
        env.pop("AIRFLOW__CORE__SQL_ALCHEMY_CONN", None)
    elif env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "").startswith(_BLOCKED_DB_URL):
        raise RuntimeError(
            f"Airflow blocks the metadata database in task processes; create the connection "
            f"{conn_id!r} (the metadata database URL) for the XCom retention to run "
            "`airflow db clean`, or run `airflow db clean --tables xcom` outside Airflow")
    return env


# -- erasure ---------------------------------------------------------------------------------
def subject_sources(tenant: Any, customer_id: str, extra_order_ids: Iterable[str],
                    store: Any, hook: Any = None) -> tuple[dict[str, set[str]], set[str]]:
    """The subject's records as koppel knows them: ``{source_type: ids}`` and their
    e-mail addresses (to find staged payloads)."""
    from koppel.flows.orders_reverse_lightspeed import ORDER
    from koppel.flows.refunds_source import read_credits
    from koppel.hooks.errors import LightspeedNotFound
    from koppel.hooks.lightspeed import LightspeedHook

    hook = hook or LightspeedHook(tenant.connections.lightspeed)
    emails: set[str] = set()
    try:
        customer = hook.get_customer(int(customer_id))
        if getattr(customer, "email", None):
            emails.add(customer.email)
    except LightspeedNotFound:
        log.warning("erasure: the customer no longer exists in Lightspeed; only orders "
                    "given in order_ids are erased besides the customer itself")
    orders = {str(o) for o in extra_order_ids}
    for order in hook.iter_orders(customer=int(customer_id)):
        if order.customer_id is not None and str(order.customer_id) != str(customer_id):
            continue  # a shop ignoring the filter
        orders.add(str(order.id))
        if getattr(order, "email", None):
            emails.add(order.email)
    refunds = {str(c["id"]) for o in sorted(orders) for c in read_credits(hook, int(o))}
    reverse = {i for t, i in store.sources_by_target(tenant.tenant, ORDER, orders)
               if t == "qbo:document"}
    return ({"customer": {str(customer_id)}, "order": orders, "refund": refunds,
             "qbo:document": reverse}, emails)


# -- operators -------------------------------------------------------------------------------
class _MaintenanceOperator(BaseOperator):
    ui_color = "#f4ecf7"

    def pre_execute(self, context) -> Any:
        from koppel.privacy import install_log_redaction

        install_log_redaction()
        return super().pre_execute(context)


class PurgeStateOperator(_MaintenanceOperator):
    """Activity-log rows and staged payloads older than each tenant's retention."""

    def execute(self, context) -> dict[str, Any]:
        retention = retention_by_tenant()
        out = purge_state(retention, utcnow())
        for tenant, counts in out.items():
            log.info("retention %s (%d days): %s", tenant, retention[tenant], counts)
        return out


class PurgeTaskLogsOperator(_MaintenanceOperator):
    """Task log files of koppel's DAGs older than their tenant's retention."""

    def execute(self, context) -> dict[str, int]:
        from airflow.sdk.configuration import conf

        base = Path(conf.get("logging", "base_log_folder")).expanduser()
        counts = purge_task_logs(base, retention_by_dag(retention_by_tenant()), utcnow())
        log.info("retention: task logs under %s: %s", base, counts)
        return counts


class PurgeXComsOperator(_MaintenanceOperator):
    """XComs of koppel's DAGs older than their tenant's retention.

    Tasks may not use Airflow's ORM (Airflow 3), and the Execution API cannot list other
    runs' XComs, so this runs Airflow's own maintenance command, ``airflow db clean``,
    in a subprocess — the supported way to purge metadata tables. Under a real task
    runner Airflow replaces the task's database URL by a dummy one, so the command needs
    the connection ``airflow_metadata_db`` (the metadata database URL); without it the
    task fails and says so. Where workers must not hold those credentials, run
    ``airflow db clean --tables xcom --skip-archive`` from a scheduled job outside
    Airflow instead and drop this task."""

    def __init__(self, *, metadata_db_conn_id: str = METADATA_DB_CONN_ID,
                 timeout: float = 600, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.metadata_db_conn_id = metadata_db_conn_id
        self.timeout = timeout

    def execute(self, context) -> dict[str, Any]:
        env = metadata_db_env(self.metadata_db_conn_id)
        commands = xcom_clean_commands(retention_by_dag(retention_by_tenant()), utcnow())
        for command in commands:
            done = subprocess.run(command, env=env, capture_output=True, text=True,
                                  timeout=self.timeout)
            if done.returncode != 0:
                tail = (done.stderr or done.stdout or "")[-2000:]
                raise RuntimeError(f"airflow db clean failed ({done.returncode}): {tail}")
            log.info("retention: xcom rows before %s of %d DAG(s) cleaned",
                     command[command.index("--clean-before-timestamp") + 1],
                     len(command[command.index("--dag-ids") + 1].split(",")))
        return {"commands": len(commands)}


class EraseDataSubjectOperator(_MaintenanceOperator):
    """Erases every trace of one Lightspeed customer from koppel's stores (params
    ``tenant``, ``customer_id``, ``order_ids``); skipped when no customer is given."""

    def execute(self, context) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowSkipException

        from koppel.flows.registry import load_tenant
        from koppel.store.state import ActivityEntry, StateStore

        params = context.get("params") or {}
        customer_id = params.get("customer_id")
        if customer_id in (None, ""):
            raise AirflowSkipException("no erasure requested (no customer_id)")
        if not params.get("tenant"):
            raise ValueError("an erasure needs the tenant as well as the customer_id")
        tenant = load_tenant(str(params["tenant"]))
        store = StateStore()
        sources, emails = subject_sources(tenant, str(customer_id),
                                          params.get("order_ids") or [], store)
        counts = store.erase_sources(tenant.tenant, sources, emails=emails)
        found = {t: len(ids) for t, ids in sources.items()}
        store.record_activity(
            tenant=tenant.tenant, flow="erasure", run_id=context["run_id"],
            direction="lightspeed_to_quickbooks", task_id=self.task_id,
            entries=[ActivityEntry("erasure_request", context["run_id"][:64], "erased",
                                   reason="data subject erased on request",
                                   details={"records": found, "deleted": counts})])
        log.info("erasure for tenant %s: records %s, deleted %s", tenant.tenant, found, counts)
        return {"tenant": tenant.tenant, "records": found, "deleted": counts}
