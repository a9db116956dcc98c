-- Service level per product and local day: the share of first responses given within the
-- organization's first-response target (reporting.organizations.service_level_seconds), all
-- agents and channels together (sums divided, never averages averaged). A past day has no
-- "overdue now": its share is within / first responses; the cockpit's live serviceLevel of
-- today also counts the assignments overdue at this moment.
-- Parameters: $1 org_id, $2 first day (date), $3 last day (date).  Read as role cockpit_reader.
SELECT d.product_id, d.product_name, d.day, o.service_level_seconds,
       sum(d.first_response_count) AS first_responses,
       sum(d.first_responses_within_target) AS within_target,
       round(sum(d.first_responses_within_target)::numeric
             / nullif(sum(d.first_response_count), 0), 4) AS service_level
  FROM reporting.agent_daily d
  JOIN reporting.organizations o ON o.org_id = d.org_id
 WHERE d.org_id = $1 AND d.day BETWEEN $2 AND $3
 GROUP BY d.product_id, d.product_name, d.day, o.service_level_seconds
 ORDER BY d.day DESC, d.product_name, d.product_id;
