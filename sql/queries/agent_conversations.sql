-- The drill-down of spec 3.5: one agent's ACTIVE conversations in scope, the customer kept
-- waiting longest first, then those not waiting by the start of their assignment.
-- $1 org_id text, $2 agent_id text, $3 product_id text (NULL: every product),
-- $4 channel text (NULL: every channel)
-- Result: always a first row saying agent_found and product_found (false: not the
-- organization's); conversation columns are NULL on it when there is no conversation.
-- Columns: agent_found, product_found, conversation_id, product_id, product_name, channel,
-- opened_at, assigned_at, waiting_since, first_response_at, last_customer_message_at,
-- last_agent_message_at.
WITH found AS (
    SELECT EXISTS (SELECT 1 FROM cockpit.agents a
                    WHERE a.org_id = $1 AND a.agent_id = $2) AS agent_found,
           $3::text IS NULL
           OR EXISTS (SELECT 1 FROM cockpit.products p
                       WHERE p.org_id = $1 AND p.product_id = $3::text) AS product_found
)
SELECT f.agent_found, f.product_found, c.conversation_id, c.product_id, p.name AS product_name,
       c.channel, c.opened_at, c.assigned_at, c.waiting_since, c.first_response_at,
       c.last_customer_message_at, c.last_agent_message_at
  FROM found f
  LEFT JOIN (cockpit.conversations c
             JOIN cockpit.products p ON p.org_id = c.org_id AND p.product_id = c.product_id)
    ON f.agent_found AND f.product_found
   AND c.org_id = $1 AND c.state = 'ACTIVE' AND c.assignee_id = $2
   AND ($3::text IS NULL OR c.product_id = $3::text)
   AND ($4::text IS NULL OR c.channel = $4::text)
 ORDER BY c.waiting_since NULLS LAST, c.assigned_at, c.conversation_id
