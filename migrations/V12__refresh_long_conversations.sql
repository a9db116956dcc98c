-- The refresh of a long conversation (issue: ingest engine v2, P1's clause "touching a
-- conversation of 10,000 events costs <= 2x touching one of 10").
--
-- cockpit.conversation_facts (V3) reads every reply of the conversation to find, in each
-- assignment, the assignee's first one: a chat of 10,000 messages cost the refresh 10,000
-- rows every minute it was touched. The rules need far less: the conversation's lifecycle
-- events (assigned / re-activated / resolved, few) and, per assignment, the assignee's
-- first reply after its start, one index descent when replies are indexed by agent.
--
-- So the index of work events by conversation gets the agent after the conversation (the
-- same entries, one more key column: ingest pays nothing more), and the refresh uses
-- cockpit.conversation_facts_indexed, which states the same rules over the lifecycle events
-- plus one descent per assignment. cockpit.conversation_facts stays as it is: the plain
-- statement of the rules, read by the oracle view cockpit.agent_daily_reference, against
-- which the tests and `cockpit bench refresh --verify` check the refresh.

CREATE INDEX events_work_by_agent
    ON cockpit.events (org_id, conversation_id, agent_id, at, rank, event_id)
    WHERE type IN ('assigned', 'reactivated', 'resolved', 'agent_message');
DROP INDEX cockpit.events_work_by_conversation;

-- The rules of cockpit.conversation_facts, in O(lifecycle events x log n).
--   * Assignments (`seg`): each lifecycle event, in the order of spec 3.1, opens one; it
--     ends where the next one starts. A `resolved` opens one with no assignee.
--   * First response: the assignee's first reply after the start of the assignment, if it
--     comes before the next lifecycle event.
--   * Resolution: every `resolved` counts for who marked it; its duration when they held
--     the assignment it ends.
--   * Re-activation: for the agent it names; forwarding: for `by` when not the assignee.
CREATE FUNCTION cockpit.conversation_facts_indexed(p_org text, p_conversation text)
RETURNS TABLE (
    day                        date,
    agent_id                   text,
    first_response_count       integer,
    first_response_seconds_sum numeric,
    resolution_count           integer,
    resolution_seconds_sum     numeric,
    resolved_count             integer,
    reactivated_count          integer,
    forwarded_count            integer
)
LANGUAGE sql STABLE
AS $$
    WITH lifecycle AS (
        SELECT e.type, e.at, e.rank, e.event_id, e.agent_id, e.by_id,
               CASE WHEN e.type <> 'resolved' THEN e.agent_id END AS assignee,
               lead(e.at) OVER w AS next_at, lead(e.rank) OVER w AS next_rank,
               lead(e.event_id) OVER w AS next_event_id,
               lag(CASE WHEN e.type <> 'resolved' THEN e.agent_id END) OVER w AS prev_assignee,
               lag(e.at) OVER w AS prev_at
          FROM cockpit.events e
         WHERE e.org_id = p_org AND e.conversation_id = p_conversation
           AND e.type IN ('assigned', 'reactivated', 'resolved')
        WINDOW w AS (ORDER BY e.at, e.rank, e.event_id)
    ),
    first_responses AS (
        SELECT r.at, l.assignee AS agent_id, extract(epoch FROM r.at - l.at) AS seconds
          FROM lifecycle l
          CROSS JOIN LATERAL (
              SELECT m.at, m.rank, m.event_id
                FROM cockpit.events m
               WHERE m.org_id = p_org AND m.conversation_id = p_conversation
                 AND m.agent_id = l.assignee AND m.type = 'agent_message'
                 AND (m.at, m.rank, m.event_id) > (l.at, l.rank, l.event_id)
               ORDER BY m.at, m.rank, m.event_id
               LIMIT 1
          ) r
         WHERE l.assignee IS NOT NULL
           AND (l.next_at IS NULL
                OR (r.at, r.rank, r.event_id) < (l.next_at, l.next_rank, l.next_event_id))
    ),
    facts (at, agent_id, frc, frs, rc, rs, resolved, reactivated, forwarded) AS (
        SELECT f.at, f.agent_id, 1, f.seconds, 0, 0::numeric, 0, 0, 0 FROM first_responses f
        UNION ALL
        SELECT l.at, l.agent_id, 0, 0, coalesce(l.prev_assignee = l.agent_id, false)::integer,
               CASE WHEN l.prev_assignee = l.agent_id THEN extract(epoch FROM l.at - l.prev_at)
                    ELSE 0 END,
               1, 0, 0
          FROM lifecycle l
         WHERE l.type = 'resolved'
        UNION ALL
        SELECT l.at, l.agent_id, 0, 0, 0, 0, 0, 1, 0 FROM lifecycle l WHERE l.type = 'reactivated'
        UNION ALL
        SELECT l.at, l.by_id, 0, 0, 0, 0, 0, 0, 1
          FROM lifecycle l
         WHERE l.type = 'assigned' AND l.by_id IS NOT NULL AND l.by_id <> l.agent_id
    )
    SELECT (f.at AT TIME ZONE org.timezone)::date, f.agent_id,
           sum(f.frc)::integer, sum(f.frs), sum(f.rc)::integer, sum(f.rs),
           sum(f.resolved)::integer, sum(f.reactivated)::integer, sum(f.forwarded)::integer
      FROM facts f
     CROSS JOIN (SELECT o.timezone FROM cockpit.organizations o WHERE o.org_id = p_org) org
     GROUP BY 1, 2
$$;

-- The refresh of V10, recomputing with cockpit.conversation_facts_indexed.
CREATE OR REPLACE FUNCTION cockpit.refresh_daily(p_skip_if_younger interval DEFAULT NULL,
                                       p_max_conversations integer DEFAULT 5000)
RETURNS jsonb
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_started timestamptz := clock_timestamp();
    v_orgs text[];
    v_convs text[];
    v_old cockpit.conversation_daily[];
    v_zero_keys jsonb;
    v_groups integer := 0;
    v_at timestamptz;
    v_ms double precision;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtextextended('cockpit.refresh_daily', 0)) THEN
        RETURN NULL;
    END IF;
    -- Another instance refreshed moments ago: its refresh counts for this interval (every
    -- instance heard its NOTIFY and pushed it).
    IF p_skip_if_younger IS NOT NULL AND EXISTS (
        SELECT 1 FROM cockpit.refresh_state r
         WHERE r.refreshed_at > clock_timestamp() - p_skip_if_younger) THEN
        RETURN NULL;
    END IF;

    -- 1. Claim the marked conversations, in key order.
    WITH claimed AS (
        DELETE FROM cockpit.dirty_conversations d
         WHERE (d.org_id, d.conversation_id) IN (
                SELECT x.org_id, x.conversation_id FROM cockpit.dirty_conversations x
                 ORDER BY x.org_id, x.conversation_id
                 LIMIT p_max_conversations
                   FOR UPDATE)
        RETURNING d.org_id, d.conversation_id
    )
    SELECT coalesce(array_agg(org_id), '{}'), coalesce(array_agg(conversation_id), '{}')
      INTO v_orgs, v_convs
      FROM claimed;

    IF cardinality(v_convs) > 0 THEN
        -- 2. Their previous contributions go.
        WITH gone AS (
            DELETE FROM cockpit.conversation_daily d
             USING unnest(v_orgs, v_convs) AS c(org_id, conversation_id)
             WHERE d.org_id = c.org_id AND d.conversation_id = c.conversation_id
            RETURNING d.*
        )
        SELECT coalesce(array_agg(g::cockpit.conversation_daily), '{}') INTO v_old FROM gone g;

        -- 3. Their contributions now, and the difference applied to the summary.
        WITH fresh AS (
            INSERT INTO cockpit.conversation_daily
            SELECT c.org_id, c.conversation_id, f.day, f.agent_id, cv.product_id, cv.channel,
                   f.first_response_count, f.first_response_seconds_sum,
                   f.resolution_count, f.resolution_seconds_sum,
                   f.resolved_count, f.reactivated_count, f.forwarded_count
              FROM unnest(v_orgs, v_convs) AS c(org_id, conversation_id)
              JOIN cockpit.conversations cv
                ON cv.org_id = c.org_id AND cv.conversation_id = c.conversation_id
             CROSS JOIN LATERAL cockpit.conversation_facts_indexed(c.org_id, c.conversation_id) f
            RETURNING *
        ),
        delta AS (
            SELECT d.org_id, d.day, d.agent_id, d.product_id, d.channel,
                   sum(d.first_response_count) AS frc, sum(d.first_response_seconds_sum) AS frs,
                   sum(d.resolution_count) AS rc, sum(d.resolution_seconds_sum) AS rs,
                   sum(d.resolved_count) AS resolved, sum(d.reactivated_count) AS reactivated,
                   sum(d.forwarded_count) AS forwarded
              FROM (
                SELECT n.org_id, n.day, n.agent_id, n.product_id, n.channel,
                       n.first_response_count, n.first_response_seconds_sum,
                       n.resolution_count, n.resolution_seconds_sum,
                       n.resolved_count, n.reactivated_count, n.forwarded_count
                  FROM fresh n
                UNION ALL
                SELECT o.org_id, o.day, o.agent_id, o.product_id, o.channel,
                       -o.first_response_count, -o.first_response_seconds_sum,
                       -o.resolution_count, -o.resolution_seconds_sum,
                       -o.resolved_count, -o.reactivated_count, -o.forwarded_count
                  FROM unnest(v_old) o
              ) d
             GROUP BY d.org_id, d.day, d.agent_id, d.product_id, d.channel
            HAVING sum(d.first_response_count) <> 0 OR sum(d.first_response_seconds_sum) <> 0
                OR sum(d.resolution_count) <> 0 OR sum(d.resolution_seconds_sum) <> 0
                OR sum(d.resolved_count) <> 0 OR sum(d.reactivated_count) <> 0
                OR sum(d.forwarded_count) <> 0
        ),
        applied AS (
            INSERT INTO cockpit.daily_stats AS s
            SELECT org_id, day, agent_id, product_id, channel, frc, frs, rc, rs,
                   resolved, reactivated, forwarded
              FROM delta
             ORDER BY org_id, day, agent_id, product_id, channel
            ON CONFLICT (org_id, day, agent_id, product_id, channel) DO UPDATE
               SET first_response_count = s.first_response_count + excluded.first_response_count,
                   first_response_seconds_sum = s.first_response_seconds_sum + excluded.first_response_seconds_sum,
                   resolution_count = s.resolution_count + excluded.resolution_count,
                   resolution_seconds_sum = s.resolution_seconds_sum + excluded.resolution_seconds_sum,
                   resolved_count = s.resolved_count + excluded.resolved_count,
                   reactivated_count = s.reactivated_count + excluded.reactivated_count,
                   forwarded_count = s.forwarded_count + excluded.forwarded_count
            RETURNING s.org_id, s.day, s.agent_id, s.product_id, s.channel,
                      (s.first_response_count = 0 AND s.resolution_count = 0
                       AND s.resolved_count = 0 AND s.reactivated_count = 0
                       AND s.forwarded_count = 0 AND s.first_response_seconds_sum = 0
                       AND s.resolution_seconds_sum = 0) AS is_zero
        )
        SELECT count(*)::integer,
               coalesce(jsonb_agg(jsonb_build_array(org_id, day, agent_id, product_id, channel))
                        FILTER (WHERE is_zero), '[]')
          INTO v_groups, v_zero_keys
          FROM applied;

        -- 4. No zero rows: a group whose last contribution went is removed.
        DELETE FROM cockpit.daily_stats s
         USING jsonb_array_elements(v_zero_keys) k
         WHERE s.org_id = k ->> 0 AND s.day = (k ->> 1)::date AND s.agent_id = k ->> 2
           AND s.product_id = k ->> 3 AND s.channel = k ->> 4;
    END IF;

    v_at := clock_timestamp();
    v_ms := extract(epoch FROM v_at - v_started) * 1000;
    UPDATE cockpit.refresh_state
       SET refreshed_at = v_at, duration_ms = v_ms, conversations = cardinality(v_convs);
    PERFORM pg_notify('cockpit_refresh', json_build_object(
        'at', v_at, 'conversations', cardinality(v_convs), 'groups', v_groups,
        'sent', extract(epoch FROM v_at))::text);
    RETURN jsonb_build_object('refreshed_at', v_at, 'duration_ms', v_ms,
                              'conversations', cardinality(v_convs), 'groups', v_groups,
                              'more', cardinality(v_convs) >= p_max_conversations
                                      AND EXISTS (SELECT 1 FROM cockpit.dirty_conversations));
END
$$;

REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA cockpit FROM PUBLIC;
GRANT EXECUTE ON FUNCTION cockpit.ingest_events(text, jsonb) TO cockpit_ingest;
