"""The only part of Filegate that imports Airflow: DAG policy, connections, callbacks and DAG builders."""
