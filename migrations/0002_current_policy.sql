-- The active policy of the control plane: one row, written on every
-- activation (SetPolicy) and read at start-up, so the policy survives
-- restarts and every replica starts with the same one. Replicas hear of a
-- change through Redis pub/sub or NOTIFY luthien_policy.

CREATE TABLE current_policy (
    singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    class         text NOT NULL,
    config        jsonb NOT NULL DEFAULT '{}',
    revision      text NOT NULL,
    activated_at  timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
