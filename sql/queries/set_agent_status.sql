-- Change an agent's status with the rules of spec 3.3, atomically (see the migration).
-- $1 org_id text, $2 actor agent_id text, $3 target agent_id text, $4 status text
-- Result: outcome (CHANGED, UNCHANGED, UNAUTHENTICATED, NOT_FOUND, FORBIDDEN,
-- AGENT_OFFLINE), agent_id, name, role, status, status_since (the agent after).
SELECT outcome, agent_id, name, role, status, status_since
  FROM cockpit.set_agent_status($1, $2, $3, $4)
