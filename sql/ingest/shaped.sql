-- Defines: cockpit.ingest_shaped().
-- The set-based ingest of well-formed events: judged and stored with a few statements per
-- batch; anything irregular goes to the exact path.
-- Applied after the migrations, in the order of src/db/definitions.rs; edit here and the
-- next start applies it (README, "Changing SQL").

-- The set-based ingest inserts the conversations a batch opens
-- with their facts.
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
    v_opened integer;
    v_stored text[];
BEGIN
    IF cardinality(p_shaped) > 50 THEN
        PERFORM set_config('plan_cache_mode', 'force_custom_plan', true);
    END IF;
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
    -- state, assignee and live facts (V15), taken from the batch (it holds all their
    -- events): no update after the insert (the event log's trigger leaves conversations
    -- opened by the same statement to whoever inserted them). Those already stored are
    -- updated from their lifecycle events, and their facts by that trigger.
    WITH fast AS (
        SELECT r.* FROM unnest(v_rows) r WHERE r.route = 'fast'
    ),
    -- One sort, no join (the batch's row estimates are guesses): per event, its
    -- conversation's latest clear (agent_message or resolved) and latest assignment
    -- (assigned and reactivated share a rank).
    w AS (
        SELECT f.*,
               max(f.at) FILTER (WHERE f.type IN ('agent_message', 'resolved')) OVER c AS clear_at,
               first_value(f.type IN ('assigned', 'reactivated')) OVER a AS assigned,
               first_value(f.at) OVER a AS la_at,
               first_value(f.event_id) OVER a AS la_event,
               first_value(f.agent_id) OVER a AS la_agent
          FROM fast f
        WINDOW c AS (PARTITION BY f.conversation),
               a AS (PARTITION BY f.conversation
                     ORDER BY f.type IN ('assigned', 'reactivated') DESC, f.at DESC,
                              f.event_id COLLATE "C" DESC
                     ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
    ),
    -- Per conversation opened by the batch: its state (RESOLVED when the latest lifecycle
    -- event is a resolution, which ranks after any other of the same instant), assignee and
    -- the facts of spec 3.5 (see cockpit.on_events_inserted).
    opening AS (
        SELECT w.conversation,
               min(w.idx) FILTER (WHERE w.type = 'conversation_opened') AS idx,
               max(w.product_id) FILTER (WHERE w.type = 'conversation_opened') AS product_id,
               max(w.channel) FILTER (WHERE w.type = 'conversation_opened') AS channel,
               max(w.at) FILTER (WHERE w.type = 'conversation_opened') AS opened_at,
               coalesce(max(w.at) FILTER (WHERE w.type = 'resolved')
                        >= max(w.at) FILTER (WHERE w.type IN ('conversation_opened', 'assigned', 'reactivated')),
                        false) AS resolved,
               max(w.la_agent) FILTER (WHERE w.assigned) AS assignee_id,
               max(w.la_at) FILTER (WHERE w.assigned) AS assigned_at,
               max(w.la_event) FILTER (WHERE w.assigned) AS assignment_event,
               min(w.at) FILTER (WHERE w.assigned AND w.type = 'agent_message' AND w.agent_id = w.la_agent
                                   AND (w.at, w.rank, w.event_id COLLATE "C")
                                       > (w.la_at, 2::smallint, w.la_event COLLATE "C")) AS first_response_at,
               min(w.at) FILTER (WHERE w.type IN ('conversation_opened', 'customer_message')
                                   AND (w.clear_at IS NULL OR w.at > w.clear_at)) AS waiting_since,
               max(w.at) FILTER (WHERE w.type IN ('conversation_opened', 'customer_message')) AS customer_at,
               max(w.at) FILTER (WHERE w.type = 'agent_message') AS agent_at,
               max(w.clear_at) AS clear_at
          FROM w
         GROUP BY w.conversation
        HAVING bool_or(w.type = 'conversation_opened')
    ),
    opened AS (
        INSERT INTO cockpit.conversations
               (org_id, conversation_id, product_id, channel, opened_at, state, assignee_id,
                assigned_at, assignment_event, first_response_at, waiting_since,
                last_customer_message_at, last_agent_message_at, last_clear_at)
        SELECT p_org_id, o.conversation, o.product_id, o.channel, o.opened_at,
               CASE WHEN o.resolved THEN 'RESOLVED' ELSE 'ACTIVE' END, o.assignee_id,
               o.assigned_at, o.assignment_event, o.first_response_at, o.waiting_since,
               o.customer_at, o.agent_at, o.clear_at
          FROM opening o
         ORDER BY o.idx
        RETURNING 1
    )
    -- (The insert trigger of V15 tells the live cockpits of the products concerned: a new
    -- conversation changes an active count or the queue.)
    SELECT count(*) INTO v_opened FROM opened;

    INSERT INTO cockpit.events (org_id, event_id, type, at, rank, conversation_id, agent_id, by_id, payload)
    SELECT p_org_id, r.event_id, r.type, r.at, r.rank, r.conversation, r.agent_id, r.by_id, r.payload
      FROM unnest(v_rows) r
     WHERE r.route = 'fast'
     ORDER BY r.idx;
    GET DIAGNOSTICS v_accepted = ROW_COUNT;

    -- Stored conversations whose state or assignee a fast event may change (none when every
    -- conversation of the batch is new: then no UPDATE runs, and no trigger fires for it).
    SELECT array_agg(t.conversation_id)
      INTO v_stored
      FROM (SELECT DISTINCT r.conversation COLLATE "C" AS conversation_id
              FROM unnest(v_rows) r
             WHERE r.route = 'fast' AND r.type IN ('assigned', 'reactivated', 'resolved')
            EXCEPT
            SELECT r.conversation COLLATE "C"
              FROM unnest(v_rows) r
             WHERE r.route = 'fast' AND r.type = 'conversation_opened') t;
    IF v_stored IS NOT NULL THEN
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
              FROM unnest(v_stored) t(conversation_id)
          ) s
         WHERE c.org_id = p_org_id AND c.conversation_id = s.conversation_id
           AND (c.state, c.assignee_id) IS DISTINCT FROM (s.state, s.assignee_id);
    END IF;

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
$function$;
REVOKE EXECUTE ON FUNCTION cockpit.ingest_shaped(text,cockpit.shaped_event[],jsonb) FROM PUBLIC;
