"""Every flow ran on the seeded data; no seeded e-mail address, name, address, phone
number or token is in any task log, XCom or row of koppel's state database."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from koppel.privacy import EMAIL, pii_values

pytestmark = pytest.mark.e2e

MIN_LEN = 4  # shorter values ("Jan", "van") would match ordinary words


def _needles(tenant) -> dict[str, re.Pattern]:
    """Seeded personal data (customers and orders: names, e-mails, streets, cities,
    companies, phones…) and every secret and token of the tenant's connections."""
    values: set[str] = set()
    for resource in ("customers", "orders"):
        for record in tenant.shop.list(resource):
            values |= pii_values(record)
            values |= {m.group(0) for m in EMAIL.finditer(json.dumps(record))}
    values = {v for v in values if len(v) >= MIN_LEN}
    assert any("@" in v for v in values) and len(values) > 20, values
    values |= {s for s in tenant.secrets if s}
    return {v: re.compile(rf"(?<!\w){re.escape(v)}(?!\w)") for v in values}


def _hits(text: str, needles: dict[str, re.Pattern]) -> list[str]:
    return [value for value, pattern in needles.items() if pattern.search(text)]


def test_logs_xcoms_and_state_hold_no_personal_data_or_secrets(synced, airflow_home):
    from sqlalchemy import select

    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from koppel.store.engine import get_engine
    from koppel.store.schema import activity, failed_record, staged_payload, xref

    for name, run in synced.runs.items():
        assert run.state == "success", name
    needles = _needles(synced)
    found: dict[str, list[str]] = {}

    # 1. task log files written by Airflow's supervisor (the task-runner run)
    log_folder = Path(os.environ["AIRFLOW__LOGGING__BASE_LOG_FOLDER"])
    files = [p for dag_id in synced.dag_ids()
             for p in (log_folder / f"dag_id={dag_id}").rglob("*") if p.is_file()]
    for path in files:
        for value in _hits(path.read_text(errors="replace"), needles):
            found.setdefault(f"log file {path.relative_to(log_folder)}", []).append(value)
    lines = sum(len(p.read_text(errors="replace").splitlines()) for p in files)

    # 2. what the in-process (dag.test) task runs logged
    captured = synced.captured_output
    for value in _hits(captured, needles):
        found.setdefault("dag.test() output", []).append(value)

    # 3. XComs of the tenant's DAGs in Airflow's metadata database
    with create_session() as session:
        xcoms = session.execute(select(XComModel.dag_id, XComModel.task_id, XComModel.key,
                                       XComModel.value)
                                .where(XComModel.dag_id.in_(synced.dag_ids()))).all()
    for dag_id, task_id, key, value in xcoms:
        for hit in _hits(json.dumps(value, default=str), needles):
            found.setdefault(f"xcom {dag_id}.{task_id}.{key}", []).append(hit)

    # 4. koppel's state database: activity log, xrefs, failed records, staged payloads
    engine = get_engine()
    rows: dict[str, int] = {}
    with engine.connect() as conn:
        for table in (activity, xref, failed_record, staged_payload):
            data = [dict(r._mapping) for r in conn.execute(select(table))]
            rows[table.name] = len(data)
            for row in data:
                for hit in _hits(json.dumps(row, default=str), needles):
                    found.setdefault(f"{table.name} row {row['id']}", []).append(hit)
    tenant_activity = [r for r in synced_activity(engine, synced.tenant)]

    print(f"\nscanned for {len(needles)} seeded values/secrets: {len(files)} task log files "
          f"({lines} lines), {len(captured.splitlines())} lines of dag.test() output, "
          f"{len(xcoms)} XCom rows, state rows {rows} "
          f"({len(tenant_activity)} activity rows of this tenant)")
    assert files and lines, "the task-runner run wrote no task log files"
    assert captured.strip(), "no dag.test() output was captured (run without -s)"
    assert xcoms and tenant_activity
    assert {r["flow"] for r in tenant_activity} >= {"products", "customers", "orders"}
    assert found == {}, found


def synced_activity(engine, tenant):
    from sqlalchemy import select

    from koppel.store.schema import activity

    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(
            select(activity).where(activity.c.tenant == tenant))]


def test_the_scan_would_see_personal_data(synced, tmp_path):
    """The needles and matching above find seeded data when it is there (the scan can
    fail): an unredacted log line and a raw order record both hit."""
    needles = _needles(synced)
    order = next(o for o in synced.shop.list("orders") if o["email"] and o["addressBillingStreet"])
    line = f"customer {order['email']} at {order['addressBillingStreet']}"
    assert {order["email"], order["addressBillingStreet"]} <= set(_hits(line, needles))
    assert _hits(json.dumps(order), needles)
    assert not _hits(f"customer <email> at <redacted>", needles)
