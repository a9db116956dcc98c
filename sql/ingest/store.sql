-- Defines: cockpit.ingest_store_event(), cockpit.ingest_store_batch().
-- Ingest's third step, store: what the judge accepted goes into the event log, with its
-- effect on the entities (the upsert with the latest `at` wins) and the conversations a
-- batch opens.
-- Applied after the migrations, in the order of src/db/definitions.rs; edit here and the
-- next start applies it (README, "Changing SQL").

-- One accepted event, for the exact path. Called only by cockpit.ingest_events_sequential.
CREATE OR REPLACE FUNCTION cockpit.ingest_store_event(
    p_org_id text,
    v_id text, v_type text, v_at timestamptz, v_rank smallint, v_conv text, v_agent text,
    v_by text, v_product text, v_channel text, v_name text, v_role text, v_tz text,
    v_products text[], v_target numeric, v_payload jsonb)
 RETURNS void
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_zone text;
    v_level integer;
BEGIN
    -- What changes who or what a live cockpit shows is told to the listeners here, in the
    -- same transaction (cockpit.notify_live), and what a new zone or target changes is
    -- recomputed here: no trigger on these tables (Citus refuses them, issue 23).
    CASE v_type
    WHEN 'organization_upserted' THEN
        -- The organization's row, locked: its zone and target before this event.
        SELECT o.timezone, o.service_level_seconds INTO v_zone, v_level
          FROM cockpit.organizations o
         WHERE o.org_id = p_org_id
           FOR NO KEY UPDATE;
        UPDATE cockpit.organizations o
           SET name = v_name, name_at = v_at, name_event = v_id
         WHERE o.org_id = p_org_id
           AND (o.name_at IS NULL OR (v_at, v_id) > (o.name_at, o.name_event));
        IF v_tz IS NOT NULL THEN
            UPDATE cockpit.organizations o
               SET timezone = v_tz, timezone_at = v_at, timezone_event = v_id
             WHERE o.org_id = p_org_id
               AND (o.timezone_at IS NULL OR (v_at, v_id) > (o.timezone_at, o.timezone_event));
            IF FOUND AND v_tz IS DISTINCT FROM v_zone THEN
                PERFORM cockpit.timezone_changed(p_org_id);
            END IF;
        END IF;
        IF v_target IS NOT NULL THEN
            UPDATE cockpit.organizations o
               SET service_level_seconds = v_target::integer, service_level_at = v_at,
                   service_level_event = v_id
             WHERE o.org_id = p_org_id
               AND (o.service_level_at IS NULL
                    OR (v_at, v_id) > (o.service_level_at, o.service_level_event));
            IF FOUND AND v_target::integer IS DISTINCT FROM v_level THEN
                PERFORM cockpit.service_level_changed(p_org_id);
            END IF;
        END IF;
    WHEN 'product_upserted' THEN
        INSERT INTO cockpit.products AS p (org_id, product_id, name, version_at, version_event)
        VALUES (p_org_id, v_product, v_name, v_at, v_id)
        ON CONFLICT (org_id, product_id) DO UPDATE
           SET name = excluded.name, version_at = excluded.version_at,
               version_event = excluded.version_event
         WHERE (excluded.version_at, excluded.version_event) > (p.version_at, p.version_event);
        IF FOUND THEN -- a new product, or a new name
            PERFORM cockpit.notify_live(p_org_id, NULL, 'members');
        END IF;
    WHEN 'agent_upserted' THEN
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
            -- A new agent, name, role or membership: who is in which cockpit, in what order.
            PERFORM cockpit.notify_live(p_org_id, NULL, 'members');
        END IF;
    WHEN 'conversation_opened' THEN
        -- Just opened: its customer waits since the opening, its latest customer message.
        INSERT INTO cockpit.conversations (org_id, conversation_id, product_id, channel, opened_at,
                                           last_customer_message_at, waiting_since)
        VALUES (p_org_id, v_conv, v_product, v_channel, v_at, v_at, v_at);
        PERFORM cockpit.conversations_opened(p_org_id, ARRAY[v_product], ARRAY[NULL::text],
                                             ARRAY['ACTIVE']);
    ELSE
        NULL; -- the event itself is the change; its conversation is settled per batch
    END CASE;

    INSERT INTO cockpit.events (org_id, event_id, type, at, rank, conversation_id, agent_id, by_id, payload)
    VALUES (p_org_id, v_id, v_type, v_at, v_rank, v_conv, v_agent, v_by, v_payload);
    -- The live facts of its conversation (spec 3.5), unless it opened it just now.
    IF v_conv IS NOT NULL AND v_type <> 'conversation_opened' THEN
        PERFORM cockpit.fold_live_facts(p_org_id, ARRAY[v_conv], ARRAY[v_type], ARRAY[v_at]);
    END IF;
END
$function$;
REVOKE EXECUTE ON FUNCTION cockpit.ingest_store_event(text,text,text,timestamp with time zone,smallint,text,text,text,text,text,text,text,text,text[],numeric,jsonb) FROM PUBLIC;

-- The fast events of a batch (cockpit.ingest_judge_batch). Those of conversations the batch
-- opens are inserted with their conversation's final state, assignee and live facts, taken
-- from the batch, which holds all their events: no update after the insert
-- (cockpit.fold_live_facts leaves conversations opened by the same events to whoever
-- inserted them). Answers how many events were stored. Called only by cockpit.ingest_shaped.
CREATE OR REPLACE FUNCTION cockpit.ingest_store_batch(p_org_id text, v_rows cockpit.batch_event[])
 RETURNS integer
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_opened integer;
    v_accepted integer;
    v_products text[];
    v_assignees text[];
    v_states text[];
BEGIN
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
    -- the facts of spec 3.5 (see cockpit.fold_live_facts).
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
        RETURNING product_id, assignee_id, state
    )
    SELECT count(*), array_agg(product_id), array_agg(assignee_id), array_agg(state)
      INTO v_opened, v_products, v_assignees, v_states
      FROM opened;
    -- The live cockpits of the products concerned (a new conversation changes an active
    -- count or the queue), and the kept active rows.
    IF v_opened > 0 THEN
        PERFORM cockpit.conversations_opened(p_org_id, v_products, v_assignees, v_states);
    END IF;

    INSERT INTO cockpit.events (org_id, event_id, type, at, rank, conversation_id, agent_id, by_id, payload)
    SELECT p_org_id, r.event_id, r.type, r.at, r.rank, r.conversation, r.agent_id, r.by_id, r.payload
      FROM unnest(v_rows) r
     WHERE r.route = 'fast'
     ORDER BY r.idx;
    GET DIAGNOSTICS v_accepted = ROW_COUNT;
    -- The live facts of the stored conversations these events touch (spec 3.5; those the
    -- batch opens were inserted with theirs, and are left out by cockpit.fold_live_facts).
    PERFORM cockpit.fold_live_facts(p_org_id, array_agg(r.conversation),
                                    array_agg(r.type), array_agg(r.at))
       FROM unnest(v_rows) r
      WHERE r.route = 'fast' AND r.conversation IS NOT NULL
     HAVING count(*) > 0;
    RETURN v_accepted;
END
$function$;
REVOKE EXECUTE ON FUNCTION cockpit.ingest_store_batch(text,cockpit.batch_event[]) FROM PUBLIC;
