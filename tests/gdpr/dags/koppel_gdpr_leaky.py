"""A DAG whose task leaks personal data into its log every way a task can: a koppel
(stdlib) logger, another library's stdlib logger, the operator's own structlog logger
and the traceback of its failure. Used by tests/gdpr/test_log_redaction.py only."""

from __future__ import annotations

import datetime as dt
import logging

from airflow.sdk import DAG, BaseOperator

LEAKS = {"koppel": "jan.jansen@example.com", "phone": "+31 6 1234 5678",
         "structlog": "piet.pietersen@example.org", "library": "klaas.klaassen@example.net",
         "exception": "marie.curie@example.com"}


class LeakyOperator(BaseOperator):
    def execute(self, context):
        logging.getLogger("koppel.gdpr_test").info("mail %s or call %s", LEAKS["koppel"],
                                                   LEAKS["phone"])
        self.log.info("structlog line about %s", LEAKS["structlog"])
        logging.getLogger("some.library").warning("library line about %s", LEAKS["library"])
        raise RuntimeError(f"The name supplied already exists: {LEAKS['exception']}")


with DAG("koppel_gdpr_leaky", schedule=None, start_date=dt.datetime(2024, 1, 1),
         catchup=False, default_args={"retries": 0}):
    LeakyOperator(task_id="leak")
