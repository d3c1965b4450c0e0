"""The Filegate view inside the Airflow UI: a FastAPI app (page + REST API + upload) mounted by plugins/."""
