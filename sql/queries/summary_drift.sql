-- How far the incremental summary (cockpit.daily_stats) is from a full recompute straight
-- from the event log (cockpit.agent_daily_reference): the groups that differ either way;
-- and how far the state kept for the cockpit of all channels is from what it sums: the
-- per-agent totals (cockpit.daily_agent_totals) from cockpit.daily_stats over channels, the
-- kept active rows (cockpit.agent_active) from their definition (cockpit.agent_active_now).
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
            (SELECT * FROM cockpit.agent_active EXCEPT ALL SELECT * FROM cockpit.agent_active_now)
            UNION ALL
            (SELECT * FROM cockpit.agent_active_now EXCEPT ALL SELECT * FROM cockpit.agent_active)
        ) k) AS kept_differing
