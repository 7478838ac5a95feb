"""The flow declaration table (``koppel/flows/catalog.py``): one row per flow, read by the
DAG factory, the DAG builder and the registry, each row true to the class it names."""

from __future__ import annotations

import inspect

import pytest

from koppel.flows import catalog, registry


@pytest.mark.parametrize("declaration", catalog.implemented(), ids=lambda d: d.name)
def test_each_declaration_matches_the_class_it_names(declaration):
    cls = declaration.load()
    assert cls.__module__ + "." + cls.__qualname__ == declaration.implementation_name
    assert cls.flow == declaration.name
    # what the row says is said only there: the class repeats none of it
    for repeated in ("source_api", "steps", "description"):
        assert not hasattr(cls, repeated), f"{declaration.implementation_name}.{repeated}"
    # every step the DAG runs is a method of the class, in one step from the task's docs
    for step in declaration.steps:
        dotted = declaration.method(step)
        assert dotted == f"{declaration.implementation_name}.{step}"
        method = getattr(cls, step)
        assert callable(method) and not getattr(method, "__isabstractmethod__", False), dotted
        if step != "extract":
            assert list(inspect.signature(method).parameters) == ["self", "records"], dotted
    # and a step the class implements beyond the base's pass-through is one the row runs
    from koppel.steps.kernel import Process

    own = {s for s in catalog.STEP_ORDER if getattr(cls, s) is not getattr(Process, s, None)}
    assert own <= set(declaration.steps), (declaration.name, own - set(declaration.steps))


def test_the_table_covers_every_flow_a_tenant_file_can_enable():
    from koppel.tenants.model import FLOW_NAMES, Flows

    assert sorted(catalog.names()) == sorted(FLOW_NAMES)
    assert set(catalog.names()) == set(Flows.model_fields)


def test_the_registry_reads_the_table():
    assert registry.FLOWS == {d.name: d.implementation for d in catalog.FLOWS}
    assert registry.implemented_flows() == [d.name for d in catalog.implemented()]
    assert registry.process_class("stock") is catalog.flow("stock").load()
    with pytest.raises(KeyError, match="'invoices' is not implemented"):
        registry.process_class("invoices")


def test_every_chunk_step_has_its_operator_and_the_operator_calls_that_method():
    from koppel.flows.dag import STEP_OPERATORS

    assert tuple(STEP_OPERATORS) == catalog.CHUNK_STEPS
    calls = []

    class Process:
        def __getattr__(self, name):
            return lambda records: calls.append((name, records)) or name

    for step, operator in STEP_OPERATORS.items():
        assert operator.step == step
        assert operator.run_step(None, Process(), ["r1"]) == step
    assert calls == [(step, ["r1"]) for step in catalog.CHUNK_STEPS]


def test_a_dag_id_names_its_flow_and_tenant():
    assert catalog.split_dag_id("orders__acme") == ("orders", "acme")
    assert catalog.split_dag_id("orders_reverse__acme") == ("orders_reverse", "acme")
    assert catalog.split_dag_id("reconcile__shop__two") == ("reconcile", "shop__two")
    for not_a_tenant_dag in (None, "", "koppel_retention", "__acme", "orders__"):
        assert catalog.split_dag_id(not_a_tenant_dag) is None


def test_a_malformed_declaration_is_refused_naming_the_flow():
    good = dict(name="x", source_api="lightspeed", steps=("extract", "load"),
                description="d", implementation="m:C")
    catalog.FlowDeclaration(**good)
    for change, reason in (({"source_api": "shopify"}, "source_api"),
                           ({"steps": ("load",)}, "first step must be 'extract'"),
                           ({"steps": ("extract", "publish")}, "unknown step"),
                           ({"steps": ("extract", "load", "enrich")}, "not in the order"),
                           ({"implementation": "koppel.flows.x.C"}, "module:Class")):
        with pytest.raises(ValueError, match=reason) as raised:
            catalog.FlowDeclaration(**{**good, **change})
        assert "flow 'x'" in str(raised.value)
    with pytest.raises(LookupError, match="has no step 'enrich'"):
        catalog.FlowDeclaration(**good).method("enrich")
    with pytest.raises(LookupError, match="unknown flow 'invoices'"):
        catalog.flow("invoices")
    missing = catalog.FlowDeclaration(**{**good, "implementation": "koppel.flows.stock:Nope"})
    with pytest.raises(LookupError, match="has no class 'Nope'"):
        missing.load()


def test_a_step_task_imports_the_class_it_is_given_when_it_runs():
    from koppel.steps.operators import ExtractOperator

    class Run:
        pass

    declaration = catalog.flow("stock")
    task = ExtractOperator(task_id="extract", tenant="acme", flow="stock",
                           implementation=declaration.implementation)
    process = task._process(Run())
    assert type(process) is declaration.load()
    nameless = ExtractOperator(task_id="extract", tenant="acme", flow="stock")
    with pytest.raises(LookupError, match="koppel acme/stock extract: the task names no "
                                          "implementation"):
        nameless._process(Run())


def test_retention_covers_every_dag_of_a_tenant():
    """Logs and XComs of every DAG koppel makes for a tenant are purged, the daily
    reconciliation's included."""
    from koppel.factory import build_dags
    from koppel.retention import tenant_dag_ids

    built = {d for d in build_dags() if d.endswith("__demo")}
    assert built and built <= set(tenant_dag_ids("demo"))
