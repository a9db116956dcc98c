-- Supervisor insights (spec 3.5), third slice: service level.
--
-- The organization's first-response target N (seconds, default 60, V15's column) is set by
-- the optional `serviceLevelSeconds` of organization_upserted, versioned like the name and
-- the zone (the latest event in the order of its `at`, then id, wins; an event that does
-- not carry it leaves it alone). `firstResponsesWithinTarget` is a daily column like the
-- first-response average: the first responses on day D whose duration is at most N. It is
-- judged against the current target: a new target re-judges every day (the organization's
-- conversations are marked for the refresh, as a new time zone does), so the figure of a
-- past day always means "within today's target" and the oracle recompute from the event
-- log stays the definition.

-- 1. The target's version.
ALTER TABLE cockpit.organizations
    ADD COLUMN service_level_at timestamptz,
    ADD COLUMN service_level_event text COLLATE "C";

-- 2. The exact path of V7 (renamed in V8) reads and applies serviceLevelSeconds.
CREATE OR REPLACE FUNCTION cockpit.ingest_events_sequential(p_org_id text, p_events jsonb) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
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
$$;
ALTER FUNCTION cockpit.ingest_events_sequential(text, jsonb) SET jit = off;
ALTER FUNCTION cockpit.ingest_events_sequential(text, jsonb) SET plan_cache_mode = auto;

-- 3. The daily column.
ALTER TABLE cockpit.conversation_daily
    ADD COLUMN first_responses_within_target integer NOT NULL DEFAULT 0;
ALTER TABLE cockpit.daily_stats
    ADD COLUMN first_responses_within_target bigint NOT NULL DEFAULT 0;

DROP VIEW cockpit.agent_daily_reference;
DROP FUNCTION cockpit.conversation_facts(text, text);
DROP FUNCTION cockpit.conversation_facts_indexed(text, text);

-- The rules of V3 (the plain statement, the oracle's), plus the first responses within the
-- organization's target.
CREATE FUNCTION cockpit.conversation_facts(p_org text, p_conversation text)
RETURNS TABLE (
    day                           date,
    agent_id                      text,
    first_response_count          integer,
    first_response_seconds_sum    numeric,
    resolution_count              integer,
    resolution_seconds_sum        numeric,
    resolved_count                integer,
    reactivated_count             integer,
    forwarded_count               integer,
    first_responses_within_target integer
)
LANGUAGE sql STABLE
AS $$
    WITH ordered AS (
        SELECT e.type, e.at, e.agent_id, e.by_id,
               row_number() OVER w AS ord,
               count(*) FILTER (WHERE e.type IN ('assigned', 'reactivated', 'resolved')) OVER w AS seg
          FROM cockpit.events e
         WHERE e.org_id = p_org AND e.conversation_id = p_conversation
           AND e.type IN ('assigned', 'reactivated', 'resolved', 'agent_message')
        WINDOW w AS (ORDER BY e.at, e.rank, e.event_id ROWS UNBOUNDED PRECEDING)
    ),
    segments AS (
        SELECT o.seg, o.at AS t0,
               CASE WHEN o.type <> 'resolved' THEN o.agent_id END AS assignee
          FROM ordered o
         WHERE o.type IN ('assigned', 'reactivated', 'resolved')
    ),
    -- The assignee's first reply inside the assignment; replies by others count for nobody.
    first_responses AS (
        SELECT DISTINCT ON (o.seg) o.at, s.assignee AS agent_id,
               extract(epoch FROM o.at - s.t0) AS seconds
          FROM ordered o
          JOIN segments s ON s.seg = o.seg
         WHERE o.type = 'agent_message' AND o.agent_id = s.assignee
         ORDER BY o.seg, o.ord
    ),
    -- Every resolution counts for who marked it; a duration only when they held it.
    resolutions AS (
        SELECT o.at, o.agent_id,
               CASE WHEN s.assignee = o.agent_id THEN extract(epoch FROM o.at - s.t0) END AS seconds
          FROM ordered o
          LEFT JOIN segments s ON s.seg = o.seg - 1
         WHERE o.type = 'resolved'
    ),
    facts (at, agent_id, frc, frs, rc, rs, resolved, reactivated, forwarded) AS (
        SELECT f.at, f.agent_id, 1, f.seconds, 0, 0::numeric, 0, 0, 0 FROM first_responses f
        UNION ALL
        SELECT r.at, r.agent_id, 0, 0, (r.seconds IS NOT NULL)::integer, coalesce(r.seconds, 0), 1, 0, 0
          FROM resolutions r
        UNION ALL
        SELECT o.at, o.agent_id, 0, 0, 0, 0, 0, 1, 0 FROM ordered o WHERE o.type = 'reactivated'
        UNION ALL
        SELECT o.at, o.by_id, 0, 0, 0, 0, 0, 0, 1
          FROM ordered o
         WHERE o.type = 'assigned' AND o.by_id IS NOT NULL AND o.by_id <> o.agent_id
    )
    SELECT (f.at AT TIME ZONE org.timezone)::date, f.agent_id,
           sum(f.frc)::integer, sum(f.frs), sum(f.rc)::integer, sum(f.rs),
           sum(f.resolved)::integer, sum(f.reactivated)::integer, sum(f.forwarded)::integer,
           count(*) FILTER (WHERE f.frc = 1 AND f.frs <= org.service_level_seconds)::integer
      FROM facts f
     CROSS JOIN (SELECT o.timezone, o.service_level_seconds
                   FROM cockpit.organizations o WHERE o.org_id = p_org) org
     GROUP BY 1, 2
$$;

-- The refresh's statement of the same rules (V12), plus the same column.
CREATE FUNCTION cockpit.conversation_facts_indexed(p_org text, p_conversation text)
RETURNS TABLE (
    day                           date,
    agent_id                      text,
    first_response_count          integer,
    first_response_seconds_sum    numeric,
    resolution_count              integer,
    resolution_seconds_sum        numeric,
    resolved_count                integer,
    reactivated_count             integer,
    forwarded_count               integer,
    first_responses_within_target integer
)
LANGUAGE sql STABLE
AS $$
    WITH lifecycle AS (
        SELECT e.type, e.at, e.rank, e.event_id, e.agent_id, e.by_id,
               CASE WHEN e.type <> 'resolved' THEN e.agent_id END AS assignee,
               lead(e.at) OVER w AS next_at, lead(e.rank) OVER w AS next_rank,
               lead(e.event_id) OVER w AS next_event_id,
               lag(CASE WHEN e.type <> 'resolved' THEN e.agent_id END) OVER w AS prev_assignee,
               lag(e.at) OVER w AS prev_at
          FROM cockpit.events e
         WHERE e.org_id = p_org AND e.conversation_id = p_conversation
           AND e.type IN ('assigned', 'reactivated', 'resolved')
        WINDOW w AS (ORDER BY e.at, e.rank, e.event_id)
    ),
    first_responses AS (
        SELECT r.at, l.assignee AS agent_id, extract(epoch FROM r.at - l.at) AS seconds
          FROM lifecycle l
          CROSS JOIN LATERAL (
              SELECT m.at, m.rank, m.event_id
                FROM cockpit.events m
               WHERE m.org_id = p_org AND m.conversation_id = p_conversation
                 AND m.agent_id = l.assignee AND m.type = 'agent_message'
                 AND (m.at, m.rank, m.event_id) > (l.at, l.rank, l.event_id)
               ORDER BY m.at, m.rank, m.event_id
               LIMIT 1
          ) r
         WHERE l.assignee IS NOT NULL
           AND (l.next_at IS NULL
                OR (r.at, r.rank, r.event_id) < (l.next_at, l.next_rank, l.next_event_id))
    ),
    facts (at, agent_id, frc, frs, rc, rs, resolved, reactivated, forwarded) AS (
        SELECT f.at, f.agent_id, 1, f.seconds, 0, 0::numeric, 0, 0, 0 FROM first_responses f
        UNION ALL
        SELECT l.at, l.agent_id, 0, 0, coalesce(l.prev_assignee = l.agent_id, false)::integer,
               CASE WHEN l.prev_assignee = l.agent_id THEN extract(epoch FROM l.at - l.prev_at)
                    ELSE 0 END,
               1, 0, 0
          FROM lifecycle l
         WHERE l.type = 'resolved'
        UNION ALL
        SELECT l.at, l.agent_id, 0, 0, 0, 0, 0, 1, 0 FROM lifecycle l WHERE l.type = 'reactivated'
        UNION ALL
        SELECT l.at, l.by_id, 0, 0, 0, 0, 0, 0, 1
          FROM lifecycle l
         WHERE l.type = 'assigned' AND l.by_id IS NOT NULL AND l.by_id <> l.agent_id
    )
    SELECT (f.at AT TIME ZONE org.timezone)::date, f.agent_id,
           sum(f.frc)::integer, sum(f.frs), sum(f.rc)::integer, sum(f.rs),
           sum(f.resolved)::integer, sum(f.reactivated)::integer, sum(f.forwarded)::integer,
           count(*) FILTER (WHERE f.frc = 1 AND f.frs <= org.service_level_seconds)::integer
      FROM facts f
     CROSS JOIN (SELECT o.timezone, o.service_level_seconds
                   FROM cockpit.organizations o WHERE o.org_id = p_org) org
     GROUP BY 1, 2
$$;

-- The oracle (V3), with the new column.
CREATE VIEW cockpit.agent_daily_reference AS
SELECT c.org_id, f.day, f.agent_id, c.product_id, c.channel,
       sum(f.first_response_count)::bigint AS first_response_count,
       sum(f.first_response_seconds_sum) AS first_response_seconds_sum,
       sum(f.resolution_count)::bigint AS resolution_count,
       sum(f.resolution_seconds_sum) AS resolution_seconds_sum,
       sum(f.resolved_count)::bigint AS resolved_count,
       sum(f.reactivated_count)::bigint AS reactivated_count,
       sum(f.forwarded_count)::bigint AS forwarded_count,
       sum(f.first_responses_within_target)::bigint AS first_responses_within_target
  FROM cockpit.conversations c
 CROSS JOIN LATERAL cockpit.conversation_facts(c.org_id, c.conversation_id) f
 GROUP BY c.org_id, f.day, f.agent_id, c.product_id, c.channel;

-- 4. A new target re-judges every day of the organization at the next refresh, and moves
--    the overdue figures of its live cockpits now.
CREATE FUNCTION cockpit.on_service_level_change() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM cockpit.mark_dirty(NEW.org_id,
        ARRAY(SELECT c.conversation_id FROM cockpit.conversations c WHERE c.org_id = NEW.org_id));
    PERFORM cockpit.notify_live(NEW.org_id, p.product_id, 'active')
       FROM cockpit.products p
      WHERE p.org_id = NEW.org_id;
    RETURN NULL;
END
$$;
CREATE TRIGGER organizations_service_level_change
    AFTER UPDATE OF service_level_seconds ON cockpit.organizations
    FOR EACH ROW WHEN (OLD.service_level_seconds IS DISTINCT FROM NEW.service_level_seconds)
    EXECUTE FUNCTION cockpit.on_service_level_change();

-- 5. The refresh (V12's) carries the column.
CREATE OR REPLACE FUNCTION cockpit.refresh_daily(p_skip_if_younger interval DEFAULT NULL,
                                       p_max_conversations integer DEFAULT 5000)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_started timestamptz := clock_timestamp();
    v_orgs text[];
    v_convs text[];
    v_old cockpit.conversation_daily[];
    v_zero_keys jsonb;
    v_groups integer := 0;
    v_at timestamptz;
    v_ms double precision;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtextextended('cockpit.refresh_daily', 0)) THEN
        RETURN NULL;
    END IF;
    -- Another instance refreshed moments ago: its refresh counts for this interval (every
    -- instance heard its NOTIFY and pushed it).
    IF p_skip_if_younger IS NOT NULL AND EXISTS (
        SELECT 1 FROM cockpit.refresh_state r
         WHERE r.refreshed_at > clock_timestamp() - p_skip_if_younger) THEN
        RETURN NULL;
    END IF;

    -- 1. Claim the marked conversations, in key order.
    WITH claimed AS (
        DELETE FROM cockpit.dirty_conversations d
         WHERE (d.org_id, d.conversation_id) IN (
                SELECT x.org_id, x.conversation_id FROM cockpit.dirty_conversations x
                 ORDER BY x.org_id, x.conversation_id
                 LIMIT p_max_conversations
                   FOR UPDATE)
        RETURNING d.org_id, d.conversation_id
    )
    SELECT coalesce(array_agg(org_id), '{}'), coalesce(array_agg(conversation_id), '{}')
      INTO v_orgs, v_convs
      FROM claimed;

    IF cardinality(v_convs) > 0 THEN
        -- 2. Their previous contributions go.
        WITH gone AS (
            DELETE FROM cockpit.conversation_daily d
             USING unnest(v_orgs, v_convs) AS c(org_id, conversation_id)
             WHERE d.org_id = c.org_id AND d.conversation_id = c.conversation_id
            RETURNING d.*
        )
        SELECT coalesce(array_agg(g::cockpit.conversation_daily), '{}') INTO v_old FROM gone g;

        -- 3. Their contributions now, and the difference applied to the summary.
        WITH fresh AS (
            INSERT INTO cockpit.conversation_daily
                   (org_id, conversation_id, day, agent_id, product_id, channel,
                    first_response_count, first_response_seconds_sum,
                    resolution_count, resolution_seconds_sum,
                    resolved_count, reactivated_count, forwarded_count,
                    first_responses_within_target)
            SELECT c.org_id, c.conversation_id, f.day, f.agent_id, cv.product_id, cv.channel,
                   f.first_response_count, f.first_response_seconds_sum,
                   f.resolution_count, f.resolution_seconds_sum,
                   f.resolved_count, f.reactivated_count, f.forwarded_count,
                   f.first_responses_within_target
              FROM unnest(v_orgs, v_convs) AS c(org_id, conversation_id)
              JOIN cockpit.conversations cv
                ON cv.org_id = c.org_id AND cv.conversation_id = c.conversation_id
             CROSS JOIN LATERAL cockpit.conversation_facts_indexed(c.org_id, c.conversation_id) f
            RETURNING *
        ),
        delta AS (
            SELECT d.org_id, d.day, d.agent_id, d.product_id, d.channel,
                   sum(d.first_response_count) AS frc, sum(d.first_response_seconds_sum) AS frs,
                   sum(d.resolution_count) AS rc, sum(d.resolution_seconds_sum) AS rs,
                   sum(d.resolved_count) AS resolved, sum(d.reactivated_count) AS reactivated,
                   sum(d.forwarded_count) AS forwarded,
                   sum(d.first_responses_within_target) AS within
              FROM (
                SELECT n.org_id, n.day, n.agent_id, n.product_id, n.channel,
                       n.first_response_count, n.first_response_seconds_sum,
                       n.resolution_count, n.resolution_seconds_sum,
                       n.resolved_count, n.reactivated_count, n.forwarded_count,
                       n.first_responses_within_target
                  FROM fresh n
                UNION ALL
                SELECT o.org_id, o.day, o.agent_id, o.product_id, o.channel,
                       -o.first_response_count, -o.first_response_seconds_sum,
                       -o.resolution_count, -o.resolution_seconds_sum,
                       -o.resolved_count, -o.reactivated_count, -o.forwarded_count,
                       -o.first_responses_within_target
                  FROM unnest(v_old) o
              ) d
             GROUP BY d.org_id, d.day, d.agent_id, d.product_id, d.channel
            HAVING sum(d.first_response_count) <> 0 OR sum(d.first_response_seconds_sum) <> 0
                OR sum(d.resolution_count) <> 0 OR sum(d.resolution_seconds_sum) <> 0
                OR sum(d.resolved_count) <> 0 OR sum(d.reactivated_count) <> 0
                OR sum(d.forwarded_count) <> 0 OR sum(d.first_responses_within_target) <> 0
        ),
        applied AS (
            INSERT INTO cockpit.daily_stats AS s
                   (org_id, day, agent_id, product_id, channel,
                    first_response_count, first_response_seconds_sum,
                    resolution_count, resolution_seconds_sum,
                    resolved_count, reactivated_count, forwarded_count,
                    first_responses_within_target)
            SELECT org_id, day, agent_id, product_id, channel, frc, frs, rc, rs,
                   resolved, reactivated, forwarded, within
              FROM delta
             ORDER BY org_id, day, agent_id, product_id, channel
            ON CONFLICT (org_id, day, agent_id, product_id, channel) DO UPDATE
               SET first_response_count = s.first_response_count + excluded.first_response_count,
                   first_response_seconds_sum = s.first_response_seconds_sum + excluded.first_response_seconds_sum,
                   resolution_count = s.resolution_count + excluded.resolution_count,
                   resolution_seconds_sum = s.resolution_seconds_sum + excluded.resolution_seconds_sum,
                   resolved_count = s.resolved_count + excluded.resolved_count,
                   reactivated_count = s.reactivated_count + excluded.reactivated_count,
                   forwarded_count = s.forwarded_count + excluded.forwarded_count,
                   first_responses_within_target = s.first_responses_within_target
                                                   + excluded.first_responses_within_target
            RETURNING s.org_id, s.day, s.agent_id, s.product_id, s.channel,
                      (s.first_response_count = 0 AND s.resolution_count = 0
                       AND s.resolved_count = 0 AND s.reactivated_count = 0
                       AND s.forwarded_count = 0 AND s.first_response_seconds_sum = 0
                       AND s.resolution_seconds_sum = 0
                       AND s.first_responses_within_target = 0) AS is_zero
        )
        SELECT count(*)::integer,
               coalesce(jsonb_agg(jsonb_build_array(org_id, day, agent_id, product_id, channel))
                        FILTER (WHERE is_zero), '[]')
          INTO v_groups, v_zero_keys
          FROM applied;

        -- 4. No zero rows: a group whose last contribution went is removed.
        DELETE FROM cockpit.daily_stats s
         USING jsonb_array_elements(v_zero_keys) k
         WHERE s.org_id = k ->> 0 AND s.day = (k ->> 1)::date AND s.agent_id = k ->> 2
           AND s.product_id = k ->> 3 AND s.channel = k ->> 4;
    END IF;

    v_at := clock_timestamp();
    v_ms := extract(epoch FROM v_at - v_started) * 1000;
    UPDATE cockpit.refresh_state
       SET refreshed_at = v_at, duration_ms = v_ms, conversations = cardinality(v_convs);
    PERFORM pg_notify('cockpit_refresh', json_build_object(
        'at', v_at, 'conversations', cardinality(v_convs), 'groups', v_groups,
        'sent', extract(epoch FROM v_at))::text);
    RETURN jsonb_build_object('refreshed_at', v_at, 'duration_ms', v_ms,
                              'conversations', cardinality(v_convs), 'groups', v_groups,
                              'more', cardinality(v_convs) >= p_max_conversations
                                      AND EXISTS (SELECT 1 FROM cockpit.dirty_conversations));
END
$$;

-- Every stored conversation's contribution gains the column at the next refresh.
INSERT INTO cockpit.dirty_conversations (org_id, conversation_id)
SELECT c.org_id, c.conversation_id
  FROM cockpit.conversations c
 ORDER BY c.org_id, c.conversation_id
ON CONFLICT (org_id, conversation_id) DO NOTHING;

-- 6. BI (spec 6).
CREATE OR REPLACE VIEW reporting.organizations AS
SELECT o.org_id, o.name, o.timezone,
       (now() AT TIME ZONE o.timezone)::date AS today,
       o.service_level_seconds
  FROM cockpit.organizations o;
COMMENT ON COLUMN reporting.organizations.service_level_seconds IS
'First-response target in seconds (spec 3.5, default 60): a first response within it counts in agent_daily.first_responses_within_target.';

CREATE OR REPLACE VIEW reporting.agent_daily AS
SELECT s.org_id, s.day, s.agent_id, a.name AS agent_name, s.product_id, p.name AS product_name,
       s.channel,
       s.first_response_count,
       s.first_response_seconds_sum,
       (s.first_response_seconds_sum / nullif(s.first_response_count, 0))::double precision
           AS first_response_avg_seconds,
       s.resolution_count,
       s.resolution_seconds_sum,
       (s.resolution_seconds_sum / nullif(s.resolution_count, 0))::double precision
           AS resolution_avg_seconds,
       s.resolved_count,
       s.reactivated_count,
       s.forwarded_count,
       s.first_responses_within_target
  FROM cockpit.daily_stats s
  JOIN cockpit.agents a ON a.org_id = s.org_id AND a.agent_id = s.agent_id
  JOIN cockpit.products p ON p.org_id = s.org_id AND p.product_id = s.product_id;
COMMENT ON COLUMN reporting.agent_daily.first_responses_within_target IS
'First responses this day whose duration is at most the organization''s current target (reporting.organizations.service_level_seconds); a new target re-judges every day. Divide by first_response_count for the share within target of a past day.';

REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA cockpit FROM PUBLIC;
GRANT EXECUTE ON FUNCTION cockpit.ingest_events(text, jsonb) TO cockpit_ingest;
GRANT EXECUTE ON FUNCTION cockpit.status_seconds(text, text, date, timestamptz) TO cockpit_reader;
