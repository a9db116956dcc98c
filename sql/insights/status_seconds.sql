-- Defines: cockpit.status_seconds_in(), cockpit.status_seconds().
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
-- The rule of time in status, on its input alone (no table: on a Citus cluster it runs
-- inside any statement, on any node): seconds in each of the four statuses between
-- p_day_start and p_day_stop, for an agent who held p_held at p_day_start (NULL: no change
-- recorded before it, so OFFLINE) and then changed to p_statuses[i] at p_instants[i] (the
-- changes inside the day, in their order). Whole seconds of the clock (each instant
-- truncated to its second): the four add up to the elapsed part of the day exactly.
CREATE OR REPLACE FUNCTION cockpit.status_seconds_in(p_held text, p_statuses text[], p_instants timestamp with time zone[], p_day_start timestamp with time zone, p_day_stop timestamp with time zone)
 RETURNS TABLE(status text, seconds integer)
 LANGUAGE sql
 IMMUTABLE PARALLEL SAFE
AS $function$
    WITH held AS (
        SELECT coalesce(p_held, 'OFFLINE') AS status, p_day_start AS since, 0::bigint AS ord
        UNION ALL
        SELECT c.status, c.since, c.ord
          FROM unnest(p_statuses, p_instants) WITH ORDINALITY AS c(status, since, ord)
    ),
    segments AS (
        SELECT h.status, h.since,
               coalesce(lead(h.since) OVER (ORDER BY h.since, h.ord), p_day_stop) AS until
          FROM held h
    )
    SELECT s.status,
           coalesce(sum(greatest(extract(epoch FROM date_trunc('second', g.until))
                                 - extract(epoch FROM date_trunc('second', g.since)), 0)), 0)::integer
      FROM unnest(ARRAY['ONLINE', 'BREAK', 'INVISIBLE', 'OFFLINE']) AS s(status)
      LEFT JOIN segments g ON g.status = s.status
     GROUP BY s.status
$function$;
COMMENT ON FUNCTION cockpit.status_seconds_in(text, text[], timestamp with time zone[], timestamp with time zone, timestamp with time zone) IS
    'The rule of time in status (spec 3.5) on its input: seconds in each status between p_day_start and p_day_stop for an agent who held p_held at p_day_start and then changed to p_statuses[i] at p_instants[i], in order.';
REVOKE EXECUTE ON FUNCTION cockpit.status_seconds_in(text, text[], timestamp with time zone[], timestamp with time zone, timestamp with time zone) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION cockpit.status_seconds_in(text, text[], timestamp with time zone[], timestamp with time zone, timestamp with time zone) TO cockpit_reader;

CREATE OR REPLACE FUNCTION cockpit.status_seconds(p_org text, p_agent text, p_day date, p_now timestamp with time zone DEFAULT now())
 RETURNS TABLE(status text, seconds integer)
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    -- The rule is cockpit.status_seconds_in; this gathers its input: the day's bounds, the
    -- status held at the day's start and the changes inside the day, in order.
    RETURN QUERY
    SELECT r.status, r.seconds
      FROM cockpit.organizations o
     CROSS JOIN LATERAL (
         SELECT (p_day::timestamp AT TIME ZONE o.timezone) AS day_start,
                least(((p_day + 1)::timestamp AT TIME ZONE o.timezone), p_now) AS day_stop) b
     CROSS JOIN LATERAL (
         SELECT coalesce(array_agg(sc.to_status ORDER BY sc.changed_at, sc.change_id), '{}') AS statuses,
                coalesce(array_agg(sc.changed_at ORDER BY sc.changed_at, sc.change_id), '{}') AS instants
           FROM cockpit.status_changes sc
          WHERE sc.org_id = p_org AND sc.agent_id = p_agent
            AND sc.changed_at >= b.day_start AND sc.changed_at < b.day_stop) d
     CROSS JOIN LATERAL cockpit.status_seconds_in(
         (SELECT sc.to_status
            FROM cockpit.status_changes sc
           WHERE sc.org_id = p_org AND sc.agent_id = p_agent AND sc.changed_at < b.day_start
           ORDER BY sc.changed_at DESC, sc.change_id DESC
           LIMIT 1),
         d.statuses, d.instants, b.day_start, b.day_stop) r
     WHERE o.org_id = p_org;
END
$function$;

COMMENT ON FUNCTION cockpit.status_seconds(p_org text, p_agent text, p_day date, p_now timestamp with time zone) IS
    'Seconds an agent spent in each status (ONLINE, BREAK, INVISIBLE, OFFLINE) during the organization''s local day p_day, up to p_now (spec 3.5, time in status).';
REVOKE EXECUTE ON FUNCTION cockpit.status_seconds(text,text,date,timestamp with time zone) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION cockpit.status_seconds(text,text,date,timestamp with time zone) TO cockpit_reader;
