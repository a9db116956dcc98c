-- Defines: cockpit.keep_status_time(), cockpit.status_seconds_now().
-- Time in status today, kept as statuses change (issue 22) so that a read of the cockpit
-- costs one row per agent instead of a scan of its history.
-- Applied after the migrations, in the order of src/db/definitions.rs; edit here and the
-- next start applies it (README, "Changing SQL").

-- Rewrites an agent's row of cockpit.status_time from the history: the last change
-- (latest changed_at, then change_id, as cockpit.status_seconds orders them), its local
-- day, and cockpit.status_seconds of that day up to that change. The kept row is so the
-- definition's value by construction, whatever order changes were recorded in. Called by
-- every writer of cockpit.status_changes (cockpit.set_agent_status) in the same
-- transaction, and for every agent of an organization whose time zone changed; p_agent
-- NULL keeps every agent of p_org.
CREATE OR REPLACE FUNCTION cockpit.keep_status_time(p_org text, p_agent text)
 RETURNS void
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    -- PL/pgSQL, not SQL: Citus plans no statement of an SQL function with parameters.
    DELETE FROM cockpit.status_time k
     WHERE k.org_id = p_org AND (p_agent IS NULL OR k.agent_id = p_agent)
       AND NOT EXISTS (SELECT 1 FROM cockpit.status_changes sc
                        WHERE sc.org_id = k.org_id AND sc.agent_id = k.agent_id);
    INSERT INTO cockpit.status_time AS k (org_id, agent_id, status, since, day, online_seconds,
                                          break_seconds, invisible_seconds, offline_seconds)
    SELECT p_org, a.agent_id, l.to_status, l.changed_at, d.day,
           s.online, s.brk, s.invisible, s.offline
      FROM cockpit.agents a
      JOIN cockpit.organizations o ON o.org_id = a.org_id
     CROSS JOIN LATERAL (
         SELECT sc.to_status, sc.changed_at
           FROM cockpit.status_changes sc
          WHERE sc.org_id = a.org_id AND sc.agent_id = a.agent_id
          ORDER BY sc.changed_at DESC, sc.change_id DESC
          LIMIT 1
     ) l
     CROSS JOIN LATERAL (SELECT (l.changed_at AT TIME ZONE o.timezone)::date AS day) d
     CROSS JOIN LATERAL (
         SELECT coalesce(max(x.seconds) FILTER (WHERE x.status = 'ONLINE'), 0) AS online,
                coalesce(max(x.seconds) FILTER (WHERE x.status = 'BREAK'), 0) AS brk,
                coalesce(max(x.seconds) FILTER (WHERE x.status = 'INVISIBLE'), 0) AS invisible,
                coalesce(max(x.seconds) FILTER (WHERE x.status = 'OFFLINE'), 0) AS offline
           FROM cockpit.status_seconds(a.org_id, a.agent_id, d.day, l.changed_at) x
     ) s
     WHERE a.org_id = p_org AND (p_agent IS NULL OR a.agent_id = p_agent)
    ON CONFLICT (org_id, agent_id) DO UPDATE
       SET status = excluded.status, since = excluded.since, day = excluded.day,
           online_seconds = excluded.online_seconds, break_seconds = excluded.break_seconds,
           invisible_seconds = excluded.invisible_seconds,
           offline_seconds = excluded.offline_seconds;
END
$function$;
COMMENT ON FUNCTION cockpit.keep_status_time(text, text) IS
    'Rewrites the kept time in status (cockpit.status_time) of one agent, or of every agent of the organization when p_agent is NULL, from the status history.';
REVOKE EXECUTE ON FUNCTION cockpit.keep_status_time(text, text) FROM PUBLIC;

-- Whole seconds in p_status during the local day p_today (which starts at p_day_start) up
-- to p_now, from an agent's kept row k (NULL: no change ever recorded, so OFFLINE). When
-- the last change fell on p_today: the seconds kept before it, plus the running status
-- since it. Otherwise the status after the last change was held all of p_today so far.
-- Equals cockpit.status_seconds(org, agent, p_today, p_now) for p_now at or after the last
-- change (a test checks it on random histories, across midnights and DST days). An SQL
-- expression the planner inlines: the cockpit statement pays no function call per row.
CREATE OR REPLACE FUNCTION cockpit.status_seconds_now(k cockpit.status_time, p_status text, p_today date, p_day_start timestamp with time zone, p_now timestamp with time zone)
 RETURNS integer
 LANGUAGE sql
 STABLE PARALLEL SAFE
AS $function$
    SELECT CASE
           WHEN k.day = p_today THEN
               CASE p_status
                   WHEN 'ONLINE' THEN k.online_seconds
                   WHEN 'BREAK' THEN k.break_seconds
                   WHEN 'INVISIBLE' THEN k.invisible_seconds
                   ELSE k.offline_seconds
               END
               + CASE WHEN k.status = p_status
                      THEN greatest(extract(epoch FROM date_trunc('second', p_now))
                                    - extract(epoch FROM date_trunc('second', k.since)), 0)::integer
                      ELSE 0 END
           WHEN coalesce(k.status, 'OFFLINE') = p_status
               THEN greatest(extract(epoch FROM date_trunc('second', p_now))
                             - extract(epoch FROM p_day_start), 0)::integer
           ELSE 0
           END
$function$;
COMMENT ON FUNCTION cockpit.status_seconds_now(cockpit.status_time, text, date, timestamp with time zone, timestamp with time zone) IS
    'Whole seconds an agent spent in p_status during the local day p_today up to p_now, from its kept row of cockpit.status_time (equal to cockpit.status_seconds for p_now at or after the last change).';
REVOKE EXECUTE ON FUNCTION cockpit.status_seconds_now(cockpit.status_time, text, date, timestamp with time zone, timestamp with time zone) FROM PUBLIC;
