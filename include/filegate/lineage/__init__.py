"""What a file run means as lineage: its raw object in, its Parquet keys, Postgres table, API endpoint and
quarantined rows out, with schema, row counts and data-quality assertions. Plain data built from the status
store and the contract; no Airflow here (filegate.orchestration.lineage emits it through the OpenLineage
provider, the Filegate page shows it)."""
