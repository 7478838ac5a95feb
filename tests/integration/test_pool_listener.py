"""The pool listener against Airflow's own metadata database: a koppel run whose tenant
pool is missing gets it (sized as ``koppel pools`` sizes it) when the scheduler starts
the run; a run whose pool cannot be created fails at once. The same listener runs in a
real scheduler in tests/integration/test_celery_cluster.py."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest


@pytest.fixture
def pool_log():
    """The listener's log lines (logger ``koppel.pools``), whatever Airflow's logging
    configuration did to stdlib loggers (it may disable existing ones)."""
    records: list[logging.LogRecord] = []
    logger = logging.getLogger("koppel.pools")
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    disabled, level = logger.disabled, logger.level
    logger.disabled = False
    logger.setLevel(logging.WARNING)
    logger.addHandler(handler)
    yield lambda: "\n".join(r.getMessage() for r in records)
    logger.removeHandler(handler)
    logger.disabled, logger.level = disabled, level


def _pools(session, prefix: str) -> dict[str, int]:
    from sqlalchemy import select

    from airflow.models.pool import Pool

    return {p.pool: p.slots for p in session.scalars(select(Pool).where(Pool.pool.like(f"{prefix}%")))}


def _tasks(tenant: str):
    return [SimpleNamespace(pool="default_pool"),  # wait_for_other_runs
            SimpleNamespace(pool=f"koppel_{tenant}_lightspeed"),
            SimpleNamespace(pool=f"koppel_{tenant}_quickbooks"),
            SimpleNamespace(pool=f"koppel_{tenant}_quickbooks")]


def test_missing_pools_are_created_when_a_run_starts(airflow_db, pool_log):
    from airflow.utils.session import create_session
    from koppel.cli import tenant_pools
    from koppel.pool_listener import ensure_pools, koppel_pools_of, on_dag_run_running

    tenant = "pool_listener_t1"
    assert koppel_pools_of(_tasks(tenant)) == {
        f"koppel_{tenant}_lightspeed": (tenant, "lightspeed"),
        f"koppel_{tenant}_quickbooks": (tenant, "quickbooks")}
    expected = {name: spec["slots"] for name, spec in tenant_pools([tenant]).items()}
    assert expected == {f"koppel_{tenant}_lightspeed": 3, f"koppel_{tenant}_quickbooks": 4}

    run = SimpleNamespace(dag=SimpleNamespace(tasks=_tasks(tenant)), dag_id=f"orders__{tenant}",
                          run_id="manual__1")
    on_dag_run_running(dag_run=run, msg="started")  # not in a session: its own
    with create_session() as session:
        assert _pools(session, f"koppel_{tenant}_") == expected
    logged = pool_log()
    assert f"koppel_{tenant}_quickbooks" in logged and "did not exist" in logged

    # a second start finds them: nothing created, nothing logged
    with create_session() as session:
        assert ensure_pools(run.dag_id, run.dag.tasks, session) == []
    assert pool_log().count("did not exist") == 2  # the two of the first start only


def test_a_run_whose_pool_cannot_be_created_fails_naming_it(airflow_db, pool_log, monkeypatch):
    from koppel import pool_listener

    def refuse(*args, **kwargs):
        raise RuntimeError("database is read-only")

    monkeypatch.setattr(pool_listener, "ensure_pools", refuse)
    states = []
    tenant = "pool_listener_t2"
    run = SimpleNamespace(dag=SimpleNamespace(tasks=_tasks(tenant)), dag_id=f"stock__{tenant}",
                          run_id="manual__2", set_state=states.append)
    pool_listener.on_dag_run_running(dag_run=run, msg="started")
    assert [str(getattr(s, "value", s)) for s in states] == ["failed"]
    logged = pool_log()
    assert f"koppel_{tenant}_lightspeed" in logged and "koppel pools --apply" in logged


@pytest.mark.parametrize("pools", [["default_pool"], ["koppel_x"], []])
def test_runs_without_koppel_pools_are_left_alone(pools):
    from koppel.pool_listener import on_dag_run_running

    run = SimpleNamespace(dag=SimpleNamespace(tasks=[SimpleNamespace(pool=p) for p in pools]),
                          dag_id="other", run_id="r",
                          set_state=lambda s: pytest.fail("must not touch the run"))
    on_dag_run_running(dag_run=run, msg="started")


def test_pools_are_created_inside_the_schedulers_transaction(airflow_db):
    """The scheduler calls the listener inside ``prohibit_commit`` (its HA locks): the pool
    is created without any commit, savepoints included, and lands with the scheduler's."""
    from airflow.utils.session import create_session
    from airflow.utils.sqlalchemy import prohibit_commit
    from koppel.pool_listener import ensure_pools

    tenant = "pool_listener_t3"
    with create_session() as session:
        with prohibit_commit(session) as guard:
            created = ensure_pools(f"refunds__{tenant}", _tasks(tenant), session)
            guard.commit()
    assert created == [f"koppel_{tenant}_lightspeed", f"koppel_{tenant}_quickbooks"]
    with create_session() as session:
        assert _pools(session, f"koppel_{tenant}_") == {f"koppel_{tenant}_lightspeed": 3,
                                                        f"koppel_{tenant}_quickbooks": 4}
