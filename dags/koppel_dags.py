"""koppel: one DAG per tenant and flow (``orders__acme``), generated from the tenant files
in ``include/mappings/``. Add a tenant by adding a file; no code changes."""

from airflow.sdk import get_parsing_context

from koppel.factory import build_dags

globals().update(build_dags(only_dag_id=get_parsing_context().dag_id))
