-- Defines: cockpit.conversations_changed(), cockpit.conversations_opened().
-- Live push of active counts and conversation facts: conversations inserted or changed.
-- The same statements keep the assignees' rows of cockpit.agent_active (sql/live/agent_active.sql).
-- Applied after the migrations, in the order of src/db/definitions.rs; edit here and the
-- next start applies it (README, "Changing SQL").

-- Live pushes: what the cockpit shows of a conversation changed. Besides state and
--    assignee, the waiting customer and the first response of the assignment
--    (unanswered, overdue), and the queue (a conversation opened with no assignee). The
--    notification names the assignees before and after: their rows and the scope's header
--    (the queue) are what changed; their kept active rows are recomputed. Called by the
--    statements that change conversations, with one entry per conversation whose shown
--    columns changed (organization, product, assignee and state before, and after), in
--    their transaction: no trigger (Citus refuses them, issue 23).
CREATE OR REPLACE FUNCTION cockpit.conversations_changed(p_orgs text[], p_products text[], p_old_assignees text[], p_old_states text[], p_new_assignees text[], p_new_states text[])
 RETURNS void
 LANGUAGE plpgsql
AS $function$
BEGIN
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
               FROM (SELECT u.org_id, u.product_id, u.old_assignee AS assignee_id, u.old_state AS state
                       FROM unnest(p_orgs, p_products, p_old_assignees, p_old_states)
                            AS u(org_id, product_id, old_assignee, old_state)
                     UNION ALL
                     SELECT u.org_id, u.product_id, u.new_assignee, u.new_state
                       FROM unnest(p_orgs, p_products, p_new_assignees, p_new_states)
                            AS u(org_id, product_id, new_assignee, new_state)) x
              GROUP BY x.org_id, x.product_id) c;
END
$function$;
REVOKE EXECUTE ON FUNCTION cockpit.conversations_changed(text[],text[],text[],text[],text[],text[]) FROM PUBLIC;

-- Conversations inserted (opened), one entry per conversation: product, assignee and
-- state. Called by the statements that insert them, in their transaction (no trigger:
-- Citus refuses them, issue 23): a new conversation changes an active count or the queue.
CREATE OR REPLACE FUNCTION cockpit.conversations_opened(p_org_id text, p_products text[], p_assignees text[], p_states text[])
 RETURNS void
 LANGUAGE plpgsql
AS $function$
BEGIN
    -- A change with no version before (unnest pads the empty arrays with nulls).
    PERFORM cockpit.conversations_changed(array_fill(p_org_id, ARRAY[cardinality(p_products)]),
                                          p_products, '{}', '{}', p_assignees, p_states);
END
$function$;
REVOKE EXECUTE ON FUNCTION cockpit.conversations_opened(text,text[],text[],text[]) FROM PUBLIC;
