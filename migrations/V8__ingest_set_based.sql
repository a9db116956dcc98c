-- A set-based judgement of ingest batches (issue: ingest engine v2). The per-event function
-- of V2/V7 stays as the exact path, renamed cockpit.ingest_events_sequential; the new
-- cockpit.ingest_events judges the common case with a few statements per batch and hands
-- the rest to the exact path. The answer, the stored events and every metric are those of
-- "the batch's events sent one at a time in batch order".
--
-- Why the split is exact. Events of different conversations never influence each other's
-- verdicts; only entity events (organization, product, agent upserts) and repeated ids do
-- across conversations, so a batch holding any of those, or an unknown organization, takes
-- the exact path whole. Within one conversation the batch's events are judged against the
-- stored events plus the batch's events before them in the order of spec 3.1, assuming all
-- are accepted. When every one of them is accepted under that assumption and the batch
-- sends them in that same order, each event sees exactly the predecessors it would see one
-- at a time: the assumption holds and the verdicts are the exact ones (by induction over
-- the conversation's events). Any other conversation (a rejection, an event out of order,
-- a malformed event naming it) goes whole to the exact path, after the fast ones: nothing
-- it does can change a fast conversation. Events whose id is already stored (duplicates,
-- conflicts) change no state and are answered directly.

ALTER FUNCTION cockpit.ingest_events(text, jsonb) RENAME TO ingest_events_sequential;
REVOKE EXECUTE ON FUNCTION cockpit.ingest_events_sequential(text, jsonb) FROM cockpit_ingest;
COMMENT ON FUNCTION cockpit.ingest_events_sequential(text, jsonb) IS
'The exact per-event judgement of a batch (one event at a time in batch order); called by cockpit.ingest_events for what its set-based judgement does not settle.';

-- One event of a batch, read and checked for shape: what the set-based judgement starts
-- from. `ok`: well-formed by the exact path's rules and within the accepted time range;
-- `at_text`: the `at` as sent (the exact path quotes it in its messages).
CREATE TYPE cockpit.shaped_event AS (
    idx          integer,       -- position in the batch, 0-based
    ok           boolean,
    conversation text,          -- the `conversation` field when it is a string
    event_id     text,
    type         text,
    at           timestamptz,
    at_text      text,
    rank         smallint,
    agent_id     text,
    by_id        text,
    product_id   text,
    channel      text,
    payload      jsonb          -- canonical, as stored
);

-- One event with its route through the judgement.
CREATE TYPE cockpit.batch_event AS (
    idx          integer,
    event_id     text,
    type         text,
    at           timestamptz,
    at_text      text,
    rank         smallint,
    conversation text,
    agent_id     text,
    by_id        text,
    product_id   text,
    channel      text,
    payload      jsonb,
    route        text           -- duplicate | conflict | fast | exact
);

CREATE FUNCTION cockpit.ingest_events(p_org_id text, p_events jsonb) RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    max_id CONSTANT integer := 128;
    v_shaped cockpit.shaped_event[];
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
$$;

-- The set-based judgement of a shaped batch (see the header). p_events: the batch as sent,
-- for the exact path; NULL when the batch came typed (its exact events are rebuilt from
-- their fields, which the exact path reads the same way).
CREATE FUNCTION cockpit.ingest_shaped(p_org_id text, p_shaped cockpit.shaped_event[], p_events jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rows cockpit.batch_event[];
    v_exact jsonb;
    v_exact_idx integer[];
    v_answer jsonb;
    v_rejected jsonb := '[]';
    v_accepted integer := 0;
    v_duplicates integer := 0;
    v_products text[];
BEGIN
    -- Same lock as the exact path (re-entrant in this transaction).
    PERFORM pg_advisory_xact_lock(hashtextextended('cockpit.ingest/' || p_org_id, 0));

    WITH typed AS (
        SELECT s.idx, s.ok, s.conversation COLLATE "C" AS conv_key, s.event_id COLLATE "C" AS event_id,
               s.type, s.at, s.at_text, s.rank, s.agent_id COLLATE "C" AS agent_id,
               s.by_id COLLATE "C" AS by_id, s.product_id COLLATE "C" AS product_id, s.channel,
               s.payload
          FROM unnest(p_shaped) s
    ),
    -- Already stored ids: a duplicate when the same by meaning, else a conflict.
    known AS (
        SELECT t.*, k.type AS old_type, k.at AS old_at, k.payload AS old_payload,
               k.type IS NOT NULL AS stored
          FROM typed t
          -- LATERAL: one primary-key probe per event, never a scan of the event log.
          LEFT JOIN LATERAL (
              SELECT k.type, k.at, k.payload
                FROM cockpit.events k
               WHERE t.ok AND k.org_id = p_org_id AND k.event_id = t.event_id
          ) k ON true
    ),
    -- The new events: what the conversation is and who is named.
    fresh AS (
        SELECT k.*,
               c.channel AS stored_channel, c.conversation_id IS NOT NULL AS conv_stored,
               (k.agent_id IS NULL OR EXISTS (SELECT 1 FROM cockpit.agents a
                                               WHERE a.org_id = p_org_id AND a.agent_id = k.agent_id))
               AND (k.by_id IS NULL OR EXISTS (SELECT 1 FROM cockpit.agents a
                                                WHERE a.org_id = p_org_id AND a.agent_id = k.by_id))
               AND (k.type <> 'conversation_opened' OR EXISTS (
                       SELECT 1 FROM cockpit.products x
                        WHERE x.org_id = p_org_id AND x.product_id = k.product_id)) AS refs_ok,
               row_number() OVER (PARTITION BY k.conv_key ORDER BY k.idx) AS arrival,
               row_number() OVER (PARTITION BY k.conv_key ORDER BY k.at, k.rank, k.event_id) AS position,
               count(*) FILTER (WHERE k.type = 'conversation_opened') OVER (PARTITION BY k.conv_key) AS opened_here,
               max(k.channel) FILTER (WHERE k.type = 'conversation_opened') OVER (PARTITION BY k.conv_key) AS batch_channel
          FROM known k
          LEFT JOIN LATERAL (
              SELECT c.channel, c.conversation_id
                FROM cockpit.conversations c
               WHERE c.org_id = p_org_id AND c.conversation_id = k.conv_key
          ) c ON true
         WHERE k.ok AND NOT k.stored
    ),
    -- Predecessors in the batch, in the order of spec 3.1: the position of the last
    -- lifecycle event before each event, and the customer's last message at or before it.
    ordered AS (
        SELECT f.*,
               max(CASE WHEN f.type IN ('conversation_opened', 'assigned', 'reactivated', 'resolved')
                        THEN f.position END)
                   OVER w_before AS prev_position,
               max(CASE WHEN f.type IN ('conversation_opened', 'customer_message') THEN f.at END)
                   OVER w_before AS batch_window_start
          FROM fresh f
        WINDOW w_before AS (PARTITION BY f.conv_key ORDER BY f.at, f.rank, f.event_id
                            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
    ),
    judged AS (
        SELECT o.*,
               -- The last lifecycle event before this one: the batch's or the stored one,
               -- whichever is later in the order of spec 3.1.
               CASE WHEN sp.type IS NULL
                         OR (b.type IS NOT NULL
                             AND (b.at, b.rank, b.event_id) > (sp.at, sp.rank, sp.event_id))
                    THEN b.type ELSE sp.type END AS prev_type,
               coalesce(o.stored_channel, o.batch_channel) AS conv_channel,
               greatest(o.batch_window_start, sw.at) AS window_start
          FROM ordered o
          LEFT JOIN ordered b
            ON b.conv_key = o.conv_key AND b.position = o.prev_position
          -- One index descent each (the partial indexes of V7).
          LEFT JOIN LATERAL (
              SELECT e.type, e.at, e.rank, e.event_id
                FROM cockpit.events e
               WHERE o.conv_stored
                 AND e.org_id = p_org_id AND e.conversation_id = o.conv_key
                 AND e.type IN ('conversation_opened', 'assigned', 'reactivated', 'resolved')
                 AND (e.at, e.rank, e.event_id) < (o.at, o.rank, o.event_id)
               ORDER BY e.at DESC, e.rank DESC, e.event_id DESC
               LIMIT 1
          ) sp ON o.type <> 'conversation_opened'
          LEFT JOIN LATERAL (
              SELECT e.at
                FROM cockpit.events e
               WHERE o.type = 'reactivated' AND o.conv_stored
                 AND e.org_id = p_org_id AND e.conversation_id = o.conv_key
                 AND e.type IN ('conversation_opened', 'customer_message')
                 AND e.at <= o.at
               ORDER BY e.at DESC
               LIMIT 1
          ) sw ON true
    ),
    verdict AS (
        SELECT j.*,
               j.refs_ok
               AND j.arrival = j.position
               AND CASE
                   WHEN j.type = 'conversation_opened' THEN NOT j.conv_stored AND j.opened_here = 1
                   WHEN NOT j.conv_stored AND j.opened_here = 0 THEN false
                   WHEN j.prev_type IS NULL THEN false
                   WHEN j.type = 'reactivated' THEN
                       j.conv_channel IN ('WHATSAPP', 'FACEBOOK', 'INSTAGRAM')
                       AND j.prev_type = 'resolved'
                       AND j.window_start IS NOT NULL
                       AND extract(epoch FROM j.at - j.window_start)
                           <= CASE j.conv_channel WHEN 'WHATSAPP' THEN 24 * 3600 ELSE 7 * 24 * 3600 END
                   WHEN j.type <> 'customer_message' THEN j.prev_type <> 'resolved'
                   ELSE true
                   END AS accepted
          FROM judged j
    ),
    -- A conversation is fast when every new event of it is accepted and no event naming it
    -- is malformed.
    fast_conversations AS (
        SELECT v.conv_key FROM verdict v GROUP BY v.conv_key HAVING bool_and(v.accepted)
        EXCEPT
        SELECT t.conv_key FROM typed t WHERE NOT t.ok AND t.conv_key IS NOT NULL
    )
    SELECT array_agg(ROW(
               k.idx, k.event_id, k.type, k.at, k.at_text, k.rank, k.conv_key, k.agent_id, k.by_id,
               k.product_id, k.channel, k.payload,
               CASE
                   WHEN k.ok AND k.stored AND k.old_type = k.type AND k.old_at = k.at
                        AND k.old_payload = k.payload THEN 'duplicate'
                   WHEN k.ok AND k.stored THEN 'conflict'
                   WHEN k.ok AND k.conv_key IN (SELECT fc.conv_key FROM fast_conversations fc) THEN 'fast'
                   ELSE 'exact'
               END)::cockpit.batch_event ORDER BY k.idx)
      INTO v_rows
      FROM known k;

    -- The fast conversations. Those opened by this batch are inserted with their final
    -- state and assignee, taken from the batch (it holds all their events): no update
    -- after the insert. Those already stored are updated from their lifecycle events.
    WITH fast AS (
        SELECT r.* FROM unnest(v_rows) r WHERE r.route = 'fast'
    ),
    last_lifecycle AS (
        SELECT DISTINCT ON (f.conversation) f.conversation, f.type
          FROM fast f
         WHERE f.type IN ('conversation_opened', 'assigned', 'reactivated', 'resolved')
         ORDER BY f.conversation, f.at DESC, f.rank DESC, f.event_id COLLATE "C" DESC
    ),
    last_assignment AS (
        SELECT DISTINCT ON (f.conversation) f.conversation, f.agent_id
          FROM fast f
         WHERE f.type IN ('assigned', 'reactivated')
         ORDER BY f.conversation, f.at DESC, f.rank DESC, f.event_id COLLATE "C" DESC
    ),
    opened AS (
        INSERT INTO cockpit.conversations
               (org_id, conversation_id, product_id, channel, opened_at, state, assignee_id)
        SELECT p_org_id, o.conversation, o.product_id, o.channel, o.at,
               CASE WHEN l.type = 'resolved' THEN 'RESOLVED' ELSE 'ACTIVE' END, a.agent_id
          FROM fast o
          JOIN last_lifecycle l ON l.conversation = o.conversation
          LEFT JOIN last_assignment a ON a.conversation = o.conversation
         WHERE o.type = 'conversation_opened'
         ORDER BY o.idx
        RETURNING product_id, assignee_id
    )
    -- Active counts change for the products where a conversation arrived assigned (the
    -- update trigger of V6 covers the stored ones).
    SELECT array_agg(DISTINCT o.product_id) FILTER (WHERE o.assignee_id IS NOT NULL)
      INTO v_products
      FROM opened o;
    PERFORM cockpit.notify_live(p_org_id, x.product, 'active')
       FROM unnest(v_products) x(product);

    INSERT INTO cockpit.events (org_id, event_id, type, at, rank, conversation_id, agent_id, by_id, payload)
    SELECT p_org_id, r.event_id, r.type, r.at, r.rank, r.conversation, r.agent_id, r.by_id, r.payload
      FROM unnest(v_rows) r
     WHERE r.route = 'fast'
     ORDER BY r.idx;
    GET DIAGNOSTICS v_accepted = ROW_COUNT;

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
          FROM (SELECT DISTINCT r.conversation COLLATE "C" AS conversation_id
                  FROM unnest(v_rows) r
                 WHERE r.route = 'fast' AND r.type IN ('assigned', 'reactivated', 'resolved')
                EXCEPT
                SELECT r.conversation COLLATE "C"
                  FROM unnest(v_rows) r
                 WHERE r.route = 'fast' AND r.type = 'conversation_opened') t
      ) s
     WHERE c.org_id = p_org_id AND c.conversation_id = s.conversation_id
       AND (c.state, c.assignee_id) IS DISTINCT FROM (s.state, s.assignee_id);

    PERFORM cockpit.mark_dirty(p_org_id, array_agg(r.conversation))
       FROM unnest(v_rows) r
      WHERE r.route = 'fast' AND r.type <> 'customer_message'
     HAVING count(*) > 0;

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
$$;

-- The same judgement for a batch the service has already read and checked for shape
-- (POST /v1/events): one array per field, event i at position i. The caller guarantees
-- that every event is a well-formed conversation event by the exact path's rules, with a
-- unique id and an `at` of RFC 3339 shape; what depends on the server (the time range, the
-- organization, everything stored) is judged here. No jsonb to parse: the common case.
CREATE FUNCTION cockpit.ingest_well_formed(p_org_id text, p_ids text[], p_types text[],
                                           p_ats text[], p_conversations text[],
                                           p_agents text[], p_bys text[],
                                           p_products text[], p_channels text[])
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    max_id CONSTANT integer := 128;
    v_shaped cockpit.shaped_event[];
BEGIN
    IF p_org_id IS NULL OR btrim(p_org_id) = '' OR length(p_org_id) > max_id THEN
        RAISE EXCEPTION 'the organization id must be a non-empty string of at most % characters', max_id
            USING ERRCODE = '22023';
    END IF;
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
$$;

COMMENT ON FUNCTION cockpit.ingest_events(text, jsonb) IS
'Ingest a batch of chat platform events for one organization (spec 5.2). events: a JSON array '
'of event objects (or one object). Returns {"accepted": n, "duplicates": n, "rejected": '
'[{"index", "id", "code", "message"}]}, exactly as POST /v1/events answers. Valid events are '
'accepted even when others are rejected; re-sending a batch changes nothing. The common case '
'is judged set-based; the rest by cockpit.ingest_events_sequential, with the same result as '
'events sent one at a time in batch order.';

COMMENT ON FUNCTION cockpit.ingest_well_formed(text, text[], text[], text[], text[], text[], text[], text[], text[]) IS
'The set-based ingest of a batch already read and checked for shape by the service (one array '
'per field); same answer as cockpit.ingest_events on the same events.';

REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA cockpit FROM PUBLIC;
GRANT EXECUTE ON FUNCTION cockpit.ingest_events(text, jsonb) TO cockpit_ingest;
