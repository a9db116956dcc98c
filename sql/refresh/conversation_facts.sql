-- Defines: cockpit.conversation_facts(), cockpit.conversation_facts_indexed().
-- The rules of spec 3.1 for the conversations of one organization: their assignments, first
-- responses, resolutions, re-activations and forwards, per conversation. The indexed
-- statement is the refresh's; the plain one states the same over the whole log for the
-- oracle. Both are PL/pgSQL functions of one organization, called on their own (not inside
-- a statement over the tables): on a Citus cluster each of their statements is routed to
-- the node holding that organization, and no statement runs one over distributed tables
-- inside another.
-- Applied after the migrations, in the order of src/db/definitions.rs; edit here and the
-- next start applies it (README, "Changing SQL").

-- The rules of spec 3.1 (the plain statement, the oracle's), plus the first responses within the
-- organization's target: every conversation of p_org.
-- No nested loops: the planner estimates the CTEs of a whole organization's log at a row
-- or so and joined them by nested loops, quadratic in the log (193 s for one bench
-- organization, 1.8 s with hash joins).
CREATE OR REPLACE FUNCTION cockpit.conversation_facts(p_org text)
 RETURNS TABLE(conversation_id text, day date, agent_id text, product_id text, channel text, first_response_count integer, first_response_seconds_sum numeric, resolution_count integer, resolution_seconds_sum numeric, resolved_count integer, reactivated_count integer, forwarded_count integer, first_responses_within_target integer)
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
 SET enable_nestloop TO 'off'
AS $function$
BEGIN
    RETURN QUERY
    WITH ordered AS (
        SELECT e.conversation_id AS conv, e.type, e.at, e.agent_id, e.by_id,
               row_number() OVER w AS ord,
               count(*) FILTER (WHERE e.type IN ('assigned', 'reactivated', 'resolved')) OVER w AS seg
          FROM cockpit.events e
         WHERE e.org_id = p_org
           AND e.type IN ('assigned', 'reactivated', 'resolved', 'agent_message')
        WINDOW w AS (PARTITION BY e.conversation_id ORDER BY e.at, e.rank, e.event_id
                     ROWS UNBOUNDED PRECEDING)
    ),
    segments AS (
        SELECT o.conv, o.seg, o.at AS t0,
               CASE WHEN o.type <> 'resolved' THEN o.agent_id END AS assignee
          FROM ordered o
         WHERE o.type IN ('assigned', 'reactivated', 'resolved')
    ),
    -- The assignee's first reply inside the assignment; replies by others count for nobody.
    first_responses AS (
        SELECT DISTINCT ON (o.conv, o.seg) o.conv, o.at, s.assignee AS agent_id,
               extract(epoch FROM o.at - s.t0) AS seconds
          FROM ordered o
          JOIN segments s ON s.conv = o.conv AND s.seg = o.seg
         WHERE o.type = 'agent_message' AND o.agent_id = s.assignee
         ORDER BY o.conv, o.seg, o.ord
    ),
    -- Every resolution counts for who marked it; a duration only when they held it.
    resolutions AS (
        SELECT o.conv, o.at, o.agent_id,
               CASE WHEN s.assignee = o.agent_id THEN extract(epoch FROM o.at - s.t0) END AS seconds
          FROM ordered o
          LEFT JOIN segments s ON s.conv = o.conv AND s.seg = o.seg - 1
         WHERE o.type = 'resolved'
    ),
    -- (Column names in the first branch, not a column list: Citus deparses a CTE's column
    -- list wrongly when it sends the statement to a worker.)
    facts AS (
        SELECT f.conv, f.at, f.agent_id, 1 AS frc, f.seconds AS frs, 0 AS rc, 0::numeric AS rs,
               0 AS resolved, 0 AS reactivated, 0 AS forwarded
          FROM first_responses f
        UNION ALL
        SELECT r.conv, r.at, r.agent_id, 0, 0, (r.seconds IS NOT NULL)::integer, coalesce(r.seconds, 0), 1, 0, 0
          FROM resolutions r
        UNION ALL
        SELECT o.conv, o.at, o.agent_id, 0, 0, 0, 0, 0, 1, 0 FROM ordered o WHERE o.type = 'reactivated'
        UNION ALL
        SELECT o.conv, o.at, o.by_id, 0, 0, 0, 0, 0, 0, 1
          FROM ordered o
         WHERE o.type = 'assigned' AND o.by_id IS NOT NULL AND o.by_id <> o.agent_id
    )
    SELECT f.conv::text, (f.at AT TIME ZONE org.timezone)::date, f.agent_id,
           cv.product_id::text, cv.channel,
           sum(f.frc)::integer, sum(f.frs), sum(f.rc)::integer, sum(f.rs),
           sum(f.resolved)::integer, sum(f.reactivated)::integer, sum(f.forwarded)::integer,
           count(*) FILTER (WHERE f.frc = 1 AND f.frs <= org.service_level_seconds)::integer
      FROM facts f
      JOIN cockpit.conversations cv ON cv.org_id = p_org AND cv.conversation_id = f.conv
     CROSS JOIN (SELECT o.timezone, o.service_level_seconds
                   FROM cockpit.organizations o WHERE o.org_id = p_org) org
     GROUP BY 1, 2, 3, 4, 5;
END
$function$;
REVOKE EXECUTE ON FUNCTION cockpit.conversation_facts(text) FROM PUBLIC;

-- The refresh's statement of the same rules (V12), plus the same column: the rows of
-- cockpit.conversation_daily of the conversations p_conversations of p_org.
CREATE OR REPLACE FUNCTION cockpit.conversation_facts_indexed(p_org text, p_conversations text[])
 RETURNS SETOF cockpit.conversation_daily
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    RETURN QUERY
    -- Per conversation, its lifecycle events in order: one walk of the lifecycle index
    -- each (a conversation of 10,000 replies costs what one of 10 does).
    WITH lifecycle AS (
        SELECT c.conv, x.*
          FROM (SELECT DISTINCT u COLLATE "C" AS conv FROM unnest(p_conversations) u) c
         CROSS JOIN LATERAL (
            SELECT e.type, e.at, e.rank, e.event_id, e.agent_id, e.by_id,
                   CASE WHEN e.type <> 'resolved' THEN e.agent_id END AS assignee,
                   lead(e.at) OVER w AS next_at, lead(e.rank) OVER w AS next_rank,
                   lead(e.event_id) OVER w AS next_event_id,
                   lag(CASE WHEN e.type <> 'resolved' THEN e.agent_id END) OVER w AS prev_assignee,
                   lag(e.at) OVER w AS prev_at
              FROM cockpit.events e
             WHERE e.org_id = p_org AND e.conversation_id = c.conv
               AND e.type IN ('assigned', 'reactivated', 'resolved')
            WINDOW w AS (ORDER BY e.at, e.rank, e.event_id)
         ) x
    ),
    first_responses AS (
        SELECT l.conv, r.at, l.assignee AS agent_id, extract(epoch FROM r.at - l.at) AS seconds
          FROM lifecycle l
          CROSS JOIN LATERAL (
              SELECT m.at, m.rank, m.event_id
                FROM cockpit.events m
               WHERE m.org_id = p_org AND m.conversation_id = l.conv
                 AND m.agent_id = l.assignee AND m.type = 'agent_message'
                 AND (m.at, m.rank, m.event_id) > (l.at, l.rank, l.event_id)
               ORDER BY m.at, m.rank, m.event_id
               LIMIT 1
          ) r
         WHERE l.assignee IS NOT NULL
           AND (l.next_at IS NULL
                OR (r.at, r.rank, r.event_id) < (l.next_at, l.next_rank, l.next_event_id))
    ),
    -- (Column names in the first branch, not a column list: Citus deparses a CTE's column
    -- list wrongly when it sends the statement to a worker.)
    facts AS (
        SELECT f.conv, f.at, f.agent_id, 1 AS frc, f.seconds AS frs, 0 AS rc, 0::numeric AS rs,
               0 AS resolved, 0 AS reactivated, 0 AS forwarded
          FROM first_responses f
        UNION ALL
        SELECT l.conv, l.at, l.agent_id, 0, 0, coalesce(l.prev_assignee = l.agent_id, false)::integer,
               CASE WHEN l.prev_assignee = l.agent_id THEN extract(epoch FROM l.at - l.prev_at)
                    ELSE 0 END,
               1, 0, 0
          FROM lifecycle l
         WHERE l.type = 'resolved'
        UNION ALL
        SELECT l.conv, l.at, l.agent_id, 0, 0, 0, 0, 0, 1, 0 FROM lifecycle l WHERE l.type = 'reactivated'
        UNION ALL
        SELECT l.conv, l.at, l.by_id, 0, 0, 0, 0, 0, 0, 1
          FROM lifecycle l
         WHERE l.type = 'assigned' AND l.by_id IS NOT NULL AND l.by_id <> l.agent_id
    )
    SELECT p_org, f.conv::text, (f.at AT TIME ZONE org.timezone)::date, f.agent_id,
           cv.product_id, cv.channel,
           sum(f.frc)::integer, sum(f.frs), sum(f.rc)::integer, sum(f.rs),
           sum(f.resolved)::integer, sum(f.reactivated)::integer, sum(f.forwarded)::integer,
           count(*) FILTER (WHERE f.frc = 1 AND f.frs <= org.service_level_seconds)::integer
      FROM facts f
      JOIN cockpit.conversations cv ON cv.org_id = p_org AND cv.conversation_id = f.conv
     CROSS JOIN (SELECT o.timezone, o.service_level_seconds
                   FROM cockpit.organizations o WHERE o.org_id = p_org) org
     GROUP BY f.conv, 3, f.agent_id, cv.product_id, cv.channel;
END
$function$;
REVOKE EXECUTE ON FUNCTION cockpit.conversation_facts_indexed(text,text[]) FROM PUBLIC;
