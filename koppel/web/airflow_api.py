"""The few Airflow REST API calls the dashboard makes, always with the user's own token
so Airflow's authorization applies (``/api/v2``, Airflow 3)."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Iterable
from urllib.parse import quote

import httpx


@dataclass
class TriggerResult:
    status_code: int
    dag_run_id: str | None = None
    state: str | None = None
    is_paused: bool | None = None
    detail: str | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "status_code": self.status_code, "dag_run_id": self.dag_run_id,
                "state": self.state, "is_paused": self.is_paused, "detail": self.detail}


@dataclass
class RunsView:
    """What Airflow says about koppel's DAGs: the DAGs the user may read (tag ``koppel``)
    and their runs since a moment, newest first. ``error`` says why either is missing
    (Airflow unreachable, the user refused), so the page can say so instead of guessing."""

    dags: dict[str, dict[str, Any]] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    def latest(self) -> dict[str, dict[str, Any]]:
        """The newest run of each DAG (by ``run_after``)."""
        newest: dict[str, dict[str, Any]] = {}
        for run in self.runs:
            best = newest.get(run["dag_id"])
            if best is None or (run.get("run_after") or "") > (best.get("run_after") or ""):
                newest[run["dag_id"]] = run
        return newest


class AirflowAPI:
    def __init__(self, base_url: str, token: str, *, timeout: float = 10.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._timeout = timeout
        self._transport = transport

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url + "/api/v2", timeout=self._timeout,
                                 headers={"Authorization": f"Bearer {self._token}",
                                          "Accept": "application/json"},
                                 transport=self._transport)

    async def trigger(self, dag_id: str, conf: dict[str, Any]) -> TriggerResult:
        """``POST /dags/{dag_id}/dagRuns`` (a manual run, no logical date) and whether the
        DAG is paused (a paused DAG's run waits until it is unpaused)."""
        async with self._client() as client:
            response = await client.post(f"/dags/{quote(dag_id, safe='')}/dagRuns",
                                         json={"logical_date": None, "conf": conf})
            if response.is_success:
                body = response.json()
                paused = None
                dag = await client.get(f"/dags/{quote(dag_id, safe='')}")
                if dag.is_success:
                    paused = dag.json().get("is_paused")
                return TriggerResult(response.status_code, body.get("dag_run_id"),
                                     body.get("state"), paused)
            return TriggerResult(response.status_code, detail=_detail(response))

    async def run_states(self, runs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str | None]:
        """The state of each (dag_id, run_id); ``None`` where Airflow does not know the
        run, refuses the user or cannot be reached."""
        runs = list(dict.fromkeys(runs))
        if not runs:
            return {}
        async with self._client() as client:
            states = await asyncio.gather(*(self._run_state(client, d, r) for d, r in runs))
        return dict(zip(runs, states))

    async def runs_view(self, since: dt.datetime, *, page: int = 500,
                        max_pages: int = 20) -> RunsView:
        """koppel's DAGs (``GET /dags?tags=koppel``) and their runs after ``since``
        (``POST /dags/~/dagRuns/list``, Airflow 3's batch listing), newest first — two
        kinds of request, paged, whatever the number of tenants."""
        view = RunsView()
        async with self._client() as client:
            try:
                offset = 0
                for _ in range(max_pages):
                    response = await client.get("/dags", params={
                        "tags": "koppel", "limit": page, "offset": offset})
                    if not response.is_success:
                        view.error = f"Airflow refused the DAG list: {_detail(response)}"
                        return view
                    body = response.json()
                    for dag in body.get("dags", []):
                        view.dags[dag["dag_id"]] = {"is_paused": dag.get("is_paused")}
                    offset += page
                    if offset >= int(body.get("total_entries") or 0):
                        break
                if not view.dags:
                    return view
                offset = 0
                for _ in range(max_pages):
                    response = await client.post("/dags/~/dagRuns/list", json={
                        "dag_ids": sorted(view.dags), "run_after_gte": since.isoformat(),
                        "order_by": "-run_after", "page_limit": page, "page_offset": offset})
                    if not response.is_success:
                        view.error = f"Airflow refused the run list: {_detail(response)}"
                        return view
                    body = response.json()
                    view.runs.extend(
                        {"dag_id": r["dag_id"], "run_id": r["dag_run_id"], "state": r.get("state"),
                         "run_type": r.get("run_type"), "run_after": r.get("run_after"),
                         "start_date": r.get("start_date"), "end_date": r.get("end_date")}
                        for r in body.get("dag_runs", []))
                    offset += page
                    if offset >= int(body.get("total_entries") or 0):
                        break
            except httpx.HTTPError as exc:
                view.error = f"Airflow's REST API is not reachable: {type(exc).__name__}"
        return view

    @staticmethod
    async def _run_state(client: httpx.AsyncClient, dag_id: str, run_id: str) -> str | None:
        try:
            response = await client.get(
                f"/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}")
        except httpx.HTTPError:
            return None
        if not response.is_success:
            return None
        return response.json().get("state")


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = None
    if isinstance(detail, (list, dict)):
        detail = str(detail)
    return detail or response.reason_phrase or f"HTTP {response.status_code}"
