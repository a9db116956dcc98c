-- Supervisor insights (spec 3.5), second slice: the waiting customer, the current
-- assignment and the open conversations, maintained at ingest; and the BI view of time in
-- status in the shape of spec 6.
--
-- 1. Live facts of a conversation, kept on its row so that the cockpit reads them with the
--    active counts (never from the event log):
--      waiting_since             the first customer message (conversation_opened counts)
--                                not answered by any agent_message or resolved later in
--                                the order of spec 3.1; null when none
--      assigned_at, assignment_event
--                                `at` and id of the latest assignment (assigned /
--                                reactivated) in that order; assignee_id is its agent
--      first_response_at         the assignee's first reply inside that assignment
--      last_customer_message_at, last_agent_message_at
--      last_clear_at             the latest agent_message or resolved (what waiting_since
--                                starts after)
--    A customer message ranks before any reply or resolution of the same instant, so a
--    customer message is unanswered exactly when its `at` is later than last_clear_at.
--    Every value is a maximum, a minimum, or "the first after a maximum", so they can be
--    folded in whatever the arrival order (late, shuffled, split into batches):
--      * a conversation opened by a batch of the set-based ingest is inserted with its
--        facts, computed from the batch (which holds all its events);
--      * a statement trigger on the event log folds every other statement's events into
--        their conversations: maxima by `greatest`, and one index descent when a clear or
--        an assignment moved (or a message came earlier than the one waited on);
--      * a conversation inserted without facts (the per-event ingest opens it alone) gets
--        those of its opening by a row trigger.
--    cockpit.conversation_live_reference states the same facts over the whole log: the
--    tests compare every path with it.
ALTER TABLE cockpit.conversations
    ADD COLUMN assigned_at timestamptz,
    ADD COLUMN assignment_event text COLLATE "C",
    ADD COLUMN first_response_at timestamptz,
    ADD COLUMN waiting_since timestamptz,
    ADD COLUMN last_customer_message_at timestamptz,
    ADD COLUMN last_agent_message_at timestamptz,
    ADD COLUMN last_clear_at timestamptz;
-- Room on each page for the updates of a conversation's facts as its events come (HOT).
ALTER TABLE cockpit.conversations SET (fillfactor = 85);

CREATE FUNCTION cockpit.on_events_inserted() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- One pass over the statement's events, one row per conversation, then one primary-key
    -- probe each. A conversation opened by this same statement is left to whoever inserted
    -- it, with all its facts (the set-based ingest, from the batch), or with those of a
    -- conversation just opened (cockpit.on_conversation_opened) when the statement holds
    -- nothing else of it (the per-event ingest).
    --
    -- No statement here joins the transition table with itself or with another one: the
    -- plan is made once per session, for the size of the first statement's table, and a
    -- nested loop chosen for a few rows would be quadratic on a 50,000-event batch.
    WITH batch AS (
        -- Plain aggregates only (no ordered ones): most groups of a batch are conversations
        -- it opens, dropped by HAVING after every aggregate is computed.
        SELECT e.org_id, e.conversation_id,
               max(e.at) FILTER (WHERE e.type IN ('conversation_opened', 'customer_message')) AS customer_max,
               min(e.at) FILTER (WHERE e.type IN ('conversation_opened', 'customer_message')) AS customer_min,
               max(e.at) FILTER (WHERE e.type = 'agent_message') AS agent_max,
               min(e.at) FILTER (WHERE e.type = 'agent_message') AS agent_min,
               max(e.at) FILTER (WHERE e.type IN ('agent_message', 'resolved')) AS clear_max,
               bool_or(e.type IN ('assigned', 'reactivated')) AS has_assignment
          FROM new_events e
         WHERE e.conversation_id IS NOT NULL
         GROUP BY e.org_id, e.conversation_id
        HAVING NOT bool_or(e.type = 'conversation_opened')
    ),
    merged AS (
        SELECT b.*, la.at AS la_at, la.event_id AS la_event, la.agent_id AS la_agent,
               c.waiting_since AS old_waiting_since, c.first_response_at AS old_first_response_at,
               greatest(c.last_customer_message_at, b.customer_max) AS new_last_customer,
               greatest(c.last_agent_message_at, b.agent_max) AS new_last_agent,
               greatest(c.last_clear_at, b.clear_max) AS new_last_clear,
               coalesce(b.clear_max > c.last_clear_at OR (c.last_clear_at IS NULL AND b.clear_max IS NOT NULL),
                        false) AS clear_moved,
               coalesce(la.at IS NOT NULL
                        AND (c.assigned_at IS NULL
                             OR (la.at, la.event_id) > (c.assigned_at, c.assignment_event)),
                        false) AS assignment_moved,
               c.assigned_at, c.assignment_event, c.assignee_id
          FROM batch b
          JOIN cockpit.conversations c
            ON c.org_id = b.org_id AND c.conversation_id = b.conversation_id
          -- The latest assignment of the log (this statement's events are in it), found
          -- only when the statement brings one: one index descent. It moved when it is
          -- later than the stored one (assigned and reactivated share a rank).
          LEFT JOIN LATERAL (
              SELECT e.at, e.event_id, e.agent_id FROM cockpit.events e
               WHERE b.has_assignment
                 AND e.org_id = b.org_id AND e.conversation_id = b.conversation_id
                 AND e.type IN ('assigned', 'reactivated')
               ORDER BY e.at DESC, e.rank DESC, e.event_id DESC
               LIMIT 1) la ON true
    ),
    effective AS (
        SELECT m.*,
               CASE WHEN m.assignment_moved THEN m.la_at ELSE m.assigned_at END AS eff_at,
               CASE WHEN m.assignment_moved THEN m.la_event ELSE m.assignment_event END AS eff_event,
               CASE WHEN m.assignment_moved THEN m.la_agent ELSE m.assignee_id END AS eff_agent
          FROM merged m
    ),
    computed AS (
        SELECT f.org_id, f.conversation_id, f.new_last_customer, f.new_last_agent,
               f.new_last_clear, f.eff_at, f.eff_event, f.eff_agent,
               CASE
                   -- No new clear, and no new customer message earlier than the one waited
                   -- on: unchanged (the common case of a customer writing again).
                   WHEN NOT f.clear_moved
                        AND (f.customer_min IS NULL OR f.customer_min >= f.old_waiting_since)
                       THEN f.old_waiting_since
                   -- Else the first customer message after the latest clear, stored or new:
                   -- one index descent.
                   ELSE (SELECT e.at FROM cockpit.events e
                          WHERE e.org_id = f.org_id AND e.conversation_id = f.conversation_id
                            AND e.type IN ('conversation_opened', 'customer_message')
                            AND (f.new_last_clear IS NULL OR e.at > f.new_last_clear)
                          ORDER BY e.at
                          LIMIT 1)
               END AS waiting_since,
               CASE
                   WHEN f.eff_at IS NULL THEN NULL
                   -- Same assignment, and no new reply earlier than its first response.
                   WHEN NOT f.assignment_moved
                        AND (f.agent_min IS NULL OR f.agent_min >= f.old_first_response_at)
                       THEN f.old_first_response_at
                   -- Else the assignee's first reply after the assignment: one descent.
                   ELSE (SELECT e.at FROM cockpit.events e
                          WHERE e.org_id = f.org_id AND e.conversation_id = f.conversation_id
                            AND e.agent_id = f.eff_agent AND e.type = 'agent_message'
                            AND (e.at, e.rank, e.event_id) > (f.eff_at, 2::smallint, f.eff_event)
                          ORDER BY e.at, e.rank, e.event_id
                          LIMIT 1)
               END AS first_response_at
          FROM effective f
    )
    UPDATE cockpit.conversations c
       SET last_customer_message_at = x.new_last_customer,
           last_agent_message_at = x.new_last_agent,
           last_clear_at = x.new_last_clear,
           waiting_since = x.waiting_since,
           assigned_at = x.eff_at,
           assignment_event = x.eff_event,
           assignee_id = x.eff_agent,
           first_response_at = x.first_response_at
      FROM computed x
     WHERE c.org_id = x.org_id AND c.conversation_id = x.conversation_id
       AND (c.last_customer_message_at, c.last_agent_message_at, c.last_clear_at, c.waiting_since,
            c.assigned_at, c.assignment_event, c.assignee_id, c.first_response_at)
           IS DISTINCT FROM
           (x.new_last_customer, x.new_last_agent, x.new_last_clear, x.waiting_since,
            x.eff_at, x.eff_event, x.eff_agent, x.first_response_at);
    RETURN NULL;
END
$$;
CREATE TRIGGER events_conversation_facts
    AFTER INSERT ON cockpit.events
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION cockpit.on_events_inserted();

-- A conversation inserted without its facts has just been opened: its customer waits since
-- the opening, which is its latest customer message. The condition is the trigger's own, so
-- that the conversations the set-based ingest inserts with their facts call no function.
CREATE FUNCTION cockpit.on_conversation_opened() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    NEW.last_customer_message_at := NEW.opened_at;
    NEW.waiting_since := NEW.opened_at;
    RETURN NEW;
END
$$;
CREATE TRIGGER conversations_opened
    BEFORE INSERT ON cockpit.conversations
    FOR EACH ROW WHEN (NEW.last_customer_message_at IS NULL)
    EXECUTE FUNCTION cockpit.on_conversation_opened();

-- The set-based ingest (V13's, unchanged otherwise) inserts the conversations a batch opens
-- with their facts.
CREATE OR REPLACE FUNCTION cockpit.ingest_shaped(p_org_id text, p_shaped cockpit.shaped_event[], p_events jsonb)
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
$$;
ALTER FUNCTION cockpit.ingest_shaped(text, cockpit.shaped_event[], jsonb) SET jit = off;
ALTER FUNCTION cockpit.ingest_shaped(text, cockpit.shaped_event[], jsonb) SET plan_cache_mode = auto;

-- The same facts stated plainly over the whole event log: the oracle the tests compare the
-- maintained columns with (and how the columns of stored conversations are filled now).
CREATE VIEW cockpit.conversation_live_reference AS
SELECT c.org_id, c.conversation_id, c.state,
       a.agent_id AS assignee_id, a.at AS assigned_at, a.event_id AS assignment_event,
       (SELECT min(r.at) FROM cockpit.events r
         WHERE r.org_id = c.org_id AND r.conversation_id = c.conversation_id
           AND r.type = 'agent_message' AND r.agent_id = a.agent_id
           AND (r.at, r.rank, r.event_id) > (a.at, a.rank, a.event_id)
           AND NOT EXISTS (
               SELECT 1 FROM cockpit.events l
                WHERE l.org_id = c.org_id AND l.conversation_id = c.conversation_id
                  AND l.type IN ('assigned', 'reactivated', 'resolved')
                  AND (l.at, l.rank, l.event_id) > (a.at, a.rank, a.event_id)
                  AND (l.at, l.rank, l.event_id) < (r.at, r.rank, r.event_id))) AS first_response_at,
       (SELECT min(m.at) FROM cockpit.events m
         WHERE m.org_id = c.org_id AND m.conversation_id = c.conversation_id
           AND m.type IN ('conversation_opened', 'customer_message')
           AND NOT EXISTS (
               SELECT 1 FROM cockpit.events r
                WHERE r.org_id = c.org_id AND r.conversation_id = c.conversation_id
                  AND r.type IN ('agent_message', 'resolved')
                  AND (r.at, r.rank, r.event_id) > (m.at, m.rank, m.event_id))) AS waiting_since,
       (SELECT max(m.at) FROM cockpit.events m
         WHERE m.org_id = c.org_id AND m.conversation_id = c.conversation_id
           AND m.type IN ('conversation_opened', 'customer_message')) AS last_customer_message_at,
       (SELECT max(r.at) FROM cockpit.events r
         WHERE r.org_id = c.org_id AND r.conversation_id = c.conversation_id
           AND r.type = 'agent_message') AS last_agent_message_at
  FROM cockpit.conversations c
  LEFT JOIN LATERAL (
      SELECT e.agent_id, e.at, e.rank, e.event_id
        FROM cockpit.events e
       WHERE e.org_id = c.org_id AND e.conversation_id = c.conversation_id
         AND e.type IN ('assigned', 'reactivated')
       ORDER BY e.at DESC, e.rank DESC, e.event_id DESC
       LIMIT 1
  ) a ON true;
COMMENT ON VIEW cockpit.conversation_live_reference IS
'The live facts of every conversation (spec 3.5) computed from the whole event log: the oracle of the columns ingest maintains.';

-- Conversations stored before this migration.
UPDATE cockpit.conversations c
   SET assigned_at = r.assigned_at, assignment_event = r.assignment_event,
       first_response_at = r.first_response_at, waiting_since = r.waiting_since,
       last_customer_message_at = r.last_customer_message_at,
       last_agent_message_at = r.last_agent_message_at,
       last_clear_at = (SELECT max(e.at) FROM cockpit.events e
                         WHERE e.org_id = c.org_id AND e.conversation_id = c.conversation_id
                           AND e.type IN ('agent_message', 'resolved'))
  FROM cockpit.conversation_live_reference r
 WHERE r.org_id = c.org_id AND r.conversation_id = c.conversation_id;

-- 2. The organization's first-response target (spec 3.5, service level), in seconds.
--    `overdueFirstResponses` counts assignments without a first response older than it.
ALTER TABLE cockpit.organizations
    ADD COLUMN service_level_seconds integer NOT NULL DEFAULT 60
        CHECK (service_level_seconds BETWEEN 1 AND 86400);

-- The queue of a cockpit scope: its active conversations without an assignee.
CREATE INDEX conversations_queued
    ON cockpit.conversations (org_id, product_id, channel, opened_at)
    WHERE state = 'ACTIVE' AND assignee_id IS NULL;

-- 3. Live pushes: what the cockpit shows of a conversation changed. Besides state and
--    assignee (V6), the waiting customer and the first response of the assignment
--    (unanswered, overdue), and the queue (a conversation opened with no assignee).
CREATE OR REPLACE FUNCTION cockpit.on_conversations_changed() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    -- A conversation whose shown columns changed is two groups of one row (old and new);
    -- an unchanged one, one group of two (GROUP BY holds nulls equal). No join of the two
    -- transition tables: its plan, made for the first statement's size, could be a nested
    -- loop on a large one.
    PERFORM cockpit.notify_live(c.org_id, c.product_id, 'active')
       FROM (SELECT DISTINCT x.org_id, x.product_id
               FROM (SELECT x.org_id, x.product_id
                       FROM (SELECT n.org_id, n.conversation_id, n.product_id, n.state, n.assignee_id,
                                    n.waiting_since, n.assigned_at, n.first_response_at
                               FROM new_rows n
                             UNION ALL
                             SELECT o.org_id, o.conversation_id, o.product_id, o.state, o.assignee_id,
                                    o.waiting_since, o.assigned_at, o.first_response_at
                               FROM old_rows o) x
                      GROUP BY x.org_id, x.conversation_id, x.product_id, x.state, x.assignee_id,
                               x.waiting_since, x.assigned_at, x.first_response_at
                     HAVING count(*) = 1) x) c;
    RETURN NULL;
END
$$;
CREATE FUNCTION cockpit.on_conversations_inserted() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM cockpit.notify_live(c.org_id, c.product_id, 'active')
       FROM (SELECT DISTINCT n.org_id, n.product_id FROM new_rows n) c;
    RETURN NULL;
END
$$;
CREATE TRIGGER conversations_live_insert
    AFTER INSERT ON cockpit.conversations
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cockpit.on_conversations_inserted();

-- 4. BI: the open conversations (spec 6).
CREATE VIEW reporting.open_conversations AS
SELECT c.org_id, c.conversation_id, c.product_id, c.channel, c.assignee_id, c.opened_at,
       c.assigned_at, c.waiting_since, c.first_response_at, c.last_customer_message_at,
       c.last_agent_message_at
  FROM cockpit.conversations c
 WHERE c.state = 'ACTIVE';
COMMENT ON VIEW reporting.open_conversations IS
'One row per ACTIVE conversation, now (spec 3.5, 6). The queue is its rows with a null '
'assignee_id; a customer is kept waiting where waiting_since is set.';
COMMENT ON COLUMN reporting.open_conversations.org_id IS 'Organization id.';
COMMENT ON COLUMN reporting.open_conversations.conversation_id IS 'Conversation id.';
COMMENT ON COLUMN reporting.open_conversations.product_id IS 'Product (brand/app) id.';
COMMENT ON COLUMN reporting.open_conversations.channel IS 'Channel: LIVE_CHAT, IN_APP, WHATSAPP, FACEBOOK, INSTAGRAM or TWITTER.';
COMMENT ON COLUMN reporting.open_conversations.assignee_id IS 'Agent of the current assignment; null while queued (never assigned).';
COMMENT ON COLUMN reporting.open_conversations.opened_at IS 'When the customer opened it (the queue''s wait starts here).';
COMMENT ON COLUMN reporting.open_conversations.assigned_at IS 'Start of the current assignment (assigned or reactivated); null while queued.';
COMMENT ON COLUMN reporting.open_conversations.waiting_since IS 'The first customer message not yet answered by an agent reply or a resolution; null when none.';
COMMENT ON COLUMN reporting.open_conversations.first_response_at IS 'The assignee''s first reply in the current assignment; null if none yet.';
COMMENT ON COLUMN reporting.open_conversations.last_customer_message_at IS 'The customer''s latest message (conversation_opened counts as one).';
COMMENT ON COLUMN reporting.open_conversations.last_agent_message_at IS 'The latest reply of any agent; null if none.';

-- 5. reporting.agent_status_daily in the shape of spec 6: one row per (org, local day,
--    agent, status) with seconds > 0 (V14 had one row per day with a column per status).
DROP VIEW reporting.agent_status_daily;
CREATE VIEW reporting.agent_status_daily AS
SELECT a.org_id, d.day::date AS day, a.agent_id, a.name AS agent_name, s.status, s.seconds
  FROM cockpit.agents a
  JOIN cockpit.organizations o ON o.org_id = a.org_id
 CROSS JOIN LATERAL generate_series(
        coalesce((SELECT min(sc.changed_at AT TIME ZONE o.timezone)::date
                    FROM cockpit.status_changes sc
                   WHERE sc.org_id = a.org_id AND sc.agent_id = a.agent_id),
                 (now() AT TIME ZONE o.timezone)::date),
        (now() AT TIME ZONE o.timezone)::date,
        interval '1 day') AS d(day)
 CROSS JOIN LATERAL cockpit.status_seconds(a.org_id, a.agent_id, d.day::date) s
 WHERE s.seconds > 0;
COMMENT ON VIEW reporting.agent_status_daily IS
'Time in status per agent and local day of the organization (spec 3.5, 6): one row per '
'(org, day, agent, status) with seconds > 0, clipped to the day (today: up to now), from '
'the day of the agent''s first recorded status change (or today) to today. The statuses of '
'a past day add up to its length (23 or 25 hours on DST days).';
COMMENT ON COLUMN reporting.agent_status_daily.org_id IS 'Organization id.';
COMMENT ON COLUMN reporting.agent_status_daily.day IS 'Local day of the organization.';
COMMENT ON COLUMN reporting.agent_status_daily.agent_id IS 'Agent id.';
COMMENT ON COLUMN reporting.agent_status_daily.agent_name IS 'Agent display name (current).';
COMMENT ON COLUMN reporting.agent_status_daily.status IS 'ONLINE, BREAK, INVISIBLE or OFFLINE.';
COMMENT ON COLUMN reporting.agent_status_daily.seconds IS 'Whole seconds in that status on that day (> 0).';

REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA cockpit FROM PUBLIC;
GRANT EXECUTE ON FUNCTION cockpit.ingest_events(text, jsonb) TO cockpit_ingest;
GRANT EXECUTE ON FUNCTION cockpit.status_seconds(text, text, date, timestamptz) TO cockpit_reader;
GRANT SELECT ON reporting.agent_status_daily, reporting.open_conversations TO cockpit_reader;
