-- Defines: cockpit.ingest_well_formed().
-- Ingest of events the service has already parsed into typed arrays (the HTTP path).
-- Applied after the migrations, in the order of src/db/definitions.rs; edit here and the
-- next start applies it (README, "Changing SQL").

-- The same judgement for a batch the service has already read and checked for shape
-- (POST /v1/events): one array per field, event i at position i. The caller guarantees
-- that every event is a well-formed conversation event by the exact path's rules, with a
-- unique id and an `at` of RFC 3339 shape; what depends on the server (the time range, the
-- organization, everything stored) is judged here. No jsonb to parse: the common case.
CREATE OR REPLACE FUNCTION cockpit.ingest_well_formed(p_org_id text, p_ids text[], p_types text[], p_ats text[], p_conversations text[], p_agents text[], p_bys text[], p_products text[], p_channels text[])
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
    SELECT array_agg(ROW(
               (e.ord - 1)::integer,
               e.at::timestamptz <= now() + interval '5 minutes'
                   AND e.at::timestamptz >= timestamptz '2000-01-01 00:00:00+00',
               e.conversation, e.id, e.type, e.at::timestamptz, e.at, cockpit.event_rank(e.type),
               e.agent, e.by_id, e.product, upper(e.channel),
               CASE e.type
                   WHEN 'conversation_opened' THEN jsonb_build_object(
                       'conversation', e.conversation, 'product', e.product, 'channel', upper(e.channel))
                   WHEN 'customer_message' THEN jsonb_build_object('conversation', e.conversation)
                   WHEN 'assigned' THEN jsonb_build_object(
                       'conversation', e.conversation, 'agent', e.agent, 'by', e.by_id)
                   ELSE jsonb_build_object('conversation', e.conversation, 'agent', e.agent)
               END)::cockpit.shaped_event ORDER BY e.ord)
      INTO v_shaped
      FROM unnest(p_ids, p_types, p_ats, p_conversations, p_agents, p_bys, p_products, p_channels)
           WITH ORDINALITY AS e(id, type, at, conversation, agent, by_id, product, channel, ord);
    IF NOT EXISTS (SELECT 1 FROM cockpit.organizations o WHERE o.org_id = p_org_id) THEN
        -- A first batch: the exact path creates the organization.
        RETURN cockpit.ingest_events_sequential(p_org_id, (
            SELECT coalesce(jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
                       'id', s.event_id, 'type', s.type, 'at', s.at_text,
                       'conversation', s.conversation, 'agent', s.agent_id, 'by', s.by_id,
                       'product', s.product_id, 'channel', s.channel)) ORDER BY s.idx), '[]')
              FROM unnest(v_shaped) s));
    END IF;
    RETURN cockpit.ingest_shaped(p_org_id, v_shaped, NULL);
END
$function$;

COMMENT ON FUNCTION cockpit.ingest_well_formed(p_org_id text, p_ids text[], p_types text[], p_ats text[], p_conversations text[], p_agents text[], p_bys text[], p_products text[], p_channels text[]) IS
    'The set-based ingest of a batch already read and checked for shape by the service (one array per field); same answer as cockpit.ingest_events on the same events.';
REVOKE EXECUTE ON FUNCTION cockpit.ingest_well_formed(text,text[],text[],text[],text[],text[],text[],text[],text[]) FROM PUBLIC;
