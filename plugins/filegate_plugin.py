"""Registers the Filegate view with Airflow: the FastAPI app and its entry in the UI's navigation."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from filegate.orchestration.webapp.app import PREFIX, app


class FilegatePlugin(AirflowPlugin):
    name = "filegate"
    fastapi_apps = [{"app": app, "url_prefix": PREFIX, "name": "Filegate"}]
    # url_route makes the UI show the page in an iframe at /plugin/filegate, with the Airflow nav around it.
    external_views = [{"name": "Filegate", "href": f"{PREFIX}/page", "url_route": "filegate", "destination": "nav"}]
