"""The daily report: compute it from the status store, render it as HTML (inline SVG charts), JSON and CSV,
store it under reports/<yyyy-mm-dd>/ in S3. No Airflow here; the `daily_report` DAG wires it up."""
