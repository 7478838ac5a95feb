"""Airflow listener: a koppel run never waits on a pool that does not exist.

Airflow never schedules a task whose pool is missing: the task stays "no status" and the
only clue is a scheduler log line. koppel's pools (one per tenant and API,
:func:`koppel.cli.tenant_pools`) are created by ``make airflow``, ``airflow-init`` and
``koppel pools --apply``; a tenant file added later, or a pool deleted by hand, would
still leave its runs hanging. So when the scheduler starts a run of a koppel DAG
(``on_dag_run_running``, called in the scheduler with the run's serialized DAG and in its
database session), every ``koppel_<tenant>_<api>`` pool its tasks use and the metadata
database lacks is created, sized from the APIs' published limits, and named in a warning.
If it cannot be created, the run fails at once with an error that names the missing pool
and the command that creates it — never a run that hangs.

Registered by ``plugins/koppel_pools.py``.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable

try:  # Airflow 3: the listener hook marker
    from airflow.listeners import hookimpl
except ImportError:  # pragma: no cover - task-SDK-only installation
    from airflow.sdk._shared.listeners import hookimpl

log = logging.getLogger("koppel.pools")

POOL_PREFIX = "koppel_"


def koppel_pools_of(tasks: Iterable[Any]) -> dict[str, tuple[str, str]]:
    """``{pool name: (tenant id, api)}`` for the koppel pools ``tasks`` use."""
    from koppel.pools import API_LIMITS

    found: dict[str, tuple[str, str]] = {}
    for task in tasks:
        name = str(getattr(task, "pool", "") or "")
        if not name.startswith(POOL_PREFIX):
            continue
        for api in API_LIMITS:
            if name.endswith(f"_{api}") and len(name) > len(POOL_PREFIX) + len(api) + 1:
                found[name] = (name[len(POOL_PREFIX):-(len(api) + 1)], api)
    return found


def ensure_pools(dag_id: str, tasks: Iterable[Any], session) -> list[str]:
    """Create the koppel pools ``tasks`` need that ``session``'s database lacks; returns
    their names. Raises when they cannot be created."""
    from sqlalchemy import select

    from airflow.models.pool import Pool
    from koppel.cli import tenant_pools

    needed = koppel_pools_of(tasks)
    if not needed:
        return []
    existing = set(session.scalars(select(Pool.pool).where(Pool.pool.in_(sorted(needed)))))
    missing = sorted(set(needed) - existing)
    if not missing:
        return []
    specs: dict[str, dict[str, Any]] = {}
    for tenant in sorted({needed[name][0] for name in missing}):
        specs.update(tenant_pools([tenant]))
    # in the scheduler's own transaction (no savepoint: the scheduler forbids any commit,
    # a nested one included, while it holds its locks); flushed here so a failure is ours
    for name in missing:
        spec = specs[name]
        Pool.create_or_update_pool(name, slots=int(spec["slots"]),
                                   description=str(spec["description"]),
                                   include_deferred=bool(spec["include_deferred"]),
                                   session=session)
    session.flush()
    for name in missing:
        log.warning("koppel: pool %s (needed by %s) did not exist; created with %s slots "
                    "(%s). Create pools with `koppel pools --apply` when adding a tenant.",
                    name, dag_id, specs[name]["slots"], specs[name]["description"])
    return missing


@hookimpl
def on_dag_run_running(dag_run, msg: str):
    dag = getattr(dag_run, "dag", None)
    if dag is None or not any(str(getattr(t, "pool", "")).startswith(POOL_PREFIX)
                              for t in dag.tasks):
        return
    from sqlalchemy.orm import object_session
    from sqlalchemy.orm.exc import UnmappedInstanceError

    try:
        session = object_session(dag_run)
    except UnmappedInstanceError:
        session = None
    try:
        if session is not None:
            ensure_pools(dag_run.dag_id, dag.tasks, session)
        else:  # not attached (a caller outside the scheduler): a session of our own
            from airflow.utils.session import create_session

            with create_session() as own:
                ensure_pools(dag_run.dag_id, dag.tasks, own)
    except Exception as exc:  # the run must not hang on it: fail it, naming the pool
        missing = ", ".join(sorted(koppel_pools_of(dag.tasks)))
        log.error("koppel: run %s of %s fails: its pool(s) %s could not be checked or "
                  "created (%s: %s); run `koppel pools --apply`", dag_run.run_id,
                  dag_run.dag_id, missing, type(exc).__name__, exc)
        from airflow.utils.state import DagRunState

        dag_run.set_state(DagRunState.FAILED)
