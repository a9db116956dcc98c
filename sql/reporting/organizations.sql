-- Defines: reporting.organizations.
-- BI (spec 6): organizations with their zone, today and first-response target.
-- Applied after the migrations, in the order of src/db/definitions.rs; edit here and the
-- next start applies it (README, "Changing SQL").

-- BI (spec 6).
CREATE OR REPLACE VIEW reporting.organizations AS
SELECT o.org_id, o.name, o.timezone,
       (now() AT TIME ZONE o.timezone)::date AS today,
       o.service_level_seconds
  FROM cockpit.organizations o;

COMMENT ON VIEW reporting.organizations IS
    'Organizations (tenants) with their IANA time zone and their current local day.';
COMMENT ON COLUMN reporting.organizations.org_id IS 'Organization id, chosen by the chat platform.';
COMMENT ON COLUMN reporting.organizations.name IS 'Organization display name.';
COMMENT ON COLUMN reporting.organizations.timezone IS 'IANA time zone; "today" and every day column use it.';
COMMENT ON COLUMN reporting.organizations.today IS 'The organization''s local calendar day right now.';
COMMENT ON COLUMN reporting.organizations.service_level_seconds IS 'First-response target in seconds (spec 3.5, default 60): a first response within it counts in agent_daily.first_responses_within_target.';

GRANT SELECT ON reporting.organizations TO cockpit_reader;
