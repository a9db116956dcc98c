-- Defines: cockpit.ingest_events_sequential().
-- The exact per-event ingest path: every event judged against its conversation's state at
-- its `at`, one at a time, in batch order.
-- Applied after the migrations, in the order of src/db/definitions.rs; edit here and the
-- next start applies it (README, "Changing SQL").

-- The exact path: each event parsed (cockpit.ingest_parse_event), judged against what is
-- stored, including the events before it in this batch (cockpit.ingest_judge_event), and
-- stored (cockpit.ingest_store_event) before the next one is read; then the conversations
-- the batch touched are settled (cockpit.ingest_settle_conversations).
CREATE OR REPLACE FUNCTION cockpit.ingest_events_sequential(p_org_id text, p_events jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
 SET jit TO 'off'
 SET plan_cache_mode TO 'auto'
AS $function$
DECLARE
    max_id CONSTANT integer := 128;
    v_ev jsonb;
    v_idx integer;
    v_id text COLLATE "C";
    v_type text;
    v_at timestamptz;
    v_rank smallint;
    v_conv text COLLATE "C";
    v_agent text COLLATE "C";
    v_by text COLLATE "C";
    v_product text COLLATE "C";
    v_channel text;
    v_name text;
    v_role text;
    v_tz text;
    v_products text[];
    v_target numeric;
    v_payload jsonb;
    v_code text;
    v_msg text;
    v_duplicate boolean;
    v_identified boolean;
    v_accepted integer := 0;
    v_duplicates integer := 0;
    v_rejected jsonb[] := '{}';
    v_touched text[] := '{}';
    v_marked text[] := '{}';
    v_org_ready boolean;
BEGIN
    PERFORM cockpit.ingest_check_org(p_org_id);
    p_events := cockpit.ingest_event_array(p_events);

    -- One batch at a time per organization: each event is judged against the state its
    -- conversation has in the stored events, which a concurrent batch must not change
    -- under it. Held until commit.
    PERFORM pg_advisory_xact_lock(hashtextextended('cockpit.ingest/' || p_org_id, 0));
    v_org_ready := EXISTS (SELECT 1 FROM cockpit.organizations o WHERE o.org_id = p_org_id);

    FOR v_ev, v_idx IN
        SELECT e.value, (e.ord - 1)::integer
          FROM jsonb_array_elements(p_events) WITH ORDINALITY AS e(value, ord)
    LOOP
        -- 1. Parse: the shape and the canonical payload.
        SELECT * INTO v_code, v_msg, v_id, v_type, v_at, v_rank, v_conv, v_agent, v_by,
                      v_product, v_channel, v_name, v_role, v_tz, v_products, v_target, v_payload
          FROM cockpit.ingest_parse_event(v_ev);
        -- 2. Judge: a known id, the entities named, the conversation's state at `at`.
        IF v_code IS NULL THEN
            SELECT * INTO v_code, v_msg, v_duplicate, v_identified
              FROM cockpit.ingest_judge_event(p_org_id, v_ev ->> 'at', v_id, v_type, v_at, v_rank,
                                              v_conv, v_agent, v_by, v_product, v_products,
                                              v_payload);
            IF v_duplicate THEN
                v_duplicates := v_duplicates + 1;
                CONTINUE;
            END IF;
            -- A new id makes its organization exist, whatever the rest of the verdict.
            IF v_identified AND NOT v_org_ready THEN
                INSERT INTO cockpit.organizations (org_id, name) VALUES (p_org_id, p_org_id)
                ON CONFLICT (org_id) DO NOTHING;
                v_org_ready := true;
            END IF;
        END IF;
        IF v_code IS NOT NULL THEN
            v_rejected := array_append(v_rejected, jsonb_build_object(
                'index', v_idx,
                'id', CASE WHEN jsonb_typeof(v_ev -> 'id') = 'string' THEN left(v_ev ->> 'id', max_id) END,
                'code', v_code,
                'message', v_msg));
            CONTINUE;
        END IF;
        -- 3. Store.
        PERFORM cockpit.ingest_store_event(p_org_id, v_id, v_type, v_at, v_rank, v_conv, v_agent,
                                           v_by, v_product, v_channel, v_name, v_role, v_tz,
                                           v_products, v_target, v_payload);
        v_accepted := v_accepted + 1;
        IF v_conv IS NOT NULL AND v_type <> 'conversation_opened' THEN
            -- A customer message changes no metric: nothing to recompute.
            IF v_type <> 'customer_message' THEN
                v_marked := array_append(v_marked, v_conv::text);
            END IF;
            IF v_type IN ('assigned', 'reactivated', 'resolved') THEN
                v_touched := array_append(v_touched, v_conv::text);
            END IF;
        END IF;
    END LOOP;

    -- 4. Facts: the touched conversations' state and assignee; the refresh's marks.
    PERFORM cockpit.ingest_settle_conversations(p_org_id, v_touched, v_marked);

    RETURN jsonb_build_object(
        'accepted', v_accepted,
        'duplicates', v_duplicates,
        'rejected', to_jsonb(v_rejected));
END
$function$;

COMMENT ON FUNCTION cockpit.ingest_events_sequential(p_org_id text, p_events jsonb) IS
    'The exact per-event judgement of a batch (one event at a time in batch order); called by cockpit.ingest_events for what its set-based judgement does not settle.';
REVOKE EXECUTE ON FUNCTION cockpit.ingest_events_sequential(text,jsonb) FROM PUBLIC;
