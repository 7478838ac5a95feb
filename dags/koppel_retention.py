"""koppel's GDPR maintenance: retention and erasure, for all tenants in one DAG.

One DAG, not one per tenant: task logs and XComs live in Airflow-wide stores (the base
log folder, the xcom table) that one daily pass cleans for every tenant with that
tenant's ``retention_days``, and an erasure request names its tenant as a param. Tenant
files are read when the tasks run, so this file parses in milliseconds and needs no
change when a tenant is added. The logic lives in ``koppel.retention``; this file only
assembles it."""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, Param

from koppel.retention import (
    RETENTION_DAG_ID,
    EraseDataSubjectOperator,
    PurgeStateOperator,
    PurgeTaskLogsOperator,
    PurgeXComsOperator,
)

DOC = """### koppel retention and erasure (GDPR)

**Daily**: removes what is older than each tenant's `settings.retention_days` (default
30): activity-log rows and staged payloads (koppel's state database), the task log files
of the tenant's DAGs (`<flow>__<tenant>`, under `[logging] base_log_folder`) and their
XComs (`airflow db clean --tables xcom --skip-archive`; needs the connection
`airflow_metadata_db` on workers, as Airflow 3 hides the metadata database from tasks).

**Erasure on request**: trigger manually with `tenant` and `customer_id` (a Lightspeed
customer id; `order_ids` for guest orders or a customer already deleted in Lightspeed).
Removes every trace of that data subject from koppel's own stores: activity rows,
cross-references, failed records and staged payloads of the customer, their orders, the
credits of those orders and the QuickBooks documents the reverse flow turned into those
orders, plus mentions of those ids in other rows' reasons. One `erased` activity row
records that the request was done (counts only). Logs and XComs hold no personal data.

**Not done here**: the customer and orders in Lightspeed and the customers and
documents in QuickBooks Online are the shop's own records, not koppel's to delete (and
bookkeeping is subject to statutory retention); the shop erases or anonymises them in
those systems. Run the erasure after that, or the next sync brings the customer back.
"""

with DAG(
    dag_id=RETENTION_DAG_ID,
    description="GDPR: purge activity, task logs and XComs past each tenant's retention; "
                "erase one data subject on request",
    schedule="@daily",
    start_date=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["koppel", "maintenance", "gdpr"],
    default_args={"owner": "koppel", "retries": 1, "retry_delay": dt.timedelta(minutes=5)},
    params={
        "tenant": Param(None, type=["null", "string"], title="Tenant",
                        description="Erasure: the tenant whose shop the customer is of."),
        "customer_id": Param(None, type=["null", "string", "integer"], title="Customer id",
                             description="Erasure: the Lightspeed customer id of the data "
                             "subject. Empty: no erasure, retention only."),
        "order_ids": Param([], type="array", items={"type": ["string", "integer"]},
                           title="Order ids", description="Erasure: further Lightspeed "
                           "order ids of the subject (guest orders)."),
    },
    doc_md=DOC,
) as dag:
    EraseDataSubjectOperator(task_id="erase_data_subject")
    PurgeStateOperator(task_id="purge_activity")
    PurgeTaskLogsOperator(task_id="purge_task_logs")
    PurgeXComsOperator(task_id="purge_xcoms")
