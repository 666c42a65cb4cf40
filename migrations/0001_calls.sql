-- Calls through the gateway and the events recorded for them.

CREATE TABLE calls (
    call_id          text PRIMARY KEY,
    session_id       text NOT NULL DEFAULT '',
    user_id          text NOT NULL DEFAULT '',
    model            text NOT NULL DEFAULT '',
    client_format    text NOT NULL DEFAULT '',
    upstream         text NOT NULL DEFAULT '',
    status           integer NOT NULL DEFAULT 0,
    stream           boolean NOT NULL DEFAULT false,
    started_at       timestamptz NOT NULL,
    finished_at      timestamptz,
    ttft_ms          double precision,
    duration_ms      double precision,
    input_tokens     bigint NOT NULL DEFAULT 0,
    output_tokens    bigint NOT NULL DEFAULT 0,
    cache_read_tokens     bigint NOT NULL DEFAULT 0,
    cache_creation_tokens bigint NOT NULL DEFAULT 0,
    intervened       boolean NOT NULL DEFAULT false,
    policy_revision  text NOT NULL DEFAULT '',
    error            text NOT NULL DEFAULT '',
    -- The start of the call's first user message (session previews).
    preview          text NOT NULL DEFAULT '',
    -- Conversation text (request messages and final response), redacted,
    -- for search snippets; conversation is its full-text index.
    conversation_text text NOT NULL DEFAULT '',
    conversation     tsvector
);

CREATE INDEX calls_started_at ON calls (started_at DESC, call_id DESC);
CREATE INDEX calls_session ON calls (session_id, started_at) WHERE session_id <> '';
CREATE INDEX calls_conversation ON calls USING gin (conversation);

-- Events have no foreign key to calls: policy events can be written before
-- the call's own row, which is written when the call ends. event_key
-- identifies an event within its call, so a resent record adds nothing.
CREATE TABLE call_events (
    id          bigserial PRIMARY KEY,
    call_id     text NOT NULL,
    event_key   text NOT NULL,
    session_id  text NOT NULL DEFAULT '',
    event_type  text NOT NULL,
    created_at  timestamptz NOT NULL,
    payload     jsonb NOT NULL
);

CREATE UNIQUE INDEX call_events_call ON call_events (call_id, event_key);
CREATE INDEX call_events_created_at ON call_events (created_at);
