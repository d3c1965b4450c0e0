-- Schema drift (filegate.schema_drift): every schema a feed has accepted, and every file whose schema differed
-- from the feed's current one.
--
-- A version is one schema (column names, order, types, nullability) per feed: the unique fingerprint makes two
-- files of a feed processed at once upsert one version, never two. The feed's current version is the one its
-- latest accepted file had (highest last_file_id), so a feed that goes back to an older schema returns to it.
CREATE TABLE schema_version (
    id            BIGSERIAL PRIMARY KEY,
    feed          TEXT        NOT NULL,
    version       INTEGER     NOT NULL,
    fingerprint   TEXT        NOT NULL,
    columns       JSONB       NOT NULL,
    profile       JSONB       NOT NULL DEFAULT '{}'::jsonb,  -- values profile per column (rename detection)
    file_id       BIGINT      REFERENCES file (id),           -- the file that introduced the version
    last_file_id  BIGINT      REFERENCES file (id),           -- the latest accepted file with this schema
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT schema_version_one_per_schema UNIQUE (feed, fingerprint),
    CONSTRAINT schema_version_numbered UNIQUE (feed, version)
);
CREATE INDEX schema_version_current ON schema_version (feed, last_file_id DESC);

-- One drift record per file (a reprocess replaces it): what changed against which version, and what the
-- feed's policy did. `changes` holds filegate.schema_drift.Change.as_dict() items.
CREATE TABLE schema_drift (
    file_id       BIGINT      PRIMARY KEY REFERENCES file (id),
    feed          TEXT        NOT NULL,
    policy        TEXT        NOT NULL,
    action        TEXT        NOT NULL CONSTRAINT schema_drift_action_known
                               CHECK (action IN ('evolved', 'warned', 'frozen', 'not_accepted')),
    from_version  INTEGER,
    to_version    INTEGER,
    summary       TEXT        NOT NULL,
    changes       JSONB       NOT NULL DEFAULT '[]'::jsonb,
    columns       JSONB       NOT NULL DEFAULT '[]'::jsonb,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX schema_drift_feed ON schema_drift (feed, created_at DESC);
