-- An agent's status changes, newest first.
-- $1 org_id text, $2 agent_id text, $3 limit bigint
-- Result: from_status, to_status, changed_at, then the agent's and the changer's
-- agent_id, name, role, status, status_since.
SELECT sc.from_status, sc.to_status, sc.changed_at,
       a.agent_id, a.name, a.role, a.status, a.status_since,
       b.agent_id, b.name, b.role, b.status, b.status_since
  FROM cockpit.status_changes sc
  JOIN cockpit.agents a ON a.org_id = sc.org_id AND a.agent_id = sc.agent_id
  JOIN cockpit.agents b ON b.org_id = sc.org_id AND b.agent_id = sc.changed_by_id
 WHERE sc.org_id = $1 AND sc.agent_id = $2
 ORDER BY sc.change_id DESC
 LIMIT $3
