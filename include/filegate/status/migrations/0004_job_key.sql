-- A file is one job per content *and* processing parameters: the same bytes uploaded with another page map are
-- a new job, the same bytes with the same parameters (or none) a duplicate. job_key is the sha256 when the
-- file carries no processing parameters, so existing files and their idempotency keys keep their identity.
ALTER TABLE file ADD COLUMN IF NOT EXISTS job_key TEXT;
UPDATE file SET job_key = sha256 WHERE job_key IS NULL AND sha256 IS NOT NULL;
DROP INDEX IF EXISTS file_one_load_per_content;
CREATE UNIQUE INDEX IF NOT EXISTS file_one_load_per_job ON file (feed, job_key)
    WHERE job_key IS NOT NULL AND status <> 'duplicate';
