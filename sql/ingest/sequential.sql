-- Defines: cockpit.ingest_events_sequential().
-- The exact per-event ingest path: every event judged against its conversation's state at
-- its `at`, one at a time, in batch order.
-- Applied after the migrations, in the order of src/db/definitions.rs; edit here and the
-- next start applies it (README, "Changing SQL").

-- The exact path.
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
    max_name CONSTANT integer := 200;
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
    v_payload jsonb;
    v_code text;
    v_msg text;
    v_accepted integer := 0;
    v_duplicates integer := 0;
    v_rejected jsonb[] := '{}';
    v_touched text[] := '{}';
    v_marked text[] := '{}';
    v_org_ready boolean;
    v_old record;
    v_conv_channel text;
    v_prev text;
    v_window_start timestamptz;
    v_window_secs integer;
    v_tz_known text;
    v_target numeric;
BEGIN
    IF p_org_id IS NULL OR btrim(p_org_id) = '' OR length(p_org_id) > max_id THEN
        RAISE EXCEPTION 'the organization id must be a non-empty string of at most % characters', max_id
            USING ERRCODE = '22023';
    END IF;
    IF jsonb_typeof(p_events) = 'object' THEN
        p_events := jsonb_build_array(p_events);
    ELSIF p_events IS NULL OR jsonb_typeof(p_events) <> 'array' THEN
        RAISE EXCEPTION 'events must be a JSON array of event objects, or one event object'
            USING ERRCODE = '22023';
    END IF;

    -- One batch at a time per organization: each event is judged against the state its
    -- conversation has in the stored events, which a concurrent batch must not change
    -- under it. Held until commit.
    PERFORM pg_advisory_xact_lock(hashtextextended('cockpit.ingest/' || p_org_id, 0));
    v_org_ready := EXISTS (SELECT 1 FROM cockpit.organizations o WHERE o.org_id = p_org_id);

    FOR v_ev, v_idx IN
        SELECT e.value, (e.ord - 1)::integer
          FROM jsonb_array_elements(p_events) WITH ORDINALITY AS e(value, ord)
    LOOP
        v_code := NULL;
        v_msg := NULL;
        v_id := NULL;
        v_conv := NULL;
        v_agent := NULL;
        v_by := NULL;

        <<judge>>
        BEGIN
            -- 1. Shape: every field present, typed and bounded; the canonical payload.
            IF jsonb_typeof(v_ev) <> 'object' THEN
                v_code := 'INVALID'; v_msg := 'an event must be a JSON object';
                EXIT judge;
            END IF;
            v_msg := cockpit.string_problem(v_ev, 'id', max_id, true);
            IF v_msg IS NOT NULL THEN v_code := 'INVALID'; EXIT judge; END IF;
            v_id := v_ev ->> 'id';
            v_msg := cockpit.string_problem(v_ev, 'type', 64, true);
            IF v_msg IS NOT NULL THEN v_code := 'INVALID'; EXIT judge; END IF;
            v_type := v_ev ->> 'type';
            v_rank := cockpit.event_rank(v_type);
            IF v_rank < 0 AND v_type NOT IN ('organization_upserted', 'product_upserted', 'agent_upserted') THEN
                v_code := 'INVALID'; v_msg := format('unknown event type `%s`', left(v_type, 64));
                EXIT judge;
            END IF;
            IF v_ev -> 'at' IS NULL OR jsonb_typeof(v_ev -> 'at') = 'null' THEN
                v_code := 'INVALID'; v_msg := 'missing field `at`';
                EXIT judge;
            END IF;
            v_at := CASE WHEN jsonb_typeof(v_ev -> 'at') = 'string' THEN cockpit.parse_instant(v_ev ->> 'at') END;
            IF v_at IS NULL THEN
                v_code := 'INVALID';
                v_msg := '`at` must be an RFC 3339 timestamp with an offset, e.g. 2026-11-26T09:30:00+03:00';
                EXIT judge;
            END IF;
            IF v_at > now() + interval '5 minutes' THEN
                v_code := 'INVALID'; v_msg := '`at` is more than 5 minutes in the future';
                EXIT judge;
            END IF;
            IF v_at < timestamptz '2000-01-01 00:00:00+00' THEN
                v_code := 'INVALID'; v_msg := '`at` is before 2000-01-01: not an instant of a chat';
                EXIT judge;
            END IF;

            CASE v_type
            WHEN 'organization_upserted' THEN
                v_msg := cockpit.string_problem(v_ev, 'name', max_name, true);
                IF v_msg IS NOT NULL THEN v_code := 'INVALID'; EXIT judge; END IF;
                v_msg := cockpit.string_problem(v_ev, 'timezone', 64, false);
                IF v_msg IS NOT NULL THEN v_code := 'INVALID'; EXIT judge; END IF;
                v_name := v_ev ->> 'name';
                v_tz := v_ev ->> 'timezone';
                IF v_tz IS NOT NULL THEN
                    -- Matched as PostgreSQL matches zone names (case-insensitively), stored
                    -- in the zone's own spelling; an index probe, not a catalog scan.
                    SELECT z.name INTO v_tz_known FROM cockpit.time_zones z WHERE z.folded = lower(v_tz);
                    IF v_tz_known IS NULL THEN
                        v_code := 'INVALID'; v_msg := format('unknown time zone `%s` (an IANA name is expected)', v_tz);
                        EXIT judge;
                    END IF;
                    v_tz := v_tz_known;
                END IF;
                -- The first-response target (spec 3.5): optional, whole seconds, 1 to 86,400.
                v_target := NULL;
                IF jsonb_typeof(v_ev -> 'serviceLevelSeconds') <> 'null' THEN  -- absent or null: not given
                    v_target := CASE WHEN jsonb_typeof(v_ev -> 'serviceLevelSeconds') = 'number'
                                     THEN (v_ev ->> 'serviceLevelSeconds')::numeric END;
                    IF v_target IS NULL OR v_target < 1 OR v_target > 86400 OR v_target <> trunc(v_target) THEN
                        v_code := 'INVALID';
                        v_msg := '`serviceLevelSeconds` must be a whole number of seconds from 1 to 86400';
                        EXIT judge;
                    END IF;
                END IF;
                -- (The key only when given: events stored before it existed stay duplicates
                -- of themselves.)
                v_payload := jsonb_build_object('name', v_name, 'timezone', v_tz)
                             || CASE WHEN v_target IS NOT NULL
                                     THEN jsonb_build_object('serviceLevelSeconds', v_target::integer)
                                     ELSE '{}' END;
            WHEN 'product_upserted' THEN
                v_msg := coalesce(cockpit.string_problem(v_ev, 'product', max_id, true),
                                  cockpit.string_problem(v_ev, 'name', max_name, true));
                IF v_msg IS NOT NULL THEN v_code := 'INVALID'; EXIT judge; END IF;
                v_product := v_ev ->> 'product';
                v_name := v_ev ->> 'name';
                v_payload := jsonb_build_object('product', v_product, 'name', v_name);
            WHEN 'agent_upserted' THEN
                v_msg := coalesce(cockpit.string_problem(v_ev, 'agent', max_id, true),
                                  cockpit.string_problem(v_ev, 'name', max_name, true),
                                  cockpit.string_problem(v_ev, 'role', 16, true));
                IF v_msg IS NOT NULL THEN v_code := 'INVALID'; EXIT judge; END IF;
                v_agent := v_ev ->> 'agent';
                v_name := v_ev ->> 'name';
                v_role := upper(v_ev ->> 'role');
                IF v_role NOT IN ('ADMIN', 'SUPERVISOR', 'AGENT') THEN
                    v_code := 'INVALID'; v_msg := '`role` must be one of ADMIN, SUPERVISOR, AGENT';
                    EXIT judge;
                END IF;
                IF jsonb_typeof(v_ev -> 'products') IS DISTINCT FROM 'array' THEN
                    v_code := 'INVALID'; v_msg := '`products` must be an array of product ids';
                    EXIT judge;
                END IF;
                IF jsonb_array_length(v_ev -> 'products') > 1000
                   OR EXISTS (SELECT 1 FROM jsonb_array_elements(v_ev -> 'products') p
                               WHERE jsonb_typeof(p) <> 'string' OR btrim(p #>> '{}') = ''
                                  OR length(p #>> '{}') > max_id) THEN
                    v_code := 'INVALID';
                    v_msg := format('`products` must be an array of at most 1000 non-empty strings of at most %s characters', max_id);
                    EXIT judge;
                END IF;
                SELECT coalesce(array_agg(DISTINCT p COLLATE "C" ORDER BY p COLLATE "C"), '{}')
                  INTO v_products
                  FROM jsonb_array_elements_text(v_ev -> 'products') p;
                v_payload := jsonb_build_object('agent', v_agent, 'name', v_name, 'role', v_role,
                                                'products', to_jsonb(v_products));
            WHEN 'conversation_opened' THEN
                v_msg := coalesce(cockpit.string_problem(v_ev, 'conversation', max_id, true),
                                  cockpit.string_problem(v_ev, 'product', max_id, true),
                                  cockpit.string_problem(v_ev, 'channel', 16, true));
                IF v_msg IS NOT NULL THEN v_code := 'INVALID'; EXIT judge; END IF;
                v_conv := v_ev ->> 'conversation';
                v_product := v_ev ->> 'product';
                v_channel := upper(v_ev ->> 'channel');
                IF v_channel NOT IN ('LIVE_CHAT', 'IN_APP', 'WHATSAPP', 'FACEBOOK', 'INSTAGRAM', 'TWITTER') THEN
                    v_code := 'INVALID';
                    v_msg := '`channel` must be one of LIVE_CHAT, IN_APP, WHATSAPP, FACEBOOK, INSTAGRAM, TWITTER';
                    EXIT judge;
                END IF;
                v_payload := jsonb_build_object('conversation', v_conv, 'product', v_product, 'channel', v_channel);
            WHEN 'customer_message' THEN
                v_msg := cockpit.string_problem(v_ev, 'conversation', max_id, true);
                IF v_msg IS NOT NULL THEN v_code := 'INVALID'; EXIT judge; END IF;
                v_conv := v_ev ->> 'conversation';
                v_payload := jsonb_build_object('conversation', v_conv);
            ELSE -- assigned, agent_message, resolved, reactivated
                v_msg := coalesce(cockpit.string_problem(v_ev, 'conversation', max_id, true),
                                  cockpit.string_problem(v_ev, 'agent', max_id, true));
                IF v_msg IS NULL AND v_type = 'assigned' THEN
                    v_msg := cockpit.string_problem(v_ev, 'by', max_id, false);
                END IF;
                IF v_msg IS NOT NULL THEN v_code := 'INVALID'; EXIT judge; END IF;
                v_conv := v_ev ->> 'conversation';
                v_agent := v_ev ->> 'agent';
                IF v_type = 'assigned' THEN
                    v_by := v_ev ->> 'by';
                    v_payload := jsonb_build_object('conversation', v_conv, 'agent', v_agent, 'by', v_by);
                ELSE
                    v_payload := jsonb_build_object('conversation', v_conv, 'agent', v_agent);
                END IF;
            END CASE;

            -- 2. Idempotency: a known id is a duplicate when its content is the same by
            -- meaning (parsed fields, instants), else a conflict.
            SELECT e.type, e.at, e.payload INTO v_old
              FROM cockpit.events e
             WHERE e.org_id = p_org_id AND e.event_id = v_id;
            IF FOUND THEN
                IF v_old.type = v_type AND v_old.at = v_at AND v_old.payload = v_payload THEN
                    v_duplicates := v_duplicates + 1;
                    CONTINUE;
                END IF;
                v_code := 'CONFLICT';
                v_msg := format('event id %s was already used for a different event', v_id);
                EXIT judge;
            END IF;

            -- 3. References and state, then the effect.
            IF NOT v_org_ready THEN
                INSERT INTO cockpit.organizations (org_id, name) VALUES (p_org_id, p_org_id)
                ON CONFLICT (org_id) DO NOTHING;
                v_org_ready := true;
            END IF;

            CASE v_type
            WHEN 'organization_upserted' THEN
                UPDATE cockpit.organizations o
                   SET name = v_name, name_at = v_at, name_event = v_id
                 WHERE o.org_id = p_org_id
                   AND (o.name_at IS NULL OR (v_at, v_id) > (o.name_at, o.name_event));
                IF v_tz IS NOT NULL THEN
                    UPDATE cockpit.organizations o
                       SET timezone = v_tz, timezone_at = v_at, timezone_event = v_id
                     WHERE o.org_id = p_org_id
                       AND (o.timezone_at IS NULL OR (v_at, v_id) > (o.timezone_at, o.timezone_event));
                END IF;
                IF v_target IS NOT NULL THEN
                    UPDATE cockpit.organizations o
                       SET service_level_seconds = v_target::integer, service_level_at = v_at,
                           service_level_event = v_id
                     WHERE o.org_id = p_org_id
                       AND (o.service_level_at IS NULL
                            OR (v_at, v_id) > (o.service_level_at, o.service_level_event));
                END IF;
            WHEN 'product_upserted' THEN
                INSERT INTO cockpit.products AS p (org_id, product_id, name, version_at, version_event)
                VALUES (p_org_id, v_product, v_name, v_at, v_id)
                ON CONFLICT (org_id, product_id) DO UPDATE
                   SET name = excluded.name, version_at = excluded.version_at,
                       version_event = excluded.version_event
                 WHERE (excluded.version_at, excluded.version_event) > (p.version_at, p.version_event);
            WHEN 'agent_upserted' THEN
                SELECT p INTO v_product
                  FROM unnest(v_products) p
                 WHERE NOT EXISTS (SELECT 1 FROM cockpit.products x
                                    WHERE x.org_id = p_org_id AND x.product_id = p)
                 LIMIT 1;
                IF v_product IS NOT NULL THEN
                    v_code := 'UNKNOWN_PRODUCT'; v_msg := format('product %s does not exist', v_product);
                    EXIT judge;
                END IF;
                INSERT INTO cockpit.agents AS a (org_id, agent_id, name, role, version_at, version_event)
                VALUES (p_org_id, v_agent, v_name, v_role, v_at, v_id)
                ON CONFLICT (org_id, agent_id) DO UPDATE
                   SET name = excluded.name, role = excluded.role,
                       version_at = excluded.version_at, version_event = excluded.version_event
                 WHERE (excluded.version_at, excluded.version_event) > (a.version_at, a.version_event);
                IF FOUND THEN -- this event is the newest word on the agent: it sets the membership
                    DELETE FROM cockpit.agent_products ap
                     WHERE ap.org_id = p_org_id AND ap.agent_id = v_agent
                       AND ap.product_id <> ALL (v_products);
                    INSERT INTO cockpit.agent_products (org_id, agent_id, product_id)
                    SELECT p_org_id, v_agent, p FROM unnest(v_products) p
                    ON CONFLICT DO NOTHING;
                END IF;
            WHEN 'conversation_opened' THEN
                IF NOT EXISTS (SELECT 1 FROM cockpit.products x
                                WHERE x.org_id = p_org_id AND x.product_id = v_product) THEN
                    v_code := 'UNKNOWN_PRODUCT'; v_msg := format('product %s does not exist', v_product);
                    EXIT judge;
                END IF;
                IF EXISTS (SELECT 1 FROM cockpit.conversations c
                            WHERE c.org_id = p_org_id AND c.conversation_id = v_conv) THEN
                    v_code := 'CONFLICT'; v_msg := format('conversation %s was already opened', v_conv);
                    EXIT judge;
                END IF;
                INSERT INTO cockpit.conversations (org_id, conversation_id, product_id, channel, opened_at)
                VALUES (p_org_id, v_conv, v_product, v_channel, v_at);
            ELSE
                SELECT c.channel INTO v_conv_channel
                  FROM cockpit.conversations c
                 WHERE c.org_id = p_org_id AND c.conversation_id = v_conv;
                IF NOT FOUND THEN
                    v_code := 'UNKNOWN_CONVERSATION';
                    v_msg := format('conversation %s does not exist (its conversation_opened must come first)', v_conv);
                    EXIT judge;
                END IF;
                IF v_agent IS NOT NULL AND NOT EXISTS (SELECT 1 FROM cockpit.agents a
                                                        WHERE a.org_id = p_org_id AND a.agent_id = v_agent) THEN
                    v_code := 'UNKNOWN_AGENT'; v_msg := format('agent %s does not exist', v_agent);
                    EXIT judge;
                END IF;
                IF v_by IS NOT NULL AND NOT EXISTS (SELECT 1 FROM cockpit.agents a
                                                     WHERE a.org_id = p_org_id AND a.agent_id = v_by) THEN
                    v_code := 'UNKNOWN_AGENT'; v_msg := format('agent %s (`by`) does not exist', v_by);
                    EXIT judge;
                END IF;

                -- The conversation's state just before this event in the order of spec 3.1.
                SELECT e.type INTO v_prev
                  FROM cockpit.events e
                 WHERE e.org_id = p_org_id AND e.conversation_id = v_conv
                   AND (e.at, e.rank, e.event_id) < (v_at, v_rank, v_id)
                   AND e.type IN ('conversation_opened', 'assigned', 'reactivated', 'resolved')
                 ORDER BY e.at DESC, e.rank DESC, e.event_id DESC
                 LIMIT 1;
                IF NOT FOUND THEN
                    v_code := 'INVALID_STATE';
                    v_msg := format('conversation %s was not open yet at %s', v_conv, v_ev ->> 'at');
                    EXIT judge;
                END IF;

                IF v_type = 'reactivated' THEN
                    IF v_conv_channel NOT IN ('WHATSAPP', 'FACEBOOK', 'INSTAGRAM') THEN
                        v_code := 'INVALID_STATE';
                        v_msg := format('a %s conversation cannot be re-activated (only WHATSAPP, FACEBOOK, INSTAGRAM)', v_conv_channel);
                        EXIT judge;
                    END IF;
                    IF v_prev <> 'resolved' THEN
                        v_code := 'INVALID_STATE';
                        v_msg := format('conversation %s is active at %s: only a resolved conversation can be re-activated', v_conv, v_ev ->> 'at');
                        EXIT judge;
                    END IF;
                    -- The platforms' messaging window, from the customer's last message.
                    SELECT max(e.at) INTO v_window_start
                      FROM cockpit.events e
                     WHERE e.org_id = p_org_id AND e.conversation_id = v_conv
                       AND e.type IN ('conversation_opened', 'customer_message')
                       AND e.at <= v_at;
                    v_window_secs := CASE v_conv_channel WHEN 'WHATSAPP' THEN 24 * 3600 ELSE 7 * 24 * 3600 END;
                    IF v_window_start IS NULL OR extract(epoch FROM v_at - v_window_start) > v_window_secs THEN
                        v_code := 'OUT_OF_WINDOW';
                        v_msg := format('a %s conversation can be re-activated only within %s of the customer''s last message',
                                        v_conv_channel, CASE v_conv_channel WHEN 'WHATSAPP' THEN '24 hours' ELSE '7 days' END);
                        EXIT judge;
                    END IF;
                ELSIF v_type <> 'customer_message' AND v_prev = 'resolved' THEN
                    v_code := 'INVALID_STATE';
                    v_msg := format('conversation %s is resolved at %s: re-activate it first', v_conv, v_ev ->> 'at');
                    EXIT judge;
                END IF;
                -- A customer message changes no metric: nothing to recompute.
                IF v_type <> 'customer_message' THEN
                    v_marked := array_append(v_marked, v_conv::text);
                END IF;
                IF v_type IN ('assigned', 'reactivated', 'resolved') THEN
                    v_touched := array_append(v_touched, v_conv::text);
                END IF;
            END CASE;

            INSERT INTO cockpit.events (org_id, event_id, type, at, rank, conversation_id, agent_id, by_id, payload)
            VALUES (p_org_id, v_id, v_type, v_at, v_rank, v_conv, v_agent, v_by, v_payload);
            v_accepted := v_accepted + 1;
        END judge;

        IF v_code IS NOT NULL THEN
            v_rejected := array_append(v_rejected, jsonb_build_object(
                'index', v_idx,
                'id', CASE WHEN jsonb_typeof(v_ev -> 'id') = 'string' THEN left(v_ev ->> 'id', max_id) END,
                'code', v_code,
                'message', v_msg));
        END IF;
    END LOOP;

    -- State and current assignee of the touched conversations, from their events in order:
    -- the same whatever order the events arrived in.
    UPDATE cockpit.conversations c
       SET state = s.state, assignee_id = s.assignee_id
      FROM (
        SELECT t.conversation_id,
               (SELECT CASE WHEN e.type = 'resolved' THEN 'RESOLVED' ELSE 'ACTIVE' END
                  FROM cockpit.events e
                 WHERE e.org_id = p_org_id AND e.conversation_id = t.conversation_id
                   AND e.type IN ('conversation_opened', 'assigned', 'reactivated', 'resolved')
                 ORDER BY e.at DESC, e.rank DESC, e.event_id DESC
                 LIMIT 1) AS state,
               (SELECT e.agent_id
                  FROM cockpit.events e
                 WHERE e.org_id = p_org_id AND e.conversation_id = t.conversation_id
                   AND e.type IN ('assigned', 'reactivated')
                 ORDER BY e.at DESC, e.rank DESC, e.event_id DESC
                 LIMIT 1) AS assignee_id
          FROM (SELECT DISTINCT u COLLATE "C" AS conversation_id FROM unnest(v_touched) u) t
      ) s
     WHERE c.org_id = p_org_id AND c.conversation_id = s.conversation_id
       AND (c.state, c.assignee_id) IS DISTINCT FROM (s.state, s.assignee_id);

    -- The metrics refresh recomputes what this batch touched.
    IF cardinality(v_marked) > 0 THEN
        PERFORM cockpit.mark_dirty(p_org_id, v_marked);
    END IF;

    RETURN jsonb_build_object(
        'accepted', v_accepted,
        'duplicates', v_duplicates,
        'rejected', to_jsonb(v_rejected));
END
$function$;

COMMENT ON FUNCTION cockpit.ingest_events_sequential(p_org_id text, p_events jsonb) IS
    'The exact per-event judgement of a batch (one event at a time in batch order); called by cockpit.ingest_events for what its set-based judgement does not settle.';
REVOKE EXECUTE ON FUNCTION cockpit.ingest_events_sequential(text,jsonb) FROM PUBLIC;
