-- Defines: cockpit.agent_active_now, cockpit.keep_agent_active().
-- The active conversations of agents in a product, kept per agent (cockpit.agent_active,
-- migration V19) for the cockpit statement, which then reads one row per agent instead of
-- every active conversation. Called by the statements that change conversations, with the
-- assignees before and after (sql/live/conversations.sql), in the same transaction: ingest
-- serializes an organization's batches, so the recompute sees every change before it.
-- Applied after the migrations, in the order of src/db/definitions.rs; edit here and the
-- next start applies it (README, "Changing SQL").

-- What cockpit.agent_active holds, straight from the active conversations: the one
-- definition, read filtered by the recompute below (the filters on its grouping columns
-- reach the conversations' index of active conversations by assignee) and whole by the
-- tests' drift check (sql/queries/summary_drift.sql).
CREATE OR REPLACE VIEW cockpit.agent_active_now AS
SELECT c.org_id, c.product_id, c.assignee_id AS agent_id, count(*)::integer AS active,
       (count(*) FILTER (WHERE c.waiting_since IS NOT NULL))::integer AS unanswered,
       min(c.waiting_since) AS oldest_unanswered_since,
       coalesce(array_agg(c.assigned_at ORDER BY c.assigned_at)
                    FILTER (WHERE c.first_response_at IS NULL AND c.assigned_at IS NOT NULL),
                '{}') AS awaiting_first_response
  FROM cockpit.conversations c
 WHERE c.state = 'ACTIVE' AND c.assignee_id IS NOT NULL
 GROUP BY c.org_id, c.product_id, c.assignee_id;

COMMENT ON VIEW cockpit.agent_active_now IS
    'What cockpit.agent_active must hold, computed from the active conversations (the definition cockpit.keep_agent_active applies).';

-- Recomputes the rows of p_agents in p_product_id from cockpit.agent_active_now: a few
-- conversations per agent, whatever the history.
CREATE OR REPLACE FUNCTION cockpit.keep_agent_active(p_org_id text, p_product_id text, p_agents text[])
 RETURNS void
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_active integer;
    v_unanswered integer;
    v_oldest timestamptz;
    v_awaiting timestamptz[];
BEGIN
    -- PL/pgSQL, not SQL: its statements' plans are kept for the session (a SQL function's
    -- would be made again on every call, several times per ingest batch).
    IF coalesce(cardinality(p_agents), 0) = 0 THEN
        RETURN;
    END IF;
    IF cardinality(p_agents) = 1 THEN
        -- One agent (the per-event ingest path, a statement per event): plain statements,
        -- a quarter of the set-based statement's cost for one row.
        SELECT n.active, n.unanswered, n.oldest_unanswered_since, n.awaiting_first_response
          INTO v_active, v_unanswered, v_oldest, v_awaiting
          FROM cockpit.agent_active_now n
         WHERE n.org_id = p_org_id AND n.product_id = p_product_id AND n.agent_id = p_agents[1];
        IF NOT FOUND THEN
            DELETE FROM cockpit.agent_active x
             WHERE x.org_id = p_org_id AND x.product_id = p_product_id AND x.agent_id = p_agents[1];
        ELSE
            INSERT INTO cockpit.agent_active AS x
                   (org_id, product_id, agent_id, active, unanswered, oldest_unanswered_since,
                    awaiting_first_response)
            VALUES (p_org_id, p_product_id, p_agents[1], v_active, v_unanswered, v_oldest,
                    v_awaiting)
            ON CONFLICT (org_id, product_id, agent_id) DO UPDATE
               SET active = excluded.active, unanswered = excluded.unanswered,
                   oldest_unanswered_since = excluded.oldest_unanswered_since,
                   awaiting_first_response = excluded.awaiting_first_response
             WHERE (x.active, x.unanswered, x.oldest_unanswered_since, x.awaiting_first_response)
                   IS DISTINCT FROM
                   (excluded.active, excluded.unanswered, excluded.oldest_unanswered_since,
                    excluded.awaiting_first_response);
        END IF;
        RETURN;
    END IF;
    -- Several agents (a set-based batch): one statement for all.
    WITH fresh AS (
        SELECT n.agent_id, n.active, n.unanswered, n.oldest_unanswered_since,
               n.awaiting_first_response
          FROM cockpit.agent_active_now n
         WHERE n.org_id = p_org_id AND n.product_id = p_product_id AND n.agent_id = ANY (p_agents)
    ),
    gone AS (
        DELETE FROM cockpit.agent_active x
         WHERE x.org_id = p_org_id AND x.product_id = p_product_id
           AND x.agent_id = ANY (p_agents)
           AND NOT EXISTS (SELECT 1 FROM fresh f WHERE f.agent_id = x.agent_id)
    )
    INSERT INTO cockpit.agent_active AS x
           (org_id, product_id, agent_id, active, unanswered, oldest_unanswered_since,
            awaiting_first_response)
    SELECT p_org_id, p_product_id, f.agent_id, f.active, f.unanswered,
           f.oldest_unanswered_since, f.awaiting_first_response
      FROM fresh f
     ORDER BY f.agent_id
    ON CONFLICT (org_id, product_id, agent_id) DO UPDATE
       SET active = excluded.active, unanswered = excluded.unanswered,
           oldest_unanswered_since = excluded.oldest_unanswered_since,
           awaiting_first_response = excluded.awaiting_first_response
     WHERE (x.active, x.unanswered, x.oldest_unanswered_since, x.awaiting_first_response)
           IS DISTINCT FROM
           (excluded.active, excluded.unanswered, excluded.oldest_unanswered_since,
            excluded.awaiting_first_response);
END
$function$;
REVOKE EXECUTE ON FUNCTION cockpit.keep_agent_active(text,text,text[]) FROM PUBLIC;
