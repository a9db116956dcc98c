-- Defines: cockpit.status_seconds().
-- Time in status per agent and local day (spec 3.5): the one definition for GraphQL, BI
-- and the oracle.
-- Applied after the migrations, in the order of src/db/definitions.rs; edit here and the
-- next start applies it (README, "Changing SQL").

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
CREATE OR REPLACE FUNCTION cockpit.status_seconds(p_org text, p_agent text, p_day date, p_now timestamp with time zone DEFAULT now())
 RETURNS TABLE(status text, seconds integer)
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    -- PL/pgSQL, not SQL: Citus plans no statement of an SQL function with parameters.
    RETURN QUERY
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
     GROUP BY s.status;
END
$function$;

COMMENT ON FUNCTION cockpit.status_seconds(p_org text, p_agent text, p_day date, p_now timestamp with time zone) IS
    'Seconds an agent spent in each status (ONLINE, BREAK, INVISIBLE, OFFLINE) during the organization''s local day p_day, up to p_now (spec 3.5, time in status).';
REVOKE EXECUTE ON FUNCTION cockpit.status_seconds(text,text,date,timestamp with time zone) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION cockpit.status_seconds(text,text,date,timestamp with time zone) TO cockpit_reader;
