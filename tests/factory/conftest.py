"""Fixtures of the DAG-factory tests.

The end-to-end harness of ``tests/flows/conftest.py`` (``shop``, ``shop_factory``,
``make_tenant``, ``qbo_server``) is reused as it is: that file is loaded here under a name
of its own and its fixtures are bound into this conftest, so nothing is copied and
nothing in ``tests/flows`` changes."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from factory_helpers import DAGS, ROOT

_spec = importlib.util.spec_from_file_location("koppel_flows_harness",
                                               ROOT / "tests" / "flows" / "conftest.py")
harness = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = harness
_spec.loader.exec_module(harness)

qbo_server = harness.qbo_server
shop_factory = harness.shop_factory
shop = harness.shop
make_tenant = harness.make_tenant


@pytest.fixture
def parse_dag_folder(monkeypatch):
    """``parse_dag_folder(mappings_dir)`` → a DagBag over ``dags/`` as the dag processor
    would fill it with ``KOPPEL_MAPPINGS_DIR`` pointing at ``mappings_dir``."""
    from koppel.flows import registry

    def parse(mappings_dir: Path):
        from airflow.dag_processing.dagbag import DagBag

        monkeypatch.setenv("KOPPEL_MAPPINGS_DIR", str(mappings_dir))
        registry._tenant_set.cache_clear()  # the tenant files are read once per directory
        return DagBag(dag_folder=str(DAGS))

    yield parse
    registry._tenant_set.cache_clear()
