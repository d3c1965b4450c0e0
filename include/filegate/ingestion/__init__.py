"""Ingestion sources: FTP/FTPS pickup into raw/, and the interval-owned (sensed, backfillable) S3 arrivals.

No Airflow here: filegate.orchestration wraps these functions in DAGs, tests and benchmarks call them directly.
"""
