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
DECLARE
    v_last record;
BEGIN
    -- PL/pgSQL, not SQL: Citus plans no statement of an SQL function with parameters.
    DELETE FROM cockpit.status_time k
     WHERE k.org_id = p_org AND (p_agent IS NULL OR k.agent_id = p_agent)
       AND NOT EXISTS (SELECT 1 FROM cockpit.status_changes sc
                        WHERE sc.org_id = k.org_id AND sc.agent_id = k.agent_id);
    -- Per agent, a call of cockpit.status_seconds of its own (on a Citus cluster no
    -- statement over distributed tables may run inside another).
    FOR v_last IN
        SELECT a.agent_id, l.to_status, l.changed_at,
               (l.changed_at AT TIME ZONE o.timezone)::date AS day
          FROM cockpit.agents a
          JOIN cockpit.organizations o ON o.org_id = a.org_id
         CROSS JOIN LATERAL (
             SELECT sc.to_status, sc.changed_at
               FROM cockpit.status_changes sc
              WHERE sc.org_id = a.org_id AND sc.agent_id = a.agent_id
              ORDER BY sc.changed_at DESC, sc.change_id DESC
              LIMIT 1
         ) l
         WHERE a.org_id = p_org AND o.org_id = p_org AND (p_agent IS NULL OR a.agent_id = p_agent)
         ORDER BY a.agent_id
    LOOP
        INSERT INTO cockpit.status_time AS k (org_id, agent_id, status, since, day, online_seconds,
                                              break_seconds, invisible_seconds, offline_seconds)
        SELECT p_org, v_last.agent_id, v_last.to_status, v_last.changed_at, v_last.day,
               coalesce(max(x.seconds) FILTER (WHERE x.status = 'ONLINE'), 0),
               coalesce(max(x.seconds) FILTER (WHERE x.status = 'BREAK'), 0),
               coalesce(max(x.seconds) FILTER (WHERE x.status = 'INVISIBLE'), 0),
               coalesce(max(x.seconds) FILTER (WHERE x.status = 'OFFLINE'), 0)
          FROM cockpit.status_seconds(p_org, v_last.agent_id, v_last.day, v_last.changed_at) x
        ON CONFLICT (org_id, agent_id) DO UPDATE
           SET status = excluded.status, since = excluded.since, day = excluded.day,
               online_seconds = excluded.online_seconds, break_seconds = excluded.break_seconds,
               invisible_seconds = excluded.invisible_seconds,
               offline_seconds = excluded.offline_seconds;
    END LOOP;
END
$function$;
COMMENT ON FUNCTION cockpit.keep_status_time(text, text) IS
    'Rewrites the kept time in status (cockpit.status_time) of one agent, or of every agent of the organization when p_agent is NULL, from the status history.';
REVOKE EXECUTE ON FUNCTION cockpit.keep_status_time(text, text) FROM PUBLIC;

-- Whole seconds in p_status during the local day p_today (which starts at p_day_start) up
-- to p_now, from an agent's kept row of cockpit.status_time: its status, since, day and the
-- seconds it kept of p_status (all NULL: no change ever recorded, so OFFLINE). When the
-- last change fell on p_today: the seconds kept before it, plus the running status since
-- it. Otherwise the status after the last change was held all of p_today so far.
-- Equals cockpit.status_seconds(org, agent, p_today, p_now) for p_now at or after the last
-- change (a test checks it on random histories, across midnights and DST days). An SQL
-- expression the planner inlines: the cockpit statement pays no function call per row.
-- Columns, not the row: on a Citus cluster the statement runs on a shard, whose rows are
-- of the shard's type.
CREATE OR REPLACE FUNCTION cockpit.status_seconds_now(p_kept_status text, p_kept_since timestamp with time zone, p_kept_day date, p_kept_seconds integer, p_status text, p_today date, p_day_start timestamp with time zone, p_now timestamp with time zone)
 RETURNS integer
 LANGUAGE sql
 STABLE PARALLEL SAFE
AS $function$
    SELECT CASE
           WHEN p_kept_day = p_today THEN
               p_kept_seconds
               + CASE WHEN p_kept_status = p_status
                      THEN greatest(extract(epoch FROM date_trunc('second', p_now))
                                    - extract(epoch FROM date_trunc('second', p_kept_since)), 0)::integer
                      ELSE 0 END
           WHEN coalesce(p_kept_status, 'OFFLINE') = p_status
               THEN greatest(extract(epoch FROM date_trunc('second', p_now))
                             - extract(epoch FROM p_day_start), 0)::integer
           ELSE 0
           END
$function$;
COMMENT ON FUNCTION cockpit.status_seconds_now(text, timestamp with time zone, date, integer, text, date, timestamp with time zone, timestamp with time zone) IS
    'Whole seconds an agent spent in p_status during the local day p_today up to p_now, from its kept row of cockpit.status_time: status, since, day and the seconds kept of p_status (equal to cockpit.status_seconds for p_now at or after the last change).';
REVOKE EXECUTE ON FUNCTION cockpit.status_seconds_now(text, timestamp with time zone, date, integer, text, date, timestamp with time zone, timestamp with time zone) FROM PUBLIC;
