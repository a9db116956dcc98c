-- Defines: cockpit.conversation_live_reference.
-- The oracle of the live facts: the same facts over the whole log, compared with every
-- ingest path by the tests.
-- Applied after the migrations, in the order of src/db/definitions.rs; edit here and the
-- next start applies it (README, "Changing SQL").

-- The same facts stated plainly over the whole event log: the oracle the tests compare the
-- maintained columns with (and how the columns of stored conversations are filled now).
CREATE OR REPLACE VIEW cockpit.conversation_live_reference AS
SELECT c.org_id, c.conversation_id, c.state,
       a.agent_id AS assignee_id, a.at AS assigned_at, a.event_id AS assignment_event,
       (SELECT min(r.at) FROM cockpit.events r
         WHERE r.org_id = c.org_id AND r.conversation_id = c.conversation_id
           AND r.type = 'agent_message' AND r.agent_id = a.agent_id
           AND (r.at, r.rank, r.event_id) > (a.at, a.rank, a.event_id)
           AND NOT EXISTS (
               SELECT 1 FROM cockpit.events l
                WHERE l.org_id = c.org_id AND l.conversation_id = c.conversation_id
                  AND l.type IN ('assigned', 'reactivated', 'resolved')
                  AND (l.at, l.rank, l.event_id) > (a.at, a.rank, a.event_id)
                  AND (l.at, l.rank, l.event_id) < (r.at, r.rank, r.event_id))) AS first_response_at,
       (SELECT min(m.at) FROM cockpit.events m
         WHERE m.org_id = c.org_id AND m.conversation_id = c.conversation_id
           AND m.type IN ('conversation_opened', 'customer_message')
           AND NOT EXISTS (
               SELECT 1 FROM cockpit.events r
                WHERE r.org_id = c.org_id AND r.conversation_id = c.conversation_id
                  AND r.type IN ('agent_message', 'resolved')
                  AND (r.at, r.rank, r.event_id) > (m.at, m.rank, m.event_id))) AS waiting_since,
       (SELECT max(m.at) FROM cockpit.events m
         WHERE m.org_id = c.org_id AND m.conversation_id = c.conversation_id
           AND m.type IN ('conversation_opened', 'customer_message')) AS last_customer_message_at,
       (SELECT max(r.at) FROM cockpit.events r
         WHERE r.org_id = c.org_id AND r.conversation_id = c.conversation_id
           AND r.type = 'agent_message') AS last_agent_message_at
  FROM cockpit.conversations c
  LEFT JOIN LATERAL (
      SELECT e.agent_id, e.at, e.rank, e.event_id
        FROM cockpit.events e
       WHERE e.org_id = c.org_id AND e.conversation_id = c.conversation_id
         AND e.type IN ('assigned', 'reactivated')
       ORDER BY e.at DESC, e.rank DESC, e.event_id DESC
       LIMIT 1
  ) a ON true;

COMMENT ON VIEW cockpit.conversation_live_reference IS
    'The live facts of every conversation (spec 3.5) computed from the whole event log: the oracle of the columns ingest maintains.';
