-- Defines: cockpit.ingest_events().
-- The ingest entry point (SQL and HTTP): shapes a JSON batch and chooses the set-based or
-- the exact path.
-- Applied after the migrations, in the order of src/db/definitions.rs; edit here and the
-- next start applies it (README, "Changing SQL").

CREATE OR REPLACE FUNCTION cockpit.ingest_events(p_org_id text, p_events jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
 SET jit TO 'off'
AS $function$
DECLARE
    v_shaped cockpit.shaped_event[];
BEGIN
    PERFORM cockpit.ingest_check_org(p_org_id);
    p_events := cockpit.ingest_event_array(p_events);

    -- The exact path whole: an unknown organization, entity events, an id twice.
    IF NOT EXISTS (SELECT 1 FROM cockpit.organizations o WHERE o.org_id = p_org_id)
       OR EXISTS (SELECT 1 FROM jsonb_array_elements(p_events) e
                   WHERE e ->> 'type' IN ('organization_upserted', 'product_upserted', 'agent_upserted'))
       OR EXISTS (SELECT 1 FROM jsonb_array_elements(p_events) e
                   WHERE jsonb_typeof(e -> 'id') = 'string'
                   GROUP BY e ->> 'id' HAVING count(*) > 1) THEN
        RETURN cockpit.ingest_events_sequential(p_org_id, p_events);
    END IF;

    WITH raw AS (
        SELECT (e.ord - 1)::integer AS idx, e.value AS ev,
               CASE WHEN jsonb_typeof(e.value -> 'conversation') = 'string'
                    THEN e.value ->> 'conversation' END COLLATE "C" AS conv_key
          FROM jsonb_array_elements(p_events) WITH ORDINALITY AS e(value, ord)
    ),
    -- Well-formed by the exact path's own rules (no stricter, no looser: the same helpers),
    -- with the canonical payload the exact path stores.
    shaped AS MATERIALIZED (
        SELECT r.idx, r.conv_key, r.ev,
               r.ev ->> 'id' AS event_id, r.ev ->> 'type' AS type,
               cockpit.parse_instant(r.ev ->> 'at') AS at,
               cockpit.event_rank(r.ev ->> 'type') AS rank,
               upper(r.ev ->> 'channel') AS channel,
               jsonb_typeof(r.ev) = 'object'
               AND cockpit.string_problem(r.ev, 'id', 128, true) IS NULL
               AND r.ev ->> 'type' IN ('conversation_opened', 'customer_message', 'assigned',
                                       'agent_message', 'resolved', 'reactivated')
               AND jsonb_typeof(r.ev -> 'at') = 'string'
               AND cockpit.string_problem(r.ev, 'conversation', 128, true) IS NULL
               AND CASE r.ev ->> 'type'
                   WHEN 'conversation_opened' THEN
                       cockpit.string_problem(r.ev, 'product', 128, true) IS NULL
                       AND cockpit.string_problem(r.ev, 'channel', 16, true) IS NULL
                       AND upper(r.ev ->> 'channel') IN ('LIVE_CHAT', 'IN_APP', 'WHATSAPP',
                                                         'FACEBOOK', 'INSTAGRAM', 'TWITTER')
                   WHEN 'customer_message' THEN true
                   WHEN 'assigned' THEN
                       cockpit.string_problem(r.ev, 'agent', 128, true) IS NULL
                       AND cockpit.string_problem(r.ev, 'by', 128, false) IS NULL
                   ELSE cockpit.string_problem(r.ev, 'agent', 128, true) IS NULL
                   END AS well_formed
          FROM raw r
    ),
    typed AS (
        SELECT s.idx, s.conv_key,
               s.well_formed AND s.at IS NOT NULL AND s.at <= now() + interval '5 minutes'
                   AND s.at >= timestamptz '2000-01-01 00:00:00+00' AS ok,
               s.event_id COLLATE "C" AS event_id, s.type, s.at, s.ev ->> 'at' AS at_text, s.rank,
               CASE WHEN s.type IN ('assigned', 'agent_message', 'resolved', 'reactivated')
                    THEN s.ev ->> 'agent' END COLLATE "C" AS agent_id,
               CASE WHEN s.type = 'assigned' THEN s.ev ->> 'by' END COLLATE "C" AS by_id,
               CASE WHEN s.type = 'conversation_opened' THEN s.ev ->> 'product' END COLLATE "C" AS product_id,
               CASE WHEN s.type = 'conversation_opened' THEN s.channel END AS channel,
               CASE s.type
                   WHEN 'conversation_opened' THEN jsonb_build_object(
                       'conversation', s.conv_key, 'product', s.ev ->> 'product', 'channel', s.channel)
                   WHEN 'customer_message' THEN jsonb_build_object('conversation', s.conv_key)
                   WHEN 'assigned' THEN jsonb_build_object(
                       'conversation', s.conv_key, 'agent', s.ev ->> 'agent', 'by', s.ev ->> 'by')
                   ELSE jsonb_build_object('conversation', s.conv_key, 'agent', s.ev ->> 'agent')
               END AS payload
          FROM shaped s
    )
    SELECT array_agg(ROW(t.idx, t.ok, t.conv_key, t.event_id, t.type, t.at, t.at_text, t.rank,
                         t.agent_id, t.by_id, t.product_id, t.channel, t.payload)::cockpit.shaped_event
                     ORDER BY t.idx)
      INTO v_shaped
      FROM typed t;

    RETURN cockpit.ingest_shaped(p_org_id, v_shaped, p_events);
END
$function$;

COMMENT ON FUNCTION cockpit.ingest_events(p_org_id text, p_events jsonb) IS
    'Ingest a batch of chat platform events for one organization (spec 5.2). events: a JSON array of event objects (or one object). Returns {"accepted": n, "duplicates": n, "rejected": [{"index", "id", "code", "message"}]}, exactly as POST /v1/events answers. Valid events are accepted even when others are rejected; re-sending a batch changes nothing. The common case is judged set-based; the rest by cockpit.ingest_events_sequential, with the same result as events sent one at a time in batch order.';
REVOKE EXECUTE ON FUNCTION cockpit.ingest_events(text,jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION cockpit.ingest_events(text,jsonb) TO cockpit_ingest;
