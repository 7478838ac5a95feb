"""koppel: one DAG per tenant and flow (``orders__acme``), generated from the tenant files
in ``include/mappings/`` and the flow declarations in ``koppel/flows/catalog.py``. Add a
tenant by adding a file; no code changes.

A worker parsing this file to start a task (Airflow's parsing context names the DAG)
reads and builds that DAG's tenant only; broken tenant files are reported by
``koppel_tenant_errors.py``."""

from airflow.sdk import get_parsing_context

from koppel.factory import build_dags

globals().update(build_dags(only_dag_id=get_parsing_context().dag_id))
