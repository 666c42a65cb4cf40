-- Lighter event rows: writing events is most of what PostgreSQL does for
-- the gateway, and every index and conversion on that path costs on every
-- call.
--  * The serial id goes: (call_id, event_key) already identifies an event,
--    so it becomes the primary key, and one index less is kept up to date.
--  * The payload becomes json: nothing queries inside it, and json keeps
--    the text as written (a body's own key order and spelling) instead of
--    converting it to jsonb's binary form on every insert.
-- No data is lost: the ids were never shown outside the store.

ALTER TABLE call_events DROP CONSTRAINT call_events_pkey;
ALTER TABLE call_events DROP COLUMN id;
ALTER TABLE call_events ADD CONSTRAINT call_events_pkey PRIMARY KEY USING INDEX call_events_call;
ALTER TABLE call_events ALTER COLUMN payload TYPE json USING payload::json;

-- A body no policy changed is stored once: the call row says so, and its
-- final event (request.final, response.final) is rebuilt from the original
-- when read.
ALTER TABLE calls ADD COLUMN request_unchanged boolean NOT NULL DEFAULT false,
  ADD COLUMN response_unchanged boolean NOT NULL DEFAULT false;
