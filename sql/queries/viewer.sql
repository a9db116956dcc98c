-- One agent of an organization (the caller of a GraphQL request, or a target).
-- $1 org_id text, $2 agent_id text
-- Result: agent_id, name, role, status, status_since; no row when unknown.
SELECT a.agent_id, a.name, a.role, a.status, a.status_since
  FROM cockpit.agents a
 WHERE a.org_id = $1 AND a.agent_id = $2
