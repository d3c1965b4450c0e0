"""Posting records to external HTTP APIs: batched, idempotent, retried, rate-limited, every attempt recorded.

Import from the modules: `client` (deliver_records, ApiTarget: imports `requests`), `payload` (record batches
from Parquet) and `template` (payload templates). This file imports none of them: validating a contract imports
`template`, in every DAG file parse and API request, and must not bring the HTTP client with it.
"""
