"""koppel: Airflow-native sync between Lightspeed eCom and QuickBooks Online."""

__version__ = "0.1.0"
