-- Defines: cockpit.agent_daily_reference, cockpit.reference_organizations().
-- The oracle of the daily columns: the same figures straight from the event log, compared
-- with cockpit.daily_stats by the tests and `bench --verify`.
-- Applied after the migrations, in the order of src/db/definitions.rs; edit here and the
-- next start applies it (README, "Changing SQL").

-- Every organization, for the oracle views: they call a function per organization and
-- read no table themselves (on a Citus cluster no statement over distributed tables may
-- run inside another).
CREATE OR REPLACE FUNCTION cockpit.reference_organizations()
 RETURNS TABLE(org_id text)
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
BEGIN
    RETURN QUERY SELECT o.org_id::text FROM cockpit.organizations o ORDER BY 1;
END
$function$;
REVOKE EXECUTE ON FUNCTION cockpit.reference_organizations() FROM PUBLIC;

-- The oracle of the daily columns.
CREATE OR REPLACE VIEW cockpit.agent_daily_reference AS
SELECT o.org_id, f.day, f.agent_id, f.product_id, f.channel,
       sum(f.first_response_count)::bigint AS first_response_count,
       sum(f.first_response_seconds_sum) AS first_response_seconds_sum,
       sum(f.resolution_count)::bigint AS resolution_count,
       sum(f.resolution_seconds_sum) AS resolution_seconds_sum,
       sum(f.resolved_count)::bigint AS resolved_count,
       sum(f.reactivated_count)::bigint AS reactivated_count,
       sum(f.forwarded_count)::bigint AS forwarded_count,
       sum(f.first_responses_within_target)::bigint AS first_responses_within_target
  FROM cockpit.reference_organizations() o
 CROSS JOIN LATERAL cockpit.conversation_facts(o.org_id) f
 GROUP BY o.org_id, f.day, f.agent_id, f.product_id, f.channel;
