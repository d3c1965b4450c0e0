-- Expected deliveries (a feed contract's `expect:`): one row per slot, its state, and the files that count for
-- it. States: expected → arrived | late | missed, and missed → late when the files come after all.
CREATE TABLE IF NOT EXISTS delivery_slot (
    id               BIGSERIAL PRIMARY KEY,
    feed             TEXT        NOT NULL,
    expected_at      TIMESTAMPTZ NOT NULL,
    deadline_at      TIMESTAMPTZ NOT NULL,          -- expected_at + the grace period
    local_day        DATE        NOT NULL,          -- the slot's day in the feed's time zone (calendar column)
    pattern          TEXT        NOT NULL,          -- file-name glob of the slot
    files_expected   INTEGER     NOT NULL,
    state            TEXT        NOT NULL DEFAULT 'expected',
    satisfied_at     TIMESTAMPTZ,                   -- when the last needed file arrived
    delay_seconds    INTEGER,                       -- satisfied_at - expected_at, when positive
    missed_at        TIMESTAMPTZ,                   -- when it was first seen missed (kept after it turns late)
    state_changed_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    alerted_state    TEXT,                          -- the state last announced through SNS
    alerted_at       TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT delivery_slot_state_known CHECK (state IN ('expected', 'arrived', 'late', 'missed')),
    CONSTRAINT delivery_slot_once UNIQUE (feed, expected_at)
);
CREATE INDEX IF NOT EXISTS delivery_slot_day ON delivery_slot (local_day, feed);
-- The watch reads the slots still open and the ones with an unsent alert.
CREATE INDEX IF NOT EXISTS delivery_slot_open ON delivery_slot (feed) WHERE state IN ('expected', 'missed');

-- A file counts for one slot at most.
CREATE TABLE IF NOT EXISTS delivery_slot_file (
    slot_id    BIGINT      NOT NULL REFERENCES delivery_slot (id),
    file_id    BIGINT      NOT NULL REFERENCES file (id) UNIQUE,
    arrived_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS delivery_slot_file_slot ON delivery_slot_file (slot_id);
