-- Per-channel split of one product's day: how each channel contributes, weighted.
-- Parameters: $1 org_id, $2 product_id, $3 day (date).  Read as role cockpit_reader.
SELECT d.channel,
       count(DISTINCT d.agent_id) AS agents,
       sum(d.first_response_count) AS first_responses,
       round(sum(d.first_response_seconds_sum) / nullif(sum(d.first_response_count), 0), 1)
           AS avg_first_response_seconds,
       sum(d.resolution_count) AS timed_resolutions,
       round(sum(d.resolution_seconds_sum) / nullif(sum(d.resolution_count), 0), 1)
           AS avg_resolution_seconds,
       sum(d.resolved_count) AS resolved,
       sum(d.reactivated_count) AS reactivated,
       sum(d.forwarded_count) AS forwarded
  FROM reporting.agent_daily d
 WHERE d.org_id = $1 AND d.product_id = $2 AND d.day = $3::date
 GROUP BY d.channel
 ORDER BY d.channel;
