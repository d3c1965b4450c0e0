-- Filegate status store: every file's life, its API calls and its quality.
CREATE TABLE file (
    id              BIGSERIAL PRIMARY KEY,
    feed            TEXT        NOT NULL,
    source          TEXT        NOT NULL,
    source_path     TEXT,
    name            TEXT        NOT NULL,
    raw_key         TEXT        NOT NULL UNIQUE,
    sha256          TEXT,
    size_bytes      BIGINT,
    status          TEXT        NOT NULL,
    error           TEXT,
    duplicate_of    BIGINT REFERENCES file (id),
    outputs         JSONB       NOT NULL DEFAULT '{}'::jsonb,
    params          JSONB       NOT NULL DEFAULT '{}'::jsonb,
    attempts        INTEGER     NOT NULL DEFAULT 0,
    last_dag_id     TEXT,
    last_run_id     TEXT,
    last_task_id    TEXT,
    claimed_at      TIMESTAMPTZ,
    arrived_on      DATE,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at     TIMESTAMPTZ,
    CONSTRAINT file_status_known CHECK (status IN
        ('pending', 'downloaded', 'queued', 'processing', 'processed', 'failed', 'quarantined', 'duplicate'))
);
-- One load per content and feed: a second delivery of the same bytes is a duplicate, not a second load.
CREATE UNIQUE INDEX file_one_load_per_content ON file (feed, sha256)
    WHERE sha256 IS NOT NULL AND status <> 'duplicate';
CREATE INDEX file_status_feed ON file (status, feed);
CREATE INDEX file_feed_created ON file (feed, created_at DESC);
CREATE INDEX file_arrived_on ON file (feed, arrived_on);

CREATE TABLE file_event (
    id          BIGSERIAL PRIMARY KEY,
    file_id     BIGINT      NOT NULL REFERENCES file (id),
    from_status TEXT,
    to_status   TEXT        NOT NULL,
    at          TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    dag_id      TEXT,
    run_id      TEXT,
    task_id     TEXT,
    try_number  INTEGER,
    message     TEXT
);
CREATE INDEX file_event_file ON file_event (file_id, id);

CREATE TABLE api_call (
    id               BIGSERIAL PRIMARY KEY,
    file_id          BIGINT      NOT NULL REFERENCES file (id),
    batch_no         INTEGER     NOT NULL,
    idempotency_key  TEXT        NOT NULL,
    url              TEXT        NOT NULL,
    records          INTEGER     NOT NULL,
    attempt          INTEGER     NOT NULL,
    status_code      INTEGER,
    latency_ms       DOUBLE PRECISION,
    response_excerpt TEXT,
    error            TEXT,
    acknowledged     BOOLEAN     NOT NULL DEFAULT false,
    at               TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX api_call_file ON api_call (file_id, batch_no);
CREATE INDEX api_call_key_acknowledged ON api_call (idempotency_key) WHERE acknowledged;

CREATE TABLE quality_result (
    file_id         BIGINT PRIMARY KEY REFERENCES file (id),
    rows_total      BIGINT      NOT NULL,
    rows_valid      BIGINT      NOT NULL,
    rows_rejected   BIGINT      NOT NULL,
    inferred_schema JSONB       NOT NULL DEFAULT '{}'::jsonb,
    column_stats    JSONB       NOT NULL DEFAULT '{}'::jsonb,
    issues          JSONB       NOT NULL DEFAULT '[]'::jsonb,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
