-- Defines: cockpit.on_agents_updated(), trigger agents_live_update.
-- Live push of an agent's status, name or role.
-- Applied after the migrations, in the order of src/db/definitions.rs; edit here and the
-- next start applies it (README, "Changing SQL").

-- Agents: a status change ("status", with the agents changed), or a new agent, name or
-- role ("members").
CREATE OR REPLACE FUNCTION cockpit.on_agents_updated()
 RETURNS trigger
 LANGUAGE plpgsql
AS $function$
BEGIN
    -- A status change concerns its agents' rows only; a name or role moves rows or
    -- changes who may see what: every row.
    PERFORM cockpit.notify_live(c.org_id, NULL, c.kind,
                                CASE WHEN c.kind = 'status' THEN c.agents END)
       FROM (SELECT n.org_id,
                    CASE WHEN bool_and((n.name, n.role) IS NOT DISTINCT FROM (o.name, o.role))
                         THEN 'status' ELSE 'members' END AS kind,
                    array_agg(DISTINCT n.agent_id) AS agents
               FROM new_rows n
               JOIN old_rows o ON o.org_id = n.org_id AND o.agent_id = n.agent_id
              WHERE (n.status, n.status_since, n.name, n.role)
                    IS DISTINCT FROM (o.status, o.status_since, o.name, o.role)
              GROUP BY n.org_id) c;
    RETURN NULL;
END
$function$;
REVOKE EXECUTE ON FUNCTION cockpit.on_agents_updated() FROM PUBLIC;

CREATE OR REPLACE TRIGGER agents_live_update
    AFTER UPDATE ON cockpit.agents
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION cockpit.on_agents_updated();
