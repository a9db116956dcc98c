-- Defines: cockpit.agent_daily_reference.
-- The oracle of the daily columns: the same figures straight from the event log, compared
-- with cockpit.daily_stats by the tests and `bench --verify`.
-- Applied after the migrations, in the order of src/db/definitions.rs; edit here and the
-- next start applies it (README, "Changing SQL").

-- The oracle of the daily columns.
CREATE OR REPLACE VIEW cockpit.agent_daily_reference AS
SELECT c.org_id, f.day, f.agent_id, c.product_id, c.channel,
       sum(f.first_response_count)::bigint AS first_response_count,
       sum(f.first_response_seconds_sum) AS first_response_seconds_sum,
       sum(f.resolution_count)::bigint AS resolution_count,
       sum(f.resolution_seconds_sum) AS resolution_seconds_sum,
       sum(f.resolved_count)::bigint AS resolved_count,
       sum(f.reactivated_count)::bigint AS reactivated_count,
       sum(f.forwarded_count)::bigint AS forwarded_count,
       sum(f.first_responses_within_target)::bigint AS first_responses_within_target
  FROM cockpit.conversations c
 CROSS JOIN LATERAL cockpit.conversation_facts(c.org_id, c.conversation_id) f
 GROUP BY c.org_id, f.day, f.agent_id, c.product_id, c.channel;
