"""The few Airflow REST API calls the dashboard makes, always with the user's own token
so Airflow's authorization applies (``/api/v2``, Airflow 3)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
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
