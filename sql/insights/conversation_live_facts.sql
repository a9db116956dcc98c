-- Defines: cockpit.fold_live_facts().
-- The live facts of an open conversation (spec 3.5: waiting customer, current assignment,
-- first response), folded in as events arrive, whatever their order: called by the
-- statements that store events (cockpit.ingest_store_event, cockpit.ingest_store_batch) with
-- what they stored, in their transaction; no trigger (Citus refuses them, issue 23).
-- Applied after the migrations, in the order of src/db/definitions.rs; edit here and the
-- next start applies it (README, "Changing SQL").

-- p_conversations, p_types, p_ats: the stored events (of conversations) of organization
-- p_org_id, one entry each. Every table the statement reads names p_org_id: on a Citus
-- cluster it is routed to the node holding that organization.
CREATE OR REPLACE FUNCTION cockpit.fold_live_facts(p_org_id text, p_conversations text[], p_types text[], p_ats timestamptz[])
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_orgs text[];
    v_products text[];
    v_old_assignees text[];
    v_states text[];
    v_new_assignees text[];
BEGIN
    -- One pass over the statement's events, one row per conversation, then one primary-key
    -- probe each. A conversation opened by this same statement is left to whoever inserted
    -- it, with all its facts (the set-based ingest, from the batch), or with those of a
    -- conversation just opened (cockpit.ingest_store_event inserts it so) when the statement
    -- holds nothing else of it (the per-event ingest).
    --
    -- No statement here joins the stored events with themselves or with another set: the
    -- plan is made once per session, for the size of the first call's arrays, and a
    -- nested loop chosen for a few rows would be quadratic on a 50,000-event batch.
    WITH new_events AS (
        SELECT * FROM unnest(p_conversations, p_types, p_ats) AS e(conversation_id, type, at)
    ),
    batch AS (
        -- Plain aggregates only (no ordered ones): most groups of a batch are conversations
        -- it opens, dropped by HAVING after every aggregate is computed.
        SELECT e.conversation_id,
               max(e.at) FILTER (WHERE e.type IN ('conversation_opened', 'customer_message')) AS customer_max,
               min(e.at) FILTER (WHERE e.type IN ('conversation_opened', 'customer_message')) AS customer_min,
               max(e.at) FILTER (WHERE e.type = 'agent_message') AS agent_max,
               min(e.at) FILTER (WHERE e.type = 'agent_message') AS agent_min,
               max(e.at) FILTER (WHERE e.type IN ('agent_message', 'resolved')) AS clear_max,
               bool_or(e.type IN ('assigned', 'reactivated')) AS has_assignment
          FROM new_events e
         WHERE e.conversation_id IS NOT NULL
         GROUP BY e.conversation_id
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
            ON c.org_id = p_org_id AND c.conversation_id = b.conversation_id
          -- The latest assignment of the log (this statement's events are in it), found
          -- only when the statement brings one: one index descent. It moved when it is
          -- later than the stored one (assigned and reactivated share a rank).
          LEFT JOIN LATERAL (
              SELECT e.at, e.event_id, e.agent_id FROM cockpit.events e
               WHERE b.has_assignment
                 AND e.org_id = p_org_id AND e.conversation_id = b.conversation_id
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
        SELECT f.conversation_id, f.new_last_customer, f.new_last_agent,
               f.new_last_clear, f.eff_at, f.eff_event, f.eff_agent,
               f.old_waiting_since, f.old_first_response_at, f.assigned_at AS old_assigned_at,
               f.assignee_id AS old_assignee,
               CASE
                   -- No new clear, and no new customer message earlier than the one waited
                   -- on: unchanged (the common case of a customer writing again).
                   WHEN NOT f.clear_moved
                        AND (f.customer_min IS NULL OR f.customer_min >= f.old_waiting_since)
                       THEN f.old_waiting_since
                   -- Else the first customer message after the latest clear, stored or new:
                   -- one index descent.
                   ELSE (SELECT e.at FROM cockpit.events e
                          WHERE e.org_id = p_org_id AND e.conversation_id = f.conversation_id
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
                          WHERE e.org_id = p_org_id AND e.conversation_id = f.conversation_id
                            AND e.agent_id = f.eff_agent AND e.type = 'agent_message'
                            AND (e.at, e.rank, e.event_id) > (f.eff_at, 2::smallint, f.eff_event)
                          ORDER BY e.at, e.rank, e.event_id
                          LIMIT 1)
               END AS first_response_at
          FROM effective f
    ),
    changed AS (
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
     WHERE c.org_id = p_org_id AND c.conversation_id = x.conversation_id
       AND (c.last_customer_message_at, c.last_agent_message_at, c.last_clear_at, c.waiting_since,
            c.assigned_at, c.assignment_event, c.assignee_id, c.first_response_at)
           IS DISTINCT FROM
           (x.new_last_customer, x.new_last_agent, x.new_last_clear, x.waiting_since,
            x.eff_at, x.eff_event, x.eff_agent, x.first_response_at)
    RETURNING c.org_id, c.product_id, c.state, x.old_assignee, c.assignee_id,
              -- What the cockpit shows of it (the state does not change here).
              (x.old_waiting_since, x.old_assigned_at, x.old_assignee, x.old_first_response_at)
              IS DISTINCT FROM (c.waiting_since, c.assigned_at, c.assignee_id, c.first_response_at)
              AS shown
    )
    SELECT array_agg(x.org_id), array_agg(x.product_id), array_agg(x.old_assignee),
           array_agg(x.state), array_agg(x.assignee_id)
      INTO v_orgs, v_products, v_old_assignees, v_states, v_new_assignees
      FROM changed x
     WHERE x.shown;
    -- The live cockpits and kept active rows of the assignees before and after.
    IF cardinality(v_orgs) > 0 THEN
        PERFORM cockpit.conversations_changed(v_orgs, v_products, v_old_assignees, v_states,
                                              v_new_assignees, v_states);
    END IF;
END
$function$;
REVOKE EXECUTE ON FUNCTION cockpit.fold_live_facts(text,text[],text[],timestamptz[]) FROM PUBLIC;
