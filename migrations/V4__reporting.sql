-- The BI contract (spec 6): schema `reporting`, stable documented views over the private
-- tables, readable by the NOLOGIN role cockpit_reader and nothing else. Views run with
-- their owner's rights, so the reader needs no right on schema cockpit.

CREATE SCHEMA IF NOT EXISTS reporting;
COMMENT ON SCHEMA reporting IS
'Chat Cockpit BI contract: stable views for dashboards (Metabase, Grafana, Power BI, psql). '
'Column names are the contract. Read them as role cockpit_reader.';

CREATE VIEW reporting.organizations AS
SELECT o.org_id, o.name, o.timezone,
       (now() AT TIME ZONE o.timezone)::date AS today
  FROM cockpit.organizations o;
COMMENT ON VIEW reporting.organizations IS 'Organizations (tenants) with their IANA time zone and their current local day.';
COMMENT ON COLUMN reporting.organizations.org_id IS 'Organization id, chosen by the chat platform.';
COMMENT ON COLUMN reporting.organizations.name IS 'Organization display name.';
COMMENT ON COLUMN reporting.organizations.timezone IS 'IANA time zone; "today" and every day column use it.';
COMMENT ON COLUMN reporting.organizations.today IS 'The organization''s local calendar day right now.';

CREATE VIEW reporting.agent_daily AS
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
       s.forwarded_count
  FROM cockpit.daily_stats s
  JOIN cockpit.agents a ON a.org_id = s.org_id AND a.agent_id = s.agent_id
  JOIN cockpit.products p ON p.org_id = s.org_id AND p.product_id = s.product_id;
COMMENT ON VIEW reporting.agent_daily IS
'Daily figures per (organization, local day, agent, product, channel), for every past day and '
'today (refreshed every COCKPIT_REFRESH_SECS, 60 s by default). One row per group with any '
'activity; no zero rows and no roll-ups: to combine channels, products or days, sum the sums '
'and counts and divide (weighted averages), never average the averages.';
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

CREATE VIEW reporting.agent_live AS
WITH scope AS (
    SELECT ap.org_id, ap.agent_id, ap.product_id FROM cockpit.agent_products ap
    UNION
    SELECT c.org_id, c.assignee_id, c.product_id
      FROM cockpit.conversations c
     WHERE c.state = 'ACTIVE' AND c.assignee_id IS NOT NULL
),
active AS (
    SELECT c.org_id, c.assignee_id AS agent_id, c.product_id, c.channel, count(*) AS n
      FROM cockpit.conversations c
     WHERE c.state = 'ACTIVE' AND c.assignee_id IS NOT NULL
     GROUP BY 1, 2, 3, 4
)
SELECT a.org_id, a.agent_id, a.name AS agent_name, a.role, a.status, a.status_since,
       s.product_id, p.name AS product_name, ch.channel,
       coalesce(act.n, 0) AS active_conversations
  FROM scope s
  JOIN cockpit.agents a ON a.org_id = s.org_id AND a.agent_id = s.agent_id
  JOIN cockpit.products p ON p.org_id = s.org_id AND p.product_id = s.product_id
 CROSS JOIN (VALUES ('LIVE_CHAT'), ('IN_APP'), ('WHATSAPP'), ('FACEBOOK'), ('INSTAGRAM'), ('TWITTER')) AS ch(channel)
  LEFT JOIN active act
    ON act.org_id = s.org_id AND act.agent_id = s.agent_id
   AND act.product_id = s.product_id AND act.channel = ch.channel;
COMMENT ON VIEW reporting.agent_live IS
'Live state, now: one row per (agent, product, channel) for every product the agent is a member '
'of or has an active conversation in, all six channels, zeros included.';
COMMENT ON COLUMN reporting.agent_live.org_id IS 'Organization id.';
COMMENT ON COLUMN reporting.agent_live.agent_id IS 'Agent id.';
COMMENT ON COLUMN reporting.agent_live.agent_name IS 'Agent display name.';
COMMENT ON COLUMN reporting.agent_live.role IS 'ADMIN, SUPERVISOR or AGENT.';
COMMENT ON COLUMN reporting.agent_live.status IS 'ONLINE, OFFLINE, BREAK or INVISIBLE, now.';
COMMENT ON COLUMN reporting.agent_live.status_since IS 'When the agent entered the current status.';
COMMENT ON COLUMN reporting.agent_live.product_id IS 'Product id.';
COMMENT ON COLUMN reporting.agent_live.product_name IS 'Product display name.';
COMMENT ON COLUMN reporting.agent_live.channel IS 'LIVE_CHAT, IN_APP, WHATSAPP, FACEBOOK, INSTAGRAM or TWITTER.';
COMMENT ON COLUMN reporting.agent_live.active_conversations IS 'Conversations active on the agent right now in this product and channel.';

CREATE VIEW reporting.agent_status_changes AS
SELECT sc.org_id, sc.agent_id, a.name AS agent_name, sc.from_status, sc.to_status,
       sc.changed_by_id, b.name AS changed_by_name, sc.changed_at
  FROM cockpit.status_changes sc
  JOIN cockpit.agents a ON a.org_id = sc.org_id AND a.agent_id = sc.agent_id
  JOIN cockpit.agents b ON b.org_id = sc.org_id AND b.agent_id = sc.changed_by_id;
COMMENT ON VIEW reporting.agent_status_changes IS 'Audit trail of agent status changes, one row per change.';
COMMENT ON COLUMN reporting.agent_status_changes.org_id IS 'Organization id.';
COMMENT ON COLUMN reporting.agent_status_changes.agent_id IS 'Agent whose status changed.';
COMMENT ON COLUMN reporting.agent_status_changes.agent_name IS 'That agent''s display name.';
COMMENT ON COLUMN reporting.agent_status_changes.from_status IS 'Status before the change.';
COMMENT ON COLUMN reporting.agent_status_changes.to_status IS 'Status after the change.';
COMMENT ON COLUMN reporting.agent_status_changes.changed_by_id IS 'Agent who made the change (the agent themselves, or an admin or supervisor).';
COMMENT ON COLUMN reporting.agent_status_changes.changed_by_name IS 'Display name of who made the change.';
COMMENT ON COLUMN reporting.agent_status_changes.changed_at IS 'When the change was made.';

GRANT USAGE ON SCHEMA reporting TO cockpit_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA reporting TO cockpit_reader;
