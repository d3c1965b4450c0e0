-- A claim is a lease: the run holding a `processing` file renews lease_expires_at while its task is alive
-- (filegate.status.lease). A file whose lease ran out (its task was SIGKILLed, its worker scaled away) goes back
-- to `queued` at the next claim of its feed, or by reprocess_files, with a history entry saying whose claim
-- expired. A file waiting for its API keeps its claim: delivery_waiting_since starts the destination's deadline
-- (retry_for_minutes) and delivery_retry_at is the earliest next post (an API's Retry-After included).
ALTER TABLE file ADD COLUMN IF NOT EXISTS lease_expires_at TIMESTAMPTZ;
ALTER TABLE file ADD COLUMN IF NOT EXISTS delivery_waiting_since TIMESTAMPTZ;
ALTER TABLE file ADD COLUMN IF NOT EXISTS delivery_retry_at TIMESTAMPTZ;
-- Files claimed before this migration get a generous lease from their claim time, never an instant release.
UPDATE file SET lease_expires_at = coalesce(claimed_at, updated_at) + interval '1 hour'
    WHERE status = 'processing' AND lease_expires_at IS NULL;
CREATE INDEX IF NOT EXISTS file_processing_lease ON file (feed, lease_expires_at) WHERE status = 'processing';
