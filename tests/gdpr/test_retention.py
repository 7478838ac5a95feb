"""Retention: a run of koppel_retention removes the tenant's activity rows, task log
files and XComs older than its ``retention_days`` (10 here) and keeps recent ones, other
tenants' rows and other DAGs' logs."""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import pytest
from sqlalchemy import select, update

from conftest import RETENTION_DAYS, retention_dag

pytestmark = pytest.mark.e2e

OLD = dt.timedelta(days=RETENTION_DAYS + 2)  # past the tenant's retention, within 30 days


def _log_file(folder: Path, dag_id: str, run: str, age: dt.timedelta) -> Path:
    path = folder / f"dag_id={dag_id}" / f"run_id={run}" / "task_id=extract" / "attempt=1.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"event": "koppel extract: read=3"}\n')
    stamp = time.time() - age.total_seconds()
    os.utime(path, (stamp, stamp))
    return path


def test_retention_removes_what_is_past_the_tenants_retention_and_keeps_the_rest(synced):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from koppel.store.schema import activity, staged_payload
    from koppel.store.state import ActivityEntry, StateStore

    store, tenant = StateStore(), synced.tenant
    now = dt.datetime.now(dt.timezone.utc)
    old_run, new_run = synced.runs["stock"], synced.runs["orders"]

    # activity: the stock run's rows become old; another tenant's old row is not ours
    store.record_activity(tenant="gdpr_other_tenant", flow="orders", run_id="r", direction="x",
                          entries=[ActivityEntry("order", "1", "created")])
    store.stage("gdpr-old-run", "extract", 0, [{"source_id": "1"}])
    with store.engine.begin() as conn:
        conn.execute(update(activity).where(activity.c.tenant.in_([tenant, "gdpr_other_tenant"]),
                                            activity.c.flow == "stock")
                     .values(created_at=now - OLD))
        conn.execute(update(activity).where(activity.c.tenant == "gdpr_other_tenant")
                     .values(created_at=now - OLD))
        conn.execute(update(staged_payload).where(staged_payload.c.run_key == "gdpr-old-run")
                     .values(created_at=now - OLD))
        stock_rows = conn.execute(select(activity.c.id).where(
            activity.c.tenant == tenant, activity.c.flow == "stock")).all()
        recent_rows = conn.execute(select(activity.c.id).where(
            activity.c.tenant == tenant, activity.c.flow != "stock")).all()
    assert stock_rows and recent_rows

    # task logs: old and recent files of the tenant's DAGs; old files of DAGs not the tenant's
    folder = Path(os.environ["AIRFLOW__LOGGING__BASE_LOG_FOLDER"])
    old_logs = [_log_file(folder, f"stock__{tenant}", "old_a", OLD),
                _log_file(folder, f"orders__{tenant}", "old_b", OLD)]
    kept_logs = [_log_file(folder, f"orders__{tenant}", "recent", dt.timedelta(days=1)),
                 _log_file(folder, "someone_elses_dag", "old", OLD),
                 _log_file(folder, "koppel_retention", "old", OLD)]  # 30 days for its own
    kept_logs += [p for p in (folder / f"dag_id=customers__{tenant}").rglob("*.log")]

    # XComs: the stock run's become old
    with create_session() as session:
        session.execute(update(XComModel).where(XComModel.dag_id == old_run.dag_id,
                                                XComModel.run_id == old_run.run_id)
                        .values(timestamp=now - OLD))
        xcoms = lambda run: session.execute(select(XComModel.key).where(  # noqa: E731
            XComModel.dag_id == run.dag_id, XComModel.run_id == run.run_id)).all()
        old_xcoms, new_xcoms = len(xcoms(old_run)), len(xcoms(new_run))
    assert old_xcoms and new_xcoms

    run = retention_dag().test()
    assert run.state == "success"

    with store.engine.connect() as conn:
        ids = {r.id for r in conn.execute(select(activity.c.id).where(activity.c.tenant == tenant))}
        other = conn.execute(select(activity.c.id).where(
            activity.c.tenant == "gdpr_other_tenant")).all()
        staged = conn.execute(select(staged_payload.c.id).where(
            staged_payload.c.run_key == "gdpr-old-run")).all()
    assert not ids & {r.id for r in stock_rows}
    assert {r.id for r in recent_rows} <= ids
    assert other, "a tenant without a tenant file is not this DAG's to purge"
    assert staged == []
    assert [p for p in old_logs if p.exists()] == []
    assert [p for p in kept_logs if not p.exists()] == []
    assert not (folder / f"dag_id=stock__{tenant}" / "run_id=old_a").exists()
    with create_session() as session:
        xcoms = lambda run: session.execute(select(XComModel.key).where(  # noqa: E731
            XComModel.dag_id == run.dag_id, XComModel.run_id == run.run_id)).all()
        assert xcoms(old_run) == []
        assert len(xcoms(new_run)) == new_xcoms
    print(f"\nremoved {len(stock_rows)} activity rows, {len(old_logs)} log files, {old_xcoms} "
          f"XComs; kept {len(recent_rows)} rows, {len(kept_logs)} log files, {new_xcoms} XComs")
