"""AWS Lambda handlers: thin adapters over the same engine the Airflow workers run."""
