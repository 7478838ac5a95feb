"""Fixtures for the dashboard tests: a seeded activity log (two tenants, several flows and
runs, spread over days) and the figures the dashboard must show for it, computed from the
seed itself rather than through the dashboard's queries; Airflow's own JWTs and a fake
Airflow REST API served over real HTTP."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from fastapi import FastAPI, Request
from sqlalchemy import update

from koppel.sandbox.server import SandboxServer
from koppel.store.engine import get_engine
from koppel.store.schema import activity
from koppel.store.state import ActivityEntry, StateStore

# "Now" for the app under test; the seeded runs are placed relative to it.
NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.timezone.utc)


@dataclass
class SeedRun:
    tenant: str
    flow: str
    run_id: str
    at: dt.datetime
    entries: list[tuple[str, ActivityEntry]]  # (task_id, entry)
    direction: str = "lightspeed_to_quickbooks"


@dataclass
class Seeded:
    runs: list[SeedRun]
    failed: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)

    def totals(self, tenant: str, flow: str) -> Counter:
        return Counter(e.action for r in self.runs if (r.tenant, r.flow) == (tenant, flow)
                       for _, e in r.entries)

    def last_run(self, tenant: str, flow: str) -> SeedRun:
        return max((r for r in self.runs if (r.tenant, r.flow) == (tenant, flow)),
                   key=lambda r: r.at)

    def daily(self, tenant: str, flow: str) -> dict[str, Counter]:
        days: dict[str, Counter] = defaultdict(Counter)
        for r in self.runs:
            if (r.tenant, r.flow) == (tenant, flow):
                for _, e in r.entries:
                    days[r.at.date().isoformat()][e.action] += 1
        return days

    def calls(self, tenant: str, api: str, since: dt.datetime) -> int:
        """API calls after ``since`` attributed the way the dashboard documents it."""
        total = 0
        for r in self.runs:
            if r.tenant != tenant or r.at <= since:
                continue
            for task_id, e in r.entries:
                split = e.details.get("api_calls")
                if isinstance(split, dict):
                    total += split.get(api, 0)
                else:
                    source = "lightspeed" if r.direction == "lightspeed_to_quickbooks" \
                        else "quickbooks"
                    if (api == source) == (task_id == "enrich"):
                        total += e.api_calls
        return total


def _order(i: int, action: str, task: str = "load", **kw) -> tuple[str, ActivityEntry]:
    target = kw.pop("target_id", None if action in ("failed", "skipped") else str(9000 + i))
    return task, ActivityEntry(source_type="order", source_id=str(100 + i), action=action,
                               target_type=None if target is None else "Invoice",
                               target_id=target, amount=Decimal("12.10") * (i % 5 + 1),
                               api_calls=kw.pop("api_calls", 3), **kw)


def _run(kind: str, at: dt.datetime) -> tuple[str, dt.datetime]:
    """An Airflow-style run id for a run at ``at``, and the time."""
    return f"{kind}__{at.isoformat(timespec='seconds')}", at


def seed_runs(now: dt.datetime = NOW) -> list[SeedRun]:
    """Seven runs of two tenants, placed relative to ``now``."""
    day = dt.timedelta(days=1)
    runs = [
        # acme / orders: three runs over three days; the last one has a failure.
        SeedRun("acme", "orders", *_run("scheduled", now - 3 * day), [
            _order(1, "created"), _order(2, "created"), _order(3, "skipped", task="exists_check",
                                                                reason="already booked"),
            _order(4, "failed", reason="QBO 6000: business validation error (TxnDate)"),
        ]),
        SeedRun("acme", "orders", *_run("scheduled", now - 2 * day), [
            _order(4, "created"), _order(5, "updated", target_id="9005"),
            _order(6, "refunded", target_id="7006", details={"api_calls": {"quickbooks": 4}}),
            _order(7, "voided", target_id="9007"),
        ]),
        SeedRun("acme", "orders", *_run("manual", now - dt.timedelta(minutes=50)), [
            _order(8, "created", api_calls=2), _order(9, "created", api_calls=2),
            _order(10, "failed", task="enrich", reason="variant 555 not found in Lightspeed",
                   details={"map_index": 1}),
            _order(11, "conflict", reason="invoice edited in QuickBooks", target_id="9011"),
            _order(12, "skipped", task="exists_check", reason="status not booked", api_calls=0),
        ]),
        # acme / stock: reverse direction, one run.
        SeedRun("acme", "stock", *_run("scheduled", now - dt.timedelta(hours=20)), [
            ("load", ActivityEntry("item", "SKU-RED-M", "updated", "variant", "31", api_calls=1)),
            ("load", ActivityEntry("item", "SKU-BLUE-L", "updated", "variant", "32", api_calls=1)),
            ("enrich", ActivityEntry("item", "SKU-GONE", "skipped", reason="no Lightspeed variant",
                                     api_calls=1)),
        ], direction="quickbooks_to_lightspeed"),
        # bakkerij / products and customers.
        SeedRun("bakkerij", "products", *_run("scheduled", now - 4 * day), [
            ("load", ActivityEntry("product", "501", "created", "Item", "41", api_calls=2)),
            ("load", ActivityEntry("product", "502", "created", "Item", "42", api_calls=2)),
            ("load", ActivityEntry("product", "503", "failed",
                                   reason="QBO 6240: duplicate name exists", api_calls=2)),
        ]),
        SeedRun("bakkerij", "products", *_run("scheduled", now - dt.timedelta(minutes=2)), [
            ("load", ActivityEntry("product", "501", "updated", "Item", "41", api_calls=2)),
            ("exists_check", ActivityEntry("product", "502", "skipped", reason="unchanged")),
        ]),
        SeedRun("bakkerij", "customers", *_run("scheduled", now - day), [
            ("customer_upsert", ActivityEntry("customer", "7001", "created", "Customer", "58",
                                              api_calls=2)),
            ("customer_upsert", ActivityEntry("customer", "7002", "updated", "Customer", "59",
                                              api_calls=1)),
        ]),
    ]
    return runs


def write_seed(store: StateStore, runs: list[SeedRun]) -> Seeded:
    """Writes every run through ``StateStore`` (as the flows do), then moves its rows to
    the run's time, as if the runs had happened then."""
    seeded = Seeded(runs=runs)
    for run in runs:
        by_task: dict[str, list[ActivityEntry]] = defaultdict(list)
        for task_id, entry in run.entries:
            by_task[task_id].append(entry)
        for task_id, entries in by_task.items():
            store.record_activity(tenant=run.tenant, flow=run.flow, run_id=run.run_id,
                                  direction=run.direction, entries=entries, task_id=task_id)
            for e in entries:
                if e.action == "failed":
                    store.mark_failed(run.tenant, run.flow, e.source_id, e.reason or "")
                    seeded.failed.setdefault((run.tenant, run.flow), {})[e.source_id] = e.reason
                else:
                    store.mark_resolved(run.tenant, run.flow, [e.source_id])
                    seeded.failed.get((run.tenant, run.flow), {}).pop(e.source_id, None)
        with store.engine.begin() as conn:
            conn.execute(update(activity).where(activity.c.run_id == run.run_id,
                                                activity.c.tenant == run.tenant,
                                                activity.c.flow == run.flow)
                         .values(created_at=run.at))
    store.save_xref("acme", "order", "105", "Invoice", "9005", content_hash="ab12")
    store.save_xref("acme", "order", "106", "RefundReceipt", "7006")
    return seeded


@pytest.fixture(scope="session")
def activity_seeder():
    """``seed(store, now)``: writes :func:`seed_runs` placed around ``now``; returns
    :class:`Seeded` (for tests that need their own store, like the browser test)."""
    return lambda store, now: write_seed(store, seed_runs(now))


@pytest.fixture()
def now() -> dt.datetime:
    return NOW


@pytest.fixture()
def state_store(tmp_path) -> StateStore:
    return StateStore(get_engine(f"sqlite:///{tmp_path / 'koppel_state.db'}"))


@pytest.fixture()
def seeded(state_store) -> Seeded:
    return write_seed(state_store, seed_runs())


# -- Airflow: real JWTs, and a fake REST API over real HTTP ---------------------------------

@pytest.fixture(scope="module")
def tokens(airflow_db):
    """Real JWTs from Airflow's token generator (SimpleAuthManager's admin and viewer)."""
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    from koppel.web.auth import auth_manager

    manager = auth_manager()
    return {role: manager.generate_jwt(SimpleAuthManagerUser(username=f"{role}1", role=role))
            for role in ("admin", "viewer")}


class FakeAirflow:
    """Just enough of ``/api/v2`` to see what the dashboard sends."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.triggered: list[dict] = []
        self.listed: list[dict] = []
        # koppel's DAGs as Airflow lists them: the seeded flows, and a new tenant whose
        # first run failed before handling any record (no connection)
        self.dags = {"orders__acme", "stock__acme", "products__bakkerij",
                     "customers__bakkerij", "orders__nieuw", "customers__nieuw"}
        self.paused = {"customers__nieuw"}
        # what Airflow says when it refuses a token (the dashboard shows it)
        self.refusal = "Forbidden"
        self.runs = [
            _airflow_run("orders__acme", "manual__2026-03-10T11:10:00+00:00", "failed", "manual"),
            _airflow_run("orders__acme", "scheduled__2026-03-08T12:00:00+00:00", "success"),
            _airflow_run("orders__nieuw", "scheduled__2026-03-10T11:45:00+00:00", "failed"),
            _airflow_run("orders__nieuw", "scheduled__2026-02-20T11:45:00+00:00", "failed"),  # before the window
        ]
        self.app = FastAPI()

        def authorized(request: Request) -> bool:
            return request.headers.get("authorization") == f"Bearer {self.token}"

        @self.app.post("/api/v2/dags/{dag_id}/dagRuns")
        async def trigger(dag_id: str, request: Request):
            if not authorized(request):
                return _json({"detail": self.refusal}, 403)
            body = await request.json()
            self.triggered.append({"dag_id": dag_id, "body": body})
            return _json({"dag_run_id": f"manual__{len(self.triggered)}", "dag_id": dag_id,
                          "state": "queued", "conf": body["conf"]})

        @self.app.get("/api/v2/dags")
        def dags(request: Request, tags: str = "", limit: int = 100, offset: int = 0):
            if not authorized(request):
                return _json({"detail": self.refusal}, 403)
            listed = [{"dag_id": d, "is_paused": d in self.paused} for d in sorted(self.dags)
                      if tags == "koppel"]
            return _json({"dags": listed[offset:offset + limit], "total_entries": len(listed)})

        @self.app.post("/api/v2/dags/~/dagRuns/list")
        async def run_list(request: Request):
            if not authorized(request):
                return _json({"detail": self.refusal}, 403)
            body = await request.json()
            self.listed.append(body)
            runs = [r for r in self.runs if r["dag_id"] in body["dag_ids"]
                    and r["run_after"] >= body["run_after_gte"]]
            runs.sort(key=lambda r: r["run_after"], reverse=True)
            start, size = body["page_offset"], body["page_limit"]
            return _json({"dag_runs": runs[start:start + size], "total_entries": len(runs)})

        @self.app.get("/api/v2/dags/{dag_id}")
        def dag(dag_id: str, request: Request):
            return _json({"dag_id": dag_id, "is_paused": True})

        @self.app.get("/api/v2/dags/{dag_id}/dagRuns/{run_id}")
        def run(dag_id: str, run_id: str, request: Request):
            if not authorized(request):
                return _json({"detail": self.refusal}, 403)
            if run_id.startswith("manual__"):
                return _json({"dag_run_id": run_id, "state": "failed"})
            return _json({"detail": "not found"}, 404)


def _airflow_run(dag_id, run_id, state, run_type="scheduled"):
    at = run_id.split("__", 1)[1]
    return {"dag_id": dag_id, "dag_run_id": run_id, "state": state, "run_type": run_type,
            "run_after": at, "start_date": at, "end_date": at}


def _json(body, status=200):
    from fastapi.responses import JSONResponse

    return JSONResponse(body, status_code=status)


@pytest.fixture()
def fake_airflow(tokens):
    fake = FakeAirflow(tokens["admin"])
    with SandboxServer(fake.app) as server:
        fake.url = server.url
        yield fake
