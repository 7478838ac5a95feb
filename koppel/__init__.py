"""koppel: Airflow-native sync between Lightspeed eCom and QuickBooks Online."""

__version__ = "0.1.0"

# Task logs carry no personal data: scrub e-mail addresses and phone numbers from every
# log record koppel's code emits (see koppel.privacy). Standard library only plus
# structlog (already loaded by Airflow): cheap at DAG-parse time.
from koppel.privacy import install_log_redaction as _install_log_redaction

_install_log_redaction()
