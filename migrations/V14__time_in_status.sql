-- Time in status (spec 3.5; issue: supervisor insights). One SQL definition, read by the
-- GraphQL API and the BI view alike.
--
-- Per agent and local day D of the organization: seconds in each of the four statuses,
-- from the status history (cockpit.status_changes) clipped to [start of D, min(end of D,
-- now)]. D's start and end are the organization's local midnights, so a DST day has 23 or
-- 25 hours. The status held at D's start counts from D's start; before any recorded change
-- an agent holds the status they were created with (OFFLINE). Changes of one transaction
-- share their instant and follow their order of recording (change_id). SECURITY DEFINER:
-- the BI view below calls it for its readers, who may read no table of `cockpit`.

CREATE FUNCTION cockpit.status_seconds(p_org text, p_agent text, p_day date,
                                       p_now timestamptz DEFAULT now())
RETURNS TABLE (status text, seconds integer)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    WITH bounds AS (
        SELECT (p_day::timestamp AT TIME ZONE o.timezone) AS day_start,
               least(((p_day + 1)::timestamp AT TIME ZONE o.timezone), p_now) AS day_stop
          FROM cockpit.organizations o
         WHERE o.org_id = p_org
    ),
    -- The status at D's start, then every change inside D, in order.
    held AS (
        SELECT coalesce((SELECT sc.to_status
                           FROM cockpit.status_changes sc
                          WHERE sc.org_id = p_org AND sc.agent_id = p_agent
                            AND sc.changed_at < b.day_start
                          ORDER BY sc.changed_at DESC, sc.change_id DESC
                          LIMIT 1), 'OFFLINE') AS status,
               b.day_start AS since, 0::bigint AS ord
          FROM bounds b
        UNION ALL
        SELECT sc.to_status, sc.changed_at, sc.change_id
          FROM cockpit.status_changes sc, bounds b
         WHERE sc.org_id = p_org AND sc.agent_id = p_agent
           AND sc.changed_at >= b.day_start AND sc.changed_at < b.day_stop
    ),
    segments AS (
        SELECT h.status, h.since,
               coalesce(lead(h.since) OVER (ORDER BY h.since, h.ord),
                        (SELECT b.day_stop FROM bounds b)) AS until
          FROM held h
    )
    -- Whole seconds of the clock (each instant truncated to its second): the four add up
    -- to the elapsed part of the day exactly.
    SELECT s.status,
           coalesce(sum(greatest(extract(epoch FROM date_trunc('second', g.until))
                                 - extract(epoch FROM date_trunc('second', g.since)), 0)), 0)::integer
      FROM unnest(ARRAY['ONLINE', 'BREAK', 'INVISIBLE', 'OFFLINE']) AS s(status)
      LEFT JOIN segments g ON g.status = s.status
     GROUP BY s.status
$$;

COMMENT ON FUNCTION cockpit.status_seconds(text, text, date, timestamptz) IS
'Seconds an agent spent in each status (ONLINE, BREAK, INVISIBLE, OFFLINE) during the '
'organization''s local day p_day, up to p_now (spec 3.5, time in status).';

-- BI: time in status per agent and local day, from the agent's first day (its first
-- recorded change, or today) to today. Days without any change are whole days in the
-- status held.
CREATE VIEW reporting.agent_status_daily AS
SELECT a.org_id, d.day::date AS day, a.agent_id, a.name AS agent_name,
       max(s.seconds) FILTER (WHERE s.status = 'ONLINE') AS online_seconds,
       max(s.seconds) FILTER (WHERE s.status = 'BREAK') AS break_seconds,
       max(s.seconds) FILTER (WHERE s.status = 'INVISIBLE') AS invisible_seconds,
       max(s.seconds) FILTER (WHERE s.status = 'OFFLINE') AS offline_seconds
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
 GROUP BY a.org_id, d.day, a.agent_id, a.name;

COMMENT ON VIEW reporting.agent_status_daily IS
'Time in status per agent and local day of the organization (spec 3.5): seconds ONLINE, on '
'BREAK, INVISIBLE and OFFLINE, clipped to the day (today: up to now). One row per agent and '
'day from the agent''s first recorded status change to today.';
COMMENT ON COLUMN reporting.agent_status_daily.org_id IS 'Organization id.';
COMMENT ON COLUMN reporting.agent_status_daily.day IS 'Local day of the organization.';
COMMENT ON COLUMN reporting.agent_status_daily.agent_id IS 'Agent id.';
COMMENT ON COLUMN reporting.agent_status_daily.agent_name IS 'Agent display name (current).';
COMMENT ON COLUMN reporting.agent_status_daily.online_seconds IS 'Seconds ONLINE on that day.';
COMMENT ON COLUMN reporting.agent_status_daily.break_seconds IS 'Seconds on BREAK on that day.';
COMMENT ON COLUMN reporting.agent_status_daily.invisible_seconds IS 'Seconds INVISIBLE on that day.';
COMMENT ON COLUMN reporting.agent_status_daily.offline_seconds IS 'Seconds OFFLINE on that day.';

REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA cockpit FROM PUBLIC;
GRANT EXECUTE ON FUNCTION cockpit.ingest_events(text, jsonb) TO cockpit_ingest;
-- The view calls the definition with the rights of whoever reads it: the BI role may.
GRANT EXECUTE ON FUNCTION cockpit.status_seconds(text, text, date, timestamptz) TO cockpit_reader;
GRANT SELECT ON reporting.agent_status_daily TO cockpit_reader;
