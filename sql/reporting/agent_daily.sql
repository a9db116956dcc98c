-- Defines: reporting.agent_daily.
-- BI (spec 6): the daily figures per organization, local day, agent, product and channel.
-- Applied after the migrations, in the order of src/db/definitions.rs; edit here and the
-- next start applies it (README, "Changing SQL").

CREATE OR REPLACE VIEW reporting.agent_daily AS
SELECT s.org_id, s.day, s.agent_id, a.name AS agent_name, s.product_id, p.name AS product_name,
       s.channel,
       s.first_response_count,
       s.first_response_seconds_sum,
       (s.first_response_seconds_sum / nullif(s.first_response_count, 0))::double precision
           AS first_response_avg_seconds,
       s.resolution_count,
       s.resolution_seconds_sum,
       (s.resolution_seconds_sum / nullif(s.resolution_count, 0))::double precision
           AS resolution_avg_seconds,
       s.resolved_count,
       s.reactivated_count,
       s.forwarded_count,
       s.first_responses_within_target
  FROM cockpit.daily_stats s
  JOIN cockpit.agents a ON a.org_id = s.org_id AND a.agent_id = s.agent_id
  JOIN cockpit.products p ON p.org_id = s.org_id AND p.product_id = s.product_id;

COMMENT ON VIEW reporting.agent_daily IS
    'Daily figures per (organization, local day, agent, product, channel), for every past day and today (refreshed every COCKPIT_REFRESH_SECS, 60 s by default). One row per group with any activity; no zero rows and no roll-ups: to combine channels, products or days, sum the sums and counts and divide (weighted averages), never average the averages.';
COMMENT ON COLUMN reporting.agent_daily.org_id IS 'Organization id.';
COMMENT ON COLUMN reporting.agent_daily.day IS 'The organization''s local calendar day (its IANA time zone) on which the figures fall.';
COMMENT ON COLUMN reporting.agent_daily.agent_id IS 'Agent id.';
COMMENT ON COLUMN reporting.agent_daily.agent_name IS 'Agent display name (current).';
COMMENT ON COLUMN reporting.agent_daily.product_id IS 'Product (brand/app) id of the conversations.';
COMMENT ON COLUMN reporting.agent_daily.product_name IS 'Product display name (current).';
COMMENT ON COLUMN reporting.agent_daily.channel IS 'LIVE_CHAT, IN_APP, WHATSAPP, FACEBOOK, INSTAGRAM or TWITTER.';
COMMENT ON COLUMN reporting.agent_daily.first_response_count IS 'First responses given this day: the assignee''s first reply inside an assignment, counted on the day of the reply.';
COMMENT ON COLUMN reporting.agent_daily.first_response_seconds_sum IS 'Sum over those first responses of (reply - assignment), seconds.';
COMMENT ON COLUMN reporting.agent_daily.first_response_avg_seconds IS 'first_response_seconds_sum / first_response_count; NULL when the count is 0.';
COMMENT ON COLUMN reporting.agent_daily.resolution_count IS 'Resolutions marked this day by the agent holding the conversation (those with a duration).';
COMMENT ON COLUMN reporting.agent_daily.resolution_seconds_sum IS 'Sum over those resolutions of (resolution - assignment), seconds.';
COMMENT ON COLUMN reporting.agent_daily.resolution_avg_seconds IS 'resolution_seconds_sum / resolution_count; NULL when the count is 0.';
COMMENT ON COLUMN reporting.agent_daily.resolved_count IS 'Resolutions the agent marked this day, held or not (a conversation resolved, re-activated and resolved again counts twice).';
COMMENT ON COLUMN reporting.agent_daily.reactivated_count IS 'Archived WhatsApp / Facebook / Instagram conversations the agent re-activated this day.';
COMMENT ON COLUMN reporting.agent_daily.forwarded_count IS 'Manual assignments by the agent to another agent this day (each counts).';
COMMENT ON COLUMN reporting.agent_daily.first_responses_within_target IS 'First responses this day whose duration is at most the organization''s current target (reporting.organizations.service_level_seconds); a new target re-judges every day. Divide by first_response_count for the share within target of a past day.';

GRANT SELECT ON reporting.agent_daily TO cockpit_reader;
