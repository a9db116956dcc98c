-- Defines: reporting.agent_status_daily.
-- BI (spec 6): seconds in each status per agent and local day.
-- Applied after the migrations, in the order of src/db/definitions.rs; edit here and the
-- next start applies it (README, "Changing SQL").

CREATE OR REPLACE VIEW reporting.agent_status_daily AS
SELECT a.org_id, d.day::date AS day, a.agent_id, a.name AS agent_name, s.status, s.seconds
  FROM cockpit.agents a
  JOIN cockpit.organizations o ON o.org_id = a.org_id
 CROSS JOIN LATERAL generate_series(
        coalesce((SELECT min(sc.changed_at AT TIME ZONE o.timezone)::date
                    FROM cockpit.status_changes sc
                   WHERE sc.org_id = a.org_id AND sc.agent_id = a.agent_id),
                 (now() AT TIME ZONE o.timezone)::date),
        (now() AT TIME ZONE o.timezone)::date,
        interval '1 day') AS d(day)
 CROSS JOIN LATERAL (
        SELECT (d.day::date::timestamp AT TIME ZONE o.timezone) AS day_start,
               least(((d.day::date + 1)::timestamp AT TIME ZONE o.timezone), now()) AS day_stop) b
 -- The input of the rule of time in status (as cockpit.status_seconds gathers it), inline:
 -- on a Citus cluster the view is one statement pushed down to every node.
 CROSS JOIN LATERAL (
        SELECT coalesce(array_agg(sc.to_status ORDER BY sc.changed_at, sc.change_id), '{}') AS statuses,
               coalesce(array_agg(sc.changed_at ORDER BY sc.changed_at, sc.change_id), '{}') AS instants
          FROM cockpit.status_changes sc
         WHERE sc.org_id = a.org_id AND sc.agent_id = a.agent_id
           AND sc.changed_at >= b.day_start AND sc.changed_at < b.day_stop) c
 CROSS JOIN LATERAL cockpit.status_seconds_in(
        (SELECT sc.to_status
           FROM cockpit.status_changes sc
          WHERE sc.org_id = a.org_id AND sc.agent_id = a.agent_id AND sc.changed_at < b.day_start
          ORDER BY sc.changed_at DESC, sc.change_id DESC
          LIMIT 1),
        c.statuses, c.instants, b.day_start, b.day_stop) s
 WHERE s.seconds > 0;

COMMENT ON VIEW reporting.agent_status_daily IS
    'Time in status per agent and local day of the organization (spec 3.5, 6): one row per (org, day, agent, status) with seconds > 0, clipped to the day (today: up to now), from the day of the agent''s first recorded status change (or today) to today. The statuses of a past day add up to its length (23 or 25 hours on DST days).';
COMMENT ON COLUMN reporting.agent_status_daily.org_id IS 'Organization id.';
COMMENT ON COLUMN reporting.agent_status_daily.day IS 'Local day of the organization.';
COMMENT ON COLUMN reporting.agent_status_daily.agent_id IS 'Agent id.';
COMMENT ON COLUMN reporting.agent_status_daily.agent_name IS 'Agent display name (current).';
COMMENT ON COLUMN reporting.agent_status_daily.status IS 'ONLINE, BREAK, INVISIBLE or OFFLINE.';
COMMENT ON COLUMN reporting.agent_status_daily.seconds IS 'Whole seconds in that status on that day (> 0).';

GRANT SELECT ON reporting.agent_status_daily TO cockpit_reader;
