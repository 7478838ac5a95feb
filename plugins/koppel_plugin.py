"""Mounts the koppel dashboard in Airflow 3's API server and adds it to the UI's nav.

Kept thin on purpose: every Airflow component imports this file, and only the API
server serves the app, so the app itself is imported on its first request."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from koppel.web import lazy_app
from koppel.web.connection_test import ConnectionTestPortMiddleware
from koppel.web.doctor_view import lazy_app as doctor_app


class KoppelPlugin(AirflowPlugin):
    name = "koppel"
    fastapi_apps = [{"app": lazy_app, "url_prefix": "/koppel", "name": "koppel"},
                    {"app": doctor_app, "url_prefix": "/koppel-doctor", "name": "koppel_doctor"}]
    # the connections' Test button sends port 0 for koppel's port-less connections
    fastapi_root_middlewares = [{"middleware": ConnectionTestPortMiddleware,
                                 "name": "koppel_connection_test_port"}]
    external_views = [{
        "name": "koppel",
        "href": "koppel/",
        "url_route": "koppel",
        "destination": "nav",
        "category": "browse",
    }, {
        "name": "koppel doctor",
        "href": "koppel-doctor/",
        "url_route": "koppel-doctor",
        "destination": "nav",
        "category": "browse",
    }]
