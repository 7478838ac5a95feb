"""Assertions and in-process fault injection shared by the reliability tests (a plain
module: conftest modules of different test folders share one import name)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator

import pytest

from koppel.flows.base import SystemicError


def assert_no_duplicates(books: dict[str, Any]) -> None:
    """No document, customer or item twice in QuickBooks."""
    doubled = {n: len(d) for n, d in books["documents"].items() if len(d) > 1}
    assert not doubled, f"documents booked more than once: {doubled}"
    assert max(books["customers"].values(), default=1) == 1, books["customers"].most_common(3)
    assert max(books["items"].values(), default=1) == 1, books["items"].most_common(3)


# -- fault injection inside koppel's own process (what a sandbox cannot do) ---------------

def enable_flow(tenant: Any, flow: str, **config: Any) -> None:
    """Turn on a flow the demo tenant leaves off (e.g. ``orders_reverse``), unscheduled."""
    import json

    path = tenant.mappings_dir / f"{tenant.tenant}.json"
    doc = json.loads(path.read_text())
    doc.setdefault("flows", {}).setdefault(flow, {}).update(
        {"enabled": True, "schedule": None, **config})
    path.write_text(json.dumps(doc, indent=2))


@contextmanager
def capped_retries(attempts: int = 1) -> Iterator[None]:
    """Hooks built inside the block try a transient failure (5xx, 429, a dropped
    connection) at most ``attempts`` times in all: a fault the hooks would otherwise
    absorb escapes, so the run really leaves records failed or unwritten."""
    import dataclasses

    from koppel.hooks import lightspeed, quickbooks
    from koppel.hooks.retry import RetryPolicy

    def capped(*args: Any, **kwargs: Any) -> RetryPolicy:
        policy = RetryPolicy(*args, **kwargs)
        return dataclasses.replace(policy, attempts=min(policy.attempts, attempts))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(lightspeed, "RetryPolicy", capped)
        patch.setattr(quickbooks, "RetryPolicy", capped)
        yield


@contextmanager
def concurrent_edit(entity: str, changes: dict[str, Any]) -> Iterator[list[str]]:
    """Someone edits, in QuickBooks, the ``entity`` objects koppel is about to update —
    after koppel read them, before its write: the first batch request that updates
    ``entity`` objects is preceded by another user's sparse update of each (``changes``),
    which bumps their SyncToken. Yields the ids edited."""
    from koppel.hooks.quickbooks import QuickBooksHook

    real = QuickBooksHook.batch
    edited: list[str] = []

    def batch(self, operations, **kwargs):
        ids = [str(op.payload["Id"]) for op in operations
               if op.operation == "update" and op.entity == entity]
        if ids and not edited:
            with QuickBooksHook(self.quickbooks_conn_id) as other_user:
                for object_id in ids:
                    other_user.sparse_update(entity, object_id, changes)
            edited.extend(ids)
        return real(self, operations, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(QuickBooksHook, "batch", batch)
        yield edited


class WorkerKilled(SystemicError):
    """The task's process died where this is raised: nothing after it runs (it is
    systemic, so no ``except Exception`` of a step turns it into one record's failure)."""


@contextmanager
def dead_process() -> Iterator[None]:
    """Inside the block a :class:`WorkerKilled` is a dead process: the operator cannot
    put the chunk on the failed list either (a dead process writes nothing more)."""
    from koppel.steps import operators

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(operators.ChunkStepOperator, "_mark_chunk_failed",
                      lambda self, run, records, exc: None)
        yield


@contextmanager
def killed_after_qbo_write(entity: str, *, requests: int = 1, batch_size: int | None = None,
                           skip: Callable[[dict[str, Any]], bool] = lambda payload: False
                           ) -> Iterator[list[int]]:
    """The process dies right after QuickBooks answered the ``requests``-th batch request
    that writes ``entity`` objects (payloads for which ``skip`` is true do not count):
    QuickBooks holds what that request wrote, koppel recorded none of it. ``batch_size``
    splits a chunk's writes into several batch requests, so the task dies after part of
    them. Yields how many objects QuickBooks wrote in each counted request."""
    from koppel.hooks import quickbooks

    real = quickbooks.QuickBooksHook.api
    written: list[int] = []

    def api(self, method, endpoint, **kwargs):
        answer = real(self, method, endpoint, **kwargs)
        items = ((kwargs.get("body") or {}).get("BatchItemRequest") or []) \
            if endpoint == "batch" else []
        writes = [i for i in items if i.get("operation") in ("create", "update")
                  and entity in i and not skip(i[entity])]
        if writes and len(written) < requests:
            done = [a for a in answer.get("BatchItemResponse", []) if entity in a]
            written.append(len(done))
            if len(written) == requests:
                raise WorkerKilled(f"worker killed after a batch wrote {len(done)} {entity}")
        return answer

    with dead_process(), pytest.MonkeyPatch.context() as patch:
        patch.setattr(quickbooks.QuickBooksHook, "api", api)
        if batch_size:
            patch.setattr(quickbooks, "BATCH_SIZE", batch_size)
        yield written


@contextmanager
def answer_lost(method: str, route: str, *, times: int = 1) -> Iterator[list[str]]:
    """The first ``times`` requests ``method`` to a URL matching ``route`` (a regular
    expression searched in the URL as the hook passes it, e.g. ``checkouts/1/products.json``)
    reach the server and are processed, then the connection drops before the answer
    arrives. Yields the URLs whose answer was lost."""
    import re

    import httpx

    real = httpx.Client.request
    lost: list[str] = []

    def request(self, verb, url, *args, **kwargs):
        response = real(self, verb, url, *args, **kwargs)
        if verb.upper() == method.upper() and re.search(route, str(url)) and len(lost) < times:
            lost.append(str(url))
            raise httpx.ReadError("connection reset after the server processed the request")
        return response

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(httpx.Client, "request", request)
        yield lost


# -- fault injection through the sandboxes' control planes (preferred: no patching) -------

QBO_API = r"^/v3/company/"
LS_API = r"^/nl/"


def lose_answers(sandbox: Any, *, kind: str = "drop_after", path: str = QBO_API,
                 method: str | None = "POST", times: int = 1) -> None:
    """The first ``times`` matching requests are processed by the sandbox (writes stored),
    then their answer is lost (``drop_after``) or replaced by a 5xx (``500_after``,
    ``503_after``, ``504_after``): see :mod:`koppel.sandbox.control`."""
    sandbox.fault(path=path, method=method, kind=kind, times=times)


def arm_concurrent_edit(qbo: Any, realm_id: str, entity: str, object_ids: Any,
                        changes: dict[str, Any] | None = None) -> None:
    """Another user saves each object just before the realm's next API write: that write
    sends a stale SyncToken (5010). ``POST /_sandbox/realms/{realm}/entities/{entity}/{id}/touch``
    with ``when: before_next_write`` (:mod:`koppel.sandbox.quickbooks.control_routes`)."""
    for object_id in object_ids:
        qbo.control.post(f"/realms/{realm_id}/entities/{entity}/{object_id}/touch",
                         json={"changes": changes or {}, "when": "before_next_write"}
                         ).raise_for_status()


def expire_access_tokens(qbo: Any, realm_id: str | None = None) -> int:
    """Every QuickBooks access token already issued (for ``realm_id``) expires now."""
    answer = qbo.control.post("/oauth/expire-access-tokens",
                              json={"realm": realm_id} if realm_id else {})
    answer.raise_for_status()
    return answer.json()["expired"]


def revoke_realm(qbo: Any, realm_id: str) -> int:
    """The user disconnects the app: every refresh token of the realm is revoked."""
    answer = qbo.control.post("/oauth/revoke", json={"realm": realm_id})
    answer.raise_for_status()
    return answer.json()["revoked"]
