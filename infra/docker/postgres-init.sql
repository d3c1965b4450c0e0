-- docker-compose.yaml: one server, two databases, as in the no-Docker stack (status store + Airflow metadata).
CREATE DATABASE airflow;
