"""Where data lives: the bucket layout, streaming S3 helpers, and Postgres connections that never echo a DSN."""
