"""A file's run: the engine (parse → validate → transform → Parquet), Write-Audit-Publish to S3 and Postgres,
routing heavy files to Lambda, and the steps a DAG run takes over a batch of files."""
