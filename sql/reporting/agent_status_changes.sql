-- Defines: reporting.agent_status_changes.
-- BI (spec 6): the audit trail of status changes.
-- Applied after the migrations, in the order of src/db/definitions.rs; edit here and the
-- next start applies it (README, "Changing SQL").

CREATE OR REPLACE VIEW reporting.agent_status_changes AS
SELECT sc.org_id, sc.agent_id, a.name AS agent_name, sc.from_status, sc.to_status,
       sc.changed_by_id, b.name AS changed_by_name, sc.changed_at
  FROM cockpit.status_changes sc
  JOIN cockpit.agents a ON a.org_id = sc.org_id AND a.agent_id = sc.agent_id
  JOIN cockpit.agents b ON b.org_id = sc.org_id AND b.agent_id = sc.changed_by_id;

COMMENT ON VIEW reporting.agent_status_changes IS
    'Audit trail of agent status changes, one row per change.';
COMMENT ON COLUMN reporting.agent_status_changes.org_id IS 'Organization id.';
COMMENT ON COLUMN reporting.agent_status_changes.agent_id IS 'Agent whose status changed.';
COMMENT ON COLUMN reporting.agent_status_changes.agent_name IS 'That agent''s display name.';
COMMENT ON COLUMN reporting.agent_status_changes.from_status IS 'Status before the change.';
COMMENT ON COLUMN reporting.agent_status_changes.to_status IS 'Status after the change.';
COMMENT ON COLUMN reporting.agent_status_changes.changed_by_id IS 'Agent who made the change (the agent themselves, or an admin or supervisor).';
COMMENT ON COLUMN reporting.agent_status_changes.changed_by_name IS 'Display name of who made the change.';
COMMENT ON COLUMN reporting.agent_status_changes.changed_at IS 'When the change was made.';

GRANT SELECT ON reporting.agent_status_changes TO cockpit_reader;
