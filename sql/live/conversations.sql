-- Defines: cockpit.on_conversations_changed(), trigger conversations_live, cockpit.conversations_opened().
-- Live push of active counts and conversation facts: conversations inserted or changed.
-- The same statements keep the assignees' rows of cockpit.agent_active (sql/live/agent_active.sql).
-- Applied after the migrations, in the order of src/db/definitions.rs; edit here and the
-- next start applies it (README, "Changing SQL").

-- Live pushes: what the cockpit shows of a conversation changed. Besides state and
--    assignee, the waiting customer and the first response of the assignment
--    (unanswered, overdue), and the queue (a conversation opened with no assignee). The
--    notification names the assignees before and after: their rows and the scope's header
--    (the queue) are what changed; their kept active rows are recomputed.
CREATE OR REPLACE FUNCTION cockpit.on_conversations_changed()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
    -- A conversation whose shown columns changed is two groups of one row (old and new);
    -- an unchanged one, one group of two (GROUP BY holds nulls equal). No join of the two
    -- transition tables: its plan, made for the first statement's size, could be a nested
    -- loop on a large one.
    -- Kept active rows: only the assignees of a version that is active (a change between
    -- resolved versions changes none).
    PERFORM cockpit.keep_agent_active(c.org_id, c.product_id, c.kept),
            cockpit.notify_live(c.org_id, c.product_id, 'active', c.agents)
       FROM (SELECT x.org_id, x.product_id,
                    coalesce(array_agg(DISTINCT x.assignee_id) FILTER (WHERE x.assignee_id IS NOT NULL),
                             '{}') AS agents,
                    coalesce(array_agg(DISTINCT x.assignee_id)
                                 FILTER (WHERE x.assignee_id IS NOT NULL AND x.state = 'ACTIVE'),
                             '{}') AS kept
               FROM (SELECT x.org_id, x.product_id, x.assignee_id, x.state
                       FROM (SELECT n.org_id, n.conversation_id, n.product_id, n.state, n.assignee_id,
                                    n.waiting_since, n.assigned_at, n.first_response_at
                               FROM new_rows n
                             UNION ALL
                             SELECT o.org_id, o.conversation_id, o.product_id, o.state, o.assignee_id,
                                    o.waiting_since, o.assigned_at, o.first_response_at
                               FROM old_rows o) x
                      GROUP BY x.org_id, x.conversation_id, x.product_id, x.state, x.assignee_id,
                               x.waiting_since, x.assigned_at, x.first_response_at
                     HAVING count(*) = 1) x
              GROUP BY x.org_id, x.product_id) c;
    RETURN NULL;
END
$function$;
REVOKE EXECUTE ON FUNCTION cockpit.on_conversations_changed() FROM PUBLIC;

CREATE OR REPLACE TRIGGER conversations_live
    AFTER UPDATE ON cockpit.conversations
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cockpit.on_conversations_changed();

-- Conversations inserted (opened), one entry per conversation: product, assignee and
-- state. Called by the statements that insert them, in their transaction (no trigger:
-- Citus refuses them, issue 23): a new conversation changes an active count or the queue.
CREATE OR REPLACE FUNCTION cockpit.conversations_opened(p_org_id text, p_products text[], p_assignees text[], p_states text[])
 RETURNS void
 LANGUAGE plpgsql
AS $function$
BEGIN
    PERFORM cockpit.keep_agent_active(p_org_id, c.product_id, c.kept),
            cockpit.notify_live(p_org_id, c.product_id, 'active', c.agents)
       FROM (SELECT u.product_id,
                    coalesce(array_agg(DISTINCT u.assignee_id) FILTER (WHERE u.assignee_id IS NOT NULL),
                             '{}') AS agents,
                    -- Inserted resolved (a whole conversation in one batch): no active row.
                    coalesce(array_agg(DISTINCT u.assignee_id)
                                 FILTER (WHERE u.assignee_id IS NOT NULL AND u.state = 'ACTIVE'),
                             '{}') AS kept
               FROM unnest(p_products, p_assignees, p_states) AS u(product_id, assignee_id, state)
              GROUP BY u.product_id) c;
END
$function$;
REVOKE EXECUTE ON FUNCTION cockpit.conversations_opened(text,text[],text[],text[]) FROM PUBLIC;
