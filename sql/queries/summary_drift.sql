-- How far the incremental summary (cockpit.daily_stats) is from a full recompute straight
-- from the event log (cockpit.agent_daily_reference): the groups that differ either way.
-- Slow (it recomputes everything): for tests and `cockpit bench --verify`, never serving.
-- Parameters: none.
-- Result: differing bigint (0 when exact), groups bigint (rows of the summary).
SELECT (SELECT count(*) FROM (
            (SELECT * FROM cockpit.daily_stats EXCEPT ALL SELECT * FROM cockpit.agent_daily_reference)
            UNION ALL
            (SELECT * FROM cockpit.agent_daily_reference EXCEPT ALL SELECT * FROM cockpit.daily_stats)
        ) d) AS differing,
       (SELECT count(*) FROM cockpit.daily_stats) AS groups
