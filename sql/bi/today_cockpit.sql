-- Today's cockpit of one product, all channels together: per agent, the weighted averages
-- (sum of sums / sum of counts, never an average of averages) and the daily counts, with
-- the live status and active conversations.
-- Parameters: $1 org_id, $2 product_id.  (psql: replace with literal values.)
-- Read as role cockpit_reader.
WITH org AS (
    SELECT org_id, today FROM reporting.organizations WHERE org_id = $1
),
daily AS (
    SELECT d.agent_id,
           sum(d.first_response_count) AS first_response_count,
           sum(d.first_response_seconds_sum) / nullif(sum(d.first_response_count), 0)
               AS avg_first_response_seconds,
           sum(d.resolution_count) AS resolution_count,
           sum(d.resolution_seconds_sum) / nullif(sum(d.resolution_count), 0)
               AS avg_resolution_seconds,
           sum(d.resolved_count) AS resolved,
           sum(d.reactivated_count) AS reactivated,
           sum(d.forwarded_count) AS forwarded
      FROM reporting.agent_daily d
      JOIN org ON org.org_id = d.org_id AND org.today = d.day
     WHERE d.product_id = $2
     GROUP BY d.agent_id
),
live AS (
    SELECT l.agent_id, l.agent_name, l.status, sum(l.active_conversations) AS active
      FROM reporting.agent_live l
     WHERE l.org_id = $1 AND l.product_id = $2
     GROUP BY l.agent_id, l.agent_name, l.status
)
SELECT live.agent_id, live.agent_name, live.status, live.active,
       round(daily.avg_first_response_seconds, 1) AS avg_first_response_seconds,
       round(daily.avg_resolution_seconds, 1) AS avg_resolution_seconds,
       coalesce(daily.resolved, 0) AS resolved,
       coalesce(daily.reactivated, 0) AS reactivated,
       coalesce(daily.forwarded, 0) AS forwarded
  FROM live
  LEFT JOIN daily ON daily.agent_id = live.agent_id
 ORDER BY live.status, live.agent_name COLLATE "tr-TR-x-icu", live.agent_id;
