-- What ingest paid for without protection (measured in BENCHMARKS.md, ingest section).
--
-- 1. Foreign keys of the event log: every stored event fired two referential-integrity
--    triggers (organization, conversation), each an index probe and a row lock. The
--    judgement already guarantees both: an event is stored only after its organization
--    exists and, for conversation events, only after its conversation_opened was accepted
--    (UNKNOWN_CONVERSATION otherwise), in the same transaction under the organization's
--    ingest lock. Nothing deletes organizations or conversations.
ALTER TABLE cockpit.events DROP CONSTRAINT events_org_id_fkey;
ALTER TABLE cockpit.events DROP CONSTRAINT events_org_id_conversation_id_fkey;
--    The same for a conversation's product and assignee: ingest stores a conversation only
--    after finding its product (UNKNOWN_PRODUCT otherwise) and assigns only agents it
--    found (UNKNOWN_AGENT), under the same lock; nothing deletes products or agents. The
--    assignee's key-share lock also no longer meets a status change's row lock.
ALTER TABLE cockpit.conversations DROP CONSTRAINT conversations_org_id_product_id_fkey;
ALTER TABLE cockpit.conversations DROP CONSTRAINT conversations_org_id_assignee_id_fkey;

-- 2. The arrival sequence: no query reads it (the refresh works from dirty marks), yet
--    every insert drew from its sequence and maintained its index.
DROP INDEX cockpit.events_by_seq;
ALTER TABLE cockpit.events DROP COLUMN seq;

-- 3. parse_instant as one SQL expression: inlined into the statements that call it,
--    instead of a PL/pgSQL call per event. Same checks, in an order that never casts an
--    unchecked field: the shape first, then month, day, time and offset ranges.
CREATE OR REPLACE FUNCTION cockpit.parse_instant(p text) RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN p IS NULL OR length(p) > 40
             OR p !~ '^\d\d\d\d-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d{1,9})?([Zz]|[+-]\d\d:\d\d)$' THEN NULL
        WHEN substr(p, 1, 4)::integer < 1 OR substr(p, 6, 2)::integer NOT BETWEEN 1 AND 12 THEN NULL
        WHEN substr(p, 9, 2)::integer < 1
             OR substr(p, 9, 2)::integer > extract(day FROM make_date(substr(p, 1, 4)::integer,
                                                                     substr(p, 6, 2)::integer, 1)
                                                       + interval '1 month - 1 day') THEN NULL
        WHEN substr(p, 12, 2)::integer > 23 OR substr(p, 15, 2)::integer > 59
             OR substr(p, 18, 2)::integer > 59 THEN NULL
        WHEN upper(right(p, 1)) <> 'Z'
             AND (substr(p, length(p) - 4, 2)::integer > 15
                  OR substr(p, length(p) - 1, 2)::integer > 59) THEN NULL
        ELSE p::timestamptz
    END
$$;

-- 4. The refresh reads a conversation's assignments, resolutions and replies, never its
--    customer messages: an index of just those events keeps a conversation's recompute
--    proportional to them (a customer writing 10,000 times costs the refresh nothing), and
--    a customer message costs one index entry less at ingest. It replaces the index of
--    every event by conversation, which nothing else reads any more (ingest reads the
--    partial indexes of V7).
CREATE INDEX events_work_by_conversation
    ON cockpit.events (org_id, conversation_id, at, rank, event_id)
    WHERE type IN ('assigned', 'reactivated', 'resolved', 'agent_message');
DROP INDEX cockpit.events_by_conversation;
