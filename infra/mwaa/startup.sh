#!/bin/sh
# MWAA runs this before every Airflow component starts (scheduler, workers, web server, triggerer, dag-processor).
# It only exports environment variables: MWAA hands the stack's custom configuration options to every container
# as AIRFLOW__FILEGATE__<KEY> (template: AirflowConfigurationOptions filegate.*); the library reads FILEGATE_<KEY>.
# Keep it fast and side-effect free: MWAA captures the exported variables and runs Airflow with them.
# The library travels in plugins.zip; the feed contracts in dags/feeds/, which MWAA syncs without an environment update.
export FILEGATE_FEEDS_DIR="${AIRFLOW_HOME:-/usr/local/airflow}/dags/feeds"
export FILEGATE_BUCKET="${AIRFLOW__FILEGATE__BUCKET:-}"
export FILEGATE_SQS_QUEUE_BASE_URL="${AIRFLOW__FILEGATE__SQS_QUEUE_BASE_URL:-}"
export FILEGATE_ALERT_TOPIC_ARN="${AIRFLOW__FILEGATE__ALERT_TOPIC_ARN:-}"
export FILEGATE_SQS_WAITER_DELAY="${AIRFLOW__FILEGATE__SQS_WAITER_DELAY:-1}"
