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
 CROSS JOIN LATERAL cockpit.status_seconds(a.org_id, a.agent_id, d.day::date) s
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
