-- A week's trend per agent: one row per (agent, local day) over the organization's last
-- 7 days (today included), all products and channels together, weighted averages.
-- Parameters: $1 org_id.  Read as role cockpit_reader.
SELECT d.agent_id, d.agent_name, d.day,
       sum(d.first_response_count) AS first_responses,
       round(sum(d.first_response_seconds_sum) / nullif(sum(d.first_response_count), 0), 1)
           AS avg_first_response_seconds,
       round(sum(d.resolution_seconds_sum) / nullif(sum(d.resolution_count), 0), 1)
           AS avg_resolution_seconds,
       sum(d.resolved_count) AS resolved,
       sum(d.reactivated_count) AS reactivated,
       sum(d.forwarded_count) AS forwarded
  FROM reporting.agent_daily d
  JOIN reporting.organizations o ON o.org_id = d.org_id
 WHERE d.org_id = $1
   AND d.day BETWEEN o.today - 6 AND o.today
 GROUP BY d.agent_id, d.agent_name, d.day
 ORDER BY d.agent_name COLLATE "tr-TR-x-icu", d.agent_id, d.day;
