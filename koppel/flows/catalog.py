"""koppel's flows, declared as data: the one table the DAG factory, the DAG builder and
the registry read.

Each row says what a flow is called, which API it reads by default, the steps it runs
(in order), how it describes itself, and which class implements it — as an import path
that nothing imports while DAG files are parsed. The operator of a step runs the method
of the same name on that class: the ``load`` task of ``orders__acme`` runs
``koppel.flows.orders.OrdersProcess.load``, and every task says so in its docs.

Standard library only: ``dags/koppel_dags.py`` imports this for every parse.
``tests/unit/test_flow_catalog.py`` checks every row against its implementation (steps,
source API, description), so the table and the classes cannot drift apart."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

#: every step a flow can have, in the order they run; ``finalize`` ends every run
STEP_ORDER = ("extract", "enrich", "exists_check", "customer_upsert", "load")
#: the steps that run once per chunk of records (mapped tasks)
CHUNK_STEPS = STEP_ORDER[1:]
APIS = ("lightspeed", "quickbooks")


@dataclass(frozen=True)
class FlowDeclaration:
    """One flow: ``<name>__<tenant>`` DAGs run ``steps`` of ``implementation``."""

    name: str
    source_api: str
    steps: tuple[str, ...]
    description: str
    #: ``"package.module:Class"``; ``None``: declared but not implemented (no DAGs)
    implementation: str | None

    def __post_init__(self) -> None:
        if self.source_api not in APIS:
            raise ValueError(f"flow {self.name!r}: source_api must be one of {APIS}, "
                             f"not {self.source_api!r}")
        if not self.steps or self.steps[0] != "extract":
            raise ValueError(f"flow {self.name!r}: the first step must be 'extract'")
        unknown = [s for s in self.steps if s not in STEP_ORDER]
        if unknown:
            raise ValueError(f"flow {self.name!r}: unknown step(s) {unknown}; steps are "
                             f"{STEP_ORDER}")
        if list(self.steps) != sorted(self.steps, key=STEP_ORDER.index):
            raise ValueError(f"flow {self.name!r}: steps {self.steps} are not in the order "
                             f"they run ({STEP_ORDER})")
        if self.implementation is not None and ":" not in self.implementation:
            raise ValueError(f"flow {self.name!r}: implementation must be 'module:Class', "
                             f"not {self.implementation!r}")

    @property
    def implemented(self) -> bool:
        return self.implementation is not None

    @property
    def chunk_steps(self) -> tuple[str, ...]:
        """The steps after ``extract``, each a mapped task over the extracted chunks."""
        return tuple(step for step in self.steps if step != "extract")

    @property
    def implementation_name(self) -> str:
        """``koppel.flows.orders.OrdersProcess``: the dotted name of the class."""
        if self.implementation is None:
            raise LookupError(f"flow {self.name!r} is not implemented")
        return self.implementation.replace(":", ".")

    def method(self, step: str) -> str:
        """The dotted name of the method a step runs (``…OrdersProcess.load``)."""
        if step not in self.steps:
            raise LookupError(f"flow {self.name!r} has no step {step!r} (its steps: "
                              f"{', '.join(self.steps)})")
        return f"{self.implementation_name}.{step}"

    def load(self) -> Any:
        """The implementing class (imports its module: at run time only)."""
        if self.implementation is None:
            raise LookupError(f"flow {self.name!r} is not implemented")
        module, _, name = self.implementation.partition(":")
        try:
            return getattr(importlib.import_module(module), name)
        except AttributeError:
            raise LookupError(f"flow {self.name!r}: {module} has no class {name!r} "
                              f"(koppel/flows/catalog.py names it)") from None


FLOWS: tuple[FlowDeclaration, ...] = (
    FlowDeclaration(
        name="orders", source_api="lightspeed",
        steps=("extract", "enrich", "exists_check", "customer_upsert", "load"),
        description="Lightspeed orders booked in QuickBooks Online as sales receipts or "
                    "invoices, exactly once, to the cent",
        implementation="koppel.flows.orders:OrdersProcess"),
    FlowDeclaration(
        name="products", source_api="lightspeed",
        steps=("extract", "enrich", "exists_check", "load"),
        description="Lightspeed catalogue → QuickBooks items by SKU: categories, prices, "
                    "descriptions, images; unchanged items cost no writes",
        implementation="koppel.flows.products:ProductsProcess"),
    FlowDeclaration(
        name="stock", source_api="lightspeed",
        steps=("extract", "exists_check", "load"),
        description="Stock levels between Lightspeed variants and QuickBooks inventory "
                    "items (only changed quantities are written)",
        implementation="koppel.flows.stock:StockProcess"),
    FlowDeclaration(
        name="customers", source_api="lightspeed",
        steps=("extract", "enrich", "load"),
        description="Lightspeed customers changed in the interval created or updated in "
                    "QuickBooks (found by e-mail, companies with their contacts)",
        implementation="koppel.flows.customers:CustomersProcess"),
    FlowDeclaration(
        name="orders_reverse", source_api="quickbooks",
        steps=("extract", "enrich", "exists_check", "customer_upsert", "load"),
        description="QuickBooks sales receipts and invoices created as Lightspeed orders "
                    "through checkouts, once, without loops",
        implementation="koppel.flows.orders_reverse:ReverseOrdersProcess"),
    FlowDeclaration(
        name="refunds", source_api="lightspeed",
        steps=("extract", "enrich", "exists_check", "load"),
        description="Lightspeed credits and returns of booked orders booked in QuickBooks "
                    "Online as refund receipts or credit memos, exactly once, to the cent",
        implementation="koppel.flows.refunds:RefundsProcess"),
)

_BY_NAME = {declaration.name: declaration for declaration in FLOWS}
if len(_BY_NAME) != len(FLOWS):
    raise ValueError("koppel/flows/catalog.py declares a flow twice")


def flow(name: str) -> FlowDeclaration:
    """The declaration of flow ``name``."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise LookupError(f"unknown flow {name!r}; koppel's flows: "
                          f"{', '.join(_BY_NAME)}") from None


def names() -> list[str]:
    """Every declared flow, in the table's order."""
    return list(_BY_NAME)


def implemented() -> list[FlowDeclaration]:
    """The flows that have an implementation (and so DAGs), in the table's order."""
    return [declaration for declaration in FLOWS if declaration.implemented]


def split_dag_id(dag_id: str | None) -> tuple[str, str] | None:
    """``("orders", "acme")`` for ``orders__acme``; ``None`` for a DAG id that is no
    ``<flow>__<tenant>`` (flow names hold no ``__``, so the tenant is all after the
    first one)."""
    if not dag_id:
        return None
    name, sep, tenant = dag_id.partition("__")
    if not sep or not name or not tenant:
        return None
    return name, tenant
