-- How far the incremental summary (cockpit.daily_stats) is from a full recompute straight
-- from the event log (cockpit.agent_daily_reference): the groups that differ either way;
-- and how far the state kept for the cockpit of all channels is from what it sums: the
-- per-agent totals (cockpit.daily_agent_totals) from cockpit.daily_stats over channels, the
-- kept active rows (cockpit.agent_active) from the active conversations.
-- Slow (it recomputes everything): for tests and `cockpit bench --verify`, never serving.
-- Parameters: none.
-- Result: differing bigint (0 when exact), groups bigint (rows of the summary),
-- kept_differing bigint (0 when the kept per-agent rows are exact).
WITH totals AS (
    SELECT s.org_id, s.day, s.product_id, s.agent_id,
           sum(s.first_response_count), sum(s.first_response_seconds_sum),
           sum(s.resolution_count), sum(s.resolution_seconds_sum),
           sum(s.resolved_count), sum(s.reactivated_count), sum(s.forwarded_count),
           sum(s.first_responses_within_target)
      FROM cockpit.daily_stats s
     GROUP BY s.org_id, s.day, s.product_id, s.agent_id
),
active AS (
    SELECT c.org_id, c.product_id, c.assignee_id, count(*)::integer,
           (count(*) FILTER (WHERE c.waiting_since IS NOT NULL))::integer, min(c.waiting_since),
           coalesce(array_agg(c.assigned_at ORDER BY c.assigned_at)
                        FILTER (WHERE c.first_response_at IS NULL AND c.assigned_at IS NOT NULL),
                    '{}')
      FROM cockpit.conversations c
     WHERE c.state = 'ACTIVE' AND c.assignee_id IS NOT NULL
     GROUP BY c.org_id, c.product_id, c.assignee_id
)
SELECT (SELECT count(*) FROM (
            (SELECT * FROM cockpit.daily_stats EXCEPT ALL SELECT * FROM cockpit.agent_daily_reference)
            UNION ALL
            (SELECT * FROM cockpit.agent_daily_reference EXCEPT ALL SELECT * FROM cockpit.daily_stats)
        ) d) AS differing,
       (SELECT count(*) FROM cockpit.daily_stats) AS groups,
       (SELECT count(*) FROM (
            (SELECT * FROM cockpit.daily_agent_totals EXCEPT ALL SELECT * FROM totals)
            UNION ALL
            (SELECT * FROM totals EXCEPT ALL SELECT * FROM cockpit.daily_agent_totals)
        ) k)
       + (SELECT count(*) FROM (
            (SELECT * FROM cockpit.agent_active EXCEPT ALL SELECT * FROM active)
            UNION ALL
            (SELECT * FROM active EXCEPT ALL SELECT * FROM cockpit.agent_active)
        ) k) AS kept_differing
