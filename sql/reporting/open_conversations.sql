-- Defines: reporting.open_conversations.
-- BI (spec 6): open conversations with their live facts.
-- Applied after the migrations, in the order of src/db/definitions.rs; edit here and the
-- next start applies it (README, "Changing SQL").

-- BI: the open conversations (spec 6).
CREATE OR REPLACE VIEW reporting.open_conversations AS
SELECT c.org_id, c.conversation_id, c.product_id, c.channel, c.assignee_id, c.opened_at,
       c.assigned_at, c.waiting_since, c.first_response_at, c.last_customer_message_at,
       c.last_agent_message_at
  FROM cockpit.conversations c
 WHERE c.state = 'ACTIVE';

COMMENT ON VIEW reporting.open_conversations IS
    'One row per ACTIVE conversation, now (spec 3.5, 6). The queue is its rows with a null assignee_id; a customer is kept waiting where waiting_since is set.';
COMMENT ON COLUMN reporting.open_conversations.org_id IS 'Organization id.';
COMMENT ON COLUMN reporting.open_conversations.conversation_id IS 'Conversation id.';
COMMENT ON COLUMN reporting.open_conversations.product_id IS 'Product (brand/app) id.';
COMMENT ON COLUMN reporting.open_conversations.channel IS 'Channel: LIVE_CHAT, IN_APP, WHATSAPP, FACEBOOK, INSTAGRAM or TWITTER.';
COMMENT ON COLUMN reporting.open_conversations.assignee_id IS 'Agent of the current assignment; null while queued (never assigned).';
COMMENT ON COLUMN reporting.open_conversations.opened_at IS 'When the customer opened it (the queue''s wait starts here).';
COMMENT ON COLUMN reporting.open_conversations.assigned_at IS 'Start of the current assignment (assigned or reactivated); null while queued.';
COMMENT ON COLUMN reporting.open_conversations.waiting_since IS 'The first customer message not yet answered by an agent reply or a resolution; null when none.';
COMMENT ON COLUMN reporting.open_conversations.first_response_at IS 'The assignee''s first reply in the current assignment; null if none yet.';
COMMENT ON COLUMN reporting.open_conversations.last_customer_message_at IS 'The customer''s latest message (conversation_opened counts as one).';
COMMENT ON COLUMN reporting.open_conversations.last_agent_message_at IS 'The latest reply of any agent; null if none.';

GRANT SELECT ON reporting.open_conversations TO cockpit_reader;
