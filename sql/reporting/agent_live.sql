-- Defines: reporting.agent_live.
-- BI (spec 6): agents now, with their active conversations per product and channel.
-- Applied after the migrations, in the order of src/db/definitions.rs; edit here and the
-- next start applies it (README, "Changing SQL").

CREATE OR REPLACE VIEW reporting.agent_live AS
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
    'Live state, now: one row per (agent, product, channel) for every product the agent is a member of or has an active conversation in, all six channels, zeros included.';
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

GRANT SELECT ON reporting.agent_live TO cockpit_reader;
