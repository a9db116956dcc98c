-- Defines: cockpit.ingest_shaped().
-- The set-based ingest of well-formed events: judged and stored with a few statements per
-- batch; anything irregular goes to the exact path.
-- Applied after the migrations, in the order of src/db/definitions.rs; edit here and the
-- next start applies it (README, "Changing SQL").

-- The set-based path: judge, store and settle (sql/ingest/judge.sql, store.sql, facts.sql)
-- the conversations whose new events all pass; the rest goes to the exact path, one event
-- at a time, and the answers are merged with the batch's indexes.
CREATE OR REPLACE FUNCTION cockpit.ingest_shaped(p_org_id text, p_shaped cockpit.shaped_event[], p_events jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
 SET jit TO 'off'
 SET plan_cache_mode TO 'auto'
AS $function$
DECLARE
    v_rows cockpit.batch_event[];
    v_exact jsonb;
    v_exact_idx integer[];
    v_answer jsonb;
    v_rejected jsonb := '[]';
    v_accepted integer := 0;
    v_duplicates integer := 0;
BEGIN
    IF cardinality(p_shaped) > 50 THEN
        PERFORM set_config('plan_cache_mode', 'force_custom_plan', true);
    END IF;
    -- Same lock as the exact path (re-entrant in this transaction).
    PERFORM pg_advisory_xact_lock(hashtextextended('cockpit.ingest/' || p_org_id, 0));

    -- Judge (every event routed), store the fast ones, settle their conversations.
    v_rows := cockpit.ingest_judge_batch(p_org_id, p_shaped);
    v_accepted := cockpit.ingest_store_batch(p_org_id, v_rows);
    PERFORM cockpit.ingest_settle_batch(p_org_id, v_rows);


    -- The answer: duplicates and conflicts of known ids, then the exact path's part.
    SELECT count(*) FILTER (WHERE r.route = 'duplicate'),
           coalesce(jsonb_agg(jsonb_build_object(
               'index', r.idx, 'id', r.event_id, 'code', 'CONFLICT',
               'message', format('event id %s was already used for a different event', r.event_id))
               ORDER BY r.idx) FILTER (WHERE r.route = 'conflict'), '[]')
      INTO v_duplicates, v_rejected
      FROM unnest(v_rows) r;

    -- The rest, one event at a time in batch order, with the indexes mapped back.
    SELECT jsonb_agg(coalesce(p_events -> r.idx,
                              jsonb_strip_nulls(jsonb_build_object(
                                  'id', r.event_id, 'type', r.type, 'at', r.at_text,
                                  'conversation', r.conversation, 'agent', r.agent_id,
                                  'by', r.by_id, 'product', r.product_id, 'channel', r.channel)))
                     ORDER BY r.idx),
           array_agg(r.idx ORDER BY r.idx)
      INTO v_exact, v_exact_idx
      FROM unnest(v_rows) r
     WHERE r.route = 'exact';
    IF v_exact IS NOT NULL THEN
        v_answer := cockpit.ingest_events_sequential(p_org_id, v_exact);
        v_accepted := v_accepted + (v_answer ->> 'accepted')::integer;
        v_duplicates := v_duplicates + (v_answer ->> 'duplicates')::integer;
        SELECT coalesce(jsonb_agg(x.r ORDER BY (x.r ->> 'index')::integer), '[]')
          INTO v_rejected
          FROM (SELECT c AS r FROM jsonb_array_elements(v_rejected) c
                UNION ALL
                SELECT jsonb_set(e, '{index}', to_jsonb(v_exact_idx[(e ->> 'index')::integer + 1]))
                  FROM jsonb_array_elements(v_answer -> 'rejected') e) x;
    END IF;

    RETURN jsonb_build_object('accepted', v_accepted, 'duplicates', v_duplicates,
                              'rejected', v_rejected);
END
$function$;
REVOKE EXECUTE ON FUNCTION cockpit.ingest_shaped(text,cockpit.shaped_event[],jsonb) FROM PUBLIC;
