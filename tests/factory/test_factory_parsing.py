"""The DAG folder as the dag processor sees it: a broken tenant file is an import error of
its own and never takes the valid tenants' DAGs down; the manual-run Params are on every
DAG, typed and described for the trigger form; the folder parses 100 tenants."""

from __future__ import annotations

import time

import pytest

from factory_helpers import DAGS, DEMO_TENANT, tenant_doc, write_tenant

ENABLED = sorted(name for name, cfg in DEMO_TENANT["flows"].items() if cfg.get("enabled"))
ERRORS_FILE = str(DAGS / "koppel_tenant_errors.py")
# every tenant that books orders also gets its daily reconciliation DAG
TENANT_DAGS = ENABLED + (["reconcile"] if "orders" in ENABLED else [])


def _tenant_dags(bag) -> dict:
    """The DAGs the factory made (the folder holds other DAG files too)."""
    return {i: d for i, d in bag.dags.items() if d.fileloc.endswith("koppel_dags.py")}


def _tasks(dag) -> dict[str, list[str]]:
    return {t.task_id: sorted(t.downstream_task_ids) for t in dag.tasks}


def test_a_broken_tenant_file_is_an_import_error_and_the_valid_tenant_still_loads(
        tmp_path, parse_dag_folder):
    from koppel.flows.registry import implemented_flows

    alone, both = tmp_path / "alone", tmp_path / "both"
    alone.mkdir(), both.mkdir()
    for directory in (alone, both):
        write_tenant(directory, tenant_doc("acme"))
    broken = tenant_doc("brokenshop")
    broken["settings"]["unknown_sku"] = "skip"  # not one of fail/fallback_item/create_item
    broken_file = write_tenant(both, broken)

    reference = parse_dag_folder(alone)
    assert reference.import_errors == {}
    bag = parse_dag_folder(both)

    expected = {f"{flow}__acme" for flow in ENABLED if flow in implemented_flows()}
    expected |= {"reconcile__acme"} if "orders" in ENABLED else set()  # the daily check
    assert expected and set(_tenant_dags(bag)) == expected, sorted(bag.dags)
    # exactly one import error, on the errors file, naming the file, the field and why
    assert list(bag.import_errors) == [ERRORS_FILE], bag.import_errors
    error = bag.import_errors[ERRORS_FILE]
    assert str(broken_file) in error
    assert "$.settings.unknown_sku" in error
    assert "'skip'" in error and "fallback_item" in error
    assert "acme.json" not in error
    # the valid tenant's DAGs are exactly what they are without the broken file
    assert set(reference.dags) == set(bag.dags)
    for dag_id, dag in _tenant_dags(bag).items():
        same = reference.dags[dag_id]
        assert _tasks(dag) == _tasks(same), dag_id
        assert dag.timetable == same.timetable and dag.params.dump() == same.params.dump()


def test_a_fixed_tenant_file_clears_the_import_error(tmp_path, parse_dag_folder):
    """A second kind of broken field (a schedule); once the file is fixed, the next parse
    (a new process in the dag processor: here the registry's cache is cleared) has no
    import error and the tenant's DAGs appear."""
    write_tenant(tmp_path, tenant_doc("acme"))
    broken = tenant_doc("brokenshop")
    broken["flows"]["orders"]["schedule"] = "every quarter hour"
    write_tenant(tmp_path, broken)
    bag = parse_dag_folder(tmp_path)
    assert "$.flows.orders.schedule" in bag.import_errors[ERRORS_FILE]
    assert set(_tenant_dags(bag)) == {f"{flow}__acme" for flow in TENANT_DAGS}

    write_tenant(tmp_path, tenant_doc("brokenshop"))
    bag = parse_dag_folder(tmp_path)
    assert bag.import_errors == {}
    assert {d for d in bag.dags if d.endswith("__brokenshop")} == {
        f"{flow}__brokenshop" for flow in TENANT_DAGS}


PARAM_TYPES = {
    "since": ["null", "string"],
    "until": ["null", "string"],
    "dry_run": "boolean",
    "full_resync": "boolean",
    "records": "array",
}


def test_every_dag_has_the_manual_run_params_typed_and_described(tmp_path, parse_dag_folder):
    write_tenant(tmp_path, tenant_doc("acme"))
    bag = parse_dag_folder(tmp_path)
    dags = {i: d for i, d in _tenant_dags(bag).items() if not i.startswith("reconcile__")}
    assert len(dags) == len(ENABLED)
    # the reconciliation asks for days, nothing else
    check = bag.dags["reconcile__acme"].params
    assert check.dump() == {"first_day": None, "last_day": None}
    check.validate()
    from airflow.sdk.exceptions import ParamValidationError as _Invalid

    with pytest.raises(_Invalid):
        check.get_param("first_day").resolve("2025-1-5")
    assert check.get_param("last_day").resolve("2025-01-31") == "2025-01-31"
    for dag_id, dag in dags.items():
        assert set(dag.params) == set(PARAM_TYPES), dag_id
        for name, kind in PARAM_TYPES.items():
            param = dag.params.get_param(name)
            assert param.schema["type"] == kind, (dag_id, name)
            assert param.schema.get("title"), (dag_id, name)
            assert param.description and len(param.description) > 15, (dag_id, name)
        assert dag.params.get_param("since").schema["format"] == "date-time"
        assert dag.params.get_param("until").schema["format"] == "date-time"
        assert dag.params.get_param("records").schema["items"] == {"type": "string"}
        assert dag.params.dump() == {"since": None, "until": None, "dry_run": False,
                                     "full_resync": False, "records": []}
        # the form's defaults validate, and a wrong type is refused
        dag.params.validate()
        from airflow.sdk.exceptions import ParamValidationError

        with pytest.raises(ParamValidationError):
            dag.params.get_param("dry_run").resolve("yes")
        with pytest.raises(ParamValidationError):
            dag.params.get_param("since").resolve("last tuesday")
        dag.params.get_param("since").resolve("2025-08-01T00:00:00Z")
        dag.params.get_param("until").resolve("2025-08-02")
    # every DAG owns its Params: a value a run resolves on one DAG (Param.resolve keeps
    # it) never shows on another DAG, nor on DAGs parsed later in the same process
    first, second = (dags[d] for d in sorted(dags)[:2])
    first.params.get_param("records").resolve(["ORD00001"])
    assert first.params.dump()["records"] == ["ORD00001"]
    assert second.params.dump()["records"] == []
    again = parse_dag_folder(tmp_path)
    assert all(d.params.dump()["records"] == [] and d.params.dump()["since"] is None
               for i, d in _tenant_dags(again).items() if not i.startswith("reconcile__"))


def test_parse_time_of_100_generated_tenants(tmp_path, parse_dag_folder):
    from koppel.flows.registry import implemented_flows

    for n in range(100):
        write_tenant(tmp_path, tenant_doc(f"shop{n:03d}"))
    flows = [f for f in ENABLED if f in implemented_flows()]
    flows += ["reconcile"] if "orders" in flows else []  # the daily check of shop and books

    started = time.perf_counter()
    bag = parse_dag_folder(tmp_path)
    elapsed = time.perf_counter() - started
    dags = _tenant_dags(bag)
    print(f"\nDAG folder parse, 100 tenants: {len(dags)} tenant DAGs ({len(bag.dags)} in all) "
          f"in {elapsed:.2f} s ({elapsed / len(bag.dags) * 1000:.1f} ms per DAG)")
    assert bag.import_errors == {}
    assert len(dags) == 100 * len(flows) == 600
    assert {d.split("__")[1] for d in dags} == {f"shop{n:03d}" for n in range(100)}

    # a worker parsing for one task builds only that task's DAG (Airflow's own context
    # manager leaves the variables set when they were unset before: monkeypatch instead)
    from airflow.sdk.definitions.context import (_AIRFLOW_PARSING_CONTEXT_DAG_ID,
                                                 _AIRFLOW_PARSING_CONTEXT_TASK_ID)

    with pytest.MonkeyPatch.context() as parsing_for_a_task:
        parsing_for_a_task.setenv(_AIRFLOW_PARSING_CONTEXT_DAG_ID, "orders__shop042")
        parsing_for_a_task.setenv(_AIRFLOW_PARSING_CONTEXT_TASK_ID, "extract")
        started = time.perf_counter()
        one = parse_dag_folder(tmp_path)
        elapsed = time.perf_counter() - started
    print(f"DAG folder parse for one task of 100 tenants: {len(_tenant_dags(one))} tenant "
          f"DAG in {elapsed:.2f} s")
    assert set(_tenant_dags(one)) == {"orders__shop042"}
