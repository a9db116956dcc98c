-- Defines: cockpit.on_agents_updated(), trigger agents_live_update.
-- Live push of an agent's status, name or role.
-- Applied after the migrations, in the order of src/db/definitions.rs; edit here and the
-- next start applies it (README, "Changing SQL").

-- Agents: a status change ("status"), or a new agent, name or role ("members").
CREATE OR REPLACE FUNCTION cockpit.on_agents_updated()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
    PERFORM cockpit.notify_live(c.org_id, NULL, c.kind)
       FROM (SELECT DISTINCT n.org_id,
                    CASE WHEN n.status IS DISTINCT FROM o.status THEN 'status' ELSE 'members' END AS kind
               FROM new_rows n
               JOIN old_rows o ON o.org_id = n.org_id AND o.agent_id = n.agent_id
              WHERE (n.status, n.status_since, n.name, n.role)
                    IS DISTINCT FROM (o.status, o.status_since, o.name, o.role)) c;
    RETURN NULL;
END
$function$;
REVOKE EXECUTE ON FUNCTION cockpit.on_agents_updated() FROM PUBLIC;

CREATE OR REPLACE TRIGGER agents_live_update
    AFTER UPDATE ON cockpit.agents
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cockpit.on_agents_updated();
