-- Defines: cockpit.set_agent_status().
-- A status change (spec 1 and 4): permissions, the audit trail, status_since and the kept
-- time in status, in one transaction.
-- Applied after the migrations, in the order of src/db/definitions.rs; edit here and the
-- next start applies it (README, "Changing SQL").

-- The status change locks the agent's row FOR NO KEY UPDATE: it changes no key, so it
--    no longer conflicts with the FOR KEY SHARE lock that an ingest batch assigning the
--    agent holds until commit (foreign key of conversations.assignee_id): a supervisor's
--    change never waits for ingest. Two status changes still serialize.
CREATE OR REPLACE FUNCTION cockpit.set_agent_status(p_org text, p_actor text, p_target text, p_status text)
 RETURNS TABLE(outcome text, agent_id text, name text, role text, status text, status_since timestamp with time zone)
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'pg_temp'
AS $function$
DECLARE
    v_actor_role text;
    v_target record;
    -- The moment of the change, taken once the row lock is held, so that the audit trail's
    -- order is the order in which the changes really happened.
    v_now timestamptz;
BEGIN
    IF p_status NOT IN ('ONLINE', 'OFFLINE', 'BREAK', 'INVISIBLE') THEN
        RAISE EXCEPTION 'unknown status %', p_status USING ERRCODE = '22023';
    END IF;
    SELECT a.role INTO v_actor_role
      FROM cockpit.agents a
     WHERE a.org_id = p_org AND a.agent_id = p_actor;
    IF NOT FOUND THEN
        outcome := 'UNAUTHENTICATED';
        RETURN NEXT;
        RETURN;
    END IF;
    SELECT a.* INTO v_target
      FROM cockpit.agents a
     WHERE a.org_id = p_org AND a.agent_id = p_target
       FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        outcome := 'NOT_FOUND';
        RETURN NEXT;
        RETURN;
    END IF;
    agent_id := v_target.agent_id;
    name := v_target.name;
    role := v_target.role;
    status := v_target.status;
    status_since := v_target.status_since;
    IF p_target <> p_actor AND v_actor_role = 'AGENT' THEN
        outcome := 'FORBIDDEN';
    ELSIF p_target <> p_actor AND v_target.status = 'OFFLINE' THEN
        outcome := 'AGENT_OFFLINE';
    ELSIF v_target.status = p_status THEN
        outcome := 'UNCHANGED';
    ELSE
        v_now := clock_timestamp();
        UPDATE cockpit.agents a
           SET status = p_status, status_since = v_now
         WHERE a.org_id = p_org AND a.agent_id = p_target;
        INSERT INTO cockpit.status_changes (org_id, agent_id, from_status, to_status, changed_by_id, changed_at)
        VALUES (p_org, p_target, v_target.status, p_status, p_actor, v_now);
        PERFORM cockpit.keep_status_time(p_org, p_target);
        -- The agent's row in every live cockpit, told in this transaction (no trigger).
        PERFORM cockpit.notify_live(p_org, NULL, 'status', ARRAY[p_target]);
        outcome := 'CHANGED';
        status := p_status;
        status_since := v_now;
    END IF;
    RETURN NEXT;
END
$function$;
REVOKE EXECUTE ON FUNCTION cockpit.set_agent_status(text,text,text,text) FROM PUBLIC;
