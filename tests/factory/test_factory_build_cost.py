"""The parse-time shortcuts of the DAG factory (issue 20) change nothing a DAG holds: the
cyclic garbage collector is paused only while the DAGs are built, DAGs with the same
schedule and time zone share one timetable (of the right time zone), and the DAG
arguments Airflow reads from its configuration are read once per parse — a changed
configuration is what the next parse uses."""

from __future__ import annotations

import gc

import pytest

from factory_helpers import tenant_doc, write_tenant


@pytest.fixture
def fresh_tenants():
    from koppel.flows import registry

    registry._tenant_set.cache_clear()
    yield
    registry._tenant_set.cache_clear()


@pytest.mark.parametrize("enabled_before", [True, False])
def test_the_collector_is_paused_while_building_and_left_as_it_was(
        tmp_path, monkeypatch, fresh_tenants, enabled_before):
    import koppel.factory as factory

    write_tenant(tmp_path, tenant_doc("acme"))
    seen: list[bool] = []
    real = factory.tenant_dags

    def spy(tenant, only_dag_id=None):
        seen.append(gc.isenabled())
        return real(tenant, only_dag_id)

    monkeypatch.setattr(factory, "tenant_dags", spy)
    was = gc.isenabled()
    try:
        gc.enable() if enabled_before else gc.disable()
        dags = factory.build_dags(tmp_path)
        assert gc.isenabled() is enabled_before
        assert factory.tenant_errors(tmp_path) == []
        assert gc.isenabled() is enabled_before
    finally:
        gc.enable() if was else gc.disable()
    assert seen == [False] and "orders__acme" in dags


def test_a_failing_build_switches_the_collector_back_on(tmp_path, monkeypatch, fresh_tenants):
    import koppel.factory as factory

    write_tenant(tmp_path, tenant_doc("acme"))

    def broken(tenant, only_dag_id=None):
        raise RuntimeError("boom")

    monkeypatch.setattr(factory, "tenant_dags", broken)
    assert gc.isenabled()
    with pytest.raises(RuntimeError, match="boom"):
        factory.build_dags(tmp_path)
    assert gc.isenabled()


def test_dags_share_a_timetable_per_schedule_and_time_zone(tmp_path, fresh_tenants):
    from airflow.sdk.definitions.timetables.interval import CronDataIntervalTimetable

    from koppel.factory import build_dags

    for tenant, start in (("acme", "2024-01-01"), ("bolt", "2024-03-01"),
                          ("cora", "2024-01-01T00:00:00+05:00")):
        doc = tenant_doc(tenant)
        for flow in doc["flows"].values():
            flow["schedule"] = "*/15 * * * *"
        doc["flows"]["orders"]["start_date"] = start
        write_tenant(tmp_path, doc)
    dags = build_dags(tmp_path)
    acme, bolt, cora = (dags[f"orders__{t}"].timetable for t in ("acme", "bolt", "cora"))
    assert isinstance(acme, CronDataIntervalTimetable)
    assert acme is bolt and acme is dags["products__acme"].timetable
    assert acme.expression == "*/15 * * * *" and cora.expression == "*/15 * * * *"
    assert cora is not acme
    assert acme.timezone.utcoffset(None).total_seconds() == 0
    assert cora.timezone.utcoffset(None).total_seconds() == 5 * 3600
    # each DAG's start date keeps its own moment
    assert dags["orders__bolt"].start_date.month == 3 and dags["orders__acme"].start_date.month == 1


def test_the_configured_dag_defaults_are_read_once_per_parse(tmp_path, monkeypatch,
                                                              fresh_tenants):
    from airflow.sdk.configuration import conf

    from koppel.factory import build_dags
    from koppel.flows.registry import _tenant_set

    write_tenant(tmp_path, tenant_doc("acme"))
    dag = build_dags(tmp_path)["orders__acme"]
    assert dag.max_active_tasks == conf.getint("core", "max_active_tasks_per_dag")
    assert dag.max_consecutive_failed_dag_runs == conf.getint(
        "core", "max_consecutive_failed_dag_runs_per_dag")
    assert dag.disable_bundle_versioning is conf.getboolean("dag_processor",
                                                            "disable_bundle_versioning")
    monkeypatch.setenv("AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG", "7")
    monkeypatch.setenv("AIRFLOW__CORE__MAX_CONSECUTIVE_FAILED_DAG_RUNS_PER_DAG", "3")
    _tenant_set.cache_clear()
    again = build_dags(tmp_path)
    assert {d.max_active_tasks for i, d in again.items() if not i.startswith("reconcile")} == {7}
    assert again["orders__acme"].max_consecutive_failed_dag_runs == 3


def test_a_shared_timetable_has_exactly_the_time_zone_of_the_dags_start():
    """Equal-comparing time zones are not confused: ``datetime.timezone`` objects of one
    offset compare equal whatever their names, pendulum's fixed offsets too."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    import pendulum

    from koppel.flows.dag import _schedule

    starts = [dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
              dt.datetime(2024, 1, 1, tzinfo=dt.timezone(dt.timedelta(0), "X")),
              dt.datetime(2024, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=2))),
              dt.datetime(2024, 1, 1, tzinfo=ZoneInfo("Europe/Amsterdam")),
              dt.datetime(2024, 7, 1, tzinfo=ZoneInfo("Europe/Amsterdam")),
              dt.datetime(2024, 1, 1, tzinfo=pendulum.FixedTimezone(3600, name="A")),
              dt.datetime(2024, 1, 1, tzinfo=pendulum.FixedTimezone(3600, name="B"))]
    for _ in range(2):  # made, then from the cache
        for start in starts:
            expected = pendulum.instance(start, tz=start.tzinfo or "UTC").timezone
            timezone = _schedule("0 6 * * *", start).timezone
            assert (type(timezone), timezone.name, timezone) == \
                (type(expected), expected.name, expected), start
    assert _schedule("0 6 * * *", starts[1]) is _schedule("0 6 * * *", dt.datetime(2025, 5, 5, tzinfo=dt.timezone.utc))
    assert _schedule(None, starts[0]) is None and _schedule("@once", starts[0]) == "@once"
