"""Jinja2 templates of koppel's Airflow UI pages (package data, loaded by
:mod:`koppel.web.templating`): ``dashboard.html`` and its ``_*.html`` parts, and the
doctor view's ``doctor_*.html``."""
