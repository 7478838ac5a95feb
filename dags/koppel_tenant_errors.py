"""Broken koppel tenant files, shown as this file's airflow dag import error (naming the file,
the JSON path and the reason) while every valid tenant's DAGs load from koppel_dags.py."""

from koppel.factory import tenant_errors

_problems = tenant_errors()
if _problems:
    raise ValueError("invalid koppel tenant file(s):\n" + "\n".join(_problems))
