-- Who changed the policy, and the history of its activations.
--  * current_policy.changed_by: who activated the active policy (the
--    gateway's x-luthien-actor, "startup" or the policy file's path; ''
--    when unknown).
--  * policy_history: one row per activation, written in the same
--    transaction as the current_policy upsert. Bounded: each write keeps
--    the newest 1000 rows (by id) and deletes older ones in that
--    transaction, so the table never grows past 1000 rows.
-- The active policy of an existing database becomes the first entry.

ALTER TABLE current_policy ADD COLUMN changed_by text NOT NULL DEFAULT '';

CREATE TABLE policy_history (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    class         text NOT NULL,
    config        jsonb NOT NULL DEFAULT '{}',
    revision      text NOT NULL,
    activated_at  timestamptz NOT NULL,
    changed_by    text NOT NULL DEFAULT '',
    recorded_at   timestamptz NOT NULL DEFAULT now()
);

INSERT INTO policy_history (class, config, revision, activated_at, changed_by)
SELECT class, config, revision, activated_at, changed_by FROM current_policy;
