-- Time on break per agent and week (weeks of the organization's local days, Monday first),
-- with time online beside it, from reporting.agent_status_daily.
-- Parameters: $1 org_id.  Read as role cockpit_reader.
SELECT s.agent_id, s.agent_name, date_trunc('week', s.day)::date AS week,
       coalesce(sum(s.seconds) FILTER (WHERE s.status = 'BREAK'), 0) AS break_seconds,
       coalesce(sum(s.seconds) FILTER (WHERE s.status = 'ONLINE'), 0) AS online_seconds,
       round(100.0 * sum(s.seconds) FILTER (WHERE s.status = 'BREAK')
             / nullif(sum(s.seconds) FILTER (WHERE s.status IN ('BREAK', 'ONLINE')), 0), 1)
           AS break_percent
  FROM reporting.agent_status_daily s
 WHERE s.org_id = $1
 GROUP BY s.agent_id, s.agent_name, date_trunc('week', s.day)
 ORDER BY week DESC, s.agent_name, s.agent_id;
