-- Ask (plain-language questions): the read-only views its SQL may read and the role it runs under.
--
-- Every Ask query runs `SET LOCAL ROLE filegate_ask` inside a read-only transaction. The role cannot log in and
-- may only read the views of schema `ask`; the views run with their owner's rights over the tables, so the role
-- itself has no grant on any table. Each view shows only the feeds the asking user may read: the request puts
-- them in the transaction-local setting `filegate.ask_feeds` (comma-separated) before switching role, and a view
-- with the setting missing or empty shows nothing.
--
-- `ask.sales` (the marketplace aggregate) is created by filegate.ask.sales_view when its table exists: the table is
-- made by the loader on the feed's first load, after this migration has run.
CREATE SCHEMA IF NOT EXISTS ask;

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'filegate_ask') THEN
        BEGIN
            CREATE ROLE filegate_ask NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- another database of the same server created it at the same moment (roles are server-wide)
        END;
    END IF;
    -- SET ROLE needs membership; Postgres 16 does not give a role's creator that by default. (A superuser is
    -- already a member of every role: no GRANT, so databases of one server migrating at once do not collide.)
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        EXECUTE format('GRANT filegate_ask TO %I', current_user);
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'Ask: cannot create or grant the role filegate_ask (the status-store user needs CREATEROLE); '
                  'Ask refuses every question until an administrator runs: CREATE ROLE filegate_ask NOLOGIN; '
                  'GRANT filegate_ask TO <status-store user>;';
END
$$;

CREATE OR REPLACE VIEW ask.files AS
SELECT f.id,
       f.feed,
       f.name,
       f.source,
       f.status,
       coalesce(f.arrived_on, (f.created_at AT TIME ZONE 'UTC')::date) AS day,
       f.created_at,
       f.finished_at,
       f.size_bytes,
       f.attempts,
       f.error,
       q.rows_total,
       q.rows_valid,
       q.rows_rejected
FROM file AS f
LEFT JOIN quality_result AS q ON q.file_id = f.id
WHERE f.feed = ANY (string_to_array(current_setting('filegate.ask_feeds', true), ','));

DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'filegate_ask') THEN
        GRANT USAGE ON SCHEMA ask TO filegate_ask;
        GRANT SELECT ON ask.files TO filegate_ask;
    END IF;
END
$$;
