"""What a parse costs (issue 20): the DAG files build DAGs from data — the flow
declarations and the tenant files — without importing a hook, an API client or a flow's
implementation; the Params are checked once per kind of DAG, not once per DAG or task;
a worker that parses to start a task validates only its own tenant's file and builds
only its DAG, holding the tenant to the same rules as the full parse."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from factory_helpers import DAGS, tenant_doc, write_tenant

ERRORS_FILE = str(DAGS / "koppel_tenant_errors.py")
#: never imported while DAG files are parsed: hooks, API clients, the flows' code
# (``intuitlib`` itself is a namespace package its .pth file registers at start-up)
HEAVY = ("koppel.hooks", "koppel.hooks.quickbooks", "koppel.hooks.lightspeed", "quickbooks",
         "intuitlib.client", "requests_oauthlib", "pandas", "koppel.flows.base", "koppel.steps.kernel",
         "koppel.store", "koppel.store.state")


def _every_flow(tenant_id: str) -> dict:
    doc = tenant_doc(tenant_id)
    for flow in ("orders", "products", "stock", "customers", "refunds"):
        doc["flows"].setdefault(flow, {})["enabled"] = True
    doc["flows"]["orders_reverse"] = {"enabled": True, "schedule": None}
    return doc


def _worker_parse(mappings, monkeypatch, dag_id: str):
    """The DagBag a worker's task runner fills to start a task of ``dag_id``: the DAG's
    own file, Airflow's parsing context naming the DAG, in a fresh process (here: the
    tenant-file cache cleared)."""
    from airflow.dag_processing.dagbag import DagBag

    from koppel.flows import registry

    monkeypatch.setenv("KOPPEL_MAPPINGS_DIR", str(mappings))
    for name, value in _parsing_context(dag_id).items():
        monkeypatch.setenv(name, value)
    registry._tenant_set.cache_clear()
    try:
        return DagBag(dag_folder=str(DAGS / "koppel_dags.py"), safe_mode=False,
                      load_op_links=False)
    finally:
        for name in _parsing_context(dag_id):
            monkeypatch.delenv(name)


def _parsing_context(dag_id: str) -> dict[str, str]:
    from airflow.sdk.definitions.context import (_AIRFLOW_PARSING_CONTEXT_DAG_ID,
                                                 _AIRFLOW_PARSING_CONTEXT_TASK_ID)

    return {_AIRFLOW_PARSING_CONTEXT_DAG_ID: dag_id, _AIRFLOW_PARSING_CONTEXT_TASK_ID: "extract"}


_PARSE_SCRIPT = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
print("RESULT " + json.dumps({"dags": sorted(bag.dags), "errors": bag.import_errors,
                              "modules": sorted(sys.modules)}))
"""


def _parse_in_subprocess(folder: str, mappings, extra_env: dict[str, str] | None = None):
    env = {**os.environ, "KOPPEL_MAPPINGS_DIR": str(mappings), **(extra_env or {})}
    proc = subprocess.run([sys.executable, "-c", _PARSE_SCRIPT, folder], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(l for l in proc.stdout.splitlines() if l.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


@pytest.mark.parametrize("worker", [False, True], ids=["dag processor", "worker"])
def test_a_parse_imports_no_hook_client_or_flow_implementation(tmp_path, worker):
    from koppel.flows import catalog

    write_tenant(tmp_path, _every_flow("acme"))
    write_tenant(tmp_path, _every_flow("bolt"))
    if worker:  # the task runner parses the DAG's own file, the context naming the DAG
        parsed = _parse_in_subprocess(str(DAGS / "koppel_dags.py"), tmp_path,
                                      _parsing_context("orders__bolt"))
        assert parsed["dags"] == ["orders__bolt"]
    else:
        parsed = _parse_in_subprocess(str(DAGS), tmp_path)
        # every implemented flow made its DAG, so nothing was left out to pass the check
        assert {f"{d.name}__{t}" for d in catalog.implemented() for t in ("acme", "bolt")} \
            <= set(parsed["dags"])
    assert parsed["errors"] == {}
    loaded = set(parsed["modules"])
    implementations = {d.implementation.partition(":")[0] for d in catalog.implemented()}
    assert implementations and not implementations & loaded, implementations & loaded
    assert not loaded & set(HEAVY), loaded & set(HEAVY)
    assert "koppel.flows.catalog" in loaded and "koppel.steps.operators" in loaded


def test_a_worker_validates_only_its_own_tenant_file(tmp_path, monkeypatch, parse_dag_folder):
    """Only the worker's tenant file is validated (the others are not even read unless
    they name one of its connections, see the next test)."""
    from koppel.tenants import loader

    for tenant in ("acme", "bolt", "cora"):
        write_tenant(tmp_path, tenant_doc(tenant))
    broken = tenant_doc("brokenshop")
    broken["settings"]["unknown_sku"] = "skip"
    write_tenant(tmp_path, broken)
    validated: list[str] = []
    real = loader.parse_tenant

    def spy(data, label, *args, **kwargs):
        validated.append(os.path.basename(label))
        return real(data, label, *args, **kwargs)

    monkeypatch.setattr(loader, "parse_tenant", spy)
    one = _worker_parse(tmp_path, monkeypatch, "products__bolt")
    assert set(one.dags) == {"products__bolt"} and one.import_errors == {}
    assert validated == ["bolt.json"]
    # the worker of a broken tenant builds nothing, and raises nothing
    validated.clear()
    bag = _worker_parse(tmp_path, monkeypatch, "orders__brokenshop")
    assert bag.dags == {} and bag.import_errors == {}
    assert validated == ["brokenshop.json"]
    # the full parse still validates every file and reports the broken one
    validated.clear()
    full = parse_dag_folder(tmp_path)
    assert sorted(set(validated)) == ["acme.json", "bolt.json", "brokenshop.json", "cora.json"]
    assert list(full.import_errors) == [ERRORS_FILE]
    assert "brokenshop.json" in full.import_errors[ERRORS_FILE]
    assert "$.settings.unknown_sku" in full.import_errors[ERRORS_FILE]


def test_a_worker_refuses_a_tenant_on_another_tenants_connection(tmp_path, monkeypatch,
                                                                 parse_dag_folder):
    """A file naming another tenant's Lightspeed connection is refused by the full parse
    (both tenants, both files named); a worker parsing for either DAG refuses it too."""
    from koppel.flows import registry

    write_tenant(tmp_path, tenant_doc("acme"))
    intruder = tenant_doc("intruder")
    intruder["connections"]["lightspeed"] = "ls_acme"
    write_tenant(tmp_path, intruder)
    write_tenant(tmp_path, tenant_doc("bolt"))
    (tmp_path / "garbled.json").write_text("{not json")

    full = parse_dag_folder(tmp_path)
    assert not [d for d in full.dags if d.endswith(("__acme", "__intruder"))]
    assert "orders__bolt" in full.dags
    assert "also used by tenant(s) acme" in full.import_errors[ERRORS_FILE]
    for dag_id in ("orders__intruder", "orders__acme"):
        assert _worker_parse(tmp_path, monkeypatch, dag_id).dags == {}
    assert set(_worker_parse(tmp_path, monkeypatch, "orders__bolt").dags) == {"orders__bolt"}
    registry._tenant_set.cache_clear()
    with pytest.raises(LookupError, match="'intruder' has no valid file") as refused:
        registry.load_tenant("intruder")
    assert "connection 'ls_acme' is also used by tenant(s) acme" in str(refused.value)
    assert registry.load_tenant("bolt").tenant == "bolt"


def test_params_are_checked_once_per_kind_and_each_dag_owns_its_own(tmp_path, monkeypatch):
    import jsonschema
    from airflow.sdk.definitions.param import process_params

    from koppel.factory import build_dags
    from koppel.flows import registry

    for tenant in ("acme", "bolt"):
        write_tenant(tmp_path, tenant_doc(tenant))
    registry._tenant_set.cache_clear()
    build_dags(tmp_path)  # the kinds' Params are checked (once per process)
    checks = []
    real = jsonschema.validate
    monkeypatch.setattr(jsonschema, "validate",
                        lambda *a, **kw: checks.append(a) or real(*a, **kw))
    dags = build_dags(tmp_path)
    assert len(dags) > 6 and checks == [], "Params were checked again while building DAGs"

    orders, other = dags["orders__acme"], dags["orders__bolt"]
    # no task holds a copy of the DAG's Params: a task's run reads its DAG's
    assert all(not task.params for dag in dags.values() for task in dag.tasks)
    for name in orders.params:
        mine, theirs = orders.params.get_param(name), other.params.get_param(name)
        assert mine is not theirs and mine.schema is theirs.schema
    assert orders.params.get_param("records").value is not \
        other.params.get_param("records").value
    load = orders.get_task("load")
    resolved = process_params(orders, load, {"dry_run": True, "records": ["ORD1"]},
                              suppress_exception=False)
    assert resolved == {"since": None, "until": None, "dry_run": True, "full_resync": False,
                        "records": ["ORD1"]}
    assert checks, "a run's Params are checked against their schemas"
    assert other.params.dump()["records"] == [] and other.params.dump()["dry_run"] is False
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError, match="since"):
        process_params(other, other.get_task("extract"), {"since": "yesterday"},
                       suppress_exception=False)
    reconcile = dags["reconcile__acme"]
    assert reconcile.params.dump() == {"first_day": None, "last_day": None}
    assert not reconcile.get_task("reconcile").params


def test_every_task_names_the_method_it_runs(tmp_path):
    from koppel.factory import build_dags
    from koppel.flows import catalog, registry

    write_tenant(tmp_path, _every_flow("acme"))
    registry._tenant_set.cache_clear()
    dags = build_dags(tmp_path)
    for declaration in catalog.implemented():
        dag = dags[f"{declaration.name}__acme"]
        assert declaration.implementation_name in dag.doc_md
        for step in declaration.steps:
            task = dag.get_task(step)
            mapped = getattr(task, "partial_kwargs", None)  # chunk steps are mapped tasks
            flow = mapped["flow"] if mapped is not None else task.flow
            implementation = mapped["implementation"] if mapped is not None \
                else task.implementation
            operator = task.operator_class if mapped is not None else type(task)
            assert flow == declaration.name and operator.step == step
            assert implementation == declaration.implementation
            assert f"`{declaration.implementation_name}.{step}`" in task.doc_md
        assert [t for t in ("enrich", "exists_check", "customer_upsert")
                if t not in declaration.steps and dag.has_task(t)] == []


def test_the_run_state_is_airflows_finalize_is_the_teardown(tmp_path):
    """Every sync DAG: the steps, then the error threshold after every step, then
    ``finalize`` as the run's teardown — no task of koppel's own decides the run's state.
    The leaves Airflow judges a run by (its ``_tis_for_dagrun_state`` rule: teardowns
    without ``on_failure_fail_dagrun`` are left out) are the threshold check alone; a
    failed step reaches it as upstream_failed."""
    from koppel.factory import build_dags
    from koppel.flows import catalog, registry

    write_tenant(tmp_path, _every_flow("acme"))
    registry._tenant_set.cache_clear()
    dags = build_dags(tmp_path)
    for declaration in catalog.implemented():
        dag = dags[f"{declaration.name}__acme"]
        chunk_steps = list(declaration.chunk_steps)
        assert [t.task_id for t in dag.tasks] == ["wait_for_other_runs", "extract",
                                                  *chunk_steps, "check_error_threshold",
                                                  "finalize"]
        check, finalize = dag.get_task("check_error_threshold"), dag.get_task("finalize")
        assert check.trigger_rule == "none_failed_min_one_success"
        assert check.upstream_task_ids == set(chunk_steps)
        assert finalize.is_teardown and not finalize.on_failure_fail_dagrun
        assert finalize.trigger_rule == "all_done_setup_success"
        assert finalize.upstream_task_ids == {"check_error_threshold"}

        def effective_leaf(task) -> bool:
            downstream = [dag.get_task(t) for t in task.downstream_task_ids]
            return all(d.is_teardown and not d.on_failure_fail_dagrun for d in downstream) \
                and not (task.is_teardown and not task.on_failure_fail_dagrun)

        assert [t.task_id for t in dag.tasks if effective_leaf(t)] == ["check_error_threshold"]


def test_mapped_steps_get_airflows_defaults_without_a_signature_per_task(monkeypatch):
    """``partial()`` reads each operator class's ``__init__`` signature; koppel's are
    worked out once, and what Airflow derives from them is unchanged."""
    import inspect

    from airflow.sdk.bases import operator as sdk_operator

    from koppel.steps import operators

    calls = []
    real = inspect.signature
    monkeypatch.setattr(inspect, "signature", lambda obj, *a, **kw: calls.append(obj) or
                        real(obj, *a, **kw))
    for cls in (operators.EnrichOperator, operators.LoadOperator, operators.ExtractOperator):
        inits = [c.__dict__["__init__"] for c in cls.mro() if "__init__" in c.__dict__
                 and issubclass(c, operators.KoppelStepOperator)]
        assert inits
        for init in inits:
            assert init.__signature__ == real(inspect.unwrap(init))
        assert "tenant" in inits[-1].__signature__.parameters
        defaults = sdk_operator._get_operator_defaults(cls)
        assert defaults == sdk_operator.OPERATOR_DEFAULTS
    mapped = operators.LoadOperator.partial(task_id="load", tenant="acme", flow="orders",
                                            retries=7).expand(chunk_ref=[{"chunk": 0}])
    assert mapped.partial_kwargs["retries"] == 7 and mapped.partial_kwargs["tenant"] == "acme"
    # inspect.signature answers from __signature__ at once: no parameter walk per call
    assert all(getattr(obj, "__signature__", None) is not None for obj in calls)
