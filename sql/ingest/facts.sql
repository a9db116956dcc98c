-- Defines: cockpit.ingest_settle_conversations(), cockpit.ingest_settle_batch().
-- Ingest's last step, facts: the state and current assignee of the conversations a batch
-- touched, from their lifecycle events in the order of spec 3.1 (the same whatever order
-- the events arrived in), and the hand-off to the refresh (cockpit.mark_dirty) of those
-- whose daily figures may change. The live facts of spec 3.5 are folded in as events are
-- stored (cockpit.fold_live_facts, sql/insights/conversation_live_facts.sql).
-- Applied after the migrations, in the order of src/db/definitions.rs; edit here and the
-- next start applies it (README, "Changing SQL").

-- p_touched: stored conversations an assignment, re-activation or resolution of the batch
-- may change (no UPDATE, and no trigger, when there is none); p_marked: conversations
-- whose daily figures the refresh must recompute (a customer message alone marks nothing).
CREATE OR REPLACE FUNCTION cockpit.ingest_settle_conversations(p_org_id text, p_touched text[], p_marked text[])
 RETURNS void
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_orgs text[];
    v_products text[];
    v_old_assignees text[];
    v_old_states text[];
    v_new_assignees text[];
    v_new_states text[];
BEGIN
    IF cardinality(p_touched) > 0 THEN
        WITH changed AS (
        UPDATE cockpit.conversations c
           SET state = s.state, assignee_id = s.assignee_id
          FROM (
            SELECT t.conversation_id, o.state AS old_state, o.assignee_id AS old_assignee,
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
              FROM (SELECT DISTINCT u COLLATE "C" AS conversation_id FROM unnest(p_touched) u) t
              -- The row before this statement (its snapshot), for the assignee before.
              JOIN cockpit.conversations o
                ON o.org_id = p_org_id AND o.conversation_id = t.conversation_id
          ) s
         WHERE c.org_id = p_org_id AND c.conversation_id = s.conversation_id
           AND (c.state, c.assignee_id) IS DISTINCT FROM (s.state, s.assignee_id)
        RETURNING c.org_id, c.product_id, s.old_assignee, s.old_state, c.assignee_id, c.state
        )
        SELECT array_agg(x.org_id), array_agg(x.product_id), array_agg(x.old_assignee),
               array_agg(x.old_state), array_agg(x.assignee_id), array_agg(x.state)
          INTO v_orgs, v_products, v_old_assignees, v_old_states, v_new_assignees, v_new_states
          FROM changed x;
        -- The live cockpits and kept active rows of the assignees before and after.
        IF cardinality(v_orgs) > 0 THEN
            PERFORM cockpit.conversations_changed(v_orgs, v_products, v_old_assignees,
                                                  v_old_states, v_new_assignees, v_new_states);
        END IF;
    END IF;
    IF cardinality(p_marked) > 0 THEN
        PERFORM cockpit.mark_dirty(p_org_id, p_marked);
    END IF;
END
$function$;
REVOKE EXECUTE ON FUNCTION cockpit.ingest_settle_conversations(text,text[],text[]) FROM PUBLIC;

-- The same for the fast events of a set-based batch: the conversations it opens were
-- inserted settled (cockpit.ingest_store_batch); the stored ones it assigned, re-activated
-- or resolved are settled here.
CREATE OR REPLACE FUNCTION cockpit.ingest_settle_batch(p_org_id text, v_rows cockpit.batch_event[])
 RETURNS void
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_stored text[];
    v_marked text[];
BEGIN
    SELECT array_agg(t.conversation_id)
      INTO v_stored
      FROM (SELECT DISTINCT r.conversation COLLATE "C" AS conversation_id
              FROM unnest(v_rows) r
             WHERE r.route = 'fast' AND r.type IN ('assigned', 'reactivated', 'resolved')
            EXCEPT
            SELECT r.conversation COLLATE "C"
              FROM unnest(v_rows) r
             WHERE r.route = 'fast' AND r.type = 'conversation_opened') t;
    SELECT array_agg(r.conversation)
      INTO v_marked
      FROM unnest(v_rows) r
     WHERE r.route = 'fast' AND r.type <> 'customer_message';
    PERFORM cockpit.ingest_settle_conversations(p_org_id, v_stored, v_marked);
END
$function$;
REVOKE EXECUTE ON FUNCTION cockpit.ingest_settle_batch(text,cockpit.batch_event[]) FROM PUBLIC;
