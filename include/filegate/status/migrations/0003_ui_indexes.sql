-- Indexes for the Filegate UI, its REST API and the daily report (filegate.status.queries).
-- Lists are newest first with keyset pagination on id, so each filter has an index ending in id.
CREATE INDEX IF NOT EXISTS file_status_id ON file (status, id DESC);
CREATE INDEX IF NOT EXISTS file_feed_status_id ON file (feed, status, id DESC);
CREATE INDEX IF NOT EXISTS file_feed_id ON file (feed, id DESC);
-- Counts over a period and the daily report read feed and status straight from this index.
CREATE INDEX IF NOT EXISTS file_created_at ON file (created_at) INCLUDE (feed, status);
-- Name search is a case-insensitive substring (ILIKE '%…%'): a trigram index serves it where pg_trgm can be
-- created (RDS, Aurora, most servers); elsewhere (the embedded local Postgres lacks it) the search scans.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
        BEGIN
            CREATE EXTENSION IF NOT EXISTS pg_trgm;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE NOTICE 'pg_trgm could not be created: file name search will scan';
        END;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        EXECUTE 'CREATE INDEX IF NOT EXISTS file_name_trgm ON file USING gin (name gin_trgm_ops)';
    END IF;
END
$$;
